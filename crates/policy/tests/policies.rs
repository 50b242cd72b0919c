//! Table tests for every platform policy, through the public engine API: each pod policy on
//! containers, init and ephemeral containers, every pod controller's template, and updates;
//! each object policy on creates, updates and the admission/check differences.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tenantry_api::Platform;
use tenantry_policy::{
    Context, Engine, EngineError, Level, Mode, NamespaceInfo, Operation, Severity, TenantInfo,
    UserInfo, Version, Violation,
};

/// A named input and the (check, path) pairs it must produce.
type Case = (&'static str, Value, Vec<(&'static str, &'static str)>);
/// An admission request (operation, object, old object) and the (check, path) pairs it must
/// produce.
type AdmissionCase<'a> = (
    Operation,
    &'a Value,
    Option<&'a Value>,
    Vec<(&'static str, &'static str)>,
);

fn tenant() -> TenantInfo {
    TenantInfo {
        name: "shop".to_owned(),
        namespaces: vec!["shop".to_owned(), "shop-dev".to_owned()],
        service_account: "shop".to_owned(),
        registries: vec!["ghcr.io/acme".to_owned(), "docker.io/library".to_owned()],
        pod_security: Level::Restricted,
        proxy_kubeconfig_secret: None,
        cluster_role: None,
        network_peers: Vec::new(),
        placement: Default::default(),
        classes: Default::default(),
        vap_bound: Vec::new(),
    }
}

/// An engine running exactly `policy`.
fn only(policy: &str) -> Engine {
    Engine::new(&Platform::default())
        .with_selection(Some(&[policy.to_owned()]), None, None)
        .expect("known policy")
}

/// (check, path) of every violation, in order.
fn found(violations: &[Violation]) -> Vec<(String, String)> {
    violations
        .iter()
        .map(|v| (v.check.clone(), v.path.clone()))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(c, p)| ((*c).to_owned(), (*p).to_owned()))
        .collect()
}

/// A compliant, hardened container.
fn container(name: &str, image: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
    })
}

fn pod_spec(containers: Vec<Value>) -> Value {
    json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": containers,
    })
}

/// Every kind whose pod template is judged, with where the template's spec sits.
const CONTROLLERS: [(&str, &str, &str); 9] = [
    ("v1", "Pod", "spec"),
    ("apps/v1", "Deployment", "spec.template.spec"),
    ("apps/v1", "StatefulSet", "spec.template.spec"),
    ("apps/v1", "DaemonSet", "spec.template.spec"),
    ("apps/v1", "ReplicaSet", "spec.template.spec"),
    ("v1", "ReplicationController", "spec.template.spec"),
    ("batch/v1", "Job", "spec.template.spec"),
    ("batch/v1", "CronJob", "spec.jobTemplate.spec.template.spec"),
    ("v1", "PodTemplate", "template.spec"),
];

/// `spec` placed where `kind` keeps its pod spec.
fn wrap(api_version: &str, kind: &str, spec: Value) -> Value {
    let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": spec});
    let mut object = json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "web", "namespace": "shop"},
    });
    match kind {
        "Pod" => object["spec"] = template["spec"].clone(),
        "CronJob" => {
            object["spec"] =
                json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}})
        }
        "PodTemplate" => object["template"] = template,
        _ => object["spec"] = json!({"template": template}),
    }
    object
}

/// Run a pod-spec table against every controller kind: the findings must be the same, at
/// paths under each kind's template.
fn assert_pod_table(engine: &Engine, ctx: &Context<'_>, spec: &Value, expected: &[(&str, &str)]) {
    for (api_version, kind, prefix) in CONTROLLERS {
        let object = wrap(api_version, kind, spec.clone());
        let got = found(&engine.evaluate(&object, ctx));
        let want: Vec<(String, String)> = expected
            .iter()
            .map(|(c, p)| ((*c).to_owned(), format!("{prefix}.{p}")))
            .collect();
        assert_eq!(got, want, "{kind} with spec {spec}");
    }
}

