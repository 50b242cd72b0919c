//! `tenantry doctor`: diagnose one tenant and say how to fix it.
//!
//! This module only observes: the repository (as `render --check` reads it, and the
//! committed tree as GitOps would apply it), the cluster (as `apply` observes it, plus the
//! workloads, events, ServiceAccounts and secrets of the tenant's namespaces) and OpenBao (as
//! `secrets provision` plans it, plus the KV metadata, never the values, of the keys the
//! tenant's ExternalSecrets read inside its path). Every verdict is
//! `tenantry_doctor::diagnose`'s, a pure function, so what is printed here is what its tests
//! assert. Doctor never writes: the fixes it prints are for a person to run.

use std::{io::Write, process::ExitCode};

use clap::Args;
use serde::Serialize;
use serde_json::Value;
use tenantry_api::platform::OpenBaoConfig;
use tenantry_cluster::{
    Catalog, ClusterApi,
    ops::{self, Silent},
};
use tenantry_core::{Rendered, render};
use tenantry_doctor::{
    BaoStep, Check, ClusterView, KvMetadata, KvView, Observed, Seen, StaleFile, Verdict,
};
use tenantry_gitops::{FileChange, Repo};
use tenantry_policy::input::{self, Format};
use tenantry_secrets::{BaoClient, Layout, SecretsApi, provision};

use crate::{
    args::{BaoFlags, ClusterFlags, ClusterInfo, RepoArg, runtime},
    openbao,
    output::{self, Outcome, Report, display},
};

/// `tenantry doctor`.
#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// The tenant to diagnose.
    pub name: String,
    /// Only run the checks that need the platform repository (for CI): the rendered tree,
    /// and labels, pull-secret wiring and network reachability read from the committed
    /// tree; nothing is read from the cluster or OpenBao.
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub repo: RepoArg,
    #[command(flatten)]
    pub cluster: ClusterFlags,
    #[command(flatten)]
    pub openbao: BaoFlags,
}

/// How many checks ended each way.
#[derive(Debug, Default, Serialize)]
struct Summary {
    ok: usize,
    warn: usize,
    fail: usize,
    skipped: usize,
}

/// What `doctor` found.
#[derive(Debug, Serialize)]
struct DoctorReport {
    tenant: String,
    offline: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterInfo>,
    checks: Vec<Check>,
    summary: Summary,
}

impl Report for DoctorReport {
    const COMMAND: &'static str = "doctor";

    fn outcome(&self) -> Outcome {
        if self.summary.fail > 0 {
            Outcome::Findings
        } else {
            Outcome::Ok
        }
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.checks.is_empty() {
            return Ok(());
        }
        match (&self.cluster, self.offline) {
            (_, true) => writeln!(out, "tenant {} (offline: repository only)", self.tenant)?,
            (Some(c), _) => writeln!(
                out,
                "tenant {} on {} ({})",
                self.tenant, c.server, c.context
            )?,
            (None, false) => writeln!(out, "tenant {}", self.tenant)?,
        }
        for c in &self.checks {
            let verdict = match c.verdict {
                Verdict::Ok => "ok",
                Verdict::Skipped => "skip",
                Verdict::Warn => "WARN",
                Verdict::Fail => "FAIL",
            };
            let what = match (&c.reason, c.verdict) {
                (Some(reason), _) => reason.clone(),
                (None, Verdict::Ok) => format!("{} ({} looked at)", c.title, c.objects.len()),
                (None, _) => c.title.to_owned(),
            };
            writeln!(out, "{verdict:<5} {:<28} {what}", c.id)?;
            for f in &c.findings {
                let mark = if f.verdict == Verdict::Fail {
                    "✗"
                } else {
                    "!"
                };
                writeln!(out, "      {mark} {}: {}", f.object, f.message)?;
                writeln!(out, "        fix: {}", f.fix)?;
            }
            for n in &c.notes {
                writeln!(out, "      · {n}")?;
            }
        }
        let s = &self.summary;
        writeln!(
            out,
            "{}: {} failed, {} warned, {} ok, {} skipped",
            if s.fail > 0 {
                "problems found"
            } else {
                "healthy"
            },
            s.fail,
            s.warn,
            s.ok,
            s.skipped
        )
    }
}

/// Run `tenantry doctor`.
pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let mut report = DoctorReport {
        tenant: args.name.clone(),
        offline: args.offline,
        cluster: None,
        checks: Vec::new(),
        summary: Summary::default(),
    };
    let result = diagnose(&args, &mut report);
    for c in &report.checks {
        match c.verdict {
            Verdict::Ok => report.summary.ok += 1,
            Verdict::Warn => report.summary.warn += 1,
            Verdict::Fail => report.summary.fail += 1,
            Verdict::Skipped => report.summary.skipped += 1,
        }
    }
    output::finish(args.cluster.output, &report, result)
}

