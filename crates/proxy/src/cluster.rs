//! Cluster-scoped kinds the platform lets tenants read: StorageClasses, IngressClasses,
//! PriorityClasses, RuntimeClasses (`tenantry.yaml` `proxy.clusterScoped`).
//!
//! A tenant has to name these classes in its manifests (`storageClassName`,
//! `ingressClassName`, …) but its namespace-scoped credential cannot list them, so
//! `kubectl get storageclass` and the tools that offer a choice of class fail. Granting every
//! tenant a ClusterRole on them shows every tenant every class, including those the
//! `allowed-classes` guardrail would refuse. So the proxy answers these reads (get, list,
//! watch) with its own identity, which the platform grants get/list/watch on exactly the
//! configured kinds ([`crate::manifests`]), and either passes the answer on whole (`all`) or
//! keeps only the classes the caller's tenants may use (`filtered`): per kind, the tenant's
//! own `spec.classes` list (within the platform's, as the engine resolves it) or else the
//! platform's `defaults.classes` list; no list means unrestricted; `system-*` PriorityClasses
//! are never a tenant's. Another tenant's class by name is a 404 worded as a missing one.
//!
//! Only reads are answered so: any other verb, a kind not configured, or a caller who is no
//! tenant's (an administrator) goes to the API server as the caller, as before. Filtering
//! reads JSON (the proxy asks upstream for JSON only); list pages may come out shorter than
//! `limit` and lose `remainingItemCount`, which clients treat as unknown.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tenantry_api::{
    platform::{Platform, ProxyClusterKind, ProxyReadMode},
    tenant::{ClassList, Classes},
};

/// Kubernetes reserves PriorityClass names with this prefix for its own critical pods.
const SYSTEM_PRIORITY_PREFIX: &str = "system-";

/// The API group, version and resource of a kind.
pub fn api(kind: ProxyClusterKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        ProxyClusterKind::StorageClass => ("storage.k8s.io", "v1", "storageclasses"),
        ProxyClusterKind::IngressClass => ("networking.k8s.io", "v1", "ingressclasses"),
        ProxyClusterKind::PriorityClass => ("scheduling.k8s.io", "v1", "priorityclasses"),
        ProxyClusterKind::RuntimeClass => ("node.k8s.io", "v1", "runtimeclasses"),
    }
}

/// Every kind the proxy can expose.
pub const KINDS: [ProxyClusterKind; 4] = [
    ProxyClusterKind::StorageClass,
    ProxyClusterKind::IngressClass,
    ProxyClusterKind::PriorityClass,
    ProxyClusterKind::RuntimeClass,
];

/// The kind served at `/apis/{group}/{version}/{resource}`, if it is one of [`KINDS`].
pub fn kind_at(group: &str, version: &str, resource: &str) -> Option<ProxyClusterKind> {
    KINDS
        .into_iter()
        .find(|k| api(*k) == (group, version, resource))
}

/// A `proxy.clusterScoped` that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("proxy.clusterScoped[{index}].kind: {kind:?} is listed twice")]
pub struct DuplicateKind {
    /// Position of the second entry.
    pub index: usize,
    /// The kind.
    pub kind: ProxyClusterKind,
}

/// What the platform exposes, and the class lists tenants fall back to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterReads {
    exposed: BTreeMap<ProxyClusterKind, ProxyReadMode>,
    defaults: Classes,
}

impl ClusterReads {
    /// The platform's `proxy.clusterScoped` and `defaults.classes`.
    pub fn from_platform(platform: &Platform) -> Result<Self, DuplicateKind> {
        let mut exposed = BTreeMap::new();
        for (index, entry) in platform.proxy.cluster_scoped.iter().enumerate() {
            if exposed.insert(entry.kind, entry.mode).is_some() {
                return Err(DuplicateKind {
                    index,
                    kind: entry.kind,
                });
            }
        }
        Ok(Self {
            exposed,
            defaults: platform.defaults.classes.clone().unwrap_or_default(),
        })
    }

    /// How `kind` is exposed; `None`: not at all (forwarded as the caller).
    pub fn mode(&self, kind: ProxyClusterKind) -> Option<ProxyReadMode> {
        self.exposed.get(&kind).copied()
    }

