//! One engine for every place a manifest is judged: `tenantry check` in a tenant's CI and the
//! admission webhook in the cluster.
//!
//! The two callers differ only in what they know, so they share one entry point,
//! [`Engine::evaluate`], and describe their knowledge in a [`Context`]: the webhook knows the
//! operation, the requester, the namespace's labels and the old object; `check` knows the
//! tenant at best. A policy that needs a fact the caller does not have does the part it can
//! and the caller learns what was left out from [`Engine::skipped`], so a CI run never passes
//! silently on a check it could not do.
//!
//! Decisions that make admission safe to turn on in a live cluster:
//! - objects in platform namespaces (no tenant label) and cluster-scoped objects are not
//!   judged, except that nobody but the platform may relabel or delete what Tenantry manages;
//! - deleting is always allowed unless the object is Tenantry's, so a violating object can be
//!   removed and a namespace can always finish terminating;
//! - an update that leaves a pod template as it was is not judged again by the pod policies
//!   (no new pod will come from it), and a violation an update carries over unchanged from the
//!   old object comes back as a warning, not a denial: introducing a policy never freezes
//!   existing objects, and controllers can still remove finalizers;
//! - pod controllers are judged on their template and refused at the controller, with paths
//!   into the template, because PodSecurity admission only warns there and the pods would
//!   then silently fail to appear;
//! - an object's findings are listed up to a limit ([`DEFAULT_MAX_FINDINGS_PER_OBJECT`]) and
//!   the rest counted in one last finding that denies if any of them does: a tenant chooses
//!   the size of what is judged, and a Pod with 20,000 containers has 140,000 findings that
//!   would each cost locating and reporting (and an admission response the API server cuts)
//!   while telling nobody more than the first hundred. Judging itself is linear in the object.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};
use tenantry_api::{
    Platform,
    pattern::NamePattern,
    platform::GatewayRef,
    tenant::{Classes, Placement, PodSecurityLevel},
};
use tenantry_core::ResolvedTenant;

use crate::policies::{self, repo_contract::RepoScan};
use crate::pss::{self, Level, NamespaceLabels, PodTemplateRef, Version};

/// Where the engine is being run from; some policies only make sense in one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `tenantry check` on files, before anything reaches a cluster.
    Check,
    /// The admission webhook, on a live API request.
    Admission,
}

/// The API operation being admitted (`Create` for `check`), spelt as in AdmissionReview.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    /// A new object.
    Create,
    /// A change to an existing object (`old_object` is the current one).
    Update,
    /// Removal (`old_object` is the object being removed).
    Delete,
    /// `pods/exec`, `pods/attach`, port-forward and the like.
    Connect,
}

impl Operation {
    /// The AdmissionReview spelling, also used as a metrics label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The requester of an admission request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// `userInfo.username`, e.g. `system:serviceaccount:shop:shop`.
    pub username: String,
    /// `userInfo.groups`.
    pub groups: Vec<String>,
}

/// A namespace as the caller sees it (the webhook's watch cache).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceInfo {
    /// Its name.
    pub name: String,
    /// Its labels: the tenant label and the `pod-security.kubernetes.io/*` labels matter.
    pub labels: BTreeMap<String, String>,
}

/// What the engine needs to know about a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantInfo {
    /// The tenant's name.
    pub name: String,
    /// Every namespace the tenant owns, primary first.
    pub namespaces: Vec<String>,
    /// The ServiceAccount Flux must reconcile the tenant's objects as.
    pub service_account: String,
    /// Registry prefixes images may come from; empty means not restricted.
    pub registries: Vec<String>,
    /// The Pod Security level the tenant's namespaces enforce.
    pub pod_security: Level,
    /// The Secret holding the tenant's proxy kubeconfig, the only `kubeConfig` a Flux object
    /// of the tenant may use: the tenant's own (Flux Git delivery), or the operator-kept one
    /// when the platform sets `flux.proxy` (any Flux delivery).
    pub proxy_kubeconfig_secret: Option<String>,
    /// The ClusterRole the tenant's ServiceAccount is bound to in its namespaces; `None` when
    /// not known (the webhook, which judges requests RBAC has already allowed).
    pub cluster_role: Option<String>,
    /// Namespaces besides its own the tenant's network policies may name: its `allowFrom`
    /// (which includes the gateway's namespace).
    pub network_peers: Vec<String>,
    /// Which nodes the tenant's pods may reach.
    pub placement: Placement,
    /// The shared classes the tenant may use.
    pub classes: Classes,
    /// The per-tenant ValidatingAdmissionPolicies the API server enforces in this tenant's
    /// namespaces (names without the `tenantry-` prefix, e.g. `allowed-registries`): the
    /// webhook saw the policy, the tenant's GuardrailParameters and a `Deny` binding of the one
    /// to the other, selecting exactly this tenant's namespaces. A webhook next to the
    /// policies leaves their checks to them ([`crate::vap::webhook_engine`]); empty anywhere
    /// else, where the engine judges them itself.
    pub vap_bound: Vec<String>,
}

impl TenantInfo {
    /// The engine's view of a resolved tenant.
    pub fn from_resolved(t: &ResolvedTenant) -> Self {
        Self {
            name: t.name.clone(),
            namespaces: t.namespaces.clone(),
            // Tenantry names the tenant's ServiceAccount after the tenant.
            service_account: t.name.clone(),
            registries: t.registries.clone(),
            pod_security: t.pod_security.into(),
            proxy_kubeconfig_secret: t.delivery.proxy_kubeconfig_secret().map(str::to_owned),
            cluster_role: Some(t.cluster_role.clone()),
            network_peers: t.network.allow_from.clone(),
            placement: t.placement.clone(),
            classes: t.classes.clone(),
            vap_bound: Vec::new(),
        }
    }
}

