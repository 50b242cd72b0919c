//! OpenBao with real Kubernetes auth, end to end: a real API server reviews the tokens, a
//! real `bao server -dev` holds the policies, and `tenantry onboard`/`offboard` provision and
//! revoke them.
//!
//! Run with a cluster-admin kubeconfig of a disposable cluster (and `bao` on PATH):
//!
//! ```sh
//! TENANTRY_E2E_KUBECONFIG=$HOME/.kube/e2e.yaml cargo test -p tenantry-cli --test openbao_e2e -- --ignored --test-threads 1
//! ```
//!
//! The test configures OpenBao's Kubernetes auth method against the cluster (its address,
//! its CA from `kube-root-ca.crt`, and the token of a reviewer ServiceAccount it creates and
//! binds to `system:auth-delegator`), onboards two tenants, logs in with each tenant's own
//! ServiceAccount token, and checks what each may reach; then it offboards one and checks
//! that its login and its earlier token are both dead. Tenant names start with `bao-e2e-`
//! and are unique per run; everything created is removed on the way out, even on failure.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{SystemTime, UNIX_EPOCH},
};

use k8s_openapi::api::{
    authentication::v1::TokenRequest,
    core::v1::{ConfigMap, Namespace, ServiceAccount},
    rbac::v1::ClusterRoleBinding,
};
use kube::{
    Api, Client, Config,
    api::{DeleteParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use serde_json::{Value, json};
use tenantry_secrets::{
    BaoClient, Connection, ConnectionFlags, SecretsError,
    client::Verb,
    testing::{DevServer, ROOT_TOKEN},
};

mod common;
use common::{json_of, text};

/// The audience tenant tokens must carry to log in (`openbao.audience`).
const AUDIENCE: &str = "openbao";

fn admin_kubeconfig() -> PathBuf {
    match std::env::var_os("TENANTRY_E2E_KUBECONFIG") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "set TENANTRY_E2E_KUBECONFIG to the path of a cluster-admin kubeconfig for a disposable cluster \
             to run the end-to-end tests (they create and delete tenants)"
        ),
    }
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:x}",
        (nanos as u64 ^ u64::from(std::process::id())) & 0xff_ffff
    )
}

async fn client_from(path: &Path) -> Client {
    tenantry_admission::tls::install_crypto_provider();
    let kubeconfig = Kubeconfig::read_from(path).expect("kubeconfig readable");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig usable");
    Client::try_from(config).expect("client")
}

/// The API server's address as the admin kubeconfig names it.
fn api_server(kubeconfig: &Path) -> String {
    let k = Kubeconfig::read_from(kubeconfig).expect("kubeconfig readable");
    k.clusters
        .iter()
        .find_map(|c| c.cluster.as_ref()?.server.clone())
        .expect("a cluster with a server")
}

