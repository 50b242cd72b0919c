//! `tenantry doctor`: why one tenant is broken, and the exact fix.
//!
//! A diagnosis is only trusted when it is reproducible, so every check here is a pure
//! function of what the CLI observed ([`Observed`]): the tenant as rendered from the platform
//! repository, the files that repository holds, and, unless offline, the objects the cluster
//! and OpenBao returned. The CLI gathers through the same edges `apply` uses and decides
//! nothing; tests drive each check with recorded objects and assert the fix a person would
//! type.
//!
//! Checks run in a fixed order that puts causes before symptoms: the repository, then the
//! declared objects, then what those objects wire together (labels, ServiceAccounts, secrets,
//! OpenBao, delivery, quota), and only then what the workloads suffer (admission refusals,
//! pods that do not start). Someone reading top-down fixes the first failure first, and the
//! later ones often disappear with it. Each check has a stable ID for scripts and names every
//! object it looked at, so "ok" means "looked and found nothing", never "did not look": what
//! could not be looked at is `skipped` with the reason.
#![forbid(unsafe_code)]

pub mod audit;
mod checks;
mod netpol;
mod openbao_paths;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use tenantry_core::{PlatformContext, Rendered, ResolvedTenant};

pub use checks::CHECK_IDS;
pub use openbao_paths::{KvReads, kv_paths as openbao_kv_paths};

/// Something observed, or why it could not be (offline, a kind the cluster does not serve, a
/// read that was refused).
pub type Seen<T> = Result<T, String>;

/// A file of the tenant's (or the platform's) rendered tree that differs from what the
/// repository renders, as `render --check` finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleFile {
    /// The path, as printed.
    pub path: String,
    /// `missing`, `stale` or `no longer rendered`.
    pub problem: &'static str,
    /// True for a platform component's file (`render --write` with no name rewrites it).
    pub platform: bool,
}

/// One step of the OpenBao provisioning plan for this tenant (`provision::plan`), in the
/// doctor's terms: what it is, whether it is as rendered, and why not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaoStep {
    /// `policy`, `role`, `kv mount`, `auth method`.
    pub target: String,
    /// Its name or path.
    pub name: String,
    /// `create`, `update`, `unchanged`, `foreign` or `blocked`.
    pub change: String,
    /// Fields that differ, or why it is refused.
    pub detail: Vec<String>,
}

/// What the cluster holds that concerns the tenant.
#[derive(Clone, Debug)]
pub struct ClusterView {
    /// The rendered kinds the cluster does not serve, as `Kind.group` (CRDs not installed).
    pub missing_kinds: Vec<String>,
    /// The objects labelled for the tenant, through every rendered kind the cluster serves
    /// (`ops::observe`): what the plan compares with.
    pub live: Vec<Value>,
    /// Every ServiceAccount in the tenant's namespaces, Tenantry's or not.
    pub service_accounts: Seen<Vec<Value>>,
    /// Every Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob and Pod in the
    /// tenant's namespaces (of the kinds served).
    pub workloads: Seen<Vec<Value>>,
    /// The Events in the tenant's namespaces.
    pub events: Seen<Vec<Value>>,
    /// The pull secret (`pullSecret.name`) of each tenant namespace that has it.
    pub pull_secrets: Seen<Vec<Value>>,
    /// ExternalSecrets and SecretStores in the tenant's namespaces, and the ClusterSecretStores
    /// they reference.
    pub secret_sync: Seen<Vec<Value>>,
    /// Every NetworkPolicy and CiliumNetworkPolicy in the tenant's namespaces, Tenantry's or
    /// not: a policy the tenant adds widens or narrows what its pods reach.
    pub network_policies: Seen<Vec<Value>>,
    /// The namespaces of other tenants (carrying the tenant label with another value), with
    /// their labels: the peers the tenant's pods must not be opened to.
    pub other_tenant_namespaces: Seen<Vec<Value>>,
}

/// Everything a diagnosis is computed from.
pub struct Observed<'a> {
    /// The platform the tenant is resolved against.
    pub ctx: &'a PlatformContext,
    /// The tenant, resolved.
    pub tenant: &'a ResolvedTenant,
    /// What it renders to (quota shares already rebalanced from live usage, as `apply` does).
    pub rendered: &'a Rendered,
    /// The tenant's directory in the repository, as printed.
    pub tenant_dir: String,
    /// What `render --check` finds for the tenant and the platform components.
    pub stale: Vec<StaleFile>,
    /// The objects the tenant's committed tree delivers (every file its `kustomization.yaml`
    /// lists), or why they could not be read. Offline, the checks of what the objects wire
    /// together (labels, the pull secret, network policy) read these instead of the cluster.
    pub tree: Seen<Vec<Value>>,
    /// The cluster, or why it was not consulted.
    pub cluster: Seen<ClusterView>,
    /// The tenant's OpenBao plan; `None` when the tenant has no `secrets.openbao`.
    pub openbao: Option<Seen<Vec<BaoStep>>>,
    /// What was read of the KV store for what [`openbao_kv_paths`] names; `None` when the
    /// tenant has no `secrets.openbao`.
    pub openbao_kv: Option<Seen<KvView>>,
}

