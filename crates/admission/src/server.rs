//! The HTTPS server: `POST /validate`, `/healthz`, `/readyz`, `/metrics`.
//!
//! The router ([`router`]) is a plain axum `Router`, so tests and benchmarks drive it in
//! process without sockets; [`serve`] adds TLS and connection handling around it. A review is
//! judged synchronously on the connection's task: a verdict is a few microseconds of pure
//! computation over data already in memory, so handing it to another thread would cost more
//! than it saves.
//!
//! HTTP status codes are for transport problems only. A review that was read gets HTTP 200
//! whatever the verdict (that is the AdmissionReview contract); a body that is not a readable
//! `admission.k8s.io/v1` review gets 400 with a plain-text reason, and one over
//! [`MAX_BODY_BYTES`] gets 413. The API server treats any non-200 as a webhook failure and
//! applies `failurePolicy: Fail`, so a broken request is refused, never let through.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::{
    decision::Decision,
    metrics::Metrics,
    namespaces::{NamespaceCache, NamespaceEntry, NamespaceScope},
    review::{self, AdmissionRequestView, AdmissionResponse, DecodeError},
    validate::{Target, Validator},
};

/// Largest request body accepted. An object is at most ~1.5 MiB in etcd and a review carries
/// two of them (UPDATE), plus JSON overhead.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Namespace labels, from the watch.
    pub cache: NamespaceCache,
    /// The guardrails.
    pub validator: Arc<dyn Validator>,
    /// Counters and histograms.
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// State with fresh metrics.
    pub fn new(cache: NamespaceCache, validator: Arc<dyn Validator>) -> Self {
        Self {
            cache,
            validator,
            metrics: Arc::new(Metrics::new()),
        }
    }
}

/// The webhook's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/validate", post(validate_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.cache.is_synced() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "namespace cache has not finished its initial list\n",
        )
            .into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.set_cached_namespaces(state.cache.len());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn validate_handler(State(state): State<AppState>, body: Body) -> Response {
    let started = Instant::now();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) => {
            state.metrics.bad_request("unreadable_body");
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return if too_large {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("AdmissionReview larger than {MAX_BODY_BYTES} bytes\n"),
                )
                    .into_response()
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    format!("could not read the request body: {e}\n"),
                )
                    .into_response()
            };
        }
    };
    match answer(&state.cache, state.validator.as_ref(), &bytes) {
        Ok(answered) => {
            let checks: Vec<&str> = answered.denied_checks.iter().map(String::as_str).collect();
            state.metrics.observe(
                answered.operation.as_str(),
                answered.response.allowed,
                started.elapsed().as_secs_f64(),
                &checks,
            );
            (
                [(header::CONTENT_TYPE, "application/json")],
                answered.response.to_review_json(),
            )
                .into_response()
        }
        Err(e) => {
            state.metrics.bad_request("malformed");
            tracing::warn!(error = %e, "refused a malformed AdmissionReview");
            (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
        }
    }
}

/// An answered review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    /// The request's operation.
    pub operation: review::Operation,
    /// Check IDs of the denials, one per finding.
    pub denied_checks: Vec<String>,
    /// The response to send.
    pub response: AdmissionResponse,
}

/// Answer one raw AdmissionReview body as `POST /validate` does, minus HTTP: the response, or
/// the reason for HTTP 400. Used by the handler, the fuzz target and the benchmarks.
pub fn answer(
    cache: &NamespaceCache,
    validator: &dyn Validator,
    body: &[u8],
) -> Result<Answered, DecodeError> {
    let request = review::decode(body)?;
    let decision = judge(cache, validator, &request);
    let denied_checks: Vec<String> = decision.denials.iter().map(|d| d.check.clone()).collect();
    if !decision.allowed() {
        tracing::info!(
            uid = %request.uid,
            user = %request.user.username,
            object = %request.describe(),
            operation = %request.operation,
            dry_run = request.dry_run,
            checks = ?denied_checks,
            "denied"
        );
    }
    Ok(Answered {
        operation: request.operation,
        denied_checks,
        response: decision.into_response(request.uid),
    })
}

fn labels_of(object: Option<&Value>) -> Option<BTreeMap<String, String>> {
    let labels = object?.pointer("/metadata/labels")?.as_object()?;
    Some(
        labels
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect(),
    )
}

/// Find what the request is judged for, then judge it.
pub fn judge(
    cache: &NamespaceCache,
    validator: &dyn Validator,
    request: &AdmissionRequestView,
) -> Decision {
    let is_namespace = request.kind.group.is_empty() && request.kind.kind == "Namespace";
    if is_namespace {
        // A Namespace is a tenant's when the cache or either version of the object says so:
        // an UPDATE removing the tenant label must still be judged as the tenant's.
        let name = if request.name.is_empty() {
            request.namespace.as_deref().unwrap_or_default()
        } else {
            request.name.as_str()
        };
        let from_object = |object: Option<&Value>| {
            labels_of(object)
                .map(|labels| cache.entry(name, labels))
                .filter(|entry| entry.tenant.is_some())
        };
        let entry = from_object(request.old_object.as_ref())
            .or_else(|| from_object(request.object.as_ref()))
            .map(Arc::new)
            .or_else(|| cache.get(name).filter(|e| e.tenant.is_some()));
        return match entry {
            Some(namespace) => {
                let tenant = namespace.tenant.as_deref().and_then(|t| cache.tenant(t));
                judge_in(validator, request, &namespace, tenant.as_deref())
            }
            None => Decision::allow(),
        };
    }
    let Some(namespace) = request.namespace.as_deref() else {
        // Cluster-scoped objects other than Namespaces are not Tenantry's to judge here.
        return Decision::allow();
    };
    match cache.scope(namespace) {
        NamespaceScope::Platform { reason } => {
            tracing::debug!(namespace, reason, "platform namespace, not judged");
            Decision::allow()
        }
        NamespaceScope::Tenant { namespace, tenant } => {
            judge_in(validator, request, &namespace, tenant.as_deref())
        }
    }
}

fn judge_in(
    validator: &dyn Validator,
    request: &AdmissionRequestView,
    namespace: &NamespaceEntry,
    tenant: Option<&tenantry_policy::TenantInfo>,
) -> Decision {
    validator.validate(request, &Target { namespace, tenant })
}

/// How long a client may take to finish the TLS handshake or send request headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests get to finish after shutdown is asked for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve `router` over TLS on `listener` until `shutdown` resolves, then stop accepting and
/// give open connections [`DRAIN_TIMEOUT`] to finish their requests.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
}