#[test]
fn require_requests_limits_table() {
    let engine = only("require-requests-limits");
    let ctx = Context::check(None);
    let bare = json!({"name": "bare", "image": "nginx"});
    let cases: Vec<Case> = vec![
        (
            "compliant",
            pod_spec(vec![container("web", "nginx")]),
            vec![],
        ),
        (
            "container without resources",
            json!({"containers": [container("ok", "nginx"), bare.clone()]}),
            vec![
                ("cpu-request", "containers[1].resources.requests.cpu"),
                ("memory-request", "containers[1].resources.requests.memory"),
                ("memory-limit", "containers[1].resources.limits.memory"),
            ],
        ),
        (
            "init container without resources",
            json!({"initContainers": [bare.clone()], "containers": [container("web", "nginx")]}),
            vec![
                ("cpu-request", "initContainers[0].resources.requests.cpu"),
                (
                    "memory-request",
                    "initContainers[0].resources.requests.memory",
                ),
                ("memory-limit", "initContainers[0].resources.limits.memory"),
            ],
        ),
        (
            "ephemeral containers cannot set resources and are exempt",
            json!({"containers": [container("web", "nginx")], "ephemeralContainers": [bare.clone()]}),
            vec![],
        ),
        (
            "limits alone satisfy requests (the API server defaults them)",
            json!({"containers": [{"name": "l", "image": "nginx", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}),
            vec![],
        ),
        (
            "a request is not a limit",
            json!({"containers": [{"name": "r", "image": "nginx", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}),
            vec![("memory-limit", "containers[0].resources.limits.memory")],
        ),
        (
            "pod-level resources cover every container",
            json!({"resources": {"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}}, "containers": [bare.clone()]}),
            vec![],
        ),
        (
            "null values are not values",
            json!({"containers": [{"name": "n", "resources": {"requests": {"cpu": null, "memory": "1Gi"}, "limits": {"memory": "1Gi"}}}]}),
            vec![("cpu-request", "containers[0].resources.requests.cpu")],
        ),
    ];
    for (name, spec, expected) in cases {
        eprintln!("case: {name}");
        assert_pod_table(&engine, &ctx, &spec, &expected);
    }
}

#[test]
fn allowed_registries_table() {
    let engine = only("allowed-registries");
    let shop = tenant();
    let ctx = Context::check(Some(&shop));
    let image = |i: &str| json!({"name": "c", "image": i});
    let cases: Vec<Case> = vec![
        (
            "allowed registries and implicit docker.io/library",
            json!({"containers": [image("ghcr.io/acme/web:1.2"), image("nginx:1.27"), image("docker.io/library/redis")]}),
            vec![],
        ),
        (
            "a path-segment lookalike is another registry path",
            json!({"containers": [image("ghcr.io/acme-evil/web:1")]}),
            vec![("registry-not-allowed", "containers[0].image")],
        ),
        (
            "a Docker Hub user image is not docker.io/library",
            json!({"containers": [image("acme/web")]}),
            vec![("registry-not-allowed", "containers[0].image")],
        ),
        (
            "init and ephemeral containers are judged too",
            json!({
                "initContainers": [image("quay.io/x/y")],
                "containers": [image("nginx")],
                "ephemeralContainers": [image("busybox"), image("evil.io/debug")],
            }),
            vec![
                ("registry-not-allowed", "initContainers[0].image"),
                ("registry-not-allowed", "ephemeralContainers[1].image"),
            ],
        ),
        (
            "image volumes are images",
            json!({"containers": [image("nginx")], "volumes": [
                {"name": "ok", "image": {"reference": "ghcr.io/acme/data:1"}},
                {"name": "bad", "image": {"reference": "ghcr.io/other/data:1"}},
            ]}),
            vec![("registry-not-allowed", "volumes[1].image.reference")],
        ),
        (
            "malformed references are refused, not guessed",
            json!({"containers": [image("ghcr.io/acme/WEB:1")]}),
            vec![("invalid-image", "containers[0].image")],
        ),
        (
            "registry ports are part of the registry",
            json!({"containers": [image("ghcr.io:443/acme/web")]}),
            vec![("registry-not-allowed", "containers[0].image")],
        ),
    ];
    for (name, spec, expected) in cases {
        eprintln!("case: {name}");
        assert_pod_table(&engine, &ctx, &spec, &expected);
    }

    // A tenant with no registries is not restricted, and says so.
    let open = TenantInfo {
        registries: Vec::new(),
        ..tenant()
    };
    let open_ctx = Context::check(Some(&open));
    let evil = wrap("v1", "Pod", json!({"containers": [image("evil.io/x")]}));
    assert!(engine.evaluate(&evil, &open_ctx).is_empty());
    assert!(engine.skipped(&open_ctx)[0].reason.contains("any registry"));
    // Without a tenant, nothing is compared, and that is reported as skipped.
    let none = Context::check(None);
    assert!(engine.evaluate(&evil, &none).is_empty());
    assert_eq!(engine.skipped(&none)[0].policy, "allowed-registries");
    assert!(engine.skipped(&ctx).is_empty());
}

#[test]
fn image_pull_policy_and_digest_tables() {
    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let pull = only("image-pull-policy-always");
    let digest = only("require-digest");
    let ctx = Context::check(None);
    let c = |image: &str, policy: Option<&str>| {
        let mut c = json!({"name": "c", "image": image});
        if let Some(p) = policy {
            c["imagePullPolicy"] = json!(p);
        }
        c
    };
    let pinned = format!("ghcr.io/acme/web:1@{DIGEST}");
    let spec = json!({
        "initContainers": [c("nginx:1.27", None)],
        "containers": [c("nginx", None), c("nginx:latest", Some("IfNotPresent")), c(&pinned, Some("Always"))],
        "ephemeralContainers": [c(&pinned, None)],
        "volumes": [{"name": "v", "image": {"reference": "ghcr.io/acme/data:1", "pullPolicy": "Always"}}],
    });
    assert_pod_table(
        &pull,
        &ctx,
        &spec,
        &[
            ("image-pull-policy", "initContainers[0].imagePullPolicy"),
            ("image-pull-policy", "containers[1].imagePullPolicy"),
            (
                "image-pull-policy",
                "ephemeralContainers[0].imagePullPolicy",
            ),
        ],
    );
    assert_pod_table(
        &digest,
        &ctx,
        &spec,
        &[
            ("image-digest", "initContainers[0].image"),
            ("image-digest", "containers[0].image"),
            ("image-digest", "containers[1].image"),
            ("image-digest", "volumes[0].image.reference"),
        ],
    );
    // Both are off unless tenantry.yaml or --policy turns them on.
    let defaults = Engine::new(&Platform::default());
    assert!(
        !defaults
            .enabled_policies(Mode::Check)
            .contains(&"require-digest")
    );
    assert!(
        !defaults
            .enabled_policies(Mode::Check)
            .contains(&"image-pull-policy-always")
    );
}

#[test]
fn pod_policies_skip_updates_that_keep_the_template() {
    let engine = only("require-requests-limits");
    let bad = json!({"containers": [{"name": "web", "image": "nginx"}]});
    let namespace = NamespaceInfo {
        name: "shop".to_owned(),
        labels: BTreeMap::from([("tenantry.dev/tenant".to_owned(), "shop".to_owned())]),
    };
    let user = UserInfo {
        username: "system:serviceaccount:shop:shop".to_owned(),
        groups: vec![],
    };
    for (api_version, kind, _) in CONTROLLERS {
        let old = wrap(api_version, kind, bad.clone());
        let mut relabelled = old.clone();
        relabelled["metadata"]["labels"] = json!({"team": "a"});
        let mut reimaged = old.clone();
        let spec_path: &[&str] = match kind {
            "Pod" => &["spec"],
            "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
            "PodTemplate" => &["template", "spec"],
            _ => &["spec", "template", "spec"],
        };
        let spec = spec_path.iter().fold(&mut reimaged, |v, k| &mut v[*k]);
        spec["containers"][0]["image"] = json!("nginx:1.28");
        let update = |object: &Value| {
            engine.evaluate(
                object,
                &Context {
                    mode: Mode::Admission,
                    operation: Operation::Update,
                    namespace: Some(&namespace),
                    tenant: None,
                    user: Some(&user),
                    old_object: Some(&old),
                },
            )
        };
        assert!(
            update(&relabelled).is_empty(),
            "{kind}: metadata-only update"
        );
        assert_eq!(update(&reimaged).len(), 3, "{kind}: new image, new pods");
    }
}

#[test]
fn service_policies_table() {
    let ctx = Context::check(None);
    let service = |spec: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec});
    let cases: Vec<Case> = vec![
        ("no-nodeport", service(json!({"type": "ClusterIP"})), vec![]),
        (
            "no-nodeport",
            service(json!({"type": "NodePort"})),
            vec![("node-port", "spec.type")],
        ),
        (
            "no-nodeport",
            service(
                json!({"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443, "nodePort": 30443}]}),
            ),
            vec![("node-port", "spec.ports[1].nodePort")],
        ),
        (
            "no-loadbalancer",
            service(json!({"type": "LoadBalancer"})),
            vec![("load-balancer", "spec.type")],
        ),
        ("no-loadbalancer", service(json!({})), vec![]),
        (
            "no-external-ips",
            service(json!({"externalIPs": ["1.2.3.4", "5.6.7.8"]})),
            vec![
                ("external-ips", "spec.externalIPs[0]"),
                ("external-ips", "spec.externalIPs[1]"),
            ],
        ),
        (
            "no-external-ips",
            service(json!({"externalIPs": []})),
            vec![],
        ),
    ];
    for (policy, object, expected) in cases {
        let got = found(&only(policy).evaluate(&object, &ctx));
        assert_eq!(got, pairs(&expected), "{policy} {object}");
    }
    // Only core Services: a CRD that happens to be called Service is not judged.
    let custom = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "spec": {"type": "NodePort"}});
    assert!(only("no-nodeport").evaluate(&custom, &ctx).is_empty());
}

fn admission<'a>(
    operation: Operation,
    namespace: &'a NamespaceInfo,
    user: &'a UserInfo,
    old: Option<&'a Value>,
) -> Context<'a> {
    Context {
        mode: Mode::Admission,
        operation,
        namespace: Some(namespace),
        tenant: None,
        user: Some(user),
        old_object: old,
    }
}

fn tenant_namespace() -> NamespaceInfo {
    NamespaceInfo {
        name: "shop".to_owned(),
        labels: BTreeMap::from([
            ("tenantry.dev/tenant".to_owned(), "shop".to_owned()),
            (
                "pod-security.kubernetes.io/enforce".to_owned(),
                "restricted".to_owned(),
            ),
        ]),
    }
}

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        username: name.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

#[test]
fn restrict_secret_stores_table() {
    let engine = only("restrict-secret-stores");
    let external_secret = |kind: &str| {
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {
                "secretStoreRef": {"kind": kind, "name": "openbao"},
                "data": [{"secretKey": "a", "remoteRef": {"key": "k"}, "sourceRef": {"storeRef": {"kind": "ClusterSecretStore", "name": "x"}}}],
                "dataFrom": [{"extract": {"key": "k"}}],
            }
        })
    };
    let push = json!({
        "apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
        "metadata": {"name": "p"},
        "spec": {"secretStoreRefs": [{"name": "openbao", "kind": "SecretStore"}, {"name": "platform", "kind": "ClusterSecretStore"}]}
    });
    let check = Context::check(None);
    assert_eq!(
        found(&engine.evaluate(&external_secret("ClusterSecretStore"), &check)),
        pairs(&[
            ("cluster-secret-store", "spec.secretStoreRef.kind"),
            (
                "cluster-secret-store",
                "spec.data[0].sourceRef.storeRef.kind"
            ),
        ])
    );
    assert_eq!(
        found(&engine.evaluate(&push, &check)),
        pairs(&[("cluster-secret-store", "spec.secretStoreRefs[1].kind")])
    );
    let cluster_store = json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore", "metadata": {"name": "x"}});
    assert_eq!(
        found(&engine.evaluate(&cluster_store, &check)),
        pairs(&[("cluster-scoped-secret-object", "kind")])
    );

    // At admission: tenants are refused, the platform's reconcilers are not.
    let ns = tenant_namespace();
    let object = external_secret("ClusterSecretStore");
    let tenant_user = user(
        "system:serviceaccount:shop:shop",
        &["system:serviceaccounts"],
    );
    let flux = user(
        "system:serviceaccount:flux-system:kustomize-controller",
        &[],
    );
    let tenantry = user("system:serviceaccount:tenantry-system:tenantry", &[]);
    assert_eq!(
        engine
            .evaluate(
                &object,
                &admission(Operation::Create, &ns, &tenant_user, None)
            )
            .len(),
        2
    );
    for reconciler in [&flux, &tenantry] {
        assert!(
            engine
                .evaluate(
                    &object,
                    &admission(Operation::Create, &ns, reconciler, None)
                )
                .is_empty(),
            "{}",
            reconciler.username
        );
    }
    // Cluster-scoped objects and platform namespaces are never judged at admission.
    let platform_ns = NamespaceInfo {
        name: "flux-system".to_owned(),
        labels: BTreeMap::new(),
    };
    assert!(
        engine
            .evaluate(
                &object,
                &admission(Operation::Create, &platform_ns, &tenant_user, None)
            )
            .is_empty()
    );

    // An update that keeps an existing violation is warned, not refused; a new one is refused.
    let old = external_secret("ClusterSecretStore");
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"a": "b"});
    let carried = engine.evaluate(
        &relabelled,
        &admission(Operation::Update, &ns, &tenant_user, Some(&old)),
    );
    assert_eq!(carried.len(), 2);
    assert!(carried.iter().all(|v| v.severity == Severity::Warn));
    let compliant = external_secret("SecretStore");
    let mut clean = compliant.clone();
    clean["spec"]["data"] = json!([]);
    let introduced = engine.evaluate(
        &old,
        &admission(Operation::Update, &ns, &tenant_user, Some(&clean)),
    );
    assert!(introduced.iter().all(|v| v.severity == Severity::Deny));
    assert_eq!(introduced.len(), 2);
    // Deleting is always allowed.
    assert!(
        engine
            .evaluate(
                &Value::Null,
                &admission(Operation::Delete, &ns, &tenant_user, Some(&old))
            )
            .is_empty()
    );
}

