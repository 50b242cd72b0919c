//! The webhook judges a tenant by its own values once its `GuardrailParameters` arrive,
//! driven by the events a v1.36 API server sent while one tenant's parameters were applied,
//! patched and deleted (`testdata/k8s-wire/watch-guardrailparameters-events.json`).

mod common;

use common::{FIXTURE_NAMESPACE, hardened_deployment_review, labels};
use kube::{api::DynamicObject, runtime::watcher::Event};
use serde_json::{Value, json};
use tenantry_admission::{EngineValidator, NamespaceCache, answer};
use tenantry_api::Platform;
use tenantry_core::PlatformContext;

const TENANT: &str = "g14-shop";

/// The recorded watch events: (type, object).
fn recorded() -> Vec<(String, DynamicObject)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/k8s-wire/watch-guardrailparameters-events.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (testdata/k8s-wire)", path.display()));
    let wire: Value = serde_json::from_str(&text).unwrap();
    wire["response"]["body"]
        .as_str()
        .unwrap()
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            let kind = event["type"].as_str().unwrap().to_owned();
            (
                kind,
                serde_json::from_value(event["object"].clone()).unwrap(),
            )
        })
        .collect()
}

/// A platform whose tenants may pull from its own registry only, unless they say otherwise.
fn platform() -> Platform {
    let mut platform = Platform::default();
    platform.defaults.registries = Some(vec!["ghcr.io/platform".to_owned()]);
    platform
}

/// The checks denying a hardened Deployment of `image` (on the tenant's nodes) in the
/// tenant's namespace.
fn denied(cache: &NamespaceCache, validator: &EngineValidator, image: &str) -> Vec<String> {
    let mut review = hardened_deployment_review();
    let pod = &mut review["request"]["object"]["spec"]["template"]["spec"];
    pod["containers"][0]["image"] = json!(image);
    pod["nodeSelector"] = json!({"pool": "g14"});
    let body = serde_json::to_vec(&review).unwrap();
    answer(cache, validator, &body).unwrap().denied_checks
}

