//! Tenantry's in-memory API server (`tenantry_cluster::fake::FakeCluster`) served over real
//! HTTP on 127.0.0.1, with an admin kubeconfig and a platform repository, for suites that run
//! the real `tenantry` binary against a cluster (`cluster_cli.rs`, `doctor.rs`). Include it
//! with `#[path = "common/fake_server.rs"] mod fake_server;`: only those suites need hyper.
#![allow(dead_code)] // each suite uses its own subset

use std::{
    collections::BTreeMap,
    convert::Infallible,
    fs,
    net::SocketAddr,
    path::Path,
    process::{Command, Output},
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tenantry_cluster::{
    AccessCheck, BoundObject, Catalog, ClusterApi, ClusterError, Deletion, fake::FakeCluster,
};
use tenantry_core::{DesiredObject, Layer};

pub const ADMIN_TOKEN: &str = "admin-token-for-tests";

/// HTTP requests served, by method.
pub type HttpCounts = Arc<Mutex<BTreeMap<String, usize>>>;

/// Serve `fake` over HTTP on 127.0.0.1; the server thread ends with the test process.
pub fn serve(fake: FakeCluster) -> (SocketAddr, HttpCounts) {
    let counts = HttpCounts::default();
    let counter = Arc::clone(&counts);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let fake = fake.clone();
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let fake = fake.clone();
                        *counter
                            .lock()
                            .unwrap()
                            .entry(req.method().to_string())
                            .or_default() += 1;
                        async move { Ok::<_, Infallible>(handle(fake, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    (addr, counts)
}

fn respond(status: u16, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap())))
        .unwrap()
}

fn status(code: u16, reason: &str, message: &str) -> Response<Full<Bytes>> {
    respond(
        code,
        json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "code": code, "reason": reason, "message": message }),
    )
}

fn error(e: ClusterError) -> Response<Full<Bytes>> {
    match e {
        ClusterError::Unauthorized { .. } => status(401, "Unauthorized", "Unauthorized"),
        ClusterError::Forbidden { message, .. } => status(403, "Forbidden", &message),
        ClusterError::Invalid { object, causes, .. } => respond(
            422,
            json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422, "reason": "Invalid",
                    "message": format!("{object} is invalid"),
                    "details": { "causes": causes.iter().map(|c| json!({ "field": c.field, "message": c.message, "reason": "FieldValueInvalid" })).collect::<Vec<_>>() } }),
        ),
        ClusterError::Api {
            code,
            reason,
            message,
            ..
        } => status(code, &reason, &message),
        other => status(500, "InternalError", &other.to_string()),
    }
}

fn query(req: &Request<Incoming>, key: &str) -> Option<String> {
    req.uri().query().unwrap_or("").split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == key).then(|| {
            v.replace("%2C", ",")
                .replace("%3D", "=")
                .replace("%2F", "/")
        })
    })
}

fn discovery_core(catalog: &Catalog) -> Value {
    let resources: Vec<Value> = catalog
        .types()
        .iter()
        .filter(|t| t.group.is_empty())
        .map(|t| json!({ "name": t.plural, "singularName": "", "namespaced": t.namespaced, "kind": t.kind, "verbs": t.verbs }))
        .collect();
    json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": resources })
}