/// The one mapping from the level a tenant declares to the Pod Security level it enforces.
impl From<PodSecurityLevel> for Level {
    fn from(level: PodSecurityLevel) -> Self {
        match level {
            PodSecurityLevel::Restricted => Level::Restricted,
            PodSecurityLevel::Baseline => Level::Baseline,
        }
    }
}

/// What the caller knows about the object being judged.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Check or admission.
    pub mode: Mode,
    /// The operation (`Create` for `check`).
    pub operation: Operation,
    /// The object's namespace: `None` for cluster-scoped objects, or unknown in `check`.
    pub namespace: Option<&'a NamespaceInfo>,
    /// The tenant owning that namespace, if known.
    pub tenant: Option<&'a TenantInfo>,
    /// The requester (admission only).
    pub user: Option<&'a UserInfo>,
    /// The current object on `Update`, the removed one on `Delete`.
    pub old_object: Option<&'a Value>,
}

impl<'a> Context<'a> {
    /// The context of `tenantry check`: creating the object, optionally as a known tenant.
    pub fn check(tenant: Option<&'a TenantInfo>) -> Self {
        Self {
            mode: Mode::Check,
            operation: Operation::Create,
            namespace: None,
            tenant,
            user: None,
            old_object: None,
        }
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The request is refused (`check` exits 1).
    Deny,
    /// Reported, not refused: audit/warn-level Pod Security findings and violations an update
    /// carries over unchanged. The webhook returns them as AdmissionReview warnings.
    Warn,
}

impl Severity {
    /// `deny` or `warn`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Deny => "deny",
            Severity::Warn => "warn",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which object a violation is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// `apiVersion` (empty when the document has none).
    pub api_version: String,
    /// `kind` (empty when the document has none).
    pub kind: String,
    /// `metadata.namespace`, when the object names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.name` (or `generateName`), empty when it has neither.
    pub name: String,
}

impl ObjectRef {
    /// The reference of a JSON object.
    pub fn of(object: &Value) -> Self {
        let str_at = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or("");
        let metadata = object.get("metadata");
        let meta_str = |key: &str| metadata.and_then(|m| m.get(key)).and_then(Value::as_str);
        Self {
            api_version: str_at("apiVersion").to_owned(),
            kind: str_at("kind").to_owned(),
            namespace: meta_str("namespace")
                .filter(|ns| !ns.is_empty())
                .map(str::to_owned),
            name: meta_str("name")
                .or_else(|| meta_str("generateName"))
                .unwrap_or("")
                .to_owned(),
        }
    }
}

impl fmt::Display for ObjectRef {
    /// `Kind namespace/name`, `Kind name`, or `document` for something that is not an object.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.kind.is_empty() {
            "document"
        } else {
            &self.kind
        };
        match (&self.namespace, self.name.is_empty()) {
            (Some(ns), false) => write!(f, "{kind} {ns}/{}", self.name),
            (None, false) => write!(f, "{kind} {}", self.name),
            (Some(ns), true) => write!(f, "{kind} in {ns}"),
            (None, true) => f.write_str(kind),
        }
    }
}

/// One violation of one check at one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Stable check ID: the upstream ID for Pod Security (`runAsNonRoot`), otherwise one of
    /// the IDs listed in [`crate::CHECKS`].
    pub check: String,
    /// The policy the check belongs to, one of [`Engine::policy_ids`].
    pub policy: &'static str,
    /// Deny or warn.
    pub severity: Severity,
    /// The object.
    pub object: ObjectRef,
    /// Field path into the object, e.g.
    /// `spec.template.spec.initContainers[0].securityContext.privileged`; for a missing field,
    /// where it must be set.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to change.
    pub remediation: String,
}

/// A policy (or part of one) that could not run for lack of information.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The policy.
    pub policy: &'static str,
    /// What was not checked and how to have it checked.
    pub reason: String,
}

/// An invalid engine selection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// `--policy` named a policy that does not exist.
    #[error("unknown policy {given:?}; valid policies: {}", valid.join(", "))]
    UnknownPolicy {
        /// What was given.
        given: String,
        /// Every valid ID.
        valid: Vec<&'static str>,
    },
}

/// The policies, in the order findings are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum PolicyId {
    PodSecurity,
    RequireRequestsLimits,
    AllowedRegistries,
    NoNodePort,
    NoLoadBalancer,
    NoExternalIps,
    ImagePullPolicyAlways,
    RequireDigest,
    RestrictSecretStores,
    RestrictNetworkPolicies,
    TenantPlacement,
    AllowedClasses,
    FluxLockdown,
    GatewayParent,
    ProtectPlatformObjects,
    TenantRepoContract,
    TenantRbac,
}

