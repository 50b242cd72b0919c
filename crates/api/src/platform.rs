//! `tenantry.yaml`: what a platform decides once for all its tenants.
//!
//! The file sits at the root of the platform repository. Anything it leaves out takes the
//! built-in value from [`Platform::default`], so a one-line `tenantry.yaml` is valid and a
//! platform only writes down what it wants different. Tenant defaults resolve in three layers:
//! the tenant's own field, then `defaults` here, then [`builtin_tenant_defaults`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    duration::{GoDuration, TokenDuration},
    pattern::NamePattern,
    policies::PolicyConfig,
    quantity::Quantity,
    tenant::{
        ComputeResources, CosignIdentity, Delivery, FluxOci, Limits, Network, NetworkProvider,
        PodSecurityLevel, Quota, QuotaScope, Rbac, Secrets, TenantSpec,
    },
};

/// The platform configuration document.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Platform {
    /// Must be `tenantry.dev/v1alpha1`.
    pub api_version: String,
    /// Must be `Platform`.
    pub kind: String,
    /// The cluster's name, used in issued kubeconfigs.
    pub cluster_name: String,
    /// Directory (relative to the repository root) holding `<tenant>/` directories.
    pub tenants_dir: String,
    /// Prefix of Tenantry's own labels: `<prefix>/tenant` names an object's tenant.
    pub label_prefix: String,
    /// Values for every tenant field a tenant leaves out.
    pub defaults: TenantSpec,
    /// Names no tenant may take, beyond the built-in reserved names.
    pub reserved_names: Vec<NamePattern>,
    /// The shared Gateway tenants attach their HTTPRoutes to; its namespace may always connect
    /// to tenant pods.
    pub gateway: Option<GatewayRef>,
    /// The label a tenant namespace gets when it joins the mesh.
    pub mesh_label: LabelPair,
    /// The platform-owned registry pull secret.
    pub pull_secret: PullSecretConfig,
    /// OpenBao (or Vault) settings for tenants with `secrets.openbao`.
    pub openbao: OpenBaoConfig,
    /// Flux settings for Flux-delivered tenants.
    pub flux: FluxConfig,
    /// Argo CD settings for Argo CD-delivered tenants.
    pub argocd: ArgoCdConfig,
    /// Named opt-in grants a tenant can ask for in `rbac.grants`.
    pub grants: BTreeMap<String, Grant>,
    /// The cluster DNS service, which stays reachable when a tenant denies egress.
    pub dns: DnsConfig,
    /// The guardrails tenant manifests are held to, in CI (`tenantry check`) and at admission.
    pub policies: PolicyConfig,
    /// Lifetimes of the credentials `onboard` and `kubeconfig` issue to tenants.
    pub credentials: CredentialsConfig,
    /// The platform-wide ClusterRoles that let tenants manage their own custom resources.
    pub tenant_rbac: TenantRbacConfig,
    /// What the tenant proxy (`tenantry proxy`) answers itself.
    pub proxy: ProxyConfig,
}

impl Default for Platform {
    fn default() -> Self {
        Self {
            api_version: crate::API_VERSION.to_owned(),
            kind: "Platform".to_owned(),
            cluster_name: "cluster".to_owned(),
            tenants_dir: "tenants".to_owned(),
            label_prefix: crate::GROUP.to_owned(),
            defaults: builtin_tenant_defaults(),
            reserved_names: Vec::new(),
            gateway: Some(GatewayRef::default()),
            mesh_label: LabelPair {
                key: "istio-injection".to_owned(),
                value: "enabled".to_owned(),
            },
            pull_secret: PullSecretConfig::default(),
            openbao: OpenBaoConfig::default(),
            flux: FluxConfig::default(),
            argocd: ArgoCdConfig::default(),
            grants: BTreeMap::from([("external-dns".to_owned(), Grant::external_dns())]),
            dns: DnsConfig::default(),
            policies: PolicyConfig::default(),
            credentials: CredentialsConfig::default(),
            tenant_rbac: TenantRbacConfig::default(),
            proxy: ProxyConfig::default(),
        }
    }
}

impl Platform {
    /// The label that names an object's tenant, e.g. `tenantry.dev/tenant`.
    pub fn tenant_label(&self) -> String {
        format!("{}/tenant", self.label_prefix)
    }
}

/// A label key and value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelPair {
    /// Label key.
    pub key: String,
    /// Label value.
    pub value: String,
}

/// A Gateway API `parentRef`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayRef {
    /// Gateway name.
    pub name: String,
    /// Gateway namespace.
    pub namespace: String,
    /// Listener (section) tenants attach to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

