//! `check_object` at restricted/latest on a typical compliant Deployment (the hot path: every
//! manifest of every sync) and on a Pod that violates most checks (the reporting path).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use tenantry_policy::pss::{Level, Version, check_object};

fn hardened(name: &str, image: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/livez", "port": "http"}, "periodSeconds": 10},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}, {"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]}
        }
    })
}

fn compliant_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "tenant-a", "labels": {"app": "web"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {
                    "labels": {"app": "web", "tenant": "a"},
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"}
                },
                "spec": {
                    "serviceAccountName": "web",
                    "automountServiceAccountToken": false,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"}
                    },
                    "initContainers": [hardened("migrate", "registry.example.com/web:1.2.3")],
                    "containers": [
                        hardened("web", "registry.example.com/web:1.2.3"),
                        hardened("sidecar", "registry.example.com/proxy:4.5.6")
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "web-config"}},
                        {"name": "tmp", "emptyDir": {}}
                    ]
                }
            }
        }
    })
}

fn violating_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "bad",
            "annotations": {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}
        },
        "spec": {
            "hostNetwork": true,
            "hostPID": true,
            "securityContext": {"runAsUser": 0, "sysctls": [{"name": "kernel.msgmax", "value": "1"}]},
            "containers": [{
                "name": "app",
                "image": "busybox",
                "ports": [{"containerPort": 80, "hostPort": 80}],
                "securityContext": {
                    "privileged": true,
                    "capabilities": {"add": ["SYS_ADMIN", "NET_RAW"]},
                    "procMount": "Unmasked",
                    "seccompProfile": {"type": "Unconfined"}
                }
            }],
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}]
        }
    })
}

fn bench(c: &mut Criterion) {
    let deployment = compliant_deployment();
    assert!(check_object(Level::Restricted, Version::Latest, &deployment).is_empty());
    c.bench_function("check_object/restricted/latest/compliant_deployment", |b| {
        b.iter(|| {
            check_object(
                black_box(Level::Restricted),
                black_box(Version::Latest),
                black_box(&deployment),
            )
        })
    });

    let pod = violating_pod();
    assert!(check_object(Level::Restricted, Version::Latest, &pod).len() > 10);
    c.bench_function("check_object/restricted/latest/violating_pod", |b| {
        b.iter(|| {
            check_object(
                black_box(Level::Restricted),
                black_box(Version::Latest),
                black_box(&pod),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
