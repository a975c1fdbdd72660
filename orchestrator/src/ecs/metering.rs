//! Usage metering: pure arithmetic over task records.

use serde_json::{json, Value};

use crate::model::Task;

/// Per launch type: tasks, vCPU-seconds and GiB-seconds.
pub fn usage_of(tasks: &[Task], now: chrono::DateTime<chrono::Utc>) -> Value {
    let parse = |s: &Option<String>| {
        s.as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let mut totals: std::collections::BTreeMap<String, (u64, f64, f64)> = Default::default();
    for t in tasks {
        let Some(start) = parse(&t.started_at) else {
            continue;
        };
        let end = parse(&t.stopped_at).unwrap_or(now);
        let secs = (end - start).num_milliseconds().max(0) as f64 / 1000.0;
        let vcpu = t
            .cpu
            .as_deref()
            .and_then(|c| c.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0;
        let gib = t
            .memory
            .as_deref()
            .and_then(|m| m.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0;
        let e = totals.entry(t.launch_type.to_string()).or_default();
        e.0 += 1;
        e.1 += vcpu * secs;
        e.2 += gib * secs;
    }
    let rows: Vec<Value> = totals
        .into_iter()
        .map(|(lt, (n, cpu, mem))| {
            json!({
                "launchType": lt,
                "tasks": n,
                "vcpuSeconds": (cpu * 1000.0).round() / 1000.0,
                "gibSeconds": (mem * 1000.0).round() / 1000.0,
            })
        })
        .collect();
    json!({ "usage": rows })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LaunchType;

    fn task(lt: LaunchType, cpu: &str, mem: &str, start: &str, stop: Option<&str>) -> Task {
        Task {
            launch_type: lt,
            cpu: Some(cpu.into()),
            memory: Some(mem.into()),
            started_at: Some(start.into()),
            stopped_at: stop.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn usage_is_metered_per_launch_type() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:10:00Z")
            .expect("now")
            .with_timezone(&chrono::Utc);
        let tasks = [
            task(
                LaunchType::Fargate,
                "512",
                "1024",
                "2026-01-01T00:00:00Z",
                Some("2026-01-01T00:01:40Z"),
            ),
            task(
                LaunchType::Fargate,
                "1024",
                "2048",
                "2026-01-01T00:09:00Z",
                None,
            ),
            task(
                LaunchType::Ec2,
                "256",
                "512",
                "2026-01-01T00:00:00Z",
                Some("2026-01-01T00:00:10Z"),
            ),
            task(LaunchType::Ec2, "256", "512", "2026-01-01T00:00:00Z", None).clone(),
        ];
        let mut never_started = tasks[2].clone();
        never_started.started_at = None;
        let mut all = tasks.to_vec();
        all.push(never_started);
        let u = usage_of(&all, now);
        let fargate = &u["usage"][1];
        assert_eq!(fargate["launchType"], "FARGATE");
        assert_eq!(fargate["tasks"], 2);
        // 0.5 vCPU × 100 s + 1 vCPU × 60 s; 1 GiB × 100 s + 2 GiB × 60 s.
        assert_eq!(fargate["vcpuSeconds"], 110.0);
        assert_eq!(fargate["gibSeconds"], 220.0);
        assert_eq!(u["usage"][0]["tasks"], 2);
    }
}