impl Default for GatewayRef {
    fn default() -> Self {
        Self {
            name: "platform".to_owned(),
            namespace: "kube-system".to_owned(),
            section_name: Some("https".to_owned()),
        }
    }
}

/// Where the platform's registry pull secret comes from and how it reaches tenants.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PullSecretConfig {
    /// Name of the `kubernetes.io/dockerconfigjson` Secret in each tenant namespace.
    pub name: String,
    /// The platform's ClusterSecretStore holding the credential (never a tenant's store).
    pub cluster_secret_store: String,
    /// Key of the credential in that store.
    pub key: String,
    /// Property of the key holding the full dockerconfigjson text.
    pub property: String,
    /// How often External Secrets re-reads the credential, so a rotation lands within it.
    pub refresh_interval: GoDuration,
    /// The label a namespace carries to opt in to the pull secret.
    pub namespace_label: LabelPair,
    /// When true the platform fans the secret out with its own ClusterExternalSecret selected
    /// by `namespaceLabel`, so tenants get the label but no per-namespace ExternalSecret.
    pub fan_out: bool,
}

impl Default for PullSecretConfig {
    fn default() -> Self {
        Self {
            name: "ghcr-auth".to_owned(),
            cluster_secret_store: "openbao".to_owned(),
            key: "infrastructure/ghcr/auth".to_owned(),
            property: "dockerconfigjson".to_owned(),
            refresh_interval: GoDuration::from_secs(3600),
            namespace_label: LabelPair {
                key: "apps.platform/tenant".to_owned(),
                value: "true".to_owned(),
            },
            fan_out: false,
        }
    }
}

/// OpenBao / Vault settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct OpenBaoConfig {
    /// Address External Secrets uses to reach OpenBao from inside the cluster.
    pub address: String,
    /// KV version 2 mount holding tenant secrets.
    pub kv_mount: String,
    /// Path under the mount; each tenant owns `<pathPrefix>/<tenant>/*`.
    pub path_prefix: String,
    /// Mount path of the Kubernetes auth method.
    pub auth_mount: String,
    /// Name of the namespaced SecretStore rendered in each tenant namespace.
    pub store_name: String,
    /// Prefix of each tenant's policy name (`<prefix><tenant>`).
    pub policy_prefix: String,
    /// Prefix of each tenant's Kubernetes auth role name (`<prefix><tenant>`).
    pub role_prefix: String,
    /// Lifetime of the OpenBao tokens the tenant's role issues.
    pub token_ttl: GoDuration,
    /// The audience a tenant's ServiceAccount token must carry to log in with its role; none
    /// means OpenBao does not check it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Whether `tenantry secrets provision` may enable the KV v2 mount and the Kubernetes auth
    /// method when they are missing. Off by default: the mounts are the platform's, and a
    /// missing one is reported rather than created.
    pub manage_mounts: bool,
}

impl OpenBaoConfig {
    /// The tenant's ACL policy name: `<policyPrefix><tenant>`.
    pub fn policy_name(&self, tenant: &str) -> String {
        format!("{}{tenant}", self.policy_prefix)
    }

    /// The tenant's Kubernetes auth role name: `<rolePrefix><tenant>`.
    pub fn role_name(&self, tenant: &str) -> String {
        format!("{}{tenant}", self.role_prefix)
    }

    /// The tenant's secrets path under the KV mount: `<pathPrefix>/<tenant>`.
    pub fn tenant_path(&self, tenant: &str) -> String {
        format!("{}/{tenant}", self.path_prefix)
    }
}

impl Default for OpenBaoConfig {
    fn default() -> Self {
        Self {
            address: "http://openbao.openbao.svc:8200".to_owned(),
            kv_mount: "secret".to_owned(),
            path_prefix: "apps".to_owned(),
            auth_mount: "kubernetes".to_owned(),
            store_name: "openbao".to_owned(),
            policy_prefix: "app-".to_owned(),
            role_prefix: String::new(),
            token_ttl: GoDuration::from_secs(3600),
            audience: None,
            manage_mounts: false,
        }
    }
}