#[test]
fn a_tenant_is_judged_by_its_own_registries_once_its_parameters_arrive() {
    let ctx = PlatformContext::new(platform()).unwrap();
    let cache = NamespaceCache::new(&ctx);
    cache.upsert(
        FIXTURE_NAMESPACE,
        labels(&[
            ("tenantry.dev/tenant", TENANT),
            ("pod-security.kubernetes.io/enforce", "restricted"),
        ]),
    );
    cache.mark_synced();
    let validator = EngineValidator::new(&ctx.platform);
    let own = "ghcr.io/g14-shop/web:1.0";
    let events = recorded();
    assert_eq!(
        events.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["ADDED", "MODIFIED", "DELETED"]
    );

    // Before: the platform defaults, so the tenant's own registry is refused.
    assert_eq!(denied(&cache, &validator, own), ["registry-not-allowed"]);
    assert!(denied(&cache, &validator, "ghcr.io/platform/app:1").is_empty());

    let mut events = events
        .into_iter()
        .map(|(kind, object)| match kind.as_str() {
            "DELETED" => Event::Delete(object),
            _ => Event::Apply(object),
        });
    cache.apply_params(events.next().unwrap());
    let tenant = cache.tenant(TENANT).unwrap();
    assert_eq!(tenant.registries, ["ghcr.io/g14-shop/"]);
    assert_eq!(
        tenant.placement.node_selector,
        Some([("pool".to_owned(), "g14".to_owned())].into())
    );
    // Its own registry now, and only its own: the defaults are replaced, not widened.
    assert!(denied(&cache, &validator, own).is_empty());
    assert_eq!(
        denied(&cache, &validator, "ghcr.io/platform/app:1"),
        ["registry-not-allowed"]
    );
    // Its own node selector: a pod off its nodes is refused.
    let mut review = hardened_deployment_review();
    review["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["image"] = json!(own);
    let off_nodes = answer(&cache, &validator, &serde_json::to_vec(&review).unwrap()).unwrap();
    assert_eq!(off_nodes.denied_checks, ["node-selector"]);

    // A patched registry list, written with an upper-case host, is read as the runtime does.
    cache.apply_params(events.next().unwrap());
    assert!(denied(&cache, &validator, "registry.local:5000/g14/app:2").is_empty());

    // Deleted (offboarding, or the toggle turned off): back to the platform defaults.
    cache.apply_params(events.next().unwrap());
    assert_eq!(denied(&cache, &validator, own), ["registry-not-allowed"]);
    assert_eq!(cache.params_len(), 0);
}

#[test]
fn readiness_waits_for_the_parameters_when_they_are_watched() {
    let ctx = PlatformContext::new(platform()).unwrap();
    let cache = NamespaceCache::new(&ctx);
    cache.expect_params();
    cache.start_relist();
    cache.finish_relist();
    assert!(!cache.is_synced(), "namespaces listed, parameters not yet");
    cache.apply_params(Event::Init);
    cache.apply_params(Event::InitDone);
    assert!(cache.is_synced());

    // A webhook that may not read the kind (or a cluster without it) does not wait forever.
    let cache = NamespaceCache::new(&ctx);
    cache.expect_params();
    cache.mark_synced();
    assert!(!cache.is_synced());
    cache.params_unavailable();
    assert!(cache.is_synced());
}

/// The checks denying a hardened Deployment with PriorityClass `class` in the tenant's
/// namespace.
fn denied_priority(
    cache: &NamespaceCache,
    validator: &EngineValidator,
    class: &str,
) -> Vec<String> {
    let mut review = hardened_deployment_review();
    review["request"]["object"]["spec"]["template"]["spec"]["priorityClassName"] = json!(class);
    let body = serde_json::to_vec(&review).unwrap();
    answer(cache, validator, &body).unwrap().denied_checks
}

#[test]
fn a_tenant_is_judged_by_its_own_classes_once_its_parameters_arrive() {
    use tenantry_api::tenant::{ClassList, Classes};
    use tenantry_core::render::guardrails::GuardrailParams;
    let mut platform = Platform::default();
    let list = |allowed: &[&str]| ClassList {
        allowed: allowed.iter().map(|c| (*c).to_owned()).collect(),
        default: None,
    };
    platform.defaults.classes = Some(Classes {
        priority: Some(list(&["platform-high"])),
        ..Classes::default()
    });
    let ctx = PlatformContext::new(platform).unwrap();
    let cache = NamespaceCache::new(&ctx);
    cache.upsert(
        FIXTURE_NAMESPACE,
        labels(&[
            ("tenantry.dev/tenant", TENANT),
            ("pod-security.kubernetes.io/enforce", "restricted"),
        ]),
    );
    cache.mark_synced();
    let validator = EngineValidator::new(&ctx.platform);
    // Before: the platform's list, so the tenant's own class is refused.
    assert!(denied_priority(&cache, &validator, "platform-high").is_empty());
    assert_eq!(
        denied_priority(&cache, &validator, "g14-high"),
        ["priority-class"]
    );

    let classes = Classes {
        priority: Some(list(&["g14-high"])),
        ..Classes::default()
    };
    let object = GuardrailParams::new(TENANT, &[], &Default::default(), &classes)
        .to_object("tenantry.dev", &format!("tenantry-{TENANT}"));
    cache.apply_params(Event::Apply(serde_json::from_value(object).unwrap()));
    assert_eq!(cache.tenant(TENANT).unwrap().classes, classes);
    // Its own class, and only its own: the platform's bounds are replaced, not widened.
    assert!(denied_priority(&cache, &validator, "g14-high").is_empty());
    assert_eq!(
        denied_priority(&cache, &validator, "platform-high"),
        ["priority-class"]
    );
}

/// The checks denying a hardened Deployment with `tolerations` in the tenant's namespace.
fn denied_tolerations(
    cache: &NamespaceCache,
    validator: &EngineValidator,
    tolerations: Value,
) -> Vec<String> {
    let mut review = hardened_deployment_review();
    review["request"]["object"]["spec"]["template"]["spec"]["tolerations"] = tolerations;
    let body = serde_json::to_vec(&review).unwrap();
    answer(cache, validator, &body).unwrap().denied_checks
}

#[test]
fn a_tenant_is_judged_by_its_own_tolerations_once_its_parameters_arrive() {
    use tenantry_api::tenant::{AllowedToleration, Placement, TolerationOperator};
    use tenantry_core::render::guardrails::GuardrailParams;
    let keyed = |key: &str| AllowedToleration {
        key: key.to_owned(),
        operator: Some(TolerationOperator::Exists),
        ..AllowedToleration::default()
    };
    let mut platform = Platform::default();
    platform.defaults.placement = Some(Placement {
        node_selector: None,
        tolerations: Some(vec![keyed("dedicated"), keyed("gpu")]),
    });
    let ctx = PlatformContext::new(platform).unwrap();
    let cache = NamespaceCache::new(&ctx);
    cache.upsert(
        FIXTURE_NAMESPACE,
        labels(&[
            ("tenantry.dev/tenant", TENANT),
            ("pod-security.kubernetes.io/enforce", "restricted"),
        ]),
    );
    cache.mark_synced();
    let validator = EngineValidator::new(&ctx.platform);
    let gpu = json!([{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]);
    let dedicated = json!([{"key": "dedicated", "operator": "Equal", "value": "g14"}]);
    // Before: the platform's bound, which admits both keys.
    assert!(denied_tolerations(&cache, &validator, gpu.clone()).is_empty());
    assert!(denied_tolerations(&cache, &validator, dedicated.clone()).is_empty());

    // Parameters written before tolerations were in them keep the platform's bound.
    let mut object = GuardrailParams::new(TENANT, &[], &Placement::default(), &Default::default())
        .to_object("tenantry.dev", &format!("tenantry-{TENANT}"));
    object["spec"]
        .as_object_mut()
        .unwrap()
        .remove("tolerations");
    cache.apply_params(Event::Apply(serde_json::from_value(object).unwrap()));
    assert!(denied_tolerations(&cache, &validator, gpu.clone()).is_empty());

    // The tenant narrowed it to its dedicated nodes: the GPU nodes are out of reach.
    let placement = Placement {
        node_selector: None,
        tolerations: Some(vec![AllowedToleration {
            key: "dedicated".to_owned(),
            operator: None,
            value: Some("g14".to_owned()),
            effect: None,
        }]),
    };
    let object = GuardrailParams::new(TENANT, &[], &placement, &Default::default())
        .to_object("tenantry.dev", &format!("tenantry-{TENANT}"));
    cache.apply_params(Event::Apply(serde_json::from_value(object).unwrap()));
    assert_eq!(
        cache.tenant(TENANT).unwrap().placement.tolerations,
        placement.tolerations
    );
    assert!(denied_tolerations(&cache, &validator, dedicated).is_empty());
    assert_eq!(
        denied_tolerations(&cache, &validator, gpu.clone()),
        ["tolerations"]
    );
    // Node-condition taints stay tolerable whatever the list.
    assert!(
        denied_tolerations(
            &cache,
            &validator,
            json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}])
        )
        .is_empty()
    );

    // A tenant with no list of its own (and a platform with no bound) may tolerate any key.
    let object = GuardrailParams::new(TENANT, &[], &Placement::default(), &Default::default())
        .to_object("tenantry.dev", &format!("tenantry-{TENANT}"));
    cache.apply_params(Event::Apply(serde_json::from_value(object).unwrap()));
    assert_eq!(cache.tenant(TENANT).unwrap().placement.tolerations, None);
    assert!(denied_tolerations(&cache, &validator, gpu).is_empty());
}
