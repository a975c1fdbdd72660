//! An address on `lo` of the calling thread's network namespace (the task
//! metadata endpoint's 169.254.170.2/32), as one `RTM_NEWADDR` message on
//! a route netlink socket. Why not rtnetlink's handle: that is a tokio
//! runtime and a connection made for one message, on every task's way to
//! RUNNING. Building the message is pure (unit-tested); sending it is
//! [`crate::netlink_msg::exchange`].

use std::net::Ipv4Addr;

use crate::{Error, Result};

use crate::netlink_msg::{
    exchange, header, Attrs, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};

// linux/rtnetlink.h, linux/if_addr.h.
const RTM_NEWADDR: u16 = 20;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const AF_INET: u8 = 2;

/// The message that adds `address`/32 to the link `index` (scope
/// universe, as `ip addr add` gives it), acknowledged as `seq`.
fn new_address(index: u32, address: Ipv4Addr, seq: u32) -> Vec<u8> {
    // ifaddrmsg: family, prefix length, flags, scope, the link's index.
    let mut body = vec![AF_INET, 32, 0, 0];
    body.extend_from_slice(&index.to_ne_bytes());
    let mut attrs = Attrs::new();
    attrs
        .raw(IFA_LOCAL, &address.octets())
        .raw(IFA_ADDRESS, &address.octets());
    body.extend_from_slice(&attrs.0);
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    let mut out = Vec::with_capacity(16 + body.len());
    header(&mut out, RTM_NEWADDR, flags, seq, body.len());
    out.extend(body);
    out
}

/// Give `lo` of the calling thread's network namespace the address
/// `address/32`. Already there (a supervisor that adopted its task): fine.
pub fn add_local_address_here(address: Ipv4Addr) -> Result<()> {
    let fail = |reason: String| Error::Netlink {
        context: format!("address {address}/32 on lo"),
        reason,
    };
    // SAFETY: a NUL-terminated name; if_nametoindex only reads it.
    let index = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
    if index == 0 {
        return Err(fail(format!(
            "no loopback: {}",
            std::io::Error::last_os_error()
        )));
    }
    let seq = 1;
    match exchange(
        libc::NETLINK_ROUTE,
        &new_address(index, address, seq),
        seq..seq + 1,
    ) {
        Ok(0) | Ok(libc::EEXIST) => Ok(()),
        Ok(errno) => Err(fail(std::io::Error::from_raw_os_error(errno).to_string())),
        Err(e) => Err(fail(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_a_header_an_ifaddrmsg_and_two_addresses() {
        let msg = new_address(1, Ipv4Addr::new(169, 254, 170, 2), 7);
        assert_eq!(msg.len(), 16 + 8 + 8 + 8);
        assert_eq!(u32::from_ne_bytes(msg[0..4].try_into().unwrap()), 40);
        assert_eq!(u16::from_ne_bytes([msg[4], msg[5]]), RTM_NEWADDR);
        assert_eq!(u16::from_ne_bytes([msg[6], msg[7]]), 0x605);
        assert_eq!(u32::from_ne_bytes(msg[8..12].try_into().unwrap()), 7);
        // family, prefix length, flags, scope; then the link's index.
        assert_eq!(&msg[16..20], &[AF_INET, 32, 0, 0]);
        assert_eq!(u32::from_ne_bytes(msg[20..24].try_into().unwrap()), 1);
        let attr = |kind: u16| {
            let mut a = 8u16.to_ne_bytes().to_vec();
            a.extend_from_slice(&kind.to_ne_bytes());
            a.extend_from_slice(&[169, 254, 170, 2]);
            a
        };
        assert_eq!(msg[24..32], attr(IFA_LOCAL)[..]);
        assert_eq!(msg[32..40], attr(IFA_ADDRESS)[..]);
    }
}