impl PolicyId {
    pub(crate) const ALL: [PolicyId; 17] = [
        PolicyId::PodSecurity,
        PolicyId::RequireRequestsLimits,
        PolicyId::AllowedRegistries,
        PolicyId::NoNodePort,
        PolicyId::NoLoadBalancer,
        PolicyId::NoExternalIps,
        PolicyId::ImagePullPolicyAlways,
        PolicyId::RequireDigest,
        PolicyId::RestrictSecretStores,
        PolicyId::RestrictNetworkPolicies,
        PolicyId::TenantPlacement,
        PolicyId::AllowedClasses,
        PolicyId::FluxLockdown,
        PolicyId::GatewayParent,
        PolicyId::ProtectPlatformObjects,
        PolicyId::TenantRepoContract,
        PolicyId::TenantRbac,
    ];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            PolicyId::PodSecurity => "pod-security",
            PolicyId::RequireRequestsLimits => "require-requests-limits",
            PolicyId::AllowedRegistries => "allowed-registries",
            PolicyId::NoNodePort => "no-nodeport",
            PolicyId::NoLoadBalancer => "no-loadbalancer",
            PolicyId::NoExternalIps => "no-external-ips",
            PolicyId::ImagePullPolicyAlways => "image-pull-policy-always",
            PolicyId::RequireDigest => "require-digest",
            PolicyId::RestrictSecretStores => "restrict-secret-stores",
            PolicyId::RestrictNetworkPolicies => "restrict-network-policies",
            PolicyId::TenantPlacement => "tenant-placement",
            PolicyId::AllowedClasses => "allowed-classes",
            PolicyId::FluxLockdown => "flux-lockdown",
            PolicyId::GatewayParent => "gateway-parent",
            PolicyId::ProtectPlatformObjects => "protect-platform-objects",
            PolicyId::TenantRepoContract => "tenant-repo-contract",
            PolicyId::TenantRbac => "tenant-rbac",
        }
    }

    const fn bit(self) -> u32 {
        1 << self as u32
    }

    /// Whether the policy runs in `mode` at all.
    pub(crate) const fn runs_in(self, mode: Mode) -> bool {
        match self {
            PolicyId::ProtectPlatformObjects => matches!(mode, Mode::Admission),
            PolicyId::TenantRepoContract | PolicyId::TenantRbac => matches!(mode, Mode::Check),
            _ => true,
        }
    }

    /// Whether an update's violations of this policy that the old object already had become
    /// warnings. Pod policies need not (an update keeping the template is not judged by
    /// them), and protect-platform-objects must not: what it guards is the update itself.
    pub(crate) const fn carries_over(self) -> bool {
        matches!(
            self,
            PolicyId::NoNodePort
                | PolicyId::NoLoadBalancer
                | PolicyId::NoExternalIps
                | PolicyId::RestrictSecretStores
                | PolicyId::RestrictNetworkPolicies
                | PolicyId::AllowedClasses
                | PolicyId::FluxLockdown
                | PolicyId::GatewayParent
        )
    }

    /// Whether the policy reads the pod template (and so is skipped on updates that keep it).
    pub(crate) const fn judges_pods(self) -> bool {
        matches!(
            self,
            PolicyId::PodSecurity
                | PolicyId::RequireRequestsLimits
                | PolicyId::AllowedRegistries
                | PolicyId::ImagePullPolicyAlways
                | PolicyId::RequireDigest
        )
    }
}

const _: () = assert!(PolicyId::ALL.len() <= u32::BITS as usize);

const POLICY_IDS: [&str; PolicyId::ALL.len()] = {
    let mut ids = [""; PolicyId::ALL.len()];
    let mut i = 0;
    while i < PolicyId::ALL.len() {
        ids[i] = PolicyId::ALL[i].as_str();
        i += 1;
    }
    ids
};

/// A set of policies as a bit set (every policy fits in a `u32`; a const assertion says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PolicySet(u32);

impl PolicySet {
    pub(crate) fn contains(self, id: PolicyId) -> bool {
        self.0 & id.bit() != 0
    }

    fn insert(&mut self, id: PolicyId) {
        self.0 |= id.bit();
    }

    fn remove(&mut self, id: PolicyId) {
        self.0 &= !id.bit();
    }
}

/// The tenant repository contract, when `check` is told the repository's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RepoContract {
    pub(crate) repo_name: String,
    pub(crate) store_name: String,
}

/// The guardrail engine, configured once from `tenantry.yaml` and shared by every evaluation.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) enabled: PolicySet,
    pub(crate) level_override: Option<Level>,
    pub(crate) version_override: Option<Version>,
    pub(crate) default_version: Version,
    pub(crate) tenant_label: String,
    pub(crate) gateway: Option<GatewayRef>,
    pub(crate) secret_store_reconcilers: Vec<NamePattern>,
    pub(crate) exempt_users: Vec<NamePattern>,
    pub(crate) exempt_groups: Vec<NamePattern>,
    pub(crate) store_name: String,
    pub(crate) repo_contract_enabled: bool,
    pub(crate) repo_contract: Option<RepoContract>,
    /// The most findings [`Engine::evaluate`] lists per object; `None`: no limit.
    pub(crate) max_findings: Option<usize>,
    /// What tenants' ServiceAccounts may create (`tenant-rbac`).
    pub(crate) tenant_grants: policies::tenant_rbac::TenantGrants,
    /// The platform's OpenBao: a tenant SecretStore reaching it must use the tenant's own
    /// role, mounts and path (`restrict-secret-stores`).
    pub(crate) openbao: tenantry_api::platform::OpenBaoConfig,
    /// Namespaces a tenant's network policies may name besides its own
    /// (`restrict-network-policies`).
    pub(crate) shared_namespaces: Vec<String>,
    /// The platform's placement and class bounds, for a tenant not known by name.
    pub(crate) default_placement: Placement,
    pub(crate) default_classes: Classes,
    /// Checks another enforcer decides for this engine at admission (the API server's
    /// ValidatingAdmissionPolicies, [`crate::vap::webhook_engine`]), sorted: not judged here.
    pub(crate) delegated: Vec<&'static str>,
    /// The policies all of whose checks are delegated: not run at all.
    pub(crate) delegated_policies: PolicySet,
    /// Checks the per-tenant policies decide (check ID, policy name without prefix), sorted:
    /// not judged here for a tenant whose [`TenantInfo::vap_bound`] names the policy.
    pub(crate) delegated_per_tenant: Vec<(&'static str, String)>,
}

/// How many findings [`Engine::evaluate`] lists for one object unless told otherwise
/// ([`Engine::with_max_findings`]). A pod with thousands of containers can have tens of
/// thousands of findings; past this many, nobody reads them, while every one costs locating,
/// reporting and (at admission) bytes in a response the API server will cut anyway.
pub const DEFAULT_MAX_FINDINGS_PER_OBJECT: usize = 100;

/// The check ID of the last finding of an object that had more than the limit: it says how
/// many were left out, and denies when any of them would have.
pub const FINDINGS_ELIDED: &str = "findings-elided";