#[test]
fn flux_lockdown_table() {
    let engine = only("flux-lockdown");
    let shop = tenant();
    let with_tenant = Context::check(Some(&shop));
    let without = Context::check(None);
    let kustomization = |spec: Value| json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": "app", "namespace": "shop"}, "spec": spec});
    let release = |spec: Value| json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "app", "namespace": "shop"}, "spec": spec});
    let cases: Vec<Case> = vec![
        (
            "the tenant's own reconciliation",
            kustomization(
                json!({"serviceAccountName": "shop", "sourceRef": {"kind": "GitRepository", "name": "app"}, "targetNamespace": "shop-dev"}),
            ),
            vec![],
        ),
        (
            "no service account means Flux's own identity",
            kustomization(json!({"sourceRef": {"kind": "GitRepository", "name": "app"}})),
            vec![("service-account-name", "spec.serviceAccountName")],
        ),
        (
            "another service account",
            release(
                json!({"serviceAccountName": "default", "chart": {"spec": {"chart": "x", "sourceRef": {"kind": "HelmRepository", "name": "r"}}}}),
            ),
            vec![("service-account-name", "spec.serviceAccountName")],
        ),
        (
            "cross-namespace sources and dependencies",
            kustomization(json!({
                "serviceAccountName": "shop",
                "sourceRef": {"kind": "GitRepository", "name": "platform", "namespace": "flux-system"},
                "dependsOn": [{"name": "a"}, {"name": "b", "namespace": "shop"}, {"name": "c", "namespace": "other"}],
            })),
            vec![
                ("cross-namespace-ref", "spec.sourceRef.namespace"),
                ("cross-namespace-ref", "spec.dependsOn[2].namespace"),
            ],
        ),
        (
            "HelmRelease chart sources",
            release(json!({
                "serviceAccountName": "shop",
                "chart": {"spec": {"chart": "x", "sourceRef": {"kind": "HelmRepository", "name": "r", "namespace": "flux-system"}}},
                "chartRef": {"kind": "OCIRepository", "name": "c", "namespace": "other"},
                "storageNamespace": "kube-system",
            })),
            vec![
                ("cross-namespace-ref", "spec.chartRef.namespace"),
                ("cross-namespace-ref", "spec.chart.spec.sourceRef.namespace"),
                ("target-namespace", "spec.storageNamespace"),
            ],
        ),
        (
            "kubeConfig without a proxy secret for the tenant",
            kustomization(
                json!({"serviceAccountName": "shop", "kubeConfig": {"secretRef": {"name": "admin"}}, "targetNamespace": "kube-system"}),
            ),
            vec![
                ("kubeconfig", "spec.kubeConfig.secretRef.name"),
                ("target-namespace", "spec.targetNamespace"),
            ],
        ),
        (
            "image automation and notification refs stay home",
            json!({"apiVersion": "image.toolkit.fluxcd.io/v1beta2", "kind": "ImageUpdateAutomation", "metadata": {"name": "a", "namespace": "shop"},
                   "spec": {"sourceRef": {"kind": "GitRepository", "name": "g", "namespace": "flux-system"}}}),
            vec![("cross-namespace-ref", "spec.sourceRef.namespace")],
        ),
    ];
    for (name, object, expected) in cases {
        assert_eq!(
            found(&engine.evaluate(&object, &with_tenant)),
            pairs(&expected),
            "{name}"
        );
    }

    // The proxy kubeconfig secret is the one kubeConfig a tenant may use.
    let proxied = TenantInfo {
        proxy_kubeconfig_secret: Some("shop-proxy".to_owned()),
        cluster_role: None,
        network_peers: Vec::new(),
        placement: Default::default(),
        classes: Default::default(),
        ..tenant()
    };
    let proxied_ctx = Context::check(Some(&proxied));
    let via_proxy = kustomization(
        json!({"serviceAccountName": "shop", "kubeConfig": {"secretRef": {"name": "shop-proxy", "key": "kubeconfig"}}}),
    );
    assert!(engine.evaluate(&via_proxy, &proxied_ctx).is_empty());

    // Without a tenant: the service account must still be set; its name and kubeConfig are
    // not judged, and the output says so.
    let any_sa = kustomization(
        json!({"serviceAccountName": "whoever", "kubeConfig": {"secretRef": {"name": "x"}}}),
    );
    assert!(engine.evaluate(&any_sa, &without).is_empty());
    assert_eq!(engine.skipped(&without)[0].policy, "flux-lockdown");
    let unnamespaced = json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": "app"},
        "spec": {"serviceAccountName": "shop", "sourceRef": {"kind": "GitRepository", "name": "g", "namespace": "shop"}}});
    // Its own namespace is unknown and no tenant says which are allowed: refuse explicit ones.
    assert_eq!(engine.evaluate(&unnamespaced, &without).len(), 1);
    // A tenant's namespaces are enough to accept it.
    assert!(engine.evaluate(&unnamespaced, &with_tenant).is_empty());

    // Remote bases in a kustomization.yaml: refused in check, not an admission matter.
    let kustomize = json!({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["deployment.yaml", "https://github.com/acme/base?ref=v1", "../base"],
        "components": ["github.com/acme/components//otel"]});
    assert_eq!(
        found(&engine.evaluate(&kustomize, &without)),
        pairs(&[
            ("remote-base", "resources[1]"),
            ("remote-base", "components[0]")
        ])
    );
    let ns = tenant_namespace();
    let tenant_user = user("system:serviceaccount:shop:shop", &[]);
    assert!(
        engine
            .evaluate(
                &kustomize,
                &admission(Operation::Create, &ns, &tenant_user, None)
            )
            .is_empty()
    );
}

