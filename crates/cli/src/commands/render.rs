//! `tenantry render`: print tenants' objects, or rewrite (`--write`) or verify (`--check`)
//! their GitOps directories after `tenantry.yaml` or a `tenant.yaml` changed.

use std::{io::Write, process::ExitCode};

use clap::Args;
use serde::Serialize;
use tenantry_gitops::{FileChange, PlatformFile, Repo};

use super::reports::GitopsReport;
use crate::{
    args::RepoArg,
    output::{self, Outcome, Output, Report, display},
};

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

/// A file `render --check` found out of date.
#[derive(Debug, Serialize)]
struct StaleFile {
    path: String,
    /// `missing`, `stale` or `no longer rendered`.
    problem: &'static str,
}

/// What `render --check` found.
#[derive(Debug, Serialize)]
struct CheckReport {
    tenants: usize,
    stale: Vec<StaleFile>,
}

impl Report for CheckReport {
    const COMMAND: &'static str = "render";

    fn outcome(&self) -> Outcome {
        if self.stale.is_empty() {
            Outcome::Ok
        } else {
            Outcome::Findings
        }
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for f in &self.stale {
            writeln!(out, "{}: {}", f.path, f.problem)?;
        }
        if self.stale.is_empty() {
            writeln!(out, "{} tenant(s) up to date", self.tenants)
        } else {
            writeln!(
                out,
                "{} file(s) differ from what tenant.yaml and tenantry.yaml render; run `tenantry render --write`",
                self.stale.len()
            )
        }
    }
}

/// What `render --write` wrote.
#[derive(Debug, Serialize)]
struct WriteReport {
    /// The platform-wide components beside the tenants, one directory each.
    platform: Vec<GitopsReport>,
    tenants: Vec<GitopsReport>,
}

impl Report for WriteReport {
    const COMMAND: &'static str = "render";

    fn outcome(&self) -> Outcome {
        Outcome::Ok
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        self.platform.iter().try_for_each(|p| p.write_text(out))?;
        self.tenants.iter().try_for_each(|t| t.write_text(out))
    }
}

/// Run `tenantry render`.
pub fn run(args: RenderArgs) -> anyhow::Result<ExitCode> {
    for name in &args.names {
        Repo::check_name(name)?;
    }
    let repo = args.repo.open(PlatformFile::Required)?;
    if !args.check && !args.write {
        let mut out = std::io::stdout().lock();
        for r in &repo.render_all(&args.names)? {
            out.write_all(tenantry_core::yaml::multi_document(&r.objects).as_bytes())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Every tenant is loaded and validated (with cross-tenant namespace ownership) before
    // anything is compared or written.
    let tenants = repo.load_tenants(&args.names)?;
    if args.check {
        let mut changes = repo.check_platform()?;
        changes.extend(repo.check_loaded(&tenants)?);
        let stale = changes
            .iter()
            .map(|(path, change)| StaleFile {
                path: display(path),
                problem: match change {
                    FileChange::Created => "missing",
                    FileChange::Updated => "stale",
                    FileChange::Removed => "no longer rendered",
                },
            })
            .collect();
        let report = CheckReport {
            tenants: tenants.len(),
            stale,
        };
        return output::finish(Output::Text, &report, Ok(()));
    }
    // The platform-wide objects first: they are what the tenants' delivery relies on.
    let platform = repo
        .write_platform()?
        .iter()
        .map(GitopsReport::for_platform)
        .collect();
    let written = repo.write_loaded(&tenants)?;
    let names: Vec<&str> = tenants.iter().map(|t| t.resolved.name.as_str()).collect();
    let registered = repo.register(&names)?;
    let report = WriteReport {
        platform,
        tenants: written
            .into_iter()
            .map(|mut t| {
                t.registered = registered.contains(&t.tenant);
                GitopsReport::from(&t)
            })
            .collect(),
    };
    output::finish(Output::Text, &report, Ok(()))
}
