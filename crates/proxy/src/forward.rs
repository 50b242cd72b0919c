//! Passing a request through to the API server as the caller.
//!
//! The proxy's own credentials open the connection; `Impersonate-User`, `-Uid`, `-Group` and
//! `-Extra-*` carry the identity the TokenReview reported, so the API server's RBAC decides
//! exactly as for a direct request and its audit log records the caller as `user` with the
//! proxy as `impersonatedBy`. Which headers go on is decided by [`forwarded_headers`], a pure
//! function: the client's credentials (`Authorization`), any identity headers
//! (`Impersonate-*`, the front-proxy `X-Remote-*`) and hop-by-hop headers never do;
//! `Connection: Upgrade` does, so `exec`, `attach` and `port-forward` (SPDY or WebSocket)
//! upgrade end to end and the two upgraded connections are then spliced byte for byte.
//! Response bodies stream as they arrive (watches, `logs -f`); request bodies are read whole,
//! up to [`MAX_REQUEST_BODY`], since the API server refuses larger ones anyway and a bounded
//! read is what keeps a slow or huge upload from holding memory.
//!
//! The forwarding client is [`Upstream`], a plain hyper client built from the same kube
//! `Config` as the proxy's `kube::Client` (kube's rustls connector, base URL and credential
//! layer, so certificates, CA and token refresh are kube's), not that `kube::Client`: its
//! `send` hands every request to one `tower::buffer::Buffer` worker task and back (a
//! cross-task, often cross-thread, hop on every request), and its retry, tracing and timeout
//! layers are for API calls, not a byte pipe. What the proxy itself adds is measured apart
//! (`tenantry_proxy_overhead_seconds`; BENCHMARKS.md, "Tenant proxy").

use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use kube::client::ConfigExt as _;
use tower::{BoxError, ServiceBuilder, ServiceExt as _, util::BoxCloneSyncService};

use crate::{auth::UserInfo, status::Refusal};

/// Largest request body forwarded: the API server's own limit is 3 MiB for most requests.
pub const MAX_REQUEST_BODY: usize = 8 * 1024 * 1024;
/// How long a client may take to send its request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// Whether the request asks to upgrade the connection (`Connection: Upgrade` + `Upgrade`).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Headers named in `Connection` (hop-by-hop by nomination), lower-cased.
fn nominated(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty() && t != "upgrade")
        .collect()
}

fn is_identity_header(name: &str) -> bool {
    name.starts_with("impersonate-") || name.starts_with("x-remote-")
}

/// A header name character that needs no escaping (RFC 7230 `tchar`, less `%`).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$&'*+-.^_`|~".contains(&b)
}

