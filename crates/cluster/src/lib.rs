//! Tenantry's cluster edge: apply a rendered tenant to a live cluster, issue its
//! namespace-scoped credential, prune what it no longer declares, and offboard it.
//!
//! The objects applied are exactly the objects `tenantry-core` renders for the GitOps
//! files, in the same order. The one object this crate builds itself is a credential's
//! handle (a data-less Secret each issued token is bound to, see [`credential`]), because it
//! is not part of the tenant's declaration: it exists per kubeconfig handed out, so that
//! each one can be listed and revoked alone. What the crate adds is the cluster half of the
//! seed's promise, "provisioned in one command with a namespace-scoped credential;
//! offboarding prunes everything and revokes credentials".
//!
//! The I/O is deliberately thin and behind one trait, [`ClusterApi`]: [`KubeCluster`]
//! translates to kube-rs, and `fake::FakeCluster` (feature `testing`, never in the shipped
//! binary) serves tests and benchmarks. Everything
//! that decides — ordering, planning, resuming, pruning, the offboarding sequence, the
//! credential's scope check — is a function over that trait or a pure function in
//! [`tenantry_core::plan`], so it is tested without a server, and the kube-rs translation
//! is tested against real API-server responses.
#![forbid(unsafe_code)]

pub mod api;
pub mod catalog;
pub mod credential;
pub mod error;
#[cfg(feature = "testing")]
pub mod fake;
pub mod kube_api;
pub mod ops;

pub use api::{
    AccessCheck, AccessDecision, BoundObject, ClusterApi, Deletion, IssuedToken, SubjectAccess,
    TokenStatus,
};
pub use catalog::{Catalog, MissingKind, ResourceType};
pub use error::ClusterError;
pub use kube_api::{ClusterEndpoint, KubeCluster, KubeconfigSource, connect};
