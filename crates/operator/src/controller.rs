//! The kube-runtime wiring: which changes trigger a reconcile, who may write, and what is
//! written back to the Tenant.
//!
//! Triggers: the Tenants themselves; the platform ConfigMap (a change re-queues every
//! tenant, since any default may have changed); and a label-selected *metadata* watch on
//! every kind Tenantry renders ([`ops::rendered_kinds`]), mapping an object back to its
//! Tenant through the tenant label, so a deleted NetworkPolicy or an edited ResourceQuota is
//! put back within seconds. Metadata watches keep only names and labels in memory, not the
//! objects, which is what keeps a thousand tenants' namespaces cheap.
//!
//! Writes happen only on the replica holding the Lease (`leader`): a standby watches
//! nothing and sends nothing, and takes over within the lease duration. What a reconcile
//! does is [`crate::reconcile`]'s; this file adds the finalizer, the status (server-side
//! apply on the status subresource, field manager `tenantry-status`, sent only when it
//! differs), Events for failures and repairs, per-tenant backoff, and metrics.

use crate::Unpoisoned;
use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use futures::{StreamExt, future};
use k8s_openapi::{
    api::core::v1::ConfigMap, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ApiResource, DynamicObject, PartialObjectMeta, Patch, PatchParams},
    runtime::{
        Controller, WatchStreamExt,
        controller::{Action, Config as ControllerConfig},
        events::{Event, EventType, Recorder, Reporter},
        reflector::{self, ObjectRef},
        watcher::{self, Event as WatchEvent},
    },
};
use serde_json::json;
use tenantry_api::{Tenant, tenant::TenantStatus};
use tenantry_cluster::{
    Catalog, ClusterApi, ClusterError, KubeCluster, KubeconfigSource, ResourceType,
    ops::{self, Waits},
};
use tenantry_core::PlatformContext;
use tenantry_secrets::{BaoClient, Connection, ConnectionFlags, revoke::Removal};
use tracing::{Instrument, info, info_span, warn};

use crate::{
    FINALIZER, STATUS_MANAGER, echo,
    inventory::{Inventory, Seen},
    leader::{self, LeaseOptions},
    metrics::{self, Metrics, TenantState},
    platform::{self, ConfigSource},
    reconcile,
    status::{self, READY},
};

/// How to run the operator.
#[derive(Clone, Debug)]
pub struct Options {
    /// A kubeconfig file; `None` uses the in-cluster configuration, else `KUBECONFIG`.
    pub kubeconfig: Option<PathBuf>,
    /// A kubeconfig context other than the current one.
    pub context: Option<String>,
    /// The ConfigMap holding `tenantry.yaml`.
    pub config: ConfigSource,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub listen: SocketAddr,
    /// Leader election; `None` runs without (one replica only).
    pub lease: Option<LeaseOptions>,
    /// Only Tenants matching this label selector are reconciled (several operators, each
    /// with its own share of the tenants; or a canary). `None`: every Tenant.
    pub tenant_selector: Option<String>,
    /// Tenants reconciled at once.
    pub concurrency: u16,
    /// How long to wait for a new namespace, and how often to look.
    pub waits: Waits,
    /// Where OpenBao is and how to log in, for tenants with `secrets.openbao`; the auth
    /// mount comes from the platform configuration (`openbao.authMount`). `None`: no
    /// OpenBao (such tenants are Degraded, and their access is not revoked on deletion).
    pub openbao: Option<ConnectionFlags>,
}

