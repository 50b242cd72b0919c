//! Errors that say where: the OpenBao address, the API path and what the server answered.
//!
//! An operator reading one of these must be able to fix the cause without a debugger: a
//! refused request names the capability the token lacks and the path it lacks it on, an
//! unreachable or sealed server names its address. No variant carries a token or a secret
//! value; server messages are kept, as OpenBao does not echo request bodies in them.

use std::path::PathBuf;

/// What went wrong talking to OpenBao.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// No address given.
    #[error(
        "no OpenBao address: set BAO_ADDR (or VAULT_ADDR) or pass --bao-addr, e.g. https://openbao.example:8200"
    )]
    NoAddress,
    /// The address is not an http(s) URL.
    #[error("OpenBao address {address:?} is not an http:// or https:// URL: {reason}")]
    BadAddress {
        /// The address as given.
        address: String,
        /// Why it was refused.
        reason: String,
    },
    /// No token given.
    #[error(
        "no OpenBao token: set BAO_TOKEN (or VAULT_TOKEN), pass --bao-token-file FILE (a file holding the token), or log in with Kubernetes auth (--openbao-k8s-role ROLE or BAO_K8S_ROLE)"
    )]
    NoToken,
    /// A Kubernetes-auth login was refused.
    #[error(
        "OpenBao at {address} refused the Kubernetes login at {path} as role {role:?} with the ServiceAccount token in {}: {answer}",
        jwt_file.display()
    )]
    Login {
        /// The server's address.
        address: String,
        /// `auth/<mount>/login`.
        path: String,
        /// The role.
        role: String,
        /// Where the ServiceAccount token was read (never the token).
        jwt_file: PathBuf,
        /// The HTTP status and what the server said.
        answer: String,
    },
    /// A file (token or CA) could not be read or used.
    #[error("cannot use {what} {}: {reason}", path.display())]
    File {
        /// Which file it is ("token file", "CA file").
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The server could not be reached (connection refused, DNS, TLS, timeout).
    #[error("OpenBao at {address} is unreachable: {reason}")]
    Unreachable {
        /// The server's address.
        address: String,
        /// The transport's explanation.
        reason: String,
    },
    /// The server is sealed: it answers nothing until unsealed.
    #[error("OpenBao at {address} is sealed: unseal it (bao operator unseal) and run again")]
    Sealed {
        /// The server's address.
        address: String,
    },
    /// The token is not allowed to do this (HTTP 403).
    #[error(
        "OpenBao at {address} refused {method} {path}: the token lacks capability {capability:?} on path {path:?} ({message})"
    )]
    Denied {
        /// The server's address.
        address: String,
        /// The HTTP method.
        method: String,
        /// The API path, without `/v1/`.
        path: String,
        /// The ACL capability the request needs.
        capability: &'static str,
        /// What the server said.
        message: String,
    },
    /// Any other refusal.
    #[error("OpenBao at {address} answered {method} {path} with HTTP {status}: {message}")]
    Api {
        /// The server's address.
        address: String,
        /// The HTTP method.
        method: String,
        /// The API path, without `/v1/`.
        path: String,
        /// The HTTP status.
        status: u16,
        /// What the server said.
        message: String,
    },
    /// The server answered something that is not the Vault API's JSON.
    #[error("OpenBao at {address} answered {method} {path} with an unexpected body: {reason}")]
    Unexpected {
        /// The server's address.
        address: String,
        /// The HTTP method.
        method: String,
        /// The API path, without `/v1/`.
        path: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The platform's setup is missing something provisioning needs and may not create.
    #[error("{0}")]
    Setup(String),
    /// A rendered artifact is not what this crate expects (a bug between the crates).
    #[error("rendered OpenBao artifacts of tenant {tenant}: {reason}")]
    Render {
        /// The tenant.
        tenant: String,
        /// What is wrong.
        reason: String,
    },
}

impl SecretsError {
    /// True when the server could not be used at all (unreachable or sealed): nothing was
    /// written, and running again once it is back is the fix.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Sealed { .. })
    }
}
