//! Errors that say what to do next.
//!
//! The API server answers with a `Status` whose reason and causes are precise but written
//! for machines. A platform engineer running `onboard` needs the object, the field, and
//! whether to fix the tenant, the kubeconfig or the cluster, so each status the cluster edge
//! can meet is turned into its own variant with that information. The variants are the
//! types callers branch on (a rejected credential or an unreachable server stops a loop over
//! tenants; a 404 on a TokenRequest means "not onboarded"), so errors are passed on as they
//! are, never re-wrapped as text. A server `Status` is fully kept in the variant's fields;
//! a transport failure keeps the client's error as its `source`.

use std::sync::Arc;

use crate::catalog::MissingKind;

/// One invalid field reported by the API server (`details.causes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// The field path as the server spells it, e.g. `metadata.labels` or `data[bad/key]`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Everything that can go wrong talking to a cluster. `Clone`, so that one failure can be
/// both an object's outcome in a report and the reason a tenant stopped.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ClusterError {
    /// The kubeconfig could not be read or has no usable context.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// The credential in use was rejected (HTTP 401).
    #[error(
        "the credential was rejected by the API server (401 Unauthorized) while {doing}: it is invalid or expired; log in again or choose another --kubeconfig/--context"
    )]
    Unauthorized {
        /// What Tenantry was doing.
        doing: String,
    },
    /// The credential is not allowed to do this (HTTP 403).
    #[error("forbidden while {doing}: {message}")]
    Forbidden {
        /// What Tenantry was doing.
        doing: String,
        /// The server's message (who cannot do what).
        message: String,
    },
    /// A server-side apply conflict (HTTP 409), with the contested fields.
    #[error("conflict applying {object}: {message}{}", fields_suffix(fields))]
    Conflict {
        /// The object.
        object: String,
        /// The server's message.
        message: String,
        /// The fields another manager owns.
        fields: Vec<String>,
    },
    /// The server refused an object as invalid (HTTP 422).
    #[error("{object} is invalid:{}", format_causes(causes, message))]
    Invalid {
        /// The object.
        object: String,
        /// The server's message, shown when it gave no causes.
        message: String,
        /// Each invalid field.
        causes: Vec<Cause>,
    },
    /// Any other API error.
    #[error("{doing}: {message} ({code} {reason})")]
    Api {
        /// What Tenantry was doing.
        doing: String,
        /// HTTP status code.
        code: u16,
        /// The status reason, e.g. `NotFound`, `AlreadyExists`, `ServiceUnavailable`.
        reason: String,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached or answered something that is not the Kubernetes API.
    #[error("{doing}: {message}")]
    Transport {
        /// What Tenantry was doing.
        doing: String,
        /// The root cause in one line (e.g. `Connection refused (os error 111)`).
        message: String,
        /// The client's error, with its whole chain of causes.
        #[source]
        source: Option<Arc<kube::Error>>,
    },
    /// Kinds the tenant needs are not served by the cluster.
    #[error("{}", format_missing(.0))]
    MissingKinds(Vec<MissingKind>),
    /// A namespace is being deleted, so nothing can be created in it until it is gone.
    #[error(
        "namespace {0} is being deleted (Terminating); wait until it is gone, then run the command again"
    )]
    NamespaceTerminating(String),
    /// Something did not happen within the allowed time.
    #[error("timed out after {seconds}s waiting for {what}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        seconds: u64,
    },
    /// A local file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// The cause.
        message: String,
    },
    /// A value given by the user or the platform is unusable.
    #[error("{0}")]
    Input(String),
    /// A credential that must not be used (its scope check failed, or could not be made)
    /// could not be revoked.
    #[error(
        "credential {id} of tenant {tenant} {why}, and revoking it failed: it is still valid until it expires; delete Secret {secret} (`tenantry credentials revoke {tenant} {id}`)"
    )]
    NotRevoked {
        /// The tenant.
        tenant: String,
        /// The credential ID.
        id: String,
        /// `namespace/name` of its handle.
        secret: String,
        /// Why it had to be revoked.
        why: String,
        /// Why revoking failed.
        #[source]
        source: Box<ClusterError>,
    },
}

/// Serialize an optional error as its message, for reports.
pub(crate) fn serialize_error<S: serde::Serializer>(
    e: &Option<ClusterError>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.serialize_str(&e.to_string()),
        None => s.serialize_none(),
    }
}

impl ClusterError {
    /// True when every further request to the same server would fail the same way (the
    /// credential is rejected, or the server cannot be reached), so a loop over many objects
    /// or tenants should stop rather than repeat the error for each.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ClusterError::Unauthorized { .. } | ClusterError::Transport { .. }
        )
    }

    /// The HTTP status code, for API errors.
    pub fn code(&self) -> Option<u16> {
        match self {
            ClusterError::Unauthorized { .. } => Some(401),
            ClusterError::Forbidden { .. } => Some(403),
            ClusterError::Conflict { .. } => Some(409),
            ClusterError::Invalid { .. } => Some(422),
            ClusterError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

fn fields_suffix(fields: &[String]) -> String {
    if fields.is_empty() {
        String::new()
    } else {
        format!(" (fields owned by another manager: {})", fields.join(", "))
    }
}

fn format_causes(causes: &[Cause], message: &str) -> String {
    if causes.is_empty() {
        return format!(" {message}");
    }
    let mut out = String::new();
    for c in causes {
        out.push_str(&format!("\n  {}: {}", c.field, c.message));
    }
    out
}

fn format_missing(missing: &[MissingKind]) -> String {
    let mut out = String::from("the cluster does not serve every kind this tenant needs:");
    for m in missing {
        out.push_str(&format!("\n  {m}"));
    }
    out.push_str(
        "\ninstall the missing CustomResourceDefinitions (the controllers that own them), or pass --skip-missing-crds to apply the tenant without those layers",
    );
    out
}
