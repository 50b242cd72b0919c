//! End to end on a real cluster: the seed's promise, checked with the cluster's own answers.
//!
//! Run with a cluster-admin kubeconfig of a disposable cluster:
//!
//! ```sh
//! TENANTRY_E2E_KUBECONFIG=$HOME/.kube/e2e.yaml cargo test -p tenantry-cli --test cluster_e2e -- --ignored --test-threads 1
//! ```
//!
//! Each run uses a fresh tenant name and offboards it on the way out, even when a step
//! fails. Layers whose CRDs the cluster does not serve (Flux, External Secrets) are skipped
//! with `--skip-missing-crds`, and the test checks that exactly those were skipped; install
//! `testdata/crds/` first to exercise every layer.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{SystemTime, UNIX_EPOCH},
};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::{
    Api, Client, Config,
    api::{DynamicObject, ListParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    core::GroupVersionKind,
    discovery,
};
use serde_json::{Value, json};

mod common;
use common::{json_of, text};

const LABEL: &str = "tenantry.dev/tenant";

fn admin_kubeconfig() -> PathBuf {
    match std::env::var_os("TENANTRY_E2E_KUBECONFIG") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "set TENANTRY_E2E_KUBECONFIG to the path of a cluster-admin kubeconfig for a disposable cluster \
             to run the end-to-end tests (they create and delete tenants)"
        ),
    }
}

/// The server-side-apply entry of Tenantry's field manager: its field set and the time it
/// was last written.
fn written_by_tenantry(live: &Value) -> Value {
    live["metadata"]["managedFields"]
        .as_array()
        .and_then(|entries| entries.iter().find(|e| e["manager"] == "tenantry"))
        .cloned()
        .unwrap_or_else(|| panic!("no `tenantry` field manager on {live}"))
}

/// `tenantry ARGS`, with nothing added.
fn bare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(args)
        .env_remove("TENANTRY_REPO")
        .output()
        .expect("tenantry runs")
}

fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{:x}",
        (nanos as u64) ^ u64::from(std::process::id())
    )
}

struct E2e {
    repo: tempfile::TempDir,
    kubeconfig: PathBuf,
    tenant: String,
}

impl E2e {
    fn new(prefix: &str) -> Self {
        Self {
            repo: tempfile::tempdir().unwrap(),
            kubeconfig: admin_kubeconfig(),
            tenant: unique_name(prefix),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let repo = self.repo.path().to_string_lossy().into_owned();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--repo", &repo]);
        bare(&all)
    }

    fn cluster(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        let kubeconfig = self.kubeconfig.to_string_lossy().into_owned();
        all.extend(["--kubeconfig", &kubeconfig]);
        self.run(&all)
    }
}

impl E2e {
    /// Onboard the test's tenant in cluster mode (with `extra` flags), assert it went well,
    /// and return the path of the kubeconfig it issued.
    fn onboard_ok(&self, extra: &[&str]) -> PathBuf {
        let mut args = vec!["onboard", self.tenant.as_str()];
        args.extend(extra);
        args.extend(["--skip-missing-crds", "--output", "json"]);
        let report = json_ok(&self.cluster(&args));
        assert_eq!(report["result"], "ok", "{report:#}");
        self.repo
            .path()
            .join(format!("out/tenant-{}.kubeconfig", self.tenant))
    }
}

impl Drop for E2e {
    /// Whatever happened, remove the tenant from the cluster.
    fn drop(&mut self) {
        let _ = self.cluster(&[
            "offboard",
            &self.tenant,
            "--ignore-not-found",
            "--timeout",
            "3m",
        ]);
    }
}

#[track_caller]
fn json_ok(o: &Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "{}", text(o));
    json_of(o)
}

async fn client_from(path: &Path) -> Client {
    tenantry_admission::tls::install_crypto_provider();
    let kubeconfig = Kubeconfig::read_from(path).expect("kubeconfig readable");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig usable");
    Client::try_from(config).expect("client")
}

/// A runtime and a cluster-admin client for the test's own inspections.
fn admin_client(e: &E2e) -> (tokio::runtime::Runtime, Client) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admin = runtime.block_on(client_from(&e.kubeconfig));
    (runtime, admin)
}

/// The HTTP status of a failed LIST, `None` when it succeeded.
async fn list_status<K>(api: &Api<K>) -> Option<u16>
where
    K: kube::Resource + Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .err()
        .as_ref()
        .and_then(status_code)
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// Every rendered object of the tenant, as `tenantry render` prints it.
fn rendered(e: &E2e) -> Vec<Value> {
    let o = e.run(&["render", &e.tenant]);
    assert!(o.status.success(), "{}", text(&o));
    let yaml = String::from_utf8_lossy(&o.stdout).into_owned();
    yaml.split("\n---\n")
        .map(|d| d.trim_start_matches("---\n"))
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str::<Value>(d).expect("rendered YAML parses"))
        .collect()
}

