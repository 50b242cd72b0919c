//! Per-credential revocation against a real API server: what the bound-Secret design
//! promises is only true if the server enforces it, so this asks the server itself.
//!
//! Run with a cluster-admin kubeconfig of a disposable cluster:
//!
//! ```sh
//! TENANTRY_E2E_KUBECONFIG=$HOME/.kube/e2e.yaml cargo test -p tenantry-cluster --test credentials_e2e -- --ignored --test-threads 1
//! ```
//!
//! Each test onboards a fresh tenant (layers whose CRDs are not served are skipped) and
//! offboards it on the way out.

use std::{
    path::PathBuf,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use tenantry_api::{
    Platform, TenantSpec,
    tenant::{Delivery, NoDelivery, TenantFile},
};
use tenantry_cluster::{
    AccessCheck, ClusterApi, ClusterEndpoint, ClusterError, KubeCluster, KubeconfigSource,
    credential::{self, CredentialRequest, Revoke, TokenPolicy},
    ops::{self, ApplyOptions, Silent, Waits},
};
use tenantry_core::PlatformContext;

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

fn waits() -> Waits {
    Waits {
        timeout: Duration::from_secs(60),
        interval: Duration::from_millis(250),
    }
}

/// A tenant onboarded for the test, offboarded when dropped (even after a failed step).
struct Tenant {
    api: KubeCluster,
    endpoint: ClusterEndpoint,
    name: String,
}

impl Tenant {
    async fn onboard(prefix: &str) -> Self {
        let (api, endpoint) = tenantry_cluster::connect(&KubeconfigSource {
            path: Some(admin_kubeconfig()),
            context: None,
        })
        .await
        .expect("the e2e kubeconfig connects");
        let name = unique_name(prefix);
        let ctx = PlatformContext::new(Platform::default()).unwrap();
        let spec = TenantSpec {
            delivery: Some(Delivery::None(NoDelivery::default())),
            ..TenantSpec::default()
        };
        let rendered = tenantry_core::render_tenant(&ctx, &TenantFile::new(&name, spec)).unwrap();
        let catalog = api.discover().await.unwrap();
        let rendered = std::slice::from_ref(&rendered);
        let live = ops::observe(&api, &catalog, rendered, LABEL, false, &Silent)
            .await
            .unwrap();
        let plan = &ops::plan_all(rendered, &live, LABEL, false)[0];
        let options = ApplyOptions {
            skip_missing_crds: true,
            waits: waits(),
            ..ApplyOptions::default()
        };
        let report = ops::apply_tenant(&api, &catalog, &rendered[0], plan, &options, &Silent).await;
        assert!(report.succeeded(), "{:?}", report.error);
        Self {
            api,
            endpoint,
            name,
        }
    }

    fn request<'a>(&'a self, holder: &'a str) -> CredentialRequest<'a> {
        CredentialRequest {
            tenant: &self.name,
            namespace: &self.name,
            tenant_label: LABEL,
            cluster_name: "e2e",
            endpoint: &self.endpoint,
            lifetime: TokenPolicy::from_platform(&Default::default())
                .unwrap()
                .lifetime(Some(Duration::from_secs(1800)))
                .unwrap(),
            holder: Some(holder),
        }
    }

    /// Ask the API server something with the credential: `Ok` when the token is accepted,
    /// `Err(Unauthorized)` once it is not.
    async fn ask_with(&self, kubeconfig: &str) -> Result<bool, ClusterError> {
        let as_tenant = self.api.connect_as(kubeconfig).await?;
        as_tenant
            .review_access(&AccessCheck {
                verb: "list".to_owned(),
                group: String::new(),
                resource: "pods".to_owned(),
                namespace: Some(self.name.clone()),
            })
            .await
    }

    /// Poll until the credential gets 401 (the API server caches a successful token
    /// authentication for 10 s), or fail after 30 s.
    async fn until_rejected(&self, kubeconfig: &str) -> Duration {
        let start = Instant::now();
        loop {
            match self.ask_with(kubeconfig).await {
                Err(ClusterError::Unauthorized { .. }) => return start.elapsed(),
                Ok(_) if start.elapsed() < Duration::from_secs(30) => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                other => panic!("the revoked credential still answers after 30s: {other:?}"),
            }
        }
    }
}

impl Drop for Tenant {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Offboard on a runtime and a client of its own: the test's runtime is blocked
        // here (and drives the test's client), and may be unwinding from a panic.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (api, _) = tenantry_cluster::connect(&KubeconfigSource {
                    path: Some(admin_kubeconfig()),
                    context: None,
                })
                .await?;
                let catalog = api.discover().await?;
                ops::offboard_cluster(&api, &catalog, LABEL, &name, None, &waits(), &Silent)
                    .await
                    .map(|_| ())
            })
        })
        .join();
    }
}

