//! In-process cost of answering an AdmissionReview: decode, judge with the policy engine,
//! encode (`answer`), and the same through the axum router (`router`), for the common case (a
//! hardened Deployment, allowed) and the recorded Deployment that seven findings deny.
//!
//! `cargo bench -p tenantry-admission --bench webhook`

#[path = "../tests/common/mod.rs"]
mod common;

use axum::{body::Body, http::Request};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