impl Engine {
    /// An engine enforcing the platform's `policies:` configuration. Every value it reads was
    /// checked when `tenantry.yaml` was parsed, so there is nothing left to refuse here.
    pub fn new(platform: &Platform) -> Self {
        let config = &platform.policies;
        let default_version = Version::from(config.pod_security.version);
        let mut enabled = PolicySet::default();
        for (id, on) in [
            (PolicyId::PodSecurity, config.pod_security.enabled),
            (
                PolicyId::RequireRequestsLimits,
                config.require_requests_limits.enabled,
            ),
            (
                PolicyId::AllowedRegistries,
                config.allowed_registries.enabled,
            ),
            (PolicyId::NoNodePort, config.no_node_port.enabled),
            (PolicyId::NoLoadBalancer, config.no_load_balancer.enabled),
            (PolicyId::NoExternalIps, config.no_external_ips.enabled),
            (
                PolicyId::ImagePullPolicyAlways,
                config.image_pull_policy_always.enabled,
            ),
            (PolicyId::RequireDigest, config.require_digest.enabled),
            (
                PolicyId::RestrictSecretStores,
                config.restrict_secret_stores.enabled,
            ),
            (
                PolicyId::RestrictNetworkPolicies,
                config.restrict_network_policies.enabled,
            ),
            (PolicyId::TenantPlacement, config.tenant_placement.enabled),
            (PolicyId::AllowedClasses, config.allowed_classes.enabled),
            (PolicyId::FluxLockdown, config.flux_lockdown.enabled),
            (PolicyId::GatewayParent, config.gateway_parent.enabled),
            (
                PolicyId::ProtectPlatformObjects,
                config.protect_platform_objects.enabled,
            ),
            // Runs only once a repository name is given (`with_repo_contract`).
            (PolicyId::TenantRepoContract, true),
            (PolicyId::TenantRbac, config.tenant_rbac.enabled),
        ] {
            if on {
                enabled.insert(id);
            }
        }
        let reconciler = platform.flux.reconciler.as_str();
        let store_name = config
            .tenant_repo_contract
            .secret_store_name
            .clone()
            .unwrap_or_else(|| platform.openbao.store_name.clone());
        Self {
            enabled,
            level_override: None,
            version_override: None,
            default_version,
            tenant_label: platform.tenant_label(),
            gateway: platform.gateway.clone(),
            secret_store_reconcilers: config
                .restrict_secret_stores
                .reconcilers_or_default(reconciler),
            exempt_users: config
                .protect_platform_objects
                .exempt_users_or_default(reconciler, &platform.flux.namespace),
            exempt_groups: config.protect_platform_objects.exempt_groups_or_default(),
            store_name,
            repo_contract_enabled: config.tenant_repo_contract.enabled,
            repo_contract: None,
            max_findings: Some(DEFAULT_MAX_FINDINGS_PER_OBJECT),
            tenant_grants: policies::tenant_rbac::TenantGrants::new(platform),
            openbao: platform.openbao.clone(),
            shared_namespaces: policies::network_policies::shared_namespaces(platform),
            default_placement: platform.defaults.placement.clone().unwrap_or_default(),
            default_classes: platform.defaults.classes.clone().unwrap_or_default(),
            delegated: Vec::new(),
            delegated_policies: PolicySet::default(),
            delegated_per_tenant: Vec::new(),
        }
    }

    /// Leave `checks` to another enforcer at admission: they are no longer judged, except on
    /// updates by the policies that carry a violation over (another enforcer may carry over per
    /// check where the engine does per field, so the engine keeps judging those updates).
    pub(crate) fn delegate(mut self, checks: impl IntoIterator<Item = &'static str>) -> Self {
        self.delegated.extend(checks);
        self.delegated.sort_unstable();
        self.delegated.dedup();
        for id in PolicyId::ALL {
            let own: Vec<&str> = if id == PolicyId::PodSecurity {
                pss::checks().map(|c| c.id).collect()
            } else {
                crate::catalog::CHECKS
                    .iter()
                    .filter(|c| c.policy == id.as_str())
                    .map(|c| c.id)
                    .collect()
            };
            if !own.is_empty() && own.iter().all(|c| self.delegated.binary_search(c).is_ok()) {
                self.delegated_policies.insert(id);
            }
        }
        self
    }

