//! Telling the operator's own writes apart from everyone else's, so that a watch event is a
//! reason to reconcile only when someone else changed something.
//!
//! Every object a tenant's reconcile creates or changes comes back as a watch event on the
//! drift watches, and every status write comes back on the Tenant watch. Acting on those
//! echoes costs a second reconcile per tenant that can only find nothing to do: at a cold
//! start of a thousand tenants that is a thousand extra passes, each reading every object
//! of its tenant. The decisions here are pure so that they are tested without a server; the
//! controller applies them to the streams.
//!
//! An echo that is wrongly taken for someone else's change costs one pass that writes
//! nothing; a change wrongly taken for an echo would leave drift unrepaired until the
//! periodic pass. So every test leans to "someone else": only a write that is certainly
//! Tenantry's, and the newest, is ignored.

use std::hash::{DefaultHasher, Hash, Hasher};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tenantry_api::Tenant;
use tenantry_core::plan::FIELD_MANAGER;

/// Whether the newest change to an object is Tenantry's own server-side apply.
///
/// The API server records each manager's last write in `managedFields` (to the second).
/// Writes to the status subresource by the API server's controllers (a quota's usage, a
/// namespace's phase) are not changes to what Tenantry declares and are passed over. Any
/// other manager whose write is as new as Tenantry's, or of unknown time, counts as a
/// change: same-second writes cannot be ordered.
pub fn written_by_tenantry(meta: &ObjectMeta) -> bool {
    let Some(entries) = &meta.managed_fields else {
        return false;
    };
    let is_status = |sub: Option<&String>| sub.is_some_and(|s| !s.is_empty());
    let ours = entries
        .iter()
        .filter(|e| {
            e.manager.as_deref() == Some(FIELD_MANAGER) && !is_status(e.subresource.as_ref())
        })
        .filter_map(|e| e.time.as_ref().map(|t| t.0))
        .max();
    let Some(ours) = ours else {
        return false;
    };
    !entries.iter().any(|e| {
        e.manager.as_deref() != Some(FIELD_MANAGER)
            && !is_status(e.subresource.as_ref())
            && e.time.as_ref().is_none_or(|t| t.0 >= ours)
    })
}

/// What a Tenant's reconcile depends on, hashed: its spec (through `generation`, which also
/// changes when deletion starts), its labels and annotations (a tenant file carries them),
/// its finalizers and whether it is being deleted. The status is not in it: the operator's
/// own status write does not wake the tenant again.
pub fn tenant_inputs(tenant: &Tenant) -> Option<u64> {
    let meta = &tenant.metadata;
    let mut h = DefaultHasher::new();
    meta.generation.hash(&mut h);
    meta.labels.hash(&mut h);
    meta.annotations.hash(&mut h);
    meta.finalizers.hash(&mut h);
    meta.deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, Time},
        jiff::Timestamp,
    };
    use tenantry_api::TenantSpec;

    use super::*;

    fn entry(manager: &str, second: Option<i64>, subresource: Option<&str>) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.to_owned()),
            operation: Some("Apply".to_owned()),
            time: second.map(|s| Time(Timestamp::from_second(s).unwrap())),
            subresource: subresource.map(str::to_owned),
            ..ManagedFieldsEntry::default()
        }
    }

    fn meta(entries: Vec<ManagedFieldsEntry>) -> ObjectMeta {
        ObjectMeta {
            managed_fields: Some(entries),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn tenantrys_own_apply_is_an_echo() {
        assert!(written_by_tenantry(&meta(vec![entry(
            FIELD_MANAGER,
            Some(10),
            None
        )])));
        // A controller writing the status afterwards (quota usage) changes nothing declared.
        assert!(written_by_tenantry(&meta(vec![
            entry(FIELD_MANAGER, Some(10), None),
            entry("kube-controller-manager", Some(20), Some("status")),
        ])));
        // An edit older than Tenantry's last apply was already overwritten by it.
        assert!(written_by_tenantry(&meta(vec![
            entry("kubectl-edit", Some(5), None),
            entry(FIELD_MANAGER, Some(10), None),
        ])));
    }

    #[test]
    fn anyone_elses_newer_or_same_second_write_is_a_change() {
        assert!(!written_by_tenantry(&meta(vec![
            entry(FIELD_MANAGER, Some(10), None),
            entry("kubectl-edit", Some(11), None),
        ])));
        assert!(!written_by_tenantry(&meta(vec![
            entry(FIELD_MANAGER, Some(10), None),
            entry("kubectl-edit", Some(10), None),
        ])));
        assert!(!written_by_tenantry(&meta(vec![
            entry(FIELD_MANAGER, Some(10), None),
            entry("someone", None, None),
        ])));
        // Not written by Tenantry at all, or no record: a change.
        assert!(!written_by_tenantry(&meta(vec![entry(
            "kubectl",
            Some(10),
            None
        )])));
        assert!(!written_by_tenantry(&ObjectMeta::default()));
        // Tenantry's status-only entry is not a declaration it made.
        assert!(!written_by_tenantry(&meta(vec![entry(
            FIELD_MANAGER,
            Some(10),
            Some("status")
        )])));
    }

    #[test]
    fn a_status_write_does_not_change_a_tenants_inputs_but_everything_else_does() {
        let base = Tenant::new("shop", TenantSpec::default());
        let hash = |t: &Tenant| tenant_inputs(t).unwrap();
        let mut status = base.clone();
        status.status = Some(tenantry_api::tenant::TenantStatus {
            observed_generation: Some(1),
            ..Default::default()
        });
        status.metadata.resource_version = Some("42".to_owned());
        assert_eq!(hash(&base), hash(&status));
        let changes: [fn(&mut Tenant); 5] = [
            |t| t.metadata.generation = Some(2),
            |t| t.metadata.labels = Some([("a".to_owned(), "b".to_owned())].into()),
            |t| t.metadata.annotations = Some([("a".to_owned(), "b".to_owned())].into()),
            |t| t.metadata.finalizers = Some(vec!["x".to_owned()]),
            |t| t.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(1).unwrap())),
        ];
        for change in changes {
            let mut t = base.clone();
            change(&mut t);
            assert_ne!(hash(&base), hash(&t));
        }
    }
}
