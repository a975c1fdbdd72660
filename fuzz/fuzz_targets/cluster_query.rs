//! ECS's cluster query language (`memberOf` placement constraints):
//! parsing never panics nor recurses without bound, and what parses is a
//! constraint placement obeys.

#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use berth_orchestrator::scheduler::placement::{place, Constraint, Expr, Instance, Request};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fn instance(id: &str, attributes: &[(&str, &str)], groups: &[&str]) -> Instance {
    Instance {
        arn: format!("arn:aws:ecs:us-east-1:000000000000:container-instance/fuzz/{id}"),
        id: id.to_owned(),
        remaining_cpu: 4096,
        remaining_memory: 8192,
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        task_groups: groups.iter().map(|g| g.to_string()).collect(),
        status: Instance::ACTIVE.to_owned(),
        host_ports: Default::default(),
    }
}

/// A small cluster whose attributes the seeds' expressions talk about.
fn cluster() -> &'static [Instance] {
    static CLUSTER: OnceLock<Vec<Instance>> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        vec![
            instance(
                "i-0a",
                &[
                    ("ecs.instance-type", "t2.micro"),
                    ("ecs.availability-zone", "us-east-1a"),
                    ("ecs.os-type", "linux"),
                    ("ecs.cpu-architecture", "x86_64"),
                    ("stack", "prod"),
                    ("size", "10"),
                ],
                &["service:web", "family:db"],
            ),
            instance(
                "i-0b",
                &[
                    ("ecs.instance-type", "m5.large"),
                    ("ecs.availability-zone", "us-east-1b"),
                    ("ecs.os-type", "linux"),
                    ("stack", "test"),
                    ("size", "9.5"),
                    ("and", "or"),
                ],
                &[],
            ),
            instance("i-0c", &[], &["service:web", "service:web"]),
            instance(
                "",
                &[("ecs.instance-type", ""), ("size", "-1e3"), ("é", "ü*")],
                &["*"],
            ),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = Expr::parse(source) else {
        return;
    };
    assert_eq!(expr.to_string(), source, "an expression shows as written");
    let instances = cluster();
    let members: Vec<bool> = instances.iter().map(|i| expr.matches(i)).collect();

    // `not (E)` selects exactly the instances E does not, when it parses
    // (the extra nesting may pass the depth or length limit).
    if let Ok(negated) = Expr::parse(&format!("not ({source})")) {
        for (instance, &member) in instances.iter().zip(&members) {
            assert_eq!(
                negated.matches(instance),
                !member,
                "not ({source}) on {}",
                instance.id
            );
        }
    }
    // Parenthesized, it means the same.
    if let Ok(grouped) = Expr::parse(&format!("({source})")) {
        for (instance, &member) in instances.iter().zip(&members) {
            assert_eq!(
                grouped.matches(instance),
                member,
                "({source}) on {}",
                instance.id
            );
        }
    }

    // As a placement constraint: accepted, and obeyed.
    let constraint = Constraint::from_json(&json!({ "type": "memberOf", "expression": source }))
        .unwrap_or_else(|e| panic!("{source:?} parses but is refused as memberOf: {e}"));
    let constraints = [constraint];
    let request = Request::new(128, 128, "service:web", &constraints);
    match place(instances, &request, &[], 7) {
        Some(chosen) => assert!(members[chosen], "placed on a non-member: {source:?}"),
        None => assert!(
            members.iter().all(|m| !m),
            "no placement although an instance is a member: {source:?}"
        ),
    }
});
