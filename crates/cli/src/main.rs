//! `tenantry`: one command for a platform team's tenants.
//!
//! The binary is a thin shell: it parses flags, calls the library crates, prints what
//! happened and maps failures to exit codes (0 done, 1 a check found problems, 2 bad input
//! or a failed operation). Everything it decides is decided in `tenantry-core`; everything
//! it reads or writes goes through `tenantry-gitops`.
#![forbid(unsafe_code)]

mod gitops_commands;
mod spec_flags;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code when a check found problems (stale files, violations).
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code for bad input or a failed operation.
pub const EXIT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(
    name = "tenantry",
    version,
    about = "Declare a tenant once; render, enforce and remove every layer of its isolation.",
    long_about = "Tenantry turns one tenant declaration (tenants/<name>/tenant.yaml) into every \
layer of isolation a shared Kubernetes cluster needs: namespaces with Pod Security, quota, \
limits, RBAC, a locked-down ServiceAccount, default-deny network policy, secrets wiring and \
GitOps delivery. Platform defaults live in tenantry.yaml at the repository root.",
    after_help = "Examples:\n  tenantry onboard shop --gitops-only          write tenants/shop/ in the current repository\n  tenantry render shop                         print shop's objects as YAML\n  tenantry render --check                      fail if any rendered file is stale (CI)\n  tenantry offboard shop --gitops-only         remove tenants/shop/ and its registration"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Onboard a tenant: write its declaration and rendered GitOps files.
    #[command(
        after_help = "Examples:\n  tenantry onboard shop --gitops-only\n  tenantry onboard shop --gitops-only --mesh --owner group:team-shop\n  tenantry onboard legacy --gitops-only --allow-root --namespace legacy-dev --namespace legacy-prod\n  tenantry onboard blog --gitops-only --delivery argocd --source-url https://github.com/acme/blog.git\n\nRe-running with the same flags writes nothing and says `unchanged`. Flags change only the\nfields they name; fields edited by hand in tenant.yaml are kept."
    )]
    Onboard(Box<gitops_commands::OnboardArgs>),
    /// Print the rendered objects of tenants as multi-document YAML, or rewrite/check the files.
    #[command(
        after_help = "Examples:\n  tenantry render                 every tenant, on stdout\n  tenantry render shop blog       two tenants\n  tenantry render --write         re-render every tenants/<name>/ after editing tenantry.yaml\n  tenantry render --check         exit 1 listing stale files (for CI)"
    )]
    Render(gitops_commands::RenderArgs),
    /// Offboard a tenant: remove its GitOps directory and registration.
    #[command(
        after_help = "Examples:\n  tenantry offboard shop --gitops-only\n\nRe-running after an interruption finishes the removal."
    )]
    Offboard(gitops_commands::OffboardArgs),
    /// Print the Tenant CustomResourceDefinition.
    #[command(after_help = "Examples:\n  tenantry crd | kubectl apply --server-side -f -")]
    Crd,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TENANTRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Onboard(args) => gitops_commands::onboard(*args),
        Command::Render(args) => gitops_commands::render(args),
        Command::Offboard(args) => gitops_commands::offboard(args),
        Command::Crd => gitops_commands::crd(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
