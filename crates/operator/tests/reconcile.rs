//! The operator's reconcile, run against the in-memory API server with tenants rendered by
//! the real renderer: what a platform team relies on when it hands its tenants to the
//! operator.

use std::time::Duration;

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use serde_json::Value;
use tenantry_api::{
    Platform, Tenant, TenantSpec,
    tenant::{Delivery, FluxOci, TenantFile},
};
use tenantry_cluster::{
    ClusterApi,
    fake::FakeCluster,
    ops::{self, ApplyOptions, Prune, Silent, Waits},
};
use tenantry_core::PlatformContext;
use tenantry_operator::{
    reconcile::{self, Outcome},
    status::{APPLIED, DEGRADED, READY},
};

const LABEL: &str = "tenantry.dev/tenant";

fn ctx() -> PlatformContext {
    PlatformContext::new(Platform::default()).unwrap()
}

fn waits() -> Waits {
    Waits {
        timeout: Duration::from_secs(2),
        interval: Duration::from_millis(1),
    }
}

fn tenant(name: &str, spec: TenantSpec, created: i64) -> Tenant {
    let mut t = Tenant::new(name, spec);
    t.metadata.generation = Some(1);
    t.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
    t
}

/// Tenant `shop` delivered by Flux from an OCI artifact (the Flux layer and its CRDs).
fn flux_oci_shop() -> Tenant {
    let spec = TenantSpec {
        delivery: Some(Delivery::FluxOci(FluxOci {
            url: Some("oci://ghcr.io/acme/shop-deploy".into()),
            ..FluxOci::default()
        })),
        ..TenantSpec::default()
    };
    tenant("shop", spec, 1)
}

fn now() -> Time {
    Time(Timestamp::from_second(1_000).unwrap())
}

fn condition(status: &tenantry_api::TenantStatus, kind: &str) -> (String, String) {
    let c = status.conditions.iter().find(|c| c.type_ == kind).unwrap();
    (c.status.clone(), c.reason.clone())
}

fn labelled(api: &FakeCluster, tenant: &str, kind: &str) -> Vec<Value> {
    api.objects()
        .into_iter()
        .filter(|o| o["kind"] == kind && o["metadata"]["labels"][LABEL] == tenant)
        .collect()
}

async fn converge(
    api: &FakeCluster,
    t: &Tenant,
    others: &[&Tenant],
    prune: bool,
) -> reconcile::Reconciled {
    let catalog = api.discover().await.unwrap();
    converge_known(api, &catalog, t, others, prune, None).await
}

