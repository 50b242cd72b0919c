//! The namespace watch cache against a real API server (ignored unless asked for).
//!
//! A webhook cannot be called back from a cluster to a test process, so this test checks the
//! part that needs a cluster: the manifests' RBAC is enough for the watches (the cache runs
//! impersonating the webhook's ServiceAccount, with nothing but the printed ClusterRole), the
//! cache syncs, sees a labelled namespace's tenant and Pod Security labels within a deadline,
//! learns the tenant's own registries from its `GuardrailParameters` (its registry then
//! admitted, another tenant's refused), follows a relabel, and forgets the namespace once it
//! is deleted.
//!
//! Run with `TENANTRY_E2E_KUBECONFIG=/path/to/cluster-admin.kubeconfig cargo test -p
//! tenantry-admission --test e2e_cluster -- --ignored`. When the variable is set, anything that
//! goes wrong fails the test: it never skips.

use std::{
    collections::BTreeMap,
    future::Future,
    path::PathBuf,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use k8s_openapi::api::{
    core::v1::{Namespace, ServiceAccount},
    rbac::v1::{ClusterRole, ClusterRoleBinding},
};
use kube::{
    Api, Client, Resource,
    api::{DeleteParams, DynamicObject, ObjectMeta, Patch, PatchParams},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tenantry_admission::{
    EngineValidator, NamespaceCache, NamespaceScope, Watched, answer,
    manifests::{ManifestOptions, documents},
    watch,
};
use tenantry_api::Platform;
use tenantry_core::PlatformContext;
use tenantry_core::render::guardrails::GuardrailParams;
use tenantry_policy::{Level, NamespaceLabels};

const DEADLINE: Duration = Duration::from_secs(60);
const FIELD_MANAGER: &str = "tenantry-e2e";

fn kubeconfig() -> PathBuf {
    let path = std::env::var_os("TENANTRY_E2E_KUBECONFIG").expect(
        "TENANTRY_E2E_KUBECONFIG must name a cluster-admin kubeconfig of a real cluster \
         (run this test with --ignored only then)",
    );
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "TENANTRY_E2E_KUBECONFIG={} is not a file",
        path.display()
    );
    path
}

async fn apply<K>(client: &Client, object: &Value)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let typed: K = serde_json::from_value(object.clone()).expect("manifest matches its type");
    let name = typed.meta().name.clone().expect("named");
    Api::<K>::all(client.clone())
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&typed),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {} {name}: {e}", K::kind(&())));
}

/// Install the `GuardrailParameters` CRD (as `tenantry policy vap` prints it) and wait until
/// it is served. Left installed: other tests on the same API server may be using it.
async fn ensure_params_crd(admin: &Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crd = tenantry_policy::vap::params_crd();
    let name = crd["metadata"]["name"].as_str().unwrap().to_owned();
    apply::<CustomResourceDefinition>(admin, &crd).await;
    wait_for_async("parameters CRD established", || {
        let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
        let name = name.clone();
        async move {
            crds.get(&name).await.ok().is_some_and(|c| {
                c.status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            })
        }
    })
    .await;
}

async fn wait_for_async<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let start = Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A Pod CREATE review in `namespace` that every default policy admits, but for its image.
fn pod_review(namespace: &str, image: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "e2e", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "web", "namespace": namespace, "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web", "namespace": namespace},
                "spec": {
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "web", "image": image,
                        "securityContext": {"allowPrivilegeEscalation": false,
                            "capabilities": {"drop": ["ALL"]}},
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                            "limits": {"memory": "16Mi"}}}]}},
        },
    })
}

/// The `enforce` level of a cached namespace, read as the engine reads it.
fn enforced(entry: &tenantry_admission::NamespaceEntry) -> Option<Level> {
    NamespaceLabels::read(&entry.info.labels).enforce.level
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{what}: {:?}", start.elapsed());
}