async fn live_object(admin: &Client, object: &Value) -> Option<Value> {
    let api_version = object["apiVersion"].as_str()?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, object["kind"].as_str()?);
    let (resource, _) = discovery::pinned_kind(admin, &gvk).await.ok()?;
    let name = object["metadata"]["name"].as_str()?;
    let api: Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(admin.clone(), ns, &resource),
        None => Api::all_with(admin.clone(), &resource),
    };
    let live = api.get_opt(name).await.expect("admin can read")?;
    serde_json::to_value(live).ok()
}

fn privileged_pod() -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "privileged" },
        "spec": { "containers": [{ "name": "x", "image": "registry.k8s.io/pause:3.10",
            "securityContext": { "privileged": true },
            "resources": { "requests": { "cpu": "10m", "memory": "16Mi" }, "limits": { "cpu": "10m", "memory": "16Mi" } } }] }
    }))
    .unwrap()
}

#[test]
#[ignore = "needs a real cluster: set TENANTRY_E2E_KUBECONFIG and run with --ignored"]
fn onboard_scope_reonboard_offboard_on_a_real_cluster() {
    let e = E2e::new("e2e");
    let (runtime, admin) = admin_client(&e);
    let tenant = e.tenant.clone();

    // Onboard: every layer applied in order, the credential proven with its own token.
    let report = json_ok(&e.cluster(&[
        "onboard",
        &tenant,
        "--skip-missing-crds",
        "--output",
        "json",
    ]));
    assert_eq!(report["result"], "ok", "{report:#}");
    assert_eq!(report["credential"]["scope"], "tenant", "{report:#}");
    let layers: Vec<(String, String)> = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["layer"].as_str().unwrap().to_owned(),
                l["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for base in [
        "namespace",
        "quota",
        "limits",
        "rbac",
        "serviceaccount",
        "network",
    ] {
        assert!(
            layers.contains(&(base.to_owned(), "applied".to_owned())),
            "{base} applied: {layers:?}"
        );
    }
    let skipped: Vec<&str> = layers
        .iter()
        .filter(|(_, s)| s == "skipped")
        .map(|(l, _)| l.as_str())
        .collect();
    for missing in report["missing"].as_array().into_iter().flatten() {
        let api_version = missing["apiVersion"].as_str().unwrap();
        let (group, version) = api_version.rsplit_once('/').unwrap();
        let gvk = GroupVersionKind::gvk(group, version, missing["kind"].as_str().unwrap());
        assert!(
            runtime
                .block_on(discovery::pinned_kind(&admin, &gvk))
                .is_err(),
            "{api_version} {} is served but its layer was skipped",
            missing["kind"]
        );
    }
    eprintln!("layers skipped for missing CRDs: {skipped:?}");

    // Every object of every applied layer is there and labelled for the tenant.
    let objects = rendered(&e);
    let mut versions = Vec::new();
    for object in &objects {
        let kind = object["kind"].as_str().unwrap();
        let group = object["apiVersion"]
            .as_str()
            .unwrap()
            .rsplit_once('/')
            .map_or("", |(g, _)| g);
        let layer = tenantry_core::plan::layer_of(group, kind)
            .map(|l| l.as_str())
            .unwrap_or("?");
        if skipped.contains(&layer) {
            continue;
        }
        let live = runtime
            .block_on(live_object(&admin, object))
            .unwrap_or_else(|| panic!("{kind} {} is missing", object["metadata"]["name"]));
        assert_eq!(
            live["metadata"]["labels"][LABEL],
            tenant.as_str(),
            "{kind} labelled"
        );
        assert_eq!(
            live["metadata"]["labels"]["app.kubernetes.io/managed-by"], "tenantry",
            "{kind} labelled"
        );
        versions.push((
            format!("{kind} {}", object["metadata"]["name"]),
            written_by_tenantry(&live),
        ));
    }

    // The issued kubeconfig works in its namespace, nowhere else, and cannot run a
    // privileged pod.
    let issued = e
        .repo
        .path()
        .join(format!("out/tenant-{tenant}.kubeconfig"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&issued).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let issued_text = std::fs::read_to_string(&issued).unwrap();
    let token =
        tenantry_cluster::credential::token_of(&issued_text).expect("the kubeconfig holds a token");
    let as_tenant = runtime.block_on(client_from(&issued));
    runtime.block_on(async {
        let own: Api<Pod> = Api::namespaced(as_tenant.clone(), &tenant);
        own.list(&ListParams::default())
            .await
            .expect("the tenant lists pods in its namespace");
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(as_tenant.clone());
        assert_eq!(list_status(&nodes).await, Some(403));
        let system: Api<Pod> = Api::namespaced(as_tenant.clone(), "kube-system");
        assert_eq!(list_status(&system).await, Some(403));
        let refused = own
            .create(&PostParams::default(), &privileged_pod())
            .await
            .unwrap_err();
        assert_eq!(status_code(&refused), Some(403), "{refused}");
        assert!(
            refused.to_string().contains("violates PodSecurity"),
            "{refused}"
        );
    });

    // Re-onboarding changes nothing: no write, and Tenantry's field set (with the time it
    // last wrote it) is untouched on every object. resourceVersion is not the measure: the
    // quota controller rewrites the ResourceQuota's status when the new credential's Secret
    // handle is counted.
    let again = json_ok(&e.cluster(&[
        "onboard",
        &tenant,
        "--skip-missing-crds",
        "--output",
        "json",
    ]));
    assert_eq!(again["writes"], 0, "{again:#}");
    for (what, version) in &versions {
        let object = objects
            .iter()
            .find(|o| format!("{} {}", o["kind"].as_str().unwrap(), o["metadata"]["name"]) == *what)
            .unwrap();
        let live = runtime.block_on(live_object(&admin, object)).unwrap();
        assert_eq!(&written_by_tenantry(&live), version, "{what} was rewritten");
    }

    // Offboard: the token is revoked (401), nothing is left.
    let gone = json_ok(&e.cluster(&["offboard", &tenant, "--output", "json"]));
    assert_eq!(gone["result"], "ok", "{gone:#}");
    assert_eq!(gone["lastToken"]["authenticated"], false, "{gone:#}");
    assert_eq!(gone["leftovers"], json!([]));
    assert!(!issued.exists());
    runtime.block_on(async {
        let rejected = as_tenant_with_token(&issued_text, &token).await;
        let pods: Api<Pod> = Api::namespaced(rejected, &tenant);
        let error = pods.list(&ListParams::default()).await.unwrap_err();
        assert_eq!(status_code(&error), Some(401), "{error}");
        let namespaces: Api<Namespace> = Api::all(admin.clone());
        assert!(namespaces.get_opt(&tenant).await.unwrap().is_none());
    });
}

async fn as_tenant_with_token(kubeconfig: &str, token: &str) -> Client {
    assert!(kubeconfig.contains(token));
    let parsed = Kubeconfig::from_yaml(kubeconfig).unwrap();
    let config = Config::from_custom_kubeconfig(parsed, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

#[test]
#[ignore = "needs a real cluster: set TENANTRY_E2E_KUBECONFIG and run with --ignored"]
fn apply_converges_prunes_and_then_writes_nothing_on_a_real_cluster() {
    let e = E2e::new("e2e-apply");
    let tenant = e.tenant.clone();
    let extra = format!("{tenant}-dev");
    let o = e.run(&["onboard", &tenant, "--gitops-only", "--namespace", &extra]);
    assert!(o.status.success(), "{}", text(&o));
    let first = json_ok(&e.cluster(&["apply", &tenant, "--skip-missing-crds", "--output", "json"]));
    assert_eq!(first["result"], "ok", "{first:#}");

    // Drop the extra namespace from the declaration: only --prune deletes it.
    let path = e.repo.path().join(format!("tenants/{tenant}/tenant.yaml"));
    let declaration = std::fs::read_to_string(&path).unwrap();
    let without: String = declaration
        .lines()
        .filter(|l| !l.contains(&extra))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, without.replace("namespaces:\n", "")).unwrap();
    let plan = json_ok(&e.cluster(&[
        "apply",
        &tenant,
        "--prune",
        "--dry-run",
        "--skip-missing-crds",
        "--output",
        "json",
    ]));
    assert_eq!(
        plan["tenants"][0]["plan"]["toPrune"],
        json!([format!("Namespace {extra}")]),
        "{plan:#}"
    );
    let pruned = json_ok(&e.cluster(&[
        "apply",
        &tenant,
        "--prune",
        "--skip-missing-crds",
        "--output",
        "json",
    ]));
    assert_eq!(
        pruned["tenants"][0]["pruned"][0]["outcome"], "deleted",
        "{pruned:#}"
    );

    let settled = json_ok(&e.cluster(&[
        "apply",
        "--all",
        "--prune",
        "--skip-missing-crds",
        "--output",
        "json",
    ]));
    assert_eq!(settled["writes"], 0, "{settled:#}");
}

#[test]
#[ignore = "needs a real cluster: set TENANTRY_E2E_KUBECONFIG and run with --ignored"]
fn the_tenant_crd_installs_and_accepts_the_tenants_tenantry_writes() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{DeleteParams, Patch, PatchParams};

    let e = E2e::new("e2e-crd");
    let (runtime, admin) = admin_client(&e);

    // `tenantry crd` as a cluster admin would pipe it to kubectl.
    let o = bare(&["crd"]);
    assert!(o.status.success(), "{}", text(&o));
    let crd: CustomResourceDefinition =
        serde_saphyr::from_str(&String::from_utf8_lossy(&o.stdout)).expect("the CRD parses");
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    let name = "tenants.tenantry.dev";
    runtime.block_on(async {
        let existed = crds.get_opt(name).await.expect("read CRDs").is_some();
        crds.patch(
            name,
            &PatchParams::apply("tenantry-e2e").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|err| panic!("the API server refused the Tenant CRD: {err}"));
        // Established, and no NonStructuralSchema condition.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let live = crds.get(name).await.expect("read the CRD");
            let conditions = live.status.and_then(|s| s.conditions).unwrap_or_default();
            assert!(
                !conditions
                    .iter()
                    .any(|c| c.type_ == "NonStructuralSchema" && c.status == "True"),
                "{conditions:?}"
            );
            if conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not Established: {conditions:?}"
            );
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }

        // Every reference shape of tenant.yaml, sent as a Tenant object (server-side dry run).
        let tenant = e.tenant.clone();
        let dev = format!("{tenant}-dev");
        for args in [
            vec!["onboard", tenant.as_str(), "--gitops-only"],
            vec![
                "onboard",
                tenant.as_str(),
                "--gitops-only",
                "--mesh",
                "--allow-root",
                "--namespace",
                dev.as_str(),
                "--owner",
                "group:team",
                "--openbao",
                "--grant",
                "external-dns",
            ],
            vec![
                "onboard",
                tenant.as_str(),
                "--gitops-only",
                "--delivery",
                "argocd",
                "--source-url",
                "https://git.example.com/x.git",
            ],
            vec![
                "onboard",
                tenant.as_str(),
                "--gitops-only",
                "--delivery",
                "none",
                "--network",
                "cilium",
                "--deny-egress",
            ],
        ] {
            let o = e.run(&args);
            assert!(o.status.success(), "{}", text(&o));
            let file = std::fs::read_to_string(
                e.repo.path().join(format!("tenants/{tenant}/tenant.yaml")),
            )
            .unwrap();
            let object: DynamicObject = serde_saphyr::from_str(&file).expect("tenant.yaml parses");
            let api: Api<DynamicObject> = Api::all_with(
                admin.clone(),
                &kube::core::ApiResource::from_gvk(&GroupVersionKind::gvk(
                    "tenantry.dev",
                    "v1alpha1",
                    "Tenant",
                )),
            );
            let params = PatchParams::apply("tenantry-e2e").dry_run();
            api.patch(&tenant, &params, &Patch::Apply(&object))
                .await
                .unwrap_or_else(|err| {
                    panic!("the API server refused {args:?}'s tenant.yaml: {err}\n{file}")
                });
        }
        if !existed {
            crds.delete(name, &DeleteParams::default())
                .await
                .expect("remove the CRD again");
        }
    });
}

