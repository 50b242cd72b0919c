//! Leader election on a `coordination.k8s.io` Lease, through `kube-lease-manager`.
//!
//! kube-rs has no leader election of its own. `kube-lease-manager` 0.13 is built on the very
//! kube 5 / k8s-openapi 0.29 this workspace uses (no second client, no second TLS stack),
//! takes the lease with server-side apply so two candidates cannot both win, tolerates clock
//! skew with a grace period, and releases the lease when its channel is dropped, which is
//! how a graceful shutdown hands over at once. A hand-written Lease loop would be the same
//! ~300 lines without its tests.

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::{sync::watch, task::JoinHandle};

use crate::controller::OperatorError;

/// Which Lease, and who this replica is.
#[derive(Clone, Debug)]
pub struct LeaseOptions {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This replica's identity (the pod name in a cluster).
    pub identity: String,
    /// Seconds a holder keeps the lease without renewing it: how long a standby waits for a
    /// dead leader at most.
    pub duration_seconds: u64,
    /// Seconds before expiry the holder renews.
    pub grace_seconds: u64,
}

impl LeaseOptions {
    fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Start competing for the lease: the receiver says whether this replica holds it.
pub async fn watch(
    client: Client,
    options: &LeaseOptions,
) -> Result<
    (
        watch::Receiver<bool>,
        JoinHandle<kube_lease_manager::Result<LeaseManager>>,
    ),
    OperatorError,
> {
    let manager = LeaseManagerBuilder::new(client, &options.name)
        .with_namespace(&options.namespace)
        .with_identity(&options.identity)
        .with_field_manager(format!("tenantry-operator-{}", options.identity))
        .with_duration(options.duration_seconds)
        .with_grace(options.grace_seconds)
        .build()
        .await
        .map_err(|e| OperatorError::Lease {
            lease: options.lease(),
            message: e.to_string(),
        })?;
    Ok(manager.watch().await)
}

/// Wait for the lease task to release the lease (its receiver must be dropped first).
pub async fn finish(
    task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
    options: &LeaseOptions,
) -> Result<(), OperatorError> {
    match task.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(OperatorError::Lease {
            lease: options.lease(),
            message: format!("releasing: {e}"),
        }),
        Err(e) => Err(OperatorError::Lease {
            lease: options.lease(),
            message: format!("the lease task ended: {e}"),
        }),
    }
}
