//! The metadata endpoint's redirect written straight to nf_tables over
//! netlink, without running `nft`: one batch of table, rule flush, chain
//! and rule, as `nft -f` would send for the script in
//! [`crate::nat::redirect_local_port_here`]. Why: that runs once per task on
//! the way to RUNNING, and forking `nft` in the task's namespace took
//! 3–17 ms there (parse, cache, exit), against well under 1 ms for the
//! batch itself. Building the messages is pure (unit-tested); sending
//! them is one socket in the calling thread's network namespace.

use std::net::Ipv4Addr;

use crate::netlink_msg::{exchange, header, Attrs, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST};

// linux/netlink.h, linux/netfilter/nfnetlink.h, nf_tables.h, netfilter.h.
const NLM_F_APPEND: u16 = 0x800;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
const NFPROTO_IPV4: u8 = 2;
const NF_INET_LOCAL_OUT: u32 = 3;
const NF_ACCEPT: u32 = 1;
const NFT_REG_1: u32 = 1;
const NFT_REG_2: u32 = 2;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_META_L4PROTO: u32 = 16;
const NFT_CMP_EQ: u32 = 0;
const NFT_NAT_DNAT: u32 = 1;

/// One expression of a rule: its name and its attributes.
fn expr(name: &str, data: &Attrs) -> Attrs {
    let mut e = Attrs::new();
    e.string(1, name).nested(2, data); // NFTA_EXPR_NAME, NFTA_EXPR_DATA
    e
}

/// NFTA_DATA_VALUE inside a nest.
fn value(bytes: &[u8]) -> Attrs {
    let mut v = Attrs::new();
    v.raw(1, bytes);
    v
}

fn payload(base: u32, offset: u32, len: u32) -> Attrs {
    let mut p = Attrs::new();
    p.be32(1, NFT_REG_1)
        .be32(2, base)
        .be32(3, offset)
        .be32(4, len);
    expr("payload", &p)
}

fn cmp_eq(bytes: &[u8]) -> Attrs {
    let mut c = Attrs::new();
    c.be32(1, NFT_REG_1)
        .be32(2, NFT_CMP_EQ)
        .nested(3, &value(bytes));
    expr("cmp", &c)
}

fn immediate(reg: u32, bytes: &[u8]) -> Attrs {
    let mut i = Attrs::new();
    i.be32(1, reg).nested(2, &value(bytes));
    expr("immediate", &i)
}

/// `ip daddr A tcp dport FROM dnat to A:TO`, as nft compiles it.
fn rule_expressions(address: Ipv4Addr, from: u16, to: u16) -> Attrs {
    let mut meta = Attrs::new();
    meta.be32(1, NFT_REG_1).be32(2, NFT_META_L4PROTO); // DREG, KEY
    let mut nat = Attrs::new();
    nat.be32(1, NFT_NAT_DNAT)
        .be32(2, u32::from(NFPROTO_IPV4))
        .be32(3, NFT_REG_1) // REG_ADDR_MIN
        .be32(5, NFT_REG_2); // REG_PROTO_MIN
    let exprs = [
        payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 4),
        cmp_eq(&address.octets()),
        expr("meta", &meta),
        cmp_eq(&[libc::IPPROTO_TCP as u8]),
        payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2),
        cmp_eq(&from.to_be_bytes()),
        immediate(NFT_REG_1, &address.octets()),
        immediate(NFT_REG_2, &to.to_be_bytes()),
        expr("nat", &nat),
    ];
    let mut list = Attrs::new();
    for e in &exprs {
        list.nested(1, e); // NFTA_LIST_ELEM
    }
    list
}

/// A netlink message: header, nfgenmsg, attributes.
fn message(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, family: u8, attrs: &Attrs) {
    header(out, kind, flags, seq, 4 + attrs.0.len());
    // nfgenmsg: family, version, resource id (the subsystem, for batches).
    out.push(family);
    out.push(0);
    let res_id = if kind == NFNL_MSG_BATCH_BEGIN || kind == NFNL_MSG_BATCH_END {
        NFNL_SUBSYS_NFTABLES
    } else {
        0
    };
    out.extend_from_slice(&res_id.to_be_bytes());
    out.extend_from_slice(&attrs.0);
}

