//! UpdateCluster, UpdateClusterSettings and the account settings
//! (Put/PutDefault/Delete/List): stored and echoed. A cluster's settings
//! and configuration are in its record; account settings are one record
//! per principal plus the account's defaults. Names and values are
//! checked by `account_settings.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{decode, encode, retry, Ecs};
use crate::account_settings as rules;
use crate::error::{EcsError, EcsResult};
use crate::model::ClusterSetting;
use crate::store::{keys, Expect, Op};

/// One scope's account settings (a principal's, or the defaults).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredSettings {
    principal_arn: String,
    settings: BTreeMap<String, String>,
}

/// UpdateCluster's request.
#[derive(Clone, Debug, Default)]
pub struct UpdateCluster {
    pub cluster: String,
    pub settings: Option<Vec<ClusterSetting>>,
    pub configuration: Option<Value>,
    pub service_connect_defaults: Option<Value>,
}

/// ListAccountSettings' request.
#[derive(Clone, Debug, Default)]
pub struct ListAccountSettings {
    pub name: Option<String>,
    pub value: Option<String>,
    pub principal_arn: Option<String>,
    pub effective_settings: bool,
}

fn setting(name: &str, value: &str, principal: &str, kind: &str) -> Value {
    json!({ "name": name, "value": value, "principalArn": principal, "type": kind })
}

impl Ecs {
    /// The principal a call without `principalArn` acts for: with no
    /// identities, the account's root.
    pub fn caller_principal(&self) -> String {
        format!("arn:aws:iam::{}:root", self.partition.account)
    }

    pub fn update_cluster(&self, req: &UpdateCluster) -> EcsResult<Value> {
        for (i, s) in req.settings.iter().flatten().enumerate() {
            rules::check_cluster_setting(&format!("settings[{i}]"), &s.name, &s.value)?;
        }
        if let Some(c) = &req.configuration {
            if !c.is_object() {
                return Err(EcsError::invalid("configuration: must be an object"));
            }
        }
        let name = self.cluster(Some(&req.cluster))?.cluster_name;
        let updated = self.change_cluster(&name, |c| {
            for s in req.settings.iter().flatten() {
                c.settings.retain(|x| x.name != s.name);
                c.settings.push(s.clone());
            }
            if let Some(cfg) = &req.configuration {
                c.configuration = Some(cfg.clone());
            }
            if let Some(d) = &req.service_connect_defaults {
                c.service_connect_defaults = Some(d.clone());
            }
        })?;
        Ok(json!({ "cluster": self.with_counts(updated)? }))
    }

    pub fn update_cluster_settings(
        &self,
        cluster: &str,
        settings: &[ClusterSetting],
    ) -> EcsResult<Value> {
        self.update_cluster(&UpdateCluster {
            cluster: cluster.to_string(),
            settings: Some(settings.to_vec()),
            ..Default::default()
        })
    }

    fn settings_key(&self, principal: Option<&str>) -> String {
        match principal {
            None => keys::account_setting_defaults(),
            Some(p) => keys::account_settings_of(&rules::principal_key_part(p)),
        }
    }

    fn stored_settings(&self, principal: Option<&str>) -> EcsResult<StoredSettings> {
        match self.store.get(&self.settings_key(principal))? {
            Some(rec) => decode(&rec.value),
            None => Ok(StoredSettings::default()),
        }
    }

    /// Set (`Some`) or delete (`None`) `name` in a scope; returns what
    /// was there before.
    fn write_setting(
        &self,
        principal: Option<&str>,
        name: &str,
        value: Option<&str>,
    ) -> EcsResult<Option<String>> {
        let key = self.settings_key(principal);
        let owner = principal
            .map(str::to_string)
            .unwrap_or_else(|| self.caller_principal());
        retry(|| {
            let rec = self.store.get(&key)?;
            let mut s: StoredSettings = match &rec {
                Some(rec) => decode(&rec.value)?,
                None => StoredSettings::default(),
            };
            s.principal_arn = owner.clone();
            let before = match value {
                Some(v) => s.settings.insert(name.to_string(), v.to_string()),
                None => s.settings.remove(name),
            };
            let expect = rec.map_or(Expect::Absent, |r| Expect::Revision(r.revision));
            let op = Op::Put {
                key: key.clone(),
                value: encode(&s)?,
                expect,
            };
            Ok(self.store.commit(&[op]).map(|_| before))
        })
    }

    pub fn put_account_setting(
        &self,
        name: &str,
        value: &str,
        principal_arn: Option<&str>,
    ) -> EcsResult<Value> {
        rules::check(name, value)?;
        let principal = principal_arn
            .map(str::to_string)
            .unwrap_or_else(|| self.caller_principal());
        self.write_setting(Some(&principal), name, Some(value))?;
        Ok(json!({ "setting": setting(name, value, &principal, "user") }))
    }

