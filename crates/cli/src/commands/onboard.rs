//! `tenantry onboard`: declare a tenant (write its GitOps files) and, unless `--gitops-only`,
//! apply every layer to the cluster and issue its first credential.
//!
//! The tenant is read, checked and rendered once; the same objects go to the files and to
//! the cluster, so what Git holds and what the cluster got cannot differ.

use std::{io::Write, path::Path, time::Duration};

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use tenantry_api::{TenantSpec, tenant::TenantFile};
use tenantry_cluster::{
    ClusterApi,
    credential::TokenPolicy,
    ops::{self, ApplyOptions, Waits},
};
use tenantry_core::render;
use tenantry_gitops::{PLATFORM_FILE, PlatformFile, Repo, TenantReport};

use super::{
    credentials::{self, CredentialReport},
    reports::{GitopsReport, LayersReport},
};
use crate::{
    args::{BaoFlags, ClusterFlags, ClusterInfo, RepoArg, parse_duration, runtime},
    openbao::{self, OpenBaoReport},
    output::{self, Outcome, Report, display},
    progress,
    spec_flags::SpecFlags,
};

/// `tenantry onboard`.
#[derive(Args, Debug)]
pub struct OnboardArgs {
    /// The tenant's name: a DNS label, also its primary namespace and ServiceAccount.
    pub name: String,
    /// Write the GitOps files only; do not apply anything to a cluster.
    #[arg(long)]
    pub gitops_only: bool,
    #[command(flatten)]
    pub repo: RepoArg,
    #[command(flatten)]
    pub spec: SpecFlags,
    /// Verify the tenant's OCI artifacts with this cosign public key (`cosign.pub`): it is
    /// written into the tenant's `verify.publicKey`, and rendered as the Secret
    /// `verify.secretRef` names (default `cosign-pub`) in its primary namespace.
    #[arg(long, value_name = "FILE")]
    pub cosign_public_key: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub cluster: OnboardClusterArgs,
}

/// Cluster flags of `onboard`.
#[derive(Args, Debug, Clone, Default)]
pub struct OnboardClusterArgs {
    #[command(flatten)]
    pub cluster: ClusterFlags,
    /// Apply to the cluster without writing the GitOps files.
    #[arg(long, conflicts_with = "gitops_only")]
    pub no_gitops: bool,
    /// Apply the tenant without the layers whose CustomResourceDefinitions are not installed.
    #[arg(long, conflicts_with = "gitops_only")]
    pub skip_missing_crds: bool,
    /// Lifetime of the issued token, e.g. 8h or 30m (default and maximum from tenantry.yaml).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "gitops_only")]
    pub token_duration: Option<Duration>,
    /// Who will hold the issued kubeconfig (shown by `tenantry credentials list`).
    #[arg(long, value_name = "TEXT", conflicts_with = "gitops_only")]
    pub holder: Option<String>,
    /// How long to wait for new namespaces to become Active.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub timeout: Duration,
    #[command(flatten)]
    pub openbao: BaoFlags,
    /// For a tenant with secrets.openbao: do not provision its OpenBao policy and role now
    /// (`tenantry secrets provision` does it later).
    #[arg(long, conflicts_with = "gitops_only")]
    pub skip_openbao: bool,
}

/// What `onboard` did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OnboardReport {
    tenant: String,
    /// The `tenantry.yaml` written with the built-in defaults, when this run created it.
    platform_file_created: Option<String>,
    /// The platform-wide components' directories (`platform/<component>/`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    platform_gitops: Vec<GitopsReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gitops: Option<GitopsReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterInfo>,
    /// The platform-wide components on the cluster, applied before the tenant.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    platform_apply: Vec<PlatformApply>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    apply: Option<LayersReport>,
    /// The error that stopped the apply, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The tenant's OpenBao policy and role, provisioned after its objects are applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    openbao: Option<OpenBaoReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential: Option<CredentialReport>,
    #[serde(skip)]
    gitops_only: bool,
}

