//! `tenantry`: one command for a platform team's tenants.
//!
//! The binary is a thin shell: it parses flags, calls the library crates, prints what
//! happened and maps failures to exit codes (0 done, 1 a check found problems, 2 bad input
//! or a failed operation). Everything it decides is decided in `tenantry-core`; everything
//! it reads or writes goes through `tenantry-gitops`.
#![forbid(unsafe_code)]

mod args;
mod commands;
mod openbao;
mod output;
mod progress;
mod spec_flags;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use commands::{
    apply, check, credentials, kubeconfig, offboard, onboard, policy, render, secrets, webhook,
};
pub use output::{EXIT_ERROR, EXIT_FINDINGS};

#[derive(Parser)]
#[command(
    name = "tenantry",
    version,
    about = "Declare a tenant once; render, enforce and remove every layer of its isolation.",
    long_about = "Tenantry turns one tenant declaration (tenants/<name>/tenant.yaml) into every \
layer of isolation a shared Kubernetes cluster needs: namespaces with Pod Security, quota, \
limits, RBAC, a locked-down ServiceAccount, default-deny network policy, secrets wiring and \
GitOps delivery. Platform defaults live in tenantry.yaml at the repository root.",
    after_help = "Examples:\n  tenantry onboard shop --gitops-only          write tenants/shop/ in the current repository\n  tenantry onboard shop                        also apply it and issue out/tenant-shop.kubeconfig\n  tenantry render shop                         print shop's objects as YAML\n  tenantry render --check                      fail if any rendered file is stale (CI)\n  tenantry check deploy/                       judge manifests against the guardrails (CI)\n  tenantry apply --all --prune                 converge every tenant on the cluster\n  tenantry offboard shop                       prune it, revoke its credential, remove its files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Onboard a tenant: write its GitOps files and, unless --gitops-only, apply every layer to
    /// the cluster and issue a namespace-scoped kubeconfig.
    #[command(
        after_help = "Examples:\n  tenantry onboard shop                         write tenants/shop/, apply it, write out/tenant-shop.kubeconfig\n  tenantry onboard shop --context prod --token-duration 1h\n  tenantry onboard shop --gitops-only\n  tenantry onboard shop --gitops-only --mesh --owner group:team-shop\n  tenantry onboard legacy --gitops-only --allow-root --namespace legacy-dev --namespace legacy-prod\n  tenantry onboard blog --gitops-only --delivery argocd --source-url https://github.com/acme/blog.git\n\nRe-running with the same flags writes nothing and says `unchanged`. Flags change only the\nfields they name; fields edited by hand in tenant.yaml are kept."
    )]
    Onboard(Box<onboard::OnboardArgs>),
    /// Print the rendered objects of tenants as multi-document YAML, or rewrite/check the files.
    #[command(
        after_help = "Examples:\n  tenantry render                 every tenant, on stdout\n  tenantry render shop blog       two tenants\n  tenantry render --write         re-render every tenants/<name>/ after editing tenantry.yaml\n  tenantry render --check         exit 1 listing stale files (for CI)"
    )]
    Render(render::RenderArgs),
    /// Offboard a tenant: prune it from the cluster and revoke its credentials (unless
    /// --gitops-only), and remove its GitOps directory and registration.
    #[command(
        after_help = "Examples:\n  tenantry offboard shop                     delete, revoke, wait, then list leftovers\n  tenantry offboard shop --keep-gitops       leave tenants/shop/ for a pull request to remove\n  tenantry offboard shop --gitops-only       only remove tenants/shop/ and its registration\n\nRe-running after an interruption finishes the removal."
    )]
    Offboard(offboard::OffboardArgs),
    /// Print the Tenant CustomResourceDefinition.
    #[command(after_help = "Examples:\n  tenantry crd | kubectl apply --server-side -f -")]
    Crd,
    /// Check manifests against the guardrails enforced at admission (Pod Security and the
    /// platform's policies), for a tenant's CI.
    #[command(
        after_help = "Examples:\n  tenantry check deploy/                                 every manifest under deploy/ (follows kustomization.yaml)\n  kustomize build deploy | tenantry check -              judge the built result from stdin\n  tenantry check --tenant shop --repo ../platform deploy/ as tenant shop (registries, ServiceAccount, level)\n  tenantry check --policy pod-security --level baseline --version v1.30 pod.yaml\n  tenantry check --format sarif deploy/ > tenantry.sarif  for GitHub code scanning\n  tenantry check --repo-name shop deploy/                 also check the tenant repository contract\n\nExit status: 0 no violations (warnings allowed), 1 violations, 2 unreadable input.\nPolicies: pod-security, require-requests-limits, allowed-registries, no-nodeport,\nno-loadbalancer, no-external-ips, image-pull-policy-always, require-digest,\nrestrict-secret-stores, flux-lockdown, gateway-parent, protect-platform-objects (admission\nonly), tenant-repo-contract (with --repo-name)."
    )]
    Check(Box<check::CheckArgs>),
    /// Serve the validating admission webhook over HTTPS, or print its install manifests.
    #[command(
        after_help = "Examples:\n  tenantry webhook --tls-cert tls.crt --tls-key tls.key                  serve on 0.0.0.0:8443\n  tenantry webhook --config tenantry.yaml --tls-cert tls.crt --tls-key tls.key\n  tenantry webhook manifests --config tenantry.yaml | kubectl apply --server-side -f -\n\nNamespace labels come from a watch (in-cluster config or KUBECONFIG); without cluster access\nevery namespace is judged by the platform defaults. Endpoints: POST /validate, /healthz,\n/readyz (true once the namespace list has synced), /metrics (Prometheus)."
    )]
    Webhook(webhook::WebhookArgs),
    /// Converge tenants on the cluster: print the plan, then apply only what differs.
    #[command(
        after_help = "Examples:\n  tenantry apply shop                    converge one tenant\n  tenantry apply --all                   converge every tenant of the repository\n  tenantry apply --all --prune           also delete what tenants no longer declare\n  tenantry apply --all --dry-run         validate every write with a server-side dry run\n\nA converged tenant costs reads only: nothing is sent when nothing differs."
    )]
    Apply(apply::ApplyArgs),
    /// Issue a fresh namespace-scoped kubeconfig for a tenant (out/tenant-<name>.kubeconfig).
    #[command(
        after_help = "Examples:\n  tenantry kubeconfig shop\n  tenantry kubeconfig shop --duration 30m --holder \"ci deploy job\"\n\nThe token acts as the tenant's ServiceAccount, is bound to its own Secret handle (so\n`tenantry credentials revoke` can revoke it alone) and expires (8h by default, at most\ncredentials.maxTokenDuration); its scope is checked with the new token before it is kept,\nand a credential that fails the check is revoked."
    )]
    Kubeconfig(kubeconfig::KubeconfigArgs),
    /// List or revoke a tenant's issued credentials, one by one.
    #[command(
        after_help = "Examples:\n  tenantry credentials list shop\n  tenantry credentials revoke shop 7bq2x9kdmf     revoke one kubeconfig; the others keep working\n  tenantry credentials revoke shop --all           revoke every issued kubeconfig of shop\n  tenantry credentials revoke shop --expired       remove the handles of expired credentials\n\nEach kubeconfig Tenantry issues holds a token bound to its own Secret\n(tenantry-credential-<id> in the tenant's namespace); deleting that Secret revokes that token\nalone. Offboarding revokes them all by deleting the tenant's ServiceAccounts."
    )]
    Credentials(credentials::CredentialsArgs),
    /// Provision or revoke tenants' OpenBao policies, Kubernetes-auth roles and tokens.
    #[command(
        after_help = "Examples:\n  tenantry secrets provision --all --dry-run   print what would be written to OpenBao\n  tenantry secrets provision shop              write shop's policy and role (only what differs)\n  tenantry secrets revoke shop                 delete them and revoke shop's OpenBao tokens"
    )]
    Secrets(secrets::SecretsArgs),
    /// Compile the guardrails the API server can enforce itself to ValidatingAdmissionPolicies.
    #[command(
        after_help = "Examples:\n  tenantry policy vap --config tenantry.yaml | kubectl apply --server-side -f -\n  tenantry policy vap --list-unsupported"
    )]
    Policy(policy::PolicyArgs),
    /// Diagnose one tenant: every check, cause before symptom, each failure with its fix.
    #[command(
        after_help = "Examples:\n  tenantry doctor shop                     repository, cluster and (with BAO_ADDR) OpenBao\n  tenantry doctor shop --offline           only what the platform repository can tell (CI)\n  tenantry doctor shop --output json       one document: checks with id, verdict, objects, findings and fixes\n\nExit status: 0 healthy (warnings allowed), 1 problems found, 2 could not run."
    )]
    Doctor(commands::doctor::DoctorArgs),
    /// Prove a tenant's isolation on the live cluster: its access matrix, the bindings behind
    /// every allow outside it, and the Multi-Tenancy Benchmarks' cases as the tenant.
    #[command(after_help = "Examples:
  tenantry audit shop                      one screen: access per identity and place, findings, cases
  tenantry audit shop --output markdown    a report to paste into a ticket
  tenantry audit shop --output json        every grant, finding (with its binding) and case

