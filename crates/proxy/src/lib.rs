//! Tenantry's tenant proxy: a tenant's kubectl, k9s or Flux talks to the shared API server as
//! if the cluster were the tenant's own.
//!
//! A tenant's credential is namespace-scoped, so `kubectl get namespaces` is Forbidden, k9s
//! starts on an error, and tools that discover namespaces break. The proxy sits in front of
//! the API server and answers namespace reads from an in-memory index filtered to the caller's
//! tenant, and forwards everything else *as the caller* (impersonation), so RBAC, admission
//! and the audit log see the real user, never the proxy. It adds no decision of its own to
//! what a tenant may do: at worst a request is answered with the caller's own rights.
//!
//! Pure and I/O parts are apart, so the request path is tested without a cluster:
//! - [`route`]: where a request goes, and the refusal of ambiguous paths and client-sent
//!   impersonation (fuzzed);
//! - [`selector`]: label and field selectors as the API server reads them;
//! - [`index`]: who belongs to which tenant, namespace list/get/watch per caller;
//! - [`wire`]: objects, Tables and metadata in the API server's formats;
//! - [`auth`]: bearer tokens and the bounded review cache; [`client_cert`]: x509 client
//!   certificates read as the API server reads them; [`status`]: refusals as `v1.Status`;
//! - [`cluster`]: the cluster-scoped class kinds the platform exposes read-only;
//! - [`forward`]: the headers a forwarded request carries, and the forwarding itself;
//! - [`feed`]: the watches filling the index; [`server`]: the axum request path;
//! - [`manifests`]: the objects that install the proxy; [`metrics`]: what it reports to
//!   Prometheus.
#![forbid(unsafe_code)]

pub mod auth;
pub mod client_cert;
pub mod cluster;
pub mod feed;
pub mod forward;
pub mod index;
pub mod manifests;
pub mod metrics;
pub mod route;
pub mod selector;
pub mod server;
pub mod status;
pub mod wire;

pub use feed::Shared;
pub use route::{IndexRead, Route, route};
pub use server::{ProxyState, router};
