//! Kubernetes Pod Security Standards, evaluated exactly as the PodSecurity admission plugin
//! evaluates them.
//!
//! # Why parity, and what it means here
//!
//! Tenantry labels tenant namespaces with `pod-security.kubernetes.io/enforce: <level>` and a
//! pinned `enforce-version`. The API server is the final judge of every pod, so a guardrail that
//! is stricter than the server blocks deployments the cluster would have accepted, and one that
//! is laxer lets a GitOps pipeline go green on a manifest the cluster will then refuse. Neither is
//! acceptable for a pre-flight check, so this module does not implement "the spirit" of the
//! standards from the documentation page (which lags the code); it reproduces the upstream
//! `k8s.io/pod-security-admission/policy` package:
//!
//! * the same check IDs, the same level for each, the same per-version revisions, and the same
//!   registry rules: a check's newest revision at or below the requested version applies,
//!   versions above the newest registered revision are capped to it (so `latest` is the newest
//!   *policy* version, not the newest Kubernetes release), `privileged` checks nothing, and at
//!   `restricted` a restricted check that overrides a baseline check replaces it while active
//!   (`restrictedVolumes` → `hostPathVolumes`, `seccompProfile_restricted` →
//!   `seccompProfile_baseline`, `capabilities_restricted` → `capabilities_baseline`,
//!   `procMount_restricted` → `procMount`);
//! * the same notion of "set": a field is set exactly when the API server's decoder would have
//!   produced a non-nil value for it. JSON of the wrong type is a decode error there, so the
//!   object could never reach admission; the engine treats such a value as unset rather than
//!   guessing, and never panics on it. A list element that is `null` (or not an object) is
//!   taken as the zero value, an element with nothing set, and a volume with no recognised
//!   source is what the API server defaults to `emptyDir` before admission, so it is allowed.
//!   Other defaulting never changes a verdict and is not replayed: a Pod with `hostNetwork:
//!   true` gets `hostPort`s copied from its `containerPort`s, which upstream would also list
//!   under `hostPorts`, but `hostNetwork` alone already denies that pod;
//! * the same container traversal (init containers, then containers, then ephemeral
//!   containers) and the same exemptions (Windows pods from 1.25 for the three Linux-only
//!   restricted checks, `hostUsers: false` pods from 1.35 for `procMount` at baseline and for
//!   `runAsNonRoot`/`runAsUser`).
//!
//! The verdict (allowed, or denied, and by which checks) is meant to be identical to upstream
//! for every input and every version; there is no intended difference in semantics. Only the
//! *shape* of the output differs: upstream folds all offenders of a check into one sentence,
//! while a [`Finding`] names one offending field so that editors and review bots can point at
//! the line to change. Because of that, every offending field is reported at once (upstream
//! mentions containers that merely lack a required setting only after the explicit offenders
//! are fixed), but a container that just inherits a forbidden pod-level value is not blamed
//! separately: the pod-level field is the one to change.
//!
//! The upstream test corpus (`testdata/pss`, every level × version × pass/fail fixture)
//! is run by `tests/pss_corpus.rs`; it is the executable definition of "parity".

mod checks;
pub(crate) use checks::{
    ALLOWED_VOLUME_SOURCES, APPARMOR_ANNOTATION_PREFIX, BASELINE_CAPABILITIES,
    RESTRICTED_VOLUME_SOURCES, SAFE_SYSCTLS, SECCOMP_CONTAINER_ANNOTATION_PREFIX,
    SECCOMP_POD_ANNOTATION, SELINUX_TYPES,
};
mod labels;
mod view;

#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use serde_json::Value;
use tenantry_api::policies::PodSecurityVersion;

pub use labels::{LabelProblem, ModeLabels, NamespaceLabels};

/// The newest policy minor version any check has a revision for. Upstream caps every requested
/// version (including `latest`) to this.
pub const LATEST_MINOR: u32 = 37;

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// No restrictions at all.
    Privileged,
    /// Prevents known privilege escalations.
    Baseline,
    /// Current pod hardening best practice; includes every baseline check not replaced by a
    /// stricter restricted one.
    Restricted,
}

