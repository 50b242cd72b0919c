//! A tenant's credentials: issuing one (for `onboard` and `kubeconfig`), and
//! `tenantry credentials list|revoke`.
//!
//! Issuing mints a time-limited token bound to its own Secret handle, proves with the new
//! token that it reaches exactly the tenant's namespace, and only then writes the
//! kubeconfig; a credential that fails the proof is revoked before the command exits.
//! Revoking deletes the handle, which kills that one token and no other: the tenant's
//! ServiceAccount, its delivery and its other kubeconfigs keep working.

use std::{io::Write, time::Duration};

use serde::Serialize;
use tenantry_cluster::{
    ClusterEndpoint, KubeCluster,
    credential::{self, CredentialInfo, Revocation, Revoke, TokenLifetime},
    ops::Waits,
};
use tenantry_gitops::{PlatformFile, Repo};

use crate::{
    args::{ClusterFlags, ClusterInfo, RepoArg, runtime},
    output::{self, Outcome, Output, Report, display},
};

/// What to issue.
pub struct Issue<'a> {
    /// The platform repository (`out/` lives under its root).
    pub repo: &'a Repo,
    /// The tenant.
    pub tenant: &'a str,
    /// The cluster, as the issued kubeconfig will name it.
    pub endpoint: &'a ClusterEndpoint,
    /// The token's lifetime.
    pub lifetime: TokenLifetime,
    /// Who will hold it, shown by `tenantry credentials list`.
    pub holder: Option<&'a str>,
    /// Text reports may add notes on stderr.
    pub output: Output,
}

/// How far an issued credential reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Scope {
    /// Exactly the tenant's namespace.
    #[serde(rename = "tenant")]
    Tenant,
    /// Further than the tenant.
    #[serde(rename = "broader than the tenant")]
    Broader,
    /// Not even the tenant's namespace.
    #[serde(rename = "not working in the tenant namespace")]
    NotWorking,
}

/// One scope question asked with the new token.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    question: String,
    check: tenantry_cluster::AccessCheck,
    expected: bool,
    allowed: bool,
    ok: bool,
}

/// The issued credential.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialReport {
    /// The kubeconfig written, or `null` when the credential was not handed out.
    kubeconfig: Option<String>,
    /// The credential's ID (`tenantry credentials revoke`).
    credential_id: String,
    service_account: String,
    expires_at: Option<String>,
    requested_seconds: u64,
    granted_seconds: Option<i64>,
    capped: bool,
    checks: Vec<CheckReport>,
    scope: Scope,
    #[serde(skip)]
    path: String,
    #[serde(skip)]
    gitignore_added: Option<String>,
    #[serde(skip)]
    tenant: String,
}

impl CredentialReport {
    /// `ok`, or which way the credential is wrong.
    pub fn outcome(&self) -> Outcome {
        match self.scope {
            Scope::Tenant => Outcome::Ok,
            Scope::Broader => Outcome::CredentialTooBroad,
            Scope::NotWorking => Outcome::CredentialNotWorking,
        }
    }

    /// The credential's lines: file, expiry, the scope table and the verdict.
    pub fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let tenant = &self.tenant;
        if self.capped {
            writeln!(
                out,
                "note: the requested token lifetime exceeds credentials.maxTokenDuration; issued for {}",
                credential::format_duration(Duration::from_secs(self.requested_seconds))
            )?;
        }
        writeln!(
            out,
            "credential: {} (ID {}, ServiceAccount {}, expires {})",
            self.path,
            self.credential_id,
            self.service_account,
            self.expires_at.as_deref().unwrap_or("unknown")
        )?;
        if let Some(gitignore) = &self.gitignore_added {
            writeln!(out, "  added out/ to {gitignore}")?;
        }
        let answer = |b: bool| if b { "allowed" } else { "denied" };
        writeln!(
            out,
            "  {:<36} {:<9} {:<9}",
            "CHECK (with the new token)", "EXPECTED", "ANSWER"
        )?;
        for c in &self.checks {
            writeln!(
                out,
                "  {:<36} {:<9} {:<9} {}",
                c.question,
                answer(c.expected),
                answer(c.allowed),
                if c.ok { "ok" } else { "WRONG" }
            )?;
        }
        match self.scope {
            Scope::Tenant => Ok(()),
            Scope::Broader => writeln!(
                out,
                "the credential is broader than the tenant: it was revoked, not handed out; check the ClusterRoleBindings and groups that reach ServiceAccount {tenant}/{tenant}"
            ),
            Scope::NotWorking => writeln!(
                out,
                "the credential does not work in the tenant's namespace: it was revoked; check the tenant's RoleBinding in namespace {tenant}"
            ),
        }
    }
}

