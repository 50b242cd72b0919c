//! The operator against a real API server, run in-process with an admin kubeconfig:
//!
//! ```sh
//! TENANTRY_E2E_KUBECONFIG=/path/admin.kubeconfig cargo test -p tenantry-operator -- --ignored --test-threads 1
//! ```
//!
//! Tenants are named `op-e2e-*` and labelled for this run only, and the operator is started
//! with a selector for that label, so Tenants of other tests on the same server are never
//! touched. Install `testdata/crds/` first so every layer is applied.

use std::{
    future::Future,
    path::PathBuf,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures::StreamExt;
use k8s_openapi::{
    api::{
        coordination::v1::Lease,
        core::v1::{ConfigMap, Namespace, ResourceQuota, ServiceAccount},
        networking::v1::NetworkPolicy,
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, CustomResourceExt, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use tenantry_api::{Tenant, TenantSpec, tenant::Quota};
use tenantry_cluster::{
    ClusterApi, ClusterError, KubeconfigSource, credential,
    ops::{self, Silent, Waits},
};
use tenantry_operator::{Options, leader::LeaseOptions, platform::ConfigSource};

const SELECTOR_KEY: &str = "tenantry.dev/e2e-operator";
const TENANT_LABEL: &str = "tenantry.dev/tenant";
/// The lease duration the operators run with: how long a standby waits for a dead leader.
const LEASE_SECONDS: u64 = 6;

fn kubeconfig() -> PathBuf {
    match std::env::var_os("TENANTRY_E2E_KUBECONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "set TENANTRY_E2E_KUBECONFIG to a cluster-admin kubeconfig of a disposable cluster"
        ),
    }
}

fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:x}",
        (nanos as u64 ^ u64::from(std::process::id())) & 0xff_ffff
    )
}

async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "tenants.tenantry.dev",
        &PatchParams::apply("tenantry-e2e").force(),
        &Patch::Apply(&Tenant::crd()),
    )
    .await
    .expect("the Tenant CRD installs");
    eventually(
        "the Tenant CRD to be Established",
        Duration::from_secs(60),
        || {
            let crds = crds.clone();
            async move {
                let live = crds.get("tenants.tenantry.dev").await.ok()?;
                live.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        },
    )
    .await;
}

fn ready(t: &Tenant) -> bool {
    t.status.as_ref().is_some_and(|s| {
        s.observed_generation == t.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// Removes what a failed run leaves (the Tenants' finalizers would otherwise keep them
/// forever once no operator runs), on every exit.
struct Cleanup {
    tenants: Vec<String>,
    namespaces: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let tenants = self.tenants.clone();
        let namespaces = self.namespaces.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok((api, _)) = tenantry_cluster::connect(&KubeconfigSource {
                    path: Some(kubeconfig()),
                    context: None,
                })
                .await
                else {
                    return;
                };
                let client = api.client().clone();
                let all: Api<Tenant> = Api::all(client.clone());
                for tenant in tenants {
                    let _ = all
                        .patch(
                            &tenant,
                            &PatchParams::default(),
                            &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
                        )
                        .await;
                    let _ = all.delete(&tenant, &DeleteParams::default()).await;
                }
                let all: Api<Namespace> = Api::all(client);
                for ns in namespaces {
                    let _ = all.delete(&ns, &DeleteParams::default()).await;
                }
            });
        })
        .join();
    }
}

/// The operator's namespace and its platform ConfigMap (built-in defaults).
async fn create_system(client: &Client, system: &str) {
    create_system_with(
        client,
        system,
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\n",
    )
    .await;
}

/// The operator's namespace and its platform ConfigMap holding `platform` as tenantry.yaml.
async fn create_system_with(client: &Client, system: &str, platform: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": system}})).unwrap(),
        )
        .await
        .expect("the operator's namespace is created");
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), system);
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "tenantry-config"},
                "data": {"tenantry.yaml": platform},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
}

fn new_tenant(name: &str, run: &str) -> Tenant {
    let mut tenant = Tenant::new(name, TenantSpec::default());
    tenant.metadata.labels = Some([(SELECTOR_KEY.to_owned(), run.to_owned())].into());
    tenant
}

async fn wait_ready(tenants: &Api<Tenant>, name: &str, timeout: Duration) -> Tenant {
    eventually(&format!("Tenant {name} to be Ready"), timeout, || {
        let tenants = tenants.clone();
        let name = name.to_owned();
        async move { tenants.get(&name).await.ok().filter(ready) }
    })
    .await
}

struct Operator {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), tenantry_operator::OperatorError>>,
}

impl Operator {
    /// Stop it as a SIGTERM would, and require a clean stop.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task
            .await
            .unwrap()
            .expect("the operator stops cleanly");
    }
}

/// Wait until a TokenReview no longer authenticates `token` (`what` names it in a timeout).
async fn token_dies(
    api: &tenantry_cluster::KubeCluster,
    token: &str,
    what: &str,
    timeout: Duration,
) {
    eventually(what, timeout, || async move {
        (!api.review_token(token).await.ok()?.authenticated).then_some(())
    })
    .await;
}

/// The admin connection every test starts from, with the Tenant CRD installed.
async fn admin() -> (
    tenantry_cluster::KubeCluster,
    tenantry_cluster::ClusterEndpoint,
    Client,
) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (api, endpoint) = tenantry_cluster::connect(&KubeconfigSource {
        path: Some(kubeconfig()),
        context: None,
    })
    .await
    .expect("the kubeconfig connects");
    let client = api.client().clone();
    install_crd(&client).await;
    (api, endpoint, client)
}

fn start_operator(system: &str, run: &str, identity: &str) -> Operator {
    start_operator_on(system, run, identity, "127.0.0.1:0", 4)
}

fn start_operator_on(
    system: &str,
    run: &str,
    identity: &str,
    listen: &str,
    concurrency: u16,
) -> Operator {
    start_operator_with(system, run, identity, listen, concurrency, None)
}

