//! The generated ValidatingAdmissionPolicies as objects: what an API server will accept, what
//! a platform team reviews in a diff, and that nothing the engine judges at admission is
//! silently dropped. Whether they decide what the engine decides is `vap_e2e.rs`'s question.

use std::collections::BTreeSet;

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use serde_json::Value;
use tenantry_api::Platform;
use tenantry_policy::vap::{self, Actions, VapOptions};
use tenantry_policy::{CHECKS, Engine, Mode, pss};

const EVERYTHING: &str = "\
apiVersion: tenantry.dev/v1alpha1
kind: Platform
labelPrefix: example.org
policies:
  imagePullPolicyAlways:
    enabled: true
  requireDigest:
    enabled: true
  podSecurity:
    version: v1.30
defaults:
  placement:
    nodeSelector:
      pool: shared
    tolerations:
      - key: dedicated
        operator: Exists
  classes:
    priority:
      allowed: [tenant-high]
";

fn platform(text: &str) -> Platform {
    tenantry_core::document::parse_platform(text).expect("platform")
}

fn default_engine() -> Engine {
    Engine::new(&Platform::default())
}

/// The typed object, serialised back: equal to the generated JSON only if every field is one
/// the API knows (k8s-openapi drops fields it does not know).
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) -> Value {
    let typed: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", doc["metadata"]["name"]));
    serde_json::to_value(typed).unwrap()
}

#[test]
fn every_generated_object_is_a_typed_policy_or_binding_with_no_unknown_field() {
    for engine in [default_engine(), Engine::new(&platform(EVERYTHING))] {
        let docs = vap::generate(&engine, &VapOptions::default());
        assert!(!docs.is_empty());
        for doc in &docs {
            let back = match doc["kind"].as_str() {
                Some("ValidatingAdmissionPolicy") => round_trip::<ValidatingAdmissionPolicy>(doc),
                Some("ValidatingAdmissionPolicyBinding") => {
                    round_trip::<ValidatingAdmissionPolicyBinding>(doc)
                }
                other => panic!("unexpected kind {other:?}"),
            };
            assert_eq!(&back, doc, "{} lost fields", doc["metadata"]["name"]);
        }
    }
}

#[test]
fn each_policy_has_a_binding_to_the_tenant_namespaces() {
    let engine = Engine::new(&platform(EVERYTHING));
    let docs = vap::generate(&engine, &VapOptions::default());
    for pair in docs.chunks(2) {
        let [policy, binding] = pair else {
            panic!("policies and bindings come in pairs")
        };
        assert_eq!(policy["kind"], "ValidatingAdmissionPolicy");
        assert_eq!(binding["spec"]["policyName"], policy["metadata"]["name"]);
        assert_eq!(
            binding["spec"]["validationActions"],
            serde_json::json!(["Deny"])
        );
        // The webhook's selector: the platform's tenant label, whatever its prefix; on the
        // namespace's labels, or for Namespaces themselves on their own (old or new).
        let on = if policy["spec"]["matchConstraints"]["resourceRules"][0]["resources"]
            == serde_json::json!(["namespaces"])
        {
            "objectSelector"
        } else {
            "namespaceSelector"
        };
        assert_eq!(
            binding["spec"]["matchResources"][on],
            serde_json::json!({"matchExpressions": [
                {"key": "example.org/tenant", "operator": "Exists"}
            ]})
        );
        assert_eq!(policy["spec"]["failurePolicy"], "Fail");
        assert!(policy["metadata"]["annotations"]["example.org/policy"].is_string());
    }
}

#[test]
fn warn_mode_and_one_namespace_change_only_the_bindings() {
    let engine = default_engine();
    let deny = vap::generate(&engine, &VapOptions::default());
    let warn = vap::generate(
        &engine,
        &VapOptions {
            actions: Actions::WarnAudit,
            namespace: Some("shop".to_owned()),
            ..VapOptions::default()
        },
    );
    assert_eq!(deny.len(), warn.len());
    for (d, w) in deny.iter().zip(&warn) {
        if d["kind"] == "ValidatingAdmissionPolicy" {
            assert_eq!(d, w);
            continue;
        }
        assert_eq!(
            w["spec"]["validationActions"],
            serde_json::json!(["Warn", "Audit"])
        );
        let on = if d["spec"]["matchResources"]["objectSelector"].is_null() {
            "namespaceSelector"
        } else {
            "objectSelector"
        };
        let selector = &w["spec"]["matchResources"][on];
        assert_eq!(
            selector["matchLabels"],
            serde_json::json!({"kubernetes.io/metadata.name": "shop"})
        );
        assert_eq!(
            selector["matchExpressions"],
            d["spec"]["matchResources"][on]["matchExpressions"]
        );
    }
}

