//! `tenantry offboard`: remove a tenant without a trace. On the cluster: stop its delivery,
//! delete its ServiceAccounts (which kills every token issued for them) and prove the last
//! issued token is rejected, delete everything else, wait for its namespaces to go, then
//! scan every listable type for leftovers. In the repository: remove its directory and its
//! registration. Re-running after an interruption finishes the job.

use std::{io::Write, path::Path, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use tenantry_cluster::{
    ClusterApi, TokenStatus, credential,
    ops::{self, DeleteReport, Waits},
};
use tenantry_gitops::{KUSTOMIZATION_FILE, PlatformFile, Repo};

use crate::{
    args::{ClusterFlags, ClusterInfo, RepoArg, parse_duration, runtime},
    commands::secrets::{self, BaoFlags},
    output::{self, Outcome, Report, display},
    progress,
};

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
    pub cluster: OffboardClusterArgs,
}

/// Cluster flags of `offboard`.
#[derive(Args, Debug, Clone, Default)]
pub struct OffboardClusterArgs {
    #[command(flatten)]
    pub cluster: ClusterFlags,
    /// Keep the tenant's GitOps directory and registration.
    #[arg(long, conflicts_with = "gitops_only")]
    pub keep_gitops: bool,
    /// How long to wait for the tenant's namespaces to be deleted.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub timeout: Duration,
    #[command(flatten)]
    pub openbao: BaoFlags,
    /// For a tenant with secrets.openbao: also delete its OpenBao secrets (kept by default).
    #[arg(long, conflicts_with = "gitops_only")]
    pub purge_secrets: bool,
    /// For a tenant with secrets.openbao: leave its OpenBao role, policy and tokens in place.
    #[arg(long, conflicts_with = "gitops_only")]
    pub skip_openbao: bool,
}

/// What happened to the tenant's GitOps files.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct GitopsRemoval {
    removed_directory: bool,
    unregistered: bool,
    #[serde(skip)]
    directory: String,
    #[serde(skip)]
    registry: String,
}

/// The cluster part of the report.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterRemoval {
    deleted: Vec<DeleteReport>,
    namespaces: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_token: Option<TokenStatus>,
    kubeconfigs_removed: Vec<String>,
    /// Where an issued kubeconfig was looked for.
    #[serde(skip)]
    kubeconfig_path: String,
}

/// What `offboard` did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct OffboardReport {
    tenant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterInfo>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    removal: Option<ClusterRemoval>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gitops: Option<GitopsRemoval>,
    /// The tenant's OpenBao access, revoked (tenants with secrets.openbao).
    #[serde(skip_serializing_if = "Option::is_none")]
    openbao: Option<tenantry_secrets::revoke::Revocation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    leftovers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unreadable: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    findings: Option<Vec<String>>,
    #[serde(skip)]
    not_found: bool,
}

impl Report for OffboardReport {
    const COMMAND: &'static str = "offboard";

    fn outcome(&self) -> Outcome {
        if self.not_found {
            Outcome::NotFound
        } else if self.findings.as_ref().is_some_and(|f| !f.is_empty()) {
            Outcome::Findings
        } else {
            Outcome::Ok
        }
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let tenant = &self.tenant;
        if let Some(cluster) = &self.cluster {
            writeln!(
                out,
                "tenant {tenant}: offboarding from context {} ({})",
                cluster.context, cluster.server
            )?;
        }
        if self.not_found {
            let where_ = if self.cluster.is_some() {
                " in the cluster or the repository"
            } else {
                ""
            };
            return writeln!(out, "tenant {tenant}: not found{where_}, nothing to remove");
        }
        if let Some(removal) = &self.removal {
            removal.write_text(out)?;
        }
        if let Some(revoked) = &self.openbao {
            secrets::write_revocation(out, revoked)?;
        }
        if let Some(gitops) = &self.gitops {
            gitops.write_text(out, tenant, self.cluster.is_some())?;
        }
        if let (Some(leftovers), Some(unreadable)) = (&self.leftovers, &self.unreadable) {
            if leftovers.is_empty() && unreadable.is_empty() {
                writeln!(out, "tenant {tenant}: nothing left")?;
            }
            for l in leftovers {
                writeln!(out, "  left over     {l}")?;
            }
            for u in unreadable {
                writeln!(out, "  not checked   {u}")?;
            }
        }
        for f in self.findings.iter().flatten() {
            writeln!(out, "{f}")?;
        }
        Ok(())
    }
}

