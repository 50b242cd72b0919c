//! `tenantry secrets provision|revoke`: each tenant's OpenBao policy and Kubernetes-auth role,
//! made real on the server, and taken away again with every token they issued.
//!
//! The desired state is the tenant's rendering (the same `openbao-policy.hcl` and
//! `openbao-role.json` its GitOps directory holds); `tenantry-secrets` reads OpenBao, plans,
//! and writes only what differs. An unreachable or sealed server ends the command with exit
//! 1 and the server's address, before anything is written: running again once it is back
//! is the whole fix. Tokens are read from the environment or a file and never printed.

use std::{io::Write, path::PathBuf, process::ExitCode};

use clap::{Args, Subcommand};
use serde::Serialize;
use tenantry_api::platform::OpenBaoConfig;
use tenantry_gitops::{PlatformFile, Repo};
use tenantry_secrets::{
    BaoClient, Connection, ConnectionFlags, DesiredAccess, Layout, RequestCounts, SecretsError,
    TenantNames,
    provision::{self, Change, Step, Target},
    revoke::{self, Removal, Revocation},
};

use crate::{
    args::{RepoArg, runtime},
    output::{self, Outcome, Output, Report, plural},
};

/// `tenantry secrets`.
#[derive(Args, Debug)]
pub struct SecretsArgs {
    #[command(subcommand)]
    command: SecretsCommand,
}

#[derive(Subcommand, Debug)]
enum SecretsCommand {
    /// Write each tenant's OpenBao policy and Kubernetes-auth role; only what differs.
    #[command(
        after_help = "Examples:\n  tenantry secrets provision shop             one tenant\n  tenantry secrets provision --all            every tenant with secrets.openbao\n  tenantry secrets provision --all --dry-run  print the plan, write nothing\n\nOpenBao is found through BAO_ADDR (or VAULT_ADDR), authenticated with BAO_TOKEN (or\nVAULT_TOKEN, or --bao-token-file) and, for TLS, trusted through --bao-ca-file (or\nBAO_CACERT/VAULT_CACERT). A policy or role that exists but was not written by Tenantry is\nleft alone unless --force. Exit status: 0 done, 1 something was refused or OpenBao is\nunreachable or sealed, 2 bad input."
    )]
    Provision(ProvisionArgs),
    /// Delete a tenant's OpenBao role and policy and revoke every token issued through them.
    #[command(
        after_help = "Examples:\n  tenantry secrets revoke shop\n  tenantry secrets revoke shop --purge-secrets   also delete apps/shop/* with all versions\n\nThe tenant's secrets are kept unless --purge-secrets is given."
    )]
    Revoke(RevokeArgs),
}

/// How to reach OpenBao; shared with `offboard`.
#[derive(Args, Debug, Clone, Default)]
pub struct BaoFlags {
    /// OpenBao address (default: $BAO_ADDR, else $VAULT_ADDR).
    #[arg(long, value_name = "URL")]
    pub bao_addr: Option<String>,
    /// File holding the OpenBao token (default: $BAO_TOKEN, else $VAULT_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub bao_token_file: Option<PathBuf>,
    /// PEM CA bundle to trust for OpenBao's TLS certificate (default: $BAO_CACERT, else
    /// $VAULT_CACERT, else the system's roots).
    #[arg(long, value_name = "FILE")]
    pub bao_ca_file: Option<PathBuf>,
}

impl BaoFlags {
    fn connection_flags(&self) -> ConnectionFlags {
        ConnectionFlags {
            address: self.bao_addr.clone(),
            token_file: self.bao_token_file.clone(),
            ca_file: self.bao_ca_file.clone(),
        }
    }

    /// Whether an OpenBao address is given, by flag or environment.
    pub fn configured(&self) -> bool {
        Connection::configured(&self.connection_flags(), env)
    }

    /// A client for the configured server; nothing is sent yet.
    pub fn client(&self) -> Result<BaoClient, SecretsError> {
        BaoClient::new(&Connection::resolve(&self.connection_flags(), env)?)
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `tenantry secrets provision`.
#[derive(Args, Debug)]
pub struct ProvisionArgs {
    /// Tenants to provision.
    #[arg(value_name = "NAME", required_unless_present = "all")]
    names: Vec<String>,
    /// Every tenant of the repository with secrets.openbao.
    #[arg(long, conflicts_with = "names")]
    all: bool,
    /// Print the plan and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Replace policies and roles that exist but were not written by Tenantry.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    bao: BaoFlags,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text, value_name = "FORMAT")]
    output: Output,
}

/// `tenantry secrets revoke`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The tenant.
    name: String,
    /// Also delete the tenant's secrets, with their metadata and every version.
    #[arg(long)]
    purge_secrets: bool,
    /// Also delete a policy or role of the tenant's name that Tenantry did not write.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    bao: BaoFlags,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text, value_name = "FORMAT")]
    output: Output,
}

/// What `secrets provision` did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProvisionReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    /// Named tenants without secrets.openbao: nothing to provision.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    without_openbao: Vec<String>,
    plan: Vec<Step>,
    dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    requests: Option<RequestCounts>,
    /// OpenBao could not be used (unreachable or sealed): nothing was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    unavailable: Option<String>,
}

