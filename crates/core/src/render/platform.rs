//! Platform-wide objects, rendered once per platform rather than once per tenant: the
//! ClusterRoles that let every tenant manage the custom resources its own `deploy/` tree
//! holds, and, with `pullSecret.fanOut`, the one ClusterExternalSecret that fans the registry
//! pull secret out to every opted-in namespace.
//!
//! A tenant's delivery applies `deploy/` as the tenant's ServiceAccount, bound to `edit` (or
//! `admin`) in its namespaces. Those roles name built-in kinds only; a custom kind reaches
//! them through ClusterRoles labelled `aggregate-to-edit`/`aggregate-to-admin`, which the
//! API server folds into the bound role. Relying on upstream charts for that aggregation
//! fails both ways: absent, the first ExternalSecret is Forbidden; present, it may grant
//! more than a tenant should (ClusterSecretStore reads). So Tenantry renders exactly the
//! rules tenants need, each with the reason it is safe in an annotation (the YAML emitter
//! writes data, not comments, and an annotation also reaches `kubectl describe`).
//!
//! Every rule names namespaced kinds only: aggregated into a role that a RoleBinding grants,
//! a rule can only ever act inside that binding's namespace, and a cluster-scoped kind in it
//! would be granted nowhere (so it would only mislead). What RBAC now allows is then
//! narrowed by the guardrails, which judge these kinds at admission (a SecretStore only with
//! the tenant's own role and path, CiliumNetworkPolicies that cannot open other namespaces,
//! Tenantry's own objects protected).
//!
//! The fanned-out pull secret is one object for the whole platform because that is what the
//! credential is: platform-owned, read through the platform's ClusterSecretStore, never a
//! tenant's. A namespace opts in by its label (which every tenant namespace with
//! `secrets.pullSecret` carries), so a new tenant needs no new secret object, and its
//! `externalSecretSpec` is the very spec the per-namespace ExternalSecret would have had.
//!
//! Each concern is a *component*: its objects carry the managed-by label and, in place of the
//! tenant label, `<labelPrefix>/component: <component>`, and live in their own directory
//! `platform/<component>/` with their own `kustomization.yaml`. One component per concern
//! rather than one `platform/` tree keeps every existing label and path valid (the
//! `tenant-rbac` ClusterRoles a cluster already holds stay selected and prunable), lets a
//! platform reconcile or drop one concern without the other (the pull secret's directory
//! needs External Secrets installed, the roles do not), and matches the bridge document's
//! own layout (`secrets/<pull-secret>/`). Every component is always rendered, empty when
//! off, so turning one off removes its files and prunes its objects by the same
//! label-keyed loop that handles a tenant's, and offboarding a tenant never sees them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use tenantry_api::{
    MANAGED_BY, MANAGED_BY_LABEL, Platform,
    platform::builtin_tenant_defaults,
    tenant::{NetworkProvider, TenantSpec},
};

use crate::{
    object::{DesiredObject, Layer, Rendered},
    resolve::PlatformContext,
};

/// The component of the aggregated tenant ClusterRoles.
pub const TENANT_RBAC: &str = "tenant-rbac";
/// The component of the fanned-out registry pull secret (`pullSecret.fanOut`).
pub const PULL_SECRET: &str = "pull-secret";
/// Every platform component, in apply order: the value of the component label, the name
/// `Rendered::tenant` carries for its objects, and its directory under [`PLATFORM_DIR`].
pub const COMPONENTS: [&str; 2] = [TENANT_RBAC, PULL_SECRET];

/// Every kind a platform component renders, as (apiVersion, kind): what observing and
/// pruning the platform must list, whether or not anything is rendered now.
pub const PLATFORM_KINDS: [(&str, &str); 2] = [
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    CLUSTER_EXTERNAL_SECRET,
];

const CLUSTER_EXTERNAL_SECRET: (&str, &str) = ("external-secrets.io/v1", "ClusterExternalSecret");

/// Where the platform-wide objects live in the repository, relative to the directory that
/// holds the tenants directory (`platform/` beside `tenants/`); each component has its own
/// directory in it, `platform/<component>/`.
pub const PLATFORM_DIR: &str = "platform";

/// The verbs `edit` grants on its own kinds: tenants manage these objects, not their status.
const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

const AGGREGATE_TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const AGGREGATE_TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";

/// Which providers' kinds tenants may manage, after the platform's `tenantRbac` toggles and
/// their defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Providers {
    /// External Secrets (`externalsecrets`, `pushsecrets`, `secretstores`, generators).
    pub external_secrets: bool,
    /// Cilium (`ciliumnetworkpolicies`).
    pub cilium: bool,
    /// Gateway API (`httproutes`, `grpcroutes`).
    pub gateway_api: bool,
    /// Flux sources, Kustomizations, HelmReleases.
    pub flux: bool,
}