#[test]
fn gateway_parent_table() {
    let engine = only("gateway-parent");
    let ctx = Context::check(None);
    let route = |parents: Value| json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "shop"}, "spec": {"parentRefs": parents}});
    let good = json!({"name": "platform", "namespace": "kube-system", "sectionName": "https"});
    let cases: Vec<(Value, Vec<(&str, &str)>)> = vec![
        (json!([good.clone()]), vec![]),
        (json!([]), vec![]),
        (
            json!([{"name": "platform", "namespace": "kube-system"}]),
            vec![("gateway-parent", "spec.parentRefs[0].sectionName")],
        ),
        (
            json!([good.clone(), {"name": "platform", "namespace": "kube-system", "sectionName": "admin"}]),
            vec![("gateway-parent", "spec.parentRefs[1].sectionName")],
        ),
        (
            json!([{"name": "platform", "sectionName": "https"}]),
            vec![("gateway-parent", "spec.parentRefs[0].namespace")],
        ),
        (
            json!([{"name": "mine", "namespace": "shop", "sectionName": "https"}]),
            vec![("gateway-parent", "spec.parentRefs[0].name")],
        ),
        (
            json!([{"group": "", "kind": "Service", "name": "platform", "namespace": "kube-system"}]),
            vec![("gateway-parent", "spec.parentRefs[0].kind")],
        ),
    ];
    for (parents, expected) in cases {
        assert_eq!(
            found(&engine.evaluate(&route(parents.clone()), &ctx)),
            pairs(&expected),
            "{parents}"
        );
    }
    let grpc = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute", "metadata": {"name": "g"}, "spec": {"parentRefs": [{"name": "other", "namespace": "kube-system", "sectionName": "https"}]}});
    assert_eq!(engine.evaluate(&grpc, &ctx).len(), 1);

    // With no gateway configured there is nothing to compare against, and that is said.
    let no_gateway = Engine::new(&Platform {
        gateway: None,
        ..Platform::default()
    })
    .with_selection(Some(&["gateway-parent".to_owned()]), None, None)
    .expect("known");
    assert!(
        no_gateway
            .evaluate(&route(json!([{"name": "x"}])), &ctx)
            .is_empty()
    );
    assert_eq!(no_gateway.skipped(&ctx)[0].policy, "gateway-parent");
}

#[test]
fn protect_platform_objects_table() {
    let engine = only("protect-platform-objects");
    let ns = tenant_namespace();
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "tenantry-quota", "namespace": "shop",
        "labels": {"app.kubernetes.io/managed-by": "tenantry", "tenantry.dev/tenant": "shop"}}, "spec": {"hard": {"pods": "50"}}});
    let mut raised = quota.clone();
    raised["spec"]["hard"]["pods"] = json!("5000");
    let mut unlabelled = raised.clone();
    unlabelled["metadata"]["labels"] = json!({});
    let tenant_user = user(
        "alice@example.com",
        &["shop-owners", "system:authenticated"],
    );
    let platform_identities = [
        user(
            "system:serviceaccount:flux-system:kustomize-controller",
            &[],
        ),
        // Adds its finalizer to the tenant's managed GitRepository/OCIRepository.
        user("system:serviceaccount:flux-system:source-controller", &[]),
        user("system:serviceaccount:tenantry-system:tenantry", &[]),
        user(
            "system:serviceaccount:kube-system:namespace-controller",
            &[],
        ),
        user("system:kube-controller-manager", &[]),
        user("admin", &["system:masters"]),
    ];
    let cases: Vec<AdmissionCase<'_>> = vec![
        (
            Operation::Update,
            &raised,
            Some(&quota),
            vec![(
                "managed-object",
                "metadata.labels[app.kubernetes.io/managed-by]",
            )],
        ),
        (
            Operation::Update,
            &unlabelled,
            Some(&quota),
            vec![(
                "managed-object",
                "metadata.labels[app.kubernetes.io/managed-by]",
            )],
        ),
        (
            Operation::Delete,
            &Value::Null,
            Some(&quota),
            vec![(
                "managed-object",
                "metadata.labels[app.kubernetes.io/managed-by]",
            )],
        ),
        (
            Operation::Create,
            &quota,
            None,
            vec![(
                "managed-object",
                "metadata.labels[app.kubernetes.io/managed-by]",
            )],
        ),
        (
            Operation::Update,
            &quota,
            Some(&unlabelled),
            vec![(
                "managed-object",
                "metadata.labels[app.kubernetes.io/managed-by]",
            )],
        ),
        (Operation::Create, &unlabelled, None, vec![]),
        (Operation::Delete, &Value::Null, Some(&unlabelled), vec![]),
    ];
    for (operation, object, old, expected) in &cases {
        let got = engine.evaluate(object, &admission(*operation, &ns, &tenant_user, *old));
        assert_eq!(found(&got), pairs(expected), "{operation:?} {object}");
        assert!(
            got.iter().all(|v| v.policy == "protect-platform-objects"),
            "{operation:?}: findings attributed to the wrong policy: {got:?}"
        );
        for platform in &platform_identities {
            assert!(
                engine
                    .evaluate(object, &admission(*operation, &ns, platform, *old))
                    .is_empty(),
                "{} must never be blocked",
                platform.username
            );
        }
    }

    // Namespace labels: Pod Security and tenant labels are the platform's.
    let namespace = |labels: Value| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": labels}});
    let before = namespace(
        json!({"tenantry.dev/tenant": "shop", "pod-security.kubernetes.io/enforce": "restricted", "team": "a"}),
    );
    let loosened = namespace(
        json!({"tenantry.dev/tenant": "shop", "pod-security.kubernetes.io/enforce": "privileged", "team": "b"}),
    );
    let moved = namespace(
        json!({"tenantry.dev/tenant": "other", "pod-security.kubernetes.io/enforce": "restricted"}),
    );
    let ctx = |operation, old| Context {
        mode: Mode::Admission,
        operation,
        namespace: None,
        tenant: None,
        user: Some(&tenant_user),
        old_object: old,
    };
    assert_eq!(
        found(&engine.evaluate(&loosened, &ctx(Operation::Update, Some(&before)))),
        pairs(&[(
            "namespace-labels",
            "metadata.labels[pod-security.kubernetes.io/enforce]"
        )])
    );
    assert_eq!(
        found(&engine.evaluate(&moved, &ctx(Operation::Update, Some(&before)))),
        pairs(&[("namespace-labels", "metadata.labels[tenantry.dev/tenant]")])
    );
    let team_only = namespace(
        json!({"tenantry.dev/tenant": "shop", "pod-security.kubernetes.io/enforce": "restricted", "team": "c"}),
    );
    assert!(
        engine
            .evaluate(&team_only, &ctx(Operation::Update, Some(&before)))
            .is_empty()
    );
    assert_eq!(
        found(&engine.evaluate(&moved, &ctx(Operation::Create, None))).len(),
        2,
        "a new namespace claiming a tenant and a level"
    );
    // check mode never runs it.
    assert!(engine.evaluate(&raised, &Context::check(None)).is_empty());
}

