//! A container's environment beyond `environment`: ECS's environment
//! files (`environmentFiles`, `type: s3`) read from a local directory that
//! mirrors buckets, and the layering of files, `environment` and
//! `secrets`. Pure: the reading is the supervisor's.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

/// The variable naming the bucket mirror directory; by default
/// `<state root>/s3`. Bucket `b`'s key `k` is the file `<root>/b/k`.
pub const S3_ROOT_VAR: &str = "BERTH_S3_ROOT";

/// One of a container's `environmentFiles`.
#[derive(Clone, Debug, Deserialize)]
pub struct EnvironmentFile {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub value: String,
}

/// One of a container's `secrets`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value_from: String,
}

/// The mirror of S3 in use: `BERTH_S3_ROOT`'s value, or `<state root>/s3`.
pub fn s3_root(var: Option<&str>, state_root: &Path) -> PathBuf {
    match var.filter(|v| !v.is_empty()) {
        Some(v) => PathBuf::from(v),
        None => state_root.join("s3"),
    }
}

/// The local file an environment file names: `arn:aws:s3:::bucket/key`
/// under `root`. The key may not climb out of its bucket.
pub fn mirror_path(root: &Path, file: &EnvironmentFile) -> Result<PathBuf, String> {
    mirror_key(file).map(|rel| root.join(rel))
}

/// The path under the mirror's root that an environment file names,
/// `bucket/key`, made only of plain components. The reader resolves it
/// inside the root with no symlinks (`berth_runtime::bounded_read`).
pub fn mirror_key(file: &EnvironmentFile) -> Result<PathBuf, String> {
    if file.kind != "s3" {
        return Err(format!(
            "environmentFiles type {:?}: only s3 is supported",
            file.kind
        ));
    }
    let rest = file.value.strip_prefix("arn:aws:s3:::").ok_or_else(|| {
        format!(
            "{:?}: not an S3 object ARN (arn:aws:s3:::bucket/key)",
            file.value
        )
    })?;
    let (bucket, key) = rest
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| format!("{:?}: names no bucket/key", file.value))?;
    let rel = Path::new(bucket).join(key);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(format!("{:?}: the key leaves its bucket", file.value));
    }
    Ok(rel)
}

