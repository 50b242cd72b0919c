//! `tenantry policy vap` as a platform team runs it: YAML for `kubectl apply`, the same
//! `tenantry.yaml` as the webhook, and the list of what stays with the webhook.

use std::process::{Command, Output};

use serde_json::Value;

mod common;

fn tenantry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(args)
        .env_remove("TENANTRY_CONFIG")
        .output()
        .expect("running tenantry")
}

fn documents(o: &Output) -> Vec<Value> {
    let text = String::from_utf8(o.stdout.clone()).expect("UTF-8");
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{e}\n{}", common::text(o)))
}

#[test]
fn prints_policies_and_bindings_for_the_platforms_tenant_label() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tenantry.yaml");
    std::fs::write(
        &config,
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\nlabelPrefix: example.org\n\
         policies:\n  noNodePort:\n    enabled: false\n",
    )
    .unwrap();
    let out = tenantry(&["policy", "vap", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::text(&out));
    let docs = documents(&out);
    let names: Vec<&str> = docs
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"tenantry-pod-security"), "{names:?}");
    assert!(
        !names.contains(&"tenantry-no-nodeport"),
        "switched off: {names:?}"
    );
    for binding in docs
        .iter()
        .filter(|d| d["kind"] == "ValidatingAdmissionPolicyBinding")
    {
        assert_eq!(
            binding["spec"]["validationActions"],
            serde_json::json!(["Deny"])
        );
        assert_eq!(
            binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]["key"],
            "example.org/tenant"
        );
    }
}

#[test]
fn warn_binds_warn_and_audit() {
    let out = tenantry(&["policy", "vap", "--warn"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let docs = documents(&out);
    assert!(
        docs.iter()
            .filter(|d| d["kind"] == "ValidatingAdmissionPolicyBinding")
            .all(|b| b["spec"]["validationActions"] == serde_json::json!(["Warn", "Audit"]))
    );
}

#[test]
fn list_unsupported_names_what_stays_with_the_webhook_and_why() {
    let out = tenantry(&["policy", "vap", "--list-unsupported"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Compiled to ValidatingAdmissionPolicy:"),
        "{text}"
    );
    assert!(text.contains("runAsNonRoot"), "{text}");
    assert!(
        text.contains("allowed-registries") && text.contains("per tenant"),
        "{text}"
    );
}

#[test]
fn an_invalid_config_names_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tenantry.yaml");
    std::fs::write(
        &config,
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\npolicies:\n  noNodePorts: {}\n",
    )
    .unwrap();
    let out = tenantry(&["policy", "vap", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tenantry.yaml") && err.contains("noNodePorts"),
        "{err}"
    );
}
