//! The tenant index: which namespaces are whose, and who belongs to which tenant, in memory.
//!
//! Resolving a caller's tenant or listing its namespaces must never cost a call to the API
//! server on the request path: a proxy that lists namespaces per `kubectl get ns` makes every
//! tenant pay a round trip plus the cluster-wide list's cost (capsule-proxy's users measure
//! seconds), and puts the API server's load in the tenants' hands. So two watches
//! ([`crate::feed`]) keep this index: namespaces carrying the tenant label, and Tenant objects
//! (for their `owners`). Everything here is plain data and plain functions over it; the feed
//! holds it under a lock and broadcasts each [`Change`] to open watches.
//!
//! # Who belongs to a tenant
//! - the ServiceAccounts of a tenant's namespaces (`system:serviceaccount:<ns>:<name>` where
//!   `<ns>` carries the tenant label): the credentials `tenantry kubeconfig` issues, and the
//!   tenant's Flux;
//! - the users, groups and ServiceAccounts listed in a Tenant object's `spec.owners`.
//!
//! A caller can belong to several tenants (a person owning two) and sees the namespaces of
//! all of them; a caller of none is not a tenant and its namespace reads pass through, so the
//! API server's RBAC answers them as it would directly (an administrator sees everything).
//!
//! # Watches and resourceVersions
//! The index keeps the last [`HISTORY`] changes with the API server's resourceVersions, so a
//! client that listed at version N and then watches from N (what `kubectl get -w` and every
//! informer do) gets exactly the changes after N. A version older than the history is
//! answered `410 Expired`, as the API server does after a compaction, and the client lists
//! again. Changes the index only learns from a re-list (a namespace deleted while the watch
//! was down) carry the index's version at that moment.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    sync::Arc,
};

use base64::Engine as _;
use serde_json::Value;
use tenantry_api::tenant::{Classes, Owner, OwnerKind};

use crate::{auth::UserInfo, route::ListQuery, status::Refusal};

/// How many changes are kept for watches that resume from a resourceVersion.
pub const HISTORY: usize = 4096;

/// A tenant's namespace as the index holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceEntry {
    /// Its name.
    pub name: String,
    /// The tenant label's value.
    pub tenant: String,
    /// Its labels, for label selectors.
    pub labels: BTreeMap<String, String>,
    /// `status.phase` (`Active`, `Terminating`).
    pub phase: String,
    /// `metadata.creationTimestamp`, for a Table's age column.
    pub created: Option<String>,
    /// `metadata.resourceVersion`, as a number (0 when unreadable).
    pub resource_version: u64,
    /// The Namespace object as the API server sent it, less `metadata.managedFields`, as
    /// compact JSON text (see [`NamespaceEntry::object`]).
    json: Box<str>,
}

impl NamespaceEntry {
    /// The Namespace object as the proxy serves it: what the API server sent, less
    /// `metadata.managedFields`.
    ///
    /// Why text and why no managedFields: the index holds every tenant namespace of the
    /// cluster, and a `serde_json::Value` tree with managedFields cost ~8 KiB per namespace
    /// (98 MiB RSS at 10,000), where the compact text without them is ~0.4 KiB. managedFields
    /// are server-side apply bookkeeping that `kubectl get -o yaml|json` hides by default
    /// (`--show-managed-fields=false`) and no read-only client needs; writes (apply included)
    /// pass through to the API server, which keeps them. A tenant asking for them with
    /// `--show-managed-fields` sees none through the proxy. Parsed per answer: a tenant's
    /// page is its own namespaces, a few dozen objects.
    pub fn object(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }

    /// The served JSON text of the object.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// Read a Namespace object; `None` when it has no name or no (non-empty) tenant label.
    pub fn from_object(mut object: Value, tenant_label: &str) -> Option<Self> {
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("managedFields");
        }
        let metadata = object.get("metadata")?;
        let name = metadata.get("name")?.as_str()?.to_owned();
        let labels: BTreeMap<String, String> = metadata
            .get("labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let tenant = labels.get(tenant_label).filter(|t| !t.is_empty())?.clone();
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            name,
            tenant,
            phase: text(object.pointer("/status/phase")).unwrap_or_else(|| "Active".to_owned()),
            created: text(metadata.get("creationTimestamp")),
            resource_version: resource_version_of(&object),
            labels,
            json: object.to_string().into_boxed_str(),
        })
    }
}