    /// Leave `checks` (check ID, the per-tenant policy deciding it) to the per-tenant
    /// policies, for the tenants those are bound to ([`TenantInfo::vap_bound`]): a tenant
    /// whose binding or parameters are not in place yet keeps being judged here, so no tenant
    /// is judged by neither. Updates that carry a violation over are judged here, as for
    /// [`Engine::delegate`].
    pub(crate) fn delegate_per_tenant(
        mut self,
        checks: impl IntoIterator<Item = (&'static str, String)>,
    ) -> Self {
        self.delegated_per_tenant.extend(checks);
        self.delegated_per_tenant.sort_unstable();
        self.delegated_per_tenant.dedup();
        self
    }

    /// The checks left to another enforcer at admission, sorted (empty unless this engine was
    /// made by [`crate::vap::webhook_engine`]).
    pub fn delegated_checks(&self) -> &[&'static str] {
        &self.delegated
    }

    /// The checks left to the per-tenant policies for a tenant they are bound to (check ID,
    /// policy name without prefix), sorted.
    pub fn delegated_per_tenant_checks(&self) -> &[(&'static str, String)] {
        &self.delegated_per_tenant
    }

    /// Whether `id`'s delegated checks are left out of this request.
    fn delegates(&self, id: PolicyId, ctx: &Context<'_>) -> bool {
        let delegates_any = !self.delegated.is_empty() || !self.delegated_per_tenant.is_empty();
        let carried_over = ctx.operation == Operation::Update && id.carries_over();
        delegates_any && ctx.mode == Mode::Admission && !carried_over
    }

    /// Whether a finding of `check` is another enforcer's to report for this request's tenant.
    fn left_out(&self, check: &str, tenant: Option<&TenantInfo>) -> bool {
        self.delegated.binary_search(&check).is_ok()
            || tenant.is_some_and(|t| {
                self.delegated_per_tenant
                    .iter()
                    .any(|(c, policy)| *c == check && t.vap_bound.iter().any(|b| b == policy))
            })
    }

    /// List at most `limit` findings per object (`None`: all of them); the findings past it
    /// are counted in one last [`FINDINGS_ELIDED`] finding. The verdict never changes: that
    /// finding denies when any finding it stands for denies. Default
    /// [`DEFAULT_MAX_FINDINGS_PER_OBJECT`].
    pub fn with_max_findings(mut self, limit: Option<usize>) -> Self {
        self.max_findings = limit;
        self
    }

    /// Override the configuration for one run: `policies` selects exactly those policies (even
    /// ones `tenantry.yaml` switches off), `level` and `version` fix the Pod Security level and
    /// version for every object. Unknown policy IDs are an error listing the valid ones.
    pub fn with_selection(
        mut self,
        policies: Option<&[String]>,
        level: Option<Level>,
        version: Option<Version>,
    ) -> Result<Self, EngineError> {
        if let Some(policies) = policies {
            let mut selected = PolicySet::default();
            for given in policies {
                let given = given.trim();
                let id = PolicyId::ALL
                    .into_iter()
                    .find(|id| id.as_str() == given)
                    .ok_or_else(|| EngineError::UnknownPolicy {
                        given: given.to_owned(),
                        valid: POLICY_IDS.to_vec(),
                    })?;
                selected.insert(id);
            }
            if selected.contains(PolicyId::TenantRepoContract) {
                // An explicit selection beats `enabled: false` in tenantry.yaml.
                self.repo_contract_enabled = true;
            } else {
                selected.remove(PolicyId::TenantRepoContract);
            }
            self.enabled = selected;
        }
        self.level_override = level.or(self.level_override);
        self.version_override = version.or(self.version_override);
        Ok(self)
    }

    /// Check the tenant repository contract (check mode) for a repository named `repo_name`.
    /// Has no effect when the contract is switched off in `tenantry.yaml` or left out of an
    /// explicit selection.
    pub fn with_repo_contract(mut self, repo_name: &str) -> Self {
        if self.repo_contract_enabled && self.enabled.contains(PolicyId::TenantRepoContract) {
            self.repo_contract = Some(RepoContract {
                repo_name: repo_name.to_owned(),
                store_name: self.store_name.clone(),
            });
        }
        self
    }

    /// The repository-wide part of the tenant repository contract, when it is checked
    /// (see [`Engine::with_repo_contract`]): feed it every document, then `finish`.
    pub fn repo_scan(&self) -> Option<RepoScan> {
        self.repo_contract
            .as_ref()
            .filter(|_| self.runs(PolicyId::TenantRepoContract, Mode::Check))
            .map(RepoScan::new)
    }

    /// Every policy ID, in reporting order.
    pub fn policy_ids() -> &'static [&'static str] {
        &POLICY_IDS
    }

    /// The IDs of the policies this engine runs in `mode`, in reporting order.
    pub fn enabled_policies(&self, mode: Mode) -> Vec<&'static str> {
        PolicyId::ALL
            .into_iter()
            .filter(|&id| self.runs(id, mode))
            .map(PolicyId::as_str)
            .collect()
    }

    pub(crate) fn runs(&self, id: PolicyId, mode: Mode) -> bool {
        // The repository contract includes the tenant's registries: it runs
        // `allowed-registries` even where the selection or `tenantry.yaml` leaves it out.
        let by_contract = id == PolicyId::AllowedRegistries
            && self.repo_contract.is_some()
            && self.enabled.contains(PolicyId::TenantRepoContract);
        (self.enabled.contains(id) || by_contract)
            && id.runs_in(mode)
            && (id != PolicyId::TenantRepoContract || self.repo_contract.is_some())
    }

    /// The label naming a namespace's tenant.
    pub fn tenant_label(&self) -> &str {
        &self.tenant_label
    }

    /// What the engine cannot check in this context, and why. Callers print these so that a
    /// check left undone is never mistaken for a check passed.
    pub fn skipped(&self, ctx: &Context<'_>) -> Vec<Skipped> {
        let mut out = Vec::new();
        let mode = ctx.mode;
        if self.runs(PolicyId::AllowedRegistries, mode) {
            match ctx.tenant {
                None => out.push(Skipped {
                    policy: PolicyId::AllowedRegistries.as_str(),
                    reason: "no tenant given: images were not compared with a registry list \
                             (pass --tenant NAME to use the tenant's `registries`)"
                        .to_owned(),
                }),
                Some(t) if t.registries.is_empty() => out.push(Skipped {
                    policy: PolicyId::AllowedRegistries.as_str(),
                    reason: format!(
                        "tenant {} lists no `registries`: images from any registry are allowed",
                        t.name
                    ),
                }),
                Some(_) => {}
            }
        }
        if self.runs(PolicyId::TenantRepoContract, mode) && ctx.tenant.is_none() {
            out.push(Skipped {
                policy: PolicyId::TenantRepoContract.as_str(),
                reason: "no tenant given: namespace fields were not compared with the tenant's \
                         namespaces (pass --tenant NAME --repo PLATFORM_REPO)"
                    .to_owned(),
            });
        }
        if self.runs(PolicyId::FluxLockdown, mode) && ctx.tenant.is_none() {
            out.push(Skipped {
                policy: PolicyId::FluxLockdown.as_str(),
                reason: "no tenant given: serviceAccountName was required but not compared \
                         with the tenant's ServiceAccount, kubeConfig secrets and target \
                         namespaces were not checked (pass --tenant NAME)"
                    .to_owned(),
            });
        }
        if self.runs(PolicyId::RestrictNetworkPolicies, mode) && ctx.tenant.is_none() {
            out.push(Skipped {
                policy: PolicyId::RestrictNetworkPolicies.as_str(),
                reason: "no tenant given: namespaces named by network policy peers were not \
                         compared with the tenant's (pass --tenant NAME)"
                    .to_owned(),
            });
        }
        if self.runs(PolicyId::TenantRbac, mode) {
            let role = ctx
                .tenant
                .and_then(|t| t.cluster_role.as_deref())
                .unwrap_or(self.tenant_grants.default_role());
            if !self.tenant_grants.knows(role) {
                out.push(Skipped {
                    policy: PolicyId::TenantRbac.as_str(),
                    reason: format!(
                        "the tenant's ServiceAccount is bound to ClusterRole {role}, whose rules \
                         are the platform's own and unknown offline: kinds were not compared \
                         with what it may create"
                    ),
                });
            }
        }
        if self.runs(PolicyId::GatewayParent, mode) && self.gateway.is_none() {
            out.push(Skipped {
                policy: PolicyId::GatewayParent.as_str(),
                reason: "tenantry.yaml configures no `gateway`: HTTPRoute parents were not checked"
                    .to_owned(),
            });
        }
        out
    }

