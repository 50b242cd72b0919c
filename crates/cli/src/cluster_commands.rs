//! `onboard` and `offboard` against a live cluster, `apply` and `kubeconfig`: the commands
//! that talk to the API server.
//!
//! This module only sequences library calls and prints: rendering is `tenantry-core`'s,
//! files are `tenantry-gitops`'s, and every cluster decision (plan, order, resume, prune,
//! revocation, scope check) is `tenantry-cluster`'s. Text goes to stdout for people, with
//! progress on stderr only when stderr is a terminal; `--output json` prints one JSON
//! document on stdout and nothing else, so scripts never parse prose.

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Mutex,
    time::Duration,
};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tenantry_cluster::{
    ClusterApi, ClusterEndpoint, ClusterError, KubeCluster, KubeconfigSource,
    credential::{self, ScopeCheck, TokenLifetime, TokenPolicy},
    ops::{self, ApplyOptions, LayerStatus, Progress, Silent, TenantApply, Waits},
};
use tenantry_core::{
    Rendered,
    plan::{Change, TenantPlan},
};
use tenantry_gitops::{FileChange, Repo, TenantReport};

use crate::{
    EXIT_ERROR, EXIT_FINDINGS,
    gitops_commands::{OffboardArgs, OnboardArgs, RepoArg, display, print_json},
};

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables and sentences for people.
    #[default]
    Text,
    /// One JSON document on stdout, nothing else.
    Json,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    credential::parse_duration(text)
}

/// Which cluster, as `kubectl` chooses it.
#[derive(Args, Debug, Clone, Default)]
pub struct ClusterFlags {
    /// Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text, value_name = "FORMAT")]
    pub output: Output,
}

/// Cluster flags of `onboard`.
#[derive(Args, Debug, Clone, Default)]
pub struct OnboardClusterArgs {
    #[command(flatten)]
    pub cluster: ClusterFlags,
    /// Apply to the cluster without writing the GitOps files.
    #[arg(long, conflicts_with = "gitops_only")]
    pub no_gitops: bool,
    /// Apply the tenant without the layers whose CustomResourceDefinitions are not installed.
    #[arg(long, conflicts_with = "gitops_only")]
    pub skip_missing_crds: bool,
    /// Lifetime of the issued token, e.g. 8h or 30m (default and maximum from tenantry.yaml).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "gitops_only")]
    pub token_duration: Option<Duration>,
    /// How long to wait for new namespaces to become Active.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub timeout: Duration,
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
}

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
}

/// `tenantry kubeconfig`.
#[derive(Args, Debug)]
pub struct KubeconfigArgs {
    /// The tenant.
    pub name: String,
    /// Lifetime of the token, e.g. 8h or 30m (default and maximum from tenantry.yaml).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[command(flatten)]
    pub repo: RepoArg,
    #[command(flatten)]
    pub cluster: ClusterFlags,
}

/// A spinner or bar on stderr, when stderr is a terminal and the output is text.
struct TerminalProgress {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for TerminalProgress {
    fn begin(&self, step: &str, total: Option<u64>) {
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix} [{bar:24}] {pos}/{len} {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {prefix} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_prefix(step.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut slot) = self.bar.lock()
            && let Some(old) = slot.replace(bar)
        {
            old.finish_and_clear();
        }
    }

    fn advance(&self, message: &str) {
        if let Ok(slot) = self.bar.lock()
            && let Some(bar) = slot.as_ref()
        {
            if bar.length().is_some() && !message.starts_with("waiting") {
                bar.inc(1);
            }
            bar.set_message(message.to_owned());
        }
    }

    fn end(&self) {
        if let Ok(mut slot) = self.bar.lock()
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
        }
    }
}