/// What stops the operator.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The cluster could not be reached or discovered.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A kube client error outside a reconcile.
    #[error("{doing}: {source}")]
    Kube {
        /// What the operator was doing.
        doing: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// Leader election failed.
    #[error("leader election on Lease {lease}: {message}")]
    Lease {
        /// `namespace/name` of the Lease.
        lease: String,
        /// The error.
        message: String,
    },
    /// The probe address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Why one reconcile failed; the tenant is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The reconcile itself failed (the status says how).
    #[error("tenant {tenant}: {message}")]
    Tenant {
        /// The tenant.
        tenant: String,
        /// What went wrong.
        message: String,
    },
    /// Writing the status, finalizer or an event failed.
    #[error("tenant {tenant}: {doing}: {source}")]
    Kube {
        /// The tenant.
        tenant: String,
        /// What was being written.
        doing: &'static str,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// The platform configuration as last read, with its text (to tell a real change from a
/// re-list) and a revision counter (to know when tenants must be pruned again).
struct PlatformState {
    /// `None` until read; then the ConfigMap's `tenantry.yaml` (`None` when the ConfigMap or
    /// the key is missing).
    text: Option<Option<String>>,
    context: Result<Arc<PlatformContext>, String>,
    revision: u64,
    /// The tenant label of the last valid configuration: offboarding must still find a
    /// tenant's objects while a bad edit of the ConfigMap is being fixed.
    label: Option<String>,
}

/// Everything a reconcile needs.
pub struct Context {
    api: KubeCluster,
    client: Client,
    catalog: Catalog,
    platform: RwLock<PlatformState>,
    metrics: Arc<Metrics>,
    recorder: Recorder,
    waits: Waits,
    /// `(generation, platform revision)` each tenant was last pruned at.
    pruned: Mutex<HashMap<String, (Option<i64>, u64)>>,
    /// Consecutive failures per tenant, for backoff.
    failures: Mutex<HashMap<String, u32>>,
    tenants: kube::runtime::reflector::Store<Tenant>,
    /// What the drift watches have seen: which objects of each kind in `drift_kinds`
    /// carry which tenant's label.
    inventory: Arc<RwLock<Inventory>>,
    /// The kinds the drift watches watch, numbered as in `inventory`.
    drift_kinds: Vec<ResourceType>,
    /// The tenant label the drift watches select on (the platform's at start).
    drift_label: String,
    openbao: Option<ConnectionFlags>,
    /// The OpenBao client, its auth mount and when it was made (see [`Context::bao`]).
    bao: Mutex<Option<(String, Instant, Arc<BaoClient>)>>,
    /// Tenants (by uid) being offboarded whose deletions were all sent, with the namespaces
    /// still going: the next passes only look whether those are gone.
    terminating: Mutex<HashMap<String, Vec<String>>>,
    /// Tenants (by uid) whose OpenBao access this process already revoked or reported on
    /// while their namespaces go: revocation scans every token, so once per deletion.
    revoked: Mutex<std::collections::HashSet<String>>,
}

/// Note a drift watch's event in the inventory.
fn record(
    inventory: &RwLock<Inventory>,
    kind: usize,
    event: &WatchEvent<PartialObjectMeta<DynamicObject>>,
    label: &str,
) {
    let mut inventory = inventory.write().unpoisoned();
    let object = |o: &PartialObjectMeta<DynamicObject>, listing: bool| {
        (
            o.metadata.namespace.clone(),
            o.name_any(),
            o.labels().get(label).cloned(),
            listing,
        )
    };
    let (namespace, name, tenant, listing) = match event {
        WatchEvent::Init => return inventory.record(kind, Seen::ListStarted),
        WatchEvent::InitDone => return inventory.record(kind, Seen::ListDone),
        WatchEvent::Delete(o) => {
            return inventory.record(
                kind,
                Seen::Deleted {
                    namespace: o.metadata.namespace.as_deref(),
                    name: &o.name_any(),
                },
            );
        }
        WatchEvent::InitApply(o) => object(o, true),
        WatchEvent::Apply(o) => object(o, false),
    };
    inventory.record(
        kind,
        Seen::Object {
            namespace: namespace.as_deref(),
            name: &name,
            tenant: tenant.as_deref(),
            listing,
        },
    );
}

fn writer_resource(t: &ResourceType) -> ApiResource {
    ApiResource {
        group: t.group.clone(),
        version: t.version.clone(),
        api_version: t.api_version(),
        kind: t.kind.clone(),
        plural: t.plural.clone(),
    }
}

impl Context {
    /// The objects the drift stores hold for `tenant`, or `None` while any store has not
    /// finished its first list (the reconcile then lists, as the CLI does): absence from a
    /// store is only evidence once the store is complete.
    fn known(&self, tenant: &str, label: &str) -> Option<Vec<ops::Known<'_>>> {
        if label != self.drift_label {
            // The platform changed its tenant label since the watches started.
            return None;
        }
        let found = self.inventory.read().unpoisoned().of_tenant(tenant)?;
        Some(
            found
                .into_iter()
                .filter_map(|(kind, namespace, name)| {
                    Some(ops::Known {
                        resource: self.drift_kinds.get(kind)?,
                        namespace,
                        name,
                    })
                })
                .collect(),
        )
    }
}

/// How long one OpenBao client (and so one Kubernetes-auth login and its token) is used
/// before logging in again: shorter than any sensible token TTL, long enough that a cold
/// start of many tenants logs in once.
const BAO_CLIENT_AGE: Duration = Duration::from_secs(600);

impl Context {
    /// The OpenBao client for `mount`: `None` when the operator has no OpenBao; an error
    /// (naming the flag or file) when the connection cannot be set up. A client is kept for
    /// [`BAO_CLIENT_AGE`] and dropped after a failure, so an expired login or a rotated
    /// token file is picked up by the next reconcile.
    fn bao(&self, mount: &str) -> Option<Result<Arc<BaoClient>, String>> {
        let flags = self.openbao.as_ref()?;
        let mut cached = self.bao.lock().unpoisoned();
        if let Some((m, made, client)) = cached.as_ref()
            && m == mount
            && made.elapsed() < BAO_CLIENT_AGE
        {
            return Some(Ok(client.clone()));
        }
        let flags = ConnectionFlags {
            auth_mount: Some(mount.to_owned()),
            ..flags.clone()
        };
        let client = Connection::resolve(&flags, |name| std::env::var(name).ok())
            .and_then(|c| BaoClient::new(&c))
            .map(Arc::new)
            .map_err(|e| e.to_string());
        *cached = client
            .as_ref()
            .ok()
            .map(|c| (mount.to_owned(), Instant::now(), c.clone()));
        Some(client)
    }

    /// Forget the client after a failure.
    fn bao_failed(&self) {
        *self.bao.lock().unpoisoned() = None;
    }
}

/// Connect as the options say: a kubeconfig when one is named, else in-cluster (falling back
/// to `KUBECONFIG` / `~/.kube/config`).
pub async fn connect(options: &Options) -> Result<KubeCluster, OperatorError> {
    if options.kubeconfig.is_some() || options.context.is_some() {
        let (api, _) = tenantry_cluster::connect(&KubeconfigSource {
            path: options.kubeconfig.clone(),
            context: options.context.clone(),
        })
        .await?;
        return Ok(api);
    }
    let client = Client::try_default()
        .await
        .map_err(|source| OperatorError::Kube {
            doing: "building a client from the in-cluster configuration or KUBECONFIG".into(),
            source,
        })?;
    Ok(KubeCluster::new(client))
}

/// Run until `shutdown` resolves: serve the probes, wait for the lease, and reconcile while
/// holding it. Losing the lease stops the controller and waits for it again; shutting down
/// releases it, so a standby takes over at once instead of after the lease duration.
pub async fn run(
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), OperatorError> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let metrics = Arc::new(Metrics::new());
    let (listener, addr) =
        metrics::bind(options.listen)
            .await
            .map_err(|source| OperatorError::Listen {
                addr: options.listen,
                source,
            })?;
    info!(%addr, "serving /metrics, /healthz and /readyz");
    let server = tokio::spawn(metrics::serve(listener, metrics.clone(), stopped()));
    let api = connect(&options).await?;
    let api = KubeCluster::new(metrics::counting(api.client().clone(), metrics.clone()));
    let catalog = api.discover().await?;
    metrics.set_ready(true);
    let result = match &options.lease {
        None => {
            metrics.set_leader(true);
            run_controller(&options, &api, &catalog, &metrics, stopped()).await
        }
        Some(lease) => lead(&options, lease, &api, &catalog, &metrics, stopped).await,
    };
    metrics.set_leader(false);
    let _ = server.await;
    result
}

