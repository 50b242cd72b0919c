//! `tenantry apply`: converge tenants on the cluster. Print the plan, then apply only what
//! differs; a converged tenant costs reads only.

use std::{io::Write, process::ExitCode, time::Duration};

use clap::Args;
use serde::Serialize;
use tenantry_cluster::{
    ClusterApi,
    ops::{self, ApplyOptions, Waits},
};
use tenantry_core::{
    Rendered,
    plan::{Change, TenantPlan},
    render,
};
use tenantry_gitops::{PlatformFile, Repo};

use super::reports::LayersReport;
use crate::{
    args::{BaoFlags, ClusterFlags, ClusterInfo, RepoArg, parse_duration, runtime},
    openbao::{self, OpenBaoReport},
    output::{self, Outcome, Report, display},
    progress,
};

/// `tenantry apply`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["names", "all"])))]
pub struct ApplyArgs {
    /// Tenants to converge.
    pub names: Vec<String>,
    /// Converge every tenant of the repository.
    #[arg(long)]
    pub all: bool,
    /// Delete objects labelled for these tenants that they no longer declare.
    #[arg(long)]
    pub prune: bool,
    /// Send every write as a server-side dry run: validated, nothing stored.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply tenants without the layers whose CustomResourceDefinitions are not installed.
    #[arg(long)]
    pub skip_missing_crds: bool,
    /// How long to wait for new namespaces to become Active.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub timeout: Duration,
    #[command(flatten)]
    pub repo: RepoArg,
    #[command(flatten)]
    pub cluster: ClusterFlags,
    #[command(flatten)]
    pub openbao: BaoFlags,
    /// For tenants with secrets.openbao: do not provision their OpenBao policies and roles
    /// now (`tenantry secrets provision` does it later).
    #[arg(long)]
    pub skip_openbao: bool,
}

/// One object the plan would create or change.
#[derive(Debug, Serialize)]
struct PlannedChange {
    object: String,
    layer: &'static str,
    change: &'static str,
    details: Vec<String>,
}

/// A tenant's plan, as reported.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanReport {
    create: usize,
    change: usize,
    unchanged: usize,
    prune: usize,
    objects: Vec<PlannedChange>,
    to_prune: Vec<String>,
}

impl From<&TenantPlan> for PlanReport {
    fn from(plan: &TenantPlan) -> Self {
        let counts = plan.counts();
        Self {
            create: counts.create,
            change: counts.change,
            unchanged: counts.unchanged,
            prune: counts.prune,
            objects: plan
                .objects
                .iter()
                .filter(|o| o.change != Change::Unchanged)
                .map(|o| PlannedChange {
                    object: o.key.to_string(),
                    layer: o.layer.as_str(),
                    change: o.change.as_str(),
                    details: match &o.change {
                        Change::Update(d) => d.clone(),
                        _ => Vec::new(),
                    },
                })
                .collect(),
            to_prune: plan.prune.iter().map(|t| t.key.to_string()).collect(),
        }
    }
}

impl PlanReport {
    /// `subject` is `tenant <name>` or `platform <component>`.
    fn write_text(&self, out: &mut dyn Write, subject: &str) -> std::io::Result<()> {
        writeln!(
            out,
            "{subject}: {} to create, {} to change, {} unchanged, {} to prune",
            self.create, self.change, self.unchanged, self.prune
        )?;
        for o in &self.objects {
            if o.change == Change::Create.as_str() {
                writeln!(out, "  + {}", o.object)?;
            } else {
                writeln!(out, "  ~ {}", o.object)?;
                for d in &o.details {
                    writeln!(out, "      {d}")?;
                }
            }
        }
        for key in &self.to_prune {
            writeln!(out, "  - {key}")?;
        }
        Ok(())
    }
}

/// How one tenant went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum TenantResult {
    Unchanged,
    Applied,
    DryRun,
    Failed,
}