    /// Judge one object. Findings come out in policy order ([`Engine::policy_ids`]), and within
    /// a policy in the order of the offending fields. On `Delete` the object judged is
    /// `ctx.old_object` (the request carries no new object). Never panics, whatever the JSON.
    pub fn evaluate(&self, object: &Value, ctx: &Context<'_>) -> Vec<Violation> {
        if ctx.operation == Operation::Connect {
            return Vec::new();
        }
        let object = match (ctx.operation, ctx.old_object) {
            (Operation::Delete, Some(old)) => old,
            _ => object,
        };
        let Some(view) = ObjectView::new(object) else {
            return Vec::new();
        };
        if !self.in_scope(&view, ctx) {
            return Vec::new();
        }
        let mut sink = Sink::new(&view);
        let eval = Eval {
            engine: self,
            ctx,
            view: &view,
            own_namespace: own_namespace(&view, ctx),
        };
        if ctx.operation == Operation::Delete {
            self.evaluate_delete(&eval, &mut sink);
        } else {
            self.evaluate_write(&eval, &mut sink);
        }
        if let Some(limit) = self.max_findings {
            elide(&mut sink.violations, limit);
        }
        sink.violations
    }

    /// Whether the object is Tenantry's to judge at all. In admission, objects in platform
    /// namespaces (no tenant label) are the platform's business, and cluster-scoped objects
    /// other than Namespaces are out of tenants' reach (RBAC); `check` judges everything.
    fn in_scope(&self, view: &ObjectView<'_>, ctx: &Context<'_>) -> bool {
        if ctx.mode != Mode::Admission || view.is_namespace() {
            return true;
        }
        ctx.namespace
            .is_some_and(|ns| ns.labels.contains_key(&self.tenant_label))
    }

    /// A delete is judged only by protect-platform-objects, so a violating object can always
    /// be removed.
    fn evaluate_delete(&self, eval: &Eval<'_>, sink: &mut Sink) {
        if self.runs(PolicyId::ProtectPlatformObjects, eval.ctx.mode) {
            sink.policy = PolicyId::ProtectPlatformObjects;
            policies::protect::evaluate(eval, sink);
        }
    }

    /// A create or update: every policy that runs and applies, in order; on an update, what a
    /// policy finds that the old object already had becomes a warning.
    fn evaluate_write(&self, eval: &Eval<'_>, sink: &mut Sink) {
        let ctx = eval.ctx;
        let pod = pss::pod_template(eval.view.value);
        let scope = WriteScope::new(eval.view, ctx, pod.as_ref());
        for id in PolicyId::ALL {
            if !self.runs(id, ctx.mode) || !scope.includes(id) {
                continue;
            }
            let delegates = self.delegates(id, ctx);
            if delegates && self.delegated_policies.contains(id) {
                continue;
            }
            sink.policy = id;
            let before = sink.violations.len();
            self.run_policy(id, eval, pod.as_ref(), sink);
            if ctx.operation == Operation::Update
                && id.carries_over()
                && sink.violations.len() > before
                && let Some(old) = ctx.old_object
            {
                self.carry_over(id, old, ctx, &mut sink.violations[before..]);
            }
            if delegates && sink.violations.len() > before {
                let judged: Vec<Violation> = sink
                    .violations
                    .drain(before..)
                    .filter(|v| !self.left_out(v.check.as_str(), ctx.tenant))
                    .collect();
                sink.violations.extend(judged);
            }
        }
    }

    /// Run one policy on the object (`pod`: its pod template, when it has one).
    fn run_policy(
        &self,
        id: PolicyId,
        eval: &Eval<'_>,
        pod: Option<&PodTemplateRef<'_>>,
        sink: &mut Sink,
    ) {
        match id {
            PolicyId::PodSecurity => {
                if let Some(template) = pod {
                    policies::pods::pod_security(eval, template, sink);
                }
            }
            PolicyId::RequireRequestsLimits => {
                if let Some(template) = pod {
                    policies::pods::requests_limits(template, sink);
                }
            }
            PolicyId::AllowedRegistries => {
                if let (Some(template), Some(tenant)) = (pod, eval.ctx.tenant) {
                    policies::pods::allowed_registries(template, tenant, sink);
                }
            }
            PolicyId::ImagePullPolicyAlways => {
                if let Some(template) = pod {
                    policies::pods::pull_policy_always(template, sink);
                }
            }
            PolicyId::RequireDigest => {
                if let Some(template) = pod {
                    policies::pods::require_digest(template, sink);
                }
            }
            PolicyId::NoNodePort | PolicyId::NoLoadBalancer | PolicyId::NoExternalIps => {
                policies::services::evaluate(id, eval.view, sink);
            }
            PolicyId::RestrictSecretStores => policies::secret_stores::evaluate(eval, sink),
            PolicyId::FluxLockdown => policies::flux::evaluate(eval, sink),
            PolicyId::GatewayParent => policies::gateway::evaluate(eval, sink),
            PolicyId::ProtectPlatformObjects => policies::protect::evaluate(eval, sink),
            PolicyId::TenantRepoContract => {
                if let Some(contract) = &self.repo_contract {
                    policies::repo_contract::evaluate(contract, eval, sink);
                }
            }
            PolicyId::RestrictNetworkPolicies => policies::network_policies::evaluate(eval, sink),
            PolicyId::TenantPlacement => {
                if let Some(template) = pod {
                    policies::placement::placement(eval, template, sink);
                }
            }
            PolicyId::AllowedClasses => {
                if let Some(template) = pod {
                    policies::placement::pod_classes(eval, template, sink);
                }
                policies::placement::object_classes(eval, sink);
            }
            PolicyId::TenantRbac => {
                policies::tenant_rbac::evaluate(&self.tenant_grants, eval, sink)
            }
        }
    }

