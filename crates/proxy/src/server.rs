//! The proxy's request path: route, authenticate, then answer from the index or forward.
//!
//! Thin on purpose: every decision is one of the pure functions of [`crate::route`],
//! [`crate::index`], [`crate::auth`] and [`crate::forward`]; this file only moves bytes
//! between them and the sockets. TLS and connection handling are the webhook's
//! (`tenantry_admission::serve`, one rustls provider for the binary).
//!
//! The proxy's own endpoints live under `/tenantry-proxy/` (`healthz`, `readyz`, `metrics`), a prefix
//! the API server never serves, so `kubectl get --raw /readyz` through the proxy still asks
//! the API server.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime},
};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::BodyExt as _;
use k8s_openapi::{
    api::authentication::v1::{TokenReview, TokenReviewSpec},
    jiff::Timestamp,
};
use kube::{Api, api::PostParams};
use serde_json::Value;
use tenantry_admission::PeerCertificates;
use tenantry_api::platform::ProxyReadMode;
use tokio::sync::broadcast;

use crate::{
    auth::{Review, ReviewCache, UserInfo, bearer_token, token_key},
    client_cert,
    cluster::{self, Allowed, ClusterReads, FilteredList},
    feed::Shared,
    forward,
    index::{Change, Scope, event_for},
    metrics::{Handled, Metrics},
    route::{ClusterRead, IndexRead, ListQuery, Route, route, self_impersonation},
    status::Refusal,
    wire::{self, Format, Render},
};

/// How long a watch runs when the client sets no `timeoutSeconds`: the API server's default
/// `--min-request-timeout`.
pub const DEFAULT_WATCH_SECONDS: u64 = 1800;
/// How often a watch that allows bookmarks gets one.
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// Who checks tokens: the API server (`TokenReview`) in the proxy, anything in tests.
pub trait TokenReviewer: Send + Sync {
    /// Review one bearer token.
    fn review(&self, token: &str) -> futures::future::BoxFuture<'_, Result<Review, String>>;
}

/// `TokenReview` through the proxy's own client.
#[derive(Clone)]
pub struct ApiServerReviewer(pub kube::Client);

impl TokenReviewer for ApiServerReviewer {
    fn review(&self, token: &str) -> futures::future::BoxFuture<'_, Result<Review, String>> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: None,
            },
            ..TokenReview::default()
        };
        Box::pin(async move {
            let api: Api<TokenReview> = Api::all(self.0.clone());
            let answered = api
                .create(&PostParams::default(), &review)
                .await
                .map_err(|e| e.to_string())?;
            let status = answered.status.unwrap_or_default();
            if status.authenticated != Some(true) {
                return Ok(Review::Refused);
            }
            Ok(Review::Authenticated(
                status.user.unwrap_or_default().into(),
            ))
        })
    }
}

/// Everything a request needs; cheap to clone.
#[derive(Clone)]
pub struct ProxyState {
    /// The tenant index.
    pub shared: Arc<Shared>,
    /// The proxy's client to the API server (its own credentials): token reviews.
    pub client: kube::Client,
    /// The same credentials' plain HTTP client: forwarded requests.
    pub upstream: forward::Upstream,
    /// Who checks tokens.
    pub reviewer: Arc<dyn TokenReviewer>,
    /// Reviews already made.
    pub reviews: Arc<Mutex<ReviewCache>>,
    /// The cluster-scoped kinds the platform exposes.
    pub cluster: Arc<ClusterReads>,
    /// What `/tenantry-proxy/metrics` reports.
    pub metrics: Arc<Metrics>,
}