#[test]
fn tenant_repo_contract_table() {
    let engine = Engine::new(&Platform::default())
        .with_selection(Some(&["tenant-repo-contract".to_owned()]), None, None)
        .expect("known")
        .with_repo_contract("shop");
    let ctx = Context::check(None);
    let cases: Vec<(Value, Vec<(&str, &str)>)> = vec![
        (
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "eA=="}}),
            vec![("plaintext-secret", "data")],
        ),
        (
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"a": "x"}}),
            vec![("plaintext-secret", "stringData")],
        ),
        (
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque"}),
            vec![],
        ),
        (
            json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "ENC[AES256_GCM,data:x]"}, "sops": {"mac": "ENC[...]", "lastmodified": "2024-01-01T00:00:00Z"}}),
            vec![("sops-file", "sops")],
        ),
        (
            json!({"password": "ENC[AES256_GCM,data:x]", "sops": {"version": "3.8.1"}}),
            vec![("sops-file", "sops")],
        ),
        (
            json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "openbao"}}),
            vec![],
        ),
        (
            json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault"}}),
            vec![("secret-store", "metadata.name")],
        ),
        (
            json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore", "metadata": {"name": "openbao"}}),
            vec![("secret-store", "kind")],
        ),
        (
            json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "e"}, "spec": {"secretStoreRef": {"name": "vault", "kind": "SecretStore"}}}),
            vec![("secret-store", "spec.secretStoreRef.name")],
        ),
    ];
    for (object, expected) in cases {
        assert_eq!(
            found(&engine.evaluate(&object, &ctx)),
            pairs(&expected),
            "{object}"
        );
    }

    // Repository-wide: some Deployment container must be named after the repository.
    let deployment = |names: &[&str]| {
        let containers: Vec<Value> = names
            .iter()
            .map(|n| json!({"name": n, "image": "x"}))
            .collect();
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": containers}}}})
    };
    let mut scan = engine.repo_scan().expect("contract selected");
    scan.observe(&deployment(&["redis"]));
    let mut other = engine.repo_scan().expect("contract selected");
    other.observe(&deployment(&["proxy", "shop"]));
    scan.merge(other);
    assert!(scan.finish().is_empty());
    let mut missing = engine.repo_scan().expect("contract selected");
    missing.observe(&deployment(&["app"]));
    let violations = missing.finish();
    assert_eq!(
        found(&violations),
        pairs(&[("container-name", "spec.template.spec.containers")])
    );
    assert_eq!(violations[0].object.name, "d");
    // Without a repository name the contract is not checked at all.
    let unnamed = Engine::new(&Platform::default());
    assert!(unnamed.repo_scan().is_none());
    assert!(
        unnamed
            .evaluate(
                &json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "b"}}),
                &ctx
            )
            .is_empty()
    );
}

#[test]
fn pod_security_level_comes_from_selection_namespace_tenant_then_restricted() {
    let engine = only("pod-security");
    // Runs as root: fine at baseline, denied at restricted.
    let root = wrap(
        "apps/v1",
        "Deployment",
        json!({"containers": [{"name": "app", "image": "x"}]}),
    );
    let checks = |violations: &[Violation], severity: Severity| -> Vec<String> {
        violations
            .iter()
            .filter(|v| v.severity == severity)
            .map(|v| v.check.clone())
            .collect()
    };
    let restricted = [
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "runAsNonRoot",
        "seccompProfile_restricted",
    ];

    // No tenant, no labels: restricted.
    assert_eq!(
        checks(
            &engine.evaluate(&root, &Context::check(None)),
            Severity::Deny
        ),
        restricted
    );

    // A baseline tenant in check: allowed, with restricted findings as warnings, as the
    // namespace Tenantry renders (enforce baseline, warn restricted) would answer.
    let legacy = TenantInfo {
        pod_security: Level::Baseline,
        ..tenant()
    };
    let got = engine.evaluate(&root, &Context::check(Some(&legacy)));
    assert!(checks(&got, Severity::Deny).is_empty());
    assert_eq!(checks(&got, Severity::Warn), restricted);

    // --level wins over the tenant.
    let strict = only("pod-security")
        .with_selection(None, Some(Level::Restricted), Some(Version::V1(30)))
        .expect("valid");
    let got = strict.evaluate(&root, &Context::check(Some(&legacy)));
    assert_eq!(checks(&got, Severity::Deny), restricted);
    assert!(
        got[0].message.contains("restricted:v1.30"),
        "{}",
        got[0].message
    );

    // Admission: the namespace's labels decide, including audit/warn warnings.
    let labelled = |pairs: &[(&str, &str)]| NamespaceInfo {
        name: "shop".to_owned(),
        labels: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain([("tenantry.dev/tenant".to_owned(), "shop".to_owned())])
            .collect(),
    };
    let someone = user("system:serviceaccount:shop:shop", &[]);
    let baseline_ns = labelled(&[
        ("pod-security.kubernetes.io/enforce", "baseline"),
        ("pod-security.kubernetes.io/warn", "restricted"),
    ]);
    let got = engine.evaluate(
        &root,
        &admission(Operation::Create, &baseline_ns, &someone, None),
    );
    assert!(checks(&got, Severity::Deny).is_empty());
    assert_eq!(checks(&got, Severity::Warn), restricted);
    // An unparsable enforce level means restricted (upstream); an unparsable warn level
    // means nothing (fail open).
    let garbled = labelled(&[
        ("pod-security.kubernetes.io/enforce", "strict"),
        ("pod-security.kubernetes.io/warn", "loud"),
    ]);
    let got = engine.evaluate(
        &root,
        &admission(Operation::Create, &garbled, &someone, None),
    );
    assert_eq!(checks(&got, Severity::Deny), restricted);
    // The label wins over the tenant's level.
    let privileged_ns = labelled(&[("pod-security.kubernetes.io/enforce", "privileged")]);
    let admitted = Context {
        tenant: Some(&legacy),
        ..admission(Operation::Create, &privileged_ns, &someone, None)
    };
    assert!(engine.evaluate(&root, &admitted).is_empty());
}

#[test]
fn engine_configuration_errors_name_what_to_fix() {
    let err = Engine::new(&Platform::default())
        .with_selection(
            Some(&["pod-security".to_owned(), "no-such".to_owned()]),
            None,
            None,
        )
        .expect_err("unknown policy");
    let EngineError::UnknownPolicy { given, valid } = &err;
    assert_eq!(given, "no-such");
    assert_eq!(valid, Engine::policy_ids());
    assert!(err.to_string().contains("require-requests-limits"));

    // Switching a policy off in tenantry.yaml removes it; --policy brings it back.
    let mut platform = Platform::default();
    platform.policies.no_node_port.enabled = false;
    let engine = Engine::new(&platform);
    assert!(
        !engine
            .enabled_policies(Mode::Check)
            .contains(&"no-nodeport")
    );
    let forced = engine
        .with_selection(Some(&["no-nodeport".to_owned()]), None, None)
        .expect("known");
    assert_eq!(forced.enabled_policies(Mode::Check), vec!["no-nodeport"]);
}

