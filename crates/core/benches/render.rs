//! Render throughput: one tenant, and 10,000 tenants, to objects and to YAML text.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tenantry_api::{Platform, TenantSpec, tenant::TenantFile};
use tenantry_core::{PlatformContext, render, yaml};

fn tenant(name: &str) -> TenantFile {
    TenantFile::new(name, TenantSpec::default())
}

fn bench(c: &mut Criterion) {
    let ctx = PlatformContext::new(Platform::default()).expect("default platform is valid");
    let one = tenant("shop");
    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one tenant to objects", |b| {
        b.iter(|| tenantry_core::render_tenant(&ctx, std::hint::black_box(&one)).unwrap())
    });
    group.bench_function("one tenant to YAML files", |b| {
        b.iter(|| {
            let rendered = tenantry_core::render_tenant(&ctx, std::hint::black_box(&one)).unwrap();
            rendered
                .objects
                .iter()
                .map(|o| yaml::object_file(&rendered.tenant, o).len())
                .sum::<usize>()
        })
    });
    let many: Vec<TenantFile> = (0..10_000)
        .map(|i| tenant(&format!("tenant-{i}")))
        .collect();
    group.throughput(Throughput::Elements(many.len() as u64));
    group.sample_size(10);
    group.bench_function("10000 tenants to objects", |b| {
        b.iter(|| {
            many.iter()
                .map(|t| render::render(&ctx, &ctx.resolve(t).unwrap()).objects.len())
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