impl ProxyState {
    /// State reviewing tokens with `client` and forwarding through `upstream` (both of the
    /// proxy's own credentials).
    pub fn new(shared: Arc<Shared>, client: kube::Client, upstream: forward::Upstream) -> Self {
        Self {
            shared,
            reviewer: Arc::new(ApiServerReviewer(client.clone())),
            client,
            upstream,
            reviews: Arc::new(Mutex::new(ReviewCache::new())),
            cluster: Arc::new(ClusterReads::default()),
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Answer reads of the cluster-scoped kinds `cluster` exposes.
    #[must_use]
    pub fn with_cluster_reads(mut self, cluster: ClusterReads) -> Self {
        self.cluster = Arc::new(cluster);
        self
    }
}

/// The proxy's routes.
pub fn router(state: ProxyState) -> Router {
    Router::new()
        .route("/tenantry-proxy/healthz", get(|| async { "ok\n" }))
        .route("/tenantry-proxy/readyz", get(readyz))
        .route("/tenantry-proxy/metrics", get(metrics))
        .fallback(handle)
        .with_state(state)
}

async fn readyz(State(state): State<ProxyState>) -> Response {
    if state.shared.read().is_synced() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the tenant namespace index has not finished its first list\n",
        )
            .into_response()
    }
}

async fn metrics(State(state): State<ProxyState>) -> Response {
    state
        .metrics
        .set_indexed_namespaces(state.shared.read().len());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// A Status response for `refusal`.
pub fn refuse(refusal: &Refusal) -> Response {
    let mut response = (
        StatusCode::from_u16(refusal.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        refusal.to_status().to_string(),
    )
        .into_response();
    if refusal.code == 401 {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"tenantry-proxy\""),
        );
    }
    response
}

fn json(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

async fn authenticate(state: &ProxyState, token: Option<String>) -> Result<UserInfo, Refusal> {
    let token = token.ok_or_else(Refusal::unauthorized)?;
    let token = token.as_str();
    let key = token_key(token);
    let now = SystemTime::now();
    let cached = state
        .reviews
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key, now);
    state.metrics.review(cached.is_some());
    let review = match cached {
        Some(review) => review,
        None => {
            let review = state.reviewer.review(token).await.map_err(|e| {
                tracing::warn!(error = %e, "TokenReview failed");
                Refusal::unavailable(
                    "the tenant proxy could not review the token with the API server",
                )
            })?;
            state
                .reviews
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(token, review.clone(), now);
            review
        }
    };
    match review {
        Review::Authenticated(user) => Ok(user),
        Review::Refused => Err(Refusal::unauthorized()),
    }
}

async fn handle(State(state): State<ProxyState>, request: Request) -> Response {
    let started = Instant::now();
    let Answered {
        handled,
        response,
        upstream,
    } = answer(&state, request).await;
    state.metrics.observe(
        handled,
        response.status().as_u16(),
        started.elapsed(),
        upstream,
    );
    response
}

/// A request's answer, where it came from, and the time spent waiting for the API server's
/// response heads (`None`: not asked).
struct Answered {
    handled: Handled,
    response: Response,
    upstream: Option<Duration>,
}

impl Answered {
    fn own(handled: Handled, response: Response) -> Self {
        Self {
            handled,
            response,
            upstream: None,
        }
    }
}

/// Route, authenticate, then answer from the index, as the proxy, or forward as the caller.
async fn answer(state: &ProxyState, request: Request) -> Answered {
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str)
        .to_owned();
    let routed = route(
        request.method().as_str(),
        &target,
        request.headers().keys().map(http::HeaderName::as_str),
    );
    if let Route::Reject(refusal) = &routed {
        return Answered::own(Handled::Refused, refuse(refusal));
    }
    // A verified client certificate decides before a token, as in the API server's
    // authenticator order (see `client_cert`).
    let from_certificate = request
        .extensions()
        .get::<PeerCertificates>()
        .and_then(|chain| chain.0.first())
        .map(|leaf| client_cert::certificate_user(leaf, SystemTime::now()));
    let user = match from_certificate {
        Some(Ok(Some(user))) => user,
        Some(Err(reason)) => {
            tracing::debug!(%reason, "client certificate refused");
            return Answered::own(Handled::Refused, refuse(&Refusal::unauthorized()));
        }
        Some(Ok(None)) | None => {
            let token = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(bearer_token)
                .map(str::to_owned);
            match authenticate(state, token).await {
                Ok(user) => user,
                Err(refusal) => return Answered::own(Handled::Refused, refuse(&refusal)),
            }
        }
    };
    let impersonated = request.headers().get_all("impersonate-user");
    if let Err(refusal) =
        self_impersonation(impersonated.iter().map(|v| v.as_bytes()), &user.username)
    {
        return Answered::own(Handled::Refused, refuse(&refusal));
    }
    if let Route::Cluster(read) = &routed {
        match cluster_allowed(state, &user, read) {
            Ok(Some(allowed)) => {
                let (response, upstream) = as_proxy(state, request, read, allowed).await;
                return Answered {
                    handled: Handled::Cluster,
                    response,
                    upstream,
                };
            }
            Ok(None) => {}
            Err(refusal) => return Answered::own(Handled::Cluster, refuse(&refusal)),
        }
    }
    if let Route::Index(read) = routed {
        let accept = request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let format = wire::format(accept);
        if let Some(response) = from_index(state, &user, read, format) {
            return Answered::own(Handled::Index, response);
        }
    }
    match forward::forward(&state.upstream, request, Some(&user)).await {
        Ok(forwarded) => Answered {
            handled: Handled::PassThrough,
            response: forwarded.response,
            upstream: Some(forwarded.upstream),
        },
        Err(refusal) => Answered::own(Handled::PassThrough, refuse(&refusal)),
    }
}

