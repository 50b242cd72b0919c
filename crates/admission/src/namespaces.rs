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
//! after it. Its own `registries`, `placement` (node selector and tolerations) and `classes`
//! come from its `GuardrailParameters` (`tenantry.dev/v1alpha1`, cluster-scoped), the object
//! the compiled ValidatingAdmissionPolicies read and `render` writes with the tenant
//! (`policies.vap.tenantParameters`) or `policy vap --tenants` prints: values the resolver
//! already folded the platform defaults into, so the webhook and the policies judge a tenant
//! by the same values, and learning them costs a watch, not a call on the request path. A
//! tenant with no parameters (the kind not installed, the toggle off, or its object not
//! applied yet) is judged by the platform defaults (`defaults.registries`, the platform's
//! placement bounds), as `tenantry check` without `--tenant` does, and so is a value its
//! parameters predate (classes, tolerations). Its other own values (proxy kubeconfig Secret
//! beyond `flux.proxy`, network peers) are not in the parameters, so they are the platform's
//! too.
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
use tenantry_core::{PlatformContext, names::reserved_match, render::guardrails::GuardrailParams};
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

#[derive(Debug, Default)]
struct State {
    namespaces: HashMap<String, Arc<NamespaceEntry>>,
    tenants: HashMap<String, Arc<TenantInfo>>,
    /// Namespaces listed since the last `Init`, swapped in whole at `InitDone` so that a
    /// re-list removes namespaces deleted while the watch was down.
    relisting: Option<HashMap<String, Arc<NamespaceEntry>>>,
    /// `GuardrailParameters` by object name (ordered: when two name one tenant, the first
    /// name wins, whatever the order they arrived in).
    params: BTreeMap<String, GuardrailParams>,
    /// Parameters listed since the last `Init` of their watch.
    relisting_params: Option<BTreeMap<String, GuardrailParams>>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    state: RwLock<State>,
    synced: AtomicBool,
    /// A parameters watch runs ([`NamespaceCache::expect_params`]): readiness waits for it.
    params_expected: AtomicBool,
    /// Its first list is in, or it cannot come (kind not served, no right to read it).
    params_synced: AtomicBool,
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
                params_expected: AtomicBool::new(false),
                params_synced: AtomicBool::new(false),
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

    /// Whether the first full list has been applied (of the namespaces, and of the
    /// parameters when they are watched): `/readyz` is true only then.
    pub fn is_synced(&self) -> bool {
        self.inner.synced.load(Ordering::Acquire)
            && (!self.inner.params_expected.load(Ordering::Acquire)
                || self.inner.params_synced.load(Ordering::Acquire))
    }

    /// A watch of the tenants' `GuardrailParameters` feeds this cache: readiness waits for
    /// its first list ([`NamespaceCache::finish_params_relist`]) or for
    /// [`NamespaceCache::params_unavailable`].
    pub fn expect_params(&self) {
        self.inner.params_expected.store(true, Ordering::Release);
    }

    /// The parameters cannot be listed (kind not served, or no right to read it): tenants
    /// are judged by the platform defaults, and readiness does not wait for them.
    pub fn params_unavailable(&self) {
        self.inner.params_synced.store(true, Ordering::Release);
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

    /// Record a tenant's parameters (added or changed), read from the object named `name`.
    pub fn upsert_params(&self, name: &str, params: GuardrailParams) {
        let mut state = self.write();
        if let Some(relisting) = state.relisting_params.as_mut() {
            relisting.insert(name.to_owned(), params.clone());
        }
        let mut touched = BTreeSet::from([params.tenant.clone()]);
        touched.extend(
            state
                .params
                .insert(name.to_owned(), params)
                .map(|o| o.tenant),
        );
        self.reindex(&mut state, &touched);
    }

    /// Forget the parameters object `name` (deleted).
    pub fn remove_params(&self, name: &str) {
        let mut state = self.write();
        if let Some(relisting) = state.relisting_params.as_mut() {
            relisting.remove(name);
        }
        if let Some(old) = state.params.remove(name) {
            self.reindex(&mut state, &BTreeSet::from([old.tenant]));
        }
    }

    /// A re-list of the parameters starts (see [`NamespaceCache::start_relist`]).
    pub fn start_params_relist(&self) {
        self.write().relisting_params = Some(BTreeMap::new());
    }

    /// Record parameters seen during a re-list.
    pub fn relist_params_upsert(&self, name: &str, params: GuardrailParams) {
        self.write()
            .relisting_params
            .get_or_insert_with(BTreeMap::new)
            .insert(name.to_owned(), params);
    }

    /// The re-list of the parameters is complete: replace them with what it listed.
    pub fn finish_params_relist(&self) {
        let mut state = self.write();
        if let Some(listed) = state.relisting_params.take() {
            let old = std::mem::replace(&mut state.params, listed);
            let touched: BTreeSet<String> = old
                .into_values()
                .chain(state.params.values().cloned())
                .map(|p| p.tenant)
                .collect();
            self.reindex(&mut state, &touched);
        }
        drop(state);
        self.inner.params_synced.store(true, Ordering::Release);
    }

    /// Number of parameter objects known.
    pub fn params_len(&self) -> usize {
        self.read().params.len()
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
            let own = state.params.values().find(|p| p.tenant == tenant);
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
                service_account: tenant.to_owned(),
                registries: own.map_or_else(
                    || settings.default_registries.clone(),
                    |p| p.registries.clone(),
                ),
                pod_security,
                proxy_kubeconfig_secret: settings.flux_proxy_secret.clone(),
                cluster_role: None,
                network_peers: Vec::new(),
                placement,
                classes: own
                    .and_then(|p| p.classes.clone())
                    .unwrap_or_else(|| settings.default_classes.clone()),
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
