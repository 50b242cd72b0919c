//! `observe → compute → apply → prune → status`, written once against [`ClusterApi`].
//!
//! Every command is the same loop. *Observe* lists the live objects labelled for the tenants
//! (one request per resource type, whatever the number of tenants). *Compute* is
//! [`tenantry_core::plan`], pure. *Apply* sends only what the plan says differs, layer by
//! layer in the rendered order, waiting for new namespaces to be usable, and stops at the
//! first failure so a tenant is never left with, say, workloads delivered but no network
//! policy. *Prune* deletes in reverse layer order. *Status* is the report the CLI prints or
//! serialises.
//!
//! Resuming needs no state file: a re-run observes again, and what was applied before the
//! failure now plans as unchanged.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use serde::Serialize;
use serde_json::Value;
use tenantry_api::{MANAGED_BY, MANAGED_BY_LABEL};
use tenantry_core::{
    Layer, Rendered,
    plan::{self, Change, ObjectKey, ObjectPlan, PruneTarget, TenantPlan},
    render::platform::PLATFORM_KINDS,
};

use crate::{
    api::{ClusterApi, Deletion, TokenStatus},
    catalog::{Catalog, MissingKind, ResourceType, serialize_layer},
    credential,
    error::ClusterError,
};

/// Progress of a long step, shown by the CLI as a spinner or bar on a terminal.
pub trait Progress: Sync {
    /// A step starts; `total` when the number of items is known.
    fn begin(&self, step: &str, total: Option<u64>);
    /// One item of the current step, named `item`, is done.
    fn advance(&self, item: &str);
    /// The current step is waiting on the cluster for `what`; no item is done.
    fn waiting(&self, what: &str);
    /// The current step is over.
    fn end(&self);
}

/// No progress output (JSON output, tests, not a terminal).
pub struct Silent;

impl Progress for Silent {
    fn begin(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: &str) {}
    fn waiting(&self, _: &str) {}
    fn end(&self) {}
}

/// How long to wait for the cluster, and how often to look.
#[derive(Clone, Copy, Debug)]
pub struct Waits {
    /// Give up after this long.
    pub timeout: Duration,
    /// Time between two looks.
    pub interval: Duration,
}

impl Default for Waits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            interval: Duration::from_millis(500),
        }
    }
}

fn find_core<'a>(catalog: &'a Catalog, kind: &str) -> Result<&'a ResourceType, ClusterError> {
    catalog.find("v1", kind).ok_or_else(|| ClusterError::Api {
        doing: "discovering the cluster's API".to_owned(),
        code: 0,
        reason: "NotServed".to_owned(),
        message: format!("the core API does not serve {kind}; is this a Kubernetes API server?"),
    })
}

/// The resource types whose objects planning needs: every rendered kind the cluster
/// serves, plus, when pruning, every type that can be listed and deleted.
pub fn observed_types<'a>(
    catalog: &'a Catalog,
    rendered: &[Rendered],
    prune: bool,
) -> Vec<&'a ResourceType> {
    let mut seen = BTreeSet::new();
    let mut types = Vec::new();
    let desired = rendered
        .iter()
        .flat_map(|r| &r.objects)
        .filter_map(|o| catalog.find(o.api_version, o.kind));
    let scanned = if prune {
        catalog.scannable()
    } else {
        Vec::new()
    };
    for t in desired.chain(scanned) {
        if seen.insert((t.group.clone(), t.version.clone(), t.plural.clone())) {
            types.push(t);
        }
    }
    types
}

/// Observe: list the live objects labelled for these tenants. One tenant is selected by
/// name; many by the presence of the tenant label, so a thousand tenants cost the same
/// number of requests as one. Credential handles (see [`credential`]) carry the tenants'
/// inventory labels but are no part of any declaration: they are left out, so planning
/// never takes one for an object to prune (which would revoke a kubeconfig).
pub async fn observe<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    rendered: &[Rendered],
    tenant_label: &str,
    prune: bool,
    progress: &dyn Progress,
) -> Result<Vec<Value>, ClusterError> {
    let types = observed_types(catalog, rendered, prune);
    observe_types(api, &types, rendered, tenant_label, progress).await
}

