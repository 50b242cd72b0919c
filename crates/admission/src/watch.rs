//! Keeping [`NamespaceCache`] in step with the cluster through kube-rs watchers: the
//! namespaces, and the tenants' `GuardrailParameters` (their own registries and node
//! selector, see [`crate::namespaces`]).
//!
//! Only labels decide a verdict, so the watch asks for object metadata alone
//! (`PartialObjectMeta<Namespace>`): the API server then sends no spec or status, which
//! keeps memory and traffic low on clusters with thousands of namespaces. The watcher
//! re-lists on its own after a disconnect or an expired resourceVersion, and
//! [`NamespaceCache`] swaps a re-list in whole, so a namespace deleted while the watch was
//! down does not linger. Errors are retried with kube-runtime's default backoff for as long as
//! the process runs: a webhook that stopped watching would judge with stale labels forever.

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams},
    core::PartialObjectMeta,
    runtime::{
        WatchStreamExt,
        watcher::{self, Event},
    },
};
use tenantry_api::{MANAGED_BY, MANAGED_BY_LABEL};
use tenantry_core::render::guardrails::{PARAMS_GROUP, PARAMS_KIND, PARAMS_PLURAL, PARAMS_VERSION};

use crate::namespaces::{NamespaceCache, Watched};

fn name_and_labels(ns: PartialObjectMeta<Namespace>) -> Option<(String, BTreeMap<String, String>)> {
    let name = ns.metadata.name?;
    Some((name, ns.metadata.labels.unwrap_or_default()))
}

impl NamespaceCache {
    /// Apply one watcher event.
    pub fn apply(&self, event: Event<PartialObjectMeta<Namespace>>) {
        match event {
            Event::Apply(ns) => {
                if let Some((name, labels)) = name_and_labels(ns) {
                    self.upsert(&name, labels);
                }
            }
            Event::Delete(ns) => {
                if let Some(name) = ns.metadata.name {
                    self.remove(&name);
                }
            }
            Event::Init => self.start_relist(),
            Event::InitApply(ns) => {
                if let Some((name, labels)) = name_and_labels(ns) {
                    self.relist_upsert(&name, labels);
                }
            }
            Event::InitDone => {
                self.finish_relist();
                tracing::info!(namespaces = self.len(), "namespace cache synced");
            }
        }
    }
}

impl NamespaceCache {
    /// Apply one event of the watch of `kind`.
    pub fn apply_watched(&self, kind: Watched, event: Event<DynamicObject>) {
        match event {
            Event::Apply(object) => {
                if let Some(name) = &object.metadata.name
                    && !self.upsert_watched(kind, name, &object.data)
                {
                    tracing::warn!(?kind, name, "ignored: it judges no tenant");
                }
            }
            Event::Delete(object) => {
                if let Some(name) = object.metadata.name {
                    self.remove_watched(kind, &name);
                }
            }
            Event::Init => self.start_watched_relist(kind),
            Event::InitApply(object) => {
                if let Some(name) = &object.metadata.name {
                    self.relist_watched(kind, name, &object.data);
                }
            }
            Event::InitDone => {
                self.finish_watched_relist(kind);
                tracing::info!(?kind, objects = self.watched_len(kind), "synced");
            }
        }
    }

    /// Apply one event of the `GuardrailParameters` watch.
    pub fn apply_params(&self, event: Event<DynamicObject>) {
        self.apply_watched(Watched::Params, event);
    }
}

/// The `GuardrailParameters` resource.
pub fn params_resource() -> ApiResource {
    watched_resource(Watched::Params)
}

