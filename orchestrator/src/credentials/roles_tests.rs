use super::*;

const APP: &str = "arn:aws:iam::123456789012:role/app";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn a_file_maps_role_arns_to_static_keys_or_a_command() {
    let roles = parse_roles(
        r#"{
        "arn:aws:iam::123456789012:role/app": {"AccessKeyId": "AKIAAPP", "SecretAccessKey": "s"},
        "arn:aws:iam::123456789012:role/rot": {"credential_process": "/bin/mint x", "timeout_seconds": 3}
    }"#,
    )
    .unwrap();
    assert_eq!(
        roles[APP],
        Source::Static(Keys {
            access_key_id: "AKIAAPP".into(),
            secret_access_key: "s".into(),
            session_token: None,
            expiration: None,
        })
    );
    assert_eq!(
        roles["arn:aws:iam::123456789012:role/rot"],
        Source::Process {
            command: "/bin/mint x".into(),
            timeout: Duration::from_secs(3)
        }
    );
}

#[test]
fn a_bad_file_is_refused_naming_the_role_and_field() {
    let cases = [
        ("[]", "not a JSON object"),
        ("{", "not JSON"),
        (r#"{"app": {}}"#, "\"app\" is no role ARN"),
        (
            r#"{"arn:aws:iam::1:role/a": {"AccessKeyId": "k"}}"#,
            "SecretAccessKey: missing",
        ),
        (
            r#"{"arn:aws:iam::1:role/a": {"AccessKeyId": "k", "SecretAccessKey": "s", "Region": "x"}}"#,
            "unknown field \"Region\"",
        ),
        (
            r#"{"arn:aws:iam::1:role/a": {"credential_process": ""}}"#,
            "credential_process",
        ),
        (
            r#"{"arn:aws:iam::1:role/a": {"credential_process": "x", "timeout_seconds": 0}}"#,
            "timeout_seconds",
        ),
        (
            r#"{"arn:aws:iam::1:role/a": {"AccessKeyId": 3, "SecretAccessKey": "s"}}"#,
            "AccessKeyId",
        ),
    ];
    for (text, want) in cases {
        let e = parse_roles(text).unwrap_err();
        assert!(e.contains(want), "{text}: {e}");
    }
    let e = parse_roles(r#"{"arn:aws:iam::1:role/a": 1}"#).unwrap_err();
    assert!(e.contains("role \"arn:aws:iam::1:role/a\""), "{e}");
}

#[test]
fn a_credential_process_answer_is_read_as_the_aws_cli_reads_it() {
    let keys = parse_process_output(
        r#"{"Version": 1, "AccessKeyId": "AK", "SecretAccessKey": "S",
            "SessionToken": "T", "Expiration": "2026-11-30T19:00:00+01:00"}"#,
    )
    .unwrap();
    assert_eq!(keys.session_token.as_deref(), Some("T"));
    assert_eq!(keys.expiration, Some(at("2026-11-30T18:00:00Z")));
    for (out, want) in [
        (
            r#"{"Version": 2, "AccessKeyId": "A", "SecretAccessKey": "S"}"#,
            "Version",
        ),
        (r#"{"Version": 1, "SecretAccessKey": "S"}"#, "AccessKeyId"),
        (
            r#"{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "S", "Expiration": "soon"}"#,
            "Expiration",
        ),
        ("", "not JSON"),
    ] {
        let e = parse_process_output(out).unwrap_err();
        assert!(e.contains(want), "{out}: {e}");
    }
}

#[test]
fn keys_are_fetched_again_before_they_expire() {
    let now = at("2026-11-30T18:00:00Z");
    let keys = |exp: Option<&str>| Keys {
        access_key_id: "A".into(),
        secret_access_key: "S".into(),
        session_token: None,
        expiration: exp.map(at),
    };
    assert!(needs_refresh(None, now));
    assert!(!needs_refresh(Some(&keys(None)), now));
    assert!(!needs_refresh(
        Some(&keys(Some("2026-11-30T19:00:00Z"))),
        now
    ));
    assert!(needs_refresh(
        Some(&keys(Some("2026-11-30T18:10:00Z"))),
        now
    ));
    assert!(needs_refresh(
        Some(&keys(Some("2026-11-30T17:00:00Z"))),
        now
    ));
}

#[test]
fn the_answer_is_the_agents_json_and_never_shows_secrets_in_debug() {
    let now = at("2026-11-30T18:00:00Z");
    let keys = Keys {
        access_key_id: "AK".into(),
        secret_access_key: "SECRET".into(),
        session_token: None,
        expiration: None,
    };
    assert_eq!(
        credentials_json(APP, &keys, now),
        json!({"RoleArn": APP, "AccessKeyId": "AK", "SecretAccessKey": "SECRET",
               "Token": "", "Expiration": "2026-12-01T00:00:00Z"})
    );
    assert!(!format!("{keys:?}").contains("SECRET"));
    let timed = Keys {
        session_token: Some("T".into()),
        expiration: Some(at("2026-11-30T18:30:00.5Z")),
        ..keys
    };
    let v = credentials_json(APP, &timed, now);
    assert_eq!(v["Token"], "T");
    assert_eq!(v["Expiration"], "2026-11-30T18:30:00Z");
}

#[test]
fn credentials_routes_and_errors_are_the_agents() {
    assert_eq!(
        credentials_route("/v2/credentials/abc"),
        Some(CredentialsRoute::Id("abc"))
    );
    assert_eq!(
        credentials_route("/v2/credentials/"),
        Some(CredentialsRoute::NoId)
    );
    assert_eq!(
        credentials_route("/v2/credentials"),
        Some(CredentialsRoute::NoId)
    );
    assert_eq!(
        credentials_route("/v1/credentials?id=abc"),
        Some(CredentialsRoute::Id("abc"))
    );
    assert_eq!(
        credentials_route("/v1/credentials"),
        Some(CredentialsRoute::NoId)
    );
    assert_eq!(credentials_route("/v4/abc/task"), None);
    assert_eq!(
        not_found(),
        (
            400,
            json!({"code": "InvalidIdInRequest",
                   "message": "CredentialsV2Request: Credentials not found", "HTTPErrorCode": 400})
        )
    );
    assert_eq!(no_id().1["code"], "NoIdInRequest");
}

#[test]
fn a_task_role_must_be_in_the_file_and_the_task_off_the_hosts_network() {
    let roles = parse_roles(
        r#"{"arn:aws:iam::123456789012:role/app": {"AccessKeyId": "A", "SecretAccessKey": "S"}}"#,
    )
    .unwrap();
    assert!(choose(Ok(&roles), APP, false, "/f").is_ok());
    let other = "arn:aws:iam::123456789012:role/other";
    assert_eq!(
        choose(Ok(&roles), other, false, "/f").unwrap_err(),
        format!(
            "ECS was unable to assume the role '{other}' that was provided for this task: \
             the task roles file /f has no entry for it"
        )
    );
    let e = choose(Ok(&roles), APP, true, "/f").unwrap_err();
    assert!(e.contains("networkMode host") && e.contains(APP), "{e}");
    let e = choose(Err("task roles file /f: mode 0644"), APP, false, "/f").unwrap_err();
    assert!(e.ends_with("task roles file /f: mode 0644"), "{e}");
}
