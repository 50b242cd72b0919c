//! Cost as one object grows along each axis a tenant controls: containers, init and ephemeral
//! containers, env vars, volumes, ports, labels and annotations. Every element of every axis
//! violates a check (image `x`, no securityContext, hostPath volumes, host ports), so the
//! whole path — judge, cap, locate, report — is exercised. Time per element must stay flat
//! from 1,000 to 20,000 elements: anything super-linear is a denial of service at admission.
//!
//! `cargo bench -p tenantry-policy --bench scale -- --warm-up-time 1 --measurement-time 3 --sample-size 10`
//!
//! Nesting depth of unknown fields is not an axis here: the input budget refuses YAML deeper
//! than `input::MAX_DEPTH` (64) and serde_json refuses JSON deeper than 128.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use tenantry_api::Platform;
use tenantry_policy::{
    Context, Engine, TextInput, check_text,
    input::Format,
    report::{self, Report},
};

/// The sizes of each axis.
const SIZES: [usize; 5] = [1, 100, 1_000, 10_000, 20_000];

/// [`SIZES`] up to `TENANTRY_SCALE_MAX` (to measure a quadratic build without waiting hours).
fn sizes() -> impl Iterator<Item = usize> {
    let max = std::env::var("TENANTRY_SCALE_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    SIZES.into_iter().filter(move |&n| n <= max)
}

/// A container violating the default policies (no securityContext, no resources, image `x`).
fn container(prefix: &str, i: usize) -> Value {
    json!({"name": format!("{prefix}{i}"), "image": "x"})
}

/// A Pod grown to `n` elements along `axis`.
fn pod(axis: &str, n: usize) -> Value {
    let mut spec = json!({"containers": [container("c", 0)]});
    let mut metadata = json!({"name": "big", "namespace": "shop"});
    match axis {
        "containers" => spec["containers"] = (0..n).map(|i| container("c", i)).collect(),
        "init-containers" => {
            spec["initContainers"] = (0..n).map(|i| container("i", i)).collect();
        }
        "ephemeral-containers" => {
            spec["ephemeralContainers"] = (0..n).map(|i| container("e", i)).collect();
        }
        "env" => {
            spec["containers"][0]["env"] = (0..n)
                .map(|i| json!({"name": format!("V{i}"), "value": "x"}))
                .collect();
        }
        "volumes" => {
            spec["volumes"] = (0..n)
                .map(|i| json!({"name": format!("v{i}"), "hostPath": {"path": "/"}}))
                .collect();
        }
        "ports" => {
            spec["containers"][0]["ports"] = (0..n)
                .map(|i| json!({"containerPort": 1000 + i, "hostPort": 1000 + i}))
                .collect();
        }
        "labels" => {
            let pairs: serde_json::Map<String, Value> = (0..n)
                .map(|i| (format!("example.com/k{i}"), Value::from("v")))
                .collect();
            metadata["labels"] = Value::Object(pairs.clone());
            metadata["annotations"] = Value::Object(pairs);
        }
        other => unreachable!("unknown axis {other}"),
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}

const AXES: [&str; 7] = [
    "containers",
    "init-containers",
    "ephemeral-containers",
    "env",
    "volumes",
    "ports",
    "labels",
];

fn engine() -> Engine {
    let mut platform = Platform::default();
    platform.policies.require_digest.enabled = true;
    platform.policies.image_pull_policy_always.enabled = true;
    Engine::new(&platform)
}

fn scale(c: &mut Criterion) {
    let engine = engine();
    let ctx = Context::check(None);
    for axis in AXES {
        let mut group = c.benchmark_group(format!("scale/{axis}"));
        for n in sizes() {
            let object = pod(axis, n);
            let yaml = serde_saphyr::to_string(&object).expect("serializable");
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new("evaluate", n), &object, |b, object| {
                b.iter(|| engine.evaluate(black_box(object), &ctx))
            });
            group.bench_with_input(BenchmarkId::new("check_text", n), &yaml, |b, yaml| {
                b.iter(|| {
                    let result = check_text(
                        &TextInput {
                            label: "pod.yaml",
                            text: black_box(yaml),
                            format: Format::Yaml,
                            kustomization: false,
                        },
                        &engine,
                        &ctx,
                    );
                    let report = Report {
                        findings: result.findings,
                        judged: result.judged,
                        files: 1,
                        ..Report::default()
                    };
                    report::render(&report, report::Format::Text, "bench").len()
                })
            });
        }
        group.finish();
    }
    // JSON input is located by a second read of the text rather than from recorded lines.
    let mut group = c.benchmark_group("scale/containers-json");
    for n in sizes() {
        let json = serde_json::to_string(&pod("containers", n)).expect("serializable");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("check_text", n), &json, |b, json| {
            b.iter(|| {
                check_text(
                    &TextInput {
                        label: "pod.json",
                        text: black_box(json),
                        format: Format::Json,
                        kustomization: false,
                    },
                    &engine,
                    &ctx,
                )
                .findings
                .len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, scale);
criterion_main!(benches);