impl Level {
    /// The label value used by `pod-security.kubernetes.io/<mode>`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when a string is not a Pod Security level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid Pod Security level {0:?}: expected \"privileged\", \"baseline\" or \"restricted\""
)]
pub struct ParseLevelError(String);

impl FromStr for Level {
    type Err = ParseLevelError;

    /// Parses a level exactly as the namespace label is parsed upstream (case-sensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(ParseLevelError(s.to_owned())),
        }
    }
}

impl Serialize for Level {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A Pod Security Standards policy version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// The newest policy version ([`LATEST_MINOR`]).
    Latest,
    /// `v1.<minor>`. Minors above [`LATEST_MINOR`] behave exactly like [`Version::Latest`].
    V1(u32),
}

impl Version {
    /// The policy minor version whose checks apply: `latest` and anything newer than the newest
    /// known revision resolve to [`LATEST_MINOR`].
    pub const fn effective_minor(self) -> u32 {
        match self {
            Version::Latest => LATEST_MINOR,
            Version::V1(minor) if minor > LATEST_MINOR => LATEST_MINOR,
            Version::V1(minor) => minor,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::V1(minor) => write!(f, "v1.{minor}"),
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    /// `latest` is newer than every pinned version, as upstream orders them.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Version::Latest, Version::Latest) => Ordering::Equal,
            (Version::Latest, Version::V1(_)) => Ordering::Greater,
            (Version::V1(_), Version::Latest) => Ordering::Less,
            (Version::V1(a), Version::V1(b)) => a.cmp(b),
        }
    }
}

/// The error returned when a string is not a Pod Security version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Pod Security version {0:?}: expected \"latest\" or \"v1.<minor>\"")]
pub struct ParseVersionError(String);

impl FromStr for Version {
    type Err = ParseVersionError;

    /// Accepts what the `enforce-version` label accepts: `latest`, or `v1.` followed by a minor
    /// without leading zeros; the same spelling `tenantry.yaml` is held to.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<PodSecurityVersion>()
            .map(Version::from)
            .map_err(|_| ParseVersionError(s.to_owned()))
    }
}

impl From<PodSecurityVersion> for Version {
    fn from(version: PodSecurityVersion) -> Self {
        match version {
            PodSecurityVersion::Latest => Version::Latest,
            PodSecurityVersion::V1(minor) => Version::V1(minor),
        }
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One violation of one check, at one field of the input object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Upstream check ID, e.g. `runAsNonRoot`, `capabilities_restricted`, `hostPathVolumes`.
    pub check: &'static str,
    /// The level the check belongs to (baseline or restricted).
    pub level: Level,
    /// Field path into the input object, e.g.
    /// `spec.template.spec.initContainers[0].securityContext.privileged`; for a missing required
    /// field, the path where it must be set.
    pub path: String,
    /// Upstream-style reason and detail, e.g.
    /// `privileged: container "app" must not set securityContext.privileged=true`.
    pub message: String,
    /// One sentence telling the user what to set.
    pub remediation: String,
}

/// Static description of one upstream check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckInfo {
    /// Upstream check ID.
    pub id: &'static str,
    /// The level the check belongs to.
    pub level: Level,
    /// The policy minor versions at which a revision of the check takes effect, oldest first;
    /// the first one is when the check was introduced. Each revision applies until the next.
    pub revisions: &'static [u32],
    /// For a restricted check: the baseline check it replaces at `restricted` while it is active.
    pub overrides: Option<&'static str>,
}

impl CheckInfo {
    /// Whether any revision of the check exists at `version`.
    pub fn active_at(&self, version: Version) -> bool {
        self.revisions
            .first()
            .is_some_and(|&first| first <= version.effective_minor())
    }