/// Reconcile while holding the lease; wait for it otherwise.
async fn lead<F, Fut>(
    options: &Options,
    lease: &LeaseOptions,
    api: &KubeCluster,
    catalog: &Catalog,
    metrics: &Arc<Metrics>,
    stopped: F,
) -> Result<(), OperatorError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + Sync + 'static,
{
    let (mut leading, task) = leader::watch(api.client().clone(), lease).await?;
    loop {
        tokio::select! {
            () = stopped() => break,
            changed = leading.wait_for(|l| *l) => {
                if changed.is_err() {
                    break;
                }
            }
        }
        info!(identity = %lease.identity, "acquired the lease; reconciling");
        metrics.set_leader(true);
        let mut lost = leading.clone();
        let lost_or_stopped = {
            let stop = stopped();
            async move {
                let lost = async move {
                    let _ = lost.wait_for(|l| !*l).await;
                };
                futures::pin_mut!(lost, stop);
                future::select(lost, stop).await;
            }
        };
        run_controller(options, api, catalog, metrics, lost_or_stopped).await?;
        metrics.set_leader(false);
        if !*leading.borrow() {
            warn!(identity = %lease.identity, "lost the lease; stopped reconciling");
            continue;
        }
        break;
    }
    // Dropping the receiver makes the lease task release the lease.
    drop(leading);
    leader::finish(task, lease).await
}

