//! Every AdmissionReview the v1.36 API server sent in the capture gets Tenantry's answer,
//! through the real router (in process, no sockets).
//!
//! The fixture namespace is seeded as tenant `acme`'s, labelled the way Tenantry renders a
//! tenant namespace (enforce restricted, audit and warn restricted). Two fixtures carry
//! `tenantry.io/webhook-deny` / `tenantry.io/webhook-warn` labels: those made the capture
//! tool's own webhook deny and warn; Tenantry has no such policy and no opinion on ConfigMaps,
//! so it allows both without warnings.

mod common;

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use common::*;
use tenantry_admission::{AppState, router};

/// POST a body to `/validate`; returns the status and the body as text.
async fn post(state: &AppState, body: Vec<u8>) -> (StatusCode, String) {
    let request = Request::post("/validate")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn get(state: &AppState, path: &str) -> (StatusCode, String) {
    let response = router(state.clone())
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// POST a review and check the envelope: HTTP 200, `admission.k8s.io/v1` AdmissionReview,
/// the request's uid echoed. Returns `response`.
async fn review(state: &AppState, review: &Value) -> Value {
    let (status, text) = post(state, serde_json::to_vec(review).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("response is JSON");
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    let response = answer["response"].clone();
    assert_eq!(response["uid"], review["request"]["uid"], "uid is echoed");
    response
}

const PSS_RESTRICTED: [&str; 4] = [
    "allowPrivilegeEscalation",
    "capabilities_restricted",
    "runAsNonRoot",
    "seccompProfile_restricted",
];
const REQUESTS_LIMITS: [&str; 3] = ["cpu-request", "memory-request", "memory-limit"];

/// Assert a denial: 403 Forbidden, and the message names `summary` and every check.
fn assert_denied(name: &str, response: &Value, summary: &str, checks: &[&str]) {
    assert_eq!(response["allowed"], false, "{name}: {response:#}");
    assert_eq!(response["status"]["code"], 403, "{name}");
    assert_eq!(response["status"]["reason"], "Forbidden", "{name}");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.starts_with(summary), "{name}: {message}");
    assert!(message.len() <= 2048, "{name}: message is bounded");
    for check in checks {
        assert!(
            message.contains(&format!("[{check}]")),
            "{name}: no {check} in {message}"
        );
    }
}

fn assert_allowed_quietly(name: &str, response: &Value) {
    assert_eq!(
        response,
        &json!({"uid": response["uid"].clone(), "allowed": true}),
        "{name}: allowed, no status, no warnings"
    );
}

#[tokio::test]
async fn every_recorded_review_gets_tenantrys_answer() {
    let state = state("restricted");
    let pod_checks: Vec<&str> = PSS_RESTRICTED
        .iter()
        .chain(&REQUESTS_LIMITS)
        .copied()
        .collect();
    let policies = "violates Tenantry policies pod-security, require-requests-limits";
    let mut seen = Vec::new();
    for name in fixture_names() {
        let fixture = fixture_json(&name);
        let response = review(&state, &fixture).await;
        match name.as_str() {
            // ConfigMaps are not judged; the capture tool's label-driven deny/warn is not a
            // Tenantry policy.
            "configmap-create-denied.json"
            | "configmap-create-warned.json"
            | "configmap-delete.json"
            // An ExternalSecret reading the tenant's own namespaced SecretStore.
            | "externalsecret-create.json"
            // DELETE of an object Tenantry does not manage (here by the namespace controller).
            | "pod-delete-by-namespace-controller.json"
            // Namespace writes by platform-admin (system:masters, a platform identity); the
            // namespace is not `managed-by: tenantry`, so deleting it is not guarded either.
            | "namespace-create.json"
            | "namespace-update-labels.json"
            | "namespace-delete.json" => assert_allowed_quietly(&name, &response),
            "deployment-create.json" | "deployment-update-image.json" => assert_denied(
                &name,
                &response,
                &format!("Deployment {FIXTURE_NAMESPACE}/api {policies} (7 findings)"),
                &pod_checks,
            ),
            "pod-create.json" => assert_denied(
                &name,
                &response,
                &format!("Pod {FIXTURE_NAMESPACE}/web {policies}"),
                &pod_checks,
            ),
            "pod-create-dryrun.json" => assert_denied(
                &name,
                &response,
                &format!("Pod {FIXTURE_NAMESPACE}/web-dry {policies}"),
                &pod_checks,
            ),
            // The ReplicaSet controller's pods are judged like anyone's.
            "pod-create-by-replicaset-controller.json" => assert_denied(
                &name,
                &response,
                &format!("Pod {FIXTURE_NAMESPACE}/api-68bc85f5b-fl9b5 {policies}"),
                &pod_checks,
            ),
            // `kubectl debug` adding a container is judged on the whole pod, the new
            // ephemeral container included.
            "pod-ephemeralcontainers-update.json" => {
                assert_denied(&name, &response, &format!("Pod {FIXTURE_NAMESPACE}/web"), &PSS_RESTRICTED);
                let message = response["status"]["message"].as_str().unwrap();
                assert!(message.contains("spec.ephemeralContainers[0].securityContext"), "{message}");
            }
            other => panic!("fixture {other} has no expected answer; add one"),
        }
        seen.push(name);
    }
    assert_eq!(seen.len(), 14);
}

#[tokio::test]
async fn dry_run_gets_the_verdict_of_the_real_request() {
    let state = state("restricted");
    let real = review(&state, &fixture_json("pod-create.json")).await;
    let dry = review(&state, &fixture_json("pod-create-dryrun.json")).await;
    assert_eq!(real["allowed"], dry["allowed"]);
    let strip = |v: &Value| {
        v["status"]["message"]
            .as_str()
            .unwrap()
            .replace("web-dry", "web")
    };
    assert_eq!(strip(&real), strip(&dry));
}

#[tokio::test]
async fn baseline_tenant_is_warned_about_restricted_and_denied_only_by_enforced_checks() {
    let state = state("baseline");
    let response = review(&state, &fixture_json("pod-create.json")).await;
    // Baseline passes; the platform's resource policy still denies.
    assert_denied(
        "pod-create@baseline",
        &response,
        &format!(
            "Pod {FIXTURE_NAMESPACE}/web violates Tenantry policy require-requests-limits (3 findings)"
        ),
        &REQUESTS_LIMITS,
    );
    let message = response["status"]["message"].as_str().unwrap();
    for check in PSS_RESTRICTED {
        assert!(
            !message.contains(check),
            "{check} must only warn: {message}"
        );
    }
    // The namespace audits and warns at restricted: each restricted finding is a warning.
    let warnings: Vec<&str> = response["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    for check in PSS_RESTRICTED {
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with(&format!("tenantry [{check}]"))),
            "no warning for {check}: {warnings:?}"
        );
    }
    assert!(warnings.iter().all(|w| w.len() <= 256), "{warnings:?}");
}