/// Run `body`, then `cleanup` whatever happened, then fail if `body` failed.
async fn with_cleanup<F, C>(body: F, cleanup: C)
where
    F: Future<Output = ()> + Send + 'static,
    C: Future<Output = ()>,
{
    let result = tokio::spawn(body).await;
    cleanup.await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs TENANTRY_E2E_KUBECONFIG: a cluster-admin kubeconfig of a real cluster"]
async fn watch_cache_follows_namespace_labels_on_a_real_cluster() {
    let path = kubeconfig();
    tenantry_admission::install_crypto_provider();
    let admin = watch::client_from_kubeconfig(&path)
        .await
        .expect("client from TENANTRY_E2E_KUBECONFIG");
    let version = admin
        .apiserver_version()
        .await
        .expect("the API server answers /version");
    eprintln!("cluster: {} {}", version.git_version, version.platform);

    let suffix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 1_000_000_000;
    let system_ns = format!("tenantry-e2e-system-{suffix}");
    let rbac_name = format!("tenantry-webhook-e2e-{suffix}");
    let tenant_ns = format!("tenantry-e2e-tenant-{suffix}");
    let tenant = format!("g14-e2e-{suffix}");
    let params_name = format!("tenantry-{tenant}");

    // The manifests' RBAC, renamed so that it cannot touch a real installation.
    // Next to the policies (`--with-vap`): the role then reads Tenantry's policies and
    // bindings as well.
    let engine = tenantry_policy::Engine::new(&Platform::default());
    let vap_opts = tenantry_policy::vap::VapOptions::default();
    let mut opts = ManifestOptions::new(Platform::default().tenant_label());
    opts.namespace = system_ns.clone();
    opts.policies = tenantry_policy::vap::generate(&engine, &vap_opts);
    let docs = documents(&opts);
    let registries_policy = tenantry_policy::vap::generate_tenants(&engine, &[], &vap_opts)
        .into_iter()
        .find(|p| p["metadata"]["name"] == "tenantry-allowed-registries")
        .expect("the per-tenant registries policy");
    let doc = move |kind: &str| {
        docs.iter()
            .find(|d| d.object["kind"] == kind)
            .unwrap_or_else(|| panic!("manifests have a {kind}"))
            .object
            .clone()
    };
    let mut role = doc("ClusterRole");
    role["metadata"]["name"] = json!(rbac_name);
    let mut binding = doc("ClusterRoleBinding");
    binding["metadata"]["name"] = json!(rbac_name);
    binding["roleRef"]["name"] = json!(rbac_name);

    let cleanup_client = admin.clone();
    let (cleanup_system_ns, cleanup_rbac, cleanup_tenant_ns, cleanup_params) = (
        system_ns.clone(),
        rbac_name.clone(),
        tenant_ns.clone(),
        params_name.clone(),
    );
    let binding_name =
        tenantry_core::render::guardrails::binding_name("tenantry-allowed-registries", &tenant);
    let cleanup_binding = binding_name.clone();
    let body = async move {
        apply::<Namespace>(&admin, &doc("Namespace")).await;
        let sa: ServiceAccount = serde_json::from_value(doc("ServiceAccount")).unwrap();
        Api::<ServiceAccount>::namespaced(admin.clone(), &system_ns)
            .patch(
                "tenantry-webhook",
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&sa),
            )
            .await
            .expect("applying the ServiceAccount");
        apply::<ClusterRole>(&admin, &role).await;
        apply::<ClusterRoleBinding>(&admin, &binding).await;
        ensure_params_crd(&admin).await;

        // The cache runs as the webhook's ServiceAccount: the printed RBAC must suffice.
        let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        config.auth_info.impersonate = Some(format!(
            "system:serviceaccount:{system_ns}:tenantry-webhook"
        ));
        config.auth_info.impersonate_groups = Some(vec![
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{system_ns}"),
            "system:authenticated".to_owned(),
        ]);
        let as_webhook = Client::try_from(config).unwrap();
        let ctx = PlatformContext::new(Platform::default()).unwrap();
        let cache = NamespaceCache::new(&ctx);
        let watcher = tokio::spawn(watch::watch_cluster(as_webhook, cache.clone(), true));
        // RBAC propagation can take a moment; the watch retries until it may list.
        wait_for("initial sync", || cache.is_synced()).await;
        assert!(
            cache.get("kube-system").is_some(),
            "the initial list has kube-system"
        );
        assert!(matches!(
            cache.scope("kube-system"),
            NamespaceScope::Platform { .. }
        ));

        let namespaces = Api::<Namespace>::all(admin.clone());
        let labelled = |level: &str| Namespace {
            metadata: ObjectMeta {
                name: Some(tenant_ns.clone()),
                labels: Some(BTreeMap::from([
                    ("tenantry.dev/tenant".to_owned(), tenant.clone()),
                    (
                        "pod-security.kubernetes.io/enforce".to_owned(),
                        level.to_owned(),
                    ),
                ])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        namespaces
            .patch(
                &tenant_ns,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&labelled("baseline")),
            )
            .await
            .expect("creating the tenant namespace");
        wait_for("new namespace seen", || {
            cache
                .get(&tenant_ns)
                .is_some_and(|e| enforced(&e) == Some(Level::Baseline))
        })
        .await;
        match cache.scope(&tenant_ns) {
            NamespaceScope::Tenant {
                namespace,
                tenant: view,
            } => {
                assert_eq!(namespace.tenant.as_deref(), Some(tenant.as_str()));
                assert!(namespace.known);
                assert_eq!(
                    view.expect("tenant view").namespaces,
                    vec![tenant_ns.clone()]
                );
            }
            other => panic!("{tenant_ns} should be a tenant namespace: {other:?}"),
        }

        // The tenant's own registries, from its parameters (as `render` writes them).
        let validator = EngineValidator::new(&Platform::default());
        let judge = |image: &str| {
            let review = pod_review(&tenant_ns, image);
            answer(&cache, &validator, &serde_json::to_vec(&review).unwrap())
                .unwrap()
                .denied_checks
        };
        let own = format!("ghcr.io/{tenant}");
        let params_api: Api<DynamicObject> =
            Api::all_with(admin.clone(), &watch::params_resource());
        let params = GuardrailParams::new(
            &tenant,
            std::slice::from_ref(&own),
            &Default::default(),
            &Default::default(),
            &Default::default(),
        )
        .to_object("tenantry.dev", &params_name);
        params_api
            .patch(
                &params_name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&params),
            )
            .await
            .expect("applying the tenant's GuardrailParameters");
        wait_for("parameters seen", || {
            cache
                .tenant(&tenant)
                .is_some_and(|t| t.registries == [own.clone()])
        })
        .await;
        assert!(judge(&format!("{own}/web:1")).is_empty());
        assert_eq!(
            judge("ghcr.io/g14-other-tenant/web:1"),
            ["registry-not-allowed"]
        );

        // Next to the policies: once the per-tenant policy, the parameters and a Deny binding
        // of the tenant are all there, the API server refuses the foreign image and the
        // webhook leaves it (one message for one fault); without the binding, the webhook
        // judges it again.
        let next_to_vap = EngineValidator::new(&Platform::default()).with_vap();
        let judge_next = |image: &str| {
            let review = pod_review(&tenant_ns, image);
            answer(&cache, &next_to_vap, &serde_json::to_vec(&review).unwrap())
                .unwrap()
                .denied_checks
        };
        let foreign = "ghcr.io/g14-other-tenant/web:1";
        assert_eq!(judge_next(foreign), ["registry-not-allowed"]);
        let policies: Api<DynamicObject> =
            Api::all_with(admin.clone(), &watch::watched_resource(Watched::Policies));
        let bindings: Api<DynamicObject> =
            Api::all_with(admin.clone(), &watch::watched_resource(Watched::Bindings));
        for (api, object) in [
            (&policies, registries_policy.clone()),
            (
                &bindings,
                tenantry_core::render::guardrails::tenant_binding(
                    "tenantry-allowed-registries",
                    &tenant,
                    "tenantry.dev/tenant",
                    &params_name,
                    Default::default(),
                ),
            ),
        ] {
            let name = object["metadata"]["name"].as_str().unwrap().to_owned();
            api.patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await
            .unwrap_or_else(|e| panic!("applying {name}: {e}"));
        }
        wait_for("the tenant seen bound", || {
            cache
                .tenant(&tenant)
                .is_some_and(|t| t.vap_bound == ["allowed-registries"])
        })
        .await;
        assert!(judge_next(foreign).is_empty(), "judged twice");
        // And the API server does refuse it, naming the check.
        let pod = pod_review(&tenant_ns, foreign)["request"]["object"].clone();
        let pods: Api<DynamicObject> = Api::namespaced_with(
            admin.clone(),
            &tenant_ns,
            &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
        );
        let dry_run = kube::api::PostParams {
            dry_run: true,
            ..Default::default()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let object: DynamicObject = serde_json::from_value(pod.clone()).unwrap();
            match pods.create(&dry_run, &object).await {
                Err(kube::Error::Api(status))
                    if status.message.contains("registry-not-allowed") =>
                {
                    assert!(
                        status.message.contains("ValidatingAdmissionPolicy"),
                        "{}",
                        status.message
                    );
                    break;
                }
                other => assert!(
                    std::time::Instant::now() < deadline,
                    "the API server never refused the foreign image: {other:?}"
                ),
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        bindings
            .delete(&binding_name, &DeleteParams::default())
            .await
            .expect("deleting the binding");
        wait_for("the binding's removal seen", || {
            cache
                .tenant(&tenant)
                .is_some_and(|t| t.vap_bound.is_empty())
        })
        .await;
        assert_eq!(judge_next(foreign), ["registry-not-allowed"]);
        params_api
            .delete(&params_name, &DeleteParams::default())
            .await
            .expect("deleting the parameters");
        wait_for("parameters gone", || {
            cache
                .tenant(&tenant)
                .is_some_and(|t| t.registries.is_empty())
        })
        .await;

        namespaces
            .patch(
                &tenant_ns,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&labelled("restricted")),
            )
            .await
            .expect("relabelling the tenant namespace");
        wait_for("relabel seen", || {
            cache
                .get(&tenant_ns)
                .is_some_and(|e| enforced(&e) == Some(Level::Restricted))
        })
        .await;

        namespaces
            .delete(&tenant_ns, &DeleteParams::default())
            .await
            .expect("deleting the tenant namespace");
        wait_for("deletion seen", || cache.get(&tenant_ns).is_none()).await;
        watcher.abort();
    };
    let cleanup = async move {
        let _ = Api::<DynamicObject>::all_with(
            cleanup_client.clone(),
            &watch::watched_resource(Watched::Bindings),
        )
        .delete(&cleanup_binding, &DeleteParams::default())
        .await;
        // The per-tenant policy: it judges nothing without a binding, and the test made it.
        let _ = Api::<DynamicObject>::all_with(
            cleanup_client.clone(),
            &watch::watched_resource(Watched::Policies),
        )
        .delete("tenantry-allowed-registries", &DeleteParams::default())
        .await;
        let _ = Api::<DynamicObject>::all_with(cleanup_client.clone(), &watch::params_resource())
            .delete(&cleanup_params, &DeleteParams::default())
            .await;
        let namespaces = Api::<Namespace>::all(cleanup_client.clone());
        for ns in [&cleanup_tenant_ns, &cleanup_system_ns] {
            let _ = namespaces.delete(ns, &DeleteParams::default()).await;
        }
        let _ = Api::<ClusterRoleBinding>::all(cleanup_client.clone())
            .delete(&cleanup_rbac, &DeleteParams::default())
            .await;
        let _ = Api::<ClusterRole>::all(cleanup_client)
            .delete(&cleanup_rbac, &DeleteParams::default())
            .await;
    };
    with_cleanup(body, cleanup).await;
}