/// The resource of a watched kind.
pub fn watched_resource(kind: Watched) -> ApiResource {
    let (group, version, kind, plural) = match kind {
        Watched::Params => (PARAMS_GROUP, PARAMS_VERSION, PARAMS_KIND, PARAMS_PLURAL),
        Watched::Policies => (
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicy",
            "validatingadmissionpolicies",
        ),
        Watched::Bindings => (
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
        ),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// Why no Kubernetes client could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No in-cluster configuration and no usable kubeconfig.
    #[error("no usable cluster configuration: {0}")]
    Config(String),
    /// The configuration was found but a client could not be built from it (TLS settings).
    #[error("could not build a Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// A client from in-cluster configuration or `KUBECONFIG` / `~/.kube/config`, the way
/// kubectl finds its cluster. An unreachable API server is not an error here: the watch
/// retries it, and `/readyz` stays false until it has listed the namespaces.
pub async fn infer_client() -> Result<Client, ClusterError> {
    Ok(Client::try_from(infer_config().await?)?)
}

/// The configuration [`infer_client`] uses.
pub async fn infer_config() -> Result<kube::Config, ClusterError> {
    kube::Config::infer()
        .await
        .map_err(|e| ClusterError::Config(e.to_string()))
}

/// A client from one kubeconfig file, using its current context.
pub async fn client_from_kubeconfig(path: &std::path::Path) -> Result<Client, ClusterError> {
    Ok(Client::try_from(config_from_kubeconfig(path).await?)?)
}

/// The configuration [`client_from_kubeconfig`] uses.
pub async fn config_from_kubeconfig(path: &std::path::Path) -> Result<kube::Config, ClusterError> {
    let config_error =
        |e: kube::config::KubeconfigError| ClusterError::Config(format!("{}: {e}", path.display()));
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(config_error)?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(config_error)
}

/// Watch every namespace's metadata into `cache` until the returned future is dropped. Needs
/// `list` and `watch` on `namespaces`.
pub async fn watch_namespaces(client: Client, cache: NamespaceCache) {
    let api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
    watch_into(api, watcher::Config::default(), "namespace", |event| {
        cache.apply(event);
    })
    .await;
}

/// Watch the objects of `kind` into `cache` until the returned future is dropped. Needs
/// `get`, `list` and `watch` on the kind (the parameters: `guardrailparameters.tenantry.dev`;
/// the policies and bindings, only next to them: Tenantry's, by the managed-by label). Where
/// the kind is not served or may not be read (a role from before it), readiness does not wait:
/// without parameters tenants are judged by the platform defaults, without policies or
/// bindings the webhook judges every check itself; the watch keeps retrying, so objects
/// installed later are still picked up.
pub async fn watch_kind(client: Client, cache: NamespaceCache, kind: Watched) {
    cache.expect(kind);
    let api: Api<DynamicObject> = Api::all_with(client, &watched_resource(kind));
    let config = match kind {
        Watched::Params => watcher::Config::default(),
        // Only Tenantry's: a platform's other policies are none of the webhook's business.
        Watched::Policies | Watched::Bindings => {
            watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"))
        }
    };
    loop {
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => break,
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 403 => {
                tracing::warn!(
                    code = status.code,
                    ?kind,
                    "cannot list: judging without it until it can (parameters: the platform \
                     defaults; policies or bindings: every check by the webhook)"
                );
                cache.unavailable(kind);
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, ?kind, "listing failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
    watch_into(api, config, "guardrails", |event| {
        cache.apply_watched(kind, event);
    })
    .await;
}

/// Watch the tenants' `GuardrailParameters` into `cache` ([`watch_kind`]).
pub async fn watch_guardrail_params(client: Client, cache: NamespaceCache) {
    watch_kind(client, cache, Watched::Params).await;
}

/// What the webhook watches: the namespaces and the tenants' parameters, and with `vap`
/// (next to the compiled policies, `--with-vap`) Tenantry's policies and bindings too, to
/// leave each tenant's per-tenant checks to the policies bound to it, until the returned
/// future is dropped.
pub async fn watch_cluster(client: Client, cache: NamespaceCache, vap: bool) {
    let vap_watches = async {
        if vap {
            futures::join!(
                watch_kind(client.clone(), cache.clone(), Watched::Policies),
                watch_kind(client.clone(), cache.clone(), Watched::Bindings),
            );
        }
    };
    futures::join!(
        watch_namespaces(client.clone(), cache.clone()),
        watch_guardrail_params(client.clone(), cache.clone()),
        vap_watches,
    );
}

/// Feed every event of a watch on `api` to `apply`, for as long as the returned future runs:
/// the loop every in-memory view of the cluster (this webhook's namespace cache, the tenant
/// proxy's index) is kept by. The watcher re-lists on its own after a disconnect or an
/// expired resourceVersion (`Init` … `InitDone`, which a view swaps in whole), and errors are
/// retried with kube-runtime's default backoff: a view that stopped watching would answer
/// from stale state forever. `what` names the watch in logs.
pub async fn watch_into<K>(
    api: Api<K>,
    config: watcher::Config,
    what: &'static str,
    mut apply: impl FnMut(Event<K>),
) where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let stream = watcher::watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(event) => apply(event),
            Err(e) => tracing::warn!(error = %e, what, "watch failed; retrying"),
        }
    }
}
