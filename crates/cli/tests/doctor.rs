//! `tenantry doctor` as a platform engineer runs it: the real binary, a real kubeconfig and
//! HTTP, against Tenantry's in-memory API server (`common/fake_server.rs`). A tenant is
//! onboarded, broken the ways people break tenants, and doctor must name each cause with its
//! fix, then report healthy once the printed fixes ran. `doctor_on_a_real_cluster` does the
//! same against a real API server (ignored: it needs one).

use std::{
    fs,
    path::PathBuf,
    process::{Command, Output},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};
use tenantry_cluster::ClusterApi;

mod common;
use common::{json_of, offline_run, text};
#[path = "common/fake_server.rs"]
mod fake_server;
use fake_server::setup;

/// A `kubernetes.io/dockerconfigjson` Secret `ghcr-auth` holding a credential for ghcr.io,
/// as External Secrets would make it in `namespace`.
fn pull_secret(namespace: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": { "name": "ghcr-auth", "namespace": namespace },
        // {"auths":{"ghcr.io":{"auth":"dTpw"}}}
        "data": { ".dockerconfigjson": "eyJhdXRocyI6eyJnaGNyLmlvIjp7ImF1dGgiOiJkVHB3In19fQ==" },
    })
}

/// The checks of a JSON report, by ID, in report order.
fn checks(report: &Value) -> Vec<(&str, &Value)> {
    report["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks in {report:#}"))
        .iter()
        .map(|c| (c["id"].as_str().unwrap_or_default(), c))
        .collect()
}

#[track_caller]
fn check<'r>(report: &'r Value, id: &str) -> &'r Value {
    checks(report)
        .into_iter()
        .find(|(i, _)| *i == id)
        .map(|(_, c)| c)
        .unwrap_or_else(|| panic!("no check {id} in {report:#}"))
}

