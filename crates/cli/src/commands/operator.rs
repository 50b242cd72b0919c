//! `tenantry operator`: run the operator that keeps every Tenant object converged, or print
//! the manifests that install it. Everything it decides lives in `tenantry-operator`; this
//! file turns flags into its options and builds the runtime.

use std::{io::Write, net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use tenantry_cluster::ops::Waits;
use tenantry_operator::{
    Options,
    leader::LeaseOptions,
    manifests::{self, ManifestOptions},
    platform::ConfigSource,
};

use crate::args::{BaoFlags, parse_duration};

/// `tenantry operator`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct OperatorArgs {
    #[command(subcommand)]
    command: Option<OperatorCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum OperatorCommand {
    /// Print the CRD, Namespace, ServiceAccount, RBAC, Deployment, PodDisruptionBudget and
    /// metrics Service that install the operator.
    #[command(
        after_help = "Examples:\n  tenantry operator manifests | kubectl apply --server-side -f -\n  tenantry operator manifests --config tenantry.yaml --image registry.example/tenantry:v1\n  tenantry operator manifests --write deploy/operator     the kustomize base\n  tenantry operator manifests --helm-chart charts/tenantry     the Helm chart"
    )]
    Manifests(ManifestsArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Kubeconfig file (default: in-cluster configuration, else $KUBECONFIG or ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: its current context).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Namespace of the platform ConfigMap and of the leader Lease.
    #[arg(long, value_name = "NAME", default_value = manifests::NAMESPACE, env = "POD_NAMESPACE")]
    namespace: String,
    /// The ConfigMap holding tenantry.yaml (key `tenantry.yaml`).
    #[arg(long, value_name = "NAME", default_value = manifests::CONFIG_MAP)]
    config_map: String,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Run without leader election (one replica only).
    #[arg(long)]
    no_leader_election: bool,
    /// Name of the leader Lease.
    #[arg(long, value_name = "NAME", default_value = manifests::NAME)]
    lease_name: String,
    /// This replica's identity in the Lease (default: $POD_NAME, else the host name).
    #[arg(long, value_name = "ID", env = "POD_NAME")]
    identity: Option<String>,
    /// How long a leader holds the lease without renewing it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "15s")]
    lease_duration: Duration,
    /// Reconcile only the Tenants matching this label selector.
    #[arg(long, value_name = "SELECTOR")]
    selector: Option<String>,
    /// Tenants reconciled at once. A new tenant's reconcile mostly waits (for its namespace
    /// and the API server's writes), so more than the cores help: a cold start of 1,000
    /// tenants took 78 s at 8 and 55 s at 16 on a 2-core local API server (BENCHMARKS.md).
    #[arg(long, value_name = "N", default_value_t = 16)]
    concurrency: u16,
    /// OpenBao, for tenants with secrets.openbao: their policy and role are provisioned on
    /// reconcile and revoked (with every token) on deletion. In a cluster, log in with the
    /// operator's own ServiceAccount: `--bao-addr URL --openbao-k8s-role ROLE`.
    #[command(flatten)]
    openbao: BaoFlags,
}

