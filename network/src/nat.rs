//! Port mappings in the kernel: nftables DNAT from the host's own
//! addresses (127.0.0.1 included) to task addresses. One table per cluster
//! network, holding a map from (protocol, host port) to (address,
//! container port): adding or removing a mapping is one map element,
//! with no rule handles to track. Mappings are added through the nft JSON
//! interface (`nft -j -f -`). The table is written in nft's own syntax, as
//! nft 1.0.6's JSON parser crashes on a dnat to a concatenated map (seen
//! here), and so are removals, whose echo in that syntax tells of the
//! commit before nft's slow exit. No userspace proxy sits in the data path.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::{Error, Result, Subnet};

/// The table for the network on `bridge` (see [`crate::tables`]).
pub fn table_name(bridge: &str) -> String {
    crate::tables::network_table(bridge)
}

/// Feed `input` to `nft ARGS` (one atomic transaction).
///
/// With `--echo`, a script that adds something makes nft print the new
/// ruleset generation as soon as the kernel has committed it. nft then
/// closes its netlink socket, and after a deletion that close waits for the
/// kernel to free what was deleted after an RCU grace period (~10 ms here).
/// The change is in force at the echo, so the caller goes on then and a
/// thread reaps nft.
pub(crate) fn run_nft(args: &[&str], input: &str) -> Result<()> {
    use std::io::Read;
    let fail = |context: &str, e: std::io::Error| Error::Netlink {
        context: context.into(),
        reason: e.to_string(),
    };
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail("run nft (apt-get install nftables)", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| fail("write to nft", e))?;
    }
    let mut first = [0u8; 1];
    let echoed = match child.stdout.as_mut() {
        Some(out) => out.read(&mut first).map_err(|e| fail("read from nft", e))? > 0,
        None => false,
    };
    if echoed {
        std::thread::spawn(move || child.wait_with_output());
        return Ok(());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail("wait for nft", e))?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if out.status.success() && stderr.is_empty() {
        Ok(())
    } else {
        Err(Error::Netlink {
            context: "nft".into(),
            reason: stderr,
        })
    }
}

/// JSON commands, through nft's JSON interface.
fn nft(commands: Vec<Value>) -> Result<()> {
    run_nft(
        &["-j", "-f", "-"],
        &json!({ "nftables": commands }).to_string(),
    )
}

/// An nft script, in nft's own syntax.
pub(crate) fn nft_script(script: &str) -> Result<()> {
    run_nft(&["-f", "-"], script)
}

/// Make the network's NAT table once (atomically: a second maker finds it
/// whole), and let the bridge carry what the mappings need.
///
/// Besides DNAT from the host's addresses, the table makes a mapped port
/// work from the tasks themselves ("hairpin"): a task connecting to the
/// gateway's (or any host address's) host port is sent back out the bridge
/// to the target task, masqueraded so that the reply comes back through the
/// host. That is routing from the bridge to itself, so the bridge (only)
/// forwards; the host's `ip_forward` is left as it is, and the forward
/// chain keeps the bridge's traffic on the bridge: a berth network is
/// host-only, but for its other hosts' slices when it spans hosts (the
/// `cross_host` chain, see [`crate::routes`]).
///
/// The bridge routes 127.0.0.1 sources (`route_localnet`, for DNAT from
/// the host's loopback), which would also let a task send to the host's
/// 127.0.0.0/8 (CVE-2020-8558): the input chain drops what arrives from
/// the bridge for 127.0.0.0/8 unless it was DNATed or belongs to a
/// connection the host made, as kube-proxy does.
pub fn ensure_table(bridge: &str, subnet: &Subnet) -> Result<()> {
    let t = table_name(bridge);
    let script = format!(
        "create table ip {t}\n\
         add map ip {t} ports {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}\n\
         add chain ip {t} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}\n\
         add chain ip {t} output {{ type nat hook output priority -100; policy accept; }}\n\
         add chain ip {t} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}\n\
         add chain ip {t} forward {{ type filter hook forward priority filter; policy accept; }}\n\
         add chain ip {t} input {{ type filter hook input priority filter; policy accept; }}\n\
         add rule ip {t} prerouting fib daddr type local dnat ip to meta l4proto . th dport map @ports\n\
         add rule ip {t} output fib daddr type local dnat ip to meta l4proto . th dport map @ports\n\
         add rule ip {t} postrouting ip saddr 127.0.0.0/8 ip daddr {subnet} masquerade\n\
         add rule ip {t} postrouting ip saddr {subnet} ip daddr {subnet} ct status dnat masquerade\n\
         add chain ip {t} {cross}\n\
         add rule ip {t} forward iifname \"{bridge}\" oifname != \"{bridge}\" jump {cross}\n\
         add rule ip {t} forward iifname \"{bridge}\" oifname != \"{bridge}\" drop\n\
         add rule ip {t} input {guard}\n",
        guard = loopback_guard(&format!("\"{bridge}\"")),
        cross = cross_chain(),
    );
    match nft_script(&script) {
        Ok(()) => {}
        Err(Error::Netlink { reason, .. }) if reason.contains("File exists") => {}
        Err(e) => return Err(e),
    }
    route_to_tasks(bridge)
}