impl Report for ProvisionReport {
    const COMMAND: &'static str = "secrets provision";

    fn outcome(&self) -> Outcome {
        if self.unavailable.is_some() || self.plan.iter().any(|s| s.change == Change::Foreign) {
            Outcome::Findings
        } else {
            Outcome::Ok
        }
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for t in &self.without_openbao {
            writeln!(out, "tenant {t}: no secrets.openbao, nothing to provision")?;
        }
        match &self.address {
            Some(address) => writeln!(out, "OpenBao {address}: plan")?,
            None if self.without_openbao.is_empty() => {
                writeln!(out, "no tenant has secrets.openbao: nothing to provision")?;
            }
            None => {}
        }
        for s in &self.plan {
            let what = match s.target {
                Target::KvMount => "kv mount",
                Target::AuthMethod => "auth method",
                Target::Policy => "policy",
                Target::Role => "role",
            };
            let change = match s.change {
                Change::Create => "create",
                Change::Update => "update",
                Change::Unchanged => "unchanged",
                Change::Foreign => "REFUSED",
                Change::Blocked => "skipped",
            };
            let tenant = s
                .tenant
                .as_deref()
                .map(|t| format!(" (tenant {t})"))
                .unwrap_or_default();
            let detail = if s.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", s.detail.join(", "))
            };
            writeln!(out, "  {change:<10} {what:<11} {}{tenant}{detail}", s.name)?;
        }
        if self.plan.iter().any(|s| s.change == Change::Foreign) {
            writeln!(
                out,
                "refused: an existing policy or role was not written by Tenantry; its tenant was skipped (--force replaces it)"
            )?;
        }
        if let Some(reason) = &self.unavailable {
            writeln!(out, "OpenBao unavailable, nothing written: {reason}")?;
        } else if self.dry_run {
            writeln!(out, "dry run: nothing written")?;
        } else if self.address.is_some() {
            let written = self.plan.iter().filter(|s| s.done).count();
            writeln!(
                out,
                "written: {}",
                if written == 0 {
                    "nothing (OpenBao already matches)".to_owned()
                } else {
                    plural(written, "object")
                }
            )?;
        }
        Ok(())
    }
}

/// What `secrets revoke` did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct RevokeReport {
    tenant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    revoked: Option<Revocation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unavailable: Option<String>,
}

impl Report for RevokeReport {
    const COMMAND: &'static str = "secrets revoke";

    fn outcome(&self) -> Outcome {
        let foreign = self
            .revoked
            .as_ref()
            .is_some_and(|r| r.role == Removal::KeptForeign || r.policy == Removal::KeptForeign);
        if self.unavailable.is_some() || foreign {
            Outcome::Findings
        } else {
            Outcome::Ok
        }
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if let Some(reason) = &self.unavailable {
            return writeln!(out, "OpenBao unavailable, nothing revoked: {reason}");
        }
        match (&self.address, &self.revoked) {
            (Some(address), Some(r)) => {
                writeln!(out, "tenant {}: OpenBao {address}", self.tenant)?;
                write_revocation(out, r)
            }
            _ => Ok(()),
        }
    }
}

/// The lines saying what happened to a tenant's OpenBao access (also used by `offboard`).
pub fn write_revocation(out: &mut dyn Write, r: &Revocation) -> std::io::Result<()> {
    for (what, name, removal) in [
        ("role", &r.role_name, r.role),
        ("policy", &r.policy_name, r.policy),
    ] {
        let outcome = match removal {
            Removal::Deleted => "deleted",
            Removal::Absent => "absent",
            Removal::KeptForeign => "KEPT",
        };
        let note = if removal == Removal::KeptForeign {
            " (not written by Tenantry; --force deletes it)"
        } else {
            ""
        };
        writeln!(out, "  {outcome:<13} OpenBao {what} {name}{note}")?;
    }
    writeln!(
        out,
        "  {:<13} {} issued through the role or carrying the policy",
        "revoked",
        plural(r.tokens_revoked, "OpenBao token")
    )?;
    if r.secrets_purged {
        writeln!(
            out,
            "  {:<13} {} under {} (metadata and every version)",
            "purged",
            plural(r.secrets, "secret"),
            r.secrets_path
        )
    } else {
        writeln!(
            out,
            "  {:<13} {} under {} (--purge-secrets deletes them)",
            "kept",
            plural(r.secrets, "secret"),
            r.secrets_path
        )
    }
}