/// How long the tenant credentials Tenantry issues stay valid.
///
/// An issued kubeconfig holds a bearer token: whoever has the file is the tenant until the
/// token expires or its ServiceAccount is deleted. Short lifetimes bound the damage of a
/// leaked file, and a tenant gets a fresh token with `tenantry kubeconfig <name>` at any
/// time, so nothing forces long-lived ones. Durations are written as Go durations (`8h`,
/// `30m`, `1h30m`); the API server refuses tokens shorter than `10m`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CredentialsConfig {
    /// Lifetime when none is asked for: `8h`, one working day, so a credential handed out in
    /// the morning is dead by the night instead of lingering in a download folder.
    pub default_token_duration: TokenDuration,
    /// The longest lifetime anyone may ask for (`--token-duration`, `--duration`); longer
    /// requests are cut to it. `24h` by default: a day is enough for any interactive use,
    /// and automation should request its own token rather than hold a long one.
    pub max_token_duration: TokenDuration,
}

impl Default for CredentialsConfig {
    fn default() -> Self {
        Self {
            default_token_duration: TokenDuration::hours(8),
            max_token_duration: TokenDuration::hours(24),
        }
    }
}

/// Where cluster DNS runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Namespace of the DNS pods.
    pub namespace: String,
    /// Labels selecting the DNS pods.
    pub pod_labels: BTreeMap<String, String>,
    /// Ports DNS answers on (UDP and TCP).
    pub ports: Vec<u16>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            namespace: "kube-system".to_owned(),
            pod_labels: BTreeMap::from([("k8s-app".to_owned(), "kube-dns".to_owned())]),
            ports: vec![53],
        }
    }
}

/// Flux settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct FluxConfig {
    /// Namespace Flux's controllers run in.
    pub namespace: String,
    /// How often sources are checked for new artifacts or commits.
    pub source_interval: GoDuration,
    /// How often Kustomizations are reconciled (drift correction).
    pub interval: GoDuration,
    /// The identity Flux applies platform objects as (the tenants tree's reconciler).
    pub reconciler: String,
    /// When set, every Flux-delivered tenant's Kustomization reconciles through the tenant
    /// proxy (`spec.kubeConfig`), with a kubeconfig the operator keeps in the tenant's
    /// primary namespace; unset, Flux talks to the API server directly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<FluxProxyConfig>,
}

impl Default for FluxConfig {
    fn default() -> Self {
        Self {
            namespace: "flux-system".to_owned(),
            source_interval: GoDuration::from_secs(300),
            interval: GoDuration::from_secs(600),
            reconciler: "system:serviceaccount:flux-system:kustomize-controller".to_owned(),
            proxy: None,
        }
    }
}

/// The name of the Secret holding a tenant's proxy kubeconfig for Flux, in its primary
/// namespace, when the platform sets `flux.proxy` and the tenant names none. One name for
/// every tenant, so the operator's rights on Secrets are limited to it by `resourceNames`.
pub const FLUX_PROXY_KUBECONFIG_SECRET: &str = "tenantry-flux-proxy-kubeconfig";

/// How Flux reaches the tenant proxy (`flux.proxy`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FluxProxyConfig {
    /// The proxy's `https://` URL as Flux's controllers reach it (its in-cluster Service).
    pub url: String,
    /// PEM certificate(s) the proxy's serving certificate chains to; the system roots when
    /// unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// Lifetime of each token in the kubeconfig (`1h` by default, at least `10m`): the
    /// operator mints a new one at two thirds of it.
    #[serde(default = "FluxProxyConfig::default_token_expiration")]
    pub token_expiration: TokenDuration,
}

impl FluxProxyConfig {
    fn default_token_expiration() -> TokenDuration {
        TokenDuration::hours(1)
    }
}

/// Argo CD settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ArgoCdConfig {
    /// Namespace Argo CD runs in (AppProjects and Applications live there).
    pub namespace: String,
    /// The destination server of this cluster as Argo CD names it.
    pub destination_server: String,
}

impl Default for ArgoCdConfig {
    fn default() -> Self {
        Self {
            namespace: "argocd".to_owned(),
            destination_server: "https://kubernetes.default.svc".to_owned(),
        }
    }
}

/// A named, opt-in grant beyond the tenant's own namespaces, e.g. letting a tenant-run
/// external-dns read the shared Gateway.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Grant {
    /// What the grant is for, shown in rendered annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The ServiceAccount, in the tenant's primary namespace, that receives the grant. The
    /// tenant's own ServiceAccount when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// ClusterRoles to bind and where.
    pub bindings: Vec<GrantBinding>,
}