/// The chain of a network's table that the forward chain jumps to for
/// what leaves the bridge, before dropping it: empty (all dropped) on one
/// host; [`crate::routes::open_underlay`] fills it with the one accept for
/// the network's other slices, through the underlay link.
pub(crate) fn cross_chain() -> &'static str {
    "cross_host"
}

/// The rule that keeps what arrives on the interfaces `iifname` (an nft
/// expression: a quoted name or a set of them) from the host's
/// 127.0.0.0/8: dropped unless conntrack DNATed it (a port mapping or load
/// balancer listening on 127.0.0.1) or it belongs to a connection already
/// made (replies to the host). `ct status != dnat` would compare the whole
/// status word, hence the masks.
pub(crate) fn loopback_guard(iifname: &str) -> String {
    format!(
        "iifname {iifname} ip daddr 127.0.0.0/8 ct status & dnat == 0 \
         ct state & (established | related) == 0 drop"
    )
}

/// Let DNAT reach tasks on `bridge`: 127.0.0.1 sources must be routable
/// on it (DNAT from the host's loopback), and it forwards (to itself only)
/// for the hairpin.
pub(crate) fn route_to_tasks(bridge: &str) -> Result<()> {
    for knob in ["route_localnet", "forwarding"] {
        let path = format!("/proc/sys/net/ipv4/conf/{bridge}/{knob}");
        std::fs::write(&path, "1").map_err(|e| Error::Netlink {
            context: format!("write {path}"),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

fn element(table: &str, protocol: &str, host_port: u16, data: Option<(&str, u16)>) -> Value {
    let key = json!({ "concat": [protocol, host_port] });
    let elem = match data {
        Some((addr, port)) => json!([[key, { "concat": [addr, port] }]]),
        None => json!([key]),
    };
    json!({ "family": "ip", "table": table, "name": "ports", "elem": elem })
}

/// Send `protocol` traffic for the host's `host_port` to `address:port`.
pub fn add_mapping(
    bridge: &str,
    protocol: &str,
    host_port: u16,
    address: &str,
    port: u16,
) -> Result<()> {
    let table = table_name(bridge);
    nft(vec![
        json!({ "add": { "element": element(&table, protocol, host_port, Some((address, port))) } }),
    ])
}

/// Stop sending the host ports `mappings` (protocol, port) anywhere, in one
/// transaction. Ports already unmapped are no error.
///
/// In nft's own syntax, led by a no-op `add table`, so that `--echo`
/// answers at the commit (see `run_nft`); the table is never made here, as
/// a failed deletion aborts the whole transaction.
pub fn remove_mappings(bridge: &str, mappings: &[(&str, u16)]) -> Result<()> {
    let table = table_name(bridge);
    let mut keys = Vec::new();
    for (protocol, port) in mappings {
        if !matches!(*protocol, "tcp" | "udp") {
            return Err(Error::Netlink {
                context: format!("unmap port {port}"),
                reason: format!("protocol {protocol:?} is not tcp or udp"),
            });
        }
        keys.push(format!("{protocol} . {port}"));
    }
    let delete = |keys: &[String]| {
        let script = format!(
            "add table ip {table}\ndelete element ip {table} ports {{ {} }}\n",
            keys.join(", ")
        );
        match run_nft(&["--echo", "-f", "-"], &script) {
            Err(Error::Netlink { reason, .. }) if reason.contains("No such file") => Ok(false),
            other => other.map(|()| true),
        }
    };
    if keys.is_empty() || delete(&keys)? {
        return Ok(());
    }
    // One was gone already, which fails the whole batch: one by one.
    for key in &keys {
        delete(std::slice::from_ref(key))?;
    }
    Ok(())
}

/// Remove the network's table, and the one an older berth named after the
/// bridge (`berth_<bridge>` with `-` and `.` made `_`) when that name is
/// no table of today's naming; gone already is no error.
pub fn remove_table(bridge: &str) -> Result<()> {
    let legacy = crate::tables::legacy_table("berth_", bridge);
    for table in std::iter::once(table_name(bridge)).chain(legacy) {
        match nft(vec![
            json!({ "delete": { "table": { "family": "ip", "name": table } } }),
        ]) {
            Err(Error::Netlink { reason, .. }) if reason.contains("No such file") => {}
            other => other?,
        }
    }
    Ok(())
}

/// The host ports (protocol, port) the network's table maps now; none
/// when it has no table.
pub fn mappings(bridge: &str) -> Result<Vec<(String, u16)>> {
    let table = table_name(bridge);
    let out = Command::new("nft")
        .args(["-j", "list", "map", "ip", &table, "ports"])
        .output()
        .map_err(|e| Error::Netlink {
            context: "run nft (apt-get install nftables)".into(),
            reason: e.to_string(),
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("No such file") {
            return Ok(Vec::new());
        }
        return Err(Error::Netlink {
            context: format!("list the port map of {table}"),
            reason: stderr.trim().to_string(),
        });
    }
    let listed: Value = serde_json::from_slice(&out.stdout).map_err(|e| Error::Netlink {
        context: format!("read the port map of {table}"),
        reason: e.to_string(),
    })?;
    Ok(map_keys(&listed))
}

/// The (protocol, port) keys of the ports map in `nft -j list map` output.
fn map_keys(listed: &Value) -> Vec<(String, u16)> {
    listed["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["map"]["elem"].as_array())
        .flatten()
        .filter_map(|elem| {
            let key = elem.get(0)?.get("concat")?;
            let protocol = key.get(0)?.as_str()?.to_string();
            let port = u16::try_from(key.get(1)?.as_u64()?).ok()?;
            Some((protocol, port))
        })
        .collect()
}

/// Inside the calling thread's network namespace, send what its processes
/// connect to at `address:from` to `address:to` (nftables DNAT in its own
/// `output` chain). The task metadata endpoint listens on 169.254.170.2:51679 and
/// is reached at :80 so that a container may still bind 0.0.0.0:80 there.
/// Made again whole when it exists (a supervisor adopting its task).
pub fn redirect_local_port_here(address: Ipv4Addr, from: u16, to: u16) -> Result<()> {
    let t = crate::tables::LOCAL_REDIRECT_TABLE;
    // Straight to nf_tables (no nft to fork on the task's way to RUNNING);
    // the nft script where that fails.
    match crate::nft_netlink::redirect(t, address, from, to) {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::debug!("the metadata redirect over netlink: {e}; running nft");
            nft_script(&format!(
                "add table ip {t}\n\
                 flush table ip {t}\n\
                 add chain ip {t} output {{ type nat hook output priority -100; policy accept; }}\n\
                 add rule ip {t} output ip daddr {address} tcp dport {from} dnat to {address}:{to}\n"
            ))
        }
    }
}

#[cfg(test)]
mod mapping_tests {
    use super::*;

    #[test]
    fn map_keys_reads_nft_json() {
        let listed = json!({ "nftables": [
            { "metainfo": { "json_schema_version": 1 } },
            { "map": { "family": "ip", "name": "ports", "table": "berth_b",
                "elem": [
                    [{ "concat": ["tcp", 40205] }, { "concat": ["10.1.2.3", 80] }],
                    [{ "concat": ["udp", 53] }, { "concat": ["10.1.2.4", 53] }]
                ] } }
        ] });
        assert_eq!(
            map_keys(&listed),
            vec![("tcp".to_string(), 40205), ("udp".to_string(), 53)]
        );
        assert_eq!(map_keys(&json!({ "nftables": [] })), vec![]);
    }
}
