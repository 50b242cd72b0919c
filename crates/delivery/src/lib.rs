//! The tenant side of signed delivery: what `tenantry publish`, `tenantry verify` and
//! `tenantry keys generate` do, so a tenant's `deploy/` tree reaches the platform's Flux
//! `OCIRepository` built, checked, packed, pushed and signed by Tenantry alone.
//!
//! ```text
//! deploy/ ──kustomize::build──▶ objects ──guardrails (tenantry-policy's Engine)──▶ Prepared
//!    Prepared ──artifact::flux_artifact──▶ Image ──registry::push (tag)──▶ digest
//!    digest ──cosign::payload + signature_image(key)──▶ push as sha256-<hex>.sig
//! verify: tag ──▶ digest ──▶ sha256-<hex>.sig ──▶ cosign::judge(keys) ──▶ Verdict
//! ```
//!
//! The pure parts (`artifact`, `cosign`, `reference`, the kustomize transforms) are unit
//! tested; the edges (files, the registry) are tested against the real Debian
//! `docker-registry`, with `skopeo` as the independent verifier. A [`Prepared`] can only be
//! made by [`prepare`], which runs the guardrails, so nothing unchecked can be pushed; and
//! everything is built and signed in memory before the first byte goes to the registry.
#![forbid(unsafe_code)]

pub mod artifact;
pub mod cosign;
pub mod credentials;
pub mod keys;
pub mod kustomize;
pub mod publish;
pub mod reference;
pub mod registry;

use std::path::PathBuf;

pub use publish::{Prepared, PublishOptions, Published, Verified, prepare, publish, verify};
pub use reference::OciRef;

/// Everything that can stop publishing or verifying.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A bad `oci://` reference.
    #[error("{url}: {why}")]
    Reference {
        /// What was given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// YAML or JSON that does not parse.
    #[error("{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file.
        file: PathBuf,
        /// The line, when known.
        line: Option<u64>,
        /// The parser's words.
        message: String,
    },
    /// A kustomization this build cannot honour.
    #[error("{}{}{message}", file.display(), if field.is_empty() { ": ".to_owned() } else { format!(": {field} ") })]
    Kustomize {
        /// The kustomization file (or directory).
        file: PathBuf,
        /// The field, e.g. `resources[2]` or `patches`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The built tree fails the guardrails; nothing was pushed.
    #[error("{count} guardrail finding(s) deny this tree; nothing was pushed")]
    Guardrails {
        /// How many denying findings.
        count: usize,
    },
    /// A key file that cannot be used.
    #[error("key {}: {source}", path.display())]
    Key {
        /// Where the key came from.
        path: PathBuf,
        /// Why.
        source: cosign::KeyError,
    },
    /// A private key others can read.
    #[error("private key {} is readable by group or others (mode {mode:04o}); run `chmod 600 {}`", path.display(), path.display())]
    KeyPermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Key files that already exist.
    #[error("{} already exists; refusing to overwrite a key", path.display())]
    KeyExists {
        /// The file.
        path: PathBuf,
    },
    /// The tag names other content already.
    #[error("{reference} already points at {existing}, not {new}; pass --force to move the tag")]
    TagExists {
        /// The tag.
        reference: String,
        /// What it points at now.
        existing: String,
        /// What publishing would point it at.
        new: String,
    },
    /// The registry could not be reached.
    #[error("registry {registry} is unreachable: {message}")]
    Unreachable {
        /// `host:port`.
        registry: String,
        /// The transport's words.
        message: String,
    },
    /// The registry refused the credentials.
    #[error("registry {registry} refused {credentials} while {doing}")]
    Auth {
        /// `host:port`.
        registry: String,
        /// Which credentials, and where they came from.
        credentials: String,
        /// What was being done, and the registry's words.
        doing: String,
    },
    /// A Docker config file entry that cannot be used.
    #[error("{}: {field} {message}", path.display())]
    RegistryConfig {
        /// The config file.
        path: PathBuf,
        /// The field, e.g. `auths.ghcr.io.auth`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A credential helper the Docker config names could not answer.
    #[error("registry {registry}: credential helper {helper}: {message}")]
    CredentialHelper {
        /// `docker-credential-<name>` and the file and field that named it.
        helper: String,
        /// `host:port`.
        registry: String,
        /// What went wrong.
        message: String,
    },
    /// An encrypted private key and no passphrase to open it.
    #[error("key {} is encrypted and no passphrase is available: set TENANTRY_KEY_PASSWORD (or COSIGN_PASSWORD), or run in a terminal to be asked", path.display())]
    NoPassphrase {
        /// Where the key came from.
        path: PathBuf,
    },
    /// Any other registry failure.
    #[error("{doing}: {message}")]
    Registry {
        /// What was being done.
        doing: String,
        /// The registry's words.
        message: String,
    },
    /// Packing failed (an I/O error writing in memory).
    #[error("packing the artifact: {0}")]
    Pack(std::io::Error),
    /// The asynchronous runtime could not start.
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
}
