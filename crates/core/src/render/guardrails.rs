//! A tenant's share of the compiled guardrails: its `GuardrailParameters` and its bindings to
//! the per-tenant ValidatingAdmissionPolicies (`policies.vap.tenantParameters`).
//!
//! The policies that judge a tenant's own values (`allowed-registries`,
//! `restrict-network-policies`, `tenant-placement`'s node selector and tolerations,
//! `allowed-classes`, `flux-lockdown`'s ServiceAccount, kubeconfig and target namespaces,
//! `restrict-secret-stores`' OpenBao role and path) are platform-wide and printed by
//! `tenantry policy vap`; what makes them judge one tenant is a parameter object holding its
//! values and a binding to its namespaces. Those two belong to the tenant: they must appear
//! when it is onboarded and go when it is offboarded, or a new tenant is judged by no policy
//! (a webhook next to the policies must then keep those checks) and a removed tenant leaves
//! its bindings behind. So they are rendered here with the tenant's other objects, and every
//! consumer (GitOps tree, apply, operator, offboarding) converges and prunes them like the
//! rest.
//!
//! This module is the one builder of both objects: `tenantry policy vap --tenants` (in
//! `tenantry-policy`, which compiles the policies) calls it too, and a test there keeps
//! [`per_tenant_policies`] equal to the policies it compiles. It lives below the policy engine
//! because the renderer may not depend on it.
//!
//! The parameters are in the form the CEL compares (registry prefixes normalised by
//! [`RegistryPrefix`]), from the same resolved values the webhook and `tenantry check` judge
//! with, and the webhook reads the same objects back ([`GuardrailParams::from_object`]) so it
//! judges a tenant by its own values without a call on the request path.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tenantry_api::{
    MANAGED_BY, MANAGED_BY_LABEL,
    policies::PolicyConfig,
    tenant::{AllowedToleration, Classes, Placement},
};

use crate::registry::RegistryPrefix;

/// The group of the per-tenant parameters.
pub const PARAMS_GROUP: &str = "tenantry.dev";
/// The version of the per-tenant parameters.
pub const PARAMS_VERSION: &str = "v1alpha1";
/// `apiVersion` of the per-tenant parameters.
pub const PARAMS_API_VERSION: &str = "tenantry.dev/v1alpha1";
/// The kind of the per-tenant parameters (cluster-scoped).
pub const PARAMS_KIND: &str = "GuardrailParameters";
/// The resource (plural) of [`PARAMS_KIND`].
pub const PARAMS_PLURAL: &str = "guardrailparameters";
/// `apiVersion` of the bindings.
pub const BINDING_API_VERSION: &str = "admissionregistration.k8s.io/v1";
/// The kind of the bindings.
pub const BINDING_KIND: &str = "ValidatingAdmissionPolicyBinding";
/// The prefix of every policy, binding and parameter name Tenantry renders.
pub const NAME_PREFIX: &str = "tenantry-";

