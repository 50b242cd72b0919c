//! The guardrails the API server can enforce itself, compiled to ValidatingAdmissionPolicy.
//!
//! A validating webhook is a single point of failure: while it is down, `failurePolicy: Fail`
//! stops every tenant deploy and `Ignore` lets everything in. ValidatingAdmissionPolicy (CEL,
//! evaluated inside the API server) has neither problem, so every check whose verdict depends
//! only on the object, its namespace's labels and the platform's configuration is compiled
//! here, from the same [`Engine`] the webhook and `tenantry check` run: which policies are on,
//! the Pod Security level and version (an override, or the namespace's labels read by
//! upstream's rules), the placement bounds, the reconcilers exempt from
//! `restrict-secret-stores`. What is not compiled, because it needs a parser CEL does not
//! have, is listed by [`unsupported`] with the reason, and stays with the webhook.
//!
//! Checks against a tenant's own values (`allowed-registries`, `restrict-network-policies`,
//! `tenant-placement`'s `node-selector` and `tolerations`, `allowed-classes`, and
//! `flux-lockdown`'s ServiceAccount, kubeconfig and target namespaces, `restrict-secret-stores`'
//! OpenBao role and path) are one policy
//! per engine policy with a `paramKind`
//! plus, per tenant, a parameter object and a binding to the namespaces carrying the tenant
//! label with that tenant's name ([`generate_tenants`], `policy vap --tenants`).
//! The parameters are the engine's [`TenantInfo`] as the resolver built it (platform defaults
//! folded in by the code `check` and the webhook use), already normalised where the CEL
//! compares (registry prefixes as [`RegistryPrefix`] reads them), so no resolution is written
//! twice. They are a small cluster-scoped custom kind ([`params_crd`]) rather than ConfigMaps:
//! a cluster-scoped kind is out of reach of every tenant role (all namespaced), its schema
//! gives the CEL typed lists instead of strings to split, and a core `paramKind` is broken in
//! the API server (kubernetes/kubernetes#130887: once no binding names ConfigMap for a
//! second, its parameter informer is gone until a restart, so every later lookup fails or,
//! worse, reads a stale value; custom kinds are unaffected, which the differential test
//! showed on its second run). A binding refuses when its parameters are missing
//! (`parameterNotFoundAction: Deny`). The parameter object and the bindings are built by
//! `tenantry_core::render::guardrails`, the one builder `render` also uses when the platform
//! renders them with each tenant (`policies.vap.tenantParameters`); core may not depend on
//! this crate, so the per-tenant policy names live there and a test here keeps them equal to
//! the ones compiled. A webhook next to the policies leaves these checks out per tenant
//! ([`delegated_per_tenant_checks`]): only for a tenant whose parameters and `Deny` bindings
//! it has seen installed ([`TenantInfo::vap_bound`], learnt by watches like the parameters), so
//! a tenant onboarded after the last `policy vap --tenants`, or whose bindings only warn, is
//! still judged by the webhook rather than by neither, and a bound one is not judged twice.
//!
//! The generated CEL follows the engine's decisions, not just its checks: objects are judged
//! in tenant namespaces only (the webhook's `namespaceSelector`); pod policies judge an update
//! only when it can change the pods (the engine's significant-update rule); placement and
//! class checks only when an update touches their fields; and a Service or secret-store
//! violation an update keeps from the old object is not refused (the engine's carry-over,
//! judged per check rather than per field). Each message is `<check-id>: <message> —
//! <remediation>` for the first offender, the engine's words. `tests/vap_e2e.rs` is the proof:
//! it sends the upstream Pod Security corpus and generated objects for every compiled check to
//! a real API server and compares every verdict and check ID with [`Engine::evaluate`].
//!
//! A webhook installed next to the policies must judge exactly what they do not, or a check
//! is judged twice (two messages for one fault) or by neither. So which checks the policies
//! decide completely is recorded where each is compiled ([`CompiledCheck::complete`]), and
//! [`webhook_engine`] builds the webhook's engine from that list ([`delegated_checks`]); the
//! webhook (`tenantry webhook --with-vap`) and its manifests read the same list.

use serde::Serialize;
use serde_json::{Value, json};
use tenantry_api::platform::GatewayRef;
use tenantry_core::placement::NODE_CONDITION_TAINT_PREFIX;

use crate::engine::{Engine, Mode, PolicyId, TenantInfo};
use crate::policies::{flux, secret_stores};
use crate::pss::{self, ALLOWED_VOLUME_SOURCES, Level, RESTRICTED_VOLUME_SOURCES};

/// What the generated bindings do with a failed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Actions {
    /// Refuse the request (`validationActions: [Deny]`).
    #[default]
    Deny,
    /// Let it through with a warning and an audit annotation (`[Warn, Audit]`): to try the
    /// policies on a live cluster before they refuse anything.
    WarnAudit,
}

/// How to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VapOptions {
    /// What a failed validation does.
    pub actions: Actions,
    /// Prefix of every policy and binding name (`tenantry-`).
    pub name_prefix: String,
    /// Bind to this one namespace only (besides the tenant label): for trying the policies
    /// on one tenant first, and for the differential test, which shares its API server.
    pub namespace: Option<String>,
}

impl Default for VapOptions {
    fn default() -> Self {
        Self {
            actions: Actions::Deny,
            name_prefix: guardrails::NAME_PREFIX.to_owned(),
            namespace: None,
        }
    }
}

/// A check compiled to CEL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompiledCheck {
    /// The policy.
    pub policy: &'static str,
    /// The check ID, as the engine reports it.
    pub check: &'static str,
    /// The policies decide it wherever the engine would (a webhook next to them leaves it
    /// out, [`webhook_engine`]); `false`: part of it stays with the webhook ([`unsupported`]
    /// says which).
    pub complete: bool,
    /// Judged against the tenant's own values ([`generate_tenants`]): the policy does nothing
    /// in a namespace until its tenant's binding and parameters are installed, so a webhook
    /// next to the policies leaves it out only for the tenants it sees them installed for
    /// ([`TenantInfo::vap_bound`]).
    pub per_tenant: bool,
    /// The ValidatingAdmissionPolicy deciding it, without the name prefix
    /// (`tenant-placement-tenant`).
    pub vap_policy: String,
}

/// Checks that stay with the webhook, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unsupported {
    /// The policy.
    pub policy: &'static str,
    /// The check IDs concerned (empty: the whole policy).
    pub checks: Vec<&'static str>,
    /// Why CEL in a ValidatingAdmissionPolicy cannot (or does not yet) judge them as the
    /// engine does.
    pub reason: String,
    /// The checks are compiled, but part of what the engine decides with them is not (the
    /// reason says which part).
    pub partial: bool,
}

/// The ValidatingAdmissionPolicies and their bindings for every check of `engine` that CEL
/// can express: a policy then its binding, per engine policy, in the engine's reporting order.
/// Policies judged against a tenant's own values are [`generate_tenants`]'.
pub fn generate(engine: &Engine, opts: &VapOptions) -> Vec<Value> {
    let mut out = Vec::new();
    for policy in compile(engine).into_iter().filter(|p| !p.params) {
        let name = policy.name(opts);
        out.push(policy.to_policy(engine, &name));
        out.push(binding(engine, opts, &name, policy.by_object));
    }
    out
}

use tenantry_core::render::guardrails::{
    self, BindingOptions, GuardrailParams, TenantFlux, TenantNetwork,
};
pub use tenantry_core::render::guardrails::{
    PARAMS_API_VERSION, PARAMS_GROUP, PARAMS_KIND, PARAMS_PLURAL, PARAMS_VERSION,
};

/// The CustomResourceDefinition of the per-tenant parameters: cluster-scoped, so no tenant's
/// namespaced role can write one, with a structural schema so the CEL reads typed lists.
pub fn params_crd() -> Value {
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let class_list = json!({
        "type": "object",
        "required": ["allowed"],
        "properties": {"allowed": strings, "default": {"type": "string"}},
    });
    let tolerations = json!({
        "type": "object",
        "properties": {"allowed": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"type": "string", "enum": ["Equal", "Exists"]},
                    "value": {"type": "string"},
                    "effect": {
                        "type": "string",
                        "enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"],
                    },
                },
            },
        }},
    });
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{PARAMS_PLURAL}.{PARAMS_GROUP}"),
            "labels": {"app.kubernetes.io/managed-by": "tenantry"},
        },
        "spec": {
            "group": PARAMS_GROUP,
            "scope": "Cluster",
            "names": {
                "kind": PARAMS_KIND,
                "listKind": format!("{PARAMS_KIND}List"),
                "plural": PARAMS_PLURAL,
                "singular": "guardrailparameters",
            },
            "versions": [{
                "name": PARAMS_VERSION,
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "One tenant's values for Tenantry's per-tenant \
                        ValidatingAdmissionPolicies, generated by `tenantry policy vap --tenants`.",
                    "properties": {"spec": {
                        "type": "object",
                        "required": ["tenant", "registries", "registryPrefixes", "nodeSelector"],
                        "properties": {
                            "tenant": {"type": "string"},
                            "registries": strings,
                            "registryPrefixes": strings,
                            "nodeSelector": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["key", "value"],
                                    "properties": {
                                        "key": {"type": "string"},
                                        "value": {"type": "string"},
                                    },
                                },
                            },
                            // The tenant's resolved `placement.tolerations`: `allowed` is
                            // present only when the tenant has a list. Not required, so objects
                            // written before it still validate (the policy then reads no list).
                            "tolerations": tolerations,
                            // The tenant's namespaces and resolved `network.allowFrom`, which
                            // its network policies may name. Not required, so objects written
                            // before them still validate (the policy then reads none).
                            "namespaces": strings,
                            "networkPeers": strings,
                            // Who the tenant's Flux objects reconcile as. Not required, so
                            // objects written before it still validate (the policy then reads
                            // the tenant's name as its ServiceAccount and no proxy secret).
                            "flux": {
                                "type": "object",
                                "required": ["serviceAccount"],
                                "properties": {
                                    "serviceAccount": {"type": "string"},
                                    "proxyKubeconfigSecret": {"type": "string"},
                                },
                            },
                            // The tenant's resolved `classes`: a kind is present only when the
                            // tenant is restricted to a list. Not required, so objects written
                            // before it still validate (the policy then reads no list).
                            "classes": {
                                "type": "object",
                                "properties": {
                                    "priority": class_list.clone(),
                                    "storage": class_list.clone(),
                                    "ingress": class_list.clone(),
                                    "gateway": class_list.clone(),
                                    "runtime": class_list,
                                },
                            },
                        },
                    }},
                }},
            }],
        },
    })
}

/// The policies judged against a tenant's own values (`paramKind` [`PARAMS_KIND`]), then
/// each tenant's [`tenant_objects`], in the order given. The parameters' CRD is
/// [`params_crd`].
pub fn generate_tenants(engine: &Engine, tenants: &[TenantInfo], opts: &VapOptions) -> Vec<Value> {
    let mut out: Vec<Value> = compile(engine)
        .into_iter()
        .filter(|p| p.params)
        .map(|p| p.to_policy(engine, &p.name(opts)))
        .collect();
    for tenant in tenants {
        out.extend(tenant_objects(engine, tenant, opts));
    }
    out
}

/// One tenant's parameters and bindings for the per-tenant policies: a cluster-scoped
/// [`PARAMS_KIND`] `<prefix><tenant>` holding the engine's own values for the tenant
/// ([`TenantInfo`], resolved by the same code the webhook and `check` use), and per policy a
/// binding `<prefix><policy>.<tenant>` to the namespaces carrying the tenant label with the
/// tenant's name, which refuses when its parameters are missing (fail closed). Empty when no
/// per-tenant policy runs. Built by `tenantry_core::render::guardrails`, as `render` builds
/// them, but without the tenant label: printed here they are not the tenant's rendered
/// objects, and apply would prune them.
pub fn tenant_objects(engine: &Engine, tenant: &TenantInfo, opts: &VapOptions) -> Vec<Value> {
    let policies: Vec<Compiled> = compile(engine).into_iter().filter(|p| p.params).collect();
    if policies.is_empty() {
        return Vec::new();
    }
    let params = guardrails::params_name(&opts.name_prefix, &tenant.name);
    let mut out = vec![
        GuardrailParams::new(
            &tenant.name,
            &tenant.registries,
            &tenant.placement,
            &tenant.classes,
            &TenantNetwork {
                namespaces: &tenant.namespaces,
                peers: &tenant.network_peers,
            },
        )
        .with_flux(TenantFlux {
            service_account: tenant.service_account.clone(),
            proxy_kubeconfig_secret: tenant.proxy_kubeconfig_secret.clone(),
        })
        .to_object(label_prefix(engine), &params),
    ];
    let actions = actions(opts);
    for policy in policies {
        out.push(guardrails::tenant_binding(
            &policy.name(opts),
            &tenant.name,
            engine.tenant_label(),
            &params,
            BindingOptions {
                actions: &actions,
                namespace: opts.namespace.as_deref(),
            },
        ));
    }
    out
}

/// The documents as one YAML stream (`kubectl apply --server-side -f -`), through the
/// project's one YAML emitter.
pub fn to_yaml(documents: &[Value]) -> String {
    let mut out = String::from(
        "# Tenantry guardrails as ValidatingAdmissionPolicies, evaluated by the API server itself.\n\
         # Generated by `tenantry policy vap`; `tenantry policy vap --list-unsupported` lists what\n\
         # stays with the webhook.\n",
    );
    for document in documents {
        out.push_str("---\n");
        out.push_str(&tenantry_core::document::to_yaml(document));
    }
    out
}

/// Every check [`generate`] compiles for `engine`, in order.
pub fn compiled_checks(engine: &Engine) -> Vec<CompiledCheck> {
    compile(engine)
        .into_iter()
        .flat_map(|p| {
            let per_tenant = p.params;
            let vap_policy = format!("{}{}", p.id.as_str(), p.name_suffix);
            p.validations.into_iter().map(move |v| CompiledCheck {
                policy: p.id.as_str(),
                check: v.check,
                complete: v.complete,
                per_tenant,
                vap_policy: vap_policy.clone(),
            })
        })
        .collect()
}

/// The checks [`generate`]'s policies decide as `engine` does for every request they are
/// bound to: what a webhook installed next to them leaves out. The one list both sides read,
/// so no check is judged twice and none by neither. Per-tenant checks are not in it: they are
/// left out per tenant ([`delegated_per_tenant_checks`]).
pub fn delegated_checks(engine: &Engine) -> Vec<CompiledCheck> {
    compiled_checks(engine)
        .into_iter()
        .filter(|c| c.complete && !c.per_tenant)
        .collect()
}

/// The checks [`generate_tenants`]' policies decide as `engine` does, for a tenant whose
/// parameters and binding are installed: a webhook next to them leaves these out for exactly
/// the tenants it has seen both for ([`TenantInfo::vap_bound`]). A tenant onboarded before its
/// binding lands, or one whose binding only warns, keeps being judged by the webhook, so none
/// is judged by neither, and none twice once it is bound.
pub fn delegated_per_tenant_checks(engine: &Engine) -> Vec<CompiledCheck> {
    compiled_checks(engine)
        .into_iter()
        .filter(|c| c.complete && c.per_tenant)
        .collect()
}