/// What `user` may see of a cluster-scoped read the proxy answers as itself; `None` when the
/// kind is not exposed or the caller is no tenant's (forwarded as the caller).
fn cluster_allowed(
    state: &ProxyState,
    user: &UserInfo,
    read: &ClusterRead,
) -> Result<Option<Allowed>, Refusal> {
    let Some(mode) = state.cluster.mode(read.kind) else {
        return Ok(None);
    };
    let index = state.shared.read();
    if !index.is_synced() {
        return Err(Refusal::unavailable(
            "the tenant proxy has not finished listing namespaces; retry shortly",
        ));
    }
    let scope = index.tenants_of(user);
    if scope.is_empty() {
        return Ok(None);
    }
    Ok(Some(match mode {
        ProxyReadMode::All => Allowed::everything(),
        ProxyReadMode::Filtered => state.cluster.allowed(read.kind, index.classes_of(&scope)),
    }))
}

/// Largest list of classes the proxy reads whole to filter.
const MAX_FILTERED_BODY: usize = 16 * 1024 * 1024;

/// A cluster-scoped read answered with the proxy's own identity, keeping what `allowed`
/// permits (see [`crate::cluster`]).
async fn as_proxy(
    state: &ProxyState,
    mut request: Request,
    read: &ClusterRead,
    allowed: Allowed,
) -> (Response, Option<Duration>) {
    let (group, _, resource) = cluster::api(read.kind);
    let hidden = || {
        refuse(&Refusal::not_found(
            group,
            resource,
            read.name.as_deref().unwrap_or(""),
        ))
    };
    if !read.watch && read.name.as_deref().is_some_and(|n| !allowed.permits(n)) {
        return (hidden(), None);
    }
    let filtered = !allowed.is_everything();
    if filtered {
        // Filtering reads JSON, uncompressed: protobuf ranges and encodings are dropped.
        let headers = request.headers_mut();
        let json: Vec<&str> = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|r| r.starts_with("application/json"))
            .collect();
        let accept = if json.is_empty() {
            "application/json".to_owned()
        } else {
            json.join(",")
        };
        if let Ok(value) = HeaderValue::from_str(&accept) {
            headers.insert(header::ACCEPT, value);
        }
        headers.remove(header::ACCEPT_ENCODING);
    }
    if !filtered {
        return match forward::forward(&state.upstream, request, None).await {
            Ok(forwarded) => (forwarded.response, Some(forwarded.upstream)),
            Err(refusal) => (refuse(&refusal), None),
        };
    }
    if read.watch || read.name.is_some() {
        let forwarded = match forward::forward(&state.upstream, request, None).await {
            Ok(forwarded) => forwarded,
            Err(refusal) => return (refuse(&refusal), None),
        };
        let took = Some(forwarded.upstream);
        if forwarded.response.status() != StatusCode::OK {
            return (forwarded.response, took);
        }
        let (mut parts, body) = forwarded.response.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        if read.watch {
            return (
                Response::from_parts(parts, filter_watch(body, allowed)),
                took,
            );
        }
        let mut value = match read_json(body).await {
            Ok(value) => value,
            Err(refusal) => return (refuse(&refusal), took),
        };
        if !allowed.filter(&mut value) {
            return (hidden(), took);
        }
        return (
            Response::from_parts(parts, Body::from(value.to_string())),
            took,
        );
    }
    // A list: as many upstream pages as `limit` allowed classes take (`FilteredList`).
    let (asked, _) = request.into_parts();
    let path = asked.uri.path();
    let mut list = FilteredList::new(asked.uri.query().unwrap_or(""), allowed);
    let mut took = Duration::ZERO;
    let mut head = None;
    while let Some(query) = list.next_query() {
        let target = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        };
        let Ok(uri) = target.parse::<http::Uri>() else {
            return (
                refuse(&Refusal::bad_request("unusable request target")),
                Some(took),
            );
        };
        let mut page = Request::new(Body::empty());
        *page.method_mut() = asked.method.clone();
        *page.uri_mut() = uri;
        *page.headers_mut() = asked.headers.clone();
        let forwarded = match forward::forward(&state.upstream, page, None).await {
            Ok(forwarded) => forwarded,
            Err(refusal) => return (refuse(&refusal), Some(took)),
        };
        took += forwarded.upstream;
        if forwarded.response.status() != StatusCode::OK {
            return (forwarded.response, Some(took));
        }
        let (parts, body) = forwarded.response.into_parts();
        match read_json(body).await {
            Ok(value) => list.take(value),
            Err(refusal) => return (refuse(&refusal), Some(took)),
        }
        head.get_or_insert(parts);
    }
    let Some(mut parts) = head else {
        return (
            refuse(&Refusal::new(500, "InternalError", "no list was read")),
            Some(took),
        );
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    (
        Response::from_parts(parts, Body::from(list.finish().to_string())),
        Some(took),
    )
}

