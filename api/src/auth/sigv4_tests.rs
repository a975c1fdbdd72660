//! The verifier against requests signed by botocore's own signer
//! (`testdata/sigv4_botocore.json`, made by `testdata/gen_sigv4.py`), and
//! against hostile variations of them.

use super::*;
use crate::auth::credentials;
use serde_json::Value;

const VECTORS: &str = include_str!("testdata/sigv4_botocore.json");

struct Case {
    name: String,
    parts: Parts,
    body: Vec<u8>,
    signature: String,
    now: DateTime<Utc>,
}

fn cases() -> Vec<Case> {
    let all: Value = serde_json::from_str(VECTORS).unwrap();
    all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut req = http::Request::builder()
                .method(c["method"].as_str().unwrap())
                .uri(c["uri"].as_str().unwrap());
            let mut signature = String::new();
            for h in c["headers"].as_array().unwrap() {
                let (name, value) = (h[0].as_str().unwrap(), h[1].as_str().unwrap());
                if name == "Authorization" {
                    signature = value.rsplit("Signature=").next().unwrap().to_string();
                }
                req = req.header(name, value);
            }
            let now = NaiveDateTime::parse_from_str(c["now"].as_str().unwrap(), AMZ_DATE).unwrap();
            Case {
                name: c["name"].as_str().unwrap().to_string(),
                parts: req.body(()).unwrap().into_parts().0,
                body: c["body"].as_str().unwrap().as_bytes().to_vec(),
                signature,
                now: now.and_utc(),
            }
        })
        .collect()
}

fn keys() -> Credentials {
    credentials::parse(
        "[default]\naws_access_key_id = AKIDEXAMPLE\n\
         aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n\
         [other]\naws_access_key_id = AKIAOTHERKEY\naws_secret_access_key = other/secret+key==\n",
    )
    .unwrap()
}

/// The first case: aws-cli's ListClusters.
fn listclusters() -> Case {
    cases().remove(0)
}

fn refused(case: &Case, keys: &Credentials) -> Rejection {
    let r = verify(&case.parts, &case.body, keys, case.now).expect_err(&case.name);
    assert!(
        !r.message.contains(&case.signature),
        "a refusal never shows the signature: {}",
        r.message
    );
    r
}

fn set(case: &mut Case, name: &'static str, value: &str) {
    case.parts.headers.insert(name, value.parse().unwrap());
}

#[test]
fn botocores_signatures_verify() {
    let cases = cases();
    assert!(cases.len() >= 9);
    for case in &cases {
        verify(&case.parts, &case.body, &keys(), case.now)
            .unwrap_or_else(|r| panic!("{}: {:?}", case.name, r));
    }
}

#[test]
fn the_clock_may_differ_by_fifteen_minutes() {
    let case = listclusters();
    let ok = TimeDelta::minutes(14);
    for now in [case.now - ok, case.now + ok] {
        assert!(verify(&case.parts, &case.body, &keys(), now).is_ok());
    }
    let late = TimeDelta::minutes(16);
    let r = verify(&case.parts, &case.body, &keys(), case.now + late).unwrap_err();
    assert_eq!(r.exception, AuthException::InvalidSignature);
    assert!(r.message.starts_with("Signature expired"), "{}", r.message);
    let r = verify(&case.parts, &case.body, &keys(), case.now - late).unwrap_err();
    assert!(
        r.message.starts_with("Signature not yet current"),
        "{}",
        r.message
    );
}

