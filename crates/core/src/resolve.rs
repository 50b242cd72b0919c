//! From a partial tenant to a complete one: defaults applied, every value checked.
//!
//! Resolution is where a tenant meets its platform. Each field comes from the first of three
//! layers that sets it: the tenant's `spec`, the platform's `defaults`, the built-in defaults.
//! Values are validated where they are written, so an error names the file a person must
//! edit: a bad tenant value is reported at `spec.…`, a bad platform default once at
//! `defaults.…` when the platform is loaded (not again for each of 10,000 tenants).
//!
//! The result, [`ResolvedTenant`], has no optional fields left: rendering never has to decide
//! anything, which keeps it a straight, fast translation.

use std::collections::BTreeSet;

use tenantry_api::{
    Platform, Quantity,
    platform::{Grant, builtin_tenant_defaults},
    tenant::{
        Classes, ComputeResources, Delivery, NetworkProvider, Owner, Placement, PodSecurityLevel,
        Quota, QuotaScope, TenantFile, TenantSpec,
    },
};

use crate::{
    error::{Errors, Invalid},
    names,
    placement::{resolve_classes, resolve_placement},
    validate::{validate_platform, validate_spec_fields},
};

/// A tenant with every default applied and every value valid.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedTenant {
    /// The tenant's name, also its primary namespace and ServiceAccount name.
    pub name: String,
    /// The primary namespace first, then the extra namespaces in name order.
    pub namespaces: Vec<String>,
    /// RBAC subjects bound in every tenant namespace, in a stable order.
    pub owners: Vec<Owner>,
    /// Pod Security level enforced.
    pub pod_security: PodSecurityLevel,
    /// Whether the namespaces join the mesh.
    pub mesh: bool,
    /// ResourceQuota `hard`, in a fixed key order.
    pub quota: Vec<(&'static str, Quantity)>,
    /// Whether `quota` holds per namespace or for the sum over the tenant's namespaces.
    pub quota_scope: QuotaScope,
    /// LimitRange for containers.
    pub limits: ResolvedLimits,
    /// Network isolation.
    pub network: ResolvedNetwork,
    /// ClusterRole bound in each namespace.
    pub cluster_role: String,
    /// Opt-in grants with their platform definitions, in name order.
    pub grants: Vec<(String, Grant)>,
    /// Allowed image registries.
    pub registries: Vec<String>,
    /// Delivery, with templates expanded.
    pub delivery: ResolvedDelivery,
    /// Whether OpenBao app secrets are provisioned.
    pub openbao: bool,
    /// Whether the platform pull secret is materialised.
    pub pull_secret: bool,
    /// Which nodes the tenant's pods may reach (within the platform's bounds).
    pub placement: Placement,
    /// The shared classes the tenant may use (within the platform's lists).
    pub classes: Classes,
}

impl ResolvedDelivery {
    /// The Secret holding the proxy kubeconfig the tenant's Flux objects reconcile through,
    /// when they do: the only `kubeConfig` they may name.
    pub fn proxy_kubeconfig_secret(&self) -> Option<&str> {
        match self {
            Self::FluxGit {
                proxy_kubeconfig_secret,
                ..
            }
            | Self::FluxOci {
                proxy_kubeconfig_secret,
                ..
            } => proxy_kubeconfig_secret.as_deref(),
            Self::ArgoCd { .. } | Self::None => None,
        }
    }
}

impl ResolvedTenant {
    /// The namespace named after the tenant, where its ServiceAccount and delivery objects
    /// live.
    pub fn primary_namespace(&self) -> &str {
        &self.namespaces[0]
    }
}

