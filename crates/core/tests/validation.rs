//! Bad input is refused with the field path a person must fix and what would be allowed.
//! Each case is a tenant or platform a real user could write; each must fail at the named
//! path, and nothing about it may panic.

mod common;

use tenantry_api::Platform;
use tenantry_core::{PlatformContext, document};

fn tenant_errors(spec_yaml: &str, name: &str) -> Vec<String> {
    let text = format!(
        "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {name}\nspec:\n{spec_yaml}"
    );
    let file = match document::parse_tenant_file(&text) {
        Ok(f) => f,
        Err(e) => return vec![e.to_string()],
    };
    let ctx = PlatformContext::new(Platform::default()).unwrap();
    match ctx.resolve(&file) {
        Ok(_) => vec![],
        Err(invalid) => invalid.errors.iter().map(ToString::to_string).collect(),
    }
}

#[track_caller]
fn assert_refused(spec_yaml: &str, name: &str, path: &str, hint: &str) {
    let errors = tenant_errors(spec_yaml, name);
    assert!(
        errors.iter().any(|e| e.contains(path) && e.contains(hint)),
        "expected an error at {path:?} mentioning {hint:?}, got {errors:#?}"
    );
}

#[test]
fn tenant_names_must_be_dns_labels_and_not_reserved() {
    assert_refused("  {}\n", "Shop", "metadata.name", "lower-case");
    assert_refused("  {}\n", "shop_1", "metadata.name", "DNS-1123");
    assert_refused("  {}\n", &"a".repeat(64), "metadata.name", "at most 63");
    for reserved in [
        "default",
        "kube-system",
        "kube-anything",
        "flux-system",
        "argocd",
        "tenantry-system",
        "openshift-x",
    ] {
        assert_refused("  {}\n", reserved, "metadata.name", "reserved");
    }
}

#[test]
fn extra_namespaces_belong_to_the_tenant() {
    assert_refused(
        "  namespaces: [other]\n",
        "shop",
        "spec.namespaces[0]",
        "start with \"shop-\"",
    );
    assert_refused(
        "  namespaces: [shop-]\n",
        "shop",
        "spec.namespaces[0]",
        "suffix",
    );
    assert_refused(
        "  namespaces: [shop-a, shop-a]\n",
        "shop",
        "spec.namespaces[1]",
        "twice",
    );
    assert_refused(
        "  namespaces: [shop-A]\n",
        "shop",
        "spec.namespaces[0]",
        "DNS-1123",
    );
    assert!(tenant_errors("  namespaces: [shop, shop-dev]\n", "shop").is_empty());
}

#[test]
fn quantities_are_parsed_and_compared() {
    assert_refused(
        "  quota:\n    requests:\n      cpu: 2x\n",
        "shop",
        "spec.quota.requests.cpu",
        "not a quantity",
    );
    assert_refused(
        "  quota:\n    requests:\n      memory: \"-1Gi\"\n",
        "shop",
        "spec.quota.requests.memory",
        "negative",
    );
    assert_refused(
        "  quota:\n    limits:\n      memory: 512m\n",
        "shop",
        "spec.quota.limits.memory",
        "did you mean 512Mi",
    );
    assert_refused(
        "  quota:\n    requests:\n      cpu: 16\n",
        "shop",
        "spec.quota.requests.cpu",
        "requests cannot exceed limits",
    );
    assert_refused(
        "  limits:\n    default:\n      memory: 8Gi\n",
        "shop",
        "spec.limits.default.memory",
        "more than limits.max.memory",
    );
    assert_refused("  quota:\n    pods: -1\n", "shop", "spec.quota.pods", "");
}