/// Revoke `tenant`'s OpenBao access (for `secrets revoke` and `offboard`).
pub async fn revoke_tenant(
    client: &BaoClient,
    config: &OpenBaoConfig,
    tenant: &str,
    options: revoke::Options,
) -> Result<Revocation, SecretsError> {
    revoke::revoke(
        client,
        &Layout::from(config),
        &TenantNames::new(config, tenant),
        options,
    )
    .await
}

/// Run `tenantry secrets`.
pub fn run(args: SecretsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SecretsCommand::Provision(args) => {
            let mut report = ProvisionReport {
                dry_run: args.dry_run,
                ..ProvisionReport::default()
            };
            let result = provision_tenants(&args, &mut report);
            output::finish(args.output, &report, result)
        }
        SecretsCommand::Revoke(args) => {
            let mut report = RevokeReport {
                tenant: args.name.clone(),
                ..RevokeReport::default()
            };
            let result = revoke_one(&args, &mut report);
            output::finish(args.output, &report, result)
        }
    }
}

/// An unavailable server goes into the report (exit 1); any other error stops the command.
fn unavailable(e: SecretsError, slot: &mut Option<String>) -> anyhow::Result<()> {
    if e.is_unavailable() {
        *slot = Some(e.to_string());
        Ok(())
    } else {
        Err(e.into())
    }
}

fn provision_tenants(args: &ProvisionArgs, report: &mut ProvisionReport) -> anyhow::Result<()> {
    let repo = args.repo.open(PlatformFile::Required)?;
    let ctx = repo.context();
    let config = &ctx.platform.openbao;
    let mut tenants = Vec::new();
    for loaded in repo.load_tenants(&args.names)? {
        let rendered = tenantry_core::render::render(ctx, &loaded.resolved);
        match DesiredAccess::from_rendered(config, &rendered)? {
            Some(access) => tenants.push(access),
            None if !args.all => report.without_openbao.push(loaded.resolved.name),
            None => {}
        }
    }
    if tenants.is_empty() {
        return Ok(());
    }
    let client = args.bao.client()?;
    report.address = Some(client.address().to_owned());
    let layout = Layout::from(config);
    runtime()?.block_on(async {
        let options = provision::Options { force: args.force };
        let mut plan = match provision::plan(&client, &layout, &tenants, options).await {
            Ok(plan) => plan,
            Err(e) => return unavailable(e, &mut report.unavailable),
        };
        let result = if args.dry_run {
            Ok(())
        } else {
            provision::apply(&client, &layout, &tenants, &mut plan).await
        };
        report.plan = plan.steps;
        report.requests = Some(client.counts());
        match result {
            Ok(()) => Ok(()),
            Err(e) => unavailable(e, &mut report.unavailable),
        }
    })
}

fn revoke_one(args: &RevokeArgs, report: &mut RevokeReport) -> anyhow::Result<()> {
    Repo::check_name(&args.name)?;
    let repo = args.repo.open(PlatformFile::Required)?;
    let config = &repo.context().platform.openbao;
    let client = args.bao.client()?;
    report.address = Some(client.address().to_owned());
    let options = revoke::Options {
        purge_secrets: args.purge_secrets,
        force: args.force,
    };
    runtime()?.block_on(async {
        match revoke_tenant(&client, config, &args.name, options).await {
            Ok(r) => {
                report.revoked = Some(r);
                Ok(())
            }
            Err(e) => unavailable(e, &mut report.unavailable),
        }
    })
}

/// For `offboard`: a client to revoke `tenant`'s OpenBao access with, when it has
/// `secrets.openbao` (or its declaration cannot be read and OpenBao is configured). A tenant
/// with OpenBao access and no server to revoke it on is refused before anything is removed,
/// unless `skip` says to leave its access in place.
pub fn offboard_client(
    repo: &Repo,
    tenant: &str,
    flags: &BaoFlags,
    skip: bool,
) -> anyhow::Result<Option<BaoClient>> {
    let declared = repo
        .read_tenant(tenant)
        .ok()
        .flatten()
        .and_then(|file| repo.resolve(&file).ok())
        .map(|t| t.openbao);
    let has_openbao = declared.unwrap_or_else(|| flags.configured());
    if !has_openbao || skip {
        return Ok(None);
    }
    anyhow::ensure!(
        flags.configured(),
        "tenant {tenant} has secrets.openbao: set BAO_ADDR and BAO_TOKEN (or pass --bao-addr and \
         --bao-token-file) so offboarding revokes its OpenBao role, policy and tokens, or pass \
         --skip-openbao to leave them"
    );
    Ok(Some(flags.client()?))
}