/// The batch that makes `table` hold only the redirect; the sequence
/// numbers `first..first+4` are the four that the kernel acknowledges.
pub(crate) fn redirect_batch(
    table: &str,
    address: Ipv4Addr,
    from: u16,
    to: u16,
    first: u32,
) -> Vec<u8> {
    let nft = |msg: u16| (NFNL_SUBSYS_NFTABLES << 8) | msg;
    let ack = NLM_F_REQUEST | NLM_F_ACK;
    let mut out = Vec::new();
    message(
        &mut out,
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        first - 1,
        0,
        &Attrs::new(),
    );
    let mut t = Attrs::new();
    t.string(1, table).be32(2, 0); // NFTA_TABLE_NAME, _FLAGS
    message(
        &mut out,
        nft(NFT_MSG_NEWTABLE),
        ack | NLM_F_CREATE,
        first,
        NFPROTO_IPV4,
        &t,
    );
    // Made again whole when it exists: its rules flushed first.
    let mut flush = Attrs::new();
    flush.string(1, table); // NFTA_RULE_TABLE
    message(
        &mut out,
        nft(NFT_MSG_DELRULE),
        ack,
        first + 1,
        NFPROTO_IPV4,
        &flush,
    );
    let mut hook = Attrs::new();
    hook.be32(1, NF_INET_LOCAL_OUT).be32(2, (-100i32) as u32); // HOOKNUM, PRIORITY
    let mut c = Attrs::new();
    c.string(1, table) // NFTA_CHAIN_TABLE
        .string(3, "output") // NFTA_CHAIN_NAME
        .nested(4, &hook) // NFTA_CHAIN_HOOK
        .be32(5, NF_ACCEPT) // NFTA_CHAIN_POLICY
        .string(7, "nat"); // NFTA_CHAIN_TYPE
    message(
        &mut out,
        nft(NFT_MSG_NEWCHAIN),
        ack | NLM_F_CREATE,
        first + 2,
        NFPROTO_IPV4,
        &c,
    );
    let mut r = Attrs::new();
    r.string(1, table) // NFTA_RULE_TABLE
        .string(2, "output") // NFTA_RULE_CHAIN
        .nested(4, &rule_expressions(address, from, to)); // NFTA_RULE_EXPRESSIONS
    message(
        &mut out,
        nft(NFT_MSG_NEWRULE),
        ack | NLM_F_CREATE | NLM_F_APPEND,
        first + 3,
        NFPROTO_IPV4,
        &r,
    );
    message(
        &mut out,
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        first + 4,
        0,
        &Attrs::new(),
    );
    out
}

/// Send the redirect batch on a netfilter socket of the calling thread's
/// network namespace and wait for the kernel's four answers.
pub(crate) fn redirect(table: &str, address: Ipv4Addr, from: u16, to: u16) -> std::io::Result<()> {
    let first = 1;
    let batch = redirect_batch(table, address, from, to, first);
    match exchange(libc::NETLINK_NETFILTER, &batch, first..first + 4)? {
        0 => Ok(()),
        errno => Err(std::io::Error::from_raw_os_error(errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_is_five_messages_and_four_asked_for_an_ack() {
        let batch = redirect_batch("t", Ipv4Addr::new(169, 254, 170, 2), 80, 51679, 1);
        let mut at = 0;
        let mut kinds = Vec::new();
        while at < batch.len() {
            let len = u32::from_ne_bytes(batch[at..at + 4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes(batch[at + 4..at + 6].try_into().unwrap());
            let flags = u16::from_ne_bytes(batch[at + 6..at + 8].try_into().unwrap());
            assert!(len.is_multiple_of(4), "aligned");
            kinds.push((kind, flags & NLM_F_ACK != 0));
            at += len;
        }
        assert_eq!(at, batch.len());
        assert_eq!(
            kinds,
            vec![
                (NFNL_MSG_BATCH_BEGIN, false),
                (0x0a00, true),
                (0x0a08, true),
                (0x0a03, true),
                (0x0a06, true),
                (NFNL_MSG_BATCH_END, false),
            ]
        );
        // The rule carries the address, both ports and the nat expression.
        let text = batch.windows(3).any(|w| w == b"nat");
        assert!(text);
        assert!(batch.windows(4).any(|w| w == [169, 254, 170, 2]));
        assert!(batch.windows(2).any(|w| w == 51679u16.to_be_bytes()));
    }
}
