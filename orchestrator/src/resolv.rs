//! Which of the host's DNS settings a task can use, as Docker and Podman
//! decide: a nameserver on the host's loopback (systemd-resolved's
//! 127.0.0.53, a local dnsmasq) is unreachable from a task's own network
//! namespace.

use std::net::IpAddr;

/// Where systemd-resolved lists the upstream servers it forwards to.
pub const SYSTEMD_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";

/// Docker's fallback when no usable nameserver is left (Google's).
const FALLBACK_NAMESERVERS: &[&str] = &["8.8.8.8", "8.8.4.4"];

/// The resolv.conf a task starts from, given the host's `/etc/resolv.conf`
/// (`etc`) and systemd-resolved's upstream list (`systemd`, when it exists).
///
/// In the host's network namespace (`host_network`) the host's file works
/// as it is. Otherwise, when every nameserver of `etc` is a loopback one,
/// the upstream list replaces it; then loopback nameservers are dropped,
/// and with none left Docker's fallback servers are listed. Every other
/// line (search, options) is kept.
pub fn task_base(etc: &str, systemd: Option<&str>, host_network: bool) -> String {
    if host_network {
        return etc.to_string();
    }
    let servers: Vec<IpAddr> = nameservers(etc).collect();
    let base = match systemd {
        Some(upstream) if !servers.is_empty() && servers.iter().all(IpAddr::is_loopback) => {
            upstream
        }
        _ => etc,
    };
    let mut out = String::new();
    let mut kept = 0;
    for line in base.lines() {
        match nameserver(line) {
            Some(Some(ip)) if ip.is_loopback() => continue,
            Some(_) => kept += 1,
            None => {}
        }
        out.push_str(line);
        out.push('\n');
    }
    if kept == 0 {
        for s in FALLBACK_NAMESERVERS {
            out.push_str(&format!("nameserver {s}\n"));
        }
    }
    out
}

fn nameservers(text: &str) -> impl Iterator<Item = IpAddr> + '_ {
    text.lines().filter_map(nameserver).flatten()
}

/// None: not a nameserver line; Some(None): one whose address berth does
/// not read (kept as it is).
fn nameserver(line: &str) -> Option<Option<IpAddr>> {
    let mut words = line.split_whitespace();
    (words.next()? == "nameserver").then(|| {
        let addr = words.next()?;
        // An IPv6 address may carry a zone (fe80::1%eth0).
        addr.split('%').next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPSTREAM: &str = "# upstream\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nsearch corp\n";

    #[test]
    fn systemd_resolved_stub_gives_way_to_its_upstream_list() {
        let stub = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n";
        assert_eq!(task_base(stub, Some(UPSTREAM), false), UPSTREAM);
        // Any loopback-only list, IPv6's ::1 too.
        let local = "nameserver 127.0.0.1\nnameserver ::1\n";
        assert_eq!(task_base(local, Some(UPSTREAM), false), UPSTREAM);
    }

    #[test]
    fn usable_servers_stay_and_loopback_ones_go() {
        let plain = "nameserver 10.255.255.53\n";
        assert_eq!(task_base(plain, Some(UPSTREAM), false), plain);
        let mixed = "search lan\nnameserver 127.0.0.53\nnameserver 192.168.1.1\noptions ndots:2\n";
        assert_eq!(
            task_base(mixed, None, false),
            "search lan\nnameserver 192.168.1.1\noptions ndots:2\n"
        );
        let zoned = "nameserver fe80::1%eth0\n";
        assert_eq!(task_base(zoned, None, false), zoned);
    }

    #[test]
    fn nothing_usable_falls_back_as_docker_does() {
        let fallback = "nameserver 8.8.8.8\nnameserver 8.8.4.4\n";
        // No upstream list: the stub is dropped.
        assert_eq!(
            task_base("nameserver 127.0.0.53\nsearch lan\n", None, false),
            format!("search lan\n{fallback}")
        );
        // An upstream list of loopback servers only.
        assert_eq!(
            task_base(
                "nameserver 127.0.0.53\n",
                Some("nameserver 127.0.0.1\n"),
                false
            ),
            fallback
        );
        assert_eq!(task_base("", None, false), fallback);
    }

    #[test]
    fn the_hosts_network_uses_the_hosts_file() {
        let stub = "nameserver 127.0.0.53\n";
        assert_eq!(task_base(stub, Some(UPSTREAM), true), stub);
    }
}
