//! Link berth with packed relative relocations (DT_RELR) where the C
//! library can load them (glibc 2.36 and later): the dynamic loader then
//! reads ~20 KiB of relocations instead of ~1 MiB at every exec of berth,
//! and a container start execs it three times (CLI, monitor, pump).
//! Relocations are the same work; only their encoding shrinks.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    // Only when the glibc found here is the one the binary will load: a
    // cross build, or a C library without DT_RELR, keeps plain relocations.
    if target == host && target.ends_with("-linux-gnu") && glibc_loads_relr() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// glibc marks its support with the GLIBC_ABI_DT_RELR symbol version.
fn glibc_loads_relr() -> bool {
    let needle = b"GLIBC_ABI_DT_RELR";
    [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/aarch64-linux-gnu/libc.so.6",
        "/lib64/libc.so.6",
        "/usr/lib64/libc.so.6",
        "/usr/lib/libc.so.6",
    ]
    .iter()
    .filter_map(|p| std::fs::read(p).ok())
    .any(|lib| lib.windows(needle.len()).any(|w| w == needle))
}