fn start_operator_with(
    system: &str,
    run: &str,
    identity: &str,
    listen: &str,
    concurrency: u16,
    openbao: Option<tenantry_secrets::ConnectionFlags>,
) -> Operator {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = Options {
        kubeconfig: Some(kubeconfig()),
        context: None,
        config: ConfigSource {
            namespace: system.to_owned(),
            name: "tenantry-config".to_owned(),
        },
        listen: listen.parse().unwrap(),
        lease: Some(LeaseOptions {
            namespace: system.to_owned(),
            name: "tenantry-operator".to_owned(),
            identity: identity.to_owned(),
            duration_seconds: LEASE_SECONDS,
            grace_seconds: 2,
        }),
        tenant_selector: Some(format!("{SELECTOR_KEY}={run}")),
        concurrency,
        waits: Waits {
            timeout: Duration::from_secs(60),
            interval: Duration::from_millis(200),
        },
        openbao,
    };
    let task = tokio::spawn(tenantry_operator::run(options, async {
        let _ = stopped.await;
    }));
    Operator { stop, task }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: set TENANTRY_E2E_KUBECONFIG and run with --ignored"]
async fn a_tenant_object_is_converged_repaired_updated_and_offboarded() {
    let (api, endpoint, client) = admin().await;
    let run = run_id();
    let system = format!("op-e2e-system-{run}");
    let name = format!("op-e2e-shop-{run}");
    let _cleanup = Cleanup {
        tenants: vec![name.clone()],
        namespaces: vec![name.clone(), system.clone()],
    };
    let namespaces: Api<Namespace> = Api::all(client.clone());
    create_system(&client, &system).await;
    let operator = start_operator(&system, &run, "op-e2e-a");

    // Create → Ready, with every layer present.
    let tenants: Api<Tenant> = Api::all(client.clone());
    let started = Instant::now();
    tenants
        .create(&PostParams::default(), &new_tenant(&name, &run))
        .await
        .expect("the Tenant is accepted");
    let live = wait_ready(&tenants, &name, Duration::from_secs(120)).await;
    eprintln!("Ready after {:?}", started.elapsed());
    assert!(
        live.finalizers()
            .iter()
            .any(|f| f == tenantry_operator::FINALIZER)
    );
    let status = live.status.unwrap();
    assert_eq!(status.namespaces.as_deref(), Some(name.as_str()));
    assert!(
        status
            .layers
            .iter()
            .all(|l| l.state != "skipped" && l.state != "failed"),
        "{:?}",
        status.layers
    );
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), &name);
    let deny = policies
        .get("tenantry-default-deny")
        .await
        .expect("default-deny is applied");

    // Drift: delete the default-deny NetworkPolicy → restored.
    let deleted = Instant::now();
    policies
        .delete("tenantry-default-deny", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the default-deny NetworkPolicy to be restored",
        Duration::from_secs(30),
        || {
            let policies = policies.clone();
            let uid = deny.uid();
            async move {
                let p = policies.get_opt("tenantry-default-deny").await.ok()??;
                (p.uid() != uid).then_some(())
            }
        },
    )
    .await;
    eprintln!(
        "NetworkPolicy restored {:?} after its deletion",
        deleted.elapsed()
    );

    // Drift: another manager edits the quota → restored.
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &name);
    let quota = quotas
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .remove(0);
    let quota_name = quota.name_any();
    let pods = quota.spec.as_ref().unwrap().hard.as_ref().unwrap()["pods"].clone();
    quotas
        .patch(
            &quota_name,
            &PatchParams::apply("op-e2e-intruder").force(),
            &Patch::Apply(&json!({
                "apiVersion": "v1", "kind": "ResourceQuota",
                "spec": {"hard": {"pods": "999"}},
            })),
        )
        .await
        .unwrap();
    eventually(
        "the edited quota to be restored",
        Duration::from_secs(30),
        || {
            let quotas = quotas.clone();
            let (quota_name, pods) = (quota_name.clone(), pods.clone());
            async move {
                let q = quotas.get(&quota_name).await.ok()?;
                (q.spec?.hard?.get("pods")? == &pods).then_some(())
            }
        },
    )
    .await;

    // spec.quota changed → applied.
    tenants
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"quota": Quota { pods: Some(7), ..Quota::default() }}})),
        )
        .await
        .unwrap();
    eventually(
        "spec.quota.pods=7 to be applied",
        Duration::from_secs(60),
        || {
            let (quotas, tenants) = (quotas.clone(), tenants.clone());
            let (quota_name, name) = (quota_name.clone(), name.clone());
            async move {
                let q = quotas.get(&quota_name).await.ok()?;
                let t = tenants.get(&name).await.ok()?;
                (q.spec?.hard?.get("pods")?.0 == "7" && ready(&t)).then_some(())
            }
        },
    )
    .await;

    // A bad spec is refused by the CRD schema.
    let raw: Api<kube::api::DynamicObject> = Api::all_with(
        client.clone(),
        &kube::api::ApiResource::erase::<Tenant>(&()),
    );
    let refused = raw
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
                "metadata": {"name": format!("op-e2e-bad-{run}"), "labels": {SELECTOR_KEY: run}},
                "spec": {"podSecurity": "privileged"},
            }))
            .unwrap(),
        )
        .await;
    assert!(
        matches!(refused, Err(kube::Error::Api(ref s)) if s.code == 422),
        "{refused:?}"
    );

    // A token of the tenant's ServiceAccount, as `tenantry credentials issue` would hand out.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
    let account = accounts
        .list(&ListParams::default().labels(&format!("{TENANT_LABEL}={name}")))
        .await
        .unwrap()
        .items
        .pop()
        .expect("the tenant has a ServiceAccount")
        .name_any();
    let issued = api.request_token(&name, &account, 600, None).await.unwrap();
    assert!(api.review_token(&issued.token).await.unwrap().authenticated);
    let as_tenant = credential::kubeconfig_yaml(&credential::KubeconfigSpec {
        tenant: &name,
        cluster_name: "op-e2e",
        namespace: &name,
        endpoint: &endpoint,
        credential_id: "op-e2e",
        token: &issued.token,
        expires_at: None,
    });
    let tenant_api = api.connect_as(&as_tenant).await.unwrap();
    let catalog = api.discover().await.unwrap();
    let np_type = catalog
        .find("networking.k8s.io/v1", "NetworkPolicy")
        .unwrap();
    tenant_api
        .list(np_type, "")
        .await
        .expect_err("a tenant may not list every namespace's policies");

    // Delete → the finalizer offboards; the namespace is gone and so is the Tenant.
    tenants
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the Tenant and its namespace to be gone",
        Duration::from_secs(180),
        || {
            let (tenants, namespaces, name) = (tenants.clone(), namespaces.clone(), name.clone());
            async move {
                let tenant_gone = tenants.get_opt(&name).await.ok()?.is_none();
                let ns_gone = namespaces.get_opt(&name).await.ok()?.is_none();
                (tenant_gone && ns_gone).then_some(())
            }
        },
    )
    .await;

    // The old token is refused (401), and nothing labelled for the tenant is left.
    // The API server caches a token's successful authentication for a few seconds.
    token_dies(
        &api,
        &issued.token,
        "the old token to be rejected",
        Duration::from_secs(30),
    )
    .await;
    let refused = tenant_api
        .get(catalog.find("v1", "Namespace").unwrap(), None, &name)
        .await;
    assert!(
        matches!(refused, Err(ClusterError::Unauthorized { .. })),
        "{refused:?}"
    );
    let (found, _) = ops::scan_tenant(&api, &catalog, TENANT_LABEL, &name, &Silent)
        .await
        .unwrap();
    assert_eq!(ops::leftovers(&found), Vec::<String>::new());

    operator.stop().await;
}

