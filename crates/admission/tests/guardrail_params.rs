//! The webhook judges a tenant by its own values once its `GuardrailParameters` arrive,
//! driven by the events a v1.36 API server sent while one tenant's parameters were applied,
//! patched and deleted (`testdata/k8s-wire/watch-guardrailparameters-events.json`).

mod common;

use common::{FIXTURE_NAMESPACE, create_review, hardened_deployment_review, labels};
use kube::{api::DynamicObject, runtime::watcher::Event};
use serde_json::{Value, json};
use tenantry_admission::{EngineValidator, NamespaceCache, answer};
use tenantry_api::Platform;
use tenantry_core::PlatformContext;

const TENANT: &str = "g14-shop";

/// The recorded watch events of the parameters: (type, object).
fn recorded() -> Vec<(String, DynamicObject)> {
    recorded_watch("watch-guardrailparameters-events.json")
}

/// The recorded watch events in `file` (testdata/k8s-wire): (type, object).
fn recorded_watch(file: &str) -> Vec<(String, DynamicObject)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/k8s-wire")
        .join(file);
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

/// A synced cache knowing the fixture namespace as `tenant`'s (restricted), for `platform`.
fn tenant_cache(platform: Platform, tenant: &str) -> (PlatformContext, NamespaceCache) {
    let ctx = PlatformContext::new(platform).unwrap();
    let cache = NamespaceCache::new(&ctx);
    cache.upsert(
        FIXTURE_NAMESPACE,
        labels(&[
            ("tenantry.dev/tenant", tenant),
            ("pod-security.kubernetes.io/enforce", "restricted"),
        ]),
    );
    cache.mark_synced();
    (ctx, cache)
}

/// Apply `params` as the tenant's parameters object (`tenantry-<tenant>`), as `render`
/// names it, through the watch's event path.
fn apply_own_params(
    cache: &NamespaceCache,
    params: &tenantry_core::render::guardrails::GuardrailParams,
) {
    let object = params.to_object("tenantry.dev", &format!("tenantry-{}", params.tenant));
    cache.apply_params(Event::Apply(serde_json::from_value(object).unwrap()));
}

/// A recorded event as the watcher hands it on.
fn event((kind, object): (String, DynamicObject)) -> Event<DynamicObject> {
    match kind.as_str() {
        "DELETED" => Event::Delete(object),
        _ => Event::Apply(object),
    }
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
    let (ctx, cache) = tenant_cache(platform(), TENANT);
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

    let mut events = events.into_iter().map(event);
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
    cache.expect(tenantry_admission::Watched::Params);
    cache.start_relist();
    cache.finish_relist();
    assert!(!cache.is_synced(), "namespaces listed, parameters not yet");
    cache.apply_params(Event::Init);
    cache.apply_params(Event::InitDone);
    assert!(cache.is_synced());

    // A webhook that may not read the kind (or a cluster without it) does not wait forever.
    let cache = NamespaceCache::new(&ctx);
    cache.expect(tenantry_admission::Watched::Params);
    cache.mark_synced();
    assert!(!cache.is_synced());
    cache.unavailable(tenantry_admission::Watched::Params);
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
    let (ctx, cache) = tenant_cache(platform, TENANT);
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
    apply_own_params(
        &cache,
        &GuardrailParams::new(
            TENANT,
            &[],
            &Default::default(),
            &classes,
            &Default::default(),
        ),
    );
    assert_eq!(cache.tenant(TENANT).unwrap().classes, classes);
    // Its own class, and only its own: the platform's bounds are replaced, not widened.
    assert!(denied_priority(&cache, &validator, "g14-high").is_empty());
    assert_eq!(
        denied_priority(&cache, &validator, "platform-high"),
        ["priority-class"]
    );
}

