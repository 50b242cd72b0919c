//! Placement and classes: the platform's `defaults` are the bounds, a tenant may only narrow
//! them, and an allow-list of PriorityClasses is also enforced by a ResourceQuota the API
//! server itself applies.

use serde_json::{Value, json};
use tenantry_core::{PlatformContext, document, render::render};

const PLATFORM: &str = "apiVersion: tenantry.dev/v1alpha1
kind: Platform
defaults:
  placement:
    nodeSelector: {pool: shared}
    tolerations:
      - {key: dedicated, value: shop, effect: NoSchedule}
      - {key: spot, operator: Exists}
  classes:
    priority: {allowed: [tenant-high, tenant-normal], default: tenant-normal}
    storage: {allowed: [standard, fast]}
";

fn platform(yaml: &str) -> Result<PlatformContext, Vec<String>> {
    let platform = document::parse_platform(yaml).map_err(|e| vec![e.to_string()])?;
    PlatformContext::new(platform).map_err(|i| i.errors.iter().map(ToString::to_string).collect())
}

fn resolve(spec: &str) -> Result<tenantry_core::ResolvedTenant, Vec<String>> {
    let ctx = platform(PLATFORM).expect("platform is valid");
    let text = format!(
        "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: shop\nspec:\n{spec}"
    );
    let file = document::parse_tenant_file(&text).map_err(|e| vec![e.to_string()])?;
    ctx.resolve(&file)
        .map_err(|i| i.errors.iter().map(ToString::to_string).collect())
}

#[track_caller]
fn refused(spec: &str, path: &str, hint: &str) {
    let errors = resolve(spec).expect_err("refused");
    assert!(
        errors.iter().any(|e| e.contains(path) && e.contains(hint)),
        "expected {path:?} / {hint:?} in {errors:#?}"
    );
}

#[test]
fn a_tenant_gets_the_platforms_bounds_or_narrower_ones() {
    let t = resolve("  {}\n").unwrap();
    assert_eq!(
        t.placement.node_selector.unwrap()["pool"],
        "shared",
        "the platform's bounds apply to a tenant that says nothing"
    );
    assert_eq!(
        t.classes.priority.unwrap().allowed,
        ["tenant-high", "tenant-normal"]
    );
    assert!(
        t.classes.ingress.is_none(),
        "a class the platform leaves out is unrestricted"
    );

    let t = resolve(
        "  placement:\n    nodeSelector: {pool: shared, zone: a}\n    tolerations: [{key: spot, operator: Exists, effect: NoSchedule}]\n  classes:\n    priority: {allowed: [tenant-normal]}\n",
    )
    .unwrap();
    assert_eq!(t.placement.node_selector.unwrap().len(), 2);
    assert_eq!(t.placement.tolerations.unwrap().len(), 1);
    assert_eq!(t.classes.priority.unwrap().allowed, ["tenant-normal"]);
    assert_eq!(t.classes.storage.unwrap().allowed, ["standard", "fast"]);
}

#[test]
fn a_tenant_widening_the_platforms_bounds_is_refused_at_the_field() {
    refused(
        "  placement:\n    nodeSelector: {zone: a}\n",
        "spec.placement.nodeSelector",
        "must keep the platform's pool: shared",
    );
    refused(
        "  placement:\n    tolerations: [{operator: Exists}]\n",
        "spec.placement.tolerations[0]",
        "every taint (operator: Exists, no key) is not within",
    );
    refused(
        "  placement:\n    tolerations: [{key: dedicated, value: payments, effect: NoSchedule}]\n",
        "spec.placement.tolerations[0]",
        "dedicated=payments:NoSchedule",
    );
    refused(
        "  placement:\n    tolerations: [{key: dedicated, value: shop}]\n",
        "spec.placement.tolerations[0]",
        "not within",
    );
    refused(
        "  classes:\n    priority: {allowed: [system-node-critical]}\n",
        "spec.classes.priority.allowed[0]",
        "not one the platform allows (tenant-high, tenant-normal)",
    );
    refused(
        "  classes:\n    storage: {allowed: [standard], default: fast}\n",
        "spec.classes.storage.default",
        "must be one of allowed",
    );
    refused(
        "  placement:\n    tolerations: [{key: spot, operator: Exists, value: x}]\n",
        "spec.placement.tolerations[0].value",
        "must be empty",
    );
    refused(
        "  classes:\n    runtime: {allowed: [Not_A_Name]}\n",
        "spec.classes.runtime.allowed[0]",
        "\"Not_A_Name\"",
    );
}

#[test]
fn the_platforms_own_bounds_are_checked_once_at_defaults() {
    let errors = platform(
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\ndefaults:\n  classes:\n    priority: {allowed: [a], default: b}\n",
    )
    .expect_err("refused");
    assert!(
        errors.iter().any(
            |e| e.contains("defaults.classes.priority.default") && e.contains("must be one of")
        ),
        "{errors:#?}"
    );
    let errors = platform(
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\ndefaults:\n  placement:\n    nodeSelector: {\"bad key!\": x}\n",
    )
    .expect_err("refused");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("defaults.placement.nodeSelector")),
        "{errors:#?}"
    );
}

fn quotas(t: &tenantry_core::ResolvedTenant) -> Vec<Value> {
    let ctx = platform(PLATFORM).unwrap();
    render(&ctx, t)
        .objects
        .into_iter()
        .filter(|o| o.kind == "ResourceQuota")
        .map(|o| o.body)
        .collect()
}

