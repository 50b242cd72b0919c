//! `tenant-rbac` (check only): what Flux will be refused when it applies a tenant's `deploy/`
//! tree as the tenant's ServiceAccount.
//!
//! A tenant's delivery runs as its own ServiceAccount, bound in its namespaces to one
//! ClusterRole (`edit` unless the tenant says otherwise). An object that role does not let it
//! create passes every guardrail in CI and then fails in the cluster with `Forbidden`, on the
//! platform's reconciler, long after the pull request merged. This check says so in CI, where
//! the tenant can act on it.
//!
//! What `edit` and `admin` grant is Kubernetes' bootstrap policy (`system:aggregate-to-edit`
//! and `-admin`; a test holds these tables equal to the ones recorded from a v1.36 API
//! server) plus the platform's own tenant roles aggregated into both
//! (`core::render::platform::granted_resources`, the same list that renders those
//! ClusterRoles, so the check and the grant cannot drift). A tenant bound to any other
//! ClusterRole is the platform's own definition, unknown offline: the check is skipped and
//! says so.

use std::collections::BTreeSet;

use tenantry_api::platform::Platform;
use tenantry_core::render::platform::granted_resources;

use crate::engine::{Eval, Sink};

/// `(apiGroup, resource)` pairs `system:aggregate-to-edit` lets a subject create (Kubernetes
/// v1.36 bootstrap policy). Endpoints and EndpointSlices are missing on purpose upstream
/// (CVE-2021-25740), as are ResourceQuotas and LimitRanges: they are the platform's.
const EDIT_CREATES: &[(&str, &str)] = &[
    ("", "configmaps"),
    ("", "events"),
    ("", "persistentvolumeclaims"),
    ("", "pods"),
    ("", "pods/attach"),
    ("", "pods/eviction"),
    ("", "pods/exec"),
    ("", "pods/portforward"),
    ("", "pods/proxy"),
    ("", "replicationcontrollers"),
    ("", "replicationcontrollers/scale"),
    ("", "secrets"),
    ("", "serviceaccounts"),
    ("", "serviceaccounts/token"),
    ("", "services"),
    ("", "services/proxy"),
    ("apps", "daemonsets"),
    ("apps", "deployments"),
    ("apps", "deployments/rollback"),
    ("apps", "deployments/scale"),
    ("apps", "replicasets"),
    ("apps", "replicasets/scale"),
    ("apps", "statefulsets"),
    ("apps", "statefulsets/scale"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("batch", "cronjobs"),
    ("batch", "jobs"),
    ("coordination.k8s.io", "leases"),
    ("events.k8s.io", "events"),
    ("extensions", "daemonsets"),
    ("extensions", "deployments"),
    ("extensions", "deployments/rollback"),
    ("extensions", "deployments/scale"),
    ("extensions", "ingresses"),
    ("extensions", "networkpolicies"),
    ("extensions", "replicasets"),
    ("extensions", "replicasets/scale"),
    ("extensions", "replicationcontrollers/scale"),
    ("networking.k8s.io", "ingresses"),
    ("networking.k8s.io", "networkpolicies"),
    ("policy", "poddisruptionbudgets"),
    ("resource.k8s.io", "resourceclaims"),
    ("resource.k8s.io", "resourceclaimtemplates"),
];

/// What `system:aggregate-to-admin` adds to `edit` for create.
const ADMIN_CREATES: &[(&str, &str)] = &[
    ("authorization.k8s.io", "localsubjectaccessreviews"),
    ("rbac.authorization.k8s.io", "rolebindings"),
    ("rbac.authorization.k8s.io", "roles"),
];

/// The bootstrap tables, for the test that holds them equal to the recorded roles.
#[doc(hidden)]
pub fn bootstrap_creates(role: &str) -> Option<Vec<(&'static str, &'static str)>> {
    match role {
        "edit" => Some(EDIT_CREATES.to_vec()),
        "admin" => Some(EDIT_CREATES.iter().chain(ADMIN_CREATES).copied().collect()),
        _ => None,
    }
}

/// What a tenant's ServiceAccount may create, per ClusterRole the check understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TenantGrants {
    /// The ClusterRole a tenant without its own `rbac.clusterRole` is bound to.
    default_role: String,
    edit: BTreeSet<(&'static str, &'static str)>,
    admin: BTreeSet<(&'static str, &'static str)>,
}

