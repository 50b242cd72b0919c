//! `policies:` in `tenantry.yaml`: which guardrails judge tenant manifests, and their settings.
//!
//! Every guardrail has an entry here so that a platform can see, in its own repository, what
//! its tenants are held to and change it in review like any other platform default. Every
//! policy that protects isolation is on unless the platform turns it off; the two that are a
//! matter of taste (`imagePullPolicyAlways`, `requireDigest`) are off unless it turns them on.
//!
//! Identity lists that default to something derived from elsewhere in `tenantry.yaml` (the Flux
//! reconciler) are `Option`s: left out, they follow that setting, so renaming the reconciler in
//! one place never leaves a stale copy behind here.

use std::{cmp::Ordering, fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::pattern::NamePattern;

/// The identity Tenantry itself runs as in cluster mode (applying tenants, serving admission).
pub const TENANTRY_SERVICE_ACCOUNT: &str = "system:serviceaccount:tenantry-system:tenantry";

/// A policy that runs unless the platform switches it off.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct OnByDefault {
    /// Whether the policy runs (default true).
    pub enabled: bool,
}

impl Default for OnByDefault {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// A policy that runs only when the platform switches it on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct OffByDefault {
    /// Whether the policy runs (default false).
    pub enabled: bool,
}

/// The guardrails and their settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Kubernetes Pod Security Standards, at the level of the object's namespace.
    pub pod_security: PodSecurityPolicy,
    /// cpu and memory requests and a memory limit on every container and init container.
    pub require_requests_limits: OnByDefault,
    /// Images only from the tenant's `registries` (a tenant with none is not restricted).
    pub allowed_registries: OnByDefault,
    /// No `NodePort` Services, nor explicit node ports.
    pub no_node_port: OnByDefault,
    /// No `LoadBalancer` Services.
    pub no_load_balancer: OnByDefault,
    /// No Service `externalIPs` (they let a tenant intercept traffic to any address).
    #[serde(rename = "noExternalIPs")]
    pub no_external_ips: OnByDefault,
    /// Every container sets `imagePullPolicy: Always` (or defaults to it).
    pub image_pull_policy_always: OffByDefault,
    /// Every image is pinned by digest.
    pub require_digest: OffByDefault,
    /// ExternalSecrets and PushSecrets use the tenant's namespaced SecretStore, never a
    /// ClusterSecretStore, unless the platform's reconciler applies them.
    pub restrict_secret_stores: RestrictSecretStores,
    /// A tenant's NetworkPolicies and CiliumNetworkPolicies name only its own namespaces, the
    /// platform's shared ones and its `allowFrom`, never the whole cluster.
    pub restrict_network_policies: OnByDefault,
    /// Pods name no node, select the tenant's nodes and tolerate only its taints
    /// (`placement`).
    pub tenant_placement: OnByDefault,
    /// Priority, storage, ingress, gateway and runtime classes only from the tenant's
    /// `classes` (and never Kubernetes' `system-*` PriorityClasses).
    pub allowed_classes: OnByDefault,
    /// Flux objects reconcile as the tenant, from sources in their own namespace.
    pub flux_lockdown: OnByDefault,
    /// HTTPRoutes attach only to the platform Gateway (`gateway` in `tenantry.yaml`).
    pub gateway_parent: OnByDefault,
    /// Tenant users cannot change or delete what Tenantry manages (admission only).
    pub protect_platform_objects: ProtectPlatformObjects,
    /// The tenant repository contract (`tenantry check --repo-name`; check only).
    pub tenant_repo_contract: TenantRepoContract,
    /// Objects the tenant's ServiceAccount, which Flux applies its tree as, may not create
    /// (check only).
    pub tenant_rbac: OnByDefault,
    /// The guardrails compiled to ValidatingAdmissionPolicies (`tenantry policy vap`).
    pub vap: VapConfig,
}

/// `policies.vap`: what each tenant renders for the compiled ValidatingAdmissionPolicies.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct VapConfig {
    /// Render each tenant's `GuardrailParameters` and its bindings to the per-tenant
    /// policies with the tenant's other objects, so apply, the operator and offboarding keep
    /// them (default false: the `GuardrailParameters` CRD must be installed first, `tenantry
    /// policy vap --crd`).
    pub tenant_parameters: bool,
    /// Render those bindings with `validationActions: [Warn, Audit]` instead of `[Deny]`: to
    /// try the per-tenant policies on a live cluster (warnings to clients, audit annotations)
    /// before they refuse anything. A webhook next to the policies keeps judging such tenants
    /// itself, since a binding that only warns refuses nothing.
    pub warn_only: bool,
}

/// Pod Security Standards settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PodSecurityPolicy {
    /// Whether the standards are checked.
    pub enabled: bool,
    /// The policy version (`latest` or `v1.<minor>`) used when a namespace does not pin one
    /// with `pod-security.kubernetes.io/enforce-version`.
    pub version: PodSecurityVersion,
}

impl Default for PodSecurityPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            version: PodSecurityVersion::Latest,
        }
    }
}

/// A Pod Security Standards policy version, spelt as the `enforce-version` label spells it:
/// `latest`, or `v1.` and a minor without leading zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PodSecurityVersion {
    /// The newest policy version the checker knows.
    #[default]
    Latest,
    /// `v1.<minor>`.
    V1(u32),
}