fn progress_for(output: Output) -> Box<dyn Progress> {
    if output == Output::Text && std::io::stderr().is_terminal() {
        Box::new(TerminalProgress {
            bar: Mutex::new(None),
        })
    } else {
        Box::new(Silent)
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn connect(flags: &ClusterFlags) -> Result<(KubeCluster, ClusterEndpoint), ClusterError> {
    tenantry_cluster::connect(&KubeconfigSource {
        path: flags.kubeconfig.clone(),
        context: flags.context.clone(),
    })
    .await
}

fn gitops_line(report: &TenantReport) -> String {
    if report.is_unchanged() {
        return format!("tenant {} (GitOps): unchanged", report.tenant);
    }
    let count = |c: FileChange| report.changes.iter().filter(|(_, x)| *x == c).count();
    let mut parts = Vec::new();
    for c in [
        FileChange::Created,
        FileChange::Updated,
        FileChange::Removed,
    ] {
        let n = count(c);
        if n > 0 {
            parts.push(format!("{c} {n} file{}", if n == 1 { "" } else { "s" }));
        }
    }
    if report.registered {
        parts.push("registered".to_owned());
    }
    format!("tenant {} (GitOps): {}", report.tenant, parts.join(", "))
}

fn layers_text(out: &mut impl Write, report: &TenantApply) -> std::io::Result<()> {
    for layer in &report.layers {
        let mut counts: Vec<String> = Vec::new();
        for action in [
            ops::Action::Created,
            ops::Action::Changed,
            ops::Action::WouldCreate,
            ops::Action::WouldChange,
            ops::Action::Failed,
        ] {
            let n = layer.objects.iter().filter(|o| o.action == action).count();
            if n > 0 {
                let name = serde_json::to_value(action)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                counts.push(format!("{n} {name}"));
            }
        }
        let status = serde_json::to_value(layer.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let detail = if counts.is_empty() {
            String::new()
        } else {
            format!(" ({})", counts.join(", "))
        };
        writeln!(out, "  {:<15} {status}{detail}", layer.layer.as_str())?;
        for o in &layer.objects {
            if matches!(
                o.action,
                ops::Action::Changed | ops::Action::WouldChange | ops::Action::Failed
            ) {
                writeln!(out, "    {} {}", action_word(o.action), o.object)?;
                // A failure's cause is printed once, below the table.
                if o.action != ops::Action::Failed {
                    for d in &o.details {
                        writeln!(out, "      {d}")?;
                    }
                }
            }
        }
    }
    for m in &report.missing {
        writeln!(out, "  skipped: {m}")?;
    }
    for p in &report.pruned {
        writeln!(out, "  {:<15} {}", p.outcome, p.object)?;
    }
    Ok(())
}

fn action_word(action: ops::Action) -> &'static str {
    match action {
        ops::Action::Changed => "changed",
        ops::Action::WouldChange => "would change",
        ops::Action::Failed => "failed",
        _ => "",
    }
}

fn failure_text(out: &mut impl Write, report: &TenantApply, rerun: &str) -> std::io::Result<()> {
    let applied = report.layers_with(&[LayerStatus::Applied, LayerStatus::Unchanged]);
    let failed = report.layers_with(&[LayerStatus::Failed]);
    let pending = report.layers_with(&[LayerStatus::NotApplied]);
    writeln!(
        out,
        "tenant {} is NOT complete.\n  applied:     {}\n  failed:      {}\n  not applied: {}\nFix the cause, then run `{rerun}` again: it resumes where it stopped.",
        report.tenant,
        list_or_none(&applied),
        list_or_none(&failed),
        list_or_none(&pending),
    )
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn checks_text(out: &mut impl Write, checks: &[ScopeCheck]) -> std::io::Result<()> {
    let answer = |b: bool| if b { "allowed" } else { "denied" };
    writeln!(
        out,
        "  {:<36} {:<9} {:<9}",
        "CHECK (with the new token)", "EXPECTED", "ANSWER"
    )?;
    for c in checks {
        writeln!(
            out,
            "  {:<36} {:<9} {:<9} {}",
            c.question,
            answer(c.expected),
            answer(c.allowed),
            if c.ok() { "ok" } else { "WRONG" }
        )?;
    }
    Ok(())
}

fn checks_json(checks: &[ScopeCheck]) -> Value {
    Value::Array(
        checks
            .iter()
            .map(|c| json!({ "question": c.question, "check": c.check, "expected": c.expected, "allowed": c.allowed, "ok": c.ok() }))
            .collect(),
    )
}

/// Issue a credential, write it, prove its scope. Returns the JSON report and whether the
/// credential is exactly the tenant's.
#[allow(clippy::too_many_arguments)]
async fn issue_and_verify(
    api: &KubeCluster,
    root: &Path,
    tenant: &str,
    cluster_name: &str,
    endpoint: &ClusterEndpoint,
    lifetime: TokenLifetime,
    output: Output,
) -> anyhow::Result<(Value, bool)> {
    let mut out = std::io::stdout().lock();
    let text = output == Output::Text;
    if endpoint.insecure_skip_tls_verify && text {
        eprintln!(
            "warning: context {} skips TLS verification; the issued kubeconfig does too",
            endpoint.context
        );
    }
    let issued = ops::issue_credential(
        api,
        &ops::CredentialRequest {
            tenant,
            namespace: tenant,
            cluster_name,
            endpoint,
            lifetime,
        },
    )
    .await?;
    let path = credential::kubeconfig_path(root, tenant);
    credential::write_private(&path, issued.kubeconfig.as_bytes())?;
    let ignored = credential::ensure_out_ignored(root)?;
    let waits = Waits {
        timeout: Duration::from_secs(30),
        interval: Duration::from_millis(500),
    };
    let checks = ops::verify_issued(api, &issued.kubeconfig, tenant, &waits).await?;
    let ok = checks.iter().all(ScopeCheck::ok);
    let broader = checks.iter().any(|c| !c.expected && c.allowed);
    if !ok {
        // A credential that is wrong is not handed out: remove the file.
        let _ = std::fs::remove_file(&path);
    }
    if text {
        if lifetime.capped {
            writeln!(
                out,
                "note: the requested token lifetime exceeds credentials.maxTokenDuration; issued for {}",
                credential::format_duration(Duration::from_secs(lifetime.seconds))
            )?;
        }
        writeln!(
            out,
            "credential: {} (ServiceAccount {tenant}/{tenant}, expires {})",
            display(&path),
            issued.expires_at.as_deref().unwrap_or("unknown")
        )?;
        if ignored {
            writeln!(out, "  added out/ to {}", display(&root.join(".gitignore")))?;
        }
        checks_text(&mut out, &checks)?;
        if broader {
            writeln!(
                out,
                "the credential is broader than the tenant: it was deleted, not handed out; check the ClusterRoleBindings and groups that reach ServiceAccount {tenant}/{tenant}"
            )?;
        } else if !ok {
            writeln!(
                out,
                "the credential does not work in the tenant's namespace: it was deleted; check the tenant's RoleBinding in namespace {tenant}"
            )?;
        }
    }
    let report = json!({
        "kubeconfig": if ok { Value::from(display(&path)) } else { Value::Null },
        "serviceAccount": format!("{tenant}/{tenant}"),
        "expiresAt": issued.expires_at,
        "requestedSeconds": lifetime.seconds,
        "grantedSeconds": issued.granted_seconds,
        "capped": lifetime.capped,
        "checks": checks_json(&checks),
        "scope": if ok { "tenant" } else if broader { "broader than the tenant" } else { "not working in the tenant namespace" },
    });
    Ok((report, ok))
}

/// `ok`, `credential-too-broad` or `credential-not-working`, from a credential report.
fn credential_result(credential: &Value) -> &'static str {
    match credential["scope"].as_str() {
        Some("tenant") => "ok",
        Some("broader than the tenant") => "credential-too-broad",
        _ => "credential-not-working",
    }
}

fn error_exit(
    output: Output,
    mut report: Value,
    error: &anyhow::Error,
) -> anyhow::Result<ExitCode> {
    if output == Output::Json {
        report["result"] = json!("error");
        report["error"] = json!(format!("{error:#}"));
        print_json(&report)?;
        return Ok(ExitCode::from(EXIT_ERROR));
    }
    Err(anyhow::anyhow!("{error:#}"))
}

/// `tenantry onboard <name>` (cluster mode).
pub fn onboard(args: OnboardArgs) -> anyhow::Result<ExitCode> {
    let output = args.cluster.cluster.output;
    let mut report = json!({ "command": "onboard", "tenant": args.name });
    match onboard_inner(&args, &mut report) {
        Ok(code) => Ok(code),
        Err(e) => error_exit(output, report, &e),
    }
}

fn onboard_inner(args: &OnboardArgs, report: &mut Value) -> anyhow::Result<ExitCode> {
    let flags = &args.cluster;
    let output = flags.cluster.output;
    let text = output == Output::Text;
    Repo::check_name(&args.name)?;
    let repo = Repo::open(&args.repo.repo, !flags.no_gitops)?;
    let ctx = repo.context();
    // Refuse a bad token lifetime before anything is written.
    let lifetime =
        TokenPolicy::from_platform(&ctx.platform.credentials)?.lifetime(flags.token_duration)?;
    let declaration = crate::gitops_commands::declare(&repo, args)?;
    let rendered = &declaration.rendered;
    let mut out = std::io::stdout().lock();
    if !flags.no_gitops {
        let gitops = crate::gitops_commands::write_declaration(&repo, &declaration)?;
        report["gitops"] = crate::gitops_commands::gitops_json(&gitops);
        if text {
            writeln!(out, "{}", gitops_line(&gitops))?;
        }
    }
    let progress = progress_for(output);
    let runtime = runtime()?;
    runtime.block_on(async {
        let (api, endpoint) = connect(&flags.cluster).await?;
        report["cluster"] = json!({ "context": endpoint.context, "server": endpoint.server });
        if text {
            writeln!(
                out,
                "cluster: context {} ({})",
                endpoint.context, endpoint.server
            )?;
        }
        let catalog = api.discover().await?;
        ops::check_kinds(&catalog, rendered, flags.skip_missing_crds)?;
        let live = ops::observe(
            &api,
            &catalog,
            std::slice::from_ref(rendered),
            ctx.tenant_label(),
            false,
            progress.as_ref(),
        )
        .await?;
        let plan = &ops::plan_all(
            std::slice::from_ref(rendered),
            &live,
            ctx.tenant_label(),
            false,
        )[0];
        let options = ApplyOptions {
            dry_run: false,
            skip_missing_crds: flags.skip_missing_crds,
            waits: Waits {
                timeout: flags.timeout,
                ..Waits::default()
            },
        };
        let applied =
            ops::apply_tenant(&api, &catalog, rendered, plan, &options, progress.as_ref()).await;
        report["layers"] = serde_json::to_value(&applied.layers)?;
        report["missing"] = serde_json::to_value(&applied.missing)?;
        report["writes"] = json!(applied.writes);
        if text {
            layers_text(&mut out, &applied)?;
        }
        if let Some(error) = &applied.error {
            report["result"] = json!("failed");
            report["error"] = json!(error.to_string());
            report["applied"] =
                json!(applied.layers_with(&[LayerStatus::Applied, LayerStatus::Unchanged]));
            report["notApplied"] =
                json!(applied.layers_with(&[LayerStatus::Failed, LayerStatus::NotApplied]));
            if text {
                writeln!(out, "error: {error}")?;
                failure_text(
                    &mut out,
                    &applied,
                    &format!("tenantry onboard {}", args.name),
                )?;
            } else {
                print_json(report)?;
            }
            return Ok(ExitCode::from(EXIT_ERROR));
        }
        drop(out);
        credential_step(&api, &repo, &args.name, &endpoint, lifetime, output, report).await
    })
}

/// Issue the tenant's credential, prove its scope, and finish the command's report: exit 0
/// when the credential is exactly the tenant's, 1 when it is broader.
async fn credential_step(
    api: &KubeCluster,
    repo: &Repo,
    name: &str,
    endpoint: &ClusterEndpoint,
    lifetime: TokenLifetime,
    output: Output,
    report: &mut Value,
) -> anyhow::Result<ExitCode> {
    let (credential, ok) = issue_and_verify(
        api,
        repo.root(),
        name,
        &repo.context().platform.cluster_name,
        endpoint,
        lifetime,
        output,
    )
    .await?;
    report["result"] = json!(credential_result(&credential));
    report["credential"] = credential;
    if output == Output::Json {
        print_json(report)?;
    }
    Ok(ExitCode::from(if ok { 0 } else { EXIT_FINDINGS }))
}

/// `tenantry kubeconfig <name>`.
pub fn kubeconfig(args: KubeconfigArgs) -> anyhow::Result<ExitCode> {
    let output = args.cluster.output;
    let mut report = json!({ "command": "kubeconfig", "tenant": args.name });
    let result = (|| -> anyhow::Result<ExitCode> {
        Repo::check_name(&args.name)?;
        let repo = Repo::open(&args.repo.repo, false)?;
        let ctx = repo.context();
        let lifetime =
            TokenPolicy::from_platform(&ctx.platform.credentials)?.lifetime(args.duration)?;
        runtime()?.block_on(async {
            let (api, endpoint) = connect(&args.cluster).await?;
            report["cluster"] = json!({ "context": endpoint.context, "server": endpoint.server });
            credential_step(
                &api,
                &repo,
                &args.name,
                &endpoint,
                lifetime,
                output,
                &mut report,
            )
            .await
        })
    })();
    result.or_else(|e| error_exit(output, report.clone(), &e))
}

fn plan_json(plan: &TenantPlan) -> Value {
    let counts = plan.counts();
    json!({
        "create": counts.create,
        "change": counts.change,
        "unchanged": counts.unchanged,
        "prune": counts.prune,
        "objects": plan.objects.iter().filter(|o| o.change != Change::Unchanged).map(|o| json!({
            "object": o.key.to_string(),
            "layer": o.layer.as_str(),
            "change": o.change.as_str(),
            "details": match &o.change { Change::Update(d) => d.clone(), _ => Vec::new() },
        })).collect::<Vec<_>>(),
        "toPrune": plan.prune.iter().map(|t| t.key.to_string()).collect::<Vec<_>>(),
    })
}

fn plan_text(out: &mut impl Write, plan: &TenantPlan) -> std::io::Result<()> {
    let c = plan.counts();
    writeln!(
        out,
        "tenant {}: {} to create, {} to change, {} unchanged, {} to prune",
        plan.tenant, c.create, c.change, c.unchanged, c.prune
    )?;
    for o in &plan.objects {
        match &o.change {
            Change::Unchanged => {}
            Change::Create => writeln!(out, "  + {}", o.key)?,
            Change::Update(why) => {
                writeln!(out, "  ~ {}", o.key)?;
                for w in why {
                    writeln!(out, "      {w}")?;
                }
            }
        }
    }
    for t in &plan.prune {
        writeln!(out, "  - {}", t.key)?;
    }
    Ok(())
}

/// `tenantry apply`.
pub fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let output = args.cluster.output;
    let mut report = json!({ "command": "apply", "dryRun": args.dry_run, "prune": args.prune });
    let result = apply_inner(&args, &mut report);
    result.or_else(|e| error_exit(output, report.clone(), &e))
}

fn apply_inner(args: &ApplyArgs, report: &mut Value) -> anyhow::Result<ExitCode> {
    let output = args.cluster.output;
    let text = output == Output::Text;
    for name in &args.names {
        Repo::check_name(name)?;
    }
    let repo = Repo::open(&args.repo.repo, false)?;
    let rendered: Vec<Rendered> = repo.render_all(&args.names)?;
    if rendered.is_empty() {
        bail!("no tenants in {}", display(&repo.tenants_dir()));
    }
    let label = repo.context().tenant_label().to_owned();
    let progress = progress_for(output);
    runtime()?.block_on(async {
        let mut out = std::io::stdout().lock();
        let (api, endpoint) = connect(&args.cluster).await?;
        report["cluster"] = json!({ "context": endpoint.context, "server": endpoint.server });
        let catalog = api.discover().await?;
        for r in &rendered {
            ops::check_kinds(&catalog, r, args.skip_missing_crds)?;
        }
        let live = ops::observe(
            &api,
            &catalog,
            &rendered,
            &label,
            args.prune,
            progress.as_ref(),
        )
        .await?;
        let plans = ops::plan_all(&rendered, &live, &label, args.prune);
        let mut tenants = Vec::new();
        let mut converged = 0usize;
        for plan in &plans {
            if plan.is_converged() {
                converged += 1;
            } else if text {
                plan_text(&mut out, plan)?;
            }
        }
        if text {
            writeln!(
                out,
                "plan: {} tenant(s), {converged} unchanged, {} to converge{}",
                plans.len(),
                plans.len() - converged,
                if args.dry_run {
                    " (dry run: nothing is stored)"
                } else {
                    ""
                }
            )?;
        }
        let options = ApplyOptions {
            dry_run: args.dry_run,
            skip_missing_crds: args.skip_missing_crds,
            waits: Waits {
                timeout: args.timeout,
                ..Waits::default()
            },
        };
        let mut failed = 0usize;
        let mut writes = 0usize;
        for (r, plan) in rendered.iter().zip(&plans) {
            let mut entry = json!({ "tenant": r.tenant, "plan": plan_json(plan) });
            if plan.is_converged() {
                entry["result"] = json!("unchanged");
                tenants.push(entry);
                continue;
            }
            let applied =
                ops::apply_tenant(&api, &catalog, r, plan, &options, progress.as_ref()).await;
            writes += applied.writes;
            entry["layers"] = serde_json::to_value(&applied.layers)?;
            entry["pruned"] = serde_json::to_value(&applied.pruned)?;
            entry["writes"] = json!(applied.writes);
            if text {
                writeln!(out, "tenant {}:", r.tenant)?;
                layers_text(&mut out, &applied)?;
            }
            match &applied.error {
                Some(e) => {
                    failed += 1;
                    entry["result"] = json!("failed");
                    entry["error"] = json!(e.to_string());
                    if text {
                        writeln!(out, "error: {e}")?;
                        failure_text(&mut out, &applied, "tenantry apply")?;
                    }
                    // A rejected credential or an unreachable server fails every tenant
                    // the same way: stop instead of repeating the error a thousand times.
                    if matches!(
                        e,
                        ClusterError::Unauthorized { .. } | ClusterError::Transport { .. }
                    ) {
                        tenants.push(entry);
                        break;
                    }
                }
                None => entry["result"] = json!(if args.dry_run { "dry-run" } else { "applied" }),
            }
            tenants.push(entry);
        }
        report["tenants"] = Value::Array(tenants);
        report["writes"] = json!(writes);
        report["result"] = json!(if failed == 0 { "ok" } else { "failed" });
        if text {
            if failed > 0 {
                writeln!(out, "{failed} tenant(s) failed")?;
            }
        } else {
            print_json(report)?;
        }
        Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_ERROR)
        })
    })
}

