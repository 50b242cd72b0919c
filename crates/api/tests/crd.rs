//! The Tenant CRD is what `tenantry crd` prints and what a cluster installs; these tests hold
//! the parts a cluster admin relies on.

use kube::CustomResourceExt;
use tenantry_api::Tenant;

fn crd_json() -> serde_json::Value {
    serde_json::to_value(Tenant::crd()).expect("CRD serializes")
}

#[test]
fn tenant_is_cluster_scoped_in_the_tenantry_group() {
    let crd = crd_json();
    assert_eq!(crd["metadata"]["name"], "tenants.tenantry.dev");
    assert_eq!(crd["spec"]["group"], "tenantry.dev");
    assert_eq!(crd["spec"]["scope"], "Cluster");
    assert_eq!(crd["spec"]["versions"][0]["name"], "v1alpha1");
    assert_eq!(
        crd["spec"]["versions"][0]["subresources"]["status"],
        serde_json::json!({})
    );
}

#[test]
fn printer_columns_show_pod_security_namespaces_and_readiness() {
    let crd = crd_json();
    let names: Vec<&str> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Pod-Security", "Namespaces", "Ready", "Age"]);
}

#[test]
fn delivery_schema_is_structural_with_one_member_per_kind() {
    let crd = crd_json();
    let delivery = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["delivery"];
    let props = delivery["properties"]
        .as_object()
        .expect("hoisted properties");
    let mut kinds: Vec<&String> = props.keys().collect();
    kinds.sort();
    assert_eq!(kinds, ["argoCD", "fluxGit", "fluxOCI", "none"]);
    assert_eq!(delivery["type"], "object");
    assert_eq!(delivery["oneOf"].as_array().map(Vec::len), Some(4));
}

#[test]
fn quantities_are_int_or_string() {
    let crd = crd_json();
    let cpu = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["quota"]["properties"]["requests"]["properties"]["cpu"];
    assert_eq!(cpu["x-kubernetes-int-or-string"], true, "{cpu}");
}