impl FromStr for PodSecurityVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "latest" {
            return Ok(Self::Latest);
        }
        let minor = s.strip_prefix("v1.").filter(|minor| {
            !minor.is_empty()
                && minor.bytes().all(|b| b.is_ascii_digit())
                && (*minor == "0" || !minor.starts_with('0'))
        });
        minor
            .and_then(|m| m.parse().ok())
            .map(Self::V1)
            .ok_or_else(|| {
                format!("{s:?} must be \"latest\" or v1.<minor> without leading zeros, e.g. v1.30")
            })
    }
}

impl fmt::Display for PodSecurityVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latest => f.write_str("latest"),
            Self::V1(minor) => write!(f, "v1.{minor}"),
        }
    }
}

impl PartialOrd for PodSecurityVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PodSecurityVersion {
    /// `latest` is newer than every pinned version, as upstream orders them.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Latest, Self::Latest) => Ordering::Equal,
            (Self::Latest, Self::V1(_)) => Ordering::Greater,
            (Self::V1(_), Self::Latest) => Ordering::Less,
            (Self::V1(a), Self::V1(b)) => a.cmp(b),
        }
    }
}

serde_as_text!(PodSecurityVersion);

/// `restrictSecretStores` settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RestrictSecretStores {
    /// Whether the policy runs.
    pub enabled: bool,
    /// Usernames that may reference a ClusterSecretStore from a tenant namespace (a trailing
    /// `*` matches any suffix). Default: `flux.reconciler` and Tenantry's own ServiceAccount,
    /// the two identities that apply the platform's pull-secret ExternalSecrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconcilers: Option<Vec<NamePattern>>,
}

impl Default for RestrictSecretStores {
    fn default() -> Self {
        Self {
            enabled: true,
            reconcilers: None,
        }
    }
}

impl RestrictSecretStores {
    /// The reconcilers in force, given the platform's Flux reconciler identity.
    pub fn reconcilers_or_default(&self, flux_reconciler: &str) -> Vec<NamePattern> {
        self.reconcilers.clone().unwrap_or_else(|| {
            vec![
                NamePattern::exact(flux_reconciler),
                NamePattern::exact(TENANTRY_SERVICE_ACCOUNT),
            ]
        })
    }
}

/// `protectPlatformObjects` settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ProtectPlatformObjects {
    /// Whether the policy runs.
    pub enabled: bool,
    /// Usernames never blocked (a trailing `*` matches any suffix). Default: `flux.reconciler`,
    /// every ServiceAccount of Flux's namespace (`flux.namespace`: the source-controller adds
    /// its finalizer to the Tenantry-managed GitRepository or OCIRepository of each tenant, an
    /// update of a managed object), Tenantry's ServiceAccount, `system:kube-controller-manager`
    /// and every kube-system ServiceAccount (the namespace and garbage-collection controllers
    /// delete managed objects when a tenant is offboarded). A tenant's own Kustomization
    /// applies as the tenant's ServiceAccount, which stays judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exempt_users: Option<Vec<NamePattern>>,
    /// Groups never blocked. Default: `system:masters`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exempt_groups: Option<Vec<NamePattern>>,
}

impl Default for ProtectPlatformObjects {
    fn default() -> Self {
        Self {
            enabled: true,
            exempt_users: None,
            exempt_groups: None,
        }
    }
}

impl ProtectPlatformObjects {
    /// The exempt usernames in force, given the platform's Flux reconciler identity and the
    /// namespace Flux's controllers run in.
    pub fn exempt_users_or_default(
        &self,
        flux_reconciler: &str,
        flux_namespace: &str,
    ) -> Vec<NamePattern> {
        self.exempt_users.clone().unwrap_or_else(|| {
            vec![
                NamePattern::exact(flux_reconciler),
                NamePattern::prefix(&format!("system:serviceaccount:{flux_namespace}:")),
                NamePattern::exact(TENANTRY_SERVICE_ACCOUNT),
                NamePattern::exact("system:kube-controller-manager"),
                NamePattern::prefix("system:serviceaccount:kube-system:"),
            ]
        })
    }

    /// The exempt groups in force.
    pub fn exempt_groups_or_default(&self) -> Vec<NamePattern> {
        self.exempt_groups
            .clone()
            .unwrap_or_else(|| vec![NamePattern::exact("system:masters")])
    }
}

/// `tenantRepoContract` settings. The contract is checked only when `tenantry check` is told
/// the repository's name (`--repo-name`), because its first rule is about that name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TenantRepoContract {
    /// Whether the contract is checked when a repository name is given.
    pub enabled: bool,
    /// The name a tenant's namespaced SecretStore must have. Default: `openbao.storeName`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_store_name: Option<String>,
}

impl Default for TenantRepoContract {
    fn default() -> Self {
        Self {
            enabled: true,
            secret_store_name: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_security_versions_are_spelt_as_the_label_spells_them() {
        assert_eq!("latest".parse(), Ok(PodSecurityVersion::Latest));
        assert_eq!("v1.30".parse(), Ok(PodSecurityVersion::V1(30)));
        assert_eq!("v1.0".parse(), Ok(PodSecurityVersion::V1(0)));
        for bad in [
            "v1.030",
            "v1.",
            "1.30",
            "v2.1",
            "Latest",
            "v1.3x",
            "v1.99999999999",
        ] {
            assert!(bad.parse::<PodSecurityVersion>().is_err(), "{bad:?}");
        }
        assert_eq!(PodSecurityVersion::V1(30).to_string(), "v1.30");
        assert!(PodSecurityVersion::Latest > PodSecurityVersion::V1(u32::MAX));
    }
}