/// An extra's key as it goes into `Impersonate-Extra-<key>`: bytes outside the header token
/// alphabet (and `%`) percent-encoded, as client-go does, so
/// `authentication.kubernetes.io/credential-id` becomes `…io%2Fcredential-id`.
pub fn extra_header_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if is_token_byte(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The headers to send upstream for a client request from `user`.
pub fn forwarded_headers(incoming: &HeaderMap, user: &UserInfo) -> Result<HeaderMap, Refusal> {
    let mut out = own_identity_headers(incoming);
    let value = |text: &str| {
        HeaderValue::from_str(text).map_err(|_| {
            Refusal::new(
                500,
                "InternalError",
                "the authenticated identity cannot be carried in an HTTP header",
            )
        })
    };
    out.insert("impersonate-user", value(&user.username)?);
    if !user.uid.is_empty() {
        out.insert("impersonate-uid", value(&user.uid)?);
    }
    for group in &user.groups {
        out.append("impersonate-group", value(group)?);
    }
    for (key, values) in &user.extra {
        let name = HeaderName::try_from(format!("impersonate-extra-{}", extra_header_key(key)))
            .map_err(|_| {
                Refusal::new(
                    500,
                    "InternalError",
                    "an extra of the identity has an unusable key",
                )
            })?;
        for v in values {
            out.append(name.clone(), value(v)?);
        }
    }
    Ok(out)
}

/// The headers to send upstream for a request the proxy makes as itself (the read-only
/// cluster-scoped kinds of [`crate::cluster`]): the client's, less its credentials, identity
/// and hop-by-hop headers, with no impersonation.
pub fn own_identity_headers(incoming: &HeaderMap) -> HeaderMap {
    let upgrade = is_upgrade(incoming);
    let nominated = nominated(incoming);
    let mut out = HeaderMap::with_capacity(incoming.len() + 4);
    for (name, value) in incoming {
        let n = name.as_str();
        let dropped = HOP_BY_HOP.contains(&n)
            || nominated.iter().any(|h| h == n)
            || is_identity_header(n)
            || name == header::AUTHORIZATION
            || name == header::HOST
            || name == header::CONTENT_LENGTH
            || (name == header::UPGRADE && !upgrade);
        if !dropped {
            out.append(name.clone(), value.clone());
        }
    }
    if upgrade {
        out.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    }
    out
}

/// The response headers to hand back to the client: hop-by-hop ones dropped, except those
/// a 101 Switching Protocols needs.
pub fn returned_headers(status: StatusCode, upstream: &HeaderMap) -> HeaderMap {
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    let nominated = nominated(upstream);
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        let n = name.as_str();
        let keep_for_upgrade = switching && (name == header::CONNECTION || name == header::UPGRADE);
        if keep_for_upgrade
            || !(HOP_BY_HOP.contains(&n)
                || nominated.iter().any(|h| h == n)
                || name == header::UPGRADE)
        {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Read a request body, bounded in size and time.
pub async fn read_body(body: Body) -> Result<Bytes, Refusal> {
    let limited = http_body_util::Limited::new(body, MAX_REQUEST_BODY);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Err(_) => Err(Refusal::new(
            408,
            "Timeout",
            "the request body was not sent in time",
        )),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(Refusal::new(
            413,
            "RequestEntityTooLarge",
            format!("request body larger than {MAX_REQUEST_BODY} bytes"),
        )),
        Ok(Err(e)) => Err(Refusal::bad_request(format!(
            "could not read the request body: {e}"
        ))),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// The proxy's HTTP client to the API server, with its own credentials; cheap to clone.
#[derive(Clone)]
pub struct Upstream(BoxCloneSyncService<Request<Full<Bytes>>, Response<Incoming>, BoxError>);

impl Upstream {
    /// A client for the API server and credentials of `config`: kube's TLS connector (the
    /// binary's one rustls provider), base URL and `Authorization` layer, HTTP/1.1.
    pub fn from_config(config: &kube::Config) -> Result<Self, kube::Error> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(config.connect_timeout);
        let https = config.rustls_https_connector_with_connector(http)?;
        let client = Client::builder(TokioExecutor::new()).build(https);
        let service = ServiceBuilder::new()
            .layer(config.base_uri_layer())
            .option_layer(config.auth_layer()?)
            .map_err(BoxError::from)
            .service(client);
        Ok(Self(BoxCloneSyncService::new(service)))
    }

    /// Send one request (its URI a path and query) and wait for the response head.
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, BoxError> {
        self.0.clone().oneshot(request).await
    }
}

/// What the API server answered to a forwarded request, and how long it took to its head.
pub struct Forwarded {
    /// The response for the client.
    pub response: Response<Body>,
    /// From handing the request to the client to the response head: the API server's time
    /// (and the wire's), which the proxy's own overhead is measured apart from.
    pub upstream: Duration,
}

/// Send `request` (already authenticated as `user`) to the API server through `upstream` and
/// return what it answered, splicing the connections when it upgrades.
/// `user` `None` sends it as the proxy itself (only the read-only reads of [`crate::cluster`]).
pub async fn forward(
    upstream: &Upstream,
    mut request: Request<Body>,
    user: Option<&UserInfo>,
) -> Result<Forwarded, Refusal> {
    let client_upgrade = is_upgrade(request.headers()).then(|| hyper::upgrade::on(&mut request));
    let (parts, body) = request.into_parts();
    let headers = match user {
        Some(user) => forwarded_headers(&parts.headers, user)?,
        None => own_identity_headers(&parts.headers),
    };
    let body = read_body(body).await?;
    let mut outgoing = Request::new(Full::new(body));
    *outgoing.method_mut() = parts.method;
    *outgoing.uri_mut() = parts
        .uri
        .path_and_query()
        .map_or_else(|| http::Uri::from_static("/"), |pq| pq.clone().into());
    *outgoing.headers_mut() = headers;
    let sent = Instant::now();
    let answered = upstream.send(outgoing).await;
    let took = sent.elapsed();
    let mut response = answered.map_err(|e| {
        tracing::warn!(error = %e, "forwarding failed");
        Refusal::new(
            502,
            "BadGateway",
            format!("the tenant proxy could not reach the API server: {e}"),
        )
    })?;
    let status = response.status();
    let headers = returned_headers(status, response.headers());
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        match client_upgrade {
            Some(client_upgrade) => {
                tokio::spawn(splice(client_upgrade, upstream_upgrade));
            }
            None => {
                return Err(Refusal::new(
                    502,
                    "BadGateway",
                    "the API server switched protocols for a request that did not ask to",
                ));
            }
        }
        let mut answer = Response::new(Body::empty());
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        return Ok(Forwarded {
            response: answer,
            upstream: took,
        });
    }
    let (_, body) = response.into_parts();
    let mut answer = Response::new(Body::new(body));
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    Ok(Forwarded {
        response: answer,
        upstream: took,
    })
}

/// Copy bytes both ways between the client's and the API server's upgraded connections until
/// either side closes.
async fn splice(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade did not complete");
            return;
        }
    };
    let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(error = %e, "upgraded stream ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserInfo {
        UserInfo {
            username: "system:serviceaccount:shop:shop".into(),
            uid: "1234".into(),
            groups: vec![
                "system:serviceaccounts".into(),
                "system:authenticated".into(),
            ],
            extra: [(
                "authentication.kubernetes.io/credential-id".to_owned(),
                vec!["JTI=abc".to_owned()],
            )]
            .into(),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::try_from(*k).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_caller_is_impersonated_and_its_credentials_stay_behind() {
        let incoming = headers(&[
            ("authorization", "Bearer tenant-token"),
            ("accept", "application/json"),
            ("x-remote-user", "admin"),
            ("host", "proxy:8443"),
            ("content-length", "3"),
            ("connection", "keep-alive, x-trace"),
            ("x-trace", "1"),
            ("user-agent", "kubectl/v1.36.2"),
        ]);
        let out = forwarded_headers(&incoming, &user()).unwrap();
        assert_eq!(out["impersonate-user"], "system:serviceaccount:shop:shop");
        assert_eq!(out["impersonate-uid"], "1234");
        let groups: Vec<_> = out.get_all("impersonate-group").iter().collect();
        assert_eq!(groups, ["system:serviceaccounts", "system:authenticated"]);
        assert_eq!(
            out["impersonate-extra-authentication.kubernetes.io%2Fcredential-id"],
            "JTI=abc"
        );
        for gone in [
            "authorization",
            "x-remote-user",
            "host",
            "content-length",
            "connection",
            "x-trace",
        ] {
            assert!(!out.contains_key(gone), "{gone} forwarded");
        }
        assert_eq!(out["accept"], "application/json");
        assert_eq!(out["user-agent"], "kubectl/v1.36.2");
    }

    #[test]
    fn upgrades_keep_their_connection_headers() {
        let incoming = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "v5.channel.k8s.io"),
        ]);
        assert!(is_upgrade(&incoming));
        let out = forwarded_headers(&incoming, &user()).unwrap();
        assert_eq!(out["connection"], "Upgrade");
        assert_eq!(out["upgrade"], "SPDY/3.1");
        assert_eq!(out["x-stream-protocol-version"], "v5.channel.k8s.io");
        let back = returned_headers(
            StatusCode::SWITCHING_PROTOCOLS,
            &headers(&[("connection", "Upgrade"), ("upgrade", "SPDY/3.1")]),
        );
        assert_eq!(back["upgrade"], "SPDY/3.1");
        let back = returned_headers(
            StatusCode::OK,
            &headers(&[
                ("connection", "close"),
                ("transfer-encoding", "chunked"),
                ("content-type", "application/json"),
            ]),
        );
        assert_eq!(back.len(), 1);
    }

    #[test]
    fn an_identity_that_cannot_be_a_header_is_not_forwarded() {
        let mut bad = user();
        bad.username = "evil\r\nImpersonate-Group: system:masters".into();
        assert_eq!(
            forwarded_headers(&HeaderMap::new(), &bad).unwrap_err().code,
            500
        );
    }
}
