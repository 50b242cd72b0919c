//! Prometheus metrics and the probes, served over plain HTTP.
//!
//! The questions a platform team asks of an operator are: is it reconciling, and succeeding
//! (reconciles by result), is it keeping up (reconcile duration, reconciles in flight), how
//! many tenants are Ready or Degraded right now, and how often does it have to put a
//! tenant's objects back (drift repairs). Labels come from closed sets, so the number of
//! series does not grow with the number of tenants. Plain HTTP, not TLS: the endpoints
//! carry no secrets, kubelet probes and Prometheus scrape them inside the cluster, and tests
//! bind them to 127.0.0.1.

use crate::Unpoisoned;
use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerbLabels {
    verb: &'static str,
}

/// How a tenant stands, for the Ready/Degraded gauges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantState {
    /// `Ready=True`.
    Ready,
    /// `Degraded=True`.
    Degraded,
    /// Neither (being offboarded, or not reconciled yet).
    Other,
}

/// The operator's metrics and probe state.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    duration: Histogram,
    ready: Gauge,
    degraded: Gauge,
    repairs: Counter,
    in_flight: Gauge,
    leader: Gauge,
    requests: Family<VerbLabels, Counter>,
    states: Mutex<BTreeMap<String, TenantState>>,
    ready_probe: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Register every metric under the `tenantry_operator_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tenantry_operator");
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Tenant reconciles, by result (converged, applied, failed, offboarded, offboarding)",
            reconciles.clone(),
        );
        // 1 ms .. ~65 s: a converged tenant costs a few reads; a new one waits for its
        // namespaces.
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register_with_unit(
            "reconcile_duration",
            "Time one tenant's reconcile took",
            Unit::Seconds,
            duration.clone(),
        );
        let ready = Gauge::default();
        registry.register(
            "tenants_ready",
            "Tenants whose Ready condition is True",
            ready.clone(),
        );
        let degraded = Gauge::default();
        registry.register(
            "tenants_degraded",
            "Tenants whose Degraded condition is True",
            degraded.clone(),
        );
        let repairs = Counter::default();
        registry.register(
            "drift_repairs",
            "Reconciles of an already converged tenant that had to write (an object was deleted or edited)",
            repairs.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "reconciles_in_flight",
            "Reconciles running now (kube-runtime does not expose its queue depth)",
            in_flight.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the lease and reconciles, else 0",
            leader.clone(),
        );
        let requests = Family::<VerbLabels, Counter>::default();
        registry.register(
            "api_requests",
            "Requests sent to the Kubernetes API server, by verb (watch, get, post, put, patch, delete; lease: leader election): what the operator costs the control plane",
            requests.clone(),
        );
        Self {
            registry,
            reconciles,
            duration,
            ready,
            degraded,
            repairs,
            in_flight,
            leader,
            requests,
            states: Mutex::new(BTreeMap::new()),
            ready_probe: AtomicBool::new(false),
        }
    }

    /// Count one finished reconcile.
    pub fn reconciled(&self, result: &'static str, seconds: f64) {
        self.reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
        self.duration.observe(seconds);
    }

    /// One request to the API server.
    pub fn requested(&self, verb: &'static str) {
        self.requests.get_or_create(&VerbLabels { verb }).inc();
    }

    /// One drift repair.
    pub fn repaired(&self) {
        self.repairs.inc();
    }

    /// A reconcile starts (`+1`) or ends (`-1`).
    pub fn in_flight(&self, delta: i64) {
        self.in_flight.inc_by(delta);
    }

    /// Whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Record a tenant's state (`None`: it is gone).
    pub fn set_state(&self, tenant: &str, state: Option<TenantState>) {
        let mut states = self.states.lock().unpoisoned();
        match state {
            Some(s) => states.insert(tenant.to_owned(), s),
            None => states.remove(tenant),
        };
        let count =
            |s| i64::try_from(states.values().filter(|v| **v == s).count()).unwrap_or(i64::MAX);
        self.ready.set(count(TenantState::Ready));
        self.degraded.set(count(TenantState::Degraded));
    }

    /// `/readyz` answers 200 from now on (or 503 again with `false`).
    pub fn set_ready(&self, ready: bool) {
        self.ready_probe.store(ready, Ordering::Relaxed);
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready_probe.load(Ordering::Relaxed)
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The verb of a request, from a closed set: GETs that watch are `watch`.
pub fn verb_of<B>(request: &http::Request<B>) -> &'static str {
    let watching = request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    // Leader election's renewals are their own line: they are the standing cost of HA,
    // not of the tenants.
    if request
        .uri()
        .path()
        .starts_with("/apis/coordination.k8s.io/")
    {
        return "lease";
    }
    match *request.method() {
        http::Method::GET if watching => "watch",
        http::Method::GET => "get",
        http::Method::POST => "post",
        http::Method::PUT => "put",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "other",
    }
}

/// `client`, counting every request it sends in `metrics` (`api_requests`).
pub fn counting(client: kube::Client, metrics: Arc<Metrics>) -> kube::Client {
    let namespace = client.default_namespace().to_owned();
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        metrics.requested(verb_of(&request));
        let client = client.clone();
        async move { client.send(request).await }
    });
    kube::Client::new(service, namespace)
}

/// `/metrics`, `/healthz` and `/readyz`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(metrics)
}

async fn serve_metrics(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}

async fn readyz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    if m.is_ready() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Serve the router on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Bind the probe address (port 0 picks a free port; see the returned address).
pub async fn bind(addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_gauges_count_each_tenant_once() {
        let m = Metrics::new();
        m.set_state("a", Some(TenantState::Ready));
        m.set_state("b", Some(TenantState::Degraded));
        m.set_state("a", Some(TenantState::Ready));
        m.set_state("c", Some(TenantState::Ready));
        m.set_state("c", None);
        let text = m.encode();
        assert!(
            text.contains("tenantry_operator_tenants_ready 1\n"),
            "{text}"
        );
        assert!(
            text.contains("tenantry_operator_tenants_degraded 1\n"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn every_request_the_client_sends_is_counted_by_verb() {
        // An API server that answers every request with an empty JSON object.
        let server = tower::service_fn(|_: http::Request<kube::client::Body>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(kube::client::Body::from(
                b"{}".to_vec(),
            )))
        });
        let m = Arc::new(Metrics::new());
        let client = counting(kube::Client::new(server, "default"), m.clone());
        for (method, uri) in [
            ("GET", "/api/v1/namespaces?labelSelector=x&watch=true"),
            ("GET", "/api/v1/namespaces"),
            ("PATCH", "/api/v1/namespaces/a?fieldManager=tenantry"),
            ("PATCH", "/api/v1/namespaces/b?fieldManager=tenantry"),
        ] {
            let request = http::Request::builder()
                .method(method)
                .uri(uri)
                .body(kube::client::Body::empty())
                .unwrap();
            client.send(request).await.unwrap();
        }
        let text = m.encode();
        for line in [
            "tenantry_operator_api_requests_total{verb=\"watch\"} 1",
            "tenantry_operator_api_requests_total{verb=\"get\"} 1",
            "tenantry_operator_api_requests_total{verb=\"patch\"} 2",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn reconciles_are_counted_by_result() {
        let m = Metrics::new();
        m.reconciled("applied", 0.2);
        m.reconciled("applied", 0.1);
        m.reconciled("failed", 0.1);
        let text = m.encode();
        assert!(
            text.contains("tenantry_operator_reconciles_total{result=\"applied\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("tenantry_operator_reconcile_duration_seconds_count 3"),
            "{text}"
        );
    }
}