Exit status: 0 nothing outside the tenant, 1 findings, 2 could not run.")]
    Audit(commands::audit::AuditArgs),
    /// Run the operator that keeps every Tenant object converged, or print its manifests.
    #[command(
        after_help = "Examples:\n  tenantry operator manifests | kubectl apply --server-side -f -\n  tenantry operator --kubeconfig admin.kubeconfig --no-leader-election   run locally\n\nEndpoints: /metrics, /healthz, /readyz (--listen, 127.0.0.1:8080 by default)."
    )]
    Operator(Box<commands::operator::OperatorArgs>),
    /// Serve the tenant proxy (tenants' kubectl sees their own namespaces; everything else
    /// reaches the API server as them), or print its install manifests.
    #[command(
        after_help = "Examples:\n  tenantry proxy --tls-cert tls.crt --tls-key tls.key --config tenantry.yaml\n  tenantry proxy manifests | kubectl apply --server-side -f -\n  tenantry kubeconfig shop --via-proxy https://proxy.example.com --proxy-ca ca.crt\n\nNamespace reads are answered from an index kept by watches; everything else is forwarded\nwith Impersonate-* headers from the caller's TokenReview. Endpoints of its own:\n/tenantry-proxy/healthz, /tenantry-proxy/readyz."
    )]
    Proxy(commands::proxy::ProxyArgs),
    /// Build a kustomize tree, check it, push it as a Flux OCI artifact and cosign-sign it.
    #[command(
        after_help = "Examples:\n  tenantry keys generate --dir ~/.tenantry   writes cosign.key (0600) and cosign.pub\n  COSIGN_PASSWORD=... tenantry publish deploy oci://ghcr.io/acme/shop:1.2.0 --key cosign.key\n\nExit status: 0 published, 1 refused by the guardrails (nothing pushed), 2 failed."
    )]
    Publish(Box<commands::publish::PublishArgs>),
    /// Verify an OCI artifact's cosign signature against public keys, as Flux does.
    #[command(
        after_help = "Examples:\n  tenantry verify oci://ghcr.io/acme/shop:1.2.0 --key cosign.pub\n\nExit status: 0 verified, 1 missing, wrong-key or tampered, 2 could not check."
    )]
    Verify(commands::verify::VerifyArgs),
    /// Cosign signing keys for `tenantry publish`.
    Keys(commands::keys::KeysArgs),
    /// A tenant's own repository: `tenant init` scaffolds it and keeps the platform's files
    /// current.
    Tenant(commands::tenant::TenantArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TENANTRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // One TLS implementation for the whole process (ring), installed before anything opens a
    // connection: kube's client takes the process default and the webhook server is given
    // it explicitly. See `tenantry_admission::tls::install_crypto_provider` for why.
    tenantry_admission::tls::install_crypto_provider();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Onboard(args) => onboard::run(*args),
        Command::Render(args) => render::run(args),
        Command::Offboard(args) => offboard::run(args),
        Command::Crd => commands::crd::run(),
        Command::Check(args) => check::run(*args),
        Command::Webhook(args) => webhook::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Kubeconfig(args) => kubeconfig::run(args),
        Command::Credentials(args) => credentials::run(args),
        Command::Secrets(args) => secrets::run(args),
        Command::Operator(args) => commands::operator::run(*args),
        Command::Policy(args) => policy::run(args),
        Command::Proxy(args) => commands::proxy::run(args),
        Command::Doctor(args) => commands::doctor::run(args),
        Command::Audit(args) => commands::audit::run(args),
        Command::Publish(args) => commands::publish::run(*args),
        Command::Verify(args) => commands::verify::run(args),
        Command::Keys(args) => commands::keys::run(args),
        Command::Tenant(args) => commands::tenant::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
