//! `flux-lockdown`: Flux objects in a tenant namespace reconcile as the tenant, from the
//! tenant's own sources.
//!
//! Flux's controllers run with cluster-admin. Flux's multi-tenancy lockdown
//! (`--no-cross-namespace-refs`, `--default-service-account`, `--no-remote-bases`) exists so
//! that a tenant's Kustomization or HelmRelease cannot borrow that power; this policy holds
//! each object to the same rules at the object, so a cluster whose controllers were installed
//! without those flags is still safe and a tenant learns in CI, not from a failed reconcile:
//! - `serviceAccountName` is the tenant's ServiceAccount (no impersonation means Flux's own
//!   identity);
//! - every reference (`sourceRef`, `chartRef`, `dependsOn`, image and notification refs)
//!   stays in the object's namespace;
//! - `kubeConfig` is only the tenant's proxy kubeconfig secret, when the tenant has one;
//! - `targetNamespace` and `storageNamespace` are the tenant's own;
//! - in `check`, a `kustomization.yaml` has no remote bases: what Git review approved is what
//!   is applied.

use serde_json::{Map, Value};

use super::str_of;
use crate::engine::{Eval, Mode, Sink};

pub(crate) const FLUX_GROUP_SUFFIX: &str = ".toolkit.fluxcd.io";
const KUSTOMIZE_GROUP: &str = "kustomize.config.k8s.io";

pub(crate) fn evaluate(eval: &Eval<'_>, sink: &mut Sink) {
    let view = eval.view;
    if view.group == KUSTOMIZE_GROUP {
        if eval.ctx.mode == Mode::Check && matches!(view.kind, "Kustomization" | "Component") {
            remote_bases(view.object, sink);
        }
        return;
    }
    if !view.group.ends_with(FLUX_GROUP_SUFFIX) {
        return;
    }
    let Some(spec) = view.object.get("spec").and_then(Value::as_object) else {
        if reconciles(view.group, view.kind) {
            service_account(eval, None, sink);
        }
        return;
    };
    cross_namespace_refs(eval, spec, sink);
    if reconciles(view.group, view.kind) {
        service_account(eval, Some(spec), sink);
        kubeconfig(eval, spec, sink);
        for field in ["targetNamespace", "storageNamespace"] {
            target_namespace(eval, spec, field, sink);
        }
    }
}

/// The Flux kinds that apply objects to the cluster (and so need an identity).
pub(crate) fn reconciles(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("kustomize.toolkit.fluxcd.io", "Kustomization")
            | ("helm.toolkit.fluxcd.io", "HelmRelease")
    )
}

/// Every place a Flux object can name another object's namespace (path under `spec`, and
/// whether it holds a list of references), in the order they are judged.
pub(crate) const REFERENCES: [(&str, bool); 7] = [
    ("sourceRef", false),
    ("chartRef", false),
    ("imageRepositoryRef", false),
    ("dependsOn", true),
    ("eventSources", true),
    ("resources", true),
    ("chart.spec.sourceRef", false),
];

fn cross_namespace_refs(eval: &Eval<'_>, spec: &Map<String, Value>, sink: &mut Sink) {
    for (field, is_list) in REFERENCES {
        let mut value: Option<&Value> = None;
        let mut object = Some(spec);
        for key in field.split('.') {
            value = object.and_then(|o| o.get(key));
            object = value.and_then(Value::as_object);
        }
        let Some(value) = value else { continue };
        if is_list {
            let items = value.as_array().map(Vec::as_slice).unwrap_or(&[]);
            for (i, item) in items.iter().enumerate() {
                if let Some(item) = item.as_object() {
                    judge_ref(eval, item, format!("spec.{field}[{i}]"), sink);
                }
            }
        } else if let Some(item) = value.as_object() {
            judge_ref(eval, item, format!("spec.{field}"), sink);
        }
    }
}

fn judge_ref(eval: &Eval<'_>, reference: &Map<String, Value>, at: String, sink: &mut Sink) {
    let Some(namespace) = str_of(reference, "namespace").filter(|ns| !ns.is_empty()) else {
        return;
    };
    let allowed = match (eval.own_namespace, eval.ctx.tenant) {
        (Some(own), _) => namespace == own,
        // The object's namespace is not known yet (it gets one from the Kustomization that
        // applies it); the tenant's namespaces are the most it could be.
        (None, Some(tenant)) => tenant.namespaces.iter().any(|ns| ns == namespace),
        (None, None) => false,
    };
    if allowed {
        return;
    }
    let name = str_of(reference, "name").unwrap_or("");
    let own = match eval.own_namespace {
        Some(own) => format!("its own namespace {own:?}"),
        None => "its own namespace".to_owned(),
    };
    sink.deny(
        "cross-namespace-ref",
        format!("{at}.namespace"),
        format!(
            "references {name:?} in namespace {namespace:?}; Flux objects of a tenant may only \
             reference objects in {own}"
        ),
        "Remove the namespace (it defaults to the object's own) and keep the referenced \
         object beside this one."
            .to_owned(),
    );
}

