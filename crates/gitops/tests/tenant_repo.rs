//! The tenant repository scaffold: its exact files (snapshots, reviewed like code: these are
//! what every team starts from), and that planning refuses before writing anything.

use std::fs;

use tenantry_api::platform::GatewayRef;
use tenantry_gitops::tenant_repo::{
    Action, Mode, Owner, ScaffoldSpec, TenantFacts, apply, plan, scaffold_files,
};

fn render(spec: &ScaffoldSpec) -> String {
    scaffold_files(spec)
        .iter()
        .map(|f| format!("===== {} ({}) =====\n{}", f.path, f.owner, f.content))
        .collect()
}

#[test]
fn scaffold_without_a_platform_repository() {
    let spec = ScaffoldSpec {
        tenant: "shop".to_owned(),
        facts: None,
    };
    insta::assert_snapshot!(render(&spec));
}

#[test]
fn scaffold_with_the_tenants_platform_facts() {
    let spec = ScaffoldSpec {
        tenant: "shop".to_owned(),
        facts: Some(TenantFacts {
            namespaces: vec!["shop".to_owned(), "shop-dev".to_owned()],
            registries: vec!["ghcr.io/acme/".to_owned()],
            gateway: Some(GatewayRef {
                name: "edge".to_owned(),
                namespace: "gateways".to_owned(),
                section_name: None,
            }),
            oci_url: Some("oci://ghcr.io/acme/shop/manifests".to_owned()),
            routes_granted: true,
        }),
    };
    insta::assert_snapshot!(render(&spec));
}

#[test]
fn without_route_permission_no_httproute_is_scaffolded_or_listed() {
    let spec = ScaffoldSpec {
        tenant: "shop".to_owned(),
        facts: Some(TenantFacts {
            namespaces: vec!["shop".to_owned()],
            registries: vec![],
            gateway: None,
            oci_url: None,
            routes_granted: false,
        }),
    };
    let files = scaffold_files(&spec);
    assert!(files.iter().all(|f| f.path != "deploy/httproute.yaml"));
    let kustomization = &files
        .iter()
        .find(|f| f.path == "deploy/kustomization.yaml")
        .unwrap()
        .content;
    assert!(!kustomization.contains("httproute"), "{kustomization}");
    assert!(
        !kustomization.contains("namespace:"),
        "one namespace: the delivery pins it"
    );
}

#[test]
fn a_conflict_anywhere_writes_nothing_and_names_each_file_with_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ScaffoldSpec {
        tenant: "shop".to_owned(),
        facts: None,
    };
    fs::create_dir_all(dir.path().join("deploy")).unwrap();
    fs::write(dir.path().join("deploy/service.yaml"), "# ours\n").unwrap();
    let planned = plan(dir.path(), scaffold_files(&spec), Mode::Init).unwrap();
    let service = planned
        .iter()
        .find(|p| p.path == "deploy/service.yaml")
        .unwrap();
    assert_eq!(
        (service.action, service.owner),
        (Action::Conflict, Owner::Team)
    );
    let err = apply(dir.path(), &planned).unwrap_err().to_string();
    assert!(err.contains("deploy/service.yaml (team-owned"), "{err}");
    assert!(!dir.path().join("README.md").exists(), "nothing written");
    assert_eq!(
        fs::read_to_string(dir.path().join("deploy/service.yaml")).unwrap(),
        "# ours\n"
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_leading_out_of_the_repository_is_refused_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join(".github")).unwrap();
    let spec = ScaffoldSpec {
        tenant: "shop".to_owned(),
        facts: None,
    };
    let planned = plan(dir.path(), scaffold_files(&spec), Mode::Init).unwrap();
    let err = apply(dir.path(), &planned).unwrap_err().to_string();
    assert!(err.contains("outside the repository"), "{err}");
    assert!(!dir.path().join("README.md").exists());
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
}
