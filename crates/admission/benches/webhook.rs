//! In-process cost of answering an AdmissionReview: decode, judge with the policy engine,
//! encode (`answer`), and the same through the axum router (`router`), for the common case (a
//! hardened Deployment, allowed) and the recorded Deployment that seven findings deny; and a
//! Pod scaled from 1 to 20,000 containers through the router.
//!
//! `cargo bench -p tenantry-admission --bench webhook -- --warm-up-time 1 --measurement-time 3 --sample-size 10`

#[path = "../tests/common/mod.rs"]
mod common;

use axum::{
    body::{Body, Bytes},
    http::Request,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn bench(c: &mut Criterion) {
    let state = common::state("restricted");
    let reviews = [
        (
            "deployment-allowed",
            serde_json::to_vec(&common::hardened_deployment_review()).unwrap(),
        ),
        (
            "deployment-denied",
            common::fixture_bytes("deployment-create.json"),
        ),
        (
            "deployment-update-denied",
            common::fixture_bytes("deployment-update-image.json"),
        ),
    ];
    let mut group = c.benchmark_group("decode");
    for (name, body) in &reviews {
        group.bench_function(*name, |b| {
            b.iter(|| tenantry_admission::review::decode(body).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("answer");
    for (name, body) in &reviews {
        group.throughput(Throughput::Elements(1));
        group.bench_function(*name, |b| {
            b.iter(|| {
                tenantry_admission::answer(&state.cache, state.validator.as_ref(), body)
                    .unwrap()
                    .response
                    .to_review_json()
            })
        });
    }
    group.finish();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let router = tenantry_admission::router(state.clone());
    let mut group = c.benchmark_group("router");
    for (name, body) in &reviews {
        group.throughput(Throughput::Elements(1));
        group.bench_function(*name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let request = Request::post("/validate")
                        .header("content-type", "application/json")
                        .body(Body::from(body.clone()))
                        .unwrap();
                    let response = router.clone().oneshot(request).await.unwrap();
                    response.into_body().collect().await.unwrap().to_bytes()
                })
            })
        });
    }
    group.finish();

    // One Pod growing along its containers (image `x`, no securityContext: seven findings
    // each), through the router: time per container must stay flat.
    let mut group = c.benchmark_group("scale/containers");
    // `TENANTRY_SCALE_MAX` caps the sizes (to measure a quadratic build without waiting hours).
    let max: usize = std::env::var("TENANTRY_SCALE_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    for n in [1usize, 100, 1_000, 10_000, 20_000]
        .into_iter()
        .filter(|&n| n <= max)
    {
        let body = Bytes::from(serde_json::to_vec(&common::many_container_review(n)).unwrap());
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("router", n), &body, |b, body| {
            b.iter(|| {
                runtime.block_on(async {
                    let request = Request::post("/validate")
                        .header("content-type", "application/json")
                        .body(Body::from(body.clone()))
                        .unwrap();
                    let response = router.clone().oneshot(request).await.unwrap();
                    response.into_body().collect().await.unwrap().to_bytes()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