/// The engine a webhook installed next to [`generate`]'s and [`generate_tenants`]' policies
/// (for the same `engine`) runs: the same engine without the [`delegated_checks`], and
/// without the [`delegated_per_tenant_checks`] for a tenant its policies are bound to.
/// Updates of the policies that carry a violation over are still judged by it, since the
/// policies carry over per check where the engine does per field.
pub fn webhook_engine(engine: Engine) -> Engine {
    let checks: Vec<&'static str> = delegated_checks(&engine)
        .into_iter()
        .map(|c| c.check)
        .collect();
    let per_tenant: Vec<(&'static str, String)> = delegated_per_tenant_checks(&engine)
        .into_iter()
        .map(|c| (c.check, c.vap_policy))
        .collect();
    engine.delegate(checks).delegate_per_tenant(per_tenant)
}

/// Why a per-tenant check is listed: it is compiled, but only for the tenants bound.
const PER_TENANT: &str = "compiled per tenant (`policy vap --tenants`, or rendered with each \
                          tenant: a binding and parameters per tenant); a webhook next to the \
                          policies (--with-vap) leaves them out for each tenant whose \
                          parameters and Deny bindings it sees installed, and judges them for \
                          the others (a tenant whose binding is not installed yet)";

/// What the engine judges at admission that [`generate`] does not compile, with the reasons.
pub fn unsupported(engine: &Engine) -> Vec<Unsupported> {
    let compiled = compiled_checks(engine);
    let mut out = Vec::new();
    let runs = |id: PolicyId| engine.runs(id, Mode::Admission);
    let mut entry = |id: PolicyId, checks: &[&'static str], reason: String, partial: bool| {
        if runs(id) {
            out.push(Unsupported {
                policy: id.as_str(),
                checks: checks.to_vec(),
                reason,
                partial,
            });
        }
    };
    let pss_missing: Vec<&'static str> = pss::checks()
        .filter(|c| !compiled.iter().any(|d| d.check == c.id))
        .map(|c| c.id)
        .collect();
    if !pss_missing.is_empty() && pss_level(engine) != Some(Level::Privileged) {
        entry(
            PolicyId::PodSecurity,
            &pss_missing,
            "not compiled to CEL; the webhook judges them".to_owned(),
            false,
        );
    }
    entry(
        PolicyId::PodSecurity,
        &[],
        "audit and warn levels only warn and are left to the PodSecurity plugin and the \
         webhook (a webhook next to the policies, --with-vap, leaves every compiled Pod \
         Security check to them, warnings included); a tenant namespace without an enforce \
         label is judged at restricted (the webhook uses the tenant's level, so the policies \
         are the stricter; Tenantry always sets the label)"
            .to_owned(),
        true,
    );
    entry(
        PolicyId::AllowedRegistries,
        &["registry-not-allowed", "invalid-image"],
        PER_TENANT.to_owned(),
        true,
    );
    entry(
        PolicyId::RequireDigest,
        &["image-digest"],
        "the digest is checked as the engine checks it, but a reference malformed before its \
         `@` (the engine parses the whole reference) is left to the webhook"
            .to_owned(),
        true,
    );
    entry(
        PolicyId::RestrictSecretStores,
        &["secret-store-scope", "secret-path-scope"],
        format!(
            "{PER_TENANT}. The tenant's OpenBao role and path are the platform's formulas on \
             its name; a store reaching the platform's OpenBao by IP address is not \
             recognised, as by the engine (OpenBao's role binding still holds there)"
        ),
        true,
    );
    entry(
        PolicyId::RestrictNetworkPolicies,
        &["network-policy-reach"],
        "compiled per tenant (`policy vap --tenants`, or rendered with each tenant: a binding \
         and parameters per tenant), the namespaces a tenant may name being its own and its \
         allowFrom from its parameters and the platform's shared ones, NetworkPolicies and \
         CiliumNetworkPolicies alike; a webhook next to the policies (--with-vap) leaves it \
         out for each tenant whose parameters and Deny bindings it sees installed, and judges \
         it for the others (a tenant whose binding is not installed yet)"
            .to_owned(),
        true,
    );
    entry(
        PolicyId::TenantPlacement,
        &["node-selector", "tolerations"],
        PER_TENANT.to_owned(),
        true,
    );
    entry(
        PolicyId::AllowedClasses,
        &[
            "priority-class",
            "runtime-class",
            "storage-class",
            "ingress-class",
            "gateway-class",
        ],
        PER_TENANT.to_owned(),
        true,
    );
    entry(
        PolicyId::FluxLockdown,
        &["service-account-name", "kubeconfig", "target-namespace"],
        format!(
            "{PER_TENANT}. The tenant's ServiceAccount, proxy kubeconfig Secret and namespaces \
             are read from its parameters; cross-namespace-ref is compiled platform-wide"
        ),
        true,
    );
    entry(
        PolicyId::ProtectPlatformObjects,
        &[],
        "compiled for the requests the webhook registers for (the same rules, \
         `catalog::admission_object_rules`), with the platform identities exempt by a \
         matchCondition; the API server reports the first changed guarded namespace label \
         (sorted) where the engine lists each"
            .to_owned(),
        true,
    );
    out
}

// ---------------------------------------------------------------------------------------------
// The policies
// ---------------------------------------------------------------------------------------------

/// One compiled engine policy.
struct Compiled {
    id: PolicyId,
    /// Judged against a tenant's parameters (`paramKind`, one binding per tenant).
    params: bool,
    /// Appended to the policy's name: the per-tenant half of an engine policy whose other
    /// checks are compiled platform-wide.
    name_suffix: &'static str,
    /// Bound by the object's own labels (`objectSelector`, old or new object) rather than its
    /// namespace's: the policy on Namespaces themselves, as the webhook registers them.
    by_object: bool,
    rules: Value,
    match_conditions: Vec<(&'static str, String)>,
    variables: Vec<(&'static str, String)>,
    validations: Vec<Validation>,
}

struct Validation {
    check: &'static str,
    expression: String,
    message: String,
    /// The expression decides every case the engine decides (else the webhook keeps the check).
    complete: bool,
}

impl Compiled {
    fn name(&self, opts: &VapOptions) -> String {
        format!(
            "{}{}{}",
            opts.name_prefix,
            self.id.as_str(),
            self.name_suffix
        )
    }

    fn new(id: PolicyId, rules: Value) -> Self {
        Self {
            id,
            params: false,
            name_suffix: "",
            by_object: false,
            rules,
            match_conditions: Vec::new(),
            variables: Vec::new(),
            validations: Vec::new(),
        }
    }

    fn validate(&mut self, check: &'static str, expression: String, message: String) {
        self.validations.push(Validation {
            check,
            expression,
            message,
            complete: true,
        });
    }

    /// A check compiled for some of the cases the engine judges only; [`unsupported`] names
    /// the rest.
    fn validate_part(&mut self, check: &'static str, expression: String, message: String) {
        self.validate(check, expression, message);
        if let Some(v) = self.validations.last_mut() {
            v.complete = false;
        }
    }

    fn to_policy(&self, engine: &Engine, name: &str) -> Value {
        let mut spec = json!({
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": self.rules},
        });
        if self.params {
            spec["paramKind"] = json!({
                "apiVersion": PARAMS_API_VERSION,
                "kind": PARAMS_KIND,
            });
        }
        if !self.match_conditions.is_empty() {
            spec["matchConditions"] = self
                .match_conditions
                .iter()
                .map(|(name, expression)| json!({"name": name, "expression": expression}))
                .collect();
        }
        if !self.variables.is_empty() {
            spec["variables"] = self
                .variables
                .iter()
                .map(|(name, expression)| json!({"name": name, "expression": expression}))
                .collect();
        }
        spec["validations"] = self
            .validations
            .iter()
            .map(|v| {
                json!({
                    "expression": v.expression,
                    "messageExpression": v.message,
                    "reason": "Forbidden",
                })
            })
            .collect();
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {
                "name": name,
                "labels": {"app.kubernetes.io/managed-by": "tenantry"},
                "annotations": {policy_annotation(engine): self.id.as_str()},
            },
            "spec": spec,
        })
    }
}

/// The platform's label prefix, read off its tenant label.
fn label_prefix(engine: &Engine) -> &str {
    engine
        .tenant_label()
        .rsplit_once('/')
        .map_or(engine.tenant_label(), |(prefix, _)| prefix)
}

/// `<labelPrefix>/policy`: which engine policy a ValidatingAdmissionPolicy compiles.
fn policy_annotation(engine: &Engine) -> String {
    format!("{}/policy", label_prefix(engine))
}

/// `validationActions` of the bindings.
fn actions(opts: &VapOptions) -> Vec<&'static str> {
    match opts.actions {
        Actions::Deny => vec!["Deny"],
        Actions::WarnAudit => vec!["Warn", "Audit"],
    }
}

fn binding(engine: &Engine, opts: &VapOptions, name: &str, by_object: bool) -> Value {
    let actions = actions(opts);
    let mut selector =
        json!({"matchExpressions": [{"key": engine.tenant_label(), "operator": "Exists"}]});
    if let Some(ns) = &opts.namespace {
        selector["matchLabels"] = json!({"kubernetes.io/metadata.name": ns});
    }
    let selector_kind = if by_object {
        "objectSelector"
    } else {
        "namespaceSelector"
    };
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": "tenantry"},
        },
        "spec": {
            "policyName": name,
            "validationActions": actions,
            "matchResources": {selector_kind: selector},
        },
    })
}