/// The kinds (group, kind) a tenant's rendering can contain, whatever its spec. The
/// operator's tests render every delivery, network and secrets variant and check each
/// object's kind is here, and that the operator's ClusterRole may write it.
pub const TENANT_KINDS: [(&str, &str); 17] = [
    ("", "Namespace"),
    ("", "ResourceQuota"),
    ("", "LimitRange"),
    ("tenantry.dev", "GuardrailParameters"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    ("", "ServiceAccount"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("cilium.io", "CiliumNetworkPolicy"),
    ("external-secrets.io", "SecretStore"),
    ("external-secrets.io", "ExternalSecret"),
    ("source.toolkit.fluxcd.io", "OCIRepository"),
    ("source.toolkit.fluxcd.io", "GitRepository"),
    ("kustomize.toolkit.fluxcd.io", "Kustomization"),
    ("argoproj.io", "AppProject"),
    ("argoproj.io", "Application"),
];

/// Every served type of a kind a tenant renders ([`TENANT_KINDS`]), one version each (the
/// preferred one), that can be listed, watched and deleted. This is where objects of a
/// tenant can be that it no longer declares, short of scanning every type: the operator
/// prunes within it and watches it for drift, so its RBAC never needs to list every type of
/// the cluster.
pub fn rendered_kinds(catalog: &Catalog) -> Vec<&ResourceType> {
    let mut seen = BTreeSet::new();
    catalog
        .types()
        .iter()
        .filter(|t| TENANT_KINDS.contains(&(t.group.as_str(), t.kind.as_str())))
        .filter(|t| t.supports("list") && t.supports("watch") && t.supports("delete"))
        .filter(|t| seen.insert((t.group.clone(), t.kind.clone())))
        .collect()
}

/// How far planning looks for objects a tenant no longer declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prune {
    /// Nothing is pruned; only the rendered kinds are listed.
    Off,
    /// Objects of the kinds Tenantry renders ([`rendered_kinds`]) are pruned.
    RenderedKinds,
    /// Objects of every listable and deletable type are pruned (`apply --prune`).
    AllKinds,
}

/// Observe through exactly `types` (see [`observe`]).
async fn observe_types<A: ClusterApi>(
    api: &A,
    types: &[&ResourceType],
    rendered: &[Rendered],
    tenant_label: &str,
    progress: &dyn Progress,
) -> Result<Vec<Value>, ClusterError> {
    let selector = match rendered {
        [one] => format!("{tenant_label}={}", one.tenant),
        _ => tenant_label.to_owned(),
    };
    progress.begin("reading live objects", Some(types.len() as u64));
    let mut live = Vec::new();
    for t in types.iter().copied() {
        let items = api.list(t, &selector).await?;
        live.extend(
            items
                .into_iter()
                .filter(|o| !credential::is_credential(o, tenant_label)),
        );
        progress.advance(&t.qualified_name());
    }
    progress.end();
    Ok(live)
}

/// Compute, first step: give every tenant-wide quota (`quota.scope: tenant`) its per-namespace
/// shares from the live quotas' usage (`tenantry_core::quota`), so the API server's quota
/// admission holds the tenant's limits over the sum of its namespaces.
pub fn rebalance_quotas(rendered: &mut [Rendered], live: &[Value], tenant_label: &str) {
    let label_prefix = tenant_label.strip_suffix("/tenant").unwrap_or(tenant_label);
    tenantry_core::quota::rebalance_rendered(rendered, live, label_prefix);
}

/// Compute: plan every tenant against what was observed.
pub fn plan_all(
    rendered: &[Rendered],
    live: &[Value],
    tenant_label: &str,
    prune: bool,
) -> Vec<TenantPlan> {
    plan::plan_tenants(rendered, live, tenant_label, prune)
}

/// Converge the platform-wide components (`tenantry_core::render::platform`) through the same
/// plan and apply as a tenant's, each keyed by its component label instead of the tenant
/// label. Observing them is one LIST per kind a component can render
/// (`render::platform::PLATFORM_KINDS`: ClusterRoles, ClusterExternalSecrets), selected by
/// the managed-by label and the presence of the component label, whatever the number of
/// components or tenants; a kind the cluster does not serve holds nothing to prune. So a
/// component that renders nothing now (`pullSecret.fanOut` turned off) still has its live
/// objects planned, and pruned with `prune`, and pruning needs no scan of other types.
///
/// Components are applied in order, stopping at the first that fails; the result holds one
/// entry per component applied, leaving out those with nothing rendered and nothing to
/// prune. Run before any tenant: the tenants' delivery relies on them.
pub async fn apply_platform<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    components: &[Rendered],
    component_label: &str,
    prune: bool,
    options: &ApplyOptions,
    progress: &dyn Progress,
) -> Result<Vec<(TenantPlan, TenantApply)>, ClusterError> {
    let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY},{component_label}");
    let mut live = Vec::new();
    for (api_version, kind) in PLATFORM_KINDS {
        if let Some(t) = catalog.find(api_version, kind) {
            live.extend(api.list(t, &selector).await?);
        }
    }
    let plans = plan_all(components, &live, component_label, prune);
    let mut out = Vec::new();
    for (rendered, plan) in components.iter().zip(plans) {
        if rendered.objects.is_empty() && plan.prune.is_empty() {
            continue;
        }
        let applied = apply_tenant(api, catalog, rendered, &plan, options, progress).await;
        let failed = applied.error.is_some();
        out.push((plan, applied));
        if failed {
            break;
        }
    }
    Ok(out)
}

/// One tenant's turn through the loop: its plan and, unless the plan was already converged
/// (nothing sent), what applying it did.
#[derive(Debug)]
pub struct Converged {
    /// The plan, computed from what was observed.
    pub plan: TenantPlan,
    /// `None` when the plan was converged: a converged tenant costs no write.
    pub applied: Option<TenantApply>,
}

/// Observe → plan → apply → prune for tenants, as `tenantry apply` and the operator's
/// reconcile both run it: one observation for all of them, then every tenant whose plan is
/// not converged is applied (and pruned with `prune`) in order. A rejected credential or an
/// unreachable server fails every tenant the same way, so the loop stops after the first
/// such failure instead of repeating it; the result then holds fewer entries than
/// `rendered`. Up to [`CONVERGE_CONCURRENCY`] tenants are applied at once; the result is in
/// the order of `rendered` all the same. `prune` says where to look for what to delete. Kinds are not checked here: call [`check_kinds`] first where a missing CRD
/// must stop everything, or set [`ApplyOptions::skip_missing_crds`].
pub async fn converge_tenants<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    rendered: &[Rendered],
    tenant_label: &str,
    prune: Prune,
    options: &ApplyOptions,
    progress: &dyn Progress,
) -> Result<Vec<Converged>, ClusterError> {
    let live = observe_to_prune(api, catalog, rendered, tenant_label, prune, progress).await?;
    Ok(converge_observed(
        api,
        catalog,
        rendered,
        live,
        tenant_label,
        prune,
        options,
        progress,
    )
    .await)
}