/// The controller, until `stop` resolves.
async fn run_controller(
    options: &Options,
    api: &KubeCluster,
    catalog: &Catalog,
    metrics: &Arc<Metrics>,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), OperatorError> {
    let client = api.client().clone();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &options.config.namespace);
    let initial = config_maps
        .get_opt(&options.config.name)
        .await
        .map_err(|source| OperatorError::Kube {
            doing: format!("reading {}", options.config),
            source,
        })?;
    let mut state = PlatformState {
        text: None,
        context: Err(String::new()),
        revision: 0,
        label: None,
    };
    update_platform(&mut state, &options.config, initial.as_ref());
    let (flux_proxy_tx, flux_proxy_rx) = tokio::sync::watch::channel(has_flux_proxy(&state));
    // The platform-wide objects before any tenant, as `tenantry apply` orders them.
    let mut platform_failed = match &state.context {
        Ok(platform) => !converge_platform(api, catalog, platform, options.waits).await,
        Err(_) => false,
    };
    let label = state
        .label
        .clone()
        .unwrap_or_else(|| tenantry_api::Platform::default().tenant_label());
    let tenants: Api<Tenant> = Api::all(client.clone());
    let selected = match &options.tenant_selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    // The Tenants, in a store every reconcile reads (`others`), waking a tenant only when
    // something its reconcile depends on changed: not for the operator's own status writes.
    let (tenant_store, tenant_writer) = reflector::store();
    let tenant_stream = watcher::watcher(tenants, selected)
        .default_backoff()
        // Nothing reads who wrote which field of a Tenant; a thousand Tenants' records
        // would be kept for nothing.
        .modify(|t| t.metadata.managed_fields = None)
        .reflect(tenant_writer)
        .applied_objects()
        .predicate_filter(echo::tenant_inputs, Default::default());
    let controller = Controller::for_stream(tenant_stream, tenant_store).with_config(
        ControllerConfig::default()
            .concurrency(options.concurrency)
            .debounce(Duration::from_millis(200)),
    );
    let drift_kinds: Vec<ResourceType> =
        ops::rendered_kinds(catalog).into_iter().cloned().collect();
    let inventory = Arc::new(RwLock::new(Inventory::new(drift_kinds.len())));
    let context = Arc::new(Context {
        inventory: inventory.clone(),
        drift_kinds: drift_kinds.clone(),
        drift_label: label.clone(),
        api: api.clone(),
        client: client.clone(),
        catalog: catalog.clone(),
        platform: RwLock::new(state),
        metrics: metrics.clone(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "tenantry-operator".into(),
                instance: options.lease.as_ref().map(|l| l.identity.clone()),
            },
        ),
        waits: options.waits,
        pruned: Mutex::new(HashMap::new()),
        failures: Mutex::new(HashMap::new()),
        tenants: controller.store(),
        openbao: options.openbao.clone(),
        bao: Mutex::new(None),
        terminating: Mutex::new(HashMap::new()),
        revoked: Mutex::new(std::collections::HashSet::new()),
    });
    // The platform ConfigMap: a change of its tenantry.yaml converges the platform-wide
    // objects again, then re-queues every tenant.
    let (requeue_tx, requeue_rx) = futures::channel::mpsc::unbounded::<()>();
    let (changed_tx, mut changed_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let platform_ctx = context.clone();
    let components_task = tokio::spawn(async move {
        loop {
            // A failed platform apply is retried on its own; a converged one is looked at
            // again with the tenants' periodic pass.
            let wait = if platform_failed {
                Duration::from_secs(30)
            } else {
                Duration::from_secs(600)
            };
            let changed = tokio::select! {
                changed = changed_rx.recv() => {
                    if changed.is_none() {
                        break;
                    }
                    true
                }
                () = tokio::time::sleep(wait) => false,
            };
            let current = platform_ctx.platform.read().unpoisoned().context.clone();
            if let Ok(platform) = current {
                platform_failed = !converge_platform(
                    &platform_ctx.api,
                    &platform_ctx.catalog,
                    &platform,
                    platform_ctx.waits,
                )
                .await;
            }
            if changed {
                let _ = requeue_tx.unbounded_send(());
            }
        }
    });
    let platform_ctx = context.clone();
    let source = options.config.clone();
    let platform_watch = watcher::watcher(
        config_maps,
        watcher::Config::default().fields(&format!("metadata.name={}", source.name)),
    )
    .for_each(move |event| {
        let changed = match event {
            Ok(WatchEvent::Apply(cm) | WatchEvent::InitApply(cm)) => {
                apply_platform_event(&platform_ctx, &source, Some(&cm))
            }
            Ok(WatchEvent::Delete(_)) => apply_platform_event(&platform_ctx, &source, None),
            Ok(_) => false,
            Err(e) => {
                warn!(error = %e, "watching the platform ConfigMap");
                false
            }
        };
        if changed {
            let on = has_flux_proxy(&platform_ctx.platform.read().unpoisoned());
            flux_proxy_tx.send_if_modified(|was| std::mem::replace(was, on) != on);
            let _ = changed_tx.send(());
        }
        future::ready(())
    });
    let platform_task = tokio::spawn(platform_watch);
    let mut controller = controller.reconcile_all_on(requeue_rx);
    // Drift: label-selected metadata watches on every kind Tenantry renders, each kept in a
    // store that is also what a reconcile observes from (`Context::known`).
    for (kind, t) in drift_kinds.iter().enumerate() {
        let resource = writer_resource(t);
        // `Api<PartialObjectMeta<_>>` asks for metadata only.
        let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client.clone(), &resource);
        let label = label.clone();
        let seen_label = label.clone();
        let inventory = inventory.clone();
        let stream = watcher::watcher(api, watcher::Config::default().labels(&label))
            .default_backoff()
            .filter_map(move |event| {
                future::ready(match event {
                    Ok(event) => {
                        // Tenantry's own writes coming back do not wake the tenant (`echo`).
                        let wake = match &event {
                            WatchEvent::Apply(o) | WatchEvent::InitApply(o) => {
                                !echo::written_by_tenantry(&o.metadata)
                            }
                            WatchEvent::Delete(_) => true,
                            WatchEvent::Init | WatchEvent::InitDone => false,
                        };
                        record(&inventory, kind, &event, &seen_label);
                        match event {
                            WatchEvent::Apply(o)
                            | WatchEvent::InitApply(o)
                            | WatchEvent::Delete(o)
                                if wake =>
                            {
                                Some(Ok(o))
                            }
                            _ => None,
                        }
                    }
                    Err(e) => Some(Err(e)),
                })
            });
        controller = controller.watches_stream_with(stream, owning_tenant(label), resource);
    }
    // Flux's proxy kubeconfigs: a deleted or edited one is written again at once. Only that
    // one name is watched (the operator may list no other Secret), metadata only, and only
    // while the platform sets `flux.proxy` (the operator's role grants the watch only then):
    // started and stopped as the platform ConfigMap changes, without a restart.
    let resource = writer_resource(&tenantry_cluster::credential::secrets());
    let secrets: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client.clone(), &resource);
    let config = watcher::Config::default().labels(&label).fields(&format!(
        "metadata.name={}",
        tenantry_api::platform::FLUX_PROXY_KUBECONFIG_SECRET
    ));
    let stream = while_on(flux_proxy_rx, move || {
        watcher::watcher(secrets.clone(), config.clone())
            .default_backoff()
            .filter_map(|event| {
                future::ready(match event {
                    Ok(WatchEvent::Delete(o)) => Some(Ok(o)),
                    Ok(WatchEvent::Apply(o)) if !echo::written_by_tenantry(&o.metadata) => {
                        Some(Ok(o))
                    }
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
            })
    });
    controller = controller.watches_stream_with(stream, owning_tenant(label.clone()), resource);
    controller
        .graceful_shutdown_on(stop)
        .run(reconcile_tenant, error_policy, context)
        .for_each(|result| {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile");
            }
            future::ready(())
        })
        .await;
    platform_task.abort();
    components_task.abort();
    Ok(())
}