#[test]
fn messages_start_with_the_check_id() {
    let engine = Engine::new(&platform(EVERYTHING));
    let mut checks = vap::compiled_checks(&engine);
    // The per-tenant policies come from `generate_tenants`, after the others.
    checks.sort_by_key(|c| c.per_tenant);
    let mut docs = vap::generate(&engine, &VapOptions::default());
    docs.extend(vap::generate_tenants(&engine, &[], &VapOptions::default()));
    let validations: Vec<Value> = docs
        .into_iter()
        .filter(|d| d["kind"] == "ValidatingAdmissionPolicy")
        .flat_map(|d| d["spec"]["validations"].as_array().cloned().unwrap())
        .collect();
    assert_eq!(validations.len(), checks.len());
    for (v, c) in validations.iter().zip(&checks) {
        let message = v["messageExpression"].as_str().unwrap();
        assert!(
            message.contains(&format!("'{}: ", c.check)),
            "{}: {message}",
            c.check
        );
    }
}

#[test]
fn compiled_checks_are_the_engines_own() {
    let engine = Engine::new(&platform(EVERYTHING));
    for c in vap::compiled_checks(&engine) {
        let known = CHECKS
            .iter()
            .any(|d| d.id == c.check && d.policy == c.policy)
            || (c.policy == "pod-security" && pss::checks().any(|p| p.id == c.check));
        assert!(known, "{c:?} is not a check of the engine");
    }
}

#[test]
fn every_check_judged_at_admission_is_compiled_or_listed_unsupported() {
    for engine in [default_engine(), Engine::new(&platform(EVERYTHING))] {
        let compiled: BTreeSet<(&str, &str)> = vap::compiled_checks(&engine)
            .into_iter()
            .map(|c| (c.policy, c.check))
            .collect();
        let unsupported = vap::unsupported(&engine);
        let covered = |policy: &str, check: &str| {
            compiled.contains(&(policy, check))
                || unsupported.iter().any(|u| {
                    !u.partial
                        && u.policy == policy
                        && (u.checks.is_empty() || u.checks.contains(&check))
                })
        };
        let running = engine.enabled_policies(Mode::Admission);
        for doc in CHECKS.iter().filter(|d| running.contains(&d.policy)) {
            // Cluster-scoped secret objects and kustomization.yaml files (never an admission
            // request) are judged in `check` only.
            if ["cluster-scoped-secret-object", "remote-base"].contains(&doc.id) {
                continue;
            }
            assert!(covered(doc.policy, doc.id), "{} is neither", doc.id);
        }
        for check in pss::checks() {
            assert!(covered("pod-security", check.id), "{} is neither", check.id);
        }
        for u in &unsupported {
            assert!(!u.reason.is_empty());
            assert!(
                running.contains(&u.policy),
                "{} is not even running",
                u.policy
            );
        }
    }
}