/// An object a watch cache says exists: where [`get_known`] reads it from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known<'a> {
    /// Its type, as the catalog serves it.
    pub resource: &'a ResourceType,
    /// Its namespace, `None` for a cluster-scoped object.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

/// Observe by reading each object a watch cache holds for the tenants, instead of listing
/// every kind: the operator's drift watches already know which objects carry a tenant's
/// label, so a new tenant costs no read at all and a converged one a GET per object it has,
/// where a label-selected LIST makes the API server scan every object of the kind in the
/// cluster (each of a thousand tenants' reconciles would scan all thousand tenants'
/// objects). An object deleted since the cache saw it is simply absent, and one created
/// since is not seen: planning then applies it (server-side apply creates or updates alike)
/// or prunes it on the pass its watch event triggers, as any informer-fed controller does.
pub async fn get_known<A: ClusterApi>(
    api: &A,
    known: &[Known<'_>],
    tenant_label: &str,
) -> Result<Vec<Value>, ClusterError> {
    let mut live = Vec::with_capacity(known.len());
    for k in known {
        if let Some(mut object) = api.get(k.resource, k.namespace.as_deref(), &k.name).await? {
            // Some servers leave the type out of a GET's answer; planning keys on it.
            if let Some(map) = object.as_object_mut() {
                map.entry("apiVersion")
                    .or_insert_with(|| Value::String(k.resource.api_version()));
                map.entry("kind")
                    .or_insert_with(|| Value::String(k.resource.kind.clone()));
            }
            if !credential::is_credential(&object, tenant_label) {
                live.push(object);
            }
        }
    }
    Ok(live)
}

/// Observe by listing, as far as `prune` looks (see [`Prune`]).
async fn observe_to_prune<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    rendered: &[Rendered],
    tenant_label: &str,
    prune: Prune,
    progress: &dyn Progress,
) -> Result<Vec<Value>, ClusterError> {
    Ok(match prune {
        Prune::Off | Prune::AllKinds => {
            let all = prune == Prune::AllKinds;
            observe(api, catalog, rendered, tenant_label, all, progress).await?
        }
        Prune::RenderedKinds => {
            let mut types = observed_types(catalog, rendered, false);
            for t in rendered_kinds(catalog) {
                if !types.iter().any(|o| o.group == t.group && o.kind == t.kind) {
                    types.push(t);
                }
            }
            observe_types(api, &types, rendered, tenant_label, progress).await?
        }
    })
}

/// Compute, apply and prune tenants against `live`, the objects observed for them (by
/// [`converge_tenants`]'s lists or [`get_known`]).
#[allow(clippy::too_many_arguments)]
pub async fn converge_observed<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    rendered: &[Rendered],
    live: Vec<Value>,
    tenant_label: &str,
    prune: Prune,
    options: &ApplyOptions,
    progress: &dyn Progress,
) -> Vec<Converged> {
    // Tenant-wide quotas get their shares from what the live quotas report as used.
    let mut rendered = rendered.to_vec();
    rebalance_quotas(&mut rendered, &live, tenant_label);
    let plans = plan_all(&rendered, &live, tenant_label, prune != Prune::Off);
    let pending = plans.iter().filter(|p| !p.is_converged()).count();
    // One tenant shows its objects' progress; many show one line per tenant done.
    let each: &dyn Progress = if pending > 1 { &Silent } else { progress };
    if pending > 1 {
        progress.begin("applying tenants", Some(pending as u64));
    }
    // Built in a loop, not by a closure over the iterator: a closure's future is not
    // provably `Send` for every lifetime, which the operator's spawned reconciles need.
    let mut pending_turns = Vec::with_capacity(rendered.len());
    for (r, plan) in rendered.iter().zip(plans) {
        pending_turns.push(turn(api, catalog, r, plan, options, each));
    }
    // In order, whatever finishes first: the report lists tenants as `rendered` does.
    let mut turns = stream::iter(pending_turns).buffered(CONVERGE_CONCURRENCY);
    let mut out = Vec::with_capacity(rendered.len());
    while let Some(turn) = turns.next().await {
        let fatal = turn
            .applied
            .as_ref()
            .and_then(|a| a.error.as_ref())
            .is_some_and(ClusterError::is_fatal);
        if pending > 1 && turn.applied.is_some() {
            progress.advance(&turn.plan.tenant);
        }
        out.push(turn);
        if fatal {
            // The tenants still in flight are dropped: a rejected credential or an
            // unreachable server fails them the same way, and a re-run resumes them.
            break;
        }
    }
    if pending > 1 {
        progress.end();
    }
    out
}

/// One tenant's apply within [`converge_tenants`]; nothing is sent when its plan is converged.
async fn turn<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    rendered: &Rendered,
    plan: TenantPlan,
    options: &ApplyOptions,
    progress: &dyn Progress,
) -> Converged {
    if plan.is_converged() {
        return Converged {
            plan,
            applied: None,
        };
    }
    let applied = apply_tenant(api, catalog, rendered, &plan, options, progress).await;
    Converged {
        plan,
        applied: Some(applied),
    }
}