    pub fn put_account_setting_default(&self, name: &str, value: &str) -> EcsResult<Value> {
        rules::check(name, value)?;
        self.write_setting(None, name, Some(value))?;
        Ok(json!({ "setting": setting(name, value, &self.caller_principal(), "user") }))
    }

    pub fn delete_account_setting(
        &self,
        name: &str,
        principal_arn: Option<&str>,
    ) -> EcsResult<Value> {
        rules::check_name(name)?;
        let principal = principal_arn
            .map(str::to_string)
            .unwrap_or_else(|| self.caller_principal());
        match self.write_setting(Some(&principal), name, None)? {
            Some(value) => Ok(json!({ "setting": setting(name, &value, &principal, "user") })),
            None => Err(EcsError::invalid(format!(
                "name: {name} is not set for {principal}"
            ))),
        }
    }

    /// The principal's own settings; with `effective_settings`, every
    /// setting's effective value (the principal's, else the account
    /// default, else AWS's). `name`/`value` filter.
    pub fn list_account_settings(&self, req: &ListAccountSettings) -> EcsResult<Value> {
        if let Some(n) = &req.name {
            rules::check_name(n)?;
        }
        if req.value.is_some() && req.name.is_none() {
            return Err(EcsError::invalid("value: give name with value"));
        }
        let principal = req
            .principal_arn
            .clone()
            .unwrap_or_else(|| self.caller_principal());
        let own = self.stored_settings(Some(&principal))?;
        let defaults = self.stored_settings(None)?;
        let mut out = Vec::new();
        for name in rules::names() {
            let (value, kind) = match own.settings.get(name) {
                Some(v) => (v.clone(), "user"),
                None if !req.effective_settings => continue,
                None => match defaults.settings.get(name) {
                    Some(v) => (v.clone(), "user"),
                    None => match rules::aws_default(name) {
                        Some(v) => (v.to_string(), "aws_managed"),
                        None => continue,
                    },
                },
            };
            let wanted = req.name.as_deref().is_none_or(|n| n == name)
                && req.value.as_deref().is_none_or(|v| v == value);
            if wanted {
                out.push(setting(name, &value, &principal, kind));
            }
        }
        Ok(json!({ "settings": out }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::fixtures::ecs;
    use crate::error::ErrorKind;

    #[test]
    fn account_settings_stored_and_effective() {
        let (_d, ecs) = ecs();
        let list = |effective: bool, name: Option<&str>| {
            ecs.list_account_settings(&ListAccountSettings {
                name: name.map(str::to_string),
                effective_settings: effective,
                ..Default::default()
            })
            .expect("list")["settings"]
                .clone()
        };
        assert_eq!(list(false, None), json!([]));
        ecs.put_account_setting("containerInsights", "enabled", None)
            .expect("put");
        ecs.put_account_setting_default("awsvpcTrunking", "enabled")
            .expect("default");
        assert_eq!(list(false, None)[0]["name"], "containerInsights");
        let eff = list(true, Some("awsvpcTrunking"));
        assert_eq!(eff[0]["value"], "enabled");
        assert_eq!(list(true, None).as_array().map(Vec::len), Some(11));
        assert_eq!(
            list(true, Some("guardDutyActivate"))[0]["type"],
            "aws_managed"
        );
        let del = ecs
            .delete_account_setting("containerInsights", None)
            .expect("delete");
        assert_eq!(del["setting"]["value"], "enabled");
        assert!(ecs
            .delete_account_setting("containerInsights", None)
            .is_err());
        assert!(ecs.put_account_setting("nope", "enabled", None).is_err());
        assert!(ecs
            .put_account_setting("awsvpcTrunking", "on", None)
            .is_err());
    }

    #[test]
    fn cluster_settings_and_configuration() {
        let (_d, ecs) = ecs();
        let s = |v: &str| ClusterSetting {
            name: "containerInsights".into(),
            value: v.into(),
        };
        ecs.update_cluster_settings("default", &[s("enabled")])
            .expect("settings");
        let out = ecs
            .update_cluster(&UpdateCluster {
                cluster: "default".into(),
                settings: Some(vec![s("enhanced")]),
                configuration: Some(json!({"executeCommandConfiguration": {"logging": "DEFAULT"}})),
                ..Default::default()
            })
            .expect("update");
        assert_eq!(
            out["cluster"]["settings"],
            json!([{"name": "containerInsights", "value": "enhanced"}])
        );
        let d = ecs.describe_clusters(&[]).expect("describe");
        assert_eq!(
            d["clusters"][0]["configuration"]["executeCommandConfiguration"]["logging"],
            "DEFAULT"
        );
        let e = ecs
            .update_cluster_settings("nope", &[s("enabled")])
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::ClusterNotFoundException);
        assert!(ecs.update_cluster_settings("default", &[s("on")]).is_err());
    }
}