#[test]
fn next_to_the_policies_a_tenant_fault_is_reported_once_by_whichever_judges_it() {
    use tenantry_admission::Watched;
    use tenantry_core::render::guardrails::GuardrailParams;
    // The tenant of the recorded binding watch.
    const WIRE: &str = "g14-wire";
    let (ctx, cache) = tenant_cache(platform(), WIRE);
    let next_to_vap = EngineValidator::new(&ctx.platform).with_vap();
    let alone = EngineValidator::new(&ctx.platform);
    let foreign = "docker.io/library/nginx:1";
    apply_own_params(
        &cache,
        &GuardrailParams::new(
            WIRE,
            &["ghcr.io/g14-wire".to_owned()],
            &serde_json::from_value(json!({"nodeSelector": {"pool": "g14"}})).unwrap(),
            &Default::default(),
            &Default::default(),
        ),
    );
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "tenantry-allowed-registries"},
    });
    let events = recorded_watch("watch-vapbindings-events.json");
    assert_eq!(
        events.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["ADDED", "MODIFIED", "DELETED"]
    );
    let (added, modified, deleted) = {
        let mut it = events.into_iter();
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
    };

    // Parameters alone: the API server does not judge the tenant yet, so the webhook does.
    assert_eq!(
        denied(&cache, &next_to_vap, foreign),
        ["registry-not-allowed"]
    );
    // Its Deny binding, but no policy for it to bind: still the webhook's.
    cache.apply_watched(Watched::Bindings, event(added.clone()));
    assert_eq!(cache.watched_len(Watched::Bindings), 1);
    assert_eq!(
        denied(&cache, &next_to_vap, foreign),
        ["registry-not-allowed"]
    );
    // Policy, parameters and a Deny binding: the API server refuses it, the webhook says
    // nothing of it (one message for one fault); a webhook alone still judges it.
    cache.apply_watched(
        Watched::Policies,
        Event::Apply(serde_json::from_value(policy).unwrap()),
    );
    assert_eq!(
        cache.tenant(WIRE).unwrap().vap_bound,
        ["allowed-registries"]
    );
    assert!(denied(&cache, &next_to_vap, foreign).is_empty());
    assert_eq!(denied(&cache, &alone, foreign), ["registry-not-allowed"]);
    // Only checks of a bound policy are left: the node selector's binding is not there.
    let mut review = hardened_deployment_review();
    review["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("ghcr.io/g14-wire/app:1");
    let off_nodes = answer(&cache, &next_to_vap, &serde_json::to_vec(&review).unwrap()).unwrap();
    assert_eq!(off_nodes.denied_checks, ["node-selector"]);
    // The binding switched to [Warn, Audit] refuses nothing: the webhook judges again.
    cache.apply_watched(Watched::Bindings, event(modified));
    assert!(cache.tenant(WIRE).unwrap().vap_bound.is_empty());
    assert_eq!(
        denied(&cache, &next_to_vap, foreign),
        ["registry-not-allowed"]
    );
    // Bound again, then the parameters go (offboarding): the webhook again.
    cache.apply_watched(Watched::Bindings, event(added.clone()));
    assert!(denied(&cache, &next_to_vap, foreign).is_empty());
    cache.remove_watched(Watched::Params, &format!("tenantry-{WIRE}"));
    assert!(cache.tenant(WIRE).unwrap().vap_bound.is_empty());
    assert_eq!(
        denied(&cache, &next_to_vap, "ghcr.io/g14-wire/app:1"),
        ["registry-not-allowed"],
        "the platform defaults, judged by the webhook"
    );
    // And the binding deleted leaves none behind.
    cache.apply_watched(Watched::Bindings, event(deleted));
    assert_eq!(cache.watched_len(Watched::Bindings), 0);
}

#[test]
fn readiness_waits_for_the_policies_and_bindings_next_to_the_policies() {
    use tenantry_admission::Watched;
    let ctx = PlatformContext::new(platform()).unwrap();
    let cache = NamespaceCache::new(&ctx);
    for kind in Watched::ALL {
        cache.expect(kind);
    }
    cache.mark_synced();
    cache.apply_params(Event::Init);
    cache.apply_params(Event::InitDone);
    cache.apply_watched(Watched::Policies, Event::Init);
    cache.apply_watched(Watched::Policies, Event::InitDone);
    assert!(!cache.is_synced(), "bindings not listed yet");
    cache.unavailable(Watched::Bindings);
    assert!(cache.is_synced());
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
    let (ctx, cache) = tenant_cache(platform, TENANT);
    let validator = EngineValidator::new(&ctx.platform);
    let gpu = json!([{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]);
    let dedicated = json!([{"key": "dedicated", "operator": "Equal", "value": "g14"}]);
    // Before: the platform's bound, which admits both keys.
    assert!(denied_tolerations(&cache, &validator, gpu.clone()).is_empty());
    assert!(denied_tolerations(&cache, &validator, dedicated.clone()).is_empty());

    // Parameters written before tolerations were in them keep the platform's bound.
    let mut object = GuardrailParams::new(
        TENANT,
        &[],
        &Placement::default(),
        &Default::default(),
        &Default::default(),
    )
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
    apply_own_params(
        &cache,
        &GuardrailParams::new(
            TENANT,
            &[],
            &placement,
            &Default::default(),
            &Default::default(),
        ),
    );
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
    apply_own_params(
        &cache,
        &GuardrailParams::new(
            TENANT,
            &[],
            &Placement::default(),
            &Default::default(),
            &Default::default(),
        ),
    );
    assert_eq!(cache.tenant(TENANT).unwrap().placement.tolerations, None);
    assert!(denied_tolerations(&cache, &validator, gpu).is_empty());
}

/// The checks denying a NetworkPolicy in the tenant's namespace admitting traffic from the
/// namespace `from`.
fn denied_peer(cache: &NamespaceCache, validator: &EngineValidator, from: &str) -> Vec<String> {
    let review = create_review(
        "peer",
        "networkpolicies",
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "from-peer"},
            "spec": {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": from}}}]}]},
        }),
    );
    let body = serde_json::to_vec(&review).unwrap();
    answer(cache, validator, &body).unwrap().denied_checks
}

