//! `tenantry webhook`: serve the validating admission webhook, or print the manifests that
//! install it.
//!
//! Serving is the only long-running thing the binary does, so this is where the tokio runtime
//! is built (the other commands stay synchronous). Everything the webhook decides lives in
//! `tenantry-admission`; this file turns flags into its parts and wires them together.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use tenantry_admission::{
    AppState, EngineValidator, NamespaceCache, Validator,
    manifests::{ManifestOptions, documents, to_yaml},
    watch,
};
use tenantry_api::Platform;
use tenantry_core::PlatformContext;
use tenantry_policy::vap::{self, VapOptions};

use crate::args::ServeFlags;

/// `tenantry webhook`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct WebhookArgs {
    #[command(subcommand)]
    command: Option<WebhookCommand>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum WebhookCommand {
    /// Print the Namespace, RBAC, Deployment, Service and ValidatingWebhookConfiguration that
    /// install the webhook.
    #[command(
        after_help = "Examples:\n  tenantry webhook manifests | kubectl apply --server-side -f -\n  tenantry webhook manifests --config tenantry.yaml --image registry.example/tenantry:v1\n  tenantry webhook manifests --ca-bundle ca.crt      serving certificate issued elsewhere\n\nWithout --ca-bundle the output includes a cert-manager Issuer and Certificate and asks\ncert-manager to inject the CA into the webhook configuration."
    )]
    Manifests(ManifestsArgs),
}

/// Which guardrails the webhook enforces.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Guardrails {
    /// Every policy tenantry.yaml enables (the same engine as `tenantry check`).
    Policies,
    /// Pod Security only: the same engine with only `pod-security` selected.
    PodSecurity,
}

#[derive(Args, Debug)]
#[command(mut_arg("config", |a| a.help(
    "Platform configuration (tenantry.yaml): tenant label, defaults and policies. Built-in \
     defaults when not given"
)))]
struct ServeArgs {
    #[command(flatten)]
    serve: ServeFlags,
    /// Do not look for a cluster: judge every namespace by the platform defaults.
    #[arg(long)]
    no_cluster: bool,
    /// Which guardrails to enforce.
    #[arg(long, value_enum, default_value = "policies")]
    guardrails: Guardrails,
    /// Leave to the ValidatingAdmissionPolicies of `tenantry policy vap` (same --config) the
    /// checks they decide; judge only the rest.
    #[arg(long)]
    with_vap: bool,
}

#[derive(Args, Debug)]
struct ManifestsArgs {
    /// Namespace to install into; it must not carry the tenant label.
    #[arg(long, value_name = "NAME", default_value = "tenantry-system")]
    namespace: String,
    /// Container image whose entrypoint is `tenantry`.
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
    /// PEM CA bundle that signed the serving certificate (the Secret tenantry-webhook-tls).
    #[arg(long, value_name = "FILE")]
    ca_bundle: Option<PathBuf>,
    /// Platform configuration to run with: embedded in a ConfigMap, and its tenant label
    /// selects the namespaces the webhook judges.
    #[arg(long, value_name = "FILE", env = "TENANTRY_CONFIG")]
    config: Option<PathBuf>,
    /// Replicas of the webhook Deployment.
    #[arg(long, value_name = "N", default_value_t = 2)]
    replicas: u32,
    /// Also install the ValidatingAdmissionPolicies of `tenantry policy vap`, and run the
    /// webhook with --with-vap so that it judges only what they cannot.
    #[arg(long)]
    with_vap: bool,
}

/// Run `tenantry webhook`.
pub fn run(args: WebhookArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(WebhookCommand::Manifests(m)) => manifests(m),
        None => serve(args.serve),
    }
}

/// Read and validate tenantry.yaml (or the built-in defaults), returning its text too.
pub(crate) fn load_platform(
    path: Option<&Path>,
) -> anyhow::Result<(PlatformContext, Option<String>)> {
    let (platform, text) = match path {
        None => (Platform::default(), None),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let platform = tenantry_core::document::parse_platform(&text)
                .map_err(|e| anyhow::anyhow!("{}", e.in_file(&path.display())))?;
            (platform, Some(text))
        }
    };
    let ctx = PlatformContext::new(platform).map_err(|invalid| {
        let source = path.map_or("built-in platform defaults".to_owned(), |p| {
            p.display().to_string()
        });
        let lines: Vec<String> = invalid
            .errors
            .iter()
            .map(|e| format!("  {}: {}", e.path, e.message))
            .collect();
        anyhow::anyhow!("{source} is invalid:\n{}", lines.join("\n"))
    })?;
    Ok((ctx, text))
}

