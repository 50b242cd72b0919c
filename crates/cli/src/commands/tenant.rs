//! `tenantry tenant init`: a tenant's own repository, scaffolded and later kept current.
//!
//! What the files say and who owns each is `tenantry_gitops::tenant_repo`'s; this module
//! reads the platform repository (when given) to know the tenant as the platform does, and
//! reports. Nothing in the platform repository is written.

use std::{io::Write, path::PathBuf};

use clap::{Args, Subcommand};
use serde::Serialize;
use tenantry_core::render::scaffold::check_argument;
use tenantry_gitops::{
    Repo,
    tenant_repo::{self, Action, Mode, Owner, ScaffoldSpec, TenantFacts},
};

use crate::output::{self, Outcome, Output, Report, display};

/// `tenantry tenant`.
#[derive(Args, Debug)]
pub struct TenantArgs {
    #[command(subcommand)]
    command: TenantCommand,
}

#[derive(Subcommand, Debug)]
enum TenantCommand {
    /// Scaffold a tenant's own repository: deploy/ (a compliant example application), the CI
    /// workflow that checks and publishes it, a README and the ownership file.
    #[command(
        after_help = "Examples:\n  tenantry tenant init shop --tenant shop --platform-repo ../platform\n  tenantry tenant init . --tenant shop --update --dry-run   show what --update would change\n  tenantry tenant init . --tenant shop --update            refresh the platform-owned files\n\n.templatesyncignore lists the paths the team owns (deploy/, README.md and itself); they are\nwritten once and never overwritten. The other files are the platform's: --update prints a\nunified diff, then refreshes them. A second run with nothing to change writes nothing.\nWith --platform-repo the image registry, Gateway and OCI URL are the tenant's; without it,\nplaceholders stand in and the README lists them."
    )]
    Init(InitArgs),
}

/// `tenantry tenant init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// The tenant repository (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The tenant; also the repository's and the application container's name.
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
    /// The platform repository, to use the tenant's registries, Gateway and OCI URL.
    #[arg(long, value_name = "DIR")]
    pub platform_repo: Option<PathBuf>,
    /// Refresh the platform-owned files (after printing the diff); team-owned files are kept.
    #[arg(long)]
    pub update: bool,
    /// Print what would change and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text, value_name = "FORMAT")]
    pub output: Output,
}

/// One file in the report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FileReport {
    path: &'static str,
    owner: Owner,
    action: Action,
    /// Unified diff of what is (or would be) written, for `--update`.
    #[serde(skip_serializing_if = "String::is_empty")]
    diff: String,
}

/// What `tenant init` did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct InitReport {
    tenant: String,
    dir: String,
    update: bool,
    dry_run: bool,
    files: Vec<FileReport>,
}

impl Report for InitReport {
    const COMMAND: &'static str = "tenant init";

    fn outcome(&self) -> Outcome {
        Outcome::Ok
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.update {
            for f in &self.files {
                out.write_all(f.diff.as_bytes())?;
            }
        }
        let mut unchanged = 0;
        for f in &self.files {
            let what = match f.action {
                Action::Unchanged => {
                    unchanged += 1;
                    continue;
                }
                Action::Create if self.dry_run => "would create",
                Action::Create => "created",
                Action::Update if self.dry_run => "would update",
                Action::Update => "updated",
                Action::Keep => "kept",
                Action::Conflict => "differs",
            };
            let note = match (f.action, f.owner) {
                (Action::Keep, _) => " (team-owned: never overwritten)",
                (Action::Conflict, Owner::Team) => " (team-owned: never overwritten)",
                (Action::Conflict, Owner::Platform) => " (platform-owned: --update refreshes it)",
                _ => "",
            };
            writeln!(out, "{what:<12} {}/{}{note}", self.dir, f.path)?;
        }
        if unchanged == self.files.len() && !self.files.is_empty() {
            writeln!(
                out,
                "unchanged: tenant {} repository {} is up to date ({} files)",
                self.tenant,
                self.dir,
                self.files.len()
            )?;
        } else if unchanged > 0 {
            writeln!(out, "unchanged: {unchanged} more")?;
        }
        if !self.dry_run && self.files.iter().any(|f| f.action == Action::Create) {
            writeln!(
                out,
                "next: read {}/README.md (placeholders to replace), then commit",
                self.dir
            )?;
        }
        Ok(())
    }
}

/// Run `tenantry tenant`.
pub fn run(args: TenantArgs) -> anyhow::Result<std::process::ExitCode> {
    match args.command {
        TenantCommand::Init(args) => {
            let mut report = InitReport {
                tenant: args.tenant.clone(),
                dir: display(&args.dir),
                update: args.update,
                dry_run: args.dry_run,
                ..InitReport::default()
            };
            let result = init(&args, &mut report);
            output::finish(args.output, &report, result)
        }
    }
}

fn init(args: &InitArgs, report: &mut InitReport) -> anyhow::Result<()> {
    check_argument("--tenant", &args.tenant)?;
    let facts = match &args.platform_repo {
        None => None,
        Some(path) => {
            let repo = Repo::open(path, tenantry_gitops::PlatformFile::Required)?;
            let Some(file) = repo.read_tenant(&args.tenant)? else {
                anyhow::bail!(
                    "no tenant named {:?} in {} (looked for {}; onboard it first: tenantry onboard {} --gitops-only --repo {})",
                    args.tenant,
                    display(path),
                    display(&repo.tenant_path(&args.tenant)),
                    args.tenant,
                    display(path)
                );
            };
            let tenant = repo.resolve(&file)?;
            Some(TenantFacts::of(repo.context(), &tenant))
        }
    };
    let spec = ScaffoldSpec {
        tenant: args.tenant.clone(),
        facts,
    };
    let mode = if args.update {
        Mode::Update
    } else {
        Mode::Init
    };
    let planned = tenant_repo::plan(&args.dir, tenant_repo::scaffold_files(&spec), mode)?;
    report.files = planned
        .iter()
        .map(|p| FileReport {
            path: p.path,
            owner: p.owner,
            action: p.action,
            diff: if args.update { p.diff() } else { String::new() },
        })
        .collect();
    if args.dry_run {
        return Ok(tenant_repo::refuse_conflicts(&args.dir, &planned)?);
    }
    tenant_repo::apply(&args.dir, &planned)?;
    Ok(())
}