/// LimitRange values for the `Container` type, each in the fixed order cpu, memory,
/// ephemeral-storage.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ResolvedLimits {
    /// Limits for containers that set none.
    pub default: Vec<(&'static str, Quantity)>,
    /// Requests for containers that set none.
    pub default_request: Vec<(&'static str, Quantity)>,
    /// The most one container may set.
    pub max: Vec<(&'static str, Quantity)>,
}

/// Network isolation.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedNetwork {
    /// Policy API.
    pub provider: NetworkProvider,
    /// Namespaces besides the tenant's whose pods may connect in (the platform gateway's
    /// first, then the tenant's list, de-duplicated).
    pub allow_from: Vec<String>,
    /// Whether egress is denied by default.
    pub default_deny_egress: bool,
}

/// How Flux checks an OCI artifact's cosign signature.
#[derive(Clone, Debug, PartialEq)]
pub enum ResolvedVerify {
    /// Keyless: a Fulcio certificate whose OIDC issuer and subject match these regexps.
    Keyless {
        /// OIDC issuer regexp.
        issuer: String,
        /// Signing identity regexp.
        subject: String,
    },
    /// A key pair: the public key(s) in this Secret of the tenant's primary namespace.
    PublicKey {
        /// The Secret's name.
        secret_ref: String,
        /// The PEM to render that Secret with (`verify.publicKey`), checked to be a P-256
        /// public key; `None` when the platform provides the Secret itself.
        public_key: Option<String>,
    },
}

/// Delivery with every value present.
#[derive(Clone, Debug, PartialEq)]
pub enum ResolvedDelivery {
    /// Flux OCIRepository + Kustomization.
    FluxOci {
        /// `oci://` URL.
        url: String,
        /// Flux semver range.
        semver: String,
        /// Who the artifact must be signed by.
        verify: ResolvedVerify,
        /// Pull secret for the registry, if any.
        pull_secret: Option<String>,
        /// Kubeconfig secret the Kustomization reconciles through (the platform's
        /// `flux.proxy`), if any.
        proxy_kubeconfig_secret: Option<String>,
    },
    /// Flux GitRepository + Kustomization.
    FluxGit {
        /// Repository URL.
        url: String,
        /// Branch.
        branch: String,
        /// Path in the repository.
        path: String,
        /// Proxy kubeconfig secret, if reconciling through a proxy: the tenant's own, else
        /// the platform's when it sets `flux.proxy`.
        proxy_kubeconfig_secret: Option<String>,
    },
    /// Argo CD AppProject + Application.
    ArgoCd {
        /// Repository URL.
        repo_url: String,
        /// Path in the repository.
        path: String,
        /// Revision.
        revision: String,
    },
    /// No delivery objects.
    None,
}

/// A platform that has been checked, with what every tenant resolution needs precomputed.
#[derive(Clone, Debug)]
pub struct PlatformContext {
    /// The platform configuration.
    pub platform: Platform,
    builtin: TenantSpec,
    tenant_label: String,
    reserved: Vec<String>,
}

/// Which layer supplied a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Tenant,
    Platform,
    Builtin,
}

struct Layers<'a> {
    tenant: &'a TenantSpec,
    platform: &'a TenantSpec,
    builtin: &'a TenantSpec,
}