/// `metadata.resourceVersion` as a number (0 when absent or not a number).
pub fn resource_version_of(object: &Value) -> u64 {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// What the index keeps of a Tenant object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantFacts {
    /// `spec.owners`: who belongs to the tenant.
    pub owners: Vec<Owner>,
    /// `spec.classes`: the shared classes it may use (the cluster-scoped reads of
    /// [`crate::cluster`]).
    pub classes: Option<Classes>,
}

impl From<Vec<Owner>> for TenantFacts {
    fn from(owners: Vec<Owner>) -> Self {
        Self {
            owners,
            classes: None,
        }
    }
}

/// One change to the set of tenant namespaces.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The resourceVersion it happened at.
    pub resource_version: u64,
    /// Before (absent: added).
    pub old: Option<Arc<NamespaceEntry>>,
    /// After (absent: deleted or no longer a tenant's).
    pub new: Option<Arc<NamespaceEntry>>,
}

/// A watch event's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// `ADDED`.
    Added,
    /// `MODIFIED`.
    Modified,
    /// `DELETED`.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// A watch event for one caller.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchEvent {
    /// Its type.
    pub kind: EventType,
    /// The namespace (for a deletion, as last seen).
    pub entry: Arc<NamespaceEntry>,
}

/// The start of a watch: the events to send first and the version live changes follow.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchStart {
    /// Sent first, in order.
    pub initial: Vec<WatchEvent>,
    /// Live changes at or below this version are already covered.
    pub after: u64,
    /// Send a bookmark marking the end of the initial events (`sendInitialEvents`).
    pub initial_events_end: bool,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    /// The namespaces, by name.
    pub items: Vec<Arc<NamespaceEntry>>,
    /// The index's version.
    pub resource_version: u64,
    /// Where the next page starts.
    pub continue_token: Option<String>,
    /// How many items follow this page.
    pub remaining: Option<u64>,
}

/// The tenants a caller belongs to (empty: not a tenant).
pub type Scope = BTreeSet<String>;

/// The index. See the module documentation.
#[derive(Debug)]
pub struct Index {
    tenant_label: String,
    namespaces: BTreeMap<String, Arc<NamespaceEntry>>,
    tenants: BTreeMap<String, TenantFacts>,
    resource_version: u64,
    history: VecDeque<Arc<Change>>,
    /// Every change after this version is in `history`.
    history_floor: u64,
    relisting_namespaces: Option<BTreeMap<String, Arc<NamespaceEntry>>>,
    relisting_tenants: Option<BTreeMap<String, TenantFacts>>,
    namespaces_synced: bool,
}

impl Index {
    /// An empty index for namespaces carrying `tenant_label`.
    pub fn new(tenant_label: impl Into<String>) -> Self {
        Self {
            tenant_label: tenant_label.into(),
            namespaces: BTreeMap::new(),
            tenants: BTreeMap::new(),
            resource_version: 0,
            history: VecDeque::new(),
            history_floor: 0,
            relisting_namespaces: None,
            relisting_tenants: None,
            namespaces_synced: false,
        }
    }

    /// The tenant label key.
    pub fn tenant_label(&self) -> &str {
        &self.tenant_label
    }

    /// Whether the namespace watch has finished its first list: until then the proxy does not
    /// know who belongs where and answers 503 rather than an empty list.
    pub fn is_synced(&self) -> bool {
        self.namespaces_synced
    }

    /// Number of tenant namespaces known.
    pub fn len(&self) -> usize {
        self.namespaces.len()
    }

