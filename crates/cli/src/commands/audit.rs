//! `tenantry audit`: prove on the live cluster what a tenant can reach and what stops it.
//!
//! This module only asks: the authorizer (SubjectAccessReviews, many, a bounded number at
//! once, since a matrix of every type × verb × scope × identity is thousands of questions
//! and each is a round trip), the RBAC objects (four LISTs, to name the bindings behind an
//! allow), and the admission chain (each behavioural case, in each of the tenant's
//! namespaces, as a server-side dry-run while impersonating each identity the tenant holds,
//! so nothing is stored). What to ask and what the answers mean is `tenantry_doctor::audit`'s,
//! plain functions with their own tests.

use std::{io::Write, process::ExitCode, time::Instant};

use clap::{Args, ValueEnum};
use futures::{StreamExt, stream};
use serde::Serialize;
use tenantry_cluster::{Catalog, ClusterApi, ClusterError, SubjectAccess};
use tenantry_core::render;
use tenantry_doctor::audit::{
    self, AccessAudit, Answer, Attempt, Identity, Question, Rbac, Scope, ScopeKind, ServedResource,
    mtb::CaseRun,
};

use crate::{
    args::{ClusterFlags, ClusterInfo, RepoArg, runtime},
    output::{self, Outcome, Output, Report},
};

/// SubjectAccessReviews in flight at once by default: enough to hide the round trip (see
/// BENCHMARKS.md), few enough that an audit never crowds the API server's in-flight limit
/// (400 by default) for others.
pub const REVIEW_CONCURRENCY: usize = 32;

/// Dry-runs in flight at once for one identity: each runs the whole admission chain (the
/// webhooks included), so fewer than reviews.
const DRY_RUN_CONCURRENCY: usize = 8;

/// How `audit` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum AuditOutput {
    /// One screen for people.
    #[default]
    Text,
    /// One JSON document: every grant, finding and case.
    Json,
    /// A Markdown report, to paste into a ticket or a review.
    Markdown,
}

/// `tenantry audit`.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// The tenant to audit.
    pub name: String,
    /// The platform namespace to probe (the tenant must reach nothing there).
    #[arg(long, value_name = "NAMESPACE", default_value = "kube-system")]
    pub platform_namespace: String,
    /// Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config); it must allow creating
    /// SubjectAccessReviews and impersonating the tenant's ServiceAccount.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Kubeconfig context (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditOutput::Text, value_name = "FORMAT")]
    pub output: AuditOutput,
    /// SubjectAccessReviews in flight at once, 1 to 256 (lower it on a busy API server).
    #[arg(long, value_name = "N", default_value_t = REVIEW_CONCURRENCY as u16,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub review_concurrency: u16,
    #[command(flatten)]
    pub repo: RepoArg,
}

/// What the audit cost.
#[derive(Debug, Default, Serialize)]
struct Cost {
    access_reviews: usize,
    concurrency: usize,
    access_seconds: f64,
    rbac_lists: usize,
    dry_runs: usize,
    total_seconds: f64,
}

#[derive(Debug, Serialize)]
struct AuditReport {
    tenant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterInfo>,
    identities: Vec<Identity>,
    scopes: Vec<Scope>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access: Option<AccessAudit>,
    behaviour: Vec<CaseRun>,
    cost: Cost,
}

impl AuditReport {
    fn access_findings(&self) -> usize {
        self.access.as_ref().map_or(0, |a| a.findings.len())
    }

    fn allowed_cases(&self) -> usize {
        self.behaviour
            .iter()
            .filter(|c| c.attempt == Attempt::Allowed)
            .count()
    }

    fn verdict(&self) -> String {
        match (self.access_findings(), self.allowed_cases()) {
            (0, 0) => "clean: nothing allowed outside the tenant, every case refused".to_owned(),
            (f, c) => format!(
                "findings: {} outside the tenant or escalating, {c} of {} dry-runs allowed",
                output::plural(f, "access finding"),
                self.behaviour.len()
            ),
        }
    }
}

/// `a, b, c … and 12 more`, at most about `width` characters.
fn abbreviated(items: &[String], width: usize) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if !out.is_empty() && out.len() + item.len() + 2 > width {
            return format!("{out} … and {} more", items.len() - i);
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(item);
    }
    out
}

fn scope_label(kind: ScopeKind, namespace: Option<&str>) -> String {
    Scope {
        kind,
        namespace: namespace.map(str::to_owned),
    }
    .label()
}