#[test]
fn tampering_with_anything_signed_is_an_invalid_signature() {
    let mut body = listclusters();
    body.body = b"{ }".to_vec();
    let r = refused(&body, &keys());
    assert_eq!(r.exception, AuthException::InvalidSignature);
    assert!(r.message.contains("does not match") && r.message.contains("String-to-Sign"));

    let mut target = listclusters();
    set(
        &mut target,
        "x-amz-target",
        "AmazonEC2ContainerServiceV20141113.DeleteCluster",
    );
    assert_eq!(
        refused(&target, &keys()).exception,
        AuthException::InvalidSignature
    );

    let mut date = listclusters();
    set(&mut date, "x-amz-date", "20261130T150406Z");
    assert_eq!(
        refused(&date, &keys()).exception,
        AuthException::InvalidSignature
    );

    let mut host = listclusters();
    set(&mut host, "host", "127.0.0.1:8087");
    assert_eq!(
        refused(&host, &keys()).exception,
        AuthException::InvalidSignature
    );

    let mut method = listclusters();
    method.parts.method = http::Method::PUT;
    assert_eq!(
        refused(&method, &keys()).exception,
        AuthException::InvalidSignature
    );

    let mut path = listclusters();
    path.parts.uri = "/?x=1".parse().unwrap();
    assert_eq!(
        refused(&path, &keys()).exception,
        AuthException::InvalidSignature
    );

    let wrong_secret =
        credentials::parse("[a]\naws_access_key_id=AKIDEXAMPLE\naws_secret_access_key=guess\n");
    let r = refused(&listclusters(), &wrong_secret.unwrap());
    assert_eq!(r.exception, AuthException::InvalidSignature);
}

#[test]
fn an_unknown_key_is_an_unrecognized_client() {
    let only_other =
        credentials::parse("[b]\naws_access_key_id=AKIAOTHERKEY\naws_secret_access_key=x\n")
            .unwrap();
    let r = refused(&listclusters(), &only_other);
    assert_eq!(r.exception, AuthException::UnrecognizedClient);
    assert!(r.message.contains("'AKIDEXAMPLE'"), "{}", r.message);
}

#[test]
fn no_authorization_is_a_missing_token() {
    let mut case = listclusters();
    case.parts.headers.remove("authorization");
    let r = refused(&case, &keys());
    assert_eq!(r.exception, AuthException::MissingAuthenticationToken);
    assert!(r.message.contains("--auth sigv4"), "{}", r.message);
    let api: ApiError = r.into();
    assert_eq!(
        (api.status(), api.type_name()),
        (403, "MissingAuthenticationTokenException")
    );
}

#[test]
fn malformed_or_repeated_headers_are_incomplete() {
    let original = listclusters();
    let auth = original.parts.headers["authorization"]
        .to_str()
        .unwrap()
        .to_string();
    let incomplete = |edit: &dyn Fn(&mut Case)| {
        let mut case = listclusters();
        edit(&mut case);
        let r = refused(&case, &keys());
        assert_eq!(
            r.exception,
            AuthException::IncompleteSignature,
            "{}",
            r.message
        );
        r.message
    };
    incomplete(&|c| set(c, "authorization", &auth[..auth.len() / 2]));
    incomplete(&|c| set(c, "authorization", &format!("{auth}{}", " ".repeat(10_000))));
    incomplete(&|c| {
        set(
            c,
            "authorization",
            &format!("{auth}, Credential=AKIDEXAMPLE/20261130/x/ecs/aws4_request"),
        )
    });
    incomplete(&|c| {
        c.parts
            .headers
            .append("authorization", auth.parse().unwrap());
    });
    let m = incomplete(&|c| {
        c.parts
            .headers
            .append("x-amz-date", "20261130T150405Z".parse().unwrap());
    });
    assert!(m.contains("more than one 'x-amz-date'"), "{m}");
    let m = incomplete(&|c| set(c, "x-amz-date", "2026-11-30T15:04:05Z"));
    assert!(m.contains("YYYYMMDDTHHMMSSZ"), "{m}");
    let m = incomplete(&|c| {
        c.parts.headers.remove("x-amz-date");
    });
    assert!(m.contains("X-Amz-Date"), "{m}");
}

#[test]
fn the_scope_must_be_ecs_and_today() {
    let auth = listclusters().parts.headers["authorization"]
        .to_str()
        .unwrap()
        .to_string();
    let mut s3 = listclusters();
    set(&mut s3, "authorization", &auth.replace("/ecs/", "/s3/"));
    let r = refused(&s3, &keys());
    assert_eq!(r.exception, AuthException::InvalidSignature);
    assert!(r.message.contains("'ecs'"), "{}", r.message);

    let mut day = listclusters();
    set(
        &mut day,
        "authorization",
        &auth.replace("/20261130/", "/20261129/"),
    );
    let r = refused(&day, &keys());
    assert!(
        r.message.contains("Date in Credential scope"),
        "{}",
        r.message
    );

    // Any region is fine, but it is signed: changing it breaks the signature.
    let mut region = listclusters();
    set(
        &mut region,
        "authorization",
        &auth.replace("/us-east-1/", "/eu-west-1/"),
    );
    assert!(refused(&region, &keys()).message.contains("does not match"));
}