    /// Whether the check is evaluated for a pod at `level` and `version` (taking overrides into
    /// account).
    pub fn applies(&self, level: Level, version: Version) -> bool {
        let minor = version.effective_minor();
        match (level, self.level) {
            (Level::Privileged, _) | (Level::Baseline, Level::Restricted) => false,
            (_, Level::Privileged) => false,
            (Level::Baseline, Level::Baseline) | (Level::Restricted, Level::Restricted) => {
                self.active_at(version)
            }
            (Level::Restricted, Level::Baseline) => {
                self.active_at(version)
                    && !checks::REGISTRY.iter().any(|c| {
                        c.info.overrides == Some(self.id) && c.info.active_at(Version::V1(minor))
                    })
            }
        }
    }
}

/// Every check, in the fixed order findings are reported in: baseline checks, then restricted
/// checks, each group sorted by ID (the order upstream's registry evaluates them in).
pub fn checks() -> impl ExactSizeIterator<Item = &'static CheckInfo> + Clone {
    checks::REGISTRY.iter().map(|c| &c.info)
}

/// Evaluate a pod (its metadata and spec as JSON) at a level and version.
///
/// `path_prefix` is where the pod template sits in the input object (`""` for a Pod,
/// `"spec.template"` for a Deployment, `"spec.jobTemplate.spec.template"` for a CronJob,
/// `"template"` for a PodTemplate); metadata paths are `<prefix>.metadata...`, spec paths
/// `<prefix>.spec...` (no leading dot when the prefix is empty).
///
/// Findings come out grouped by check in [`checks`] order, and within a check in the order of
/// the offending fields in the pod (pod level first, then init containers, containers and
/// ephemeral containers). An empty result means the pod is allowed.
pub fn check_pod(
    level: Level,
    version: Version,
    metadata: &Value,
    spec: &Value,
    path_prefix: &str,
) -> Vec<Finding> {
    if level == Level::Privileged {
        return Vec::new();
    }
    let pod = view::Pod::new(metadata, spec);
    checks::evaluate(level, version.effective_minor(), &pod, path_prefix)
}

/// Where the pod template of a workload object sits, as borrowed JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodTemplateRef<'a> {
    /// The pod's (or template's) metadata; `null` when absent.
    pub metadata: &'a Value,
    /// The pod spec; `null` when absent.
    pub spec: &'a Value,
    /// Path of the pod template inside the object (`""` for a Pod).
    pub path_prefix: &'static str,
}

static NULL: Value = Value::Null;

/// Find the pod template of a Pod or pod controller: Pod, Deployment, StatefulSet, DaemonSet,
/// ReplicaSet, ReplicationController, Job, CronJob or PodTemplate, matched on the API group of
/// `apiVersion` and on `kind` (any version of the group). Returns `None` for other kinds.
///
/// These are the kinds whose pod specs the PodSecurity admission plugin extracts; a missing
/// template yields `null` metadata/spec rather than `None`, because the kind is still one the
/// plugin would evaluate.
pub fn pod_template(object: &Value) -> Option<PodTemplateRef<'_>> {
    let api_version = object.get("apiVersion")?.as_str()?;
    let kind = object.get("kind")?.as_str()?;
    let group = match api_version.split_once('/') {
        Some((group, _version)) => group,
        None => "",
    };
    let path_prefix = match (group, kind) {
        ("", "Pod") => "",
        ("", "ReplicationController")
        | ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job") => "spec.template",
        ("batch", "CronJob") => "spec.jobTemplate.spec.template",
        ("", "PodTemplate") => "template",
        _ => return None,
    };
    let template = path_prefix
        .split('.')
        .filter(|segment| !segment.is_empty())
        .try_fold(object, |value, segment| value.get(segment));
    let (metadata, spec) = match template {
        Some(template) => (
            template.get("metadata").unwrap_or(&NULL),
            template.get("spec").unwrap_or(&NULL),
        ),
        None => (&NULL, &NULL),
    };
    Some(PodTemplateRef {
        metadata,
        spec,
        path_prefix,
    })
}

/// Convenience: [`pod_template`] + [`check_pod`]. Objects that carry no pod template yield no
/// findings.
pub fn check_object(level: Level, version: Version, object: &Value) -> Vec<Finding> {
    match pod_template(object) {
        Some(t) => check_pod(level, version, t.metadata, t.spec, t.path_prefix),
        None => Vec::new(),
    }
}