fn attempt_words(attempt: &Attempt) -> (String, String) {
    match attempt {
        Attempt::Allowed => ("ALLOWED".to_owned(), "admitted".to_owned()),
        Attempt::Refused { layer, by, .. } => (
            "refused".to_owned(),
            match by {
                Some(by) => format!("{} {by}", layer.as_str()),
                None => layer.as_str().to_owned(),
            },
        ),
    }
}

impl Report for AuditReport {
    const COMMAND: &'static str = "audit";

    fn outcome(&self) -> Outcome {
        if self.access_findings() + self.allowed_cases() > 0 {
            Outcome::Findings
        } else {
            Outcome::Ok
        }
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let Some(access) = &self.access else {
            return Ok(());
        };
        match &self.cluster {
            Some(c) => writeln!(
                out,
                "tenant {} on {} ({})",
                self.tenant, c.server, c.context
            )?,
            None => writeln!(out, "tenant {}", self.tenant)?,
        }
        let c = &self.cost;
        writeln!(
            out,
            "{} access reviews in {:.1} s ({} at once)",
            c.access_reviews, c.access_seconds, c.concurrency
        )?;
        for (names, identity) in audit::same_access(access) {
            writeln!(out, "\n{}", names.join(", "))?;
            for row in audit::rows(identity) {
                let (label, s) = (row.label, row.access);
                if s.grants.is_empty() {
                    let everyone = if s.everyone.is_empty() {
                        String::new()
                    } else {
                        " (beyond self-reviews every user may make)".to_owned()
                    };
                    writeln!(out, "  {label:<44} nothing{everyone}")?;
                    continue;
                }
                writeln!(out, "  {label:<44} {} of {} allowed", s.allowed, s.asked)?;
                for g in &s.grants {
                    writeln!(
                        out,
                        "    {}: {}",
                        g.verbs.join(" "),
                        abbreviated(&g.resources, 90)
                    )?;
                }
            }
        }
        if !access.findings.is_empty() {
            writeln!(out, "\nfindings")?;
            for f in &access.findings {
                let place = scope_label(f.scope, f.namespace.as_deref());
                writeln!(
                    out,
                    "  ✗ {} may {} {} ({place})",
                    f.identity,
                    f.verbs.join(","),
                    f.resource
                )?;
                if let Some(why) = f.escalation {
                    writeln!(out, "      escalation: {why}")?;
                }
                if f.granted_by.is_empty() {
                    writeln!(out, "      granted by no RBAC binding: {}", f.reason)?;
                }
                for b in &f.granted_by {
                    writeln!(out, "      granted by {b}")?;
                }
            }
        }
        if !self.behaviour.is_empty() {
            writeln!(
                out,
                "\nbehaviour (server-side dry-run, {}) as {}",
                output::plural(self.behaviour.len(), "attempt"),
                self.behaviour_identities()
            )?;
            for case in audit::mtb::fold(&self.behaviour) {
                for o in &case.outcomes {
                    let (result, layer) = attempt_words(&o.run.attempt);
                    writeln!(
                        out,
                        "  {result:<8} {:<28} {layer:<40} {}",
                        case.id, case.title
                    )?;
                    if !o.who.is_empty() {
                        writeln!(out, "           as {}", abbreviated(&o.who, 100))?;
                    }
                }
            }
        }
        writeln!(out, "\n{}", self.verdict())
    }
}

impl AuditReport {
    /// Who the behavioural cases ran as, a group owner's synthetic member said as such.
    fn behaviour_identities(&self) -> String {
        let who: Vec<String> = self
            .identities
            .iter()
            .map(|i| {
                if i.synthetic() {
                    format!("{} (as synthetic user {} in that group)", i.name, i.acts_as)
                } else {
                    i.name.clone()
                }
            })
            .collect();
        who.join(", ")
    }

