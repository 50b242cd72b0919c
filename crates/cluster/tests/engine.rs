//! The apply, prune, credential and offboarding behaviour a platform team relies on,
//! exercised against the in-memory API server with tenants rendered by the real renderer.

use std::time::Duration;

use serde_json::{Value, json};
use tenantry_api::{
    Platform, TenantSpec,
    tenant::{
        ArgoCd, Delivery, FluxGit, Network, NetworkProvider, NoDelivery, Rbac, Secrets, TenantFile,
    },
};
use tenantry_cluster::{
    ClusterApi, ClusterError,
    credential::{self, CredentialRequest, Revoke, TokenPolicy, kubeconfig_yaml},
    fake::{FAKE_EXPIRY, FakeCluster},
    kube_api::ClusterEndpoint,
    ops::{self, Action, ApplyOptions, LayerStatus, Silent, TenantApply, Waits},
};
use tenantry_core::{PlatformContext, Rendered, plan::Change};

const LABEL: &str = "tenantry.dev/tenant";

fn context() -> PlatformContext {
    PlatformContext::new(Platform::default()).expect("default platform is valid")
}

fn render(ctx: &PlatformContext, name: &str, spec: TenantSpec) -> Rendered {
    tenantry_core::render_tenant(ctx, &TenantFile::new(name, spec)).expect("tenant renders")
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

/// observe → plan → apply, as `onboard` and `apply` do.
async fn converge(
    api: &FakeCluster,
    rendered: &[Rendered],
    prune: bool,
    options: &ApplyOptions,
) -> Result<Vec<TenantApply>, ClusterError> {
    let catalog = api.discover().await?;
    for r in rendered {
        ops::check_kinds(&catalog, r, options.skip_missing_crds)?;
    }
    let live = ops::observe(api, &catalog, rendered, LABEL, prune, &Silent).await?;
    let plans = ops::plan_all(rendered, &live, LABEL, prune);
    let mut out = Vec::new();
    for (r, p) in rendered.iter().zip(&plans) {
        out.push(ops::apply_tenant(api, &catalog, r, p, options, &Silent).await);
    }
    Ok(out)
}

fn resource_versions(api: &FakeCluster, tenant: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = api
        .objects()
        .iter()
        .filter(|o| {
            o.pointer(&format!("/metadata/labels/{}", LABEL.replace('/', "~1")))
                == Some(&json!(tenant))
        })
        .map(|o| {
            (
                format!("{} {}", o["kind"], o["metadata"]["name"]),
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn onboarding_applies_every_layer_in_order_and_a_rerun_writes_nothing() {
    let ctx = context();
    let shop = render(&ctx, "shop", TenantSpec::default());
    let api = FakeCluster::new();
    let first = converge(&api, std::slice::from_ref(&shop), false, &quick())
        .await
        .unwrap();
    let report = &first[0];
    assert!(report.succeeded(), "{:?}", report.error);
    let layers: Vec<(&str, LayerStatus)> = report
        .layers
        .iter()
        .map(|l| (l.layer.as_str(), l.status))
        .collect();
    assert_eq!(
        layers,
        [
            ("namespace", LayerStatus::Applied),
            ("quota", LayerStatus::Applied),
            ("limits", LayerStatus::Applied),
            ("rbac", LayerStatus::Applied),
            ("serviceaccount", LayerStatus::Applied),
            ("network", LayerStatus::Applied),
            ("secrets", LayerStatus::Applied),
            ("delivery", LayerStatus::Applied),
        ]
    );
    // Writes reach the server in exactly the rendered order.
    let expected: Vec<String> = shop
        .objects
        .iter()
        .map(|o| format!("apply {}", o.reference()))
        .collect();
    assert_eq!(api.write_log(), expected);
    let before = resource_versions(&api, "shop");
    assert_eq!(before.len(), shop.objects.len());

    api.reset_requests();
    let again = converge(&api, std::slice::from_ref(&shop), false, &quick())
        .await
        .unwrap();
    assert!(
        again[0]
            .layers
            .iter()
            .all(|l| l.status == LayerStatus::Unchanged)
    );
    assert_eq!(again[0].writes, 0);
    assert_eq!(
        api.requests().writes(),
        0,
        "a converged tenant costs reads only"
    );
    assert_eq!(
        resource_versions(&api, "shop"),
        before,
        "no resourceVersion moved"
    );
}

#[tokio::test]
async fn a_missing_crd_stops_before_anything_is_written_and_names_the_crd() {
    let ctx = context();
    let shop = render(&ctx, "shop", TenantSpec::default());
    let api = FakeCluster::new();
    api.hide_group("source.toolkit.fluxcd.io");
    let error = converge(&api, std::slice::from_ref(&shop), false, &quick())
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("ocirepositories.source.toolkit.fluxcd.io"),
        "{text}"
    );
    assert!(text.contains("--skip-missing-crds"), "{text}");
    assert!(text.contains("layer delivery"), "{text}");
    assert_eq!(
        api.requests().writes(),
        0,
        "never a silently partial tenant"
    );

    let options = ApplyOptions {
        skip_missing_crds: true,
        ..quick()
    };
    let report = converge(&api, std::slice::from_ref(&shop), false, &options)
        .await
        .unwrap();
    let delivery = report[0]
        .layers
        .iter()
        .find(|l| l.layer.as_str() == "delivery")
        .unwrap();
    assert_eq!(delivery.status, LayerStatus::Skipped);
    assert!(delivery.objects.iter().all(|o| o.action == Action::Skipped));
    assert_eq!(
        report[0].missing[0].crd,
        "ocirepositories.source.toolkit.fluxcd.io"
    );
    assert_eq!(report[0].layers_with(&[LayerStatus::Applied]).len(), 7);
}

#[tokio::test]
async fn a_failed_layer_stops_the_tenant_and_a_rerun_resumes_where_it_stopped() {
    let ctx = context();
    let shop = render(&ctx, "shop", TenantSpec::default());
    let api = FakeCluster::new();
    api.fail_next_apply("NetworkPolicy");
    let report = converge(&api, std::slice::from_ref(&shop), false, &quick())
        .await
        .unwrap();
    let report = &report[0];
    let error = report.error.as_ref().expect("the network layer failed");
    assert!(
        error
            .to_string()
            .contains("NetworkPolicy shop/tenantry-default-deny is invalid"),
        "{error}"
    );
    assert_eq!(
        report.layers_with(&[LayerStatus::Applied]),
        ["namespace", "quota", "limits", "rbac", "serviceaccount"]
    );
    assert_eq!(report.layers_with(&[LayerStatus::Failed]), ["network"]);
    assert_eq!(
        report.layers_with(&[LayerStatus::NotApplied]),
        ["secrets", "delivery"]
    );

    api.reset_requests();
    let resumed = converge(&api, std::slice::from_ref(&shop), false, &quick())
        .await
        .unwrap();
    let resumed = &resumed[0];
    assert!(resumed.succeeded());
    assert_eq!(
        resumed.layers_with(&[LayerStatus::Unchanged]),
        ["namespace", "quota", "limits", "rbac", "serviceaccount"]
    );
    assert_eq!(
        resumed.layers_with(&[LayerStatus::Applied]),
        ["network", "secrets", "delivery"]
    );
    // Only what was missing is written on the second run.
    assert!(
        api.write_log()
            .iter()
            .all(|w| !w.contains("Namespace") && !w.contains("ResourceQuota"))
    );
}

#[tokio::test]
async fn drift_is_reported_with_both_values_and_corrected() {
    let ctx = context();
    let shop = render(&ctx, "shop", TenantSpec::default());
    let api = FakeCluster::new();
    converge(&api, std::slice::from_ref(&shop), false, &quick())
        .await
        .unwrap();
    api.edit("v1", "ResourceQuota", Some("shop"), "tenantry-quota", |q| {
        q["spec"]["hard"]["pods"] = json!("5000");
    });
    let catalog = api.discover().await.unwrap();
    let live = ops::observe(
        &api,
        &catalog,
        std::slice::from_ref(&shop),
        LABEL,
        false,
        &Silent,
    )
    .await
    .unwrap();
    let plan = &ops::plan_all(std::slice::from_ref(&shop), &live, LABEL, false)[0];
    let quota = plan
        .objects
        .iter()
        .find(|o| o.key.kind == "ResourceQuota")
        .unwrap();
    assert_eq!(
        quota.change,
        Change::Update(vec![
            "spec.hard.pods: cluster has \"5000\", declared \"50\"".to_owned()
        ])
    );
    assert_eq!(plan.counts().change, 1);
    let report = ops::apply_tenant(&api, &catalog, &shop, plan, &quick(), &Silent).await;
    let quota = report.layers[1].objects[0].clone();
    assert_eq!(quota.action, Action::Changed);
    let live = api
        .object("v1", "ResourceQuota", Some("shop"), "tenantry-quota")
        .unwrap();
    assert_eq!(live["spec"]["hard"]["pods"], "50");
}

#[tokio::test]
async fn prune_removes_what_the_tenant_no_longer_declares_only_when_asked() {
    let ctx = context();
    let with_dev = render(
        &ctx,
        "shop",
        TenantSpec {
            namespaces: vec!["shop-dev".to_owned()],
            ..TenantSpec::default()
        },
    );
    let api = FakeCluster::new();
    converge(&api, std::slice::from_ref(&with_dev), false, &quick())
        .await
        .unwrap();
    // Another tenant's objects are never touched.
    let blog = render(&ctx, "blog", TenantSpec::default());
    converge(&api, std::slice::from_ref(&blog), false, &quick())
        .await
        .unwrap();

    let without_dev = render(&ctx, "shop", TenantSpec::default());
    api.reset_requests();
    converge(&api, std::slice::from_ref(&without_dev), false, &quick())
        .await
        .unwrap();
    assert!(
        api.object("v1", "Namespace", None, "shop-dev").is_some(),
        "no prune unless asked"
    );

    api.reset_requests();
    let report = converge(&api, std::slice::from_ref(&without_dev), true, &quick())
        .await
        .unwrap();
    let pruned: Vec<&str> = report[0].pruned.iter().map(|p| p.object.as_str()).collect();
    // The namespace goes last and takes its contents with it; the RoleBindings in `shop`
    // that named shop-dev's ServiceAccount were re-applied, not deleted.
    assert_eq!(pruned, ["Namespace shop-dev"]);
    assert!(report[0].pruned.iter().all(|p| p.outcome == "deleted"));
    assert_eq!(resource_versions(&api, "blog").len(), blog.objects.len());
    assert!(
        api.write_log()
            .last()
            .unwrap()
            .starts_with("delete Namespace shop-dev")
    );
}

#[tokio::test]
async fn a_dry_run_validates_without_storing_anything() {
    let ctx = context();
    let shop = render(&ctx, "shop", TenantSpec::default());
    let api = FakeCluster::new();
    let options = ApplyOptions {
        dry_run: true,
        ..quick()
    };
    let before = api.objects().len();
    let report = converge(&api, std::slice::from_ref(&shop), true, &options)
        .await
        .unwrap();
    assert!(report[0].succeeded());
    assert_eq!(api.objects().len(), before);
    assert_eq!(report[0].layers[0].status, LayerStatus::DryRun);
    assert!(
        report[0].layers[0]
            .objects
            .iter()
            .all(|o| o.action == Action::WouldCreate)
    );
    let quota = &report[0].layers[1].objects[0];
    assert_eq!(quota.action, Action::WouldCreate);
    assert!(quota.details[0].contains("namespace does not exist yet"));
}

fn endpoint() -> ClusterEndpoint {
    ClusterEndpoint {
        context: "admin".to_owned(),
        server: "https://127.0.0.1:6443".to_owned(),
        certificate_authority_data: Some("Q0EK".to_owned()),
        tls_server_name: None,
        insecure_skip_tls_verify: false,
        proxy_url: None,
    }
}

async fn onboarded(api: &FakeCluster, name: &str) -> Rendered {
    let ctx = context();
    let rendered = render(
        &ctx,
        name,
        TenantSpec {
            delivery: Some(Delivery::None(NoDelivery::default())),
            ..TenantSpec::default()
        },
    );
    let report = converge(api, std::slice::from_ref(&rendered), false, &quick())
        .await
        .unwrap();
    assert!(report[0].succeeded());
    rendered
}

fn request<'a>(
    tenant: &'a str,
    endpoint: &'a ClusterEndpoint,
    holder: Option<&'a str>,
) -> CredentialRequest<'a> {
    CredentialRequest {
        tenant,
        namespace: tenant,
        tenant_label: LABEL,
        cluster_name: "prod",
        endpoint,
        lifetime: TokenPolicy::from_platform(&Default::default())
            .unwrap()
            .lifetime(None)
            .unwrap(),
        holder,
    }
}

/// Whether the token in `kubeconfig` is accepted for a request in `namespace`.
async fn works(api: &FakeCluster, kubeconfig: &str, namespace: &str) -> bool {
    let as_tenant = api.connect_as(kubeconfig).await.unwrap();
    let check = tenantry_cluster::AccessCheck {
        verb: "list".to_owned(),
        group: String::new(),
        resource: "pods".to_owned(),
        namespace: Some(namespace.to_owned()),
    };
    match as_tenant.review_access(&check).await {
        Ok(_) => true,
        Err(ClusterError::Unauthorized { .. }) => false,
        Err(e) => panic!("unexpected {e:?}"),
    }
}

#[tokio::test]
async fn the_issued_credential_works_in_its_namespace_only() {
    let api = FakeCluster::new();
    onboarded(&api, "shop").await;
    let ep = endpoint();
    let issued = credential::issue(&api, &request("shop", &ep, None))
        .await
        .unwrap();
    assert_eq!(issued.granted_seconds, Some(8 * 3600));
    let checks = credential::verify(&api, &issued.kubeconfig, "shop", &quick().waits)
        .await
        .unwrap();
    let answers: Vec<(&str, bool, bool)> = checks
        .iter()
        .map(|c| (c.question.as_str(), c.expected, c.allowed))
        .collect();
    assert_eq!(
        answers,
        [
            ("list pods in shop", true, true),
            ("list nodes (cluster scope)", false, false),
            ("get pods in kube-system", false, false),
        ]
    );

    api.grant_tenants_everything();
    let checks = credential::verify(&api, &issued.kubeconfig, "shop", &quick().waits)
        .await
        .unwrap();
    assert!(
        checks.iter().any(|c| !c.ok()),
        "a broader credential must be caught"
    );
}

#[tokio::test]
async fn each_credential_is_listed_and_revoked_alone_and_the_service_account_stays() {
    let api = FakeCluster::new();
    onboarded(&api, "shop").await;
    onboarded(&api, "blog").await;
    let ep = endpoint();
    let waits = quick().waits;
    let alice = credential::issue_checked(&api, &request("shop", &ep, Some("alice")), &waits)
        .await
        .unwrap();
    let ci = credential::issue_checked(&api, &request("shop", &ep, Some("ci")), &waits)
        .await
        .unwrap();
    let blog = credential::issue_checked(&api, &request("blog", &ep, None), &waits)
        .await
        .unwrap();
    assert!(alice.ok() && ci.ok() && blog.ok());
    assert_ne!(alice.credential.id, ci.credential.id);

    let listed = credential::list(&api, LABEL, "shop").await.unwrap();
    let mut seen: Vec<(&str, Option<&str>, Option<&str>, bool)> = listed
        .iter()
        .map(|c| {
            (
                c.id.as_str(),
                c.holder.as_deref(),
                c.expires_at.as_deref(),
                c.expired,
            )
        })
        .collect();
    seen.sort();
    let mut expected = vec![
        (
            alice.credential.id.as_str(),
            Some("alice"),
            Some(FAKE_EXPIRY),
            false,
        ),
        (
            ci.credential.id.as_str(),
            Some("ci"),
            Some(FAKE_EXPIRY),
            false,
        ),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    assert!(listed.iter().all(|c| c.issued_at.is_some()));

    let revoked = credential::revoke(&api, LABEL, "shop", Revoke::Id(&alice.credential.id))
        .await
        .unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].outcome, "revoked");
    assert!(!works(&api, &alice.credential.kubeconfig, "shop").await);
    assert!(works(&api, &ci.credential.kubeconfig, "shop").await);
    assert!(works(&api, &blog.credential.kubeconfig, "blog").await);
    assert!(
        api.object("v1", "ServiceAccount", Some("shop"), "shop")
            .is_some(),
        "delivery's identity is untouched"
    );
    let left: Vec<String> = credential::list(&api, LABEL, "shop")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(left, std::slice::from_ref(&ci.credential.id));

    let error = credential::revoke(&api, LABEL, "shop", Revoke::Id(&alice.credential.id))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`tenantry credentials list shop`"),
        "{error}"
    );
    let all = credential::revoke(&api, LABEL, "shop", Revoke::All)
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert!(!works(&api, &ci.credential.kubeconfig, "shop").await);
    assert!(works(&api, &blog.credential.kubeconfig, "blog").await);
    assert_eq!(
        credential::list(&api, LABEL, "blog").await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn a_credential_broader_than_the_tenant_is_revoked_before_the_command_returns() {
    let api = FakeCluster::new();
    onboarded(&api, "shop").await;
    api.grant_tenants_everything();
    let ep = endpoint();
    let checked = credential::issue_checked(&api, &request("shop", &ep, None), &quick().waits)
        .await
        .unwrap();
    assert!(!checked.ok() && checked.broader());
    let status = checked.revoked.clone().unwrap();
    assert!(!status.authenticated, "{status:?}");
    assert!(
        !api.review_token(&checked.credential.token)
            .await
            .unwrap()
            .authenticated
    );
    assert_eq!(credential::list(&api, LABEL, "shop").await.unwrap(), []);
}

#[tokio::test]
async fn a_credential_whose_check_fails_with_an_error_is_revoked_and_the_error_returned() {
    let api = FakeCluster::new();
    onboarded(&api, "shop").await;
    api.fail_access_reviews(Some(ClusterError::Api {
        doing: "reviewing the credential's access".to_owned(),
        code: 503,
        reason: "ServiceUnavailable".to_owned(),
        message: "etcd is down".to_owned(),
    }));
    let ep = endpoint();
    let error = credential::issue_checked(&api, &request("shop", &ep, None), &quick().waits)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClusterError::Api { code: 503, .. }),
        "{error:?}"
    );
    api.fail_access_reviews(None);
    assert_eq!(
        credential::list(&api, LABEL, "shop").await.unwrap(),
        [],
        "the unchecked credential was revoked"
    );
}

