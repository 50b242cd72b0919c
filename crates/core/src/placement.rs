//! Placement and shared classes: the platform sets the bounds, a tenant may only narrow them.
//!
//! Unlike every other tenant field, these do not simply replace the platform's default: the
//! platform's `defaults.placement` and `defaults.classes` are the most a tenant may have (the
//! nodes it may reach, the classes it may use), and a tenant that sets its own gets it only
//! when it is within them. A tenant widening them is an error at the field, naming the
//! platform's bound, so nobody mistakes a refused widening for a granted one.

use std::collections::BTreeMap;

use tenantry_api::tenant::{
    AllowedToleration, ClassList, Classes, Placement, TenantSpec, TolerationOperator,
};

use crate::{error::Errors, names};

/// Reads one kind's list out of [`Classes`].
pub type ClassAccessor = fn(&Classes) -> Option<&ClassList>;

/// The class kinds, with their field name and accessor.
pub const CLASS_KINDS: [(&str, ClassAccessor); 5] = [
    ("priority", |c| c.priority.as_ref()),
    ("storage", |c| c.storage.as_ref()),
    ("ingress", |c| c.ingress.as_ref()),
    ("gateway", |c| c.gateway.as_ref()),
    ("runtime", |c| c.runtime.as_ref()),
];

/// The tenant's placement: its own when set and within the platform's, else the platform's.
pub(crate) fn resolve_placement(
    tenant: &TenantSpec,
    platform: &TenantSpec,
    errors: &mut Errors,
) -> Placement {
    let bound = platform.placement.clone().unwrap_or_default();
    check_placement(&bound, "defaults.placement", None, errors);
    let Some(own) = &tenant.placement else {
        return bound;
    };
    check_placement(own, "spec.placement", Some(&bound), errors);
    Placement {
        node_selector: own.node_selector.clone().or(bound.node_selector),
        tolerations: own.tolerations.clone().or(bound.tolerations),
    }
}

fn check_placement(
    placement: &Placement,
    at: &str,
    bound: Option<&Placement>,
    errors: &mut Errors,
) {
    let empty = BTreeMap::new();
    let selector = placement.node_selector.as_ref().unwrap_or(&empty);
    for (key, value) in selector {
        if let Some(problem) = names::label_key_problem(key) {
            errors.push(
                format!("{at}.nodeSelector[{key:?}]"),
                format!("{key:?} {problem}"),
            );
        }
        if let Some(problem) = names::label_value_problem(value) {
            errors.push(
                format!("{at}.nodeSelector[{key:?}]"),
                format!("{value:?} {problem}"),
            );
        }
    }
    for (i, t) in placement.tolerations.iter().flatten().enumerate() {
        let here = format!("{at}.tolerations[{i}]");
        let exists = t.operator == Some(TolerationOperator::Exists);
        if exists && t.value.is_some() {
            errors.push(
                format!("{here}.value"),
                "must be empty with operator: Exists".to_owned(),
            );
        }
        if !exists && t.key.is_empty() {
            errors.push(
                format!("{here}.key"),
                "is required unless operator is Exists".to_owned(),
            );
        }
    }
    let Some(bound) = bound else { return };
    if let Some(required) = &bound.node_selector {
        for (key, value) in required {
            if selector.get(key) != Some(value) {
                errors.push(
                    format!("{at}.nodeSelector"),
                    format!(
                        "must keep the platform's {key}: {value} (defaults.placement.nodeSelector); \
                         a tenant may only add labels"
                    ),
                );
            }
        }
    }
    if let (Some(allowed), Some(own)) = (&bound.tolerations, &placement.tolerations) {
        for (i, t) in own.iter().enumerate() {
            if !allowed.iter().any(|a| tolerates_within(a, t)) {
                errors.push(
                    format!("{at}.tolerations[{i}]"),
                    format!(
                        "{} is not within the platform's defaults.placement.tolerations",
                        describe_toleration(t)
                    ),
                );
            }
        }
    }
}

