//! `tenantry proxy`: serve the tenant proxy, or print the manifests that install it.
//!
//! Everything the proxy decides lives in `tenantry-proxy`; this file turns flags into its
//! parts (the platform's tenant label, the API server client, the serving certificate) and
//! wires them to the webhook's TLS server.

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Subcommand};
use tenantry_admission::watch;
use tenantry_proxy::{
    ProxyState, Shared,
    feed::{feed_namespaces, feed_tenants},
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

fn manifests(args: ManifestsArgs) -> anyhow::Result<ExitCode> {
    let (_, text) = load_platform(args.config.as_deref())?;
    let mut opts = ManifestOptions {
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
    let kubeconfig = args.kubeconfig;
    args.serve.serve("proxy", "", async move {
        let client = match &kubeconfig {
            Some(path) => watch::client_from_kubeconfig(path).await?,
            None => watch::infer_client().await?,
        };
        let shared = Shared::new(ctx.tenant_label());
        tokio::spawn(feed_namespaces(client.clone(), shared.clone()));
        tokio::spawn(feed_tenants(client.clone(), shared.clone()));
        Ok(tenantry_proxy::router(ProxyState::new(shared, client)))
    })
}
