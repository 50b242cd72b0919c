//! Flags several commands share, and the few steps every cluster command takes the same way
//! (opening the repository, starting the runtime, connecting, serving HTTPS).

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use tenantry_admission::{ReloadingCertificate, tls};
use tenantry_api::platform::OpenBaoConfig;
use tenantry_cluster::{ClusterEndpoint, ClusterError, KubeCluster, KubeconfigSource};
use tenantry_gitops::{LoadedTenant, PlatformFile, Repo};
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

    /// Open the repository (`tenantry.yaml` required) and load the one tenant `name`, for the
    /// commands that look at a single tenant. A bad name is refused before anything is read.
    pub fn open_tenant(&self, name: &str) -> anyhow::Result<(Repo, LoadedTenant)> {
        Repo::check_name(name)?;
        let repo = self.open(PlatformFile::Required)?;
        let loaded = repo.load_tenants(&[name.to_owned()])?;
        let Ok([tenant]) = <[LoadedTenant; 1]>::try_from(loaded) else {
            anyhow::bail!(
                "tenant {name} is not in {}",
                crate::output::display(&repo.tenants_dir())
            );
        };
        Ok((repo, tenant))
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

/// What `webhook` and `proxy` serve with: the address, the certificate (reloaded when its
/// files change) and the platform file. One set of flags so both install and run the same way.
#[derive(Args, Debug)]
pub struct ServeFlags {
    /// Address to serve HTTPS on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// PEM certificate chain to serve; reloaded when the file changes.
    #[arg(long, value_name = "FILE", required = true)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate; reloaded when the file changes.
    #[arg(long, value_name = "FILE", required = true)]
    pub tls_key: Option<PathBuf>,
    /// Platform configuration (tenantry.yaml). Built-in defaults when not given.
    #[arg(long, value_name = "FILE", env = "TENANTRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// How often to check the certificate files for changes, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub cert_poll_seconds: u64,
    /// Threads serving requests. 1 serves everything on one thread: the fewest wake-ups per
    /// request and one CPU at most. Default: one per CPU the process may use.
    #[arg(
        long,
        value_name = "N",
        env = "TENANTRY_WORKER_THREADS",
        value_parser = clap::value_parser!(u16).range(1..=1024)
    )]
    pub worker_threads: Option<u16>,
}

impl ServeFlags {
    /// Load the certificate, then on a multi-threaded runtime build the router with `app` and
    /// serve it on `--listen` until SIGTERM or Ctrl-C, draining open connections. `name` and
    /// `path` only word the lines printed on stderr (`tenantry <name>: serving https://…`).
    pub fn serve(
        self,
        name: &str,
        path: &str,
        app: impl Future<Output = anyhow::Result<axum::Router>>,
    ) -> anyhow::Result<ExitCode> {
        self.serve_with_clients(name, path, None, app)
    }

    /// [`ServeFlags::serve`], asking clients for certificates `clients` verifies when given.
    pub fn serve_with_clients(
        self,
        name: &str,
        path: &str,
        clients: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
        app: impl Future<Output = anyhow::Result<axum::Router>>,
    ) -> anyhow::Result<ExitCode> {
        let (Some(cert), Some(key)) = (self.tls_cert, self.tls_key) else {
            anyhow::bail!("--tls-cert and --tls-key are required to serve");
        };
        let certificate = Arc::new(
            ReloadingCertificate::load(&cert, &key, tls::provider())
                .context("loading the serving certificate")?,
        );
        let tls_config = match clients {
            Some(clients) => tls::server_config_with_clients(certificate.clone(), clients)?,
            None => tls::server_config(certificate.clone())?,
        };
        let runtime = serving_runtime(self.worker_threads).context("starting the async runtime")?;
        runtime.block_on(async move {
            let router = app.await?;
            certificate
                .clone()
                .spawn_reloader(Duration::from_secs(self.cert_poll_seconds.max(1)));
            let listener = tokio::net::TcpListener::bind(self.listen)
                .await
                .with_context(|| format!("listening on {}", self.listen))?;
            eprintln!(
                "tenantry {name}: serving https://{}{path}",
                listener.local_addr()?
            );
            tenantry_admission::serve(listener, tls_config, router, shutdown_signal()).await;
            eprintln!("tenantry {name}: stopped");
            Ok(ExitCode::SUCCESS)
        })
    }
}

/// The runtime a server runs on. One thread is tokio's current-thread scheduler, not a
/// one-worker pool: a request then wakes no other thread. A request's tasks (the client's
/// connection, the pooled upstream connection, the body between them) are woken together,
/// and on a multi-threaded runtime the one that does not fit the waking worker's LIFO slot
/// goes to its queue and wakes a second worker to steal it; on a busy machine that wake-up
/// waits for a CPU (BENCHMARKS.md, "Tenant proxy": 3.6 against 2.2 times on a CPU per
/// forwarded POST). More threads serve more requests at once; the default keeps that.
fn serving_runtime(worker_threads: Option<u16>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match worker_threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    if let Some(n) = worker_threads.filter(|n| *n > 1) {
        builder.worker_threads(usize::from(n));
    }
    builder.enable_all().build()
}

/// Ctrl-C, or SIGTERM (what the kubelet sends before killing the pod).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
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