impl Providers {
    /// Each toggle, or when unset, whether the platform uses that provider: External Secrets
    /// when tenants get the pull secret or OpenBao by default, Cilium when it is the default
    /// network provider, Gateway API when a gateway is configured; Flux only when asked.
    pub fn of(platform: &Platform) -> Self {
        let t = &platform.tenant_rbac;
        let builtin = builtin_tenant_defaults();
        let pick = |f: fn(&TenantSpec) -> Option<bool>| {
            f(&platform.defaults)
                .or_else(|| f(&builtin))
                .unwrap_or(false)
        };
        let uses_secrets = pick(|s| s.secrets.as_ref().and_then(|x| x.pull_secret))
            || pick(|s| s.secrets.as_ref().and_then(|x| x.openbao));
        let provider = |s: &TenantSpec| s.network.as_ref().and_then(|n| n.provider);
        let uses_cilium = provider(&platform.defaults).or_else(|| provider(&builtin))
            == Some(NetworkProvider::Cilium);
        Self {
            external_secrets: t.external_secrets.unwrap_or(uses_secrets),
            cilium: t.cilium.unwrap_or(uses_cilium),
            gateway_api: t.gateway_api.unwrap_or(platform.gateway.is_some()),
            flux: t.flux.unwrap_or(false),
        }
    }
}

/// One rule: an API group and the resources (plurals) granted in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// API group.
    pub group: &'static str,
    /// Resource names (plurals), sorted.
    pub resources: Vec<&'static str>,
}

/// One aggregated ClusterRole: its name, why it is safe, and its rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantEditRole {
    /// The ClusterRole's name.
    pub name: &'static str,
    /// Why tenants get these kinds and why that is enough; shown in an annotation.
    pub why: &'static str,
    /// Its rules.
    pub rules: Vec<Rule>,
}

/// The ClusterRoles the platform's settings call for, in a fixed order.
pub fn tenant_edit_roles(platform: &Platform) -> Vec<TenantEditRole> {
    let on = Providers::of(platform);
    let mut roles = Vec::new();
    if on.external_secrets {
        roles.push(TenantEditRole {
            name: "tenantry-tenant-edit-external-secrets",
            why: "A tenant owns its secrets end to end: a namespaced SecretStore (which authenticates as the tenant's own OpenBao role, reaching only its own path), PushSecrets that seed its path and ExternalSecrets that read it back. ClusterSecretStores and ClusterExternalSecrets are cluster-scoped and never granted: they are the platform's.",
            rules: vec![Rule {
                group: "external-secrets.io",
                resources: vec!["externalsecrets", "pushsecrets", "secretstores"],
            }],
        });
        let generators: BTreeSet<&'static str> = platform
            .tenant_rbac
            .generators
            .iter()
            .map(|g| g.resource())
            .collect();
        if !generators.is_empty() {
            roles.push(TenantEditRole {
                name: "tenantry-tenant-edit-external-secrets-generators",
                why: "Generators a PushSecret or ExternalSecret may reference to create a value (tenantRbac.generators), namespaced kinds only: ClusterGenerators are the platform's.",
                rules: vec![Rule {
                    group: "generators.external-secrets.io",
                    resources: generators.into_iter().collect(),
                }],
            });
        }
    }
    if on.cilium {
        roles.push(TenantEditRole {
            name: "tenantry-tenant-edit-cilium",
            why: "A tenant writes its own allow-lists on top of Tenantry's default-deny floor; a namespaced CiliumNetworkPolicy selects only pods of its own namespace. CiliumClusterwideNetworkPolicies are the platform's and never granted.",
            rules: vec![Rule {
                group: "cilium.io",
                resources: vec!["ciliumnetworkpolicies"],
            }],
        });
    }
    if on.gateway_api {
        roles.push(TenantEditRole {
            name: "tenantry-tenant-edit-gateway-api",
            why: "A tenant routes traffic from the platform's shared Gateway to its own Services; the Gateway decides which namespaces may attach, and Gateways themselves stay the platform's.",
            rules: vec![Rule {
                group: "gateway.networking.k8s.io",
                resources: vec!["grpcroutes", "httproutes"],
            }],
        });
    }
    if on.flux {
        roles.push(TenantEditRole {
            name: "tenantry-tenant-edit-flux",
            why: "The platform enabled tenant-side Flux objects (tenantRbac.flux): a tenant may deliver further sources, Kustomizations and HelmReleases in its namespaces; the guardrails keep Tenantry's own delivery objects and require the tenant's ServiceAccount.",
            rules: vec![
                Rule {
                    group: "helm.toolkit.fluxcd.io",
                    resources: vec!["helmreleases"],
                },
                Rule {
                    group: "kustomize.toolkit.fluxcd.io",
                    resources: vec!["kustomizations"],
                },
                Rule {
                    group: "source.toolkit.fluxcd.io",
                    resources: vec!["gitrepositories", "helmrepositories", "ocirepositories"],
                },
            ],
        });
    }
    roles
}