    /// The kinds exposed, for the ClusterRole.
    pub fn kinds(&self) -> impl Iterator<Item = ProxyClusterKind> + '_ {
        self.exposed.keys().copied()
    }

    /// What a caller belonging to tenants whose classes are `tenants` (`None`: a tenant with
    /// no Tenant object, so the platform's lists) may see of `kind`.
    pub fn allowed<'a>(
        &self,
        kind: ProxyClusterKind,
        tenants: impl IntoIterator<Item = Option<&'a Classes>>,
    ) -> Allowed {
        let platform = list(&self.defaults, kind);
        let mut names = Some(BTreeSet::new());
        for classes in tenants {
            let own = classes.and_then(|c| list(c, kind));
            // The engine's resolution: the tenant's own list, which may only narrow the
            // platform's (kept to it here too, whatever a Tenant object says), else the
            // platform's; none at all is unrestricted.
            let resolved: Option<BTreeSet<&String>> = match (own, platform) {
                (Some(own), Some(bound)) => Some(
                    own.allowed
                        .iter()
                        .filter(|n| bound.allowed.contains(n))
                        .collect(),
                ),
                (Some(only), None) | (None, Some(only)) => Some(only.allowed.iter().collect()),
                (None, None) => None,
            };
            match (resolved, names.as_mut()) {
                (None, _) => names = None,
                (Some(resolved), Some(names)) => names.extend(resolved.into_iter().cloned()),
                (Some(_), None) => {}
            }
        }
        Allowed {
            names,
            never_system: kind == ProxyClusterKind::PriorityClass,
        }
    }
}

fn list(classes: &Classes, kind: ProxyClusterKind) -> Option<&ClassList> {
    match kind {
        ProxyClusterKind::StorageClass => classes.storage.as_ref(),
        ProxyClusterKind::IngressClass => classes.ingress.as_ref(),
        ProxyClusterKind::PriorityClass => classes.priority.as_ref(),
        ProxyClusterKind::RuntimeClass => classes.runtime.as_ref(),
    }
}

/// The classes of one kind a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// `None`: every name.
    names: Option<BTreeSet<String>>,
    /// `system-*` names are never a tenant's (PriorityClasses).
    never_system: bool,
}

impl Allowed {
    /// Every class (`mode: all`).
    pub fn everything() -> Self {
        Self {
            names: None,
            never_system: false,
        }
    }

    /// Whether the caller sees the class `name`.
    pub fn permits(&self, name: &str) -> bool {
        !(self.never_system && name.starts_with(SYSTEM_PRIORITY_PREFIX))
            && self.names.as_ref().is_none_or(|n| n.contains(name))
    }

    /// Whether nothing is filtered out.
    pub fn is_everything(&self) -> bool {
        self.names.is_none() && !self.never_system
    }

    /// Filter one JSON answer of the API server in place: a list (`items`), a Table
    /// (`rows`, by the row's object name or else its first cell, the Name column), or one
    /// object. `false`: the object may not be shown (a 404 for a get).
    pub fn filter(&self, value: &mut Value) -> bool {
        self.filter_object(value, false)
    }

    /// Filter one watch event in place; `false`: drop it. Bookmarks and errors carry no class.
    pub fn filter_event(&self, event: &mut Value) -> bool {
        match event.get("type").and_then(Value::as_str) {
            Some("BOOKMARK" | "ERROR") => true,
            _ => event
                .get_mut("object")
                .is_some_and(|o| self.filter_object(o, true)),
        }
    }

