//! Tenantry's validating admission webhook: the cluster-side enforcement of the same
//! guardrails `tenantry check` runs in CI.
//!
//! Rendering tenants with the right labels and policies is not enough on a shared cluster:
//! tenants hold `edit` in their namespaces and can write anything the API server accepts.
//! The webhook closes that gap at the last point every write passes through, and does so with
//! the same pure engine as the CLI, so a manifest that passes `tenantry check` is admitted
//! and one that fails is refused with the same check IDs and remediations.
//!
//! The crate is split along what can be tested without a cluster:
//! - [`review`]: the AdmissionReview wire format (strict decoding, compact answers);
//! - [`namespaces`]: the namespace cache and the rules deciding which namespaces are judged;
//! - [`validate`]: the [`Validator`] trait and the policy engine behind it;
//! - [`decision`]: a verdict and its bounded, readable wording;
//! - [`server`]: the axum router and the TLS accept loop; [`tls`]: certificates that reload;
//! - [`metrics`]: Prometheus metrics; [`manifests`]: the objects that install the webhook;
//! - [`watch`]: the kube-rs watch filling the cache (the only code that needs a cluster).
#![forbid(unsafe_code)]

pub mod decision;
pub mod manifests;
pub mod metrics;
pub mod namespaces;
pub mod review;
pub mod server;
pub mod tls;
pub mod validate;
pub mod watch;

pub use decision::{Decision, Denial};
pub use namespaces::{NamespaceCache, NamespaceEntry, NamespaceScope, Watched};
pub use review::{AdmissionRequestView, AdmissionResponse, DecodeError};
pub use server::{AppState, PeerCertificates, answer, router, serve};
pub use tls::{ReloadingCertificate, install_crypto_provider};
pub use validate::{EngineValidator, Target, Validator};
