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
use crate::{
    object::Layer,
    resolve::{ResolvedDelivery, ResolvedVerify},
};

const OCI_REPOSITORY: (&str, &str) = ("source.toolkit.fluxcd.io/v1", "OCIRepository");
const GIT_REPOSITORY: (&str, &str) = ("source.toolkit.fluxcd.io/v1", "GitRepository");
const KUSTOMIZATION: (&str, &str) = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization");
const APP_PROJECT: (&str, &str) = ("argoproj.io/v1alpha1", "AppProject");
const APPLICATION: (&str, &str) = ("argoproj.io/v1alpha1", "Application");

pub(super) fn render(r: &mut Renderer<'_>) {
    // Copied out of `r` so the match can borrow the tenant while `r` is pushed to.
    let t = r.t;
    match &t.delivery {
        ResolvedDelivery::FluxOci {
            url,
            semver,
            verify,
            pull_secret,
            proxy_kubeconfig_secret,
        } => flux_oci(
            r,
            url,
            semver,
            verify,
            pull_secret.as_deref(),
            proxy_kubeconfig_secret.as_deref(),
        ),
        ResolvedDelivery::FluxGit {
            url,
            branch,
            path,
            proxy_kubeconfig_secret,
        } => flux_git(r, url, branch, path, proxy_kubeconfig_secret.as_deref()),
        ResolvedDelivery::ArgoCd {
            repo_url,
            path,
            revision,
        } => argo_cd(r, repo_url, path, revision),
        ResolvedDelivery::None => {}
    }
}

/// An OCIRepository that Flux accepts only when cosign-signed by the given identity or key,
/// so a pushed but unsigned artifact never deploys. The registry is read with the tenant's
/// own pull secret, or else the platform's when it is materialised in the namespace.
fn flux_oci(
    r: &mut Renderer<'_>,
    url: &str,
    semver: &str,
    verify: &ResolvedVerify,
    pull_secret: Option<&str>,
    proxy_kubeconfig_secret: Option<&str>,
) {
    let mut spec = json!({
        "interval": r.ctx.platform.flux.source_interval,
        "url": url,
        "ref": { "semver": semver },
    });
    let secret = pull_secret.map(str::to_owned).or_else(|| {
        r.t.pull_secret
            .then(|| r.ctx.platform.pull_secret.name.clone())
    });
    if let Some(secret) = secret {
        spec["secretRef"] = json!({ "name": secret });
    }
    spec["verify"] = match verify {
        ResolvedVerify::Keyless { issuer, subject } => json!({
            "provider": "cosign",
            "matchOIDCIdentity": [{ "issuer": issuer, "subject": subject }],
        }),
        ResolvedVerify::PublicKey { secret_ref, .. } => json!({
            "provider": "cosign",
            "secretRef": { "name": secret_ref },
        }),
    };
    // Pushed first: objects come out in layer order, and Secrets precede Delivery.
    if let ResolvedVerify::PublicKey {
        secret_ref,
        public_key: Some(pem),
    } = verify
    {
        cosign_public_key_secret(r, secret_ref, pem);
    }
    push_flux(r, OCI_REPOSITORY, spec, "./", proxy_kubeconfig_secret);
}

/// The Secret `verify.secretRef` names, when `tenantry.yaml` or the tenant gives the key
/// (`verify.publicKey`): rendered with the tenant so apply creates it before Flux needs it
/// and offboard removes it. `data`, not `stringData`, so the committed object is what the
/// API server stores and a re-apply changes nothing.
fn cosign_public_key_secret(r: &mut Renderer<'_>, name: &str, pem: &str) {
    use base64::Engine as _;
    let mut pem = pem.trim().to_owned();
    pem.push('\n');
    let data = base64::engine::general_purpose::STANDARD.encode(pem);
    let primary = r.t.primary_namespace().to_owned();
    r.push_custom(
        Layer::Secrets,
        ("v1", "Secret"),
        Some(&primary),
        name,
        json!({ "type": "Opaque", "data": { "cosign.pub": data } }),
    );
}