    fn filter_object(&self, value: &mut Value, in_event: bool) -> bool {
        let name_of = |v: &Value| {
            v.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let table = value.get("kind").and_then(Value::as_str) == Some("Table");
        let key = if table { "rows" } else { "items" };
        let Some(entries) = value.get_mut(key).and_then(Value::as_array_mut) else {
            return name_of(value).is_some_and(|n| self.permits(&n));
        };
        entries.retain(|entry| {
            let name = match table {
                true => entry.get("object").and_then(name_of).or_else(|| {
                    entry
                        .pointer("/cells/0")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                }),
                false => name_of(entry),
            };
            name.is_some_and(|n| self.permits(&n))
        });
        let any = !entries.is_empty();
        if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("remainingItemCount");
        }
        // A watch event's Table with no row left is no event; a list may be empty.
        any || !in_event
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tenantry_api::platform::{ProxyClusterScoped, ProxyConfig};

    use super::*;

    fn classes(storage: Option<&[&str]>, priority: Option<&[&str]>) -> Classes {
        let l = |names: &[&str]| ClassList {
            allowed: names.iter().map(|n| (*n).to_owned()).collect(),
            default: None,
        };
        Classes {
            storage: storage.map(l),
            priority: priority.map(l),
            ..Classes::default()
        }
    }

    fn reads(defaults: Classes) -> ClusterReads {
        ClusterReads::from_platform(&Platform {
            defaults: tenantry_api::tenant::TenantSpec {
                classes: Some(defaults),
                ..Platform::default().defaults
            },
            proxy: ProxyConfig {
                cluster_scoped: vec![ProxyClusterScoped {
                    kind: ProxyClusterKind::StorageClass,
                    mode: ProxyReadMode::Filtered,
                }],
            },
            ..Platform::default()
        })
        .unwrap()
    }

    #[test]
    fn a_tenant_sees_its_resolved_classes_and_never_system_priority_classes() {
        let reads = reads(classes(Some(&["fast", "slow", "gold"]), None));
        let storage = ProxyClusterKind::StorageClass;
        // The platform's list for a tenant with none of its own (or no Tenant object).
        let platform = reads.allowed(storage, [None]);
        assert!(platform.permits("fast") && platform.permits("gold"));
        assert!(!platform.permits("local-path"));
        // The tenant's own list, within the platform's only.
        let own = classes(Some(&["fast", "local-path"]), None);
        let narrowed = reads.allowed(storage, [Some(&own)]);
        assert!(narrowed.permits("fast"));
        assert!(!narrowed.permits("slow") && !narrowed.permits("local-path"));
        // Two tenants: the union.
        let both = reads.allowed(storage, [Some(&own), None]);
        assert!(both.permits("slow") && both.permits("fast"));
        // No list anywhere: unrestricted, but system-* PriorityClasses stay the platform's.
        let priority = reads.allowed(ProxyClusterKind::PriorityClass, [None]);
        assert!(priority.permits("batch-low"));
        assert!(!priority.permits("system-cluster-critical"));
        assert!(
            reads
                .allowed(ProxyClusterKind::RuntimeClass, [None])
                .is_everything()
        );
    }

    #[test]
    fn lists_tables_watch_events_and_objects_keep_only_allowed_classes() {
        let allowed =
            reads(classes(Some(&["fast"]), None)).allowed(ProxyClusterKind::StorageClass, [None]);
        let sc = |name: &str| json!({"kind": "StorageClass", "metadata": {"name": name}});
        let mut list = json!({"kind": "StorageClassList",
            "metadata": {"resourceVersion": "9", "remainingItemCount": 3},
            "items": [sc("fast"), sc("slow")]});
        assert!(allowed.filter(&mut list));
        assert_eq!(list["items"], json!([sc("fast")]));
        assert!(list["metadata"].get("remainingItemCount").is_none());
        let mut table = json!({"kind": "Table", "metadata": {"resourceVersion": "9"}, "rows": [
            {"cells": ["slow"], "object": {"metadata": {"name": "slow"}}},
            {"cells": ["fast"]}]});
        assert!(allowed.filter(&mut table));
        assert_eq!(table["rows"], json!([{"cells": ["fast"]}]));
        let mut hidden_event = json!({"type": "ADDED", "object": sc("slow")});
        assert!(!allowed.filter_event(&mut hidden_event));
        assert!(allowed.filter_event(&mut json!({"type": "MODIFIED", "object": sc("fast")})));
        let mut hidden_table_event = json!({"type": "ADDED", "object": {"kind": "Table",
            "metadata": {}, "rows": [{"cells": ["slow"]}]}});
        assert!(!allowed.filter_event(&mut hidden_table_event));
        let mut bookmark =
            json!({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "10"}}});
        assert!(allowed.filter_event(&mut bookmark));
        assert!(allowed.filter(&mut sc("fast")));
        assert!(!allowed.filter(&mut sc("slow")));
    }

    #[test]
    fn a_kind_listed_twice_is_named_in_the_error() {
        let entry = ProxyClusterScoped {
            kind: ProxyClusterKind::IngressClass,
            mode: ProxyReadMode::All,
        };
        let platform = Platform {
            proxy: ProxyConfig {
                cluster_scoped: vec![entry.clone(), entry],
            },
            ..Platform::default()
        };
        let error = ClusterReads::from_platform(&platform).unwrap_err();
        assert_eq!(
            error.to_string(),
            "proxy.clusterScoped[1].kind: IngressClass is listed twice"
        );
    }

    #[test]
    fn the_four_kinds_are_found_at_their_api_paths_only() {
        for kind in KINDS {
            let (group, version, resource) = api(kind);
            assert_eq!(kind_at(group, version, resource), Some(kind));
        }
        assert_eq!(kind_at("storage.k8s.io", "v1", "csidrivers"), None);
        assert_eq!(kind_at("storage.k8s.io", "v1beta1", "storageclasses"), None);
    }
}