#[test]
fn urls_semver_and_regexps_are_parsed() {
    assert_refused(
        "  delivery:\n    fluxOCI:\n      url: https://ghcr.io/x\n",
        "shop",
        "spec.delivery.fluxOCI.url",
        "allowed: oci://",
    );
    assert_refused(
        "  delivery:\n    fluxOCI:\n      url: not a url\n",
        "shop",
        "spec.delivery.fluxOCI.url",
        "not a URL",
    );
    assert_refused(
        "  delivery:\n    fluxOCI:\n      semver: latest\n",
        "shop",
        "spec.delivery.fluxOCI.semver",
        "Flux semver",
    );
    assert_refused(
        "  delivery:\n    fluxOCI:\n      verify:\n        subject: \"^https://(unclosed\"\n",
        "shop",
        "spec.delivery.fluxOCI.verify.subject",
        "regular expression",
    );
    assert_refused(
        "  delivery:\n    fluxOCI:\n      verify:\n        secretRef: cosign-pub\n        issuer: x\n",
        "shop",
        "spec.delivery.fluxOCI.verify.secretRef",
        "not both",
    );
    assert_refused(
        "  delivery:\n    fluxOCI:\n      verify:\n        secretRef: Cosign_Pub\n",
        "shop",
        "spec.delivery.fluxOCI.verify.secretRef",
        "",
    );
    assert_refused(
        "  delivery:\n    fluxGit:\n      url: http://git.example.com/x\n",
        "shop",
        "spec.delivery.fluxGit.url",
        "scheme \"http\"",
    );
    assert_refused(
        "  delivery:\n    fluxGit:\n      path: ./x\n",
        "shop",
        "spec.delivery.fluxGit.url",
        "required",
    );
}

#[test]
fn repository_paths_never_escape() {
    for path in ["../x", "/etc", "deploy/../../x"] {
        assert_refused(
            &format!(
                "  delivery:\n    fluxGit:\n      url: https://g.example/x.git\n      path: {path}\n"
            ),
            "shop",
            "spec.delivery.fluxGit.path",
            "relative path",
        );
    }
}

#[test]
fn rbac_is_never_broader_than_the_tenant() {
    assert_refused(
        "  rbac:\n    clusterRole: cluster-admin\n",
        "shop",
        "spec.rbac.clusterRole",
        "cluster-admin",
    );
    assert_refused(
        "  rbac:\n    grants: [nope]\n",
        "shop",
        "spec.rbac.grants[0]",
        "defined: external-dns",
    );
    assert_refused(
        "  owners:\n  - kind: ServiceAccount\n    name: bot\n",
        "shop",
        "spec.owners[0].namespace",
        "required",
    );
    assert_refused(
        "  owners:\n  - kind: Group\n    name: g\n    namespace: x\n",
        "shop",
        "spec.owners[0].namespace",
        "only ServiceAccount",
    );
}

