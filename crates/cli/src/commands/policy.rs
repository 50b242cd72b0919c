//! `tenantry policy vap`: the guardrails the API server can enforce itself, as
//! ValidatingAdmissionPolicies.
//!
//! The policies come from the same engine the webhook runs, configured by the same
//! `tenantry.yaml`, so installing them changes where a check runs, never what it decides.
//! What they cannot express is printed by `--list-unsupported`, so nobody removes the webhook
//! believing the policies cover everything.

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Subcommand};
use tenantry_gitops::PlatformFile;
use tenantry_policy::{
    Engine, TenantInfo,
    vap::{self, Actions, VapOptions},
};

use crate::args::RepoArg;

use super::webhook::load_platform;

/// `tenantry policy`.
#[derive(Args, Debug)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Print ValidatingAdmissionPolicies and bindings for every guardrail CEL can express.
    #[command(
        after_help = "Examples:\n  tenantry policy vap --config tenantry.yaml | kubectl apply --server-side -f -\n  tenantry policy vap --warn          warn and audit instead of refusing, to try them first\n  tenantry policy vap --list-unsupported   what stays with the webhook, and why"
    )]
    Vap(VapArgs),
}

#[derive(Args, Debug)]
struct VapArgs {
    /// Platform configuration (tenantry.yaml): tenant label, enabled policies, Pod Security
    /// version, placement and class bounds. Built-in defaults when not given.
    #[arg(long, value_name = "FILE", env = "TENANTRY_CONFIG")]
    config: Option<PathBuf>,
    /// Bind with `validationActions: [Warn, Audit]` instead of `[Deny]`.
    #[arg(long)]
    warn: bool,
    /// Instead of the policies, list the checks they leave to the webhook, with the reasons.
    #[arg(long)]
    list_unsupported: bool,
    /// Also print the policies judged against each tenant's own values (registries): the
    /// parameters' CRD, then every tenant's parameters and bindings, from the platform
    /// repository (its tenantry.yaml, instead of --config). Apply the CRD first (kubectl
    /// cannot map its objects before it exists): run the apply twice, or `-l` on the CRD.
    /// With `policies.vap.tenantParameters` in tenantry.yaml the CRD and the per-tenant
    /// policies are printed without it, and each tenant renders its own parameters and
    /// bindings (onboard, apply, the operator), so this flag is not needed.
    #[arg(long, conflicts_with = "config")]
    tenants: bool,
    #[command(flatten)]
    repo: RepoArg,
}

/// Run `tenantry policy`.
pub fn run(args: PolicyArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PolicyCommand::Vap(args) => vap_command(&args),
    }
}

fn vap_command(args: &VapArgs) -> anyhow::Result<ExitCode> {
    // The tenants as the engine sees them, resolved by the same code `check` uses.
    let (platform, tenants) = if args.tenants {
        let repo = args.repo.open(PlatformFile::Required)?;
        let tenants: Vec<TenantInfo> = repo
            .load_tenants(&[])?
            .iter()
            .map(|t| TenantInfo::from_resolved(&t.resolved))
            .collect();
        (repo.context().platform.clone(), tenants)
    } else {
        (
            load_platform(args.config.as_deref())?.0.platform,
            Vec::new(),
        )
    };
    let engine = Engine::new(&platform);
    if args.list_unsupported {
        print!("{}", unsupported_text(&engine));
        return Ok(ExitCode::SUCCESS);
    }
    let opts = VapOptions {
        actions: if args.warn {
            Actions::WarnAudit
        } else {
            Actions::Deny
        },
        ..VapOptions::default()
    };
    // With `policies.vap.tenantParameters` each tenant renders its own parameters and
    // bindings; the CRD and the per-tenant policies are platform-wide, so printed here.
    let per_tenant = args.tenants || platform.policies.vap.tenant_parameters;
    let mut documents = Vec::new();
    if per_tenant {
        documents.push(vap::params_crd());
    }
    documents.extend(vap::generate(&engine, &opts));
    if per_tenant {
        documents.extend(vap::generate_tenants(&engine, &tenants, &opts));
    }
    print!("{}", vap::to_yaml(&documents));
    Ok(ExitCode::SUCCESS)
}

fn unsupported_text(engine: &Engine) -> String {
    let mut out = String::from("Compiled to ValidatingAdmissionPolicy:\n");
    for check in vap::compiled_checks(engine) {
        let part = match (check.complete, check.per_tenant) {
            (true, false) => "",
            (true, true) => " (per tenant: --tenants)",
            (false, _) => " (in part; the webhook keeps the rest)",
        };
        out.push_str(&format!("  {:<26} {}{part}\n", check.policy, check.check));
    }
    out.push_str("\nLeft to the webhook:\n");
    for u in vap::unsupported(engine) {
        let checks = match (u.checks.is_empty(), u.partial) {
            (true, false) => "every check".to_owned(),
            (true, true) => "part of every check".to_owned(),
            (false, false) => u.checks.join(", "),
            (false, true) => format!("part of {}", u.checks.join(", ")),
        };
        out.push_str(&format!(
            "  {:<26} {checks}\n      {}\n",
            u.policy, u.reason
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        policy: PolicyArgs,
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from(["policy", "vap", "--warn", "--config", "t.yaml"]).unwrap();
        let PolicyCommand::Vap(args) = cli.policy.command;
        assert!(args.warn && !args.list_unsupported);
        assert_eq!(args.config.as_deref(), Some(std::path::Path::new("t.yaml")));
    }
}
