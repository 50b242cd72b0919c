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

/// The formats the API server validates (`supportedVersionedFormats` in apiextensions-apiserver,
/// compared without `-`), plus the OpenAPI number formats its own types use. Any other format
/// makes `kubectl apply` of the CRD print `Warning: unrecognized format`.
const KNOWN_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "int32",
    "int64",
    "float",
    "double",
];

fn collect_formats(schema: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match schema {
        serde_json::Value::Object(map) => {
            if let Some(format) = map.get("format").and_then(|f| f.as_str())
                && !KNOWN_FORMATS.contains(&format.replace('-', "").as_str())
            {
                out.push(format!("{path}: format {format:?}"));
            }
            for (key, value) in map {
                collect_formats(value, &format!("{path}.{key}"), out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, value) in items.iter().enumerate() {
                collect_formats(value, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn schema_uses_only_formats_the_api_server_knows() {
    let crd = crd_json();
    let mut unknown = Vec::new();
    collect_formats(
        &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
        "openAPIV3Schema",
        &mut unknown,
    );
    assert!(unknown.is_empty(), "{unknown:#?}");
    let pods = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["quota"]["properties"]["pods"];
    assert_eq!(pods["minimum"].as_f64(), Some(0.0), "{pods}");
    assert_eq!(
        pods["maximum"].as_f64(),
        Some(f64::from(u32::MAX)),
        "{pods}"
    );
}

#[test]
fn short_names_are_not_taken_by_other_tenancy_or_platform_crds() {
    let crd = crd_json();
    let ours: Vec<String> =
        serde_json::from_value(crd["spec"]["names"]["shortNames"].clone()).expect("short names");
    assert!(!ours.is_empty());
    assert!(!ours.iter().any(|s| s == "tnt"), "tnt is Capsule's Tenant");
    let crds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/crds");
    let mut taken = Vec::new();
    for dir in std::fs::read_dir(&crds).expect("testdata/crds") {
        let dir = dir.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir).expect("crd dir") {
            let text = std::fs::read_to_string(file.expect("entry").path()).expect("crd file");
            // Every upstream short name is a `- name` item under `shortNames:`.
            let mut in_short_names = false;
            for line in text.lines() {
                let trimmed = line.trim();
                if trimmed.starts_with("shortNames:") {
                    in_short_names = true;
                } else if in_short_names && let Some(item) = trimmed.strip_prefix("- ") {
                    taken.push(item.trim_matches('"').to_owned());
                } else {
                    in_short_names = false;
                }
            }
        }
    }
    assert!(
        taken.iter().any(|t| t == "tnt"),
        "Capsule's CRD is in testdata: {taken:?}"
    );
    for short in &ours {
        assert!(!taken.contains(short), "{short} is taken: {taken:?}");
    }
}
