//! The secret store's operations on the cluster's store, in SSM's and
//! Secrets Manager's shapes (their JSON as aws prints it): store I/O and
//! sealing only; names and labels are [`super::refs`]' and
//! [`super::records`]'.

use serde_json::{json, Value};

use super::records::{ParameterType, SecretVersion, StoredParameter, StoredSecret};
#[cfg(test)]
use super::refs::parse_value_from;
use super::refs::{self, SecretId, SecretRef};
use super::sealing::{SealError, SealingKey};
use crate::ecs::{decode, encode, now, retry, Ecs};
use crate::error::{EcsError, EcsResult, ErrorKind};
use crate::store::{keys, Expect, Op, StoreError};

/// put-parameter's request.
pub struct PutParameter {
    pub name: String,
    pub value: String,
    pub kind: ParameterType,
    pub overwrite: bool,
}

impl From<SealError> for EcsError {
    fn from(e: SealError) -> Self {
        EcsError::new(ErrorKind::ServerException, e.to_string())
    }
}

/// SSM's and Secrets Manager's error for a malformed request.
fn validation(message: String) -> EcsError {
    EcsError::new(ErrorKind::ValidationException, message)
}

fn rand_bytes<const N: usize>() -> EcsResult<[u8; N]> {
    Ok(crate::random::bytes().map_err(SealError::Random)?)
}

fn parameter_not_found(name: &str) -> EcsError {
    EcsError::new(
        ErrorKind::ParameterNotFound,
        format!("Parameter {name} not found."),
    )
}

fn secret_not_found() -> EcsError {
    EcsError::new(
        ErrorKind::ResourceNotFoundException,
        "Secrets Manager can't find the specified secret.",
    )
}

/// A parameter's name as given (a name or its ARN), checked.
fn parameter_name(name: &str) -> EcsResult<String> {
    match refs::parse_value_from(name).map_err(validation)? {
        SecretRef::Parameter(n) => Ok(n),
        SecretRef::Secret { .. } => {
            Err(validation(format!("--name {name:?}: not an SSM parameter")))
        }
    }
}

impl Ecs {
    pub fn put_parameter(&self, key: &SealingKey, req: PutParameter) -> EcsResult<Value> {
        refs::check_parameter_name(&req.name).map_err(validation)?;
        refs::check_value_size("value", &req.value, refs::MAX_PARAMETER_VALUE)
            .map_err(validation)?;
        let store_key = keys::parameter(&req.name);
        let sealed = key.seal(&store_key, &req.value)?;
        let version = retry(|| {
            let old = self.store.get(&store_key)?;
            let (version, expect) = match &old {
                Some(_) if !req.overwrite => {
                    return Err(EcsError::new(
                        ErrorKind::ParameterAlreadyExists,
                        "The parameter already exists. To overwrite this value, set the \
                         overwrite option in the request to true.",
                    ))
                }
                Some(r) => (
                    decode::<StoredParameter>(&r.value)?.version + 1,
                    Expect::Revision(r.revision),
                ),
                None => (1, Expect::Absent),
            };
            let record = StoredParameter {
                name: req.name.clone(),
                kind: req.kind,
                version,
                last_modified: now(),
                sealed: sealed.clone(),
            };
            let op = Op::Put {
                key: store_key.clone(),
                value: encode(&record)?,
                expect,
            };
            Ok(self.store.commit(&[op]).map(|_| version))
        })?;
        Ok(json!({"Version": version, "Tier": "Standard"}))
    }

    pub fn get_parameter(
        &self,
        key: &SealingKey,
        name: &str,
        with_decryption: bool,
    ) -> EcsResult<Value> {
        let name = parameter_name(name)?;
        let store_key = keys::parameter(&name);
        let rec = self
            .store
            .get(&store_key)?
            .ok_or_else(|| parameter_not_found(&name))?;
        let p: StoredParameter = decode(&rec.value)?;
        // As SSM: a SecureString without --with-decryption shows its
        // ciphertext.
        let value = if p.kind == ParameterType::SecureString && !with_decryption {
            p.sealed.clone()
        } else {
            key.open(&format!("parameter {}", p.name), &store_key, &p.sealed)?
        };
        Ok(json!({"Parameter": {
            "Name": p.name,
            "Type": p.kind.as_str(),
            "Value": value,
            "Version": p.version,
            "LastModifiedDate": p.last_modified,
            "ARN": refs::parameter_arn(&self.partition, &p.name),
            "DataType": "text",
        }}))
    }

