//! A quota that holds for a whole tenant, out of per-namespace ResourceQuotas.
//!
//! Kubernetes enforces quotas per namespace only, so a tenant with five namespaces and a
//! per-namespace quota has five budgets. With `quota.scope: tenant` the tenant's limits hold
//! for the sum, and the API server's own quota admission stays the enforcer: each namespace's
//! `hard` is what it already uses plus its share of what the tenant has left,
//! `used here + (tenant hard − tenant used) / namespaces`, the remainder of the division going
//! to the first namespaces (the primary first). The shares always sum to at most the tenant's
//! limits, so no two namespaces can both spend what is left; what one namespace already uses
//! is never available to another.
//!
//! - **Rendered** (GitOps files, and the first apply) with no usage known: equal shares.
//! - **Rebalanced** from the live quotas' `status.used` by `apply` (and by the operator on
//!   every quota change), so what is left moves to where it is being used.
//!
//! Giving every namespace the whole remainder at once (`used + left`) would let two
//! namespaces spend it twice between rebalancings; splitting it keeps the limit a limit.
//!
//! The tenant-wide limits travel on each rendered ResourceQuota as an annotation, so the
//! rebalancing needs nothing but the desired and live objects. `resourcequotas` (how many
//! quota objects a namespace may hold) is a per-namespace count and is never split.

use std::collections::BTreeMap;

use serde_json::Value;
use tenantry_api::quantity::Quantity;

use crate::object::Rendered;

/// The keys that are never summed over a tenant.
const PER_NAMESPACE_KEYS: [&str; 1] = ["resourcequotas"];

const NANOS: i128 = 1_000_000_000;

/// The annotation holding the tenant-wide limits (`<labelPrefix>/tenant-quota`, a JSON object
/// of ResourceQuota `hard` keys to quantities).
pub fn tenant_quota_annotation(label_prefix: &str) -> String {
    format!("{label_prefix}/tenant-quota")
}

/// Per namespace (in `namespaces`' order, the primary first), the `hard` that keeps the sum
/// within `tenant_hard`: `used there + its share of what is left`. A namespace with no usage
/// reported counts as using nothing. Per-namespace keys are left out: they stay as rendered.
pub fn rebalance(
    tenant_hard: &BTreeMap<String, Quantity>,
    used: &BTreeMap<String, BTreeMap<String, Quantity>>,
    namespaces: &[String],
) -> BTreeMap<String, BTreeMap<String, Quantity>> {
    let nanos_of = |q: Option<&Quantity>| q.and_then(|q| q.parse().ok()).map_or(0, |v| v.nanos());
    let mut out: BTreeMap<String, BTreeMap<String, Quantity>> = namespaces
        .iter()
        .map(|ns| (ns.clone(), BTreeMap::new()))
        .collect();
    let count = i128::try_from(namespaces.len().max(1)).unwrap_or(1);
    for (key, hard) in tenant_hard {
        if PER_NAMESPACE_KEYS.contains(&key.as_str()) {
            continue;
        }
        let Ok(limit) = hard.parse() else { continue };
        let used_in = |ns: &str| nanos_of(used.get(ns).and_then(|u| u.get(key)));
        let total: i128 = namespaces.iter().map(|ns| used_in(ns)).sum();
        let unit = unit_nanos(key);
        let left_units = (limit.nanos() - total).max(0) / unit;
        let (share, extra) = (left_units / count, left_units % count);
        for (i, ns) in namespaces.iter().enumerate() {
            let units = share + i128::from(i128::try_from(i).unwrap_or(i128::MAX) < extra);
            let hard = format_for(key, used_in(ns) + units * unit);
            out.entry(ns.clone()).or_default().insert(key.clone(), hard);
        }
    }
    out
}