impl ClusterRemoval {
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for d in &self.deleted {
            writeln!(out, "  {:<13} {}", d.outcome, d.object)?;
        }
        match &self.last_token {
            Some(status) => writeln!(
                out,
                "credential: last issued token {} (TokenReview after deleting the ServiceAccount)",
                if status.authenticated {
                    "STILL ACCEPTED"
                } else {
                    "rejected: revoked"
                }
            )?,
            None => writeln!(
                out,
                "credential: no issued kubeconfig at {}; tokens die with the deleted ServiceAccounts",
                self.kubeconfig_path
            )?,
        }
        if !self.kubeconfigs_removed.is_empty() {
            writeln!(
                out,
                "  removed       {}",
                self.kubeconfigs_removed.join(", ")
            )?;
        }
        Ok(())
    }
}

impl GitopsRemoval {
    fn write_text(&self, out: &mut dyn Write, tenant: &str, cluster: bool) -> std::io::Result<()> {
        if cluster {
            if self.removed_directory || self.unregistered {
                writeln!(
                    out,
                    "  removed       {}{}; commit it so GitOps does not re-create the tenant",
                    self.directory,
                    if self.unregistered {
                        " and its registration"
                    } else {
                        ""
                    }
                )?;
            }
            return Ok(());
        }
        let mut parts = Vec::new();
        if self.removed_directory {
            parts.push(format!("removed {}", self.directory));
        }
        if self.unregistered {
            parts.push(format!("unregistered from {}", self.registry));
        }
        writeln!(out, "tenant {tenant}: {}", parts.join(", "))
    }
}

impl ClusterRemoval {
    fn new(removed: ops::OffboardCluster, kubeconfigs_removed: Vec<String>, issued: &Path) -> Self {
        Self {
            deleted: removed.deleted,
            namespaces: removed.namespaces,
            last_token: removed.last_token,
            kubeconfigs_removed,
            kubeconfig_path: display(issued),
        }
    }
}

impl OffboardReport {
    /// The final scan: what is still labelled for the tenant, and what could not be looked at.
    fn record_leftovers(
        &mut self,
        leftovers: Vec<String>,
        unreadable: Vec<String>,
        mut findings: Vec<String>,
    ) {
        if !leftovers.is_empty() {
            findings.push(format!(
                "{} object(s) labelled for the tenant are left",
                leftovers.len()
            ));
        }
        if !unreadable.is_empty() {
            findings.push(format!(
                "{} resource type(s) could not be checked",
                unreadable.len()
            ));
        }
        self.leftovers = Some(leftovers);
        self.unreadable = Some(unreadable);
        self.findings = Some(findings);
    }
}

/// Remove `path`; the list of what was removed (empty when it was not there).
fn remove_if_present(path: &Path) -> anyhow::Result<Vec<String>> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(vec![display(path)]),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", display(path))),
    }
}

/// Run `tenantry offboard`.
pub fn run(args: OffboardArgs) -> anyhow::Result<ExitCode> {
    let mut report = OffboardReport {
        tenant: args.name.clone(),
        ..OffboardReport::default()
    };
    let result = if args.gitops_only {
        gitops_only(&args, &mut report)
    } else {
        from_cluster(&args, &mut report)
    };
    output::finish(args.cluster.cluster.output, &report, result)
}

fn remove_files(repo: &Repo, name: &str) -> anyhow::Result<GitopsRemoval> {
    let (removed_directory, unregistered) = repo.remove_tenant(name)?;
    Ok(GitopsRemoval {
        removed_directory,
        unregistered,
        directory: display(&repo.tenant_dir(name)),
        registry: display(&repo.tenants_dir().join(KUSTOMIZATION_FILE)),
    })
}

fn gitops_only(args: &OffboardArgs, report: &mut OffboardReport) -> anyhow::Result<()> {
    Repo::check_name(&args.name)?;
    let repo = args.repo.open(PlatformFile::Required)?;
    let removal = remove_files(&repo, &args.name)?;
    if !removal.removed_directory && !removal.unregistered {
        anyhow::ensure!(
            args.ignore_not_found,
            "no tenant named {:?} in {} (use --ignore-not-found to accept that)",
            args.name,
            display(&repo.tenants_dir())
        );
        report.not_found = true;
    }
    report.gitops = Some(removal);
    Ok(())
}

