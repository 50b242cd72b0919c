//! Cluster mode as a platform engineer runs it: real `tenantry` processes, a real kubeconfig,
//! real HTTP, against Tenantry's in-memory API server (`tenantry_cluster::fake`) served on
//! 127.0.0.1. The server counts requests, so "a re-run writes nothing" is checked, not
//! assumed. The same flows run against a real cluster in `cluster_e2e.rs`.

use std::{collections::BTreeMap, fs, process::Command, time::Instant};

use serde_json::{Value, json};
use tenantry_cluster::{ClusterApi, fake::FakeCluster};

mod common;
use common::{json_of, text};
#[path = "common/fake_server.rs"]
mod fake_server;
use fake_server::{ADMIN_TOKEN, Setup, setup};

#[test]
fn onboard_applies_every_layer_issues_a_private_kubeconfig_and_proves_its_scope() {
    let s = setup();
    let o = s.run(&["onboard", "shop"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    for expected in [
        "tenant shop (GitOps): created",
        "namespace       applied",
        "delivery        applied",
        "list pods in shop                    allowed   allowed   ok",
        "list nodes (cluster scope)           denied    denied    ok",
        "get pods in kube-system              denied    denied    ok",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    let issued = s.repo.path().join("out/tenant-shop.kubeconfig");
    let kubeconfig = fs::read_to_string(&issued).unwrap();
    assert!(
        kubeconfig.contains("current-context: tenant-shop@cluster"),
        "{kubeconfig}"
    );
    assert!(kubeconfig.contains("namespace: shop"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&issued).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(
        fs::read_to_string(s.repo.path().join(".gitignore"))
            .unwrap()
            .contains("out/")
    );
    assert!(s.repo.path().join("tenants/shop/tenant.yaml").is_file());
    assert!(s.fake.object("v1", "Namespace", None, "shop").is_some());

    // Re-running changes nothing on the server (but issues a new credential, whose handle
    // is new).
    let versions = |fake: &FakeCluster| {
        let mut v: Vec<String> = fake
            .objects()
            .iter()
            .filter(|o| !tenantry_cluster::credential::is_credential(o, "tenantry.dev/tenant"))
            .map(|o| {
                format!(
                    "{} {} {}",
                    o["kind"], o["metadata"]["name"], o["metadata"]["resourceVersion"]
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = versions(&s.fake);
    s.fake.reset_requests();
    let o = s.ok(&["onboard", "shop", "--output", "json"]);
    let report = json_of(&o);
    assert_eq!(report["result"], "ok");
    assert_eq!(report["writes"], 0);
    assert!(
        report["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["status"] == "unchanged"),
        "{report:#}"
    );
    assert_eq!(report["credential"]["scope"], "tenant");
    assert_eq!(report["credential"]["requestedSeconds"], 8 * 3600);
    let requests = s.fake.requests();
    assert_eq!(
        (requests.apply, requests.delete),
        (0, 0),
        "the re-run rewrote no tenant object"
    );
    assert_eq!(
        requests.update, 2,
        "only the new credential's handle is written: created, then its expiry"
    );
    assert_eq!(versions(&s.fake), before, "no resourceVersion moved");
    assert!(
        o.stderr.is_empty(),
        "JSON mode prints nothing else: {}",
        text(&o)
    );
}

#[test]
fn a_credential_broader_than_the_tenant_fails_and_is_not_kept() {
    let s = setup();
    s.fake.grant_tenants_everything();
    let o = s.run(&["onboard", "shop", "--no-gitops"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("the credential is broader than the tenant"),
        "{out}"
    );
    assert!(
        out.contains("list nodes (cluster scope)           denied    allowed   WRONG"),
        "{out}"
    );
    assert!(!s.repo.path().join("out/tenant-shop.kubeconfig").exists());
    assert!(
        !s.repo.path().join("tenants").exists(),
        "--no-gitops writes no GitOps files"
    );
}

#[test]
fn a_missing_crd_names_the_crd_and_the_flag_and_writes_nothing_to_the_cluster() {
    let s = setup();
    s.fake.hide_group("source.toolkit.fluxcd.io");
    let o = s.run(&["onboard", "shop", "--no-gitops"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("ocirepositories.source.toolkit.fluxcd.io"),
        "{out}"
    );
    assert!(out.contains("--skip-missing-crds"), "{out}");
    assert_eq!(s.fake.requests().writes(), 0);

    let o = s.ok(&[
        "onboard",
        "shop",
        "--no-gitops",
        "--skip-missing-crds",
        "--output",
        "json",
    ]);
    let report = json_of(&o);
    let delivery = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["layer"] == "delivery")
        .unwrap()
        .clone();
    assert_eq!(delivery["status"], "skipped");
    assert_eq!(
        report["missing"][0]["crd"],
        "ocirepositories.source.toolkit.fluxcd.io"
    );
}

#[test]
fn a_failure_lists_applied_and_unapplied_layers_and_a_rerun_completes() {
    let s = setup();
    s.fake.fail_next_apply("NetworkPolicy");
    let o = s.run(&["onboard", "shop", "--no-gitops"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("applied:     namespace, quota, limits, rbac, serviceaccount"),
        "{out}"
    );
    assert!(out.contains("failed:      network"), "{out}");
    assert!(out.contains("not applied: secrets, delivery"), "{out}");
    assert!(
        out.contains("spec: Invalid value: injected by the test"),
        "{out}"
    );
    assert!(
        !s.repo.path().join("out/tenant-shop.kubeconfig").exists(),
        "no credential for a partial tenant"
    );
    s.ok(&["onboard", "shop", "--no-gitops"]);
    assert!(s.repo.path().join("out/tenant-shop.kubeconfig").exists());
}

#[test]
fn apply_prints_a_plan_converges_and_then_costs_no_writes() {
    let s = setup();
    for name in ["shop", "blog"] {
        let o = s.run(&["onboard", name, "--gitops-only"]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = s.run(&["apply", "--all", "--dry-run"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("tenant blog: 10 to create, 0 to change, 0 unchanged, 0 to prune"),
        "{out}"
    );
    assert!(out.contains("  + Namespace shop"), "{out}");
    assert!(out.contains("dry run: nothing is stored"), "{out}");
    assert!(
        s.fake.object("v1", "Namespace", None, "shop").is_none(),
        "a dry run stores nothing"
    );

    s.ok(&["apply", "--all"]);
    assert!(s.fake.object("v1", "Namespace", None, "blog").is_some());

    s.fake.reset_requests();
    let o = s.ok(&["apply", "--all", "--prune", "--output", "json"]);
    let report = json_of(&o);
    assert_eq!(report["writes"], 0);
    assert!(
        report["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["result"] == "unchanged")
    );
    assert_eq!(s.fake.requests().writes(), 0);
}

#[test]
fn offboard_revokes_the_token_removes_everything_and_says_nothing_left() {
    let s = setup();
    s.ok(&["onboard", "shop", "--namespace", "shop-dev"]);
    let kubeconfig = fs::read_to_string(s.repo.path().join("out/tenant-shop.kubeconfig")).unwrap();
    let token = tenantry_cluster::credential::token_of(&kubeconfig).unwrap();
    let o = s.ok(&["offboard", "shop", "--output", "json"]);
    let report = json_of(&o);
    assert_eq!(report["result"], "ok", "{report:#}");
    assert_eq!(report["lastToken"]["authenticated"], false);
    assert_eq!(report["leftovers"], json!([]));
    assert_eq!(report["namespaces"], json!(["shop", "shop-dev"]));
    assert!(!s.repo.path().join("out/tenant-shop.kubeconfig").exists());
    assert!(!s.repo.path().join("tenants/shop").exists());
    assert!(s.fake.object("v1", "Namespace", None, "shop").is_none());
    // The token is dead for the API server too.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let review = rt.block_on(s.fake.review_token(&token)).unwrap();
    assert!(!review.authenticated);

    let o = s.run(&["offboard", "shop"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--ignore-not-found"));
    s.ok(&["offboard", "shop", "--ignore-not-found"]);
}

#[test]
fn offboard_reports_leftovers_and_exits_1() {
    let s = setup();
    assert!(s.run(&["onboard", "shop", "--no-gitops"]).status.success());
    s.fake.insert(json!({ "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "hand-made", "namespace": "kube-system", "labels": { "tenantry.dev/tenant": "shop" } } }));
    let o = s.run(&["offboard", "shop", "--keep-gitops"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("left over     ConfigMap kube-system/hand-made"),
        "{out}"
    );
    assert!(out.contains("last issued token rejected: revoked"), "{out}");
}

#[test]
fn kubeconfig_issues_a_fresh_capped_credential() {
    let s = setup();
    assert!(s.run(&["onboard", "shop", "--no-gitops"]).status.success());
    let first = fs::read_to_string(s.repo.path().join("out/tenant-shop.kubeconfig")).unwrap();
    let o = s.ok(&[
        "kubeconfig",
        "shop",
        "--duration",
        "72h",
        "--output",
        "json",
    ]);
    let report = json_of(&o);
    assert_eq!(report["credential"]["capped"], true);
    assert_eq!(report["credential"]["requestedSeconds"], 24 * 3600);
    let second = fs::read_to_string(s.repo.path().join("out/tenant-shop.kubeconfig")).unwrap();
    assert_ne!(first, second, "a fresh token");
    let o = s.run(&["kubeconfig", "ghost"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("run `tenantry onboard ghost` first"),
        "{}",
        text(&o)
    );
}

#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let s = setup();
    let o = s.run(&["onboard", "shop", "--token-duration", "5m"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("at least 10m"), "{}", text(&o));
    assert!(!s.repo.path().join("tenants").exists());
    let o = s.run(&["onboard", "shop", "--token-duration", "1d"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("24h"), "{}", text(&o));
    let o = s.run(&["onboard", "shop", "--gitops-only", "--no-gitops"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(s.fake.requests().total(), 0);
}

#[test]
fn a_rejected_credential_says_so() {
    let s = setup();
    let text_of = fs::read_to_string(&s.kubeconfig)
        .unwrap()
        .replace(ADMIN_TOKEN, "forged");
    fs::write(&s.kubeconfig, text_of).unwrap();
    let o = s.run(&["apply", "shop"]);
    assert_eq!(o.status.code(), Some(2));
    let o = s.run(&["onboard", "shop", "--no-gitops", "--output", "json"]);
    assert_eq!(o.status.code(), Some(2));
    let report = json_of(&o);
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("the credential was rejected"),
        "{report:#}"
    );
}

#[test]
fn an_unreachable_cluster_fails_without_touching_the_repository_on_offboard() {
    let s = setup();
    assert!(
        s.run(&["onboard", "shop", "--gitops-only"])
            .status
            .success()
    );
    let unreachable = s.repo.path().join("nowhere.kubeconfig");
    fs::write(
        &unreachable,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster:\n    server: http://127.0.0.1:9\ncontexts:\n- name: x\n  context:\n    cluster: x\n    user: x\ncurrent-context: x\nusers:\n- name: x\n  user:\n    token: t\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(["offboard", "shop", "--repo"])
        .arg(s.repo.path())
        .arg("--kubeconfig")
        .arg(&unreachable)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        s.repo.path().join("tenants/shop/tenant.yaml").is_file(),
        "nothing removed"
    );
}

impl Setup {
    /// Run `tenantry args…` and require it to succeed.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> std::process::Output {
        let o = self.run(args);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        o
    }

    fn take_http_counts(&self) -> BTreeMap<String, usize> {
        std::mem::take(&mut *self.http.lock().unwrap())
    }
}

/// Cost of the real binary over real HTTP (loopback, in-memory server): requests by method
/// and wall time. Run: `cargo test --release -p tenantry-cli --test cluster_cli -- --ignored --nocapture cost_`.
#[test]
#[ignore = "measurement, not a check: run with --ignored --nocapture"]
fn cost_of_onboarding_one_tenant_and_of_apply_all_over_1000_unchanged_tenants() {
    let s = setup();
    let start = Instant::now();
    let o = s.run(&["onboard", "shop", "--output", "json"]);
    let elapsed = start.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    eprintln!(
        "onboard shop (first time, with credential and scope check): {elapsed:?}, HTTP {:?}",
        s.take_http_counts()
    );
    let start = Instant::now();
    let o = s.run(&["onboard", "shop", "--output", "json"]);
    let elapsed = start.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    eprintln!(
        "onboard shop (unchanged, fresh credential): {elapsed:?}, HTTP {:?}",
        s.take_http_counts()
    );

    let template = fs::read_to_string(s.repo.path().join("tenants/shop/tenant.yaml")).unwrap();
    for i in 0..1000 {
        let name = format!("t{i:04}");
        let dir = s.repo.path().join("tenants").join(&name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("tenant.yaml"), template.replace("shop", &name)).unwrap();
    }
    let o = Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(["render", "--write", "--repo"])
        .arg(s.repo.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let start = Instant::now();
    s.ok(&["apply", "--all", "--output", "json"]);
    eprintln!(
        "apply --all, 1000 new tenants + 1 unchanged: {:?}, HTTP {:?}",
        start.elapsed(),
        s.take_http_counts()
    );
    for args in [
        &["apply", "--all", "--output", "json"][..],
        &["apply", "--all", "--prune", "--output", "json"][..],
    ] {
        let start = Instant::now();
        let o = s.run(args);
        let elapsed = start.elapsed();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert_eq!(json_of(&o)["writes"], 0);
        let counts = s.take_http_counts();
        assert_eq!(counts.get("PATCH"), None, "no writes: {counts:?}");
        assert_eq!(counts.get("DELETE"), None, "no writes: {counts:?}");
        eprintln!(
            "{} over 1001 unchanged tenants: {elapsed:?}, HTTP {counts:?}",
            args.join(" ")
        );
    }
}

#[test]
fn credentials_are_listed_and_revoked_one_at_a_time() {
    let s = setup();
    assert!(s.run(&["onboard", "shop", "--no-gitops"]).status.success());
    let path = s.repo.path().join("out/tenant-shop.kubeconfig");
    let first =
        tenantry_cluster::credential::token_of(&fs::read_to_string(&path).unwrap()).unwrap();
    let o = s.ok(&[
        "kubeconfig",
        "shop",
        "--holder",
        "ci deploy job",
        "--output",
        "json",
    ]);
    let second_id = json_of(&o)["credential"]["credentialId"]
        .as_str()
        .unwrap()
        .to_owned();
    let second =
        tenantry_cluster::credential::token_of(&fs::read_to_string(&path).unwrap()).unwrap();

    let o = s.ok(&["credentials", "list", "shop", "--output", "json"]);
    let listed = json_of(&o)["credentials"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 2, "{listed:#?}");
    let first_id = listed
        .iter()
        .find(|c| c["id"] != second_id.as_str())
        .and_then(|c| c["id"].as_str())
        .unwrap()
        .to_owned();
    let by_id = |id: &str| listed.iter().find(|c| c["id"] == id).unwrap().clone();
    assert_eq!(by_id(&second_id)["holder"], "ci deploy job");
    assert_eq!(by_id(&first_id)["holder"], Value::Null);
    let o = s.run(&["credentials", "list", "shop"]);
    let out = text(&o);
    assert!(
        out.contains(&second_id) && out.contains("ci deploy job"),
        "{out}"
    );

    let o = s.ok(&["credentials", "revoke", "shop", &first_id]);
    assert!(
        text(&o).contains(&format!("revoked       {first_id}")),
        "{}",
        text(&o)
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(
        !rt.block_on(s.fake.review_token(&first))
            .unwrap()
            .authenticated
    );
    assert!(
        rt.block_on(s.fake.review_token(&second))
            .unwrap()
            .authenticated,
        "the other credential keeps working"
    );
    assert!(
        s.fake
            .object("v1", "ServiceAccount", Some("shop"), "shop")
            .is_some(),
        "revoking a credential leaves the ServiceAccount"
    );

    // Unknown and malformed IDs are refused before anything is deleted.
    let o = s.run(&["credentials", "revoke", "shop", &first_id]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("credentials list shop"), "{}", text(&o));
    let o = s.run(&["credentials", "revoke", "shop", "../x"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not a credential ID"), "{}", text(&o));

    let o = s.ok(&["credentials", "revoke", "shop", "--all", "--output", "json"]);
    assert_eq!(json_of(&o)["revoked"][0]["id"], second_id.as_str());
    assert!(
        !rt.block_on(s.fake.review_token(&second))
            .unwrap()
            .authenticated
    );
    let o = s.run(&["credentials", "list", "shop", "--output", "json"]);
    assert_eq!(json_of(&o)["credentials"], json!([]));
}

/// A real `bao server -dev` with the platform's mounts, and the flags that reach it with its
/// root token (from a file, as a platform's CI would).
struct Bao {
    runtime: tokio::runtime::Runtime,
    server: tenantry_secrets::testing::DevServer,
    root: tenantry_secrets::BaoClient,
    token_file: String,
}

impl Bao {
    fn start(s: &Setup) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(tenantry_secrets::testing::DevServer::start());
        let root = runtime.block_on(server.platform_ready());
        let token_file = s.repo.path().join("bao-token");
        fs::write(&token_file, tenantry_secrets::testing::ROOT_TOKEN).unwrap();
        Self {
            runtime,
            server,
            root,
            token_file: token_file.to_string_lossy().into_owned(),
        }
    }

    fn flags(&self) -> [String; 4] {
        [
            "--bao-addr".to_owned(),
            self.server.address.clone(),
            "--bao-token-file".to_owned(),
            self.token_file.clone(),
        ]
    }
}

#[test]
fn offboard_revokes_the_tenants_openbao_access_and_keeps_its_secrets() {
    use tenantry_secrets::{SecretsApi, client::Verb};
    let s = setup();
    let bao = Bao::start(&s);
    let (rt, root) = (&bao.runtime, &bao.root);
    let bao_flags = bao.flags();
    let bao_flags = bao_flags.iter().map(String::as_str).collect::<Vec<_>>();
    s.ok(&["onboard", "shop", "--gitops-only", "--openbao"]);
    let mut provision = vec!["secrets", "provision", "shop"];
    provision.extend(&bao_flags);
    let o = Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(&provision)
        .arg("--repo")
        .arg(s.repo.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (_, accessor) = rt.block_on(bao.server.token_with("app-shop"));
    rt.block_on(root.request(
        Verb::Write,
        "secret/data/apps/shop/db",
        Some(&json!({ "data": { "k": "v" } })),
    ))
    .unwrap();

    // Without a way to reach OpenBao, nothing is removed.
    if std::env::var_os("BAO_ADDR").is_none() && std::env::var_os("VAULT_ADDR").is_none() {
        let o = s.run(&["offboard", "shop"]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(2), "{out}");
        assert!(
            out.contains("BAO_ADDR") && out.contains("--skip-openbao"),
            "{out}"
        );
        assert!(s.repo.path().join("tenants/shop").exists());
    }

    let mut offboard = vec!["offboard", "shop", "--output", "json"];
    offboard.extend(&bao_flags);
    let o = s.ok(&offboard);
    let report = json_of(&o);
    assert_eq!(report["openbao"]["role"], "deleted", "{report:#}");
    assert_eq!(report["openbao"]["policy"], "deleted");
    assert_eq!(report["openbao"]["tokensRevoked"], 1);
    assert_eq!(report["openbao"]["secrets"], 1);
    assert_eq!(report["openbao"]["secretsPurged"], false);
    assert_eq!(rt.block_on(root.lookup_accessor(&accessor)).unwrap(), None);
    assert!(rt.block_on(root.read_policy("app-shop")).unwrap().is_none());
    assert!(!s.repo.path().join("tenants/shop").exists());
}

const RBAC: &str = "rbac.authorization.k8s.io/v1";

#[test]
fn platform_roles_are_applied_before_any_tenant_converge_with_no_writes_and_prune_when_off() {
    let s = setup();
    // A platform role that cannot be applied stops onboarding before the tenant's first object.
    s.fake.fail_next_apply("ClusterRole");
    let o = s.run(&["onboard", "shop", "--no-gitops"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("platform tenant-rbac:"), "{out}");
    assert!(
        s.fake.object("v1", "Namespace", None, "shop").is_none(),
        "no tenant object before the platform roles: {out}"
    );

    let o = s.ok(&["onboard", "shop", "--output", "json"]);
    let report = json_of(&o);
    assert_eq!(
        report["platformGitops"][0]["changes"]
            .as_array()
            .unwrap()
            .len(),
        4,
        "{report:#}"
    );
    let role = s
        .fake
        .object(
            RBAC,
            "ClusterRole",
            None,
            "tenantry-tenant-edit-external-secrets",
        )
        .expect("applied");
    assert_eq!(
        role["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
        "true"
    );
    assert_eq!(
        role["metadata"]["labels"]["tenantry.dev/component"],
        "tenant-rbac"
    );
    assert!(
        s.fake
            .object(
                RBAC,
                "ClusterRole",
                None,
                "tenantry-tenant-edit-gateway-api"
            )
            .is_some()
    );
    assert!(
        s.fake
            .object(RBAC, "ClusterRole", None, "tenantry-tenant-edit-cilium")
            .is_none(),
        "the built-in platform does not use Cilium"
    );

    // Converged: another onboard and an apply write no platform role (nor anything else).
    s.fake.reset_requests();
    let o = s.ok(&["onboard", "shop", "--output", "json"]);
    let report = json_of(&o);
    assert_eq!(report["platformApply"][0]["writes"], 0, "{report:#}");
    assert_eq!(s.fake.requests().apply, 0);
    s.fake.reset_requests();
    let o = s.ok(&["apply", "--all", "--prune", "--output", "json"]);
    let report = json_of(&o);
    assert_eq!(report["platform"][0]["result"], "unchanged", "{report:#}");
    assert_eq!(report["writes"], 0);
    assert_eq!(s.fake.requests().writes(), 0);

    // Gateway API turned off: kept until an apply with --prune, then deleted.
    fs::write(
        s.repo.path().join("tenantry.yaml"),
        "tenantRbac:\n  gatewayApi: false\n",
    )
    .unwrap();
    s.ok(&["apply", "--all"]);
    assert!(
        s.fake
            .object(
                RBAC,
                "ClusterRole",
                None,
                "tenantry-tenant-edit-gateway-api"
            )
            .is_some()
    );
    let o = s.run(&["apply", "--all", "--prune"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("platform tenant-rbac: 0 to create, 0 to change, 2 unchanged, 1 to prune"),
        "{out}"
    );
    assert!(
        s.fake
            .object(
                RBAC,
                "ClusterRole",
                None,
                "tenantry-tenant-edit-gateway-api"
            )
            .is_none()
    );
    assert!(
        s.fake
            .object(
                RBAC,
                "ClusterRole",
                None,
                "tenantry-tenant-edit-external-secrets"
            )
            .is_some()
    );
}

#[test]
fn the_fanned_out_pull_secret_is_one_platform_object_applied_first_and_pruned_when_off() {
    let s = setup();
    fs::write(
        s.repo.path().join("tenantry.yaml"),
        "pullSecret:\n  fanOut: true\n",
    )
    .unwrap();
    let o = s.ok(&["onboard", "shop", "--output", "json"]);
    let report = json_of(&o);
    let components: Vec<&str> = report["platformApply"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["component"].as_str().unwrap())
        .collect();
    assert_eq!(components, ["tenant-rbac", "pull-secret"], "{report:#}");
    assert!(
        s.repo
            .path()
            .join("platform/pull-secret/clusterexternalsecret.ghcr-auth.yaml")
            .is_file()
    );
    let ces = s
        .fake
        .object(
            "external-secrets.io/v1",
            "ClusterExternalSecret",
            None,
            "ghcr-auth",
        )
        .expect("applied");
    assert_eq!(
        ces["metadata"]["labels"]["tenantry.dev/component"],
        "pull-secret"
    );
    // The tenant gets the opt-in label and the secret on its ServiceAccount, but no
    // ExternalSecret of its own.
    let ns = s.fake.object("v1", "Namespace", None, "shop").unwrap();
    assert_eq!(ns["metadata"]["labels"]["apps.platform/tenant"], "true");
    let sa = s
        .fake
        .object("v1", "ServiceAccount", Some("shop"), "shop")
        .unwrap();
    assert_eq!(sa["imagePullSecrets"][0]["name"], "ghcr-auth");
    assert!(
        s.fake
            .object(
                "external-secrets.io/v1",
                "ExternalSecret",
                Some("shop"),
                "ghcr-auth"
            )
            .is_none()
    );

    // Off: the next apply with --prune removes it; the tenant gets its own ExternalSecret.
    fs::write(s.repo.path().join("tenantry.yaml"), "").unwrap();
    let o = s.run(&["apply", "--all", "--prune"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("platform pull-secret: 0 to create, 0 to change, 0 unchanged, 1 to prune"),
        "{out}"
    );
    assert!(
        s.fake
            .object(
                "external-secrets.io/v1",
                "ClusterExternalSecret",
                None,
                "ghcr-auth"
            )
            .is_none()
    );
    assert!(
        s.fake
            .object(
                "external-secrets.io/v1",
                "ExternalSecret",
                Some("shop"),
                "ghcr-auth"
            )
            .is_some()
    );
}

#[test]
fn onboard_and_apply_provision_openbao_after_the_tenant_and_a_rerun_writes_nothing() {
    use tenantry_secrets::SecretsApi;
    let s = setup();
    let bao = Bao::start(&s);
    let (rt, root) = (&bao.runtime, &bao.root);
    let bao_flags = bao.flags();
    let bao_flags = bao_flags.iter().map(String::as_str).collect::<Vec<_>>();

    let mut onboard = vec!["onboard", "shop", "--openbao", "--output", "json"];
    onboard.extend(&bao_flags);
    let o = s.ok(&onboard);
    let report = json_of(&o);
    let openbao = &report["openbao"];
    assert!(
        openbao["requests"]["writes"].as_u64().unwrap() >= 2,
        "{openbao:#}"
    );
    // What the tenant's files say is what OpenBao now holds.
    let policy = fs::read_to_string(s.repo.path().join("tenants/shop/openbao-policy.hcl")).unwrap();
    assert_eq!(
        rt.block_on(root.read_policy("app-shop"))
            .unwrap()
            .as_deref(),
        Some(policy.as_str())
    );
    let role = rt
        .block_on(root.read_role("kubernetes", "shop"))
        .unwrap()
        .expect("role written");
    assert_eq!(role["bound_service_account_names"], json!(["shop"]));
    assert_eq!(role["bound_service_account_namespaces"], json!(["shop"]));
    // The ServiceAccount the role binds was applied before the role was written.
    assert!(
        s.fake
            .object("v1", "ServiceAccount", Some("shop"), "shop")
            .is_some()
    );

    let mut apply = vec!["apply", "shop", "--output", "json"];
    apply.extend(&bao_flags);
    let o = s.ok(&apply);
    let report = json_of(&o);
    assert_eq!(report["openbao"]["requests"]["writes"], 0, "{report:#}");
    assert_eq!(report["writes"], 0, "{report:#}");
}