/// Issue a credential, write it, prove its scope.
pub async fn issue(api: &KubeCluster, issue: &Issue<'_>) -> anyhow::Result<CredentialReport> {
    let Issue {
        repo,
        tenant,
        endpoint,
        lifetime,
        holder,
        output,
    } = *issue;
    if endpoint.insecure_skip_tls_verify && output == Output::Text {
        eprintln!(
            "warning: context {} skips TLS verification; the issued kubeconfig does too",
            endpoint.context
        );
    }
    let root = repo.root();
    let waits = Waits {
        timeout: Duration::from_secs(30),
        interval: Duration::from_millis(500),
    };
    // Checked (and, when wrong, revoked) before anything is written.
    let checked = credential::issue_checked(
        api,
        &credential::CredentialRequest {
            tenant,
            namespace: tenant,
            tenant_label: repo.context().tenant_label(),
            cluster_name: &repo.context().platform.cluster_name,
            endpoint,
            lifetime,
            holder,
        },
        &waits,
    )
    .await?;
    let (issued, checks) = (&checked.credential, &checked.checks);
    let path = credential::kubeconfig_path(root, tenant);
    let mut gitignore_added = None;
    if checked.ok() {
        credential::write_private(&path, issued.kubeconfig.as_bytes())?;
        gitignore_added =
            credential::ensure_out_ignored(root)?.then(|| display(&root.join(".gitignore")));
    }
    let scope = if checked.ok() {
        Scope::Tenant
    } else if checked.broader() {
        Scope::Broader
    } else {
        Scope::NotWorking
    };
    Ok(CredentialReport {
        kubeconfig: (scope == Scope::Tenant).then(|| display(&path)),
        credential_id: issued.id.clone(),
        service_account: format!("{tenant}/{tenant}"),
        expires_at: issued.expires_at.clone(),
        requested_seconds: lifetime.seconds,
        granted_seconds: issued.granted_seconds,
        capped: lifetime.capped,
        checks: checks
            .iter()
            .map(|c| CheckReport {
                question: c.question.clone(),
                check: c.check.clone(),
                expected: c.expected,
                allowed: c.allowed,
                ok: c.ok(),
            })
            .collect(),
        scope,
        path: display(&path),
        gitignore_added,
        tenant: tenant.to_owned(),
    })
}

/// `tenantry credentials`.
#[derive(clap::Args, Debug)]
pub struct CredentialsArgs {
    #[command(subcommand)]
    command: CredentialsCommand,
}

#[derive(clap::Subcommand, Debug)]
enum CredentialsCommand {
    /// List a tenant's issued credentials: ID, when issued, when it expires, who holds it.
    List(ListArgs),
    /// Revoke one of a tenant's credentials (or all, or the expired ones). The tenant's
    /// ServiceAccount, its delivery and its other credentials keep working.
    Revoke(RevokeArgs),
}

#[derive(clap::Args, Debug)]
struct ListArgs {
    /// The tenant.
    name: String,
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    cluster: ClusterFlags,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all", "expired"])))]
struct RevokeArgs {
    /// The tenant.
    name: String,
    /// The credential's ID (`tenantry credentials list NAME` shows them).
    id: Option<String>,
    /// Revoke every credential of the tenant.
    #[arg(long)]
    all: bool,
    /// Remove the handles of expired credentials (their tokens are dead already).
    #[arg(long)]
    expired: bool,
    #[command(flatten)]
    repo: RepoArg,
    #[command(flatten)]
    cluster: ClusterFlags,
}

/// What `credentials list` found.
#[derive(Debug, Serialize)]
struct ListReport {
    tenant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterInfo>,
    credentials: Vec<CredentialInfo>,
}

impl Report for ListReport {
    const COMMAND: &'static str = "credentials list";