/// The per-tenant policies the platform runs, by name without the prefix
/// (`<policy id><suffix>`), in the order `tenantry policy vap` compiles them.
pub fn per_tenant_policies(policies: &PolicyConfig) -> Vec<&'static str> {
    [
        (policies.allowed_registries.enabled, "allowed-registries"),
        (
            policies.restrict_secret_stores.enabled,
            "restrict-secret-stores-tenant",
        ),
        (
            policies.restrict_network_policies.enabled,
            "restrict-network-policies",
        ),
        (policies.tenant_placement.enabled, "tenant-placement-tenant"),
        (policies.allowed_classes.enabled, "allowed-classes"),
        (policies.flux_lockdown.enabled, "flux-lockdown-tenant"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// The name of a tenant's parameters.
pub fn params_name(prefix: &str, tenant: &str) -> String {
    format!("{prefix}{tenant}")
}

/// The name of a tenant's binding to `policy` (the policy's full name): one-to-one, since
/// tenant names are dot-free DNS labels.
pub fn binding_name(policy: &str, tenant: &str) -> String {
    format!("{policy}.{tenant}")
}

/// `<labelPrefix>/vap-params-for`: whose parameters these are, also when they are printed
/// without the tenant label (`policy vap --tenants`).
pub fn params_annotation(label_prefix: &str) -> String {
    format!("{label_prefix}/vap-params-for")
}

/// One tenant's values as the compiled policies read them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GuardrailParams {
    /// The tenant.
    pub tenant: String,
    /// Its `registries`, as declared (for messages).
    pub registries: Vec<String>,
    /// Its `placement.nodeSelector`, in the engine's (key) order.
    pub node_selector: BTreeMap<String, String>,
    /// Its resolved `placement.tolerations`: `Some(None)` when it has no list (any keyed
    /// toleration, as the engine reads it); `None` when an object written before tolerations
    /// were parameters is read back, so the webhook keeps the platform's bounds rather than
    /// reading "unrestricted".
    pub tolerations: Option<Option<Vec<AllowedToleration>>>,
    /// Its resolved `classes` (a kind left out is not restricted, as the engine reads it);
    /// `None` when an object written before classes were parameters is read back, so the
    /// webhook keeps the platform's bounds rather than reading "unrestricted".
    pub classes: Option<Classes>,
    /// Its namespaces, primary first (the namespaces its network policies may name besides
    /// the peers and the platform's); `None` when an object written before they were
    /// parameters is read back.
    pub namespaces: Option<Vec<String>>,
    /// Its `network.allowFrom` as resolved (the gateway's namespace included): further
    /// namespaces its network policies may name; `None` when an object written before they
    /// were parameters is read back, so the webhook keeps reading none.
    pub network_peers: Option<Vec<String>>,
    /// Who its Flux objects reconcile as; `None` when an object written before these were
    /// parameters is read back, so the webhook keeps the platform's settings.
    pub flux: Option<TenantFlux>,
}

/// Who a tenant's Flux objects may reconcile as (`flux-lockdown`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TenantFlux {
    /// The tenant's ServiceAccount, the only `serviceAccountName` of its Kustomizations and
    /// HelmReleases.
    pub service_account: String,
    /// The Secret holding its proxy kubeconfig, the only `kubeConfig` they may use; `None`:
    /// they reconcile in-cluster, without one.
    pub proxy_kubeconfig_secret: Option<String>,
}

impl GuardrailParams {
    /// The values of a tenant, from its resolved `registries`, `placement`, `classes`,
    /// `namespaces` and `network.allowFrom`.
    pub fn new(
        tenant: &str,
        registries: &[String],
        placement: &Placement,
        classes: &Classes,
        network: &TenantNetwork<'_>,
    ) -> Self {
        Self {
            tenant: tenant.to_owned(),
            registries: registries.to_vec(),
            node_selector: placement.node_selector.clone().unwrap_or_default(),
            tolerations: Some(placement.tolerations.clone()),
            classes: Some(classes.clone()),
            namespaces: Some(network.namespaces.to_vec()),
            network_peers: Some(network.peers.to_vec()),
            flux: None,
        }
    }

    /// With who the tenant's Flux objects reconcile as.
    #[must_use]
    pub fn with_flux(mut self, flux: TenantFlux) -> Self {
        self.flux = Some(flux);
        self
    }