/// A GitRepository following one branch; `path` goes to the Kustomization, which is what
/// reads the manifests and applies them.
fn flux_git(
    r: &mut Renderer<'_>,
    url: &str,
    branch: &str,
    path: &str,
    proxy_kubeconfig_secret: Option<&str>,
) {
    let spec = json!({
        "interval": r.ctx.platform.flux.source_interval,
        "url": url,
        "ref": { "branch": branch },
    });
    push_flux(r, GIT_REPOSITORY, spec, path, proxy_kubeconfig_secret);
}

/// The Flux pair every Flux delivery is made of, both named after the tenant in its primary
/// namespace: the source, then the Kustomization that applies it.
fn push_flux(
    r: &mut Renderer<'_>,
    source: (&'static str, &'static str),
    source_spec: Value,
    path: &str,
    kubeconfig_secret: Option<&str>,
) {
    let t = r.t;
    let primary = t.primary_namespace();
    r.push_custom(
        Layer::Delivery,
        source,
        Some(primary),
        &t.name,
        json!({ "spec": source_spec }),
    );
    let kustomization = kustomization(r, source.1, path, kubeconfig_secret);
    r.push_custom(
        Layer::Delivery,
        KUSTOMIZATION,
        Some(primary),
        &t.name,
        kustomization,
    );
}

/// Argo CD runs in the platform's namespace with cluster-wide rights, so the tenant's
/// confinement is its AppProject; the Application only points the project at the repository.
fn argo_cd(r: &mut Renderer<'_>, repo_url: &str, path: &str, revision: &str) {
    let ctx = r.ctx;
    let argo = &ctx.platform.argocd;
    let name = r.t.name.as_str();
    let project = app_project(r, repo_url);
    r.push_custom(
        Layer::Delivery,
        APP_PROJECT,
        Some(&argo.namespace),
        name,
        project,
    );
    let application = json!({
        "spec": {
            "project": name,
            "source": { "repoURL": repo_url, "path": path, "targetRevision": revision },
            "destination": {
                "server": argo.destination_server,
                "namespace": r.t.primary_namespace(),
            },
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
        name,
        application,
    );
    // Deleting the Application prunes what it deployed (offboarding).
    if let Some(last) = r.objects.last_mut() {
        last.body["metadata"]["finalizers"] = json!(["resources-finalizer.argocd.argoproj.io"]);
    }
}

/// The AppProject body: only the tenant's repository, only its namespaces, no cluster-scoped
/// kind, and the tenant's ServiceAccount as the identity Argo CD syncs with in each namespace.
fn app_project(r: &Renderer<'_>, repo_url: &str) -> Value {
    let name = &r.t.name;
    let server = r.ctx.platform.argocd.destination_server.as_str();
    let destinations: Vec<Value> =
        r.t.namespaces
            .iter()
            .map(|ns| json!({ "server": server, "namespace": ns }))
            .collect();
    let service_accounts: Vec<Value> =
        r.t.namespaces
            .iter()
            .map(|ns| json!({ "server": server, "namespace": ns, "defaultServiceAccount": name }))
            .collect();
    json!({
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
    })
}

/// The Flux Kustomization: reconciled as the tenant's ServiceAccount from a source in the
/// same namespace, pruning what disappears from the tenant's manifests. With one namespace
/// everything is pinned into it with `targetNamespace`; a tenant with several namespaces
/// chooses among them in its manifests (RBAC confines it to them).
///
/// With a proxy kubeconfig (the platform's `flux.proxy`, or the tenant's own secret) Flux
/// sends every request to the tenant proxy with that kubeconfig's token, still naming the
/// tenant's ServiceAccount: the proxy confines it to the tenant (namespace reads, cluster
/// reads filtered) as well as RBAC. `serviceAccountName` stays, because Flux's lockdown
/// (`--default-service-account`) impersonates regardless and `tenantry check` requires it.
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