/// The Tenant a watched object belongs to, read from its tenant label: how every metadata
/// watch (drift kinds, Flux's proxy kubeconfig) maps an event back to the reconcile it wakes.
fn owning_tenant(
    label: String,
) -> impl Fn(PartialObjectMeta<DynamicObject>) -> Option<ObjectRef<Tenant>> + Send + Sync + 'static
{
    move |object| {
        object
            .labels()
            .get(&label)
            .map(|tenant| ObjectRef::<Tenant>::new(tenant))
    }
}

/// Whether the platform configuration in use sets `flux.proxy`.
fn has_flux_proxy(state: &PlatformState) -> bool {
    state
        .context
        .as_ref()
        .is_ok_and(|p| p.platform.flux.proxy.is_some())
}

/// The items of a stream `start` makes while `on` holds true, none while it holds false: a
/// watch that follows the configuration. Turned off, the running stream is dropped (its
/// watch ends); turned on again, a new one starts. Ends when `on`'s sender is gone.
fn while_on<S, F>(
    on: tokio::sync::watch::Receiver<bool>,
    start: F,
) -> impl futures::Stream<Item = S::Item> + Send
where
    S: futures::Stream + Send + 'static,
    S::Item: Send,
    F: Fn() -> S + Send + 'static,
{
    futures::stream::unfold(
        (on, None::<std::pin::Pin<Box<S>>>, start),
        |(mut on, mut running, start)| async move {
            loop {
                match running.as_mut() {
                    None => {
                        on.wait_for(|on| *on).await.ok()?;
                        running = Some(Box::pin(start()));
                    }
                    Some(stream) => tokio::select! {
                        item = stream.next() => match item {
                            Some(item) => return Some((item, (on, running, start))),
                            // Ended by itself: started again at the next change.
                            None => {
                                running = None;
                                on.changed().await.ok()?;
                            }
                        },
                        changed = on.changed() => {
                            changed.ok()?;
                            if !*on.borrow_and_update() {
                                running = None;
                            }
                        }
                    },
                }
            }
        },
    )
}

/// Converge the platform-wide components, logging what was done; false when it failed (the
/// tenants are reconciled regardless: their isolation does not depend on these objects, only
/// the custom kinds their delivery may create do).
async fn converge_platform(
    api: &KubeCluster,
    catalog: &Catalog,
    platform: &PlatformContext,
    waits: Waits,
) -> bool {
    match reconcile::converge_platform(api, catalog, platform, waits).await {
        Ok(done) => {
            if done.writes > 0 {
                info!(objects = ?done.written, writes = done.writes, "converged the platform-wide objects");
            }
            match done.error {
                Some(e) => {
                    warn!(error = %e, "converging the platform-wide objects");
                    false
                }
                None => true,
            }
        }
        Err(e) => {
            warn!(error = %e, "converging the platform-wide objects");
            false
        }
    }
}

/// Take a new ConfigMap state; true when the configuration changed.
fn apply_platform_event(ctx: &Context, source: &ConfigSource, cm: Option<&ConfigMap>) -> bool {
    let mut state = ctx.platform.write().unpoisoned();
    update_platform(&mut state, source, cm)
}

fn update_platform(
    state: &mut PlatformState,
    source: &ConfigSource,
    cm: Option<&ConfigMap>,
) -> bool {
    let data: Option<BTreeMap<String, String>> = cm.map(|c| c.data.clone().unwrap_or_default());
    let text = data
        .as_ref()
        .and_then(|d| d.get(platform::CONFIG_KEY).cloned());
    if state.text.as_ref() == Some(&text) {
        return false;
    }
    state.text = Some(text);
    state.revision += 1;
    state.context = match platform::from_config_map(source, data.as_ref()) {
        Ok(ctx) => {
            state.label = Some(ctx.tenant_label().to_owned());
            info!(%source, revision = state.revision, "platform configuration loaded");
            Ok(Arc::new(ctx))
        }
        Err(e) => {
            warn!(%source, error = %e, "platform configuration unusable");
            Err(e.to_string())
        }
    };
    true
}

fn now() -> Time {
    Time(Timestamp::now())
}

/// One reconcile of one Tenant, in a span named after it.
async fn reconcile_tenant(
    tenant: Arc<Tenant>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let name = tenant.name_any();
    let span = info_span!("reconcile", tenant = %name, generation = tenant.metadata.generation);
    ctx.metrics.in_flight(1);
    let start = Instant::now();
    let result = reconcile_inner(&tenant, &ctx).instrument(span).await;
    ctx.metrics.in_flight(-1);
    let (label, action) = match &result {
        Ok((label, action)) => (*label, Ok(action.clone())),
        Err(e) => ("failed", Err(e)),
    };
    ctx.metrics.reconciled(label, start.elapsed().as_secs_f64());
    match action {
        Ok(action) => {
            ctx.failures.lock().unpoisoned().remove(&name);
            Ok(action)
        }
        Err(_) => result.map(|(_, a)| a),
    }
}

