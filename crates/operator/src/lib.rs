//! Tenantry's operator: every `Tenant` object in the cluster kept converged, with the same
//! renderer, plan and apply as `tenantry apply`.
//!
//! A platform either keeps its tenants in a repository and runs the CLI (or Flux) over it,
//! or declares them as `Tenant` objects and lets this operator act on them; both produce the
//! same objects with the same field manager, so they can be mixed and handed over without a
//! single write. The operator adds what only a process that stays running can give: status
//! on the Tenant, drift repaired within seconds, offboarding on deletion (a finalizer), and
//! leader election so that two replicas never write at once.
//!
//! The layout keeps the decisions testable without a server: [`status`] and [`platform`]
//! are pure, [`reconcile`] runs against any `ClusterApi` (the in-memory fake in tests), and
//! only [`controller`] and [`leader`] speak kube-runtime.
#![forbid(unsafe_code)]

pub mod controller;
pub mod echo;
pub mod flux_proxy;
pub mod inventory;
pub mod leader;
pub mod manifests;
pub mod metrics;
pub mod platform;
pub mod reconcile;
pub mod status;

/// A lock's guard whether or not a panicking holder poisoned it. The operator's shared state
/// (caches, counters, the platform in use) stays valid across a panic in one reconcile: each
/// write replaces a whole value, so a poisoned lock holds no half-made state.
pub(crate) trait Unpoisoned<G> {
    fn unpoisoned(self) -> G;
}

impl<G> Unpoisoned<G> for std::sync::LockResult<G> {
    fn unpoisoned(self) -> G {
        self.unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub use controller::{OperatorError, Options, run};

/// The finalizer that makes deleting a Tenant offboard it.
pub const FINALIZER: &str = "tenantry.dev/offboard";
/// The field manager of the status the operator writes (the objects are applied as
/// `tenantry`, like the CLI's).
pub const STATUS_MANAGER: &str = "tenantry-status";