    fn write_markdown(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "# Isolation audit of tenant `{}`\n", self.tenant)?;
        if let Some(c) = &self.cluster {
            writeln!(out, "Cluster: {} (context `{}`)\n", c.server, c.context)?;
        }
        writeln!(out, "**{}**\n", self.verdict())?;
        let c = &self.cost;
        writeln!(
            out,
            "{} SubjectAccessReviews in {:.1} s ({} at once), {} RBAC lists, {} dry-runs; {:.1} s in all.\n",
            c.access_reviews,
            c.access_seconds,
            c.concurrency,
            c.rbac_lists,
            c.dry_runs,
            c.total_seconds
        )?;
        if let Some(access) = &self.access {
            if !access.findings.is_empty() {
                writeln!(out, "## Findings\n")?;
                writeln!(out, "| identity | may | where | granted by | why |")?;
                writeln!(out, "|---|---|---|---|---|")?;
                for f in &access.findings {
                    let by = if f.granted_by.is_empty() {
                        f.reason.clone()
                    } else {
                        f.granted_by.join("<br>")
                    };
                    writeln!(
                        out,
                        "| {} | `{}` {} | {} | {by} | {} |",
                        f.identity,
                        f.verbs.join(","),
                        f.resource,
                        scope_label(f.scope, f.namespace.as_deref()),
                        f.escalation.unwrap_or("allowed outside the tenant")
                    )?;
                }
                writeln!(out)?;
            }
            writeln!(out, "## Access\n")?;
            for identity in &access.identities {
                writeln!(out, "### {}\n", identity.identity)?;
                writeln!(out, "| where | allowed | verbs | resources |")?;
                writeln!(out, "|---|---|---|---|")?;
                for row in audit::rows(identity) {
                    let (label, s) = (row.label, row.access);
                    if s.grants.is_empty() {
                        writeln!(out, "| {label} | 0 of {} | | |", s.asked)?;
                    }
                    for (i, g) in s.grants.iter().enumerate() {
                        let (place, count) = if i == 0 {
                            (label.as_str(), format!("{} of {}", s.allowed, s.asked))
                        } else {
                            ("", String::new())
                        };
                        writeln!(
                            out,
                            "| {place} | {count} | {} | {} |",
                            g.verbs.join(" "),
                            g.resources.join(", ")
                        )?;
                    }
                }
                writeln!(out)?;
            }
        }
        if !self.behaviour.is_empty() {
            writeln!(
                out,
                "## Behaviour (server-side dry-run)\n\nAs {}, in each of the tenant's namespaces.\n",
                self.behaviour_identities()
            )?;
            writeln!(
                out,
                "| case | benchmark | attempt | result | refused by | who |"
            )?;
            writeln!(out, "|---|---|---|---|---|---|")?;
            for case in audit::mtb::fold(&self.behaviour) {
                for o in &case.outcomes {
                    let (result, layer) = attempt_words(&o.run.attempt);
                    let who = if o.who.is_empty() {
                        format!("all {}", case.runs)
                    } else {
                        o.who.join("<br>")
                    };
                    writeln!(
                        out,
                        "| `{}` | {} | {} | {result} | {layer} | {who} |",
                        case.id, o.run.benchmark, case.title
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// Run `tenantry audit`.
pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let mut report = AuditReport {
        tenant: args.name.clone(),
        cluster: None,
        identities: Vec::new(),
        scopes: Vec::new(),
        access: None,
        behaviour: Vec::new(),
        cost: Cost::default(),
    };
    let started = Instant::now();
    let result = audit(&args, &mut report);
    report.cost.total_seconds = started.elapsed().as_secs_f64();
    match args.output {
        AuditOutput::Text => output::finish(Output::Text, &report, result),
        AuditOutput::Json => output::finish(Output::Json, &report, result),
        AuditOutput::Markdown => {
            let mut out = std::io::stdout().lock();
            report.write_markdown(&mut out)?;
            out.flush()?;
            result?;
            Ok(report.outcome().exit_code())
        }
    }
}

fn audit(args: &AuditArgs, report: &mut AuditReport) -> anyhow::Result<()> {
    let (repo, tenant) = args.repo.open_tenant(&args.name)?;
    let ctx = repo.context();
    let tenant = &tenant.resolved;
    let rendered = render::render(ctx, tenant);
    let flags = ClusterFlags {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        output: Output::Text,
    };
    runtime()?.block_on(async {
        let (api, endpoint) = flags.connect().await?;
        report.cluster = Some(ClusterInfo::from(&endpoint));
        let catalog = api.discover().await?;
        let others =
            other_tenant_namespaces(&api, &catalog, ctx.tenant_label(), &tenant.name).await?;
        let identities = audit::identities(tenant, &rendered);
        let scopes = audit::scopes(tenant, &others, &args.platform_namespace);
        let questions = audit::plan(&identities, &scopes, &served(&catalog));

        let asked = Instant::now();
        let concurrency = usize::from(args.review_concurrency);
        let answers = ask(&api, &identities, &scopes, &questions, concurrency).await?;
        report.cost.access_reviews = questions.len();
        report.cost.concurrency = concurrency;
        report.cost.access_seconds = asked.elapsed().as_secs_f64();

        let rbac = rbac_objects(&api, &catalog).await?;
        report.cost.rbac_lists = 4;
        report.access = Some(audit::summarise(
            &identities,
            &scopes,
            &questions,
            &answers,
            &rbac,
        ));
        report.identities = identities.clone();
        report.scopes = scopes;

        // The behavioural cases as each identity (a group owner as a synthetic member), in
        // each of the tenant's namespaces: a binding to one owner, or in one namespace, is
        // seen only there.
        let cases = audit::mtb::cases(tenant, &rendered);
        for identity in &identities {
            let client = api.impersonate(&identity.acts_as, &identity.groups)?;
            let attempts: Vec<anyhow::Result<Attempt>> = stream::iter(&cases)
                .map(|case| attempt(&client, &catalog, &case.object))
                .buffered(DRY_RUN_CONCURRENCY)
                .collect()
                .await;
            for (case, attempt) in cases.iter().zip(attempts) {
                report.behaviour.push(CaseRun {
                    id: case.id,
                    benchmark: case.benchmark,
                    title: case.title,
                    identity: identity.name.clone(),
                    namespace: case.namespace.clone(),
                    object: case.object.reference(),
                    attempt: attempt?,
                });
            }
        }
        report.cost.dry_runs = report.behaviour.len();
        anyhow::Ok(())
    })
}

/// Every served type, as RBAC knows it (group and plural; versions are one type).
fn served(catalog: &Catalog) -> Vec<ServedResource> {
    let mut out: Vec<ServedResource> = Vec::new();
    for t in catalog.types() {
        if !out
            .iter()
            .any(|r| r.group == t.group && r.resource == t.plural)
        {
            out.push(ServedResource {
                group: t.group.clone(),
                resource: t.plural.clone(),
                namespaced: t.namespaced,
                verbs: t.verbs.clone(),
            });
        }
    }
    out
}

/// The namespaces of other tenants (labelled with the tenant label, another value).
async fn other_tenant_namespaces<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    label: &str,
    tenant: &str,
) -> anyhow::Result<Vec<String>> {
    let namespaces = catalog
        .find("v1", "Namespace")
        .ok_or_else(|| anyhow::anyhow!("the cluster does not serve Namespaces"))?;
    Ok(api
        .list(namespaces, label)
        .await?
        .iter()
        .filter(|n| n["metadata"]["labels"][label].as_str() != Some(tenant))
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_owned))
        .collect())
}

/// Every question, `concurrency` at a time, answers in question order. The first failure
/// stops the audit: a matrix with holes would read as "denied".
async fn ask<A: ClusterApi>(
    api: &A,
    identities: &[Identity],
    scopes: &[Scope],
    questions: &[Question],
    concurrency: usize,
) -> Result<Vec<Answer>, ClusterError> {
    stream::iter(questions)
        .map(|q| {
            let review = SubjectAccess {
                user: identities[q.identity].user.clone(),
                groups: identities[q.identity].groups.clone(),
                verb: q.verb.clone(),
                group: q.group.clone(),
                resource: q.resource.clone(),
                subresource: q.subresource.clone(),
                namespace: scopes[q.scope].namespace.clone(),
            };
            async move {
                api.review_subject_access(&review).await.map(|d| Answer {
                    allowed: d.allowed,
                    reason: d.reason,
                })
            }
        })
        .buffered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// The cluster's RBAC objects: four LISTs.
async fn rbac_objects<A: ClusterApi>(api: &A, catalog: &Catalog) -> anyhow::Result<Rbac> {
    let list = |kind: &'static str| async move {
        let t = catalog
            .find("rbac.authorization.k8s.io/v1", kind)
            .ok_or_else(|| anyhow::anyhow!("the cluster does not serve {kind}s"))?;
        anyhow::Ok(api.list(t, "").await?)
    };
    Ok(Rbac {
        cluster_roles: list("ClusterRole").await?,
        roles: list("Role").await?,
        cluster_role_bindings: list("ClusterRoleBinding").await?,
        role_bindings: list("RoleBinding").await?,
    })
}

/// Send one case as a dry-run and read which layer refused it. Refusals are answers;
/// anything else (the server unreachable, a type not served) means the audit could not run.
async fn attempt<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    object: &tenantry_core::DesiredObject,
) -> anyhow::Result<Attempt> {
    let t = catalog
        .find(object.api_version, object.kind)
        .ok_or_else(|| anyhow::anyhow!("the cluster does not serve {}", object.kind))?;
    match api.apply(t, object, true).await {
        Ok(_) => Ok(Attempt::Allowed),
        Err(ClusterError::Forbidden { message, .. }) => Ok(audit::mtb::classify(403, &message)),
        Err(ClusterError::Invalid { message, .. }) => Ok(audit::mtb::classify(422, &message)),
        Err(ClusterError::Api { code, message, .. }) => Ok(audit::mtb::classify(code, &message)),
        Err(e) => Err(e.into()),
    }
}
