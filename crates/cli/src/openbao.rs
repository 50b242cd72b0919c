//! OpenBao for the commands that converge tenants: `secrets provision`, and `onboard` and
//! `apply` in cluster mode.
//!
//! All three run the one `tenantry_secrets::provision::provision` on the tenants' rendered
//! access and print its plan the same way, so a tenant provisioned by `onboard` is in exactly
//! the state `secrets provision` would leave it in. Cluster commands provision after the
//! tenant's objects are applied: the role binds the tenant's ServiceAccount, which must exist
//! for a login to work. Whether OpenBao can be reached is settled before anything is written:
//! a tenant that needs it with no server configured is refused (exit 2) unless
//! `--skip-openbao` says to leave its access for a later `secrets provision`.

use std::io::Write;

use serde::Serialize;
use tenantry_api::platform::OpenBaoConfig;
use tenantry_core::Rendered;
use tenantry_secrets::{
    BaoClient, DesiredAccess, Layout, RequestCounts, SecretsError,
    provision::{self, Change, Plan, Step, Target},
};

use crate::{args::BaoFlags, output::plural};

/// What provisioning did, as `onboard` and `apply` report it (`openbao` in their JSON).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenBaoReport {
    /// The server, when one was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Every step: mounts, then each tenant's policy and role.
    pub plan: Vec<Step>,
    /// Planned only.
    pub dry_run: bool,
    /// Requests sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<RequestCounts>,
    /// OpenBao could not be used (unreachable or sealed): nothing was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Tenants with `secrets.openbao` left unprovisioned because of `--skip-openbao`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

impl OpenBaoReport {
    /// Whether something needs the user's attention: a refused step or an unusable server.
    pub fn has_findings(&self) -> bool {
        self.unavailable.is_some() || self.plan.iter().any(|s| s.change == Change::Foreign)
    }

    /// The report for people.
    pub fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for t in &self.skipped {
            writeln!(
                out,
                "OpenBao: tenant {t} not provisioned (--skip-openbao); run `tenantry secrets provision {t}`"
            )?;
        }
        if let Some(address) = &self.address {
            writeln!(out, "OpenBao {address}: plan")?;
        }
        write_plan(
            out,
            &self.plan,
            self.unavailable.as_deref(),
            self.dry_run,
            self.address.is_some(),
        )
    }
}

/// The plan's lines and what came of it (also `secrets provision`'s).
pub fn write_plan(
    out: &mut dyn Write,
    steps: &[Step],
    unavailable: Option<&str>,
    dry_run: bool,
    used: bool,
) -> std::io::Result<()> {
    for s in steps {
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
    if steps.iter().any(|s| s.change == Change::Foreign) {
        writeln!(
            out,
            "refused: an existing policy or role was not written by Tenantry; its tenant was skipped (--force replaces it)"
        )?;
    }
    if let Some(reason) = unavailable {
        writeln!(out, "OpenBao unavailable, nothing written: {reason}")?;
    } else if dry_run {
        writeln!(out, "dry run: nothing written")?;
    } else if used {
        let written = steps.iter().filter(|s| s.done).count();
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

/// The OpenBao access of the tenants in `rendered` that have `secrets.openbao`.
pub fn desired(
    config: &OpenBaoConfig,
    rendered: &[Rendered],
) -> Result<Vec<DesiredAccess>, SecretsError> {
    let mut out = Vec::new();
    for r in rendered {
        out.extend(DesiredAccess::from_rendered(config, r)?);
    }
    Ok(out)
}

/// For a cluster command, before anything is written: a client when some tenant needs
/// OpenBao. `None` when none does, or `skip` leaves their access for later (then `report`
/// names them).
pub fn client_for(
    flags: &BaoFlags,
    skip: bool,
    config: &OpenBaoConfig,
    tenants: &[DesiredAccess],
    report: &mut Option<OpenBaoReport>,
) -> anyhow::Result<Option<BaoClient>> {
    if tenants.is_empty() {
        return Ok(None);
    }
    let names: Vec<&str> = tenants.iter().map(|t| t.names.tenant.as_str()).collect();
    if skip {
        *report = Some(OpenBaoReport {
            skipped: names.iter().map(|n| (*n).to_owned()).collect(),
            ..OpenBaoReport::default()
        });
        return Ok(None);
    }
    let (noun, verb) = if names.len() == 1 {
        ("tenant", "has")
    } else {
        ("tenants", "have")
    };
    anyhow::ensure!(
        flags.configured(),
        "{noun} {} {verb} secrets.openbao but no OpenBao is configured: set BAO_ADDR and \
         BAO_TOKEN (or pass --bao-addr and --bao-token-file) so its policy and Kubernetes-auth \
         role are provisioned, or pass --skip-openbao and run `tenantry secrets provision` later; \
         nothing was written",
        names.join(", "),
    );
    Ok(Some(flags.client(config)?))
}

/// Provision `tenants` (after their objects are applied). An unreachable or sealed server is
/// recorded in the report (exit 1); any other error stops the command.
pub async fn provision(
    client: &BaoClient,
    config: &OpenBaoConfig,
    tenants: &[DesiredAccess],
    force: bool,
    dry_run: bool,
    report: &mut OpenBaoReport,
) -> Result<(), SecretsError> {
    report.address = Some(client.address().to_owned());
    report.dry_run = dry_run;
    let mut plan = Plan::default();
    let result = provision::provision(
        client,
        &Layout::from(config),
        tenants,
        provision::Options { force },
        dry_run,
        &mut plan,
    )
    .await;
    report.plan = plan.steps;
    report.requests = Some(client.counts());
    match result {
        Err(e) if e.is_unavailable() => {
            report.unavailable = Some(e.to_string());
            Ok(())
        }
        other => other,
    }
}
