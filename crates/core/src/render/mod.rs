//! Tenant → objects: the one translation every other part of Tenantry reuses.
//!
//! Rendering is a pure, total function of a [`ResolvedTenant`] and its platform: no I/O, no
//! clock, no randomness, no map iteration order leaking into output. The same input always
//! yields byte-identical files, which is what lets `onboard` say `unchanged` and lets a
//! platform repository review a tenant change as a small diff.
//!
//! Objects come out in apply order (see [`Layer`]), and within a layer in namespace order
//! (primary first). Every object carries `app.kubernetes.io/managed-by: tenantry` and the
//! tenant label, which is how the cluster side finds, prunes and protects them.

mod delivery;
pub mod guardrails;
mod network;
pub mod platform;
pub mod scaffold;
mod secrets;

pub use network::{ALLOW_EGRESS, ALLOW_INGRESS, CILIUM_ISOLATION, DEFAULT_DENY};
pub use secrets::{OPENBAO_POLICY_FILE, OPENBAO_ROLE_FILE, policy_name, role_name};

use std::collections::BTreeMap;

use k8s_openapi::{
    Resource,
    api::{
        core::v1::{
            LimitRange, LimitRangeItem, LimitRangeSpec, LocalObjectReference, Namespace,
            ResourceQuota, ResourceQuotaSpec, ScopeSelector, ScopedResourceSelectorRequirement,
            ServiceAccount,
        },
        rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use serde::Serialize;
use serde_json::Value;
use tenantry_api::{
    MANAGED_BY, MANAGED_BY_LABEL, Quantity, platform::GrantScope, tenant::QuotaScope,
};

use crate::{
    object::{DesiredObject, Layer, Rendered},
    resolve::{PlatformContext, ResolvedTenant},
};

/// Name of the ResourceQuota in each tenant namespace.
pub const QUOTA_NAME: &str = "tenantry-quota";
/// Name of the ResourceQuota that admits no pod of a PriorityClass the tenant may not use.
pub const PRIORITY_QUOTA_NAME: &str = "tenantry-priority-classes";
/// Name of the LimitRange in each tenant namespace.
pub const LIMITS_NAME: &str = "tenantry-limits";

/// Render every object and artifact for one resolved tenant.
pub fn render(ctx: &PlatformContext, t: &ResolvedTenant) -> Rendered {
    let mut r = Renderer {
        ctx,
        t,
        objects: Vec::with_capacity(8 * t.namespaces.len() + 4),
    };
    r.namespaces();
    r.quotas();
    r.limit_ranges();
    guardrails::render(&mut r);
    r.role_bindings();
    r.grants();
    r.service_accounts();
    network::render(&mut r);
    secrets::render(&mut r);
    delivery::render(&mut r);
    let artifacts = secrets::openbao_artifacts(ctx, t);
    Rendered {
        tenant: t.name.clone(),
        objects: r.objects,
        artifacts,
    }
}

pub(crate) struct Renderer<'a> {
    pub(crate) ctx: &'a PlatformContext,
    pub(crate) t: &'a ResolvedTenant,
    pub(crate) objects: Vec<DesiredObject>,
}

impl Renderer<'_> {
    /// The labels every object carries.
    pub(crate) fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
            (self.ctx.tenant_label().to_owned(), self.t.name.clone()),
        ])
    }

    pub(crate) fn meta(&self, name: &str, namespace: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: namespace.map(str::to_owned),
            labels: Some(self.labels()),
            ..ObjectMeta::default()
        }
    }

    /// Add a typed built-in object.
    pub(crate) fn push_typed<K: Resource + Serialize>(
        &mut self,
        layer: Layer,
        namespace: Option<&str>,
        name: &str,
        object: &K,
    ) {
        // Serializing k8s-openapi types to a JSON value cannot fail: they contain only
        // strings, numbers, maps and lists.
        let body = match serde_json::to_value(object) {
            // k8s-openapi serializes fields in struct order; put identity first, as
            // `kubectl` and every hand-written manifest do.
            Ok(Value::Object(mut fields)) => {
                let mut ordered = serde_json::Map::with_capacity(fields.len());
                for key in ["apiVersion", "kind", "metadata"] {
                    if let Some(v) = fields.shift_remove(key) {
                        ordered.insert(key.to_owned(), v);
                    }
                }
                if let Some(Value::Object(meta)) = ordered.get_mut("metadata") {
                    let mut entries: Vec<(String, Value)> =
                        std::mem::take(meta).into_iter().collect();
                    entries.sort_by_key(|(k, _)| metadata_rank(k));
                    meta.extend(entries);
                }
                ordered.extend(fields);
                Value::Object(ordered)
            }
            other => other.unwrap_or(Value::Null),
        };
        self.objects.push(DesiredObject {
            layer,
            api_version: K::API_VERSION,
            kind: K::KIND,
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            body,
        });
    }

    /// Add a custom-resource object built as JSON. `spec` is the whole object minus
    /// `apiVersion`, `kind` and `metadata`.
    pub(crate) fn push_custom(
        &mut self,
        layer: Layer,
        (api_version, kind): (&'static str, &'static str),
        namespace: Option<&str>,
        name: &str,
        rest: Value,
    ) {
        let mut body = serde_json::Map::with_capacity(4);
        body.insert("apiVersion".into(), Value::from(api_version));
        body.insert("kind".into(), Value::from(kind));
        let mut meta = serde_json::Map::with_capacity(3);
        meta.insert("name".into(), Value::from(name));
        if let Some(ns) = namespace {
            meta.insert("namespace".into(), Value::from(ns));
        }
        meta.insert(
            "labels".into(),
            Value::Object(
                self.labels()
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            ),
        );
        body.insert("metadata".into(), Value::Object(meta));
        if let Value::Object(fields) = rest {
            body.extend(fields);
        }
        self.objects.push(DesiredObject {
            layer,
            api_version,
            kind,
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            body: Value::Object(body),
        });
    }

    /// Add a cluster-scoped object built whole as JSON (its `metadata.labels` already holding
    /// what it shares with other printers of it), adding the tenant label.
    pub(crate) fn push_labelled(
        &mut self,
        layer: Layer,
        (api_version, kind): (&'static str, &'static str),
        name: &str,
        mut body: Value,
    ) {
        if let Some(labels) = body["metadata"]["labels"].as_object_mut() {
            labels.insert(
                self.ctx.tenant_label().to_owned(),
                Value::from(self.t.name.as_str()),
            );
        }
        self.objects.push(DesiredObject {
            layer,
            api_version,
            kind,
            namespace: None,
            name: name.to_owned(),
            body,
        });
    }

    fn namespaces(&mut self) {
        let level = self.t.pod_security.as_str();
        for ns in &self.t.namespaces {
            let mut labels = self.labels();
            // Enforce the tenant's level; audit and warn at restricted even for baseline
            // tenants, so they see what they would have to change to harden.
            for (mode, value) in [
                ("enforce", level),
                ("audit", "restricted"),
                ("warn", "restricted"),
            ] {
                labels.insert(
                    format!("pod-security.kubernetes.io/{mode}"),
                    value.to_owned(),
                );
                labels.insert(
                    format!("pod-security.kubernetes.io/{mode}-version"),
                    "latest".to_owned(),
                );
            }
            if self.t.mesh {
                let m = &self.ctx.platform.mesh_label;
                labels.insert(m.key.clone(), m.value.clone());
            }
            if self.t.pull_secret {
                let l = &self.ctx.platform.pull_secret.namespace_label;
                labels.insert(l.key.clone(), l.value.clone());
            }
            let annotations = placement_annotations(&self.t.placement);
            let object = Namespace {
                metadata: ObjectMeta {
                    name: Some(ns.clone()),
                    labels: Some(labels),
                    annotations: (!annotations.is_empty()).then_some(annotations),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            };
            self.push_typed(Layer::Namespace, None, ns, &object);
        }
    }

    fn quotas(&mut self) {
        let priority = self.t.classes.priority.as_ref();
        if let Some(allowed) = priority.map(|p| &p.allowed) {
            self.priority_class_quotas(allowed);
        }
        if self.t.quota.is_empty() {
            return;
        }
        let tenant_wide = self.t.quota_scope == QuotaScope::Tenant;
        let mut hard = quantities(&self.t.quota);
        // The priority-class quota is Tenantry's, not the tenant's: it does not use up the
        // tenant's allowance of ResourceQuotas.
        if priority.is_some()
            && let Some(count) = hard.get_mut("resourcequotas")
            && let Ok(n) = count.0.parse::<u64>()
        {
            count.0 = (n + 1).to_string();
        }
        // The tenant-wide limits ride along, so `apply` (and the operator) can rebalance the
        // shares from live usage with nothing but the desired and live objects.
        let annotations = tenant_wide.then(|| {
            let total: BTreeMap<&str, &str> =
                self.t.quota.iter().map(|(k, q)| (*k, q.as_str())).collect();
            BTreeMap::from([(
                crate::quota::tenant_quota_annotation(&self.ctx.platform.label_prefix),
                serde_json::to_string(&total).unwrap_or_default(),
            )])
        });
        let shares =
            tenant_wide.then(|| crate::quota::equal_shares(&self.t.quota, &self.t.namespaces));
        for ns in &self.t.namespaces {
            let mut metadata = self.meta(QUOTA_NAME, Some(ns));
            metadata.annotations.clone_from(&annotations);
            let mut hard = hard.clone();
            for (key, share) in shares.iter().filter_map(|s| s.get(ns)).flatten() {
                hard.insert(key.clone(), share.to_k8s());
            }
            let object = ResourceQuota {
                metadata,
                spec: Some(ResourceQuotaSpec {
                    hard: Some(hard),
                    ..ResourceQuotaSpec::default()
                }),
                ..ResourceQuota::default()
            };
            self.push_typed(Layer::Quota, Some(ns), QUOTA_NAME, &object);
        }
    }

    /// Defence in depth behind the `allowed-classes` guardrail: a quota of zero pods over
    /// every PriorityClass not allowed, so the API server's own quota admission refuses such a
    /// pod even where the webhook is not running. `Exists` keeps pods that name no class (the
    /// cluster default) outside the scope: on its own, `NotIn` would match them too.
    fn priority_class_quotas(&mut self, allowed: &[String]) {
        let mut expressions = vec![ScopedResourceSelectorRequirement {
            scope_name: "PriorityClass".to_owned(),
            operator: "Exists".to_owned(),
            values: None,
        }];
        if !allowed.is_empty() {
            expressions.push(ScopedResourceSelectorRequirement {
                scope_name: "PriorityClass".to_owned(),
                operator: "NotIn".to_owned(),
                values: Some(allowed.to_vec()),
            });
        }
        for ns in &self.t.namespaces {
            let object = ResourceQuota {
                metadata: self.meta(PRIORITY_QUOTA_NAME, Some(ns)),
                spec: Some(ResourceQuotaSpec {
                    hard: Some(BTreeMap::from([(
                        "pods".to_owned(),
                        k8s_openapi::apimachinery::pkg::api::resource::Quantity("0".to_owned()),
                    )])),
                    scope_selector: Some(ScopeSelector {
                        match_expressions: Some(expressions.clone()),
                    }),
                    ..ResourceQuotaSpec::default()
                }),
                ..ResourceQuota::default()
            };
            self.push_typed(Layer::Quota, Some(ns), PRIORITY_QUOTA_NAME, &object);
        }
    }

    fn limit_ranges(&mut self) {
        let l = &self.t.limits;
        if l.default.is_empty() && l.default_request.is_empty() && l.max.is_empty() {
            return;
        }
        let non_empty = |v: &[(&'static str, Quantity)]| (!v.is_empty()).then(|| quantities(v));
        let item = LimitRangeItem {
            type_: "Container".to_owned(),
            default: non_empty(&l.default),
            default_request: non_empty(&l.default_request),
            max: non_empty(&l.max),
            ..LimitRangeItem::default()
        };
        for ns in &self.t.namespaces {
            let object = LimitRange {
                metadata: self.meta(LIMITS_NAME, Some(ns)),
                spec: Some(LimitRangeSpec {
                    limits: vec![item.clone()],
                }),
            };
            self.push_typed(Layer::Limits, Some(ns), LIMITS_NAME, &object);
        }
    }

    /// The tenant's ServiceAccount in every tenant namespace: Flux impersonates the one in
    /// the primary namespace, Argo CD the one in each destination namespace.
    fn tenant_subjects(&self) -> Vec<Subject> {
        let mut subjects: Vec<Subject> = self
            .t
            .namespaces
            .iter()
            .map(|ns| Subject {
                kind: "ServiceAccount".to_owned(),
                name: self.t.name.clone(),
                namespace: Some(ns.clone()),
                api_group: None,
            })
            .collect();
        subjects.extend(self.t.owners.iter().map(|o| {
            Subject {
                kind: o.kind.as_str().to_owned(),
                name: o.name.clone(),
                namespace: o.namespace.clone(),
                api_group: (o.kind != tenantry_api::tenant::OwnerKind::ServiceAccount)
                    .then(|| "rbac.authorization.k8s.io".to_owned()),
            }
        }));
        subjects
    }

    fn role_bindings(&mut self) {
        let name = role_binding_name(&self.t.cluster_role);
        let subjects = self.tenant_subjects();
        for ns in &self.t.namespaces {
            let object = RoleBinding {
                metadata: self.meta(&name, Some(ns)),
                role_ref: cluster_role_ref(&self.t.cluster_role),
                subjects: Some(subjects.clone()),
            };
            self.push_typed(Layer::Rbac, Some(ns), &name, &object);
        }
    }

    fn grants(&mut self) {
        let primary = self.t.primary_namespace().to_owned();
        for (grant_name, grant) in &self.t.grants {
            let subject = Subject {
                kind: "ServiceAccount".to_owned(),
                name: grant
                    .service_account
                    .clone()
                    .unwrap_or_else(|| self.t.name.clone()),
                namespace: Some(primary.clone()),
                api_group: None,
            };
            for binding in &grant.bindings {
                let role = &binding.cluster_role;
                match binding.scope {
                    GrantScope::TenantNamespaces => {
                        let name = grant_binding_name(&self.t.name, grant_name, role);
                        for ns in &self.t.namespaces {
                            let object = RoleBinding {
                                metadata: self.meta(&name, Some(ns)),
                                role_ref: cluster_role_ref(role),
                                subjects: Some(vec![subject.clone()]),
                            };
                            self.push_typed(Layer::Rbac, Some(ns), &name, &object);
                        }
                    }
                    GrantScope::Namespace => {
                        let ns = binding.namespace.clone().unwrap_or_default();
                        let name = grant_binding_name(&self.t.name, grant_name, role);
                        let object = RoleBinding {
                            metadata: self.meta(&name, Some(&ns)),
                            role_ref: cluster_role_ref(role),
                            subjects: Some(vec![subject.clone()]),
                        };
                        self.push_typed(Layer::Rbac, Some(&ns), &name, &object);
                    }
                    GrantScope::Cluster => {
                        let name = grant_binding_name(&self.t.name, grant_name, role);
                        let object = ClusterRoleBinding {
                            metadata: self.meta(&name, None),
                            role_ref: cluster_role_ref(role),
                            subjects: Some(vec![subject.clone()]),
                        };
                        self.push_typed(Layer::Rbac, None, &name, &object);
                    }
                }
            }
        }
    }

    fn service_accounts(&mut self) {
        let pull_secrets = self.t.pull_secret.then(|| {
            vec![LocalObjectReference {
                name: self.ctx.platform.pull_secret.name.clone(),
            }]
        });
        for ns in &self.t.namespaces {
            let object = ServiceAccount {
                metadata: self.meta(&self.t.name, Some(ns)),
                // Workloads that need an API token must ask for one explicitly; nothing in a
                // tenant namespace gets the tenant's identity by accident.
                automount_service_account_token: Some(false),
                image_pull_secrets: pull_secrets.clone(),
                secrets: None,
            };
            self.push_typed(Layer::ServiceAccount, Some(ns), &self.t.name, &object);
        }
    }
}

/// `name` and `namespace` first in metadata, as people write it.
fn metadata_rank(key: &str) -> u8 {
    match key {
        "name" => 0,
        "namespace" => 1,
        "labels" => 2,
        "annotations" => 3,
        _ => 4,
    }
}

/// The namespace annotations of Kubernetes' own placement admission plugins, for clusters that
/// enable them: `PodNodeSelector` adds the tenant's node labels to every pod (and refuses a
/// pod that contradicts them), `PodTolerationRestriction` refuses a toleration outside the
/// list (Kubernetes' node-condition taints included: the API server and the DaemonSet
/// controller add tolerations for them to pods). They repeat what `tenant-placement`
/// enforces, in the API server itself; a cluster without those plugins ignores them.
fn placement_annotations(placement: &tenantry_api::tenant::Placement) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(selector) = placement.node_selector.as_ref().filter(|s| !s.is_empty()) {
        let pairs: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.insert(
            "scheduler.alpha.kubernetes.io/node-selector".to_owned(),
            pairs.join(","),
        );
    }
    if let Some(tolerations) = &placement.tolerations {
        let list: Vec<Value> = tolerations
            .iter()
            .map(|t| {
                let mut entry = serde_json::Map::new();
                if !t.key.is_empty() {
                    entry.insert("key".into(), Value::from(t.key.as_str()));
                }
                if let Some(op) = t.operator {
                    entry.insert(
                        "operator".into(),
                        serde_json::to_value(op).unwrap_or_default(),
                    );
                }
                if let Some(value) = &t.value {
                    entry.insert("value".into(), Value::from(value.as_str()));
                }
                if let Some(effect) = t.effect {
                    entry.insert("effect".into(), Value::from(effect.as_str()));
                }
                Value::Object(entry)
            })
            .chain(crate::placement::NODE_CONDITION_TAINTS.iter().map(|key| {
                serde_json::json!({"key": format!("node.kubernetes.io/{key}"), "operator": "Exists"})
            }))
            .collect();
        out.insert(
            "scheduler.alpha.kubernetes.io/tolerationsWhitelist".to_owned(),
            Value::Array(list).to_string(),
        );
    }
    out
}

fn quantities(
    values: &[(&'static str, Quantity)],
) -> BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity> {
    values
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.to_k8s()))
        .collect()
}

fn cluster_role_ref(name: &str) -> RoleRef {
    RoleRef {
        api_group: Some("rbac.authorization.k8s.io".to_owned()),
        kind: "ClusterRole".to_owned(),
        name: name.to_owned(),
    }
}

/// The tenant's RoleBinding is named after its ClusterRole: `roleRef` is immutable, so a
/// change of role must create a new binding (and prune the old) rather than patch one.
pub fn role_binding_name(cluster_role: &str) -> String {
    format!("tenantry-{}", sanitize(cluster_role))
}

/// A grant's binding name: `tenantry.<tenant>.<grant>.<clusterRole>`.
///
/// It must be one-to-one, because grant bindings land in shared namespaces and at cluster
/// scope where every tenant's bindings meet: joined by `-`, tenant `a` with grant `b-c` and
/// tenant `a-b` with grant `c` would share one ClusterRoleBinding, and one tenant's apply
/// or offboard would take over or delete the other's. Tenant and grant names are DNS labels
/// (no `.`), so splitting at the first two dots recovers all three parts; the role is kept
/// verbatim (RBAC names allow `.` and `:`) for the same reason. The tenant's own
/// RoleBinding starts `tenantry-` (see [`role_binding_name`]), a grant's `tenantry.`, so
/// they cannot meet either.
pub fn grant_binding_name(tenant: &str, grant: &str, cluster_role: &str) -> String {
    format!("tenantry.{tenant}.{grant}.{cluster_role}")
}

fn sanitize(role: &str) -> String {
    role.replace([':', '_'], "-").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn tenants_and_grants_that_hyphens_would_merge_get_distinct_bindings() {
        assert_ne!(
            grant_binding_name("a", "b-c", "view"),
            grant_binding_name("a-b", "c", "view")
        );
        assert_ne!(
            grant_binding_name("a", "b", "c-view"),
            grant_binding_name("a", "b-c", "view")
        );
        assert!(!grant_binding_name("a", "b", "edit").starts_with(&role_binding_name("")));
    }

    fn dns_label() -> impl Strategy<Value = String> {
        "[a-z]([a-z0-9-]{0,6}[a-z0-9])?"
    }

    proptest! {
        /// Different (tenant, grant, role) never share a binding name or a file name, and
        /// every name is a valid RBAC name.
        #[test]
        fn grant_binding_names_and_files_are_one_to_one(
            a in (dns_label(), dns_label(), "[a-zA-Z0-9:._-]{1,12}"),
            b in (dns_label(), dns_label(), "[a-zA-Z0-9:._-]{1,12}"),
        ) {
            let name = |t: &(String, String, String)| grant_binding_name(&t.0, &t.1, &t.2);
            let file = |t: &(String, String, String)| crate::object::DesiredObject {
                api_version: "rbac.authorization.k8s.io/v1",
                kind: "ClusterRoleBinding",
                namespace: None,
                name: name(t),
                layer: Layer::Rbac,
                body: serde_json::Value::Null,
            }
            .file_name();
            prop_assert!(crate::names::rbac_name_problem(&name(&a)).is_none(), "{}", name(&a));
            if a != b {
                prop_assert_ne!(name(&a), name(&b));
                prop_assert_ne!(file(&a), file(&b));
            }
        }
    }
}