#[test]
fn a_policy_switched_off_in_tenantry_yaml_is_not_generated() {
    let off = platform(
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\npolicies:\n  noNodePort:\n    enabled: false\n",
    );
    let names = |engine: &Engine| -> Vec<String> {
        vap::generate(engine, &VapOptions::default())
            .iter()
            .map(|d| d["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(names(&default_engine()).contains(&"tenantry-no-nodeport".to_owned()));
    assert!(!names(&Engine::new(&off)).contains(&"tenantry-no-nodeport".to_owned()));
    // The default platform pins no digest and no pull policy: not generated either.
    assert!(!names(&default_engine()).contains(&"tenantry-require-digest".to_owned()));
}

#[test]
fn the_pod_security_version_comes_from_tenantry_yaml() {
    let minor = |engine: &Engine| -> String {
        let docs = vap::generate(engine, &VapOptions::default());
        let policy = docs
            .iter()
            .find(|d| d["metadata"]["name"] == "tenantry-pod-security")
            .expect("pod-security policy");
        policy["spec"]["variables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "minor")
            .unwrap()["expression"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // With no enforce-version label, the platform's version applies.
    assert!(minor(&Engine::new(&platform(EVERYTHING))).contains("== '' ? 30 :"));
    assert!(minor(&default_engine()).contains(&format!("== '' ? {} :", pss::LATEST_MINOR)));
    // A fixed level and version (the engine's selection) are compiled in as constants.
    let fixed = default_engine()
        .with_selection(None, Some(pss::Level::Baseline), Some(pss::Version::V1(24)))
        .unwrap();
    assert_eq!(minor(&fixed), "24");
}

#[test]
fn output_is_deterministic() {
    let engine = Engine::new(&platform(EVERYTHING));
    let a = vap::to_yaml(&vap::generate(&engine, &VapOptions::default()));
    let b = vap::to_yaml(&vap::generate(&engine.clone(), &VapOptions::default()));
    assert_eq!(a, b);
    // And it reads back as the same objects.
    let docs: Vec<Value> = serde_saphyr::from_multiple(&a).expect("YAML reads back");
    assert_eq!(docs, vap::generate(&engine, &VapOptions::default()));
}

#[test]
fn default_output() {
    insta::assert_snapshot!(vap::to_yaml(&vap::generate(
        &default_engine(),
        &VapOptions::default()
    )));
}

/// A tenant namespace enforcing restricted, and an admission context in it.
fn shop() -> (tenantry_policy::NamespaceInfo, tenantry_policy::TenantInfo) {
    let namespace = tenantry_policy::NamespaceInfo {
        name: "shop".to_owned(),
        labels: [
            ("example.org/tenant", "shop"),
            ("pod-security.kubernetes.io/enforce", "restricted"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    };
    let tenant = tenantry_policy::TenantInfo {
        name: "shop".to_owned(),
        namespaces: vec!["shop".to_owned()],
        service_account: "shop".to_owned(),
        registries: vec!["ghcr.io/acme".to_owned()],
        pod_security: pss::Level::Restricted,
        proxy_kubeconfig_secret: None,
        cluster_role: None,
        network_peers: Vec::new(),
        // The platform's bound (EVERYTHING), as the tenant resolves it.
        placement: serde_json::from_value(serde_json::json!({
            "nodeSelector": {"pool": "shared"},
            "tolerations": [{"key": "dedicated", "operator": "Exists"}],
        }))
        .unwrap(),
        classes: Default::default(),
        vap_bound: Vec::new(),
    };
    (namespace, tenant)
}

fn denied(
    engine: &Engine,
    object: &Value,
    old: Option<&Value>,
    namespace: &tenantry_policy::NamespaceInfo,
    tenant: &tenantry_policy::TenantInfo,
) -> BTreeSet<String> {
    let ctx = tenantry_policy::Context {
        mode: Mode::Admission,
        operation: if old.is_some() {
            tenantry_policy::Operation::Update
        } else {
            tenantry_policy::Operation::Create
        },
        namespace: Some(namespace),
        tenant: Some(tenant),
        user: None,
        old_object: old,
    };
    engine
        .evaluate(object, &ctx)
        .into_iter()
        .filter(|v| v.severity == tenantry_policy::Severity::Deny)
        .map(|v| v.check)
        .collect()
}

#[test]
fn a_webhook_next_to_the_policies_judges_only_what_they_cannot() {
    use serde_json::json;
    let engine = Engine::new(&platform(EVERYTHING));
    let webhook = vap::webhook_engine(engine.clone());
    // One list: every check the policies decide completely, and nothing else.
    let delegated: BTreeSet<&str> = webhook.delegated_checks().iter().copied().collect();
    let compiled = vap::compiled_checks(&engine);
    for c in &compiled {
        assert_eq!(
            delegated.contains(c.check),
            c.complete && !c.per_tenant,
            "{c:?}"
        );
    }
    assert_eq!(
        delegated,
        vap::delegated_checks(&engine)
            .iter()
            .map(|c| c.check)
            .collect()
    );
    let (ns, tenant) = shop();
    let pod = |image: &str, extra: Value| {
        let mut spec = json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "nodeSelector": {"pool": "shared"},
            "containers": [{
                "name": "app",
                "image": format!("{image}@sha256:{}", "0".repeat(64)),
                "imagePullPolicy": "Always",
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "16Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
            }],
        });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"}, "spec": spec})
    };
    // Covered by the policies: the engine refuses it, the webhook does not judge it again.
    let mut privileged = pod("ghcr.io/acme/app", json!({"hostNetwork": true}));
    privileged["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true);
    assert_eq!(
        denied(&engine, &privileged, None, &ns, &tenant),
        BTreeSet::from(["hostNamespaces".to_owned(), "privileged".to_owned()])
    );
    assert!(denied(&webhook, &privileged, None, &ns, &tenant).is_empty());
    // Only the webhook can judge these: a registry outside the tenant's list and a toleration
    // outside its placement (compiled per tenant, so the webhook keeps them), a tag before a
    // malformed digest.
    let foreign = pod("evil.example/app", json!({}));
    assert_eq!(
        denied(&webhook, &foreign, None, &ns, &tenant),
        BTreeSet::from(["registry-not-allowed".to_owned()])
    );
    let tolerates = pod(
        "ghcr.io/acme/app",
        json!({"tolerations": [{"key": "gpu", "operator": "Exists"}]}),
    );
    assert_eq!(
        denied(&webhook, &tolerates, None, &ns, &tenant),
        BTreeSet::from(["tolerations".to_owned()])
    );
    // Both: the policies refuse the privileged container, the webhook the registry.
    let mut both = pod("evil.example/app", json!({}));
    both["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true);
    assert_eq!(
        denied(&webhook, &both, None, &ns, &tenant),
        BTreeSet::from(["registry-not-allowed".to_owned()])
    );
    // A Service: refused by the policies on create; an update adding a second node port to
    // one that had one is refused by the engine per field, by the policies (per check) not,
    // so the webhook keeps judging updates of the policies that carry violations over.
    let service = |ports: Value| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "shop"},
               "spec": {"type": "ClusterIP", "ports": ports}})
    };
    let one = service(json!([{"port": 80, "nodePort": 30080}]));
    let two = service(json!([{"port": 80, "nodePort": 30080}, {"port": 81, "nodePort": 30081}]));
    assert!(denied(&webhook, &one, None, &ns, &tenant).is_empty());
    assert_eq!(
        denied(&engine, &one, None, &ns, &tenant),
        BTreeSet::from(["node-port".to_owned()])
    );
    assert_eq!(
        denied(&webhook, &two, Some(&one), &ns, &tenant),
        BTreeSet::from(["node-port".to_owned()])
    );
    // An engine not made for a webhook next to policies leaves nothing out.
    assert!(engine.delegated_checks().is_empty());
}

/// Two tenants with different registries, as `policy vap --tenants` prints them.
fn two_tenants() -> Vec<tenantry_policy::TenantInfo> {
    let (_, shop) = shop();
    let mut blog = shop.clone();
    blog.name = "blog".to_owned();
    blog.namespaces = vec!["blog".to_owned(), "blog-staging".to_owned()];
    blog.registries = vec!["index.docker.io/acme".to_owned(), "nginx".to_owned()];
    blog.network_peers = vec!["monitoring".to_owned()];
    vec![shop, blog]
}

#[test]
fn per_tenant_objects_are_typed_and_each_tenant_gets_its_own_binding_and_parameters() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let engine = Engine::new(&platform(EVERYTHING));
    let docs = vap::generate_tenants(&engine, &two_tenants(), &VapOptions::default());
    let crd = vap::params_crd();
    assert_eq!(round_trip::<CustomResourceDefinition>(&crd), crd);
    assert_eq!(crd["spec"]["scope"], "Cluster", "no tenant role reaches it");
    let named = |name: &str| -> &Value {
        docs.iter()
            .find(|d| d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    // The policies first, then per tenant its parameters and one binding per policy.
    let names: Vec<&str> = docs
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "tenantry-allowed-registries",
            "tenantry-restrict-secret-stores-tenant",
            "tenantry-restrict-network-policies",
            "tenantry-tenant-placement-tenant",
            "tenantry-allowed-classes",
            "tenantry-flux-lockdown-tenant",
            "tenantry-shop",
            "tenantry-allowed-registries.shop",
            "tenantry-restrict-secret-stores-tenant.shop",
            "tenantry-restrict-network-policies.shop",
            "tenantry-tenant-placement-tenant.shop",
            "tenantry-allowed-classes.shop",
            "tenantry-flux-lockdown-tenant.shop",
            "tenantry-blog",
            "tenantry-allowed-registries.blog",
            "tenantry-restrict-secret-stores-tenant.blog",
            "tenantry-restrict-network-policies.blog",
            "tenantry-tenant-placement-tenant.blog",
            "tenantry-allowed-classes.blog",
            "tenantry-flux-lockdown-tenant.blog",
        ]
    );
    for policy in &docs[..6] {
        assert_eq!(round_trip::<ValidatingAdmissionPolicy>(policy), *policy);
        assert_eq!(
            policy["spec"]["paramKind"],
            serde_json::json!({"apiVersion": "tenantry.dev/v1alpha1", "kind": "GuardrailParameters"})
        );
    }
    for (tenant, prefixes, namespaces, peers) in [
        (
            "shop",
            serde_json::json!(["ghcr.io/acme"]),
            serde_json::json!(["shop"]),
            serde_json::json!([]),
        ),
        // Normalised as the engine reads the entries: index.docker.io is docker.io, and a
        // bare name is a Docker Hub path (not library/).
        (
            "blog",
            serde_json::json!(["docker.io/acme", "docker.io/nginx"]),
            serde_json::json!(["blog", "blog-staging"]),
            serde_json::json!(["monitoring"]),
        ),
    ] {
        let params = named(&format!("tenantry-{tenant}"));
        assert_eq!(params["kind"], "GuardrailParameters");
        assert_eq!(params["spec"]["tenant"], tenant);
        assert_eq!(params["spec"]["registryPrefixes"], prefixes);
        // The namespaces its network policies may name besides the platform's shared ones.
        assert_eq!(params["spec"]["namespaces"], namespaces);
        assert_eq!(params["spec"]["networkPeers"], peers);
        assert_eq!(
            params["spec"]["nodeSelector"],
            serde_json::json!([{"key": "pool", "value": "shared"}])
        );
        assert_eq!(
            params["spec"]["tolerations"],
            serde_json::json!({"allowed": [{"key": "dedicated", "operator": "Exists"}]})
        );
        assert!(
            params["metadata"]["labels"]
                .get("example.org/tenant")
                .is_none(),
            "not the tenant label: prune and offboarding must not take it"
        );
        for policy in [
            "tenantry-allowed-registries",
            "tenantry-restrict-network-policies",
            "tenantry-tenant-placement-tenant",
        ] {
            let binding = named(&format!("{policy}.{tenant}"));
            assert_eq!(
                round_trip::<ValidatingAdmissionPolicyBinding>(binding),
                *binding
            );
            assert_eq!(binding["spec"]["policyName"], policy);
            assert_eq!(
                binding["spec"]["matchResources"]["namespaceSelector"],
                serde_json::json!({"matchLabels": {"example.org/tenant": tenant}})
            );
            assert_eq!(
                binding["spec"]["paramRef"],
                serde_json::json!({"name": params["metadata"]["name"], "parameterNotFoundAction": "Deny"})
            );
        }
    }
    // The platform-wide stream is unchanged: per-tenant policies come only with their tenants.
    assert!(
        vap::generate(&engine, &VapOptions::default())
            .iter()
            .all(|d| d["spec"].get("paramKind").is_none())
    );
}

#[test]
fn per_tenant_checks_are_compiled_completely_but_stay_with_the_webhook() {
    let engine = Engine::new(&platform(EVERYTHING));
    let registries: Vec<_> = vap::compiled_checks(&engine)
        .into_iter()
        .filter(|c| c.policy == "allowed-registries")
        .collect();
    assert_eq!(
        registries.iter().map(|c| c.check).collect::<Vec<_>>(),
        ["invalid-image", "registry-not-allowed"]
    );
    assert!(registries.iter().all(|c| c.complete && c.per_tenant));
    for check in ["node-selector", "tolerations", "network-policy-reach"] {
        let compiled: Vec<_> = vap::compiled_checks(&engine)
            .into_iter()
            .filter(|c| c.check == check)
            .collect();
        // Once, per tenant: the tenant's own list decides, never the platform's bound.
        assert_eq!(compiled.len(), 1, "{compiled:?}");
        assert!(
            compiled[0].complete && compiled[0].per_tenant,
            "{compiled:?}"
        );
    }
    // A tenant whose binding is not installed yet would otherwise be judged by neither.
    assert!(
        vap::delegated_checks(&engine)
            .iter()
            .all(|c| c.policy != "allowed-registries")
    );
    let (ns, tenant) = shop();
    let webhook = vap::webhook_engine(engine);
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "evil.example/app"}]}});
    let judged = denied(&webhook, &pod, None, &ns, &tenant);
    assert!(judged.contains("registry-not-allowed"), "{judged:?}");
    assert!(judged.contains("node-selector"), "{judged:?}");
    // Likewise a network policy opening the tenant to every namespace.
    let open = serde_json::json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "n", "namespace": "shop"},
        "spec": {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}});
    assert_eq!(
        denied(&webhook, &open, None, &ns, &tenant),
        BTreeSet::from(["network-policy-reach".to_owned()])
    );
}

#[test]
fn tenant_output() {
    let engine = default_engine();
    let mut docs = vec![vap::params_crd()];
    docs.extend(vap::generate_tenants(
        &engine,
        &two_tenants(),
        &VapOptions::default(),
    ));
    insta::assert_snapshot!(vap::to_yaml(&docs));
}