#[test]
fn default_engine_reports_in_policy_order_and_deterministically() {
    let engine = Engine::new(&Platform::default());
    let shop = tenant();
    let ctx = Context::check(Some(&shop));
    let object = wrap(
        "apps/v1",
        "Deployment",
        json!({"hostNetwork": true, "containers": [{"name": "app", "image": "evil.io/app"}]}),
    );
    let first = engine.evaluate(&object, &ctx);
    assert_eq!(first, engine.evaluate(&object, &ctx));
    let policies: Vec<&str> = first.iter().map(|v| v.policy).collect();
    let mut sorted = policies.clone();
    sorted.sort_by_key(|p| Engine::policy_ids().iter().position(|id| id == p));
    assert_eq!(policies, sorted);
    assert!(policies.contains(&"pod-security"));
    assert!(policies.contains(&"require-requests-limits"));
    assert!(policies.contains(&"allowed-registries"));
    assert_eq!(first[0].object.kind, "Deployment");
    assert_eq!(first[0].object.namespace.as_deref(), Some("shop"));
}

/// `check` and the webhook build their engine from the same parsed `tenantry.yaml` as
/// `render`: a value is refused once, when the file is read, with its path and line, and what
/// is accepted there is what the engine enforces. (Before, `v1.030` and `system:*:x` passed
/// `PlatformContext::new` and then made `Engine::new` fail.)
#[test]
fn platform_values_are_accepted_and_refused_once_for_every_command() {
    use tenantry_core::{PlatformContext, document::parse_platform};

    let file = |policies: &str| {
        format!("apiVersion: tenantry.dev/v1alpha1\nkind: Platform\npolicies:\n{policies}")
    };
    for (policies, path, line) in [
        (
            "  podSecurity:\n    version: v1.030\n",
            "policies.podSecurity.version",
            5,
        ),
        (
            "  protectPlatformObjects:\n    exemptUsers: [\"system:*:x\"]\n",
            "policies.protectPlatformObjects.exemptUsers[0]",
            5,
        ),
        (
            "  restrictSecretStores:\n    reconcilers:\n    - \"*\"\n",
            "policies.restrictSecretStores.reconcilers[0]",
            6,
        ),
    ] {
        let err = parse_platform(&file(policies)).expect_err(policies);
        let [problem] = err.problems.as_slice() else {
            panic!("{err}")
        };
        assert_eq!(problem.path.as_deref(), Some(path), "{err}");
        assert_eq!(problem.line, Some(line), "{err}");
        assert!(
            err.in_file(&"tenantry.yaml")
                .starts_with(&format!("tenantry.yaml:{line}:")),
            "{err}"
        );
    }

    let platform = parse_platform(&file(
        "  podSecurity:\n    version: v1.25\n  protectPlatformObjects:\n    exemptUsers: [\"ci-*\"]\n",
    ))
    .expect("valid");
    let ctx = PlatformContext::new(platform).expect("render accepts it");
    let engine = Engine::new(&ctx.platform);
    // The pinned version is the one enforced.
    let pinned = Engine::new(&Platform::default())
        .with_selection(None, None, Some(Version::V1(25)))
        .expect("valid selection");
    let pod = wrap(
        "v1",
        "Pod",
        json!({"containers": [{"name": "app", "image": "ghcr.io/acme/app"}]}),
    );
    let shop = tenant();
    let check = Context::check(Some(&shop));
    assert_eq!(engine.evaluate(&pod, &check), pinned.evaluate(&pod, &check));
    // The prefix pattern is the one honoured: `ci-bot` may change a managed object,
    // a tenant user may not.
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "tenantry-quota", "namespace": "shop",
        "labels": {"app.kubernetes.io/managed-by": "tenantry", "tenantry.dev/tenant": "shop"}}, "spec": {"hard": {"pods": "50"}}});
    let ns = tenant_namespace();
    let ci = user("ci-bot", &[]);
    let alice = user("alice", &[]);
    assert!(
        engine
            .evaluate(
                &Value::Null,
                &admission(Operation::Delete, &ns, &ci, Some(&quota))
            )
            .is_empty()
    );
    assert!(
        !engine
            .evaluate(
                &Value::Null,
                &admission(Operation::Delete, &ns, &alice, Some(&quota))
            )
            .is_empty()
    );
}

/// Pod Security judges a pod update again only when it could change the verdict, as the
/// PodSecurity plugin does (images, seccomp annotations, and here ephemeral containers, which
/// `kubectl debug` adds by an update), and a controller update only when its template changes.
#[test]
fn pod_security_judges_updates_only_when_they_could_change_the_pods() {
    let engine = only("pod-security");
    let ns = tenant_namespace();
    let someone = user("system:serviceaccount:shop:shop", &[]);
    let judged = |object: &Value, old: &Value| {
        !engine
            .evaluate(
                object,
                &admission(Operation::Update, &ns, &someone, Some(old)),
            )
            .is_empty()
    };
    let pod = wrap(
        "v1",
        "Pod",
        json!({"containers": [{"name": "app", "image": "a:1", "securityContext": {"privileged": true}}]}),
    );
    let mut relabelled = pod.clone();
    relabelled["metadata"]["labels"] = json!({"team": "a"});
    assert!(!judged(&relabelled, &pod), "labels only");
    let mut debugged = pod.clone();
    debugged["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox"}]);
    assert!(
        judged(&debugged, &pod),
        "kubectl debug adds an ephemeral container"
    );
    let mut seccomp = pod.clone();
    seccomp["metadata"]["annotations"] =
        json!({"seccomp.security.alpha.kubernetes.io/pod": "unconfined"});
    assert!(judged(&seccomp, &pod), "seccomp annotation changed");
    let mut reimaged = pod.clone();
    reimaged["spec"]["containers"][0]["image"] = json!("a:2");
    assert!(judged(&reimaged, &pod), "new image");

    let deployment = wrap(
        "apps/v1",
        "Deployment",
        json!({"containers": [{"name": "app", "image": "a:1"}]}),
    );
    let mut scaled = deployment.clone();
    scaled["spec"]["replicas"] = json!(3);
    assert!(!judged(&scaled, &deployment), "scaling keeps the template");
    let mut bumped = deployment.clone();
    bumped["spec"]["template"]["spec"]["containers"][0]["image"] = json!("a:2");
    assert!(judged(&bumped, &deployment), "template changed");
}

/// A platform whose tenants run on `pool: shared` nodes, may tolerate `dedicated=shop` and
/// use the `tenant-*` priority classes and the `standard` storage, `public` ingress,
/// `gvisor` runtime and `shared` gateway classes.
fn bounded_platform() -> Platform {
    use tenantry_api::tenant::{
        AllowedToleration, ClassList, Classes, Placement, TaintEffect, TolerationOperator,
    };
    let list = |allowed: &[&str], default: Option<&str>| ClassList {
        allowed: allowed.iter().map(|c| (*c).to_owned()).collect(),
        default: default.map(str::to_owned),
    };
    let mut platform = Platform::default();
    platform.defaults.placement = Some(Placement {
        node_selector: Some(BTreeMap::from([("pool".to_owned(), "shared".to_owned())])),
        tolerations: Some(vec![AllowedToleration {
            key: "dedicated".to_owned(),
            operator: Some(TolerationOperator::Equal),
            value: Some("shop".to_owned()),
            effect: Some(TaintEffect::NoSchedule),
        }]),
    });
    platform.defaults.classes = Some(Classes {
        priority: Some(list(
            &["tenant-high", "tenant-normal"],
            Some("tenant-normal"),
        )),
        storage: Some(list(&["standard"], Some("standard"))),
        ingress: Some(list(&["public"], None)),
        gateway: Some(list(&["shared"], None)),
        runtime: Some(list(&["gvisor"], None)),
    });
    platform
}

fn bounded(policy: &str) -> Engine {
    Engine::new(&bounded_platform())
        .with_selection(Some(&[policy.to_owned()]), None, None)
        .expect("known policy")
}