    /// Downgrade to warnings the violations of `id` an update carries over unchanged from the
    /// old object: the update did not introduce them, and refusing it would freeze the object.
    fn carry_over(&self, id: PolicyId, old: &Value, ctx: &Context<'_>, new: &mut [Violation]) {
        let Some(view) = ObjectView::new(old) else {
            return;
        };
        let mut sink = Sink::new(&view);
        sink.policy = id;
        let create = Context {
            operation: Operation::Create,
            old_object: None,
            ..*ctx
        };
        let eval = Eval {
            engine: self,
            ctx: &create,
            view: &view,
            own_namespace: own_namespace(&view, ctx),
        };
        // The policies that carry over read no pod template.
        self.run_policy(id, &eval, None, &mut sink);
        // A set, not a search per violation: a Service with thousands of ports stays linear.
        let before: HashSet<(&str, &str, &str)> = sink
            .violations
            .iter()
            .map(|o| (o.check.as_str(), o.path.as_str(), o.message.as_str()))
            .collect();
        for v in new.iter_mut() {
            let existed = before.contains(&(v.check.as_str(), v.path.as_str(), v.message.as_str()));
            if existed {
                v.severity = Severity::Warn;
                v.message.push_str(
                    " (already so before this update; allowed for now so the object can still \
                     be changed, but fix it)",
                );
            }
        }
    }

    /// Whether `user` is one of the identities protect-platform-objects never blocks.
    pub(crate) fn is_platform_identity(&self, user: &UserInfo) -> bool {
        matches_any(&self.exempt_users, &user.username)
            || user
                .groups
                .iter()
                .any(|g| matches_any(&self.exempt_groups, g))
    }

    /// Whether `user` may reference a ClusterSecretStore from a tenant namespace.
    pub(crate) fn is_secret_store_reconciler(&self, user: &UserInfo) -> bool {
        matches_any(&self.secret_store_reconcilers, &user.username)
    }

    /// The Pod Security level and version to enforce for an object, and the stricter
    /// audit/warn levels whose extra findings come back as warnings. The namespace's labels
    /// are read by [`NamespaceLabels::read`] (upstream's rules for unparsable values); a
    /// missing `enforce` label means the tenant's level, a missing version the platform's
    /// `policies.podSecurity.version`.
    pub(crate) fn pod_security_plan(&self, ctx: &Context<'_>) -> PssPlan {
        let labels = ctx.namespace.map(|ns| NamespaceLabels::read(&ns.labels));
        let version = |label: Option<Version>| -> Version {
            self.version_override
                .or(label)
                .unwrap_or(self.default_version)
        };
        if let Some(level) = self.level_override {
            let pinned = labels.as_ref().and_then(|l| l.enforce.version);
            return PssPlan {
                enforce: (level, version(pinned)),
                also: Vec::new(),
            };
        }
        if let Some(labels) = labels {
            let enforce_level = labels
                .enforce
                .level
                .unwrap_or_else(|| ctx.tenant.map_or(Level::Restricted, |t| t.pod_security));
            let enforce = (enforce_level, version(labels.enforce.version));
            let mut also = Vec::new();
            for mode in [labels.audit, labels.warn] {
                if let Some(level) = mode.level {
                    let planned = (level, version(mode.version));
                    if planned != enforce && !also.contains(&planned) {
                        also.push(planned);
                    }
                }
            }
            return PssPlan { enforce, also };
        }
        match ctx.tenant {
            // Tenantry labels every tenant namespace enforce=<tenant level> and
            // audit=warn=restricted, so a baseline tenant sees what hardening would take.
            Some(t) => {
                let enforce = (t.pod_security, version(None));
                let strict = (Level::Restricted, version(None));
                PssPlan {
                    enforce,
                    also: if strict == enforce {
                        Vec::new()
                    } else {
                        vec![strict]
                    },
                }
            }
            None => PssPlan {
                enforce: (Level::Restricted, version(None)),
                also: Vec::new(),
            },
        }
    }
}

/// The Pod Security levels an object is judged at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PssPlan {
    pub(crate) enforce: (Level, Version),
    pub(crate) also: Vec<(Level, Version)>,
}

/// Which policies a create or update leaves to judge.
struct WriteScope {
    /// Only protect-platform-objects judges: the object is a Namespace, or it is being
    /// deleted and the update is a controller finishing that (removing finalizers).
    protect_only: bool,
    /// Whether the pod policies judge: false for an update that cannot change the pods.
    pods_changed: bool,
}

impl WriteScope {
    fn new(view: &ObjectView<'_>, ctx: &Context<'_>, pod: Option<&PodTemplateRef<'_>>) -> Self {
        let terminating = ctx.operation == Operation::Update
            && view
                .metadata
                .is_some_and(|m| m.get("deletionTimestamp").is_some_and(|v| !v.is_null()));
        let pods_changed = match (ctx.operation, ctx.old_object, pod) {
            (Operation::Update, Some(old), Some(template)) => {
                policies::pods::significant_update(template, old)
            }
            _ => true,
        };
        Self {
            protect_only: view.is_namespace() || terminating,
            pods_changed,
        }
    }