/// Tenants [`converge_tenants`] applies at once. A new tenant spends most of its time waiting
/// for its namespaces and their default ServiceAccount, not sending, so a few in flight
/// overlap those waits; a bound keeps a thousand tenants from opening a thousand requests
/// against the API server at once (the operator bounds its reconciles the same way).
pub const CONVERGE_CONCURRENCY: usize = 8;

/// What happened to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Created.
    Created,
    /// Changed.
    Changed,
    /// Already as declared; nothing sent, or the server confirmed a no-op.
    Unchanged,
    /// Dry run: would be created.
    WouldCreate,
    /// Dry run: would be changed.
    WouldChange,
    /// The apply failed.
    Failed,
    /// Its layer was skipped (`--skip-missing-crds`).
    Skipped,
    /// Not attempted because an earlier layer failed.
    NotApplied,
}

impl Action {
    /// The word reports use, as serialized.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Changed => "changed",
            Action::Unchanged => "unchanged",
            Action::WouldCreate => "would-create",
            Action::WouldChange => "would-change",
            Action::Failed => "failed",
            Action::Skipped => "skipped",
            Action::NotApplied => "not-applied",
        }
    }
}

/// One object's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectReport {
    /// `Kind namespace/name`.
    pub object: String,
    /// What happened.
    pub action: Action,
    /// Why it was changed (the plan's differences), or why it failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// A layer's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerStatus {
    /// Every object is in place (some were written).
    Applied,
    /// Every object was already in place.
    Unchanged,
    /// Dry run: validated by the server, nothing stored.
    DryRun,
    /// Skipped because its kinds are not served (`--skip-missing-crds`).
    Skipped,
    /// An object failed; the layer is partly applied.
    Failed,
    /// Not attempted.
    NotApplied,
}

impl LayerStatus {
    /// The word reports use, as serialized.
    pub const fn as_str(self) -> &'static str {
        match self {
            LayerStatus::Applied => "applied",
            LayerStatus::Unchanged => "unchanged",
            LayerStatus::DryRun => "dry-run",
            LayerStatus::Skipped => "skipped",
            LayerStatus::Failed => "failed",
            LayerStatus::NotApplied => "not-applied",
        }
    }
}

/// Names of the layers with one of `status`, in apply order.
pub fn layers_with(layers: &[LayerReport], status: &[LayerStatus]) -> Vec<&'static str> {
    layers
        .iter()
        .filter(|l| status.contains(&l.status))
        .map(|l| l.layer.as_str())
        .collect()
}

/// One layer of one tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerReport {
    /// The layer.
    #[serde(serialize_with = "serialize_layer")]
    pub layer: Layer,
    /// Its status.
    pub status: LayerStatus,
    /// Its objects.
    pub objects: Vec<ObjectReport>,
}

/// The outcome of one deletion.
#[derive(Clone, Debug, Serialize)]
pub struct DeleteReport {
    /// `Kind namespace/name`.
    pub object: String,
    /// `deleted`, `already-gone`, `replaced` (a newer object of that name, left alone),
    /// `would-delete` (dry run), `failed`, or `not-attempted` (an earlier failure meant every
    /// further request would fail the same way).
    pub outcome: &'static str,
    /// The error, as the API edge reported it, when it failed.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::error::serialize_error"
    )]
    pub error: Option<ClusterError>,
}

impl DeleteReport {
    fn not_attempted(target: &PruneTarget) -> Self {
        Self {
            object: target.key.to_string(),
            outcome: "not-attempted",
            error: None,
        }
    }
}

/// Options for applying.
#[derive(Clone, Copy, Debug, Default)]
pub struct ApplyOptions {
    /// Server-side dry run: validate every write, store nothing.
    pub dry_run: bool,
    /// Apply the tenant without the layers whose kinds are not served.
    pub skip_missing_crds: bool,
    /// Waiting for namespaces.
    pub waits: Waits,
}

/// The outcome of applying one tenant.
#[derive(Debug, Serialize)]
pub struct TenantApply {
    /// The tenant.
    pub tenant: String,
    /// Layers in apply order (only layers the tenant has).
    pub layers: Vec<LayerReport>,
    /// Kinds that are not served, and so skipped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<MissingKind>,
    /// Deletions of objects no longer declared.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<DeleteReport>,
    /// Write requests sent (applies and deletes).
    pub writes: usize,
    /// The failure that stopped the tenant, if any.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::error::serialize_error"
    )]
    pub error: Option<ClusterError>,
}

impl TenantApply {
    /// True when every layer is in place (or validated, in a dry run).
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }

    /// Layer names by status, for the "applied / not applied" summary after a failure.
    pub fn layers_with(&self, status: &[LayerStatus]) -> Vec<&'static str> {
        layers_with(&self.layers, status)
    }
}

/// The kinds a tenant needs that are missing, as an error unless they may be skipped.
pub fn check_kinds(
    catalog: &Catalog,
    rendered: &Rendered,
    skip_missing_crds: bool,
) -> Result<Vec<MissingKind>, ClusterError> {
    let missing = catalog.missing(&rendered.objects);
    if !missing.is_empty() && !skip_missing_crds {
        return Err(ClusterError::MissingKinds(missing));
    }
    Ok(missing)
}

