//! The `Tenant` kind: one application team's isolation, declared once.
//!
//! Field names follow Kubernetes conventions (camelCase, lists of named things) so a tenant
//! reads like any other manifest. Every field is `Option`al or an empty list: absence means
//! "the platform default", which `tenantry-core` resolves against `tenantry.yaml`. Unknown
//! fields are refused, because a misspelt `podSecurty: baseline` silently ignored would leave
//! a tenant with settings nobody chose.

// kube's `printcolumn(...)` arguments repeat `type_ = "string"`; clippy mistakes them for
// duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::quantity::Quantity;

/// What a platform team declares about one tenant.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tenantry.dev",
    version = "v1alpha1",
    kind = "Tenant",
    plural = "tenants",
    singular = "tenant",
    // Not `tnt`: that is Capsule's Tenant, and a cluster may run both.
    shortname = "tnry",
    category = "tenantry",
    status = "TenantStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A tenant: an application team that runs in its own namespaces on a shared cluster, with every isolation layer Tenantry renders for it.",
    printcolumn(
        name = "Pod-Security",
        type_ = "string",
        json_path = ".spec.podSecurity"
    ),
    printcolumn(
        name = "Namespaces",
        type_ = "string",
        json_path = ".status.namespaces"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = kubernetes_formats)]
pub struct TenantSpec {
    /// People, groups and service accounts bound to the tenant's ClusterRole in every tenant
    /// namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<Owner>,

    /// Namespaces beyond the one named after the tenant. Each is `<tenant>` or
    /// `<tenant>-<suffix>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,

    /// Pod Security level enforced in the tenant's namespaces. `baseline` is what a tenant that
    /// must run as root gets; `restricted` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security: Option<PodSecurityLevel>,

    /// Join the platform's service mesh (adds the platform's mesh label to each namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<bool>,

    /// ResourceQuota `hard` limits, applied to each tenant namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,

    /// LimitRange defaults and bounds for containers in each tenant namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,

    /// Network isolation: default-deny ingress always; what else is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,

    /// The ClusterRole bound in each namespace and the platform's opt-in grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac: Option<Rbac>,

    /// Image registries the tenant's workloads may pull from (`ghcr.io/acme`, `docker.io`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registries: Option<Vec<String>>,

    /// How the tenant's own manifests reach the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,

    /// Secret stores and credentials provisioned for the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Secrets>,

    /// Which nodes the tenant's pods may land on. In `defaults` the platform's bounds; a
    /// tenant may only be stricter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,

    /// The shared cluster classes (priority, storage, ingress, gateway, runtime) the tenant may
    /// use. In `defaults` the platform's allow-lists; a tenant may only narrow them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Classes>,
}

/// Where a tenant's pods may run.
///
/// A pod that names its node (`nodeName`) skips the scheduler; one that tolerates every taint
/// lands on control-plane or another team's dedicated nodes. The platform says which node
/// labels the tenant's pods must select and which taints they may tolerate.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Placement {
    /// Node labels every pod must select with exactly these values in its `nodeSelector`
    /// (e.g. `pool: shared`). A tenant may add labels to the platform's, never drop one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Taints the tenant's pods may tolerate. `operator: Exists` without a key tolerates every
    /// taint and is allowed only if listed so. Kubernetes' own node-condition taints
    /// (`node.kubernetes.io/*`) are always tolerable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<AllowedToleration>>,
}

/// A taint a tenant's pods may tolerate.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowedToleration {
    /// The taint key; empty with `operator: Exists` means every taint.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `Equal` (default): only `value`; `Exists`: any value of the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<TolerationOperator>,
    /// The taint value, with `operator: Equal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The taint effect; unset means every effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<TaintEffect>,
}

/// How a toleration matches a taint's value.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TolerationOperator {
    /// The value must be equal.
    Equal,
    /// Any value.
    Exists,
}

/// A taint effect.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TaintEffect {
    /// Not scheduled.
    NoSchedule,
    /// Preferably not scheduled.
    PreferNoSchedule,
    /// Not scheduled, and evicted.
    NoExecute,
}

