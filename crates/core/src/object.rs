//! The unit of desired state: one Kubernetes object, plus where it goes and in which layer.
//!
//! Every consumer (the GitOps writer, `render`, the cluster applier, the operator) handles
//! objects the same way, so they are kept as untyped JSON with their identity alongside:
//! typed k8s-openapi structs build built-in kinds, JSON builds custom kinds, and neither
//! leaks past this module.

use std::fmt;

use serde_json::Value;

/// The isolation layers, in the order they must be applied: a namespace before anything in
/// it; quota and limits before anything that could consume them; RBAC and identity before
/// delivery starts deploying as that identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// Namespaces with Pod Security labels.
    Namespace,
    /// ResourceQuota.
    Quota,
    /// LimitRange.
    Limits,
    /// The tenant's parameters and bindings for the compiled admission policies: judging
    /// the tenant's objects before anyone is granted a right in its namespaces.
    Guardrails,
    /// RoleBindings and grants.
    Rbac,
    /// The tenant's ServiceAccounts.
    ServiceAccount,
    /// Default-deny network policy.
    Network,
    /// Secret stores and the pull secret.
    Secrets,
    /// Flux or Argo CD objects that deliver the tenant's own manifests.
    Delivery,
}

impl Layer {
    /// Every layer, in apply order.
    pub const ALL: [Layer; 9] = [
        Layer::Namespace,
        Layer::Quota,
        Layer::Limits,
        Layer::Guardrails,
        Layer::Rbac,
        Layer::ServiceAccount,
        Layer::Network,
        Layer::Secrets,
        Layer::Delivery,
    ];

    /// Short lower-case name used in messages and `--output json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Namespace => "namespace",
            Layer::Quota => "quota",
            Layer::Limits => "limits",
            Layer::Guardrails => "guardrails",
            Layer::Rbac => "rbac",
            Layer::ServiceAccount => "serviceaccount",
            Layer::Network => "network",
            Layer::Secrets => "secrets",
            Layer::Delivery => "delivery",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object Tenantry wants to exist.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredObject {
    /// The layer it belongs to.
    pub layer: Layer,
    /// `apiVersion`, e.g. `v1` or `source.toolkit.fluxcd.io/v1`.
    pub api_version: &'static str,
    /// `kind`.
    pub kind: &'static str,
    /// Namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// The whole object, `apiVersion` and `kind` included.
    pub body: Value,
}

impl DesiredObject {
    /// The file this object is written to in the tenant's GitOps directory:
    /// `<kind>.<name>.yaml` for cluster-scoped objects, `<kind>.<namespace>.<name>.yaml`
    /// otherwise, all lower-case. Unique within a tenant because (kind, namespace, name) is.
    pub fn file_name(&self) -> String {
        let kind = self.kind.to_ascii_lowercase();
        // `:` is not allowed in file names on Windows. `+` never occurs in a name Tenantry
        // renders (DNS names, and RBAC names limited to letters, digits, `-_.:`), so the
        // mapping stays one-to-one and two objects never share a file.
        let name = self.name.replace(':', "+");
        match &self.namespace {
            Some(ns) => format!("{kind}.{ns}.{name}.yaml"),
            None => format!("{kind}.{name}.yaml"),
        }
    }

    /// `group/version`'s group, empty for the core group.
    pub fn group(&self) -> &'static str {
        match self.api_version.rsplit_once('/') {
            Some((group, _)) => group,
            None => "",
        }
    }

    /// A short human reference: `Kind namespace/name` or `Kind name`.
    pub fn reference(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// A rendered file that is not a Kubernetes object (OpenBao policy and role), written beside
/// the objects for the provisioning step that consumes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    /// File name inside the tenant directory.
    pub file_name: String,
    /// Content.
    pub content: String,
}

/// Everything rendered for one tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    /// The tenant's name.
    pub tenant: String,
    /// Objects in apply order.
    pub objects: Vec<DesiredObject>,
    /// Non-Kubernetes files.
    pub artifacts: Vec<Artifact>,
}
