//! ECS's ARNs read back: which resource `arn:aws:ecs:<region>:<account>:
//! <kind>/<...>` names (TagResource and its kin take any of them). Pure.

use crate::error::{EcsError, EcsResult};
use crate::model::Partition;

/// The resource an ARN names, by the parts berth keys it by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceRef<'a> {
    Cluster(&'a str),
    Service {
        cluster: &'a str,
        name: &'a str,
    },
    Task {
        cluster: &'a str,
        id: &'a str,
    },
    ContainerInstance {
        cluster: &'a str,
        id: &'a str,
    },
    TaskDefinition {
        family: &'a str,
        revision: u64,
    },
    CapacityProvider(&'a str),
    /// A well-formed ECS ARN of another region or account: nothing berth
    /// holds (a name looked up here would find a different resource).
    Elsewhere,
}

fn invalid(field: &str, arn: &str) -> EcsError {
    EcsError::invalid(format!("{field}: {arn:?}: The ARN provided is invalid."))
}

/// What `arn` names; `field` is the request member named in errors.
pub fn parse<'a>(field: &str, partition: &Partition, arn: &'a str) -> EcsResult<ResourceRef<'a>> {
    // arn:<partition>:ecs:<region>:<account>:<resource>
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, _aws, service, region, account, resource] = parts[..] else {
        return Err(invalid(field, arn));
    };
    if prefix != "arn" || service != "ecs" {
        return Err(invalid(field, arn));
    }
    let (kind, rest) = resource
        .split_once('/')
        .ok_or_else(|| invalid(field, arn))?;
    let nonempty = |s: &'a str| (!s.is_empty() && !s.contains('/')).then_some(s);
    let two = |rest: &'a str| -> Option<(&'a str, &'a str)> {
        let (a, b) = rest.split_once('/')?;
        Some((nonempty(a)?, nonempty(b)?))
    };
    let parsed = match kind {
        "cluster" => nonempty(rest).map(ResourceRef::Cluster),
        "service" => two(rest).map(|(cluster, name)| ResourceRef::Service { cluster, name }),
        "task" => two(rest).map(|(cluster, id)| ResourceRef::Task { cluster, id }),
        "container-instance" => {
            two(rest).map(|(cluster, id)| ResourceRef::ContainerInstance { cluster, id })
        }
        "task-definition" => rest.rsplit_once(':').and_then(|(family, rev)| {
            Some(ResourceRef::TaskDefinition {
                family: nonempty(family)?,
                revision: rev.parse().ok()?,
            })
        }),
        "capacity-provider" => nonempty(rest).map(ResourceRef::CapacityProvider),
        _ => None,
    }
    .ok_or_else(|| invalid(field, arn))?;
    if region != partition.region || account != partition.account {
        return Ok(ResourceRef::Elsewhere);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(arn: &str) -> EcsResult<ResourceRef<'_>> {
        parse("resourceArn", &Partition::default(), arn)
    }

    #[test]
    fn every_kind_berth_makes() {
        let base = "arn:aws:ecs:local:000000000000:";
        let arn = |r: &str| format!("{base}{r}");
        assert_eq!(p(&arn("cluster/a")).unwrap(), ResourceRef::Cluster("a"));
        assert_eq!(
            p(&arn("service/c/web")).unwrap(),
            ResourceRef::Service {
                cluster: "c",
                name: "web"
            }
        );
        assert_eq!(
            p(&arn("task/c/0123")).unwrap(),
            ResourceRef::Task {
                cluster: "c",
                id: "0123"
            }
        );
        assert_eq!(
            p(&arn("container-instance/c/h1")).unwrap(),
            ResourceRef::ContainerInstance {
                cluster: "c",
                id: "h1"
            }
        );
        assert_eq!(
            p(&arn("task-definition/web:12")).unwrap(),
            ResourceRef::TaskDefinition {
                family: "web",
                revision: 12
            }
        );
        assert_eq!(
            p(&arn("capacity-provider/FARGATE")).unwrap(),
            ResourceRef::CapacityProvider("FARGATE")
        );
        assert_eq!(
            p("arn:aws:ecs:us-east-1:123456789012:cluster/a").unwrap(),
            ResourceRef::Elsewhere
        );
    }

    #[test]
    fn malformed_arns_are_invalid_parameters() {
        for bad in [
            "",
            "cluster/a",
            "arn:aws:s3:local:000000000000:cluster/a",
            "arn:aws:ecs:local:000000000000:cluster",
            "arn:aws:ecs:local:000000000000:cluster/",
            "arn:aws:ecs:local:000000000000:service/web",
            "arn:aws:ecs:local:000000000000:service/c/web/x",
            "arn:aws:ecs:local:000000000000:task-definition/web",
            "arn:aws:ecs:local:000000000000:task-definition/web:x",
            "arn:aws:ecs:local:000000000000:widget/a",
        ] {
            let e = p(bad).unwrap_err();
            assert_eq!(e.kind, crate::ErrorKind::InvalidParameterException, "{bad}");
            assert!(e.message.starts_with("resourceArn: "), "{}", e.message);
        }
    }
}
