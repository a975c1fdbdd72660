//! RunTask's `clientToken`: the first call claims the token (in its
//! cluster) before placing anything and records its tasks after; a retry
//! with the same parameters within 24 hours answers those tasks (as they
//! are now) and starts none; other parameters are a ConflictException,
//! as ECS answers. The rules are `client_tokens.rs`'s.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{decode, encode, now, public, retry, Ecs, RunTask};
use crate::account_settings::principal_key_part;
use crate::client_tokens;
use crate::error::{EcsError, EcsResult, ErrorKind};
use crate::model::{name_from_arn, Failure, Task};
use crate::store::{keys, Expect, Op};

/// A token's record: the request it came with, when, and (once placed)
/// its answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientToken {
    fingerprint: String,
    at: String,
    /// None while the first call is placing its tasks.
    #[serde(default)]
    task_arns: Option<Vec<String>>,
    #[serde(default)]
    failures: Vec<Failure>,
}

/// What a claim found.
enum Claim {
    /// The token is this call's: place the tasks.
    Ours,
    /// A retry: answer these.
    Done(ClientToken),
}

impl Ecs {
    pub(super) fn run_task_once(
        &self,
        req: &RunTask,
        token: &str,
    ) -> EcsResult<(Value, Vec<Task>)> {
        client_tokens::check("clientToken", token)?;
        let cluster = self.cluster(req.cluster.as_deref())?.cluster_name;
        let key = keys::client_token(&cluster, &principal_key_part(token));
        let fingerprint = client_tokens::fingerprint(&cluster, req);
        match self.claim(&key, token, &fingerprint)? {
            Claim::Done(first) => return Ok((self.replay(&cluster, &first)?, Vec::new())),
            Claim::Ours => {}
        }
        let (out, placed) = match self.run_task_fresh(req) {
            Ok(done) => done,
            Err(e) => {
                // Refused: the token is free for a corrected request.
                self.store.commit(&[Op::Delete {
                    key,
                    expect: Expect::Any,
                }])?;
                return Err(e);
            }
        };
        let record = ClientToken {
            fingerprint,
            at: now(),
            task_arns: Some(placed.iter().map(|t| t.task_arn.clone()).collect()),
            failures: serde_json::from_value(out["failures"].clone()).unwrap_or_default(),
        };
        self.store.commit(&[Op::Put {
            key,
            value: encode(&record)?,
            expect: Expect::Any,
        }])?;
        Ok((out, placed))
    }

    fn claim(&self, key: &str, token: &str, fingerprint: &str) -> EcsResult<Claim> {
        retry(|| {
            let existing = self.store.get(key)?;
            let expect = match &existing {
                Some(rec) => {
                    let first: ClientToken = decode(&rec.value)?;
                    if !client_tokens::expired(&first.at, chrono::Utc::now()) {
                        if first.fingerprint != fingerprint {
                            return Err(EcsError::new(
                                ErrorKind::ConflictException,
                                format!(
                                    "clientToken: {token} was used within 24 hours by a \
                                     request with other parameters"
                                ),
                            ));
                        }
                        return match first.task_arns {
                            Some(_) => Ok(Ok(Claim::Done(first))),
                            None => Err(EcsError::new(
                                ErrorKind::ConflictException,
                                format!("clientToken: {token}: the first request is still running"),
                            )),
                        };
                    }
                    Expect::Revision(rec.revision)
                }
                None => Expect::Absent,
            };
            let claim = ClientToken {
                fingerprint: fingerprint.to_string(),
                at: now(),
                task_arns: None,
                failures: Vec::new(),
            };
            let op = Op::Put {
                key: key.to_string(),
                value: encode(&claim)?,
                expect,
            };
            Ok(self.store.commit(&[op]).map(|_| Claim::Ours))
        })
    }

    /// The first call's tasks as they are now, and its failures.
    fn replay(&self, cluster: &str, first: &ClientToken) -> EcsResult<Value> {
        let mut tasks = Vec::new();
        for arn in first.task_arns.iter().flatten() {
            if let Some(rec) = self.store.get(&keys::task(cluster, name_from_arn(arn)))? {
                tasks.push(public(&decode(&rec.value)?));
            }
        }
        Ok(json!({ "tasks": tasks, "failures": first.failures }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::fixtures::{ecs, register_web};

    #[test]
    fn a_retry_answers_the_first_tasks() {
        let (_d, ecs) = ecs();
        register_web(&ecs);
        let req = RunTask {
            task_definition: "web".into(),
            count: 2,
            client_token: Some("tok-1".into()),
            ..Default::default()
        };
        let (first, placed) = ecs.run_task(&req).expect("first");
        assert_eq!(placed.len(), 2);
        let (again, none) = ecs.run_task(&req).expect("retry");
        assert!(none.is_empty(), "a retry starts nothing");
        assert_eq!(again["tasks"][1]["taskArn"], first["tasks"][1]["taskArn"]);
        let listed = ecs.list_tasks(None, &Default::default()).expect("list");
        assert_eq!(listed["taskArns"].as_array().map(Vec::len), Some(2));
        let other = RunTask {
            count: 1,
            ..req.clone()
        };
        assert_eq!(
            ecs.run_task(&other).unwrap_err().kind,
            ErrorKind::ConflictException
        );
        let bad = RunTask {
            task_definition: "nope".into(),
            client_token: Some("tok-2".into()),
            ..req.clone()
        };
        assert!(ecs.run_task(&bad).is_err());
        let fixed = RunTask {
            client_token: Some("tok-2".into()),
            ..req
        };
        assert_eq!(ecs.run_task(&fixed).expect("freed").1.len(), 2);
    }

    #[test]
    fn create_service_again_answers_the_first() {
        let (_d, ecs) = ecs();
        register_web(&ecs);
        let req = crate::ecs::services::CreateService {
            service_name: "web".into(),
            task_definition: "web".into(),
            desired_count: 0,
            ..Default::default()
        };
        let first = ecs.create_service(&req).expect("create");
        let again = ecs.create_service(&req).expect("again");
        assert_eq!(again["service"]["createdAt"], first["service"]["createdAt"]);
        let other = crate::ecs::services::CreateService {
            desired_count: 1,
            ..req
        };
        let e = ecs.create_service(&other).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParameterException);
        assert!(e.message.contains("Creation of service was not idempotent"));
    }
}