impl<'a> Layers<'a> {
    fn pick<T: ?Sized>(
        &self,
        f: impl Fn(&'a TenantSpec) -> Option<&'a T>,
    ) -> Option<(&'a T, Source)> {
        f(self.tenant)
            .map(|v| (v, Source::Tenant))
            .or_else(|| f(self.platform).map(|v| (v, Source::Platform)))
            .or_else(|| f(self.builtin).map(|v| (v, Source::Builtin)))
    }

    fn value<T: ?Sized>(&self, f: impl Fn(&'a TenantSpec) -> Option<&'a T>) -> Option<&'a T> {
        self.pick(f).map(|(v, _)| v)
    }
}

pub(crate) type QuantityField = (&'static str, &'static str, fn(&Quota) -> Option<&Quantity>);
type CountField = (&'static str, &'static str, fn(&Quota) -> Option<&u32>);

/// ResourceQuota keys for quantities: (hard key, field path under `quota`, accessor).
pub(crate) const QUOTA_QUANTITIES: [QuantityField; 6] = [
    ("requests.cpu", "requests.cpu", |q| {
        q.requests.as_ref()?.cpu.as_ref()
    }),
    ("requests.memory", "requests.memory", |q| {
        q.requests.as_ref()?.memory.as_ref()
    }),
    (
        "requests.ephemeral-storage",
        "requests.ephemeralStorage",
        |q| q.requests.as_ref()?.ephemeral_storage.as_ref(),
    ),
    ("limits.cpu", "limits.cpu", |q| {
        q.limits.as_ref()?.cpu.as_ref()
    }),
    ("limits.memory", "limits.memory", |q| {
        q.limits.as_ref()?.memory.as_ref()
    }),
    ("limits.ephemeral-storage", "limits.ephemeralStorage", |q| {
        q.limits.as_ref()?.ephemeral_storage.as_ref()
    }),
];

/// ResourceQuota keys for object counts.
const QUOTA_COUNTS: [CountField; 9] = [
    ("pods", "pods", |q| q.pods.as_ref()),
    ("services", "services", |q| q.services.as_ref()),
    ("services.nodeports", "servicesNodePorts", |q| {
        q.services_node_ports.as_ref()
    }),
    ("services.loadbalancers", "servicesLoadBalancers", |q| {
        q.services_load_balancers.as_ref()
    }),
    ("persistentvolumeclaims", "persistentVolumeClaims", |q| {
        q.persistent_volume_claims.as_ref()
    }),
    ("configmaps", "configMaps", |q| q.config_maps.as_ref()),
    ("secrets", "secrets", |q| q.secrets.as_ref()),
    ("replicationcontrollers", "replicationControllers", |q| {
        q.replication_controllers.as_ref()
    }),
    ("resourcequotas", "resourceQuotas", |q| {
        q.resource_quotas.as_ref()
    }),
];

pub(crate) type ComputeField = (
    &'static str,
    &'static str,
    fn(&ComputeResources) -> Option<&Quantity>,
);

/// The compute resources: (resource name, field name, accessor).
pub(crate) const COMPUTE: [ComputeField; 3] = [
    ("cpu", "cpu", |c| c.cpu.as_ref()),
    ("memory", "memory", |c| c.memory.as_ref()),
    ("ephemeral-storage", "ephemeralStorage", |c| {
        c.ephemeral_storage.as_ref()
    }),
];

pub(crate) type LimitsField = (
    &'static str,
    fn(&tenantry_api::tenant::Limits) -> Option<&ComputeResources>,
);

pub(crate) const LIMIT_KINDS: [LimitsField; 3] = [
    ("default", |l| l.default.as_ref()),
    ("defaultRequest", |l| l.default_request.as_ref()),
    ("max", |l| l.max.as_ref()),
];

impl PlatformContext {
    /// Check a platform configuration; every problem is reported with its path.
    pub fn new(platform: Platform) -> Result<Self, Invalid> {
        let mut errors = Errors::default();
        validate_platform(&platform, &mut errors);
        let builtin = builtin_tenant_defaults();
        let tenant_label = platform.tenant_label();
        let mut reserved: Vec<String> = names::BUILTIN_RESERVED
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        reserved.extend(platform.reserved_names.iter().map(ToString::to_string));
        reserved.push(platform.flux.namespace.clone());
        reserved.push(platform.argocd.namespace.clone());
        reserved.push(platform.dns.namespace.clone());
        if let Some(gw) = &platform.gateway {
            reserved.push(gw.namespace.clone());
        }
        reserved.sort();
        reserved.dedup();
        let context = Self {
            platform,
            builtin,
            tenant_label,
            reserved,
        };
        // The platform's defaults must also make sense together (requests within limits…);
        // check them once by resolving an empty tenant.
        if errors.0.is_empty() {
            let probe = TenantFile::new("tenantry-defaults-check", TenantSpec::default());
            if let Err(invalid) = context.resolve_unchecked_name(&probe) {
                for e in invalid.errors {
                    let path = e.path.replacen("spec.", "defaults.", 1);
                    errors.push(path, e.message);
                }
            }
        }
        errors.into_result(context)
    }