/// Apply one tenant's plan. `plan` must come from `rendered` (same objects, same order).
pub async fn apply_tenant<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    rendered: &Rendered,
    plan: &TenantPlan,
    options: &ApplyOptions,
    progress: &dyn Progress,
) -> TenantApply {
    let mut report = TenantApply {
        tenant: rendered.tenant.clone(),
        layers: Vec::new(),
        missing: Vec::new(),
        pruned: Vec::new(),
        writes: 0,
        error: None,
    };
    match check_kinds(catalog, rendered, options.skip_missing_crds) {
        Ok(missing) => report.missing = missing,
        Err(e) => {
            report.layers = not_applied(rendered, plan, Layer::ALL.as_slice());
            report.error = Some(e);
            return report;
        }
    }
    let skipped: BTreeSet<Layer> = report.missing.iter().map(|m| m.layer).collect();
    let mut run = LayerRun {
        api,
        catalog,
        rendered,
        plan,
        options,
        progress,
        absent_namespaces: BTreeSet::new(),
    };
    let writes_planned = plan
        .objects
        .iter()
        .filter(|o| o.change != Change::Unchanged)
        .count();
    progress.begin(
        &format!("applying tenant {}", rendered.tenant),
        Some(writes_planned as u64),
    );
    for layer in Layer::ALL {
        let indices: Vec<usize> = (0..rendered.objects.len())
            .filter(|&i| rendered.objects[i].layer == layer)
            .collect();
        if indices.is_empty() {
            continue;
        }
        if report.error.is_some() {
            report.layers.extend(not_applied(rendered, plan, &[layer]));
        } else if skipped.contains(&layer) {
            report.layers.push(skipped_layer(rendered, layer, &indices));
        } else {
            run.apply_layer(layer, &indices, &mut report).await;
        }
    }
    progress.end();
    if report.error.is_none() && !plan.prune.is_empty() {
        prune_tenant(api, catalog, rendered, plan, options, progress, &mut report).await;
    }
    report
}

/// One tenant's apply, layer by layer.
struct LayerRun<'a, A> {
    api: &'a A,
    catalog: &'a Catalog,
    rendered: &'a Rendered,
    plan: &'a TenantPlan,
    options: &'a ApplyOptions,
    progress: &'a dyn Progress,
    /// Namespaces created by this run do not exist in a dry run, so what goes into them
    /// cannot be validated by the server; it is reported as would-create.
    absent_namespaces: BTreeSet<String>,
}

/// How applying one object went, and what it means for the namespace wait.
struct Applied {
    report: ObjectReport,
    /// A namespace that was created (`false`) or found terminating (`true`).
    namespace: Option<(String, bool)>,
    error: Option<ClusterError>,
}

impl<A: ClusterApi> LayerRun<'_, A> {
    /// Apply the objects of one layer, stopping at the first failure, then wait for the
    /// namespaces it created.
    async fn apply_layer(&mut self, layer: Layer, indices: &[usize], report: &mut TenantApply) {
        let mut layer_report = LayerReport {
            layer,
            status: LayerStatus::Unchanged,
            objects: Vec::new(),
        };
        let mut new_namespaces: Vec<(String, bool)> = Vec::new();
        for &i in indices {
            let object = &self.rendered.objects[i];
            if report.error.is_some() {
                layer_report.objects.push(ObjectReport {
                    object: object.reference(),
                    action: Action::NotApplied,
                    details: Vec::new(),
                });
                continue;
            }
            let applied = self.apply_object(i, &mut report.writes).await;
            layer_report.objects.push(applied.report);
            new_namespaces.extend(applied.namespace);
            if let Some(e) = applied.error {
                report.error = Some(e);
            }
        }
        layer_report.status = layer_status(
            &layer_report.objects,
            report.error.is_some(),
            self.options.dry_run,
        );
        report.layers.push(layer_report);
        self.wait_namespaces(new_namespaces, report).await;
    }

    /// Apply one object (unless the plan says it is unchanged).
    async fn apply_object(&mut self, i: usize, writes: &mut usize) -> Applied {
        let object = &self.rendered.objects[i];
        let step = &self.plan.objects[i];
        let dry_run = self.options.dry_run;
        let done = |action: Action, details: Vec<String>| Applied {
            report: ObjectReport {
                object: object.reference(),
                action,
                details,
            },
            namespace: None,
            error: None,
        };
        let details = match &step.change {
            Change::Update(why) => why.clone(),
            _ => Vec::new(),
        };
        if step.change == Change::Unchanged {
            return done(Action::Unchanged, details);
        }
        if dry_run
            && object
                .namespace
                .as_ref()
                .is_some_and(|ns| self.absent_namespaces.contains(ns))
        {
            return done(
                Action::WouldCreate,
                vec!["not validated: its namespace does not exist yet".to_owned()],
            );
        }
        let Some(resource) = self.catalog.find(object.api_version, object.kind) else {
            // Unreachable: missing kinds were checked before the first layer.
            return done(Action::Skipped, details);
        };
        *writes += 1;
        let live = match self.api.apply(resource, object, dry_run).await {
            Ok(live) => live,
            Err(e) => {
                self.progress.advance(&object.reference());
                return Applied {
                    report: ObjectReport {
                        object: object.reference(),
                        action: Action::Failed,
                        details: vec![e.to_string()],
                    },
                    namespace: None,
                    error: Some(e),
                };
            }
        };
        let action = applied_action(step, &live, dry_run);
        let mut applied = done(action, details);
        if object.layer == Layer::Namespace {
            if dry_run && step.change == Change::Create {
                self.absent_namespaces.insert(object.name.clone());
            }
            let terminating = live
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null());
            if terminating && !dry_run {
                applied.namespace = Some((object.name.clone(), true));
            } else if action == Action::Created {
                applied.namespace = Some((object.name.clone(), false));
            }
        }
        self.progress.advance(&object.reference());
        applied
    }

    /// A namespace this run created is waited for; one that turns out to be terminating
    /// (left over from an offboarding) stops the tenant, as nothing can be created in it.
    async fn wait_namespaces(&self, namespaces: Vec<(String, bool)>, report: &mut TenantApply) {
        for (ns, terminating) in namespaces {
            if report.error.is_some() {
                break;
            }
            let ready = if terminating {
                Err(ClusterError::NamespaceTerminating(ns.clone()))
            } else {
                wait_namespace_ready(
                    self.api,
                    self.catalog,
                    &ns,
                    &self.options.waits,
                    self.progress,
                )
                .await
            };
            if let Err(e) = ready {
                if let Some(last) = report.layers.last_mut() {
                    last.status = LayerStatus::Failed;
                }
                report.error = Some(e);
            }
        }
    }
}

