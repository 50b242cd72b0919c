//! What the webhook knows about namespaces, kept in memory so that no request ever waits on
//! the API server.
//!
//! A validating webhook sits on the API server's request path with a deadline of a few
//! seconds, and calling back into the API server from there would add a round-trip to every
//! write, fail every write whenever the API server is slow, and deadlock when it is the API
//! server that is waiting on us. So the labels that decide a verdict (the tenant label, the
//! Pod Security labels) are learnt from a watch ([`crate::watch`]) and read here under a
//! read lock. Each entry and its tenant's view are built once when it changes; per request
//! the engine only looks up the few Pod Security labels it needs.
//!
//! # Which namespaces are judged
//!
//! Tenant namespaces are found by label: a namespace is a tenant's when it carries the
//! platform's tenant label (`<labelPrefix>/tenant`, by default `tenantry.dev/tenant`). The
//! decision for a namespace name is, in order:
//!
//! 1. known, with the tenant label: **tenant**, judged at its own Pod Security labels;
//! 2. known, without the tenant label: **platform**, never judged;
//! 3. unknown and matching a reserved name (`kube-*`, `tenantry-*`, the Flux, Argo CD, DNS and
//!    gateway namespaces, the platform's `reservedNames`): **platform**, never judged;
//! 4. otherwise unknown: **tenant with platform defaults**, judged at the platform's default
//!    Pod Security level.
//!
//! Rule 4 is the fail-closed choice for the cases where the cache cannot know: a namespace
//! created an instant before the watch delivered it, or a webhook started without cluster
//! access. It is safe for the cluster because the ValidatingWebhookConfiguration's
//! `namespaceSelector` only sends requests from namespaces carrying the tenant label, so a
//! platform namespace never reaches rule 4 in a real installation; rule 3 keeps the control
//! plane's own namespaces unjudged even if that selector is misconfigured.
//!
//! # Pod Security labels
//!
//! The cache keeps a namespace's labels as they are; the engine reads the Pod Security ones
//! (`tenantry_policy::NamespaceLabels`, upstream's rules for unparsable values, the platform's
//! `policies.podSecurity.version` when no version is pinned), so the webhook cannot judge a
//! namespace differently from `tenantry check` or from the API server's own plugin. A tenant
//! namespace with no `enforce` label gets its tenant's level rather than upstream's
//! `privileged`: Tenantry always renders the label, so its absence means someone removed it,
//! and the tenant's policy still applies.
//!
//! An unknown namespace is given the labels `<tenant label>: ""` and
//! `pod-security.kubernetes.io/enforce: <platform default>`, so the engine judges it as a
//! tenant namespace of no known tenant.
//!
//! # Tenants
//!
//! A tenant's [`TenantInfo`] starts from the labels: its namespaces are the namespaces
//! carrying its name in the tenant label, its level is the `enforce` label of the namespace
//! named after it (the platform default when there is none), its ServiceAccount is named
//! after it. Its own `registries`, `placement` (node selector and tolerations), `classes`
//! and network peers (`allowFrom`) come from its `GuardrailParameters`
//! (`tenantry.dev/v1alpha1`, cluster-scoped), the object the compiled
//! ValidatingAdmissionPolicies read and `render` writes with the tenant
//! (`policies.vap.tenantParameters`) or `policy vap --tenants` prints: values the resolver
//! already folded the platform defaults into, so the webhook and the policies judge a tenant
//! by the same values, and learning them costs a watch, not a call on the request path. (The
//! parameters list the tenant's namespaces too, for the policies; the webhook keeps the
//! labels', which are what the namespaces are.) A tenant with no parameters (the kind not
//! installed, the toggle off, or its object not applied yet) is judged by the platform
//! defaults (`defaults.registries`, the platform's placement bounds, no peers), as `tenantry
//! check` without `--tenant` does, and so is a value its parameters predate (classes,
//! tolerations, peers). Its proxy kubeconfig Secret beyond `flux.proxy` is not in the
//! parameters, so it is the platform's too.
//!
//! Readiness waits for the first list of the parameters as well as of the namespaces, so a
//! restarted webhook never judges a tenant by the defaults for lack of time; when the kind is
//! not served or this webhook may not read it, it does not wait (and says so in its log).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use tenantry_api::tenant::{Classes, Placement};
use tenantry_core::{
    PlatformContext,
    names::reserved_match,
    render::guardrails::{GuardrailParams, NAME_PREFIX, TenantBinding},
};
use tenantry_policy::{Level, NamespaceInfo, NamespaceLabels, TenantInfo};

