//! Shared set-up for the integration tests: the recorded AdmissionReviews and a webhook state
//! seeded the way the capture cluster was labelled.
#![allow(dead_code)]

pub mod tls;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde_json::Value;
use tenantry_admission::{AppState, EngineValidator, NamespaceCache, Validator};
use tenantry_api::Platform;
use tenantry_core::PlatformContext;

/// The namespace every fixture object lives in.
pub const FIXTURE_NAMESPACE: &str = "tenantry-fx-webhook";
/// The tenant the tests give it.
pub const TENANT: &str = "acme";

/// `testdata/k8s-wire/admission-review/` in the repository. Panics (fails the
/// test) when it is missing: a test that silently skips its fixtures proves nothing.
pub fn fixture_dir() -> PathBuf {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/k8s-wire/admission-review");
    assert!(
        dir.is_dir(),
        "fixture directory {} is missing: expected in testdata/k8s-wire",
        dir.display()
    );
    dir
}

/// Every fixture file name, sorted.
pub fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("read fixture dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 14,
        "expected the 14 recorded reviews, found {names:?}"
    );
    names
}

/// The raw bytes of one fixture.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = fixture_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One fixture as JSON, for tests that edit it.
pub fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture_bytes(name)).expect("fixture is JSON")
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Labels Tenantry renders on a tenant namespace at `level`.
pub fn tenant_namespace_labels(level: &str) -> BTreeMap<String, String> {
    labels(&[
        ("kubernetes.io/metadata.name", FIXTURE_NAMESPACE),
        ("tenantry-webhook", "on"),
        ("tenantry.dev/tenant", TENANT),
        ("pod-security.kubernetes.io/enforce", level),
        ("pod-security.kubernetes.io/enforce-version", "latest"),
        ("pod-security.kubernetes.io/audit", "restricted"),
        ("pod-security.kubernetes.io/audit-version", "latest"),
        ("pod-security.kubernetes.io/warn", "restricted"),
        ("pod-security.kubernetes.io/warn-version", "latest"),
    ])
}

pub fn context() -> PlatformContext {
    PlatformContext::new(Platform::default()).expect("default platform is valid")
}

/// A synced cache knowing the fixture namespace as tenant `acme`'s at `level`, plus a
/// platform namespace `monitoring` (no tenant label).
pub fn seeded_cache(level: &str) -> NamespaceCache {
    let cache = NamespaceCache::new(&context());
    cache.upsert(FIXTURE_NAMESPACE, tenant_namespace_labels(level));
    cache.upsert("monitoring", labels(&[("team", "platform")]));
    cache.mark_synced();
    cache
}

/// The production validator with the built-in platform policies.
pub fn engine() -> Arc<dyn Validator> {
    Arc::new(EngineValidator::new(&Platform::default()))
}

pub fn state(level: &str) -> AppState {
    AppState::new(seeded_cache(level), engine())
}

/// The recorded Deployment CREATE, hardened so that every default policy allows it: the
/// review a healthy cluster sends most often. Same size and shape as the recording.
pub fn hardened_deployment_review() -> Value {
    let mut review = fixture_json("deployment-create.json");
    let pod = &mut review["request"]["object"]["spec"]["template"]["spec"];
    pod["securityContext"] = serde_json::json!({
        "runAsNonRoot": true,
        "runAsUser": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    });
    let container = &mut pod["containers"][0];
    container["securityContext"] = serde_json::json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": true,
    });
    container["resources"] = serde_json::json!({
        "requests": {"cpu": "100m", "memory": "64Mi"},
        "limits": {"memory": "128Mi"},
    });
    review
}

/// A Pod CREATE in the fixture namespace with `n` containers, image `x`, no securityContext:
/// seven findings per container under the default policies at `restricted`.
pub fn many_container_review(n: usize) -> Value {
    let containers: Vec<Value> = (0..n)
        .map(|i| serde_json::json!({"name": format!("c{i}"), "image": "x"}))
        .collect();
    create_review(
        &format!("many-{n}"),
        "pods",
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "big"},
            "spec": {"containers": containers},
        }),
    )
}

/// A CREATE of `object` (whose `apiVersion`, `kind` and name it reads) in the fixture
/// namespace by the tenant-side user `alice`, as the API server sends it.
pub fn create_review(uid: &str, resource: &str, mut object: Value) -> Value {
    object["metadata"]["namespace"] = serde_json::json!(FIXTURE_NAMESPACE);
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": object["kind"]},
            "resource": {"group": group, "version": version, "resource": resource},
            "name": object["metadata"]["name"],
            "namespace": FIXTURE_NAMESPACE,
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": object,
        },
    })
}
