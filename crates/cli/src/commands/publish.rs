//! `tenantry publish DIR oci://REGISTRY/REPO:TAG`: the tenant's `deploy/` tree built, held to
//! the same guardrails `tenantry check` applies, packed as Flux packs it, pushed and
//! cosign-signed. The work is `tenantry_delivery`'s; this reads flags and the platform's
//! `tenantry.yaml` (defaults when the directory has none, as `check` does) and reports.

use std::{io, path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use tenantry_delivery::{
    DeliveryError, OciRef, PublishOptions, Published,
    keys::{self, KeySource},
    registry::Credentials,
};
use tenantry_gitops::{PlatformFile, Repo};
use tenantry_policy::{Context, Engine};

use crate::{
    args::{RepoArg, runtime},
    output::{self, Outcome, Output, Report},
};

/// `tenantry publish`.
#[derive(Args, Debug)]
pub struct PublishArgs {
    /// The kustomize directory to publish (the tenant repository's `deploy/`).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Where to push: `oci://REGISTRY/REPO:TAG`.
    #[arg(value_name = "OCI_URL")]
    pub target: String,
    /// The cosign private key: a file (mode 0600) or `env://VAR`. An encrypted key's
    /// passphrase is read from $TENANTRY_KEY_PASSWORD, else $COSIGN_PASSWORD, else asked on
    /// the terminal.
    #[arg(long, value_name = "FILE|env://VAR", env = "TENANTRY_SIGNING_KEY")]
    pub key: String,
    /// `org.opencontainers.image.source` (default: the target repository).
    #[arg(long, value_name = "URL")]
    pub source: Option<String>,
    /// `org.opencontainers.image.revision` (default: the tag).
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
    /// Move the tag even when it names other content.
    #[arg(long)]
    pub force: bool,
    /// Speak plain HTTP to the registry (a local registry only).
    #[arg(long)]
    pub insecure_registry: bool,
    #[command(flatten)]
    pub registry_config: RegistryConfigArg,
    #[command(flatten)]
    pub repo: RepoArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Serialize, Default)]
struct PublishReport {
    objects: usize,
    findings: Vec<Finding>,
    published: Option<Published>,
}

#[derive(Serialize)]
struct Finding {
    severity: String,
    check: String,
    object: String,
    path: String,
    message: String,
    remediation: String,
}

impl Report for PublishReport {
    const COMMAND: &'static str = "publish";
    fn outcome(&self) -> Outcome {
        if self.published.is_some() {
            Outcome::Ok
        } else if self.findings.iter().any(|f| f.severity == "deny") {
            Outcome::Findings
        } else {
            Outcome::Error
        }
    }
    fn write_text(&self, out: &mut dyn io::Write) -> io::Result<()> {
        for f in &self.findings {
            writeln!(out, "{} {} {}", f.severity, f.check, f.object)?;
            if !f.path.is_empty() {
                writeln!(out, "  at {}", f.path)?;
            }
            writeln!(out, "  {}\n  fix: {}", f.message, f.remediation)?;
        }
        if self.outcome() == Outcome::Findings {
            writeln!(
                out,
                "refused: the built tree fails the guardrails; nothing was pushed"
            )?;
        }
        if let Some(p) = &self.published {
            let how = match (&p.replaced, p.unchanged) {
                (_, true) => " (unchanged; signature refreshed)".to_owned(),
                (Some(old), _) => format!(" (moved from {old})"),
                _ => String::new(),
            };
            writeln!(
                out,
                "published {} objects to {}{how}",
                self.objects, p.reference
            )?;
            writeln!(out, "digest: {}", p.digest)?;
            writeln!(out, "signature: {}", p.signature_tag)?;
        }
        Ok(())
    }
}

/// Run `tenantry publish`.
pub fn run(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let mut report = PublishReport::default();
    let result = publish(&args, &mut report);
    // A guardrail denial is findings (exit 1), reported above, not an error.
    let result = match result {
        Err(e) if report.outcome() == Outcome::Findings => {
            tracing::debug!("{e:#}");
            Ok(())
        }
        other => other,
    };
    output::finish(args.output, &report, result)
}

fn publish(args: &PublishArgs, report: &mut PublishReport) -> anyhow::Result<()> {
    let target = OciRef::parse(&args.target)?;
    let repo = Repo::open(&args.repo.repo, PlatformFile::DefaultsIfMissing).with_context(|| {
        format!(
            "reading the platform repository {}",
            args.repo.repo.display()
        )
    })?;
    let engine = Engine::new(&repo.context().platform);
    let ctx = Context::check(None);
    // The key is read before anything is built or sent: a bad key stops the run up front.
    let key = keys::load_signing_key(&KeySource::parse(&args.key), || {
        super::keys::passphrase(false).ok().flatten()
    })?;
    let credentials = credentials(&target.registry, &args.registry_config)?;
    let prepared = match tenantry_delivery::prepare(&args.dir, &engine, &ctx) {
        Ok(p) => p,
        Err((e, findings)) => {
            report.findings = findings.into_iter().map(finding).collect();
            return Err(e.into());
        }
    };
    report.objects = prepared.objects();
    report.findings = prepared.warnings.iter().cloned().map(finding).collect();
    let tag = match &target.target {
        Some(tenantry_delivery::reference::Target::Tag(t)) => t.clone(),
        _ => {
            return Err(DeliveryError::Reference {
                url: args.target.clone(),
                why: "publish needs a tag (oci://REGISTRY/REPO:TAG)".to_owned(),
            }
            .into());
        }
    };
    let options = PublishOptions {
        source: args
            .source
            .clone()
            .unwrap_or_else(|| format!("oci://{}", target.repository_name())),
        revision: args.revision.clone().unwrap_or(tag),
        force: args.force,
        plain_http: args.insecure_registry,
        credentials,
        target,
    };
    let published = runtime()?.block_on(tenantry_delivery::publish(&prepared, &key, &options))?;
    report.published = Some(published);
    Ok(())
}

/// Where `publish` and `verify` find registry credentials.
#[derive(Args, Debug, Clone, Default)]
pub struct RegistryConfigArg {
    /// Docker config file with the registry's credentials (`auths`, `credHelpers`,
    /// `credsStore`); default $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
    #[arg(long, value_name = "FILE")]
    pub registry_config: Option<PathBuf>,
}

/// Credentials for `registry`: `TENANTRY_REGISTRY_USERNAME` / `TENANTRY_REGISTRY_PASSWORD`
/// when both are set, else the Docker config file (as docker, skopeo and flux read it).
pub fn credentials(
    registry: &str,
    config: &RegistryConfigArg,
) -> Result<Credentials, DeliveryError> {
    if let (Ok(u), Ok(p)) = (
        std::env::var("TENANTRY_REGISTRY_USERNAME"),
        std::env::var("TENANTRY_REGISTRY_PASSWORD"),
    ) {
        return Ok(Credentials {
            basic: Some((u, p)),
            source: "TENANTRY_REGISTRY_USERNAME/TENANTRY_REGISTRY_PASSWORD".to_owned(),
        });
    }
    tenantry_delivery::credentials::lookup(
        registry,
        &tenantry_delivery::credentials::ConfigSource::from_env(config.registry_config.clone()),
    )
}

fn finding(f: tenantry_policy::report::Located) -> Finding {
    let v = f.violation;
    Finding {
        severity: v.severity.to_string(),
        check: v.check,
        object: v.object.to_string(),
        path: v.path,
        message: v.message,
        remediation: v.remediation,
    }
}