#[derive(Args, Debug)]
struct ManifestsArgs {
    /// Namespace to install into.
    #[arg(long, value_name = "NAME", default_value = manifests::NAMESPACE)]
    namespace: String,
    /// Container image whose entrypoint is `tenantry`.
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
    /// The platform's tenantry.yaml, embedded in the ConfigMap the operator reads (the
    /// built-in defaults otherwise).
    #[arg(long, value_name = "FILE", env = "TENANTRY_CONFIG")]
    config: Option<PathBuf>,
    /// Replicas: one holds the leader Lease, the others stand by.
    #[arg(long, value_name = "N", default_value_t = ManifestOptions::default().replicas)]
    replicas: u32,
    /// Name of the ConfigMap holding tenantry.yaml.
    #[arg(long, value_name = "NAME", default_value = manifests::CONFIG_MAP)]
    config_map: String,
    /// The operator's TENANTRY_LOG: a level or tracing directives.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    log_level: String,
    /// The operator container's resources, as JSON
    /// (`{"requests":{"cpu":"100m","memory":"64Mi"},"limits":{"memory":"256Mi"}}` by default).
    #[arg(long, value_name = "JSON", value_parser = parse_resources)]
    resources: Option<serde_json::Value>,
    /// Write the manifests as a kustomize base into this directory instead of printing them.
    #[arg(long, value_name = "DIR")]
    write: Option<PathBuf>,
    /// Write the Helm chart (Chart.yaml, values.yaml, crds/, templates/) into this directory: the
    /// same documents, with the flags above as Helm values (the tenantry.yaml of --config is
    /// embedded, as the ClusterRole depends on it).
    #[arg(long, value_name = "DIR", conflicts_with_all = [
        "write", "namespace", "image", "replicas", "config_map", "log_level", "resources",
        "bao_addr",
    ])]
    helm_chart: Option<PathBuf>,
    /// OpenBao's address, for tenants with secrets.openbao (with --openbao-k8s-role).
    #[arg(long, value_name = "URL", requires = "openbao_k8s_role")]
    bao_addr: Option<String>,
    /// The Kubernetes-auth role the operator logs in to OpenBao as, with its own
    /// ServiceAccount token (with --bao-addr).
    #[arg(long, value_name = "ROLE", requires = "bao_addr")]
    openbao_k8s_role: Option<String>,
}

/// Run `tenantry operator`.
pub fn run(args: OperatorArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(OperatorCommand::Manifests(m)) => print_manifests(m),
        None => serve(args.run),
    }
}

fn serve(args: RunArgs) -> anyhow::Result<ExitCode> {
    let identity = args
        .identity
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("tenantry-operator-{}", std::process::id()));
    let options = Options {
        kubeconfig: args.kubeconfig,
        context: args.context,
        config: ConfigSource {
            namespace: args.namespace.clone(),
            name: args.config_map,
        },
        listen: args.listen,
        lease: (!args.no_leader_election).then(|| LeaseOptions {
            namespace: args.namespace,
            name: args.lease_name,
            identity,
            duration_seconds: args.lease_duration.as_secs().max(2),
            grace_seconds: (args.lease_duration.as_secs() / 3).max(1),
        }),
        tenant_selector: args.selector,
        concurrency: args.concurrency,
        waits: Waits::default(),
        openbao: args
            .openbao
            .configured()
            .then(|| args.openbao.connection_flags()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(tenantry_operator::run(options, shutdown_signal()))?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn print_manifests(args: ManifestsArgs) -> anyhow::Result<ExitCode> {
    let platform_config = match &args.config {
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    if let Some(dir) = &args.helm_chart {
        let files = manifests::helm::chart(platform_config).map_err(|e| anyhow::anyhow!("{e}"))?;
        return write_files(dir, files);
    }
    let mut options = ManifestOptions {
        namespace: args.namespace,
        platform_config,
        replicas: args.replicas,
        config_map: args.config_map,
        log_level: args.log_level,
        openbao: args.bao_addr.zip(args.openbao_k8s_role),
        ..ManifestOptions::default()
    };
    if let Some(image) = args.image {
        options.image = image;
    }
    if let Some(resources) = args.resources {
        options.resources = resources;
    }
    let documents = manifests::documents(&options).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(dir) = &args.write {
        return write_files(dir, manifests::kustomize_base(&documents));
    }
    std::io::stdout()
        .lock()
        .write_all(manifests::to_yaml(&documents).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `--resources`: a JSON object, as a container's `resources` is.
fn parse_resources(text: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str(text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err("must be a JSON object such as {\"limits\":{\"memory\":\"256Mi\"}}".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// Writes `(path relative to dir, contents)` under `dir`, creating directories as needed.
fn write_files(dir: &std::path::Path, files: Vec<(String, String)>) -> anyhow::Result<ExitCode> {
    for (file, text) in files {
        let path = dir.join(&file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