/// A token for `name` in `namespace`, with `audiences` (the API server's when empty).
async fn service_account_token(
    client: &Client,
    namespace: &str,
    name: &str,
    audiences: &[&str],
) -> String {
    let mut spec = json!({ "expirationSeconds": 600 });
    if !audiences.is_empty() {
        spec["audiences"] = json!(audiences);
    }
    let request: TokenRequest = serde_json::from_value(json!({ "spec": spec })).unwrap();
    let answer = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {namespace}/{name}: {e}"));
    serde_json::to_value(answer).unwrap()["status"]["token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

/// Everything the run creates, removed when dropped.
struct Run {
    repo: tempfile::TempDir,
    kubeconfig: PathBuf,
    bao: DevServer,
    token_file: PathBuf,
    runtime: tokio::runtime::Runtime,
    admin: Client,
    /// The reviewer's namespace and ClusterRoleBinding.
    reviewer: String,
    tenants: Vec<String>,
}

impl Run {
    /// `tenantry ARGS --repo … --kubeconfig … --bao-addr … --bao-token-file …`.
    fn tenantry(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tenantry"))
            .args(args)
            .arg("--repo")
            .arg(self.repo.path())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--bao-addr")
            .arg(&self.bao.address)
            .arg("--bao-token-file")
            .arg(&self.token_file)
            .env_remove("TENANTRY_REPO")
            .env_remove("BAO_ADDR")
            .env_remove("BAO_TOKEN")
            .env_remove("BAO_K8S_ROLE")
            .output()
            .expect("tenantry runs")
    }

    /// An OpenBao client that logs in as `tenant`'s role with a fresh token of its
    /// ServiceAccount, in a file like the one a pod reads.
    fn login_as(&self, tenant: &str) -> BaoClient {
        let jwt = self.runtime.block_on(service_account_token(
            &self.admin,
            tenant,
            tenant,
            &[AUDIENCE],
        ));
        std::fs::write(self.jwt_file(tenant), jwt).unwrap();
        self.k8s_client(tenant, &self.jwt_file(tenant))
    }

    /// Where `login_as` keeps the tenant's ServiceAccount token.
    fn jwt_file(&self, tenant: &str) -> PathBuf {
        self.repo.path().join(format!("{tenant}.jwt"))
    }

    /// An OpenBao client that logs in as `role` with the ServiceAccount token in `jwt_file`.
    fn k8s_client(&self, role: &str, jwt_file: &Path) -> BaoClient {
        let flags = ConnectionFlags {
            address: Some(self.bao.address.clone()),
            k8s_role: Some(role.to_owned()),
            k8s_token_file: Some(jwt_file.to_owned()),
            ..ConnectionFlags::default()
        };
        BaoClient::new(&Connection::resolve(&flags, |_| None).unwrap()).unwrap()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        for tenant in &self.tenants {
            let _ = self.tenantry(&["offboard", tenant, "--ignore-not-found", "--timeout", "3m"]);
        }
        let admin = self.admin.clone();
        let reviewer = self.reviewer.clone();
        self.runtime.block_on(async move {
            let dp = DeleteParams::default();
            let _ = Api::<ClusterRoleBinding>::all(admin.clone())
                .delete(&reviewer, &dp)
                .await;
            let _ = Api::<Namespace>::all(admin).delete(&reviewer, &dp).await;
        });
    }
}

/// Create the reviewer ServiceAccount, bind it to `system:auth-delegator`, and configure
/// OpenBao's Kubernetes auth method with its token, the cluster's address and CA.
async fn configure_kubernetes_auth(
    admin: &Client,
    kubeconfig: &Path,
    root: &BaoClient,
    name: &str,
) {
    let pp = PostParams::default();
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
    Api::<Namespace>::all(admin.clone())
        .create(&pp, &ns)
        .await
        .expect("create the reviewer namespace");
    let sa: ServiceAccount =
        serde_json::from_value(json!({ "metadata": { "name": "openbao-reviewer" } })).unwrap();
    Api::<ServiceAccount>::namespaced(admin.clone(), name)
        .create(&pp, &sa)
        .await
        .expect("create the reviewer ServiceAccount");
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": { "name": name },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator" },
        "subjects": [{ "kind": "ServiceAccount", "name": "openbao-reviewer", "namespace": name }],
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&pp, &binding)
        .await
        .expect("bind the reviewer to system:auth-delegator");
    let reviewer_jwt = service_account_token(admin, name, "openbao-reviewer", &[]).await;
    let ca = Api::<ConfigMap>::namespaced(admin.clone(), "kube-system")
        .get("kube-root-ca.crt")
        .await
        .expect("the cluster's CA in kube-system/kube-root-ca.crt")
        .data
        .and_then(|d| d.get("ca.crt").cloned())
        .expect("ca.crt");
    root.request(
        Verb::Write,
        "auth/kubernetes/config",
        Some(&json!({
            "kubernetes_host": api_server(kubeconfig),
            "kubernetes_ca_cert": ca,
            "token_reviewer_jwt": reviewer_jwt,
            "disable_local_ca_jwt": true,
        })),
    )
    .await
    .expect("configure the Kubernetes auth method");
}

#[track_caller]
fn assert_denied(result: Result<Option<Value>, SecretsError>, what: &str) {
    match result {
        Err(SecretsError::Denied { .. }) => {}
        other => panic!("{what}: expected 403, got {other:?}"),
    }
}

fn secret(value: &str) -> Value {
    json!({ "data": { "value": value } })
}