/// One tenant of `apply`.
#[derive(Debug, Serialize)]
struct TenantEntry {
    tenant: String,
    plan: PlanReport,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    applied: Option<LayersReport>,
    result: TenantResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// What `apply` did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ApplyReport {
    dry_run: bool,
    prune: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterInfo>,
    /// The platform-wide components, converged before any tenant (one entry per component
    /// with something rendered or pruned).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    platform: Vec<TenantEntry>,
    tenants: Vec<TenantEntry>,
    writes: usize,
    /// The tenants' OpenBao policies and roles, provisioned after their objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    openbao: Option<OpenBaoReport>,
    /// Tenants planned (some may not have been attempted after a fatal error).
    #[serde(skip)]
    planned: usize,
}

impl Report for ApplyReport {
    const COMMAND: &'static str = "apply";

    fn outcome(&self) -> Outcome {
        if self.failed() > 0 {
            Outcome::Failed
        } else if self
            .openbao
            .as_ref()
            .is_some_and(OpenBaoReport::has_findings)
        {
            Outcome::Findings
        } else {
            Outcome::Ok
        }
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for p in self
            .platform
            .iter()
            .filter(|p| p.result != TenantResult::Unchanged)
        {
            let subject = format!("platform {}", p.tenant);
            p.plan.write_text(out, &subject)?;
            if let Some(applied) = &p.applied {
                applied.write_text(out)?;
                if let Some(error) = &p.error {
                    applied.write_failure(out, &p.tenant, error, "tenantry apply")?;
                }
            }
        }
        if self.tenants.is_empty() {
            return Ok(());
        }
        for t in &self.tenants {
            if t.result != TenantResult::Unchanged {
                t.plan.write_text(out, &format!("tenant {}", t.tenant))?;
            }
        }
        let converged = self
            .tenants
            .iter()
            .filter(|t| t.result == TenantResult::Unchanged)
            .count();
        writeln!(
            out,
            "plan: {} tenant(s), {converged} unchanged, {} to converge{}",
            self.planned,
            self.planned - converged,
            if self.dry_run {
                " (dry run: nothing is stored)"
            } else {
                ""
            }
        )?;
        for t in &self.tenants {
            let Some(applied) = &t.applied else { continue };
            writeln!(out, "tenant {}:", t.tenant)?;
            applied.write_text(out)?;
            if let Some(error) = &t.error {
                applied.write_failure(out, &t.tenant, error, "tenantry apply")?;
            }
        }
        if let Some(openbao) = &self.openbao {
            openbao.write_text(out)?;
        }
        let failed = self.failed();
        if failed > 0 {
            writeln!(out, "{failed} tenant(s) failed")?;
        }
        Ok(())
    }
}

impl ApplyReport {
    fn failed(&self) -> usize {
        self.tenants
            .iter()
            .chain(&self.platform)
            .filter(|t| t.result == TenantResult::Failed)
            .count()
    }
}

/// Run `tenantry apply`.
pub fn run(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let mut report = ApplyReport {
        dry_run: args.dry_run,
        prune: args.prune,
        cluster: None,
        platform: Vec::new(),
        tenants: Vec::new(),
        writes: 0,
        openbao: None,
        planned: 0,
    };
    let result = converge(&args, &mut report);
    output::finish(args.cluster.output, &report, result)
}