/// `SelfSubjectAccessReview` as whoever `client` is.
async fn can_i(client: &Client, verb: &str, group: &str, resource: &str, ns: Option<&str>) -> bool {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.to_owned()),
                group: Some(group.to_owned()),
                resource: Some(resource.to_owned()),
                namespace: ns.map(str::to_owned),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .expect("a SelfSubjectAccessReview is always allowed");
    answer.status.is_some_and(|s| s.allowed)
}

/// The aggregation controller folds the platform's tenant roles into `edit` shortly after
/// they exist: wait until the tenant may create a SecretStore in its namespace.
async fn wait_aggregated(me: &Client, tenant: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !can_i(
        me,
        "create",
        "external-secrets.io",
        "secretstores",
        Some(tenant),
    )
    .await
    {
        assert!(
            std::time::Instant::now() < deadline,
            "edit never aggregated the tenant roles"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Server-side apply of one object as `client`, with strict field validation.
async fn apply_as(client: &Client, object: &Value) -> Result<(), kube::Error> {
    use kube::api::{Patch, PatchParams};
    let api_version = object["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, object["kind"].as_str().unwrap());
    let resource = kube::api::ApiResource::from_gvk(&gvk);
    let name = object["metadata"]["name"].as_str().unwrap();
    let api: Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let params =
        PatchParams::apply("tenant-deploy").validation(kube::api::ValidationDirective::Strict);
    api.patch(name, &params, &Patch::Apply(object))
        .await
        .map(drop)
}

/// The onboarding guide's `deploy/` tree for a tenant with app secrets: its own SecretStore,
/// Password → PushSecret → ExternalSecret, a CiliumNetworkPolicy allow-list and an HTTPRoute
/// to the platform gateway.
fn deploy_tree(tenant: &str) -> Vec<Value> {
    let meta = |name: &str| json!({ "name": name, "namespace": tenant });
    let store = json!({ "name": "openbao", "kind": "SecretStore" });
    vec![
        json!({ "apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": meta("openbao"),
            "spec": { "provider": { "vault": {
                "server": "http://openbao.openbao.svc:8200", "path": "secret", "version": "v2",
                "auth": { "kubernetes": { "mountPath": "kubernetes", "role": tenant,
                    "serviceAccountRef": { "name": tenant } } } } } } }),
        json!({ "apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Password",
            "metadata": meta("admin-code"),
            "spec": { "length": 32, "digits": 5, "symbols": 0, "noUpper": false, "allowRepeat": true } }),
        json!({ "apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret", "metadata": meta("admin-code"),
            "spec": { "refreshInterval": "0", "secretStoreRefs": [store],
                "selector": { "generatorRef": { "apiVersion": "generators.external-secrets.io/v1alpha1",
                    "kind": "Password", "name": "admin-code" } },
                "data": [{ "match": { "secretKey": "password",
                    "remoteRef": { "remoteKey": format!("apps/{tenant}/admin-code"), "property": "password" } } }] } }),
        json!({ "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": meta("admin-code"),
            "spec": { "refreshInterval": "1h", "secretStoreRef": store, "target": { "name": "admin-code" },
                "data": [{ "secretKey": "code",
                    "remoteRef": { "key": format!("apps/{tenant}/admin-code"), "property": "password" } }] } }),
        json!({ "apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": meta("allow-gateway"),
            "spec": { "endpointSelector": { "matchLabels": { "app": "web" } },
                "ingress": [{ "fromEndpoints": [{ "matchLabels": { "k8s:io.kubernetes.pod.namespace": "kube-system" } }],
                    "toPorts": [{ "ports": [{ "port": "8080", "protocol": "TCP" }] }] }] } }),
        json!({ "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta("web"),
            "spec": { "parentRefs": [{ "name": "platform", "namespace": "kube-system", "sectionName": "https" }],
                "hostnames": [format!("{tenant}.example.com")],
                "rules": [{ "backendRefs": [{ "name": "web", "port": 8080 }] }] } }),
    ]
}

#[test]
#[ignore = "needs a real cluster: set TENANTRY_E2E_KUBECONFIG and run with --ignored"]
fn the_tenant_may_apply_its_deploy_tree_and_nothing_beyond_its_namespace() {
    let e = E2e::new("e2e-rbac");
    let tenant = e.tenant.clone();
    // A platform on Cilium, with the built-in pull secret and gateway: External Secrets,
    // Cilium and Gateway API kinds are granted; Flux is not.
    std::fs::write(
        e.repo.path().join("tenantry.yaml"),
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\ntenantRbac:\n  cilium: true\n",
    )
    .unwrap();
    let issued = e.onboard_ok(&[]);
    assert!(
        e.repo
            .path()
            .join("platform/tenant-rbac/clusterrole.tenantry-tenant-edit-cilium.yaml")
            .is_file()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let me = runtime.block_on(client_from(&issued));

    let granted = [
        ("external-secrets.io", "externalsecrets"),
        ("external-secrets.io", "pushsecrets"),
        ("external-secrets.io", "secretstores"),
        ("generators.external-secrets.io", "passwords"),
        ("cilium.io", "ciliumnetworkpolicies"),
        ("gateway.networking.k8s.io", "httproutes"),
        ("gateway.networking.k8s.io", "grpcroutes"),
    ];
    runtime.block_on(async {
        wait_aggregated(&me, &tenant).await;
        for (group, resource) in granted {
            for verb in ["create", "update", "delete", "list"] {
                assert!(
                    can_i(&me, verb, group, resource, Some(&tenant)).await,
                    "{verb} {resource}.{group} in {tenant}"
                );
            }
            for other in ["default", "kube-system"] {
                assert!(
                    !can_i(&me, "create", group, resource, Some(other)).await,
                    "create {resource}.{group} in {other}"
                );
            }
            assert!(
                !can_i(&me, "list", group, resource, None).await,
                "list {resource}.{group} at cluster scope"
            );
        }
        for (group, resource) in [
            ("external-secrets.io", "clustersecretstores"),
            ("external-secrets.io", "clusterexternalsecrets"),
            ("generators.external-secrets.io", "clustergenerators"),
            ("cilium.io", "ciliumclusterwidenetworkpolicies"),
            ("gateway.networking.k8s.io", "gateways"),
            ("kustomize.toolkit.fluxcd.io", "kustomizations"),
        ] {
            for ns in [Some(tenant.as_str()), None] {
                assert!(
                    !can_i(&me, "create", group, resource, ns).await,
                    "create {resource}.{group} in {ns:?}"
                );
            }
        }

        for object in deploy_tree(&tenant) {
            if let Err(err) = apply_as(&me, &object).await {
                panic!(
                    "{} {} as the tenant: {err}",
                    object["kind"], object["metadata"]["name"]
                );
            }
        }
        let cluster_store = json!({ "apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
            "metadata": { "name": format!("{tenant}-steal") },
            "spec": { "provider": { "vault": { "server": "http://openbao.openbao.svc:8200", "path": "secret",
                "version": "v2", "auth": { "kubernetes": { "mountPath": "kubernetes", "role": "platform",
                    "serviceAccountRef": { "name": tenant, "namespace": tenant } } } } } } });
        let refused = apply_as(&me, &cluster_store).await.err();
        assert_eq!(
            refused.as_ref().and_then(status_code),
            Some(403),
            "a ClusterSecretStore is refused: {refused:?}"
        );
    });
}

/// A CA and a serving certificate for 127.0.0.1, PEM: (ca, cert, key).
fn loopback_pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// `tenantry webhook` running as a local process, registered with the API server by the
/// objects webhook of `tenantry webhook manifests` (pointed at 127.0.0.1 and scoped to one
/// namespace so that other tests' tenants never depend on it). Both go away on drop.
struct LocalWebhook {
    process: std::process::Child,
    registration: String,
    kubeconfig: PathBuf,
}

impl LocalWebhook {
    fn start(e: &E2e, namespace: &str) -> Self {
        let dir = e.repo.path().join("webhook");
        std::fs::create_dir_all(&dir).unwrap();
        let (ca, cert, key) = loopback_pki();
        std::fs::write(dir.join("ca.crt"), &ca).unwrap();
        std::fs::write(dir.join("tls.crt"), &cert).unwrap();
        std::fs::write(dir.join("tls.key"), &key).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = e.repo.path().join("tenantry.yaml");
        let process = Command::new(env!("CARGO_BIN_EXE_tenantry"))
            .args(["webhook", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--tls-cert")
            .arg(dir.join("tls.crt"))
            .arg("--tls-key")
            .arg(dir.join("tls.key"))
            .arg("--config")
            .arg(&config)
            .env("KUBECONFIG", &e.kubeconfig)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tenantry webhook starts");
        let manifests = bare(&[
            "webhook",
            "manifests",
            "--ca-bundle",
            &dir.join("ca.crt").to_string_lossy(),
            "--config",
            &config.to_string_lossy(),
        ]);
        assert_eq!(manifests.status.code(), Some(0), "{}", text(&manifests));
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&String::from_utf8_lossy(&manifests.stdout)).unwrap();
        let mut vwc = docs
            .into_iter()
            .find(|d| d["kind"] == "ValidatingWebhookConfiguration")
            .expect("manifests register the webhook");
        let registration = format!("{}-{port}", namespace);
        vwc["metadata"] = json!({ "name": registration });
        let webhooks = vwc["webhooks"].as_array_mut().unwrap();
        // The objects webhook only: the namespaces webhook would judge every namespace.
        webhooks.retain(|w| w["name"] == "objects.webhook.tenantry.dev");
        let objects = &mut webhooks[0];
        let path = objects["clientConfig"]["service"]["path"].clone();
        objects["clientConfig"]["url"] = json!(format!(
            "https://127.0.0.1:{port}{}",
            path.as_str().unwrap()
        ));
        objects["clientConfig"]
            .as_object_mut()
            .unwrap()
            .remove("service");
        objects["namespaceSelector"]["matchLabels"] =
            json!({ "kubernetes.io/metadata.name": namespace });
        let me = Self {
            process,
            registration,
            kubeconfig: e.kubeconfig.clone(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let admin = client_from(&me.kubeconfig).await;
            apply_as(&admin, &vwc).await.expect("webhook registered");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                let ready = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok();
                if ready {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "webhook never listened"
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        });
        me
    }
}

impl Drop for LocalWebhook {
    fn drop(&mut self) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
            let admin = client_from(&self.kubeconfig).await;
            let _ = Api::<ValidatingWebhookConfiguration>::all(admin)
                .delete(&self.registration, &Default::default())
                .await;
        });
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The denial of a refused write: the webhook's message names the check.
fn refusal(result: Result<(), kube::Error>) -> String {
    match result {
        Ok(()) => String::new(),
        Err(kube::Error::Api(status)) => status.message.clone(),
        Err(other) => other.to_string(),
    }
}

#[test]
#[ignore = "needs a real cluster: set TENANTRY_E2E_KUBECONFIG and run with --ignored"]
fn the_webhook_narrows_what_the_tenant_roles_allow_on_a_real_cluster() {
    let e = E2e::new("e2e-narrow");
    let tenant = e.tenant.clone();
    std::fs::write(
        e.repo.path().join("tenantry.yaml"),
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\ntenantRbac:\n  cilium: true\n",
    )
    .unwrap();
    let issued = e.onboard_ok(&[]);
    let _webhook = LocalWebhook::start(&e, &tenant);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let me = client_from(&issued).await;
        wait_aggregated(&me, &tenant).await;
        // The guide's tree passes the webhook (retrying while it comes up: fail closed).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        for object in deploy_tree(&tenant) {
            loop {
                match apply_as(&me, &object).await {
                    Ok(()) => break,
                    Err(err)
                        if std::time::Instant::now() < deadline
                            && err.to_string().contains("failed calling webhook") =>
                    {
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    }
                    Err(err) => panic!("{} as the tenant: {err}", object["kind"]),
                }
            }
        }
        let meta = |name: &str| json!({ "name": name, "namespace": tenant });
        let tree = deploy_tree(&tenant);
        // An ExternalSecret reading through a ClusterSecretStore.
        let mut steal = tree[3].clone();
        steal["metadata"] = meta("steal");
        steal["spec"]["secretStoreRef"] =
            json!({ "kind": "ClusterSecretStore", "name": "openbao" });
        let why = refusal(apply_as(&me, &steal).await);
        assert!(why.contains("cluster-secret-store"), "{why}");
        // A SecretStore logging in as another tenant's OpenBao role.
        let mut store = tree[0].clone();
        store["metadata"] = meta("other-role");
        store["spec"]["provider"]["vault"]["auth"]["kubernetes"]["role"] = json!("payments");
        let why = refusal(apply_as(&me, &store).await);
        assert!(why.contains("secret-store-scope"), "{why}");
        // A PushSecret writing into another tenant's path.
        let mut push = tree[2].clone();
        push["metadata"] = meta("overwrite");
        push["spec"]["data"][0]["match"]["remoteRef"]["remoteKey"] =
            json!("apps/payments/admin-code");
        let why = refusal(apply_as(&me, &push).await);
        assert!(why.contains("secret-path-scope"), "{why}");
        // A CiliumNetworkPolicy letting the tenant's pods reach the whole cluster.
        let mut open = tree[4].clone();
        open["metadata"] = meta("allow-all");
        open["spec"] = json!({ "endpointSelector": {}, "egress": [{ "toEntities": ["cluster"] }] });
        let why = refusal(apply_as(&me, &open).await);
        assert!(why.contains("network-policy-reach"), "{why}");
        // Tenantry's own floor is still protected from the tenant.
        use kube::api::DeleteParams;
        let floor = kube::api::ApiResource::from_gvk(&GroupVersionKind::gvk(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
        ));
        let nps: Api<DynamicObject> = Api::namespaced_with(me.clone(), &tenant, &floor);
        let deleted = nps
            .delete("tenantry-default-deny", &DeleteParams::default())
            .await;
        assert!(
            deleted.is_err(),
            "the tenant deleted its default-deny policy"
        );
    });
}

/// A restricted, resourced pod (the tenant's `pool: shared` selector set) with `extra` merged
/// into its spec.
fn tenant_pod(namespace: &str, name: &str, extra: Value) -> Value {
    let mut pod = json!({ "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": namespace },
        "spec": {
            "nodeSelector": { "pool": "shared" },
            "securityContext": { "runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": { "type": "RuntimeDefault" } },
            "containers": [{ "name": "web", "image": "nginx",
                "resources": { "requests": { "cpu": "10m", "memory": "16Mi" }, "limits": { "memory": "32Mi" } },
                "securityContext": { "allowPrivilegeEscalation": false, "capabilities": { "drop": ["ALL"] } } }] } });
    for (key, value) in extra.as_object().unwrap() {
        pod["spec"][key] = value.clone();
    }
    pod
}

#[test]
#[ignore = "needs a real cluster: set TENANTRY_E2E_KUBECONFIG and run with --ignored"]
fn placement_and_classes_hold_on_a_real_cluster() {
    let e = E2e::new("e2e-place");
    let tenant = e.tenant.clone();
    let dev = format!("{tenant}-dev");
    let (normal, batch) = (format!("{tenant}-normal"), format!("{tenant}-batch"));
    std::fs::write(
        e.repo.path().join("tenantry.yaml"),
        format!(
            "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\ndefaults:\n  placement:\n    nodeSelector: {{pool: shared}}\n  classes:\n    priority: {{allowed: [{normal}]}}\n    storage: {{allowed: [standard]}}\n"
        ),
    )
    .unwrap();
    let (runtime, admin) = admin_client(&e);
    // Two PriorityClasses of the cluster's: one the tenant may use, one it may not.
    let classes = runtime.block_on(async {
        let mut created = Vec::new();
        for (name, value) in [(&normal, 1000), (&batch, 10)] {
            let class = json!({ "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": { "name": name }, "value": value });
            apply_as(&admin, &class)
                .await
                .expect("PriorityClass created");
            created.push(name.clone());
        }
        created
    });
    struct Cleanup<'a>(&'a tokio::runtime::Runtime, Client, Vec<String>);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            use k8s_openapi::api::scheduling::v1::PriorityClass;
            let api = Api::<PriorityClass>::all(self.1.clone());
            for name in &self.2 {
                let _ = self.0.block_on(api.delete(name, &Default::default()));
            }
        }
    }
    let _classes = Cleanup(&runtime, admin.clone(), classes);

    let issued = e.onboard_ok(&["--namespace", &dev]);
    // The webhook judges the primary namespace only; the second shows the quota alone.
    let _webhook = LocalWebhook::start(&e, &tenant);
    runtime.block_on(async {
        let me = client_from(&issued).await;
        let create = |pod: Value| {
            let me = me.clone();
            async move {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                loop {
                    let result = apply_as(&me, &pod).await;
                    match &result {
                        Err(err)
                            if std::time::Instant::now() < deadline
                                && err.to_string().contains("failed calling webhook") =>
                        {
                            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                        }
                        _ => return refusal(result),
                    }
                }
            }
        };
        // Admitted: on the tenant's nodes, at an allowed class, and at the default class.
        let ok = create(tenant_pod(
            &tenant,
            "allowed",
            json!({ "priorityClassName": normal }),
        ))
        .await;
        assert_eq!(ok, "", "a pod at an allowed PriorityClass is admitted");
        let ok = create(tenant_pod(&tenant, "default-class", json!({}))).await;
        assert_eq!(ok, "");
        // Refused by the webhook, naming the check.
        for (name, extra, check) in [
            (
                "pinned",
                json!({ "nodeName": "control-plane-1" }),
                "node-name",
            ),
            (
                "everywhere",
                json!({ "tolerations": [{ "operator": "Exists" }] }),
                "tolerations",
            ),
            (
                "critical",
                json!({ "priorityClassName": "system-node-critical" }),
                "priority-class",
            ),
            (
                "elsewhere",
                json!({ "nodeSelector": { "pool": "gpu" } }),
                "node-selector",
            ),
        ] {
            let why = create(tenant_pod(&tenant, name, extra)).await;
            assert!(why.contains(check), "{name}: {why}");
        }
        let pvc = json!({ "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": { "name": "fast", "namespace": tenant },
            "spec": { "storageClassName": "fast-ssd", "accessModes": ["ReadWriteOnce"],
                "resources": { "requests": { "storage": "1Gi" } } } });
        let why = refusal(apply_as(&me, &pvc).await);
        assert!(why.contains("storage-class"), "{why}");

        // Without the webhook, the API server's own quota admission still refuses a class
        // the tenant may not use, and only that.
        let why = create(tenant_pod(
            &dev,
            "batch",
            json!({ "priorityClassName": batch }),
        ))
        .await;
        assert!(
            why.contains("exceeded quota: tenantry-priority-classes"),
            "{why}"
        );
        assert_eq!(
            create(tenant_pod(
                &dev,
                "allowed",
                json!({ "priorityClassName": normal })
            ))
            .await,
            ""
        );
        assert_eq!(
            create(tenant_pod(&dev, "default-class", json!({}))).await,
            ""
        );
    });
}

