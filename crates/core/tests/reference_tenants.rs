//! The four reference tenants from the design seeds, rendered in full and pinned as
//! snapshots. A change to any rendered byte shows up here as a reviewed snapshot diff, which
//! is exactly the diff platform repositories will see.

mod common;

use common::{REFERENCE_TENANTS, render_reference};
use tenantry_core::{Layer, yaml};

fn rendered_text(platform: &str, tenant: &str) -> String {
    let rendered = render_reference(platform, tenant);
    let mut text = String::new();
    text.push_str("# files\n");
    for object in &rendered.objects {
        text.push_str(&format!("# {} ({})\n", object.file_name(), object.layer));
    }
    for artifact in &rendered.artifacts {
        text.push_str(&format!("# {}\n", artifact.file_name));
    }
    text.push_str(&yaml::multi_document(&rendered.objects));
    for artifact in &rendered.artifacts {
        text.push_str(&format!(
            "--- # {}\n{}",
            artifact.file_name, artifact.content
        ));
    }
    text
}

#[test]
fn reference_tenants_render_as_snapshotted() {
    for (name, platform, tenant) in REFERENCE_TENANTS {
        insta::assert_snapshot!(name, rendered_text(platform, tenant));
    }
}

#[test]
fn objects_come_out_in_layer_order_namespaces_first() {
    for (_, platform, tenant) in REFERENCE_TENANTS {
        let rendered = render_reference(platform, tenant);
        let layers: Vec<Layer> = rendered.objects.iter().map(|o| o.layer).collect();
        let mut sorted = layers.clone();
        sorted.sort();
        assert_eq!(layers, sorted, "{tenant}: objects out of apply order");
        assert_eq!(rendered.objects[0].kind, "Namespace");
    }
}

#[test]
fn every_object_carries_the_inventory_labels() {
    for (_, platform, tenant) in REFERENCE_TENANTS {
        let rendered = render_reference(platform, tenant);
        for o in &rendered.objects {
            let labels = &o.body["metadata"]["labels"];
            assert_eq!(
                labels["app.kubernetes.io/managed-by"],
                "tenantry",
                "{}",
                o.reference()
            );
            assert_eq!(
                labels["tenantry.dev/tenant"],
                rendered.tenant.as_str(),
                "{}",
                o.reference()
            );
        }
    }
}

#[test]
fn the_allow_root_tenant_enforces_baseline_but_warns_at_restricted() {
    let rendered = render_reference("platform-caas.yaml", "allow-root.yaml");
    let namespaces: Vec<_> = rendered
        .objects
        .iter()
        .filter(|o| o.kind == "Namespace")
        .collect();
    assert_eq!(
        namespaces
            .iter()
            .map(|o| o.name.as_str())
            .collect::<Vec<_>>(),
        ["legacy", "legacy-dev", "legacy-staging"]
    );
    for ns in namespaces {
        let labels = &ns.body["metadata"]["labels"];
        assert_eq!(labels["pod-security.kubernetes.io/enforce"], "baseline");
        assert_eq!(labels["pod-security.kubernetes.io/warn"], "restricted");
        assert_eq!(labels["pod-security.kubernetes.io/audit"], "restricted");
    }
}

#[test]
fn the_mesh_tenant_is_labelled_and_argo_syncs_as_the_tenant() {
    let rendered = render_reference("platform-caas.yaml", "argocd-mesh.yaml");
    let ns = rendered
        .objects
        .iter()
        .find(|o| o.kind == "Namespace")
        .unwrap();
    assert_eq!(ns.body["metadata"]["labels"]["istio-injection"], "enabled");
    let project = rendered
        .objects
        .iter()
        .find(|o| o.kind == "AppProject")
        .unwrap();
    assert_eq!(
        project.body["spec"]["clusterResourceWhitelist"],
        serde_json::json!([])
    );
    assert_eq!(
        project.body["spec"]["destinationServiceAccounts"][0]["defaultServiceAccount"],
        "payments"
    );
    assert_eq!(
        project.body["spec"]["sourceRepos"],
        serde_json::json!(["https://git.example.com/tenants/payments.git"])
    );
}

#[test]
fn flux_delivery_impersonates_the_tenant_and_verifies_signatures() {
    let rendered = render_reference("platform-flux.yaml", "static-site.yaml");
    let source = rendered
        .objects
        .iter()
        .find(|o| o.kind == "OCIRepository")
        .unwrap();
    assert_eq!(source.body["spec"]["verify"]["provider"], "cosign");
    assert!(
        source.body["spec"]["verify"]["matchOIDCIdentity"][0]["subject"]
            .as_str()
            .unwrap()
            .contains("publish-app")
    );
    let ks = rendered
        .objects
        .iter()
        .find(|o| o.kind == "Kustomization")
        .unwrap();
    assert_eq!(ks.namespace.as_deref(), Some("ascoachingogvaner"));
    assert_eq!(ks.body["spec"]["serviceAccountName"], "ascoachingogvaner");
    assert_eq!(ks.body["spec"]["prune"], true);
    assert_eq!(
        ks.body["spec"]["sourceRef"].get("namespace"),
        None,
        "same-namespace source"
    );
}

#[test]
fn flux_oci_verifies_with_a_public_key_when_a_secret_is_named() {
    // The tenant's secretRef replaces the platform's keyless identity whole: Flux gets the
    // key and no OIDC identity it would otherwise also demand.
    let rendered = common::render_oci_verified_by("cosign-pub");
    let source = rendered
        .objects
        .iter()
        .find(|o| o.kind == "OCIRepository")
        .unwrap();
    assert_eq!(
        source.body["spec"]["verify"],
        serde_json::json!({ "provider": "cosign", "secretRef": { "name": "cosign-pub" } })
    );
}

#[test]
fn openbao_policy_reaches_only_the_tenants_path() {
    let rendered = render_reference("platform-flux.yaml", "app-secrets.yaml");
    let policy = rendered
        .artifacts
        .iter()
        .find(|a| a.file_name.ends_with(".hcl"))
        .unwrap();
    let paths: Vec<&str> = policy
        .content
        .lines()
        .filter_map(|l| l.strip_prefix("path \""))
        .map(|l| l.split('"').next().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "secret/data/apps/wedding-app/*",
            "secret/metadata/apps/wedding-app/*"
        ]
    );
    let role: serde_json::Value = serde_json::from_str(
        &rendered
            .artifacts
            .iter()
            .find(|a| a.file_name.ends_with(".json"))
            .unwrap()
            .content,
    )
    .unwrap();
    assert_eq!(
        role["bound_service_account_names"],
        serde_json::json!(["wedding-app"])
    );
    assert_eq!(
        role["bound_service_account_namespaces"],
        serde_json::json!(["wedding-app"])
    );
}
