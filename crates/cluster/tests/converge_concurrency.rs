//! `ops::converge_tenants` applies several tenants at once, never more than
//! `ops::CONVERGE_CONCURRENCY`, and reports them in the order they were given: what makes
//! `tenantry apply --all` over many new tenants overlap their namespace waits while its
//! report stays deterministic.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::Value;
use tenantry_api::{Platform, TenantSpec, tenant::TenantFile};
use tenantry_cluster::{
    AccessCheck, AccessDecision, BoundObject, ClusterApi, ClusterError, Deletion, IssuedToken,
    ResourceType, SubjectAccess, TokenStatus,
    catalog::Catalog,
    fake::FakeCluster,
    ops::{self, ApplyOptions, CONVERGE_CONCURRENCY, Prune, Silent, Waits},
};
use tenantry_core::{DesiredObject, PlatformContext};

/// The fake API server, where every apply takes a few milliseconds, counting the tenants
/// whose applies are in flight at once (by the tenant label of the object applied).
#[derive(Clone)]
struct Slow {
    inner: FakeCluster,
    in_flight: Arc<std::sync::Mutex<Vec<String>>>,
    peak: Arc<AtomicUsize>,
}

impl ClusterApi for Slow {
    async fn discover(&self) -> Result<Catalog, ClusterError> {
        self.inner.discover().await
    }
    async fn list(&self, r: &ResourceType, selector: &str) -> Result<Vec<Value>, ClusterError> {
        self.inner.list(r, selector).await
    }
    async fn get(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        self.inner.get(r, namespace, name).await
    }
    async fn apply(
        &self,
        r: &ResourceType,
        object: &DesiredObject,
        dry_run: bool,
    ) -> Result<Value, ClusterError> {
        let tenant = object.body["metadata"]["labels"]["tenantry.dev/tenant"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            in_flight.push(tenant.clone());
            let mut tenants = in_flight.clone();
            tenants.sort();
            tenants.dedup();
            self.peak.fetch_max(tenants.len(), Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        let result = self.inner.apply(r, object, dry_run).await;
        let mut in_flight = self.in_flight.lock().unwrap();
        if let Some(i) = in_flight.iter().position(|t| *t == tenant) {
            in_flight.remove(i);
        }
        result
    }
    async fn create(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        object: &Value,
    ) -> Result<Value, ClusterError> {
        self.inner.create(r, namespace, object).await
    }
    async fn merge_patch(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ClusterError> {
        self.inner.merge_patch(r, namespace, name, patch).await
    }
    async fn delete(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
        dry_run: bool,
    ) -> Result<Deletion, ClusterError> {
        self.inner.delete(r, namespace, name, uid, dry_run).await
    }
    async fn request_token(
        &self,
        namespace: &str,
        service_account: &str,
        expiration_seconds: i64,
        bound: Option<&BoundObject>,
    ) -> Result<IssuedToken, ClusterError> {
        self.inner
            .request_token(namespace, service_account, expiration_seconds, bound)
            .await
    }
    async fn review_access(&self, check: &AccessCheck) -> Result<bool, ClusterError> {
        self.inner.review_access(check).await
    }
    async fn review_subject_access(
        &self,
        review: &SubjectAccess,
    ) -> Result<AccessDecision, ClusterError> {
        self.inner.review_subject_access(review).await
    }
    fn impersonate(&self, user: &str, groups: &[String]) -> Result<Self, ClusterError> {
        Ok(Self {
            inner: self.inner.impersonate(user, groups)?,
            ..self.clone()
        })
    }
    async fn review_token(&self, token: &str) -> Result<TokenStatus, ClusterError> {
        self.inner.review_token(token).await
    }
    async fn connect_as(&self, kubeconfig: &str) -> Result<Self, ClusterError> {
        Ok(Self {
            inner: self.inner.connect_as(kubeconfig).await?,
            ..self.clone()
        })
    }
}

#[tokio::test]
async fn tenants_are_applied_a_bounded_few_at_a_time_and_reported_in_order() {
    let ctx = PlatformContext::new(Platform::default()).unwrap();
    let names: Vec<String> = (0..30).map(|i| format!("t{i:02}")).collect();
    let rendered: Vec<_> = names
        .iter()
        .map(|n| tenantry_core::render_tenant(&ctx, &TenantFile::new(n, TenantSpec::default())))
        .collect::<Result<_, _>>()
        .unwrap();
    let api = Slow {
        inner: FakeCluster::new(),
        in_flight: Arc::default(),
        peak: Arc::default(),
    };
    let catalog = api.discover().await.unwrap();
    let options = ApplyOptions {
        waits: Waits {
            timeout: Duration::from_secs(5),
            interval: Duration::from_millis(1),
        },
        ..ApplyOptions::default()
    };
    let converged = ops::converge_tenants(
        &api,
        &catalog,
        &rendered,
        "tenantry.dev/tenant",
        Prune::Off,
        &options,
        &Silent,
    )
    .await
    .unwrap();
    let reported: Vec<&str> = converged.iter().map(|c| c.plan.tenant.as_str()).collect();
    assert_eq!(reported, names, "the report follows the given order");
    assert!(
        converged
            .iter()
            .all(|c| c.applied.as_ref().is_some_and(|a| a.error.is_none())),
        "every tenant is applied"
    );
    let peak = api.peak.load(Ordering::Relaxed);
    assert!(peak > 1, "tenants are applied concurrently (peak {peak})");
    assert!(
        peak <= CONVERGE_CONCURRENCY,
        "at most {CONVERGE_CONCURRENCY} at once (peak {peak})"
    );
}