    fn includes(&self, id: PolicyId) -> bool {
        // A Namespace in a deploy tree is still one the tenant may not create.
        if self.protect_only
            && !matches!(
                id,
                PolicyId::ProtectPlatformObjects
                    | PolicyId::TenantRbac
                    | PolicyId::TenantRepoContract
            )
        {
            return false;
        }
        self.pods_changed || !id.judges_pods()
    }
}

/// The namespace an object will live in, when it can be known: its own `metadata.namespace`,
/// the request's namespace, or the tenant's only namespace.
fn own_namespace<'a>(view: &ObjectView<'a>, ctx: &Context<'a>) -> Option<&'a str> {
    view.namespace
        .or(ctx.namespace.map(|ns| ns.name.as_str()))
        .or_else(|| match ctx.tenant {
            Some(t) if t.namespaces.len() == 1 => t.namespaces.first().map(String::as_str),
            _ => None,
        })
}

fn matches_any(patterns: &[NamePattern], name: &str) -> bool {
    patterns.iter().any(|p| p.matches(name))
}

/// The identity of the object under judgement, read once.
pub(crate) struct ObjectView<'a> {
    pub(crate) value: &'a Value,
    pub(crate) object: &'a Map<String, Value>,
    /// API group (`""` for core, and for documents without `apiVersion`).
    pub(crate) group: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) metadata: Option<&'a Map<String, Value>>,
    pub(crate) namespace: Option<&'a str>,
}

impl<'a> ObjectView<'a> {
    pub(crate) fn new(value: &'a Value) -> Option<Self> {
        let object = value.as_object()?;
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let group = api_version.split_once('/').map_or("", |(g, _)| g);
        let metadata = object.get("metadata").and_then(Value::as_object);
        Some(Self {
            value,
            object,
            group,
            kind: object.get("kind").and_then(Value::as_str).unwrap_or(""),
            metadata,
            namespace: metadata
                .and_then(|m| m.get("namespace"))
                .and_then(Value::as_str)
                .filter(|ns| !ns.is_empty()),
        })
    }

    /// Whether the object is a core `Namespace`.
    pub(crate) fn is_namespace(&self) -> bool {
        self.group.is_empty() && self.kind == "Namespace"
    }

    /// `metadata.labels[key]`.
    pub(crate) fn label(&self, key: &str) -> Option<&'a str> {
        self.metadata?
            .get("labels")?
            .as_object()?
            .get(key)?
            .as_str()
    }

    /// `metadata.name`.
    pub(crate) fn name(&self) -> &'a str {
        self.metadata
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The value at a dotted path of object keys (`spec.sourceRef`).
    pub(crate) fn at(&self, path: &str) -> Option<&'a Value> {
        path.split('.')
            .try_fold(self.value, |value, key| value.as_object()?.get(key))
    }
}

/// Everything a policy function needs.
pub(crate) struct Eval<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) ctx: &'a Context<'a>,
    pub(crate) view: &'a ObjectView<'a>,
    /// The namespace the object will live in, when it can be known: its own
    /// `metadata.namespace`, the request's namespace, or the tenant's only namespace.
    pub(crate) own_namespace: Option<&'a str>,
}

/// Collects violations for one object.
pub(crate) struct Sink {
    object: ObjectRef,
    pub(crate) policy: PolicyId,
    pub(crate) violations: Vec<Violation>,
}

impl Sink {
    fn new(view: &ObjectView<'_>) -> Self {
        Self {
            object: ObjectRef::of(view.value),
            policy: PolicyId::PodSecurity,
            violations: Vec::new(),
        }
    }

    pub(crate) fn push(
        &mut self,
        severity: Severity,
        check: &str,
        path: String,
        message: String,
        remediation: String,
    ) {
        self.violations.push(Violation {
            check: check.to_owned(),
            policy: self.policy.as_str(),
            severity,
            object: self.object.clone(),
            path,
            message,
            remediation,
        });
    }

    pub(crate) fn deny(&mut self, check: &str, path: String, message: String, remediation: String) {
        self.push(Severity::Deny, check, path, message, remediation);
    }
}

/// `prefix.rest`, or `rest` when the prefix is empty.
pub(crate) fn join(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_owned()
    } else {
        let mut path = String::with_capacity(prefix.len() + 1 + rest.len());
        path.push_str(prefix);
        path.push('.');
        path.push_str(rest);
        path
    }
}

/// Keep the first `limit` violations and replace the rest with one [`FINDINGS_ELIDED`]
/// violation counting them. It denies when any of them denies, so the verdict (and `check`'s
/// exit code) is what it would have been, and it carries the policy of the first one left out.
fn elide(violations: &mut Vec<Violation>, limit: usize) {
    if violations.len() <= limit {
        return;
    }
    let rest = violations.split_off(limit);
    let denied = rest.iter().filter(|v| v.severity == Severity::Deny).count();
    let warned = rest.len() - denied;
    let Some(first) = rest.into_iter().next() else {
        return;
    };
    let counts = match (denied, warned) {
        (d, 0) => format!("{d} denied"),
        (0, w) => format!("{w} warnings"),
        (d, w) => format!("{d} denied, {w} warnings"),
    };
    violations.push(Violation {
        check: FINDINGS_ELIDED.to_owned(),
        policy: first.policy,
        severity: if denied > 0 {
            Severity::Deny
        } else {
            Severity::Warn
        },
        object: first.object,
        path: String::new(),
        message: format!(
            "{} more findings on this object are not listed ({counts}): at most {limit} are \
             reported per object",
            denied + warned
        ),
        remediation: "Fix the findings listed and check again; `tenantry check \
                      --max-findings-per-object 0` lists every one."
            .to_owned(),
    });
}