#[tokio::test]
async fn platform_namespaces_are_never_judged() {
    let state = state("restricted");
    for namespace in [
        "monitoring",
        "kube-system",
        "flux-system",
        "tenantry-system",
    ] {
        let mut fixture = fixture_json("pod-create.json");
        fixture["request"]["namespace"] = json!(namespace);
        fixture["request"]["object"]["metadata"]["namespace"] = json!(namespace);
        let response = review(&state, &fixture).await;
        assert_allowed_quietly(namespace, &response);
    }
}

#[tokio::test]
async fn unknown_namespaces_are_judged_with_platform_defaults() {
    // Not in the cache (created an instant ago, or no cluster access): the platform default
    // (restricted) applies, failing closed.
    let state = state("restricted");
    let mut fixture = fixture_json("pod-create.json");
    fixture["request"]["namespace"] = json!("shop");
    fixture["request"]["object"]["metadata"]["namespace"] = json!("shop");
    let response = review(&state, &fixture).await;
    assert_denied(
        "unknown namespace",
        &response,
        "Pod shop/web violates",
        &PSS_RESTRICTED,
    );
}

/// The fixture's namespace label update, as a tenant's ServiceAccount lowering its own Pod
/// Security level.
fn tenant_relabels_namespace() -> Value {
    let mut fixture = fixture_json("namespace-update-labels.json");
    let request = &mut fixture["request"];
    request["userInfo"] = json!({
        "username": format!("system:serviceaccount:{FIXTURE_NAMESPACE}:{TENANT}"),
        "groups": ["system:serviceaccounts", "system:authenticated"],
    });
    for key in ["oldObject", "object"] {
        request[key]["metadata"]["labels"]["tenantry.dev/tenant"] = json!(TENANT);
        request[key]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] =
            json!("restricted");
    }
    request["object"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] =
        json!("privileged");
    fixture
}

