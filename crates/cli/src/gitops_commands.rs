//! `onboard`, `render`, `offboard` and `crd`: the commands that work on the platform
//! repository alone, with no cluster.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, bail};
use clap::Args;
use kube::CustomResourceExt;
use tenantry_api::{Tenant, TenantSpec, tenant::TenantFile};
use tenantry_gitops::{FileChange, Repo, TenantReport};

use crate::{EXIT_FINDINGS, cluster_commands::Output, spec_flags::SpecFlags};

/// Where the platform repository is.
#[derive(Args, Debug)]
pub struct RepoArg {
    /// Platform repository root (holds tenantry.yaml and the tenants directory).
    #[arg(long, value_name = "DIR", default_value = ".", env = "TENANTRY_REPO")]
    pub repo: PathBuf,
}

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
    #[command(flatten)]
    pub cluster: crate::cluster_commands::OnboardClusterArgs,
}

/// `tenantry render`.
#[derive(Args, Debug)]
pub struct RenderArgs {
    /// Tenants to render (all when none are named).
    pub names: Vec<String>,
    #[command(flatten)]
    pub repo: RepoArg,
    /// Rewrite each tenant's directory from its tenant.yaml instead of printing.
    #[arg(long, conflicts_with = "check")]
    pub write: bool,
    /// Exit 1 listing every rendered file that is missing or stale; write nothing.
    #[arg(long)]
    pub check: bool,
}

/// `tenantry offboard`.
#[derive(Args, Debug)]
pub struct OffboardArgs {
    /// The tenant to remove.
    pub name: String,
    /// Remove the GitOps files only; do not touch a cluster.
    #[arg(long)]
    pub gitops_only: bool,
    #[command(flatten)]
    pub repo: RepoArg,
    /// Succeed when the tenant does not exist.
    #[arg(long)]
    pub ignore_not_found: bool,
    #[command(flatten)]
    pub cluster: crate::cluster_commands::OffboardClusterArgs,
}

pub(crate) fn display(path: &Path) -> String {
    path.display().to_string()
}

fn print_report(out: &mut impl Write, report: &TenantReport) -> std::io::Result<()> {
    if report.is_unchanged() {
        return writeln!(out, "tenant {}: unchanged", report.tenant);
    }
    let count = |c: FileChange| report.changes.iter().filter(|(_, x)| *x == c).count();
    let mut parts = Vec::new();
    for (kind, n) in [
        (FileChange::Created, count(FileChange::Created)),
        (FileChange::Updated, count(FileChange::Updated)),
        (FileChange::Removed, count(FileChange::Removed)),
    ] {
        if n > 0 {
            parts.push(format!("{kind} {n} file{}", if n == 1 { "" } else { "s" }));
        }
    }
    if report.registered {
        parts.push("registered".to_owned());
    }
    writeln!(out, "tenant {}: {}", report.tenant, parts.join(", "))?;
    for (path, change) in &report.changes {
        writeln!(out, "  {change:<7} {}", display(path))?;
    }
    Ok(())
}

/// A tenant as `onboard` will write and apply it: the existing `tenant.yaml` (if any) with the
/// flags applied, checked and rendered once for both the GitOps files and the cluster.
pub(crate) struct Declaration {
    /// The text `tenant.yaml` gets: the file as the user wrote it when the flags changed
    /// nothing (hand edits and comments survive a plain re-run), else the new spec.
    pub spec_text: String,
    /// The tenant's objects.
    pub rendered: tenantry_core::Rendered,
}

