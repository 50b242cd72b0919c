//! `tenant-repo-contract` (check only): what a tenant repository promises the platform.
//!
//! The platform's publish pipeline pins each new image digest into the Deployment container
//! named after the repository, so a renamed container silently stops deploying new builds.
//! Secrets never sit in Git: not as plaintext Secrets, and not SOPS-encrypted either (tenant
//! secrets come from OpenBao through External Secrets, and the platform holds no tenant SOPS
//! keys). And the tenant's SecretStore is the namespaced one, with the name the platform's
//! OpenBao role and documentation expect.

use serde_json::Value;

use super::{objects_in, str_of};
use crate::engine::{ObjectRef, ObjectView, PolicyId, RepoContract, Severity, Sink, Violation};

const ESO_GROUP: &str = "external-secrets.io";

pub(crate) fn evaluate(contract: &RepoContract, view: &ObjectView<'_>, sink: &mut Sink) {
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

/// SOPS writes its metadata under a top-level `sops` key with its MAC and timestamps.
fn is_sops_metadata(value: &Value) -> bool {
    value.as_object().is_some_and(|m| {
        m.contains_key("mac") || m.contains_key("lastmodified") || m.contains_key("version")
    })
}

/// Facts about the whole repository that no single object can establish: whether any
/// Deployment has a container named after the repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoScan {
    repo_name: String,
    found: bool,
    first_deployment: Option<ObjectRef>,
}

impl RepoScan {
    pub(crate) fn new(contract: &RepoContract) -> Self {
        Self {
            repo_name: contract.repo_name.clone(),
            found: false,
            first_deployment: None,
        }
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
    }

    /// The repository-wide violations.
    pub fn finish(self) -> Vec<Violation> {
        if self.found {
            return Vec::new();
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
        vec![Violation {
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
        }]
    }
}
