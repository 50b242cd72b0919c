//! What cluster mode costs: API requests and time to onboard one tenant, and to converge
//! 1,000 tenants that are already converged (`tenantry apply --all`), against the in-memory
//! API server that counts requests. Request counts are printed once; criterion times the
//! loop. Network latency is not modelled: on a real cluster multiply requests by its
//! round-trip time.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tenantry_api::{Platform, TenantSpec, tenant::TenantFile};
use tenantry_cluster::{
    ClusterApi,
    fake::{FakeCluster, Requests},
    ops::{self, ApplyOptions, Silent, Waits},
};
use tenantry_core::{PlatformContext, Rendered};

const LABEL: &str = "tenantry.dev/tenant";

fn tenants(ctx: &PlatformContext, n: usize) -> Vec<Rendered> {
    (0..n)
        .map(|i| {
            let file = TenantFile::new(format!("t{i:04}"), TenantSpec::default());
            tenantry_core::render_tenant(ctx, &file).expect("renders")
        })
        .collect()
}

fn options() -> ApplyOptions {
    ApplyOptions {
        waits: Waits {
            timeout: Duration::from_secs(5),
            interval: Duration::from_millis(1),
        },
        ..ApplyOptions::default()
    }
}

/// discover → observe → plan → apply, as `onboard` and `apply` run it.
async fn converge(api: &FakeCluster, rendered: &[Rendered], prune: bool) -> usize {
    let catalog = api.discover().await.expect("discovery");
    let live = ops::observe(api, &catalog, rendered, LABEL, prune, &Silent)
        .await
        .expect("observe");
    let plans = ops::plan_all(rendered, &live, LABEL, prune);
    let mut writes = 0;
    for (r, p) in rendered.iter().zip(&plans) {
        writes += ops::apply_tenant(api, &catalog, r, p, &options(), &Silent)
            .await
            .writes;
    }
    writes
}

fn report(what: &str, r: Requests) {
    eprintln!(
        "{what}: {} requests = {} reads (discovery {}, list {}, get {}) + {} writes (apply {}, delete {}) + {} auth",
        r.total(),
        r.reads(),
        r.discovery,
        r.list,
        r.get,
        r.writes(),
        r.apply,
        r.delete,
        r.auth
    );
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ctx = PlatformContext::new(Platform::default()).expect("platform");

    // Onboarding one tenant: fresh cluster each time.
    let one = tenants(&ctx, 1);
    let api = FakeCluster::new();
    runtime.block_on(converge(&api, &one, false));
    report("onboard 1 tenant (apply, no credential)", api.requests());
    api.reset_requests();
    runtime.block_on(converge(&api, &one, false));
    report("re-onboard 1 unchanged tenant", api.requests());
    c.bench_function("onboard one tenant (fresh cluster)", |b| {
        b.iter(|| {
            let api = FakeCluster::new();
            runtime.block_on(converge(&api, &one, false))
        })
    });

    // 1,000 converged tenants.
    let many = tenants(&ctx, 1000);
    let api = FakeCluster::new();
    runtime.block_on(converge(&api, &many, false));
    api.reset_requests();
    let writes = runtime.block_on(converge(&api, &many, true));
    assert_eq!(writes, 0, "converged tenants must cost no writes");
    report(
        "apply --all --prune over 1000 unchanged tenants",
        api.requests(),
    );
    api.reset_requests();
    runtime.block_on(converge(&api, &many, false));
    report("apply --all over 1000 unchanged tenants", api.requests());
    let mut group = c.benchmark_group("apply --all, 1000 unchanged tenants");
    group.sample_size(10);
    group.bench_function("without prune", |b| {
        b.iter(|| runtime.block_on(converge(&api, &many, false)))
    });
    group.bench_function("with prune", |b| {
        b.iter(|| runtime.block_on(converge(&api, &many, true)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
