//! The HTTPS server: `POST /validate`, `/healthz`, `/readyz`, `/metrics`.
//!
//! The router ([`router`]) is a plain axum `Router`, so tests and benchmarks drive it in
//! process without sockets; [`serve`] adds TLS and connection handling around it.
//!
//! Reviews come from tenants, so their cost is theirs to choose: a typical review is judged in
//! microseconds, a Pod with 20,000 containers in tens of milliseconds. Judging therefore runs
//! on tokio's blocking pool (`spawn_blocking`), never on the runtime's worker threads, so
//! `/healthz`, `/readyz` and other connections keep being served while a heavy review is
//! judged; and it runs under [`ReviewLimits`]: at most one review per core at once, and large
//! bodies in a narrower lane of their own, so a burst of heavy reviews queues behind itself
//! instead of holding every core and starving the small reviews behind it (Kubewarden's
//! policy-server bounds its evaluations the same way). The engine's own cost is linear in the
//! object, and it lists at most a bounded number of findings per object.
//!
//! HTTP status codes are for transport problems only. A review that was read gets HTTP 200
//! whatever the verdict (that is the AdmissionReview contract); a body that is not a readable
//! `admission.k8s.io/v1` review gets 400 with a plain-text reason, and one over
//! [`MAX_BODY_BYTES`] gets 413 with a reason (read to its end first, within a bound, so the
//! sender sees the answer rather than a reset connection). The API server treats any non-200
//! as a webhook failure and applies `failurePolicy: Fail`, so a broken request is refused,
//! never let through.

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
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
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

/// Largest request body accepted: the API server sends at most 3 MiB (its request limit), so
/// anything larger did not come from it.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// How much of an oversized body is read and thrown away before answering 413, so that a
/// sender writing it still reads the answer; past this the connection is closed instead.
const MAX_DISCARDED_BYTES: usize = 16 * 1024 * 1024;
/// Bodies from this size on are judged in the large-review lane ([`ReviewLimits`]). Typical
/// reviews (a Deployment with its managedFields) are a few to a few tens of KiB.
pub const LARGE_BODY_BYTES: usize = 256 * 1024;

/// How many reviews are judged at once: `reviews` in all, of which at most `large` are of
/// bodies of [`LARGE_BODY_BYTES`] or more. Reviews past the limits wait for their turn without
/// holding a thread.
#[derive(Clone, Debug)]
pub struct ReviewLimits {
    reviews: Arc<tokio::sync::Semaphore>,
    large: Arc<tokio::sync::Semaphore>,
}

impl ReviewLimits {
    /// `reviews` at once (at least 1), `large` of them large (at least 1, at most `reviews`).
    pub fn new(reviews: usize, large: usize) -> Self {
        let reviews = reviews.max(1);
        Self {
            reviews: Arc::new(tokio::sync::Semaphore::new(reviews)),
            large: Arc::new(tokio::sync::Semaphore::new(large.clamp(1, reviews))),
        }
    }

    /// One review per core, large ones on half of the cores (at least one), so small reviews
    /// always have a core of their own when there are two or more.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self::new(cores, cores / 2)
    }
}

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Namespace labels, from the watch.
    pub cache: NamespaceCache,
    /// The guardrails.
    pub validator: Arc<dyn Validator>,
    /// Counters and histograms.
    pub metrics: Arc<Metrics>,
    /// How many reviews are judged at once.
    pub limits: ReviewLimits,
}

impl AppState {
    /// State with fresh metrics and [`ReviewLimits::for_this_machine`].
    pub fn new(cache: NamespaceCache, validator: Arc<dyn Validator>) -> Self {
        Self {
            cache,
            validator,
            metrics: Arc::new(Metrics::new()),
            limits: ReviewLimits::for_this_machine(),
        }
    }

    /// The same state with other limits.
    #[must_use]
    pub fn with_limits(mut self, limits: ReviewLimits) -> Self {
        self.limits = limits;
        self
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

/// The limits' semaphores are never closed; should one be, say so rather than judge.
fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the webhook is shutting down\n",
    )
        .into_response()
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

/// HTTP 413, with the reason.
fn too_large(metrics: &Metrics) -> Response {
    metrics.bad_request("too_large");
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "AdmissionReview larger than {MAX_BODY_BYTES} bytes: the API server sends at \
             most 3 MiB, so this did not come from it\n"
        ),
    )
        .into_response()
}