async fn reconcile_inner(
    tenant: &Tenant,
    ctx: &Context,
) -> Result<(&'static str, Action), ReconcileError> {
    let name = tenant.name_any();
    let tenants: Api<Tenant> = Api::all(ctx.client.clone());
    if tenant.metadata.deletion_timestamp.is_some() {
        return finalize(tenant, ctx, &tenants).await;
    }
    if !tenant.finalizers().iter().any(|f| f == FINALIZER) {
        let mut finalizers = tenant.finalizers().to_vec();
        finalizers.push(FINALIZER.to_owned());
        set_finalizers(&tenants, tenant, finalizers).await?;
    }
    let (platform, revision) = {
        let state = ctx.platform.read().unpoisoned();
        (state.context.clone(), state.revision)
    };
    let prune_key = (tenant.metadata.generation, revision);
    let prune = ctx.pruned.lock().unpoisoned().get(&name) != Some(&prune_key);
    let others: Vec<Arc<Tenant>> = ctx.tenants.state();
    let others: Vec<&Tenant> = others
        .iter()
        .map(AsRef::as_ref)
        .filter(|t| t.metadata.deletion_timestamp.is_none())
        .collect();
    let known = platform
        .as_ref()
        .ok()
        .and_then(|p| ctx.known(&name, p.tenant_label()));
    let mut reconciled = reconcile::converge(
        &ctx.api,
        &ctx.catalog,
        platform.as_deref().map_err(String::as_str),
        tenant,
        &others,
        prune,
        ctx.waits,
        known.as_deref(),
    )
    .await;
    if let Ok(platform) = &platform {
        let config = &platform.platform.openbao;
        let bao = ctx.bao(&config.auth_mount);
        reconciled
            .provision_openbao(
                config,
                bao.as_ref()
                    .map(|b| b.as_ref().map(AsRef::as_ref).map_err(String::as_str)),
            )
            .await;
        if matches!(reconciled.openbao, reconcile::Access::Failed(_)) {
            ctx.bao_failed();
        }
    }
    reconciled.keep_flux_proxy(&ctx.api, Timestamp::now()).await;
    if let Err(e) = reconciled
        .drop_stale_flux_proxy(&ctx.api, tenant.status.as_ref())
        .await
    {
        // Its token expires within `tokenExpiration` regardless.
        warn!(error = %e, "deleting a Flux proxy kubeconfig no longer used");
    }
    if let reconcile::ProxyKubeconfig::Kept(kept) = &reconciled.flux_proxy
        && let Some(reason) = kept.minted
    {
        info!(reason, refresh_at = %kept.refresh_at, "minted Flux's proxy kubeconfig token");
    }
    let status = reconciled.status(tenant, &now());
    let was_ready = status::condition_status(tenant.status.as_ref(), READY) == Some("True")
        && tenant.status.as_ref().and_then(|s| s.observed_generation) == tenant.metadata.generation;
    let written = reconciled.written();
    if was_ready && !prune && !written.is_empty() {
        ctx.metrics.repaired();
        info!(objects = ?written, "repaired drift");
        publish(
            ctx,
            tenant,
            EventType::Normal,
            "Repaired",
            "Repair",
            format!("put back {}", written.join(", ")),
        )
        .await;
    }
    write_status(&tenants, tenant, &status).await?;
    ctx.metrics.set_state(&name, Some(state_of(&status)));
    if reconciled.failed() {
        let message = status
            .last_error
            .as_ref()
            .map_or_else(|| "reconcile failed".to_owned(), |e| e.message.clone());
        return Err(fail(ctx, tenant, "ReconcileFailed", "Apply", message).await);
    }
    if prune {
        ctx.pruned.lock().unpoisoned().insert(name, prune_key);
    }
    let label = if reconciled.writes() > 0 {
        "applied"
    } else {
        "converged"
    };
    // A periodic look catches what no watch can see (a CRD installed later, a missed event);
    // sooner when Flux's proxy kubeconfig token is due for renewal.
    let after = reconciled.requeue_after(Timestamp::now(), Duration::from_secs(600));
    Ok((label, Action::requeue(after)))
}

fn state_of(status: &TenantStatus) -> TenantState {
    let is = |kind| status::condition_status(Some(status), kind) == Some("True");
    if is(READY) {
        TenantState::Ready
    } else if is(status::DEGRADED) {
        TenantState::Degraded
    } else {
        TenantState::Other
    }
}