/// A reconcile that observes what `known` says exists (the operator's watch inventory), or
/// lists like the CLI with `None`.
async fn converge_known(
    api: &FakeCluster,
    catalog: &tenantry_cluster::Catalog,
    t: &Tenant,
    others: &[&Tenant],
    prune: bool,
    known: Option<&[ops::Known<'_>]>,
) -> reconcile::Reconciled {
    let ctx = ctx();
    reconcile::converge(api, catalog, Ok(&ctx), t, others, prune, waits(), known).await
}

#[tokio::test]
async fn a_new_tenant_is_applied_and_ready_with_its_namespaces() {
    let api = FakeCluster::new();
    let shop = tenant(
        "shop",
        TenantSpec {
            namespaces: vec!["shop-dev".into()],
            ..TenantSpec::default()
        },
        1,
    );
    let done = converge(&api, &shop, &[], true).await;
    assert!(!done.failed(), "{:?}", done.outcome);
    assert!(done.writes() > 0);
    let status = done.status(&shop, &now());
    assert_eq!(condition(&status, READY).0, "True");
    assert_eq!(
        condition(&status, APPLIED),
        ("True".into(), "Applied".into())
    );
    assert_eq!(status.namespaces.as_deref(), Some("shop,shop-dev"));
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(labelled(&api, "shop", "Namespace").len(), 2);
    assert!(!labelled(&api, "shop", "NetworkPolicy").is_empty());
    assert!(
        status
            .layers
            .iter()
            .any(|l| l.name == "network" && l.state == "applied")
    );
}

#[tokio::test]
async fn the_cli_and_the_operator_agree_so_neither_writes_after_the_other() {
    let api = FakeCluster::new();
    let ctx = ctx();
    let spec = TenantSpec {
        namespaces: vec!["blog-web".into()],
        ..TenantSpec::default()
    };
    // What `tenantry apply blog` does, from the repository's tenant file.
    let rendered =
        tenantry_core::render_tenant(&ctx, &TenantFile::new("blog", spec.clone())).unwrap();
    let catalog = api.discover().await.unwrap();
    let options = ApplyOptions {
        waits: waits(),
        ..ApplyOptions::default()
    };
    ops::converge_tenants(
        &api,
        &catalog,
        &[rendered],
        LABEL,
        Prune::Off,
        &options,
        &Silent,
    )
    .await
    .unwrap();
    api.reset_requests();
    let blog = tenant("blog", spec, 1);
    let done = converge(&api, &blog, &[], true).await;
    assert_eq!(done.writes(), 0, "{:?}", api.write_log());
    assert_eq!(api.requests().writes(), 0, "{:?}", api.write_log());
    assert_eq!(
        condition(&done.status(&blog, &now()), APPLIED).1,
        "UpToDate"
    );
}

#[tokio::test]
async fn a_deleted_network_policy_and_an_edited_quota_are_put_back() {
    let api = FakeCluster::new();
    let shop = tenant("shop", TenantSpec::default(), 1);
    converge(&api, &shop, &[], true).await;
    let catalog = api.discover().await.unwrap();
    let policy = labelled(&api, "shop", "NetworkPolicy").remove(0);
    let policy_name = policy["metadata"]["name"].as_str().unwrap().to_owned();
    let np = catalog
        .find("networking.k8s.io/v1", "NetworkPolicy")
        .unwrap();
    api.delete(np, Some("shop"), &policy_name, None, false)
        .await
        .unwrap();
    let quota = labelled(&api, "shop", "ResourceQuota").remove(0);
    let quota_name = quota["metadata"]["name"].as_str().unwrap().to_owned();
    api.edit("v1", "ResourceQuota", Some("shop"), &quota_name, |q| {
        q["spec"]["hard"]["pods"] = Value::from("1000");
    });
    let repaired = converge(&api, &shop, &[], false).await;
    assert!(!repaired.failed());
    let written = repaired.written();
    assert!(
        written.iter().any(|o| o.contains(&policy_name)),
        "{written:?}"
    );
    assert!(
        written.iter().any(|o| o.contains(&quota_name)),
        "{written:?}"
    );
    assert!(
        api.object(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            Some("shop"),
            &policy_name
        )
        .is_some()
    );
    let quota = api
        .object("v1", "ResourceQuota", Some("shop"), &quota_name)
        .unwrap();
    assert_ne!(quota["spec"]["hard"]["pods"], "1000");
}

#[tokio::test]
async fn a_missing_crd_degrades_only_its_layer_and_names_the_crd() {
    let api = FakeCluster::new();
    api.hide_group("source.toolkit.fluxcd.io");
    let shop = flux_oci_shop();
    let done = converge(&api, &shop, &[], true).await;
    let status = done.status(&shop, &now());
    assert_eq!(condition(&status, APPLIED).0, "True", "{status:?}");
    assert_eq!(
        condition(&status, DEGRADED),
        ("True".into(), "MissingCRD".into())
    );
    assert_eq!(condition(&status, READY).0, "False");
    let delivery = status.layers.iter().find(|l| l.name == "delivery").unwrap();
    assert_eq!(delivery.state, "skipped");
    assert!(
        delivery
            .missing_crds
            .iter()
            .any(|c| c == "ocirepositories.source.toolkit.fluxcd.io"),
        "{delivery:?}"
    );
    // The isolation layers are in place regardless.
    assert!(!labelled(&api, "shop", "NetworkPolicy").is_empty());
}

#[tokio::test]
async fn a_bad_spec_writes_nothing_and_names_the_field() {
    let api = FakeCluster::new();
    let bad = tenant(
        "shop",
        TenantSpec {
            namespaces: vec!["billing".into()],
            ..TenantSpec::default()
        },
        1,
    );
    api.reset_requests();
    let done = converge(&api, &bad, &[], true).await;
    assert!(done.failed());
    assert!(matches!(done.outcome, Outcome::Spec(_)));
    assert_eq!(api.requests().writes(), 0);
    let status = done.status(&bad, &now());
    let error = status.last_error.unwrap();
    assert_eq!(error.object.as_deref(), Some("Tenant shop"));
    assert!(error.field.unwrap().starts_with("spec.namespaces"));
}

#[tokio::test]
async fn a_newer_tenant_cannot_claim_an_older_ones_namespace() {
    let api = FakeCluster::new();
    let shop = tenant(
        "shop",
        TenantSpec {
            namespaces: vec!["shop-dev".into()],
            ..TenantSpec::default()
        },
        1,
    );
    let intruder = tenant("shop-dev", TenantSpec::default(), 2);
    let refused = converge(&api, &intruder, &[&shop], true).await;
    let Outcome::Spec(invalid) = &refused.outcome else {
        panic!("{:?}", refused.outcome)
    };
    assert_eq!(invalid.errors[0].path, "spec.namespaces");
    assert!(invalid.errors[0].message.contains("\"shop\""), "{invalid}");
    // The older tenant is not affected by the newcomer.
    let kept = converge(&api, &shop, &[&intruder], true).await;
    assert!(!kept.failed(), "{:?}", kept.outcome);
}

#[tokio::test]
async fn a_namespace_dropped_from_the_spec_is_pruned() {
    let api = FakeCluster::new();
    let mut shop = tenant(
        "shop",
        TenantSpec {
            namespaces: vec!["shop-dev".into()],
            ..TenantSpec::default()
        },
        1,
    );
    converge(&api, &shop, &[], true).await;
    shop.spec.namespaces.clear();
    shop.metadata.generation = Some(2);
    let done = converge(&api, &shop, &[], true).await;
    assert!(!done.failed(), "{:?}", done.outcome);
    let Outcome::Converged { converged, .. } = &done.outcome else {
        panic!()
    };
    let pruned = &converged.applied.as_ref().unwrap().pruned;
    assert!(
        pruned.iter().any(|d| d.object == "Namespace shop-dev"),
        "{pruned:?}"
    );
}

#[tokio::test]
async fn offboarding_completes_only_when_nothing_is_left() {
    let api = FakeCluster::new();
    let shop = tenant("shop", TenantSpec::default(), 1);
    converge(&api, &shop, &[], true).await;
    api.set_namespace_linger(2);
    let catalog = api.discover().await.unwrap();
    let first = reconcile::offboard(&api, &catalog, LABEL, "shop")
        .await
        .unwrap();
    assert!(first.removed.first_error().is_none());
    assert!(!first.complete(), "the namespace is still terminating");
    let namespaces = first.removed.namespaces.clone();
    assert_eq!(namespaces, ["shop"]);
    let mut done = false;
    for _ in 0..5 {
        if !reconcile::namespaces_gone(&api, &catalog, &namespaces)
            .await
            .unwrap()
        {
            continue;
        }
        let again = reconcile::offboard(&api, &catalog, LABEL, "shop")
            .await
            .unwrap();
        assert!(again.removed.first_error().is_none(), "{:?}", again.removed);
        done = again.complete();
        if done {
            break;
        }
    }
    assert!(done, "the tenant's objects never went");
    assert!(
        api.objects()
            .iter()
            .all(|o| o["metadata"]["labels"][LABEL] != "shop"),
        "labelled leftovers"
    );
}

#[tokio::test]
async fn an_unusable_platform_config_is_reported_on_every_tenant_and_nothing_is_written() {
    let api = FakeCluster::new();
    let catalog = api.discover().await.unwrap();
    let shop = tenant("shop", TenantSpec::default(), 1);
    api.reset_requests();
    let message = "ConfigMap tenantry-system/tenantry-config not found";
    let done = reconcile::converge(
        &api,
        &catalog,
        Err(message),
        &shop,
        &[],
        true,
        waits(),
        None,
    )
    .await;
    assert_eq!(api.requests().total(), 0);
    let status = done.status(&shop, &now());
    assert_eq!(
        condition(&status, APPLIED),
        ("False".into(), "InvalidPlatform".into())
    );
    assert_eq!(status.last_error.unwrap().message, message);
}

/// Every kind a tenant can render is watched for drift and pruned within
/// `ops::rendered_kinds`, and the operator's ClusterRole may write it.
#[test]
fn every_kind_a_tenant_renders_is_watched_and_granted() {
    use tenantry_api::tenant::{
        ArgoCd, FluxGit, Network, NetworkProvider, NoDelivery, Rbac, Secrets,
    };
    let ctx = ctx();
    let specs = [
        TenantSpec::default(),
        TenantSpec {
            delivery: Some(Delivery::FluxGit(FluxGit {
                url: Some("https://git.example.com/x.git".into()),
                ..FluxGit::default()
            })),
            network: Some(Network {
                provider: Some(NetworkProvider::Cilium),
                default_deny_egress: Some(true),
                ..Network::default()
            }),
            secrets: Some(Secrets {
                openbao: Some(true),
                pull_secret: Some(true),
            }),
            rbac: Some(Rbac {
                grants: Some(vec!["external-dns".into()]),
                ..Rbac::default()
            }),
            ..TenantSpec::default()
        },
        TenantSpec {
            delivery: Some(Delivery::ArgoCd(ArgoCd {
                repo_url: Some("https://git.example.com/x.git".into()),
                ..ArgoCd::default()
            })),
            ..TenantSpec::default()
        },
        TenantSpec {
            delivery: Some(Delivery::None(NoDelivery::default())),
            ..TenantSpec::default()
        },
    ];
    let catalog = FakeCluster::new().catalog();
    let watched: Vec<(String, String)> = ops::rendered_kinds(&catalog)
        .into_iter()
        .map(|t| (t.group.clone(), t.kind.clone()))
        .collect();
    let docs = tenantry_operator::manifests::documents(&Default::default()).unwrap();
    let role = docs
        .iter()
        .find(|d| d.object["kind"] == "ClusterRole")
        .unwrap();
    // With the per-tenant guardrail parameters and bindings too.
    let with_vap = platform("policies:\n  vap:\n    tenantParameters: true\n");
    let renders = specs.iter().flat_map(|spec| {
        [&ctx, &with_vap].map(|ctx| {
            let file = TenantFile::new("shop", spec.clone());
            match tenantry_core::render_tenant(ctx, &file) {
                Ok(r) => r,
                Err(e) => panic!("{e}"),
            }
        })
    });
    let mut guardrails = 0;
    for rendered in renders {
        guardrails += rendered
            .objects
            .iter()
            .filter(|o| o.layer == tenantry_core::Layer::Guardrails)
            .count();
        for o in &rendered.objects {
            let t = catalog.find(o.api_version, o.kind).unwrap();
            assert!(
                watched.contains(&(t.group.clone(), t.kind.clone())),
                "{} {} is not watched",
                o.api_version,
                o.kind
            );
            let granted = role.object["rules"].as_array().unwrap().iter().any(|r| {
                r["apiGroups"][0] == t.group.as_str()
                    && r["resources"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|x| x == t.plural.as_str())
                    && r["verbs"].as_array().unwrap().iter().any(|v| v == "patch")
            });
            assert!(
                granted,
                "the ClusterRole may not write {}",
                t.qualified_name()
            );
        }
    }
    // Registries, secret stores, network policies, placement, classes and Flux: one binding
    // each, after the parameters.
    assert_eq!(guardrails, 4 * 7, "parameters and six bindings per tenant");
}

fn platform(extra: &str) -> PlatformContext {
    let text = format!("apiVersion: tenantry.dev/v1alpha1\nkind: Platform\n{extra}");
    PlatformContext::new(tenantry_core::document::parse_platform(&text).unwrap()).unwrap()
}

#[tokio::test]
async fn the_platform_wide_roles_are_converged_once_and_pruned_when_turned_off() {
    let api = FakeCluster::new();
    let catalog = api.discover().await.unwrap();
    let role = |name: &str| api.object("rbac.authorization.k8s.io/v1", "ClusterRole", None, name);
    let on = platform("tenantRbac:\n  cilium: true\n");
    let done = reconcile::converge_platform(&api, &catalog, &on, waits())
        .await
        .unwrap();
    assert_eq!(done.error, None);
    assert!(done.writes > 0);
    let cilium = role("tenantry-tenant-edit-cilium").expect("the cilium role is applied");
    assert_eq!(
        cilium["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
        "true"
    );
    assert!(role("tenantry-tenant-edit-external-secrets").is_some());

    // Unchanged: nothing is written (the operator re-runs this on every ConfigMap event).
    api.reset_requests();
    let again = reconcile::converge_platform(&api, &catalog, &on, waits())
        .await
        .unwrap();
    assert_eq!(again.writes, 0);
    assert_eq!(api.requests().writes(), 0, "{:?}", api.write_log());

    // The platform turns Cilium off: its role goes, the others stay.
    let off = platform("tenantRbac:\n  cilium: false\n");
    let pruned = reconcile::converge_platform(&api, &catalog, &off, waits())
        .await
        .unwrap();
    assert_eq!(pruned.error, None);
    assert!(role("tenantry-tenant-edit-cilium").is_none());
    assert!(role("tenantry-tenant-edit-external-secrets").is_some());
}

/// What the operator's drift stores would hold for `tenant`: every object of a kind
/// Tenantry renders that carries its label.
fn cached<'a>(
    api: &FakeCluster,
    catalog: &'a tenantry_cluster::Catalog,
    tenant: &str,
) -> Vec<ops::Known<'a>> {
    let kinds = ops::rendered_kinds(catalog);
    api.objects()
        .into_iter()
        .filter(|o| o["metadata"]["labels"][LABEL] == tenant)
        .filter_map(|o| {
            let resource = kinds.iter().copied().find(|t| {
                t.api_version() == o["apiVersion"].as_str().unwrap_or_default()
                    && t.kind == o["kind"].as_str().unwrap_or_default()
            })?;
            Some(ops::Known {
                resource,
                namespace: o["metadata"]["namespace"].as_str().map(str::to_owned),
                name: o["metadata"]["name"].as_str()?.to_owned(),
            })
        })
        .collect()
}