impl Report for OnboardReport {
    const COMMAND: &'static str = "onboard";

    fn outcome(&self) -> Outcome {
        if self.error.is_some() {
            return Outcome::Failed;
        }
        match self.credential.as_ref().map(CredentialReport::outcome) {
            Some(outcome) if outcome != Outcome::Ok => outcome,
            _ if self
                .openbao
                .as_ref()
                .is_some_and(OpenBaoReport::has_findings) =>
            {
                Outcome::Findings
            }
            _ => Outcome::Ok,
        }
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if let Some(path) = &self.platform_file_created {
            writeln!(
                out,
                "created {path} with the built-in defaults; review its delivery, pullSecret, openbao and gateway settings for this platform"
            )?;
        }
        // The platform-wide files are shared by every tenant: mentioned only when they changed.
        for platform in self.platform_gitops.iter().filter(|p| !p.is_unchanged()) {
            if self.gitops_only {
                platform.write_text(out)?;
            } else {
                platform.write_summary(out, " (GitOps)")?;
            }
        }
        if let Some(gitops) = &self.gitops {
            if self.gitops_only {
                gitops.write_text(out)?;
            } else {
                gitops.write_summary(out, " (GitOps)")?;
            }
        }
        if let Some(cluster) = &self.cluster {
            writeln!(
                out,
                "cluster: context {} ({})",
                cluster.context, cluster.server
            )?;
        }
        for (i, platform) in self.platform_apply.iter().enumerate() {
            writeln!(out, "platform {}:", platform.component)?;
            platform.layers.write_text(out)?;
            // Components stop at the first failure: only the last can have failed.
            if self.apply.is_none()
                && i + 1 == self.platform_apply.len()
                && let Some(error) = &self.error
            {
                let rerun = format!("tenantry onboard {}", self.tenant);
                platform
                    .layers
                    .write_failure(out, &platform.component, error, &rerun)?;
            }
        }
        if let Some(apply) = &self.apply {
            apply.write_text(out)?;
            if let Some(error) = &self.error {
                let rerun = format!("tenantry onboard {}", self.tenant);
                apply.write_failure(out, &self.tenant, error, &rerun)?;
            }
        }
        if let Some(openbao) = &self.openbao {
            openbao.write_text(out)?;
        }
        if let Some(credential) = &self.credential {
            credential.write_text(out)?;
        }
        Ok(())
    }
}

/// One platform-wide component on the cluster.
#[derive(Debug, Serialize)]
struct PlatformApply {
    component: String,
    #[serde(flatten)]
    layers: LayersReport,
}

/// A tenant as `onboard` will write and apply it: the existing `tenant.yaml` (if any) with the
/// flags applied, checked and rendered once for both the GitOps files and the cluster.
struct Declaration {
    /// The text `tenant.yaml` gets: the file as the user wrote it when the flags changed
    /// nothing (hand edits and comments survive a plain re-run), else the new spec.
    spec_text: String,
    /// The tenant's objects.
    rendered: tenantry_core::Rendered,
}

/// Read the tenant's declaration, apply the command-line flags, resolve it (refusing a
/// namespace another tenant owns) and render it.
fn declare(repo: &Repo, args: &OnboardArgs) -> anyhow::Result<Declaration> {
    let existing = repo.read_tenant_with_text(&args.name)?;
    let mut file = existing
        .as_ref()
        .map(|(file, _)| file.clone())
        .unwrap_or_else(|| TenantFile::new(&args.name, TenantSpec::default()));
    args.spec
        .apply(
            &mut file.spec,
            repo.context().platform.defaults.delivery.as_ref(),
        )
        .context("invalid flags")?;
    if let Some(path) = &args.cosign_public_key {
        set_cosign_public_key(
            &mut file.spec,
            path,
            repo.context().platform.defaults.delivery.as_ref(),
        )?;
    }
    let resolved = repo.resolve(&file)?;
    repo.check_namespace_ownership(&resolved)?;
    let spec_text = match existing {
        Some((old, text)) if old.spec == file.spec => text,
        _ => tenantry_gitops::tenant_file_text(&file),
    };
    Ok(Declaration {
        spec_text,
        rendered: tenantry_core::render::render(repo.context(), &resolved),
    })
}