fn manifests(args: ManifestsArgs) -> anyhow::Result<ExitCode> {
    let (ctx, text) = load_platform(args.config.as_deref())?;
    let mut opts = ManifestOptions::new(ctx.tenant_label());
    opts.namespace = args.namespace;
    if let Some(image) = args.image {
        opts.image = image;
    }
    if let Some(path) = &args.ca_bundle {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            bail!("{} holds no PEM certificate", path.display());
        }
        opts.ca_bundle = Some(pem);
    }
    opts.platform_config = text;
    opts.replicas = args.replicas;
    if args.with_vap {
        // The engine the served webhook builds from the same tenantry.yaml (the ConfigMap).
        let engine = tenantry_policy::Engine::new(&ctx.platform);
        opts.policies = vap::generate(&engine, &VapOptions::default());
        // With each tenant rendering its own parameters and bindings, the per-tenant
        // policies (and the parameters' kind) they bind to come with the webhook too; the
        // webhook leaves a tenant's per-tenant checks to them once it sees it bound.
        if ctx.platform.policies.vap.tenant_parameters {
            let per_tenant = vap::generate_tenants(&engine, &[], &VapOptions::default());
            if !per_tenant.is_empty() {
                opts.policies.push(vap::params_crd());
                opts.policies.extend(per_tenant);
            }
        }
    }
    print!("{}", to_yaml(&documents(&opts)));
    Ok(ExitCode::SUCCESS)
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (ctx, _) = load_platform(args.serve.config.as_deref())?;
    let mut engine = match args.guardrails {
        Guardrails::Policies => EngineValidator::new(&ctx.platform),
        Guardrails::PodSecurity => EngineValidator::pod_security_only(&ctx.platform),
    };
    if args.with_vap {
        engine = engine.with_vap();
    }
    tracing::info!(
        policies = ?engine.enabled_policies(),
        left_to_vap = ?engine.delegated_checks(),
        "enforcing"
    );
    let validator: Arc<dyn Validator> = Arc::new(engine);
    let no_cluster = args.no_cluster;
    let with_vap = args.with_vap;
    args.serve.serve("webhook", "/validate", async move {
        let cache = if no_cluster {
            tracing::warn!("--no-cluster: judging every namespace by the platform defaults");
            NamespaceCache::without_cluster(&ctx)
        } else {
            match watch::infer_client().await {
                Ok(client) => {
                    let cache = NamespaceCache::new(&ctx);
                    tokio::spawn(watch::watch_cluster(client, cache.clone(), with_vap));
                    cache
                }
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "no cluster access: every namespace is judged by the platform defaults \
                         (platform namespaces by reserved name are still never judged)"
                    );
                    NamespaceCache::without_cluster(&ctx)
                }
            }
        };
        Ok(tenantry_admission::router(AppState::new(cache, validator)))
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        webhook: WebhookArgs,
    }

    fn parse(args: &[&str]) -> Result<WebhookArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("webhook").chain(args.iter().copied()))
            .map(|c| c.webhook)
    }

    #[test]
    fn serving_needs_a_certificate_and_manifests_do_not() {
        let err = parse(&[]).expect_err("serving without TLS files is refused");
        assert!(err.to_string().contains("--tls-cert"), "{err}");
        let serve = parse(&["--tls-cert", "c", "--tls-key", "k"]).unwrap();
        assert!(serve.command.is_none());
        assert_eq!(serve.serve.serve.listen.port(), 8443);
        assert_eq!(serve.serve.guardrails, Guardrails::Policies);
        assert!(!serve.serve.with_vap);
        let next_to_vap = parse(&["--tls-cert", "c", "--tls-key", "k", "--with-vap"]).unwrap();
        assert!(next_to_vap.serve.with_vap);
        let manifests = parse(&["manifests", "--with-vap"]).unwrap();
        assert!(matches!(
            manifests.command,
            Some(WebhookCommand::Manifests(ManifestsArgs {
                with_vap: true,
                ..
            }))
        ));
        let manifests = parse(&["manifests", "--namespace", "guard"]).unwrap();
        assert!(matches!(
            manifests.command,
            Some(WebhookCommand::Manifests(ManifestsArgs { ref namespace, .. })) if namespace == "guard"
        ));
    }

    #[test]
    fn an_invalid_platform_file_names_the_file_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenantry.yaml");
        std::fs::write(
            &path,
            "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\nlabelPrefx: x\n",
        )
        .unwrap();
        let err = load_platform(Some(&path)).unwrap_err().to_string();
        assert!(
            err.contains("tenantry.yaml") && err.contains("labelPrefx"),
            "{err}"
        );
        let (ctx, text) = load_platform(None).unwrap();
        assert_eq!(ctx.tenant_label(), "tenantry.dev/tenant");
        assert!(text.is_none());
    }
}