    /// The label naming an object's tenant.
    pub fn tenant_label(&self) -> &str {
        &self.tenant_label
    }

    /// Reserved namespace patterns (built-in, the platform's own namespaces, and
    /// `reservedNames`).
    pub fn reserved(&self) -> &[String] {
        &self.reserved
    }

    /// Resolve a tenant file against this platform.
    pub fn resolve(&self, file: &TenantFile) -> Result<ResolvedTenant, Invalid> {
        let mut errors = Errors::default();
        let name = &file.metadata.name;
        if let Some(problem) = names::dns_label_problem(name) {
            errors.push("metadata.name", format!("{name:?} {problem}"));
        } else if let Some(pattern) =
            names::reserved_match(name, self.reserved.iter().map(String::as_str))
        {
            errors.push(
                "metadata.name",
                format!("{name:?} is reserved for the platform (matches {pattern:?}); choose another name"),
            );
        }
        match self.resolve_unchecked_name(file) {
            Ok(resolved) => errors.into_result(resolved),
            Err(invalid) => {
                errors.0.extend(invalid.errors);
                Err(Invalid { errors: errors.0 })
            }
        }
    }

    /// Everything but the checks on the tenant's own name: [`PlatformContext::new`] resolves a
    /// probe tenant whose name is reserved on purpose (no real tenant can be mistaken for it)
    /// to check the platform's defaults. Fields are resolved in the order their errors are
    /// reported.
    fn resolve_unchecked_name(&self, file: &TenantFile) -> Result<ResolvedTenant, Invalid> {
        let mut errors = Errors::default();
        let spec = &file.spec;
        let name = file.metadata.name.as_str();
        validate_spec_fields(spec, "spec", &mut errors);

        let layers = Layers {
            tenant: spec,
            platform: &self.platform.defaults,
            builtin: &self.builtin,
        };

        let namespaces = self.resolve_namespaces(name, &spec.namespaces, &mut errors);
        let owners = self.resolve_owners(spec);
        let pod_security = layers
            .value(|s| s.pod_security.as_ref())
            .copied()
            .unwrap_or_default();
        let mesh = layers.value(|s| s.mesh.as_ref()).copied().unwrap_or(false);
        let quota = resolve_quota(&layers, &mut errors);
        let quota_scope = layers
            .value(|s| s.quota.as_ref()?.scope.as_ref())
            .copied()
            .unwrap_or_default();
        let limits = resolve_limits(&layers, &mut errors);
        let network = self.resolve_network(&layers, &namespaces);
        let cluster_role = layers
            .value(|s| s.rbac.as_ref()?.cluster_role.as_ref())
            .cloned()
            .unwrap_or_else(|| "edit".to_owned());
        let grants = self.resolve_grants(&layers, &mut errors);
        let registries = layers
            .value(|s| s.registries.as_ref())
            .cloned()
            .unwrap_or_default();
        let delivery = self.resolve_delivery(name, &layers, &mut errors);
        let openbao = layers
            .value(|s| s.secrets.as_ref()?.openbao.as_ref())
            .copied()
            .unwrap_or(false);
        let pull_secret = layers
            .value(|s| s.secrets.as_ref()?.pull_secret.as_ref())
            .copied()
            .unwrap_or(true);
        let placement = resolve_placement(spec, &self.platform.defaults, &mut errors);
        let classes = resolve_classes(spec, &self.platform.defaults, &mut errors);

        errors.into_result(ResolvedTenant {
            name: name.to_owned(),
            namespaces,
            owners,
            pod_security,
            mesh,
            quota,
            quota_scope,
            limits,
            network,
            cluster_role,
            grants,
            registries,
            delivery,
            openbao,
            pull_secret,
            placement,
            classes,
        })
    }

    /// The tenant's owners replace the platform's default owners rather than adding to them:
    /// a tenant that names its owners must not silently share itself with the default ones.
    fn resolve_owners(&self, spec: &TenantSpec) -> Vec<Owner> {
        let mut owners = if spec.owners.is_empty() {
            self.platform.defaults.owners.clone()
        } else {
            spec.owners.clone()
        };
        owners.sort();
        owners.dedup();
        owners
    }