    /// The parameter object, named `name`, labelled managed-by Tenantry and annotated with
    /// its tenant ([`params_annotation`]).
    pub fn to_object(&self, label_prefix: &str, name: &str) -> Value {
        let registry_prefixes: Vec<String> = self
            .registries
            .iter()
            .map(|r| RegistryPrefix::parse(r).to_string())
            .collect();
        let node_selector: Vec<Value> = self
            .node_selector
            .iter()
            .map(|(key, value)| json!({"key": key, "value": value}))
            .collect();
        let mut object = json!({
            "apiVersion": PARAMS_API_VERSION,
            "kind": PARAMS_KIND,
            "metadata": {
                "name": name,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY},
                "annotations": {params_annotation(label_prefix): self.tenant},
            },
            // Values in the form the CEL compares (registry prefixes normalised as
            // `RegistryPrefix` reads them), so no resolution or normalisation is written twice.
            "spec": {
                "tenant": self.tenant,
                "registries": self.registries,
                "registryPrefixes": registry_prefixes,
                "nodeSelector": node_selector,
                // `{allowed: [...]}` as the tenant spec writes `placement.tolerations`, or `{}`
                // when the tenant has no list (any keyed toleration).
                "tolerations": match self.tolerations.clone().flatten() {
                    Some(list) => json!({"allowed": list}),
                    None => json!({}),
                },
                // `Classes` as the tenant spec writes it: a kind is present only when the
                // tenant is restricted to a list (`{allowed, default?}`).
                "classes": serde_json::to_value(self.classes.clone().unwrap_or_default())
                    .unwrap_or_else(|_| json!({})),
                "namespaces": self.namespaces.clone().unwrap_or_default(),
                "networkPeers": self.network_peers.clone().unwrap_or_default(),
            },
        });
        // `{serviceAccount, proxyKubeconfigSecret?}`; left out when not given (the policy then
        // reads the tenant's name as its ServiceAccount and no proxy secret).
        if let Some(flux) = &self.flux {
            let mut value = json!({"serviceAccount": flux.service_account});
            if let Some(secret) = &flux.proxy_kubeconfig_secret {
                value["proxyKubeconfigSecret"] = json!(secret);
            }
            object["spec"]["flux"] = value;
        }
        object
    }

    /// Read a parameter object back (the webhook's watch). `None` when it is not one
    /// (no `spec.tenant`); unreadable entries are skipped rather than guessed.
    pub fn from_object(object: &Value) -> Option<Self> {
        let spec = &object["spec"];
        let tenant = spec["tenant"].as_str().filter(|t| !t.is_empty())?;
        let registries = spec["registries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect();
        let node_selector = spec["nodeSelector"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|q| {
                Some((
                    q["key"].as_str()?.to_owned(),
                    q["value"].as_str()?.to_owned(),
                ))
            })
            .collect();
        // Classes that do not read (the CRD's schema keeps such objects out) are left to the
        // platform's bounds, never read as "unrestricted".
        let classes = spec
            .get("classes")
            .and_then(|c| serde_json::from_value::<Classes>(c.clone()).ok());
        // Likewise tolerations: absent or unreadable, the platform's bounds stay.
        let tolerations = spec
            .get("tolerations")
            .filter(|t| t.is_object())
            .and_then(|t| match t.get("allowed") {
                None => Some(None),
                Some(list) => serde_json::from_value::<Vec<AllowedToleration>>(list.clone())
                    .ok()
                    .map(Some),
            });
        // Namespaces and peers: absent (an older object), not read at all.
        let strings = |field: &str| {
            spec.get(field)
                .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
        };
        Some(Self {
            tenant: tenant.to_owned(),
            registries,
            node_selector,
            tolerations,
            classes,
            namespaces: strings("namespaces"),
            network_peers: strings("networkPeers"),
            // Absent (an older object) or without a ServiceAccount: not read at all.
            flux: spec
                .get("flux")
                .and_then(|f| Some((f["serviceAccount"].as_str()?, f)))
                .filter(|(sa, _)| !sa.is_empty())
                .map(|(sa, f)| TenantFlux {
                    service_account: sa.to_owned(),
                    proxy_kubeconfig_secret: f["proxyKubeconfigSecret"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                }),
        })
    }
}

/// The namespaces a tenant's network policies may name besides the platform's shared ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct TenantNetwork<'a> {
    /// The tenant's namespaces, primary first.
    pub namespaces: &'a [String],
    /// Its resolved `network.allowFrom`.
    pub peers: &'a [String],
}

/// What a binding selects and does, besides its tenant.
#[derive(Debug, Clone, Copy)]
pub struct BindingOptions<'a> {
    /// `validationActions`.
    pub actions: &'a [&'a str],
    /// Narrow to this one namespace as well (`policy vap --namespace`).
    pub namespace: Option<&'a str>,
}

impl Default for BindingOptions<'_> {
    fn default() -> Self {
        Self {
            actions: &["Deny"],
            namespace: None,
        }
    }
}

/// A tenant's binding of the policy `policy` (its full name) to the namespaces carrying
/// `tenant_label: tenant`, reading the parameters `params`; it refuses while they are missing
/// (`parameterNotFoundAction: Deny`: fail closed), so they must be applied first.
pub fn tenant_binding(
    policy: &str,
    tenant: &str,
    tenant_label: &str,
    params: &str,
    opts: BindingOptions<'_>,
) -> Value {
    let mut match_labels = serde_json::Map::new();
    if let Some(ns) = opts.namespace {
        match_labels.insert("kubernetes.io/metadata.name".into(), json!(ns));
    }
    match_labels.insert(tenant_label.to_owned(), json!(tenant));
    json!({
        "apiVersion": BINDING_API_VERSION,
        "kind": BINDING_KIND,
        "metadata": {
            "name": binding_name(policy, tenant),
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
        },
        "spec": {
            "policyName": policy,
            "validationActions": opts.actions,
            "matchResources": {"namespaceSelector": {"matchLabels": match_labels}},
            "paramRef": {"name": params, "parameterNotFoundAction": "Deny"},
        },
    })
}

