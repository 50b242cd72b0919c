//! The platform-wide ClusterRoles that let tenants manage their own custom resources: what
//! they grant, that it is never more than the tenant's own namespaces, and that every kind
//! they name exists, namespaced, in the upstream CRDs.

mod common;

use std::collections::BTreeMap;

use common::testdata_dir;
use k8s_openapi::api::rbac::v1::ClusterRole;
use serde_json::Value;
use tenantry_api::{
    Platform,
    platform::{GeneratorKind, TenantRbacConfig},
};
use tenantry_core::{
    PlatformContext, document,
    render::platform::{TENANT_RBAC, granted_resources, render_platform},
    yaml,
};

/// Every upstream CRD in testdata: (group, plural) → scope.
fn crd_scopes() -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![testdata_dir().join("crds")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                let crd: Value =
                    serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let spec = &crd["spec"];
                out.insert(
                    (
                        spec["group"].as_str().unwrap().to_owned(),
                        spec["names"]["plural"].as_str().unwrap().to_owned(),
                    ),
                    spec["scope"].as_str().unwrap().to_owned(),
                );
            }
        }
    }
    out
}

fn everything_on() -> Platform {
    Platform {
        tenant_rbac: TenantRbacConfig {
            external_secrets: Some(true),
            cilium: Some(true),
            gateway_api: Some(true),
            flux: Some(true),
            generators: vec![GeneratorKind::Passwords],
        },
        ..Platform::default()
    }
}

fn rendered_text(platform: Platform) -> String {
    let ctx = PlatformContext::new(platform).expect("valid platform");
    let rendered = render_platform(&ctx).remove(0);
    assert_eq!(rendered.tenant, TENANT_RBAC);
    rendered
        .objects
        .iter()
        .map(|o| {
            format!(
                "# {}\n{}",
                o.file_name(),
                yaml::platform_object_file(TENANT_RBAC, o)
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

#[test]
fn every_provider_enabled_renders_these_cluster_roles() {
    insta::assert_snapshot!(rendered_text(everything_on()));
}

#[test]
fn rendering_is_deterministic_and_reads_back_as_valid_cluster_roles() {
    let text = rendered_text(everything_on());
    assert_eq!(text, rendered_text(everything_on()));
    let ctx = PlatformContext::new(everything_on()).unwrap();
    for object in render_platform(&ctx).remove(0).objects {
        let emitted: Value = serde_saphyr::from_str(&yaml::object_yaml(&object)).unwrap();
        assert_eq!(emitted, object.body, "{}", object.name);
        // Every field is one the built-in type has.
        let typed: ClusterRole = serde_json::from_value(object.body.clone()).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), object.body);
        let labels = typed.metadata.labels.unwrap();
        for key in [
            "rbac.authorization.k8s.io/aggregate-to-edit",
            "rbac.authorization.k8s.io/aggregate-to-admin",
        ] {
            assert_eq!(labels.get(key).map(String::as_str), Some("true"), "{key}");
        }
        assert_eq!(labels["app.kubernetes.io/managed-by"], "tenantry");
        assert_eq!(labels["tenantry.dev/component"], "tenant-rbac");
        assert!(!labels.contains_key("tenantry.dev/tenant"));
        let why = &typed.metadata.annotations.unwrap()["tenantry.dev/why"];
        assert!(why.len() > 40, "every role says why: {why}");
        assert!(typed.aggregation_rule.is_none());
    }
}

#[test]
fn only_namespaced_kinds_of_the_upstream_crds_are_ever_granted() {
    let crds = crd_scopes();
    let mut p = everything_on();
    // Every generator kind the configuration can name.
    p.tenant_rbac.generators = document::from_yaml::<Vec<GeneratorKind>>(
        "[acraccesstokens, cloudsmithaccesstokens, ecrauthorizationtokens, fakes, gcraccesstokens, githubaccesstokens, gitlabdeploytokens, grafanas, mfas, passwords, quayaccesstokens, sshkeys, stssessiontokens, uuids, vaultdynamicsecrets, webhooks]",
    )
    .unwrap();
    let granted = granted_resources(&p);
    for (group, resource) in &granted {
        assert!(
            !resource.starts_with("cluster") && !resource.contains("clusterwide"),
            "{resource}.{group} is a cluster-wide kind"
        );
        assert_ne!(*resource, "clustersecretstores");
        assert_ne!(*resource, "clusterexternalsecrets");
        assert_ne!(*resource, "ciliumclusterwidenetworkpolicies");
        assert_ne!(*resource, "clustergenerators");
        assert_ne!(*resource, "gateways");
        // Each kind testdata has a CRD for is namespaced there; only generators other than
        // Password have no CRD in testdata (the ESO bundle's are namespaced, see SOURCE.md).
        match crds.get(&(group.to_string(), resource.to_string())) {
            Some(scope) => assert_eq!(scope, "Namespaced", "{resource}.{group}"),
            None => assert!(
                *group == "generators.external-secrets.io",
                "{resource}.{group} is not in any upstream CRD in testdata/crds"
            ),
        }
    }
    for expected in [
        ("external-secrets.io", "externalsecrets"),
        ("external-secrets.io", "pushsecrets"),
        ("external-secrets.io", "secretstores"),
        ("generators.external-secrets.io", "passwords"),
        ("cilium.io", "ciliumnetworkpolicies"),
        ("gateway.networking.k8s.io", "httproutes"),
        ("gateway.networking.k8s.io", "grpcroutes"),
        ("kustomize.toolkit.fluxcd.io", "kustomizations"),
    ] {
        assert!(granted.contains(&expected), "{expected:?} in {granted:?}");
        assert!(
            crds.contains_key(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} has an upstream CRD in testdata"
        );
    }
}

#[test]
fn the_built_in_platform_grants_external_secrets_and_gateway_api_but_not_cilium_or_flux() {
    let granted = granted_resources(&Platform::default());
    let groups: Vec<&str> = granted.iter().map(|(g, _)| *g).collect();
    assert!(groups.contains(&"external-secrets.io"));
    assert!(groups.contains(&"gateway.networking.k8s.io"));
    assert!(!groups.contains(&"cilium.io"));
    assert!(!groups.iter().any(|g| g.ends_with("fluxcd.io")));
}

#[test]
fn tenant_rbac_settings_are_checked_where_tenantry_yaml_is_parsed() {
    let err = document::parse_platform(
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\ntenantRbac:\n  generators: [passwords, clustergenerators]\n  cilum: true\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("tenantRbac.generators[1]"), "{err}");
    assert!(err.contains("tenantRbac.cilum"), "{err}");
    assert!(err.contains("cilium"), "did you mean: {err}");
    let p = document::parse_platform(
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\ntenantRbac:\n  flux: true\n",
    )
    .unwrap();
    assert_eq!(p.tenant_rbac.flux, Some(true));
    assert_eq!(p.tenant_rbac.generators, [GeneratorKind::Passwords]);
    assert_eq!(p.tenant_rbac.cilium, None);
}