/// Read the JSON answer of the API server to a filtered read.
async fn read_json(body: Body) -> Result<Value, Refusal> {
    let bytes = match http_body_util::Limited::new(body, MAX_FILTERED_BODY)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            tracing::warn!(error = %e, "reading a cluster-scoped answer failed");
            return Err(Refusal::new(
                502,
                "BadGateway",
                "the tenant proxy could not read the API server's answer",
            ));
        }
    };
    serde_json::from_slice::<Value>(&bytes).map_err(|_| {
        Refusal::new(
            502,
            "BadGateway",
            "the API server's answer was not the JSON the tenant proxy asked for",
        )
    })
}

/// Most bytes of one watch event held while its line is incomplete.
const MAX_EVENT_LINE: usize = 4 * 1024 * 1024;

/// Keep the watch events `allowed` permits from a newline-delimited JSON watch stream.
fn filter_watch(body: Body, allowed: Allowed) -> Body {
    let events = futures::stream::unfold(
        (body.into_data_stream(), Vec::<u8>::new(), allowed, false),
        |(mut upstream, mut pending, allowed, mut ended)| async move {
            loop {
                if let Some(end) = pending.iter().position(|b| *b == b'\n') {
                    let raw: Vec<u8> = pending.drain(..=end).collect();
                    let Ok(mut event) = serde_json::from_slice::<Value>(&raw) else {
                        continue;
                    };
                    if allowed.filter_event(&mut event) {
                        let bytes = line(&event);
                        return Some((bytes, (upstream, pending, allowed, ended)));
                    }
                    continue;
                }
                if ended || pending.len() > MAX_EVENT_LINE {
                    return None;
                }
                match upstream.next().await {
                    Some(Ok(chunk)) => pending.extend_from_slice(&chunk),
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "cluster-scoped watch ended");
                        return None;
                    }
                    None => {
                        pending.push(b'\n');
                        ended = true;
                    }
                }
            }
        },
    );
    Body::from_stream(events)
}

