//! The secret store's records, as `store::keys` files them, and their
//! pure changes: a parameter's next version, a secret's new value moving
//! the staging labels as Secrets Manager moves them. Values are always
//! sealed ([`super::sealing`]) before they reach a record.

use serde::{Deserialize, Serialize};

use super::refs::{CURRENT, PREVIOUS};

/// SSM's parameter types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParameterType {
    String,
    StringList,
    SecureString,
}

impl ParameterType {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "String" => Ok(Self::String),
            "StringList" => Ok(Self::StringList),
            "SecureString" => Ok(Self::SecureString),
            _ => Err(format!(
                "--type {s:?}: one of String, StringList, SecureString"
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::String => "String",
            Self::StringList => "StringList",
            Self::SecureString => "SecureString",
        }
    }
}

/// `parameters/<name>`: one SSM parameter, its value sealed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredParameter {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParameterType,
    pub version: u64,
    pub last_modified: String,
    pub sealed: String,
}

/// `secrets/<name>`: one Secrets Manager secret and its labelled versions.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSecret {
    pub name: String,
    pub arn: String,
    pub created: String,
    /// Newest last; only versions that still carry a staging label.
    pub versions: Vec<SecretVersion>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretVersion {
    pub id: String,
    pub stages: Vec<String>,
    pub created: String,
    pub sealed: String,
}

impl StoredSecret {
    /// Adds `version` as AWSCURRENT: the current one becomes AWSPREVIOUS,
    /// the previous one loses its label and, with no label left, is
    /// dropped (Secrets Manager deprecates such versions).
    pub fn push(&mut self, mut version: SecretVersion) {
        for v in &mut self.versions {
            v.stages.retain(|s| s != PREVIOUS);
            for s in &mut v.stages {
                if s == CURRENT {
                    *s = PREVIOUS.to_string();
                }
            }
        }
        self.versions.retain(|v| !v.stages.is_empty());
        version.stages = vec![CURRENT.to_string()];
        self.versions.push(version);
    }

    /// The version a get names: by id, by stage, or AWSCURRENT; both
    /// given must agree. An error says what was not found, in Secrets
    /// Manager's words.
    pub fn version(&self, id: Option<&str>, stage: Option<&str>) -> Result<&SecretVersion, String> {
        let stage = match (id, stage) {
            (Some(_), s) => s,
            (None, s) => Some(s.unwrap_or(CURRENT)),
        };
        self.versions
            .iter()
            .find(|v| {
                id.is_none_or(|i| v.id == i)
                    && stage.is_none_or(|s| v.stages.iter().any(|x| x == s))
            })
            .ok_or_else(|| match (id, stage) {
                (Some(i), _) => format!(
                    "Secrets Manager can't find the specified secret value for VersionId: {i}"
                ),
                (None, s) => format!(
                    "Secrets Manager can't find the specified secret value for staging label: {}",
                    s.unwrap_or(CURRENT)
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(id: &str) -> SecretVersion {
        SecretVersion {
            id: id.into(),
            stages: vec![],
            created: String::new(),
            sealed: String::new(),
        }
    }

    #[test]
    fn new_values_move_the_labels() {
        let mut s = StoredSecret {
            name: "db".into(),
            arn: String::new(),
            created: String::new(),
            versions: vec![],
        };
        s.push(version("v1"));
        s.push(version("v2"));
        assert_eq!(s.version(None, None).expect("current").id, "v2");
        assert_eq!(s.version(None, Some(PREVIOUS)).expect("previous").id, "v1");
        s.push(version("v3"));
        assert_eq!(s.versions.len(), 2, "v1 lost its last label");
        assert_eq!(s.version(Some("v2"), None).expect("by id").id, "v2");
        assert!(s.version(Some("v1"), None).is_err());
        assert!(
            s.version(Some("v2"), Some(CURRENT)).is_err(),
            "both must agree"
        );
        assert!(s
            .version(None, Some("nope"))
            .unwrap_err()
            .contains("staging label: nope"));
    }

    #[test]
    fn parameter_types() {
        assert_eq!(
            ParameterType::parse("SecureString"),
            Ok(ParameterType::SecureString)
        );
        assert!(ParameterType::parse("secure").is_err());
    }
}