impl TaintEffect {
    /// The effect as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }
}

/// The shared classes a tenant may use. A class left out is not restricted, except that
/// PriorityClasses named `system-*` (Kubernetes' node- and cluster-critical classes) are never
/// a tenant's.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Classes {
    /// PriorityClasses (`priorityClassName` of pods and templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<ClassList>,
    /// StorageClasses (PersistentVolumeClaims, volume claim templates, ephemeral volumes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<ClassList>,
    /// IngressClasses (`ingressClassName`, and the legacy `kubernetes.io/ingress.class`
    /// annotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<ClassList>,
    /// GatewayClasses of Gateways the tenant creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<ClassList>,
    /// RuntimeClasses (`runtimeClassName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<ClassList>,
}

/// An allow-list of one kind of class.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClassList {
    /// The classes that may be named.
    #[serde(default)]
    pub allowed: Vec<String>,
    /// The class objects get when they name none (the cluster's default class); it must be
    /// allowed. Said in denials so a tenant knows what to write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// Make the schema's integer formats ones the API server knows.
///
/// schemars describes `u32` as `format: uint32`, which the API server does not recognise: it
/// warns about it on every `kubectl apply` of the CRD. The bounds say the same thing in terms
/// it does enforce, so unsigned integers keep `minimum` (and get `maximum`) and lose `format`.
fn kubernetes_formats(schema: &mut schemars::Schema) {
    use schemars::transform::{RecursiveTransform, Transform};
    RecursiveTransform(|schema: &mut schemars::Schema| {
        let Some(object) = schema.as_object_mut() else {
            return;
        };
        let maximum = match object.get("format").and_then(|f| f.as_str()) {
            Some("uint8") => u64::from(u8::MAX),
            Some("uint16") => u64::from(u16::MAX),
            Some("uint32") => u64::from(u32::MAX),
            Some("uint64" | "uint") => i64::MAX.unsigned_abs(),
            _ => return,
        };
        object.remove("format");
        object.insert("minimum".to_owned(), 0.into());
        object.insert("maximum".to_owned(), maximum.into());
    })
    .transform(schema);
}

/// What a tenant's quota limits hold for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum QuotaScope {
    /// Each namespace has the whole limits.
    #[default]
    Namespace,
    /// The limits hold for the sum over all the tenant's namespaces.
    Tenant,
}

/// A subject that owns a tenant.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Owner {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: OwnerKind,
    /// The user or group name as the cluster's authenticator reports it, or the
    /// ServiceAccount's name.
    pub name: String,
    /// The ServiceAccount's namespace (ServiceAccount owners only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The kinds of RBAC subject an owner can be.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum OwnerKind {
    /// A human or external identity.
    User,
    /// A group as the authenticator reports it.
    Group,
    /// A Kubernetes ServiceAccount.
    ServiceAccount,
}

impl OwnerKind {
    /// The RBAC subject kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
            Self::ServiceAccount => "ServiceAccount",
        }
    }
}

/// The Pod Security Standards levels a tenant may run at. `privileged` is never offered.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub enum PodSecurityLevel {
    /// The hardened profile: non-root, no privilege escalation, seccomp, dropped capabilities.
    #[default]
    Restricted,
    /// Prevents known privilege escalations but allows running as root.
    Baseline,
}

impl PodSecurityLevel {
    /// The value of the `pod-security.kubernetes.io/*` labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restricted => "restricted",
            Self::Baseline => "baseline",
        }
    }
}

/// CPU, memory and ephemeral storage amounts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComputeResources {
    /// CPU, in cores (`500m`, `2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    /// Memory, in bytes (`512Mi`, `4Gi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// Ephemeral (node-local) storage, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<Quantity>,
}

