//! A Tenant with `secrets.openbao` under the operator: its OpenBao policy and role are
//! provisioned once its objects are in place and revoked, with every token they issued, when
//! it is deleted. The cluster is the in-memory fake; OpenBao is a real `bao server -dev`
//! (`bao` must be on PATH, as for `tenantry-secrets`' own tests).

use std::time::Duration;

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use tenantry_api::{
    Platform, Tenant, TenantSpec,
    tenant::{Secrets, TenantStatus},
};
use tenantry_cluster::{ClusterApi, fake::FakeCluster, ops::Waits};
use tenantry_core::PlatformContext;
use tenantry_operator::{
    reconcile::{self, Access},
    status::{DEGRADED, READY},
};
use tenantry_secrets::{
    BaoClient, SecretsApi,
    revoke::Removal,
    testing::{DevServer, ROOT_TOKEN},
};

fn ctx() -> PlatformContext {
    PlatformContext::new(Platform::default()).unwrap()
}

fn waits() -> Waits {
    Waits {
        timeout: Duration::from_secs(2),
        interval: Duration::from_millis(1),
    }
}

fn tenant(name: &str, openbao: bool) -> Tenant {
    let mut t = Tenant::new(
        name,
        TenantSpec {
            secrets: Some(Secrets {
                openbao: Some(openbao),
                pull_secret: Some(false),
            }),
            ..TenantSpec::default()
        },
    );
    t.metadata.generation = Some(1);
    t.metadata.creation_timestamp = Some(Time(Timestamp::from_second(1).unwrap()));
    t
}

fn condition(status: &TenantStatus, kind: &str) -> (String, String) {
    let c = status.conditions.iter().find(|c| c.type_ == kind).unwrap();
    (c.status.clone(), c.reason.clone())
}

/// One reconcile as the controller runs it: converge, then provision OpenBao.
async fn reconcile(
    api: &FakeCluster,
    t: &Tenant,
    bao: Option<&BaoClient>,
) -> reconcile::Reconciled {
    let ctx = ctx();
    let catalog = api.discover().await.unwrap();
    let mut done = reconcile::converge(api, &catalog, Ok(&ctx), t, &[], true, waits(), None).await;
    done.provision_openbao(&ctx.platform.openbao, bao.map(Ok))
        .await;
    done
}

