//! The `Authorization` header of a SigV4 request, parsed and checked for
//! shape only: `AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
//! SignedHeaders=a;b;c, Signature=<64 hex>`. Whether the signature is right
//! is `sigv4.rs`'s business.

use super::sigv4::Rejection;

/// The only algorithm SigV4 names (SigV4A's ECDSA is not served).
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// An Authorization header longer than this is refused before parsing:
/// botocore's for ECS is ~200 bytes; a huge one is an attack or a bug.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// More signed headers than this is no real client (botocore signs 4-6).
const MAX_SIGNED_HEADERS: usize = 64;

/// The parts of a well-formed SigV4 Authorization header.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub access_key: &'a str,
    /// `YYYYMMDD`, as the scope names it.
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    /// Lowercase, sorted, unique: what the canonical request lists.
    pub signed_headers: Vec<&'a str>,
    /// The raw `SignedHeaders=` value, as the canonical request repeats it.
    pub signed_headers_raw: &'a str,
    /// The signature, decoded from its 64 hex digits.
    pub signature: [u8; 32],
}

impl Authorization<'_> {
    /// `DATE/REGION/SERVICE/aws4_request`, as the string to sign names it.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

fn incomplete(message: impl Into<String>) -> Rejection {
    Rejection::incomplete(message)
}

/// Parses an Authorization header value. Every refusal is an
/// IncompleteSignatureException naming what is wrong, as AWS answers.
pub fn parse(value: &str) -> Result<Authorization<'_>, Rejection> {
    if value.len() > MAX_HEADER_BYTES {
        return Err(incomplete(format!(
            "Authorization header is {} bytes, over the limit of {MAX_HEADER_BYTES}",
            value.len()
        )));
    }
    let (algorithm, rest) = value
        .trim()
        .split_once([' ', '\t'])
        .unwrap_or((value.trim(), ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{}' (only {ALGORITHM} is accepted)",
            truncated(algorithm)
        )));
    }
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for param in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, val)) = param.split_once('=') else {
            return Err(incomplete(format!(
                "Authorization parameter '{}' is not name=value",
                truncated(param)
            )));
        };
        let slot = match name.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            other => {
                return Err(incomplete(format!(
                    "unknown Authorization parameter '{}' (expected Credential, SignedHeaders, Signature)",
                    truncated(other)
                )))
            }
        };
        if slot.replace(val.trim()).is_some() {
            return Err(incomplete(format!(
                "Authorization parameter '{}' appears twice",
                name.trim()
            )));
        }
    }
    let credential = required(credential, "Credential", value)?;
    let signed_headers_raw = required(signed, "SignedHeaders", value)?;
    let signature = decode_signature(required(signature, "Signature", value)?)?;
    let (access_key, date, region, service) = parse_credential(credential)?;
    Ok(Authorization {
        access_key,
        date,
        region,
        service,
        signed_headers: parse_signed_headers(signed_headers_raw)?,
        signed_headers_raw,
        signature,
    })
}

/// A parameter the header must carry, or AWS's message naming it.
fn required<'v>(param: Option<&'v str>, name: &str, header: &str) -> Result<&'v str, Rejection> {
    param.ok_or_else(|| {
        incomplete(format!(
            "Authorization header requires '{name}' parameter. Authorization={}",
            truncated(header)
        ))
    })
}

/// `AK/YYYYMMDD/REGION/SERVICE/aws4_request`.
fn parse_credential(credential: &str) -> Result<(&str, &str, &str, &str), Rejection> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = parts[..] else {
        return Err(incomplete(format!(
            "Credential '{}' is not AK/YYYYMMDD/REGION/SERVICE/aws4_request",
            truncated(credential)
        )));
    };
    if key.is_empty() || region.is_empty() || service.is_empty() {
        return Err(incomplete(format!(
            "Credential '{}' has an empty access key, region or service",
            truncated(credential)
        )));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(incomplete(format!(
            "Credential's date '{}' is not YYYYMMDD",
            truncated(date)
        )));
    }
    if terminator != "aws4_request" {
        return Err(incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'",
            truncated(terminator)
        )));
    }
    Ok((key, date, region, service))
}