#[tokio::test]
async fn observing_from_the_watch_caches_lists_nothing_and_still_repairs_and_prunes() {
    let api = FakeCluster::new();
    let catalog = api.discover().await.unwrap();
    let mut shop = tenant(
        "shop",
        TenantSpec {
            namespaces: vec!["shop-dev".into()],
            ..TenantSpec::default()
        },
        1,
    );
    // A new tenant: the stores hold nothing of it, so nothing is listed or read before the
    // writes (the CLI's loop lists every rendered kind).
    api.reset_requests();
    let done = converge_known(&api, &catalog, &shop, &[], true, Some(&[])).await;
    assert!(!done.failed(), "{:?}", done.outcome);
    assert!(done.writes() > 0);
    let first = api.requests();
    assert_eq!(first.list, 0, "{first:?}");

    // Converged: each cached object is read once, nothing is written.
    let known = cached(&api, &catalog, "shop");
    assert!(known.len() >= 10, "{known:?}");
    api.reset_requests();
    let again = converge_known(&api, &catalog, &shop, &[], true, Some(&known)).await;
    let steady = api.requests();
    assert_eq!(again.writes(), 0, "{:?}", api.write_log());
    assert_eq!((steady.list, steady.get), (0, known.len()), "{steady:?}");

    // A cache that has not yet seen a deletion: the object reads as gone and is put back.
    let policy = labelled(&api, "shop", "NetworkPolicy").remove(0);
    let policy_name = policy["metadata"]["name"].as_str().unwrap().to_owned();
    let np = catalog
        .find("networking.k8s.io/v1", "NetworkPolicy")
        .unwrap();
    api.delete(np, Some("shop"), &policy_name, None, false)
        .await
        .unwrap();
    let repaired = converge_known(&api, &catalog, &shop, &[], false, Some(&known)).await;
    assert!(
        repaired.written().iter().any(|o| o.contains(&policy_name)),
        "{:?}",
        repaired.written()
    );

    // A namespace dropped from the spec is pruned from what the caches hold.
    shop.spec.namespaces.clear();
    shop.metadata.generation = Some(2);
    let known = cached(&api, &catalog, "shop");
    let done = converge_known(&api, &catalog, &shop, &[], true, Some(&known)).await;
    let Outcome::Converged { converged, .. } = &done.outcome else {
        panic!("{:?}", done.outcome)
    };
    let pruned = &converged.applied.as_ref().unwrap().pruned;
    assert!(
        pruned.iter().any(|d| d.object == "Namespace shop-dev"),
        "{pruned:?}"
    );
}

