//! `berth system network-timing`: a task network's setup and teardown as
//! the supervisor does them (namespaces, veth, address, route, a port
//! mapping), timed against a bare network namespace, for `make bench`.
//! Kernel work only; the CLI prints the figures.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_runtime::namespaces::SharedNamespaces;

use crate::ecs::NetworkConfig;

/// The veth the timing plugs in, on its own bridge.
const LINK: &str = "vbtiming0";

/// Medians over the runs, in milliseconds.
#[derive(Debug)]
pub struct NetworkTiming {
    pub runs: usize,
    pub bare_namespace_ms: f64,
    pub setup_ms: f64,
    pub teardown_ms: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum TimingError {
    #[error("runs: must be at least 1")]
    NoRuns,
    #[error("bridge {0} exists: time on a network of its own (BERTH_BRIDGE)")]
    BridgeInUse(String),
    #[error("subnet {0}: no address to give the task")]
    NoAddress(String),
    #[error("network: {0}")]
    Network(#[from] berth_net::Error),
    #[error("namespaces: {0}")]
    Namespaces(Box<berth_runtime::Error>),
}

/// Time `runs` setups and teardowns on `net` (a bridge that must not
/// exist yet), with scratch files under `dir`; everything made is removed,
/// whatever fails.
pub fn network_timing(
    dir: &Path,
    net: &NetworkConfig,
    runs: usize,
) -> Result<NetworkTiming, TimingError> {
    if runs == 0 {
        return Err(TimingError::NoRuns);
    }
    if berth_net::link_exists(&net.bridge)? {
        return Err(TimingError::BridgeInUse(net.bridge.clone()));
    }
    let mut samples = Samples::default();
    let result = time_runs(dir, net, runs, &mut samples);
    let _ = berth_net::detach(LINK);
    let _ = berth_net::nat::remove_table(&net.bridge);
    let _ = berth_net::remove_bridge(&net.bridge);
    let _ = std::fs::remove_dir_all(dir);
    result?;
    Ok(NetworkTiming {
        runs,
        bare_namespace_ms: median(&mut samples.bare),
        setup_ms: median(&mut samples.setup),
        teardown_ms: median(&mut samples.teardown),
    })
}

impl From<berth_runtime::Error> for TimingError {
    fn from(e: berth_runtime::Error) -> Self {
        Self::Namespaces(Box::new(e))
    }
}

#[derive(Default)]
struct Samples {
    bare: Vec<f64>,
    setup: Vec<f64>,
    teardown: Vec<f64>,
}

fn time_runs(
    dir: &Path,
    net: &NetworkConfig,
    runs: usize,
    samples: &mut Samples,
) -> Result<(), TimingError> {
    let gateway = net.subnet.gateway();
    let address = berth_net::allocate(&net.subnet, &Default::default())
        .ok_or_else(|| TimingError::NoAddress(net.subnet.to_string()))?;
    berth_net::ensure_bridge(&net.bridge, gateway, net.subnet.prefix)?;
    berth_net::nat::ensure_table(&net.bridge, &net.subnet)?;
    for i in 0..runs {
        let t = Instant::now();
        let ns = SharedNamespaces::create(&dir.join(format!("bare{i}")), true, "t")?;
        ns.remove()?;
        samples.bare.push(ms(t.elapsed()));

        let t = Instant::now();
        let ns = SharedNamespaces::create(&dir.join(format!("task{i}")), true, "t")?;
        if let Some(netns) = ns.path("network") {
            berth_net::attach(
                &netns,
                &net.bridge,
                LINK,
                address,
                net.subnet.prefix,
                gateway,
            )?;
        }
        berth_net::nat::add_mapping(&net.bridge, "tcp", 40000, &address.to_string(), 80)?;
        samples.setup.push(ms(t.elapsed()));

        // As a task's teardown: the veth pair goes with its namespace.
        let t = Instant::now();
        berth_net::nat::remove_mappings(&net.bridge, &[("tcp", 40000)])?;
        ns.remove()?;
        samples.teardown.push(ms(t.elapsed()));
        // The kernel frees the namespace (and the veth) asynchronously;
        // wait for it outside the timing, so the next run's name is free.
        let deadline = Instant::now() + Duration::from_secs(5);
        while berth_net::link_exists(LINK)? && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median of a non-empty sample (0 for an empty one).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_samples() {
        assert_eq!(median(&mut []), 0.0);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn zero_runs_is_refused_before_any_kernel_work() {
        let net = NetworkConfig::new("berth-no-such0", "10.254.254.0/24", ("bridge", "subnet"))
            .expect("net");
        let err = network_timing(Path::new("/nonexistent"), &net, 0).expect_err("refused");
        assert!(matches!(err, TimingError::NoRuns));
    }
}