/// Read the tenant's declaration, apply the command-line flags, resolve it (refusing a
/// namespace another tenant owns) and render it.
pub(crate) fn declare(repo: &Repo, args: &OnboardArgs) -> anyhow::Result<Declaration> {
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

/// Write the tenant's GitOps directory, then its registration.
pub(crate) fn write_declaration(
    repo: &Repo,
    declaration: &Declaration,
) -> anyhow::Result<TenantReport> {
    let mut report = repo.write_rendered(&declaration.rendered, declaration.spec_text.clone())?;
    let name = declaration.rendered.tenant.as_str();
    report.registered = !repo.register(&[name])?.is_empty();
    Ok(report)
}

/// The GitOps part of an `--output json` report.
pub(crate) fn gitops_json(report: &TenantReport) -> serde_json::Value {
    serde_json::json!({
        "changes": report
            .changes
            .iter()
            .map(|(p, c)| serde_json::json!({ "path": display(p), "change": c.to_string() }))
            .collect::<Vec<_>>(),
        "registered": report.registered,
        "unchanged": report.unchanged,
    })
}

pub(crate) fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

pub fn onboard(args: OnboardArgs) -> anyhow::Result<ExitCode> {
    if !args.gitops_only {
        return crate::cluster_commands::onboard(args);
    }
    Repo::check_name(&args.name)?;
    let repo = Repo::open(&args.repo.repo, true)?;
    let declaration = declare(&repo, &args)?;
    let created_platform = repo.creates_platform_file();
    let mut report = write_declaration(&repo, &declaration)?;
    let platform_file = repo.root().join(tenantry_gitops::PLATFORM_FILE);
    let created_platform = created_platform && !report.is_unchanged();
    report
        .changes
        .retain(|(p, _)| p != Path::new(tenantry_gitops::PLATFORM_FILE));
    if args.cluster.cluster.output == Output::Json {
        print_json(&serde_json::json!({
            "command": "onboard",
            "tenant": args.name,
            "platformFileCreated": created_platform.then(|| display(&platform_file)),
            "gitops": gitops_json(&report),
            "result": "ok",
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    if created_platform {
        writeln!(
            out,
            "created {} with the built-in defaults; review its delivery, pullSecret, openbao and gateway settings for this platform",
            display(&platform_file)
        )?;
    }
    print_report(&mut out, &report)?;
    Ok(ExitCode::SUCCESS)
}

pub fn render(args: RenderArgs) -> anyhow::Result<ExitCode> {
    for name in &args.names {
        Repo::check_name(name)?;
    }
    let repo = Repo::open(&args.repo.repo, false)?;
    let mut out = std::io::stdout().lock();
    if args.check || args.write {
        // Every tenant is loaded and validated (with cross-tenant namespace ownership)
        // before anything is compared or written.
        let tenants = repo.load_tenants(&args.names)?;
        if args.check {
            let changes = repo.check_loaded(&tenants)?;
            for (path, change) in &changes {
                let what = match change {
                    FileChange::Created => "missing",
                    FileChange::Updated => "stale",
                    FileChange::Removed => "no longer rendered",
                };
                writeln!(out, "{}: {what}", display(path))?;
            }
            if !changes.is_empty() {
                writeln!(
                    out,
                    "{} file(s) differ from what tenant.yaml and tenantry.yaml render; run `tenantry render --write`",
                    changes.len()
                )?;
                return Ok(ExitCode::from(EXIT_FINDINGS));
            }
            writeln!(out, "{} tenant(s) up to date", tenants.len())?;
            return Ok(ExitCode::SUCCESS);
        }
        let reports = repo.write_loaded(&tenants)?;
        let names: Vec<&str> = tenants.iter().map(|t| t.resolved.name.as_str()).collect();
        let registered = repo.register(&names)?;
        for mut report in reports {
            report.registered = registered.contains(&report.tenant);
            print_report(&mut out, &report)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rendered = repo.render_all(&args.names)?;
    for r in &rendered {
        out.write_all(tenantry_core::yaml::multi_document(&r.objects).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn offboard(args: OffboardArgs) -> anyhow::Result<ExitCode> {
    if !args.gitops_only {
        return crate::cluster_commands::offboard(args);
    }
    Repo::check_name(&args.name)?;
    let repo = Repo::open(&args.repo.repo, false)?;
    let (removed_dir, unregistered) = repo.remove_tenant(&args.name)?;
    let found = removed_dir || unregistered;
    if !found && !args.ignore_not_found {
        bail!(
            "no tenant named {:?} in {} (use --ignore-not-found to accept that)",
            args.name,
            display(&repo.tenants_dir())
        );
    }
    if args.cluster.cluster.output == Output::Json {
        print_json(&serde_json::json!({
            "command": "offboard",
            "tenant": args.name,
            "gitops": { "removedDirectory": removed_dir, "unregistered": unregistered },
            "result": if found { "ok" } else { "not-found" },
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    if !found {
        writeln!(out, "tenant {}: not found, nothing to remove", args.name)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut parts = Vec::new();
    if removed_dir {
        parts.push(format!("removed {}", display(&repo.tenant_dir(&args.name))));
    }
    if unregistered {
        parts.push(format!(
            "unregistered from {}",
            display(&repo.tenants_dir().join(tenantry_gitops::KUSTOMIZATION_FILE))
        ));
    }
    writeln!(out, "tenant {}: {}", args.name, parts.join(", "))?;
    Ok(ExitCode::SUCCESS)
}

pub fn crd() -> anyhow::Result<ExitCode> {
    let text = tenantry_core::document::to_yaml(&Tenant::crd());
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