#[test]
#[ignore = "needs a real cluster: set TENANTRY_E2E_KUBECONFIG and run with --ignored"]
fn a_tenant_wide_quota_holds_across_two_namespaces_on_a_real_cluster() {
    let e = E2e::new("e2e-quota");
    let tenant = e.tenant.clone();
    let dev = format!("{tenant}-dev");
    std::fs::write(
        e.repo.path().join("tenantry.yaml"),
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\ndefaults:\n  quota: {scope: tenant, pods: 4}\n",
    )
    .unwrap();
    let issued = e.onboard_ok(&["--namespace", &dev]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let me = runtime.block_on(client_from(&issued));
    let pod = |namespace: &str, name: &str| {
        let me = me.clone();
        let pod = tenant_pod(namespace, name, json!({}));
        async move { refusal(apply_as(&me, &pod).await) }
    };
    let hard = |namespace: &str| {
        let admin = runtime.block_on(client_from(&e.kubeconfig));
        let quotas: Api<k8s_openapi::api::core::v1::ResourceQuota> =
            Api::namespaced(admin, namespace);
        let quota = runtime.block_on(quotas.get("tenantry-quota")).unwrap();
        quota.spec.unwrap().hard.unwrap()["pods"].0.clone()
    };
    // Rendered: equal shares of the tenant's 4 pods.
    assert_eq!(
        (hard(&tenant), hard(&dev)),
        ("2".to_owned(), "2".to_owned())
    );
    runtime.block_on(async {
        assert_eq!(pod(&tenant, "a").await, "");
        assert_eq!(pod(&tenant, "b").await, "");
        let why = pod(&tenant, "c").await;
        assert!(why.contains("exceeded quota: tenantry-quota"), "{why}");
    });
    // apply rebalances from usage: the primary uses 2, so 2 are left for both namespaces.
    let applied =
        json_ok(&e.cluster(&["apply", &tenant, "--skip-missing-crds", "--output", "json"]));
    assert_eq!(applied["result"], "ok", "{applied:#}");
    assert_eq!(
        (hard(&tenant), hard(&dev)),
        ("3".to_owned(), "1".to_owned())
    );
    runtime.block_on(async {
        // The second namespace cannot use what the first already did.
        assert_eq!(pod(&dev, "a").await, "");
        let why = pod(&dev, "b").await;
        assert!(why.contains("exceeded quota: tenantry-quota"), "{why}");
        assert_eq!(pod(&tenant, "c").await, "");
        let why = pod(&tenant, "d").await;
        assert!(why.contains("exceeded quota: tenantry-quota"), "{why}");
    });
    // Converged: another apply changes nothing (4 of 4 used, nothing left to share).
    let again = json_ok(&e.cluster(&["apply", &tenant, "--skip-missing-crds", "--output", "json"]));
    assert_eq!(
        (hard(&tenant), hard(&dev)),
        ("3".to_owned(), "1".to_owned())
    );
    assert_eq!(again["writes"], 0, "{again:#}");
}
