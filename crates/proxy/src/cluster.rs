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
//! reads JSON (the proxy asks upstream for JSON only) and drops `remainingItemCount`, which
//! clients treat as unknown. A filtered list with `limit` keeps the API server's contract
//! ([`FilteredList`]): `limit` items whenever that many allowed ones remain, and a `continue`
//! token that resumes after the last one returned — a page cut short by filtering alone
//! would make a client that stops at a short page (or counts on `limit`) miss classes.

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

/// Query parameters the API server refuses beside a `continue` token: dropped from the pages
/// the proxy asks for itself.
const NOT_WITH_CONTINUE: [&str; 2] = ["resourceVersion", "resourceVersionMatch"];

/// A filtered list, read from the API server page by page until it holds the client's
/// `limit` allowed items or the API server has no more. Each upstream page asks for just the
/// items still missing, so an upstream page never holds more than fit, and its `continue`
/// token (the one handed to the client) resumes right after the last item kept. Without a
/// usable `limit` it is one request with the client's query unchanged.
#[derive(Debug)]
pub struct FilteredList {
    allowed: Allowed,
    /// The client's query, unchanged.
    query: String,
    /// The client's parameters less `limit` and `continue`, when paging.
    params: Vec<(String, String)>,
    /// The client's `limit`; `None`: not paging.
    limit: Option<usize>,
    /// The list so far (the first page, with later pages' entries appended).
    list: Option<Value>,
    /// Entries kept so far.
    kept: usize,
    /// The `continue` token of the next upstream page; `None` after the last.
    next: Option<String>,
}

impl FilteredList {
    /// The list the client asked for with `query` (the request's query string, undecoded).
    pub fn new(query: &str, allowed: Allowed) -> Self {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let value = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        // As the API server: no limit, 0 or a negative one lists everything; a malformed
        // one goes upstream unchanged to be refused there.
        let limit = value("limit")
            .and_then(|l| l.parse::<i64>().ok())
            .and_then(|l| usize::try_from(l).ok())
            .filter(|l| *l > 0);
        let next = value("continue").filter(|c| !c.is_empty()).cloned();
        let params = pairs
            .iter()
            .filter(|(k, _)| k != "limit" && k != "continue")
            .cloned()
            .collect();
        Self {
            allowed,
            query: query.to_owned(),
            params,
            limit,
            list: None,
            kept: 0,
            next,
        }
    }

    /// The query string of the next upstream request; `None` when the list is complete.
    pub fn next_query(&self) -> Option<String> {
        let first = self.list.is_none();
        let Some(limit) = self.limit else {
            return first.then(|| self.query.clone());
        };
        if !first && (self.next.is_none() || self.kept >= limit) {
            return None;
        }
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.params {
            if first || !NOT_WITH_CONTINUE.contains(&k.as_str()) {
                query.append_pair(k, v);
            }
        }
        query.append_pair("limit", &(limit - self.kept).to_string());
        if let Some(token) = &self.next {
            query.append_pair("continue", token);
        }
        Some(query.finish())
    }

    /// Take the API server's answer to [`Self::next_query`]: a JSON list or Table.
    pub fn take(&mut self, mut page: Value) {
        self.allowed.filter(&mut page);
        self.next = page
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        let entries = match entries_mut(&mut page) {
            Some(entries) => std::mem::take(entries),
            None => Vec::new(),
        };
        self.kept += entries.len();
        let list = self.list.get_or_insert(page);
        if let Some(all) = entries_mut(list) {
            all.extend(entries);
        }
        if let Some(metadata) = list.get_mut("metadata").and_then(Value::as_object_mut) {
            match &self.next {
                Some(token) => {
                    metadata.insert("continue".to_owned(), Value::String(token.clone()));
                }
                None => {
                    metadata.remove("continue");
                }
            }
        }
    }

    /// The list for the client.
    pub fn finish(self) -> Value {
        self.list.unwrap_or(Value::Null)
    }
}

