//! Flags several commands share, and the few steps every cluster command takes the same way
//! (opening the repository, starting the runtime, connecting).

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use tenantry_api::platform::OpenBaoConfig;
use tenantry_cluster::{ClusterEndpoint, ClusterError, KubeCluster, KubeconfigSource};
use tenantry_gitops::{PlatformFile, Repo};
use tenantry_secrets::{BaoClient, Connection, ConnectionFlags, SecretsError};

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

/// How to reach OpenBao: `secrets provision|revoke`, and `onboard`, `apply` and `offboard`
/// for tenants with `secrets.openbao`.
#[derive(Args, Debug, Clone, Default)]
pub struct BaoFlags {
    /// OpenBao address (default: $BAO_ADDR, else $VAULT_ADDR).
    #[arg(long, value_name = "URL")]
    pub bao_addr: Option<String>,
    /// File holding the OpenBao token (default: $BAO_TOKEN, else $VAULT_TOKEN).
    #[arg(long, value_name = "FILE", conflicts_with = "openbao_k8s_role")]
    pub bao_token_file: Option<PathBuf>,
    /// PEM CA bundle to trust for OpenBao's TLS certificate (default: $BAO_CACERT, else
    /// $VAULT_CACERT, else the system's roots).
    #[arg(long, value_name = "FILE")]
    pub bao_ca_file: Option<PathBuf>,
    /// Log in to OpenBao with Kubernetes auth as this role, using Tenantry's own
    /// ServiceAccount token, at the auth mount openbao.authMount of tenantry.yaml (default:
    /// $BAO_K8S_ROLE; wins over $BAO_TOKEN).
    #[arg(long, value_name = "ROLE")]
    pub openbao_k8s_role: Option<String>,
    /// The ServiceAccount token to log in with.
    #[arg(
        long,
        value_name = "FILE",
        default_value = tenantry_secrets::client::SERVICE_ACCOUNT_TOKEN_FILE
    )]
    pub openbao_k8s_token_file: PathBuf,
}

impl BaoFlags {
    /// The flags as `tenantry-secrets` takes them (the auth mount left to the caller).
    pub fn connection_flags(&self) -> ConnectionFlags {
        ConnectionFlags {
            address: self.bao_addr.clone(),
            token_file: self.bao_token_file.clone(),
            ca_file: self.bao_ca_file.clone(),
            k8s_role: self.openbao_k8s_role.clone(),
            k8s_token_file: Some(self.openbao_k8s_token_file.clone()),
            auth_mount: None,
        }
    }

    /// Whether an OpenBao address is given, by flag or environment.
    pub fn configured(&self) -> bool {
        Connection::configured(&self.connection_flags(), env)
    }

    /// A client for the configured server; nothing is sent yet (a Kubernetes-auth login
    /// happens on first use, at `config`'s auth mount).
    pub fn client(&self, config: &OpenBaoConfig) -> Result<BaoClient, SecretsError> {
        let flags = ConnectionFlags {
            auth_mount: Some(config.auth_mount.clone()),
            ..self.connection_flags()
        };
        BaoClient::new(&Connection::resolve(&flags, env)?)
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
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