/// What the server's answer to an apply means.
fn applied_action(step: &ObjectPlan, live: &Value, dry_run: bool) -> Action {
    let version = live
        .get("metadata")
        .and_then(|m| m.get("resourceVersion"))
        .and_then(Value::as_str);
    match (&step.change, dry_run) {
        (Change::Create, true) => Action::WouldCreate,
        (_, true) => Action::WouldChange,
        // The server found nothing to change: the plan was conservative (e.g. a value
        // spelt differently but equal).
        (Change::Update(_), false)
            if version.is_some() && version == step.live_resource_version.as_deref() =>
        {
            Action::Unchanged
        }
        (Change::Create, false) => Action::Created,
        _ => Action::Changed,
    }
}

fn layer_status(objects: &[ObjectReport], failed: bool, dry_run: bool) -> LayerStatus {
    if failed {
        LayerStatus::Failed
    } else if dry_run && objects.iter().any(|o| o.action != Action::Unchanged) {
        LayerStatus::DryRun
    } else if objects.iter().all(|o| o.action == Action::Unchanged) {
        LayerStatus::Unchanged
    } else {
        LayerStatus::Applied
    }
}

fn skipped_layer(rendered: &Rendered, layer: Layer, indices: &[usize]) -> LayerReport {
    LayerReport {
        layer,
        status: LayerStatus::Skipped,
        objects: indices
            .iter()
            .map(|&i| ObjectReport {
                object: rendered.objects[i].reference(),
                action: Action::Skipped,
                details: Vec::new(),
            })
            .collect(),
    }
}

/// Delete what the tenant no longer declares, in the plan's (reverse layer) order. Every
/// deletion gets an outcome; the first failure becomes the tenant's error as it is (so a
/// rejected credential or an unreachable server stops `apply --all`), and after such a
/// fatal one nothing more is sent.
async fn prune_tenant<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    rendered: &Rendered,
    plan: &TenantPlan,
    options: &ApplyOptions,
    progress: &dyn Progress,
    report: &mut TenantApply,
) {
    progress.begin(
        &format!("pruning tenant {}", rendered.tenant),
        Some(plan.prune.len() as u64),
    );
    let mut stopped = false;
    for target in &plan.prune {
        if stopped {
            report.pruned.push(DeleteReport::not_attempted(target));
            continue;
        }
        let outcome = delete_target(api, catalog, target, options.dry_run).await;
        report.writes += 1;
        progress.advance(&outcome.object);
        if let Some(e) = &outcome.error {
            stopped = e.is_fatal();
            if report.error.is_none() {
                report.error = Some(e.clone());
            }
        }
        report.pruned.push(outcome);
    }
    progress.end();
}

fn not_applied(rendered: &Rendered, plan: &TenantPlan, layers: &[Layer]) -> Vec<LayerReport> {
    let mut out = Vec::new();
    for &layer in layers {
        let objects: Vec<ObjectReport> = rendered
            .objects
            .iter()
            .zip(&plan.objects)
            .filter(|(o, _)| o.layer == layer)
            .map(|(o, _)| ObjectReport {
                object: o.reference(),
                action: Action::NotApplied,
                details: Vec::new(),
            })
            .collect();
        if !objects.is_empty() {
            out.push(LayerReport {
                layer,
                status: LayerStatus::NotApplied,
                objects,
            });
        }
    }
    out
}

/// Delete one object through the type it was observed with.
pub async fn delete_target<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    target: &PruneTarget,
    dry_run: bool,
) -> DeleteReport {
    let object = target.key.to_string();
    let Some(resource) = catalog.find(&target.api_version, &target.key.kind) else {
        // The type is no longer served, so neither is the object.
        return DeleteReport {
            object,
            outcome: "already-gone",
            error: None,
        };
    };
    match api
        .delete(
            resource,
            target.key.namespace.as_deref(),
            &target.key.name,
            target.uid.as_deref(),
            dry_run,
        )
        .await
    {
        Ok(Deletion::Started) if dry_run => DeleteReport {
            object,
            outcome: "would-delete",
            error: None,
        },
        Ok(Deletion::Started) => DeleteReport {
            object,
            outcome: "deleted",
            error: None,
        },
        Ok(Deletion::AlreadyGone) => DeleteReport {
            object,
            outcome: "already-gone",
            error: None,
        },
        Ok(Deletion::Replaced) => DeleteReport {
            object,
            outcome: "replaced",
            error: None,
        },
        Err(e) => DeleteReport {
            object,
            outcome: "failed",
            error: Some(e),
        },
    }
}

