//! The container's seccomp filter, compiled once per profile.
//!
//! libseccomp takes ~10 ms to compile Docker's profile for x86_64, x86 and
//! x32 (its generator is quadratic in the number of architectures), more
//! than half of the CPU time of starting a container. The profile is the
//! same for almost every container, so the monitor compiles it once
//! (patched libcontainer's `compile_bpf`, the very code it would run) and
//! keeps the program in the runtime root; later monitors hand it to
//! libcontainer (`set_precompiled`), whose init then loads it with one
//! `seccomp()` call.
//!
//! A cached program is used only for the exact profile it was compiled
//! from: each file starts with the whole profile, the libseccomp version
//! and the boot id, and must match them byte for byte, so that a hash
//! collision, a libseccomp upgrade or a new kernel means a recompile, never
//! a wrong filter. Every failure here only costs the compile.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxSeccomp, Spec};

/// The cache's directory, beside libcontainer's in the runtime root.
pub(crate) fn cache_dir(libcontainer_root: &Path) -> PathBuf {
    libcontainer_root
        .parent()
        .unwrap_or(libcontainer_root)
        .join("seccomp")
}

/// Make libcontainer load a precompiled program for the bundle's profile,
/// compiling and caching it first if this is the first container with it.
pub(crate) fn prepare(bundle: &Path, cache: &Path) {
    let spec = match Spec::load(bundle.join("config.json")) {
        Ok(s) => s,
        Err(e) => return tracing::debug!("seccomp cache: read spec: {e}"),
    };
    let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().clone()) else {
        return;
    };
    let Some(header) = header(&seccomp) else {
        return;
    };
    let file = cache.join(file_name(&header));
    let bpf = match cached(&file, &header) {
        Some(bpf) => bpf,
        None => match libcontainer::seccomp::compile_bpf(&seccomp) {
            Ok(bpf) => {
                store(cache, &file, &header, &bpf);
                bpf
            }
            Err(e) => return tracing::debug!("seccomp cache: compile: {e}"),
        },
    };
    if !libcontainer::seccomp::set_precompiled(&seccomp, bpf) {
        tracing::debug!("seccomp cache: program not taken");
    }
}

/// What a cached program was compiled from: this line must open its file.
/// `None` when libcontainer would not take a precompiled program anyway
/// (filter flags or a notify action).
fn header(seccomp: &LinuxSeccomp) -> Option<String> {
    if seccomp.flags().as_ref().is_some_and(|f| !f.is_empty())
        || libcontainer::seccomp::is_notify(seccomp)
    {
        return None;
    }
    let profile = serde_json::to_string(seccomp).ok()?;
    let version = libseccomp::ScmpVersion::current().ok()?;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(format!(
        "berth-seccomp-bpf 1 libseccomp {}.{}.{} boot {} profile {profile}\n",
        version.major,
        version.minor,
        version.micro,
        boot.trim()
    ))
}

/// `<boot id prefix>-<hash of the header>.bpf`: files of earlier boots are
/// recognised by name and pruned.
fn file_name(header: &str) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    header.hash(&mut hasher);
    format!("{}-{:016x}.bpf", boot_prefix(header), hasher.finish())
}

fn boot_prefix(header: &str) -> &str {
    header
        .split_once(" boot ")
        .map(|(_, rest)| rest.get(..8).unwrap_or(rest))
        .unwrap_or("")
}

/// The program in `file`, if the file is for exactly this header.
fn cached(file: &Path, header: &str) -> Option<Vec<u8>> {
    let bytes = std::fs::read(file).ok()?;
    let bpf = bytes.strip_prefix(header.as_bytes())?;
    (!bpf.is_empty() && bpf.len().is_multiple_of(8)).then(|| bpf.to_vec())
}

/// Keep the program for the next container; drop programs of earlier boots.
fn store(cache: &Path, file: &Path, header: &str, bpf: &[u8]) {
    if let Err(e) = crate::fsutil::create_private_dir_all(cache) {
        return tracing::debug!("seccomp cache: create {}: {e}", cache.display());
    }
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(bpf);
    if let Err(e) = crate::fsutil::write_bytes_atomic(file, &bytes) {
        return tracing::debug!("seccomp cache: {e}");
    }
    let current = format!("{}-", boot_prefix(header));
    for entry in std::fs::read_dir(cache).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".bpf") && !name.starts_with(&current) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> LinuxSeccomp {
        let caps = vec!["CAP_CHOWN".to_string()];
        serde_json::from_value(crate::spec::seccomp::default_profile(&caps)).expect("profile")
    }

    #[test]
    fn a_cached_program_is_the_compiled_one_and_only_for_its_profile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seccomp = profile();
        let header = header(&seccomp).expect("header");
        let file = dir.path().join(file_name(&header));
        let bpf = libcontainer::seccomp::compile_bpf(&seccomp).expect("compile");
        assert!(!bpf.is_empty() && bpf.len().is_multiple_of(8));
        store(dir.path(), &file, &header, &bpf);
        assert_eq!(cached(&file, &header), Some(bpf));
        // Another profile never reads this program, even from its file.
        let mut other = seccomp.clone();
        other.set_default_errno_ret(Some(1));
        let other_header = header_of(&other);
        assert_ne!(other_header, header);
        assert_eq!(cached(&file, &other_header), None);
    }

    fn header_of(s: &LinuxSeccomp) -> String {
        header(s).expect("header")
    }

    #[test]
    fn programs_of_earlier_boots_are_pruned() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Boot ids are hex: "zzzzzzzz" is never this boot's.
        let old = dir.path().join("zzzzzzzz-0000000000000000.bpf");
        std::fs::write(&old, b"old").expect("write");
        let seccomp = profile();
        let header = header(&seccomp).expect("header");
        let file = dir.path().join(file_name(&header));
        store(dir.path(), &file, &header, &[0; 8]);
        assert!(!old.exists());
        assert!(file.exists());
    }

    #[test]
    fn a_truncated_file_is_not_a_program() {
        let dir = tempfile::tempdir().expect("tempdir");
        let header = header(&profile()).expect("header");
        let file = dir.path().join("x.bpf");
        std::fs::write(&file, format!("{header}abc")).expect("write");
        assert_eq!(cached(&file, &header), None);
        std::fs::write(&file, &header[..header.len() - 2]).expect("write");
        assert_eq!(cached(&file, &header), None);
    }
}
