//! SigV4 (`AWS4-HMAC-SHA256`) verification, pure: the request's head, its
//! whole body, the known keys and the clock in; a verdict out.
//!
//! The server rebuilds what the client signed (the canonical request of
//! `canonical.rs`, then the string to sign), derives the signing key from
//! the secret it holds for the access key (HMAC chain over date, region,
//! service, `aws4_request`), and compares the signatures in constant time.
//! Refusals are the exceptions AWS answers, with messages that say what to
//! fix; they never contain the expected signature.

use berth_orchestrator::random::hex;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use http::{request::Parts, HeaderMap};
use ring::{digest, hmac};

use super::canonical;
use super::credentials::Credentials;
use super::header::{self, truncated, ALGORITHM};
use crate::protocol::{self, ApiError, AuthException};

/// How far the request's date may be from the server's clock, as AWS allows.
pub const MAX_SKEW: TimeDelta = TimeDelta::minutes(15);

/// `x-amz-date`'s format (ISO 8601 basic, UTC).
const AMZ_DATE: &str = "%Y%m%dT%H%M%SZ";

/// Why a request is not authenticated, as the client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub exception: AuthException,
    pub message: String,
}

impl Rejection {
    pub fn incomplete(message: impl Into<String>) -> Self {
        Self {
            exception: AuthException::IncompleteSignature,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            exception: AuthException::InvalidSignature,
            message: message.into(),
        }
    }

    fn missing(message: impl Into<String>) -> Self {
        Self {
            exception: AuthException::MissingAuthenticationToken,
            message: message.into(),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        ApiError::Auth {
            exception: r.exception,
            message: r.message,
        }
    }
}

/// Whether the request carries a valid SigV4 signature by one of `keys`,
/// made within [`MAX_SKEW`] of `now`, for the service its `X-Amz-Target`
/// belongs to ([`protocol::signing_service`]): a call signed for SSM is
/// not an ECS call. The target is among the signed headers
/// ([`require_signed`]), so it cannot be swapped after signing.
pub fn verify(
    parts: &Parts,
    body: &[u8],
    keys: &Credentials,
    now: DateTime<Utc>,
) -> Result<(), Rejection> {
    let value = authorization(&parts.headers)?;
    let auth = header::parse(value)?;
    let service = protocol::signing_service(single(&parts.headers, "x-amz-target")?);
    if auth.service != service {
        return Err(Rejection::invalid(format!(
            "Credential should be scoped to correct service: '{service}', not '{}'",
            truncated(auth.service)
        )));
    }
    let Some(secret) = keys.secret(auth.access_key) else {
        return Err(Rejection {
            exception: AuthException::UnrecognizedClient,
            message: format!(
                "The security token included in the request is invalid: access key '{}' is not in the server's credentials file",
                truncated(auth.access_key)
            ),
        });
    };
    let timestamp = timestamp(&parts.headers)?;
    check_date(&timestamp, auth.date, now)?;
    require_signed(&parts.headers, &auth.signed_headers)?;
    let payload_hash = payload_hash(&parts.headers, body)?;
    let canonical = canonical::request(&canonical::Parts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        signed_headers: &auth.signed_headers,
        signed_headers_raw: auth.signed_headers_raw,
        payload_hash: &payload_hash,
    })?;
    let scope = auth.scope();
    let to_sign = string_to_sign(&timestamp, &scope, &canonical);
    let key = signing_key(secret, auth.date, auth.region, auth.service);
    // ring's verify compares in constant time.
    hmac::verify(&key, to_sign.as_bytes(), &auth.signature).map_err(|_| {
        Rejection::invalid(format!(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. \
             The Canonical String for this request should have been\n'{canonical}'\n\n\
             The String-to-Sign should have been\n'{to_sign}'\n"
        ))
    })
}

/// The one Authorization header's value.
fn authorization(headers: &HeaderMap) -> Result<&str, Rejection> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Rejection::missing(
            "Missing Authentication Token: the server checks SigV4 signatures (--auth sigv4) \
             and the request has no Authorization header; give the client an access key from \
             the server's credentials file (query-string signatures are not accepted)",
        ));
    };
    if values.next().is_some() {
        return Err(Rejection::incomplete(
            "the request has more than one Authorization header",
        ));
    }
    value
        .to_str()
        .map_err(|_| Rejection::incomplete("the Authorization header is not printable ASCII"))
}