    /// The platform gateway's namespace is always allowed in, or the tenant could not be
    /// reached at all; the tenant's own namespaces are dropped from `allowFrom` because they
    /// are allowed already.
    fn resolve_network(&self, layers: &Layers<'_>, namespaces: &[String]) -> ResolvedNetwork {
        let provider = layers
            .value(|s| s.network.as_ref()?.provider.as_ref())
            .copied()
            .unwrap_or_default();
        let mut allow_from: Vec<String> = Vec::new();
        if let Some(gw) = &self.platform.gateway {
            allow_from.push(gw.namespace.clone());
        }
        for ns in layers
            .value(|s| s.network.as_ref()?.allow_from.as_ref())
            .into_iter()
            .flatten()
        {
            if !allow_from.contains(ns) && !namespaces.contains(ns) {
                allow_from.push(ns.clone());
            }
        }
        let default_deny_egress = layers
            .value(|s| s.network.as_ref()?.default_deny_egress.as_ref())
            .copied()
            .unwrap_or(false);
        ResolvedNetwork {
            provider,
            allow_from,
            default_deny_egress,
        }
    }

    /// A grant is only a name in the tenant; what it binds is the platform's to define, so a
    /// name the platform does not define is an error at whichever layer wrote it. Repeats are
    /// ignored, not errors: granting twice grants once.
    fn resolve_grants(&self, layers: &Layers<'_>, errors: &mut Errors) -> Vec<(String, Grant)> {
        let mut grants = Vec::new();
        let Some((grant_names, source)) = layers.pick(|s| s.rbac.as_ref()?.grants.as_ref()) else {
            return grants;
        };
        let at = if source == Source::Tenant {
            "spec"
        } else {
            "defaults"
        };
        let mut seen = BTreeSet::new();
        for (i, g) in grant_names.iter().enumerate() {
            if !seen.insert(g) {
                continue;
            }
            match self.platform.grants.get(g) {
                Some(def) => grants.push((g.clone(), def.clone())),
                None => {
                    let known: Vec<&str> =
                        self.platform.grants.keys().map(String::as_str).collect();
                    errors.push(
                        format!("{at}.rbac.grants[{i}]"),
                        format!(
                            "grant {g:?} is not defined in tenantry.yaml `grants` (defined: {})",
                            if known.is_empty() {
                                "none".to_owned()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                }
            }
        }
        grants.sort_by(|a, b| a.0.cmp(&b.0));
        grants
    }

    fn resolve_namespaces(&self, name: &str, extra: &[String], errors: &mut Errors) -> Vec<String> {
        let mut namespaces = vec![name.to_owned()];
        let mut extras = BTreeSet::new();
        let prefix = format!("{name}-");
        for (i, ns) in extra.iter().enumerate() {
            let path = format!("spec.namespaces[{i}]");
            if ns == name {
                continue;
            }
            if !ns.starts_with(&prefix) || ns.len() == prefix.len() {
                errors.push(
                    path,
                    format!(
                        "{ns:?} must be {name:?} or start with \"{prefix}\" followed by a suffix"
                    ),
                );
                continue;
            }
            if let Some(problem) = names::dns_label_problem(ns) {
                errors.push(path, format!("{ns:?} {problem}"));
                continue;
            }
            if let Some(pattern) =
                names::reserved_match(ns, self.reserved.iter().map(String::as_str))
            {
                errors.push(
                    path,
                    format!("{ns:?} is reserved for the platform (matches {pattern:?})"),
                );
                continue;
            }
            if !extras.insert(ns.clone()) {
                errors.push(path, format!("{ns:?} is listed twice"));
            }
        }
        namespaces.extend(extras);
        namespaces
    }

    /// The Secret a Flux tenant's Kustomization reconciles through when the tenant names
    /// none: the operator-kept proxy kubeconfig, when the platform sets `flux.proxy`. A
    /// tenant that names its own secret keeps it (and provides it).
    fn flux_proxy_secret(&self) -> Option<String> {
        self.platform
            .flux
            .proxy
            .as_ref()
            .map(|_| tenantry_api::platform::FLUX_PROXY_KUBECONFIG_SECRET.to_owned())
    }

    fn resolve_delivery(
        &self,
        tenant: &str,
        layers: &Layers<'_>,
        errors: &mut Errors,
    ) -> ResolvedDelivery {
        let Some((chosen, source)) = layers.pick(|s| s.delivery.as_ref()) else {
            return ResolvedDelivery::None;
        };
        // Later layers contribute fields only when they chose the same kind of delivery.
        let same_kind: Vec<&Delivery> = [layers.tenant, layers.platform, layers.builtin]
            .into_iter()
            .filter_map(|s| s.delivery.as_ref())
            .filter(|d| std::mem::discriminant(*d) == std::mem::discriminant(chosen))
            .collect();
        let at = match source {
            Source::Tenant => format!("spec.delivery.{}", chosen.kind_name()),
            _ => format!("defaults.delivery.{}", chosen.kind_name()),
        };
        let expand = |s: &str| s.replace("{tenant}", tenant);
        let mut required = |field: &str, value: Option<String>| -> String {
            value.map(|v| expand(&v)).unwrap_or_else(|| {
                errors.push(
                    format!("{at}.{field}"),
                    "is required (no platform default for this delivery kind)",
                );
                String::new()
            })
        };
        match chosen {
            Delivery::FluxOci(_) => {
                let get = |f: fn(&tenantry_api::tenant::FluxOci) -> Option<&String>| {
                    first_set(&same_kind, |d| match d {
                        Delivery::FluxOci(x) => f(x),
                        _ => None,
                    })
                };
                let url = required("url", get(|x| x.url.as_ref()));
                // The first layer that says anything about verification chooses keyless or
                // key; fields of the other way in lower layers are ignored.
                let chooser = same_kind.iter().find_map(|d| match d {
                    Delivery::FluxOci(x) => x.verify.as_ref().filter(|v| {
                        v.secret_ref.is_some()
                            || v.public_key.is_some()
                            || v.issuer.is_some()
                            || v.subject.is_some()
                    }),
                    _ => None,
                });
                // Errors about the key name the layer that gave it.
                let key_at = match layers.tenant.delivery.as_ref() {
                    Some(Delivery::FluxOci(x))
                        if chooser.is_some_and(|c| {
                            x.verify.as_ref().is_some_and(|v| std::ptr::eq(v, c))
                        }) =>
                    {
                        "spec.delivery.fluxOCI.verify"
                    }
                    _ => "defaults.delivery.fluxOCI.verify",
                };
                // Pushed once `required` (which holds `errors`) is done.
                let mut key_errors = Vec::new();
                let public_key = chooser.and_then(|v| v.public_key.as_deref()).map(|pem| {
                    if let Err(why) = check_cosign_public_key(pem) {
                        key_errors.push((format!("{key_at}.publicKey"), why));
                    }
                    pem.to_owned()
                });
                if public_key.is_some() && chooser.is_some_and(|v| v.secret_ref.is_none()) {
                    key_errors.push((
                        format!("{key_at}.secretRef"),
                        "is required with publicKey: it names the Secret the key is written to"
                            .to_owned(),
                    ));
                }
                let verify = match chooser.and_then(|v| v.secret_ref.clone()) {
                    Some(secret_ref) => ResolvedVerify::PublicKey {
                        secret_ref,
                        public_key,
                    },
                    None => ResolvedVerify::Keyless {
                        issuer: required(
                            "verify.issuer",
                            get(|x| x.verify.as_ref()?.issuer.as_ref()),
                        ),
                        subject: required(
                            "verify.subject",
                            get(|x| x.verify.as_ref()?.subject.as_ref()),
                        ),
                    },
                };
                for (path, why) in key_errors {
                    errors.push(path, why);
                }
                let semver = get(|x| x.semver.as_ref()).unwrap_or_else(|| ">=1.0.0".to_owned());
                let pull_secret = get(|x| x.pull_secret.as_ref()).map(|s| expand(&s));
                ResolvedDelivery::FluxOci {
                    url,
                    semver,
                    verify,
                    pull_secret,
                    proxy_kubeconfig_secret: self.flux_proxy_secret(),
                }
            }
            Delivery::FluxGit(_) => {
                let get = |f: fn(&tenantry_api::tenant::FluxGit) -> Option<&String>| {
                    first_set(&same_kind, |d| match d {
                        Delivery::FluxGit(x) => f(x),
                        _ => None,
                    })
                };
                let url = required("url", get(|x| x.url.as_ref()));
                ResolvedDelivery::FluxGit {
                    url,
                    branch: get(|x| x.branch.as_ref()).unwrap_or_else(|| "main".to_owned()),
                    path: expand(
                        &get(|x| x.path.as_ref()).unwrap_or_else(|| "./deploy".to_owned()),
                    ),
                    proxy_kubeconfig_secret: get(|x| x.proxy_kubeconfig_secret.as_ref())
                        .map(|s| expand(&s))
                        .or_else(|| self.flux_proxy_secret()),
                }
            }
            Delivery::ArgoCd(_) => {
                let get = |f: fn(&tenantry_api::tenant::ArgoCd) -> Option<&String>| {
                    first_set(&same_kind, |d| match d {
                        Delivery::ArgoCd(x) => f(x),
                        _ => None,
                    })
                };
                let repo_url = required("repoURL", get(|x| x.repo_url.as_ref()));
                ResolvedDelivery::ArgoCd {
                    repo_url,
                    path: expand(&get(|x| x.path.as_ref()).unwrap_or_else(|| "deploy".to_owned())),
                    revision: get(|x| x.revision.as_ref()).unwrap_or_else(|| "HEAD".to_owned()),
                }
            }
            Delivery::None(_) => ResolvedDelivery::None,
        }
    }
}

/// The first delivery layer (tenant, platform, built-in) that sets a field.
fn first_set<'a>(
    layers: &[&'a Delivery],
    field: impl Fn(&'a Delivery) -> Option<&'a String>,
) -> Option<String> {
    layers.iter().find_map(|d| field(d)).cloned()
}

fn resolve_quota(layers: &Layers<'_>, errors: &mut Errors) -> Vec<(&'static str, Quantity)> {
    let mut hard = Vec::with_capacity(QUOTA_QUANTITIES.len() + QUOTA_COUNTS.len());
    let mut picked: Vec<Option<(&Quantity, Source)>> = Vec::with_capacity(6);
    for (key, _, get) in QUOTA_QUANTITIES {
        let v = layers.pick(|s| get(s.quota.as_ref()?));
        if let Some((q, _)) = v {
            hard.push((key, q.clone()));
        }
        picked.push(v);
    }
    // requests.X must not exceed limits.X, or no pod could ever be admitted at the limit.
    for i in 0..3 {
        if let (Some((req, rs)), Some((lim, ls))) = (picked[i], picked[i + 3])
            && let (Ok(r), Ok(l)) = (req.parse(), lim.parse())
            && r > l
        {
            let at = if rs == Source::Tenant || ls == Source::Tenant {
                "spec"
            } else {
                "defaults"
            };
            errors.push(
                format!("{at}.quota.{}", QUOTA_QUANTITIES[i].1),
                format!(
                    "{req} is more than quota.{} {lim}; requests cannot exceed limits",
                    QUOTA_QUANTITIES[i + 3].1
                ),
            );
        }
    }
    for (key, _, get) in QUOTA_COUNTS {
        if let Some(n) = layers.value(|s| get(s.quota.as_ref()?)) {
            hard.push((key, Quantity(n.to_string())));
        }
    }
    hard
}

fn resolve_limits(layers: &Layers<'_>, errors: &mut Errors) -> ResolvedLimits {
    // [kind][resource] → (value, source)
    let mut table: [[Option<(&Quantity, Source)>; 3]; 3] = [[None; 3]; 3];
    for (k, (_, get_kind)) in LIMIT_KINDS.iter().enumerate() {
        for (r, (_, _, get)) in COMPUTE.iter().enumerate() {
            table[k][r] = layers.pick(|s| get(get_kind(s.limits.as_ref()?)?));
        }
    }
    // defaultRequest ≤ default ≤ max, per resource.
    let order = [(1usize, 0usize), (0, 2), (1, 2)];
    for r in 0..3 {
        for (lo, hi) in order {
            if let (Some((a, sa)), Some((b, sb))) = (table[lo][r], table[hi][r])
                && let (Ok(x), Ok(y)) = (a.parse(), b.parse())
                && x > y
            {
                let at = if sa == Source::Tenant || sb == Source::Tenant {
                    "spec"
                } else {
                    "defaults"
                };
                errors.push(
                    format!("{at}.limits.{}.{}", LIMIT_KINDS[lo].0, COMPUTE[r].1),
                    format!(
                        "{a} is more than limits.{}.{} {b}",
                        LIMIT_KINDS[hi].0, COMPUTE[r].1
                    ),
                );
            }
        }
    }
    let row = |k: usize| -> Vec<(&'static str, Quantity)> {
        (0..3)
            .filter_map(|r| table[k][r].map(|(q, _)| (COMPUTE[r].0, q.clone())))
            .collect()
    };
    ResolvedLimits {
        default: row(0),
        default_request: row(1),
        max: row(2),
    }
}

/// A namespace claimed by more than one tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceConflict {
    /// The namespace.
    pub namespace: String,
    /// The tenants claiming it, in name order.
    pub tenants: Vec<String>,
}

/// The ClusterRole a tenant that names none is bound to on this platform: the platform's
/// `defaults.rbac.clusterRole`, else the built-in default (`edit`).
pub fn default_cluster_role(platform: &Platform) -> String {
    let from = |spec: &TenantSpec| spec.rbac.as_ref()?.cluster_role.clone();
    from(&platform.defaults)
        .or_else(|| from(&builtin_tenant_defaults()))
        .unwrap_or_default()
}

/// Namespaces claimed by two or more tenants (tenant `shop` with `shop-dev`, and a tenant
/// named `shop-dev`). Two tenants sharing a namespace would share its quota, secrets and
/// RBAC: no isolation at all.
pub fn namespace_conflicts<'a>(
    tenants: impl IntoIterator<Item = &'a ResolvedTenant>,
) -> Vec<NamespaceConflict> {
    let mut owners: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
    for t in tenants {
        for ns in &t.namespaces {
            owners.entry(ns.as_str()).or_default().push(t.name.as_str());
        }
    }
    owners
        .into_iter()
        .filter(|(_, ts)| ts.len() > 1)
        .map(|(ns, mut ts)| {
            ts.sort_unstable();
            NamespaceConflict {
                namespace: ns.to_owned(),
                tenants: ts.into_iter().map(str::to_owned).collect(),
            }
        })
        .collect()
}

/// A `cosign.pub` Flux can use: one PEM `PUBLIC KEY` block holding an ECDSA P-256 key (what
/// `cosign generate-key-pair` and `tenantry keys generate` write).
fn check_cosign_public_key(pem: &str) -> Result<(), String> {
    use p256::pkcs8::DecodePublicKey as _;
    let pem = pem.trim();
    if !pem.starts_with("-----BEGIN PUBLIC KEY-----") || !pem.ends_with("-----END PUBLIC KEY-----")
    {
        return Err("must be one PEM \"PUBLIC KEY\" block (the contents of cosign.pub)".to_owned());
    }
    p256::PublicKey::from_public_key_pem(pem)
        .map(drop)
        .map_err(|e| format!("is not an ECDSA P-256 public key as cosign writes one ({e})"))
}