/// ResourceQuota `hard` limits for each tenant namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quota {
    /// What the limits hold for: `namespace` (default), each namespace on its own; or
    /// `tenant`, the sum over all the tenant's namespaces, so a tenant with five namespaces
    /// does not get five budgets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<QuotaScope>,
    /// Total `requests.*` across the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<ComputeResources>,
    /// Total `limits.*` across the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ComputeResources>,
    /// Pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<u32>,
    /// Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<u32>,
    /// NodePort Services (default 0: node ports bypass the platform's gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services_node_ports: Option<u32>,
    /// LoadBalancer Services (default 0: they cost money and bypass the gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services_load_balancers: Option<u32>,
    /// PersistentVolumeClaims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claims: Option<u32>,
    /// ConfigMaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_maps: Option<u32>,
    /// Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<u32>,
    /// ReplicationControllers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_controllers: Option<u32>,
    /// ResourceQuotas (a tenant that may create none cannot loosen its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_quotas: Option<u32>,
}

/// LimitRange settings for containers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// Limits given to containers that set none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<ComputeResources>,
    /// Requests given to containers that set none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_request: Option<ComputeResources>,
    /// The most any one container may ask for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<ComputeResources>,
}

/// Network isolation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Network {
    /// Which policy API to render: `kubernetes` (NetworkPolicy) or `cilium`
    /// (CiliumNetworkPolicy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<NetworkProvider>,
    /// Namespaces, beyond the tenant's own and the platform gateway's, whose pods may connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_from: Option<Vec<String>>,
    /// Deny egress by default; DNS and the tenant's own namespaces stay reachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_deny_egress: Option<bool>,
}

/// The network policy API a cluster enforces.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub enum NetworkProvider {
    /// `networking.k8s.io/v1` NetworkPolicy, enforced by any conformant CNI.
    #[default]
    Kubernetes,
    /// `cilium.io/v2` CiliumNetworkPolicy.
    Cilium,
}

/// RBAC for the tenant's owners and ServiceAccounts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rbac {
    /// The ClusterRole bound in each tenant namespace (default `edit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_role: Option<String>,
    /// Names of opt-in grants defined in `tenantry.yaml` (e.g. `external-dns`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<Vec<String>>,
}

/// How the tenant's manifests are delivered. Exactly one member is set.
///
/// Fields left out of the chosen member come from the platform default when the platform's
/// default delivery is the same kind.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub enum Delivery {
    /// A signed OCI artifact pulled by Flux (OCIRepository + Kustomization).
    #[serde(rename = "fluxOCI")]
    FluxOci(FluxOci),
    /// A Git repository pulled by Flux (GitRepository + Kustomization).
    #[serde(rename = "fluxGit")]
    FluxGit(FluxGit),
    /// An Argo CD AppProject + Application.
    #[serde(rename = "argoCD")]
    ArgoCd(ArgoCd),
    /// Nothing: the tenant delivers its manifests some other way.
    #[serde(rename = "none")]
    None(NoDelivery),
}

impl Delivery {
    /// The name used in files, flags and messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::FluxOci(_) => "fluxOCI",
            Self::FluxGit(_) => "fluxGit",
            Self::ArgoCd(_) => "argoCD",
            Self::None(_) => "none",
        }
    }
}

/// Flux OCI delivery.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FluxOci {
    /// `oci://` URL of the manifests artifact. `{tenant}` is replaced by the tenant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Semver range of tags to deploy (Flux/Masterminds syntax, default `>=1.0.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
    /// Who an artifact must be signed by: a keyless cosign identity (`issuer` + `subject`)
    /// or the public key in a Secret (`secretRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<CosignIdentity>,
    /// Name of the registry pull secret in the tenant namespace (default: the platform's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<String>,
}