#[tokio::test]
async fn a_tenant_is_provisioned_after_its_objects_and_revoked_on_deletion() {
    let api = FakeCluster::new();
    let bao = DevServer::start().await;
    let root = bao.platform_ready().await;
    let shop = tenant("shop", true);

    let first = reconcile(&api, &shop, Some(&root)).await;
    assert_eq!(first.openbao, Access::Provisioned { writes: 2 });
    assert!(!first.failed());
    let status = first.status(&shop, &Time(Timestamp::from_second(10).unwrap()));
    assert_eq!(condition(&status, READY).0, "True", "{status:?}");
    let policy = root.read_policy("app-shop").await.unwrap().expect("policy");
    assert!(policy.contains("apps/shop"), "{policy}");
    let role = root
        .read_role("kubernetes", "shop")
        .await
        .unwrap()
        .expect("role");
    assert_eq!(role["token_policies"], serde_json::json!(["app-shop"]));

    // A converged tenant sends OpenBao no write.
    let again = reconcile(&api, &shop, Some(&root)).await;
    assert_eq!(again.openbao, Access::Provisioned { writes: 0 });

    // Deleted: role, policy and the tokens they issued are revoked; another tenant's stay.
    let (_, accessor) = bao.token_with("app-shop").await;
    let (_, blog_accessor) = bao.token_with("app-blog").await;
    assert!(reconcile::had_openbao(Some(&ctx()), &shop));
    let revoked = reconcile::revoke_openbao(&root, &ctx().platform.openbao, "shop")
        .await
        .unwrap();
    assert_eq!(revoked.role, Removal::Deleted);
    assert_eq!(revoked.policy, Removal::Deleted);
    assert_eq!(revoked.tokens_revoked, 1);
    assert_eq!(root.lookup_accessor(&accessor).await.unwrap(), None);
    assert!(
        root.lookup_accessor(&blog_accessor)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(root.read_policy("app-shop").await.unwrap(), None);
    // Revoking again (a retried finalizer) finds nothing and fails nothing.
    let twice = reconcile::revoke_openbao(&root, &ctx().platform.openbao, "shop")
        .await
        .unwrap();
    assert_eq!(
        (twice.role, twice.policy),
        (Removal::Absent, Removal::Absent)
    );
}

#[tokio::test]
async fn a_policy_tenantry_did_not_write_is_left_alone_and_degrades_the_tenant() {
    let api = FakeCluster::new();
    let bao = DevServer::start().await;
    let root = bao.platform_ready().await;
    root.write_policy(
        "app-shop",
        "path \"secret/*\" { capabilities = [\"read\"] }\n",
    )
    .await
    .unwrap();
    let shop = tenant("shop", true);
    let done = reconcile(&api, &shop, Some(&root)).await;
    assert!(
        matches!(&done.openbao, Access::Refused(m) if m.contains("app-shop")),
        "{:?}",
        done.openbao
    );
    // Nothing written over it, and no role that would reach it.
    let policy = root.read_policy("app-shop").await.unwrap().unwrap();
    assert!(policy.starts_with("path \"secret/*\""), "{policy}");
    assert_eq!(root.read_role("kubernetes", "shop").await.unwrap(), None);
    let status = done.status(&shop, &Time(Timestamp::from_second(10).unwrap()));
    assert_eq!(
        condition(&status, DEGRADED),
        ("True".into(), "OpenBaoRefused".into())
    );
    // Retrying cannot change it: no backoff loop, the status says what to do.
    assert!(!done.failed());
}

#[tokio::test]
async fn an_unreachable_openbao_is_retried_and_a_missing_one_is_reported() {
    let api = FakeCluster::new();
    let shop = tenant("shop", true);
    // Nothing listens on this port.
    let gone = BaoClient::new(&tenantry_secrets::Connection::with_token(
        format!(
            "http://127.0.0.1:{}",
            tenantry_secrets::testing::free_port()
        ),
        tenantry_secrets::Token::new(ROOT_TOKEN),
    ))
    .unwrap();
    let down = reconcile(&api, &shop, Some(&gone)).await;
    assert!(
        matches!(down.openbao, Access::Failed(_)),
        "{:?}",
        down.openbao
    );
    assert!(
        down.failed(),
        "an unreachable OpenBao is retried with backoff"
    );
    let status = down.status(&shop, &Time(Timestamp::from_second(10).unwrap()));
    assert_eq!(
        condition(&status, DEGRADED),
        ("True".into(), "OpenBaoUnavailable".into())
    );

    let unconfigured = reconcile(&api, &shop, None).await;
    assert_eq!(unconfigured.openbao, Access::NotConfigured);
    assert!(!unconfigured.failed());
    let status = unconfigured.status(&shop, &Time(Timestamp::from_second(10).unwrap()));
    assert_eq!(condition(&status, READY).0, "False");
    assert_eq!(
        condition(&status, DEGRADED),
        ("True".into(), "OpenBaoNotConfigured".into())
    );
    assert!(
        status.last_error.unwrap().message.contains("--bao-addr"),
        "the status says how to configure it"
    );

    // A tenant without secrets.openbao needs no OpenBao at all.
    let plain = tenant("blog", false);
    let done = reconcile(&api, &plain, None).await;
    assert_eq!(done.openbao, Access::Unused);
    assert!(!reconcile::had_openbao(Some(&ctx()), &plain));
    // A spec that no longer resolves may have had access: revocation is attempted.
    assert!(reconcile::had_openbao(None, &plain));
}