    /// Whether no tenant namespace is known.
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
    }

    /// The index's version: the newest resourceVersion it has seen.
    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    fn record(&mut self, change: Change) -> Arc<Change> {
        self.resource_version = self.resource_version.max(change.resource_version);
        let change = Arc::new(change);
        self.history.push_back(change.clone());
        while self.history.len() > HISTORY {
            if let Some(evicted) = self.history.pop_front() {
                self.history_floor = self.history_floor.max(evicted.resource_version);
            }
        }
        change
    }

    /// A namespace was added or changed (watch `Apply`). Returns the change, if any.
    pub fn upsert_namespace(&mut self, object: Value) -> Option<Arc<Change>> {
        let rv = resource_version_of(&object);
        let Some(entry) = NamespaceEntry::from_object(object.clone(), &self.tenant_label) else {
            // No longer a tenant's: for its watchers it is gone.
            let name = object.pointer("/metadata/name")?.as_str()?.to_owned();
            return self.remove_namespace(&name, rv);
        };
        let entry = Arc::new(entry);
        if let Some(relisting) = self.relisting_namespaces.as_mut() {
            relisting.insert(entry.name.clone(), entry.clone());
        }
        let old = self.namespaces.insert(entry.name.clone(), entry.clone());
        if old.as_ref().is_some_and(|o| o.json == entry.json) {
            return None;
        }
        Some(self.record(Change {
            resource_version: rv.max(self.resource_version),
            old,
            new: Some(entry),
        }))
    }

    /// A namespace was deleted or lost its tenant label (watch `Delete`).
    pub fn remove_namespace(&mut self, name: &str, rv: u64) -> Option<Arc<Change>> {
        if let Some(relisting) = self.relisting_namespaces.as_mut() {
            relisting.remove(name);
        }
        let old = self.namespaces.remove(name)?;
        Some(self.record(Change {
            resource_version: rv.max(self.resource_version),
            old: Some(old),
            new: None,
        }))
    }

    /// A re-list of namespaces starts (watch `Init`).
    pub fn start_namespace_relist(&mut self) {
        self.relisting_namespaces = Some(BTreeMap::new());
    }

    /// A namespace seen during the re-list (watch `InitApply`).
    pub fn relist_namespace(&mut self, object: Value) {
        if let Some(entry) = NamespaceEntry::from_object(object, &self.tenant_label) {
            self.resource_version = self.resource_version.max(entry.resource_version);
            self.relisting_namespaces
                .get_or_insert_with(BTreeMap::new)
                .insert(entry.name.clone(), Arc::new(entry));
        }
    }

    /// The re-list is complete (watch `InitDone`): swap it in, and return the differences as
    /// changes for open watches.
    pub fn finish_namespace_relist(&mut self) -> Vec<Arc<Change>> {
        self.namespaces_synced = true;
        let Some(listed) = self.relisting_namespaces.take() else {
            return Vec::new();
        };
        let old = std::mem::replace(&mut self.namespaces, listed);
        let mut changes = Vec::new();
        let rv = self.resource_version;
        for (name, before) in &old {
            match self.namespaces.get(name) {
                None => changes.push(Change {
                    resource_version: rv,
                    old: Some(before.clone()),
                    new: None,
                }),
                Some(after) if after.json != before.json => changes.push(Change {
                    resource_version: after.resource_version.max(rv),
                    old: Some(before.clone()),
                    new: Some(after.clone()),
                }),
                Some(_) => {}
            }
        }
        for (name, after) in &self.namespaces {
            if !old.contains_key(name) {
                changes.push(Change {
                    resource_version: after.resource_version.max(rv),
                    old: None,
                    new: Some(after.clone()),
                });
            }
        }
        changes.into_iter().map(|c| self.record(c)).collect()
    }

    /// A Tenant was seen (added or changed).
    pub fn upsert_tenant(&mut self, name: &str, facts: impl Into<TenantFacts>) {
        let facts = facts.into();
        if let Some(relisting) = self.relisting_tenants.as_mut() {
            relisting.insert(name.to_owned(), facts.clone());
        }
        self.tenants.insert(name.to_owned(), facts);
    }

    /// A Tenant was deleted.
    pub fn remove_tenant(&mut self, name: &str) {
        if let Some(relisting) = self.relisting_tenants.as_mut() {
            relisting.remove(name);
        }
        self.tenants.remove(name);
    }

    /// A re-list of Tenants starts.
    pub fn start_tenant_relist(&mut self) {
        self.relisting_tenants = Some(BTreeMap::new());
    }

    /// A Tenant seen during the re-list.
    pub fn relist_tenant(&mut self, name: &str, facts: impl Into<TenantFacts>) {
        self.relisting_tenants
            .get_or_insert_with(BTreeMap::new)
            .insert(name.to_owned(), facts.into());
    }

    /// The Tenant re-list is complete.
    pub fn finish_tenant_relist(&mut self) {
        if let Some(listed) = self.relisting_tenants.take() {
            self.tenants = listed;
        }
    }

    /// The `spec.classes` of each tenant in `scope`: `None` for a tenant without a Tenant
    /// object or without classes of its own (the platform's lists apply).
    pub fn classes_of<'a>(&'a self, scope: &'a Scope) -> impl Iterator<Item = Option<&'a Classes>> {
        scope
            .iter()
            .map(|t| self.tenants.get(t).and_then(|f| f.classes.as_ref()))
    }

    /// The tenants `user` belongs to (see the module documentation).
    pub fn tenants_of(&self, user: &UserInfo) -> Scope {
        let mut scope = Scope::new();
        let service_account = user
            .username
            .strip_prefix("system:serviceaccount:")
            .and_then(|rest| rest.split_once(':'));
        if let Some(entry) = service_account.and_then(|(ns, _)| self.namespaces.get(ns)) {
            scope.insert(entry.tenant.clone());
        }
        for (tenant, facts) in &self.tenants {
            let owns = facts.owners.iter().any(|owner| match owner.kind {
                OwnerKind::User => owner.name == user.username,
                OwnerKind::Group => user.groups.contains(&owner.name),
                OwnerKind::ServiceAccount => service_account.is_some_and(|(ns, name)| {
                    name == owner.name && owner.namespace.as_deref() == Some(ns)
                }),
            });
            if owns {
                scope.insert(tenant.clone());
            }
        }
        scope
    }

    /// `GET /api/v1/namespaces/{name}` for a caller: another tenant's namespace, or one that
    /// is no tenant's, is answered exactly like a missing one.
    pub fn get(&self, scope: &Scope, name: &str) -> Result<Arc<NamespaceEntry>, Refusal> {
        self.namespaces
            .get(name)
            .filter(|e| scope.contains(&e.tenant))
            .cloned()
            .ok_or_else(|| Refusal::namespace_not_found(name))
    }

    /// `GET /api/v1/namespaces` for a caller, one page of it.
    pub fn list(&self, scope: &Scope, query: &ListQuery) -> Result<ListPage, Refusal> {
        let start = match &query.continue_token {
            Some(token) => Some(decode_continue(token)?),
            None => None,
        };
        let mut matching = self
            .namespaces
            .iter()
            .filter(|(name, _)| start.as_deref().is_none_or(|s| name.as_str() > s))
            .map(|(_, e)| e)
            .filter(|e| selected(scope, query, e));
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let items: Vec<Arc<NamespaceEntry>> = if limit == 0 {
            matching.by_ref().cloned().collect()
        } else {
            matching.by_ref().take(limit).cloned().collect()
        };
        let remaining = matching.count() as u64;
        let continue_token = (remaining > 0)
            .then(|| items.last().map(|e| encode_continue(&e.name)))
            .flatten();
        Ok(ListPage {
            items,
            resource_version: self.resource_version,
            remaining: continue_token.is_some().then_some(remaining),
            continue_token,
        })
    }

    /// Start a watch for a caller: the initial events its `resourceVersion` asks for.
    pub fn watch_start(&self, scope: &Scope, query: &ListQuery) -> Result<WatchStart, Refusal> {
        let from = match query.resource_version.as_deref() {
            None | Some("") | Some("0") => None,
            Some(text) => Some(text.parse::<u64>().map_err(|_| {
                Refusal::bad_request(format!("resourceVersion: {text:?} is not a valid version"))
            })?),
        };
        let initial = match from {
            Some(from) if !query.send_initial_events => {
                if from < self.history_floor {
                    return Err(Refusal::expired(format!(
                        "too old resource version: {from} ({})",
                        self.history_floor
                    )));
                }
                self.history
                    .iter()
                    .filter(|c| c.resource_version > from)
                    .filter_map(|c| event_for(scope, query, c))
                    .collect()
            }
            _ => self
                .namespaces
                .values()
                .filter(|e| selected(scope, query, e))
                .map(|e| WatchEvent {
                    kind: EventType::Added,
                    entry: e.clone(),
                })
                .collect(),
        };
        Ok(WatchStart {
            initial,
            after: self.resource_version,
            initial_events_end: query.send_initial_events,
        })
    }
}