    fn outcome(&self) -> Outcome {
        Outcome::Ok
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.cluster.is_none() {
            return Ok(());
        }
        if self.credentials.is_empty() {
            return writeln!(out, "tenant {}: no credentials issued", self.tenant);
        }
        writeln!(
            out,
            "{:<12} {:<22} {:<30} HOLDER",
            "ID", "ISSUED", "EXPIRES"
        )?;
        for c in &self.credentials {
            let expires = match (&c.expires_at, c.expired) {
                (Some(at), true) => format!("{at} (expired)"),
                (Some(at), false) => at.clone(),
                (None, _) => "unknown".to_owned(),
            };
            writeln!(
                out,
                "{:<12} {:<22} {:<30} {}",
                c.id,
                c.issued_at.as_deref().unwrap_or("unknown"),
                expires,
                c.holder.as_deref().unwrap_or("-")
            )?;
        }
        Ok(())
    }
}

/// What `credentials revoke` did.
#[derive(Debug, Serialize)]
struct RevokeReport {
    tenant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterInfo>,
    revoked: Vec<Revocation>,
}

impl Report for RevokeReport {
    const COMMAND: &'static str = "credentials revoke";

    fn outcome(&self) -> Outcome {
        if self.revoked.iter().any(|r| r.error.is_some()) {
            Outcome::Failed
        } else {
            Outcome::Ok
        }
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.cluster.is_none() {
            return Ok(());
        }
        if self.revoked.is_empty() {
            return writeln!(out, "tenant {}: nothing to revoke", self.tenant);
        }
        for r in &self.revoked {
            let holder = r
                .credential
                .holder
                .as_deref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            writeln!(out, "  {:<13} {}{holder}", r.outcome, r.credential.id)?;
            if let Some(error) = &r.error {
                writeln!(out, "      {error}")?;
            }
        }
        // The API server caches a successful token check for about ten seconds.
        writeln!(
            out,
            "revoked tokens are refused by the API server within about 10s; the tenant's other credentials keep working"
        )
    }
}

/// Run `tenantry credentials`.
pub fn run(args: CredentialsArgs) -> anyhow::Result<std::process::ExitCode> {
    match args.command {
        CredentialsCommand::List(args) => {
            let mut report = ListReport {
                tenant: args.name.clone(),
                cluster: None,
                credentials: Vec::new(),
            };
            let result = list(&args, &mut report);
            output::finish(args.cluster.output, &report, result)
        }
        CredentialsCommand::Revoke(args) => {
            let mut report = RevokeReport {
                tenant: args.name.clone(),
                cluster: None,
                revoked: Vec::new(),
            };
            let result = revoke(&args, &mut report);
            output::finish(args.cluster.output, &report, result)
        }
    }
}

fn list(args: &ListArgs, report: &mut ListReport) -> anyhow::Result<()> {
    Repo::check_name(&args.name)?;
    let repo = args.repo.open(PlatformFile::Required)?;
    runtime()?.block_on(async {
        let (api, endpoint) = args.cluster.connect().await?;
        report.cluster = Some(ClusterInfo::from(&endpoint));
        report.credentials =
            credential::list(&api, repo.context().tenant_label(), &args.name).await?;
        Ok(())
    })
}

fn revoke(args: &RevokeArgs, report: &mut RevokeReport) -> anyhow::Result<()> {
    Repo::check_name(&args.name)?;
    let which = match &args.id {
        Some(id) if !credential::is_credential_id(id) => anyhow::bail!(
            "{id:?} is not a credential ID (`tenantry credentials list {}` shows them)",
            args.name
        ),
        Some(id) => Revoke::Id(id),
        None if args.all => Revoke::All,
        None => Revoke::Expired,
    };
    let repo = args.repo.open(PlatformFile::Required)?;
    runtime()?.block_on(async {
        let (api, endpoint) = args.cluster.connect().await?;
        report.cluster = Some(ClusterInfo::from(&endpoint));
        report.revoked =
            credential::revoke(&api, repo.context().tenant_label(), &args.name, which).await?;
        Ok(())
    })
}