impl TenantGrants {
    pub(crate) fn new(platform: &Platform) -> Self {
        let granted = granted_resources(platform);
        let edit: BTreeSet<_> = EDIT_CREATES.iter().copied().chain(granted).collect();
        let admin = edit
            .iter()
            .copied()
            .chain(ADMIN_CREATES.iter().copied())
            .collect();
        Self {
            default_role: tenantry_core::resolve::default_cluster_role(platform),
            edit,
            admin,
        }
    }

    /// The creatable resources of `role`, when it is one whose rules are known offline.
    fn of(&self, role: &str) -> Option<&BTreeSet<(&'static str, &'static str)>> {
        match role {
            "edit" => Some(&self.edit),
            "admin" => Some(&self.admin),
            _ => None,
        }
    }

    /// The ClusterRole a tenant that names none is bound to.
    pub(crate) fn default_role(&self) -> &str {
        &self.default_role
    }

    /// The ClusterRole the tenant of `eval` is bound to.
    fn role_of<'a>(&'a self, eval: &Eval<'a>) -> &'a str {
        eval.ctx
            .tenant
            .and_then(|t| t.cluster_role.as_deref())
            .unwrap_or(&self.default_role)
    }

    /// Whether the check can judge a tenant bound to `role`.
    pub(crate) fn knows(&self, role: &str) -> bool {
        self.of(role).is_some()
    }
}

pub(crate) fn evaluate(grants: &TenantGrants, eval: &Eval<'_>, sink: &mut Sink) {
    let view = eval.view;
    // kustomize's own files (`kustomization.yaml`, components) are read by the build and
    // never reach the API server; the core group has no such kinds.
    let kustomize_file = view.group == "kustomize.config.k8s.io"
        || (view.group.is_empty() && matches!(view.kind, "Kustomization" | "Component"));
    if view.kind.is_empty() || kustomize_file {
        return;
    }
    let role = grants.role_of(eval);
    let Some(allowed) = grants.of(role) else {
        return;
    };
    let resource = resource_of(view.kind);
    if allowed.contains(&(view.group, resource.as_str())) {
        return;
    }
    let who = match eval.ctx.tenant {
        Some(t) => format!(
            "ServiceAccount {}/{}",
            t.namespaces.first().map_or(t.name.as_str(), String::as_str),
            t.service_account
        ),
        None => "the tenant's ServiceAccount".to_owned(),
    };
    let qualified = if view.group.is_empty() {
        resource
    } else {
        format!("{resource}.{}", view.group)
    };
    sink.deny(
        "tenant-rbac",
        "kind".to_owned(),
        format!(
            "Flux applies this as {who}, which may not create {qualified}: neither ClusterRole \
             {role} nor the platform's tenant roles grant it"
        ),
        format!(
            "Remove the {kind} from the deploy tree, or ask the platform to grant {qualified} \
             to tenants (`tenantRbac` in tenantry.yaml) if a tenant should manage it.",
            kind = view.kind
        ),
    );
}

/// The resource (plural) of a kind, as Kubernetes names it: lower case, regular English
/// plural. Every kind of the bootstrap roles and of the upstream CRDs Tenantry grants follows
/// it (a test holds it to the CRDs' own `spec.names.plural`), except `Endpoints`.
pub fn resource_of(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower == "endpoints" {
        return lower;
    }
    if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        return format!("{stem}ies");
    }
    if lower.ends_with('s')
        || lower.ends_with('x')
        || lower.ends_with("ch")
        || lower.ends_with("sh")
    {
        return format!("{lower}es");
    }
    format!("{lower}s")
}