/// `--cosign-public-key FILE`: the key checked here, naming the file, then kept in the
/// tenant's declaration (`spec.delivery.fluxOCI.verify.publicKey`) so every later render,
/// apply and offboard sees the Secret, not only this run.
fn set_cosign_public_key(
    spec: &mut TenantSpec,
    path: &Path,
    platform_default: Option<&tenantry_api::tenant::Delivery>,
) -> anyhow::Result<()> {
    use tenantry_api::tenant::{CosignIdentity, Delivery, FluxOci};
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("--cosign-public-key {}", path.display()))?;
    tenantry_delivery::cosign::read_public_key(&pem).with_context(|| {
        format!(
            "--cosign-public-key {}: not a cosign public key",
            path.display()
        )
    })?;
    if spec.delivery.is_none() && matches!(platform_default, Some(Delivery::FluxOci(_))) {
        spec.delivery = Some(Delivery::FluxOci(FluxOci::default()));
    }
    let Some(Delivery::FluxOci(oci)) = spec.delivery.as_mut() else {
        anyhow::bail!(
            "--cosign-public-key {}: the tenant's delivery is not fluxOCI; only Flux OCI delivery verifies cosign signatures",
            path.display()
        );
    };
    let verify = oci.verify.get_or_insert_with(CosignIdentity::default);
    // Key-based replaces keyless: Flux would otherwise demand both.
    verify.issuer = None;
    verify.subject = None;
    verify
        .secret_ref
        .get_or_insert_with(|| "cosign-pub".to_owned());
    verify.public_key = Some(pem);
    Ok(())
}

/// Write the platform-wide objects' directory, then the tenant's GitOps directory, then its
/// registration. The platform's come first: the tenant's delivery relies on them.
fn write_declaration(
    repo: &Repo,
    declaration: &Declaration,
) -> anyhow::Result<(Vec<TenantReport>, TenantReport)> {
    let platform = repo.write_platform()?;
    let mut report = repo.write_rendered(&declaration.rendered, declaration.spec_text.clone())?;
    let name = declaration.rendered.tenant.as_str();
    report.registered = !repo.register(&[name])?.is_empty();
    Ok((platform, report))
}

/// Run `tenantry onboard`.
pub fn run(args: OnboardArgs) -> anyhow::Result<std::process::ExitCode> {
    let output = args.cluster.cluster.output;
    let mut report = OnboardReport {
        tenant: args.name.clone(),
        gitops_only: args.gitops_only,
        ..OnboardReport::default()
    };
    let result = if args.gitops_only {
        gitops_only(&args, &mut report)
    } else {
        with_cluster(&args, &mut report)
    };
    output::finish(output, &report, result)
}

fn gitops_only(args: &OnboardArgs, report: &mut OnboardReport) -> anyhow::Result<()> {
    Repo::check_name(&args.name)?;
    let repo = args.repo.open(PlatformFile::CreateIfMissing)?;
    let declaration = declare(&repo, args)?;
    let creates_platform = repo.creates_platform_file();
    let (mut platform, mut written) = write_declaration(&repo, &declaration)?;
    if creates_platform
        && !(written.is_unchanged() && platform.iter().all(TenantReport::is_unchanged))
    {
        report.platform_file_created = Some(display(&repo.root().join(PLATFORM_FILE)));
    }
    for r in platform.iter_mut().chain([&mut written]) {
        r.changes.retain(|(p, _)| p != Path::new(PLATFORM_FILE));
    }
    report.platform_gitops = platform.iter().map(GitopsReport::for_platform).collect();
    report.gitops = Some(GitopsReport::from(&written));
    Ok(())
}