/// One namespace as the webhook sees it, parsed once when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceEntry {
    /// Name and labels, in the form the policy engine takes.
    pub info: NamespaceInfo,
    /// The value of the tenant label, when it has one.
    pub tenant: Option<String>,
    /// Whether the entry came from the cluster (false: made up from platform defaults for a
    /// namespace the cache does not know).
    pub known: bool,
}

/// Where a request's namespace stands.
#[derive(Debug, Clone)]
pub enum NamespaceScope {
    /// A tenant namespace: judge the request.
    Tenant {
        /// The namespace.
        namespace: Arc<NamespaceEntry>,
        /// Its tenant, when the tenant label names one.
        tenant: Option<Arc<TenantInfo>>,
    },
    /// A platform namespace: never judged.
    Platform {
        /// Which rule made it one, for logs.
        reason: &'static str,
    },
}

/// The platform settings the cache needs.
#[derive(Debug, Clone)]
struct Settings {
    tenant_label: String,
    default_level: Level,
    default_registries: Vec<String>,
    /// The platform's placement and class bounds, for what a tenant's parameters do not say
    /// (its node selector and classes replace the platform's when it has parameters; its
    /// narrower tolerations are enforced by `tenantry check --tenant`).
    default_placement: Placement,
    default_classes: Classes,
    reserved: Vec<String>,
    /// The operator-kept Flux proxy kubeconfig (`flux.proxy`), the one `kubeConfig` every
    /// tenant's Flux objects may name, as in `tenantry check`.
    flux_proxy_secret: Option<String>,
}

/// The cluster-scoped kinds the webhook watches besides namespaces: what a tenant is judged
/// by (its `GuardrailParameters`) and, next to the compiled policies (`--with-vap`), whether
/// the API server already judges it (Tenantry's ValidatingAdmissionPolicies and their
/// bindings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    /// `GuardrailParameters` (tenantry.dev).
    Params,
    /// Tenantry's ValidatingAdmissionPolicies.
    Policies,
    /// Tenantry's ValidatingAdmissionPolicyBindings.
    Bindings,
}

impl Watched {
    /// Every watched kind.
    pub const ALL: [Watched; 3] = [Watched::Params, Watched::Policies, Watched::Bindings];

    const fn index(self) -> usize {
        self as usize
    }
}

/// One watched object, parsed once when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Params(Box<GuardrailParams>),
    Policy,
    Binding(TenantBinding),
}

impl Item {
    /// The tenant whose view the object changes; `None`: every tenant's (a policy).
    fn tenant(&self) -> Option<&str> {
        match self {
            Item::Params(p) => Some(&p.tenant),
            Item::Binding(b) => Some(&b.tenant),
            Item::Policy => None,
        }
    }
}

/// The objects of one watched kind by name (ordered: when two parameter objects name one
/// tenant, the first name wins, whatever the order they arrived in), and the re-list in
/// progress.
#[derive(Debug, Default)]
struct Store {
    items: BTreeMap<String, Item>,
    /// Listed since the last `Init` of the kind's watch, swapped in whole at `InitDone`.
    relisting: Option<BTreeMap<String, Item>>,
}

#[derive(Debug, Default)]
struct State {
    namespaces: HashMap<String, Arc<NamespaceEntry>>,
    tenants: HashMap<String, Arc<TenantInfo>>,
    /// Namespaces listed since the last `Init`, swapped in whole at `InitDone` so that a
    /// re-list removes namespaces deleted while the watch was down.
    relisting: Option<HashMap<String, Arc<NamespaceEntry>>>,
    /// The watched cluster-scoped objects, by [`Watched::index`].
    watched: [Store; 3],
}

impl State {
    fn store(&self, kind: Watched) -> &Store {
        &self.watched[kind.index()]
    }

    /// The tenant's parameters: the first object (by name) naming it.
    fn params_of(&self, tenant: &str) -> Option<(&str, &GuardrailParams)> {
        self.store(Watched::Params)
            .items
            .iter()
            .find_map(|(name, item)| match item {
                Item::Params(p) if p.tenant == tenant => Some((name.as_str(), &**p)),
                _ => None,
            })
    }

