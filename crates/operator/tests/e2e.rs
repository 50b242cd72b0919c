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

use k8s_openapi::{
    api::{
        core::v1::{ConfigMap, Namespace, ResourceQuota},
        networking::v1::NetworkPolicy,
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, CustomResourceExt, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use tenantry_api::{Tenant, TenantSpec, tenant::Quota};
use tenantry_cluster::{KubeconfigSource, ops::Waits};
use tenantry_operator::{Options, leader::LeaseOptions, platform::ConfigSource};

const SELECTOR_KEY: &str = "tenantry.dev/e2e-operator";

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

/// Removes what a failed run leaves (the Tenant's finalizer would otherwise keep it forever
/// once no operator runs), on every exit.
struct Cleanup {
    tenant: String,
    namespaces: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let tenant = self.tenant.clone();
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
                let tenants: Api<Tenant> = Api::all(client.clone());
                let _ = tenants
                    .patch(
                        &tenant,
                        &PatchParams::default(),
                        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
                    )
                    .await;
                let _ = tenants.delete(&tenant, &DeleteParams::default()).await;
                let all: Api<Namespace> = Api::all(client);
                for ns in namespaces {
                    let _ = all.delete(&ns, &DeleteParams::default()).await;
                }
            });
        })
        .join();
    }
}

struct Operator {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), tenantry_operator::OperatorError>>,
}

fn start_operator(system: &str, run: &str, identity: &str) -> Operator {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = Options {
        kubeconfig: Some(kubeconfig()),
        context: None,
        config: ConfigSource {
            namespace: system.to_owned(),
            name: "tenantry-config".to_owned(),
        },
        listen: "127.0.0.1:0".parse().unwrap(),
        lease: Some(LeaseOptions {
            namespace: system.to_owned(),
            name: "tenantry-operator".to_owned(),
            identity: identity.to_owned(),
            duration_seconds: 6,
            grace_seconds: 2,
        }),
        tenant_selector: Some(format!("{SELECTOR_KEY}={run}")),
        concurrency: 4,
        waits: Waits {
            timeout: Duration::from_secs(60),
            interval: Duration::from_millis(200),
        },
    };
    let task = tokio::spawn(tenantry_operator::run(options, async {
        let _ = stopped.await;
    }));
    Operator { stop, task }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: set TENANTRY_E2E_KUBECONFIG and run with --ignored"]
async fn a_tenant_object_is_converged_repaired_updated_and_offboarded() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (api, _) = tenantry_cluster::connect(&KubeconfigSource {
        path: Some(kubeconfig()),
        context: None,
    })
    .await
    .expect("the kubeconfig connects");
    let client = api.client().clone();
    install_crd(&client).await;
    let run = run_id();
    let system = format!("op-e2e-system-{run}");
    let name = format!("op-e2e-shop-{run}");
    let _cleanup = Cleanup {
        tenant: name.clone(),
        namespaces: vec![name.clone(), system.clone()],
    };
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": system}})).unwrap(),
        )
        .await
        .expect("the operator's namespace is created");
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &system);
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "tenantry-config"},
                "data": {"tenantry.yaml": "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\n"},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let operator = start_operator(&system, &run, "op-e2e-a");

    // Create → Ready, with every layer present.
    let tenants: Api<Tenant> = Api::all(client.clone());
    let mut tenant = Tenant::new(&name, TenantSpec::default());
    tenant.metadata.labels = Some([(SELECTOR_KEY.to_owned(), run.clone())].into());
    let started = Instant::now();
    tenants
        .create(&PostParams::default(), &tenant)
        .await
        .expect("the Tenant is accepted");
    let live = eventually("the Tenant to be Ready", Duration::from_secs(120), || {
        let tenants = tenants.clone();
        let name = name.clone();
        async move { tenants.get(&name).await.ok().filter(ready) }
    })
    .await;
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

    let _ = operator.stop.send(());
    operator
        .task
        .await
        .unwrap()
        .expect("the operator stops cleanly");
}