/// What the doctor read of OpenBao's KV v2 store with the platform's token: metadata and
/// key names, never a value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvView {
    /// The metadata of each secret path [`KvReads::secrets`] names (`None`: nothing stored).
    pub secrets: BTreeMap<String, Option<KvMetadata>>,
    /// Each folder [`KvReads::folders`] names, with every secret path below it (under the
    /// mount, recursively), as External Secrets lists a `find.path`.
    pub folders: BTreeMap<String, Vec<String>>,
}

/// What OpenBao's KV metadata says about a secret's versions (never its value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvMetadata {
    /// Its version number.
    pub current_version: u64,
    /// Deleted or destroyed: a read finds nothing.
    pub current_deleted: bool,
    /// Each version the store still keeps (`max_versions` drops the oldest).
    pub versions: BTreeMap<u64, KvVersion>,
}

/// The state of one KV v2 version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvVersion {
    /// Readable.
    Live,
    /// Soft-deleted: `bao kv undelete` brings it back.
    Deleted,
    /// Destroyed: gone for good.
    Destroyed,
}

impl KvMetadata {
    /// Read the `data` of a `<mount>/metadata/<path>` answer (`current_version`, and
    /// `versions` keyed by number, each with `deletion_time` and `destroyed`).
    pub fn from_metadata(data: &Value) -> Self {
        let versions: BTreeMap<u64, KvVersion> = data["versions"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(n, v)| {
                let state = if v["destroyed"].as_bool() == Some(true) {
                    KvVersion::Destroyed
                } else if v["deletion_time"].as_str().is_some_and(|t| !t.is_empty()) {
                    KvVersion::Deleted
                } else {
                    KvVersion::Live
                };
                Some((n.parse().ok()?, state))
            })
            .collect();
        let current_version = data["current_version"].as_u64().unwrap_or(0);
        Self {
            current_version,
            current_deleted: versions.get(&current_version) != Some(&KvVersion::Live),
            versions,
        }
    }
}

/// A check's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Looked, found nothing wrong.
    Ok,
    /// Could not look; the check's `reason` says why.
    Skipped,
    /// Something to look at that does not break the tenant by itself.
    Warn,
    /// Broken; each finding says how to fix it.
    Fail,
}

impl Verdict {
    /// `ok`, `skipped`, `warn`, `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Skipped => "skipped",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// One problem a check found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `warn` or `fail`.
    pub verdict: Verdict,
    /// The object it is about, `Kind namespace/name`.
    pub object: String,
    /// What is wrong, and why it matters.
    pub message: String,
    /// The command to run or the field to change.
    pub fix: String,
}

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier, for scripts and for `--output json`.
    pub id: &'static str,
    /// What the check is about, in a few words.
    pub title: &'static str,
    /// The worst of its findings; `ok` when there are none; `skipped` with a reason.
    pub verdict: Verdict,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Every object it looked at.
    pub objects: Vec<String>,
    /// What it found.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// What it established that is neither a problem nor obvious (e.g. a flow that is denied
    /// and not needed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Check {
    fn new(id: &'static str, title: &'static str) -> Self {
        Self {
            id,
            title,
            verdict: Verdict::Ok,
            reason: None,
            objects: Vec::new(),
            findings: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn skipped(mut self, reason: impl Into<String>) -> Self {
        self.verdict = Verdict::Skipped;
        self.reason = Some(reason.into());
        self
    }

    fn looked_at(&mut self, object: impl Into<String>) {
        let object = object.into();
        if !self.objects.contains(&object) {
            self.objects.push(object);
        }
    }

    fn fail(
        &mut self,
        object: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(Verdict::Fail, object.into(), message.into(), fix.into());
    }

    fn warn(
        &mut self,
        object: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(Verdict::Warn, object.into(), message.into(), fix.into());
    }

    fn push(&mut self, verdict: Verdict, object: String, message: String, fix: String) {
        self.verdict = self.verdict.max(verdict);
        self.findings.push(Finding {
            verdict,
            object,
            message,
            fix,
        });
    }
}

/// Run every check, in order (causes first).
pub fn diagnose(observed: &Observed<'_>) -> Vec<Check> {
    checks::run_all(observed)
}

/// `Kind namespace/name` of a live object.
fn reference(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or("object");
    let name = object["metadata"]["name"].as_str().unwrap_or("?");
    match object["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}