/// Whether a caller of `scope` asking `query` sees `entry`.
fn selected(scope: &Scope, query: &ListQuery, entry: &NamespaceEntry) -> bool {
    scope.contains(&entry.tenant)
        && query.labels.matches(&entry.labels)
        && query.fields.matches(&entry.name, &entry.phase)
}

/// The event `change` is for a caller watching `scope` with `query`, if any: a namespace
/// entering the selection is `ADDED`, leaving it `DELETED`, as the API server's watch cache
/// reports selector transitions. Needs no index, so live watches filter without its lock.
pub fn event_for(scope: &Scope, query: &ListQuery, change: &Change) -> Option<WatchEvent> {
    let was = change.old.as_ref().filter(|e| selected(scope, query, e));
    let is = change.new.as_ref().filter(|e| selected(scope, query, e));
    let (kind, entry) = match (was, is) {
        (None, None) => return None,
        (None, Some(new)) => (EventType::Added, new),
        (Some(_), Some(new)) => (EventType::Modified, new),
        (Some(old), None) => (EventType::Deleted, change.new.as_ref().unwrap_or(old)),
    };
    Some(WatchEvent {
        kind,
        entry: entry.clone(),
    })
}

const CONTINUE_PREFIX: &str = "tenantry-proxy/v1:";