fn compile(engine: &Engine) -> Vec<Compiled> {
    let mut out = Vec::new();
    for id in PolicyId::ALL {
        if !engine.runs(id, Mode::Admission) {
            continue;
        }
        let policy = match id {
            PolicyId::PodSecurity => pod_security(engine),
            PolicyId::RequireRequestsLimits => Some(requests_limits()),
            PolicyId::NoNodePort | PolicyId::NoLoadBalancer | PolicyId::NoExternalIps => {
                Some(services(id))
            }
            PolicyId::AllowedRegistries => Some(registries()),
            PolicyId::ImagePullPolicyAlways => Some(pull_policy()),
            PolicyId::RequireDigest => Some(digest()),
            PolicyId::RestrictSecretStores => Some(secret_stores(engine)),
            PolicyId::TenantPlacement => Some(placement(engine)),
            PolicyId::RestrictNetworkPolicies => Some(network_policies(engine)),
            PolicyId::AllowedClasses => Some(classes()),
            PolicyId::FluxLockdown => Some(flux_references()),
            // Without a platform Gateway the engine judges nothing either.
            PolicyId::GatewayParent => engine.gateway.as_ref().map(gateway_parent),
            PolicyId::ProtectPlatformObjects => {
                out.extend(protect(engine));
                None
            }
            _ => None,
        };
        if let Some(policy) = policy.filter(|p| !p.validations.is_empty()) {
            out.push(policy);
        }
        if id == PolicyId::TenantPlacement {
            out.push(tenant_placement());
        }
        if id == PolicyId::FluxLockdown {
            out.push(flux_tenant());
        }
        if id == PolicyId::RestrictSecretStores {
            out.push(secret_stores_tenant(engine));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// CEL helpers
// ---------------------------------------------------------------------------------------------

/// A CEL string literal.
fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn list_lit(items: &[&str]) -> String {
    let items: Vec<String> = items.iter().map(|i| lit(i)).collect();
    format!("[{}]", items.join(", "))
}

/// `has(r.a) && has(r.a.b) && …`: whether the dotted path is set under `root`.
fn has(root: &str, path: &str) -> String {
    let mut parts = Vec::new();
    let mut at = root.to_owned();
    for segment in path.split('.') {
        at.push('.');
        at.push_str(segment);
        parts.push(format!("has({at})"));
    }
    parts.join(" && ")
}

/// The value at `root.path`, or `default` when it is not set.
fn get_or(root: &str, path: &str, default: &str) -> String {
    format!("({} ? {root}.{path} : {default})", has(root, path))
}

/// The string at `root.path`, or `''` when it is not set (typed `string` for the type
/// checker, which reads a field of a `dyn` object as `dyn`).
fn string_or_empty(root: &str, path: &str) -> String {
    format!("({} ? string({root}.{path}) : '')", has(root, path))
}

/// `[value]` when set, `[]` when not: comparable across old and new objects, where an unset
/// field and a set one must differ whatever the value.
fn opt(root: &str, path: &str) -> String {
    format!("({} ? [{root}.{path}] : [])", has(root, path))
}

/// A CEL message: `<check>: ` followed by the concatenated parts (CEL expressions).
fn message(check: &str, parts: &[&str]) -> String {
    let mut out = lit(&format!("{check}: "));
    for part in parts {
        out.push_str(" + ");
        out.push_str(part);
    }
    out
}

/// `"name"` in a CEL message, quoted as the engine's `{:?}` quotes names.
fn quoted(expr: &str) -> String {
    format!("'\"' + {expr} + '\"'")
}

/// Wrap a check for the engine's carry-over: an update keeping a violation the old object had
/// is not refused.
fn carry_over(new: &str, old: &str) -> String {
    format!("({new}) || (request.operation == 'UPDATE' && !({old}))")
}

// ---------------------------------------------------------------------------------------------
// Pods and pod templates
// ---------------------------------------------------------------------------------------------

/// The kinds whose pod template the engine judges ([`pss::pod_template`]).
fn pod_rules() -> Value {
    let rule = |group: &str, resources: &[&str]| {
        json!({
            "apiGroups": [group], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
            "resources": resources,
        })
    };
    json!([
        rule(
            "",
            &[
                "pods",
                "pods/ephemeralcontainers",
                "replicationcontrollers",
                "podtemplates"
            ]
        ),
        rule(
            "apps",
            &["deployments", "statefulsets", "daemonsets", "replicasets"]
        ),
        rule("batch", &["jobs", "cronjobs"]),
    ])
}

/// The pod template of `root` (`object` or `oldObject`), at `part` (`spec` or `metadata`), as
/// [`pss::pod_template`] finds it.
fn template(root: &str, part: &str) -> String {
    let at = |path: &str| get_or(root, path, "{}");
    format!(
        "({root}.kind == 'Pod' ? {pod} : {root}.kind == 'PodTemplate' ? {pt} : {root}.kind == \
         'CronJob' ? {cj} : {other})",
        pod = at(part),
        pt = at(&format!("template.{part}")),
        cj = at(&format!("spec.jobTemplate.spec.template.{part}")),
        other = at(&format!("spec.template.{part}")),
    )
}

/// Whether an update can create pods different from the existing ones: the engine's
/// `significant_update` (controllers: the template changed; pods: upstream PodSecurity's
/// images, seccomp annotations and container counts, plus ephemeral containers).
fn pods_changed() -> String {
    let list = |root: &str, name: &str| get_or(&format!("{root}.spec"), name, "[]");
    let ann = |root: &str, key: &str| {
        format!(
            "((has({root}.metadata.annotations) && {key} in {root}.metadata.annotations) ? \
             [{root}.metadata.annotations[{key}]] : [])"
        )
    };
    let seccomp_pod = lit(pss::SECCOMP_POD_ANNOTATION);
    let seccomp_container = lit(pss::SECCOMP_CONTAINER_ANNOTATION_PREFIX);
    let mut pod = vec![
        format!(
            "{} != {}",
            ann("object", &seccomp_pod),
            ann("oldObject", &seccomp_pod)
        ),
        format!(
            "{} != {}",
            list("object", "ephemeralContainers"),
            list("oldObject", "ephemeralContainers")
        ),
    ];
    for name in ["containers", "initContainers"] {
        pod.push(format!(
            "{}.map(c, c.image) != {}.map(c, c.image)",
            list("object", name),
            list("oldObject", name)
        ));
        let key = format!("{seccomp_container} + c.name");
        pod.push(format!(
            "{}.exists(c, {} != {})",
            list("object", name),
            ann("object", &key),
            ann("oldObject", &key)
        ));
    }
    format!(
        "request.operation != 'UPDATE' || (object.kind == 'Pod' ? ({}) : ({} != {} || {} != {}))",
        pod.join(" || "),
        template("object", "spec"),
        template("oldObject", "spec"),
        template("object", "metadata"),
        template("oldObject", "metadata"),
    )
}

/// Whether an update changes any of the pod spec's `fields` (placement and classes judge only
/// such updates).
fn spec_fields_changed(fields: &[&str]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|f| {
            format!(
                "{} != {}",
                opt(&template("object", "spec"), f),
                opt(&template("oldObject", "spec"), f)
            )
        })
        .collect();
    format!("request.operation != 'UPDATE' || {}", parts.join(" || "))
}

/// A policy on pod templates, with the variables every pod check reads.
fn pod_policy(id: PolicyId) -> Compiled {
    let mut policy = Compiled::new(id, pod_rules());
    policy
        .match_conditions
        .push(("pods-changed", pods_changed()));
    policy.variables = vec![
        ("spec", template("object", "spec")),
        ("meta", template("object", "metadata")),
        (
            "containers",
            format!(
                "{} + {}",
                get_or("variables.spec", "initContainers", "[]"),
                get_or("variables.spec", "containers", "[]")
            ),
        ),
        (
            "allContainers",
            format!(
                "variables.containers + {}",
                get_or("variables.spec", "ephemeralContainers", "[]")
            ),
        ),
        ("volumes", get_or("variables.spec", "volumes", "[]")),
    ];
    policy
}

// ---------------------------------------------------------------------------------------------
// Pod Security
// ---------------------------------------------------------------------------------------------

const ENFORCE: &str = "pod-security.kubernetes.io/enforce";
const ENFORCE_VERSION: &str = "pod-security.kubernetes.io/enforce-version";

/// The fixed level, if the engine has one (`with_selection`); `None`: the namespace's label.
fn pss_level(engine: &Engine) -> Option<Level> {
    engine.level_override
}

const fn level_number(level: Level) -> u8 {
    match level {
        Level::Privileged => 0,
        Level::Baseline => 1,
        Level::Restricted => 2,
    }
}

/// `variables.level`: 0 privileged, 1 baseline, 2 restricted, read from the namespace's
/// enforce label as [`pss::NamespaceLabels::read`] reads it (unparsable: restricted), unless
/// the engine fixes the level.
fn level_variable(engine: &Engine) -> String {
    if let Some(level) = pss_level(engine) {
        return level_number(level).to_string();
    }
    let label = label_or_empty(ENFORCE);
    // A missing label: the tenant's level in the webhook, which CEL cannot look up; the
    // engine without a tenant, and Tenantry's namespaces (always labelled), are restricted.
    format!("{label} == 'privileged' ? 0 : {label} == 'baseline' ? 1 : 2")
}

fn label_or_empty(key: &str) -> String {
    let key = lit(key);
    format!(
        "((has(namespaceObject.metadata.labels) && {key} in namespaceObject.metadata.labels) ? \
         namespaceObject.metadata.labels[{key}] : '')"
    )
}

/// `variables.minor`: the effective policy minor version, from the engine's version override,
/// the namespace's enforce-version label (unparsable: latest) or the platform's version.
fn minor_variable(engine: &Engine) -> String {
    let latest = pss::LATEST_MINOR;
    if let Some(version) = engine.version_override {
        return version.effective_minor().to_string();
    }
    let default = engine.default_version.effective_minor();
    let label = label_or_empty(ENFORCE_VERSION);
    // Nine digits fit an int; a longer minor is beyond `latest` anyway (or unparsable,
    // which is read as latest too).
    format!(
        "{label} == '' ? {default} : {label}.matches('^v1\\\\.(0|[1-9][0-9]{{0,8}})$') ? \
         (int({label}.substring(3)) > {latest} ? {latest} : int({label}.substring(3))) : {latest}"
    )
}

/// Whether `check` runs at the namespace's level and version: the registry's levels,
/// introductions and restricted-over-baseline overrides ([`pss::CheckInfo::applies`]).
fn applies(check: &str) -> String {
    let Some(info) = pss::checks().find(|c| c.id == check) else {
        return "false".to_owned();
    };
    let introduced = info.revisions.first().copied().unwrap_or(u32::MAX);
    let mut parts = vec![format!("variables.minor >= {introduced}")];
    match info.level {
        Level::Restricted => parts.push("variables.level == 2".to_owned()),
        _ => {
            parts.push("variables.level >= 1".to_owned());
            for over in pss::checks().filter(|c| c.overrides == Some(check)) {
                let from = over.revisions.first().copied().unwrap_or(u32::MAX);
                parts.push(format!(
                    "!(variables.level == 2 && variables.minor >= {from})"
                ));
            }
        }
    }
    parts.join(" && ")
}

/// The checks compiled, each with its exemptions beyond [`applies`].
fn pod_security(engine: &Engine) -> Option<Compiled> {
    if pss_level(engine) == Some(Level::Privileged) {
        return None;
    }
    let mut p = pod_policy(PolicyId::PodSecurity);
    p.variables.push(("level", level_variable(engine)));
    p.variables.push(("minor", minor_variable(engine)));
    p.variables.push((
        "windows",
        format!("{} == 'windows'", get_or("variables.spec", "os.name", "''")),
    ));
    p.variables.push((
        "userNamespace",
        format!("{} == false", get_or("variables.spec", "hostUsers", "true")),
    ));
    // The pod's securityContext, `{}` when unset, so the checks read it like a container's.
    p.variables
        .push(("podSc", get_or("variables.spec", "securityContext", "{}")));
    // From 1.25 the Linux-only restricted checks skip Windows pods; from 1.35 the run-as-root
    // checks skip pods in their own user namespace.
    let windows_exempt = "(variables.minor >= 25 && variables.windows)";
    let userns_exempt = "(variables.minor >= 35 && variables.userNamespace)";
    let gate = |check: &str, exempt: Option<&str>| match exempt {
        Some(e) => format!("!({}) || {e}", applies(check)),
        None => format!("!({})", applies(check)),
    };
    let first = |list: &str, bad: &str| format!("{list}.filter(c, {bad})[0]");
    let sc = |c: &str, path: &str| has(c, &format!("securityContext.{path}"));

    // privileged
    let bad = format!(
        "{} && c.securityContext.privileged == true",
        sc("c", "privileged")
    );
    p.validate(
        "privileged",
        format!(
            "{} || !variables.allContainers.exists(c, {bad})",
            gate("privileged", None)
        ),
        message(
            "privileged",
            &[
                "'privileged: container '",
                &quoted(&format!("{}.name", first("variables.allContainers", &bad))),
                "' must not set securityContext.privileged=true — Set securityContext.privileged \
                 to false or remove it.'",
            ],
        ),
    );

    // hostNamespaces
    let set = |f: &str| format!("{} == true", get_or("variables.spec", f, "false"));
    p.validate(
        "hostNamespaces",
        format!(
            "{} || !({} || {} || {})",
            gate("hostNamespaces", None),
            set("hostNetwork"),
            set("hostPID"),
            set("hostIPC")
        ),
        format!(
            "{} ? {} : {} ? {} : {}",
            set("hostNetwork"),
            host_namespace_message("hostNetwork"),
            set("hostPID"),
            host_namespace_message("hostPID"),
            host_namespace_message("hostIPC")
        ),
    );

    // hostPorts
    let bad_port = "has(q.hostPort) && q.hostPort != 0";
    let bad = format!("has(c.ports) && c.ports.exists(q, {bad_port})");
    let offender = first("variables.allContainers", &bad);
    p.validate(
        "hostPorts",
        format!(
            "{} || !variables.allContainers.exists(c, {bad})",
            gate("hostPorts", None)
        ),
        message(
            "hostPorts",
            &[
                "'hostPort: container '",
                &quoted(&format!("{offender}.name")),
                "' uses hostPort '",
                &format!("string({offender}.ports.filter(q, {bad_port})[0].hostPort)"),
                "' — Remove hostPort (or set it to 0) and expose the port through a Service \
                 instead.'",
            ],
        ),
    );

    // windowsHostProcess
    let bad = format!(
        "{} && c.securityContext.windowsOptions.hostProcess == true",
        sc("c", "windowsOptions.hostProcess")
    );
    let pod_bad = format!(
        "{} && variables.podSc.windowsOptions.hostProcess == true",
        has("variables.podSc", "windowsOptions.hostProcess")
    );
    p.validate(
        "windowsHostProcess",
        format!(
            "{} || !({pod_bad} || variables.allContainers.exists(c, {bad}))",
            gate("windowsHostProcess", None)
        ),
        message(
            "windowsHostProcess",
            &[
                "'hostProcess: '",
                &format!(
                    "({pod_bad} ? 'pod' : 'container ' + {})",
                    quoted(&format!("{}.name", first("variables.allContainers", &bad)))
                ),
                "' must not set securityContext.windowsOptions.hostProcess=true — Set \
                 securityContext.windowsOptions.hostProcess to false or remove it.'",
            ],
        ),
    );

    // hostPathVolumes (baseline; replaced by restrictedVolumes at restricted)
    let offender = "variables.volumes.filter(v, has(v.hostPath))[0]";
    p.validate(
        "hostPathVolumes",
        format!(
            "{} || !variables.volumes.exists(v, has(v.hostPath))",
            gate("hostPathVolumes", None)
        ),
        message(
            "hostPathVolumes",
            &[
                "'hostPath volumes: volume '",
                &quoted(&get_or(offender, "name", "''")),
                "' must not use hostPath — Replace hostPath volume '",
                &quoted(&get_or(offender, "name", "''")),
                "' with a persistentVolumeClaim, emptyDir, configMap, secret or other non-host \
                 volume.'",
            ],
        ),
    );

    // restrictedVolumes
    let allowed = list_lit(&ALLOWED_VOLUME_SOURCES);
    let restricted = list_lit(&RESTRICTED_VOLUME_SOURCES);
    let bad = format!("!v.exists(k, k in {allowed}) && v.exists(k, k in {restricted})");
    let offender = format!("variables.volumes.filter(v, {bad})[0]");
    let kind = format!("{restricted}.filter(k, k in {offender})[0]");
    let name = quoted(&get_or(&offender, "name", "''"));
    p.validate(
        "restrictedVolumes",
        format!(
            "{} || !variables.volumes.exists(v, {bad})",
            gate("restrictedVolumes", None)
        ),
        message(
            "restrictedVolumes",
            &[
                "'restricted volume types: volume '",
                &name,
                "' uses restricted volume type '",
                &quoted(&kind),
                "' — Replace volume '",
                &name,
                "' ('",
                &kind,
                &lit(&format!(
                    ") with one of {}.",
                    ALLOWED_VOLUME_SOURCES.join(", ")
                )),
            ],
        ),
    );

    // allowPrivilegeEscalation
    let bad = format!(
        "!({} && c.securityContext.allowPrivilegeEscalation == false)",
        sc("c", "allowPrivilegeEscalation")
    );
    p.validate(
        "allowPrivilegeEscalation",
        format!(
            "{} || !variables.allContainers.exists(c, {bad})",
            gate("allowPrivilegeEscalation", Some(windows_exempt))
        ),
        message(
            "allowPrivilegeEscalation",
            &[
                "'allowPrivilegeEscalation != false: container '",
                &quoted(&format!("{}.name", first("variables.allContainers", &bad))),
                "' must set securityContext.allowPrivilegeEscalation=false — Set \
                 securityContext.allowPrivilegeEscalation: false.'",
            ],
        ),
    );

    // capabilities_restricted
    let bad_drop = format!(
        "!({} && 'ALL' in c.securityContext.capabilities.drop)",
        sc("c", "capabilities.drop")
    );
    let bad_add = format!(
        "{} && c.securityContext.capabilities.add.exists(a, a != 'NET_BIND_SERVICE')",
        sc("c", "capabilities.add")
    );
    let add_offender = first("variables.allContainers", &bad_add);
    let cap = format!(
        "{add_offender}.securityContext.capabilities.add.filter(a, a != 'NET_BIND_SERVICE')[0]"
    );
    p.validate(
        "capabilities_restricted",
        format!(
            "{} || !variables.allContainers.exists(c, ({bad_drop}) || ({bad_add}))",
            gate("capabilities_restricted", Some(windows_exempt))
        ),
        format!(
            "variables.allContainers.exists(c, {bad_drop}) ? {} : {}",
            message(
                "capabilities_restricted",
                &[
                    "'unrestricted capabilities: container '",
                    &quoted(&format!(
                        "{}.name",
                        first("variables.allContainers", &bad_drop)
                    )),
                    "' must set securityContext.capabilities.drop=[\"ALL\"] — Add \"ALL\" to \
                     securityContext.capabilities.drop.'",
                ],
            ),
            message(
                "capabilities_restricted",
                &[
                    "'unrestricted capabilities: container '",
                    &quoted(&format!("{add_offender}.name")),
                    "' must not include '",
                    &quoted(&cap),
                    "' in securityContext.capabilities.add — Remove '",
                    &quoted(&cap),
                    "' from securityContext.capabilities.add; restricted allows adding only \
                     NET_BIND_SERVICE.'",
                ],
            ),
        ),
    );

    // runAsNonRoot
    let pod_set = has("variables.podSc", "runAsNonRoot");
    let pod_false = format!("{pod_set} && variables.podSc.runAsNonRoot == false");
    let c_false = format!(
        "{} && c.securityContext.runAsNonRoot == false",
        sc("c", "runAsNonRoot")
    );
    let c_unset = format!("!({}) && !({pod_set})", sc("c", "runAsNonRoot"));
    p.validate(
        "runAsNonRoot",
        format!(
            "{} || !(({pod_false}) || variables.allContainers.exists(c, ({c_false}) || \
             ({c_unset})))",
            gate("runAsNonRoot", Some(userns_exempt))
        ),
        format!(
            "({pod_false}) ? {} : variables.allContainers.filter(c, ({c_false}) || ({c_unset})).map(c, \
             ({c_false}) ? {} : {})[0]",
            message(
                "runAsNonRoot",
                &["'runAsNonRoot != true: pod must not set securityContext.runAsNonRoot=false — \
                   Set spec.securityContext.runAsNonRoot: true.'"]
            ),
            message(
                "runAsNonRoot",
                &[
                    "'runAsNonRoot != true: container '",
                    &quoted("c.name"),
                    "' must not set securityContext.runAsNonRoot=false — Set \
                     securityContext.runAsNonRoot: true (or remove it and set it on the pod).'",
                ]
            ),
            message(
                "runAsNonRoot",
                &[
                    "'runAsNonRoot != true: pod or container '",
                    &quoted("c.name"),
                    "' must set securityContext.runAsNonRoot=true — Set \
                     spec.securityContext.runAsNonRoot: true on the pod, or \
                     securityContext.runAsNonRoot: true on container '",
                    &quoted("c.name"),
                    "'.'",
                ]
            ),
        ),
    );

    // runAsUser
    let bad = format!(
        "{} && c.securityContext.runAsUser == 0",
        sc("c", "runAsUser")
    );
    let pod_bad = format!(
        "{} && variables.podSc.runAsUser == 0",
        has("variables.podSc", "runAsUser")
    );
    p.validate(
        "runAsUser",
        format!(
            "{} || !(({pod_bad}) || variables.allContainers.exists(c, {bad}))",
            gate("runAsUser", Some(userns_exempt))
        ),
        message(
            "runAsUser",
            &[
                "'runAsUser=0: '",
                &format!(
                    "(({pod_bad}) ? 'pod' : 'container ' + {})",
                    quoted(&format!("{}.name", first("variables.allContainers", &bad)))
                ),
                "' must not set runAsUser=0 — Set runAsUser to a non-zero UID, or remove it.'",
            ],
        ),
    );

    // seccompProfile_restricted
    let valid = |p: &str| format!("(has({p}.type) && {p}.type in ['RuntimeDefault', 'Localhost'])");
    let pod_set = has("variables.podSc", "seccompProfile");
    let pod_bad = format!("{pod_set} && !{}", valid("variables.podSc.seccompProfile"));
    let c_bad = format!(
        "{} && !{}",
        sc("c", "seccompProfile"),
        valid("c.securityContext.seccompProfile")
    );
    let c_unset = format!("!({})", sc("c", "seccompProfile"));
    let type_of = |p: &str| quoted(&get_or(p, "type", "''"));
    let bad_offender = first("variables.allContainers", &c_bad);
    p.validate(
        "seccompProfile_restricted",
        format!(
            "{} || !(({pod_bad}) || variables.allContainers.exists(c, {c_bad}) || (!({pod_set}) \
             && variables.allContainers.exists(c, {c_unset})))",
            gate("seccompProfile_restricted", Some(windows_exempt))
        ),
        format!(
            "({pod_bad}) ? {} : variables.allContainers.exists(c, {c_bad}) ? {} : {}",
            message(
                "seccompProfile_restricted",
                &[
                    "'seccompProfile: pod must not set securityContext.seccompProfile.type to '",
                    &type_of("variables.podSc.seccompProfile"),
                    "' — Set seccompProfile.type to \"RuntimeDefault\" or \"Localhost\".'",
                ]
            ),
            message(
                "seccompProfile_restricted",
                &[
                    "'seccompProfile: container '",
                    &quoted(&format!("{bad_offender}.name")),
                    "' must not set securityContext.seccompProfile.type to '",
                    &type_of(&format!("{bad_offender}.securityContext.seccompProfile")),
                    "' — Set seccompProfile.type to \"RuntimeDefault\" or \"Localhost\".'",
                ]
            ),
            message(
                "seccompProfile_restricted",
                &[
                    "'seccompProfile: pod or container '",
                    &quoted(&format!(
                        "{}.name",
                        first("variables.allContainers", &c_unset)
                    )),
                    "' must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \
                     \"Localhost\" — Set spec.securityContext.seccompProfile.type: \
                     RuntimeDefault on the pod, or securityContext.seccompProfile.type on \
                     container '",
                    &quoted(&format!(
                        "{}.name",
                        first("variables.allContainers", &c_unset)
                    )),
                    "'.'",
                ]
            ),
        ),
    );

    baseline_checks(&mut p, &gate, userns_exempt);
    // The engine's reporting order (upstream's), so a refusal names the check it would first.
    p.validations
        .sort_by_key(|v| pss::checks().position(|c| c.id == v.check));
    Some(p)
}

/// A CEL expression for what a versioned upstream table holds at `variables.minor`: `render`
/// turns the entries of one version (in table order) into a CEL expression.
fn versioned(table: &[(&str, u32)], render: impl Fn(&[&str]) -> String) -> String {
    let mut since: Vec<u32> = table.iter().map(|&(_, v)| v).collect();
    since.sort_unstable();
    since.dedup();
    let at = |minor: u32| {
        let names: Vec<&str> = table
            .iter()
            .filter(|&&(_, v)| v <= minor)
            .map(|&(n, _)| n)
            .collect();
        render(&names)
    };
    let mut out = at(since.first().copied().unwrap_or(0));
    for &minor in since.iter().skip(1) {
        out = format!("(variables.minor >= {minor} ? {} : {out})", at(minor));
    }
    out
}

/// The smallest key of a CEL list of strings (the engine reports annotations sorted by key,
/// byte order, which is CEL's string order too).
fn smallest(list: &str) -> String {
    format!("{list}.filter(k, {list}.all(j, j >= k))[0]")
}

/// The baseline checks that read annotations, versioned tables and probes, and `procMount` at
/// both levels.
fn baseline_checks(p: &mut Compiled, gate: &dyn Fn(&str, Option<&str>) -> String, userns: &str) {
    let first = |list: &str, bad: &str| format!("{list}.filter(c, {bad})[0]");
    let sc = |c: &str, path: &str| has(c, &format!("securityContext.{path}"));
    p.variables
        .push(("annotations", get_or("variables.meta", "annotations", "{}")));
    let value = "variables.annotations[k]";

    // appArmorProfile: the fields (pod, then containers), then the deprecated annotations.
    let profile_ok = |profile: &str| {
        format!(
            "{} in ['RuntimeDefault', 'Localhost']",
            get_or(profile, "type", "''")
        )
    };
    let pod_bad = format!(
        "{} && !({})",
        has("variables.podSc", "appArmorProfile"),
        profile_ok("variables.podSc.appArmorProfile")
    );
    let c_bad = format!(
        "{} && !({})",
        sc("c", "appArmorProfile"),
        profile_ok("c.securityContext.appArmorProfile")
    );
    p.variables.push((
        "appArmorAnnotations",
        format!(
            "variables.annotations.filter(k, k.startsWith({}) && !({value} == '' || {value} == \
             'runtime/default' || {value}.startsWith('localhost/')))",
            lit(pss::APPARMOR_ANNOTATION_PREFIX)
        ),
    ));
    let field_message = |owner: &str, profile: &str| {
        message(
            "appArmorProfile",
            &[
                "'forbidden AppArmor profile: '",
                owner,
                "' must not set AppArmor profile type to '",
                &quoted(&get_or(profile, "type", "''")),
                "' — Set appArmorProfile.type to \"RuntimeDefault\" or \"Localhost\", or \
                 remove it.'",
            ],
        )
    };
    let key = smallest("variables.appArmorAnnotations");
    p.validate(
        "appArmorProfile",
        format!(
            "{} || !(({pod_bad}) || variables.allContainers.exists(c, {c_bad}) || \
             size(variables.appArmorAnnotations) > 0)",
            gate("appArmorProfile", None)
        ),
        format!(
            "({pod_bad}) ? {} : variables.allContainers.exists(c, {c_bad}) ? [{}].map(c, {})[0] \
             : [{key}].map(k, {})[0]",
            field_message("'pod'", "variables.podSc.appArmorProfile"),
            first("variables.allContainers", &c_bad),
            field_message(
                &format!("'container ' + {}", quoted("c.name")),
                "c.securityContext.appArmorProfile"
            ),
            message(
                "appArmorProfile",
                &[
                    "'forbidden AppArmor profile: annotation ' + k + '='",
                    &quoted(value),
                    "' — Set annotation ' + k + ' to \"runtime/default\" or \
                     \"localhost/<profile>\" (or use securityContext.appArmorProfile \
                     instead).'",
                ],
            ),
        ),
    );

    // capabilities_baseline: only the runtime's default capabilities may be added.
    let defaults = list_lit(&pss::BASELINE_CAPABILITIES);
    let bad = format!(
        "{} && c.securityContext.capabilities.add.exists(a, !(a in {defaults}))",
        sc("c", "capabilities.add")
    );
    p.validate(
        "capabilities_baseline",
        format!(
            "{} || !variables.allContainers.exists(c, {bad})",
            gate("capabilities_baseline", None)
        ),
        format!(
            "[{}].map(c, [c.securityContext.capabilities.add.filter(a, !(a in {defaults}))[0]].map(a, {}))[0][0]",
            first("variables.allContainers", &bad),
            message(
                "capabilities_baseline",
                &[
                    "'non-default capabilities: container '",
                    &quoted("c.name"),
                    "' must not include '",
                    &quoted("a"),
                    "' in securityContext.capabilities.add — Remove '",
                    &quoted("a"),
                    &lit(&format!(
                        " from securityContext.capabilities.add; baseline allows only {}.",
                        pss::BASELINE_CAPABILITIES.join(", ")
                    )),
                ],
            )
        ),
    );

    // hostProbesAndHostLifecycle: no probe or lifecycle handler names a host.
    let handlers: Vec<(String, String)> = [
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "lifecycle.postStart",
        "lifecycle.preStop",
    ]
    .iter()
    .flat_map(|field| {
        ["httpGet", "tcpSocket"].map(|action| {
            let rest = format!("{field}.{action}.host");
            (get_or("c", &rest, "''"), rest)
        })
    })
    .collect();
    let bad = handlers
        .iter()
        .map(|(host, _)| format!("{host} != ''"))
        .collect::<Vec<_>>()
        .join(" || ");
    let mut which = "''".to_owned();
    for (host, rest) in handlers.iter().rev() {
        which = format!(
            "{host} != '' ? {} : {which}",
            message(
                "hostProbesAndHostLifecycle",
                &[
                    "'probe or lifecycle host: container '",
                    &quoted("c.name"),
                    "' uses probe or lifecycle host '",
                    &quoted(host),
                    &lit(&format!(
                        " — Remove {rest} so the kubelet targets the pod's own IP."
                    )),
                ],
            )
        );
    }
    p.validate(
        "hostProbesAndHostLifecycle",
        format!(
            "{} || !variables.allContainers.exists(c, {bad})",
            gate("hostProbesAndHostLifecycle", None)
        ),
        format!(
            "[{}].map(c, {which})[0]",
            first("variables.allContainers", &bad)
        ),
    );

    // procMount (baseline; from 1.35 user-namespace pods are exempt) and procMount_restricted
    // (from 1.35 at restricted, unconditional).
    let bad = format!(
        "{} && c.securityContext.procMount != 'Default'",
        sc("c", "procMount")
    );
    let proc_message = |check: &str, remedy: &str| {
        format!(
            "[{}].map(c, {})[0]",
            first("variables.allContainers", &bad),
            message(
                check,
                &[
                    "'procMount: container '",
                    &quoted("c.name"),
                    "' must not set securityContext.procMount to '",
                    &quoted("c.securityContext.procMount"),
                    "' — '",
                    remedy,
                ],
            )
        )
    };
    let plain = lit("Remove securityContext.procMount or set it to \"Default\".");
    let hint = lit(
        "Remove securityContext.procMount or set it to \"Default\" (or run the pod in a user \
         namespace with spec.hostUsers: false).",
    );
    p.validate(
        "procMount",
        format!(
            "{} || !variables.allContainers.exists(c, {bad})",
            gate("procMount", Some(userns))
        ),
        proc_message(
            "procMount",
            &format!("(variables.minor >= 35 ? {hint} : {plain})"),
        ),
    );
    p.validate(
        "procMount_restricted",
        format!(
            "{} || !variables.allContainers.exists(c, {bad})",
            gate("procMount_restricted", None)
        ),
        proc_message("procMount_restricted", &plain),
    );

    // seLinuxOptions: container types only (container_engine_t from 1.31), no user or role.
    let types = versioned(&pss::SELINUX_TYPES, list_lit);
    let type_bad = |o: &str| format!("!({} in {types})", get_or(o, "type", "''"));
    let set = |o: &str, field: &str| format!("{} != ''", get_or(o, field, "''"));
    let any_bad = |o: &str| {
        format!(
            "({}) || ({}) || ({})",
            type_bad(o),
            set(o, "user"),
            set(o, "role")
        )
    };
    let allowed_text = versioned(&pss::SELINUX_TYPES, |names| {
        let quoted: Vec<String> = names
            .iter()
            .filter(|n| !n.is_empty())
            .map(|n| format!("{n:?}"))
            .collect();
        lit(&quoted.join(", "))
    });
    let selinux_message = |owner: &str, o: &str| {
        let forbidden = |what: &[&str]| {
            let mut parts = vec!["'seLinuxOptions: '", owner];
            parts.push("' set forbidden securityContext.seLinuxOptions: '");
            parts.extend_from_slice(what);
            message("seLinuxOptions", &parts)
        };
        format!(
            "(({}) ? {} : ({}) ? {} : {})",
            type_bad(o),
            forbidden(&[
                "'type '",
                &quoted(&get_or(o, "type", "''")),
                "' — Set seLinuxOptions.type to one of '",
                &allowed_text,
                "' or remove it.'",
            ]),
            set(o, "user"),
            forbidden(&["'user may not be set — Remove seLinuxOptions.user.'"]),
            forbidden(&["'role may not be set — Remove seLinuxOptions.role.'"]),
        )
    };
    let pod_options = "variables.podSc.seLinuxOptions";
    let pod_bad = format!(
        "{} && ({})",
        has("variables.podSc", "seLinuxOptions"),
        any_bad(pod_options)
    );
    let c_bad = format!(
        "{} && ({})",
        sc("c", "seLinuxOptions"),
        any_bad("c.securityContext.seLinuxOptions")
    );
    p.validate(
        "seLinuxOptions",
        format!(
            "{} || !(({pod_bad}) || variables.allContainers.exists(c, {c_bad}))",
            gate("seLinuxOptions", None)
        ),
        format!(
            "({pod_bad}) ? {} : [{}].map(c, {})[0]",
            selinux_message("'pod'", pod_options),
            first("variables.allContainers", &c_bad),
            selinux_message(
                &format!("'container ' + {}", quoted("c.name")),
                "c.securityContext.seLinuxOptions"
            ),
        ),
    );

    // seccompProfile_baseline: from 1.19 the fields must not name an unconfined profile where
    // set; before, the alpha annotations of the pod and of its containers.
    let valid = |p: &str| format!("(has({p}.type) && {p}.type in ['RuntimeDefault', 'Localhost'])");
    let pod_bad = format!(
        "{} && !{}",
        has("variables.podSc", "seccompProfile"),
        valid("variables.podSc.seccompProfile")
    );
    let c_bad = format!(
        "{} && !{}",
        sc("c", "seccompProfile"),
        valid("c.securityContext.seccompProfile")
    );
    let prefix = pss::SECCOMP_CONTAINER_ANNOTATION_PREFIX;
    p.variables.push((
        "seccompAnnotations",
        format!(
            "variables.annotations.filter(k, (k == {pod} || (k.startsWith({prefix_lit}) && \
             variables.allContainers.exists(c, {name} == k.substring({len})))) && !({value} == \
             'runtime/default' || {value} == 'docker/default' || {value}.startsWith('localhost/')))",
            pod = lit(pss::SECCOMP_POD_ANNOTATION),
            prefix_lit = lit(prefix),
            name = get_or("c", "name", "''"),
            len = prefix.chars().count(),
        ),
    ));
    let type_of = |p: &str| quoted(&get_or(p, "type", "''"));
    let remedy = "' — Set seccompProfile.type to \"RuntimeDefault\" or \"Localhost\".'";
    let key = smallest("variables.seccompAnnotations");
    p.validate(
        "seccompProfile_baseline",
        format!(
            "{} || (variables.minor >= 19 ? !(({pod_bad}) || variables.allContainers.exists(c, \
             {c_bad})) : size(variables.seccompAnnotations) == 0)",
            gate("seccompProfile_baseline", None)
        ),
        format!(
            "variables.minor < 19 ? [{key}].map(k, {})[0] : ({pod_bad}) ? {} : [{}].map(c, {})[0]",
            message(
                "seccompProfile_baseline",
                &[
                    "'seccompProfile: forbidden annotation ' + k + '='",
                    &quoted(value),
                    "' — Set annotation ' + k + ' to \"runtime/default\" or \
                     \"localhost/<profile>\", or remove it.'",
                ],
            ),
            message(
                "seccompProfile_baseline",
                &[
                    "'seccompProfile: pod must not set securityContext.seccompProfile.type to '",
                    &type_of("variables.podSc.seccompProfile"),
                    remedy,
                ],
            ),
            first("variables.allContainers", &c_bad),
            message(
                "seccompProfile_baseline",
                &[
                    "'seccompProfile: container '",
                    &quoted("c.name"),
                    "' must not set securityContext.seccompProfile.type to '",
                    &type_of("c.securityContext.seccompProfile"),
                    remedy,
                ],
            ),
        ),
    );

    // sysctls: only the safe set of the policy version.
    let safe = versioned(&pss::SAFE_SYSCTLS, list_lit);
    let name = get_or("s", "name", "''");
    let sysctls = get_or("variables.podSc", "sysctls", "[]");
    let bad = format!("!({name} in {safe})");
    p.validate(
        "sysctls",
        format!("{} || !{sysctls}.exists(s, {bad})", gate("sysctls", None)),
        format!(
            "[{sysctls}.filter(s, {bad})[0]].map(s, {})[0]",
            message(
                "sysctls",
                &[
                    "'forbidden sysctls: '",
                    &name,
                    "' — Remove sysctl '",
                    &quoted(&name),
                    "' from spec.securityContext.sysctls; it is not in the safe set of policy \
                     version v1.' + string(variables.minor) + '.'",
                ],
            )
        ),
    );
}

fn host_namespace_message(field: &str) -> String {
    lit(&format!(
        "hostNamespaces: host namespaces: {field}=true — Remove spec.{field} or set it to false."
    ))
}

// ---------------------------------------------------------------------------------------------
// Platform policies on pods
// ---------------------------------------------------------------------------------------------

fn requests_limits() -> Compiled {
    let mut p = pod_policy(PolicyId::RequireRequestsLimits);
    let sets = |root: &str, section: &str, resource: &str| {
        format!(
            "({})",
            has(root, &format!("resources.{section}.{resource}"))
        )
    };
    // A limit alone satisfies a request: the API server defaults the request to it.
    let request_or_limit = |root: &str, resource: &str| {
        format!(
            "{} || {}",
            sets(root, "requests", resource),
            sets(root, "limits", resource)
        )
    };
    let pod = "variables.spec";
    for (check, field, what, example, pod_ok, c_ok) in [
        (
            "cpu-request",
            "resources.requests.cpu",
            "cpu request",
            "100m",
            request_or_limit(pod, "cpu"),
            request_or_limit("c", "cpu"),
        ),
        (
            "memory-request",
            "resources.requests.memory",
            "memory request",
            "128Mi",
            request_or_limit(pod, "memory"),
            request_or_limit("c", "memory"),
        ),
        (
            "memory-limit",
            "resources.limits.memory",
            "memory limit",
            "256Mi",
            sets(pod, "limits", "memory"),
            sets("c", "limits", "memory"),
        ),
    ] {
        let bad = format!("!({c_ok})");
        let name = quoted(&format!("variables.containers.filter(c, {bad})[0].name"));
        p.validate(
            check,
            format!("({pod_ok}) || variables.containers.all(c, {c_ok})"),
            message(
                check,
                &[
                    "'container '",
                    &name,
                    &lit(&format!(" sets no {what} — Set {field} on container ")),
                    &name,
                    &lit(&format!(
                        " (for example {example}): the scheduler, the namespace quota and the \
                         memory floor of its neighbours depend on it."
                    )),
                ],
            ),
        );
    }
    p
}

/// The pull policy a reference defaults to, as the API server defaults it (and
/// `ImageRef::default_pull_policy`): `Always` for `:latest` or no tag and no digest.
fn defaults_to_always(reference: &str) -> String {
    format!(
        "({reference}.matches('^([^@]*/)?[^/@]*:latest(@|$)') || !{reference}.matches('(@|^([^@]*/)?[^/@]*:)'))"
    )
}

fn pull_policy() -> Compiled {
    let mut p = pod_policy(PolicyId::ImagePullPolicyAlways);
    let ok = |policy: &str, reference: &str| {
        format!(
            "(has({policy}) ? {policy} == 'Always' : (!has({reference}) || {}))",
            defaults_to_always(reference)
        )
    };
    let c_ok = ok("c.imagePullPolicy", "c.image");
    let v_ok = ok("v.image.pullPolicy", "v.image.reference");
    let c_bad = format!("!({c_ok})");
    let c = format!("variables.allContainers.filter(c, {c_bad})[0]");
    let v = format!("variables.volumes.filter(v, has(v.image) && !({v_ok}))[0]");
    let describe = |owner: &str, policy: &str| {
        format!(
            "{owner} + (has({policy}) ? ' sets pull policy ' + {q} : ' defaults to pull policy \"IfNotPresent\"')",
            q = quoted(policy)
        )
    };
    p.validate(
        "image-pull-policy",
        format!(
            "variables.allContainers.all(c, {c_ok}) && variables.volumes.all(v, !has(v.image) || {v_ok})"
        ),
        message(
            "image-pull-policy",
            &[
                &format!(
                    "(variables.allContainers.exists(c, {c_bad}) ? {} : {})",
                    describe(
                        &format!("'container ' + {}", quoted(&format!("{c}.name"))),
                        &format!("{c}.imagePullPolicy")
                    ),
                    describe("'image volume'", &format!("{v}.image.pullPolicy"))
                ),
                "' — Set imagePullPolicy: Always, so every start re-checks the registry\\'s \
                 authorisation.'",
            ],
        ),
    );
    p
}

// ---------------------------------------------------------------------------------------------
// Registries (per tenant)
// ---------------------------------------------------------------------------------------------

/// `[value].map(var, body)[0]`: `body` with `var` bound to `value` (the API server's CEL has
/// no `cel.bind`).
fn bind(value: &str, var: &str, body: &str) -> String {
    format!("[{value}].map({var}, {body})[0]")
}

/// A string in a CEL message quoted as the engine's `{:?}` quotes it (quotes, backslashes and
/// the common control characters escaped).
fn debug_quoted(expr: &str) -> String {
    format!(
        "'\"' + {expr}.replace('\\\\', '\\\\\\\\').replace('\"', '\\\\\"').replace('\\t', \
         '\\\\t').replace('\\n', '\\\\n').replace('\\r', '\\\\r') + '\"'"
    )
}

/// `variables.images`: every image reference of the pod template as [`ImageRef::parse`]
/// reads it, each a map of strings: `owner` and `ref` (as the engine names them), `err` (the
/// parser's complaint, empty when valid), `norm` (`registry/repository`, what allow-list
/// prefixes are compared with) and `display` (the reference fully qualified).
///
/// [`ImageRef::parse`]: crate::image::ImageRef::parse
fn image_variables() -> Vec<(&'static str, String)> {
    let containers = format!(
        "variables.allContainers.filter(c, has(c.image)).map(c, {{'owner': 'container ' + {}, \
         'ref': string(c.image)}})",
        debug_quoted(&format!("string({})", get_or("c", "name", "''")))
    );
    let volumes = format!(
        "variables.volumes.filter(v, {}).map(v, {{'owner': 'image volume', 'ref': \
         string(v.image.reference)}})",
        has("v", "image.reference")
    );
    // Before the first '@'; a tag follows the last ':' after the last '/' (before it, a ':'
    // is a port).
    let split = format!(
        "variables.imageRefs.map(i, {})",
        bind(
            "i.ref.split('@')[0]",
            "n",
            &bind(
                "n.matches(':[^/]*$')",
                "t",
                "{'owner': string(i.owner), 'ref': string(i.ref), 'tagged': t ? 'y' : '', 'tag': t ? \
                 n.substring(n.lastIndexOf(':') + 1) : '', 'base': t ? n.substring(0, \
                 n.lastIndexOf(':')) : n}"
            )
        )
    );
    // The first segment names a registry if it has a '.' or ':', is localhost, or has an
    // upper-case letter; else the reference is Docker Hub's (library/ for a one-segment
    // path).
    let host = bind(
        "i.base.indexOf('/')",
        "s",
        &bind(
            "s >= 0 && [i.base.substring(0, s)].exists(f, f.matches('[.:A-Z]') || f == \
             'localhost')",
            "h",
            &bind(
                "h ? [i.base.substring(0, s).lowerAscii()].map(r, r == 'index.docker.io' || \
                 r == 'registry-1.docker.io' ? 'docker.io' : r)[0] : 'docker.io'",
                "r",
                &bind(
                    "h ? i.base.substring(s + 1) : i.base",
                    "q",
                    &bind(
                        "r == 'docker.io' && !q.contains('/') ? 'library/' + q : q",
                        "p",
                        &format!(
                            "{{'owner': string(i.owner), 'ref': string(i.ref), 'err': {err}, 'norm': r + '/' + \
                             p, 'display': r + '/' + p + i.ref.substring(size(i.base))}}",
                            err = image_error()
                        ),
                    ),
                ),
            ),
        ),
    );
    vec![
        ("imageRefs", format!("{containers} + {volumes}")),
        ("imageParts", split),
        ("images", format!("variables.imageParts.map(i, {host})")),
    ]
}

/// The engine's complaint about `i.ref` (registry `r`, repository `p`), in its order; `''`
/// for a valid reference.
fn image_error() -> String {
    let checks = [
        ("size(i.ref) == 0", "'is empty'"),
        ("size(bytes(i.ref)) > 4096", "'is too long'"),
        (
            // ASCII whitespace and control characters.
            "i.ref.matches('[\\\\x00-\\\\x20\\\\x7f]')",
            "'contains whitespace'",
        ),
        (
            &*format!("i.ref.contains('@') && !{}", has_digest("i.ref")),
            "(i.ref.matches('^[^@]*@[^:]*:') ? 'has a malformed digest (expected \
             sha256:<64 hex digits>)' : 'has a malformed digest (expected algorithm:hex)')",
        ),
        (
            "i.tagged == 'y' && !i.tag.matches('^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$')",
            "'has a malformed tag'",
        ),
        (
            "!r.matches('^(\\\\[[a-z0-9.:-]+\\\\](:[0-9]{1,5}|[^:].*)?|[a-z0-9.-]+(:[0-9]{1,5})?)$')",
            "'has a malformed registry host'",
        ),
        (
            "!p.matches('^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*$') \
             || p.matches('\\\\.\\\\.|\\\\._|_\\\\.|___|\\\\.-|-\\\\.')",
            "'has a malformed repository path (lower-case letters, digits and single \
             separators)'",
        ),
    ];
    let mut out = String::new();
    for (when, what) in checks {
        out.push_str(&format!("{when} ? {what} : "));
    }
    out.push_str("''");
    format!("({out})")
}

/// `allowed-registries`: every image from one of the tenant's registries (its parameters'
/// `registryPrefixes`, already normalised), compared on the registry host and whole path
/// segments; a tenant listing none is not restricted.
fn registries() -> Compiled {
    let mut p = pod_policy(PolicyId::AllowedRegistries);
    p.params = true;
    p.variables.extend(image_variables());
    let unrestricted = "size(params.spec.registryPrefixes) == 0";
    let admitted =
        "params.spec.registryPrefixes.exists(a, i.norm == a || i.norm.startsWith(a + '/'))";
    let invalid = "variables.images.filter(i, i.err != '')[0]";
    p.validate(
        "invalid-image",
        format!("{unrestricted} || variables.images.all(i, i.err == '')"),
        message(
            "invalid-image",
            &[
                &format!("{invalid}.owner"),
                "' image '",
                &debug_quoted(&format!("{invalid}.ref")),
                "' is not a valid image reference: it '",
                &format!("{invalid}.err"),
                "' — Use a reference like registry.example.com/team/app:1.2.3 or \
                 …@sha256:<digest>.'",
            ],
        ),
    );
    let refused = format!("variables.images.filter(i, i.err == '' && !{admitted})[0]");
    p.validate(
        "registry-not-allowed",
        format!("{unrestricted} || variables.images.all(i, i.err != '' || {admitted})"),
        message(
            "registry-not-allowed",
            &[
                &format!("{refused}.owner"),
                "' image '",
                &debug_quoted(&format!("{refused}.ref")),
                "' ('",
                &format!("{refused}.display"),
                "') is not from a registry tenant '",
                "params.spec.tenant",
                "' may use — Use an image from '",
                "params.spec.registries.join(', ')",
                "' (the tenant\\'s `registries`), or ask the platform team to add the \
                 registry.'",
            ],
        ),
    );
    p
}

/// Whether a reference carries a digest the engine's image parser accepts
/// (`image::check_digest`: `algorithm:encoded`, sha256 as 64 lower-case hex digits).
fn has_digest(reference: &str) -> String {
    format!(
        "({reference}.matches('^[^@]*@[a-z0-9+._-]+:[A-Za-z0-9=_-]{{32,}}$') && \
         (!{reference}.matches('^[^@]*@sha256:') || {reference}.matches('^[^@]*@sha256:[0-9a-f]{{64}}$')))"
    )
}

fn digest() -> Compiled {
    let mut p = pod_policy(PolicyId::RequireDigest);
    let c_bad = format!("has(c.image) && !{}", has_digest("c.image"));
    let v_bad = format!(
        "{} && !{}",
        has("v", "image.reference"),
        has_digest("v.image.reference")
    );
    let c = format!("variables.allContainers.filter(c, {c_bad})[0]");
    let v = format!("variables.volumes.filter(v, {v_bad})[0]");
    let describe = |owner: &str, image: &str| {
        format!(
            "{owner} + ' image ' + {} + ' is not pinned by digest — Pin the image by digest: ' + \
             {image}.split('@')[0] + '@sha256:<digest> (a tag may stay before the @).'",
            quoted(image)
        )
    };
    p.validate_part(
        "image-digest",
        format!(
            "!variables.allContainers.exists(c, {c_bad}) && !variables.volumes.exists(v, {v_bad})"
        ),
        message(
            "image-digest",
            &[&format!(
                "(variables.allContainers.exists(c, {c_bad}) ? {} : {})",
                describe(
                    &format!("'container ' + {}", quoted(&format!("{c}.name"))),
                    &format!("{c}.image")
                ),
                describe("'image volume'", &format!("{v}.image.reference"))
            )],
        ),
    );
    p
}

fn placement(engine: &Engine) -> Compiled {
    let mut p = pod_policy(PolicyId::TenantPlacement);
    // Placement judges its own fields, not the pod policies' "significant update".
    p.match_conditions = vec![(
        "placement-changed",
        spec_fields_changed(&["nodeName", "nodeSelector", "tolerations"]),
    )];
    let remedy = match &engine.default_placement.node_selector {
        Some(labels) if !labels.is_empty() => format!(
            "Remove nodeName; the tenant's pods select their nodes with nodeSelector {}.",
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
        _ => "Remove nodeName and let the scheduler choose.".to_owned(),
    };
    // A bound pod's nodeName was set by the scheduler's binding: only a create (or a template)
    // names a node by hand.
    p.validate(
        "node-name",
        format!(
            "(request.operation == 'UPDATE' && object.kind == 'Pod') || {} == ''",
            get_or("variables.spec", "nodeName", "''")
        ),
        message(
            "node-name",
            &[
                "'names node '",
                &quoted("variables.spec.nodeName"),
                &lit(&format!(
                    ": only the scheduler places a tenant's pods — {remedy}"
                )),
            ],
        ),
    );
    p
}

/// `tenant-placement` per tenant. `node-selector`: every label of the tenant's
/// `placement.nodeSelector` (its parameters' `nodeSelector`, in the engine's order) selected
/// with exactly its value; a tenant without one is not bound. `tolerations`: every toleration
/// of the pod within one of the tenant's `placement.tolerations` (its parameters'
/// `tolerations.allowed`), as `tolerates_within` decides, node-condition taints always
/// allowed; a tenant without a list may tolerate any key, never every taint at once.
fn tenant_placement() -> Compiled {
    let mut p = pod_policy(PolicyId::TenantPlacement);
    p.params = true;
    p.name_suffix = "-tenant";
    p.match_conditions = vec![(
        "placement-changed",
        spec_fields_changed(&["nodeName", "nodeSelector", "tolerations"]),
    )];
    let selector = get_or("variables.spec", "nodeSelector", "{}");
    let ok = format!("(q.key in {selector} && {selector}[q.key] == q.value)");
    let q = format!("params.spec.nodeSelector.filter(q, !{ok})[0]");
    p.validate(
        "node-selector",
        format!("params.spec.nodeSelector.all(q, {ok})"),
        message(
            "node-selector",
            &[
                &bind(
                    &q,
                    "q",
                    &format!(
                        "q.key in {selector} ? 'selects ' + q.key + '=' + string({selector}[q.key]) \
                         : 'does not select ' + q.key + '=' + q.value"
                    ),
                ),
                "'; the tenant\\'s pods must run on nodes labelled '",
                "params.spec.nodeSelector.map(q, q.key + '=' + q.value).join(',')",
                "' — Set nodeSelector '",
                &format!("{q}.key"),
                "': '",
                &format!("{q}.value"),
                "' (the tenant\\'s placement.nodeSelector).'",
            ],
        ),
    );
    tolerations(&mut p);
    p
}

/// `tenant-placement`'s `tolerations` check, as `judge_toleration` words it. The pod's
/// tolerations and the tenant's allowed ones are read into one shape, `{key, op, value, set,
/// effect}` (`op` `Exists` or `Equal`, `set` `y` when a value is given, an effect the engine
/// does not know read as every effect), so one description serves both.
fn tolerations(p: &mut Compiled) {
    let effect = |t: &str| {
        format!(
            "(has({t}.effect) && {t}.effect in ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] \
             ? string({t}.effect) : '')"
        )
    };
    let listed = "has(params.spec.tolerations) && has(params.spec.tolerations.allowed)";
    p.variables.push((
        "tolerations",
        format!(
            "{}.map(t, {})",
            get_or("variables.spec", "tolerations", "[]"),
            bind(
                "has(t.operator) && t.operator == 'Exists'",
                "x",
                &format!(
                    "{{'key': {key}, 'op': x ? 'Exists' : 'Equal', 'value': x ? '' : {value}, \
                     'set': x ? '' : 'y', 'effect': {effect}}}",
                    key = string_or_empty("t", "key"),
                    value = string_or_empty("t", "value"),
                    effect = effect("t"),
                )
            ),
        ),
    ));
    p.variables.push((
        "allowedTolerations",
        format!(
            "{listed} ? params.spec.tolerations.allowed.map(a, {{'key': {key}, 'op': \
             has(a.operator) && a.operator == 'Exists' ? 'Exists' : 'Equal', 'value': {value}, \
             'set': has(a.value) ? 'y' : '', 'effect': {effect}}}) : []",
            key = string_or_empty("a", "key"),
            value = string_or_empty("a", "value"),
            effect = effect("a"),
        ),
    ));
    // `tolerates_within(a, w)`.
    let within = "((a.key == '' && a.op == 'Exists') || a.key == w.key) && (a.op == 'Exists' || \
                  (w.op != 'Exists' && a.set == 'y' && a.value == w.value)) && (a.effect == '' \
                  || a.effect == w.effect)";
    let bad = format!(
        "!(w.key != '' && w.key.startsWith({})) && !({listed} ? \
         variables.allowedTolerations.exists(a, {within}) : w.key != '')",
        lit(NODE_CONDITION_TAINT_PREFIX)
    );
    let describe = |t: &str| {
        format!(
            "({t}.op == 'Exists' && {t}.key == '' ? 'every taint (operator: Exists, no key)' : \
             {t}.op == 'Exists' ? {t}.key + ' (any value)' : {t}.key + '=' + {t}.value) + \
             ({t}.effect != '' ? ':' + {t}.effect : '')"
        )
    };
    p.validate(
        "tolerations",
        format!("!variables.tolerations.exists(w, {bad})"),
        message(
            "tolerations",
            &[
                "'tolerates '",
                &bind(
                    &format!("variables.tolerations.filter(w, {bad})[0]"),
                    "w",
                    &describe("w"),
                ),
                "', which lets the pod onto nodes the tenant may not use — '",
                &format!(
                    "(size(variables.allowedTolerations) == 0 ? {} : 'Tolerate only what the \
                     tenant\\'s placement.tolerations allows: ' + \
                     variables.allowedTolerations.map(a, {}).join(', ') + '.')",
                    lit("Tolerate only the taints the platform names for the tenant's nodes, by key."),
                    describe("a"),
                ),
            ],
        ),
    );
}

/// `allowed-classes`, per tenant: every class an object names from the tenant's list of that
/// kind (its parameters' `classes`, the engine's resolved [`Classes`]); a kind the tenant has
/// no list for is not restricted, except that a PriorityClass named `system-*` (Kubernetes'
/// own) is refused without a list. Pods and templates (PriorityClass, RuntimeClass, ephemeral
/// volumes' StorageClass) are judged on an update only when it changes those fields, as the
/// engine's `pod_classes` does; PersistentVolumeClaims, StatefulSets' claim templates,
/// Ingresses (with the legacy annotation) and Gateways on every request, as `object_classes`
/// does. One validation per check, over the offenders in the engine's order, so the message is
/// the engine's first finding.
///
/// [`Classes`]: tenantry_api::tenant::Classes
fn classes() -> Compiled {
    let mut rules = pod_rules();
    let rule = |group: &str, resources: &[&str]| {
        json!({
            "apiGroups": [group], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
            "resources": resources,
        })
    };
    if let Some(list) = rules.as_array_mut() {
        list.push(rule("", &["persistentvolumeclaims"]));
        list.push(rule("networking.k8s.io", &["ingresses"]));
        list.push(rule("extensions", &["ingresses"]));
        list.push(rule("gateway.networking.k8s.io", &["gateways"]));
    }
    let mut p = Compiled::new(PolicyId::AllowedClasses, rules);
    p.params = true;
    // The kinds whose pod template the engine judges (`pss::pod_template`), by group.
    let group = "(object.apiVersion.contains('/') ? object.apiVersion.split('/')[0] : '')";
    let pod_kinds = format!(
        "(({group} == '' && object.kind in ['Pod', 'ReplicationController', 'PodTemplate']) || \
         ({group} == 'apps' && object.kind in ['Deployment', 'StatefulSet', 'DaemonSet', \
         'ReplicaSet']) || ({group} == 'batch' && object.kind in ['Job', 'CronJob']))"
    );
    p.variables = vec![
        (
            "podJudged",
            format!(
                "{pod_kinds} && ({})",
                spec_fields_changed(&["priorityClassName", "runtimeClassName", "volumes"])
            ),
        ),
        (
            "spec",
            format!(
                "variables.podJudged ? {} : {{}}",
                template("object", "spec")
            ),
        ),
        // Each named class as `{'p': where, 'c': class}`: the pod template's ephemeral
        // volumes (`p` empty), then what the object names itself. An update keeps a class the
        // old object named at the same place (the engine's carry-over: same check, path and
        // message, the message being the class's); the template's are never carried over
        // (the engine judges them by the update rule instead).
        (
            "storage",
            format!(
                "{}.filter(v, {}).map(v, {{'p': '', 'c': string(v.ephemeral.volumeClaimTemplate.spec.storageClassName)}}) + {}",
                get_or("variables.spec", "volumes", "[]"),
                has("v", "ephemeral.volumeClaimTemplate.spec.storageClassName"),
                storage_refs("object"),
            ),
        ),
        ("oldStorage", old_refs(&storage_refs("oldObject"))),
        ("ingress", ingress_refs("object")),
        ("oldIngress", old_refs(&ingress_refs("oldObject"))),
        ("gateway", gateway_refs("object")),
        ("oldGateway", old_refs(&gateway_refs("oldObject"))),
    ];
    let listed =
        |kind: &str| format!("has(params.spec.classes) && has(params.spec.classes.{kind})");
    // `<Title> "<class>" is not one the tenant may use (allowed: …) — <remedy>`, as
    // `judge_class` words it.
    let refused = |kind: &str, title: &str, class: &str| -> String {
        let list = format!("params.spec.classes.{kind}");
        let allowed = format!("(size({list}.allowed) == 0 ? 'none' : {list}.allowed.join(', '))");
        message(
            &format!("{kind}-class"),
            &[
                &lit(&format!("{title} ")),
                &debug_quoted(class),
                "' is not one the tenant may use (allowed: '",
                &allowed,
                "') — '",
                &format!(
                    "(has({list}.default) ? 'Use one of ' + {allowed} + ', or leave it out to \
                     get the default, ' + {list}.default + '.' : 'Use one of ' + {allowed} + \
                     {})",
                    lit(&format!(" (the tenant's classes.{kind}).")),
                ),
            ],
        )
    };
    // Named classes (priority, runtime): unset or empty names none.
    let named = |field: &str| get_or("variables.spec", field, "''");
    let priority = named("priorityClassName");
    p.validate(
        "priority-class",
        format!(
            "{priority} == '' || ({} ? {priority} in params.spec.classes.priority.allowed : \
             !{priority}.startsWith('system-'))",
            listed("priority")
        ),
        format!(
            "{} ? {} : {}",
            listed("priority"),
            refused("priority", "PriorityClass", &priority),
            message(
                "priority-class",
                &[
                    "'PriorityClass '",
                    &debug_quoted(&priority),
                    &lit(
                        " is Kubernetes' own, for node- and cluster-critical pods: a tenant's \
                         pod would preempt other tenants' — Remove priorityClassName, or use a \
                         class the platform provides for tenants."
                    ),
                ],
            )
        ),
    );
    let runtime = named("runtimeClassName");
    p.validate(
        "runtime-class",
        format!(
            "{runtime} == '' || !({}) || {runtime} in params.spec.classes.runtime.allowed",
            listed("runtime")
        ),
        refused("runtime", "RuntimeClass", &runtime),
    );
    for (kind, title) in [
        ("storage", "StorageClass"),
        ("ingress", "IngressClass"),
        ("gateway", "GatewayClass"),
    ] {
        let allowed = format!("params.spec.classes.{kind}.allowed");
        let old = format!("variables.old{}{}", &kind[..1].to_uppercase(), &kind[1..]);
        let bad = format!("!(r.c in {allowed}) && !(r in {old})");
        p.validate(
            match kind {
                "storage" => "storage-class",
                "ingress" => "ingress-class",
                _ => "gateway-class",
            },
            format!("!({}) || !variables.{kind}.exists(r, {bad})", listed(kind)),
            refused(
                kind,
                title,
                &format!("variables.{kind}.filter(r, {bad})[0].c"),
            ),
        );
    }
    p
}

/// The StorageClasses `root` names itself (a claim's, a StatefulSet's claim templates', by
/// index), as `{'p': where, 'c': class}`.
fn storage_refs(root: &str) -> String {
    format!(
        "({root}.kind == 'PersistentVolumeClaim' && {} ? [{{'p': 'claim', 'c': string({root}.spec.storageClassName)}}] : []) + \
         ({root}.kind == 'StatefulSet' ? {}.transformList(i, t, {}, {{'p': string(i), 'c': string(t.spec.storageClassName)}}) : [])",
        has(root, "spec.storageClassName"),
        get_or(root, "spec.volumeClaimTemplates", "[]"),
        has("t", "spec.storageClassName"),
    )
}

/// The IngressClasses an Ingress `root` names: its field, then the legacy annotation.
fn ingress_refs(root: &str) -> String {
    format!(
        "{root}.kind == 'Ingress' ? ({} ? [{{'p': 'field', 'c': string({root}.spec.ingressClassName)}}] : []) + \
         ((has({root}.metadata.annotations) && {legacy} in {root}.metadata.annotations) \
         ? [{{'p': 'annotation', 'c': string({root}.metadata.annotations[{legacy}])}}] : []) : []",
        has(root, "spec.ingressClassName"),
        legacy = lit("kubernetes.io/ingress.class"),
    )
}

/// The GatewayClass a Gateway `root` names.
fn gateway_refs(root: &str) -> String {
    format!(
        "{root}.kind == 'Gateway' && {} ? [{{'p': 'field', 'c': string({root}.spec.gatewayClassName)}}] : []",
        has(root, "spec.gatewayClassName")
    )
}

/// What the old object named, on an update (nothing on a create).
fn old_refs(refs: &str) -> String {
    format!("request.operation == 'UPDATE' ? ({refs}) : []")
}

// ---------------------------------------------------------------------------------------------
// Services and secret stores
// ---------------------------------------------------------------------------------------------

fn services(id: PolicyId) -> Compiled {
    let rules = json!([{
        "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
        "resources": ["services"],
    }]);
    let mut p = Compiled::new(id, rules);
    let service_type = |o: &str| get_or(&format!("{o}.spec"), "type", "'ClusterIP'");
    let ports = |o: &str| get_or(&format!("{o}.spec"), "ports", "[]");
    match id {
        PolicyId::NoNodePort => {
            let ok = |o: &str| {
                format!(
                    "{} != 'NodePort' && !{}.exists(q, has(q.nodePort) && q.nodePort != 0)",
                    service_type(o),
                    ports(o)
                )
            };
            let port = format!(
                "{}.filter(q, has(q.nodePort) && q.nodePort != 0)[0]",
                ports("object")
            );
            p.validate(
                "node-port",
                carry_over(&ok("object"), &ok("oldObject")),
                format!(
                    "{} == 'NodePort' ? {} : {}",
                    service_type("object"),
                    lit(
                        "node-port: Service type NodePort opens a port on every node, around the \
                         platform Gateway — Use type ClusterIP and expose the Service through an \
                         HTTPRoute on the platform Gateway."
                    ),
                    message(
                        "node-port",
                        &[
                            "'Service port '",
                            &format!("string({}.indexOf({port}))", ports("object")),
                            "' asks for node port '",
                            &format!("string({port}.nodePort)"),
                            "' — Remove nodePort; expose the Service through the platform Gateway.'",
                        ]
                    )
                ),
            );
        }
        PolicyId::NoLoadBalancer => {
            let ok = |o: &str| format!("{} != 'LoadBalancer'", service_type(o));
            p.validate(
                "load-balancer",
                carry_over(&ok("object"), &ok("oldObject")),
                lit(
                    "load-balancer: Service type LoadBalancer provisions an external load \
                     balancer around the platform Gateway — Use type ClusterIP and expose the \
                     Service through an HTTPRoute on the platform Gateway.",
                ),
            );
        }
        _ => {
            let ips = |o: &str| get_or(&format!("{o}.spec"), "externalIPs", "[]");
            let ok = |o: &str| format!("size({}) == 0", ips(o));
            p.validate(
                "external-ips",
                carry_over(&ok("object"), &ok("oldObject")),
                message(
                    "external-ips",
                    &[
                        "'Service claims external IP '",
                        &quoted(&format!("{}[0]", ips("object"))),
                        "': traffic for that address from anywhere in the cluster would reach \
                         this tenant — Remove spec.externalIPs.'",
                    ],
                ),
            );
        }
    }
    p
}

fn secret_stores(engine: &Engine) -> Compiled {
    let rules = json!([{
        "apiGroups": ["external-secrets.io"], "apiVersions": ["*"],
        "operations": ["CREATE", "UPDATE"], "resources": ["externalsecrets", "pushsecrets"],
    }]);
    let mut p = Compiled::new(PolicyId::RestrictSecretStores, rules);
    not_a_secret_store_reconciler(engine, &mut p);
    // Every store reference of an ExternalSecret or PushSecret, and every generator reference.
    let entries = |o: &str| {
        format!(
            "({} + {})",
            get_or(&format!("{o}.spec"), "data", "[]"),
            get_or(&format!("{o}.spec"), "dataFrom", "[]")
        )
    };
    let stores = |o: &str| {
        format!(
            "({o}.kind == 'PushSecret' ? {} : ({} ? [{o}.spec.secretStoreRef] : []) + \
             {}.filter(e, {}).map(e, e.sourceRef.storeRef))",
            get_or(&format!("{o}.spec"), "secretStoreRefs", "[]"),
            has(o, "spec.secretStoreRef"),
            entries(o),
            has("e", "sourceRef.storeRef"),
        )
    };
    let generators = |o: &str| {
        format!(
            "({o}.kind == 'PushSecret' ? ({} ? [{o}.spec.selector.generatorRef] : []) : {}.filter(e, {}).map(e, e.sourceRef.generatorRef))",
            has(o, "spec.selector.generatorRef"),
            entries(o),
            has("e", "sourceRef.generatorRef"),
        )
    };
    let is = |kind: &str| format!("has(r.kind) && r.kind == {}", lit(kind));
    let store_ok = |o: &str| format!("!{}.exists(r, {})", stores(o), is("ClusterSecretStore"));
    let store_name = get_or(
        &format!(
            "{}.filter(r, {})[0]",
            stores("object"),
            is("ClusterSecretStore")
        ),
        "name",
        "''",
    );
    p.validate(
        "cluster-secret-store",
        carry_over(&store_ok("object"), &store_ok("oldObject")),
        message(
            "cluster-secret-store",
            &[
                "'references ClusterSecretStore '",
                &quoted(&store_name),
                "', which can read secrets beyond this tenant — Reference the tenant\\'s \
                 namespaced store: kind: SecretStore (the platform provides one per tenant \
                 namespace).'",
            ],
        ),
    );
    let generator_ok =
        |o: &str| format!("!{}.exists(r, {})", generators(o), is("ClusterGenerator"));
    let generator_name = get_or(
        &format!(
            "{}.filter(r, {})[0]",
            generators("object"),
            is("ClusterGenerator")
        ),
        "name",
        "''",
    );
    p.validate(
        "cluster-generator",
        carry_over(&generator_ok("object"), &generator_ok("oldObject")),
        message(
            "cluster-generator",
            &[
                "'references ClusterGenerator '",
                &quoted(&generator_name),
                "', which generates with the platform\\'s credentials, not the tenant\\'s — Use \
                 a namespaced generator (e.g. kind: Password in the tenant\\'s namespace).'",
            ],
        ),
    );
    p
}

// ---------------------------------------------------------------------------------------------
// Flux
// ---------------------------------------------------------------------------------------------

/// The Flux kinds the webhook registers for (`catalog::admission_object_rules`), created or
/// updated; with `reconcilers_only`, only the kinds that apply objects (`flux::reconciles`).
fn flux_rules(reconcilers_only: bool) -> Value {
    let rules = crate::catalog::admission_object_rules();
    let mut out = Vec::new();
    for rule in rules.as_array().into_iter().flatten() {
        let Some(group) = rule["apiGroups"][0].as_str() else {
            continue;
        };
        if !group.ends_with(flux::FLUX_GROUP_SUFFIX) {
            continue;
        }
        let mut rule = rule.clone();
        rule["operations"] = json!(["CREATE", "UPDATE"]);
        if reconcilers_only {
            // The kinds are the resources' singular, capitalised: a reconciler's resource is
            // its kind in lower case, plural.
            let kept: Vec<Value> = rule["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| {
                    r.as_str().is_some_and(|r| {
                        ["Kustomization", "HelmRelease"].iter().any(|kind| {
                            flux::reconciles(group, kind)
                                && r == format!("{}s", kind.to_ascii_lowercase())
                        })
                    })
                })
                .cloned()
                .collect();
            if kept.is_empty() {
                continue;
            }
            rule["resources"] = json!(kept);
        }
        out.push(rule);
    }
    Value::Array(out)
}

/// Every reference of a Flux object `o` that can name a namespace, in the engine's order
/// (`flux::REFERENCES`), as `{'p': where, 'n': name, 'ns': namespace}` (`''` when unset).
fn flux_references_of(o: &str) -> String {
    let entry = |path: &str, r: &str| {
        format!(
            "{{'p': {path}, 'n': {}, 'ns': {}}}",
            string_or_empty(r, "name"),
            string_or_empty(r, "namespace")
        )
    };
    let parts: Vec<String> = flux::REFERENCES
        .iter()
        .map(|(field, is_list)| {
            let path = format!("spec.{field}");
            if *is_list {
                format!(
                    "{}.transformList(i, r, {})",
                    get_or(o, &path, "[]"),
                    entry(
                        &format!("{} + string(i) + ']'", lit(&format!("{field}["))),
                        "r"
                    )
                )
            } else {
                format!(
                    "({} ? [{}] : [])",
                    has(o, &path),
                    entry(&lit(field), &format!("{o}.{path}"))
                )
            }
        })
        .collect();
    format!(
        "({}).filter(e, e.ns != '' && e.ns != request.namespace)",
        parts.join(" + ")
    )
}

/// `flux-lockdown`'s `cross-namespace-ref`: every reference stays in the object's namespace.
/// Needs nothing of the tenant's (the object's namespace is the request's), so it is bound
/// platform-wide; the tenant's identity and namespaces are [`flux_tenant`]'s. An update keeps
/// a reference the old object had at the same place (the engine's carry-over: same path and
/// message).
fn flux_references() -> Compiled {
    let mut p = Compiled::new(PolicyId::FluxLockdown, flux_rules(false));
    p.variables = vec![
        ("oldForeign", old_refs(&flux_references_of("oldObject"))),
        (
            "foreign",
            format!(
                "{}.filter(e, !(e in variables.oldForeign))",
                flux_references_of("object")
            ),
        ),
    ];
    p.validate(
        "cross-namespace-ref",
        "size(variables.foreign) == 0".to_owned(),
        message(
            "cross-namespace-ref",
            &[
                "'references '",
                &debug_quoted("variables.foreign[0].n"),
                "' in namespace '",
                &debug_quoted("variables.foreign[0].ns"),
                "'; Flux objects of a tenant may only reference objects in its own namespace '",
                &debug_quoted("request.namespace"),
                "' — Remove the namespace (it defaults to the object\\'s own) and keep the \
                 referenced object beside this one.'",
            ],
        ),
    );
    p
}

/// `flux-lockdown` per tenant, for Kustomizations and HelmReleases: `service-account-name`
/// (the tenant's ServiceAccount, its parameters' `flux.serviceAccount`, else its name),
/// `kubeconfig` (only the tenant's proxy kubeconfig Secret, `flux.proxyKubeconfigSecret`;
/// none when it has none) and `target-namespace` (`targetNamespace` and `storageNamespace`
/// among its `namespaces`), worded as `flux::service_account`, `flux::kubeconfig` and
/// `flux::target_namespace` word them. An update keeping an offence the old object had, word
/// for word, is not refused (the engine's carry-over).
fn flux_tenant() -> Compiled {
    let mut p = Compiled::new(PolicyId::FluxLockdown, flux_rules(true));
    p.params = true;
    p.name_suffix = "-tenant";
    let field = |o: &str, name: &str| string_or_empty(&format!("{o}.spec"), name);
    // `[name]` of the kubeConfig's Secret when it names only a Secret, `[]` when it names
    // something else (or nothing): then the engine words it as "other than".
    let kubeconfig_secret = |o: &str| {
        format!(
            "({} && !{o}.spec.kubeConfig.exists(k, k != 'secretRef') && {} ? \
             [string({o}.spec.kubeConfig.secretRef.name)] : [])",
            has(o, "spec.kubeConfig"),
            has(&format!("{o}.spec.kubeConfig"), "secretRef.name"),
        )
    };
    let kubeconfig_ok = |o: &str| {
        format!(
            "!({}) || (variables.proxySecret != '' && {} == [variables.proxySecret])",
            has(o, "spec.kubeConfig"),
            kubeconfig_secret(o),
        )
    };
    let foreign_targets = |o: &str| {
        format!(
            "[['targetNamespace', {}], ['storageNamespace', {}]].filter(f, f[1] != '' && \
             !(f[1] in variables.namespaces))",
            field(o, "targetNamespace"),
            field(o, "storageNamespace"),
        )
    };
    p.variables = vec![
        (
            "serviceAccount",
            format!(
                "{} ? params.spec.flux.serviceAccount : params.spec.tenant",
                has("params.spec", "flux")
            ),
        ),
        (
            "proxySecret",
            string_or_empty("params.spec", "flux.proxyKubeconfigSecret"),
        ),
        ("namespaces", get_or("params.spec", "namespaces", "[]")),
        ("setAccount", field("object", "serviceAccountName")),
        ("kubeConfigSecret", kubeconfig_secret("object")),
        (
            "foreignTargets",
            format!(
                "{}.filter(f, !(f in ({})))",
                foreign_targets("object"),
                old_refs(&foreign_targets("oldObject"))
            ),
        ),
    ];
    p.validate(
        "service-account-name",
        format!(
            "variables.setAccount == variables.serviceAccount || (request.operation == 'UPDATE' \
             && {} == variables.setAccount)",
            field("oldObject", "serviceAccountName")
        ),
        message(
            "service-account-name",
            &[
                "object.kind",
                &format!(
                    "(variables.setAccount == '' ? {} : ' reconciles as ServiceAccount ' + {} + \
                     ', not as the tenant\\'s ' + {})",
                    lit(
                        " sets no serviceAccountName, so Flux would apply it with its own \
                         cluster-wide permissions"
                    ),
                    debug_quoted("variables.setAccount"),
                    debug_quoted("variables.serviceAccount"),
                ),
                "' — Set spec.serviceAccountName: ' + variables.serviceAccount + '.'",
            ],
        ),
    );
    p.validate(
        "kubeconfig",
        format!(
            "({}) || (request.operation == 'UPDATE' && !({}) && {} == variables.kubeConfigSecret)",
            kubeconfig_ok("object"),
            kubeconfig_ok("oldObject"),
            kubeconfig_secret("oldObject"),
        ),
        message(
            "kubeconfig",
            &[
                &format!(
                    "(size(variables.kubeConfigSecret) > 0 ? 'uses kubeconfig secret ' + {} + \
                     ', which is not the tenant\\'s proxy kubeconfig' : 'sets a kubeConfig \
                     other than the tenant\\'s proxy kubeconfig secret')",
                    debug_quoted("variables.kubeConfigSecret[0]"),
                ),
                "' — '",
                "(variables.proxySecret != '' ? 'Set spec.kubeConfig.secretRef.name: ' + \
                 variables.proxySecret + ' or remove kubeConfig.' : 'Remove spec.kubeConfig: \
                 tenant ' + params.spec.tenant + ' reconciles in-cluster as its \
                 ServiceAccount.')",
            ],
        ),
    );
    let first = "variables.foreignTargets[0]";
    let joined = "variables.namespaces.join(', ')";
    p.validate(
        "target-namespace",
        "size(variables.foreignTargets) == 0".to_owned(),
        message(
            "target-namespace",
            &[
                &format!(
                    "{first}[0] + ' ' + {}",
                    debug_quoted(&format!("{first}[1]"))
                ),
                &format!(
                    "' is not one of tenant ' + params.spec.tenant + '\\'s namespaces (' + \
                     {joined} + ') — Set spec.' + {first}[0] + ' to one of: ' + {joined} + '.'"
                ),
            ],
        ),
    );
    p
}

/// Leave out the platform's reconcilers, which apply its own ExternalSecrets into tenant
/// namespaces (`restrict-secret-stores` never judges them).
fn not_a_secret_store_reconciler(engine: &Engine, p: &mut Compiled) {
    let exempt: Vec<String> = engine
        .secret_store_reconcilers
        .iter()
        .map(|pattern| {
            let text = pattern.as_str();
            match text
                .strip_suffix('*')
                .filter(|prefix| pattern.matches(prefix))
            {
                Some(prefix) => format!("request.userInfo.username.startsWith({})", lit(prefix)),
                None => format!("request.userInfo.username == {}", lit(text)),
            }
        })
        .collect();
    if !exempt.is_empty() {
        p.match_conditions.push((
            "not-a-platform-reconciler",
            format!("!({})", exempt.join(" || ")),
        ));
    }
}

/// A per-tenant name the platform's configuration derives from the tenant's (`derive`, e.g.
/// `OpenBaoConfig::role_name`), as CEL on the parameters' tenant: the configuration's formula
/// is the one written, read around a marker.
fn derived_from_tenant(derive: impl Fn(&str) -> String) -> String {
    const MARK: &str = "\u{1}tenant\u{1}";
    let derived = derive(MARK);
    match derived.split_once(MARK) {
        Some((before, after)) => format!("({} + params.spec.tenant + {})", lit(before), lit(after)),
        None => lit(&derived),
    }
}

/// The host of an OpenBao address in CEL, as `secret_stores::service_host` reads it: after
/// the scheme, before the path, query or fragment, without user info or port, trailing dots
/// trimmed, lower case, `.cluster.local` then `.svc` folded away.
fn service_host_cel(address: &str) -> String {
    let rest = bind(
        address,
        "a",
        "a.indexOf('://') >= 0 ? a.substring(a.indexOf('://') + 3) : a",
    );
    let authority = format!("{rest}.split('/')[0].split('?')[0].split('#')[0]");
    let host = bind(
        &bind(
            &authority,
            "u",
            "u.lastIndexOf('@') >= 0 ? u.substring(u.lastIndexOf('@') + 1) : u",
        ),
        "h",
        "h.startsWith('[') ? h.substring(1).split(']')[0] : h.split(':')[0]",
    );
    let folded = bind(
        &format!("{host}.find('(?s)^(?:.*[^.])?').lowerAscii()"),
        "l",
        "l.endsWith('.cluster.local') ? l.substring(0, size(l) - 14) : l",
    );
    bind(
        &folded,
        "c",
        "c.endsWith('.svc') ? c.substring(0, size(c) - 4) : c",
    )
}

/// Whether `expr`, with leading and trailing `/` trimmed, is `want` (a configured mount).
fn trimmed_is(expr: &str, want: &str) -> String {
    if want.starts_with('/') || want.ends_with('/') {
        // Trimmed, nothing starts or ends with `/`.
        return "false".to_owned();
    }
    let mut escaped = String::new();
    for c in want.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    format!("{expr}.matches({})", lit(&format!("^/*{escaped}/*$")))
}

/// `restrict-secret-stores` per tenant: `secret-path-scope` (every key an ExternalSecret reads,
/// or a PushSecret writes, through the tenant's store lies under `<pathPrefix>/<tenant>/`)
/// and `secret-store-scope` (a SecretStore reaching the platform's OpenBao reads its KV
/// mount, version 2, and logs in only with Kubernetes auth on its auth mount as the tenant's
/// role), worded as `secret_stores` words them, the first offence first. The tenant's role
/// and path are the platform's formulas on the parameters' tenant. An update keeping an
/// offence the old object had at the same place, word for word, is not refused (the engine's
/// carry-over).
fn secret_stores_tenant(engine: &Engine) -> Compiled {
    let openbao = &engine.openbao;
    let rules = json!([{
        "apiGroups": ["external-secrets.io"], "apiVersions": ["*"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["externalsecrets", "pushsecrets", "secretstores"],
    }]);
    let mut p = Compiled::new(PolicyId::RestrictSecretStores, rules);
    p.params = true;
    p.name_suffix = "-tenant";
    not_a_secret_store_reconciler(engine, &mut p);
    // Keys read or pushed through the tenant's store, as `{'p': where, 'k': key}`.
    let tenant_store = |r: &str| {
        format!(
            "(({} ? string({r}.kind) : 'SecretStore') == 'SecretStore' && {} && {r}.name == {})",
            has(r, "kind"),
            has(r, "name"),
            lit(&openbao.store_name)
        )
    };
    let key_entry = |at: &str, root: &str, path: &str| {
        format!(
            "({} ? [{{'p': {at} + {}, 'k': string({root}.{path})}}] : [])",
            has(root, path),
            lit(&format!(".{path}"))
        )
    };
    let keys = |o: &str| {
        let entries = |list: &str| {
            let at = format!("{} + string(i) + ']'", lit(&format!("spec.{list}[")));
            let store = format!(
                "({} ? [e.sourceRef.storeRef] : {})",
                has("e", "sourceRef.storeRef"),
                opt(o, "spec.secretStoreRef")
            );
            format!(
                "{}.transformList(i, e, !({}) && {store}.exists(r, {}) ? {} + {} + {} : []).flatten()",
                get_or(&format!("{o}.spec"), list, "[]"),
                has("e", "sourceRef.generatorRef"),
                tenant_store("r"),
                key_entry(&at, "e", "remoteRef.key"),
                key_entry(&at, "e", "extract.key"),
                key_entry(&at, "e", "find.path"),
            )
        };
        let pushed = format!(
            "({}.exists(r, {}) ? {}.transformList(i, e, {}).flatten() : [])",
            get_or(&format!("{o}.spec"), "secretStoreRefs", "[]"),
            tenant_store("r"),
            get_or(&format!("{o}.spec"), "data", "[]"),
            key_entry(
                "'spec.data[' + string(i) + ']'",
                "e",
                "match.remoteRef.remoteKey"
            ),
        );
        format!(
            "({o}.kind == 'ExternalSecret' ? {} + {} : {o}.kind == 'PushSecret' ? {pushed} : \
             []).filter(x, !(x.k.startsWith(variables.prefix) && size(x.k) > \
             size(variables.prefix) && !x.k.split('/').exists(s, s == '..' || s == '.')))",
            entries("data"),
            entries("dataFrom"),
        )
    };
    // A SecretStore's offences against the platform's OpenBao, as `{'p', 'm', 'r'}`.
    let remedy = |what: &str| {
        format!(
            "'Point the store at the tenant\\'s own access: ' + {what} + {}",
            lit(&format!(
                " (the platform renders this store as {:?} in every tenant namespace; use that \
                 one).",
                openbao.store_name
            ))
        )
    };
    let vault_at = "spec.provider.vault";
    let offences = |o: &str| {
        let v = format!("{o}.spec.provider.vault");
        let mount = string_or_empty(&v, "path");
        let mount_offence = format!(
            "({} ? [] : [{{'p': {}, 'm': 'reads mount ' + {} + {}, 'r': {}}}])",
            trimmed_is(&mount, &openbao.kv_mount),
            lit(&format!("{vault_at}.path")),
            debug_quoted(&mount),
            lit(&format!(
                " of the platform's OpenBao; tenants' secrets live in {:?}",
                openbao.kv_mount
            )),
            remedy(&lit(&format!("path: {}", openbao.kv_mount))),
        );
        let version_offence = format!(
            "({} && string({v}.version) != 'v2' ? [{{'p': {}, 'm': 'the platform\\'s tenant \
             mount is KV version 2', 'r': {}}}] : [])",
            has(&v, "version"),
            lit(&format!("{vault_at}.version")),
            remedy("'version: v2'"),
        );
        // The engine reads the object's keys in order, and the API server writes them sorted:
        // the smallest first, then the rest.
        let method_entry = |k: &str| {
            format!(
                "{{'p': {} + {k}, 'm': 'logs in to the platform\\'s OpenBao with ' + {k} + \
                 '; a tenant\\'s only identity there is its ServiceAccount\\'s Kubernetes-auth \
                 role', 'r': {}}}",
                lit(&format!("{vault_at}.auth.")),
                remedy("'auth.kubernetes with the tenant\\'s role'"),
            )
        };
        let methods = bind(
            &format!("{}.filter(k, k != 'kubernetes')", get_or(&v, "auth", "{}")),
            "ms",
            &format!(
                "size(ms) == 0 ? [] : [{}] + ms.filter(k, k != ms.min()).map(k, {})",
                method_entry("ms.min()"),
                method_entry("k"),
            ),
        );
        let kubernetes = format!("{v}.auth.kubernetes");
        let auth_mount = format!(
            "({} ? string({kubernetes}.mountPath) : 'kubernetes')",
            has(&kubernetes, "mountPath")
        );
        let auth_mount_offence = format!(
            "({} ? [] : [{{'p': {}, 'm': 'logs in through auth mount ' + {} + {}, 'r': {}}}])",
            trimmed_is(&auth_mount, &openbao.auth_mount),
            lit(&format!("{vault_at}.auth.kubernetes.mountPath")),
            debug_quoted(&auth_mount),
            lit(&format!(
                "; the platform's tenant roles are on {:?}",
                openbao.auth_mount
            )),
            remedy(&lit(&format!("mountPath: {}", openbao.auth_mount))),
        );
        let role = string_or_empty(&kubernetes, "role");
        let role_offence = format!(
            "({role} == variables.role ? [] : [{{'p': {}, 'm': 'logs in as OpenBao role ' + {} \
             + '; tenant ' + params.spec.tenant + ' has role ' + {}, 'r': {}}}])",
            lit(&format!("{vault_at}.auth.kubernetes.role")),
            debug_quoted(&role),
            debug_quoted("variables.role"),
            remedy("'role: ' + variables.role"),
        );
        format!(
            "({o}.kind == 'SecretStore' && {} && {} == {} ? {mount_offence} + \
             {version_offence} + {methods} + ({} ? {auth_mount_offence} + {role_offence} : []) \
             : [])",
            has(o, "spec.provider.vault"),
            service_host_cel(&string_or_empty(&v, "server")),
            lit(&secret_stores::service_host(&openbao.address)),
            has(&v, "auth.kubernetes"),
        )
    };
    p.variables = vec![
        (
            "prefix",
            derived_from_tenant(|t| format!("{}/", openbao.tenant_path(t))),
        ),
        ("role", derived_from_tenant(|t| openbao.role_name(t))),
        (
            "outside",
            format!(
                "{}.filter(x, !(x in ({})))",
                keys("object"),
                old_refs(&keys("oldObject"))
            ),
        ),
        (
            "storeOffences",
            format!(
                "{}.filter(x, !(x in ({})))",
                offences("object"),
                old_refs(&offences("oldObject"))
            ),
        ),
    ];
    p.validate(
        "secret-store-scope",
        "size(variables.storeOffences) == 0".to_owned(),
        message(
            "secret-store-scope",
            &["variables.storeOffences[0].m + ' — ' + variables.storeOffences[0].r"],
        ),
    );
    p.validate(
        "secret-path-scope",
        "size(variables.outside) == 0".to_owned(),
        message(
            "secret-path-scope",
            &[
                "'key '",
                &debug_quoted("variables.outside[0].k"),
                "' is outside the tenant\\'s OpenBao path ' + variables.prefix + '* — Keep the \
                 tenant\\'s secrets under ' + variables.prefix + '<name>; the tenant\\'s OpenBao \
                 policy allows nothing else.'",
            ],
        ),
    );
    p
}

/// `gateway-parent`: routes attach only to the platform Gateway (and its listener).
fn gateway_parent(gateway: &GatewayRef) -> Compiled {
    const GROUP: &str = "gateway.networking.k8s.io";
    let rules = json!([{
        "apiGroups": [GROUP], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
        "resources": ["httproutes", "grpcroutes"],
    }]);
    let mut p = Compiled::new(PolicyId::GatewayParent, rules);
    let group = format!("{} == {}", get_or("q", "group", &lit(GROUP)), lit(GROUP));
    let kind = format!("{} == 'Gateway'", get_or("q", "kind", "'Gateway'"));
    let name = format!("{} == {}", get_or("q", "name", "''"), lit(&gateway.name));
    // An unset namespace is the route's own, which is never the platform's.
    let namespace = format!(
        "{} == {}",
        get_or("q", "namespace", "request.namespace"),
        lit(&gateway.namespace)
    );
    let section = match &gateway.section_name {
        Some(want) => format!("has(q.sectionName) && q.sectionName == {}", lit(want)),
        None => "true".to_owned(),
    };
    let ok = format!("({group}) && ({kind}) && ({name}) && ({namespace}) && ({section})");
    let refs = |o: &str| get_or(&format!("{o}.spec"), "parentRefs", "[]");
    let all_ok = |o: &str| format!("{}.all(q, {ok})", refs(o));
    let platform = match &gateway.section_name {
        Some(section) => format!(
            "Gateway {}/{} (sectionName {section})",
            gateway.namespace, gateway.name
        ),
        None => format!("Gateway {}/{}", gateway.namespace, gateway.name),
    };
    let mut remediation = format!(
        "Use parentRefs: [{{name: {}, namespace: {}",
        gateway.name, gateway.namespace
    );
    if let Some(section) = &gateway.section_name {
        remediation.push_str(&format!(", sectionName: {section}"));
    }
    remediation.push_str("}].");
    // What is wrong with the first offending parent, in the engine's order.
    let q = format!("{}.filter(q, !({ok}))[0]", refs("object"));
    let what = format!(
        "[{q}].map(q, !({group}) || !({kind}) ? 'attaches to a ' + {k} + ' (' + {g} + '), not a \
         Gateway' : !({name}) ? 'attaches to Gateway ' + {n} : !({namespace}) ? 'attaches to Gateway ' + {n} + ' in namespace ' + {ns} : has(q.sectionName) ? \
         'attaches to listener ' + {s} : 'sets no sectionName, so it would attach to every \
         listener of the Gateway')[0]",
        k = get_or("q", "kind", "'Gateway'"),
        g = get_or("q", "group", &lit(GROUP)),
        n = quoted(&get_or("q", "name", "''")),
        ns = quoted(&get_or("q", "namespace", "request.namespace")),
        s = quoted("q.sectionName"),
    );
    p.validate(
        "gateway-parent",
        carry_over(&all_ok("object"), &all_ok("oldObject")),
        message(
            "gateway-parent",
            &[
                "object.kind + ' '",
                &what,
                &lit(&format!(
                    "; tenant routes may attach only to the platform {platform} — {remediation}"
                )),
            ],
        ),
    );
    p
}

// ---------------------------------------------------------------------------------------------
// restrict-network-policies (per tenant)
// ---------------------------------------------------------------------------------------------

/// `restrict-network-policies`' `network-policy-reach`, per tenant: the namespaces a tenant's
/// NetworkPolicy or CiliumNetworkPolicy names must be its own (its parameters' `namespaces`),
/// its `allowFrom` (`networkPeers`) or the platform's shared ones (a literal here, the
/// engine's `shared_namespaces`). Every namespace term of an object is listed as the engine
/// meets them, in its order, as `{p: path, t: kind, a, b}` (a name, a label and its value,
/// an operator, an entity), then judged and worded in one place; the offences of the old
/// object on an update give the engine's carry-over per field exactly (an offence the old
/// object had at the same path with the same message is not refused). Label keys are read
/// sorted, as the API server serialises them to the webhook. The platform's identities are
/// left out by a matchCondition, as the engine skips them; so is an update of an object being
/// deleted (the engine judges those by protect-platform-objects only).
fn network_policies(engine: &Engine) -> Compiled {
    let rules = json!([
        {"apiGroups": ["networking.k8s.io"], "apiVersions": ["*"],
         "operations": ["CREATE", "UPDATE"], "resources": ["networkpolicies"]},
        {"apiGroups": ["cilium.io"], "apiVersions": ["*"],
         "operations": ["CREATE", "UPDATE"], "resources": ["ciliumnetworkpolicies"]},
    ]);
    let mut p = Compiled::new(PolicyId::RestrictNetworkPolicies, rules);
    p.params = true;
    p.match_conditions.push((
        "not-a-platform-identity",
        format!(
            "!({} || request.userInfo.groups.exists(g, {}))",
            matches_patterns("request.userInfo.username", &engine.exempt_users),
            matches_patterns("g", &engine.exempt_groups),
        ),
    ));
    p.match_conditions.push((
        "not-being-deleted",
        "request.operation != 'UPDATE' || !has(object.metadata.deletionTimestamp)".to_owned(),
    ));
    let shared: Vec<&str> = engine
        .shared_namespaces
        .iter()
        .map(String::as_str)
        .collect();
    p.variables = vec![
        (
            "allowed",
            format!(
                "{} + {} + {}",
                get_or("params.spec", "namespaces", "[]"),
                get_or("params.spec", "networkPeers", "[]"),
                list_lit(&shared),
            ),
        ),
        ("offences", np_judge(&np_terms("object"), engine)),
        (
            "oldOffences",
            format!(
                "request.operation == 'UPDATE' ? {} : []",
                np_judge(&np_terms("oldObject"), engine)
            ),
        ),
    ];
    let bad = "!(x in variables.oldOffences)";
    p.validate(
        "network-policy-reach",
        format!("!variables.offences.exists(x, {bad})"),
        message(
            "network-policy-reach",
            &[&bind(
                &format!("variables.offences.filter(x, {bad})[0]"),
                "x",
                &format!(
                    "x.m + ' — ' + (x.r == 'node' ? {} : {} + \
                     variables.allowed.sort().distinct().join(', ') + {})",
                    lit(
                        "Remove it: a tenant's workloads have nothing to call on a node. Ask \
                         the platform if a node-local service is needed."
                    ),
                    lit("Name peer namespaces by name, one of: "),
                    lit(
                        ". To accept traffic from another team, the platform adds its \
                         namespace to the tenant's `network.allowFrom`."
                    ),
                ),
            )],
        ),
    );
    p
}

/// The offences among `terms`, each `{p: path, m: message, r: remedy}` (`r` `node` for the
/// node entities' remedy, else the peers'), as `Judge` decides and words them.
fn np_judge(terms: &str, engine: &Engine) -> String {
    let is_name = "(x.t == 'n' || (x.t == 'l' && x.a == 'kubernetes.io/metadata.name'))";
    let name = "(x.t == 'n' ? x.a : x.b)";
    let every =
        lit(": it opens the tenant's pods to, or lets them reach, every pod in the cluster");
    format!(
        "({terms}).filter(x, {is_name} ? !({name} in variables.allowed) : x.t == 'l' ? !(x.a == \
         {tenant} && x.b == params.spec.tenant) : true).map(x, {{'p': x.p, 'r': x.t == 'node' ? \
         'node' : '', 'm': {is_name} ? 'names namespace ' + {quoted_name} + {neither} : x.t == \
         'l' ? 'selects namespaces by label ' + x.a + '=' + x.b + {control} : x.t == 'every' ? \
         'selects every namespace' + {every} : x.t == 'entity' ? 'names the entity ' + \
         {quoted_entity} + {every} : x.t == 'op' ? 'selects namespaces with ' + x.a + ' ' + x.b + \
         {own} + {every} : 'egress to the entity ' + {quoted_entity} + {nodes}}})",
        tenant = lit(engine.tenant_label()),
        quoted_name = debug_quoted(name),
        neither = lit(", which is neither the tenant's nor the platform's"),
        control =
            lit(", which the tenant does not control (any namespace carrying it would be reached)"),
        quoted_entity = debug_quoted("x.a"),
        own = lit(", which reaches namespaces the tenant does not own"),
        nodes = lit(
            " lets the tenant's pods reach the cluster's nodes (kubelet and \
                     host-network platform services)"
        ),
    )
}

/// One namespace term: `[{p, t, a, b}]` (`t`: `n` a name, `l` a label `a=b`, `every` every
/// namespace, `op` an operator `b` on the key `a`, `entity` a cluster entity, `node` a node
/// entity).
fn np_term(path: &str, kind: &str, a: &str, b: &str) -> String {
    // Every value a string: the object is `dyn` (two kinds are matched), and a map literal's
    // values must share one type.
    format!("[{{'p': string({path}), 't': '{kind}', 'a': string({a}), 'b': string({b})}}]")
}

/// How a selector's keys relate to namespaces (`cilium_key`, `kubernetes_key`).
#[derive(Clone, Copy)]
enum NpKeys {
    Cilium,
    Kubernetes,
}

/// The term of one key/value of a selector (`key`, `value`: CEL strings), `[]` for a key
/// that says nothing about namespaces.
fn np_key_term(keys: NpKeys, key: &str, value: &str, path: &str) -> String {
    match keys {
        NpKeys::Kubernetes => np_term(path, "l", key, value),
        NpKeys::Cilium => bind(
            &format!(
                "({key}.startsWith('k8s:') || {key}.startsWith('any:') ? {key}.substring(4) : \
                 {key})"
            ),
            "kb",
            &format!(
                "kb == 'io.kubernetes.pod.namespace' ? {} : \
                 kb.startsWith('io.cilium.k8s.namespace.labels.') ? {} : []",
                np_term(path, "n", value, "''"),
                np_term(path, "l", "kb.substring(31)", value),
            ),
        ),
    }
}

/// The terms of one label selector `sel` at `at` (a CEL string), as `Judge::selector`.
fn np_selector(sel: &str, at: &str, keys: NpKeys) -> String {
    let labels = format!(
        "({} ? {sel}.matchLabels.map(lk, lk).sort().map(lk, {}).flatten() : [])",
        has(sel, "matchLabels"),
        np_key_term(
            keys,
            "lk",
            &format!("{sel}.matchLabels[lk]"),
            &format!("{at} + '.matchLabels[' + lk + ']'"),
        ),
    );
    let expression_path = format!("{at} + '.matchExpressions[' + string(ei) + ']'");
    let values = format!(
        "{}.transformList(vj, v, {}).flatten()",
        get_or("e", "values", "[]"),
        np_key_term(
            keys,
            "ek",
            "v",
            &format!("{expression_path} + '.values[' + string(vj) + ']'"),
        ),
    );
    // A key that says nothing about namespaces is skipped whatever its operator.
    let counts = match keys {
        NpKeys::Kubernetes => "true".to_owned(),
        NpKeys::Cilium => format!("size({}) > 0", np_key_term(keys, "ek", "''", "''")),
    };
    let expressions = format!(
        "({} ? {sel}.matchExpressions.transformList(ei, e, {}).flatten() : [])",
        has(sel, "matchExpressions"),
        bind(
            &get_or("e", "key", "''"),
            "ek",
            &format!(
                "!({counts}) ? [] : {op} != 'In' ? {} : {values}",
                np_term(&expression_path, "op", "ek", &get_or("e", "operator", "''")),
                op = get_or("e", "operator", "''"),
            ),
        ),
    );
    format!("{labels} + {expressions}")
}

/// The terms of one Cilium rule spec `s` at `at`, as `Judge::cilium_spec`.
fn np_cilium_spec(s: &str, at: &str) -> String {
    let mut directions = Vec::new();
    for (direction, peers, entities, services) in [
        ("ingress", "fromEndpoints", "fromEntities", None),
        ("egress", "toEndpoints", "toEntities", Some("toServices")),
    ] {
        let rule_at = format!("{at} + '.{direction}[' + string(ri) + ']'");
        let mut parts = vec![format!(
            "({} ? r.{peers}.transformList(pj, sel, {}).flatten() : [])",
            has("r", peers),
            np_selector(
                "sel",
                &format!("{rule_at} + '.{peers}[' + string(pj) + ']'"),
                NpKeys::Cilium,
            ),
        )];
        let entity_at = format!("{rule_at} + '.{entities}[' + string(en) + ']'");
        let node = if direction == "egress" {
            format!(
                "ev in ['host', 'remote-node'] ? {} : ",
                np_term(&entity_at, "node", "ev", "''")
            )
        } else {
            String::new()
        };
        parts.push(format!(
            "({} ? r.{entities}.transformList(en, ev, ev in ['all', 'cluster'] ? {} : {node}[]).flatten() : [])",
            has("r", entities),
            np_term(&entity_at, "entity", "ev", "''"),
        ));
        if let Some(services) = services {
            let fields: Vec<String> = ["k8sService", "k8sServiceSelector"]
                .iter()
                .map(|field| {
                    format!(
                        "({} ? {} : [])",
                        has("svc", &format!("{field}.namespace")),
                        np_term(
                            &format!(
                                "{rule_at} + '.{services}[' + string(tj) + '].{field}.namespace'"
                            ),
                            "n",
                            &format!("svc.{field}.namespace"),
                            "''",
                        )
                    )
                })
                .collect();
            parts.push(format!(
                "({} ? r.{services}.transformList(tj, svc, {}).flatten() : [])",
                has("r", services),
                fields.join(" + "),
            ));
        }
        directions.push(format!(
            "({} ? {s}.{direction}.transformList(ri, r, {}).flatten() : [])",
            has(s, direction),
            parts.join(" + "),
        ));
    }
    directions.join(" + ")
}

/// The terms of a NetworkPolicy's spec `s`, as `Judge::kubernetes_spec`.
fn np_kubernetes_spec(s: &str) -> String {
    let mut directions = Vec::new();
    for (direction, peers) in [("ingress", "from"), ("egress", "to")] {
        let at = format!(
            "'spec.{direction}[' + string(ri) + '].{peers}[' + string(pj) + '].namespaceSelector'"
        );
        let empty = |field: &str| {
            format!(
                "(!has(peer.namespaceSelector.{field}) || size(peer.namespaceSelector.{field}) == 0)"
            )
        };
        directions.push(format!(
            "({} ? {s}.{direction}.transformList(ri, r, {} ? r.{peers}.transformList(pj, peer, \
             !has(peer.namespaceSelector) ? [] : {} && {} ? {} : {}).flatten() : []).flatten() : [])",
            has(s, direction),
            has("r", peers),
            empty("matchLabels"),
            empty("matchExpressions"),
            np_term(&at, "every", "''", "''"),
            np_selector("peer.namespaceSelector", &at, NpKeys::Kubernetes),
        ));
    }
    directions.join(" + ")
}

/// Every namespace term of `o` (`object` or `oldObject`), in the engine's order.
fn np_terms(o: &str) -> String {
    format!(
        "({o}.kind == 'CiliumNetworkPolicy' ? ({} ? {} : []) + ({} ? {o}.specs.transformList(si, \
         s, {}).flatten() : []) : ({} ? {} : []))",
        has(o, "spec"),
        np_cilium_spec(&format!("{o}.spec"), "'spec'"),
        has(o, "specs"),
        np_cilium_spec("s", "'specs[' + string(si) + ']'"),
        has(o, "spec"),
        np_kubernetes_spec(&format!("{o}.spec")),
    )
}

// ---------------------------------------------------------------------------------------------
// protect-platform-objects
// ---------------------------------------------------------------------------------------------

/// A CEL condition: `name` (a CEL string) matches one of `patterns` (exact names, or prefixes).
fn matches_patterns(name: &str, patterns: &[tenantry_api::pattern::NamePattern]) -> String {
    let alternatives: Vec<String> = patterns
        .iter()
        .map(|p| match p.prefix_of() {
            Some(prefix) => format!("{name}.startsWith({})", lit(prefix)),
            None => format!("{name} == {}", lit(p.as_str())),
        })
        .collect();
    if alternatives.is_empty() {
        "false".to_owned()
    } else {
        alternatives.join(" || ")
    }
}

/// `protect-platform-objects`: two policies, as the webhook registers two hooks — the
/// namespaced kinds it is asked about (in tenant namespaces), and Namespaces themselves
/// (selected by their own tenant label, old or new, so removing it is still judged). The
/// platform's identities are left out by a matchCondition, as the engine skips them.
fn protect(engine: &Engine) -> Vec<Compiled> {
    const MANAGED: &str = "app.kubernetes.io/managed-by";
    let exempt = format!(
        "!({} || request.userInfo.groups.exists(g, {}))",
        matches_patterns("request.userInfo.username", &engine.exempt_users),
        matches_patterns("g", &engine.exempt_groups),
    );
    let managed = |o: &str, skip: &str| {
        format!(
            "request.operation != '{skip}' && has({o}.metadata.labels) && {m} in \
             {o}.metadata.labels && {o}.metadata.labels[{m}] == {v}",
            m = lit(MANAGED),
            v = lit(tenantry_api::MANAGED_BY),
        )
    };
    let remediation = "Change the tenant's declaration (tenants/<tenant>/tenant.yaml or \
                       tenantry.yaml) and let Tenantry apply it; ask the platform team if the \
                       tenant needs something it does not offer.";
    let unmark = "Remove the label app.kubernetes.io/managed-by: tenantry.";
    let managed_object = |p: &mut Compiled| {
        p.match_conditions
            .push(("not-a-platform-identity", exempt.clone()));
        p.variables
            .push(("managedOld", managed("oldObject", "CREATE")));
        p.variables
            .push(("managedNew", managed("object", "DELETE")));
        p.validate(
            "managed-object",
            "request.operation == 'DELETE' ? !variables.managedOld : \
             request.operation == 'UPDATE' ? !variables.managedOld && !variables.managedNew : \
             !variables.managedNew"
                .to_owned(),
            message(
                "managed-object",
                &[
                    "request.userInfo.username",
                    &format!(
                        "(request.operation == 'DELETE' ? {} : \
                         request.operation == 'UPDATE' && variables.managedOld ? {} : \
                         request.operation == 'UPDATE' ? {} : {})",
                        lit(&format!(
                            " may not delete an object Tenantry manages — {remediation}"
                        )),
                        lit(&format!(
                            " may not change an object Tenantry manages — {remediation}"
                        )),
                        lit(&format!(
                            " may not mark an object as managed by Tenantry — {unmark}"
                        )),
                        lit(&format!(
                            " may not create an object labelled as managed by Tenantry — {unmark}"
                        )),
                    ),
                ],
            ),
        );
    };
    let mut objects = Compiled::new(
        PolicyId::ProtectPlatformObjects,
        crate::catalog::admission_object_rules(),
    );
    managed_object(&mut objects);

    let mut namespaces = Compiled::new(
        PolicyId::ProtectPlatformObjects,
        crate::catalog::admission_namespace_rules(),
    );
    namespaces.name_suffix = "-namespaces";
    namespaces.by_object = true;
    managed_object(&mut namespaces);
    let guarded = format!(
        "(k == {} || k.startsWith('pod-security.kubernetes.io/'))",
        lit(engine.tenant_label())
    );
    namespaces.variables.push((
        "newLabels",
        "request.operation != 'DELETE' && has(object.metadata.labels) ? \
         object.metadata.labels : {}"
            .to_owned(),
    ));
    namespaces.variables.push((
        "oldLabels",
        "request.operation == 'UPDATE' && has(oldObject.metadata.labels) ? \
         oldObject.metadata.labels : {}"
            .to_owned(),
    ));
    namespaces.variables.push((
        "changedLabels",
        format!(
            "(variables.newLabels.map(k, k) + variables.oldLabels.map(k, k)).filter(k, \
             {guarded} && ((k in variables.newLabels) != (k in variables.oldLabels) || \
             ((k in variables.newLabels) && variables.newLabels[k] != variables.oldLabels[k])))"
        ),
    ));
    let first = "variables.changedLabels.min()";
    namespaces.validate(
        "namespace-labels",
        "request.operation == 'DELETE' || variables.managedOld || variables.managedNew || \
         size(variables.changedLabels) == 0"
            .to_owned(),
        message(
            "namespace-labels",
            &[
                "request.userInfo.username",
                "' may not '",
                &format!(
                    "(!({first} in variables.oldLabels) ? 'set' : \
                     !({first} in variables.newLabels) ? 'remove' : 'change')"
                ),
                "' label '",
                first,
                "' on namespace '",
                &quoted("object.metadata.name"),
                &lit(
                    ": it decides the namespace's tenant and Pod Security level — Namespace Pod \
                     Security and tenant labels come from the tenant declaration; change \
                     podSecurity there and let Tenantry apply it.",
                ),
            ],
        ),
    );
    vec![objects, namespaces]
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn cel_literals_escape_quotes_and_backslashes() {
        assert_eq!(lit(r"it's a\b"), r"'it\'s a\\b'");
    }

    /// `render` binds each tenant to the per-tenant policies core names: they must be the
    /// ones compiled here, whatever the platform turns off, or a tenant's bindings name a
    /// policy that does not exist (and judge nothing) while the real one has no binding.
    #[test]
    fn the_per_tenant_policies_core_binds_are_the_ones_compiled() {
        for bits in 0..16u8 {
            let (registries, placement, classes, network) =
                (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, bits & 8 != 0);
            let mut platform = tenantry_api::Platform::default();
            platform.policies.allowed_registries.enabled = registries;
            platform.policies.tenant_placement.enabled = placement;
            platform.policies.allowed_classes.enabled = classes;
            platform.policies.restrict_network_policies.enabled = network;
            let engine = Engine::new(&platform);
            let opts = VapOptions::default();
            let compiled: Vec<String> = compile(&engine)
                .iter()
                .filter(|p| p.params)
                .map(|p| p.name(&opts))
                .collect();
            let bound: Vec<String> = guardrails::per_tenant_policies(&platform.policies)
                .into_iter()
                .map(|p| format!("{}{p}", guardrails::NAME_PREFIX))
                .collect();
            assert_eq!(
                bound, compiled,
                "registries {registries}, placement {placement}, classes {classes}, network \
                 {network}"
            );
        }
    }
}