#[tokio::test]
async fn a_tenant_cannot_change_its_namespace_pod_security_label() {
    let state = state("restricted");
    let response = review(&state, &tenant_relabels_namespace()).await;
    assert_denied(
        "tenant relabels namespace",
        &response,
        &format!("Namespace {FIXTURE_NAMESPACE} violates Tenantry policy protect-platform-objects"),
        &["namespace-labels"],
    );
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("metadata.labels[pod-security.kubernetes.io/enforce]"),
        "{message}"
    );
}

#[tokio::test]
async fn a_tenant_cannot_delete_the_quota_tenantry_manages() {
    let state = state("restricted");
    let mut fixture = fixture_json("configmap-delete.json");
    let request = &mut fixture["request"];
    request["kind"] = json!({"group": "", "version": "v1", "kind": "ResourceQuota"});
    request["resource"] = json!({"group": "", "version": "v1", "resource": "resourcequotas"});
    request["name"] = json!("tenant-quota");
    request["userInfo"] =
        json!({"username": format!("system:serviceaccount:{FIXTURE_NAMESPACE}:{TENANT}")});
    request["oldObject"] = json!({
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "tenant-quota", "namespace": FIXTURE_NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "tenantry", "tenantry.dev/tenant": TENANT}},
        "spec": {"hard": {"pods": "50"}},
    });
    let response = review(&state, &fixture).await;
    assert_denied(
        "delete managed quota",
        &response,
        // The check ID is what matters to the user; the policy name in the summary comes from
        // the engine (on DELETE it currently reports `pod-security` for this check).
        &format!("ResourceQuota {FIXTURE_NAMESPACE}/tenant-quota violates Tenantry policy"),
        &["managed-object"],
    );
}

#[tokio::test]
async fn malformed_reviews_get_400_with_a_reason() {
    let state = state("restricted");
    let good = fixture_bytes("pod-create.json");
    let mut no_uid = fixture_json("pod-create.json");
    no_uid["request"]["uid"] = json!("");
    let mut bad_operation = fixture_json("pod-create.json");
    bad_operation["request"]["operation"] = json!("PATCH");
    let mut v1beta1 = fixture_json("pod-create.json");
    v1beta1["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (good[..good.len() / 2].to_vec(), "malformed AdmissionReview"),
        (b"not json".to_vec(), "malformed AdmissionReview"),
        (Vec::new(), "malformed AdmissionReview"),
        (
            serde_json::to_vec(&no_uid).unwrap(),
            "request.uid is required",
        ),
        (
            serde_json::to_vec(&bad_operation).unwrap(),
            "at request.operation",
        ),
        (
            serde_json::to_vec(&v1beta1).unwrap(),
            "admission.k8s.io/v1beta1",
        ),
    ];
    for (body, expected) in cases {
        let (status, text) = post(&state, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert!(text.contains(expected), "expected {expected:?} in {text:?}");
    }
    let (status, _) = post(
        &state,
        vec![b' '; tenantry_admission::server::MAX_BODY_BYTES + 1],
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = get(&state, "/validate").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let cache = tenantry_admission::NamespaceCache::new(&context());
    let state = AppState::new(cache.clone(), engine());
    assert_eq!(get(&state, "/healthz").await.0, StatusCode::OK);
    let (status, text) = get(&state, "/readyz").await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready before the first list: {text}"
    );
    cache.upsert(FIXTURE_NAMESPACE, tenant_namespace_labels("restricted"));
    cache.finish_relist();
    assert_eq!(get(&state, "/readyz").await.0, StatusCode::OK);

    review(&state, &fixture_json("pod-create.json")).await;
    review(&state, &fixture_json("configmap-delete.json")).await;
    post(&state, b"{".to_vec()).await;
    let (status, metrics) = get(&state, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        r#"tenantry_webhook_requests_total{operation="CREATE",allowed="false"} 1"#,
        r#"tenantry_webhook_requests_total{operation="DELETE",allowed="true"} 1"#,
        r#"tenantry_webhook_denials_total{check="runAsNonRoot"} 1"#,
        r#"tenantry_webhook_denials_total{check="memory-limit"} 1"#,
        "tenantry_webhook_request_duration_seconds_count 2",
        r#"tenantry_webhook_bad_requests_total{reason="malformed"} 1"#,
        "tenantry_webhook_cached_namespaces 1",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
}

#[tokio::test]
async fn a_hardened_deployment_is_allowed_without_warnings() {
    let state = state("restricted");
    let response = review(&state, &hardened_deployment_review()).await;
    assert_allowed_quietly("hardened deployment", &response);
}