    pub fn delete_parameter(&self, name: &str) -> EcsResult<Value> {
        let name = parameter_name(name)?;
        let store_key = keys::parameter(&name);
        retry(|| {
            let Some(rec) = self.store.get(&store_key)? else {
                return Err(parameter_not_found(&name));
            };
            Ok(self.store.commit(&[Op::Delete {
                key: store_key.clone(),
                expect: Expect::Revision(rec.revision),
            }]))
        })?;
        Ok(json!({}))
    }

    pub fn create_secret(&self, key: &SealingKey, name: &str, value: &str) -> EcsResult<Value> {
        refs::check_secret_name(name).map_err(validation)?;
        refs::check_value_size("secretString", value, refs::MAX_SECRET_VALUE)
            .map_err(validation)?;
        let store_key = keys::secret(name);
        let arn = refs::secret_arn(&self.partition, name, &refs::arn_suffix(&rand_bytes()?));
        let version = self.new_version(key, &store_key, value)?;
        let mut secret = StoredSecret {
            name: name.into(),
            arn: arn.clone(),
            created: now(),
            versions: vec![],
        };
        let id = version.id.clone();
        secret.push(version);
        let op = Op::Put {
            key: store_key,
            value: encode(&secret)?,
            expect: Expect::Absent,
        };
        match self.store.commit(&[op]) {
            Err(StoreError::Conflict(_)) => Err(EcsError::new(
                ErrorKind::ResourceExistsException,
                format!("The operation failed because the secret {name} already exists."),
            )),
            other => other.map_err(EcsError::from),
        }?;
        Ok(json!({"ARN": arn, "Name": name, "VersionId": id}))
    }

    pub fn put_secret_value(
        &self,
        key: &SealingKey,
        secret_id: &str,
        value: &str,
    ) -> EcsResult<Value> {
        let id = refs::parse_secret_id(secret_id).map_err(validation)?;
        refs::check_value_size("secretString", value, refs::MAX_SECRET_VALUE)
            .map_err(validation)?;
        let (out, id) = retry(|| {
            let (store_key, rev, mut secret) = self.find_secret(&id)?;
            let version = self.new_version(key, &store_key, value)?;
            let vid = version.id.clone();
            secret.push(version);
            let op = Op::Put {
                key: store_key,
                value: encode(&secret)?,
                expect: Expect::Revision(rev),
            };
            Ok(self.store.commit(&[op]).map(|_| (secret, vid)))
        })?;
        Ok(json!({
            "ARN": out.arn,
            "Name": out.name,
            "VersionId": id,
            "VersionStages": [refs::CURRENT],
        }))
    }

    pub fn get_secret_value(
        &self,
        key: &SealingKey,
        secret_id: &str,
        version_id: Option<&str>,
        version_stage: Option<&str>,
    ) -> EcsResult<Value> {
        let id = refs::parse_secret_id(secret_id).map_err(validation)?;
        let (secret, v, plain) = self.open_secret(key, &id, version_id, version_stage)?;
        Ok(json!({
            "ARN": secret.arn,
            "Name": secret.name,
            "VersionId": v.id,
            "SecretString": plain,
            "VersionStages": v.stages,
            "CreatedDate": v.created,
        }))
    }

    /// The value a container's `valueFrom` names, for its environment.
    pub fn resolve_secret(&self, key: &SealingKey, r: &SecretRef) -> EcsResult<String> {
        match r {
            SecretRef::Parameter(name) => {
                let v = self.get_parameter(key, name, true)?;
                Ok(v["Parameter"]["Value"].as_str().unwrap_or_default().into())
            }
            SecretRef::Secret {
                id,
                json_key,
                version_stage,
                version_id,
            } => {
                let sid = SecretId::Arn {
                    candidates: refs::secret_name_candidates(id),
                    tail: id.clone(),
                };
                let (_, _, plain) =
                    self.open_secret(key, &sid, version_id.as_deref(), version_stage.as_deref())?;
                match json_key {
                    None => Ok(plain),
                    Some(k) => refs::json_key(&plain, k).map_err(EcsError::invalid),
                }
            }
        }
    }

    /// A secret's version (by id or stage; the current one by default)
    /// and its value, opened: the one lookup of get-secret-value and of a
    /// task's `secrets`.
    fn open_secret(
        &self,
        key: &SealingKey,
        id: &SecretId,
        version_id: Option<&str>,
        version_stage: Option<&str>,
    ) -> EcsResult<(StoredSecret, SecretVersion, String)> {
        let (store_key, _, secret) = self.find_secret(id)?;
        let v = secret
            .version(version_id, version_stage)
            .map_err(|m| EcsError::new(ErrorKind::ResourceNotFoundException, m))?
            .clone();
        let plain = key.open(
            &secret_label(&secret.name, &v.id),
            &version_aad(&store_key, &v.id),
            &v.sealed,
        )?;
        Ok((secret, v, plain))
    }