fn diagnose(args: &DoctorArgs, report: &mut DoctorReport) -> anyhow::Result<()> {
    let (repo, tenant) = args.repo.open_tenant(&args.name)?;
    let ctx = repo.context();
    let mut rendered = render::render(ctx, &tenant.resolved);
    let stale = stale_files(&repo, std::slice::from_ref(&tenant))?;
    let (cluster, (bao, bao_kv)) = if args.offline {
        let reason = "--offline: the cluster was not consulted".to_owned();
        let openbao = tenant.resolved.openbao;
        (
            Err(reason.clone()),
            (
                openbao.then(|| Err(reason.clone())),
                openbao.then(|| Err(reason.clone())),
            ),
        )
    } else {
        runtime()?.block_on(async {
            let (api, endpoint) = args.cluster.connect().await?;
            report.cluster = Some(ClusterInfo::from(&endpoint));
            let view = observe(&api, &repo, &tenant.resolved, &mut rendered).await?;
            let bao = if tenant.resolved.openbao {
                let (steps, kv) =
                    openbao_view(&args.openbao, &repo, &tenant.resolved, &rendered, &view).await;
                (Some(steps), Some(kv))
            } else {
                (None, None)
            };
            anyhow::Ok((Ok(view), bao))
        })?
    };
    report.checks = tenantry_doctor::diagnose(&Observed {
        ctx,
        tenant: &tenant.resolved,
        rendered: &rendered,
        tenant_dir: display(&repo.tenant_dir(&args.name)),
        stale,
        tree: read_tree(&repo, &args.name),
        cluster,
        openbao: bao,
        openbao_kv: bao_kv,
    });
    Ok(())
}

/// The objects the tenant's committed tree delivers: every file its `kustomization.yaml`
/// lists, as GitOps applies them (edited files included, which is the point). Only plain
/// file names inside the tenant's directory are read, as Tenantry writes them.
fn read_tree(repo: &Repo, name: &str) -> Seen<Vec<Value>> {
    let dir = repo.tenant_dir(name);
    let read = |path: &std::path::Path| -> Seen<Vec<Value>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", display(path)))?;
        let documents = input::parse(&text, Format::Yaml)
            .map_err(|e| format!("cannot read {}: {e}", display(path)))?;
        Ok(documents
            .iter()
            .flat_map(|d| input::objects(&d.value))
            .map(|(_, object)| object.clone())
            .collect())
    };
    let kustomization = dir.join(tenantry_gitops::KUSTOMIZATION_FILE);
    let listed = read(&kustomization)?;
    let resources = listed
        .first()
        .and_then(|k| k["resources"].as_array())
        .ok_or_else(|| format!("{} lists no resources", display(&kustomization)))?;
    let mut objects = Vec::new();
    for entry in resources {
        let file = entry.as_str().unwrap_or_default();
        if file.is_empty() || file.contains(['/', '\\']) || file.starts_with('.') {
            return Err(format!(
                "{}: resource {entry} is not a file of the tenant's directory, which is all doctor reads",
                display(&kustomization)
            ));
        }
        objects.extend(read(&dir.join(file))?);
    }
    Ok(objects)
}

/// What `render --check` reports, for the tenant and the platform components.
fn stale_files(
    repo: &Repo,
    loaded: &[tenantry_gitops::LoadedTenant],
) -> anyhow::Result<Vec<StaleFile>> {
    let problem = |change: &FileChange| match change {
        FileChange::Created => "missing",
        FileChange::Updated => "stale",
        FileChange::Removed => "no longer rendered",
    };
    let platform = repo.check_platform()?.into_iter().map(|c| (c, true));
    let tenant = repo.check_loaded(loaded)?.into_iter().map(|c| (c, false));
    Ok(platform
        .chain(tenant)
        .map(|((path, change), platform)| StaleFile {
            path: display(&path),
            problem: problem(&change),
            platform,
        })
        .collect())
}

/// The served type of `(group, kind)`, any version (the first discovered, the preferred).
fn served<'c>(
    catalog: &'c Catalog,
    group: &str,
    kind: &str,
) -> Option<&'c tenantry_cluster::ResourceType> {
    catalog
        .types()
        .iter()
        .find(|t| t.group == group && t.kind == kind && t.supports("list"))
}

