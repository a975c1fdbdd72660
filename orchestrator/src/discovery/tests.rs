use super::*;
use crate::model::{
    DesiredStatus, ServiceConnectConfiguration, ServiceRegistry, TaskInternals, TaskNetwork,
    TaskStatus,
};
use serde_json::json;

fn td(network_mode: &str) -> TaskDefinition {
    serde_json::from_value(json!({
        "networkMode": network_mode,
        "containerDefinitions": [
            {"name": "sidecar", "image": "busybox"},
            {"name": "app", "image": "busybox",
             "portMappings": [{"containerPort": 8080, "name": "http"},
                              {"containerPort": 53, "protocol": "udp", "name": "dns"},
                              {"containerPort": 9090, "name": "admin"}]},
        ],
    }))
    .expect("a task definition")
}

fn connect(value: serde_json::Value) -> Service {
    Service {
        service_name: "web".into(),
        service_connect_configuration: Some(
            serde_json::from_value::<ServiceConnectConfiguration>(value).expect("a configuration"),
        ),
        ..Default::default()
    }
}

#[test]
fn service_connect_names_and_client_alias_port() {
    let s = connect(json!({"enabled": true, "namespace": "local", "services": [
        {"portName": "http", "discoveryName": "web",
         "clientAliases": [{"port": 80, "dnsName": "front"}]}]}));
    let d = discovery_of(&s, &td("awsvpc"), None).unwrap();
    assert_eq!(d.names, vec!["web.local", "front"]);
    assert_eq!(
        d.ports,
        vec![VipPort {
            port: 80,
            protocol: "tcp".into(),
            container: "app".into(),
            container_port: 8080
        }]
    );
}

#[test]
fn service_connect_defaults() {
    // discoveryName: the portName; no alias: the container port; the
    // namespace: the cluster's, an ARN by its last part.
    let s = connect(json!({"enabled": true, "services": [{"portName": "dns"}]}));
    let d = discovery_of(
        &s,
        &td("bridge"),
        Some("arn:aws:servicediscovery:local:0:namespace/corp"),
    )
    .unwrap();
    assert_eq!(d.names, vec!["dns.corp"]);
    assert_eq!((d.ports[0].port, d.ports[0].protocol.as_str()), (53, "udp"));
    // An alias without a dnsName is the discovery name on its port.
    let s = connect(json!({"enabled": true, "namespace": "local", "services": [
        {"portName": "http", "clientAliases": [{"port": 81}]}]}));
    let d = discovery_of(&s, &td("awsvpc"), None).unwrap();
    assert_eq!(
        (d.names.clone(), d.ports[0].port),
        (vec!["http.local".to_string()], 81)
    );
    // Disabled: nothing.
    let s = connect(json!({"enabled": false, "services": [{"portName": "nope"}]}));
    assert!(!wanted(&s));
    assert_eq!(
        discovery_of(&s, &td("awsvpc"), None).unwrap(),
        Discovery::default()
    );
}

#[test]
fn bad_settings_name_their_field() {
    for (value, mode, field) in [
        (
            json!({"enabled": true, "services": [{"portName": "http"}]}),
            "awsvpc",
            "namespace",
        ),
        (
            json!({"enabled": true, "namespace": "local", "services": [{"portName": "grpc"}]}),
            "awsvpc",
            "services[0].portName",
        ),
        (
            json!({"enabled": true, "namespace": "local", "services": [{"portName": "http", "discoveryName": "a_b"}]}),
            "awsvpc",
            "services[0].discoveryName",
        ),
        (
            json!({"enabled": true, "namespace": "local", "services": [{"portName": "http", "clientAliases": [{"port": 0}]}]}),
            "awsvpc",
            "clientAliases[0].port",
        ),
        (
            json!({"enabled": true, "namespace": "local", "services": [{"portName": "http", "clientAliases": [{"port": 80, "dnsName": "bad name"}]}]}),
            "dnsName",
            "dnsName",
        ),
        (
            json!({"enabled": true, "namespace": "local", "services": [{"portName": "http", "clientAliases": [{"port": 80}]}, {"portName": "admin", "clientAliases": [{"port": 80}]}]}),
            "awsvpc",
            "served twice",
        ),
        (
            json!({"enabled": true, "namespace": "local", "services": [{"portName": "http"}]}),
            "host",
            "network mode",
        ),
    ] {
        let mode = if mode == "dnsName" { "awsvpc" } else { mode };
        let e = discovery_of(&connect(value), &td(mode), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(field), "{field}: {e}");
    }
}

fn registry(arn: &str, port: Option<u16>, container: Option<&str>) -> Service {
    Service {
        service_name: "web".into(),
        service_registries: vec![ServiceRegistry {
            registry_arn: arn.into(),
            port,
            container_name: container.map(str::to_string),
            container_port: None,
        }],
        ..Default::default()
    }
}