fn discovery_groups(catalog: &Catalog) -> Value {
    let mut groups: Vec<(String, String, Vec<Value>)> = Vec::new();
    for t in catalog.types().iter().filter(|t| !t.group.is_empty()) {
        let resource = json!({ "resource": t.plural, "responseKind": { "group": "", "version": "", "kind": t.kind },
            "scope": if t.namespaced { "Namespaced" } else { "Cluster" }, "verbs": t.verbs });
        match groups
            .iter_mut()
            .find(|(g, v, _)| *g == t.group && *v == t.version)
        {
            Some((_, _, list)) => list.push(resource),
            None => groups.push((t.group.clone(), t.version.clone(), vec![resource])),
        }
    }
    let items: Vec<Value> = groups
        .into_iter()
        .map(|(g, v, resources)| json!({ "metadata": { "name": g }, "versions": [{ "version": v, "resources": resources, "freshness": "Current" }] }))
        .collect();
    json!({ "kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items })
}

async fn handle(fake: FakeCluster, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    let api = if token == ADMIN_TOKEN {
        fake.clone()
    } else {
        fake.acting_as(&token)
    };
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let dry_run = query(&req, "dryRun").as_deref() == Some("All");
    let selector = query(&req, "labelSelector").unwrap_or_default();
    let merge_patch = req
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/merge-patch+json"));
    let body: Value = {
        let bytes = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    let catalog = fake.catalog();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["api", "v1"]) => return respond(200, discovery_core(&catalog)),
        ("GET", ["apis"]) => return respond(200, discovery_groups(&catalog)),
        (
            "POST",
            [
                "apis",
                "authorization.k8s.io",
                "v1",
                "selfsubjectaccessreviews",
            ],
        ) => {
            let attrs = &body["spec"]["resourceAttributes"];
            let check = AccessCheck {
                verb: attrs["verb"].as_str().unwrap_or_default().to_owned(),
                group: attrs["group"].as_str().unwrap_or_default().to_owned(),
                resource: attrs["resource"].as_str().unwrap_or_default().to_owned(),
                namespace: attrs["namespace"].as_str().map(str::to_owned),
            };
            return match api.review_access(&check).await {
                Ok(allowed) => respond(
                    201,
                    json!({ "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                    "metadata": {}, "spec": body["spec"], "status": { "allowed": allowed } }),
                ),
                Err(e) => error(e),
            };
        }
        ("POST", ["apis", "authentication.k8s.io", "v1", "tokenreviews"]) => {
            return match api
                .review_token(body["spec"]["token"].as_str().unwrap_or_default())
                .await
            {
                Ok(s) => respond(
                    201,
                    json!({ "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "metadata": {},
                    "spec": body["spec"], "status": { "authenticated": s.authenticated, "user": { "username": s.username }, "error": s.error } }),
                ),
                Err(e) => error(e),
            };
        }
        (
            "POST",
            [
                "api",
                "v1",
                "namespaces",
                ns,
                "serviceaccounts",
                sa,
                "token",
            ],
        ) => {
            let seconds = body["spec"]["expirationSeconds"].as_i64().unwrap_or(3600);
            let bound_ref = &body["spec"]["boundObjectRef"];
            let bound = bound_ref.is_object().then(|| BoundObject {
                kind: bound_ref["kind"].as_str().unwrap_or_default().to_owned(),
                api_version: bound_ref["apiVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                name: bound_ref["name"].as_str().unwrap_or_default().to_owned(),
                uid: bound_ref["uid"].as_str().unwrap_or_default().to_owned(),
            });
            return match api.request_token(ns, sa, seconds, bound.as_ref()).await {
                Ok(t) => respond(
                    201,
                    json!({ "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                    "metadata": { "name": sa, "namespace": ns },
                    "spec": { "expirationSeconds": seconds, "audiences": ["https://kubernetes.default.svc"] },
                    "status": { "token": t.token, "expirationTimestamp": "2030-01-01T00:00:00Z" } }),
                ),
                Err(e) => error(e),
            };
        }
        _ => {}
    }
    let (group, version, rest) = match segments.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return status(404, "NotFound", "no such path"),
    };
    let (namespace, plural, name) = match rest {
        ["namespaces", ns, plural, tail @ ..] => (Some(*ns), *plural, tail.first().copied()),
        [plural, tail @ ..] => (None, *plural, tail.first().copied()),
        [] => return status(404, "NotFound", "no such path"),
    };
    let Some(resource) = catalog
        .types()
        .iter()
        .find(|t| t.group == group && t.version == version && t.plural == plural)
        .cloned()
    else {
        return status(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({plural})"),
        );
    };
    match (method.as_str(), name) {
        ("GET", None) => match api.list(&resource, &selector).await {
            Ok(items) => respond(
                200,
                json!({ "kind": format!("{}List", resource.kind), "apiVersion": resource.api_version(), "metadata": {}, "items": items }),
            ),
            Err(e) => error(e),
        },
        ("GET", Some(name)) => match api.get(&resource, namespace, name).await {
            Ok(Some(object)) => respond(200, object),
            Ok(None) => status(404, "NotFound", &format!("{plural} \"{name}\" not found")),
            Err(e) => error(e),
        },
        ("POST", None) => match api.create(&resource, namespace, &body).await {
            Ok(object) => respond(201, object),
            Err(e) => error(e),
        },
        ("PATCH", Some(name)) if merge_patch => {
            match api.merge_patch(&resource, namespace, name, &body).await {
                Ok(object) => respond(200, object),
                Err(e) => error(e),
            }
        }
        ("PATCH", Some(name)) => {
            let object = DesiredObject {
                layer: Layer::Namespace,
                api_version: Box::leak(resource.api_version().into_boxed_str()),
                kind: Box::leak(resource.kind.clone().into_boxed_str()),
                namespace: namespace.map(str::to_owned),
                name: name.to_owned(),
                body,
            };
            match api.apply(&resource, &object, dry_run).await {
                Ok(object) => respond(200, object),
                Err(e) => error(e),
            }
        }
        ("DELETE", Some(name)) => {
            let uid = body["preconditions"]["uid"].as_str();
            match api.delete(&resource, namespace, name, uid, dry_run).await {
                Ok(Deletion::Started) => respond(
                    200,
                    json!({ "kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200 }),
                ),
                Ok(Deletion::AlreadyGone) => status(404, "NotFound", "not found"),
                Ok(Deletion::Replaced) => {
                    status(409, "Conflict", "Precondition failed: UID in precondition")
                }
                Err(e) => error(e),
            }
        }
        _ => status(405, "MethodNotAllowed", "method not allowed"),
    }
}

pub fn write_kubeconfig(dir: &Path, addr: SocketAddr) -> std::path::PathBuf {
    let path = dir.join("admin.kubeconfig");
    fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: admin@fake\n  context:\n    cluster: fake\n    user: admin\ncurrent-context: admin@fake\nusers:\n- name: admin\n  user:\n    token: {ADMIN_TOKEN}\n"
        ),
    )
    .unwrap();
    path
}

pub struct Setup {
    pub fake: FakeCluster,
    pub http: HttpCounts,
    pub repo: tempfile::TempDir,
    pub kubeconfig: std::path::PathBuf,
}

pub fn setup() -> Setup {
    let fake = FakeCluster::new();
    let (addr, http) = serve(fake.clone());
    let repo = tempfile::tempdir().unwrap();
    // A platform repository on the built-in defaults.
    fs::write(repo.path().join("tenantry.yaml"), "").unwrap();
    let kubeconfig = write_kubeconfig(repo.path(), addr);
    Setup {
        fake,
        http,
        repo,
        kubeconfig,
    }
}

impl Setup {
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tenantry"))
            .args(args)
            .arg("--repo")
            .arg(self.repo.path())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env_remove("TENANTRY_REPO")
            .env_remove("KUBECONFIG")
            .output()
            .expect("tenantry runs")
    }
}