/// A Tenant with `secrets.openbao` under the operator, against the real API server and a
/// real OpenBao dev server: its policy and role appear once it is applied, and deleting the
/// Tenant revokes them and every token they issued before the finalizer lets it go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: set TENANTRY_E2E_KUBECONFIG and run with --ignored"]
async fn deleting_a_tenant_revokes_its_openbao_access_before_it_goes() {
    use tenantry_secrets::{SecretsApi, testing::DevServer};
    let (_, _, client) = admin().await;
    let bao = DevServer::start().await;
    let root = bao.platform_ready().await;
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("token");
    std::fs::write(&token_file, tenantry_secrets::testing::ROOT_TOKEN).unwrap();
    let run = run_id();
    let system = format!("op-e2e-system-{run}");
    let name = format!("op-e2e-bao-{run}");
    let _cleanup = Cleanup {
        tenants: vec![name.clone()],
        namespaces: vec![name.clone(), system.clone()],
    };
    create_system(&client, &system).await;
    let operator = start_operator_with(
        &system,
        &run,
        "op-e2e-bao",
        "127.0.0.1:0",
        4,
        Some(tenantry_secrets::ConnectionFlags {
            address: Some(bao.address.clone()),
            token_file: Some(token_file),
            ..Default::default()
        }),
    );
    let tenants: Api<Tenant> = Api::all(client.clone());
    let mut tenant = new_tenant(&name, &run);
    tenant.spec.secrets = Some(tenantry_api::tenant::Secrets {
        openbao: Some(true),
        pull_secret: Some(false),
    });
    tenants
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();
    wait_ready(&tenants, &name, Duration::from_secs(120)).await;
    let policy_name = format!("app-{name}");
    let policy = root
        .read_policy(&policy_name)
        .await
        .unwrap()
        .expect("policy");
    assert!(policy.contains(&format!("apps/{name}")), "{policy}");
    let role = root
        .read_role("kubernetes", &name)
        .await
        .unwrap()
        .expect("role");
    assert_eq!(role["token_policies"], json!([policy_name]));
    let (_, accessor) = bao.token_with(&policy_name).await;

    tenants
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Tenant to be gone", Duration::from_secs(180), || {
        let (tenants, name) = (tenants.clone(), name.clone());
        async move { tenants.get_opt(&name).await.ok()?.is_none().then_some(()) }
    })
    .await;
    assert_eq!(root.read_policy(&policy_name).await.unwrap(), None);
    assert_eq!(root.read_role("kubernetes", &name).await.unwrap(), None);
    assert_eq!(
        root.lookup_accessor(&accessor).await.unwrap(),
        None,
        "the token is revoked"
    );
    operator.stop().await;
}

/// One tenant whose spec cannot be applied (it names a namespace an older tenant holds) is
/// reported on its own Tenant, backs off alone, and neither holds up a tenant created after
/// it nor touches the older tenant's namespace, not even when it is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: set TENANTRY_E2E_KUBECONFIG and run with --ignored"]
async fn a_broken_tenant_never_holds_up_the_others() {
    let (_, _, client) = admin().await;
    let run = run_id();
    let system = format!("op-e2e-system-{run}");
    let older = format!("op-e2e-iso-{run}");
    let shared = format!("{older}-dev");
    let newer = format!("op-e2e-after-{run}");
    let _cleanup = Cleanup {
        tenants: vec![older.clone(), shared.clone(), newer.clone()],
        namespaces: vec![older.clone(), shared.clone(), newer.clone(), system.clone()],
    };
    create_system(&client, &system).await;
    let operator = start_operator(&system, &run, "op-e2e-iso");
    let tenants: Api<Tenant> = Api::all(client.clone());
    let mut first = new_tenant(&older, &run);
    first.spec.namespaces = vec![shared.clone()];
    tenants
        .create(&PostParams::default(), &first)
        .await
        .unwrap();
    wait_ready(&tenants, &older, Duration::from_secs(120)).await;

    // A tenant named after the older one's second namespace claims it by default.
    tenants
        .create(&PostParams::default(), &new_tenant(&shared, &run))
        .await
        .unwrap();
    let refused = eventually(
        "the claiming tenant to report its spec",
        Duration::from_secs(60),
        || {
            let (tenants, shared) = (tenants.clone(), shared.clone());
            async move {
                let t = tenants.get(&shared).await.ok()?;
                let status = t.status?;
                status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "False" && c.reason == "InvalidSpec")
                    .then_some(status)
            }
        },
    )
    .await;
    let error = refused.last_error.expect("the refusal names its field");
    assert_eq!(error.field.as_deref(), Some("spec.namespaces"), "{error:?}");
    assert!(error.message.contains(&older), "{error:?}");

    // A tenant created after the broken one is converged while it backs off.
    let started = Instant::now();
    tenants
        .create(&PostParams::default(), &new_tenant(&newer, &run))
        .await
        .unwrap();
    wait_ready(&tenants, &newer, Duration::from_secs(60)).await;
    eprintln!(
        "a tenant behind a broken one was Ready after {:?}",
        started.elapsed()
    );
    assert!(ready(&tenants.get(&older).await.unwrap()));

    // Deleting the broken tenant offboards nothing of the older one's.
    tenants
        .delete(&shared, &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the broken Tenant to be gone",
        Duration::from_secs(60),
        || {
            let (tenants, shared) = (tenants.clone(), shared.clone());
            async move { tenants.get_opt(&shared).await.ok()?.is_none().then_some(()) }
        },
    )
    .await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let kept = namespaces
        .get(&shared)
        .await
        .expect("the namespace is kept");
    assert!(kept.metadata.deletion_timestamp.is_none());
    assert_eq!(kept.labels().get(TENANT_LABEL), Some(&older));
    assert!(ready(&tenants.get(&older).await.unwrap()));

    for name in [&older, &newer] {
        tenants
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    eventually(
        "the tenants to be offboarded",
        Duration::from_secs(180),
        || {
            let (tenants, older, newer) = (tenants.clone(), older.clone(), newer.clone());
            async move {
                (tenants.get_opt(&older).await.ok()?.is_none()
                    && tenants.get_opt(&newer).await.ok()?.is_none())
                .then_some(())
            }
        },
    )
    .await;
    operator.stop().await;
}