/// Every failed finding, as `(check, object, fix)`.
fn failures(report: &Value) -> Vec<(String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    checks(report)
        .into_iter()
        .flat_map(|(id, c)| {
            c["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|f| f["verdict"] == "fail")
                .map(move |f| (id.to_owned(), s(&f["object"]), s(&f["fix"])))
        })
        .collect()
}

#[track_caller]
fn doctor_json(o: &Output, code: i32) -> Value {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
    let report = json_of(o);
    assert_eq!(report["command"], "doctor");
    report
}

#[test]
fn doctor_names_each_break_with_its_fix_and_is_healthy_after_the_fixes() {
    let s = setup();
    let o = s.run(&["onboard", "shop", "--output", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    s.fake.insert(pull_secret("shop"));

    let report = doctor_json(&s.run(&["doctor", "shop", "--output", "json"]), 0);
    assert_eq!(report["result"], "ok", "{report:#}");
    assert_eq!(report["summary"]["fail"], 0, "{report:#}");
    let ids: Vec<&str> = checks(&report).into_iter().map(|(i, _)| i).collect();
    assert_eq!(ids, tenantry_doctor::CHECK_IDS);
    for id in [
        "rendered-tree",
        "objects",
        "namespace-labels",
        "pull-secret-registries",
    ] {
        assert_eq!(check(&report, id)["verdict"], "ok", "{id}: {report:#}");
    }
    // The fake serves no Events: said, not guessed.
    let refusals = check(&report, "admission-refusals");
    assert_eq!(refusals["verdict"], "skipped");
    assert_eq!(refusals["reason"], "the cluster does not serve Event");

    // Break it: the default-deny policy deleted, the pull-secret opt-in label removed,
    // Tenantry's ServiceAccount stripped of imagePullSecrets, a rendered file deleted.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let catalog = s.fake.catalog();
    let policies = catalog
        .find("networking.k8s.io/v1", "NetworkPolicy")
        .unwrap();
    runtime
        .block_on(
            s.fake
                .delete(policies, Some("shop"), "tenantry-default-deny", None, false),
        )
        .unwrap();
    s.fake.edit("v1", "Namespace", None, "shop", |ns| {
        ns["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("apps.platform/tenant");
    });
    s.fake
        .edit("v1", "ServiceAccount", Some("shop"), "shop", |sa| {
            sa.as_object_mut().unwrap().remove("imagePullSecrets");
        });
    fs::remove_file(
        s.repo
            .path()
            .join("tenants/shop/limitrange.shop.tenantry-limits.yaml"),
    )
    .unwrap();

    let o = s.run(&["doctor", "shop"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    for expected in [
        "FAIL  rendered-tree",
        "limitrange.shop.tenantry-limits.yaml: missing: the committed file differs",
        "fix: tenantry render --write shop, then commit the change",
        "FAIL  objects",
        "✗ NetworkPolicy shop/tenantry-default-deny: missing from the cluster",
        "FAIL  namespace-labels",
        "✗ Namespace shop: label apps.platform/tenant is missing, declared true: the pull-secret opt-in",
        "fix: tenantry apply shop (sets metadata.labels.apps.platform/tenant again)",
        "FAIL  service-account-pull-secret",
        "✗ ServiceAccount shop/shop: Tenantry's ServiceAccount does not list ghcr-auth in imagePullSecrets",
        "fix: tenantry apply shop (sets imagePullSecrets again)",
        "problems found: 4 failed",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    let report = doctor_json(&s.run(&["doctor", "shop", "--output", "json"]), 1);
    assert_eq!(report["result"], "findings");
    let failed = failures(&report);
    for (id, object) in [
        ("objects", "NetworkPolicy shop/tenantry-default-deny"),
        ("objects", "Namespace shop"),
        ("objects", "ServiceAccount shop/shop"),
    ] {
        assert!(
            failed.contains(&(
                id.to_owned(),
                object.to_owned(),
                "tenantry apply shop".to_owned()
            )),
            "{id} {object}: {failed:#?}"
        );
    }
    // Cause before symptom: the repository first, the cluster objects next.
    assert_eq!(failed[0].0, "rendered-tree", "{failed:#?}");

    // `--offline` sees only the repository.
    let offline = doctor_json(
        &s.run(&["doctor", "shop", "--offline", "--output", "json"]),
        1,
    );
    assert_eq!(check(&offline, "rendered-tree")["verdict"], "fail");
    assert_eq!(check(&offline, "objects")["verdict"], "skipped");
    assert!(offline.get("cluster").is_none(), "{offline:#}");

    // Run the printed fixes; doctor is healthy again, and it never wrote anything itself.
    let o = Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(["render", "--write", "shop", "--repo"])
        .arg(s.repo.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = s.run(&["apply", "shop"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    s.fake.reset_requests();
    let report = doctor_json(&s.run(&["doctor", "shop", "--output", "json"]), 0);
    assert_eq!(report["summary"]["fail"], 0, "{report:#}");
    assert_eq!(s.fake.requests().writes(), 0);
}

#[test]
fn doctor_finds_an_unschedulable_pod_and_a_workload_without_the_pull_secret() {
    let s = setup();
    let o = s.run(&["onboard", "shop", "--output", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    s.fake.insert(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "api-0", "namespace": "shop" },
        "spec": { "containers": [{ "name": "api", "image": "ghcr.io/acme/api:1" }] },
        "status": { "phase": "Pending", "conditions": [{ "type": "PodScheduled", "status": "False",
                     "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient memory." }] },
    }));
    let report = doctor_json(&s.run(&["doctor", "shop", "--output", "json"]), 1);
    let pending = check(&report, "pods-pending");
    assert_eq!(pending["verdict"], "fail", "{report:#}");
    assert_eq!(
        pending["findings"][0]["message"],
        "not schedulable: 0/3 nodes are available: 3 Insufficient memory."
    );
    // The pod runs as `default`, which lists no pull secret, and without the secret (no
    // External Secrets here) its registries are unknown: a warning, with the fix.
    let accounts = check(&report, "service-account-pull-secret");
    assert_eq!(accounts["verdict"], "warn", "{report:#}");
    assert_eq!(accounts["findings"][0]["object"], "Pod shop/api-0");
    let registries = check(&report, "pull-secret-registries");
    assert_eq!(registries["verdict"], "fail");
    assert_eq!(registries["findings"][0]["object"], "Secret shop/ghcr-auth");
}

#[test]
fn doctor_cannot_run_without_the_tenant_or_the_cluster() {
    let s = setup();
    let report = doctor_json(&s.run(&["doctor", "nope", "--output", "json"]), 2);
    assert_eq!(report["result"], "error");
    assert!(
        report["error"]
            .as_str()
            .unwrap_or_default()
            .contains("nope"),
        "{report:#}"
    );
    let o = s.run(&["onboard", "shop", "--gitops-only"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    fs::write(
        &s.kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster:\n    server: http://127.0.0.1:9\ncontexts:\n- name: gone\n  context:\n    cluster: gone\n    user: u\ncurrent-context: gone\nusers:\n- name: u\n  user:\n    token: t\n",
    )
    .unwrap();
    let o = s.run(&["doctor", "shop"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // Offline needs no cluster.
    let report = doctor_json(
        &s.run(&["doctor", "shop", "--offline", "--output", "json"]),
        0,
    );
    assert_eq!(check(&report, "rendered-tree")["verdict"], "ok");
}

/// `tenantry ARGS --repo REPO`, with no cluster anywhere.
#[test]
fn doctor_offline_judges_labels_pull_secret_and_network_from_the_committed_tree() {
    let repo = tempfile::tempdir().unwrap();
    fs::write(repo.path().join("tenantry.yaml"), "").unwrap();
    let o = offline_run(
        repo.path(),
        &[
            "onboard",
            "shop",
            "--gitops-only",
            "--deny-egress",
            "--openbao",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let doctor = ["doctor", "shop", "--offline", "--output", "json"];

    let report = doctor_json(&offline_run(repo.path(), &doctor), 0);
    for id in [
        "rendered-tree",
        "namespace-labels",
        "service-account-pull-secret",
        "network-reachability",
    ] {
        assert_eq!(check(&report, id)["verdict"], "ok", "{id}: {report:#}");
    }
    let network = check(&report, "network-reachability");
    assert!(
        network["objects"]
            .as_array()
            .unwrap()
            .contains(&json!("NetworkPolicy shop/tenantry-allow-egress")),
        "{network:#}"
    );
    // Tenant pods need not reach OpenBao (External Secrets does): said, not failed.
    assert!(
        network["notes"][0]
            .as_str()
            .unwrap_or_default()
            .starts_with("pods in shop cannot reach OpenBao (namespace openbao, 8200/TCP"),
        "{network:#}"
    );
    assert_eq!(check(&report, "objects")["verdict"], "skipped");

    // Break the tree as a hand edit would: the DNS rule selects no DNS pod, and Tenantry's
    // ServiceAccount loses its imagePullSecrets.
    let dir = repo.path().join("tenants/shop");
    let edit = |file: &str, from: &str, to: &str| {
        let path = dir.join(file);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file}: {text}");
        fs::write(&path, text.replace(from, to)).unwrap();
    };
    edit(
        "networkpolicy.shop.tenantry-allow-egress.yaml",
        "k8s-app: kube-dns",
        "k8s-app: not-dns",
    );
    edit(
        "serviceaccount.shop.shop.yaml",
        "imagePullSecrets:\n- name: ghcr-auth\n",
        "",
    );
    let report = doctor_json(&offline_run(repo.path(), &doctor), 1);
    let failed = failures(&report);
    for (id, object, fix) in [
        (
            "network-reachability",
            "NetworkPolicy shop/tenantry-allow-egress",
            "tenantry render --write shop (sets the DNS rule in spec.egress of NetworkPolicy shop/tenantry-allow-egress again), then commit the change",
        ),
        (
            "service-account-pull-secret",
            "ServiceAccount shop/shop",
            "tenantry render --write shop (sets imagePullSecrets again), then commit the change",
        ),
    ] {
        assert!(
            failed.contains(&(id.to_owned(), object.to_owned(), fix.to_owned())),
            "{id}: {failed:#?}"
        );
    }
    assert_eq!(failed[0].0, "rendered-tree", "{failed:#?}");

    // The printed fix repairs it.
    let o = offline_run(repo.path(), &["render", "--write", "shop"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report = doctor_json(&offline_run(repo.path(), &doctor), 0);
    assert_eq!(report["summary"]["fail"], 0, "{report:#}");
}

// ---------------------------------------------------------------------------------------
// On a real API server.

/// `tenantry ARGS --repo REPO --kubeconfig KUBECONFIG`.
fn tenantry(repo: &std::path::Path, kubeconfig: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(args)
        .arg("--repo")
        .arg(repo)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env_remove("TENANTRY_REPO")
        .env_remove("KUBECONFIG")
        .env_remove("BAO_ADDR")
        .env_remove("VAULT_ADDR")
        .output()
        .expect("tenantry runs")
}

/// The real API server's cluster-admin kubeconfig, from `TENANTRY_E2E_KUBECONFIG`.
fn e2e_kubeconfig() -> PathBuf {
    match std::env::var_os("TENANTRY_E2E_KUBECONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!("set TENANTRY_E2E_KUBECONFIG to a cluster-admin kubeconfig"),
    }
}

/// A suffix from the clock, so a run's tenant names are new on a cluster kept between runs.
fn run_suffix() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (nanos as u64) & 0xffff_ffff
}

/// The test's tenant on the real cluster, offboarded on the way out whatever happened.
struct RealTenant {
    repo: tempfile::TempDir,
    kubeconfig: PathBuf,
    name: String,
}

impl RealTenant {
    /// A fresh tenant `name` in an empty platform repository, onboarded on the real cluster
    /// (CRDs the server lacks skipped).
    fn onboarded(kubeconfig: PathBuf, name: String) -> Self {
        let t = Self {
            repo: tempfile::tempdir().unwrap(),
            kubeconfig,
            name,
        };
        fs::write(t.repo.path().join("tenantry.yaml"), "").unwrap();
        let o = t.run(&[
            "onboard",
            &t.name,
            "--skip-missing-crds",
            "--output",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        t
    }

    /// A runtime and the cluster-admin connection the test breaks and fixes the tenant with.
    fn admin(&self) -> (tokio::runtime::Runtime, tenantry_cluster::KubeCluster) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tenantry_admission::tls::install_crypto_provider();
        let api = runtime
            .block_on(tenantry_cluster::connect(
                &tenantry_cluster::KubeconfigSource {
                    path: Some(self.kubeconfig.clone()),
                    context: None,
                },
            ))
            .expect("admin connects")
            .0;
        (runtime, api)
    }

    fn run(&self, args: &[&str]) -> Output {
        tenantry(self.repo.path(), &self.kubeconfig, args)
    }

    fn doctor(&self) -> Value {
        let o = self.run(&["doctor", &self.name, "--output", "json"]);
        let report = json_of(&o);
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "doctor could not run: {}",
            text(&o)
        );
        report
    }
}

impl Drop for RealTenant {
    fn drop(&mut self) {
        let _ = self.run(&[
            "offboard",
            &self.name,
            "--ignore-not-found",
            "--timeout",
            "3m",
        ]);
    }
}

/// Poll doctor until `done` holds (the controllers act asynchronously), or time out.
fn doctor_until(t: &RealTenant, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let report = t.doctor();
        if done(&report) {
            return report;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "timed out waiting for {what}: {report:#}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn finding_with<'r>(report: &'r Value, id: &str, object_prefix: &str) -> Option<&'r Value> {
    check(report, id)["findings"].as_array()?.iter().find(|f| {
        f["object"]
            .as_str()
            .is_some_and(|o| o.starts_with(object_prefix))
    })
}

/// Run with the real API server's admin kubeconfig:
///
/// ```sh
/// TENANTRY_E2E_KUBECONFIG=/root/.cache/tenantry-kube/admin.kubeconfig \
///   cargo test -p tenantry-cli --test doctor -- --ignored --nocapture
/// ```
///
/// Breaks a fresh tenant three ways (its default-deny NetworkPolicy deleted, its namespace's
/// pull-secret opt-in label removed, a Deployment whose pods Pod Security refuses), checks
/// doctor names each with its fix, runs the fixes and checks doctor is healthy. The server
/// has a controller-manager (so a ReplicaSet's FailedCreate event exists) but no kubelet, no
/// External Secrets and no Flux: the layers whose CRDs are missing are warnings, and the
/// pull secret is created by the test as External Secrets would.
#[test]
#[ignore = "needs a real API server: set TENANTRY_E2E_KUBECONFIG"]
fn doctor_on_a_real_cluster() {
    let kubeconfig = e2e_kubeconfig();
    let run = run_suffix();
    let t = RealTenant::onboarded(kubeconfig, format!("doctor-e2e-{run:x}"));
    let ns = t.name.clone();

    let (runtime, api) = t.admin();
    let catalog = runtime.block_on(api.discover()).unwrap();
    let secrets = catalog.find("v1", "Secret").unwrap();
    runtime
        .block_on(api.create(secrets, Some(&ns), &pull_secret(&ns)))
        .unwrap();

    let healthy = doctor_until(&t, "the quota controller", |r| {
        r["summary"]["fail"] == 0 && check(r, "quota-headroom")["verdict"] == "ok"
    });
    eprintln!("healthy after onboarding:\n{healthy:#}");

    // Break it three ways.
    let policies = catalog
        .find("networking.k8s.io/v1", "NetworkPolicy")
        .unwrap();
    runtime
        .block_on(api.delete(policies, Some(&ns), "tenantry-default-deny", None, false))
        .unwrap();
    let namespaces = catalog.find("v1", "Namespace").unwrap();
    runtime
        .block_on(api.merge_patch(
            namespaces,
            None,
            &ns,
            &json!({ "metadata": { "labels": { "apps.platform/tenant": null } } }),
        ))
        .unwrap();
    let deployments = catalog.find("apps/v1", "Deployment").unwrap();
    runtime
        .block_on(api.create(
            deployments,
            Some(&ns),
            &json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": "web", "namespace": ns },
                "spec": {
                    "selector": { "matchLabels": { "app": "web" } },
                    "template": {
                        "metadata": { "labels": { "app": "web" } },
                        "spec": {
                            "serviceAccountName": t.name,
                            "containers": [{ "name": "web", "image": "ghcr.io/acme/web:1",
                                             "securityContext": { "privileged": true } }],
                        },
                    },
                },
            }),
        ))
        .unwrap();

    let broken = doctor_until(&t, "the ReplicaSet's FailedCreate event", |r| {
        check(r, "admission-refusals")["verdict"] == "fail"
    });
    eprintln!("broken:\n{broken:#}");
    assert_eq!(broken["result"], "findings");
    let deny = finding_with(&broken, "objects", "NetworkPolicy")
        .unwrap_or_else(|| panic!("NetworkPolicy not named: {broken:#}"));
    assert_eq!(
        deny["object"],
        format!("NetworkPolicy {ns}/tenantry-default-deny")
    );
    assert_eq!(deny["fix"], format!("tenantry apply {}", t.name));
    let label = finding_with(&broken, "namespace-labels", "Namespace")
        .unwrap_or_else(|| panic!("label not named: {broken:#}"));
    assert!(
        label["message"].as_str().unwrap().starts_with(
            "label apps.platform/tenant is missing, declared true: the pull-secret opt-in"
        ),
        "{label:#}"
    );
    assert_eq!(
        label["fix"],
        format!(
            "tenantry apply {} (sets metadata.labels.apps.platform/tenant again)",
            t.name
        )
    );
    let refused = finding_with(
        &broken,
        "admission-refusals",
        &format!("Deployment {ns}/web"),
    )
    .unwrap_or_else(|| panic!("refusal not named: {broken:#}"));
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.starts_with("refused by [pod-security] at level restricted: privileged"),
        "{refused:#}"
    );
    assert!(
        refused["fix"]
            .as_str()
            .unwrap()
            .starts_with(&format!("change the pod template of Deployment {ns}/web")),
        "{refused:#}"
    );

    // The fixes: `tenantry apply` for the tenant's objects; the workload changed as told
    // (here: removed, as a person would fix or drop it).
    let o = t.run(&["apply", &t.name, "--skip-missing-crds"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    runtime
        .block_on(api.delete(deployments, Some(&ns), "web", None, false))
        .unwrap();
    let repaired = doctor_until(&t, "healthy after the fixes", |r| r["summary"]["fail"] == 0);
    eprintln!("repaired:\n{repaired:#}");
    assert_eq!(repaired["result"], "ok");
    // What cannot be healthy here: the layers whose CRDs the server lacks are warnings.
    for (id, c) in checks(&repaired) {
        assert_ne!(c["verdict"], "fail", "{id}: {c:#}");
    }
}

/// An ExternalSecret in `shop` reading `key` through the tenant's SecretStore, Ready as
/// External Secrets would leave it while the secret was there.
fn external_secret(name: &str, key: &str) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": { "name": name, "namespace": "shop" },
        "spec": {
            "secretStoreRef": { "kind": "SecretStore", "name": "openbao" },
            "target": { "name": name },
            "data": [{ "secretKey": "password", "remoteRef": { "key": key, "property": "password" } }],
        },
        "status": { "conditions": [{ "type": "Ready", "status": "True" }] },
    })
}

/// A runtime, `bao server -dev` ready for the platform, its root client and the root token
/// written to a file in the repository (what `--bao-token-file` reads).
fn openbao(
    s: &fake_server::Setup,
) -> (
    tokio::runtime::Runtime,
    tenantry_secrets::testing::DevServer,
    tenantry_secrets::BaoClient,
    PathBuf,
) {
    use tenantry_secrets::testing::{DevServer, ROOT_TOKEN};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bao = runtime.block_on(DevServer::start());
    let root = runtime.block_on(bao.platform_ready());
    let token_file = s.repo.path().join("bao-token");
    fs::write(&token_file, ROOT_TOKEN).unwrap();
    (runtime, bao, root, token_file)
}

#[test]
fn doctor_checks_each_key_an_external_secret_reads_against_a_real_openbao() {
    use tenantry_secrets::client::Verb;
    let s = setup();
    let (runtime, bao, root, token_file) = openbao(&s);
    let doctor = |code: i32| {
        let o = s.run(&[
            "doctor",
            "shop",
            "--output",
            "json",
            "--bao-addr",
            &bao.address,
            "--bao-token-file",
            token_file.to_str().unwrap(),
        ]);
        doctor_json(&o, code)
    };
    let put = |path: &str| {
        let body = json!({ "data": { "password": "s3cret" } });
        runtime
            .block_on(root.request(Verb::Write, &format!("secret/data/{path}"), Some(&body)))
            .unwrap();
    };

    // Onboarding provisions the tenant's policy and role.
    let o = s.run(&[
        "onboard",
        "shop",
        "--openbao",
        "--bao-addr",
        &bao.address,
        "--bao-token-file",
        token_file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    s.fake.insert(pull_secret("shop"));
    put("apps/shop/db");
    s.fake.insert(external_secret("db", "apps/shop/db"));

    // The key exists and the policy reads it: ok, having looked at both.
    let report = doctor(0);
    let paths = check(&report, "openbao-paths");
    assert_eq!(paths["verdict"], "ok", "{report:#}");
    assert_eq!(
        paths["objects"],
        json!([
            "ExternalSecret shop/db",
            "OpenBao secret secret/apps/shop/db"
        ])
    );
    assert_eq!(check(&report, "openbao")["verdict"], "ok", "{report:#}");

    // A key nothing is stored at, and one outside the tenant's path.
    s.fake.insert(external_secret("api", "apps/shop/api"));
    s.fake.insert(external_secret("stolen", "apps/blog/db"));
    put("apps/blog/db");
    let report = doctor(1);
    let failed: Vec<_> = failures(&report)
        .into_iter()
        .filter(|(id, _, _)| id == "openbao-paths")
        .collect();
    assert_eq!(
        failed,
        [
            (
                "openbao-paths".to_owned(),
                "ExternalSecret shop/api".to_owned(),
                "write it: `bao kv put -mount=secret apps/shop/api <field>=<value>`, or, for a generated password, `tenantry secrets scaffold shop api` (pushes one there from the cluster)".to_owned()
            ),
            (
                "openbao-paths".to_owned(),
                "ExternalSecret shop/stolen".to_owned(),
                "store the secret under apps/shop/ (`bao kv put -mount=secret apps/shop/<name> <field>=<value>`) and set spec.data[0].remoteRef.key to apps/shop/<name>".to_owned()
            ),
        ],
        "{report:#}"
    );
    let messages: Vec<&str> = check(&report, "openbao-paths")["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "key apps/shop/api (spec.data[0].remoteRef.key): nothing is stored at secret/apps/shop/api, so the ExternalSecret cannot sync (an empty OpenBao path)",
            "key apps/blog/db (spec.data[0].remoteRef.key) is outside the tenant's OpenBao path apps/shop/: policy app-shop denies reading secret/data/apps/blog/db, so External Secrets reports permission denied",
        ]
    );
    // The verdict on the path is OpenBao's own: a token of the tenant's policy is refused
    // outside it and may read inside it.
    let (token, _) = runtime.block_on(bao.token_with("app-shop"));
    let tenant = bao.client(&token);
    assert!(
        runtime
            .block_on(tenant.request(Verb::Read, "secret/data/apps/blog/db", None))
            .is_err()
    );
    assert!(
        runtime
            .block_on(tenant.request(Verb::Read, "secret/data/apps/shop/db", None))
            .unwrap()
            .is_some()
    );

    // The printed fixes: the key written, the ExternalSecret pointed inside the path.
    put("apps/shop/api");
    s.fake.edit(
        "external-secrets.io/v1",
        "ExternalSecret",
        Some("shop"),
        "stolen",
        |es| {
            es["spec"]["data"][0]["remoteRef"]["key"] = json!("apps/shop/db");
        },
    );
    let report = doctor(0);
    assert_eq!(
        check(&report, "openbao-paths")["verdict"],
        "ok",
        "{report:#}"
    );
}

/// A `dataFrom[].find` and a pinned `remoteRef.version`, judged against a real
/// `bao server -dev`: the folder listed recursively with the platform's token, the versions
/// read from the KV metadata, each fix run and then judged fine. The tenant policy's own
/// answers (a token carrying it) agree on what it may list.
#[test]
fn doctor_checks_finds_and_pinned_versions_against_a_real_openbao() {
    use tenantry_secrets::client::Verb;
    let s = setup();
    let (runtime, bao, root, token_file) = openbao(&s);
    let bao_flags = [
        "--bao-addr",
        &bao.address,
        "--bao-token-file",
        token_file.to_str().unwrap(),
    ];
    let doctor = |code: i32| {
        let mut args = vec!["doctor", "shop", "--output", "json"];
        args.extend(bao_flags);
        doctor_json(&s.run(&args), code)
    };
    let write = |path: &str, body: Value| {
        runtime
            .block_on(root.request(Verb::Write, path, Some(&body)))
            .unwrap();
    };
    let put = |path: &str| {
        write(
            &format!("secret/data/{path}"),
            json!({ "data": { "password": "s3cret" } }),
        )
    };
    let mut onboard = vec!["onboard", "shop", "--openbao"];
    onboard.extend(bao_flags);
    let o = s.run(&onboard);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    s.fake.insert(pull_secret("shop"));

    // Version 2 of three is deleted; an ExternalSecret pins it.
    for _ in 0..3 {
        put("apps/shop/db");
    }
    write("secret/delete/apps/shop/db", json!({ "versions": [2] }));
    let mut pinned = external_secret("pinned", "apps/shop/db");
    pinned["spec"]["data"][0]["remoteRef"]["version"] = json!("2");
    s.fake.insert(pinned);
    // A find for tokens under the tenant's team folder, where nothing is stored yet.
    put("apps/shop/db-backup");
    let mut found = external_secret("tokens", "unused");
    found["spec"]["data"] = json!([]);
    found["spec"]["dataFrom"] = json!([{ "find": { "path": "apps/shop", "name": { "regexp": "^apps/shop/team/.*-token$" } } }]);
    s.fake.insert(found);

    let report = doctor(1);
    let failed: Vec<(String, String)> = check(&report, "openbao-paths")["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["message"].as_str().unwrap().to_owned(),
                f["fix"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        failed,
        [
            (
                "key apps/shop/db (spec.data[0].remoteRef.key): spec.data[0].remoteRef.version pins version 2 of secret/apps/shop/db, which is deleted, so a read finds nothing".to_owned(),
                "restore it (`bao kv undelete -mount=secret -versions=2 apps/shop/db`) or set spec.data[0].remoteRef.version to a live version".to_owned(),
            ),
            (
                "spec.dataFrom[0].find: no key under secret/apps/shop/ matches name.regexp \"^apps/shop/team/.*-token$\" and is readable with policy app-shop (it holds apps/shop/db, apps/shop/db-backup), so the ExternalSecret finds nothing to sync".to_owned(),
                "store one there (`bao kv put -mount=secret apps/shop/<name> <field>=<value>`, <name> matching the pattern), or change spec.dataFrom[0].find.name.regexp to match a key there".to_owned(),
            ),
        ],
        "{report:#}"
    );
    // What the check judged from the rendered policy is OpenBao's answer for a token of it:
    // it may list the tenant's folder, and not another tenant's.
    let (token, _) = runtime.block_on(bao.token_with("app-shop"));
    let tenant = bao.client(&token);
    assert!(
        runtime
            .block_on(tenant.request(Verb::List, "secret/metadata/apps/shop/", None))
            .unwrap()
            .is_some()
    );
    assert!(
        runtime
            .block_on(tenant.request(Verb::List, "secret/metadata/apps/blog/", None))
            .is_err()
    );

    // The fixes: the version restored, a token stored one folder down (listed recursively).
    write("secret/undelete/apps/shop/db", json!({ "versions": [2] }));
    put("apps/shop/team/ci-token");
    let report = doctor(0);
    let paths = check(&report, "openbao-paths");
    assert_eq!(paths["verdict"], "ok", "{report:#}");
    assert!(
        paths["objects"]
            .as_array()
            .unwrap()
            .contains(&json!("OpenBao folder secret/apps/shop/")),
        "{paths:#}"
    );
}

/// A NetworkPolicy the tenant wrote itself (Tenantry's label absent) is judged online: one
/// that opens egress to another tenant's namespaces is a warning naming it, and, since it
/// isolates the tenant's egress, the DNS denial names it too.
#[test]
#[ignore = "needs a real API server: set TENANTRY_E2E_KUBECONFIG"]
fn doctor_names_a_tenant_policy_opening_egress_to_another_tenant_on_a_real_cluster() {
    let kubeconfig = e2e_kubeconfig();
    let run = run_suffix();
    let tenant =
        |suffix: &str| RealTenant::onboarded(kubeconfig.clone(), format!("d12-np{suffix}-{run:x}"));
    let other = tenant("b");
    let t = tenant("a");
    let ns = t.name.clone();

    let (runtime, api) = t.admin();
    let catalog = runtime.block_on(api.discover()).unwrap();
    let before = t.doctor();
    assert_eq!(
        check(&before, "network-reachability")["verdict"],
        "ok",
        "{before:#}"
    );

    let policies = catalog
        .find("networking.k8s.io/v1", "NetworkPolicy")
        .unwrap();
    runtime
        .block_on(api.create(
            policies,
            Some(&ns),
            &json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": { "name": "talk-to-b", "namespace": ns },
                "spec": {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [{ "to": [{ "namespaceSelector": {
                        "matchLabels": { "tenantry.dev/tenant": other.name } } }] }],
                },
            }),
        ))
        .unwrap();
    let after = t.doctor();
    let c = check(&after, "network-reachability");
    assert_eq!(c["verdict"], "fail", "{c:#}");
    assert!(
        c["objects"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("NetworkPolicy {ns}/talk-to-b"))),
        "{c:#}"
    );
    let opened = finding_with(
        &after,
        "network-reachability",
        &format!("NetworkPolicy {ns}/talk-to-b"),
    )
    .unwrap_or_else(|| panic!("the tenant's policy is not named: {c:#}"));
    assert_eq!(
        opened["message"],
        format!(
            "NetworkPolicy {ns}/talk-to-b lets pods in {ns} send to other tenants' namespaces {}: only those tenants' own ingress policies keep them apart",
            other.name
        ),
        "{c:#}"
    );
    assert_eq!(
        opened["fix"],
        format!(
            "remove or narrow the egress rule of NetworkPolicy {ns}/talk-to-b that selects other tenants' namespaces (`kubectl -n {ns} edit networkpolicy talk-to-b`)"
        )
    );
    let dns = c["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["message"].as_str().unwrap().starts_with("egress to DNS"))
        .unwrap_or_else(|| panic!("DNS not judged denied: {c:#}"));
    assert!(
        dns["message"]
            .as_str()
            .unwrap()
            .contains(&format!("is denied by NetworkPolicy {ns}/talk-to-b")),
        "{dns:#}"
    );

    runtime
        .block_on(api.delete(policies, Some(&ns), "talk-to-b", None, false))
        .unwrap();
    let repaired = t.doctor();
    assert_eq!(
        check(&repaired, "network-reachability")["verdict"],
        "ok",
        "{repaired:#}"
    );
}