/// Whether the toleration `allowed` covers everything `wanted` tolerates (an effect left out
/// tolerates every effect; `Exists` without a key, every taint). Used both for a tenant's
/// bounds within the platform's and for a pod's tolerations within the tenant's.
pub fn tolerates_within(allowed: &AllowedToleration, wanted: &AllowedToleration) -> bool {
    let allowed_exists = allowed.operator == Some(TolerationOperator::Exists);
    let wanted_exists = wanted.operator == Some(TolerationOperator::Exists);
    let key = (allowed.key.is_empty() && allowed_exists) || allowed.key == wanted.key;
    let value = allowed_exists || (!wanted_exists && allowed.value == wanted.value);
    let effect = allowed.effect.is_none() || allowed.effect == wanted.effect;
    key && value && effect
}

/// A toleration as a person writes it: `key=value:Effect`, `key:Effect` (Exists), `*`.
pub fn describe_toleration(t: &AllowedToleration) -> String {
    let exists = t.operator == Some(TolerationOperator::Exists);
    let mut out = if t.key.is_empty() && exists {
        "every taint (operator: Exists, no key)".to_owned()
    } else if exists {
        format!("{} (any value)", t.key)
    } else {
        format!("{}={}", t.key, t.value.as_deref().unwrap_or(""))
    };
    if let Some(effect) = t.effect {
        out.push(':');
        out.push_str(effect.as_str());
    }
    out
}

/// The tenant's classes: per kind, its own list when set and within the platform's, else the
/// platform's.
pub(crate) fn resolve_classes(
    tenant: &TenantSpec,
    platform: &TenantSpec,
    errors: &mut Errors,
) -> Classes {
    let bound = platform.classes.clone().unwrap_or_default();
    let own = tenant.classes.clone().unwrap_or_default();
    let mut out = Classes::default();
    for (kind, get) in CLASS_KINDS {
        let platform_list = get(&bound);
        if let Some(list) = platform_list {
            check_list(list, &format!("defaults.classes.{kind}"), None, errors);
        }
        let chosen = match get(&own) {
            Some(list) => {
                check_list(list, &format!("spec.classes.{kind}"), platform_list, errors);
                Some(list.clone())
            }
            None => platform_list.cloned(),
        };
        let slot = match kind {
            "priority" => &mut out.priority,
            "storage" => &mut out.storage,
            "ingress" => &mut out.ingress,
            "gateway" => &mut out.gateway,
            _ => &mut out.runtime,
        };
        *slot = chosen;
    }
    out
}

fn check_list(list: &ClassList, at: &str, bound: Option<&ClassList>, errors: &mut Errors) {
    for (i, class) in list.allowed.iter().enumerate() {
        if let Some(problem) = names::dns_subdomain_problem(class) {
            errors.push(format!("{at}.allowed[{i}]"), format!("{class:?} {problem}"));
        } else if let Some(bound) = bound
            && !bound.allowed.contains(class)
        {
            errors.push(
                format!("{at}.allowed[{i}]"),
                format!(
                    "{class:?} is not one the platform allows ({})",
                    bound.allowed.join(", ")
                ),
            );
        }
    }
    if let Some(default) = &list.default
        && !list.allowed.contains(default)
    {
        errors.push(
            format!("{at}.default"),
            format!(
                "{default:?} must be one of allowed ({})",
                list.allowed.join(", ")
            ),
        );
    }
}

/// The node-condition taints (`node.kubernetes.io/<name>`) the API server or the DaemonSet
/// controller tolerate on pods' behalf.
pub const NODE_CONDITION_TAINTS: [&str; 7] = [
    "not-ready",
    "unreachable",
    "disk-pressure",
    "memory-pressure",
    "pid-pressure",
    "unschedulable",
    "network-unavailable",
];

/// Taints Kubernetes itself puts on nodes for their conditions (not ready, unreachable, under
/// pressure, cordoned). The API server adds tolerations for the first two to every pod, and the
/// DaemonSet controller the rest to its pods: tolerating them reaches no one's dedicated node.
pub fn is_node_condition_taint(key: &str) -> bool {
    key.starts_with(NODE_CONDITION_TAINT_PREFIX)
}

/// The prefix of the node-condition taints' keys ([`is_node_condition_taint`]).
pub const NODE_CONDITION_TAINT_PREFIX: &str = "node.kubernetes.io/";
