//! Random bytes from the kernel's generator, and hex: berth's ids (host,
//! task, deployment), nonces and keys are made here.

use std::io::Read;

/// `N` bytes from the kernel's generator.
pub fn bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh id: 16 random bytes as 32 hex digits.
pub fn hex32() -> std::io::Result<String> {
    bytes::<16>().map(|b| hex(&b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_fresh_hex() {
        let (a, b) = (super::hex32().unwrap(), super::hex32().unwrap());
        assert_eq!(a.len(), 32);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert_eq!(super::hex(&[0, 0xab]), "00ab");
    }
}