/// Answer a namespace read from the index; `None` when the caller is not a tenant's (then the
/// API server answers it).
fn from_index(
    state: &ProxyState,
    user: &UserInfo,
    read: IndexRead,
    format: Format,
) -> Option<Response> {
    let (index, changes) = state.shared.subscribe();
    if !index.is_synced() {
        return Some(refuse(&Refusal::unavailable(
            "the tenant proxy has not finished listing namespaces; retry shortly",
        )));
    }
    let scope = index.tenants_of(user);
    if scope.is_empty() {
        return None;
    }
    let include = match &read {
        IndexRead::List(q) | IndexRead::Watch(q) => q.include_object,
        IndexRead::Get(_) => Default::default(),
    };
    let render = Render {
        format,
        include,
        now: Timestamp::now(),
    };
    Some(match read {
        IndexRead::Get(name) => match index.get(&scope, &name) {
            Ok(entry) => json(StatusCode::OK, &render.one(&entry)),
            Err(refusal) => refuse(&refusal),
        },
        IndexRead::List(query) => match index.list(&scope, &query) {
            Ok(page) => json(StatusCode::OK, &render.list(&page)),
            Err(refusal) => refuse(&refusal),
        },
        IndexRead::Watch(query) => {
            let start = index.watch_start(&scope, &query);
            let resource_version = index.resource_version();
            drop(index);
            let mut lines: Vec<Value> = Vec::new();
            let live = match start {
                Ok(start) => {
                    lines.extend(start.initial.iter().map(|e| render.event(e)));
                    if start.initial_events_end {
                        lines.push(wire::bookmark(start.after, true));
                    }
                    Some(changes)
                }
                // As the API server: a watch from a compacted version is a 200 whose one
                // event is the 410.
                Err(refusal) => {
                    lines.push(wire::error_event(refusal.to_status()));
                    None
                }
            };
            watch_response(WatchStream {
                pending: lines.into(),
                live,
                scope,
                query,
                render,
                resource_version,
            })
        }
    })
}

struct WatchStream {
    pending: std::collections::VecDeque<Value>,
    live: Option<broadcast::Receiver<Arc<Change>>>,
    scope: Scope,
    query: ListQuery,
    render: Render,
    resource_version: u64,
}

fn line(value: &Value) -> Result<Bytes, Infallible> {
    let mut bytes = value.to_string().into_bytes();
    bytes.push(b'\n');
    Ok(Bytes::from(bytes))
}

fn watch_response(stream: WatchStream) -> Response {
    let seconds = stream
        .query
        .timeout_seconds
        .unwrap_or(DEFAULT_WATCH_SECONDS);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let bookmarks = stream.query.bookmarks.then(|| {
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + BOOKMARK_INTERVAL,
            BOOKMARK_INTERVAL,
        );
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker
    });
    let body = futures::stream::unfold(
        (stream, bookmarks),
        move |(mut s, mut bookmarks)| async move {
            if let Some(next) = s.pending.pop_front() {
                return Some((line(&next), (s, bookmarks)));
            }
            let live = s.live.as_mut()?;
            loop {
                let tick = async {
                    match bookmarks.as_mut() {
                        Some(t) => {
                            t.tick().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    received = live.recv() => match received {
                        Ok(change) => {
                            s.resource_version = s.resource_version.max(change.resource_version);
                            if let Some(event) = event_for(&s.scope, &s.query, &change) {
                                s.render.now = Timestamp::now();
                                let value = s.render.event(&event);
                                return Some((line(&value), (s, bookmarks)));
                            }
                        }
                        // Fell behind or the feed stopped: end, and the client resumes.
                        Err(_) => return None,
                    },
                    () = tick => {
                        let value = wire::bookmark(s.resource_version, false);
                        return Some((line(&value), (s, bookmarks)));
                    }
                    () = tokio::time::sleep_until(deadline) => return None,
                }
            }
        },
    );
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthorized_says_how_to_authenticate_in_the_api_servers_shape() {
        let response = refuse(&Refusal::unauthorized());
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"tenantry-proxy\""
        );
    }
}
