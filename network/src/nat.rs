//! Port mappings in the kernel: nftables DNAT from the host's own
//! addresses (127.0.0.1 included) to task addresses. One table per cluster
//! network, holding a map from (protocol, host port) to (address,
//! container port): adding or removing a mapping is one map element,
//! through the nft JSON interface (`nft -j -f -`), with no rule handles to
//! track. The table itself is written in nft's own syntax: nft 1.0.6's
//! JSON parser crashes on a dnat to a concatenated map (seen here). No
//! userspace proxy sits in the data path.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::{Error, Result, Subnet};

/// The table for the network on `bridge`.
pub fn table_name(bridge: &str) -> String {
    format!("berth_{}", bridge.replace(['-', '.'], "_"))
}

/// Feed `input` to `nft ARGS` (one atomic transaction).
fn run_nft(args: &[&str], input: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Netlink {
            context: "run nft (apt-get install nftables)".into(),
            reason: e.to_string(),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| Error::Netlink {
                context: "write to nft".into(),
                reason: e.to_string(),
            })?;
    }
    let out = child.wait_with_output().map_err(|e| Error::Netlink {
        context: "wait for nft".into(),
        reason: e.to_string(),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Netlink {
            context: "nft".into(),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
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
fn nft_script(script: &str) -> Result<()> {
    run_nft(&["-f", "-"], script)
}

/// Make the network's NAT table once (atomically: a second maker finds it
/// whole), and let the bridge route 127.0.0.1 to tasks.
pub fn ensure_table(bridge: &str, subnet: &Subnet) -> Result<()> {
    let t = table_name(bridge);
    // Replies to 127.0.0.1 must come back through the host: loopback-sourced
    // connections to the task network only are masqueraded.
    let script = format!(
        "create table ip {t}\n\
         add map ip {t} ports {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}\n\
         add chain ip {t} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}\n\
         add chain ip {t} output {{ type nat hook output priority -100; policy accept; }}\n\
         add chain ip {t} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}\n\
         add rule ip {t} prerouting fib daddr type local dnat ip to meta l4proto . th dport map @ports\n\
         add rule ip {t} output fib daddr type local dnat ip to meta l4proto . th dport map @ports\n\
         add rule ip {t} postrouting ip saddr 127.0.0.0/8 ip daddr {subnet} masquerade\n"
    );
    match nft_script(&script) {
        Ok(()) => {}
        Err(Error::Netlink { reason, .. }) if reason.contains("File exists") => {}
        Err(e) => return Err(e),
    }
    // DNAT to a task from 127.0.0.1 needs loopback sources routable on the
    // bridge (this bridge only; ip_forward is left as it is).
    let knob = format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet");
    std::fs::write(&knob, "1").map_err(|e| Error::Netlink {
        context: format!("write {knob}"),
        reason: e.to_string(),
    })
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

pub fn remove_mapping(bridge: &str, protocol: &str, host_port: u16) -> Result<()> {
    let table = table_name(bridge);
    match nft(vec![
        json!({ "delete": { "element": element(&table, protocol, host_port, None) } }),
    ]) {
        Err(Error::Netlink { reason, .. }) if reason.contains("No such file") => Ok(()),
        other => other,
    }
}

pub fn remove_table(bridge: &str) -> Result<()> {
    let table = table_name(bridge);
    match nft(vec![
        json!({ "delete": { "table": { "family": "ip", "name": table } } }),
    ]) {
        Err(Error::Netlink { reason, .. }) if reason.contains("No such file") => Ok(()),
        other => other,
    }
}