/// A deleted Tenant: offboard it, and let it go only when nothing of it is left.
async fn finalize(
    tenant: &Tenant,
    ctx: &Context,
    tenants: &Api<Tenant>,
) -> Result<(&'static str, Action), ReconcileError> {
    let name = tenant.name_any();
    if !tenant.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(("offboarded", Action::await_change()));
    }
    let label = ctx.platform.read().unpoisoned().label.clone();
    let Some(label) = label else {
        return Err(ReconcileError::Tenant {
            tenant: name,
            message: "the platform configuration was never valid, so the tenant label is unknown; offboarding waits for it".into(),
        });
    };
    let failed = |e: ClusterError| ReconcileError::Tenant {
        tenant: name.clone(),
        message: e.to_string(),
    };
    let uid = tenant.uid().unwrap_or_else(|| name.clone());
    // Everything was deleted on an earlier pass: only look whether the namespaces are gone
    // yet, and scan once they are.
    let pending = ctx.terminating.lock().unpoisoned().get(&uid).cloned();
    if let Some(namespaces) = pending {
        if !reconcile::namespaces_gone(&ctx.api, &ctx.catalog, &namespaces)
            .await
            .map_err(failed)?
        {
            return Ok(("offboarding", Action::requeue(Duration::from_secs(2))));
        }
        ctx.terminating.lock().unpoisoned().remove(&uid);
    } else if let Err(e) = remove_flux_proxy(tenant, ctx).await {
        // Not a reason to hold the tenant: deleting its ServiceAccount kills the token too,
        // and deleting its namespace the Secret.
        warn!(error = %e, "deleting Flux's proxy kubeconfig");
    }
    let offboarded = reconcile::offboard(&ctx.api, &ctx.catalog, &label, &name)
        .await
        .map_err(failed)?;
    if let Some(error) = offboarded.removed.first_error() {
        let message = format!("offboarding: {error}");
        return Err(fail(ctx, tenant, "OffboardFailed", "Offboard", message).await);
    }
    // As `tenantry offboard`: OpenBao access goes once the ServiceAccounts are deleted (no
    // new login can then succeed), before waiting for the namespaces.
    revoke_openbao(tenant, ctx).await?;
    if !offboarded.complete() {
        info!(left = ?offboarded.left, "offboarding: waiting for objects to go");
        ctx.terminating
            .lock()
            .unpoisoned()
            .insert(uid, offboarded.removed.namespaces.clone());
        return Ok(("offboarding", Action::requeue(Duration::from_secs(2))));
    }
    if !offboarded.unreadable.is_empty() {
        info!(unreadable = ?offboarded.unreadable, "offboarding: types the operator may not list were not checked");
    }
    let finalizers: Vec<String> = tenant
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    set_finalizers(tenants, tenant, finalizers).await?;
    if let Some(uid) = tenant.uid() {
        ctx.revoked.lock().unpoisoned().remove(&uid);
    }
    ctx.metrics.set_state(&name, None);
    ctx.pruned.lock().unpoisoned().remove(&name);
    info!("offboarded; finalizer removed");
    Ok(("offboarded", Action::await_change()))
}

/// Delete a deleted tenant's Flux proxy kubeconfig first, so its token dies before anything
/// else goes (deleting the ServiceAccount kills it too, a step later).
/// Only when the platform sets `flux.proxy`: without it the operator holds no right on that
/// Secret.
async fn remove_flux_proxy(tenant: &Tenant, ctx: &Context) -> Result<(), ClusterError> {
    let platform = ctx.platform.read().unpoisoned().context.clone();
    let Ok(platform) = platform else {
        return Ok(());
    };
    if platform.platform.flux.proxy.is_none() {
        return Ok(());
    }
    let namespace = reconcile::primary_namespace(Some(&platform), tenant);
    crate::flux_proxy::remove(&ctx.api, &namespace).await?;
    Ok(())
}