#[test]
fn an_allow_list_of_priority_classes_renders_a_zero_pod_quota_over_every_other_class() {
    let t = resolve("  namespaces: [shop-dev]\n").unwrap();
    let all = quotas(&t);
    let priority: Vec<&Value> = all
        .iter()
        .filter(|q| q["metadata"]["name"] == "tenantry-priority-classes")
        .collect();
    assert_eq!(priority.len(), 2, "one per tenant namespace");
    assert_eq!(
        priority[0]["spec"],
        json!({
            "hard": {"pods": "0"},
            "scopeSelector": {"matchExpressions": [
                {"scopeName": "PriorityClass", "operator": "Exists"},
                {"scopeName": "PriorityClass", "operator": "NotIn", "values": ["tenant-high", "tenant-normal"]},
            ]},
        })
    );
    // Tenantry's second quota does not use up the tenant's allowance of one.
    let main = all
        .iter()
        .find(|q| q["metadata"]["name"] == "tenantry-quota")
        .unwrap();
    assert_eq!(main["spec"]["hard"]["resourcequotas"], "2");

    // No list: no such quota, and the allowance is as declared.
    let ctx = platform("apiVersion: tenantry.dev/v1alpha1\nkind: Platform\n").unwrap();
    let file = document::parse_tenant_file(
        "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: shop\n",
    )
    .unwrap();
    let plain = render(&ctx, &ctx.resolve(&file).unwrap());
    let names: Vec<&str> = plain
        .objects
        .iter()
        .filter(|o| o.kind == "ResourceQuota")
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(names, ["tenantry-quota"]);
    let hard = &plain
        .objects
        .iter()
        .find(|o| o.kind == "ResourceQuota")
        .unwrap()
        .body["spec"]["hard"];
    assert_eq!(hard["resourcequotas"], "1");
}

#[test]
fn a_tenant_wide_quota_renders_shares_and_rebalances_from_live_usage() {
    let ctx = platform("apiVersion: tenantry.dev/v1alpha1\nkind: Platform\n").unwrap();
    let file = document::parse_tenant_file(
        "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: shop\nspec:\n  namespaces: [shop-dev]\n  quota: {scope: tenant, pods: 5, requests: {cpu: '3'}}\n",
    )
    .unwrap();
    let mut rendered = vec![render(&ctx, &ctx.resolve(&file).unwrap())];
    let hard_of = |rendered: &[tenantry_core::Rendered], ns: &str| {
        rendered[0]
            .objects
            .iter()
            .find(|o| o.name == "tenantry-quota" && o.namespace.as_deref() == Some(ns))
            .unwrap()
            .body["spec"]["hard"]
            .clone()
    };
    assert_eq!(hard_of(&rendered, "shop")["pods"], "3");
    assert_eq!(hard_of(&rendered, "shop-dev")["pods"], "2");
    assert_eq!(hard_of(&rendered, "shop-dev")["requests.cpu"], "1500m");
    assert_eq!(hard_of(&rendered, "shop")["resourcequotas"], "1");
    // The dev namespace already runs 2 pods and 1 cpu: 3 pods and 2 cpu are left, split.
    let live = vec![json!({
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "tenantry-quota", "namespace": "shop-dev"},
        "status": {"used": {"pods": "2", "requests.cpu": "1", "resourcequotas": "1"}},
    })];
    tenantry_core::quota::rebalance_rendered(&mut rendered, &live, "tenantry.dev");
    assert_eq!(hard_of(&rendered, "shop")["pods"], "2");
    assert_eq!(hard_of(&rendered, "shop-dev")["pods"], "3");
    assert_eq!(hard_of(&rendered, "shop")["requests.cpu"], "1");
    assert_eq!(hard_of(&rendered, "shop-dev")["requests.cpu"], "2");
    assert_eq!(
        hard_of(&rendered, "shop")["resourcequotas"],
        "1",
        "not split"
    );
}

#[test]
fn the_namespaces_carry_the_placement_for_kubernetes_own_admission_plugins() {
    let t = resolve("  namespaces: [shop-dev]\n").unwrap();
    let ctx = platform(PLATFORM).unwrap();
    let rendered = render(&ctx, &t);
    let namespaces: Vec<&Value> = rendered
        .objects
        .iter()
        .filter(|o| o.kind == "Namespace")
        .map(|o| &o.body)
        .collect();
    assert_eq!(namespaces.len(), 2);
    for ns in namespaces {
        let annotations = &ns["metadata"]["annotations"];
        assert_eq!(
            annotations["scheduler.alpha.kubernetes.io/node-selector"],
            "pool=shared"
        );
        let whitelist: Value = serde_json::from_str(
            annotations["scheduler.alpha.kubernetes.io/tolerationsWhitelist"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let list = whitelist.as_array().unwrap();
        assert_eq!(
            list[..2],
            [
                json!({"key": "dedicated", "value": "shop", "effect": "NoSchedule"}),
                json!({"key": "spot", "operator": "Exists"}),
            ]
        );
        // The tolerations the API server and the DaemonSet controller add stay admissible.
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            assert!(
                list.contains(&json!({"key": key, "operator": "Exists"})),
                "{key}"
            );
        }
    }
}
