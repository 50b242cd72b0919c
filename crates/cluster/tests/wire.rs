//! The kube-rs translation ([`KubeCluster`]) against real API-server traffic.
//!
//! Each test serves responses recorded from a Kubernetes v1.36 API server
//! (`testdata/k8s-wire/`) to a real `kube::Client` through an in-process tower
//! service, then checks two things: the request the client sent is the request the real
//! server accepted (method, path, query, content type, body), and the response is turned
//! into the answer or the error a platform engineer needs.

use std::{
    convert::Infallible,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tenantry_cluster::{
    AccessCheck, AccessDecision, BoundObject, Catalog, ClusterApi, ClusterError, Deletion,
    KubeCluster, ResourceType, SubjectAccess,
    credential::{self, Revoke},
    ops::{self, Action, ApplyOptions, Silent, Waits},
};
use tenantry_core::{
    DesiredObject, Layer, Rendered,
    plan::{Change, ObjectKey, ObjectPlan, TenantPlan},
};

fn fixture_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/k8s-wire");
    assert!(
        dir.join("README.md").is_file(),
        "the recorded API-server fixtures are missing: expected them at {} (testdata/k8s-wire in the repository)",
        dir.display()
    );
    dir
}

/// One recorded request/response pair.
#[derive(Clone, Debug)]
struct Exchange {
    name: String,
    request: Value,
    status: u16,
    body: Value,
}

fn fixture(name: &str) -> Exchange {
    let path = fixture_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {} is missing or unreadable: {e}", path.display()));
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Exchange {
        name: name.to_owned(),
        request: doc["request"].clone(),
        status: u16::try_from(doc["response"]["status"].as_u64().unwrap_or(0)).unwrap_or(500),
        body: doc["response"]["body"].clone(),
    }
}

/// What the client sent.
#[derive(Clone, Debug)]
struct Sent {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    content_type: Option<String>,
    accept: Option<String>,
    body: Bytes,
}

impl Sent {
    fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

fn decode(text: &str) -> String {
    let bytes = text.replace('+', " ");
    let mut out = Vec::new();
    let b = bytes.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&bytes[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A kube client whose server replays `exchanges`, each once, matched by method and path
/// in order. Unmatched requests get a 404 Status naming them, so a wrong path fails loudly.
fn replay(exchanges: Vec<Exchange>) -> (KubeCluster, Arc<Mutex<Vec<Sent>>>) {
    let queue = Arc::new(Mutex::new(exchanges));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&sent);
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let queue = Arc::clone(&queue);
        let log = Arc::clone(&log);
        async move {
            let (parts, body) = request.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let header = |name: &str| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let record = Sent {
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                query: parts
                    .uri
                    .query()
                    .unwrap_or("")
                    .split('&')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap_or((p, ""));
                        (decode(k), decode(v))
                    })
                    .collect(),
                content_type: header("content-type"),
                accept: header("accept"),
                body,
            };
            let found = {
                let mut q = queue.lock().unwrap();
                let at = q.iter().position(|e| {
                    e.request["method"] == record.method.as_str()
                        && e.request["path"] == record.path.as_str()
                });
                at.map(|i| q.remove(i))
            };
            let (status, body) = match found {
                Some(e) => (e.status, e.body),
                None => (
                    404,
                    json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound",
                            "message": format!("no fixture for {} {}", record.method, record.path) }),
                ),
            };
            log.lock().unwrap().push(record);
            let response = http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(
                    serde_json::to_vec(&body).unwrap_or_default(),
                )))
                .unwrap_or_default();
            Ok::<_, Infallible>(response)
        }
    });
    (
        KubeCluster::new(kube::Client::new(service, "default")),
        sent,
    )
}

fn sent(log: &Arc<Mutex<Vec<Sent>>>) -> Vec<Sent> {
    log.lock().unwrap().clone()
}

fn core(kind: &str, plural: &str, namespaced: bool) -> ResourceType {
    ResourceType {
        group: String::new(),
        version: "v1".to_owned(),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
        namespaced,
        verbs: ["create", "delete", "get", "list", "patch"]
            .map(str::to_owned)
            .to_vec(),
    }
}

