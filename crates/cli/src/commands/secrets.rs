//! `tenantry secrets provision|revoke`: each tenant's OpenBao policy and Kubernetes-auth role,
//! made real on the server, and taken away again with every token they issued.
//! `tenantry secrets scaffold` writes a generated secret's objects into a tenant's own
//! `deploy/` tree (its own module).
//!
//! The desired state is the tenant's rendering (the same `openbao-policy.hcl` and
//! `openbao-role.json` its GitOps directory holds); `tenantry-secrets` reads OpenBao, plans,
//! and writes only what differs. An unreachable or sealed server ends the command with exit
//! 1 and the server's address, before anything is written: running again once it is back
//! is the whole fix. Tokens are read from the environment or a file and never printed.

use std::{io::Write, process::ExitCode};

use clap::{Args, Subcommand};
use serde::Serialize;
use tenantry_api::platform::OpenBaoConfig;
use tenantry_gitops::{PlatformFile, Repo};
use tenantry_secrets::{
    BaoClient, DesiredAccess, Layout, SecretsError, TenantNames,
    revoke::{self, Removal, Revocation},
};

pub use crate::args::BaoFlags;
use crate::{
    args::{RepoArg, runtime},
    openbao::{self, OpenBaoReport},
    output::{self, Outcome, Output, Report, plural},
};

mod scaffold;

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
    /// Write a generated secret's Password generator, PushSecret and ExternalSecret into a
    /// tenant's deploy directory.
    #[command(
        after_help = "Examples:\n  tenantry secrets scaffold shop session-key --repo ../platform\n  tenantry secrets scaffold shop admin-code --dir app/deploy --repo ../platform\n\nNAME is the tenant (it needs secrets.openbao); SECRET names the objects, the Kubernetes\nSecret the application reads (key `password`) and the OpenBao path\n<pathPrefix>/<tenant>/<SECRET>. The value is generated once and never replaced by a\nreconcile. Files are added to the directory's kustomization.yaml when it has one; an\nexisting file with other content is never overwritten."
    )]
    Scaffold(scaffold::ScaffoldArgs),
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
    /// Named tenants without secrets.openbao: nothing to provision.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    without_openbao: Vec<String>,
    #[serde(flatten)]
    provisioned: OpenBaoReport,
}

impl Report for ProvisionReport {
    const COMMAND: &'static str = "secrets provision";

    fn outcome(&self) -> Outcome {
        if self.provisioned.has_findings() {
            Outcome::Findings
        } else {
            Outcome::Ok
        }
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for t in &self.without_openbao {
            writeln!(out, "tenant {t}: no secrets.openbao, nothing to provision")?;
        }
        if self.provisioned.address.is_none() && self.without_openbao.is_empty() {
            writeln!(out, "no tenant has secrets.openbao: nothing to provision")?;
        }
        self.provisioned.write_text(out)
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
            let mut report = ProvisionReport::default();
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
        SecretsCommand::Scaffold(args) => {
            let mut report = scaffold::ScaffoldReport::default();
            let result = scaffold::run(&args, &mut report);
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
    report.provisioned.dry_run = args.dry_run;
    if tenants.is_empty() {
        return Ok(());
    }
    let client = args.bao.client(config)?;
    runtime()?.block_on(openbao::provision(
        &client,
        config,
        &tenants,
        args.force,
        args.dry_run,
        &mut report.provisioned,
    ))?;
    Ok(())
}

fn revoke_one(args: &RevokeArgs, report: &mut RevokeReport) -> anyhow::Result<()> {
    Repo::check_name(&args.name)?;
    let repo = args.repo.open(PlatformFile::Required)?;
    let config = &repo.context().platform.openbao;
    let client = args.bao.client(config)?;
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
    Ok(Some(flags.client(&repo.context().platform.openbao)?))
}