fn service_account(eval: &Eval<'_>, spec: Option<&Map<String, Value>>, sink: &mut Sink) {
    let set = spec
        .and_then(|s| str_of(s, "serviceAccountName"))
        .filter(|s| !s.is_empty());
    let tenant_sa = eval.ctx.tenant.map(|t| t.service_account.as_str());
    match (set, tenant_sa) {
        (Some(set), Some(want)) if set == want => {}
        (Some(_), None) => {}
        (set, want) => {
            let want_text = want.map_or_else(
                || "the tenant's ServiceAccount".to_owned(),
                |w| format!("{w:?}"),
            );
            let message = match set {
                None => format!(
                    "{} sets no serviceAccountName, so Flux would apply it with its own \
                     cluster-wide permissions",
                    eval.view.kind
                ),
                Some(set) => format!(
                    "{} reconciles as ServiceAccount {set:?}, not as the tenant's {want_text}",
                    eval.view.kind
                ),
            };
            sink.deny(
                "service-account-name",
                "spec.serviceAccountName".to_owned(),
                message,
                format!(
                    "Set spec.serviceAccountName: {}.",
                    want.unwrap_or("<tenant>")
                ),
            );
        }
    }
}

fn kubeconfig(eval: &Eval<'_>, spec: &Map<String, Value>, sink: &mut Sink) {
    let Some(kubeconfig) = spec.get("kubeConfig").filter(|v| !v.is_null()) else {
        return;
    };
    let Some(tenant) = eval.ctx.tenant else {
        // Reported by `Engine::skipped`: without the tenant, its proxy secret is unknown.
        return;
    };
    let secret = kubeconfig
        .get("secretRef")
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str);
    let other_source = kubeconfig
        .as_object()
        .is_some_and(|k| k.keys().any(|key| key != "secretRef"));
    let allowed = tenant.proxy_kubeconfig_secret.as_deref();
    if !other_source && secret.is_some() && secret == allowed {
        return;
    }
    let (path, message) = match (secret, other_source) {
        (Some(name), false) => (
            "spec.kubeConfig.secretRef.name",
            format!("uses kubeconfig secret {name:?}, which is not the tenant's proxy kubeconfig"),
        ),
        _ => (
            "spec.kubeConfig",
            "sets a kubeConfig other than the tenant's proxy kubeconfig secret".to_owned(),
        ),
    };
    let remediation = match allowed {
        Some(name) => format!("Set spec.kubeConfig.secretRef.name: {name} or remove kubeConfig."),
        None => format!(
            "Remove spec.kubeConfig: tenant {} reconciles in-cluster as its ServiceAccount.",
            tenant.name
        ),
    };
    sink.deny("kubeconfig", path.to_owned(), message, remediation);
}

fn target_namespace(eval: &Eval<'_>, spec: &Map<String, Value>, field: &str, sink: &mut Sink) {
    let Some(tenant) = eval.ctx.tenant else {
        return;
    };
    let Some(namespace) = str_of(spec, field).filter(|ns| !ns.is_empty()) else {
        return;
    };
    if tenant.namespaces.iter().any(|ns| ns == namespace) {
        return;
    }
    sink.deny(
        "target-namespace",
        format!("spec.{field}"),
        format!(
            "{field} {namespace:?} is not one of tenant {}'s namespaces ({})",
            tenant.name,
            tenant.namespaces.join(", ")
        ),
        format!(
            "Set spec.{field} to one of: {}.",
            tenant.namespaces.join(", ")
        ),
    );
}

/// `resources`, `bases` and `components` of a kustomization that are fetched from elsewhere.
fn remote_bases(kustomization: &Map<String, Value>, sink: &mut Sink) {
    for field in ["resources", "bases", "components"] {
        let entries = kustomization.get(field).and_then(Value::as_array);
        for (i, entry) in entries.map(Vec::as_slice).unwrap_or(&[]).iter().enumerate() {
            let Some(entry) = entry.as_str() else {
                continue;
            };
            if !is_remote(entry) {
                continue;
            }
            sink.deny(
                "remote-base",
                format!("{field}[{i}]"),
                format!(
                    "{field} entry {entry:?} is fetched from outside the repository at build \
                     time, so what is applied is not what was reviewed"
                ),
                "Vendor the manifests into the repository (or publish them as a Flux source \
                 the platform approves) and reference them by relative path."
                    .to_owned(),
            );
        }
    }
}

/// Whether a kustomization entry names something outside the repository: a URL, a go-getter
/// or SSH Git address, a well-known Git host, or a kustomize remote query (`?ref=`).
pub fn is_remote(entry: &str) -> bool {
    let entry = entry.trim();
    let lower = entry.to_ascii_lowercase();
    const HOSTS: [&str; 6] = [
        "github.com/",
        "gitlab.com/",
        "bitbucket.org/",
        "dev.azure.com/",
        "ssh.dev.azure.com/",
        "git.sr.ht/",
    ];
    lower.contains("://")
        || lower.starts_with("git::")
        || lower.starts_with("git@")
        || lower.starts_with("gh:")
        || HOSTS
            .iter()
            .any(|h| lower.starts_with(h) || lower.starts_with(&format!("www.{h}")))
        || ["?ref=", "?version=", "?submodules=", "?timeout=", "&ref="]
            .iter()
            .any(|q| lower.contains(q))
        || lower.contains(".git//")
        || lower.ends_with(".git")
}

#[cfg(test)]
mod tests {
    use super::is_remote;

    #[test]
    fn remote_entries_are_recognised() {
        for remote in [
            "https://github.com/acme/base?ref=v1",
            "github.com/acme/base//deploy?ref=main",
            "git::https://example.com/acme/base.git",
            "git@github.com:acme/base.git",
            "ssh://git@example.com/acme/base.git",
            "example.com/acme/base.git//deploy",
            "http://example.com/manifest.yaml",
        ] {
            assert!(is_remote(remote), "{remote}");
        }
        for local in [
            "deployment.yaml",
            "../base",
            "./overlays/prod",
            "github/base",
        ] {
            assert!(!is_remote(local), "{local}");
        }
    }
}
