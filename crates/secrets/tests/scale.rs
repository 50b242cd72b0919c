//! What provisioning costs at platform scale, against the real `bao server -dev`: the figures
//! in BENCHMARKS.md ("OpenBao provisioning"). Ignored by default (it prints, it does not
//! judge timing); the request counts are asserted, as they are the design.
//!
//! ```sh
//! cargo test -p tenantry-secrets --release --test scale -- --ignored --nocapture
//! ```

use std::time::Instant;

use tenantry_core::{PlatformContext, document};
use tenantry_secrets::{
    DesiredAccess, Layout,
    provision::{self, Change, Plan},
    testing::{DevServer, ROOT_TOKEN},
};

const TENANTS: usize = 100;

#[tokio::test]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn provision_100_tenants_then_reprovision_with_zero_writes() {
    let bao = DevServer::start().await;
    bao.platform_ready().await;
    let platform = "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\n";
    let ctx = PlatformContext::new(document::parse_platform(platform).unwrap()).unwrap();
    let layout = Layout::from(&ctx.platform.openbao);
    let tenants: Vec<DesiredAccess> = (0..TENANTS)
        .map(|i| {
            let file = document::parse_tenant_file(&format!(
                "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: t{i:03}\nspec:\n  secrets:\n    openbao: true\n"
            ))
            .unwrap();
            let rendered = tenantry_core::render_tenant(&ctx, &file).unwrap();
            DesiredAccess::from_rendered(&ctx.platform.openbao, &rendered)
                .unwrap()
                .unwrap()
        })
        .collect();

    for (run, expect_writes) in [("first run", 2 * TENANTS), ("re-run", 0)] {
        let client = bao.client(ROOT_TOKEN);
        let mut plan = Plan::default();
        let started = Instant::now();
        provision::provision(
            &client,
            &layout,
            &tenants,
            provision::Options::default(),
            false,
            &mut plan,
        )
        .await
        .unwrap();
        let elapsed = started.elapsed();
        let counts = client.counts();
        println!(
            "{run}: {TENANTS} tenants, {} requests ({} reads, {} writes) in {:.1} ms ({:.2} ms per tenant)",
            counts.reads + counts.writes,
            counts.reads,
            counts.writes,
            elapsed.as_secs_f64() * 1e3,
            elapsed.as_secs_f64() * 1e3 / TENANTS as f64,
        );
        assert_eq!(counts.writes, expect_writes, "{run}");
        // Seal status, mounts, auth methods, then a policy and a role read per tenant.
        assert_eq!(counts.reads, 3 + 2 * TENANTS, "{run}");
        if expect_writes == 0 {
            assert!(plan.steps.iter().all(|s| s.change == Change::Unchanged));
        }
    }
}
