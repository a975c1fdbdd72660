//! Docker's `fluentd` driver's events in Fluentd's Forward protocol
//! ("Message Mode"): a msgpack array `[tag, time, record]`, the record
//! `{container_id, container_name, source, log}` as Docker writes it
//! (`container_name` with Docker's leading `/`). The time is whole seconds,
//! or with `fluentd-sub-second-precision` an EventTime (msgpack ext type 0:
//! seconds and nanoseconds, 32-bit big-endian each). msgpack is written by
//! hand: four of its types are all an event needs.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Address, Identity};
use crate::logs::Stream;

/// Docker's `fluentd-retry-wait` default.
pub const DEFAULT_RETRY_WAIT_MS: u64 = 1000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FluentdConfig {
    pub address: Address,
    pub id: Identity,
    pub sub_second: bool,
    pub buffer: usize,
    pub retry_wait_ms: u64,
}

impl FluentdConfig {
    /// One event for `text` (its newline removed).
    pub fn frame(&self, stream: Stream, text: &str, time: SystemTime) -> Vec<u8> {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut out = Vec::with_capacity(text.len() + self.id.full_id.len() + 96);
        out.push(0x93);
        push_str(&mut out, &self.id.tag);
        if self.sub_second {
            out.extend_from_slice(&[0xd7, 0x00]);
            out.extend_from_slice(&(since.as_secs() as u32).to_be_bytes());
            out.extend_from_slice(&since.subsec_nanos().to_be_bytes());
        } else {
            push_uint(&mut out, since.as_secs());
        }
        out.push(0x84);
        push_str(&mut out, "container_id");
        push_str(&mut out, &self.id.full_id);
        push_str(&mut out, "container_name");
        push_str(&mut out, &format!("/{}", self.id.name));
        push_str(&mut out, "source");
        push_str(
            &mut out,
            match stream {
                Stream::Stdout => "stdout",
                Stream::Stderr => "stderr",
            },
        );
        push_str(&mut out, "log");
        push_str(&mut out, text);
        out
    }
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

fn push_uint(out: &mut Vec<u8>, n: u64) {
    if n < 0x80 {
        out.push(n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[0xcc, n as u8]);
    } else if n <= 0xffff {
        out.push(0xcd);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(0xce);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config(sub_second: bool) -> FluentdConfig {
        FluentdConfig {
            address: Address::Tcp("localhost:24224".into()),
            id: Identity {
                full_id: "0123456789abcdef-app".into(),
                name: "app".into(),
                image: "busybox".into(),
                tag: "web".into(),
            },
            sub_second,
            buffer: 1024,
            retry_wait_ms: DEFAULT_RETRY_WAIT_MS,
        }
    }

    #[test]
    fn events_are_forward_messages() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        let e = config(false).frame(Stream::Stderr, "hi", t);
        let mut want = vec![0x93, 0xa3, b'w', b'e', b'b', 0xce];
        want.extend_from_slice(&1_700_000_000u32.to_be_bytes());
        want.push(0x84);
        want.push(0xa0 | 12);
        want.extend_from_slice(b"container_id");
        want.push(0xa0 | 20);
        want.extend_from_slice(b"0123456789abcdef-app");
        want.push(0xa0 | 14);
        want.extend_from_slice(b"container_name");
        want.extend_from_slice(&[0xa4, b'/', b'a', b'p', b'p']);
        want.extend_from_slice(&[0xa6]);
        want.extend_from_slice(b"source");
        want.extend_from_slice(&[0xa6]);
        want.extend_from_slice(b"stderr");
        want.extend_from_slice(&[0xa3, b'l', b'o', b'g', 0xa2, b'h', b'i']);
        assert_eq!(e, want);
        let e = config(true).frame(Stream::Stdout, "hi", t);
        let mut time = vec![0xd7, 0x00];
        time.extend_from_slice(&1_700_000_000u32.to_be_bytes());
        time.extend_from_slice(&5u32.to_be_bytes());
        assert_eq!(&e[5..15], &time[..]);
    }

    #[test]
    fn strings_and_ints_take_their_shortest_forms() {
        let mut out = Vec::new();
        push_str(&mut out, &"x".repeat(40));
        assert_eq!(&out[..2], &[0xd9, 40]);
        out.clear();
        push_str(&mut out, &"x".repeat(300));
        assert_eq!(&out[..3], &[0xda, 0x01, 0x2c]);
        out.clear();
        push_str(&mut out, &"x".repeat(70_000));
        assert_eq!(out[0], 0xdb);
        for (n, first) in [(5u64, 5u8), (200, 0xcc), (300, 0xcd), (1 << 33, 0xcf)] {
            out.clear();
            push_uint(&mut out, n);
            assert_eq!(out[0], first, "{n}");
        }
    }
}