/// Wait until a namespace is `Active` and its `default` ServiceAccount exists: before that,
/// the ServiceAccount admission plugin rejects pods and some controllers have not caught up,
/// so the next layers would race the namespace's own setup.
pub async fn wait_namespace_ready<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    namespace: &str,
    waits: &Waits,
    progress: &dyn Progress,
) -> Result<(), ClusterError> {
    let namespaces = find_core(catalog, "Namespace")?;
    let service_accounts = find_core(catalog, "ServiceAccount")?;
    let start = Instant::now();
    loop {
        if let Some(ns) = api.get(namespaces, None, namespace).await? {
            let terminating = ns
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null())
                || ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
            if terminating {
                return Err(ClusterError::NamespaceTerminating(namespace.to_owned()));
            }
            let active = ns.pointer("/status/phase").and_then(Value::as_str) == Some("Active");
            if active
                && api
                    .get(service_accounts, Some(namespace), "default")
                    .await?
                    .is_some()
            {
                return Ok(());
            }
        }
        if start.elapsed() >= waits.timeout {
            return Err(ClusterError::Timeout {
                what: format!("namespace {namespace} to be Active with its default ServiceAccount"),
                seconds: waits.timeout.as_secs(),
            });
        }
        progress.waiting(&format!("namespace {namespace}"));
        tokio::time::sleep(waits.interval).await;
    }
}

/// List every scannable type for objects labelled for `tenant`. Types that cannot be
/// listed are reported, not fatal: the caller decides whether an incomplete scan is enough.
pub async fn scan_tenant<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    tenant_label: &str,
    tenant: &str,
    progress: &dyn Progress,
) -> Result<(Vec<Value>, Vec<String>), ClusterError> {
    let selector = format!("{tenant_label}={tenant}");
    let types = catalog.scannable();
    progress.begin(
        &format!("scanning for objects of tenant {tenant}"),
        Some(types.len() as u64),
    );
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    for t in types {
        match api.list(t, &selector).await {
            Ok(items) => found.extend(items),
            Err(e @ (ClusterError::Unauthorized { .. } | ClusterError::Transport { .. })) => {
                progress.end();
                return Err(e);
            }
            Err(e) => unreadable.push(format!("{}: {e}", t.qualified_name())),
        }
        progress.advance(&t.qualified_name());
    }
    progress.end();
    Ok((found, unreadable))
}