fn converge(args: &ApplyArgs, report: &mut ApplyReport) -> anyhow::Result<()> {
    for name in &args.names {
        Repo::check_name(name)?;
    }
    let repo = args.repo.open(PlatformFile::Required)?;
    let rendered: Vec<Rendered> = repo.render_all(&args.names)?;
    if rendered.is_empty() {
        anyhow::bail!("no tenants in {}", display(&repo.tenants_dir()));
    }
    let label = repo.context().tenant_label();
    // Whether OpenBao can be reached is settled before anything is written.
    let config = &repo.context().platform.openbao;
    let access = openbao::desired(config, &rendered)?;
    let bao = openbao::client_for(
        &args.openbao,
        args.skip_openbao,
        config,
        &access,
        &mut report.openbao,
    )?;
    let progress = progress::for_output(args.cluster.output);
    let options = ApplyOptions {
        dry_run: args.dry_run,
        skip_missing_crds: args.skip_missing_crds,
        waits: Waits {
            timeout: args.timeout,
            ..Waits::default()
        },
    };
    runtime()?.block_on(async {
        let (api, endpoint) = args.cluster.connect().await?;
        report.cluster = Some(ClusterInfo::from(&endpoint));
        let catalog = api.discover().await?;
        for r in &rendered {
            ops::check_kinds(&catalog, r, args.skip_missing_crds)?;
        }
        // The platform-wide objects first: every tenant's delivery relies on them.
        let platform = render::platform::render_platform(repo.context());
        let component_label = render::platform::component_label(&repo.context().platform);
        let applied = ops::apply_platform(
            &api,
            &catalog,
            &platform,
            &component_label,
            args.prune,
            &options,
            progress.as_ref(),
        )
        .await?;
        for (plan, applied) in applied {
            let Some(component) = platform.iter().find(|c| c.tenant == plan.tenant) else {
                continue;
            };
            let entry = entry_of(component, &plan, applied, args.dry_run);
            report.writes += entry.applied.as_ref().map_or(0, |a| a.writes);
            report.platform.push(entry);
        }
        if report
            .platform
            .iter()
            .any(|p| p.result == TenantResult::Failed)
        {
            return Ok(());
        }
        report.planned = rendered.len();
        let converged = ops::converge_tenants(
            &api,
            &catalog,
            &rendered,
            label,
            if args.prune {
                ops::Prune::AllKinds
            } else {
                ops::Prune::Off
            },
            &options,
            progress.as_ref(),
        )
        .await?;
        for (r, ops::Converged { plan, applied }) in rendered.iter().zip(converged) {
            let Some(applied) = applied else {
                report.tenants.push(TenantEntry {
                    tenant: r.tenant.clone(),
                    plan: PlanReport::from(&plan),
                    applied: None,
                    result: TenantResult::Unchanged,
                    error: None,
                });
                continue;
            };
            report.writes += applied.writes;
            report
                .tenants
                .push(entry_of(r, &plan, applied, args.dry_run));
        }
        // After the objects, whose ServiceAccounts the roles bind; a tenant whose objects
        // failed (or were not attempted) waits for the next run.
        if let Some(client) = &bao {
            let converged: Vec<_> = access
                .into_iter()
                .filter(|a| {
                    report
                        .tenants
                        .iter()
                        .any(|t| t.tenant == a.names.tenant && t.result != TenantResult::Failed)
                })
                .collect();
            if !converged.is_empty() {
                let provisioned = report.openbao.insert(OpenBaoReport::default());
                openbao::provision(client, config, &converged, false, args.dry_run, provisioned)
                    .await?;
            }
        }
        Ok(())
    })
}

/// A tenant's (or the platform's) entry: unchanged when its plan was converged and nothing
/// failed, else what applying it did.
fn entry_of(
    r: &Rendered,
    plan: &TenantPlan,
    applied: ops::TenantApply,
    dry_run: bool,
) -> TenantEntry {
    let converged = plan.is_converged() && applied.error.is_none();
    TenantEntry {
        tenant: r.tenant.clone(),
        plan: PlanReport::from(plan),
        result: match &applied.error {
            None if converged => TenantResult::Unchanged,
            None if dry_run => TenantResult::DryRun,
            None => TenantResult::Applied,
            Some(_) => TenantResult::Failed,
        },
        error: applied.error.as_ref().map(ToString::to_string),
        applied: (!converged).then(|| LayersReport::from(&applied)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tenant: &str, result: TenantResult) -> TenantEntry {
        TenantEntry {
            tenant: tenant.to_owned(),
            plan: PlanReport {
                create: 0,
                change: 0,
                unchanged: 3,
                prune: 0,
                objects: Vec::new(),
                to_prune: Vec::new(),
            },
            applied: None,
            result,
            error: None,
        }
    }

    #[test]
    fn one_failed_tenant_fails_the_run() {
        let mut report = ApplyReport {
            dry_run: false,
            prune: false,
            cluster: None,
            platform: Vec::new(),
            tenants: vec![entry("a", TenantResult::Unchanged)],
            writes: 0,
            openbao: None,
            planned: 2,
        };
        assert_eq!(report.outcome(), Outcome::Ok);
        report.tenants.push(entry("b", TenantResult::Failed));
        assert_eq!(report.outcome(), Outcome::Failed);
        let mut text = Vec::new();
        report.write_text(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("plan: 2 tenant(s), 1 unchanged, 1 to converge"),
            "{text}"
        );
        assert!(text.ends_with("1 tenant(s) failed\n"), "{text}");
    }
}
