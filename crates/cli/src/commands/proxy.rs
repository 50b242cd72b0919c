//! `tenantry proxy`: serve the tenant proxy, or print the manifests that install it.
//!
//! Everything the proxy decides lives in `tenantry-proxy`; this file turns flags into its
//! parts (the platform's tenant label, the API server client, the serving certificate) and
//! wires them to the webhook's TLS server.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use tenantry_admission::watch;
use tenantry_core::PlatformContext;
use tenantry_proxy::{
    ProxyState, Shared,
    cluster::ClusterReads,
    feed::{feed_namespaces, feed_tenants},
    forward::Upstream,
    manifests::{ManifestOptions, documents, to_yaml},
};

use super::webhook::load_platform;
use crate::args::ServeFlags;

/// `tenantry proxy`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ProxyArgs {
    #[command(subcommand)]
    command: Option<ProxyCommand>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum ProxyCommand {
    /// Print the ServiceAccount, ClusterRole, Deployment, Service, PodDisruptionBudget (and
    /// cert-manager certificate) that install the proxy.
    #[command(
        after_help = "Examples:\n  tenantry proxy manifests | kubectl apply --server-side -f -\n  tenantry proxy manifests --config tenantry.yaml --dns-name proxy.example.com\n  tenantry proxy manifests --own-certificate     Secret tenantry-proxy-tls made elsewhere"
    )]
    Manifests(ManifestsArgs),
}

#[derive(Args, Debug)]
#[command(mut_arg("config", |a| a.help(
    "Platform configuration (tenantry.yaml), for the tenant label. Built-in defaults when \
     not given"
)))]
struct ServeArgs {
    #[command(flatten)]
    serve: ServeFlags,
    /// Kubeconfig of the proxy's own identity (in-cluster configuration or KUBECONFIG when
    /// not given).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// PEM CA bundle whose client certificates authenticate callers (CN the user, O the
    /// groups, as the API server reads them); bearer tokens keep working. Without it the
    /// proxy asks for no certificate.
    #[arg(long, value_name = "FILE")]
    client_ca: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ManifestsArgs {
    /// Namespace to install into; it must not carry the tenant label.
    #[arg(long, value_name = "NAME", default_value = "tenantry-system")]
    namespace: String,
    /// Container image whose entrypoint is `tenantry`.
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
    /// Platform configuration to run with (embedded in a ConfigMap).
    #[arg(long, value_name = "FILE", env = "TENANTRY_CONFIG")]
    config: Option<PathBuf>,
    /// Replicas of the Deployment.
    #[arg(long, value_name = "N", default_value_t = 2)]
    replicas: u32,
    /// The serving certificate (Secret tenantry-proxy-tls) is issued elsewhere: no
    /// cert-manager objects.
    #[arg(long)]
    own_certificate: bool,
    /// Another DNS name tenants reach the proxy by (repeatable), for its certificate.
    #[arg(long = "dns-name", value_name = "NAME")]
    dns_names: Vec<String>,
}

/// Run `tenantry proxy`.
pub fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(ProxyCommand::Manifests(m)) => manifests(m),
        None => serve(args.serve),
    }
}

/// The cluster-scoped kinds `tenantry.yaml` exposes, its errors naming the file.
fn cluster_reads(ctx: &PlatformContext, config: Option<&Path>) -> anyhow::Result<ClusterReads> {
    ClusterReads::from_platform(&ctx.platform).map_err(|e| {
        let file = config.map_or("built-in platform defaults".to_owned(), |p| {
            p.display().to_string()
        });
        anyhow::anyhow!("{file}: {e}")
    })
}

fn manifests(args: ManifestsArgs) -> anyhow::Result<ExitCode> {
    let (ctx, text) = load_platform(args.config.as_deref())?;
    let reads = cluster_reads(&ctx, args.config.as_deref())?;
    let mut opts = ManifestOptions {
        cluster_reads: reads.kinds().collect(),
        namespace: args.namespace,
        replicas: args.replicas,
        platform_config: text,
        own_certificate: args.own_certificate,
        dns_names: args.dns_names,
        ..ManifestOptions::default()
    };
    if let Some(image) = args.image {
        opts.image = image;
    }
    print!("{}", to_yaml(&documents(&opts)));
    Ok(ExitCode::SUCCESS)
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (ctx, _) = load_platform(args.serve.config.as_deref())?;
    let reads = cluster_reads(&ctx, args.serve.config.as_deref())?;
    let kubeconfig = args.kubeconfig;
    let clients = args
        .client_ca
        .as_deref()
        .map(tenantry_proxy::client_cert::verifier)
        .transpose()
        .context("--client-ca")?;
    args.serve
        .serve_with_clients("proxy", "", clients, async move {
            let config = match &kubeconfig {
                Some(path) => watch::config_from_kubeconfig(path).await?,
                None => watch::infer_config().await?,
            };
            let upstream = Upstream::from_config(&config)?;
            let client = kube::Client::try_from(config)?;
            let shared = Shared::new(ctx.tenant_label());
            tokio::spawn(feed_namespaces(client.clone(), shared.clone()));
            tokio::spawn(feed_tenants(client.clone(), shared.clone()));
            Ok(tenantry_proxy::router(
                ProxyState::new(shared, client, upstream).with_cluster_reads(reads),
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> anyhow::Result<ClusterReads> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenantry.yaml");
        std::fs::write(&path, yaml).unwrap();
        let (ctx, _) = load_platform(Some(&path))?;
        cluster_reads(&ctx, Some(&path))
    }

    #[test]
    fn bad_cluster_scoped_kinds_name_the_file_and_the_field() {
        let head = "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\nproxy:\n  clusterScoped:\n";
        let unknown = load(&format!("{head}  - kind: Secret\n")).unwrap_err();
        let message = format!("{unknown:#}");
        assert!(
            message.contains("tenantry.yaml") && message.contains("proxy.clusterScoped"),
            "{message}"
        );
        assert!(message.contains("Secret"), "{message}");
        let twice = load(&format!(
            "{head}  - kind: StorageClass\n  - kind: StorageClass\n    mode: all\n"
        ))
        .unwrap_err();
        let message = format!("{twice:#}");
        assert!(
            message.contains(
                "tenantry.yaml: proxy.clusterScoped[1].kind: StorageClass is listed twice"
            ),
            "{message}"
        );
        let ok = load(&format!("{head}  - kind: IngressClass\n    mode: all\n")).unwrap();
        assert_eq!(
            ok.mode(tenantry_api::platform::ProxyClusterKind::IngressClass),
            Some(tenantry_api::platform::ProxyReadMode::All)
        );
    }
}
