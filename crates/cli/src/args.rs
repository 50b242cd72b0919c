//! Flags several commands share, and the few steps every cluster command takes the same way
//! (opening the repository, starting the runtime, connecting).

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use tenantry_cluster::{ClusterEndpoint, ClusterError, KubeCluster, KubeconfigSource};
use tenantry_gitops::{PlatformFile, Repo};

use crate::output::Output;

/// Where the platform repository is.
#[derive(Args, Debug, Clone)]
pub struct RepoArg {
    /// Platform repository root (holds tenantry.yaml and the tenants directory).
    #[arg(long, value_name = "DIR", default_value = ".", env = "TENANTRY_REPO")]
    pub repo: PathBuf,
}

impl RepoArg {
    /// Open the repository; a directory without `tenantry.yaml` is refused unless `missing`
    /// says otherwise.
    pub fn open(&self, missing: PlatformFile) -> anyhow::Result<Repo> {
        Ok(Repo::open(&self.repo, missing)?)
    }
}

/// Which cluster, as `kubectl` chooses it, and how to print.
#[derive(Args, Debug, Clone, Default)]
pub struct ClusterFlags {
    /// Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text, value_name = "FORMAT")]
    pub output: Output,
}

/// The cluster a command talked to, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterInfo {
    /// The kubeconfig context.
    pub context: String,
    /// The API server URL.
    pub server: String,
}

impl From<&ClusterEndpoint> for ClusterInfo {
    fn from(endpoint: &ClusterEndpoint) -> Self {
        Self {
            context: endpoint.context.clone(),
            server: endpoint.server.clone(),
        }
    }
}

impl ClusterFlags {
    /// Connect with the chosen kubeconfig and context.
    pub async fn connect(&self) -> Result<(KubeCluster, ClusterEndpoint), ClusterError> {
        tenantry_cluster::connect(&KubeconfigSource {
            path: self.kubeconfig.clone(),
            context: self.context.clone(),
        })
        .await
    }
}

/// A Go-style duration flag (`8h`, `30m`, `1h30m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    tenantry_cluster::credential::parse_duration(text)
}

/// The async runtime cluster commands run on: one thread, as they wait on the network.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
