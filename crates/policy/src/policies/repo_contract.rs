//! `tenant-repo-contract` (check only): what a tenant repository promises the platform.
//!
//! The platform's publish pipeline pins each new image digest into the Deployment container
//! named after the repository, so a renamed container silently stops deploying new builds.
//! Secrets never sit in Git: not as plaintext Secrets, and not SOPS-encrypted either (tenant
//! secrets come from OpenBao through External Secrets, and the platform holds no tenant SOPS
//! keys). And the tenant's SecretStore is the namespaced one, with the name the platform's
//! OpenBao role and documentation expect.
//!
//! The shape `tenantry tenant init` scaffolds is part of the contract too, because the
//! platform's delivery depends on it: the artifact is what kustomize builds from
//! `deploy/kustomization.yaml` (a repository without one publishes nothing), the delivery
//! applies it as the tenant's ServiceAccount inside the tenant's namespaces (a cluster-scoped
//! object or a foreign `namespace` passes every other check in CI and is then refused, or
//! worse, lands somewhere the tenant did not mean), and images come from the tenant's
//! registries. The registry rule is `allowed-registries` itself, which the contract switches
//! on (see `Engine::runs`) rather than judging images a second time under another name.

use std::path::Path;

use serde_json::Value;

use super::{objects_in, str_of};
use crate::engine::{
    Eval, ObjectRef, ObjectView, PolicyId, RepoContract, Severity, Sink, Violation,
};

const ESO_GROUP: &str = "external-secrets.io";
const KUSTOMIZE_GROUP: &str = "kustomize.config.k8s.io";

/// The paths every tenant repository has, relative to its root: the kustomization the
/// platform's publish step builds.
pub const REQUIRED_PATHS: &[&str] = &["deploy/kustomization.yaml"];

