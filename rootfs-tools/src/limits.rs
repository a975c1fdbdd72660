//! Bounds on unpacking one layer, so that a small compressed layer can fill
//! neither the disk nor the unpacker's memory. The defaults are generous;
//! each can be changed through the environment of the berth process that
//! unpacks (the CLI or a task's supervisor).

use crate::error::{Error, Result};

/// Uncompressed bytes of one layer's tar stream, headers included.
pub const MAX_LAYER_BYTES_ENV: &str = "BERTH_MAX_LAYER_BYTES";
/// Entries of one layer (files, directories, links…).
pub const MAX_LAYER_ENTRIES_ENV: &str = "BERTH_MAX_LAYER_ENTRIES";
/// Bytes of an entry's path or link target.
pub const MAX_PATH_BYTES_ENV: &str = "BERTH_MAX_PATH_BYTES";
/// Bytes of one PAX extended header (xattrs, long names), held in memory.
pub const MAX_PAX_BYTES_ENV: &str = "BERTH_MAX_PAX_BYTES";

/// Linux's longest file name (NAME_MAX): not a setting, the kernel's limit.
pub const MAX_NAME_BYTES: usize = 255;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Uncompressed bytes of the tar stream (32 GiB).
    pub max_layer_bytes: u64,
    /// Entries, not counting the GNU and PAX headers that describe the next
    /// one (1,000,000).
    pub max_entries: u64,
    /// Bytes of a path or link target (4096, Linux's PATH_MAX).
    pub max_path_bytes: usize,
    /// Bytes of one PAX extended header (1 MiB): a file's xattrs and names.
    pub max_pax_bytes: u64,
    /// Bytes of directory paths held until the end, when their modes and
    /// times are set (256 MiB).
    pub max_dir_bytes: usize,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        Self {
            max_layer_bytes: 32 << 30,
            max_entries: 1_000_000,
            max_path_bytes: 4096,
            max_pax_bytes: 1 << 20,
            max_dir_bytes: 256 << 20,
        }
    }
}

impl UnpackLimits {
    /// The defaults, changed by whichever of the `BERTH_MAX_*` variables are
    /// set. A variable that is not a positive whole number is an error that
    /// names it.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any source of variables.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut limits = Self::default();
        let read = |name: &'static str| -> Result<Option<u64>> {
            let Some(value) = get(name) else {
                return Ok(None);
            };
            match value.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(Error::InvalidSetting {
                    name,
                    value,
                    reason: "expected a positive whole number",
                }),
            }
        };
        if let Some(n) = read(MAX_LAYER_BYTES_ENV)? {
            limits.max_layer_bytes = n;
        }
        if let Some(n) = read(MAX_LAYER_ENTRIES_ENV)? {
            limits.max_entries = n;
        }
        if let Some(n) = read(MAX_PATH_BYTES_ENV)? {
            limits.max_path_bytes = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = read(MAX_PAX_BYTES_ENV)? {
            limits.max_pax_bytes = n;
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_change_the_defaults_and_bad_ones_are_named() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            UnpackLimits::from_vars(vars(&[])).expect("defaults"),
            UnpackLimits::default()
        );
        let l = UnpackLimits::from_vars(vars(&[
            (MAX_LAYER_BYTES_ENV, "1048576"),
            (MAX_LAYER_ENTRIES_ENV, "10"),
        ]))
        .expect("set");
        assert_eq!((l.max_layer_bytes, l.max_entries), (1 << 20, 10));
        assert_eq!(l.max_path_bytes, 4096);
        for bad in ["", "0", "-1", "1G", "18446744073709551616"] {
            let e = UnpackLimits::from_vars(move |n: &str| {
                (n == MAX_PATH_BYTES_ENV).then(|| bad.to_string())
            })
            .expect_err(bad)
            .to_string();
            assert!(e.contains(MAX_PATH_BYTES_ENV), "{e}");
        }
    }
}