#[test]
fn unknown_fields_are_errors_with_position() {
    let errors = tenant_errors("  podSecurty: baseline\n", "shop");
    assert!(errors[0].starts_with("6:"), "{errors:?}");
    assert!(errors[0].contains("podSecurty"), "{errors:?}");
    let errors = tenant_errors("  quota:\n    cpu: 2\n", "shop");
    assert!(
        errors[0].contains("quota") && errors[0].contains("cpu"),
        "{errors:?}"
    );
    let errors = tenant_errors("  podSecurity: privileged\n", "shop");
    assert!(errors[0].contains("spec.podSecurity"), "{errors:?}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let errors = tenant_errors(
        "  namespaces: [other]\n  quota:\n    requests:\n      cpu: x\n  rbac:\n    clusterRole: cluster-admin\n",
        "shop",
    );
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

#[track_caller]
fn assert_platform_refused(yaml: &str, path: &str, hint: &str) {
    let text = format!("apiVersion: tenantry.dev/v1alpha1\nkind: Platform\n{yaml}");
    let errors: Vec<String> = match document::parse_platform(&text) {
        Err(e) => vec![e.to_string()],
        Ok(p) => match PlatformContext::new(p) {
            Ok(_) => vec![],
            Err(i) => i.errors.iter().map(ToString::to_string).collect(),
        },
    };
    assert!(
        errors.iter().any(|e| e.contains(path) && e.contains(hint)),
        "expected an error at {path:?} mentioning {hint:?}, got {errors:#?}"
    );
}

#[test]
fn platform_config_is_validated_once_with_its_own_paths() {
    assert_platform_refused("tenantsDir: ../elsewhere\n", "tenantsDir", "relative");
    assert_platform_refused("tenantsDir: /abs\n", "tenantsDir", "relative");
    // The platform directory (<parent>/platform/) must not land among the tenants.
    assert_platform_refused("tenantsDir: .\n", "tenantsDir", "platform directory");
    assert_platform_refused(
        "tenantsDir: clusters/platform\n",
        "tenantsDir",
        "platform directory",
    );
    assert_platform_refused("labelPrefix: Not_A_Domain\n", "labelPrefix", "DNS-1123");
    assert_platform_refused(
        "defaults:\n  quota:\n    requests:\n      cpu: lots\n",
        "defaults.quota.requests.cpu",
        "not a quantity",
    );
    assert_platform_refused(
        "defaults:\n  quota:\n    requests:\n      cpu: 100\n",
        "defaults.quota.requests.cpu",
        "exceed limits",
    );
    assert_platform_refused(
        "defaults:\n  namespaces: [x]\n",
        "defaults.namespaces",
        "per tenant",
    );
    assert_platform_refused(
        "pullSecret:\n  refreshInterval: 1day\n",
        "pullSecret.refreshInterval",
        "duration",
    );
    assert_platform_refused(
        "openbao:\n  pathPrefix: /apps/\n",
        "openbao.pathPrefix",
        "relative OpenBao path",
    );
    assert_platform_refused(
        "openbao:\n  pathPrefix: apps/../infrastructure\n",
        "openbao.pathPrefix",
        "no '..'",
    );
    assert_platform_refused(
        "openbao:\n  kvMount: ''\n",
        "openbao.kvMount",
        "relative OpenBao path",
    );
    assert_platform_refused(
        "openbao:\n  policyPrefix: ''\n",
        "openbao.policyPrefix",
        "built-in policy",
    );
    assert_platform_refused(
        "openbao:\n  audience: 'a b'\n",
        "openbao.audience",
        "without spaces",
    );
    assert_platform_refused(
        "grants:\n  root:\n    bindings:\n    - clusterRole: cluster-admin\n      scope: cluster\n",
        "grants.root.bindings[0].clusterRole",
        "never bind cluster-admin",
    );
    assert_platform_refused(
        "grants:\n  x:\n    bindings:\n    - clusterRole: view\n      scope: namespace\n",
        "grants.x.bindings[0].namespace",
        "required",
    );
    assert_platform_refused(
        "defaults:\n  delivery:\n    fluxGit:\n      branch: main\n",
        "defaults.delivery.fluxGit.url",
        "required",
    );
    assert_platform_refused(
        "credentials:\n  maxTokenDuration: 5m\n",
        "credentials.maxTokenDuration",
        "at least 10m",
    );
    assert_platform_refused(
        "credentials:\n  defaultTokenDuration: 48h\n",
        "credentials.defaultTokenDuration",
        "between 10m and maxTokenDuration",
    );
    assert_platform_refused(
        "credentials:\n  defaultTokenDuration: 1d\n",
        "credentials.defaultTokenDuration",
        "days",
    );
    assert_platform_refused(
        "policies:\n  podSecurity:\n    version: \"1.30\"\n",
        "policies.podSecurity.version",
        "v1.<minor>",
    );
    assert_platform_refused(
        "policies:\n  protectPlatformObjects:\n    exemptUsers: [\"*\"]\n",
        "policies.protectPlatformObjects.exemptUsers[0]",
        "would match every name",
    );
    assert_platform_refused("unknownKey: 1\n", "unknownKey", "unknown field");
    assert_platform_refused("kind: Tenant\n", "", "duplicate");
}

#[test]
fn the_platforms_own_namespaces_are_reserved() {
    let ctx = PlatformContext::new(Platform::default()).unwrap();
    let reserved = ctx.reserved();
    for ns in ["flux-system", "argocd", "kube-system"] {
        assert!(
            reserved
                .iter()
                .any(|r| r == ns || (r.ends_with('*') && ns.starts_with(r.trim_end_matches('*')))),
            "{ns}"
        );
    }
}