/// The hard limits of each namespace of a tenant-wide quota before any usage is known.
pub fn equal_shares(
    tenant_hard: &[(&'static str, Quantity)],
    namespaces: &[String],
) -> BTreeMap<String, BTreeMap<String, Quantity>> {
    let hard = tenant_hard
        .iter()
        .map(|(k, q)| ((*k).to_owned(), q.clone()))
        .collect();
    rebalance(&hard, &BTreeMap::new(), namespaces)
}

/// Rewrite the `hard` of every tenant-scoped quota in `rendered` from the live quotas'
/// `status.used`. Quotas without the annotation (per-namespace scope) are left as rendered.
pub fn rebalance_rendered(rendered: &mut [Rendered], live: &[Value], label_prefix: &str) {
    let annotation = tenant_quota_annotation(label_prefix);
    let used_by_namespace = |name: &str| -> BTreeMap<String, BTreeMap<String, Quantity>> {
        live.iter()
            .filter(|o| o["kind"] == "ResourceQuota" && o["metadata"]["name"] == name)
            .filter_map(|o| {
                let ns = o["metadata"]["namespace"].as_str()?;
                let used = o["status"]["used"]
                    .as_object()?
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), Quantity::new(v.as_str()?))))
                    .collect();
                Some((ns.to_owned(), used))
            })
            .collect()
    };
    for tenant in rendered.iter_mut() {
        let quotas: Vec<usize> = tenant
            .objects
            .iter()
            .enumerate()
            .filter(|(_, o)| {
                o.kind == "ResourceQuota"
                    && o.body["metadata"]["annotations"][&annotation].is_string()
            })
            .map(|(i, _)| i)
            .collect();
        let Some(&first) = quotas.first() else {
            continue;
        };
        let name = tenant.objects[first].name.clone();
        let Some(tenant_hard) = tenant.objects[first].body["metadata"]["annotations"][&annotation]
            .as_str()
            .and_then(|text| serde_json::from_str::<BTreeMap<String, Quantity>>(text).ok())
        else {
            continue;
        };
        let namespaces: Vec<String> = quotas
            .iter()
            .filter_map(|&i| tenant.objects[i].namespace.clone())
            .collect();
        let hard = rebalance(&tenant_hard, &used_by_namespace(&name), &namespaces);
        for &i in &quotas {
            let object = &mut tenant.objects[i];
            let Some(per_ns) = object.namespace.as_ref().and_then(|ns| hard.get(ns)) else {
                continue;
            };
            for (key, value) in per_ns {
                object.body["spec"]["hard"][key] = Value::from(value.as_str());
            }
        }
    }
}

/// The smallest share of `key` handed out: a milli-cpu for cpu, one unit (byte, object)
/// for everything else.
fn unit_nanos(key: &str) -> i128 {
    if key.ends_with("cpu") {
        1_000_000
    } else {
        NANOS
    }
}

/// A quantity in the units Kubernetes reports for `key`, rounded down.
fn format_for(key: &str, nanos: i128) -> Quantity {
    let nanos = nanos.max(0);
    if key.ends_with("cpu") && nanos % NANOS != 0 {
        return Quantity::new(format!("{}m", nanos / 1_000_000));
    }
    let units = nanos / NANOS;
    // Bytes read as people write them, when a binary suffix is exact.
    if key.ends_with("memory") || key.ends_with("storage") {
        for (suffix, size) in [("Gi", 1_i128 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
            if units != 0 && units % size == 0 {
                return Quantity::new(format!("{}{suffix}", units / size));
            }
        }
    }
    Quantity::new(units.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Quantity::new(*v)))
            .collect()
    }

    #[test]
    fn equal_shares_never_sum_past_the_tenant() {
        let hard = vec![
            ("requests.cpu", Quantity::new("4")),
            ("requests.memory", Quantity::new("8Gi")),
            ("pods", Quantity::new("50")),
            ("resourcequotas", Quantity::new("1")),
        ];
        let namespaces = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let shares = equal_shares(&hard, &namespaces);
        let of = |ns: &str, key: &str| shares[ns][key].as_str().to_owned();
        assert_eq!(
            [
                of("a", "requests.cpu"),
                of("b", "requests.cpu"),
                of("c", "requests.cpu")
            ],
            ["1334m", "1333m", "1333m"]
        );
        assert_eq!(
            [of("a", "pods"), of("b", "pods"), of("c", "pods")],
            ["17", "17", "16"]
        );
        assert_eq!(of("c", "requests.memory"), "2863311530");
        assert_eq!(of("a", "requests.memory"), "2863311531");
        let halves = equal_shares(&hard, &namespaces[..2]);
        assert_eq!(halves["a"]["requests.memory"].as_str(), "4Gi");
        assert!(
            !shares["b"].contains_key("resourcequotas"),
            "a per-namespace count is not split"
        );
    }

    #[test]
    fn what_one_namespace_uses_is_not_left_for_another() {
        let tenant = map(&[
            ("requests.cpu", "2"),
            ("pods", "10"),
            ("resourcequotas", "1"),
        ]);
        let namespaces = ["shop".to_owned(), "shop-dev".to_owned()];
        let used = BTreeMap::from([(
            "shop".to_owned(),
            map(&[("requests.cpu", "1500m"), ("pods", "7")]),
        )]);
        let hard = rebalance(&tenant, &used, &namespaces);
        assert_eq!(hard["shop"]["requests.cpu"].as_str(), "1750m");
        assert_eq!(hard["shop-dev"]["requests.cpu"].as_str(), "250m");
        assert_eq!(hard["shop"]["pods"].as_str(), "9");
        assert_eq!(hard["shop-dev"]["pods"].as_str(), "1");
        assert!(!hard["shop-dev"].contains_key("resourcequotas"));
        // Over budget (limits lowered below usage): nothing is left anywhere, nothing negative.
        let used = BTreeMap::from([("shop".to_owned(), map(&[("requests.cpu", "3")]))]);
        let hard = rebalance(&tenant, &used, &namespaces);
        assert_eq!(hard["shop"]["requests.cpu"].as_str(), "3");
        assert_eq!(hard["shop-dev"]["requests.cpu"].as_str(), "0");
    }
}