/// The cosign signer Flux requires: keyless (an OIDC `issuer` and `subject`, as a CI
/// workflow signs through Fulcio) or a key pair (`secretRef`, and optionally `publicKey`, as
/// `tenantry publish --key` signs). One of the two, not both; the first layer (tenant, then platform defaults) that
/// sets either chooses.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CosignIdentity {
    /// Name of a Secret in the tenant's primary namespace holding the public key as
    /// `cosign.pub` (Flux's `verify.secretRef`; `tenantry keys generate` writes the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<String>,
    /// Regular expression for the OIDC issuer (e.g. `^https://token\.actions\.githubusercontent\.com$`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Regular expression for the signing workflow's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The public key itself (PEM, as `cosign.pub`), with `secretRef`: Tenantry then renders
    /// the Secret `secretRef` names, holding it as `cosign.pub`. A public key is safe to
    /// commit. Without it the platform creates that Secret some other way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// Flux Git delivery.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FluxGit {
    /// `https://` or `ssh://` URL of the repository. `{tenant}` is replaced by the tenant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Branch to follow (default `main`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Path inside the repository (default `./deploy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Secret holding a kubeconfig for a tenant-aware API proxy; Flux reconciles through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_kubeconfig_secret: Option<String>,
}

/// Argo CD delivery.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArgoCd {
    /// The repository Argo CD may sync from. `{tenant}` is replaced by the tenant name.
    #[serde(rename = "repoURL", default, skip_serializing_if = "Option::is_none")]
    pub repo_url: Option<String>,
    /// Path inside the repository (default `deploy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Git revision (default `HEAD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// Explicitly no delivery objects.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoDelivery {}

/// Secrets provisioning.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Secrets {
    /// Provision an OpenBao role and policy scoped to the tenant's path, and a namespaced
    /// SecretStore that authenticates with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openbao: Option<bool>,
    /// Materialise the platform's registry pull secret in each tenant namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<bool>,
}

/// What the cluster side last observed about a tenant.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The tenant's namespaces, comma-separated, for `kubectl get tenants`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<String>,
    /// Standard conditions; `Ready` is true when every layer is applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Each layer the tenant renders, in apply order, as the last reconcile left it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerState>,
    /// What stopped the last reconcile, naming the object and field to fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<StatusError>,
}

/// One layer of a tenant on the cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = kubernetes_formats)]
pub struct LayerState {
    /// The layer: `namespace`, `quota`, `limits`, `rbac`, `serviceaccount`, `network`,
    /// `secrets` or `delivery`.
    pub name: String,
    /// `applied`, `unchanged`, `skipped` (a CRD it needs is not installed), `failed` or
    /// `not-applied` (an earlier layer failed).
    pub state: String,
    /// How many objects the layer renders.
    pub objects: u32,
    /// CustomResourceDefinitions the layer needs that the cluster does not serve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_crds: Vec<String>,
}

/// An error a reconcile met, in the terms needed to fix it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusError {
    /// The object it concerns (`Kind namespace/name`, or `Tenant <name>` for the spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The field to change (`spec.quota.pods`, `metadata.labels`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// The `metadata` a tenant file may carry. A file is not a live object: server-populated
/// fields (uid, resourceVersion, managedFields) have no place in it and are refused.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileMetadata {
    /// The tenant's name: a DNS-1123 label.
    pub name: String,
    /// Labels copied onto the Tenant object.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations copied onto the Tenant object.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `tenants/<name>/tenant.yaml`: a Tenant as a platform repository stores it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantFile {
    /// Must be `tenantry.dev/v1alpha1`.
    pub api_version: String,
    /// Must be `Tenant`.
    pub kind: String,
    /// Name, labels and annotations.
    pub metadata: FileMetadata,
    /// The declaration.
    #[serde(default)]
    pub spec: TenantSpec,
}

impl TenantFile {
    /// A new tenant file for `name` with `spec`.
    pub fn new(name: impl Into<String>, spec: TenantSpec) -> Self {
        Self {
            api_version: crate::API_VERSION.to_owned(),
            kind: "Tenant".to_owned(),
            metadata: FileMetadata {
                name: name.into(),
                ..FileMetadata::default()
            },
            spec,
        }
    }

    /// The same tenant as a custom resource object.
    pub fn to_resource(&self) -> Tenant {
        let mut tenant = Tenant::new(&self.metadata.name, self.spec.clone());
        if !self.metadata.labels.is_empty() {
            tenant.metadata.labels = Some(self.metadata.labels.clone());
        }
        if !self.metadata.annotations.is_empty() {
            tenant.metadata.annotations = Some(self.metadata.annotations.clone());
        }
        tenant
    }
}