    /// The per-tenant policies the API server enforces on `tenant` (names less the prefix):
    /// each a policy that exists, bound by a binding that refuses, selects exactly the
    /// tenant's namespaces and reads the tenant's own parameters.
    fn vap_bound(&self, tenant: &str) -> Vec<String> {
        let Some((params, _)) = self.params_of(tenant) else {
            return Vec::new();
        };
        let policies = &self.store(Watched::Policies).items;
        let mut bound: Vec<String> = self
            .store(Watched::Bindings)
            .items
            .values()
            .filter_map(|item| match item {
                Item::Binding(b)
                    if b.tenant == tenant
                        && b.denies
                        && b.params == params
                        && policies.contains_key(&b.policy) =>
                {
                    b.policy.strip_prefix(NAME_PREFIX).map(str::to_owned)
                }
                _ => None,
            })
            .collect();
        bound.sort_unstable();
        bound.dedup();
        bound
    }
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    state: RwLock<State>,
    synced: AtomicBool,
    /// A watch of the kind runs ([`NamespaceCache::expect`]): readiness waits for it.
    expected: [AtomicBool; 3],
    /// Its first list is in, or it cannot come (kind not served, no right to read it).
    kind_synced: [AtomicBool; 3],
    cluster: bool,
}

/// The in-memory namespace cache. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct NamespaceCache {
    inner: Arc<Inner>,
}