/// The largest environment file read. ECS sets no documented limit, but a
/// container's whole environment must pass execve (a few MiB at most), so
/// a larger file can only fail later and less clearly.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// An environment file's variables, as ECS reads one: `NAME=VALUE` lines,
/// the value taken as it is (quotes included); blank lines and lines
/// starting with `#` skipped; a line with no `=` or no name skipped too,
/// as the ECS agent does.
pub fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// The container's variables as ECS layers them: the files (the first
/// file naming a variable wins), then `environment` (and the run's
/// overrides) over them, then `secrets` over both. One entry per name.
pub fn layer(
    files: &[Vec<(String, String)>],
    environment: &[(String, String)],
    secrets: &[(String, String)],
) -> Vec<String> {
    // Each name's place in `out`: one lookup per variable, not a scan.
    let mut out: Vec<(String, String)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut set = |k: &str, v: &str, replace: bool| match at.get(k) {
        Some(&i) if replace => out[i].1 = v.to_string(),
        Some(_) => {}
        None => {
            at.insert(k.to_string(), out.len());
            out.push((k.to_string(), v.to_string()));
        }
    };
    for (k, v) in files.iter().flatten() {
        set(k, v, false);
    }
    for (k, v) in environment.iter().chain(secrets) {
        set(k, v, true);
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The container definition fields this module acts on, which
/// registration checks ([`check_container`]) rather than ignores.
pub const CONTAINER_FIELDS: [&str; 2] = ["secrets", "environmentFiles"];

/// What a container's environment adds at start: its environment files'
/// variables, in order, and its secrets' values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtraEnv {
    pub files: Vec<Vec<(String, String)>>,
    pub secrets: Vec<(String, String)>,
}

/// A container definition's `secrets` and `environmentFiles` (kept in its
/// `other` fields), read; an error names the field path under `path`.
pub fn container_fields(
    path: &str,
    other: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<(Vec<Secret>, Vec<EnvironmentFile>), String> {
    fn read<T: serde::de::DeserializeOwned>(
        path: &str,
        field: &str,
        v: Option<&serde_json::Value>,
    ) -> Result<Vec<T>, String> {
        match v {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(v) => {
                serde_json::from_value(v.clone()).map_err(|e| format!("{path}.{field}: {e}"))
            }
        }
    }
    Ok((
        read(path, "secrets", other.get("secrets"))?,
        read(path, "environmentFiles", other.get("environmentFiles"))?,
    ))
}

/// Registration's check of a container's `secrets` (each a name and a
/// `valueFrom` berth can read) and `environmentFiles` (S3 object ARNs).
pub fn check_container(
    path: &str,
    other: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<(), String> {
    let (secrets, files) = container_fields(path, other)?;
    for (i, s) in secrets.iter().enumerate() {
        if s.name.is_empty() {
            return Err(format!("{path}.secrets[{i}].name: empty"));
        }
        // The name becomes an environment variable's: execve cannot take
        // '=' or NUL in it, and the failure would name nothing.
        if let Some(problem) = super::refs::env_var_problem(&s.name, "") {
            return Err(format!(
                "{path}.secrets[{i}].name {:?}: {problem}, which an environment variable \
                 cannot have",
                s.name
            ));
        }
        super::refs::parse_value_from(&s.value_from)
            .map_err(|e| format!("{path}.secrets[{i}].valueFrom: {e}"))?;
    }
    for (i, f) in files.iter().enumerate() {
        mirror_path(Path::new("/"), f).map_err(|e| format!("{path}.environmentFiles[{i}]: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn files_read_as_ecs_reads_them() {
        let text =
            "# comment\n\nA=1\n  # indented comment\nB=x=y\r\nC=\"q\"\nnoequals\n=novalue\nD=\n";
        assert_eq!(
            parse(text),
            vec![kv("A", "1"), kv("B", "x=y"), kv("C", "\"q\""), kv("D", "")]
        );
    }

    #[test]
    fn precedence_files_then_environment_then_secrets() {
        let files = vec![
            vec![kv("A", "file1"), kv("B", "file1"), kv("C", "file1")],
            vec![kv("A", "file2"), kv("E", "file2")],
        ];
        let env = vec![kv("B", "env"), kv("C", "env")];
        let secrets = vec![kv("C", "secret")];
        assert_eq!(
            layer(&files, &env, &secrets),
            vec!["A=file1", "B=env", "C=secret", "E=file2"]
        );
    }

    #[test]
    fn mirror_paths() {
        let f = |kind: &str, value: &str| EnvironmentFile {
            kind: kind.into(),
            value: value.into(),
        };
        let root = Path::new("/m");
        assert_eq!(
            mirror_path(root, &f("s3", "arn:aws:s3:::bkt/dir/app.env")),
            Ok(PathBuf::from("/m/bkt/dir/app.env"))
        );
        assert!(mirror_path(root, &f("s3", "arn:aws:s3:::bkt/../x.env")).is_err());
        assert!(mirror_path(root, &f("s3", "arn:aws:s3:::bkt")).is_err());
        assert!(mirror_path(root, &f("s3", "s3://bkt/x.env")).is_err());
        assert!(mirror_path(root, &f("file", "arn:aws:s3:::bkt/x.env")).is_err());
        assert_eq!(s3_root(None, Path::new("/st")), PathBuf::from("/st/s3"));
        assert_eq!(s3_root(Some("/x"), Path::new("/st")), PathBuf::from("/x"));
    }

    #[test]
    fn registration_checks_the_fields() {
        let other = |v: serde_json::Value| {
            serde_json::from_value::<std::collections::BTreeMap<String, serde_json::Value>>(v)
                .expect("map")
        };
        let p = "containerDefinitions[0]";
        check_container(
            p,
            &other(serde_json::json!({
                "secrets": [{"name": "A", "valueFrom": "/app/a"}],
                "environmentFiles": [{"type": "s3", "value": "arn:aws:s3:::b/a.env"}],
            })),
        )
        .expect("good");
        let e = check_container(
            p,
            &other(serde_json::json!({"secrets": [{"name": "A", "valueFrom": ""}]})),
        )
        .expect_err("empty");
        assert!(
            e.starts_with("containerDefinitions[0].secrets[0].valueFrom"),
            "{e}"
        );
        let e = check_container(
            p,
            &other(serde_json::json!({"secrets": [{"name": "A=B", "valueFrom": "/app/a"}]})),
        )
        .expect_err("=");
        assert!(
            e.starts_with("containerDefinitions[0].secrets[0].name"),
            "{e}"
        );
        let e = check_container(p, &other(serde_json::json!({"secrets": {"a": 1}})))
            .expect_err("shape");
        assert!(e.starts_with("containerDefinitions[0].secrets"), "{e}");
        let e = check_container(
            p,
            &other(serde_json::json!({"environmentFiles": [{"type": "s3", "value": "x"}]})),
        )
        .expect_err("arn");
        assert!(
            e.starts_with("containerDefinitions[0].environmentFiles[0]"),
            "{e}"
        );
    }
}