/// Objects still labelled for the tenant, once each, as `Kind namespace/name`.
pub fn leftovers(found: &[Value]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for object in found {
        let uid = object
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let Some(key) = ObjectKey::of_live(object) else {
            continue;
        };
        if seen.insert(uid.unwrap_or_else(|| key.to_string())) {
            // An object stuck in deletion says what it waits for (a controller that is not
            // running to clear its finalizer, typically).
            let finalizers: Vec<&str> = object
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .map(|f| f.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let deleting = object
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null());
            out.push(if deleting && !finalizers.is_empty() {
                format!(
                    "{key} (being deleted, waiting for finalizers {})",
                    finalizers.join(", ")
                )
            } else {
                key.to_string()
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The outcome of removing a tenant from the cluster.
#[derive(Debug, Default, Serialize)]
pub struct OffboardCluster {
    /// Every deletion, in order, each with its outcome (failures included).
    pub deleted: Vec<DeleteReport>,
    /// The tenant's namespaces (deleted last).
    pub namespaces: Vec<String>,
    /// The TokenReview of the last issued token after its ServiceAccount was deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_token: Option<TokenStatus>,
    /// Types that could not be listed while looking for the tenant's objects.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

impl OffboardCluster {
    /// The deletions that failed; the offboarding is incomplete unless this is empty.
    pub fn failures(&self) -> impl Iterator<Item = &DeleteReport> {
        self.deleted.iter().filter(|d| d.error.is_some())
    }

    /// The first failed deletion's error, as it happened.
    pub fn first_error(&self) -> Option<&ClusterError> {
        self.failures().find_map(|d| d.error.as_ref())
    }
}

/// Remove a tenant's objects from the cluster: stop delivery and revoke its identity first,
/// then check the last issued token is dead, then delete grants and other objects outside
/// its namespaces, then the namespaces. Does not wait for the namespaces to disappear.
///
/// A failed deletion does not end the offboarding: the others are still attempted and
/// every outcome is in the report (see [`OffboardCluster::failures`]), except that after a
/// fatal failure ([`ClusterError::is_fatal`]) nothing more is sent and the rest are reported
/// `not-attempted`. `Err` is kept for what stops the offboarding before it can start or
/// check itself: the scan, discovery, or the TokenReview.
pub async fn offboard_cluster<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    tenant_label: &str,
    tenant: &str,
    last_token: Option<&str>,
    waits: &Waits,
    progress: &dyn Progress,
) -> Result<OffboardCluster, ClusterError> {
    let (found, unreadable) = scan_tenant(api, catalog, tenant_label, tenant, progress).await?;
    let plan = plan::offboard_plan(tenant, tenant_label, &found);
    let namespace_targets = namespace_targets(catalog, &plan.namespaces, &found)?;
    let mut report = OffboardCluster {
        namespaces: plan.namespaces.clone(),
        unreadable,
        ..OffboardCluster::default()
    };
    progress.begin(&format!("deleting tenant {tenant}"), None);
    delete_all(api, catalog, &plan.revoke, progress, &mut report.deleted).await;
    progress.end();
    if let Some(token) = last_token
        && report.first_error().is_none_or(|e| !e.is_fatal())
    {
        report.last_token = Some(wait_token_rejected(api, token, waits).await?);
    }
    progress.begin(&format!("deleting tenant {tenant}"), None);
    delete_all(api, catalog, &plan.outside, progress, &mut report.deleted).await;
    delete_all(
        api,
        catalog,
        &namespace_targets,
        progress,
        &mut report.deleted,
    )
    .await;
    progress.end();
    Ok(report)
}

/// The tenant's namespaces as deletion targets, each with the uid it was observed with.
fn namespace_targets(
    catalog: &Catalog,
    namespaces: &[String],
    found: &[Value],
) -> Result<Vec<PruneTarget>, ClusterError> {
    let resource = find_core(catalog, "Namespace")?;
    Ok(namespaces
        .iter()
        .map(|ns| {
            let uid = found
                .iter()
                .find(|o| {
                    o.get("kind").and_then(Value::as_str) == Some("Namespace")
                        && o.pointer("/metadata/name").and_then(Value::as_str) == Some(ns)
                })
                .and_then(|o| o.pointer("/metadata/uid"))
                .and_then(Value::as_str);
            PruneTarget {
                key: ObjectKey {
                    group: String::new(),
                    kind: "Namespace".to_owned(),
                    namespace: None,
                    name: ns.clone(),
                },
                api_version: resource.api_version(),
                layer: Some(Layer::Namespace),
                uid: uid.map(str::to_owned),
            }
        })
        .collect())
}

/// Delete each target in order, recording every outcome; once a fatal error happened (in
/// this call or an earlier one), nothing more is sent.
async fn delete_all<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    targets: &[PruneTarget],
    progress: &dyn Progress,
    deleted: &mut Vec<DeleteReport>,
) {
    for target in targets {
        let stopped = deleted
            .iter()
            .any(|d| d.error.as_ref().is_some_and(ClusterError::is_fatal));
        let outcome = if stopped {
            DeleteReport::not_attempted(target)
        } else {
            delete_target(api, catalog, target, false).await
        };
        progress.advance(&outcome.object);
        deleted.push(outcome);
    }
}

/// TokenReview the token until the API server rejects it (the ServiceAccount lookup behind
/// token authentication is cached briefly), or `waits` runs out.
pub(crate) async fn wait_token_rejected<A: ClusterApi>(
    api: &A,
    token: &str,
    waits: &Waits,
) -> Result<TokenStatus, ClusterError> {
    let start = Instant::now();
    loop {
        let status = api.review_token(token).await?;
        if !status.authenticated || start.elapsed() >= waits.timeout.min(Duration::from_secs(60)) {
            return Ok(status);
        }
        tokio::time::sleep(waits.interval).await;
    }
}

/// Wait until every namespace is gone (GET answers 404), reporting progress, within
/// `waits.timeout`. On timeout the error names the namespaces still there and why.
pub async fn wait_namespaces_gone<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    namespaces: &[String],
    waits: &Waits,
    progress: &dyn Progress,
) -> Result<(), ClusterError> {
    let resource = find_core(catalog, "Namespace")?;
    let start = Instant::now();
    let mut remaining: Vec<String> = namespaces.to_vec();
    progress.begin(
        "waiting for namespaces to be deleted",
        Some(namespaces.len() as u64),
    );
    loop {
        let mut still = Vec::new();
        let mut reasons = Vec::new();
        for ns in &remaining {
            match api.get(resource, None, ns).await? {
                None => progress.advance(&format!("Namespace {ns} deleted")),
                Some(live) => {
                    still.push(ns.clone());
                    reasons.extend(stuck_conditions(ns, &live));
                }
            }
        }
        remaining = still;
        if remaining.is_empty() {
            progress.end();
            return Ok(());
        }
        if start.elapsed() >= waits.timeout {
            progress.end();
            let mut what = format!(
                "namespaces to be deleted: {} still there",
                remaining.join(", ")
            );
            for r in reasons {
                what.push_str(&format!("\n  {r}"));
            }
            return Err(ClusterError::Timeout {
                what,
                seconds: waits.timeout.as_secs(),
            });
        }
        tokio::time::sleep(waits.interval).await;
    }
}

/// The namespace controller's explanation of a stuck deletion.
fn stuck_conditions(namespace: &str, live: &Value) -> Vec<String> {
    live.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|conditions| {
            conditions
                .iter()
                .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
                .filter_map(|c| {
                    Some(format!(
                        "{namespace}: {}: {}",
                        c.get("type")?.as_str()?,
                        c.get("message").and_then(Value::as_str).unwrap_or("")
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod word_tests {
    use super::*;

    /// Text reports print these words; JSON reports serialize the same values.
    #[test]
    fn report_words_are_the_serialized_names() {
        use Action::*;
        for a in [
            Created,
            Changed,
            Unchanged,
            WouldCreate,
            WouldChange,
            Failed,
            Skipped,
            NotApplied,
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        for s in [
            LayerStatus::Applied,
            LayerStatus::Unchanged,
            LayerStatus::DryRun,
            LayerStatus::Skipped,
            LayerStatus::Failed,
            LayerStatus::NotApplied,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