/// Runs the operator this test binary is re-executed as by the failover test (not a test
/// on its own: without `TENANTRY_E2E_OPERATOR` it returns at once). A process, not a task,
/// so that killing it is a crash: nothing releases the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "an operator process for the failover test"]
async fn operator_process() {
    let Ok(spec) = std::env::var("TENANTRY_E2E_OPERATOR") else {
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let parts: Vec<&str> = spec.split(',').collect();
    let [system, run, identity, listen, concurrency] = parts[..] else {
        panic!("TENANTRY_E2E_OPERATOR={spec}: expected system,run,identity,listen,concurrency");
    };
    let concurrency = concurrency.parse().expect("a concurrency");
    let operator = start_operator_on(system, run, identity, listen, concurrency);
    let _ = operator.task.await;
}

/// A child operator process, killed (SIGKILL) when dropped.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_operator(system: &str, run: &str, identity: &str) -> Process {
    spawn_operator_on(system, run, identity, "127.0.0.1:0", 4)
}

fn spawn_operator_on(
    system: &str,
    run: &str,
    identity: &str,
    listen: &str,
    concurrency: u16,
) -> Process {
    let exe = std::env::current_exe().expect("the test binary");
    let child = std::process::Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "operator_process",
            "--test-threads",
            "1",
        ])
        .env(
            "TENANTRY_E2E_OPERATOR",
            format!("{system},{run},{identity},{listen},{concurrency}"),
        )
        .env("TENANTRY_E2E_KUBECONFIG", kubeconfig())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("an operator process starts");
    Process(child)
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("tenantry-operator")
        .await
        .ok()??
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: set TENANTRY_E2E_KUBECONFIG and run with --ignored"]
async fn a_standby_takes_over_within_the_lease_duration_when_the_leader_is_killed() {
    let (_, _, client) = admin().await;
    let run = run_id();
    let system = format!("op-e2e-system-{run}");
    let (first, second) = (format!("op-e2e-one-{run}"), format!("op-e2e-two-{run}"));
    let _cleanup = Cleanup {
        tenants: vec![first.clone(), second.clone()],
        namespaces: vec![first.clone(), second.clone(), system.clone()],
    };
    create_system(&client, &system).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &system);
    let mut processes = vec![
        ("op-e2e-a", spawn_operator(&system, &run, "op-e2e-a")),
        ("op-e2e-b", spawn_operator(&system, &run, "op-e2e-b")),
    ];
    let leader = eventually(
        "one operator to hold the lease",
        Duration::from_secs(60),
        || holder(&leases),
    )
    .await;
    eprintln!("leader: {leader}");

    // The leader reconciles.
    let tenants: Api<Tenant> = Api::all(client.clone());
    tenants
        .create(&PostParams::default(), &new_tenant(&first, &run))
        .await
        .unwrap();
    wait_ready(&tenants, &first, Duration::from_secs(120)).await;
    let leader = holder(&leases).await.expect("a leader");

    // Kill it (no graceful release); a new Tenant arrives meanwhile.
    let index = processes
        .iter()
        .position(|(id, _)| *id == leader)
        .expect("the leader is one of the two");
    let (_, killed) = processes.remove(index);
    let killed_at = Instant::now();
    drop(killed);
    tenants
        .create(&PostParams::default(), &new_tenant(&second, &run))
        .await
        .unwrap();
    let standby = processes[0].0;
    eventually(
        "the standby to take the lease",
        Duration::from_secs(LEASE_SECONDS + 10),
        || {
            let leases = leases.clone();
            async move { (holder(&leases).await.as_deref() == Some(standby)).then_some(()) }
        },
    )
    .await;
    let took_over = killed_at.elapsed();
    wait_ready(&tenants, &second, Duration::from_secs(120)).await;
    let reconciled = killed_at.elapsed();
    eprintln!(
        "leader {leader} killed; {standby} took the lease after {took_over:?} and had the new Tenant Ready after {reconciled:?}"
    );
    assert!(
        took_over <= Duration::from_secs(LEASE_SECONDS + 3),
        "the standby took over after {took_over:?}, lease duration {LEASE_SECONDS}s"
    );

    // The new leader offboards both.
    for name in [&first, &second] {
        tenants
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    eventually(
        "both Tenants and their namespaces to be gone",
        Duration::from_secs(180),
        || {
            let (tenants, namespaces) = (tenants.clone(), namespaces.clone());
            let names = [first.clone(), second.clone()];
            async move {
                for name in &names {
                    if tenants.get_opt(name).await.ok()?.is_some()
                        || namespaces.get_opt(name).await.ok()?.is_some()
                    {
                        return None;
                    }
                }
                Some(())
            }
        },
    )
    .await;
}

/// `/metrics` of an operator, as `name{labels}` → value.
async fn scrape(addr: &str) -> std::collections::BTreeMap<String, f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut out = std::collections::BTreeMap::new();
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return out;
    };
    let _ = stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await;
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text).await;
    for line in text.lines().filter(|l| l.starts_with("tenantry_operator_")) {
        if let Some((name, value)) = line.rsplit_once(' ')
            && let Ok(v) = value.parse()
        {
            out.insert(name.to_owned(), v);
        }
    }
    out
}

fn sum(metrics: &std::collections::BTreeMap<String, f64>, prefix: &str, verbs: &[&str]) -> f64 {
    metrics
        .iter()
        .filter(|(k, _)| {
            k.starts_with(prefix)
                && (verbs.is_empty() || verbs.iter().any(|v| k.contains(&format!("\"{v}\""))))
        })
        .map(|(_, v)| v)
        // An empty sum of f64 is -0.0.
        .fold(0.0, |a, b| a + b)
}