#[test]
fn tenant_placement_table() {
    let engine = bounded("tenant-placement");
    let ctx = Context::check(None);
    let placed = |extra: Value| {
        let mut spec = pod_spec(vec![container("web", "nginx")]);
        spec["nodeSelector"] = json!({"pool": "shared"});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };
    let cases: Vec<Case> = vec![
        ("on the tenant's nodes", placed(json!({})), vec![]),
        (
            "names its node",
            placed(json!({"nodeName": "control-plane-1"})),
            vec![("node-name", "nodeName")],
        ),
        (
            "no node selector",
            pod_spec(vec![container("web", "nginx")]),
            vec![("node-selector", "nodeSelector[\"pool\"]")],
        ),
        (
            "another pool",
            placed(json!({"nodeSelector": {"pool": "gpu"}})),
            vec![("node-selector", "nodeSelector[\"pool\"]")],
        ),
        (
            "stricter selector",
            placed(json!({"nodeSelector": {"pool": "shared", "zone": "a"}})),
            vec![],
        ),
        (
            "tolerates everything",
            placed(json!({"tolerations": [{"operator": "Exists"}]})),
            vec![("tolerations", "tolerations[0]")],
        ),
        (
            "tolerations: allowed, node conditions, control plane, another value, wider effect",
            placed(json!({"tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "shop", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "dedicated", "value": "payments", "effect": "NoSchedule"},
                {"key": "dedicated", "value": "shop"},
                {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"},
            ]})),
            vec![
                ("tolerations", "tolerations[2]"),
                ("tolerations", "tolerations[3]"),
                ("tolerations", "tolerations[4]"),
                ("tolerations", "tolerations[5]"),
            ],
        ),
    ];
    for (name, spec, expected) in cases {
        eprintln!("case: {name}");
        assert_pod_table(&engine, &ctx, &spec, &expected);
    }

    // The denial names the value and the allowed list.
    let pod = wrap(
        "v1",
        "Pod",
        placed(json!({"tolerations": [{"operator": "Exists"}]})),
    );
    let v = &engine.evaluate(&pod, &ctx)[0];
    assert!(v.message.contains("every taint"), "{}", v.message);
    assert!(
        v.remediation.contains("dedicated=shop:NoSchedule"),
        "{}",
        v.remediation
    );

    // Without platform bounds: nodeName and the every-taint wildcard are still refused.
    let open = only("tenant-placement");
    let pod = wrap(
        "v1",
        "Pod",
        json!({"nodeName": "n1", "tolerations": [{"operator": "Exists"}, {"key": "gpu", "operator": "Exists"}], "containers": [container("web", "nginx")]}),
    );
    assert_eq!(
        found(&open.evaluate(&pod, &ctx)),
        pairs(&[
            ("node-name", "spec.nodeName"),
            ("tolerations", "spec.tolerations[0]")
        ])
    );

    // Updates: a scheduled pod (nodeName set by the binding) updated without touching
    // placement is not judged; adding a wildcard toleration to it is.
    let ns = tenant_namespace();
    let scheduler = user("system:serviceaccount:shop:shop", &[]);
    let old = wrap("v1", "Pod", placed(json!({"nodeName": "node-7"})));
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"release": "2"});
    let update = admission(Operation::Update, &ns, &scheduler, Some(&old));
    assert!(engine.evaluate(&relabelled, &update).is_empty());
    let mut widened = old.clone();
    widened["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
    assert_eq!(
        found(&engine.evaluate(&widened, &update)),
        pairs(&[("tolerations", "spec.tolerations[0]")])
    );
    // A Deployment that already named a node is not frozen by a scale.
    let old = wrap("apps/v1", "Deployment", placed(json!({"nodeName": "n1"})));
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(3);
    let update = admission(Operation::Update, &ns, &scheduler, Some(&old));
    assert!(engine.evaluate(&scaled, &update).is_empty());
}

#[test]
fn allowed_classes_table() {
    let engine = bounded("allowed-classes");
    let ctx = Context::check(None);
    let with = |extra: Value| {
        let mut spec = pod_spec(vec![container("web", "nginx")]);
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };
    let ephemeral = |class: &str| {
        json!({"volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {
            "storageClassName": class, "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}}}}]})
    };
    let cases: Vec<Case> = vec![
        ("no classes", with(json!({})), vec![]),
        (
            "allowed classes",
            with(json!({"priorityClassName": "tenant-high", "runtimeClassName": "gvisor"})),
            vec![],
        ),
        (
            "system-node-critical",
            with(json!({"priorityClassName": "system-node-critical"})),
            vec![("priority-class", "priorityClassName")],
        ),
        (
            "runtime and ephemeral storage",
            {
                let mut spec = with(json!({"runtimeClassName": "runc-privileged"}));
                spec["volumes"] = ephemeral("fast-ssd")["volumes"].clone();
                spec
            },
            vec![
                ("runtime-class", "runtimeClassName"),
                (
                    "storage-class",
                    "volumes[0].ephemeral.volumeClaimTemplate.spec.storageClassName",
                ),
            ],
        ),
    ];
    for (name, spec, expected) in cases {
        eprintln!("case: {name}");
        assert_pod_table(&engine, &ctx, &spec, &expected);
    }
    let pod = wrap(
        "v1",
        "Pod",
        with(json!({"priorityClassName": "system-node-critical"})),
    );
    let v = &engine.evaluate(&pod, &ctx)[0];
    assert!(
        v.message.contains("tenant-high, tenant-normal"),
        "{}",
        v.message
    );
    assert!(
        v.remediation.contains("the default, tenant-normal"),
        "{}",
        v.remediation
    );

    // Objects that name a class themselves.
    let object = |api_version: &str, kind: &str, body: Value| {
        let mut o = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": "shop"}});
        for (k, v) in body.as_object().unwrap() {
            o[k] = v.clone();
        }
        o
    };
    let cases = [
        (
            object(
                "v1",
                "PersistentVolumeClaim",
                json!({"spec": {"storageClassName": "fast-ssd"}}),
            ),
            vec![("storage-class", "spec.storageClassName")],
        ),
        (
            object(
                "v1",
                "PersistentVolumeClaim",
                json!({"spec": {"storageClassName": "standard"}}),
            ),
            vec![],
        ),
        (
            object("v1", "PersistentVolumeClaim", json!({"spec": {}})),
            vec![],
        ),
        (
            object(
                "apps/v1",
                "StatefulSet",
                json!({"spec": {
                "template": {"spec": pod_spec(vec![container("db", "postgres")])},
                "volumeClaimTemplates": [
                    {"metadata": {"name": "a"}, "spec": {"storageClassName": "standard"}},
                    {"metadata": {"name": "b"}, "spec": {"storageClassName": "fast-ssd"}},
                ]}}),
            ),
            vec![(
                "storage-class",
                "spec.volumeClaimTemplates[1].spec.storageClassName",
            )],
        ),
        (
            object(
                "networking.k8s.io/v1",
                "Ingress",
                json!({
                "metadata": {"name": "x", "annotations": {"kubernetes.io/ingress.class": "internal"}},
                "spec": {"ingressClassName": "internal"}}),
            ),
            vec![
                ("ingress-class", "spec.ingressClassName"),
                (
                    "ingress-class",
                    "metadata.annotations[\"kubernetes.io/ingress.class\"]",
                ),
            ],
        ),
        (
            object(
                "gateway.networking.k8s.io/v1",
                "Gateway",
                json!({"spec": {"gatewayClassName": "platform-internal"}}),
            ),
            vec![("gateway-class", "spec.gatewayClassName")],
        ),
    ];
    for (object, expected) in cases {
        assert_eq!(
            found(&engine.evaluate(&object, &ctx)),
            pairs(&expected),
            "{object}"
        );
    }

    // A tenant narrower than the platform is held to its own list.
    let mut narrow = tenant();
    narrow.classes = bounded_platform().defaults.classes.unwrap();
    narrow.classes.priority.as_mut().unwrap().allowed = vec!["tenant-normal".to_owned()];
    narrow.classes.priority.as_mut().unwrap().default = None;
    let high = wrap(
        "v1",
        "Pod",
        with(json!({"priorityClassName": "tenant-high"})),
    );
    assert_eq!(
        found(&engine.evaluate(&high, &Context::check(Some(&narrow)))),
        pairs(&[("priority-class", "spec.priorityClassName")])
    );
}

#[test]
fn tenant_repo_contract_covers_the_scaffolds_layout_scope_namespaces_and_registries() {
    let engine = Engine::new(&Platform::default())
        .with_selection(Some(&["tenant-repo-contract".to_owned()]), None, None)
        .expect("known")
        .with_repo_contract("shop");
    let shop = tenant();
    let known = Context::check(Some(&shop));
    let unknown = Context::check(None);
    let config_map = |ns: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": ns}});
    type Case<'a> = (Value, &'a Context<'a>, Vec<(&'static str, &'static str)>);
    let cases: Vec<Case<'_>> = vec![
        // Cluster-scoped kinds, with or without a tenant.
        (
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}}),
            &unknown,
            vec![("cluster-scoped", "kind")],
        ),
        (
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop-extra"}}),
            &known,
            vec![("cluster-scoped", "kind")],
        ),
        // Namespaced kinds named like cluster ones are not (CloudNativePG's Cluster).
        (
            json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "db"}}),
            &known,
            vec![],
        ),
        // Namespace fields: absent, or one of the tenant's.
        (config_map(Value::Null), &known, vec![]),
        (config_map(json!("shop-dev")), &known, vec![]),
        (
            config_map(json!("billing")),
            &known,
            vec![("namespace", "metadata.namespace")],
        ),
        (config_map(json!("billing")), &unknown, vec![]),
        (
            json!({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": "kube-system"}),
            &known,
            vec![("namespace", "namespace")],
        ),
        // Images from the tenant's registries: the contract runs allowed-registries even
        // though the selection left it out.
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                   "spec": {"template": {"spec": {"containers": [container("shop", "quay.io/x/shop:1")]}}}}),
            &known,
            vec![(
                "registry-not-allowed",
                "spec.template.spec.containers[0].image",
            )],
        ),
    ];
    for (object, ctx, expected) in cases {
        assert_eq!(
            found(&engine.evaluate(&object, ctx)),
            pairs(&expected),
            "{object}"
        );
    }
    let v = engine.evaluate(&config_map(json!("billing")), &known);
    assert!(v[0].message.contains("\"billing\""), "{}", v[0].message);
    assert!(
        v[0].remediation.contains("shop, shop-dev"),
        "{}",
        v[0].remediation
    );
    // What could not be compared is said, not passed silently.
    let skipped = engine.skipped(&unknown);
    assert!(
        skipped
            .iter()
            .any(|s| s.policy == "tenant-repo-contract" && s.reason.contains("namespace")),
        "{skipped:?}"
    );
    // Without the contract, allowed-registries stays as selected.
    let plain = Engine::new(&Platform::default())
        .with_selection(Some(&["pod-security".to_owned()]), None, None)
        .expect("known");
    assert!(
        !plain
            .enabled_policies(Mode::Check)
            .contains(&"allowed-registries")
    );

    // Required paths: only files read count, and only when any file was read.
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "shop", "image": "x"}]}}}});
    let mut scan = engine.repo_scan().expect("contract");
    scan.observe(&deployment);
    scan.observe_path(std::path::Path::new("/repo/deploy/deployment.yaml"));
    assert_eq!(
        found(&scan.clone().finish()),
        pairs(&[("required-path", "")])
    );
    let mut other = engine.repo_scan().expect("contract");
    other.observe_path(std::path::Path::new("/repo/deploy/kustomization.yaml"));
    scan.merge(other);
    assert!(scan.finish().is_empty());
    let mut stdin_only = engine.repo_scan().expect("contract");
    stdin_only.observe(&deployment);
    assert!(stdin_only.layout_unknown());
    assert!(stdin_only.finish().is_empty());
}