/// A list's `items` or a Table's `rows`.
fn entries_mut(value: &mut Value) -> Option<&mut Vec<Value>> {
    let key = if value.get("kind").and_then(Value::as_str) == Some("Table") {
        "rows"
    } else {
        "items"
    };
    value.get_mut(key).and_then(Value::as_array_mut)
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

    /// The API server's paging of `classes` (in name order) for `query`: `limit` items from
    /// the position its `continue` token names, as a list or, with `table`, a Table.
    fn upstream_page(classes: &[&str], query: &str, table: bool) -> Value {
        let params: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        assert!(
            !(params.contains_key("continue") && params.contains_key("resourceVersion")),
            "the API server refuses resourceVersion beside continue: {query}"
        );
        let from: usize = params.get("continue").map_or(0, |c| c.parse().unwrap());
        let limit: usize = params
            .get("limit")
            .map_or(classes.len(), |l| l.parse().unwrap());
        let to = (from + limit).min(classes.len());
        let mut metadata = json!({"resourceVersion": "7"});
        if to < classes.len() {
            metadata["continue"] = json!(to.to_string());
            metadata["remainingItemCount"] = json!(classes.len() - to);
        }
        let page = &classes[from..to];
        if table {
            let rows: Vec<Value> = page.iter().map(|n| json!({"cells": [n]})).collect();
            json!({"kind": "Table", "columnDefinitions": [{"name": "Name"}],
                   "metadata": metadata, "rows": rows})
        } else {
            let items: Vec<Value> = page
                .iter()
                .map(|n| json!({"kind": "StorageClass", "metadata": {"name": n}}))
                .collect();
            json!({"kind": "StorageClassList", "metadata": metadata, "items": items})
        }
    }

    /// What a client paging with `query` gets through the proxy: each answer's names, and
    /// the upstream queries the proxy made.
    fn page_through(query: &str, table: bool) -> (Vec<Vec<String>>, Vec<String>) {
        let classes = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        let allowed = reads(classes_of(&["b", "e", "f", "i"]))
            .allowed(ProxyClusterKind::StorageClass, [None]);
        let (mut answers, mut asked) = (Vec::new(), Vec::new());
        let mut query = query.to_owned();
        loop {
            let mut list = FilteredList::new(&query, allowed.clone());
            while let Some(upstream) = list.next_query() {
                list.take(upstream_page(&classes, &upstream, table));
                asked.push(upstream);
            }
            let answer = list.finish();
            let key = if table { "rows" } else { "items" };
            answers.push(
                answer[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| {
                        e.pointer(if table { "/cells/0" } else { "/metadata/name" })
                            .and_then(Value::as_str)
                            .unwrap()
                            .to_owned()
                    })
                    .collect(),
            );
            assert_eq!(answer["metadata"]["resourceVersion"], "7");
            assert!(answer["metadata"].get("remainingItemCount").is_none());
            match answer["metadata"]["continue"].as_str() {
                Some(token) => {
                    query = url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("limit", "2")
                        .append_pair("continue", token)
                        .finish();
                }
                None => return (answers, asked),
            }
            assert!(answers.len() < 10, "{answers:?}");
        }
    }

    fn classes_of(storage: &[&str]) -> Classes {
        classes(Some(storage), None)
    }

    #[test]
    fn a_filtered_list_with_limit_holds_limit_allowed_classes_and_resumes_after_them() {
        // Before paging: the first answer was [b] (of a, b upstream) with a token, though e
        // and f were allowed.
        let (answers, asked) =
            page_through("limit=2&labelSelector=x%21%3Dy&resourceVersion=0", false);
        assert_eq!(answers, [["b", "e"], ["f", "i"]]);
        // Only the first upstream page carries the client's resourceVersion; every page keeps
        // its other parameters and asks for just the items still missing.
        assert_eq!(
            asked[..3],
            [
                "labelSelector=x%21%3Dy&resourceVersion=0&limit=2",
                "labelSelector=x%21%3Dy&limit=1&continue=2",
                "labelSelector=x%21%3Dy&limit=1&continue=3",
            ]
        );
        // A Table pages the same way, by its rows.
        let (rows, _) = page_through("limit=2", true);
        assert_eq!(rows, [["b", "e"], ["f", "i"]]);
    }

    #[test]
    fn a_filtered_list_without_a_usable_limit_is_one_request_unchanged() {
        for query in ["", "labelSelector=a%3Db", "limit=0", "limit=x"] {
            let allowed = reads(classes_of(&["b"])).allowed(ProxyClusterKind::StorageClass, [None]);
            let mut list = FilteredList::new(query, allowed);
            assert_eq!(list.next_query().as_deref(), Some(query));
            list.take(upstream_page(&["a", "b"], "", false));
            assert_eq!(list.next_query(), None);
            assert_eq!(list.finish()["items"].as_array().unwrap().len(), 1);
        }
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