#[tokio::test]
#[ignore = "needs a disposable cluster: set TENANTRY_E2E_KUBECONFIG"]
async fn a_revoked_credential_gets_401_while_another_of_the_same_tenant_still_works() {
    let tenant = Tenant::onboard("e2e-cred").await;
    let alice = credential::issue_checked(&tenant.api, &tenant.request("alice"), &waits())
        .await
        .unwrap();
    let ci = credential::issue_checked(&tenant.api, &tenant.request("ci"), &waits())
        .await
        .unwrap();
    assert!(alice.ok(), "{:?}", alice.checks);
    assert!(ci.ok(), "{:?}", ci.checks);
    assert!(tenant.ask_with(&alice.credential.kubeconfig).await.unwrap());
    assert!(tenant.ask_with(&ci.credential.kubeconfig).await.unwrap());

    let listed = credential::list(&tenant.api, LABEL, &tenant.name)
        .await
        .unwrap();
    let mut ids: Vec<&str> = listed.iter().map(|c| c.id.as_str()).collect();
    ids.sort();
    let mut expected = vec![alice.credential.id.as_str(), ci.credential.id.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(
        listed
            .iter()
            .all(|c| c.expires_at.is_some() && c.issued_at.is_some() && !c.expired),
        "{listed:?}"
    );

    let revoked = credential::revoke(
        &tenant.api,
        LABEL,
        &tenant.name,
        Revoke::Id(&alice.credential.id),
    )
    .await
    .unwrap();
    assert_eq!(revoked[0].outcome, "revoked");
    let after = tenant.until_rejected(&alice.credential.kubeconfig).await;
    eprintln!("revoked credential rejected (401) {after:?} after its handle was deleted");
    assert!(
        tenant.ask_with(&ci.credential.kubeconfig).await.unwrap(),
        "the other credential of the same tenant still works"
    );
    let status = tenant
        .api
        .review_token(&alice.credential.token)
        .await
        .unwrap();
    assert!(!status.authenticated, "{status:?}");
    let left: Vec<String> = credential::list(&tenant.api, LABEL, &tenant.name)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(left, std::slice::from_ref(&ci.credential.id));
}

#[tokio::test]
#[ignore = "needs a disposable cluster: set TENANTRY_E2E_KUBECONFIG"]
async fn a_credential_that_fails_its_scope_check_is_revoked_before_it_is_returned() {
    let tenant = Tenant::onboard("e2e-wide").await;
    // A platform mistake: the tenant's ServiceAccount bound to cluster-admin.
    let bindings: Api<ClusterRoleBinding> = Api::all(tenant.api.client().clone());
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(format!("{}-too-wide", tenant.name)),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "ClusterRole".to_owned(),
            name: "cluster-admin".to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: tenant.name.clone(),
            namespace: Some(tenant.name.clone()),
            ..Subject::default()
        }]),
    };
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let checked = credential::issue_checked(&tenant.api, &tenant.request("alice"), &waits()).await;
    let _ = bindings
        .delete(
            &format!("{}-too-wide", tenant.name),
            &DeleteParams::default(),
        )
        .await;
    let checked = checked.unwrap();
    assert!(checked.broader(), "{:?}", checked.checks);
    let status = checked
        .revoked
        .clone()
        .expect("a broader credential is revoked");
    assert!(
        !status.authenticated,
        "TokenReview after revoking: {status:?}"
    );
    // A request with the token itself is refused too.
    tenant.until_rejected(&checked.credential.kubeconfig).await;
    assert_eq!(
        credential::list(&tenant.api, LABEL, &tenant.name)
            .await
            .unwrap(),
        []
    );
}