/// `tenantry offboard <name>` (cluster mode).
pub fn offboard(args: OffboardArgs) -> anyhow::Result<ExitCode> {
    let output = args.cluster.cluster.output;
    let mut report = json!({ "command": "offboard", "tenant": args.name });
    let result = offboard_inner(&args, &mut report);
    result.or_else(|e| error_exit(output, report.clone(), &e))
}

fn offboard_inner(args: &OffboardArgs, report: &mut Value) -> anyhow::Result<ExitCode> {
    let flags = &args.cluster;
    let output = flags.cluster.output;
    let text = output == Output::Text;
    Repo::check_name(&args.name)?;
    let repo = Repo::open(&args.repo.repo, false)?;
    let label = repo.context().tenant_label().to_owned();
    let issued = credential::kubeconfig_path(repo.root(), &args.name);
    let last_token = std::fs::read_to_string(&issued)
        .ok()
        .and_then(|text| credential::token_of(&text));
    let in_repo = repo.tenant_dir(&args.name).exists();
    let progress = progress_for(output);
    runtime()?.block_on(async {
        let mut out = std::io::stdout().lock();
        let (api, endpoint) = connect(&flags.cluster).await?;
        report["cluster"] = json!({ "context": endpoint.context, "server": endpoint.server });
        if text {
            writeln!(out, "tenant {}: offboarding from context {} ({})", args.name, endpoint.context, endpoint.server)?;
        }
        let catalog = api.discover().await?;
        let waits = Waits {
            timeout: flags.timeout,
            ..Waits::default()
        };
        let removed = ops::offboard_cluster(&api, &catalog, &label, &args.name, last_token.as_deref(), &waits, progress.as_ref()).await?;
        let found_in_cluster = !removed.deleted.is_empty() || !removed.namespaces.is_empty();
        if !found_in_cluster && !in_repo && last_token.is_none() {
            if args.ignore_not_found {
                report["result"] = json!("not-found");
                if text {
                    writeln!(out, "tenant {}: not found in the cluster or the repository, nothing to remove", args.name)?;
                } else {
                    print_json(report)?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            bail!(
                "no tenant named {:?} in the cluster (context {}) or in {} (use --ignore-not-found to accept that)",
                args.name,
                endpoint.context,
                display(&repo.tenants_dir())
            );
        }
        report["deleted"] = serde_json::to_value(&removed.deleted)?;
        report["namespaces"] = json!(removed.namespaces);
        if text {
            for d in &removed.deleted {
                writeln!(out, "  {:<13} {}", d.outcome, d.object)?;
            }
        }
        let mut findings = Vec::new();
        match &removed.last_token {
            Some(status) => {
                report["lastToken"] = serde_json::to_value(status)?;
                if status.authenticated {
                    findings.push("the last issued token is still accepted".to_owned());
                }
                if text {
                    writeln!(
                        out,
                        "credential: last issued token {} (TokenReview after deleting the ServiceAccount)",
                        if status.authenticated { "STILL ACCEPTED" } else { "rejected: revoked" }
                    )?;
                }
            }
            None if text => writeln!(
                out,
                "credential: no issued kubeconfig at {}; tokens die with the deleted ServiceAccounts",
                display(&issued)
            )?,
            None => {}
        }
        // The token has been checked; the file holding it goes now.
        let mut removed_files = Vec::new();
        match std::fs::remove_file(&issued) {
            Ok(()) => removed_files.push(display(&issued)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", display(&issued))),
        }
        report["kubeconfigsRemoved"] = json!(removed_files);
        if text && !removed_files.is_empty() {
            writeln!(out, "  removed       {}", removed_files.join(", "))?;
        }
        if !flags.keep_gitops {
            let (removed_dir, unregistered) = repo.remove_tenant(&args.name)?;
            report["gitops"] = json!({ "removedDirectory": removed_dir, "unregistered": unregistered });
            if text && (removed_dir || unregistered) {
                writeln!(
                    out,
                    "  removed       {}{}; commit it so GitOps does not re-create the tenant",
                    display(&repo.tenant_dir(&args.name)),
                    if unregistered { " and its registration" } else { "" }
                )?;
            }
        }
        drop(out);
        ops::wait_namespaces_gone(&api, &catalog, &removed.namespaces, &waits, progress.as_ref()).await?;
        let (found, unreadable) = ops::scan_tenant(&api, &catalog, &label, &args.name, progress.as_ref()).await?;
        let leftovers = ops::leftovers(&found);
        report["leftovers"] = json!(leftovers);
        report["unreadable"] = json!(unreadable);
        let mut out = std::io::stdout().lock();
        if text {
            if leftovers.is_empty() && unreadable.is_empty() {
                writeln!(out, "tenant {}: nothing left", args.name)?;
            } else {
                for l in &leftovers {
                    writeln!(out, "  left over     {l}")?;
                }
                for u in &unreadable {
                    writeln!(out, "  not checked   {u}")?;
                }
            }
        }
        if !leftovers.is_empty() {
            findings.push(format!("{} object(s) labelled for the tenant are left", leftovers.len()));
        }
        if !unreadable.is_empty() {
            findings.push(format!("{} resource type(s) could not be checked", unreadable.len()));
        }
        report["result"] = json!(if findings.is_empty() { "ok" } else { "findings" });
        report["findings"] = json!(findings);
        if text {
            for f in &findings {
                writeln!(out, "{f}")?;
            }
        } else {
            print_json(report)?;
        }
        Ok(ExitCode::from(if findings.is_empty() { 0 } else { EXIT_FINDINGS }))
    })
}
