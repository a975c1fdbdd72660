//! Raw netlink messages, for the few berth sends on a task's way to
//! RUNNING without an rtnetlink handle (a tokio runtime and a connection
//! for one message): the header, attributes, and one exchange on a socket
//! of the calling thread's network namespace, waiting for the kernel's
//! acknowledgements. Used by [`crate::nft_netlink`] (the metadata
//! redirect) and [`crate::local_address`] (its address).

// linux/netlink.h.
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
pub(crate) const NLMSG_ERROR: u16 = 0x2;
const NLA_F_NESTED: u16 = 0x8000;

/// A netlink header for a message whose payload (after the header) is
/// `payload` bytes long; the port id is 0, the kernel's.
pub(crate) fn header(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, payload: usize) {
    out.extend_from_slice(&((16 + payload) as u32).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
}

/// Netlink attributes being written into a buffer (4-byte aligned).
pub(crate) struct Attrs(pub(crate) Vec<u8>);

impl Attrs {
    pub(crate) fn new() -> Self {
        Self(Vec::new())
    }

    pub(crate) fn raw(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = 4 + value.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.pad();
        self
    }

    fn pad(&mut self) {
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
    }

    pub(crate) fn string(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        self.raw(kind, &bytes)
    }

    /// nf_tables numbers are big-endian.
    pub(crate) fn be32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.raw(kind, &value.to_be_bytes())
    }

    pub(crate) fn nested(&mut self, kind: u16, inner: &Attrs) -> &mut Self {
        self.raw(kind | NLA_F_NESTED, &inner.0)
    }
}

/// The errors in the kernel's answers (NLMSG_ERROR messages): each
/// acknowledged sequence number, with its errno (0: done).
fn acks(buf: &[u8]) -> Vec<(u32, i32)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 16 <= buf.len() {
        let word = |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let len = word(at) as usize;
        if len < 16 || at + len > buf.len() {
            break;
        }
        let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
        if kind == NLMSG_ERROR && len >= 20 + 16 {
            let errno = word(at + 16) as i32;
            // The original header follows: its sequence number.
            let seq = word(at + 20 + 8);
            out.push((seq, -errno));
        }
        at += (len + 3) & !3;
    }
    out
}

/// Send `messages` on a netlink socket of `protocol` in the calling
/// thread's network namespace and wait until the kernel has acknowledged
/// each sequence number of `acked` (0: done), or refused one: the first
/// errno other than 0 is the answer then, as a batch that failed is not
/// acknowledged further.
pub(crate) fn exchange(
    protocol: libc::c_int,
    messages: &[u8],
    acked: std::ops::Range<u32>,
) -> std::io::Result<i32> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let mut left = acked.len();
    // SAFETY: plain socket/send/recv calls on a socket this function owns,
    // with buffers of the lengths passed.
    unsafe {
        let raw = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            protocol,
        );
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let sock = OwnedFd::from_raw_fd(raw);
        let mut dest: libc::sockaddr_nl = std::mem::zeroed();
        dest.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let sent = libc::sendto(
            sock.as_raw_fd(),
            messages.as_ptr().cast(),
            messages.len(),
            0,
            (&dest as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        );
        if sent < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 8192];
        while left > 0 {
            let n = libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0);
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for (seq, errno) in acks(&buf[..n as usize]) {
                if errno != 0 {
                    return Ok(errno);
                }
                if acked.contains(&seq) {
                    left -= 1;
                }
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_reads_errors_and_their_sequence_numbers() {
        let mut buf = Vec::new();
        for (seq, errno) in [(1u32, 0i32), (2, -2)] {
            buf.extend_from_slice(&36u32.to_ne_bytes());
            buf.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            buf.extend_from_slice(&0u16.to_ne_bytes());
            buf.extend_from_slice(&seq.to_ne_bytes());
            buf.extend_from_slice(&0u32.to_ne_bytes());
            buf.extend_from_slice(&errno.to_ne_bytes());
            // The original header: length, type, flags, seq, pid.
            buf.extend_from_slice(&0u32.to_ne_bytes());
            buf.extend_from_slice(&0u32.to_ne_bytes());
            buf.extend_from_slice(&seq.to_ne_bytes());
            buf.extend_from_slice(&0u32.to_ne_bytes());
        }
        assert_eq!(acks(&buf), vec![(1, 0), (2, 2)]);
    }
}