impl Grant {
    /// The seed platform's grant for a tenant running its own external-dns: `tenant-external-dns`
    /// (HTTPRoutes) in its namespaces and `tenant-external-dns-global` (the shared Gateway and
    /// namespace listing) cluster-wide. The platform installs both ClusterRoles.
    pub fn external_dns() -> Self {
        Self {
            description: Some(
                "A tenant-run external-dns may read its HTTPRoutes, the shared Gateway and namespaces."
                    .to_owned(),
            ),
            service_account: Some("external-dns".to_owned()),
            bindings: vec![
                GrantBinding {
                    cluster_role: "tenant-external-dns".to_owned(),
                    scope: GrantScope::TenantNamespaces,
                    namespace: None,
                },
                GrantBinding {
                    cluster_role: "tenant-external-dns-global".to_owned(),
                    scope: GrantScope::Cluster,
                    namespace: None,
                },
            ],
        }
    }
}

/// One ClusterRole binding of a grant.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantBinding {
    /// The ClusterRole (the platform installs it; Tenantry only binds it).
    pub cluster_role: String,
    /// Where the binding applies.
    pub scope: GrantScope,
    /// The namespace, for `scope: namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Where a grant's binding applies.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum GrantScope {
    /// A RoleBinding in each of the tenant's namespaces.
    TenantNamespaces,
    /// A RoleBinding in one named (platform) namespace.
    Namespace,
    /// A ClusterRoleBinding. Use only for ClusterRoles that are themselves narrow.
    Cluster,
}

/// The tenant proxy's own answers, beyond namespaces.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Cluster-scoped kinds tenants may read (get, list, watch) through the proxy, which
    /// answers them with its own read-only identity. A kind not listed is forwarded as the
    /// caller, whose RBAC usually forbids it.
    pub cluster_scoped: Vec<ProxyClusterScoped>,
}

/// One cluster-scoped kind the proxy lets tenants read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyClusterScoped {
    /// The kind.
    pub kind: ProxyClusterKind,
    /// Which objects of it a tenant sees.
    #[serde(default)]
    pub mode: ProxyReadMode,
}

/// The cluster-scoped kinds the proxy can expose: the shared classes a tenant's `classes`
/// names.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProxyClusterKind {
    /// `storage.k8s.io/v1` StorageClass.
    StorageClass,
    /// `networking.k8s.io/v1` IngressClass.
    IngressClass,
    /// `scheduling.k8s.io/v1` PriorityClass.
    PriorityClass,
    /// `node.k8s.io/v1` RuntimeClass.
    RuntimeClass,
}

/// Which objects of an exposed kind a tenant sees.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ProxyReadMode {
    /// Only the classes the tenant may use (its resolved `classes` list of that kind; all of
    /// them when the list is unrestricted; never `system-*` PriorityClasses).
    #[default]
    Filtered,
    /// Every object of the kind.
    All,
}

fn compute(cpu: &str, memory: &str, ephemeral_storage: &str) -> Option<ComputeResources> {
    Some(ComputeResources {
        cpu: Some(Quantity::from(cpu)),
        memory: Some(Quantity::from(memory)),
        ephemeral_storage: Some(Quantity::from(ephemeral_storage)),
    })
}

/// The values a tenant gets when neither it nor the platform says otherwise: restricted Pod
/// Security, a modest quota with no NodePort or LoadBalancer Services, `edit` in its own
/// namespaces, Flux OCI delivery of a cosign-signed artifact, and the platform pull secret.
pub fn builtin_tenant_defaults() -> TenantSpec {
    TenantSpec {
        owners: Vec::new(),
        namespaces: Vec::new(),
        pod_security: Some(PodSecurityLevel::Restricted),
        mesh: Some(false),
        quota: Some(Quota {
            scope: Some(QuotaScope::Namespace),
            requests: compute("4", "8Gi", "20Gi"),
            limits: compute("8", "16Gi", "40Gi"),
            pods: Some(50),
            services: Some(20),
            services_node_ports: Some(0),
            services_load_balancers: Some(0),
            persistent_volume_claims: Some(10),
            config_maps: Some(100),
            secrets: Some(100),
            replication_controllers: Some(0),
            resource_quotas: Some(1),
        }),
        limits: Some(Limits {
            default: compute("500m", "512Mi", "1Gi"),
            default_request: compute("100m", "128Mi", "256Mi"),
            max: compute("2", "4Gi", "10Gi"),
        }),
        network: Some(Network {
            provider: Some(NetworkProvider::Kubernetes),
            allow_from: Some(Vec::new()),
            default_deny_egress: Some(false),
        }),
        rbac: Some(Rbac {
            cluster_role: Some("edit".to_owned()),
            grants: Some(Vec::new()),
        }),
        registries: Some(Vec::new()),
        delivery: Some(Delivery::FluxOci(FluxOci {
            url: Some("oci://ghcr.io/example/{tenant}/manifests".to_owned()),
            semver: Some(">=1.0.0".to_owned()),
            verify: Some(CosignIdentity {
                issuer: Some(r"^https://token\.actions\.githubusercontent\.com$".to_owned()),
                subject: Some(
                    r"^https://github\.com/example/platform/\.github/workflows/publish-app\.yaml@refs/tags/v.*$"
                        .to_owned(),
                ),
                secret_ref: None,
                public_key: None,
            }),
            pull_secret: None,
        })),
        secrets: Some(Secrets {
            openbao: Some(false),
            pull_secret: Some(true),
        }),
        // Unrestricted until the platform says which nodes and classes are whose.
        placement: None,
        classes: None,
    }
}

