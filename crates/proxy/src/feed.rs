//! The watches that keep the [`Index`] current, and the lock and broadcast around it.
//!
//! Two watches, through the same loop as the webhook's namespace cache
//! (`tenantry_admission::watch::watch_into`): namespaces selected by the tenant label (whole
//! objects less managedFields, since the proxy serves them to `-o yaml`), and Tenant objects
//! read as dynamic objects for `spec.owners` and `spec.classes` alone (a Tenant written by a
//! newer Tenantry still yields them). Every change is applied and broadcast under the index's
//! write lock, and a watch
//! subscribes and takes its starting state under the read lock, so it neither misses nor
//! repeats a change.

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind},
    runtime::watcher::{self, Event},
};
use tenantry_admission::watch::watch_into;
use tenantry_api::tenant::{ClassList, Classes};
use tokio::sync::broadcast;

use crate::index::{Change, Index, TenantFacts};

/// How many changes a slow watch may fall behind before it is ended (its client then
/// resumes from its last resourceVersion).
pub const BROADCAST_CAPACITY: usize = 1024;

/// The index, shared by the feed and every request.
#[derive(Debug)]
pub struct Shared {
    index: RwLock<Index>,
    changes: broadcast::Sender<Arc<Change>>,
}

impl Shared {
    /// An empty index for `tenant_label`.
    pub fn new(tenant_label: &str) -> Arc<Self> {
        Arc::new(Self {
            index: RwLock::new(Index::new(tenant_label)),
            changes: broadcast::channel(BROADCAST_CAPACITY).0,
        })
    }

    /// Read the index. A panic while holding the lock leaves whole entries (every write
    /// replaces them), so a poisoned lock is still usable.
    pub fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Read the index and subscribe to the changes after what it holds now.
    pub fn subscribe(&self) -> (RwLockReadGuard<'_, Index>, broadcast::Receiver<Arc<Change>>) {
        let index = self.read();
        let receiver = self.changes.subscribe();
        (index, receiver)
    }

    /// Change the index and broadcast what changed, under the write lock.
    pub fn update(&self, f: impl FnOnce(&mut Index) -> Vec<Arc<Change>>) {
        let mut index: RwLockWriteGuard<'_, Index> =
            self.index.write().unwrap_or_else(PoisonError::into_inner);
        for change in f(&mut index) {
            // No receiver is not an error: nobody is watching.
            let _ = self.changes.send(change);
        }
    }

    /// Apply one namespace watch event.
    pub fn apply_namespace(&self, event: Event<Namespace>) {
        let value = |ns: &Namespace| serde_json::to_value(ns).ok();
        self.update(|index| match event {
            Event::Apply(ns) => value(&ns)
                .and_then(|v| index.upsert_namespace(v))
                .into_iter()
                .collect(),
            Event::Delete(ns) => {
                let rv = ns
                    .metadata
                    .resource_version
                    .as_deref()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                ns.metadata
                    .name
                    .and_then(|name| index.remove_namespace(&name, rv))
                    .into_iter()
                    .collect()
            }
            Event::Init => {
                index.start_namespace_relist();
                Vec::new()
            }
            Event::InitApply(ns) => {
                if let Some(v) = value(&ns) {
                    index.relist_namespace(v);
                }
                Vec::new()
            }
            Event::InitDone => {
                let changes = index.finish_namespace_relist();
                tracing::info!(namespaces = index.len(), "tenant namespace index synced");
                changes
            }
        });
    }

    /// Apply one Tenant watch event.
    pub fn apply_tenant(&self, event: Event<DynamicObject>) {
        self.update(|index| {
            match event {
                Event::Apply(t) => {
                    if let Some(name) = t.metadata.name.clone() {
                        index.upsert_tenant(&name, tenant_facts(&t));
                    }
                }
                Event::Delete(t) => {
                    if let Some(name) = &t.metadata.name {
                        index.remove_tenant(name);
                    }
                }
                Event::Init => index.start_tenant_relist(),
                Event::InitApply(t) => {
                    if let Some(name) = t.metadata.name.clone() {
                        index.relist_tenant(&name, tenant_facts(&t));
                    }
                }
                Event::InitDone => index.finish_tenant_relist(),
            }
            Vec::new()
        });
    }
}

/// `spec.owners` and `spec.classes` of a Tenant, read loosely so a Tenant written by a newer
/// Tenantry still yields them. Unreadable owners: none (nobody gains the tenant); unreadable
/// classes: an empty list of each kind (no class is shown, rather than all of them).
fn tenant_facts(t: &DynamicObject) -> TenantFacts {
    let field = |name: &str| {
        t.data
            .pointer(&format!("/spec/{name}"))
            .filter(|v| !v.is_null())
            .cloned()
    };
    let owners = field("owners").map_or_else(Vec::new, |owners| {
        serde_json::from_value(owners).unwrap_or_else(|e| {
            tracing::warn!(tenant = ?t.metadata.name, error = %e, "unreadable spec.owners; the tenant has no owners in the proxy");
            Vec::new()
        })
    });
    let classes = field("classes").map(|classes| {
        serde_json::from_value(classes).unwrap_or_else(|e| {
            tracing::warn!(tenant = ?t.metadata.name, error = %e, "unreadable spec.classes; the proxy shows the tenant no class");
            let none = || Some(ClassList::default());
            Classes {
                priority: none(),
                storage: none(),
                ingress: none(),
                gateway: none(),
                runtime: none(),
            }
        })
    });
    TenantFacts { owners, classes }
}

/// Watch tenant namespaces into `shared` for as long as the future runs.
pub async fn feed_namespaces(client: Client, shared: Arc<Shared>) {
    let label = shared.read().tenant_label().to_owned();
    let api: Api<Namespace> = Api::all(client);
    watch_into(
        api,
        watcher::Config::default().labels(&label),
        "tenant namespaces",
        |event| shared.apply_namespace(event),
    )
    .await;
}

/// Watch Tenant objects into `shared` for as long as the future runs. Without the Tenant
/// CRD this retries (with backoff) and the index knows ServiceAccounts only.
pub async fn feed_tenants(client: Client, shared: Arc<Shared>) {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("tenantry.dev", "v1alpha1", "Tenant"),
        "tenants",
    );
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    watch_into(api, watcher::Config::default(), "tenants", |event| {
        shared.apply_tenant(event);
    })
    .await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tenant(spec: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": "shop"}, "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn a_tenants_owners_and_classes_are_read_and_unreadable_classes_show_none() {
        let facts = tenant_facts(&tenant(json!({
            "owners": [{"kind": "Group", "name": "devs"}],
            "classes": {"storage": {"allowed": ["fast"]}},
            "somethingNewer": true,
        })));
        assert_eq!(facts.owners.len(), 1);
        assert_eq!(
            facts.classes.unwrap().storage.unwrap().allowed,
            ["fast".to_owned()]
        );
        let facts = tenant_facts(&tenant(json!({"classes": {"storage": "fast"}})));
        let classes = facts.classes.unwrap();
        assert!(classes.storage.unwrap().allowed.is_empty());
        assert!(classes.runtime.unwrap().allowed.is_empty());
        assert_eq!(tenant_facts(&tenant(json!({}))), TenantFacts::default());
    }
}
