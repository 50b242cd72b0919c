//! A namespace's `pod-security.kubernetes.io/*` labels, read the way the PodSecurity admission
//! plugin reads them.
//!
//! There is one reader because two readers drift: the webhook once had its own and judged an
//! unparsable `warn` level as `restricted` while the API server checks nothing for it, so the
//! same pod got different warnings from Tenantry and from the cluster. Upstream is lopsided on
//! purpose when a value cannot be parsed, and so is this reader:
//!
//! * an unparsable `enforce` level fails closed, as `restricted`;
//! * an unparsable `audit` or `warn` level fails open, as `privileged` (nothing is checked):
//!   those modes only report, and a typo must not start reporting at the strictest level;
//! * an unparsable version is `latest`.
//!
//! An absent label is not a problem and is left as `None`: what it means is the caller's
//! policy, not the label's. The engine takes the tenant's level for a missing `enforce` and the
//! platform's `policies.podSecurity.version` for a missing version. Problems are kept, so the
//! webhook can tell the person whose request was judged which label was read as what.

use std::collections::BTreeMap;
use std::fmt;

use super::{Level, Version};

const ENFORCE: &str = "pod-security.kubernetes.io/enforce";
const ENFORCE_VERSION: &str = "pod-security.kubernetes.io/enforce-version";
const AUDIT: &str = "pod-security.kubernetes.io/audit";
const AUDIT_VERSION: &str = "pod-security.kubernetes.io/audit-version";
const WARN: &str = "pod-security.kubernetes.io/warn";
const WARN_VERSION: &str = "pod-security.kubernetes.io/warn-version";

/// What the two labels of one mode (`<mode>` and `<mode>-version`) say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModeLabels {
    /// The level, `None` when the label is absent.
    pub level: Option<Level>,
    /// The version, `None` when the label is absent.
    pub version: Option<Version>,
}

/// A label whose value is not a level (or version), and what it is read as instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelProblem {
    /// The label key.
    pub label: &'static str,
    /// Its value.
    pub value: String,
    /// What the value is read as: a level or a version.
    pub read_as: String,
}

impl fmt::Display for LabelProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.label.ends_with("-version") {
            "Pod Security version"
        } else {
            "Pod Security level"
        };
        write!(
            f,
            "label {}={:?} is not a {what}; read as {:?}, as the PodSecurity admission plugin \
             reads it",
            self.label, self.value, self.read_as
        )
    }
}

/// The Pod Security labels of one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamespaceLabels {
    /// `enforce`: violations are refused.
    pub enforce: ModeLabels,
    /// `audit`: violations are recorded.
    pub audit: ModeLabels,
    /// `warn`: violations are returned as warnings.
    pub warn: ModeLabels,
    /// Values that could not be parsed, in label order (enforce, audit, warn).
    pub problems: Vec<LabelProblem>,
}

impl NamespaceLabels {
    /// Read the labels of a namespace (see the module documentation for unparsable values).
    pub fn read(labels: &BTreeMap<String, String>) -> Self {
        let mut problems = Vec::new();
        let mut mode = |level_key: &'static str, version_key: &'static str, fallback: Level| {
            let level = labels.get(level_key).map(|value| {
                value.parse().unwrap_or_else(|_| {
                    problems.push(LabelProblem {
                        label: level_key,
                        value: value.clone(),
                        read_as: fallback.to_string(),
                    });
                    fallback
                })
            });
            let version = labels.get(version_key).map(|value| {
                value.parse().unwrap_or_else(|_| {
                    problems.push(LabelProblem {
                        label: version_key,
                        value: value.clone(),
                        read_as: Version::Latest.to_string(),
                    });
                    Version::Latest
                })
            });
            ModeLabels { level, version }
        };
        let enforce = mode(ENFORCE, ENFORCE_VERSION, Level::Restricted);
        let audit = mode(AUDIT, AUDIT_VERSION, Level::Privileged);
        let warn = mode(WARN, WARN_VERSION, Level::Privileged);
        Self {
            enforce,
            audit,
            warn,
            problems,
        }
    }

    /// The labels that say `enforce: <level>` and nothing else, as given to a namespace the
    /// caller does not know.
    pub fn enforcing(level: Level) -> BTreeMap<String, String> {
        BTreeMap::from([(ENFORCE.to_owned(), level.as_str().to_owned())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn valid_labels_are_read_as_written_and_absent_ones_stay_unset() {
        let read = NamespaceLabels::read(&labels(&[
            (ENFORCE, "baseline"),
            (ENFORCE_VERSION, "v1.30"),
            (WARN, "restricted"),
        ]));
        assert_eq!(read.enforce.level, Some(Level::Baseline));
        assert_eq!(read.enforce.version, Some(Version::V1(30)));
        assert_eq!(read.warn.level, Some(Level::Restricted));
        assert_eq!(
            read.warn.version, None,
            "no version label: the caller's default"
        );
        assert_eq!(read.audit, ModeLabels::default());
        assert!(read.problems.is_empty());
    }

    #[test]
    fn unparsable_values_fail_closed_for_enforce_and_open_for_audit_and_warn() {
        let read = NamespaceLabels::read(&labels(&[
            (ENFORCE, "Baseline"),
            (ENFORCE_VERSION, "1.30"),
            (AUDIT, "strict"),
            (WARN, "restricted "),
            (WARN_VERSION, "v1.030"),
        ]));
        assert_eq!(read.enforce.level, Some(Level::Restricted));
        assert_eq!(read.enforce.version, Some(Version::Latest));
        assert_eq!(read.audit.level, Some(Level::Privileged));
        assert_eq!(read.warn.level, Some(Level::Privileged));
        assert_eq!(read.warn.version, Some(Version::Latest));
        let said: Vec<String> = read.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            said,
            [
                "label pod-security.kubernetes.io/enforce=\"Baseline\" is not a Pod Security \
                 level; read as \"restricted\", as the PodSecurity admission plugin reads it",
                "label pod-security.kubernetes.io/enforce-version=\"1.30\" is not a Pod \
                 Security version; read as \"latest\", as the PodSecurity admission plugin \
                 reads it",
                "label pod-security.kubernetes.io/audit=\"strict\" is not a Pod Security level; \
                 read as \"privileged\", as the PodSecurity admission plugin reads it",
                "label pod-security.kubernetes.io/warn=\"restricted \" is not a Pod Security \
                 level; read as \"privileged\", as the PodSecurity admission plugin reads it",
                "label pod-security.kubernetes.io/warn-version=\"v1.030\" is not a Pod \
                 Security version; read as \"latest\", as the PodSecurity admission plugin \
                 reads it",
            ]
        );
    }
}
