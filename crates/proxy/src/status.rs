//! Refusals in the API server's own shape.
//!
//! kubectl, client-go and kube-rs turn a `kind: Status` body into their usual error
//! (`Error from server (NotFound): namespaces "x" not found`); anything else becomes an
//! opaque "unknown error". So every answer the proxy makes up itself is a `v1.Status` with the
//! code, reason and details the API server would have used for the same case.

use serde_json::{Value, json};

/// Longest refusal message, in bytes (before the closing `…`).
pub const MAX_MESSAGE_LEN: usize = 512;

/// A refusal: HTTP status, the API server's reason word, the message, and optionally the
/// object it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status code.
    pub code: u16,
    /// `BadRequest`, `Unauthorized`, `Forbidden`, `NotFound`, `Expired`, ….
    pub reason: &'static str,
    /// For people.
    pub message: String,
    /// `(kind, name)` of the object, for `details`.
    pub details: Option<(String, String)>,
    /// The API group of `details`, when not the core group.
    pub details_group: Option<&'static str>,
}

impl Refusal {
    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401 Unauthorized, worded as the API server words it.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 404 for a namespace the caller may not see: worded exactly as a missing one, so
    /// another tenant's namespace names are not disclosed.
    pub fn namespace_not_found(name: &str) -> Self {
        let mut r = Self::new(404, "NotFound", format!("namespaces \"{name}\" not found"));
        r.details = Some(("namespaces".to_owned(), name.to_owned()));
        r
    }

    /// 404 for a cluster-scoped object of `plural`.`group` the caller may not see, worded as
    /// a missing one.
    pub fn not_found(group: &'static str, plural: &str, name: &str) -> Self {
        let mut r = Self::new(
            404,
            "NotFound",
            format!("{plural}.{group} \"{name}\" not found"),
        );
        r.details = Some((plural.to_owned(), name.to_owned()));
        r.details_group = Some(group);
        r
    }

    /// 410 Expired: a resourceVersion older than what the proxy still remembers.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 503: the index has not finished its first list.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// Any other. The message is cut at [`MAX_MESSAGE_LEN`]: it may quote what a client
    /// sent, and a refusal must stay small whatever that was.
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_MESSAGE_LEN {
            let mut end = MAX_MESSAGE_LEN;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        Self {
            code,
            reason,
            message,
            details: None,
            details_group: None,
        }
    }

    /// The `v1.Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some((kind, name)) = &self.details {
            status["details"] = json!({"name": name, "kind": kind});
            if let Some(group) = self.details_group {
                status["details"]["group"] = json!(group);
            }
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_namespace_reads_like_the_api_servers_not_found() {
        // What `kubectl get ns nope -v=8` shows the API server answering.
        assert_eq!(
            Refusal::namespace_not_found("nope").to_status(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                   "message":"namespaces \"nope\" not found","reason":"NotFound",
                   "details":{"name":"nope","kind":"namespaces"},"code":404})
        );
    }
}