/// Kinds that have no namespace, by `(group, kind)`: every cluster-scoped resource a v1.36
/// API server serves (a test holds this equal to recorded discovery) and the common add-ons'
/// cluster-scoped kinds. Names are not enough (CloudNativePG's namespaced `Cluster`), so the
/// list is explicit; a kind missing from it is still refused by `tenant-rbac`, since no
/// tenant role grants a cluster-scoped resource.
pub const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "ComponentStatus"),
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("authentication.k8s.io", "SelfSubjectReview"),
    ("authentication.k8s.io", "TokenReview"),
    ("authorization.k8s.io", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectRulesReview"),
    ("authorization.k8s.io", "SubjectAccessReview"),
    ("capsule.clastix.io", "Tenant"),
    ("cert-manager.io", "ClusterIssuer"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("cilium.io", "CiliumClusterwideNetworkPolicy"),
    ("external-secrets.io", "ClusterExternalSecret"),
    ("external-secrets.io", "ClusterSecretStore"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("gateway.networking.k8s.io", "GatewayClass"),
    ("generators.external-secrets.io", "ClusterGenerator"),
    ("kyverno.io", "ClusterPolicy"),
    ("networking.k8s.io", "IPAddress"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("node.k8s.io", "RuntimeClass"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("resource.k8s.io", "DeviceClass"),
    ("resource.k8s.io", "ResourceSlice"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("storage.k8s.io", "VolumeAttributesClass"),
    ("tenantry.dev", "Tenant"),
];

/// Whether `(group, kind)` is cluster-scoped ([`CLUSTER_SCOPED`]).
pub fn is_cluster_scoped(group: &str, kind: &str) -> bool {
    CLUSTER_SCOPED.contains(&(group, kind))
}

pub(crate) fn evaluate(contract: &RepoContract, eval: &Eval<'_>, sink: &mut Sink) {
    let view = eval.view;
    if is_cluster_scoped(view.group, view.kind)
        // `secret-store` below says what to use instead.
        && !(view.group == ESO_GROUP && view.kind == "ClusterSecretStore")
    {
        sink.deny(
            "cluster-scoped",
            "kind".to_owned(),
            format!(
                "{} {:?} is cluster-scoped; the platform applies a tenant repository as the \
                 tenant's ServiceAccount, which may create objects only in the tenant's \
                 namespaces",
                view.kind,
                view.name()
            ),
            "Remove it from deploy/; cluster-scoped objects are the platform's, declared in \
             the platform repository (ask the platform team)."
                .to_owned(),
        );
        return;
    }
    namespace_field(eval, sink);
    if view.object.get("sops").is_some_and(is_sops_metadata) {
        sink.deny(
            "sops-file",
            "sops".to_owned(),
            "this document is SOPS-encrypted; tenant secrets must not be committed, even \
             encrypted"
                .to_owned(),
            "Store the value in OpenBao under the tenant's path and read it with an \
             ExternalSecret; delete this file."
                .to_owned(),
        );
        return;
    }
    match (view.group, view.kind) {
        ("", "Secret") => {
            for field in ["data", "stringData"] {
                let has_data = view
                    .object
                    .get(field)
                    .and_then(Value::as_object)
                    .is_some_and(|m| !m.is_empty());
                if has_data {
                    sink.deny(
                        "plaintext-secret",
                        field.to_owned(),
                        format!(
                            "Secret {:?} commits its values to Git ({field})",
                            view.name()
                        ),
                        "Store the values in OpenBao and create the Secret with an \
                         ExternalSecret."
                            .to_owned(),
                    );
                }
            }
        }
        (ESO_GROUP, "SecretStore") => {
            let name = view.name();
            if name != contract.store_name {
                sink.deny(
                    "secret-store",
                    "metadata.name".to_owned(),
                    format!(
                        "SecretStore is named {name:?}; the platform provisions the tenant's \
                         OpenBao role for a store named {:?}",
                        contract.store_name
                    ),
                    format!("Name the SecretStore {}.", contract.store_name),
                );
            }
        }
        (ESO_GROUP, "ClusterSecretStore") => {
            sink.deny(
                "secret-store",
                "kind".to_owned(),
                "the tenant's store must be a namespaced SecretStore, not a ClusterSecretStore"
                    .to_owned(),
                format!("Use kind: SecretStore named {}.", contract.store_name),
            );
        }
        (ESO_GROUP, "ExternalSecret" | "PushSecret") => {
            let Some(spec) = view.object.get("spec").and_then(Value::as_object) else {
                return;
            };
            let mut refs = Vec::new();
            if let Some(store) = spec.get("secretStoreRef").and_then(Value::as_object) {
                refs.push(("spec.secretStoreRef".to_owned(), store));
            }
            for (i, store) in objects_in(spec, "secretStoreRefs") {
                refs.push((format!("spec.secretStoreRefs[{i}]"), store));
            }
            for (at, store) in refs {
                let kind = str_of(store, "kind").unwrap_or("SecretStore");
                let name = str_of(store, "name");
                if kind != "SecretStore" {
                    continue; // restrict-secret-stores reports ClusterSecretStores.
                }
                if let Some(name) = name.filter(|n| *n != contract.store_name) {
                    sink.deny(
                        "secret-store",
                        format!("{at}.name"),
                        format!(
                            "references SecretStore {name:?}; the tenant's store is {:?}",
                            contract.store_name
                        ),
                        format!("Set {at}.name: {}.", contract.store_name),
                    );
                }
            }
        }
        _ => {}
    }
}

/// `metadata.namespace` (or a kustomization's `namespace`) is absent, and the delivery places
/// the object, or names one of the tenant's namespaces. Without a tenant this is skipped
/// (`Engine::skipped` says so).
fn namespace_field(eval: &Eval<'_>, sink: &mut Sink) {
    let Some(tenant) = eval.ctx.tenant else {
        return;
    };
    let view = eval.view;
    let (field, namespace) = if view.group == KUSTOMIZE_GROUP && view.kind == "Kustomization" {
        (
            "namespace",
            view.object.get("namespace").and_then(Value::as_str),
        )
    } else {
        ("metadata.namespace", view.namespace)
    };
    let Some(namespace) = namespace else {
        return;
    };
    if tenant.namespaces.iter().any(|n| n == namespace) {
        return;
    }
    let primary = tenant
        .namespaces
        .first()
        .map_or(tenant.name.as_str(), String::as_str);
    let fix = if tenant.namespaces.len() > 1 {
        format!(
            "Remove {field} (the delivery puts the object in the tenant's namespace) or set it \
             to one of {}.",
            tenant.namespaces.join(", ")
        )
    } else {
        format!("Remove {field}: the delivery puts every object in namespace {primary}.")
    };
    sink.deny(
        "namespace",
        field.to_owned(),
        format!(
            "{} {:?} names namespace {namespace:?}, which is not tenant {}'s",
            view.kind,
            view.name(),
            tenant.name
        ),
        fix,
    );
}

/// SOPS writes its metadata under a top-level `sops` key with its MAC and timestamps.
fn is_sops_metadata(value: &Value) -> bool {
    value.as_object().is_some_and(|m| {
        m.contains_key("mac") || m.contains_key("lastmodified") || m.contains_key("version")
    })
}

/// Facts about the whole repository that no single object can establish: whether any
/// Deployment has a container named after the repository, and which of the required paths
/// were among the files read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoScan {
    repo_name: String,
    found: bool,
    first_deployment: Option<ObjectRef>,
    /// Whether any input was a file (stdin cannot show the repository's layout).
    files_seen: bool,
    /// For each of [`REQUIRED_PATHS`], whether a file read ends with it.
    required_seen: Vec<bool>,
}

impl RepoScan {
    pub(crate) fn new(contract: &RepoContract) -> Self {
        Self {
            repo_name: contract.repo_name.clone(),
            found: false,
            first_deployment: None,
            files_seen: false,
            required_seen: vec![false; REQUIRED_PATHS.len()],
        }
    }

    /// Note a file that was read, by its path (best resolved, so `.` inside `deploy/` still
    /// ends with `deploy/kustomization.yaml`).
    pub fn observe_path(&mut self, path: &Path) {
        self.files_seen = true;
        for (seen, required) in self.required_seen.iter_mut().zip(REQUIRED_PATHS) {
            *seen |= path.ends_with(required);
        }
    }

    /// Whether the required paths could not be checked: every input came from stdin.
    pub fn layout_unknown(&self) -> bool {
        !self.files_seen
    }

    /// Look at one document of the repository.
    pub fn observe(&mut self, object: &Value) {
        let Some(view) = ObjectView::new(object) else {
            return;
        };
        if !(view.group == "apps" && view.kind == "Deployment") {
            return;
        }
        if self.first_deployment.is_none() {
            self.first_deployment = Some(ObjectRef::of(object));
        }
        let containers = view
            .at("spec.template.spec")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|spec| objects_in(spec, "containers"));
        for (_, container) in containers {
            if str_of(container, "name") == Some(self.repo_name.as_str()) {
                self.found = true;
            }
        }
    }

    /// Combine with a scan of other documents (scans may run in parallel).
    pub fn merge(&mut self, other: RepoScan) {
        self.found |= other.found;
        if self.first_deployment.is_none() {
            self.first_deployment = other.first_deployment;
        }
        self.files_seen |= other.files_seen;
        for (mine, theirs) in self.required_seen.iter_mut().zip(other.required_seen) {
            *mine |= theirs;
        }
    }

    /// The repository-wide violations: a missing required path (its object is the file's,
    /// with no name, and [`REQUIRED_PATHS`] says where), then the container name.
    pub fn finish(self) -> Vec<Violation> {
        let mut out = Vec::new();
        if self.files_seen {
            for (seen, required) in self.required_seen.iter().zip(REQUIRED_PATHS) {
                if *seen {
                    continue;
                }
                out.push(Violation {
                    check: "required-path".to_owned(),
                    policy: PolicyId::TenantRepoContract.as_str(),
                    severity: Severity::Deny,
                    object: ObjectRef {
                        api_version: format!("{KUSTOMIZE_GROUP}/v1beta1"),
                        kind: "Kustomization".to_owned(),
                        ..ObjectRef::default()
                    },
                    path: String::new(),
                    message: format!(
                        "{required} is not among the files checked; the platform publishes what \
                         kustomize builds from it"
                    ),
                    remediation: format!(
                        "Create {required} listing every manifest (`tenantry tenant init` \
                         scaffolds one), and check the tree it builds: `tenantry check \
                         --repo-name {} deploy/`.",
                        self.repo_name
                    ),
                });
            }
        }
        if self.found {
            return out;
        }
        let (object, path, message) = match self.first_deployment {
            Some(deployment) => (
                deployment,
                "spec.template.spec.containers".to_owned(),
                format!(
                    "no Deployment container is named {:?}; the publish pipeline pins new image \
                     digests into the container named after the repository",
                    self.repo_name
                ),
            ),
            None => (
                ObjectRef {
                    api_version: "apps/v1".to_owned(),
                    kind: "Deployment".to_owned(),
                    ..ObjectRef::default()
                },
                String::new(),
                format!(
                    "the repository has no Deployment with a container named {:?}",
                    self.repo_name
                ),
            ),
        };
        out.push(Violation {
            check: "container-name".to_owned(),
            policy: PolicyId::TenantRepoContract.as_str(),
            severity: Severity::Deny,
            object,
            path,
            message,
            remediation: format!(
                "Name the application's Deployment container {}.",
                self.repo_name
            ),
        });
        out
    }
}