/// A tenant's binding of a per-tenant policy, read back from the cluster (the webhook's
/// watch): what [`tenant_binding`] writes, reduced to what decides whether the API server
/// judges the tenant's namespaces with the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantBinding {
    /// The policy's full name.
    pub policy: String,
    /// The tenant whose namespaces it selects.
    pub tenant: String,
    /// The parameters object it reads.
    pub params: String,
    /// It refuses (`validationActions` has `Deny`); a `[Warn, Audit]` binding only reports.
    pub denies: bool,
}

impl TenantBinding {
    /// Read a binding. `None` unless it selects exactly one tenant's namespaces the way
    /// [`tenant_binding`] does (the namespaces carrying `tenant_label: <tenant>`, no other
    /// selector or resource narrowing) with parameters named by `paramRef.name`: a binding
    /// narrowed to one namespace (`policy vap --namespace`) or to some objects does not
    /// judge the whole tenant, so it must not stand for it.
    pub fn from_object(object: &Value, tenant_label: &str) -> Option<Self> {
        let spec = &object["spec"];
        let matching = &spec["matchResources"];
        let selector = &matching["namespaceSelector"];
        let labels = selector["matchLabels"].as_object()?;
        let [(key, tenant)] = labels.iter().collect::<Vec<_>>()[..] else {
            return None;
        };
        let empty = |v: &Value| match v {
            Value::Null => true,
            Value::Array(items) => items.is_empty(),
            Value::Object(fields) => fields.values().all(|f| match f {
                Value::Null => true,
                Value::Array(items) => items.is_empty(),
                Value::Object(inner) => inner.is_empty(),
                _ => false,
            }),
            _ => false,
        };
        let narrowed = !empty(&selector["matchExpressions"])
            || !empty(&matching["objectSelector"])
            || !empty(&matching["resourceRules"])
            || !empty(&matching["excludeResourceRules"])
            || !spec["paramRef"]["selector"].is_null();
        let tenant = tenant.as_str().filter(|t| !t.is_empty())?;
        if key != tenant_label || narrowed {
            return None;
        }
        Some(Self {
            policy: spec["policyName"].as_str()?.to_owned(),
            tenant: tenant.to_owned(),
            params: spec["paramRef"]["name"].as_str()?.to_owned(),
            denies: spec["validationActions"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "Deny")),
        })
    }
}

/// Render the tenant's parameters, then its bindings (the order they must be applied in).
pub(crate) fn render(r: &mut super::Renderer<'_>) {
    let platform = &r.ctx.platform;
    if !platform.policies.vap.tenant_parameters {
        return;
    }
    let policies = per_tenant_policies(&platform.policies);
    if policies.is_empty() {
        return;
    }
    let tenant = r.t.name.clone();
    let params = params_name(NAME_PREFIX, &tenant);
    let network = TenantNetwork {
        namespaces: &r.t.namespaces,
        peers: &r.t.network.allow_from,
    };
    let object = GuardrailParams::new(
        &tenant,
        &r.t.registries,
        &r.t.placement,
        &r.t.classes,
        &network,
    )
    .with_flux(TenantFlux {
        // The tenant's ServiceAccount is named after it.
        service_account: tenant.clone(),
        proxy_kubeconfig_secret: r.t.delivery.proxy_kubeconfig_secret().map(str::to_owned),
    })
    .to_object(&platform.label_prefix, &params);
    r.push_labelled(
        crate::object::Layer::Guardrails,
        (PARAMS_API_VERSION, PARAMS_KIND),
        &params,
        object,
    );
    let actions: &[&str] = if platform.policies.vap.warn_only {
        &["Warn", "Audit"]
    } else {
        &["Deny"]
    };
    for policy in policies {
        let policy = format!("{NAME_PREFIX}{policy}");
        let binding = tenant_binding(
            &policy,
            &tenant,
            r.ctx.tenant_label(),
            &params,
            BindingOptions {
                actions,
                namespace: None,
            },
        );
        r.push_labelled(
            crate::object::Layer::Guardrails,
            (BINDING_API_VERSION, BINDING_KIND),
            &binding_name(&policy, &tenant),
            binding,
        );
    }
}