/// A Flux tenant on a platform with `flux.proxy`: its Kustomization reconciles through the
/// operator-kept Secret, which holds a kubeconfig for the proxy with a token of the tenant's
/// ServiceAccount bound to that Secret, kept until two thirds of its life and then renewed.
#[tokio::test]
async fn a_flux_tenant_behind_the_proxy_gets_a_bound_kubeconfig_renewed_before_expiry() {
    use tenantry_api::platform::{FLUX_PROXY_KUBECONFIG_SECRET, FluxProxyConfig};
    use tenantry_cluster::credential;
    use tenantry_operator::{flux_proxy, reconcile::ProxyKubeconfig};

    let api = FakeCluster::new();
    let mut platform = Platform::default();
    platform.flux.proxy = Some(FluxProxyConfig {
        url: "https://tenantry-proxy.tenantry-system.svc:8443".into(),
        ca_bundle: None,
        token_expiration: "1h".parse().unwrap(),
    });
    let ctx = PlatformContext::new(platform).unwrap();
    let shop = flux_oci_shop();
    let catalog = api.discover().await.unwrap();
    let run = |at: &'static str| {
        let (api, catalog, ctx, shop) = (&api, &catalog, &ctx, &shop);
        async move {
            let mut done =
                reconcile::converge(api, catalog, Ok(ctx), shop, &[], false, waits(), None).await;
            done.keep_flux_proxy(api, at.parse().unwrap()).await;
            done
        }
    };
    // The fake's tokens expire at 2030-01-01T00:00:00Z; 1h tokens renew 20 min before.
    let first = run("2029-12-31T23:00:00Z").await;
    assert!(!first.failed(), "{:?}", first.flux_proxy);
    let ProxyKubeconfig::Kept(kept) = &first.flux_proxy else {
        panic!("{:?}", first.flux_proxy)
    };
    assert_eq!(kept.minted, Some("missing"));
    assert_eq!(kept.refresh_at, "2029-12-31T23:40:00Z".parse().unwrap());
    assert_eq!(
        first.requeue_after(
            "2029-12-31T23:30:00Z".parse().unwrap(),
            Duration::from_secs(3600)
        ),
        Duration::from_secs(600)
    );
    let kustomization = api
        .object(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            Some("shop"),
            "shop",
        )
        .unwrap();
    assert_eq!(
        kustomization["spec"]["kubeConfig"]["secretRef"]["name"],
        FLUX_PROXY_KUBECONFIG_SECRET
    );
    assert_eq!(kustomization["spec"]["serviceAccountName"], "shop");
    let secret = api
        .object("v1", "Secret", Some("shop"), FLUX_PROXY_KUBECONFIG_SECRET)
        .unwrap();
    let text = credential::secret_text(&secret, flux_proxy::KEY).unwrap();
    assert!(text.contains("server: https://tenantry-proxy.tenantry-system.svc:8443"));
    let token = credential::token_of(&text).unwrap();
    let review = api.review_token(&token).await.unwrap();
    assert_eq!(
        review.username.as_deref(),
        Some("system:serviceaccount:shop:shop")
    );
    let status = first.status(&shop, &now());
    assert_eq!(condition(&status, flux_proxy::CONDITION).0, "True");
    assert_eq!(condition(&status, READY).0, "True");

    // Before two thirds of the lifetime: one GET, no new token, no write.
    api.reset_requests();
    let second = run("2029-12-31T23:30:00Z").await;
    let ProxyKubeconfig::Kept(kept) = &second.flux_proxy else {
        panic!("{:?}", second.flux_proxy)
    };
    assert_eq!(kept.minted, None);
    assert_eq!(api.requests().writes(), 0);
    let mut written = shop.clone();
    written.status = Some(status.clone());
    assert_eq!(second.status(&written, &now()), status);

    // After it: a new token, in the same Secret.
    let third = run("2029-12-31T23:45:00Z").await;
    let ProxyKubeconfig::Kept(kept) = &third.flux_proxy else {
        panic!("{:?}", third.flux_proxy)
    };
    assert_eq!(kept.minted, Some("token due for renewal"));
    let renewed = api
        .object("v1", "Secret", Some("shop"), FLUX_PROXY_KUBECONFIG_SECRET)
        .unwrap();
    assert_eq!(renewed["metadata"]["uid"], secret["metadata"]["uid"]);
    let new_token =
        credential::token_of(&credential::secret_text(&renewed, flux_proxy::KEY).unwrap()).unwrap();
    assert_ne!(new_token, token);

    // A tenant that stops needing it (here: it names its own Secret) loses it once.
    let mut own = shop.clone();
    own.spec.delivery = Some(Delivery::FluxGit(tenantry_api::tenant::FluxGit {
        url: Some("https://github.com/acme/shop".into()),
        proxy_kubeconfig_secret: Some("shop-own-proxy".into()),
        ..Default::default()
    }));
    own.status = Some(status.clone());
    let moved =
        reconcile::converge(&api, &catalog, Ok(&ctx), &own, &[], false, waits(), None).await;
    assert!(moved.flux_proxy_wanted.is_none());
    moved
        .drop_stale_flux_proxy(&api, own.status.as_ref())
        .await
        .unwrap();
    assert!(
        api.object("v1", "Secret", Some("shop"), FLUX_PROXY_KUBECONFIG_SECRET)
            .is_none()
    );
    assert!(!api.review_token(&new_token).await.unwrap().authenticated);
    let after = moved.status(&own, &now());
    assert!(
        after
            .conditions
            .iter()
            .all(|c| c.type_ != flux_proxy::CONDITION)
    );

    // Deleting it again (offboarding does, first) is harmless.
    flux_proxy::remove(&api, "shop").await.unwrap();
}