impl NamespaceCache {
    fn with_mode(ctx: &PlatformContext, cluster: bool) -> Self {
        let platform = &ctx.platform;
        let builtin = tenantry_api::platform::builtin_tenant_defaults();
        let default_level = platform
            .defaults
            .pod_security
            .or(builtin.pod_security)
            .unwrap_or_default();
        let default_registries = platform
            .defaults
            .registries
            .clone()
            .or(builtin.registries)
            .unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                settings: Settings {
                    tenant_label: ctx.tenant_label().to_owned(),
                    default_level: default_level.into(),
                    default_registries,
                    default_placement: platform.defaults.placement.clone().unwrap_or_default(),
                    default_classes: platform.defaults.classes.clone().unwrap_or_default(),
                    flux_proxy_secret: platform
                        .flux
                        .proxy
                        .as_ref()
                        .map(|_| tenantry_api::platform::FLUX_PROXY_KUBECONFIG_SECRET.to_owned()),
                    reserved: ctx.reserved().to_vec(),
                },
                state: RwLock::new(State::default()),
                synced: AtomicBool::new(false),
                expected: Default::default(),
                kind_synced: Default::default(),
                cluster,
            }),
        }
    }

    /// An empty cache to be filled by a namespace watch; not ready until the watch's first
    /// full list has been applied ([`NamespaceCache::apply`] with `InitDone`, or
    /// [`NamespaceCache::mark_synced`]).
    pub fn new(ctx: &PlatformContext) -> Self {
        Self::with_mode(ctx, true)
    }

    /// A cache for a webhook with no cluster access: ready at once, knows no namespace, so
    /// every request is judged by the rules for unknown namespaces (platform defaults).
    pub fn without_cluster(ctx: &PlatformContext) -> Self {
        let cache = Self::with_mode(ctx, false);
        cache.mark_synced();
        cache
    }

    /// Whether a watch fills this cache.
    pub fn has_cluster(&self) -> bool {
        self.inner.cluster
    }

    /// Whether the first full list has been applied (of the namespaces, and of each other
    /// kind watched): `/readyz` is true only then.
    pub fn is_synced(&self) -> bool {
        self.inner.synced.load(Ordering::Acquire)
            && Watched::ALL.iter().all(|kind| {
                !self.inner.expected[kind.index()].load(Ordering::Acquire)
                    || self.inner.kind_synced[kind.index()].load(Ordering::Acquire)
            })
    }

    /// A watch of `kind` feeds this cache: readiness waits for its first list
    /// ([`NamespaceCache::finish_watched_relist`]) or for [`NamespaceCache::unavailable`].
    pub fn expect(&self, kind: Watched) {
        self.inner.expected[kind.index()].store(true, Ordering::Release);
    }

    /// `kind` cannot be listed (not served, or no right to read it): without parameters
    /// tenants are judged by the platform defaults, without policies or bindings by the
    /// webhook alone; readiness does not wait for it.
    pub fn unavailable(&self, kind: Watched) {
        self.inner.kind_synced[kind.index()].store(true, Ordering::Release);
    }

    /// Declare the cache complete.
    pub fn mark_synced(&self) {
        self.inner.synced.store(true, Ordering::Release);
    }

    /// The tenant label key.
    pub fn tenant_label(&self) -> &str {
        &self.inner.settings.tenant_label
    }

    /// The platform's default Pod Security level.
    pub fn default_level(&self) -> Level {
        self.inner.settings.default_level
    }

    /// Number of namespaces known.
    pub fn len(&self) -> usize {
        self.read().namespaces.len()
    }

    /// Whether no namespace is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters (each write replaces whole entries), so a poisoned lock is still usable.
        self.inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Parse a namespace's labels into an entry.
    pub fn entry(&self, name: &str, labels: BTreeMap<String, String>) -> NamespaceEntry {
        let settings = &self.inner.settings;
        let tenant = labels
            .get(&settings.tenant_label)
            .filter(|t| !t.is_empty())
            .cloned();
        NamespaceEntry {
            info: NamespaceInfo {
                name: name.to_owned(),
                labels,
            },
            tenant,
            known: true,
        }
    }

    /// Record a namespace (added or changed).
    pub fn upsert(&self, name: &str, labels: BTreeMap<String, String>) {
        let entry = Arc::new(self.entry(name, labels));
        let mut state = self.write();
        if let Some(relisting) = state.relisting.as_mut() {
            relisting.insert(name.to_owned(), entry.clone());
        }
        let old = state.namespaces.insert(name.to_owned(), entry.clone());
        let mut touched = BTreeSet::new();
        touched.extend(old.and_then(|o| o.tenant.clone()));
        touched.extend(entry.tenant.clone());
        self.reindex(&mut state, &touched);
    }

    /// Forget a namespace (deleted).
    pub fn remove(&self, name: &str) {
        let mut state = self.write();
        if let Some(relisting) = state.relisting.as_mut() {
            relisting.remove(name);
        }
        if let Some(old) = state.namespaces.remove(name) {
            let touched: BTreeSet<String> = old.tenant.iter().cloned().collect();
            self.reindex(&mut state, &touched);
        }
    }

    /// A re-list starts: namespaces not listed again before [`NamespaceCache::finish_relist`]
    /// are dropped then. Lookups keep answering from the previous state meanwhile.
    pub fn start_relist(&self) {
        self.write().relisting = Some(HashMap::new());
    }

    /// Record a namespace seen during a re-list.
    pub fn relist_upsert(&self, name: &str, labels: BTreeMap<String, String>) {
        let entry = Arc::new(self.entry(name, labels));
        let mut state = self.write();
        state
            .relisting
            .get_or_insert_with(HashMap::new)
            .insert(name.to_owned(), entry);
    }

    /// The re-list is complete: replace the cache with what it listed and become ready.
    pub fn finish_relist(&self) {
        let mut state = self.write();
        if let Some(listed) = state.relisting.take() {
            state.namespaces = listed;
            let all: BTreeSet<String> = state
                .namespaces
                .values()
                .filter_map(|e| e.tenant.clone())
                .chain(state.tenants.keys().cloned())
                .collect();
            self.reindex(&mut state, &all);
        }
        drop(state);
        self.mark_synced();
    }

    /// Read a watched object: `None` when it judges nobody (parameters without a tenant, a
    /// binding that does not select exactly one tenant's namespaces).
    fn parse(&self, kind: Watched, object: &serde_json::Value) -> Option<Item> {
        match kind {
            Watched::Params => GuardrailParams::from_object(object).map(|p| Item::Params(p.into())),
            Watched::Policies => Some(Item::Policy),
            Watched::Bindings => {
                TenantBinding::from_object(object, &self.inner.settings.tenant_label)
                    .map(Item::Binding)
            }
        }
    }

    /// Record a watched object (added or changed); one that judges nobody is forgotten.
    /// Returns whether it was usable.
    pub fn upsert_watched(&self, kind: Watched, name: &str, object: &serde_json::Value) -> bool {
        let Some(item) = self.parse(kind, object) else {
            self.remove_watched(kind, name);
            return false;
        };
        let mut state = self.write();
        let store = &mut state.watched[kind.index()];
        if let Some(relisting) = store.relisting.as_mut() {
            relisting.insert(name.to_owned(), item.clone());
        }
        let old = store.items.insert(name.to_owned(), item.clone());
        let touched = Self::touched(&state, old.iter().chain([&item]));
        self.reindex(&mut state, &touched);
        true
    }

    /// Forget the watched object `name` (deleted).
    pub fn remove_watched(&self, kind: Watched, name: &str) {
        let mut state = self.write();
        let store = &mut state.watched[kind.index()];
        if let Some(relisting) = store.relisting.as_mut() {
            relisting.remove(name);
        }
        if let Some(old) = store.items.remove(name) {
            let touched = Self::touched(&state, [&old]);
            self.reindex(&mut state, &touched);
        }
    }

    /// A re-list of `kind` starts (see [`NamespaceCache::start_relist`]).
    pub fn start_watched_relist(&self, kind: Watched) {
        self.write().watched[kind.index()].relisting = Some(BTreeMap::new());
    }

    /// Record an object seen during a re-list of `kind`.
    pub fn relist_watched(&self, kind: Watched, name: &str, object: &serde_json::Value) {
        if let Some(item) = self.parse(kind, object) {
            self.write().watched[kind.index()]
                .relisting
                .get_or_insert_with(BTreeMap::new)
                .insert(name.to_owned(), item);
        }
    }

    /// The re-list of `kind` is complete: replace its objects with what it listed.
    pub fn finish_watched_relist(&self, kind: Watched) {
        let mut state = self.write();
        let store = &mut state.watched[kind.index()];
        if let Some(listed) = store.relisting.take() {
            let old = std::mem::replace(&mut store.items, listed);
            let touched =
                Self::touched(&state, old.values().chain(state.store(kind).items.values()));
            self.reindex(&mut state, &touched);
        }
        drop(state);
        self.inner.kind_synced[kind.index()].store(true, Ordering::Release);
    }

    /// The tenants whose views `items` change: theirs, or every known tenant's for a policy.
    fn touched<'a>(state: &State, items: impl IntoIterator<Item = &'a Item>) -> BTreeSet<String> {
        let mut touched = BTreeSet::new();
        for item in items {
            match item.tenant() {
                Some(tenant) => {
                    touched.insert(tenant.to_owned());
                }
                None => {
                    touched.extend(state.tenants.keys().cloned());
                    touched.extend(state.namespaces.values().filter_map(|e| e.tenant.clone()));
                }
            }
        }
        touched
    }

    /// Number of objects of `kind` known.
    pub fn watched_len(&self, kind: Watched) -> usize {
        self.read().store(kind).items.len()
    }

    /// Number of parameter objects known.
    pub fn params_len(&self) -> usize {
        self.watched_len(Watched::Params)
    }

    /// Rebuild the views of `tenants` in one pass over the namespaces.
    fn reindex(&self, state: &mut State, tenants: &BTreeSet<String>) {
        if tenants.is_empty() {
            return;
        }
        let settings = &self.inner.settings;
        let mut groups: HashMap<&str, Vec<&NamespaceEntry>> =
            tenants.iter().map(|t| (t.as_str(), Vec::new())).collect();
        for entry in state.namespaces.values() {
            if let Some(group) = entry.tenant.as_deref().and_then(|t| groups.get_mut(t)) {
                group.push(entry);
            }
        }
        let mut views = Vec::with_capacity(groups.len());
        for (tenant, mut namespaces) in groups {
            if namespaces.is_empty() {
                views.push((tenant.to_owned(), None));
                continue;
            }
            namespaces.sort_by(|a, b| {
                (a.info.name != tenant, &a.info.name).cmp(&(b.info.name != tenant, &b.info.name))
            });
            let pod_security = namespaces
                .iter()
                .find(|e| e.info.name == tenant)
                .and_then(|e| NamespaceLabels::read(&e.info.labels).enforce.level)
                .unwrap_or(settings.default_level);
            let own = state.params_of(tenant).map(|(_, p)| p);
            let mut placement = settings.default_placement.clone();
            if let Some(own) = own {
                placement.node_selector =
                    (!own.node_selector.is_empty()).then(|| own.node_selector.clone());
                // Parameters written before tolerations were in them keep the platform's.
                if let Some(tolerations) = &own.tolerations {
                    placement.tolerations = tolerations.clone();
                }
            }
            let view = TenantInfo {
                name: tenant.to_owned(),
                namespaces: namespaces.iter().map(|e| e.info.name.clone()).collect(),
                // Parameters written before the Flux identity was in them: the platform's.
                service_account: own
                    .and_then(|p| p.flux.as_ref())
                    .map_or_else(|| tenant.to_owned(), |f| f.service_account.clone()),
                registries: own.map_or_else(
                    || settings.default_registries.clone(),
                    |p| p.registries.clone(),
                ),
                pod_security,
                proxy_kubeconfig_secret: own.and_then(|p| p.flux.as_ref()).map_or_else(
                    || settings.flux_proxy_secret.clone(),
                    |f| f.proxy_kubeconfig_secret.clone(),
                ),
                cluster_role: None,
                // Parameters written before the peers were in them: none, as before.
                network_peers: own
                    .and_then(|p| p.network_peers.clone())
                    .unwrap_or_default(),
                placement,
                classes: own
                    .and_then(|p| p.classes.clone())
                    .unwrap_or_else(|| settings.default_classes.clone()),
                vap_bound: state.vap_bound(tenant),
            };
            views.push((tenant.to_owned(), Some(Arc::new(view))));
        }
        for (tenant, view) in views {
            match view {
                Some(view) => state.tenants.insert(tenant, view),
                None => state.tenants.remove(&tenant),
            };
        }
    }

    /// The namespace, when known.
    pub fn get(&self, name: &str) -> Option<Arc<NamespaceEntry>> {
        self.read().namespaces.get(name).cloned()
    }

    /// The tenant, when some known namespace carries its name in the tenant label.
    pub fn tenant(&self, name: &str) -> Option<Arc<TenantInfo>> {
        self.read().tenants.get(name).cloned()
    }

    /// Decide whether requests in namespace `name` are judged, following the rules in the
    /// module documentation.
    pub fn scope(&self, name: &str) -> NamespaceScope {
        let state = self.read();
        match state.namespaces.get(name) {
            Some(entry) => match &entry.tenant {
                Some(tenant) => NamespaceScope::Tenant {
                    tenant: state.tenants.get(tenant).cloned(),
                    namespace: entry.clone(),
                },
                None => NamespaceScope::Platform {
                    reason: "namespace has no tenant label",
                },
            },
            None => {
                drop(state);
                if reserved_match(
                    name,
                    self.inner.settings.reserved.iter().map(String::as_str),
                )
                .is_some()
                {
                    NamespaceScope::Platform {
                        reason: "unknown namespace with a reserved name",
                    }
                } else {
                    NamespaceScope::Tenant {
                        namespace: Arc::new(self.unknown(name)),
                        tenant: None,
                    }
                }
            }
        }
    }

    /// The entry used for a namespace the cache does not know: an empty tenant label and the
    /// platform's default Pod Security level (see the module documentation).
    pub fn unknown(&self, name: &str) -> NamespaceEntry {
        let settings = &self.inner.settings;
        let mut labels = NamespaceLabels::enforcing(settings.default_level);
        labels.insert(settings.tenant_label.clone(), String::new());
        let mut entry = self.entry(name, labels);
        entry.known = false;
        entry
    }
}

