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

use crate::{EXIT_FINDINGS, spec_flags::SpecFlags};

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
}

fn display(path: &Path) -> String {
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

pub fn onboard(args: OnboardArgs) -> anyhow::Result<ExitCode> {
    if !args.gitops_only {
        bail!(
            "applying a tenant to a cluster is not available in this build yet; run `tenantry onboard {} --gitops-only` to write its GitOps files",
            args.name
        );
    }
    Repo::check_name(&args.name)?;
    let repo = Repo::open(&args.repo.repo, true)?;
    let existing = repo.read_tenant(&args.name)?;
    let mut file = existing
        .clone()
        .unwrap_or_else(|| TenantFile::new(&args.name, TenantSpec::default()));
    args.spec
        .apply(
            &mut file.spec,
            repo.context().platform.defaults.delivery.as_ref(),
        )
        .context("invalid flags")?;
    let spec_changed = existing.as_ref().is_none_or(|e| e.spec != file.spec);
    let created_platform = repo.creates_platform_file();
    let mut report = repo.write_tenant(&file, spec_changed)?;
    let registered = repo.register(&[args.name.as_str()])?;
    report.registered = !registered.is_empty();
    let mut out = std::io::stdout().lock();
    if created_platform && !report.is_unchanged() {
        writeln!(
            out,
            "created {} with the built-in defaults; review its delivery, pullSecret, openbao and gateway settings for this platform",
            display(&repo.root().join(tenantry_gitops::PLATFORM_FILE))
        )?;
        report
            .changes
            .retain(|(p, _)| p != Path::new(tenantry_gitops::PLATFORM_FILE));
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
        let names = if args.names.is_empty() {
            repo.tenant_names()?
        } else {
            args.names.clone()
        };
        // Validate every tenant (and cross-tenant namespace ownership) before writing.
        repo.render_all(&args.names)?;
        if args.check {
            let mut stale = 0;
            for name in &names {
                for (path, change) in repo.check_tenant(name)? {
                    let what = match change {
                        FileChange::Created => "missing",
                        FileChange::Updated => "stale",
                        FileChange::Removed => "no longer rendered",
                    };
                    writeln!(out, "{}: {what}", display(&path))?;
                    stale += 1;
                }
            }
            if stale > 0 {
                writeln!(
                    out,
                    "{stale} file(s) differ from what tenant.yaml and tenantry.yaml render; run `tenantry render --write`"
                )?;
                return Ok(ExitCode::from(EXIT_FINDINGS));
            }
            writeln!(out, "{} tenant(s) up to date", names.len())?;
            return Ok(ExitCode::SUCCESS);
        }
        let reports = repo.rewrite_tenants(&names)?;
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let registered = repo.register(&refs)?;
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
        bail!(
            "offboarding from a cluster is not available in this build yet; run `tenantry offboard {} --gitops-only` to remove its GitOps files",
            args.name
        );
    }
    Repo::check_name(&args.name)?;
    let repo = Repo::open(&args.repo.repo, false)?;
    let (removed_dir, unregistered) = repo.remove_tenant(&args.name)?;
    let mut out = std::io::stdout().lock();
    if !removed_dir && !unregistered {
        if args.ignore_not_found {
            writeln!(out, "tenant {}: not found, nothing to remove", args.name)?;
            return Ok(ExitCode::SUCCESS);
        }
        bail!(
            "no tenant named {:?} in {} (use --ignore-not-found to accept that)",
            args.name,
            display(&repo.tenants_dir())
        );
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
