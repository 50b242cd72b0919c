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
        // Namespaced objects by their namespace's label, Namespaces by their own.
        let selector = &binding["spec"]["matchResources"];
        let selector = if selector["objectSelector"].is_null() {
            &selector["namespaceSelector"]
        } else {
            &selector["objectSelector"]
        };
        assert_eq!(
            selector["matchExpressions"][0]["key"], "example.org/tenant",
            "{binding}"
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

#[test]
fn tenants_get_their_own_resolved_registries_and_a_binding_each() {
    let repo = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = repo.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "tenantry.yaml",
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\nlabelPrefix: example.org\n\
         defaults:\n  registries: [registry.platform.example/base]\n",
    );
    let tenant = |name: &str, spec: &str| {
        format!(
            "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {name}\nspec:{spec}\n"
        )
    };
    write(
        "tenants/shop/tenant.yaml",
        &tenant(
            "shop",
            "\n  registries: [index.docker.io/acme, ghcr.io/acme]",
        ),
    );
    // No registries of its own: the platform's default, folded in by the resolver.
    write("tenants/blog/tenant.yaml", &tenant("blog", " {}"));
    let out = tenantry(&[
        "policy",
        "vap",
        "--tenants",
        "--repo",
        repo.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::text(&out));
    let docs = documents(&out);
    assert_eq!(
        docs[0]["kind"], "CustomResourceDefinition",
        "the CRD comes first"
    );
    let params = |tenant: &str| {
        docs.iter()
            .find(|d| d["kind"] == "GuardrailParameters" && d["spec"]["tenant"] == tenant)
            .unwrap_or_else(|| panic!("no parameters for {tenant}"))
            .clone()
    };
    assert_eq!(
        params("shop")["spec"]["registryPrefixes"],
        serde_json::json!(["docker.io/acme", "ghcr.io/acme"])
    );
    assert_eq!(
        params("blog")["spec"]["registryPrefixes"],
        serde_json::json!(["registry.platform.example/base"])
    );
    let binding = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "tenantry-allowed-registries.blog")
        .expect("blog's binding");
    assert_eq!(
        binding["spec"]["matchResources"]["namespaceSelector"],
        serde_json::json!({"matchLabels": {"example.org/tenant": "blog"}})
    );
    assert_eq!(
        binding["spec"]["paramRef"],
        serde_json::json!({"name": "tenantry-blog", "parameterNotFoundAction": "Deny"})
    );
    // Without --tenants nothing per tenant is printed.
    let out = tenantry(&["policy", "vap"]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("GuardrailParameters"),
        "{}",
        common::text(&out)
    );
}

/// With `policies.vap.tenantParameters` each tenant renders its own parameters and bindings,
/// so `policy vap` prints what they need first: the parameters' CRD and the per-tenant
/// policies, without `--tenants`.
#[test]
fn with_tenant_parameters_the_crd_and_per_tenant_policies_are_printed() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tenantry.yaml");
    let names = |text: &str| {
        std::fs::write(&config, text).unwrap();
        let out = tenantry(&["policy", "vap", "--config", config.to_str().unwrap()]);
        assert!(out.status.success(), "{}", common::text(&out));
        documents(&out)
            .iter()
            .map(|d| d["metadata"]["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let base = "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\n";
    let per_tenant = [
        "guardrailparameters.tenantry.dev",
        "tenantry-allowed-registries",
        "tenantry-tenant-placement-tenant",
    ];
    let without = names(base);
    for name in per_tenant {
        assert!(!without.contains(&name.to_owned()), "{name}: {without:?}");
    }
    let with = names(&format!(
        "{base}policies:\n  vap:\n    tenantParameters: true\n"
    ));
    assert_eq!(with[0], per_tenant[0], "the CRD comes first");
    for name in per_tenant {
        assert!(with.contains(&name.to_owned()), "{name}: {with:?}");
    }
}