/// The request's time as SigV4 signs it (`YYYYMMDDTHHMMSSZ`): `X-Amz-Date`,
/// else `Date` (botocore signs with `Date` when the request already has one).
fn timestamp(headers: &HeaderMap) -> Result<String, Rejection> {
    if let Some(value) = single(headers, "x-amz-date")? {
        let parsed = NaiveDateTime::parse_from_str(value, AMZ_DATE)
            .ok()
            .filter(|_| value.len() == 16);
        return match parsed {
            Some(t) => Ok(t.format(AMZ_DATE).to_string()),
            None => Err(Rejection::incomplete(format!(
                "X-Amz-Date '{}' is not YYYYMMDDTHHMMSSZ",
                truncated(value)
            ))),
        };
    }
    match single(headers, "date")? {
        Some(value) => DateTime::parse_from_rfc2822(value)
            .map(|t| t.with_timezone(&Utc).format(AMZ_DATE).to_string())
            .map_err(|_| {
                Rejection::incomplete(format!(
                    "Date '{}' is not an RFC 1123 date",
                    truncated(value)
                ))
            }),
        None => Err(Rejection::incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header",
        )),
    }
}

/// A header that must not repeat (a repeated date is ambiguous).
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, Rejection> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Rejection::incomplete(format!(
            "the request has more than one '{name}' header"
        )));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| Rejection::incomplete(format!("the '{name}' header is not printable ASCII")))
}

/// The scope's date must be the request's, and the request must be recent:
/// a captured request cannot be replayed after [`MAX_SKEW`].
fn check_date(timestamp: &str, scope_date: &str, now: DateTime<Utc>) -> Result<(), Rejection> {
    let day = timestamp.get(..8).unwrap_or(timestamp);
    if day != scope_date {
        return Err(Rejection::invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
             '{scope_date}' != '{day}', from '{timestamp}'"
        )));
    }
    let signed = NaiveDateTime::parse_from_str(timestamp, AMZ_DATE)
        .map_err(|_| Rejection::incomplete(format!("request date '{timestamp}' is not valid")))?
        .and_utc();
    let fmt = |t: DateTime<Utc>| t.format(AMZ_DATE).to_string();
    if signed < now - MAX_SKEW {
        return Err(Rejection::invalid(format!(
            "Signature expired: {} is now earlier than {} ({} - 15 min.); check the client's clock",
            fmt(signed),
            fmt(now - MAX_SKEW),
            fmt(now)
        )));
    }
    if signed > now + MAX_SKEW {
        return Err(Rejection::invalid(format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.); check the client's clock",
            fmt(signed),
            fmt(now + MAX_SKEW),
            fmt(now)
        )));
    }
    Ok(())
}

/// `host` and every `x-amz-*` header the request carries must be signed:
/// otherwise a captured request could be replayed to another operation
/// (`x-amz-target`) or another date.
fn require_signed(headers: &HeaderMap, signed: &[&str]) -> Result<(), Rejection> {
    let is_signed = |name: &str| signed.binary_search(&name).is_ok();
    if !is_signed("host") {
        return Err(Rejection::invalid("SignedHeaders must include 'host'"));
    }
    for name in headers.keys() {
        if name.as_str().starts_with("x-amz-") && !is_signed(name.as_str()) {
            return Err(Rejection::invalid(format!(
                "header '{name}' is present but not in SignedHeaders; every x-amz-* header must be signed"
            )));
        }
    }
    Ok(())
}

/// The hex SHA-256 of the whole body; `x-amz-content-sha256`, when sent,
/// must be that same hash (no `UNSIGNED-PAYLOAD`: the server has the body).
fn payload_hash(headers: &HeaderMap, body: &[u8]) -> Result<String, Rejection> {
    let hash = hex(digest::digest(&digest::SHA256, body).as_ref());
    if let Some(claimed) = single(headers, "x-amz-content-sha256")? {
        if !claimed.eq_ignore_ascii_case(&hash) {
            return Err(Rejection::invalid(format!(
                "x-amz-content-sha256 '{}' is not the SHA-256 of the body ({hash}); \
                 unsigned payloads are not accepted",
                truncated(claimed)
            )));
        }
    }
    Ok(hash)
}

/// `AWS4-HMAC-SHA256 \n timestamp \n scope \n hex(sha256(canonical))`.
fn string_to_sign(timestamp: &str, scope: &str, canonical: &str) -> String {
    let hash = hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref());
    format!("{ALGORITHM}\n{timestamp}\n{scope}\n{hash}")
}

/// HMAC chain: `AWS4`+secret → date → region → service → `aws4_request`.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [date, region, service, "aws4_request"] {
        let k = hmac::Key::new(hmac::HMAC_SHA256, &key);
        key = hmac::sign(&k, part.as_bytes()).as_ref().to_vec();
    }
    hmac::Key::new(hmac::HMAC_SHA256, &key)
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
