use std::collections::HashMap;

use super::*;

const FILE: &str = "/etc/berth/agent.config";

fn from_file(text: &str) -> Result<(AgentConfig, Vec<String>), ConfigError> {
    let mut cfg = AgentConfig::default();
    let unknown = cfg.apply(&parse_lines(text, FILE)?, FILE)?;
    Ok((cfg, unknown))
}

#[test]
fn defaults_are_the_ecs_agents() {
    let c = AgentConfig::default();
    assert_eq!(c.task_cleanup_wait, Duration::from_secs(3 * 3600));
    assert_eq!(c.image_cleanup_interval, Duration::from_secs(1800));
    assert_eq!(c.image_minimum_cleanup_age, Duration::from_secs(3600));
    assert_eq!(c.images_delete_per_cycle, 5);
    assert!(!c.disable_image_cleanup);
    assert_eq!(c.image_pull_behavior, PullBehavior::Default);
    assert_eq!(c.reserved_ports, [22, 2375, 2376, 51678, 51679]);
    assert_eq!(c.reserved_memory, 0);
    assert!(c.instance_attributes.is_empty());
}

#[test]
fn a_file_in_the_ecs_agents_format() {
    let text = r#"
# the agent's own file, as /etc/ecs/ecs.config
ECS_CLUSTER=prod
ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION=1h30m
ECS_IMAGE_CLEANUP_INTERVAL=90m
ECS_IMAGE_MINIMUM_CLEANUP_AGE="0s"
ECS_NUM_IMAGES_DELETE_PER_CYCLE=2
ECS_DISABLE_IMAGE_CLEANUP=true
ECS_IMAGE_PULL_BEHAVIOR=prefer-cached
ECS_RESERVED_PORTS=[22, 8080]
ECS_RESERVED_PORTS_UDP=[53]
ECS_RESERVED_MEMORY=256
ECS_INSTANCE_ATTRIBUTES={"stack": "blue", "team": "core"}
ECS_ENABLE_TASK_IAM_ROLE=true
"#;
    let (c, unknown) = from_file(text).expect("parses");
    assert_eq!(c.cluster.as_deref(), Some("prod"));
    assert_eq!(c.task_cleanup_wait, Duration::from_secs(5400));
    assert_eq!(c.image_cleanup_interval, Duration::from_secs(5400));
    assert_eq!(c.image_minimum_cleanup_age, Duration::ZERO);
    assert_eq!(c.images_delete_per_cycle, 2);
    assert!(c.disable_image_cleanup);
    assert_eq!(c.image_pull_behavior, PullBehavior::PreferCached);
    assert_eq!(c.reserved_ports, [22, 8080]);
    assert_eq!(c.reserved_ports_udp, [53]);
    assert_eq!(c.reserved_memory, 256);
    assert_eq!(c.instance_attributes["stack"], "blue");
    assert_eq!(c.instance_attributes.len(), 2);
    // Known to the ECS agent, not read by berth: warned about.
    assert_eq!(unknown, ["ECS_ENABLE_TASK_IAM_ROLE"]);
}

#[test]
fn bad_values_are_named_with_their_source() {
    let e = from_file("ECS_RESERVED_PORTS=22,80").unwrap_err();
    assert_eq!(e.key, "ECS_RESERVED_PORTS");
    assert!(
        e.to_string()
            .starts_with("ECS_RESERVED_PORTS in /etc/berth/agent.config: "),
        "{e}"
    );
    for bad in [
        "ECS_RESERVED_PORTS=[70000]",
        "ECS_RESERVED_PORTS=[0]",
        "ECS_RESERVED_MEMORY=-5",
        "ECS_RESERVED_MEMORY=lots",
        "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION=3 hours",
        "ECS_IMAGE_PULL_BEHAVIOR=sometimes",
        "ECS_DISABLE_IMAGE_CLEANUP=maybe",
        "ECS_NUM_IMAGES_DELETE_PER_CYCLE=-1",
        "ECS_INSTANCE_ATTRIBUTES=[1]",
        r#"ECS_INSTANCE_ATTRIBUTES={"a b": "c"}"#,
        "just a line",
    ] {
        assert!(from_file(bad).is_err(), "{bad} accepted");
    }
    let e = from_file("\nno equals sign").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("line 2 in {FILE}: \"no equals sign\" is not KEY=value")
    );
}

#[test]
fn the_environment_overrides_the_file() {
    let (mut c, _) =
        from_file("ECS_RESERVED_MEMORY=100\nECS_IMAGE_PULL_BEHAVIOR=once").expect("file");
    let env: HashMap<&str, &str> = [("ECS_RESERVED_MEMORY", "300"), ("PATH", "/bin")].into();
    c.apply_env(|k| env.get(k).map(|v| v.to_string()))
        .expect("env");
    assert_eq!(c.reserved_memory, 300);
    assert_eq!(c.image_pull_behavior, PullBehavior::Once);
    let e = c
        .apply_env(|k| (k == "ECS_IMAGE_PULL_BEHAVIOR").then(|| "never".to_string()))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("ECS_IMAGE_PULL_BEHAVIOR in the environment: "),
        "{e}"
    );
}

#[test]
fn flags_override_both_through_the_same_names() {
    let mut c = AgentConfig::default();
    c.apply(
        &[("ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION".into(), "0s".into())],
        "--task-cleanup-wait",
    )
    .expect("flag");
    assert_eq!(c.task_cleanup_wait, Duration::ZERO);
}

#[test]
fn pull_behaviors_round_trip() {
    for b in [
        PullBehavior::Default,
        PullBehavior::Always,
        PullBehavior::Once,
        PullBehavior::PreferCached,
    ] {
        assert_eq!(b.as_str().parse::<PullBehavior>(), Ok(b));
    }
}

#[test]
fn when_each_behaviour_pulls() {
    use PullBehavior::*;
    // (cached, pulled before) -> pull?
    let cases = [
        (Default, [true, false, false]),
        (PreferCached, [true, false, false]),
        (Always, [true, true, true]),
        (Once, [true, true, false]),
    ];
    for (b, [missing, imported, pulled]) in cases {
        assert_eq!(b.should_pull(false, false), missing, "{b} missing");
        assert_eq!(b.should_pull(true, false), imported, "{b} imported only");
        assert_eq!(b.should_pull(true, true), pulled, "{b} pulled before");
    }
}