#[tokio::test]
async fn a_credential_that_cannot_be_revoked_says_so_and_how() {
    let api = FakeCluster::new();
    onboarded(&api, "shop").await;
    api.grant_tenants_everything();
    api.fail_deletes(
        "Secret",
        ClusterError::Forbidden {
            doing: "deleting Secret".to_owned(),
            message: "no".to_owned(),
        },
    );
    let ep = endpoint();
    let error = credential::issue_checked(&api, &request("shop", &ep, None), &quick().waits)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, ClusterError::NotRevoked { .. }),
        "{error:?}"
    );
    assert!(text.contains("reaches further than the tenant"), "{text}");
    assert!(text.contains("tenantry credentials revoke shop"), "{text}");
    assert!(std::error::Error::source(&error).is_some());
}

#[tokio::test]
async fn pruning_never_revokes_a_credential() {
    let ctx = context();
    let api = FakeCluster::new();
    let shop = onboarded(&api, "shop").await;
    let ep = endpoint();
    let issued = credential::issue(&api, &request("shop", &ep, None))
        .await
        .unwrap();
    for tenants in [
        vec![shop.clone()],
        vec![shop, render(&ctx, "blog", TenantSpec::default())],
    ] {
        let report = converge(&api, &tenants, true, &quick()).await.unwrap();
        assert!(
            report.iter().all(|r| r.pruned.is_empty()),
            "{:?}",
            report[0].pruned
        );
    }
    assert!(works(&api, &issued.kubeconfig, "shop").await);
    assert_eq!(
        credential::list(&api, LABEL, "shop").await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn a_credential_for_a_tenant_that_is_not_onboarded_is_refused_with_the_fix() {
    let api = FakeCluster::new();
    let ep = endpoint();
    let error = credential::issue(&api, &request("ghost", &ep, None))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("tenantry onboard ghost"),
        "{error}"
    );
}

#[tokio::test]
async fn a_failed_prune_keeps_its_type_and_a_rejected_credential_stops_the_rest() {
    let ctx = context();
    let api = FakeCluster::new();
    let wide = render(
        &ctx,
        "shop",
        TenantSpec {
            namespaces: vec!["shop-dev".to_owned(), "shop-test".to_owned()],
            ..TenantSpec::default()
        },
    );
    converge(&api, std::slice::from_ref(&wide), false, &quick())
        .await
        .unwrap();
    api.fail_deletes(
        "Namespace",
        ClusterError::Unauthorized {
            doing: "deleting Namespace".to_owned(),
        },
    );
    let narrow = render(&ctx, "shop", TenantSpec::default());
    let report = converge(&api, std::slice::from_ref(&narrow), true, &quick())
        .await
        .unwrap();
    let outcomes: Vec<(&str, &str)> = report[0]
        .pruned
        .iter()
        .map(|p| (p.object.as_str(), p.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("Namespace shop-dev", "failed"),
            ("Namespace shop-test", "not-attempted")
        ]
    );
    assert!(
        matches!(report[0].error, Some(ClusterError::Unauthorized { .. })),
        "{:?}",
        report[0].error
    );
}

#[tokio::test]
async fn offboarding_revokes_the_token_before_deleting_namespaces_and_leaves_nothing() {
    let api = FakeCluster::new();
    api.set_namespace_linger(3);
    let ctx = context();
    let shop = render(
        &ctx,
        "shop",
        TenantSpec {
            namespaces: vec!["shop-dev".to_owned()],
            ..TenantSpec::default()
        },
    );
    converge(&api, std::slice::from_ref(&shop), false, &quick())
        .await
        .unwrap();
    let other = onboarded(&api, "blog").await;
    let token = api.request_token("shop", "shop", 3600, None).await.unwrap();
    let kubeconfig = kubeconfig_yaml(&tenantry_cluster::credential::KubeconfigSpec {
        tenant: "shop",
        cluster_name: "prod",
        namespace: "shop",
        endpoint: &endpoint(),
        credential_id: "bcdfghjklm",
        token: &token.token,
        expires_at: None,
    });
    assert!(api.review_token(&token.token).await.unwrap().authenticated);

    api.reset_requests();
    let catalog = api.discover().await.unwrap();
    let waits = quick().waits;
    let report = ops::offboard_cluster(
        &api,
        &catalog,
        LABEL,
        "shop",
        Some(&token.token),
        &waits,
        &Silent,
    )
    .await
    .unwrap();
    let status = report.last_token.clone().unwrap();
    assert!(
        !status.authenticated,
        "deleting the ServiceAccount revokes its tokens"
    );
    assert_eq!(report.namespaces, ["shop", "shop-dev"]);
    let log = api.write_log();
    let first_ns = log
        .iter()
        .position(|w| w.starts_with("delete Namespace"))
        .unwrap();
    let sa = log
        .iter()
        .position(|w| w.starts_with("delete ServiceAccount"))
        .unwrap();
    let delivery = log
        .iter()
        .position(|w| w.starts_with("delete Kustomization"))
        .unwrap();
    assert!(delivery < sa && sa < first_ns, "{log:?}");
    // Objects inside the namespaces go with them: no DELETE per object.
    assert!(
        !log.iter().any(|w| w.starts_with("delete ResourceQuota")),
        "{log:?}"
    );
    let as_tenant = api.connect_as(&kubeconfig).await.unwrap();
    assert!(matches!(
        as_tenant
            .review_access(&tenantry_cluster::AccessCheck {
                verb: "list".to_owned(),
                group: String::new(),
                resource: "pods".to_owned(),
                namespace: Some("shop".to_owned()),
            })
            .await,
        Err(ClusterError::Unauthorized { .. })
    ));

    ops::wait_namespaces_gone(&api, &catalog, &report.namespaces, &waits, &Silent)
        .await
        .unwrap();
    let (found, unreadable) = ops::scan_tenant(&api, &catalog, LABEL, "shop", &Silent)
        .await
        .unwrap();
    assert!(unreadable.is_empty());
    assert_eq!(ops::leftovers(&found), Vec::<String>::new());
    assert_eq!(
        resource_versions(&api, "blog").len(),
        other.objects.len(),
        "other tenants untouched"
    );
}

#[tokio::test]
async fn offboarding_reports_objects_labelled_for_the_tenant_it_did_not_create() {
    let api = FakeCluster::new();
    onboarded(&api, "shop").await;
    api.insert(json!({ "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "hand-made", "namespace": "kube-system", "labels": { LABEL: "shop" } } }));
    let catalog = api.discover().await.unwrap();
    let waits = quick().waits;
    let report = ops::offboard_cluster(&api, &catalog, LABEL, "shop", None, &waits, &Silent)
        .await
        .unwrap();
    ops::wait_namespaces_gone(&api, &catalog, &report.namespaces, &waits, &Silent)
        .await
        .unwrap();
    let (found, _) = ops::scan_tenant(&api, &catalog, LABEL, "shop", &Silent)
        .await
        .unwrap();
    assert_eq!(ops::leftovers(&found), ["ConfigMap kube-system/hand-made"]);
}

#[tokio::test]
async fn one_failed_delete_does_not_lose_the_offboarding_report() {
    let api = FakeCluster::new();
    onboarded(&api, "shop").await;
    let ctx = context();
    let flux = render(&ctx, "blog", TenantSpec::default());
    converge(&api, std::slice::from_ref(&flux), false, &quick())
        .await
        .unwrap();
    api.fail_deletes(
        "Kustomization",
        ClusterError::Forbidden {
            doing: "deleting Kustomization blog/blog".to_owned(),
            message: "denied by a webhook".to_owned(),
        },
    );
    let catalog = api.discover().await.unwrap();
    let report =
        ops::offboard_cluster(&api, &catalog, LABEL, "blog", None, &quick().waits, &Silent)
            .await
            .unwrap();
    let failed: Vec<&str> = report.failures().map(|d| d.object.as_str()).collect();
    assert_eq!(failed.len(), 1, "{:?}", report.deleted);
    assert!(failed[0].starts_with("Kustomization"), "{failed:?}");
    assert!(matches!(
        report.first_error(),
        Some(ClusterError::Forbidden { .. })
    ));
    // Everything else was still deleted, and says so.
    assert!(
        report
            .deleted
            .iter()
            .any(|d| d.object == "Namespace blog" && d.outcome == "deleted"),
        "{:?}",
        report.deleted
    );
    assert!(
        report
            .deleted
            .iter()
            .any(|d| d.object.starts_with("ServiceAccount") && d.outcome == "deleted")
    );
}

#[tokio::test]
async fn a_namespace_that_never_goes_away_times_out_naming_it() {
    let api = FakeCluster::new();
    api.set_namespace_linger(usize::MAX);
    onboarded(&api, "shop").await;
    let catalog = api.discover().await.unwrap();
    let waits = Waits {
        timeout: Duration::from_millis(20),
        interval: Duration::from_millis(5),
    };
    let report = ops::offboard_cluster(&api, &catalog, LABEL, "shop", None, &waits, &Silent)
        .await
        .unwrap();
    let error = ops::wait_namespaces_gone(&api, &catalog, &report.namespaces, &waits, &Silent)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("shop still there"), "{error}");
}

#[tokio::test]
async fn onboarding_into_a_terminating_namespace_says_to_wait() {
    let api = FakeCluster::new();
    api.set_namespace_linger(usize::MAX);
    let rendered = onboarded(&api, "shop").await;
    let catalog = api.discover().await.unwrap();
    ops::offboard_cluster(&api, &catalog, LABEL, "shop", None, &quick().waits, &Silent)
        .await
        .unwrap();
    let report = converge(&api, std::slice::from_ref(&rendered), false, &quick())
        .await
        .unwrap();
    let error = report[0].error.as_ref().unwrap().to_string();
    assert!(error.contains("namespace shop is being deleted"), "{error}");
    assert_eq!(report[0].layers_with(&[LayerStatus::Failed]), ["namespace"]);
}

#[tokio::test]
async fn apply_over_many_converged_tenants_reads_once_per_type_and_writes_nothing() {
    let ctx = context();
    let tenants: Vec<Rendered> = (0..200)
        .map(|i| render(&ctx, &format!("t{i:04}"), TenantSpec::default()))
        .collect();
    let api = FakeCluster::new();
    converge(&api, &tenants, false, &quick()).await.unwrap();
    api.reset_requests();
    let catalog = api.discover().await.unwrap();
    let live = ops::observe(&api, &catalog, &tenants, LABEL, true, &Silent)
        .await
        .unwrap();
    let plans = ops::plan_all(&tenants, &live, LABEL, true);
    assert!(plans.iter().all(|p| p.is_converged()));
    for (r, p) in tenants.iter().zip(&plans) {
        ops::apply_tenant(&api, &catalog, r, p, &quick(), &Silent).await;
    }
    let requests = api.requests();
    assert_eq!(requests.writes(), 0);
    assert_eq!(requests.get, 0);
    assert_eq!(requests.list, catalog.scannable().len());
    let _: Vec<Value> = live;
}

#[test]
fn every_kind_the_renderer_produces_is_known_to_pruning_in_its_own_layer() {
    let ctx = context();
    let full = |delivery: Delivery, provider: NetworkProvider| TenantSpec {
        namespaces: vec!["shop-dev".to_owned()],
        delivery: Some(delivery),
        network: Some(Network {
            provider: Some(provider),
            allow_from: None,
            default_deny_egress: Some(true),
        }),
        secrets: Some(Secrets {
            openbao: Some(true),
            pull_secret: Some(true),
        }),
        rbac: Some(Rbac {
            cluster_role: None,
            grants: Some(vec!["external-dns".to_owned()]),
        }),
        ..TenantSpec::default()
    };
    let specs = [
        TenantSpec::default(),
        full(
            Delivery::ArgoCd(ArgoCd {
                repo_url: Some("https://git.example.com/shop.git".to_owned()),
                path: None,
                revision: None,
            }),
            NetworkProvider::Cilium,
        ),
        full(
            Delivery::FluxGit(FluxGit {
                url: Some("https://git.example.com/shop.git".to_owned()),
                branch: None,
                path: None,
                proxy_kubeconfig_secret: None,
            }),
            NetworkProvider::Kubernetes,
        ),
    ];
    for spec in specs {
        for object in render(&ctx, "shop", spec).objects {
            assert_eq!(
                tenantry_core::plan::layer_of(object.group(), object.kind),
                Some(object.layer),
                "{}",
                object.reference()
            );
        }
    }
}

/// `policies.vap.tenantParameters`: a tenant's GuardrailParameters are applied before its
/// bindings (which deny while their parameters are missing), and turning the toggle off
/// prunes both, like any object the tenant no longer declares.
#[tokio::test]
async fn tenant_guardrail_parameters_are_applied_first_and_pruned_when_turned_off() {
    let mut platform = Platform::default();
    platform.policies.vap.tenant_parameters = true;
    let on = PlatformContext::new(platform).unwrap();
    let api = FakeCluster::new();
    let rendered = render(&on, "g14-shop", TenantSpec::default());
    converge(&api, std::slice::from_ref(&rendered), false, &quick())
        .await
        .unwrap();
    let params = api.object(
        "tenantry.dev/v1alpha1",
        "GuardrailParameters",
        None,
        "tenantry-g14-shop",
    );
    assert!(params.is_some(), "the parameters are applied");
    let log = api.write_log();
    let at = |what: &str| {
        log.iter()
            .position(|w| w.contains(what))
            .unwrap_or_else(|| panic!("{what} not written: {log:?}"))
    };
    assert!(
        at("GuardrailParameters tenantry-g14-shop") < at("tenantry-allowed-registries.g14-shop")
    );
    assert!(at("tenantry-tenant-placement-tenant.g14-shop") < at("RoleBinding"));

    let off = render(&context(), "g14-shop", TenantSpec::default());
    api.reset_requests();
    let report = converge(&api, std::slice::from_ref(&off), true, &quick())
        .await
        .unwrap();
    // The bindings go before the parameters they would deny everything without.
    let log = api.write_log();
    let deleted = |what: &str| {
        log.iter()
            .position(|w| w.starts_with("delete") && w.contains(what))
            .unwrap_or_else(|| panic!("{what} not deleted: {log:?}"))
    };
    assert!(deleted("tenantry-allowed-registries.g14-shop") < deleted("GuardrailParameters"));
    let mut pruned: Vec<&str> = report[0].pruned.iter().map(|p| p.object.as_str()).collect();
    pruned.sort_unstable();
    assert_eq!(
        pruned,
        [
            "GuardrailParameters tenantry-g14-shop",
            "ValidatingAdmissionPolicyBinding tenantry-allowed-classes.g14-shop",
            "ValidatingAdmissionPolicyBinding tenantry-allowed-registries.g14-shop",
            "ValidatingAdmissionPolicyBinding tenantry-flux-lockdown-tenant.g14-shop",
            "ValidatingAdmissionPolicyBinding tenantry-restrict-network-policies.g14-shop",
            "ValidatingAdmissionPolicyBinding tenantry-restrict-secret-stores-tenant.g14-shop",
            "ValidatingAdmissionPolicyBinding tenantry-tenant-placement-tenant.g14-shop",
        ]
    );
}
