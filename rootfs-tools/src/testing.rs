//! Layers made by hand for tests, hostile ones included: names are written
//! into the tar header raw, as an attacker would, not checked as the tar
//! crate's builder checks them.

use std::io::Write;

/// One entry: (kind, name, link target, data).
pub type Entry<'a> = (tar::EntryType, &'a str, &'a str, &'a [u8]);

pub fn tar_of(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (kind, name, link, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(*kind);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        b.append(&h, *data).expect("append tar entry");
    }
    b.into_inner().expect("finish tar")
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

/// A header with `name` written raw (up to 100 bytes), declaring `size`
/// bytes of data whether or not they follow.
pub fn header(kind: tar::EntryType, name: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    h.set_size(size);
    h.set_mtime(1_600_000_000);
    let old = h.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_cksum();
    h
}

/// A device node (`kind` Block or Char) with the given mode.
pub fn device(kind: tar::EntryType, name: &str, major: u32, minor: u32, mode: u32) -> tar::Header {
    let mut h = header(kind, name, 0);
    h.set_mode(mode);
    h.set_device_major(major).expect("major");
    h.set_device_minor(minor).expect("minor");
    h.set_cksum();
    h
}

/// A regular file with `mode` (setuid bits included) and owner.
pub fn file(name: &str, data: &[u8], mode: u32, uid: u64) -> tar::Header {
    let mut h = header(tar::EntryType::Regular, name, data.len() as u64);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_cksum();
    h
}

/// A tar of prepared headers and their data.
pub fn archive(parts: &[(tar::Header, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (h, data) in parts {
        b.append(h, *data).expect("append tar entry");
    }
    b.into_inner().expect("finish tar")
}

/// The data of a PAX extended header: `len key=value\n` records.
pub fn pax_records(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let body = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = body + body.to_string().len();
        if len.to_string().len() != (len - body) {
            len += 1;
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// `n` empty regular files.
pub fn many_files(n: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..n {
        b.append(
            &header(tar::EntryType::Regular, &format!("f{i}"), 0),
            &[][..],
        )
        .expect("append tar entry");
    }
    b.into_inner().expect("finish tar")
}

/// A stream that is a tar header declaring `declared` bytes of a GNU long
/// name (or PAX header, or file) followed by zeros without end: what a
/// small compressed layer expands to. Counts what was read from it.
pub struct Bomb {
    head: std::io::Cursor<Vec<u8>>,
    pub pulled: std::rc::Rc<std::cell::Cell<u64>>,
}

impl Bomb {
    pub fn new(kind: tar::EntryType, declared: u64) -> Self {
        let name = match kind {
            tar::EntryType::GNULongName | tar::EntryType::GNULongLink => "././@LongLink",
            _ => "bomb",
        };
        Self {
            head: std::io::Cursor::new(header(kind, name, declared).as_bytes().to_vec()),
            pulled: Default::default(),
        }
    }
}

impl std::io::Read for Bomb {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = match self.head.read(buf)? {
            0 => {
                buf.fill(0);
                buf.len()
            }
            n => n,
        };
        self.pulled.set(self.pulled.get() + n as u64);
        Ok(n)
    }
}
