//! Capacity providers, as berth has them: the built-in FARGATE and
//! FARGATE_SPOT (both run as berth's FARGATE sandbox), a cluster's
//! strategy over them, and which provider a strategy's next task takes.
//! Pure.

use std::collections::BTreeMap;

use crate::error::{EcsError, EcsResult};
use crate::model::CapacityProviderStrategyItem;

/// The capacity providers every cluster may use; berth has no others
/// (CreateCapacityProvider needs Auto Scaling groups).
pub const BUILT_IN: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];
/// ECS's limits on one strategy line.
const MAX_WEIGHT: u32 = 1000;
const MAX_BASE: u32 = 100_000;
/// ECS's most lines in a strategy.
const MAX_ITEMS: usize = 20;

/// A provider name (or ARN) berth knows: the built-in one's name.
pub fn built_in(field: &str, name_or_arn: &str) -> EcsResult<&'static str> {
    let name = crate::model::name_from_arn(name_or_arn);
    BUILT_IN
        .iter()
        .copied()
        .find(|b| *b == name)
        .ok_or_else(|| {
            EcsError::invalid(format!(
                "{field}: {name_or_arn:?}: The specified capacity provider does not exist. \
             berth has FARGATE and FARGATE_SPOT"
            ))
        })
}

/// A strategy's rules: known providers, each once, among `associated`
/// (the cluster's) when given; weights 0–1000, bases 0–100000, a base on
/// one line at most, and some weight above 0.
pub fn check_strategy(
    field: &str,
    items: &[CapacityProviderStrategyItem],
    associated: Option<&[String]>,
) -> EcsResult<()> {
    if items.len() > MAX_ITEMS {
        return Err(EcsError::invalid(format!(
            "{field}: {} lines: at most {MAX_ITEMS}",
            items.len()
        )));
    }
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let name = built_in(&format!("{at}.capacityProvider"), &item.capacity_provider)?;
        if items[..i]
            .iter()
            .any(|o| crate::model::name_from_arn(&o.capacity_provider) == name)
        {
            return Err(EcsError::invalid(format!(
                "{at}.capacityProvider: {name} appears twice in the strategy"
            )));
        }
        if let Some(associated) = associated {
            if !associated.iter().any(|a| a == name) {
                return Err(EcsError::invalid(format!(
                    "{at}.capacityProvider: The specified capacity provider strategy cannot \
                     contain a capacity provider that is not associated with the cluster \
                     ({name}). Associate it with put-cluster-capacity-providers"
                )));
            }
        }
        if item.weight > MAX_WEIGHT {
            return Err(EcsError::invalid(format!(
                "{at}.weight: {}: between 0 and {MAX_WEIGHT}",
                item.weight
            )));
        }
        if item.base > MAX_BASE {
            return Err(EcsError::invalid(format!(
                "{at}.base: {}: between 0 and {MAX_BASE}",
                item.base
            )));
        }
    }
    if items.iter().filter(|i| i.base > 0).count() > 1 {
        return Err(EcsError::invalid(format!(
            "{field}: only one capacity provider in a strategy can have a base"
        )));
    }
    if !items.is_empty() && items.iter().all(|i| i.weight == 0) {
        return Err(EcsError::invalid(format!(
            "{field}: at least one capacity provider must have a weight greater than 0"
        )));
    }
    Ok(())
}

/// The provider the next task takes, given how many tasks of the same
/// group (a run-task's, a service's) each provider already runs: the
/// base first, then the one furthest below its weight's share (ties to
/// the earlier line). None for an empty strategy.
pub fn next_provider(
    items: &[CapacityProviderStrategyItem],
    running: &BTreeMap<String, u32>,
) -> Option<String> {
    let name = |i: &CapacityProviderStrategyItem| {
        crate::model::name_from_arn(&i.capacity_provider).to_string()
    };
    let count = |i: &CapacityProviderStrategyItem| running.get(&name(i)).copied().unwrap_or(0);
    if let Some(b) = items.iter().find(|i| i.base > 0 && count(i) < i.base) {
        return Some(name(b));
    }
    // Tasks beyond the base are spread by weight: pick the line whose
    // share count/weight is smallest (compared by cross-multiplying).
    let beyond = |i: &CapacityProviderStrategyItem| u64::from(count(i).saturating_sub(i.base));
    items
        .iter()
        .filter(|i| i.weight > 0)
        .reduce(|best, i| {
            let (b, c) = (beyond(best), beyond(i));
            if c * u64::from(best.weight) < b * u64::from(i.weight) {
                i
            } else {
                best
            }
        })
        .map(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(p: &str, weight: u32, base: u32) -> CapacityProviderStrategyItem {
        CapacityProviderStrategyItem {
            capacity_provider: p.into(),
            weight,
            base,
        }
    }

    fn spread(items: &[CapacityProviderStrategyItem], n: usize) -> BTreeMap<String, u32> {
        let mut running = BTreeMap::new();
        for _ in 0..n {
            let p = next_provider(items, &running).expect("a provider");
            *running.entry(p).or_insert(0) += 1;
        }
        running
    }

    #[test]
    fn base_first_then_by_weight() {
        let s = [item("FARGATE", 1, 2), item("FARGATE_SPOT", 3, 0)];
        let r = spread(&s, 10);
        assert_eq!(r["FARGATE"], 4, "2 base + 2 of the 8 beyond");
        assert_eq!(r["FARGATE_SPOT"], 6);
        let only_spot = [item("FARGATE", 0, 0), item("FARGATE_SPOT", 1, 0)];
        assert_eq!(spread(&only_spot, 3).get("FARGATE"), None);
        assert_eq!(next_provider(&[], &BTreeMap::new()), None);
        let arn = [item(
            "arn:aws:ecs:local:000000000000:capacity-provider/FARGATE",
            1,
            0,
        )];
        assert_eq!(
            next_provider(&arn, &BTreeMap::new()).as_deref(),
            Some("FARGATE")
        );
    }

    #[test]
    fn strategy_rules() {
        let fine = [item("FARGATE", 1, 1), item("FARGATE_SPOT", 1, 0)];
        check_strategy("s", &fine, None).expect("fine");
        let all: Vec<String> = BUILT_IN.iter().map(|s| s.to_string()).collect();
        check_strategy("s", &fine, Some(&all)).expect("associated");
        for (bad, why) in [
            (vec![item("EC2", 1, 0)], "s[0].capacityProvider"),
            (
                vec![item("FARGATE", 1, 0), item("FARGATE", 1, 0)],
                "s[1].capacityProvider",
            ),
            (vec![item("FARGATE", 1001, 0)], "s[0].weight"),
            (vec![item("FARGATE", 1, 100_001)], "s[0].base"),
            (
                vec![item("FARGATE", 1, 1), item("FARGATE_SPOT", 1, 1)],
                "s: only one",
            ),
            (vec![item("FARGATE", 0, 1)], "s: at least one"),
        ] {
            let e = check_strategy("s", &bad, None).unwrap_err();
            assert!(e.message.starts_with(why), "{}", e.message);
        }
        let e = check_strategy("s", &fine, Some(&["FARGATE".to_string()])).unwrap_err();
        assert!(e.message.contains("not associated"), "{}", e.message);
    }
}
