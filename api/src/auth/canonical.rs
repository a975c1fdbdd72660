//! SigV4's canonical request, rebuilt from what the server received,
//! exactly as botocore (`botocore.auth.SigV4Auth.canonical_request`) builds
//! it on the client:
//!
//! ```text
//! METHOD \n canonical path \n canonical query \n
//! name:value \n ... \n (one line per signed header) \n
//! signed;header;names \n payload-sha256-hex
//! ```

use http::HeaderMap;

use super::header::truncated;
use super::sigv4::Rejection;

/// What the canonical request is built from.
pub struct Parts<'a> {
    pub method: &'a str,
    /// The path as the client sent it (still percent-encoded).
    pub path: &'a str,
    /// The query as the client sent it, without `?`.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub signed_headers: &'a [&'a str],
    pub signed_headers_raw: &'a str,
    /// Lowercase hex SHA-256 of the whole body.
    pub payload_hash: &'a str,
}

/// The canonical request, or InvalidSignature naming a signed header the
/// request does not carry (AWS would only say "does not match").
pub fn request(p: &Parts) -> Result<String, Rejection> {
    let mut out = String::with_capacity(256);
    out.push_str(&p.method.to_ascii_uppercase());
    out.push('\n');
    out.push_str(&path(p.path));
    out.push('\n');
    out.push_str(&query(p.query));
    out.push('\n');
    for name in p.signed_headers {
        out.push_str(name);
        out.push(':');
        out.push_str(&header_value(p.headers, name)?);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(p.signed_headers_raw);
    out.push('\n');
    out.push_str(p.payload_hash);
    Ok(out)
}

/// The path with dot segments and empty segments removed (botocore's
/// `remove_dot_segments`: AWS services drop consecutive slashes too), then
/// percent-encoded once more: for every service but S3 the signed path is
/// the already-encoded path encoded again.
pub fn path(raw: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in raw.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let lead = if raw.starts_with('/') || raw.is_empty() {
        "/"
    } else {
        ""
    };
    let trail = if raw.ends_with('/') && !segments.is_empty() {
        "/"
    } else {
        ""
    };
    encode(&format!("{lead}{}{trail}", segments.join("/")), b"/~")
}

/// `key=value` pairs sorted by key then value, as the client encoded them
/// (botocore's `_canonical_query_string_url` sorts the raw pairs; every SDK
/// sends them already encoded as SigV4 wants).
pub fn query(raw: &str) -> String {
    if raw.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(&str, &str)> = raw
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .collect();
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Every value of the header, each trimmed with inner whitespace runs
/// collapsed to one space, joined by commas.
fn header_value(headers: &HeaderMap, name: &str) -> Result<String, Rejection> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    if values.is_empty() {
        return Err(Rejection::invalid(format!(
            "SignedHeaders names '{}', which the request does not carry",
            truncated(name)
        )));
    }
    Ok(values.join(","))
}

/// Percent-encodes all but RFC 3986's unreserved characters and `safe`
/// (Python's `urllib.parse.quote(s, safe)`, which botocore uses).
fn encode(s: &str, safe: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || safe.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn paths_are_normalised_then_encoded_again() {
        assert_eq!(path("/"), "/");
        assert_eq!(path(""), "/");
        assert_eq!(path("/a/./b//c/../d%20e/"), "/a/b/d%2520e/");
        assert_eq!(path("/../.."), "/");
        assert_eq!(path("/a b~"), "/a%20b~");
    }

    #[test]
    fn query_pairs_are_sorted_by_key_then_value() {
        assert_eq!(query(""), "");
        assert_eq!(query("b=2&a=1&a=0&c="), "a=0&a=1&b=2&c=");
        assert_eq!(query("flag"), "flag=");
    }

    #[test]
    fn header_values_are_trimmed_collapsed_and_joined() {
        let mut h = HeaderMap::new();
        h.append("x-a", HeaderValue::from_static("  a   b\tc  "));
        h.append("x-a", HeaderValue::from_static("d"));
        assert_eq!(header_value(&h, "x-a").unwrap(), "a b c,d");
        let missing = header_value(&h, "x-b").unwrap_err();
        assert!(missing.message.contains("'x-b'"), "{}", missing.message);
    }
}
