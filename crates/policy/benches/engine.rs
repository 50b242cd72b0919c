//! The whole engine (every policy on, a known tenant) on what admission and CI see most: a
//! typical compliant Deployment, the same Deployment read from YAML text as `check` reads it,
//! and a violating one (the reporting path, with line location).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use tenantry_api::Platform;
use tenantry_policy::{Context, Engine, Level, TenantInfo, TextInput, check_text, input::Format};

fn deployment(privileged: bool) -> Value {
    let container = |name: &str, image: &str| {
        json!({
            "name": name,
            "image": image,
            "ports": [{"name": "http", "containerPort": 8080}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "privileged": privileged,
                "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]}
            }
        })
    };
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "serviceAccountName": "web",
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                    "initContainers": [container("migrate", "ghcr.io/acme/web:1.2.3")],
                    "containers": [container("web", "ghcr.io/acme/web:1.2.3"), container("proxy", "docker.io/library/nginx:1.27")],
                    "volumes": [{"name": "tmp", "emptyDir": {}}]
                }
            }
        }
    })
}

fn tenant() -> TenantInfo {
    TenantInfo {
        name: "shop".to_owned(),
        namespaces: vec!["shop".to_owned()],
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

fn engine_benches(c: &mut Criterion) {
    let mut platform = Platform::default();
    platform.policies.require_digest.enabled = true;
    platform.policies.image_pull_policy_always.enabled = true;
    let engine = Engine::new(&platform);
    let shop = tenant();
    let ctx = Context::check(Some(&shop));

    let compliant = deployment(false);
    let violating = deployment(true);
    c.bench_function("evaluate/deployment/all-policies", |b| {
        b.iter(|| engine.evaluate(black_box(&compliant), black_box(&ctx)))
    });
    c.bench_function("evaluate/deployment-violating/all-policies", |b| {
        b.iter(|| engine.evaluate(black_box(&violating), black_box(&ctx)))
    });

    for (name, object) in [("compliant", &compliant), ("violating", &violating)] {
        let yaml = serde_saphyr::to_string(object).expect("serializable");
        c.bench_function(&format!("check_text/deployment-yaml-{name}"), |b| {
            b.iter(|| {
                check_text(
                    black_box(&TextInput {
                        label: "deployment.yaml",
                        text: &yaml,
                        format: Format::Yaml,
                        kustomization: false,
                    }),
                    &engine,
                    &ctx,
                )
            })
        });
    }
}

criterion_group!(benches, engine_benches);
criterion_main!(benches);
