//! The platform-wide components on a cluster: the fanned-out pull secret's
//! ClusterExternalSecret is applied beside the tenant roles, converges with no writes, and is
//! pruned when `pullSecret.fanOut` is turned off, while the roles stay.

use std::time::Duration;

use tenantry_api::Platform;
use tenantry_cluster::{
    ClusterApi,
    fake::FakeCluster,
    ops::{self, ApplyOptions, Silent, Waits},
};
use tenantry_core::{
    PlatformContext,
    render::platform::{PULL_SECRET, TENANT_RBAC, component_label, render_platform},
};

const ESO: &str = "external-secrets.io/v1";

fn platform(fan_out: bool) -> PlatformContext {
    let mut p = Platform::default();
    p.pull_secret.fan_out = fan_out;
    PlatformContext::new(p).unwrap()
}

fn quick() -> ApplyOptions {
    ApplyOptions {
        waits: Waits {
            timeout: Duration::from_secs(2),
            interval: Duration::from_millis(1),
        },
        ..ApplyOptions::default()
    }
}

/// `(component, to create, to prune, writes)` per component reported.
async fn converge(
    api: &FakeCluster,
    ctx: &PlatformContext,
    prune: bool,
) -> Vec<(String, usize, usize, usize)> {
    let catalog = api.discover().await.unwrap();
    let label = component_label(&ctx.platform);
    let components = render_platform(ctx);
    let out = ops::apply_platform(api, &catalog, &components, &label, prune, &quick(), &Silent)
        .await
        .unwrap();
    out.iter()
        .map(|(plan, applied)| {
            assert!(applied.succeeded(), "{:?}", applied.error);
            (
                plan.tenant.clone(),
                plan.counts().create,
                plan.prune.len(),
                applied.writes,
            )
        })
        .collect()
}

#[tokio::test]
async fn the_cluster_external_secret_is_applied_converged_and_pruned_when_fan_out_is_off() {
    let api = FakeCluster::new();
    let on = platform(true);
    let report = converge(&api, &on, false).await;
    assert_eq!(report.len(), 2, "{report:?}");
    assert_eq!(report[1], (PULL_SECRET.to_owned(), 1, 0, 1));
    let ces = api
        .object(ESO, "ClusterExternalSecret", None, "ghcr-auth")
        .expect("applied");
    assert_eq!(
        ces["metadata"]["labels"]["tenantry.dev/component"],
        PULL_SECRET
    );
    assert_eq!(
        ces["spec"]["namespaceSelectors"][0]["matchLabels"]["apps.platform/tenant"],
        "true"
    );

    // Converged: nothing written.
    api.reset_requests();
    let report = converge(&api, &on, true).await;
    assert!(report.iter().all(|r| r.3 == 0), "{report:?}");
    assert_eq!(api.requests().writes(), 0);

    // Turned off: kept without prune (the component is not even reported), deleted with it;
    // the roles of the other component are untouched.
    let off = platform(false);
    let report = converge(&api, &off, false).await;
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!(report[0].0, TENANT_RBAC);
    assert!(
        api.object(ESO, "ClusterExternalSecret", None, "ghcr-auth")
            .is_some()
    );
    let report = converge(&api, &off, true).await;
    assert_eq!(report[1], (PULL_SECRET.to_owned(), 0, 1, 1), "{report:?}");
    assert!(
        api.object(ESO, "ClusterExternalSecret", None, "ghcr-auth")
            .is_none()
    );
    assert!(
        api.object(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            None,
            "tenantry-tenant-edit-external-secrets"
        )
        .is_some()
    );
    // Pruned once: the next run reports nothing for the component.
    assert_eq!(converge(&api, &off, true).await.len(), 1);
}

#[tokio::test]
async fn observing_the_platform_is_one_list_per_platform_kind() {
    let api = FakeCluster::new();
    converge(&api, &platform(true), true).await;
    api.reset_requests();
    converge(&api, &platform(true), true).await;
    // discovery aside: ClusterRoles and ClusterExternalSecrets, once each.
    assert_eq!(api.requests().list, 2);
}