/// Every object of these kinds in the tenant's namespaces. The API is asked cluster-wide
/// (`ClusterApi::list` has no namespace), so the answer is filtered here; a kind the cluster
/// does not serve is left out, and none served at all is the reason the part is not seen.
async fn in_namespaces<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    kinds: &[(&str, &str)],
    namespaces: &[String],
) -> Seen<Vec<Value>> {
    let types: Vec<_> = kinds
        .iter()
        .filter_map(|(g, k)| served(catalog, g, k))
        .collect();
    if types.is_empty() {
        let names: Vec<String> = kinds
            .iter()
            .map(|(g, k)| {
                if g.is_empty() {
                    (*k).to_owned()
                } else {
                    format!("{k}.{g}")
                }
            })
            .collect();
        return Err(format!("the cluster does not serve {}", names.join(", ")));
    }
    let mut out = Vec::new();
    for t in types {
        let items = api
            .list(t, "")
            .await
            .map_err(|e| format!("cannot list {}: {e}", t.qualified_name()))?;
        out.extend(items.into_iter().filter(|o| {
            o["metadata"]["namespace"]
                .as_str()
                .is_some_and(|ns| namespaces.iter().any(|n| n == ns))
        }));
    }
    Ok(out)
}

const WORKLOAD_KINDS: [(&str, &str); 7] = [
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("", "Pod"),
];

/// Read what the checks need from the cluster.
async fn observe<A: ClusterApi>(
    api: &A,
    repo: &Repo,
    tenant: &tenantry_core::ResolvedTenant,
    rendered: &mut Rendered,
) -> anyhow::Result<ClusterView> {
    let label = repo.context().tenant_label();
    let catalog = api.discover().await?;
    let live = ops::observe(
        api,
        &catalog,
        std::slice::from_ref(rendered),
        label,
        false,
        &Silent,
    )
    .await?;
    // Tenant-wide quota shares come from live usage, as `apply` computes them.
    ops::rebalance_quotas(std::slice::from_mut(rendered), &live, label);
    let missing_kinds = catalog
        .missing(&rendered.objects)
        .into_iter()
        .map(|m| {
            let group = m.api_version.rsplit_once('/').map_or("", |(g, _)| g);
            format!("{}.{group}", m.kind)
        })
        .collect();
    let ns = &tenant.namespaces;
    let platform = &repo.context().platform;
    let pull_secrets = if tenant.pull_secret {
        pull_secrets(api, &catalog, ns, &platform.pull_secret.name).await
    } else {
        Ok(Vec::new())
    };
    let mut secret_sync = in_namespaces(
        api,
        &catalog,
        &[
            ("external-secrets.io", "SecretStore"),
            ("external-secrets.io", "ExternalSecret"),
        ],
        ns,
    )
    .await;
    if let (Ok(objects), Some(t)) = (
        &mut secret_sync,
        served(&catalog, "external-secrets.io", "ClusterSecretStore"),
    ) {
        let referenced: Vec<String> = objects
            .iter()
            .filter(|o| o["spec"]["secretStoreRef"]["kind"] == "ClusterSecretStore")
            .filter_map(|o| o["spec"]["secretStoreRef"]["name"].as_str())
            .map(str::to_owned)
            .collect();
        for name in dedup(referenced) {
            if let Ok(Some(store)) = api.get(t, None, &name).await {
                objects.push(store);
            }
        }
    }
    Ok(ClusterView {
        missing_kinds,
        live,
        service_accounts: in_namespaces(api, &catalog, &[("", "ServiceAccount")], ns).await,
        workloads: in_namespaces(api, &catalog, &WORKLOAD_KINDS, ns).await,
        events: in_namespaces(api, &catalog, &[("", "Event")], ns).await,
        pull_secrets,
        secret_sync,
        network_policies: in_namespaces(
            api,
            &catalog,
            &[
                ("networking.k8s.io", "NetworkPolicy"),
                ("cilium.io", "CiliumNetworkPolicy"),
            ],
            ns,
        )
        .await,
        other_tenant_namespaces: other_tenant_namespaces(api, &catalog, label, &tenant.name).await,
    })
}

/// The namespaces carrying the tenant label with another tenant's name (one LIST, by the
/// label's existence).
async fn other_tenant_namespaces<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    label: &str,
    tenant: &str,
) -> Seen<Vec<Value>> {
    let t = served(catalog, "", "Namespace").ok_or("the cluster does not serve Namespaces")?;
    let all = api
        .list(t, label)
        .await
        .map_err(|e| format!("cannot list Namespaces: {e}"))?;
    Ok(all
        .into_iter()
        .filter(|n| n["metadata"]["labels"][label].as_str() != Some(tenant))
        .collect())
}

fn dedup(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names.dedup();
    names
}