fn encode_continue(last: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CONTINUE_PREFIX}{last}"))
}

fn decode_continue(token: &str) -> Result<String, Refusal> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(CONTINUE_PREFIX).map(str::to_owned))
        .ok_or_else(|| Refusal::bad_request("continue key is not valid: not issued by this proxy"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::selector::parse_label_selector;

    const LABEL: &str = "tenantry.dev/tenant";

    fn ns(name: &str, tenant: Option<&str>, rv: u64) -> Value {
        let mut labels = json!({"kubernetes.io/metadata.name": name});
        if let Some(t) = tenant {
            labels[LABEL] = json!(t);
        }
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": name, "labels": labels, "resourceVersion": rv.to_string(),
                            "creationTimestamp": "2026-01-01T00:00:00Z"},
               "status": {"phase": "Active"}})
    }

    fn sa(ns: &str, name: &str) -> UserInfo {
        UserInfo {
            username: format!("system:serviceaccount:{ns}:{name}"),
            groups: vec!["system:serviceaccounts".to_owned()],
            ..UserInfo::default()
        }
    }

    fn scope(names: &[&str]) -> Scope {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_namespace_is_served_as_read_less_its_managed_fields() {
        let mut object = ns("shop", Some("shop"), 7);
        let served = object.clone();
        object["metadata"]["managedFields"] = json!([{
            "manager": "kubectl-create", "operation": "Update", "apiVersion": "v1",
            "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/metadata.name": {}}}},
        }]);
        let entry = NamespaceEntry::from_object(object, LABEL).unwrap();
        assert_eq!(entry.object(), served);
        assert!(!entry.json().contains("managedFields"));
        // A change to managedFields alone is no change for watchers.
        let mut index = Index::new(LABEL);
        assert!(
            index
                .upsert_namespace(ns("shop", Some("shop"), 7))
                .is_some()
        );
        let mut again = ns("shop", Some("shop"), 7);
        again["metadata"]["managedFields"] = json!([{"manager": "other"}]);
        assert!(index.upsert_namespace(again).is_none());
    }

    fn index() -> Index {
        let mut index = Index::new(LABEL);
        index.start_namespace_relist();
        index.relist_namespace(ns("shop", Some("shop"), 10));
        index.relist_namespace(ns("shop-dev", Some("shop"), 11));
        index.relist_namespace(ns("blog", Some("blog"), 12));
        index.relist_namespace(ns("kube-system", None, 3));
        index.finish_namespace_relist();
        index
    }

    fn names(page: &ListPage) -> Vec<&str> {
        page.items.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn service_accounts_and_owners_resolve_to_their_tenants() {
        let mut index = index();
        assert_eq!(index.tenants_of(&sa("shop-dev", "ci")), scope(&["shop"]));
        assert_eq!(index.tenants_of(&sa("kube-system", "x")), scope(&[]));
        index.upsert_tenant(
            "blog",
            vec![
                Owner {
                    kind: OwnerKind::User,
                    name: "ann@example.com".into(),
                    namespace: None,
                },
                Owner {
                    kind: OwnerKind::Group,
                    name: "team-blog".into(),
                    namespace: None,
                },
                Owner {
                    kind: OwnerKind::ServiceAccount,
                    name: "flux".into(),
                    namespace: Some("flux-system".into()),
                },
            ],
        );
        let ann = UserInfo {
            username: "ann@example.com".into(),
            ..UserInfo::default()
        };
        assert_eq!(index.tenants_of(&ann), scope(&["blog"]));
        let member = UserInfo {
            username: "bob".into(),
            groups: vec!["team-blog".into()],
            ..UserInfo::default()
        };
        assert_eq!(index.tenants_of(&member), scope(&["blog"]));
        assert_eq!(
            index.tenants_of(&sa("flux-system", "flux")),
            scope(&["blog"])
        );
        // The ServiceAccount of a tenant namespace who also owns another tenant sees both.
        index.upsert_tenant(
            "shop",
            vec![Owner {
                kind: OwnerKind::ServiceAccount,
                name: "ci".into(),
                namespace: Some("blog".into()),
            }],
        );
        assert_eq!(
            index.tenants_of(&sa("blog", "ci")),
            scope(&["blog", "shop"])
        );
        index.remove_tenant("blog");
        assert_eq!(index.tenants_of(&ann), scope(&[]));
    }

    #[test]
    fn a_tenant_lists_and_gets_only_its_own_namespaces() {
        let index = index();
        let page = index
            .list(&scope(&["shop"]), &ListQuery::default())
            .unwrap();
        assert_eq!(names(&page), ["shop", "shop-dev"]);
        assert_eq!(page.resource_version, 12);
        assert!(index.get(&scope(&["shop"]), "shop-dev").is_ok());
        for hidden in ["blog", "kube-system", "nope"] {
            let refusal = index.get(&scope(&["shop"]), hidden).unwrap_err();
            assert_eq!(refusal, Refusal::namespace_not_found(hidden));
        }
        let query = ListQuery {
            labels: parse_label_selector("kubernetes.io/metadata.name=shop").unwrap(),
            ..ListQuery::default()
        };
        assert_eq!(
            names(&index.list(&scope(&["shop", "blog"]), &query).unwrap()),
            ["shop"]
        );
    }

    #[test]
    fn pages_follow_each_other_without_gaps() {
        let index = index();
        let everyone = scope(&["shop", "blog"]);
        let mut query = ListQuery {
            limit: 2,
            ..ListQuery::default()
        };
        let first = index.list(&everyone, &query).unwrap();
        assert_eq!(
            (names(&first), first.remaining),
            (vec!["blog", "shop"], Some(1))
        );
        query.continue_token = first.continue_token.clone();
        let second = index.list(&everyone, &query).unwrap();
        assert_eq!(
            (names(&second), second.continue_token.clone()),
            (vec!["shop-dev"], None)
        );
        query.continue_token = Some("garbage".into());
        assert_eq!(index.list(&everyone, &query).unwrap_err().code, 400);
    }

    #[test]
    fn watches_resume_from_a_version_and_see_selector_transitions() {
        let mut index = index();
        let shop = scope(&["shop"]);
        let from = ListQuery {
            resource_version: Some("12".into()),
            ..ListQuery::default()
        };
        // Another tenant's namespace never shows; one of ours moving away is DELETED.
        index.upsert_namespace(ns("blog-dev", Some("blog"), 13));
        index.upsert_namespace(ns("shop-qa", Some("shop"), 14));
        index.upsert_namespace(ns("shop-dev", Some("blog"), 15));
        index.remove_namespace("shop-qa", 16);
        let start = index.watch_start(&shop, &from).unwrap();
        let events: Vec<(EventType, &str)> = start
            .initial
            .iter()
            .map(|e| (e.kind, e.entry.name.as_str()))
            .collect();
        assert_eq!(
            events,
            [
                (EventType::Added, "shop-qa"),
                (EventType::Deleted, "shop-dev"),
                (EventType::Deleted, "shop-qa")
            ]
        );
        assert_eq!(start.after, 16);
        // No version: the current state as ADDED events.
        let start = index.watch_start(&shop, &ListQuery::default()).unwrap();
        assert_eq!(start.initial.len(), 1);
        assert_eq!(start.initial[0].entry.name, "shop");
    }

    #[test]
    fn a_version_older_than_the_history_is_expired() {
        let mut index = index();
        for i in 0..(HISTORY as u64 + 10) {
            index.upsert_namespace(ns(&format!("shop-{i}"), Some("shop"), 100 + i));
        }
        let query = ListQuery {
            resource_version: Some("50".into()),
            ..ListQuery::default()
        };
        assert_eq!(
            index
                .watch_start(&scope(&["shop"]), &query)
                .unwrap_err()
                .code,
            410
        );
    }

    #[test]
    fn a_relist_reports_what_changed_while_the_watch_was_down() {
        let mut index = index();
        index.start_namespace_relist();
        index.relist_namespace(ns("shop", Some("shop"), 10));
        index.relist_namespace(ns("shop-new", Some("shop"), 20));
        let changes = index.finish_namespace_relist();
        let summary: Vec<(Option<&str>, Option<&str>)> = changes
            .iter()
            .map(|c| {
                (
                    c.old.as_ref().map(|e| e.name.as_str()),
                    c.new.as_ref().map(|e| e.name.as_str()),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (Some("blog"), None),
                (Some("shop-dev"), None),
                (None, Some("shop-new"))
            ]
        );
    }

    proptest! {
        /// Whatever namespaces exist and whatever the caller asks, a tenant's list, get and
        /// watch never show a namespace of another tenant.
        #[test]
        fn no_read_crosses_tenants(
            spaces in prop::collection::vec(("[a-d]{1,3}", prop::option::of("[ab]")), 0..20),
            limit in 0u64..4,
        ) {
            let mut index = Index::new(LABEL);
            for (i, (name, tenant)) in spaces.iter().enumerate() {
                index.upsert_namespace(ns(name, tenant.as_deref(), i as u64 + 1));
            }
            let mine = scope(&["a"]);
            let mut query = ListQuery { limit, ..ListQuery::default() };
            loop {
                let page = index.list(&mine, &query).unwrap();
                prop_assert!(page.items.iter().all(|e| e.tenant == "a"));
                match page.continue_token {
                    Some(token) => query.continue_token = Some(token),
                    None => break,
                }
            }
            for (name, _) in &spaces {
                if let Ok(entry) = index.get(&mine, name) {
                    prop_assert_eq!(&entry.tenant, "a");
                }
            }
            let from = ListQuery { resource_version: Some("0".into()), ..ListQuery::default() };
            let start = index.watch_start(&mine, &from).unwrap();
            prop_assert!(start.initial.iter().all(|e| e.entry.tenant == "a"));
        }
    }
}