#[test]
#[ignore = "needs a real cluster: set TENANTRY_E2E_KUBECONFIG and run with --ignored"]
fn tenants_log_in_with_their_service_accounts_reach_only_their_own_path_and_offboarding_revokes() {
    let kubeconfig = admin_kubeconfig();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admin = runtime.block_on(client_from(&kubeconfig));
    let bao = runtime.block_on(DevServer::start());
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(
        repo.path().join("tenantry.yaml"),
        format!("openbao:\n  audience: {AUDIENCE}\n"),
    )
    .unwrap();
    let token_file = repo.path().join("bao-root-token");
    std::fs::write(&token_file, ROOT_TOKEN).unwrap();
    let suffix = unique_suffix();
    let (a, b) = (format!("bao-e2e-a-{suffix}"), format!("bao-e2e-b-{suffix}"));
    let run = Run {
        repo,
        kubeconfig,
        bao,
        token_file,
        runtime,
        admin,
        reviewer: format!("bao-e2e-reviewer-{suffix}"),
        tenants: vec![a.clone(), b.clone()],
    };
    let root = run.runtime.block_on(run.bao.platform_ready());
    run.runtime.block_on(configure_kubernetes_auth(
        &run.admin,
        &run.kubeconfig,
        &root,
        &run.reviewer,
    ));

    // Onboarding in cluster mode provisions the policy and role after the objects.
    for tenant in [&a, &b] {
        let o = run.tenantry(&[
            "onboard",
            tenant,
            "--openbao",
            "--skip-missing-crds",
            "--output",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let report = json_of(&o);
        let plan = report["openbao"]["plan"].as_array().unwrap();
        for target in ["policy", "role"] {
            assert!(
                plan.iter()
                    .any(|s| s["target"] == target && s["change"] == "create" && s["done"] == true),
                "{target} created: {report:#}"
            );
        }
    }

    // A: its own path, read and write; nothing else.
    let client_a = run.login_as(&a);
    let rt = &run.runtime;
    let own = format!("secret/data/apps/{a}/db");
    rt.block_on(client_a.request(Verb::Write, &own, Some(&secret("a-1"))))
        .expect("A writes apps/A/db");
    let read = rt
        .block_on(client_a.request(Verb::Read, &own, None))
        .expect("A reads apps/A/db")
        .unwrap();
    assert_eq!(read["data"]["data"]["value"], "a-1");
    assert_eq!(client_a.counts().logins, 1);
    let client_b = run.login_as(&b);
    let other = format!("secret/data/apps/{b}/db");
    rt.block_on(client_b.request(Verb::Write, &other, Some(&secret("b-1"))))
        .expect("B writes apps/B/db");
    assert_denied(
        rt.block_on(client_a.request(Verb::Read, &other, None)),
        "A reads apps/B",
    );
    assert_denied(
        rt.block_on(client_a.request(Verb::Write, &other, Some(&secret("x")))),
        "A writes apps/B",
    );
    assert_denied(
        rt.block_on(client_a.request(Verb::Read, "secret/data/infrastructure/registry", None)),
        "A reads infrastructure/",
    );
    assert_denied(
        rt.block_on(client_a.request(
            Verb::Write,
            "secret/data/infrastructure/registry",
            Some(&secret("x")),
        )),
        "A writes infrastructure/",
    );
    assert_denied(
        rt.block_on(client_a.request(Verb::Read, "sys/mounts", None)),
        "A reads sys/mounts",
    );
    assert_denied(
        rt.block_on(client_a.request(Verb::List, "sys/policies/acl", None)),
        "A lists sys/policies/acl",
    );
    // A token of A's ServiceAccount cannot log in as B.
    let a_as_b = run.k8s_client(&b, &run.jwt_file(&a));
    let e = rt
        .block_on(a_as_b.request(Verb::Read, &other, None))
        .unwrap_err();
    assert!(matches!(e, SecretsError::Login { .. }), "{e}");

    // Offboarding A revokes its role, policy and live tokens; B is untouched.
    let o = run.tenantry(&["offboard", &a, "--output", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report = json_of(&o);
    assert_eq!(report["openbao"]["role"], "deleted", "{report:#}");
    assert_eq!(report["openbao"]["policy"], "deleted", "{report:#}");
    assert!(
        report["openbao"]["tokensRevoked"].as_u64() >= Some(1),
        "{report:#}"
    );
    assert_eq!(report["openbao"]["secrets"], 1, "kept: {report:#}");

    assert_denied(
        rt.block_on(client_a.request(Verb::Read, &own, None)),
        "A's earlier token after offboarding",
    );
    let e = rt
        // The token minted for A before, still within its lifetime.
        .block_on(
            run.k8s_client(&a, &run.jwt_file(&a))
                .request(Verb::Read, &own, None),
        )
        .unwrap_err();
    assert!(
        matches!(e, SecretsError::Login { .. }),
        "A's login after offboarding: {e}"
    );
    let read = rt
        .block_on(client_b.request(Verb::Read, &other, None))
        .expect("B still reads its own path")
        .unwrap();
    assert_eq!(read["data"]["data"]["value"], "b-1");
}
