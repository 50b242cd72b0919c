//! Issuing a tenant's credential (for `onboard` and `kubeconfig`): mint a bound,
//! time-limited token, write it as a kubeconfig, and prove with the new token that it reaches
//! exactly the tenant's namespace before handing it out.

use std::{io::Write, time::Duration};

use serde::Serialize;
use tenantry_cluster::{
    ClusterEndpoint, KubeCluster,
    credential::{self, TokenLifetime},
    ops::Waits,
};
use tenantry_gitops::Repo;

use crate::output::{Outcome, Output, display};

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
            holder: None,
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