fn with_cluster(args: &OnboardArgs, report: &mut OnboardReport) -> anyhow::Result<()> {
    let flags = &args.cluster;
    Repo::check_name(&args.name)?;
    let repo = args.repo.open(if flags.no_gitops {
        PlatformFile::DefaultsIfMissing
    } else {
        PlatformFile::CreateIfMissing
    })?;
    let ctx = repo.context();
    // Refuse a bad token lifetime before anything is written.
    let lifetime =
        TokenPolicy::from_platform(&ctx.platform.credentials)?.lifetime(flags.token_duration)?;
    let declaration = declare(&repo, args)?;
    let rendered = &declaration.rendered;
    // Whether OpenBao can be reached is settled before anything is written.
    let config = &ctx.platform.openbao;
    let access = openbao::desired(config, std::slice::from_ref(rendered))?;
    let bao = openbao::client_for(
        &flags.openbao,
        flags.skip_openbao,
        config,
        &access,
        &mut report.openbao,
    )?;
    if !flags.no_gitops {
        let (platform, written) = write_declaration(&repo, &declaration)?;
        report.platform_gitops = platform.iter().map(GitopsReport::for_platform).collect();
        report.gitops = Some(GitopsReport::from(&written));
    }
    let platform_objects = render::platform::render_platform(ctx);
    let progress = progress::for_output(flags.cluster.output);
    runtime()?.block_on(async {
        let (api, endpoint) = flags.cluster.connect().await?;
        report.cluster = Some(ClusterInfo::from(&endpoint));
        let catalog = api.discover().await?;
        ops::check_kinds(&catalog, rendered, flags.skip_missing_crds)?;
        let options = ApplyOptions {
            dry_run: false,
            skip_missing_crds: flags.skip_missing_crds,
            waits: Waits {
                timeout: flags.timeout,
                ..Waits::default()
            },
        };
        let component_label = render::platform::component_label(&ctx.platform);
        let platform = ops::apply_platform(
            &api,
            &catalog,
            &platform_objects,
            &component_label,
            false,
            &options,
            progress.as_ref(),
        )
        .await?;
        report.platform_apply = platform
            .iter()
            .map(|(plan, applied)| PlatformApply {
                component: plan.tenant.clone(),
                layers: LayersReport::from(applied),
            })
            .collect();
        if let Some(error) = platform.iter().find_map(|(_, a)| a.error.as_ref()) {
            report.error = Some(error.to_string());
            return Ok(());
        }
        let mut rendered_one = [rendered.clone()];
        let label = ctx.tenant_label();
        let live = ops::observe(
            &api,
            &catalog,
            &rendered_one,
            label,
            false,
            progress.as_ref(),
        )
        .await?;
        ops::rebalance_quotas(&mut rendered_one, &live, label);
        let plan = &ops::plan_all(&rendered_one, &live, label, false)[0];
        let applied = ops::apply_tenant(
            &api,
            &catalog,
            &rendered_one[0],
            plan,
            &options,
            progress.as_ref(),
        )
        .await;
        report.apply = Some(LayersReport::from(&applied));
        if let Some(error) = &applied.error {
            report.error = Some(error.to_string());
            return Ok(());
        }
        // The role binds the tenant's ServiceAccount, which exists now.
        if let Some(client) = &bao {
            let provisioned = report.openbao.insert(OpenBaoReport::default());
            openbao::provision(client, config, &access, false, false, provisioned).await?;
        }
        let issue = credentials::Issue {
            repo: &repo,
            tenant: &args.name,
            endpoint: &endpoint,
            lifetime,
            holder: flags.holder.as_deref(),
            output: flags.cluster.output,
        };
        report.credential = Some(credentials::issue(&api, &issue).await?);
        Ok(())
    })
}