#[test]
fn a_tenant_is_judged_by_its_own_network_peers_once_its_parameters_arrive() {
    use tenantry_api::tenant::Placement;
    use tenantry_core::render::guardrails::{GuardrailParams, TenantNetwork};
    let (ctx, cache) = tenant_cache(Platform::default(), TENANT);
    let validator = EngineValidator::new(&ctx.platform);
    // Before: no peers, only its own namespace and the platform's.
    assert!(denied_peer(&cache, &validator, FIXTURE_NAMESPACE).is_empty());
    assert!(denied_peer(&cache, &validator, "kube-system").is_empty());
    assert_eq!(
        denied_peer(&cache, &validator, "monitoring"),
        ["network-policy-reach"]
    );

    // Its parameters list monitoring in its allowFrom: the webhook admits it, as the policy.
    let namespaces = [FIXTURE_NAMESPACE.to_owned()];
    let peers = ["monitoring".to_owned()];
    let network = TenantNetwork {
        namespaces: &namespaces,
        peers: &peers,
    };
    apply_own_params(
        &cache,
        &GuardrailParams::new(
            TENANT,
            &[],
            &Placement::default(),
            &Default::default(),
            &network,
        ),
    );
    assert_eq!(cache.tenant(TENANT).unwrap().network_peers, peers);
    assert!(denied_peer(&cache, &validator, "monitoring").is_empty());
    assert_eq!(
        denied_peer(&cache, &validator, "billing"),
        ["network-policy-reach"]
    );

    // Parameters written before the peers were in them: none, as before.
    let mut object = GuardrailParams::new(
        TENANT,
        &[],
        &Placement::default(),
        &Default::default(),
        &network,
    )
    .to_object("tenantry.dev", &format!("tenantry-{TENANT}"));
    let spec = object["spec"].as_object_mut().unwrap();
    spec.remove("networkPeers");
    spec.remove("namespaces");
    cache.apply_params(Event::Apply(serde_json::from_value(object).unwrap()));
    assert!(cache.tenant(TENANT).unwrap().network_peers.is_empty());
    assert_eq!(
        denied_peer(&cache, &validator, "monitoring"),
        ["network-policy-reach"]
    );
}

/// The checks denying a Kustomization in the tenant's namespace reconciling as `account`
/// through the kubeconfig Secret `kubeconfig`.
fn denied_kustomization(
    cache: &NamespaceCache,
    validator: &EngineValidator,
    account: &str,
    kubeconfig: &str,
) -> Vec<String> {
    let review = create_review(
        "flux",
        "kustomizations",
        json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "app"},
            "spec": {"interval": "5m", "prune": true,
                     "sourceRef": {"kind": "OCIRepository", "name": "app"},
                     "serviceAccountName": account,
                     "kubeConfig": {"secretRef": {"name": kubeconfig}}},
        }),
    );
    let body = serde_json::to_vec(&review).unwrap();
    answer(cache, validator, &body).unwrap().denied_checks
}

#[test]
fn a_tenant_flux_identity_is_read_from_its_parameters_as_the_policy_reads_it() {
    use tenantry_api::tenant::Placement;
    use tenantry_core::render::guardrails::{GuardrailParams, TenantFlux, TenantNetwork};
    let mut platform = Platform::default();
    platform.flux.proxy = Some(serde_json::from_value(json!({"url": "https://proxy"})).unwrap());
    let (ctx, cache) = tenant_cache(platform, TENANT);
    let validator = EngineValidator::new(&ctx.platform);
    let platform_secret = tenantry_api::platform::FLUX_PROXY_KUBECONFIG_SECRET;
    // Before its parameters: its name as its ServiceAccount, the platform's proxy Secret.
    assert!(denied_kustomization(&cache, &validator, TENANT, platform_secret).is_empty());
    assert_eq!(
        denied_kustomization(&cache, &validator, TENANT, "own-proxy"),
        ["kubeconfig"]
    );

    // Its parameters name its own proxy Secret (Flux Git delivery with a kubeconfig of its
    // own): the webhook admits that one and no other, as the compiled policy does.
    let params = GuardrailParams::new(
        TENANT,
        &[],
        &Placement::default(),
        &Default::default(),
        &TenantNetwork::default(),
    )
    .with_flux(TenantFlux {
        service_account: TENANT.to_owned(),
        proxy_kubeconfig_secret: Some("own-proxy".to_owned()),
    });
    apply_own_params(&cache, &params);
    assert!(denied_kustomization(&cache, &validator, TENANT, "own-proxy").is_empty());
    assert_eq!(
        denied_kustomization(&cache, &validator, TENANT, platform_secret),
        ["kubeconfig"]
    );
    assert_eq!(
        denied_kustomization(&cache, &validator, "flux-system", "own-proxy"),
        ["service-account-name"]
    );
    // Read back as written.
    let object = params.to_object("tenantry.dev", "p");
    assert_eq!(
        GuardrailParams::from_object(&object).and_then(|p| p.flux),
        params.flux
    );

    // Parameters written before the Flux identity was in them: the platform's, as before.
    let mut object = params.to_object("tenantry.dev", &format!("tenantry-{TENANT}"));
    object["spec"].as_object_mut().unwrap().remove("flux");
    cache.apply_params(Event::Apply(serde_json::from_value(object).unwrap()));
    assert!(denied_kustomization(&cache, &validator, TENANT, platform_secret).is_empty());
}