#[cfg(test)]
mod tests {
    use tenantry_api::Platform;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn cache() -> NamespaceCache {
        NamespaceCache::new(&PlatformContext::new(Platform::default()).unwrap())
    }

    #[test]
    fn a_tenants_level_is_its_namespaces_enforce_label_read_like_upstream() {
        let mut platform = Platform::default();
        platform.defaults.pod_security = Some(tenantry_api::tenant::PodSecurityLevel::Baseline);
        let ctx = PlatformContext::new(platform).unwrap();
        let cache = NamespaceCache::new(&ctx);
        cache.upsert("plain", labels(&[("tenantry.dev/tenant", "plain")]));
        cache.upsert(
            "typo",
            labels(&[
                ("tenantry.dev/tenant", "typo"),
                ("pod-security.kubernetes.io/enforce", "Baseline"),
            ]),
        );
        // No label: the platform default; an unparsable one fails closed.
        assert_eq!(cache.tenant("plain").unwrap().pod_security, Level::Baseline);
        assert_eq!(
            cache.tenant("typo").unwrap().pod_security,
            Level::Restricted
        );
        let unknown = cache.unknown("new");
        assert_eq!(
            NamespaceLabels::read(&unknown.info.labels).enforce.level,
            Some(Level::Baseline)
        );
    }