    /// A new version of the secret at `store_key`, its value sealed.
    fn new_version(
        &self,
        key: &SealingKey,
        store_key: &str,
        value: &str,
    ) -> EcsResult<SecretVersion> {
        let id = refs::version_id(&rand_bytes()?);
        Ok(SecretVersion {
            sealed: key.seal(&version_aad(store_key, &id), value)?,
            id,
            stages: vec![],
            created: now(),
        })
    }

    /// The secret `id` names, with its key and revision. An ARN must be
    /// the secret's own (a full ARN), or name it (a partial one).
    fn find_secret(&self, id: &SecretId) -> EcsResult<(String, u64, StoredSecret)> {
        let candidates = match id {
            SecretId::Name(n) => vec![n.clone()],
            SecretId::Arn { candidates, .. } => candidates.clone(),
        };
        for name in candidates {
            let store_key = keys::secret(&name);
            let Some(rec) = self.store.get(&store_key)? else {
                continue;
            };
            let secret: StoredSecret = decode(&rec.value)?;
            let matches = match id {
                SecretId::Name(_) => true,
                SecretId::Arn { tail, .. } => {
                    *tail == secret.name || secret.arn.ends_with(&format!(":secret:{tail}"))
                }
            };
            if matches {
                return Ok((store_key, rec.revision, secret));
            }
        }
        Err(secret_not_found())
    }
}

/// A secret's version as errors name it.
fn secret_label(name: &str, version_id: &str) -> String {
    format!("secret {name} (version {version_id})")
}

/// The associated data of a secret's version: its record and its id, so
/// that versions cannot be swapped.
fn version_aad(store_key: &str, version_id: &str) -> String {
    format!("{store_key}#{version_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::fixtures::ecs;

    #[test]
    fn values_round_trip_and_the_store_holds_no_plaintext() {
        // The key file must be root's: only as root.
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let (dir, ecs) = ecs();
        let key = SealingKey::open_or_create(dir.path()).expect("key");
        let put = |value: &str, overwrite| {
            ecs.put_parameter(
                &key,
                PutParameter {
                    name: "/app/db".into(),
                    value: value.into(),
                    kind: ParameterType::SecureString,
                    overwrite,
                },
            )
        };
        assert_eq!(put("pw-one", false).expect("put")["Version"], 1);
        let e = put("pw-two", false).expect_err("exists");
        assert_eq!(e.kind, ErrorKind::ParameterAlreadyExists);
        assert_eq!(put("pw-two", true).expect("overwrite")["Version"], 2);
        let got = ecs.get_parameter(&key, "/app/db", true).expect("get");
        assert_eq!(got["Parameter"]["Value"], "pw-two");
        let hidden = ecs.get_parameter(&key, "/app/db", false).expect("get");
        assert_ne!(hidden["Parameter"]["Value"], "pw-two");

        let made = ecs
            .create_secret(&key, "db", r#"{"user":"admin"}"#)
            .expect("create");
        let arn = made["ARN"].as_str().expect("arn").to_string();
        ecs.put_secret_value(&key, &arn, "second").expect("put");
        let r = parse_value_from(&format!("{arn}:::")).expect("ref");
        assert_eq!(ecs.resolve_secret(&key, &r).expect("current"), "second");
        let prev = parse_value_from(&format!("{arn}:user:AWSPREVIOUS:")).expect("ref");
        assert_eq!(ecs.resolve_secret(&key, &prev).expect("previous"), "admin");
        let by_name = parse_value_from("arn:aws:secretsmanager:r:1:secret:db").expect("ref");
        assert_eq!(
            ecs.resolve_secret(&key, &by_name).expect("partial"),
            "second"
        );
        let other = parse_value_from("arn:aws:secretsmanager:r:1:secret:db-zzzzzz").expect("ref");
        assert!(ecs.resolve_secret(&key, &other).is_err(), "another ARN");

        for (_, rec) in ecs.store.list("").expect("list") {
            let text = String::from_utf8_lossy(&rec.value);
            for plain in ["pw-one", "pw-two", "admin", "second"] {
                assert!(!text.contains(plain), "{plain} in {text}");
            }
        }
        ecs.delete_parameter("/app/db").expect("delete");
        let e = ecs.get_parameter(&key, "/app/db", true).expect_err("gone");
        assert_eq!(e.kind, ErrorKind::ParameterNotFound);
    }
}