/// Which custom resources a tenant may manage in its own namespaces, granted through
/// ClusterRoles that aggregate into `edit` and `admin`.
///
/// A tenant's delivery applies its `deploy/` tree as the tenant's ServiceAccount, which holds
/// `edit` in the tenant's namespaces. `edit` covers built-in kinds only; without these
/// ClusterRoles the first ExternalSecret or CiliumNetworkPolicy is Forbidden, and relying on
/// upstream charts' aggregation may grant more (ClusterSecretStore reads). Each toggle left
/// unset follows what the platform uses; `true` or `false` overrides that.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TenantRbacConfig {
    /// ExternalSecrets, PushSecrets, namespaced SecretStores and the `generators` below. Unset:
    /// on when the platform's tenants get the pull secret or OpenBao by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_secrets: Option<bool>,
    /// CiliumNetworkPolicies. Unset: on when the default network provider is `cilium`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cilium: Option<bool>,
    /// HTTPRoutes and GRPCRoutes. Unset: on when a `gateway` is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_api: Option<bool>,
    /// Flux sources, Kustomizations and HelmReleases of the tenant's own. Off unless `true`:
    /// a tenant-side Kustomization is a second delivery path the platform must want.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flux: Option<bool>,
    /// The `generators.external-secrets.io` kinds tenants may create (with External Secrets).
    pub generators: Vec<GeneratorKind>,
}

impl Default for TenantRbacConfig {
    fn default() -> Self {
        Self {
            external_secrets: None,
            cilium: None,
            gateway_api: None,
            flux: None,
            generators: vec![GeneratorKind::Passwords],
        }
    }
}

/// A namespaced External Secrets generator kind, by its resource (plural) name.
///
/// Only namespaced kinds exist here: `clustergenerators` is cluster-scoped and
/// `generatorstates` is the controller's own bookkeeping, so neither can be granted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum GeneratorKind {
    /// `ACRAccessToken`.
    Acraccesstokens,
    /// `CloudsmithAccessToken`.
    Cloudsmithaccesstokens,
    /// `ECRAuthorizationToken`.
    Ecrauthorizationtokens,
    /// `Fake`.
    Fakes,
    /// `GCRAccessToken`.
    Gcraccesstokens,
    /// `GithubAccessToken`.
    Githubaccesstokens,
    /// `GitlabDeployToken`.
    Gitlabdeploytokens,
    /// `Grafana`.
    Grafanas,
    /// `MFA`.
    Mfas,
    /// `Password`.
    Passwords,
    /// `QuayAccessToken`.
    Quayaccesstokens,
    /// `SSHKey`.
    Sshkeys,
    /// `STSSessionToken`.
    Stssessiontokens,
    /// `UUID`.
    Uuids,
    /// `VaultDynamicSecret`.
    Vaultdynamicsecrets,
    /// `Webhook`.
    Webhooks,
}

impl GeneratorKind {
    /// The resource name, as RBAC rules write it.
    pub fn resource(self) -> &'static str {
        match self {
            Self::Acraccesstokens => "acraccesstokens",
            Self::Cloudsmithaccesstokens => "cloudsmithaccesstokens",
            Self::Ecrauthorizationtokens => "ecrauthorizationtokens",
            Self::Fakes => "fakes",
            Self::Gcraccesstokens => "gcraccesstokens",
            Self::Githubaccesstokens => "githubaccesstokens",
            Self::Gitlabdeploytokens => "gitlabdeploytokens",
            Self::Grafanas => "grafanas",
            Self::Mfas => "mfas",
            Self::Passwords => "passwords",
            Self::Quayaccesstokens => "quayaccesstokens",
            Self::Sshkeys => "sshkeys",
            Self::Stssessiontokens => "stssessiontokens",
            Self::Uuids => "uuids",
            Self::Vaultdynamicsecrets => "vaultdynamicsecrets",
            Self::Webhooks => "webhooks",
        }
    }
}