/// Every (group, resource) the platform's tenants may manage through these roles, sorted:
/// what a check of a tenant's manifests can hold them to.
pub fn granted_resources(platform: &Platform) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = tenant_edit_roles(platform)
        .into_iter()
        .flat_map(|role| role.rules)
        .flat_map(|rule| rule.resources.into_iter().map(move |r| (rule.group, r)))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The label naming the platform component an object belongs to: `<labelPrefix>/component`.
pub fn component_label(platform: &Platform) -> String {
    format!("{}/component", platform.label_prefix)
}

/// The annotation holding a role's reason: `<labelPrefix>/why`.
pub fn why_annotation(platform: &Platform) -> String {
    format!("{}/why", platform.label_prefix)
}

/// Render the platform-wide objects, once per platform: one [`Rendered`] per component of
/// [`COMPONENTS`], in that order, each present (with no objects when the platform does not
/// use it) so its files and live objects can be pruned.
pub fn render_platform(ctx: &PlatformContext) -> Vec<Rendered> {
    let component = |name: &str, objects| Rendered {
        tenant: name.to_owned(),
        objects,
        artifacts: Vec::new(),
    };
    vec![
        component(TENANT_RBAC, tenant_rbac(&ctx.platform)),
        component(PULL_SECRET, pull_secret(&ctx.platform)),
    ]
}

/// The labels of a component's objects.
fn component_labels(platform: &Platform, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (component_label(platform), component.to_owned()),
    ])
}

fn tenant_rbac(platform: &Platform) -> Vec<DesiredObject> {
    let mut labels = component_labels(platform, TENANT_RBAC);
    labels.insert(AGGREGATE_TO_ADMIN.to_owned(), "true".to_owned());
    labels.insert(AGGREGATE_TO_EDIT.to_owned(), "true".to_owned());
    tenant_edit_roles(platform)
        .into_iter()
        .map(|role| {
            let rules: Vec<Value> = role
                .rules
                .iter()
                .map(|rule| {
                    json!({
                        "apiGroups": [rule.group],
                        "resources": rule.resources,
                        "verbs": VERBS,
                    })
                })
                .collect();
            DesiredObject {
                layer: Layer::Rbac,
                api_version: "rbac.authorization.k8s.io/v1",
                kind: "ClusterRole",
                namespace: None,
                name: role.name.to_owned(),
                body: json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": {
                        "name": role.name,
                        "labels": labels,
                        "annotations": { why_annotation(platform): role.why },
                    },
                    "rules": rules,
                }),
            }
        })
        .collect()
}

/// With `pullSecret.fanOut`, the one ClusterExternalSecret that creates the pull secret's
/// ExternalSecret (same name) in every namespace carrying `pullSecret.namespaceLabel`.
/// `refreshTime` (how often the namespace selection is re-read) is left to the controller's
/// one-minute default, so a new tenant namespace has its pull secret before its first pod
/// pulls; the credential's own refresh is the ExternalSecret's `refreshInterval`.
fn pull_secret(platform: &Platform) -> Vec<DesiredObject> {
    let ps = &platform.pull_secret;
    if !ps.fan_out {
        return Vec::new();
    }
    let (api_version, kind) = CLUSTER_EXTERNAL_SECRET;
    let why = format!(
        "The platform's registry pull credential, read through the platform's ClusterSecretStore {store:?}; tenants never see its source. Every namespace labelled {key}={value} (each tenant namespace with secrets.pullSecret) gets Secret {name}, which the tenant's ServiceAccounts list in imagePullSecrets.",
        store = ps.cluster_secret_store,
        key = ps.namespace_label.key,
        value = ps.namespace_label.value,
        name = ps.name,
    );
    vec![DesiredObject {
        layer: Layer::Secrets,
        api_version,
        kind,
        namespace: None,
        name: ps.name.clone(),
        body: json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {
                "name": ps.name,
                "labels": component_labels(platform, PULL_SECRET),
                "annotations": { why_annotation(platform): why },
            },
            "spec": {
                "externalSecretName": ps.name,
                "namespaceSelectors": [{
                    "matchLabels": { &ps.namespace_label.key: &ps.namespace_label.value },
                }],
                "externalSecretSpec": super::secrets::pull_secret_spec(ps),
            },
        }),
    }]
}