#[test]
fn cloud_map_names_come_from_the_arn() {
    let arn = "arn:aws:servicediscovery:us-east-1:000000000000:service/api.corp";
    let d = discovery_of(&registry(arn, None, None), &td("awsvpc"), None).unwrap();
    assert_eq!(d.names, vec!["api.corp"]);
    // Every port the first container with ports maps.
    assert_eq!(
        d.ports
            .iter()
            .map(|p| (p.port, p.protocol.as_str()))
            .collect::<Vec<_>>(),
        vec![(8080, "tcp"), (53, "udp"), (9090, "tcp")]
    );
    let d = discovery_of(&registry(arn, Some(8080), Some("app")), &td("bridge"), None).unwrap();
    assert_eq!(d.ports.len(), 1);
    for (bad, field) in [
        ("arn:aws:ecs:us-east-1:0:service/x", "registryArn"),
        (
            "arn:aws:servicediscovery:us-east-1:0:namespace/x",
            "service/<name>",
        ),
        (
            "arn:aws:servicediscovery:us-east-1:0:service/a b",
            "DNS name",
        ),
    ] {
        let e = discovery_of(&registry(bad, None, None), &td("awsvpc"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(field), "{bad}: {e}");
    }
    let e = discovery_of(&registry(arn, None, Some("db")), &td("awsvpc"), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("containerName"), "{e}");
    let mut two = registry(arn, None, None);
    two.service_registries
        .push(two.service_registries[0].clone());
    assert!(discovery_of(&two, &td("awsvpc"), None).is_err());
}

#[test]
fn virtual_addresses_are_the_first_free_of_the_range() {
    let range = vip_range(DEFAULT_VIP_RANGE).unwrap();
    let mut used = BTreeSet::new();
    let a = pick_vip(&range, &used).unwrap();
    assert_eq!(a, Ipv4Addr::new(10, 255, 0, 2));
    used.insert(a);
    assert_eq!(
        pick_vip(&range, &used).unwrap(),
        Ipv4Addr::new(10, 255, 0, 3)
    );
    let tiny = vip_range("10.254.0.0/30").unwrap();
    used.insert(Ipv4Addr::new(10, 254, 0, 2));
    let e = pick_vip(&tiny, &used).unwrap_err().to_string();
    assert!(e.contains("BERTH_SERVICE_VIP_RANGE"), "{e}");
    assert!(vip_range("10.255.0.0/99").is_err());
}

#[test]
fn hosts_text_keeps_the_tasks_own_lines() {
    let block = hosts_block(&[
        (Ipv4Addr::new(10, 255, 0, 3), vec!["db.local".into()]),
        (
            Ipv4Addr::new(10, 255, 0, 2),
            vec!["web.local".into(), "front".into()],
        ),
        (Ipv4Addr::new(10, 255, 0, 4), vec![]),
    ]);
    assert_eq!(
        block,
        format!("{HOSTS_MARK}10.255.0.2\tweb.local front\n10.255.0.3\tdb.local\n")
    );
    let own = "127.0.0.1\tlocalhost\n10.88.0.2\tabc app\n";
    let first = with_block(own, &block);
    assert_eq!(first, format!("{own}{block}"));
    // Rewritten: the old block goes, the task's own lines stay.
    let again = with_block(&first, &hosts_block(&[]));
    assert_eq!(again, format!("{own}{HOSTS_MARK}"));
    assert_eq!(
        with_block("no newline", HOSTS_MARK),
        format!("no newline\n{HOSTS_MARK}")
    );
}

fn task(id: &str, service: &str, status: TaskStatus, address: &str) -> Task {
    Task {
        task_arn: format!("arn:aws:ecs:local:000000000000:task/c/{id}"),
        group: Some(format!("service:{service}")),
        last_status: status,
        desired_status: DesiredStatus::Running,
        berth: Some(TaskInternals {
            network: Some(TaskNetwork {
                bridge: "br0".into(),
                address: address.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn backends_are_the_tasks_in_service() {
    let s =
        connect(json!({"enabled": true, "namespace": "local", "services": [{"portName": "http"}]}));
    let d = discovery_of(&s, &td("awsvpc"), None).unwrap();
    let mut stopping = task("d", "web", TaskStatus::Running, "10.0.0.5");
    stopping.desired_status = DesiredStatus::Stopped;
    let tasks = [
        task("b", "web", TaskStatus::Running, "10.0.0.3"),
        task("a", "web", TaskStatus::Running, "10.0.0.2"),
        task("c", "web", TaskStatus::Pending, "10.0.0.4"),
        stopping,
        task("e", "api", TaskStatus::Running, "10.0.0.6"),
    ];
    let b = backends(&s, &d.ports[0], &tasks);
    assert_eq!(
        b.iter()
            .map(|b| (b.address.to_string(), b.port))
            .collect::<Vec<_>>(),
        vec![
            ("10.0.0.2".to_string(), 8080),
            ("10.0.0.3".to_string(), 8080)
        ]
    );
}
