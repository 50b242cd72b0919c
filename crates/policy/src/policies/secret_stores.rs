//! `restrict-secret-stores`: a tenant reads secrets only through its own namespaced
//! SecretStore.
//!
//! A ClusterSecretStore is the platform's: it can read paths no tenant owns (the shared
//! registry credential, infrastructure secrets). An ExternalSecret or PushSecret in a tenant
//! namespace that names one would let the tenant read or overwrite them, so only the
//! platform's own reconcilers, which apply the platform's pull-secret ExternalSecrets into
//! tenant namespaces, may do it.

use serde_json::{Map, Value};

use super::{objects_in, str_of};
use crate::engine::{Eval, Mode, Sink};

const GROUP: &str = "external-secrets.io";
const CLUSTER_STORE: &str = "ClusterSecretStore";

pub(crate) fn evaluate(eval: &Eval<'_>, sink: &mut Sink) {
    let view = eval.view;
    if view.group != GROUP {
        return;
    }
    if eval
        .ctx
        .user
        .is_some_and(|user| eval.engine.is_secret_store_reconciler(user))
    {
        return;
    }
    let spec = view.object.get("spec").and_then(Value::as_object);
    match view.kind {
        "ExternalSecret" => {
            let Some(spec) = spec else { return };
            if let Some(store) = spec.get("secretStoreRef").and_then(Value::as_object) {
                refuse_cluster_store(store, "spec.secretStoreRef".to_owned(), sink);
            }
            for list in ["data", "dataFrom"] {
                for (i, entry) in objects_in(spec, list) {
                    let store = entry
                        .get("sourceRef")
                        .and_then(|s| s.get("storeRef"))
                        .and_then(Value::as_object);
                    if let Some(store) = store {
                        refuse_cluster_store(
                            store,
                            format!("spec.{list}[{i}].sourceRef.storeRef"),
                            sink,
                        );
                    }
                }
            }
        }
        "PushSecret" => {
            let Some(spec) = spec else { return };
            for (i, store) in objects_in(spec, "secretStoreRefs") {
                refuse_cluster_store(store, format!("spec.secretStoreRefs[{i}]"), sink);
            }
        }
        // Cluster-scoped: only reachable in `check`, where a tenant repository must not
        // contain them (admission never sees a tenant create one: RBAC forbids it).
        "ClusterSecretStore" | "ClusterExternalSecret" | "ClusterPushSecret"
            if eval.ctx.mode == Mode::Check =>
        {
            sink.deny(
                "cluster-scoped-secret-object",
                "kind".to_owned(),
                format!(
                    "{} is cluster-scoped and belongs to the platform, not a tenant repository",
                    view.kind
                ),
                "Use a namespaced SecretStore and ExternalSecret in the tenant's namespace."
                    .to_owned(),
            );
        }
        _ => {}
    }
}

fn refuse_cluster_store(store: &Map<String, Value>, at: String, sink: &mut Sink) {
    if str_of(store, "kind") != Some(CLUSTER_STORE) {
        return;
    }
    let name = str_of(store, "name").unwrap_or("");
    sink.deny(
        "cluster-secret-store",
        format!("{at}.kind"),
        format!(
            "references ClusterSecretStore {name:?}, which can read secrets beyond this tenant"
        ),
        "Reference the tenant's namespaced store: kind: SecretStore (the platform provides one \
         per tenant namespace)."
            .to_owned(),
    );
}