/// `a;b;c`: lowercase header names, sorted and unique, as every SDK sends
/// them (the canonical request lists them in this order).
fn parse_signed_headers(raw: &str) -> Result<Vec<&str>, Rejection> {
    let names: Vec<&str> = raw.split(';').collect();
    if names.len() > MAX_SIGNED_HEADERS {
        return Err(incomplete(format!(
            "SignedHeaders names {} headers, over the limit of {MAX_SIGNED_HEADERS}",
            names.len()
        )));
    }
    for name in &names {
        let token =
            |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.!#$%&'*+^`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(token) {
            return Err(incomplete(format!(
                "SignedHeaders '{}' must list lowercase header names separated by ';'",
                truncated(raw)
            )));
        }
    }
    if names.windows(2).any(|w| w[0] >= w[1]) {
        return Err(incomplete(format!(
            "SignedHeaders '{}' must be sorted and without repeats",
            truncated(raw)
        )));
    }
    Ok(names)
}

fn decode_signature(hex: &str) -> Result<[u8; 32], Rejection> {
    let bad = || {
        incomplete(format!(
            "Signature '{}' is not 64 hexadecimal digits",
            truncated(hex)
        ))
    };
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16).ok_or_else(bad);
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Ok(out)
}

/// A client-supplied value quoted in a message, cut so a hostile header
/// cannot make the error body huge.
pub fn truncated(s: &str) -> String {
    const MAX: usize = 120;
    match s.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::AuthException;

    const GOOD: &str = "AWS4-HMAC-SHA256 Credential=AK/20261130/us-east-1/ecs/aws4_request, \
        SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
        Signature=13027f50a5d43eb77abc82b11af53009503d30ddee48412999b021fa86d47296";

    fn refused(value: &str) -> String {
        let r = parse(value).expect_err(value);
        assert_eq!(r.exception, AuthException::IncompleteSignature, "{value}");
        r.message
    }

    #[test]
    fn parses_botocores_shape() {
        let a = parse(GOOD).unwrap();
        assert_eq!(
            (a.access_key, a.date, a.region, a.service),
            ("AK", "20261130", "us-east-1", "ecs")
        );
        assert_eq!(
            a.signed_headers,
            ["content-type", "host", "x-amz-date", "x-amz-target"]
        );
        assert_eq!(a.signature[0], 0x13);
        assert_eq!(a.scope(), "20261130/us-east-1/ecs/aws4_request");
        // No space after the commas is fine too (the Go SDK's shape).
        assert!(parse(&GOOD.replace(", ", ",")).is_ok());
    }

    #[test]
    fn refuses_malformed_headers_naming_the_part() {
        assert!(refused("AWS4-HMAC-SHA256").contains("'Credential'"));
        assert!(refused(&GOOD[..GOOD.len() - 80]).contains("'Signature'"));
        assert!(refused("AWS AK:sig").contains("algorithm"));
        assert!(refused("Bearer x").contains("algorithm"));
        assert!(refused(&GOOD.replace("Signature=", "Sig=")).contains("unknown"));
        assert!(refused(&format!("{GOOD}, Signature=00")).contains("twice"));
        assert!(refused(&GOOD.replace("Credential=AK/", "Credential=")).contains("Credential"));
        assert!(refused(&GOOD.replace("aws4_request", "aws5_request")).contains("terminator"));
        assert!(refused(&GOOD.replace("20261130", "2026113x")).contains("YYYYMMDD"));
        assert!(refused(&GOOD.replace("host;x-amz-date", "x-amz-date;host")).contains("sorted"));
        assert!(refused(&GOOD.replace("host;", "host;host;")).contains("sorted"));
        assert!(refused(&GOOD.replace("content-type", "Content-Type")).contains("lowercase"));
        assert!(refused(&GOOD.replace("content-type;", ";")).contains("lowercase"));
        assert!(refused(&GOOD.replace("Signature=13", "Signature=zz")).contains("hexadecimal"));
        assert!(refused(&GOOD.replace("Signature=13", "Signature=1")).contains("hexadecimal"));
        assert!(
            refused(&GOOD.replace(", SignedHeaders", " SignedHeaders")).contains("SignedHeaders")
        );
    }

    #[test]
    fn refuses_huge_headers_without_echoing_them() {
        let huge = format!("{GOOD}{}", " ".repeat(MAX_HEADER_BYTES));
        assert!(refused(&huge).contains("over the limit"));
        let many = (0..100)
            .map(|i| format!("h{i:03}"))
            .collect::<Vec<_>>()
            .join(";");
        assert!(
            refused(&GOOD.replace("content-type;host;x-amz-date;x-amz-target", &many))
                .contains("over the limit")
        );
        let long_key = format!("AWS4-HMAC-SHA256 Credential={}", "k".repeat(4000));
        assert!(refused(&long_key).len() < 400);
    }
}