const WRITES: [&str; 4] = ["post", "put", "patch", "delete"];

/// Resident memory of a process: (now, peak) in MiB.
fn rss(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The figures of BENCHMARKS.md's Operator section:
///
/// ```sh
/// TENANTRY_E2E_KUBECONFIG=... TENANTRY_E2E_SCALE_TENANTS=200 cargo test -p tenantry-operator \
///   --test e2e -- --ignored --exact scale_cold_start_steady_state_and_drift_repair --nocapture
/// ```
///
/// N Tenants are created with no operator running; then an operator process starts (cold
/// start) and the time until all are Ready, the requests it sent and its memory are
/// measured; then a second operator process starts over the converged tenants (every
/// tenant reconciled once, nothing changed) and must write nothing; then the default-deny
/// NetworkPolicy of 50 tenants is deleted one after the other and the time until each is
/// back is measured. Everything is deleted at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement against a real cluster: set TENANTRY_E2E_KUBECONFIG"]
async fn scale_cold_start_steady_state_and_drift_repair() {
    let n: usize = std::env::var("TENANTRY_E2E_SCALE_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let concurrency: u16 = std::env::var("TENANTRY_E2E_SCALE_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let (_, _, client) = admin().await;
    let run = run_id();
    let system = format!("op-e2e-system-{run}");
    let names: Vec<String> = (0..n).map(|i| format!("op-e2e-s{i}-{run}")).collect();
    let _cleanup = Cleanup {
        tenants: names.clone(),
        namespaces: names.iter().cloned().chain([system.clone()]).collect(),
    };
    create_system(&client, &system).await;
    let tenants: Api<Tenant> = Api::all(client.clone());
    let created = Instant::now();
    futures::stream::iter(names.iter())
        .map(|name| {
            let tenants = tenants.clone();
            let t = new_tenant(name, &run);
            async move { tenants.create(&PostParams::default(), &t).await.unwrap() }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    eprintln!("{n} Tenants created in {:?}", created.elapsed());
    let selected = ListParams::default().labels(&format!("{SELECTOR_KEY}={run}"));
    let count_ready = || {
        let (tenants, selected) = (tenants.clone(), selected.clone());
        async move {
            tenants
                .list(&selected)
                .await
                .map(|l| l.items.iter().filter(|t| ready(t)).count())
                .unwrap_or(0)
        }
    };

    // Cold start.
    let port = tenantry_secrets::testing::free_port();
    let addr = format!("127.0.0.1:{port}");
    let first = spawn_operator_on(&system, &run, "op-e2e-a", &addr, concurrency);
    let pid = first.0.id();
    let started = Instant::now();
    let mut peak = 0.0_f64;
    loop {
        peak = peak.max(rss(pid).1);
        let done = count_ready().await;
        if done == n {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "only {done} of {n} Ready after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all_ready = started.elapsed();
    let metrics = scrape(&addr).await;
    let (now_rss, hwm) = rss(pid);
    let requests = sum(&metrics, "tenantry_operator_api_requests_total", &[]);
    let writes = sum(&metrics, "tenantry_operator_api_requests_total", &WRITES);
    let leases = sum(&metrics, "tenantry_operator_api_requests_total", &["lease"]);
    eprintln!(
        "COLD START: {n} tenants Ready after {all_ready:.2?} (concurrency {concurrency}); {requests} requests ({writes} writes, {leases} lease); RSS {now_rss:.1} MiB, peak {:.1} MiB",
        hwm.max(peak)
    );
    let mut verbs: Vec<String> = metrics
        .iter()
        .filter(|(k, _)| k.starts_with("tenantry_operator_api_requests_total"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    verbs.sort();
    eprintln!("  {}", verbs.join(" "));
    drop(first);

    // Steady state: a fresh operator over converged tenants reconciles each once and
    // writes nothing.
    let port = tenantry_secrets::testing::free_port();
    let addr = format!("127.0.0.1:{port}");
    let second = spawn_operator_on(&system, &run, "op-e2e-b", &addr, concurrency);
    let restarted = Instant::now();
    let reconciled = eventually(
        "every tenant to be reconciled by the second operator",
        Duration::from_secs(600),
        || {
            let addr = addr.clone();
            async move {
                let m = scrape(&addr).await;
                let r = sum(&m, "tenantry_operator_reconciles_total", &[]);
                (r >= n as f64).then_some(m)
            }
        },
    )
    .await;
    let pass = restarted.elapsed();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let settled = scrape(&addr).await;
    let requests = sum(&settled, "tenantry_operator_api_requests_total", &[]);
    let writes = sum(&settled, "tenantry_operator_api_requests_total", &WRITES);
    eprintln!(
        "STEADY: restart over {n} converged tenants: all reconciled after {pass:.2?} (incl. waiting {LEASE_SECONDS}s lease), {} reconciles, then 10 s idle: {requests} requests, {writes} writes (lease renewals apart)",
        sum(&reconciled, "tenantry_operator_reconciles_total", &[])
    );
    assert_eq!(writes, 0.0, "a steady state makes no writes: {settled:?}");

    // Drift repair latency.
    let mut latencies = Vec::new();
    for name in names.iter().take(50) {
        let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), name);
        let uid = policies.get("tenantry-default-deny").await.unwrap().uid();
        policies
            .delete("tenantry-default-deny", &DeleteParams::default())
            .await
            .unwrap();
        let deleted = Instant::now();
        loop {
            if let Ok(Some(p)) = policies.get_opt("tenantry-default-deny").await
                && p.uid() != uid
            {
                break;
            }
            assert!(
                deleted.elapsed() < Duration::from_secs(60),
                "{name} not repaired"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        latencies.push(deleted.elapsed());
    }
    latencies.sort();
    let m = scrape(&addr).await;
    eprintln!(
        "DRIFT: {} repairs, p50 {:.0?}, p99 {:.0?}, max {:.0?}; drift_repairs_total {}",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
        sum(&m, "tenantry_operator_drift_repairs_total", &[])
    );

    // Offboard everything through the operator, and wait for the namespaces to go
    // (`TENANTRY_E2E_SCALE_OFFBOARD=0` leaves it to the cleanup, which removes the
    // finalizers: a thousand offboardings take ten minutes).
    if std::env::var("TENANTRY_E2E_SCALE_OFFBOARD").as_deref() == Ok("0") {
        drop(second);
        return;
    }
    let deleting = Instant::now();
    futures::stream::iter(names.iter())
        .map(|name| {
            let tenants = tenants.clone();
            async move {
                let _ = tenants.delete(name, &DeleteParams::default()).await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    eventually(
        "every Tenant and namespace to be gone",
        Duration::from_secs(900),
        || {
            let (tenants, namespaces, selected, names) = (
                tenants.clone(),
                namespaces.clone(),
                selected.clone(),
                names.clone(),
            );
            async move {
                if !tenants.list(&selected).await.ok()?.items.is_empty() {
                    return None;
                }
                let live = namespaces.list(&ListParams::default()).await.ok()?;
                (!live.items.iter().any(|ns| names.contains(&ns.name_any()))).then_some(())
            }
        },
    )
    .await;
    eprintln!(
        "OFFBOARD: {n} tenants offboarded, namespaces gone, after {:.2?}",
        deleting.elapsed()
    );
    drop(second);
}

// ---- Flux through the tenant proxy (`flux.proxy`, issue 11 item 2) ----

/// The `tenantry` binary, for `tenantry proxy`: `TENANTRY_E2E_BIN`, else the one beside this
/// test's (`cargo build -p tenantry-cli` first).
fn tenantry_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TENANTRY_E2E_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("tenantry");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p tenantry-cli` first, or set TENANTRY_E2E_BIN",
        bin.display()
    );
    bin
}

fn kubectl() -> PathBuf {
    std::env::var_os("TENANTRY_E2E_KUBECTL").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/tenantry-kube/bin/kubectl")
        },
        PathBuf::from,
    )
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A CA and a serving certificate for 127.0.0.1 signed by it (openssl): `ca.crt`, `tls.crt`,
/// `tls.key` in `dir`.
fn loopback_pki(dir: &std::path::Path) {
    let sh = format!(
        "set -e; cd {dir}; \
         openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 1 -subj '/CN=f11 e2e CA' -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null; \
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls.key -out tls.csr -subj '/CN=127.0.0.1' 2>/dev/null; \
         printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext; \
         openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out tls.crt -days 1 -extfile ext 2>/dev/null",
        dir = dir.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &sh])
        .output()
        .expect("sh runs");
    assert!(out.status.success(), "openssl: {}", output_text(&out));
}

/// `tenantry proxy` as a local process (admin credentials: this test is about Flux's
/// kubeconfig, the proxy's own role is proven by the CLI's e2e), killed on drop.
struct ProxyProcess {
    child: std::process::Child,
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_proxy(dir: &std::path::Path, port: u16, platform: &std::path::Path) -> ProxyProcess {
    let child = std::process::Command::new(tenantry_bin())
        .args(["proxy", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--tls-cert")
        .arg(dir.join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.join("tls.key"))
        .arg("--config")
        .arg(platform)
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .env("TENANTRY_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("proxy.log")).unwrap())
        .spawn()
        .expect("tenantry proxy starts");
    let process = ProxyProcess { child };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = std::process::Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(dir.join("ca.crt"))
            .arg(format!("https://127.0.0.1:{port}/tenantry-proxy/readyz"))
            .output()
            .expect("curl runs");
        if String::from_utf8_lossy(&out.stdout) == "200" {
            return process;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy never became ready: {}",
            std::fs::read_to_string(dir.join("proxy.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Issue 11, item 2: with `flux.proxy` set, the operator keeps a kubeconfig Secret in the
/// tenant's primary namespace that reaches exactly the tenant's namespaces through a real
/// `tenantry proxy` with the real kubectl; its token is bound to the Secret, so deleting the
/// Secret kills it (TokenReview) and the operator writes a new one at once; deleting the
/// Tenant deletes it. `flux.proxy` is turned on while the operator runs, as a platform
/// change would: the Secret, and the watch that rewrites it at once, follow without a
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: set TENANTRY_E2E_KUBECONFIG and run with --ignored"]
async fn flux_reconciles_through_the_proxy_with_a_bound_token_the_operator_keeps() {
    use tenantry_api::{
        platform::FLUX_PROXY_KUBECONFIG_SECRET,
        tenant::{CosignIdentity, Delivery, FluxOci},
    };
    use tenantry_operator::flux_proxy;

    let (api, _endpoint, client) = admin().await;
    let run = run_id();
    let system = format!("f11-system-{run}");
    let name = format!("f11-{run}");
    let dev = format!("{name}-dev");
    let _cleanup = Cleanup {
        tenants: vec![name.clone()],
        namespaces: vec![name.clone(), dev.clone(), system.clone()],
    };
    let dir = tempfile::tempdir().unwrap();
    loopback_pki(dir.path());
    let ca = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{port}");
    let ca_yaml: String = ca.lines().map(|l| format!("      {l}\n")).collect();
    let platform = format!(
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\nflux:\n  proxy:\n    url: {url}\n    tokenExpiration: 10m\n    caBundle: |\n{ca_yaml}"
    );
    let platform_file = dir.path().join("tenantry.yaml");
    std::fs::write(&platform_file, &platform).unwrap();
    create_system(&client, &system).await;
    let proxy = start_proxy(dir.path(), port, &platform_file);

    let tenants: Api<Tenant> = Api::all(client.clone());
    let mut tenant = new_tenant(&name, &run);
    tenant.spec.namespaces = vec![dev.clone()];
    tenant.spec.delivery = Some(Delivery::FluxOci(FluxOci {
        url: Some("oci://ghcr.io/acme/f11-deploy".into()),
        verify: Some(CosignIdentity {
            issuer: Some("^https://token\\.actions\\.githubusercontent\\.com$".into()),
            subject: Some("^https://github\\.com/acme/.*$".into()),
            ..CosignIdentity::default()
        }),
        ..FluxOci::default()
    }));
    tenants
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();
    let operator = start_operator(&system, &run, "f11-op");
    wait_ready(&tenants, &name, Duration::from_secs(90)).await;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &system);
    config_maps
        .patch(
            "tenantry-config",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"tenantry.yaml": platform}})),
        )
        .await
        .unwrap();

    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &name);
    let kubeconfig_of = |s: &k8s_openapi::api::core::v1::Secret| {
        s.data
            .as_ref()
            .and_then(|d| d.get(flux_proxy::KEY))
            .map(|b| String::from_utf8(b.0.clone()).unwrap())
    };
    let first = eventually(
        "the operator to write Flux's proxy kubeconfig",
        Duration::from_secs(90),
        || {
            let secrets = secrets.clone();
            async move {
                let s = secrets.get_opt(FLUX_PROXY_KUBECONFIG_SECRET).await.ok()??;
                kubeconfig_of(&s).map(|k| (s, k))
            }
        },
    )
    .await;
    let (secret, text) = first;
    assert!(text.contains(&format!("server: {url}")), "{text}");
    // The Kustomization reconciles through it, still as the tenant's ServiceAccount.
    let kustomizations = ops::rendered_kinds(&api.discover().await.unwrap())
        .into_iter()
        .find(|t| t.kind == "Kustomization")
        .cloned()
        .expect("the Flux CRDs are installed (testdata/crds)");
    let kustomization = api
        .get(&kustomizations, Some(&name), &name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        kustomization["spec"]["kubeConfig"]["secretRef"]["name"],
        FLUX_PROXY_KUBECONFIG_SECRET
    );
    assert_eq!(kustomization["spec"]["serviceAccountName"], name.as_str());

    // The kubeconfig, with the real kubectl through the real proxy: exactly the tenant's
    // namespaces.
    let file = dir.path().join("flux.kubeconfig");
    std::fs::write(&file, &text).unwrap();
    let listed = eventually(
        "kubectl through the proxy to list the tenant's namespaces",
        Duration::from_secs(30),
        || {
            let file = file.clone();
            async move {
                let out = std::process::Command::new(kubectl())
                    .arg("--kubeconfig")
                    .arg(&file)
                    .args(["get", "namespaces", "-o", "name"])
                    .output()
                    .expect("kubectl runs");
                let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_owned)
                    .collect();
                names.sort();
                (out.status.success() && names.len() == 2).then_some(names)
            }
        },
    )
    .await;
    assert_eq!(
        listed,
        vec![format!("namespace/{name}"), format!("namespace/{dev}")]
    );
    let token = credential::token_of(&text).unwrap();
    let review = api.review_token(&token).await.unwrap();
    assert_eq!(
        review.username,
        Some(format!("system:serviceaccount:{name}:{name}"))
    );
    let status = wait_ready(&tenants, &name, Duration::from_secs(60)).await;
    let condition = status
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == flux_proxy::CONDITION)
        .expect("the FluxProxyKubeconfig condition");
    assert_eq!(condition.status, "True", "{condition:?}");

    // Deleting the Secret kills its token, and the operator writes a new Secret with a new
    // token at once.
    secrets
        .delete(FLUX_PROXY_KUBECONFIG_SECRET, &DeleteParams::default())
        .await
        .unwrap();
    token_dies(
        &api,
        &token,
        "the old token to fail a TokenReview",
        Duration::from_secs(30),
    )
    .await;
    let old_uid = secret.metadata.uid.clone().unwrap();
    let renewed = eventually(
        "the operator to write the Secret again",
        Duration::from_secs(30),
        || {
            let (secrets, old_uid) = (secrets.clone(), old_uid.clone());
            async move {
                let s = secrets.get_opt(FLUX_PROXY_KUBECONFIG_SECRET).await.ok()??;
                (s.metadata.uid.as_deref() != Some(&old_uid))
                    .then(|| kubeconfig_of(&s))
                    .flatten()
            }
        },
    )
    .await;
    let new_token = credential::token_of(&renewed).unwrap();
    assert_ne!(new_token, token);
    assert!(api.review_token(&new_token).await.unwrap().authenticated);
    assert!(!api.review_token(&token).await.unwrap().authenticated);

    // Offboarding deletes it, and its token dies.
    tenants
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    token_dies(
        &api,
        &new_token,
        "the renewed token to die with the offboarded tenant",
        Duration::from_secs(120),
    )
    .await;
    eventually("the Tenant to go", Duration::from_secs(180), || {
        let tenants = tenants.clone();
        let name = name.clone();
        async move { tenants.get_opt(&name).await.ok()?.is_none().then_some(()) }
    })
    .await;
    operator.stop().await;
    drop(proxy);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(&system, &DeleteParams::default()).await;
}

/// The RBAC finding behind the operator's ClusterRole for `flux.proxy`, on the real API
/// server, with exactly those rules (from `tenantry operator manifests`) bound to a fresh
/// ServiceAccount: a server-side-apply create of the Secret is allowed by `create` limited
/// by resourceNames (the API server checks create with the object's name when an apply
/// creates), and refused without `create`; a POST create of the same name is refused (no
/// name to check); another name is refused; a list needs the metadata.name field selector;
/// a TokenRequest bound to the Secret is allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: set TENANTRY_E2E_KUBECONFIG and run with --ignored"]
async fn the_operators_flux_proxy_rules_allow_apply_create_of_its_secret_and_nothing_else() {
    use tenantry_api::platform::FLUX_PROXY_KUBECONFIG_SECRET;
    use tenantry_core::{DesiredObject, Layer};
    use tenantry_operator::manifests::{ManifestOptions, cluster_role_rules, documents};

    let (api, _endpoint, client) = admin().await;
    let run = run_id();
    let ns = format!("f11-rbac-{run}");
    let _cleanup = Cleanup {
        tenants: Vec::new(),
        namespaces: vec![ns.clone()],
    };
    let docs = documents(&ManifestOptions {
        platform_config: Some(
            "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\nflux:\n  proxy:\n    url: https://proxy.example:8443\n"
                .to_owned(),
        ),
        ..ManifestOptions::default()
    })
    .unwrap();
    let rules: Vec<serde_json::Value> = cluster_role_rules(&docs)
        .unwrap()
        .iter()
        .filter(|r| {
            r["resources"] == json!(["secrets"])
                || r["resources"] == json!(["serviceaccounts/token"])
        })
        .cloned()
        .collect();
    assert_eq!(rules.len(), 2, "{rules:?}");
    let apply = |object: serde_json::Value| {
        let client = client.clone();
        async move {
            let kind = object["kind"].as_str().unwrap().to_owned();
            let name = object["metadata"]["name"].as_str().unwrap().to_owned();
            let (group, version) = match object["apiVersion"].as_str().unwrap().split_once('/') {
                Some((g, v)) => (g.to_owned(), v.to_owned()),
                None => (
                    String::new(),
                    object["apiVersion"].as_str().unwrap().to_owned(),
                ),
            };
            let resource = kube::api::ApiResource {
                group,
                version,
                api_version: object["apiVersion"].as_str().unwrap().to_owned(),
                plural: format!("{}s", kind.to_ascii_lowercase()),
                kind,
            };
            let api: Api<kube::api::DynamicObject> = match object["metadata"]["namespace"].as_str()
            {
                Some(ns) => Api::namespaced_with(client, ns, &resource),
                None => Api::all_with(client, &resource),
            };
            api.patch(
                &name,
                &PatchParams::apply("f11-e2e").force(),
                &Patch::Apply(&object),
            )
            .await
            .unwrap();
        }
    };
    apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})).await;
    apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "op", "namespace": ns}})).await;
    apply(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "op", "namespace": ns}, "rules": rules}),
    )
    .await;
    apply(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "op", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "op"},
        "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": ns}]}),
    )
    .await;
    let user = format!("system:serviceaccount:{ns}:op");
    let as_op = api
        .impersonate(
            &user,
            &[
                "system:serviceaccounts".to_owned(),
                "system:authenticated".to_owned(),
            ],
        )
        .unwrap();
    let secrets = credential::secrets();
    let secret = |name: &str| DesiredObject {
        layer: Layer::Delivery,
        api_version: "v1",
        kind: "Secret",
        namespace: Some(ns.clone()),
        name: name.to_owned(),
        body: json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": ns}}),
    };
    let forbidden =
        |r: Result<serde_json::Value, ClusterError>| matches!(r, Err(e) if e.code() == Some(403));
    // Server-side apply creates the Secret of that name (RBAC caches may lag a moment).
    let created = eventually(
        "apply-create under create-by-name",
        Duration::from_secs(20),
        || {
            let (as_op, secrets, object) = (&as_op, &secrets, secret(FLUX_PROXY_KUBECONFIG_SECRET));
            async move { as_op.apply(secrets, &object, false).await.ok() }
        },
    )
    .await;
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
    // A TokenRequest for a ServiceAccount of the namespace, bound to it.
    let token = credential::mint_bound(&as_op, &ns, "op", FLUX_PROXY_KUBECONFIG_SECRET, &uid, 600)
        .await
        .expect("serviceaccounts/token create is granted");
    assert!(api.review_token(&token.token).await.unwrap().authenticated);
    // Any other name: refused.
    let other = as_op.apply(&secrets, &secret("f11-other"), false).await;
    assert!(forbidden(other.clone()), "{other:?}");
    // Listing: only with the name as field selector.
    let typed: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(as_op.client().clone(), &ns);
    let by_name = typed
        .list_metadata(
            &ListParams::default().fields(&format!("metadata.name={FLUX_PROXY_KUBECONFIG_SECRET}")),
        )
        .await
        .expect("a list by name is allowed");
    assert_eq!(by_name.items.len(), 1);
    assert!(typed.list_metadata(&ListParams::default()).await.is_err());
    // The operator's watch is cluster-wide: the same rule in a ClusterRole allows a list and
    // a watch across all namespaces by that name, and no other listing.
    let cluster_role = format!("f11-rbac-{run}");
    let secret_rule: Vec<serde_json::Value> = rules
        .iter()
        .filter(|r| r["resources"] == json!(["secrets"]))
        .cloned()
        .collect();
    apply(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": cluster_role}, "rules": secret_rule}),
    )
    .await;
    apply(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": cluster_role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": ns}]}))
    .await;
    let everywhere: Api<k8s_openapi::api::core::v1::Secret> = Api::all(as_op.client().clone());
    let by_name = format!("metadata.name={FLUX_PROXY_KUBECONFIG_SECRET}");
    eventually(
        "a cluster-wide list by name",
        Duration::from_secs(20),
        || {
            let (everywhere, by_name) = (everywhere.clone(), by_name.clone());
            async move {
                everywhere
                    .list_metadata(&ListParams::default().fields(&by_name))
                    .await
                    .ok()
            }
        },
    )
    .await;
    assert!(
        everywhere
            .list_metadata(&ListParams::default())
            .await
            .is_err()
    );
    let watch = everywhere
        .watch_metadata(&kube::api::WatchParams::default().fields(&by_name), "0")
        .await
        .expect("a cluster-wide watch by name is allowed");
    futures::pin_mut!(watch);
    let first = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("the watch sends the existing Secret");
    assert!(
        matches!(first, Some(Ok(kube::api::WatchEvent::Added(_)))),
        "{first:?}"
    );
    for kind in ["clusterrolebindings", "clusterroles"] {
        let resource = kube::api::ApiResource {
            group: "rbac.authorization.k8s.io".into(),
            version: "v1".into(),
            api_version: "rbac.authorization.k8s.io/v1".into(),
            kind: String::new(),
            plural: kind.into(),
        };
        let api: Api<kube::api::DynamicObject> = Api::all_with(client.clone(), &resource);
        let _ = api.delete(&cluster_role, &DeleteParams::default()).await;
    }
    // Deleted (allowed by name), a POST create of the same name is refused: RBAC cannot
    // limit a POST by name, which is why the operator creates by server-side apply.
    as_op
        .delete(
            &secrets,
            Some(&ns),
            FLUX_PROXY_KUBECONFIG_SECRET,
            None,
            false,
        )
        .await
        .expect("delete by name is allowed");
    let posted = as_op
        .create(
            &secrets,
            Some(&ns),
            &secret(FLUX_PROXY_KUBECONFIG_SECRET).body,
        )
        .await;
    assert!(forbidden(posted.clone()), "{posted:?}");
    // Without `create`, an apply that would create is refused: the API server does check
    // create on an apply-create, not only patch.
    let mut patch_only = rules.clone();
    for rule in &mut patch_only {
        if rule["resources"] == json!(["secrets"]) {
            rule["verbs"] = json!(["get", "list", "watch", "patch", "delete"]);
        }
    }
    apply(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "op", "namespace": ns}, "rules": patch_only}),
    )
    .await;
    eventually(
        "apply-create refused without create",
        Duration::from_secs(20),
        || {
            let (as_op, secrets, object) = (&as_op, &secrets, secret(FLUX_PROXY_KUBECONFIG_SECRET));
            async move {
                let r = as_op.apply(secrets, &object, false).await;
                if r.is_ok() {
                    // Allowed by a stale RBAC cache: undo and look again.
                    let _ = as_op
                        .delete(
                            secrets,
                            Some(&object.namespace.clone().unwrap()),
                            &object.name,
                            None,
                            false,
                        )
                        .await;
                    return None;
                }
                forbidden(r).then_some(())
            }
        },
    )
    .await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
}