/// The object a fixture applied, as a rendered object.
fn desired_from(exchange: &Exchange, layer: Layer, kind: &'static str) -> DesiredObject {
    let text = exchange.request["body"]
        .as_str()
        .expect("apply bodies are YAML text");
    let body: Value = serde_saphyr::from_str(text).expect("the recorded YAML parses");
    DesiredObject {
        layer,
        api_version: "v1",
        kind,
        namespace: body["metadata"]["namespace"].as_str().map(str::to_owned),
        name: body["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body,
    }
}

/// Assert the client sent what the real server received for `exchange`.
fn assert_same_request(sent: &Sent, exchange: &Exchange) {
    assert_eq!(sent.method, exchange.request["method"], "{}", exchange.name);
    assert_eq!(sent.path, exchange.request["path"], "{}", exchange.name);
    for (key, value) in exchange.request["query"].as_object().into_iter().flatten() {
        assert_eq!(
            sent.query(key),
            value.as_str(),
            "{}: query {key}",
            exchange.name
        );
    }
    if let Some(ct) = exchange.request["headers"]["content-type"].as_str() {
        assert_eq!(sent.content_type.as_deref(), Some(ct), "{}", exchange.name);
    }
}

#[tokio::test]
async fn server_side_apply_is_sent_as_tenantry_with_force_and_a_201_is_returned() {
    let create = fixture("ssa-namespace-create-201");
    let (api, log) = replay(vec![create.clone()]);
    let object = desired_from(&create, Layer::Namespace, "Namespace");
    let live = api
        .apply(&core("Namespace", "namespaces", false), &object, false)
        .await
        .unwrap();
    let sent = sent(&log);
    assert_same_request(&sent[0], &create);
    assert_eq!(sent[0].query("dryRun"), None);
    // kube-rs sends the apply patch as JSON, which is YAML: the server parses both alike.
    let body: Value = serde_saphyr::from_slice(&sent[0].body).unwrap();
    assert_eq!(body, object.body);
    assert_eq!(live["metadata"]["resourceVersion"], "1088");
    assert_eq!(live["apiVersion"], "v1");
    assert_eq!(live["kind"], "Namespace");
}

fn single_object_plan(
    object: &DesiredObject,
    change: Change,
    live_rv: Option<&str>,
) -> (Rendered, TenantPlan) {
    let rendered = Rendered {
        tenant: "acme".to_owned(),
        objects: vec![object.clone()],
        artifacts: Vec::new(),
    };
    let plan = TenantPlan {
        tenant: "acme".to_owned(),
        objects: vec![ObjectPlan {
            key: ObjectKey::of_desired(object),
            layer: object.layer,
            change,
            live_resource_version: live_rv.map(str::to_owned),
        }],
        prune: Vec::new(),
    };
    (rendered, plan)
}

#[tokio::test]
async fn an_identical_reapply_keeps_the_resource_version_and_reports_unchanged() {
    let reapply = fixture("ssa-namespace-reapply-200");
    let object = desired_from(&reapply, Layer::Namespace, "Namespace");
    // What the server returned is what Tenantry declared: planning alone says unchanged…
    assert_eq!(
        tenantry_core::plan::compare(&object.body, &reapply.body),
        Change::Unchanged
    );
    // …and when a plan was conservative, the server's same resourceVersion proves a no-op.
    let (api, log) = replay(vec![reapply.clone()]);
    let catalog = Catalog::new(vec![core("Namespace", "namespaces", false)]);
    let (rendered, plan) =
        single_object_plan(&object, Change::Update(vec!["x".to_owned()]), Some("1088"));
    let options = ApplyOptions {
        dry_run: false,
        skip_missing_crds: false,
        waits: Waits::default(),
    };
    // The namespace wait would GET the namespace; it is not part of this exchange.
    let outcome = ops::apply_tenant(&api, &catalog, &rendered, &plan, &options, &Silent).await;
    assert_eq!(outcome.layers[0].objects[0].action, Action::Unchanged);
    assert_same_request(&sent(&log)[0], &reapply);
}

#[tokio::test]
async fn a_dry_run_apply_asks_the_server_not_to_store() {
    let dry = fixture("ssa-namespace-dryrun-200");
    let (api, log) = replay(vec![dry.clone()]);
    let object = desired_from(&dry, Layer::Namespace, "Namespace");
    let live = api
        .apply(&core("Namespace", "namespaces", false), &object, true)
        .await
        .unwrap();
    assert_same_request(&sent(&log)[0], &dry);
    assert_eq!(sent(&log)[0].query("dryRun"), Some("All"));
    assert_eq!(live["metadata"]["labels"]["tenantry.io/extra"], "yes");
}

#[tokio::test]
async fn a_409_conflict_names_the_contested_field() {
    let conflict = fixture("ssa-namespace-conflict-409");
    let (api, _) = replay(vec![conflict.clone()]);
    let object = desired_from(&conflict, Layer::Namespace, "Namespace");
    let error = api
        .apply(&core("Namespace", "namespaces", false), &object, false)
        .await
        .unwrap_err();
    match &error {
        ClusterError::Conflict { object, fields, .. } => {
            assert_eq!(object, "Namespace tenantry-fx-ssa");
            assert_eq!(fields, &[".metadata.labels.tenantry.io/tier"]);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(
        error.to_string().contains("conflict with \"tenantry\""),
        "{error}"
    );
}

#[tokio::test]
async fn a_422_names_the_object_and_every_invalid_field() {
    let invalid = fixture("ssa-configmap-invalid-422");
    let (api, log) = replay(vec![invalid.clone()]);
    let object = desired_from(&invalid, Layer::Secrets, "ConfigMap");
    let error = api
        .apply(&core("ConfigMap", "configmaps", true), &object, false)
        .await
        .unwrap_err();
    assert_same_request(&sent(&log)[0], &invalid);
    let text = error.to_string();
    assert!(
        text.starts_with("ConfigMap tenantry-fx-ssa/tenant-settings is invalid:"),
        "{text}"
    );
    assert!(
        text.contains("\n  metadata.labels: Invalid value: \"not a valid label value!\""),
        "{text}"
    );
    assert!(
        text.contains("\n  data[bad/key]: Invalid value: \"bad/key\""),
        "{text}"
    );
    assert_eq!(error.code(), Some(422));
}

#[tokio::test]
async fn a_token_is_requested_for_the_api_servers_own_audience_bound_to_the_service_account() {
    let request = fixture("tokenrequest-serviceaccount-201");
    let (api, log) = replay(vec![request.clone()]);
    let token = api
        .request_token("tenantry-fx-ssa", "tenant-bot", 3600, None)
        .await
        .unwrap();
    let sent = sent(&log);
    assert_same_request(&sent[0], &request);
    let body = sent[0].json();
    assert_eq!(body["kind"], "TokenRequest");
    assert_eq!(body["spec"]["expirationSeconds"], 3600);
    // No audience list: the server substitutes its own (the recorded request spelled it out).
    assert_eq!(body["spec"].get("audiences"), None);
    assert_eq!(body["spec"].get("boundObjectRef"), None);
    assert!(token.token.starts_with("eyJ"));
    assert_eq!(token.expires_at.as_deref(), Some("2026-11-23T00:35:32Z"));
    assert_eq!(token.expiration_seconds, Some(3600));
}

fn pods_in(namespace: &str, verb: &str) -> AccessCheck {
    AccessCheck {
        verb: verb.to_owned(),
        group: String::new(),
        resource: "pods".to_owned(),
        namespace: Some(namespace.to_owned()),
    }
}

#[tokio::test]
async fn self_subject_access_reviews_answer_allowed_and_denied() {
    let allowed = fixture("selfsubjectaccessreview-sa-allowed-201");
    let denied = fixture("selfsubjectaccessreview-sa-denied-201");
    let (api, log) = replay(vec![allowed.clone(), denied.clone()]);
    assert!(
        api.review_access(&pods_in("tenantry-fx-ssa", "list"))
            .await
            .unwrap()
    );
    let secrets = AccessCheck {
        resource: "secrets".to_owned(),
        ..pods_in("kube-system", "list")
    };
    assert!(!api.review_access(&secrets).await.unwrap());
    let sent = sent(&log);
    assert_same_request(&sent[0], &allowed);
    assert_eq!(
        sent[0].json()["spec"]["resourceAttributes"],
        allowed.request["body"]["spec"]["resourceAttributes"]
    );
    assert_eq!(
        sent[1].json()["spec"]["resourceAttributes"],
        denied.request["body"]["spec"]["resourceAttributes"]
    );
}

/// The recorded question about the ServiceAccount `tenant-bot` of `tenantry-fx-audit`.
fn about_tenant_bot(
    verb: &str,
    resource: &str,
    subresource: &str,
    ns: Option<&str>,
) -> SubjectAccess {
    SubjectAccess {
        user: "system:serviceaccount:tenantry-fx-audit:tenant-bot".to_owned(),
        groups: [
            "system:serviceaccounts",
            "system:serviceaccounts:tenantry-fx-audit",
            "system:authenticated",
        ]
        .map(str::to_owned)
        .to_vec(),
        verb: verb.to_owned(),
        group: String::new(),
        resource: resource.to_owned(),
        subresource: subresource.to_owned(),
        namespace: ns.map(str::to_owned),
    }
}

#[tokio::test]
async fn subject_access_reviews_ask_about_the_identity_and_keep_rbacs_reason() {
    let allowed = fixture("subjectaccessreview-sa-secrets-cluster-allowed-201");
    let denied = fixture("subjectaccessreview-sa-pods-exec-denied-201");
    let (api, log) = replay(vec![allowed.clone(), denied.clone()]);
    let answer = api
        .review_subject_access(&about_tenant_bot("list", "secrets", "", None))
        .await
        .unwrap();
    assert!(answer.allowed);
    assert!(
        answer
            .reason
            .contains("ClusterRoleBinding \"tenantry-fx-audit-secrets\""),
        "{}",
        answer.reason
    );
    let answer = api
        .review_subject_access(&about_tenant_bot(
            "create",
            "pods",
            "exec",
            Some("kube-system"),
        ))
        .await
        .unwrap();
    assert_eq!(
        answer,
        AccessDecision {
            allowed: false,
            reason: String::new()
        }
    );
    let sent = sent(&log);
    for (sent, exchange) in sent.iter().zip([&allowed, &denied]) {
        assert_same_request(sent, exchange);
        assert_eq!(sent.json()["spec"], exchange.request["body"]["spec"]);
    }
}

#[tokio::test]
async fn token_reviews_tell_valid_from_invalid_and_garbage() {
    let valid = fixture("tokenreview-valid-201");
    let invalid = fixture("tokenreview-invalid-201");
    let garbage = fixture("tokenreview-garbage-201");
    let (api, log) = replay(vec![valid.clone(), invalid.clone(), garbage.clone()]);
    let token = |e: &Exchange| {
        e.request["body"]["spec"]["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let status = api.review_token(&token(&valid)).await.unwrap();
    assert!(status.authenticated);
    assert_eq!(
        status.username.as_deref(),
        Some("system:serviceaccount:tenantry-fx-ssa:tenant-bot")
    );
    let status = api.review_token(&token(&invalid)).await.unwrap();
    assert!(!status.authenticated);
    assert!(status.error.unwrap().contains("invalid bearer token"));
    let status = api.review_token("not-a-jwt").await.unwrap();
    assert_eq!(
        (status.authenticated, status.error.as_deref()),
        (false, Some("invalid bearer token"))
    );
    let sent = sent(&log);
    assert_same_request(&sent[0], &valid);
    assert_eq!(sent[2].json()["spec"], garbage.request["body"]["spec"]);
}

#[tokio::test]
async fn a_401_says_the_credential_was_rejected() {
    let unauthorized = fixture("unauthorized-invalid-token-401");
    let (api, _) = replay(vec![unauthorized]);
    let error = api
        .list(&core("Namespace", "namespaces", false), "")
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClusterError::Unauthorized { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("the credential was rejected"),
        "{error}"
    );
}

#[tokio::test]
async fn a_403_keeps_the_servers_explanation() {
    let forbidden = fixture("forbidden-sa-list-nodes-403");
    let (api, log) = replay(vec![forbidden.clone()]);
    let error = api
        .list(&core("Node", "nodes", false), "")
        .await
        .unwrap_err();
    assert_same_request(&sent(&log)[0], &forbidden);
    match error {
        ClusterError::Forbidden { message, .. } => {
            assert!(
                message.contains("cannot list resource \"nodes\""),
                "{message}"
            )
        }
        other => panic!("expected forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn a_404_is_an_absent_object_not_an_error() {
    let (api, log) = replay(vec![
        fixture("get-missing-namespace-404"),
        fixture("get-missing-configmap-404"),
    ]);
    assert_eq!(
        api.get(
            &core("Namespace", "namespaces", false),
            None,
            "tenantry-fx-never-created"
        )
        .await
        .unwrap(),
        None
    );
    assert_eq!(
        api.get(
            &core("ConfigMap", "configmaps", true),
            Some("tenantry-fx-ssa"),
            "does-not-exist"
        )
        .await
        .unwrap(),
        None
    );
    assert_eq!(
        sent(&log)[1].path,
        "/api/v1/namespaces/tenantry-fx-ssa/configmaps/does-not-exist"
    );
}

#[tokio::test]
async fn deleting_a_namespace_starts_termination_and_waiting_ends_at_404() {
    let delete = fixture("delete-namespace-200-terminating");
    let gone = fixture("get-deleted-namespace-404");
    let (api, log) = replay(vec![delete.clone(), gone.clone()]);
    let namespaces = core("Namespace", "namespaces", false);
    let outcome = api
        .delete(
            &namespaces,
            None,
            "tenantry-fx-watch",
            Some("2463f7fa-569a-41ef-91ff-908e73ec315a"),
            false,
        )
        .await
        .unwrap();
    assert_eq!(outcome, Deletion::Started);
    let catalog = Catalog::new(vec![namespaces.clone()]);
    ops::wait_namespaces_gone(
        &api,
        &catalog,
        &["tenantry-fx-watch".to_owned()],
        &Waits::default(),
        &Silent,
    )
    .await
    .unwrap();
    let sent = sent(&log);
    assert_same_request(&sent[0], &delete);
    let options = sent[0].json();
    assert_eq!(
        options["preconditions"]["uid"],
        "2463f7fa-569a-41ef-91ff-908e73ec315a"
    );
    assert_eq!(options["propagationPolicy"], "Background");
    assert_same_request(&sent[1], &gone);
    // Deleting it again is not an error.
    let (api, _) = replay(vec![Exchange {
        request: json!({ "method": "DELETE", "path": "/api/v1/namespaces/tenantry-fx-watch" }),
        ..fixture("get-deleted-namespace-404")
    }]);
    assert_eq!(
        api.delete(&namespaces, None, "tenantry-fx-watch", None, false)
            .await
            .unwrap(),
        Deletion::AlreadyGone
    );
}

#[tokio::test]
async fn discovery_uses_aggregated_discovery_and_finds_crds_and_scannable_types() {
    let (api, log) = replay(vec![
        fixture("discovery-api-v1"),
        fixture("discovery-apis-aggregated-v2"),
    ]);
    let catalog = api.discover().await.unwrap();
    let sent = sent(&log);
    assert_eq!(sent.len(), 2, "two requests for the whole cluster");
    assert_eq!(sent[0].path, "/api/v1");
    assert_eq!(sent[1].path, "/apis");
    assert!(
        sent[1]
            .accept
            .as_deref()
            .unwrap_or_default()
            .contains("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
        "{:?}",
        sent[1].accept
    );
    for (api_version, kind) in [
        ("v1", "Namespace"),
        ("v1", "ServiceAccount"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("source.toolkit.fluxcd.io/v1", "OCIRepository"),
        ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
        ("argoproj.io/v1alpha1", "AppProject"),
        ("external-secrets.io/v1", "ExternalSecret"),
        ("cilium.io/v2", "CiliumNetworkPolicy"),
    ] {
        assert!(
            catalog.find(api_version, kind).is_some(),
            "{api_version} {kind}"
        );
    }
    let ns = catalog.find("v1", "Namespace").unwrap();
    assert!(!ns.namespaced && ns.plural == "namespaces");
    assert!(
        catalog
            .find("external-secrets.io/v1", "ExternalSecret")
            .unwrap()
            .namespaced
    );
    let scannable: Vec<String> = catalog
        .scannable()
        .iter()
        .map(|t| t.qualified_name())
        .collect();
    for expected in [
        "namespaces",
        "serviceaccounts",
        "rolebindings.rbac.authorization.k8s.io",
        "clusterrolebindings.rbac.authorization.k8s.io",
        "appprojects.argoproj.io",
        "kustomizations.kustomize.toolkit.fluxcd.io",
    ] {
        assert!(
            scannable.iter().any(|s| s == expected),
            "{expected} not scanned: {scannable:?}"
        );
    }
    assert!(!scannable.iter().any(|s| s == "events" || s == "bindings"));
    let unique: std::collections::BTreeSet<&String> = scannable.iter().collect();
    assert_eq!(
        unique.len(),
        scannable.len(),
        "each resource is scanned once"
    );
}

#[tokio::test]
async fn lists_page_through_continue_tokens_and_restart_when_one_expires() {
    let first = fixture("list-namespaces-paginated-200");
    let expired = fixture("list-namespaces-410-expired-continue");
    // The restarted list is answered with the first page minus its continue token, so the
    // test ends; the recorded 410 is what matters.
    let mut last = fixture("list-namespaces-paginated-200");
    last.body["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("continue");
    let (api, log) = replay(vec![first.clone(), expired, last]);
    let items = api
        .list(
            &core("Namespace", "namespaces", false),
            "tenantry.dev/tenant=acme",
        )
        .await
        .unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["kind"], "Namespace");
    assert_eq!(items[0]["apiVersion"], "v1");
    let sent = sent(&log);
    assert_eq!(sent.len(), 3);
    assert_eq!(
        sent[0].query("labelSelector"),
        Some("tenantry.dev/tenant=acme")
    );
    assert_eq!(sent[0].query("limit"), Some("500"));
    assert_eq!(
        sent[1].query("continue"),
        first.body["metadata"]["continue"].as_str(),
        "the second page asks with the server's continue token"
    );
    assert_eq!(
        sent[2].query("continue"),
        None,
        "an expired continue token restarts the list"
    );
}

const CREDENTIAL_NS: &str = "tenantry-fx-cred";

#[tokio::test]
async fn a_credential_handle_is_created_as_tenantry_exactly_as_the_server_accepted_it() {
    let create = fixture("credential-handle-create-201");
    let taken = fixture("credential-handle-create-409-exists");
    let (api, log) = replay(vec![create.clone(), taken.clone()]);
    // The handle Tenantry builds is the one the real server stored.
    let body = credential::credential_secret(
        "tenantry.dev/tenant",
        CREDENTIAL_NS,
        CREDENTIAL_NS,
        "bcdfghjklm",
        Some("alice (laptop)"),
    );
    assert_eq!(body, create.request["body"]);
    let secrets = core("Secret", "secrets", true);
    let live = api
        .create(&secrets, Some(CREDENTIAL_NS), &body)
        .await
        .unwrap();
    assert_eq!(live["metadata"]["uid"], create.body["metadata"]["uid"]);
    assert_eq!(live["kind"], "Secret");
    let sent = sent(&log);
    assert_same_request(&sent[0], &create);
    assert_eq!(sent[0].json(), create.request["body"]);
    // A name that is taken is refused, never taken over.
    let error = api
        .create(&secrets, Some(CREDENTIAL_NS), &taken.request["body"])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClusterError::Api { code: 409, reason, .. } if reason == "AlreadyExists"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_token_is_bound_to_its_handle_by_name_and_uid() {
    let request = fixture("tokenrequest-bound-secret-201");
    let (api, log) = replay(vec![request.clone()]);
    let bound = &request.request["body"]["spec"]["boundObjectRef"];
    let token = api
        .request_token(
            CREDENTIAL_NS,
            "tenant-bot",
            3600,
            Some(&BoundObject {
                kind: "Secret".to_owned(),
                api_version: "v1".to_owned(),
                name: bound["name"].as_str().unwrap().to_owned(),
                uid: bound["uid"].as_str().unwrap().to_owned(),
            }),
        )
        .await
        .unwrap();
    let sent = sent(&log);
    assert_same_request(&sent[0], &request);
    assert_eq!(sent[0].json()["spec"], request.request["body"]["spec"]);
    assert_eq!(
        request.body["spec"]["boundObjectRef"]["kind"], "Secret",
        "the server kept the binding"
    );
    assert!(token.token.starts_with("eyJ"));
    assert_eq!(
        token.expires_at.as_deref(),
        request.body["status"]["expirationTimestamp"].as_str()
    );
}

#[tokio::test]
async fn the_granted_expiry_is_merge_patched_onto_the_handle() {
    let patch = fixture("credential-handle-merge-patch-200");
    let (api, log) = replay(vec![patch.clone()]);
    let live = api
        .merge_patch(
            &core("Secret", "secrets", true),
            Some(CREDENTIAL_NS),
            "tenantry-credential-bcdfghjklm",
            &patch.request["body"],
        )
        .await
        .unwrap();
    let sent = sent(&log);
    assert_same_request(&sent[0], &patch);
    assert_eq!(sent[0].json(), patch.request["body"]);
    assert_eq!(
        live["metadata"]["annotations"]["tenantry.dev/credential-expires-at"],
        patch.request["body"]["metadata"]["annotations"]["tenantry.dev/credential-expires-at"]
    );
}

#[tokio::test]
async fn credentials_are_listed_by_label_and_one_is_revoked_by_deleting_its_handle() {
    let list = fixture("credential-handles-list-200");
    let delete = fixture("credential-handle-delete-200");
    let (api, log) = replay(vec![list.clone(), list.clone(), delete.clone()]);
    let listed = credential::list(&api, "tenantry.dev/tenant", CREDENTIAL_NS)
        .await
        .unwrap();
    let ids: Vec<(&str, Option<&str>)> = listed
        .iter()
        .map(|c| (c.id.as_str(), c.holder.as_deref()))
        .collect();
    assert_eq!(
        ids,
        [
            ("bcdfghjklm", Some("alice (laptop)")),
            ("cdfghjklmn", Some("ci runner"))
        ]
    );
    assert!(
        listed
            .iter()
            .all(|c| c.expires_at.is_some() && c.issued_at.is_some())
    );
    let revoked = credential::revoke(
        &api,
        "tenantry.dev/tenant",
        CREDENTIAL_NS,
        Revoke::Id("bcdfghjklm"),
    )
    .await
    .unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].outcome, "revoked");
    let sent = sent(&log);
    assert_same_request(&sent[0], &list);
    assert_same_request(&sent[2], &delete);
    assert_eq!(sent[2].json(), delete.request["body"]);
}

#[tokio::test]
async fn a_revoked_credentials_token_is_rejected_and_the_review_says_why() {
    // Recorded on the namespaced list; the list here is cluster-wide, the answer the same.
    let mut rejected = fixture("credential-token-revoked-401");
    rejected.request["path"] = json!("/api/v1/pods");
    let review = fixture("tokenreview-revoked-credential-201");
    let (api, _) = replay(vec![rejected, review.clone()]);
    let error = api.list(&core("Pod", "pods", true), "").await.unwrap_err();
    assert!(
        matches!(error, ClusterError::Unauthorized { .. }),
        "{error:?}"
    );
    let status = api
        .review_token(review.request["body"]["spec"]["token"].as_str().unwrap())
        .await
        .unwrap();
    assert!(!status.authenticated);
    assert!(
        status
            .error
            .unwrap_or_default()
            .contains("service account token has been invalidated")
    );
}

#[test]
fn fixtures_are_read_from_the_repository() {
    assert!(
        fixture_dir()
            .join("ssa-namespace-create-201.json")
            .is_file()
    );
}
