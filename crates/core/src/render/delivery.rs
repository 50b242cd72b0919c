//! Delivery: how a tenant's own manifests reach its namespaces, always as the tenant.
//!
//! Whatever the tool, the reconciler acts with the tenant's ServiceAccount, never its own
//! cluster-wide identity: Flux objects sit in the tenant's namespace with
//! `serviceAccountName` set and same-namespace source references; Argo CD gets an AppProject
//! that lists only the tenant's repository and namespaces, whitelists no cluster-scoped kind,
//! and names the tenant's ServiceAccount in `destinationServiceAccounts`. OCI artifacts are
//! deployed only when cosign-signed by the platform's trusted publish workflow.

use serde_json::{Value, json};

use super::Renderer;
use crate::{object::Layer, resolve::ResolvedDelivery};

const OCI_REPOSITORY: (&str, &str) = ("source.toolkit.fluxcd.io/v1", "OCIRepository");
const GIT_REPOSITORY: (&str, &str) = ("source.toolkit.fluxcd.io/v1", "GitRepository");
const KUSTOMIZATION: (&str, &str) = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization");
const APP_PROJECT: (&str, &str) = ("argoproj.io/v1alpha1", "AppProject");
const APPLICATION: (&str, &str) = ("argoproj.io/v1alpha1", "Application");

pub(super) fn render(r: &mut Renderer<'_>) {
    let name = r.t.name.clone();
    let primary = r.t.primary_namespace().to_owned();
    let flux = &r.ctx.platform.flux;
    match &r.t.delivery {
        ResolvedDelivery::FluxOci {
            url,
            semver,
            issuer,
            subject,
            pull_secret,
        } => {
            let mut spec = json!({
                "interval": flux.source_interval,
                "url": url,
                "ref": { "semver": semver },
            });
            let secret = pull_secret.clone().or_else(|| {
                r.t.pull_secret
                    .then(|| r.ctx.platform.pull_secret.name.clone())
            });
            if let Some(secret) = secret {
                spec["secretRef"] = json!({ "name": secret });
            }
            spec["verify"] = json!({
                "provider": "cosign",
                "matchOIDCIdentity": [{ "issuer": issuer, "subject": subject }],
            });
            r.push_custom(
                Layer::Delivery,
                OCI_REPOSITORY,
                Some(&primary),
                &name,
                json!({ "spec": spec }),
            );
            let kustomization = kustomization(r, "OCIRepository", "./", None);
            r.push_custom(
                Layer::Delivery,
                KUSTOMIZATION,
                Some(&primary),
                &name,
                kustomization,
            );
        }
        ResolvedDelivery::FluxGit {
            url,
            branch,
            path,
            proxy_kubeconfig_secret,
        } => {
            let spec = json!({
                "interval": flux.source_interval,
                "url": url,
                "ref": { "branch": branch },
            });
            r.push_custom(
                Layer::Delivery,
                GIT_REPOSITORY,
                Some(&primary),
                &name,
                json!({ "spec": spec }),
            );
            let kustomization =
                kustomization(r, "GitRepository", path, proxy_kubeconfig_secret.as_deref());
            r.push_custom(
                Layer::Delivery,
                KUSTOMIZATION,
                Some(&primary),
                &name,
                kustomization,
            );
        }
        ResolvedDelivery::ArgoCd {
            repo_url,
            path,
            revision,
        } => {
            let argo = r.ctx.platform.argocd.clone();
            let server = argo.destination_server.as_str();
            let destinations: Vec<Value> =
                r.t.namespaces
                    .iter()
                    .map(|ns| json!({ "server": server, "namespace": ns }))
                    .collect();
            let service_accounts: Vec<Value> = r
                .t
                .namespaces
                .iter()
                .map(|ns| json!({ "server": server, "namespace": ns, "defaultServiceAccount": name }))
                .collect();
            let project = json!({
                "spec": {
                    "description": format!("Tenant {name}, rendered by Tenantry"),
                    "sourceRepos": [repo_url],
                    "destinations": destinations,
                    // No cluster-scoped kind at all; the platform owns namespaces and RBAC.
                    "clusterResourceWhitelist": [],
                    // The platform's floor in each namespace is not the tenant's to change.
                    "namespaceResourceBlacklist": [
                        { "group": "", "kind": "ResourceQuota" },
                        { "group": "", "kind": "LimitRange" },
                    ],
                    "destinationServiceAccounts": service_accounts,
                }
            });
            r.push_custom(
                Layer::Delivery,
                APP_PROJECT,
                Some(&argo.namespace),
                &name,
                project,
            );
            let application = json!({
                "spec": {
                    "project": name,
                    "source": { "repoURL": repo_url, "path": path, "targetRevision": revision },
                    "destination": { "server": server, "namespace": primary },
                    "syncPolicy": {
                        "automated": { "prune": true, "selfHeal": true },
                        "syncOptions": ["CreateNamespace=false"],
                    },
                }
            });
            r.push_custom(
                Layer::Delivery,
                APPLICATION,
                Some(&argo.namespace),
                &name,
                application,
            );
            // Deleting the Application prunes what it deployed (offboarding).
            if let Some(last) = r.objects.last_mut() {
                last.body["metadata"]["finalizers"] =
                    json!(["resources-finalizer.argocd.argoproj.io"]);
            }
        }
        ResolvedDelivery::None => {}
    }
}

/// The Flux Kustomization: reconciled as the tenant's ServiceAccount from a source in the
/// same namespace, pruning what disappears from the tenant's manifests. With one namespace
/// everything is pinned into it with `targetNamespace`; a tenant with several namespaces
/// chooses among them in its manifests (RBAC confines it to them).
fn kustomization(
    r: &Renderer<'_>,
    source_kind: &str,
    path: &str,
    kubeconfig_secret: Option<&str>,
) -> Value {
    let mut spec = json!({
        "interval": r.ctx.platform.flux.interval,
        "path": path,
        "prune": true,
        "sourceRef": { "kind": source_kind, "name": r.t.name },
        "serviceAccountName": r.t.name,
    });
    if r.t.namespaces.len() == 1 {
        spec["targetNamespace"] = json!(r.t.primary_namespace());
    }
    if let Some(secret) = kubeconfig_secret {
        spec["kubeConfig"] = json!({ "secretRef": { "name": secret, "key": "kubeconfig" } });
    }
    json!({ "spec": spec })
}
