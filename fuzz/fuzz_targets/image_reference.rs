//! Image references as users type them (`berth image pull`, a container
//! definition's `image`): parsing never panics, and what it accepts is a
//! reference Docker's grammar accepts, shown in a form that parses back to
//! the same reference.

#![no_main]

use berth_rootfs::Reference;
use libfuzzer_sys::fuzz_target;

/// Docker's `domain[:port]`: dot-separated labels of letters, digits and
/// inner hyphens, or an IPv6 address in brackets, then an optional port.
fn registry_ok(registry: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let (host_ok, port) = match registry.strip_prefix('[') {
        Some(rest) => {
            let Some((v6, port)) = rest.split_once(']') else {
                return false;
            };
            let v6_ok = !v6.is_empty()
                && v6
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
            (v6_ok, port)
        }
        None => {
            let end = registry.find(':').unwrap_or(registry.len());
            (registry[..end].split('.').all(label_ok), &registry[end..])
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(reference) = text.parse::<Reference>() else {
        return;
    };
    assert!(
        registry_ok(&reference.registry),
        "{text:?}: registry {:?} is not a host[:port]",
        reference.registry
    );
    for component in reference.repository.split('/') {
        assert!(
            !component.is_empty() && component != "." && component != "..",
            "{text:?}: repository component {component:?}"
        );
    }
    assert!(
        reference.tag.is_some() || reference.digest.is_some(),
        "{text:?}: neither tag nor digest"
    );
    let shown = reference.to_string();
    let again: Reference = shown
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} is shown as {shown:?}, which does not parse: {e}"));
    assert_eq!(again, reference, "{text:?} shown as {shown:?}");
    assert!(!reference.tag_or_digest().is_empty());
});