/// The pull secret of each tenant namespace, one GET each (never a list of every Secret).
async fn pull_secrets<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    namespaces: &[String],
    name: &str,
) -> Seen<Vec<Value>> {
    let secrets = served(catalog, "", "Secret").ok_or("the cluster does not serve Secrets")?;
    let mut out = Vec::new();
    for ns in namespaces {
        match api.get(secrets, Some(ns), name).await {
            Ok(Some(secret)) => out.push(secret),
            Ok(None) => {}
            Err(e) => return Err(format!("cannot read Secret {ns}/{name}: {e}")),
        }
    }
    Ok(out)
}

/// What OpenBao holds for the tenant, read with the platform's client: its plan, and the KV
/// metadata of the keys its ExternalSecrets read inside its path; each, or why not.
async fn openbao_view(
    flags: &BaoFlags,
    repo: &Repo,
    tenant: &tenantry_core::ResolvedTenant,
    rendered: &Rendered,
    view: &ClusterView,
) -> (Seen<Vec<BaoStep>>, Seen<KvSeen>) {
    let config = &repo.context().platform.openbao;
    if !flags.configured() {
        let reason = "OpenBao is not configured: set BAO_ADDR and BAO_TOKEN (or --bao-addr and --bao-token-file) to check the tenant's policy, role and secrets".to_owned();
        return (Err(reason.clone()), Err(reason));
    }
    let client = match flags.client(config) {
        Ok(client) => client,
        Err(e) => return (Err(e.to_string()), Err(e.to_string())),
    };
    let steps = openbao_steps(&client, config, rendered).await;
    let kv = match &view.secret_sync {
        Ok(objects) => openbao_kv(&client, config, tenant, repo, rendered, objects).await,
        Err(reason) => Err(reason.clone()),
    };
    (steps, kv)
}

type KvSeen = KvView;

/// Keys listed below one `find` folder at most: a folder that large is judged on what was
/// listed, and the doctor stays a few hundred requests.
const MAX_LISTED_KEYS: usize = 1_000;

/// Exactly what `openbao_kv_paths` names, never a value: each secret's metadata (read raw,
/// so every version's state reaches the pure check), and each `find` folder listed
/// recursively, as External Secrets lists it.
async fn openbao_kv(
    client: &BaoClient,
    config: &OpenBaoConfig,
    tenant: &tenantry_core::ResolvedTenant,
    repo: &Repo,
    rendered: &Rendered,
    objects: &[Value],
) -> Seen<KvSeen> {
    let reads = tenantry_doctor::openbao_kv_paths(repo.context(), tenant, rendered, objects)?;
    let unread = |e: tenantry_secrets::SecretsError| format!("OpenBao could not be read: {e}");
    let mount = &config.kv_mount;
    let mut out = KvView::default();
    for path in reads.secrets {
        let meta = client
            .kv_metadata(mount, &path)
            .await
            .map_err(unread)?
            .map(|data| KvMetadata::from_metadata(&data));
        out.secrets.insert(path, meta);
    }
    for folder in reads.folders {
        let mut keys = Vec::new();
        let mut pending = vec![format!("{folder}/")];
        while let Some(dir) = pending.pop() {
            if keys.len() >= MAX_LISTED_KEYS {
                break;
            }
            for entry in client.kv_list(mount, &dir).await.map_err(unread)? {
                let full = format!("{dir}{entry}");
                if entry.ends_with('/') {
                    pending.push(full);
                } else if keys.len() < MAX_LISTED_KEYS {
                    keys.push(full);
                }
            }
        }
        keys.sort();
        out.folders.insert(folder, keys);
    }
    Ok(out)
}

/// The tenant's OpenBao plan, or why it could not be made.
async fn openbao_steps(
    client: &BaoClient,
    config: &OpenBaoConfig,
    rendered: &Rendered,
) -> Seen<Vec<BaoStep>> {
    let access =
        openbao::desired(config, std::slice::from_ref(rendered)).map_err(|e| e.to_string())?;
    let plan = provision::plan(
        client,
        &Layout::from(config),
        &access,
        provision::Options::default(),
    )
    .await
    .map_err(|e| format!("OpenBao could not be read: {e}"))?;
    let word = |v: serde_json::Result<Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    Ok(plan
        .steps
        .into_iter()
        .filter(|s| s.tenant.as_deref().is_none_or(|t| t == rendered.tenant))
        .map(|s| BaoStep {
            target: word(serde_json::to_value(s.target)).replace('-', " "),
            name: s.name,
            change: word(serde_json::to_value(s.change)),
            detail: s.detail,
        })
        .collect())
}