#[test]
fn host_and_every_amz_header_must_be_signed() {
    let auth = listclusters().parts.headers["authorization"]
        .to_str()
        .unwrap()
        .to_string();
    let mut unsigned = listclusters();
    set(
        &mut unsigned,
        "authorization",
        &auth.replace(";x-amz-target", ""),
    );
    let r = refused(&unsigned, &keys());
    assert!(r.message.contains("'x-amz-target'"), "{}", r.message);

    let mut no_host = listclusters();
    set(&mut no_host, "authorization", &auth.replace(";host", ""));
    assert!(refused(&no_host, &keys()).message.contains("'host'"));

    let mut extra = listclusters();
    set(&mut extra, "x-amz-security-token", "smuggled");
    assert!(refused(&extra, &keys())
        .message
        .contains("x-amz-security-token"));

    let mut absent = listclusters();
    set(
        &mut absent,
        "authorization",
        &auth.replace("content-type;", "accept;content-type;"),
    );
    assert!(refused(&absent, &keys()).message.contains("'accept'"));
}

#[test]
fn the_content_hash_header_must_be_the_bodys() {
    let mut case = cases()
        .into_iter()
        .find(|c| c.parts.headers.contains_key("x-amz-content-sha256"))
        .unwrap();
    case.body = b"{\"cluster\":\"y\"}".to_vec();
    let r = refused(&case, &keys());
    assert!(r.message.contains("x-amz-content-sha256"), "{}", r.message);
    set(&mut case, "x-amz-content-sha256", "UNSIGNED-PAYLOAD");
    assert!(refused(&case, &keys())
        .message
        .contains("unsigned payloads"));
}

#[test]
fn bytes_that_are_not_ascii_are_refused_not_panicked_on() {
    let mut auth = listclusters();
    let value = http::HeaderValue::from_bytes(b"AWS4-HMAC-SHA256 Credential=\xff\xfe").unwrap();
    auth.parts.headers.insert("authorization", value);
    let r = refused(&auth, &keys());
    assert_eq!(r.exception, AuthException::IncompleteSignature);
    assert!(r.message.contains("ASCII"), "{}", r.message);

    // A signed header with such bytes is signed over as the client sent it:
    // here, it was changed after signing.
    let mut signed = listclusters();
    let odd = http::HeaderValue::from_bytes(b"application/x-amz-json-1.1\xe9").unwrap();
    signed.parts.headers.insert("content-type", odd);
    assert_eq!(
        refused(&signed, &keys()).exception,
        AuthException::InvalidSignature
    );
}

#[test]
fn the_scope_must_be_the_targets_service() {
    let auth = listclusters().parts.headers["authorization"]
        .to_str()
        .unwrap()
        .to_string();
    // An ECS call signed for ssm.
    let mut ssm_signed = listclusters();
    set(
        &mut ssm_signed,
        "authorization",
        &auth.replace("/ecs/", "/ssm/"),
    );
    let r = refused(&ssm_signed, &keys());
    assert_eq!(r.exception, AuthException::InvalidSignature);
    assert!(
        r.message.contains("service: 'ecs', not 'ssm'"),
        "{}",
        r.message
    );
    // An SSM or Secrets Manager call signed for ecs.
    for (target, service) in [
        ("AmazonSSM.PutParameter", "ssm"),
        ("secretsmanager.GetSecretValue", "secretsmanager"),
    ] {
        let mut c = listclusters();
        set(&mut c, "x-amz-target", target);
        let r = refused(&c, &keys());
        assert!(
            r.message
                .contains(&format!("service: '{service}', not 'ecs'")),
            "{}",
            r.message
        );
    }
}