#[cfg(test)]
mod tests {
    use tenantry_api::{
        platform::{GeneratorKind, TenantRbacConfig},
        tenant::{Network, Secrets},
    };

    use super::*;

    fn names(p: &Platform) -> Vec<&'static str> {
        tenant_edit_roles(p).iter().map(|r| r.name).collect()
    }

    #[test]
    fn defaults_follow_the_providers_the_platform_uses() {
        // Built-in: pull secret on, kubernetes network policies, a gateway, no tenant Flux.
        assert_eq!(
            Providers::of(&Platform::default()),
            Providers {
                external_secrets: true,
                cilium: false,
                gateway_api: true,
                flux: false
            }
        );
        let mut p = Platform::default();
        p.defaults.network = Some(Network {
            provider: Some(NetworkProvider::Cilium),
            ..Network::default()
        });
        p.defaults.secrets = Some(Secrets {
            openbao: Some(false),
            pull_secret: Some(false),
        });
        p.gateway = None;
        assert_eq!(
            Providers::of(&p),
            Providers {
                external_secrets: false,
                cilium: true,
                gateway_api: false,
                flux: false
            }
        );
        p.defaults.secrets = Some(Secrets {
            openbao: Some(true),
            pull_secret: None,
        });
        assert!(Providers::of(&p).external_secrets, "OpenBao by default");
    }

    #[test]
    fn explicit_toggles_win_over_defaults() {
        let p = Platform {
            tenant_rbac: TenantRbacConfig {
                external_secrets: Some(false),
                cilium: Some(true),
                gateway_api: Some(false),
                flux: Some(true),
                generators: vec![GeneratorKind::Passwords],
            },
            ..Platform::default()
        };
        assert_eq!(
            names(&p),
            ["tenantry-tenant-edit-cilium", "tenantry-tenant-edit-flux"]
        );
    }

    fn ctx(p: Platform) -> PlatformContext {
        PlatformContext::new(p).expect("valid platform")
    }

    #[test]
    fn every_component_is_rendered_in_order_even_when_empty() {
        let mut p = Platform::default();
        p.tenant_rbac.external_secrets = Some(false);
        p.tenant_rbac.gateway_api = Some(false);
        let rendered = render_platform(&ctx(p));
        let names: Vec<&str> = rendered.iter().map(|r| r.tenant.as_str()).collect();
        assert_eq!(names, COMPONENTS);
        assert!(rendered.iter().all(|r| r.objects.is_empty()));
    }

    #[test]
    fn fan_out_renders_one_cluster_external_secret_with_the_per_namespace_spec() {
        let mut p = Platform::default();
        assert!(render_platform(&ctx(p.clone()))[1].objects.is_empty());
        p.pull_secret.fan_out = true;
        let rendered = render_platform(&ctx(p.clone()));
        let [object] = rendered[1].objects.as_slice() else {
            panic!("one object: {:?}", rendered[1].objects);
        };
        assert_eq!(
            (
                object.kind,
                object.name.as_str(),
                object.namespace.as_deref()
            ),
            ("ClusterExternalSecret", "ghcr-auth", None)
        );
        let spec = &object.body["spec"];
        assert_eq!(
            spec["externalSecretSpec"],
            super::super::secrets::pull_secret_spec(&p.pull_secret)
        );
        assert_eq!(
            spec["namespaceSelectors"],
            json!([{ "matchLabels": { "apps.platform/tenant": "true" } }])
        );
        assert_eq!(
            object.body["metadata"]["labels"]["tenantry.dev/component"],
            PULL_SECRET
        );
    }

    #[test]
    fn generators_are_granted_once_each_and_not_at_all_when_none_are_allowed() {
        let mut p = Platform::default();
        p.tenant_rbac.generators = vec![
            GeneratorKind::Uuids,
            GeneratorKind::Passwords,
            GeneratorKind::Uuids,
        ];
        let granted = granted_resources(&p);
        assert!(granted.contains(&("generators.external-secrets.io", "passwords")));
        assert_eq!(
            granted
                .iter()
                .filter(|(g, _)| *g == "generators.external-secrets.io")
                .count(),
            2
        );
        p.tenant_rbac.generators.clear();
        assert!(
            !names(&p).contains(&"tenantry-tenant-edit-external-secrets-generators"),
            "{:?}",
            names(&p)
        );
        assert!(names(&p).contains(&"tenantry-tenant-edit-external-secrets"));
    }
}