fn from_cluster(args: &OffboardArgs, report: &mut OffboardReport) -> anyhow::Result<()> {
    let flags = &args.cluster;
    Repo::check_name(&args.name)?;
    let repo = args.repo.open(PlatformFile::Required)?;
    let label = repo.context().tenant_label();
    let issued = credential::kubeconfig_path(repo.root(), &args.name);
    let last_token = std::fs::read_to_string(&issued)
        .ok()
        .and_then(|text| credential::token_of(&text));
    let in_repo = repo.tenant_dir(&args.name).exists();
    let openbao = secrets::offboard_client(&repo, &args.name, &flags.openbao, flags.skip_openbao)?;
    let progress = progress::for_output(flags.cluster.output);
    let waits = Waits {
        timeout: flags.timeout,
        ..Waits::default()
    };
    runtime()?.block_on(async {
        let (api, endpoint) = flags.cluster.connect().await?;
        report.cluster = Some(ClusterInfo::from(&endpoint));
        let catalog = api.discover().await?;
        let removed = ops::offboard_cluster(
            &api,
            &catalog,
            label,
            &args.name,
            last_token.as_deref(),
            &waits,
            progress.as_ref(),
        )
        .await?;
        let found_in_cluster = !removed.deleted.is_empty() || !removed.namespaces.is_empty();
        if !found_in_cluster && !in_repo && last_token.is_none() {
            anyhow::ensure!(
                args.ignore_not_found,
                "no tenant named {:?} in the cluster (context {}) or in {} (use --ignore-not-found to accept that)",
                args.name,
                endpoint.context,
                display(&repo.tenants_dir())
            );
            report.not_found = true;
            return Ok(());
        }
        // A failed deletion stops here, before the kubeconfig and the GitOps files go, with
        // every deletion's outcome in the report.
        if let Some(error) = removed.first_error().cloned() {
            let failed = removed.failures().count();
            report.removal = Some(ClusterRemoval::new(removed, Vec::new(), &issued));
            return Err(anyhow::Error::new(error).context(format!(
                "{failed} deletion(s) failed; tenant {} is partly removed (run the command again)",
                args.name
            )));
        }
        let mut findings = Vec::new();
        if removed.last_token.as_ref().is_some_and(|t| t.authenticated) {
            findings.push("the last issued token is still accepted".to_owned());
        }
        // OpenBao access goes before the files that say the tenant had it, so a failure here
        // leaves them for the next run.
        if let Some(client) = &openbao {
            let options = tenantry_secrets::revoke::Options {
                purge_secrets: flags.purge_secrets,
                force: false,
            };
            let config = &repo.context().platform.openbao;
            match secrets::revoke_tenant(client, config, &args.name, options).await {
                Ok(revoked) => {
                    if [revoked.role, revoked.policy]
                        .contains(&tenantry_secrets::revoke::Removal::KeptForeign)
                    {
                        findings.push("an OpenBao role or policy of the tenant's name was not written by Tenantry and was kept".to_owned());
                    }
                    report.openbao = Some(revoked);
                }
                Err(error) => {
                    report.removal = Some(ClusterRemoval::new(removed, Vec::new(), &issued));
                    return Err(anyhow::Error::new(error).context(format!(
                        "revoking tenant {}'s OpenBao access failed; its files are kept (run the command again)",
                        args.name
                    )));
                }
            }
        }
        // The token has been checked; the file holding it goes now.
        let kubeconfigs_removed = remove_if_present(&issued)?;
        let namespaces = removed.namespaces.clone();
        report.removal = Some(ClusterRemoval::new(removed, kubeconfigs_removed, &issued));
        if !flags.keep_gitops {
            report.gitops = Some(remove_files(&repo, &args.name)?);
        }
        ops::wait_namespaces_gone(&api, &catalog, &namespaces, &waits, progress.as_ref())
            .await?;
        let (found, unreadable) =
            ops::scan_tenant(&api, &catalog, label, &args.name, progress.as_ref()).await?;
        report.record_leftovers(ops::leftovers(&found), unreadable, findings);
        Ok(())
    })
}
