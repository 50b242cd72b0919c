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
use tenantry_core::render::guardrails::{
    GuardrailParams, PARAMS_GROUP, PARAMS_KIND, PARAMS_PLURAL, PARAMS_VERSION,
};

use crate::namespaces::NamespaceCache;

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

/// The name of a parameters object and what it holds; `None` for an object without a
/// tenant (logged: it judges nobody).
fn name_and_params(object: &DynamicObject) -> (Option<String>, Option<GuardrailParams>) {
    let name = object.metadata.name.clone();
    let params = GuardrailParams::from_object(&object.data);
    if params.is_none() {
        tracing::warn!(name = ?name, "GuardrailParameters without spec.tenant: ignored");
    }
    (name, params)
}

impl NamespaceCache {
    /// Apply one event of the `GuardrailParameters` watch.
    pub fn apply_params(&self, event: Event<DynamicObject>) {
        match event {
            Event::Apply(object) => match name_and_params(&object) {
                (Some(name), Some(params)) => self.upsert_params(&name, params),
                (Some(name), None) => self.remove_params(&name),
                _ => {}
            },
            Event::Delete(object) => {
                if let Some(name) = object.metadata.name {
                    self.remove_params(&name);
                }
            }
            Event::Init => self.start_params_relist(),
            Event::InitApply(object) => {
                if let (Some(name), Some(params)) = name_and_params(&object) {
                    self.relist_params_upsert(&name, params);
                }
            }
            Event::InitDone => {
                self.finish_params_relist();
                tracing::info!(
                    parameters = self.params_len(),
                    "guardrail parameters synced"
                );
            }
        }
    }
}

/// The `GuardrailParameters` resource.
pub fn params_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(PARAMS_GROUP, PARAMS_VERSION, PARAMS_KIND),
        PARAMS_PLURAL,
    )
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

/// Watch the tenants' `GuardrailParameters` into `cache` until the returned future is
/// dropped. Needs `get`, `list` and `watch` on `guardrailparameters.tenantry.dev`. Where the
/// kind is not served (the platform renders none) or may not be read (a role from before it),
/// tenants are judged by the platform defaults and readiness does not wait; the watch keeps
/// retrying, so parameters installed later are still picked up.
pub async fn watch_guardrail_params(client: Client, cache: NamespaceCache) {
    cache.expect_params();
    let api: Api<DynamicObject> = Api::all_with(client, &params_resource());
    loop {
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => break,
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 403 => {
                tracing::warn!(
                    code = status.code,
                    "cannot list guardrailparameters.tenantry.dev: every tenant is judged by \
                     the platform defaults until it can"
                );
                cache.params_unavailable();
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "listing guardrail parameters failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
    watch_into(
        api,
        watcher::Config::default(),
        "guardrail parameters",
        |event| {
            cache.apply_params(event);
        },
    )
    .await;
}

/// What the webhook watches: the namespaces and the tenants' parameters, until the returned
/// future is dropped.
pub async fn watch_cluster(client: Client, cache: NamespaceCache) {
    futures::join!(
        watch_namespaces(client.clone(), cache.clone()),
        watch_guardrail_params(client, cache),
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