/// The request body, or the response refusing it.
async fn read_body(headers: &HeaderMap, body: Body, metrics: &Metrics) -> Result<Bytes, Response> {
    // A sender that waits for `100 Continue` before sending an oversized body is refused
    // before it sends it.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let waits = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if waits && declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large(metrics));
    }
    let mut body = body.into_data_stream();
    let mut bytes = Vec::new();
    let mut oversized = false;
    let mut read = 0usize;
    while let Some(chunk) = futures::StreamExt::next(&mut body).await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                metrics.bad_request("unreadable_body");
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("could not read the request body: {e}\n"),
                )
                    .into_response());
            }
        };
        read = read.saturating_add(chunk.len());
        if read > MAX_BODY_BYTES {
            // Read on (and discard) so the sender, still writing, gets to read the answer.
            oversized = true;
            bytes = Vec::new();
            if read > MAX_BODY_BYTES + MAX_DISCARDED_BYTES {
                break;
            }
        } else {
            bytes.extend_from_slice(&chunk);
        }
    }
    if oversized {
        return Err(too_large(metrics));
    }
    Ok(Bytes::from(bytes))
}

async fn validate_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let bytes = match read_body(&headers, body, &state.metrics).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    // Wait for a turn without holding a thread, then judge on the blocking pool.
    let large = if bytes.len() >= LARGE_BODY_BYTES {
        match state.limits.large.clone().acquire_owned().await {
            Ok(permit) => Some(permit),
            Err(_) => return unavailable(),
        }
    } else {
        None
    };
    let Ok(permit) = state.limits.reviews.clone().acquire_owned().await else {
        return unavailable();
    };
    let judged = {
        let (cache, validator) = (state.cache.clone(), state.validator.clone());
        tokio::task::spawn_blocking(move || {
            let answered = answer(&cache, validator.as_ref(), &bytes);
            drop((permit, large));
            answered
        })
        .await
    };
    let Ok(judged) = judged else {
        // The judging task panicked: the engine never does on any input, but if it did, the
        // API server gets an error (failurePolicy applies), not a verdict.
        tracing::error!("judging a review panicked");
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
    };
    match judged {
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

/// The certificate chain a client presented and the server's client verifier accepted,
/// leaf first: a request extension on every request of that connection.
#[derive(Debug, Clone)]
pub struct PeerCertificates(pub Arc<Vec<rustls::pki_types::CertificateDer<'static>>>);

/// Serve `router` over TLS on `listener` until `shutdown` resolves, then stop accepting and
/// give open connections [`DRAIN_TIMEOUT`] to finish their requests.
///
/// Connections accept HTTP upgrades (`Connection: Upgrade`): a handler that answers 101 takes
/// the connection over (the tenant proxy's exec and port-forward streams); a router with no
/// such handler, like the webhook's, never upgrades. Once upgraded, a connection is its
/// handler's and no longer counts towards the drain.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    // Every connection task holds a sender: the drain is over when the last one is dropped.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let (open, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
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
        let router = router.clone();
        let (open, mut stopping) = (open.clone(), stopping.clone());
        tokio::spawn(async move {
            let _open = open;
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
            // A verified client certificate (only a config with a client verifier asks for
            // one) travels with every request of the connection.
            let service = match tls.get_ref().1.peer_certificates() {
                Some(chain) if !chain.is_empty() => {
                    let chain = PeerCertificates(Arc::new(
                        chain.iter().map(|c| c.clone().into_owned()).collect(),
                    ));
                    TowerToHyperService::new(router.layer(axum::Extension(chain)))
                }
                _ => TowerToHyperService::new(router),
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades();
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = async { let _ = stopping.wait_for(|stop| *stop).await.map(drop); } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    drop(open);
    if tokio::time::timeout(DRAIN_TIMEOUT, all_closed.recv())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
}
