//! `protect-platform-objects` (admission only): a tenant cannot undo its own isolation.
//!
//! Tenantry's quota, limit range, network policies and role bindings sit inside the tenant's
//! namespaces, where the tenant's `edit` or `admin` role could otherwise change them. And the
//! namespace labels are load-bearing: `pod-security.kubernetes.io/*` sets what PodSecurity
//! enforces, and the tenant label is what network policies and this webhook select tenants
//! by. So anyone but the platform's own identities (configurable) is refused:
//! - changing or deleting an object labelled `app.kubernetes.io/managed-by: tenantry`, or
//!   creating one (a forged managed object would be pruned or trusted as the platform's);
//! - setting, changing or removing a namespace's Pod Security or tenant labels.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use tenantry_api::{MANAGED_BY, MANAGED_BY_LABEL};

use crate::engine::{Eval, ObjectView, Operation, Sink};

const POD_SECURITY_PREFIX: &str = "pod-security.kubernetes.io/";

pub(crate) fn evaluate(eval: &Eval<'_>, sink: &mut Sink) {
    let ctx = eval.ctx;
    if ctx
        .user
        .is_some_and(|user| eval.engine.is_platform_identity(user))
    {
        return;
    }
    let view = eval.view;
    let old = ctx.old_object.and_then(ObjectView::new);
    let managed = |v: &ObjectView<'_>| v.label(MANAGED_BY_LABEL) == Some(MANAGED_BY);
    let user = ctx
        .user
        .map_or("this requester", |u| u.username.as_str())
        .to_owned();
    let managed_path = format!("metadata.labels[{MANAGED_BY_LABEL}]");
    match ctx.operation {
        Operation::Delete => {
            // `view` is the object being deleted.
            if managed(view) {
                sink.deny(
                    "managed-object",
                    managed_path,
                    format!("{user} may not delete an object Tenantry manages"),
                    remediation(),
                );
                return;
            }
        }
        Operation::Update => {
            if old.as_ref().is_some_and(managed) {
                sink.deny(
                    "managed-object",
                    managed_path,
                    format!("{user} may not change an object Tenantry manages"),
                    remediation(),
                );
                return;
            }
            if managed(view) {
                sink.deny(
                    "managed-object",
                    managed_path,
                    format!("{user} may not mark an object as managed by Tenantry"),
                    "Remove the label app.kubernetes.io/managed-by: tenantry.".to_owned(),
                );
                return;
            }
        }
        Operation::Create => {
            if managed(view) {
                sink.deny(
                    "managed-object",
                    managed_path,
                    format!("{user} may not create an object labelled as managed by Tenantry"),
                    "Remove the label app.kubernetes.io/managed-by: tenantry.".to_owned(),
                );
                return;
            }
        }
        Operation::Connect => return,
    }
    if view.group.is_empty() && view.kind == "Namespace" {
        namespace_labels(eval, view, old.as_ref(), &user, sink);
    }
}

fn remediation() -> String {
    "Change the tenant's declaration (tenants/<tenant>/tenant.yaml or tenantry.yaml) and let \
     Tenantry apply it; ask the platform team if the tenant needs something it does not offer."
        .to_owned()
}

fn labels<'a>(view: Option<&ObjectView<'a>>) -> Option<&'a Map<String, Value>> {
    view?.metadata?.get("labels")?.as_object()
}

/// Pod Security and tenant labels set, changed or removed on a Namespace.
fn namespace_labels(
    eval: &Eval<'_>,
    view: &ObjectView<'_>,
    old: Option<&ObjectView<'_>>,
    user: &str,
    sink: &mut Sink,
) {
    let tenant_label = eval.engine.tenant_label();
    let now = labels(Some(view));
    let was = match eval.ctx.operation {
        Operation::Create => None,
        _ => labels(old),
    };
    let guarded = |key: &str| key == tenant_label || key.starts_with(POD_SECURITY_PREFIX);
    let keys: BTreeSet<&str> = now
        .into_iter()
        .chain(was)
        .flat_map(|m| m.keys().map(String::as_str))
        .filter(|k| guarded(k))
        .collect();
    for key in keys {
        let before = was.and_then(|m| m.get(key));
        let after = now.and_then(|m| m.get(key));
        if before == after {
            continue;
        }
        let what = match (before, after) {
            (None, _) => "set",
            (_, None) => "remove",
            _ => "change",
        };
        sink.deny(
            "namespace-labels",
            format!("metadata.labels[{key}]"),
            format!(
                "{user} may not {what} label {key} on namespace {:?}: it decides the namespace's \
                 tenant and Pod Security level",
                view.name()
            ),
            "Namespace Pod Security and tenant labels come from the tenant declaration; change \
             podSecurity there and let Tenantry apply it."
                .to_owned(),
        );
    }
}