/// Revoke a deleted tenant's OpenBao access (once per deletion), as `tenantry offboard`
/// does. Without an OpenBao configuration the deletion goes on and a Warning event says what
/// to run: holding a Tenant forever for an operator flag nobody set helps no one. With one,
/// a failure keeps the finalizer and is retried with backoff, so no deleted tenant's OpenBao
/// token stays valid unnoticed.
async fn revoke_openbao(tenant: &Tenant, ctx: &Context) -> Result<(), ReconcileError> {
    let name = tenant.name_any();
    let uid = tenant.uid().unwrap_or_else(|| name.clone());
    if ctx.revoked.lock().unpoisoned().contains(&uid) {
        return Ok(());
    }
    let platform = ctx.platform.read().unpoisoned().context.clone();
    let Ok(platform) = platform else {
        return Err(ReconcileError::Tenant {
            tenant: name,
            message: "the platform configuration is unusable, so where the tenant's OpenBao access lives is unknown; offboarding waits for it".into(),
        });
    };
    if !reconcile::had_openbao(Some(&platform), tenant) {
        return Ok(());
    }
    let config = &platform.platform.openbao;
    match ctx.bao(&config.auth_mount) {
        None => {
            publish(
                ctx,
                tenant,
                EventType::Warning,
                "OpenBaoNotRevoked",
                "Offboard",
                format!("the operator has no OpenBao configured (--bao-addr, --openbao-k8s-role): run `tenantry secrets revoke {name}`"),
            )
            .await;
        }
        Some(client) => {
            let revoked = match client {
                Ok(client) => reconcile::revoke_openbao(client.as_ref(), config, &name)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            let revoked = match revoked {
                Ok(revoked) => revoked,
                Err(e) => {
                    ctx.bao_failed();
                    let message = format!("revoking the tenant's OpenBao access: {e}");
                    return Err(
                        fail(ctx, tenant, "OpenBaoRevokeFailed", "Offboard", message).await,
                    );
                }
            };
            let foreign = [revoked.role, revoked.policy].contains(&Removal::KeptForeign);
            publish(
                ctx,
                tenant,
                if foreign { EventType::Warning } else { EventType::Normal },
                "OpenBaoRevoked",
                "Offboard",
                format!(
                    "role {} {:?}, policy {} {:?}, {} token(s) revoked, {} secret(s) kept under {}{}",
                    revoked.role_name,
                    revoked.role,
                    revoked.policy_name,
                    revoked.policy,
                    revoked.tokens_revoked,
                    revoked.secrets,
                    revoked.secrets_path,
                    if foreign { "; a role or policy Tenantry did not write was kept" } else { "" },
                ),
            )
            .await;
            info!(
                tokens = revoked.tokens_revoked,
                "revoked the tenant's OpenBao access"
            );
        }
    }
    ctx.revoked.lock().unpoisoned().insert(uid);
    Ok(())
}

/// Replace the finalizers, only if the Tenant is still at the version read (a merge patch
/// with `resourceVersion` is refused with 409 otherwise, and the reconcile is retried).
async fn set_finalizers(
    tenants: &Api<Tenant>,
    tenant: &Tenant,
    finalizers: Vec<String>,
) -> Result<(), ReconcileError> {
    let patch = json!({"metadata": {
        "resourceVersion": tenant.resource_version(),
        "finalizers": finalizers,
    }});
    tenants
        .patch(
            &tenant.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map(|_| ())
        .map_err(kube_error(tenant, "updating the finalizers"))
}

/// The error of a request about `tenant` that failed while `doing` something.
fn kube_error(tenant: &Tenant, doing: &'static str) -> impl FnOnce(kube::Error) -> ReconcileError {
    let tenant = tenant.name_any();
    move |source| ReconcileError::Kube {
        tenant,
        doing,
        source,
    }
}

/// Server-side apply the status, unless it is already what the Tenant shows.
async fn write_status(
    tenants: &Api<Tenant>,
    tenant: &Tenant,
    status: &TenantStatus,
) -> Result<(), ReconcileError> {
    if tenant.status.as_ref() == Some(status) {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": tenantry_api::API_VERSION,
        "kind": "Tenant",
        "status": status,
    });
    tenants
        .patch_status(
            &tenant.name_any(),
            &PatchParams::apply(STATUS_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map(|_| ())
        .map_err(kube_error(tenant, "writing the status"))
}

/// A failed reconcile: a Warning event on the Tenant, and the error to back off on.
async fn fail(
    ctx: &Context,
    tenant: &Tenant,
    reason: &str,
    action: &str,
    message: String,
) -> ReconcileError {
    publish(
        ctx,
        tenant,
        EventType::Warning,
        reason,
        action,
        message.clone(),
    )
    .await;
    ReconcileError::Tenant {
        tenant: tenant.name_any(),
        message,
    }
}

async fn publish(
    ctx: &Context,
    tenant: &Tenant,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        // Events carry at most 1 kB of note.
        note: Some(note.chars().take(1000).collect()),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &tenant.object_ref(&())).await {
        warn!(error = %e, "publishing an event");
    }
}

/// Back off per tenant: 5 s, doubling per consecutive failure, at most 5 minutes. One broken
/// tenant never delays another.
fn error_policy(tenant: Arc<Tenant>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    let mut failures = ctx.failures.lock().unpoisoned();
    let n = failures.entry(tenant.name_any()).or_insert(0);
    *n = n.saturating_add(1);
    let delay = backoff(*n);
    warn!(error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// The delay before retry number `failures` (1-based).
pub fn backoff(failures: u32) -> Duration {
    let seconds = 5u64.saturating_mul(1u64 << failures.saturating_sub(1).min(16));
    Duration::from_secs(seconds.min(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Turning `flux.proxy` on at run time starts its Secret watch, off stops it, and on again
    /// starts a new one: before, the watch was decided once, at start.
    #[tokio::test]
    async fn a_watch_follows_its_switch_without_a_restart() {
        let (switch, on) = tokio::sync::watch::channel(false);
        let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = started.clone();
        // Each start emits its number once, then stays open as a watch does.
        let stream = while_on(on, move || {
            let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            futures::stream::iter([n]).chain(futures::stream::pending())
        });
        let mut stream = Box::pin(stream);
        let wait = Duration::from_millis(100);
        assert!(
            tokio::time::timeout(wait, stream.next()).await.is_err(),
            "nothing runs while off"
        );
        assert_eq!(started.load(std::sync::atomic::Ordering::SeqCst), 0);
        switch.send_replace(true);
        assert_eq!(tokio::time::timeout(wait, stream.next()).await, Ok(Some(1)));
        switch.send_replace(false);
        assert!(tokio::time::timeout(wait, stream.next()).await.is_err());
        switch.send_replace(true);
        assert_eq!(
            tokio::time::timeout(wait, stream.next()).await,
            Ok(Some(2)),
            "a new watch after on again"
        );
        drop(switch);
        assert_eq!(
            tokio::time::timeout(wait, stream.next()).await,
            Ok(None),
            "ends with its switch"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(4), Duration::from_secs(40));
        assert_eq!(backoff(7), Duration::from_secs(300));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
    }
}