    #[test]
    fn with_flux_proxy_every_tenant_may_name_the_operator_kept_kubeconfig() {
        let name = tenantry_api::platform::FLUX_PROXY_KUBECONFIG_SECRET;
        let cache = cache();
        cache.upsert("shop", labels(&[("tenantry.dev/tenant", "shop")]));
        assert_eq!(cache.tenant("shop").unwrap().proxy_kubeconfig_secret, None);
        let mut platform = Platform::default();
        platform.flux.proxy = Some(tenantry_api::platform::FluxProxyConfig {
            url: "https://tenantry-proxy.tenantry-system.svc:8443".into(),
            ca_bundle: None,
            token_expiration: "1h".parse().unwrap(),
        });
        let cache = NamespaceCache::new(&PlatformContext::new(platform).unwrap());
        cache.upsert("shop", labels(&[("tenantry.dev/tenant", "shop")]));
        assert_eq!(
            cache
                .tenant("shop")
                .unwrap()
                .proxy_kubeconfig_secret
                .as_deref(),
            Some(name)
        );
    }

    #[test]
    fn scope_follows_the_documented_rules() {
        let cache = cache();
        cache.upsert("shop", labels(&[("tenantry.dev/tenant", "shop")]));
        cache.upsert("shop-dev", labels(&[("tenantry.dev/tenant", "shop")]));
        cache.upsert("monitoring", labels(&[("team", "platform")]));
        match cache.scope("shop-dev") {
            NamespaceScope::Tenant { namespace, tenant } => {
                assert!(namespace.known);
                let tenant = tenant.unwrap();
                assert_eq!(tenant.namespaces, ["shop", "shop-dev"]);
                assert_eq!(tenant.service_account, "shop");
                assert_eq!(tenant.pod_security, Level::Restricted);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            cache.scope("monitoring"),
            NamespaceScope::Platform { .. }
        ));
        for reserved in ["kube-system", "flux-system", "tenantry-system", "default"] {
            assert!(
                matches!(cache.scope(reserved), NamespaceScope::Platform { .. }),
                "{reserved}"
            );
        }
        match cache.scope("brand-new") {
            NamespaceScope::Tenant { namespace, tenant } => {
                assert!(!namespace.known);
                assert_eq!(
                    NamespaceLabels::read(&namespace.info.labels).enforce.level,
                    Some(Level::Restricted)
                );
                assert!(tenant.is_none());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn relabel_and_delete_update_the_tenant_index() {
        let cache = cache();
        cache.upsert("a", labels(&[("tenantry.dev/tenant", "t1")]));
        cache.upsert("b", labels(&[("tenantry.dev/tenant", "t1")]));
        cache.upsert("b", labels(&[("tenantry.dev/tenant", "t2")]));
        assert_eq!(cache.tenant("t1").unwrap().namespaces, ["a"]);
        assert_eq!(cache.tenant("t2").unwrap().namespaces, ["b"]);
        cache.remove("b");
        assert!(cache.tenant("t2").is_none());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn relist_drops_namespaces_deleted_meanwhile_and_marks_ready() {
        let cache = cache();
        assert!(!cache.is_synced());
        cache.upsert("gone", labels(&[("tenantry.dev/tenant", "old")]));
        cache.start_relist();
        cache.relist_upsert("kept", labels(&[("tenantry.dev/tenant", "new")]));
        // Still answering from the old state until the list is complete.
        assert!(cache.get("gone").is_some());
        cache.finish_relist();
        assert!(cache.is_synced());
        assert!(cache.get("gone").is_none());
        assert!(cache.tenant("old").is_none());
        assert_eq!(cache.tenant("new").unwrap().namespaces, ["kept"]);
    }

    #[test]
    fn without_cluster_is_ready_and_judges_with_defaults() {
        let ctx = PlatformContext::new(Platform::default()).unwrap();
        let cache = NamespaceCache::without_cluster(&ctx);
        assert!(cache.is_synced());
        assert!(!cache.has_cluster());
        assert!(matches!(cache.scope("shop"), NamespaceScope::Tenant { .. }));
    }
}