/// Every cluster-scoped resource a v1.36 API server (with the CRD fixtures installed) serves
/// is in the contract's table, so none slips through as "namespaced".
#[test]
fn every_cluster_scoped_kind_the_api_server_serves_is_known() {
    let testdata = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/k8s-wire");
    let read = |name: &str| -> Value {
        let text = std::fs::read_to_string(testdata.join(name)).expect("recorded discovery");
        serde_json::from_str::<Value>(&text).expect("JSON")["response"]["body"].clone()
    };
    let mut missing = Vec::new();
    for group in read("discovery-apis-aggregated-v2.json")["items"]
        .as_array()
        .unwrap()
    {
        let name = group["metadata"]["name"].as_str().unwrap();
        for version in group["versions"].as_array().unwrap() {
            for r in version["resources"].as_array().unwrap() {
                let kind = r["responseKind"]["kind"].as_str().unwrap();
                if r["scope"] == "Cluster" && !tenantry_policy::is_cluster_scoped(name, kind) {
                    missing.push(format!("{name}/{kind}"));
                }
            }
        }
    }
    for r in read("discovery-api-v1.json")["resources"]
        .as_array()
        .unwrap()
    {
        let name = r["name"].as_str().unwrap();
        let kind = r["kind"].as_str().unwrap();
        if r["namespaced"] == false
            && !name.contains('/')
            && !tenantry_policy::is_cluster_scoped("", kind)
        {
            missing.push(kind.to_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "cluster-scoped but not in CLUSTER_SCOPED: {missing:?}"
    );
}

/// With `flux.proxy` in tenantry.yaml every Flux tenant (OCI as well as Git) reconciles
/// through the operator-kept proxy kubeconfig, so that Secret is the one `kubeConfig` its
/// Flux objects may name, as `render` writes it; any other is still refused.
#[test]
fn flux_proxy_makes_the_platform_kubeconfig_secret_the_tenants_own() {
    use tenantry_api::{
        platform::FLUX_PROXY_KUBECONFIG_SECRET,
        tenant::{Delivery, FluxOci, TenantFile, TenantSpec},
    };
    let text = "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\nflux:\n  proxy:\n    url: https://tenantry-proxy.tenantry-system.svc:8443\n";
    let platform = tenantry_core::document::parse_platform(text).unwrap();
    let ctx = tenantry_core::PlatformContext::new(platform.clone()).unwrap();
    let file = TenantFile::new(
        "shop",
        TenantSpec {
            delivery: Some(Delivery::FluxOci(FluxOci {
                url: Some("oci://ghcr.io/acme/shop-deploy".into()),
                ..FluxOci::default()
            })),
            ..TenantSpec::default()
        },
    );
    let resolved = ctx.resolve(&file).unwrap();
    let info = TenantInfo::from_resolved(&resolved);
    assert_eq!(
        info.proxy_kubeconfig_secret.as_deref(),
        Some(FLUX_PROXY_KUBECONFIG_SECRET)
    );
    let engine = Engine::new(&platform)
        .with_selection(Some(&["flux-lockdown".to_owned()]), None, None)
        .unwrap();
    let check = Context::check(Some(&info));
    // What the renderer writes passes its own check.
    let rendered = tenantry_core::render::render(&ctx, &resolved);
    let kustomization = rendered
        .objects
        .iter()
        .find(|o| o.kind == "Kustomization")
        .unwrap();
    assert!(engine.evaluate(&kustomization.body, &check).is_empty());
    let mut other = kustomization.body.clone();
    other["spec"]["kubeConfig"]["secretRef"]["name"] = json!("someone-elses");
    assert_eq!(
        found(&engine.evaluate(&other, &check)),
        pairs(&[("kubeconfig", "spec.kubeConfig.secretRef.name")])
    );
}
