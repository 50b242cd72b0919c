//! The checks, in the order they run. Each is a function of [`Observed`] to one [`Check`];
//! a check that needs something not observed is skipped with the reason instead of guessing.
//! Where one problem shows up in several places (a missing label is drift, and it also
//! leaves the pull secret out), the earlier check owns the fix and the later one points
//! back to it, so the report reads as one cause with its consequences.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde_json::Value;
use tenantry_api::quantity::QuantityValue;
use tenantry_core::{
    plan::{self, Change},
    registry::credential_host,
};
use tenantry_policy::image::ImageRef;

use tenantry_api::tenant::NetworkProvider;
use tenantry_core::render::{ALLOW_EGRESS, ALLOW_INGRESS, CILIUM_ISOLATION};

use crate::{
    Check, ClusterView, Observed, Seen,
    netpol::{self, Direction, Endpoint, NAMESPACE_NAME_LABEL, Port, Reach},
    reference,
};

/// Every check's ID, in the order they run.
pub const CHECK_IDS: [&str; 13] = [
    "rendered-tree",
    "objects",
    "namespace-labels",
    "service-account-pull-secret",
    "openbao",
    "openbao-paths",
    "secret-sync",
    "pull-secret-registries",
    "network-reachability",
    "delivery",
    "quota-headroom",
    "admission-refusals",
    "pods-pending",
];

pub(crate) fn run_all(o: &Observed<'_>) -> Vec<Check> {
    vec![
        rendered_tree(o),
        objects(o),
        namespace_labels(o),
        service_account_pull_secret(o),
        openbao(o),
        crate::openbao_paths::check(o),
        secret_sync(o),
        pull_secret_registries(o),
        network_reachability(o),
        delivery(o),
        quota_headroom(o),
        admission_refusals(o),
        pods_pending(o),
    ]
}

/// What a check that could not look returns at once: `or_skipped!(cluster(o, &c))` is the
/// value, or the check skipped with the reason.
macro_rules! or_skipped {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(skipped) => return *skipped,
        }
    };
}

const NO_PULL_SECRET: &str =
    "the tenant does not use the platform pull secret (secrets.pullSecret is off)";

/// The cluster view, or the check skipped with the reason it was not consulted.
fn cluster<'o>(o: &'o Observed<'_>, check: &Check) -> Result<&'o ClusterView, Box<Check>> {
    o.cluster
        .as_ref()
        .map_err(|reason| Box::new(check.clone().skipped(reason.clone())))
}

/// A part of the cluster view, or the check skipped with why it could not be read.
fn part<'v>(seen: &'v Seen<Vec<Value>>, check: &Check) -> Result<&'v [Value], Box<Check>> {
    seen.as_deref()
        .map_err(|reason| Box::new(check.clone().skipped(reason.clone())))
}

fn apply_fix(o: &Observed<'_>) -> String {
    format!("tenantry apply {}", o.tenant.name)
}

/// Where the checks of what Tenantry's objects wire together read them: the cluster's when
/// it was consulted, else the committed tree, which is what GitOps would deliver. The fix is
/// the command that puts the rendered object back in that place.
struct Source<'o> {
    objects: &'o [Value],
    offline: bool,
    tenant: &'o str,
}

impl Source<'_> {
    /// The command that sets `what` back as rendered.
    fn fix(&self, what: &str) -> String {
        if self.offline {
            format!(
                "tenantry render --write {} (sets {what} again), then commit the change",
                self.tenant
            )
        } else {
            format!("tenantry apply {} (sets {what} again)", self.tenant)
        }
    }

    /// The object of this kind, namespace and name.
    fn find(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<&Value> {
        self.objects.iter().find(|x| {
            kind_of(x) == kind
                && name_of(x) == name
                && x["metadata"]["namespace"].as_str() == namespace
        })
    }
}

/// The live objects, or offline the committed tree; the check skipped when neither was read.
fn source<'o>(o: &'o Observed<'_>, check: &Check) -> Result<Source<'o>, Box<Check>> {
    let (objects, offline) = match (&o.cluster, &o.tree) {
        (Ok(view), _) => (view.live.as_slice(), false),
        (Err(_), Ok(tree)) => (tree.as_slice(), true),
        (Err(offline), Err(tree)) => {
            return Err(Box::new(
                check.clone().skipped(format!("{offline}, and {tree}")),
            ));
        }
    };
    Ok(Source {
        objects,
        offline,
        tenant: &o.tenant.name,
    })
}

fn in_tenant(o: &Observed<'_>, object: &Value) -> bool {
    object["metadata"]["namespace"]
        .as_str()
        .is_some_and(|ns| o.tenant.namespaces.iter().any(|n| n == ns))
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("?")
}

fn namespace_of(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or("")
}

fn kind_of(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or("")
}

/// The repository: is the committed tree what `tenant.yaml` and `tenantry.yaml` render?
/// Everything after this compares the cluster with the *rendered* objects, so a stale tree
/// means Flux (or a person) applies something else than what is diagnosed.
fn rendered_tree(o: &Observed<'_>) -> Check {
    let mut c = Check::new(
        "rendered-tree",
        "rendered files match tenant.yaml and tenantry.yaml",
    );
    c.looked_at(o.tenant_dir.clone());
    for f in &o.stale {
        let fix = if f.platform {
            "tenantry render --write, then commit the change".to_owned()
        } else {
            format!(
                "tenantry render --write {}, then commit the change",
                o.tenant.name
            )
        };
        c.fail(
            f.path.clone(),
            format!(
                "{}: the committed file differs from what the repository renders, so GitOps delivers something else",
                f.problem
            ),
            fix,
        );
    }
    c
}

/// Every rendered object present in the cluster and unchanged (`core::plan`, as `apply`
/// plans it).
fn objects(o: &Observed<'_>) -> Check {
    let c = Check::new("objects", "every rendered object present and unchanged");
    let view = or_skipped!(cluster(o, &c));
    let mut c = c;
    let plan = plan::plan_tenant(o.rendered, &view.live, o.ctx.tenant_label(), false);
    for (object, rendered) in plan.objects.iter().zip(&o.rendered.objects) {
        let key = object.key.to_string();
        c.looked_at(key.clone());
        let served = !view
            .missing_kinds
            .iter()
            .any(|k| k == &format!("{}.{}", rendered.kind, rendered.group()));
        match &object.change {
            Change::Unchanged => {}
            Change::Create if !served => c.warn(
                key,
                format!(
                    "the cluster does not serve {} (its CustomResourceDefinition is not installed), so the {} layer is not in place",
                    rendered.kind, rendered.layer
                ),
                format!(
                    "install the CRDs of {} (e.g. from the controller's release), then `{}`",
                    rendered.group(),
                    apply_fix(o)
                ),
            ),
            Change::Create => c.fail(
                key,
                "missing from the cluster (or no longer labelled for the tenant)",
                apply_fix(o),
            ),
            Change::Update(details) => c.fail(
                key,
                format!("differs from the rendered object: {}", details.join("; ")),
                apply_fix(o),
            ),
        }
    }
    c
}

/// What a namespace label is for, to say what its absence breaks.
fn label_purpose(o: &Observed<'_>, key: &str, ns: &str) -> Option<String> {
    let platform = &o.ctx.platform;
    if key.starts_with("pod-security.kubernetes.io/") {
        return Some(
            "Pod Security admits pods in this namespace at another level than declared".to_owned(),
        );
    }
    if key == platform.pull_secret.namespace_label.key {
        return Some(if platform.pull_secret.fan_out {
            format!(
                "the pull-secret opt-in: ClusterExternalSecret {} does not select this namespace, so Secret {ns}/{} is not created and private images cannot be pulled",
                platform.pull_secret.name, platform.pull_secret.name
            )
        } else {
            format!(
                "the pull-secret opt-in: the platform selects namespaces that get Secret {} by it, so without it private images cannot be pulled",
                platform.pull_secret.name
            )
        });
    }
    if key == platform.mesh_label.key {
        return Some("the mesh opt-in: new pods get no sidecar and no mTLS".to_owned());
    }
    None
}

/// Namespace labels as declared: Pod Security, the pull-secret opt-in, the mesh.
fn namespace_labels(o: &Observed<'_>) -> Check {
    let c = Check::new(
        "namespace-labels",
        "namespace labels (Pod Security, pull-secret opt-in, mesh) as declared",
    );
    let src = or_skipped!(source(o, &c));
    let mut c = c;
    let platform = &o.ctx.platform;
    for ns in o.rendered.objects.iter().filter(|d| d.kind == "Namespace") {
        let reference = ns.reference();
        c.looked_at(reference.clone());
        let Some(live) = src.find("Namespace", None, &ns.name) else {
            if src.offline {
                c.fail(
                    reference.clone(),
                    "is not in the committed tree, so GitOps does not create it",
                    src.fix("the Namespace"),
                );
            }
            continue; // Online, `objects` reports it missing.
        };
        let declared = ns.body["metadata"]["labels"].as_object();
        for (key, value) in declared.into_iter().flatten() {
            let Some(purpose) = label_purpose(o, key, &ns.name) else {
                continue;
            };
            let live_value = &live["metadata"]["labels"][key.as_str()];
            if live_value == value {
                continue;
            }
            let now = live_value
                .as_str()
                .map_or("missing".to_owned(), |v| format!("{v:?}"));
            c.fail(
                reference.clone(),
                format!(
                    "label {key} is {now}, declared {}: {purpose}",
                    value.as_str().unwrap_or_default()
                ),
                src.fix(&format!("metadata.labels.{key}")),
            );
        }
        // Opt-ins present but not declared: the tenant gets something it did not ask for.
        for (pair, wanted, field) in [
            (&platform.mesh_label, o.tenant.mesh, "spec.mesh"),
            (
                &platform.pull_secret.namespace_label,
                o.tenant.pull_secret,
                "spec.secrets.pullSecret",
            ),
        ] {
            if !wanted && live["metadata"]["labels"][pair.key.as_str()] == pair.value.as_str() {
                c.warn(
                    reference.clone(),
                    format!(
                        "label {}={} is set but {field} is off for this tenant",
                        pair.key, pair.value
                    ),
                    if src.offline {
                        format!(
                            "set {field}: true in tenant.yaml, or {}",
                            src.fix("metadata.labels")
                        )
                    } else {
                        format!(
                            "set {field}: true in tenant.yaml, or `kubectl label namespace {} {}-`",
                            ns.name, pair.key
                        )
                    },
                );
            }
        }
    }
    c
}

/// The pod spec of a workload, by kind.
fn pod_spec(object: &Value) -> Option<&Value> {
    let spec = match kind_of(object) {
        "Pod" => &object["spec"],
        "CronJob" => &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            &object["spec"]["template"]["spec"]
        }
        _ => return None,
    };
    spec.is_object().then_some(spec)
}

/// True when a controller owns the object: its owner is judged instead, once.
fn is_controlled(object: &Value) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["controller"] == true))
}

/// Every image of a pod spec (init, regular and ephemeral containers).
fn images(spec: &Value) -> Vec<&str> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| spec[*k].as_array())
        .flatten()
        .filter_map(|c| c["image"].as_str())
        .collect()
}

fn lists_secret(object: &Value, secret: &str) -> bool {
    object["imagePullSecrets"]
        .as_array()
        .is_some_and(|s| s.iter().any(|r| r["name"] == secret))
}

/// The top-level workloads (not owned by a controller) in the tenant's namespaces.
fn top_workloads<'v>(o: &Observed<'_>, workloads: &'v [Value]) -> Vec<&'v Value> {
    workloads
        .iter()
        .filter(|w| in_tenant(o, w) && !is_controlled(w) && pod_spec(w).is_some())
        .collect()
}

/// The registry hosts a dockerconfigjson Secret holds credentials for, normalised the way
/// image references are (`https://index.docker.io/v1/` is `docker.io`). `Err` says why the
/// Secret could not be read.
fn registry_hosts(secret: &Value) -> Result<BTreeSet<String>, String> {
    let data = secret["data"][".dockerconfigjson"]
        .as_str()
        .ok_or("it has no .dockerconfigjson key (or its data could not be read)")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| format!(".dockerconfigjson is not base64: {e}"))?;
    let config: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!(".dockerconfigjson is not JSON: {e}"))?;
    let auths = config["auths"]
        .as_object()
        .ok_or(".dockerconfigjson has no `auths` object")?;
    Ok(auths.keys().map(|k| credential_host(k)).collect())
}

/// The pull secret of namespace `ns`, when observed.
fn pull_secret_in<'v>(o: &Observed<'_>, secrets: &'v [Value], ns: &str) -> Option<&'v Value> {
    secrets
        .iter()
        .find(|s| namespace_of(s) == ns && name_of(s) == o.ctx.platform.pull_secret.name)
}

/// ServiceAccounts' `imagePullSecrets`: Tenantry's own, and the one each workload runs as.
fn service_account_pull_secret(o: &Observed<'_>) -> Check {
    let c = Check::new(
        "service-account-pull-secret",
        "workloads run as a ServiceAccount that lists the pull secret",
    );
    if !o.tenant.pull_secret {
        return c.skipped(NO_PULL_SECRET);
    }
    let src = or_skipped!(source(o, &c));
    let view = o.cluster.as_ref().ok();
    let accounts = match view {
        Some(view) => or_skipped!(part(&view.service_accounts, &c)),
        None => src.objects,
    };
    let mut c = c;
    let secret = &o.ctx.platform.pull_secret.name;
    let tenant = &o.tenant.name;
    for ns in &o.tenant.namespaces {
        let produced = produced_pull_secret(o, &src, &mut c, ns);
        let Some(sa) = accounts.iter().find(|a| {
            kind_of(a) == "ServiceAccount" && namespace_of(a) == ns && name_of(a) == tenant
        }) else {
            if src.offline {
                c.fail(
                    format!("ServiceAccount {ns}/{tenant}"),
                    "is not in the committed tree, so no workload can run as Tenantry's ServiceAccount",
                    src.fix("the ServiceAccount"),
                );
            }
            continue; // Online, `objects` reports it missing.
        };
        c.looked_at(reference(sa));
        let Some((produced, by)) = produced else {
            continue;
        };
        if lists_secret(sa, &produced) {
            continue;
        }
        let listed: Vec<&str> = sa["imagePullSecrets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str())
            .collect();
        let message = if listed.is_empty() {
            format!("Tenantry's ServiceAccount does not list {produced} in imagePullSecrets")
        } else {
            format!(
                "imagePullSecrets lists {}, but the pull secret is Secret {ns}/{produced} ({by})",
                listed.join(", ")
            )
        };
        c.fail(reference(sa), message, src.fix("imagePullSecrets"));
    }
    let Some(view) = view else {
        return c;
    };
    let Ok(workloads) = view.workloads.as_deref() else {
        return c;
    };
    let secrets = view.pull_secrets.as_deref().ok();
    for w in top_workloads(o, workloads) {
        let Some(spec) = pod_spec(w) else { continue };
        let ns = namespace_of(w);
        c.looked_at(reference(w));
        let sa_name = spec["serviceAccountName"]
            .as_str()
            .or_else(|| spec["serviceAccount"].as_str())
            .unwrap_or("default");
        if sa_name == tenant.as_str() {
            continue; // Tenantry's own ServiceAccount is judged above: one cause, one finding.
        }
        let sa = accounts
            .iter()
            .find(|a| namespace_of(a) == ns && name_of(a) == sa_name);
        if lists_secret(spec, secret) || sa.is_some_and(|sa| lists_secret(sa, secret)) {
            continue;
        }
        // Only images on a registry the pull secret holds need it; when the secret cannot be
        // read, any image may.
        let hosts = secrets
            .and_then(|s| pull_secret_in(o, s, ns))
            .and_then(|s| registry_hosts(s).ok());
        let needing: Vec<&str> = images(spec)
            .into_iter()
            .filter(|i| match (&hosts, ImageRef::parse(i)) {
                (Some(hosts), Ok(image)) => hosts.contains(&image.registry),
                _ => true,
            })
            .collect();
        if needing.is_empty() {
            continue;
        }
        let message = format!(
            "runs as ServiceAccount {sa_name}, which does not list {secret} in imagePullSecrets (nor does the pod spec), so {} cannot be pulled if private",
            needing.join(", ")
        );
        let fix = format!(
            "set serviceAccountName: {tenant} in its pod template (Tenantry's ServiceAccount lists {secret}), or `kubectl -n {ns} patch serviceaccount {sa_name} --type merge -p '{{\"imagePullSecrets\":[{{\"name\":\"{secret}\"}}]}}'`"
        );
        if hosts.is_some() {
            c.fail(reference(w), message, fix);
        } else {
            c.warn(reference(w), message, fix);
        }
    }
    c
}

/// The Secret the pull-secret ExternalSecret of `ns` makes (`spec.target.name`, else its own
/// name) and what makes it; with `pullSecret.fanOut`, the platform's ClusterExternalSecret
/// makes `pullSecret.name`. Offline, an ExternalSecret missing from the tree is a failure
/// (online, `objects` reports it) and `None` is returned.
fn produced_pull_secret(
    o: &Observed<'_>,
    src: &Source<'_>,
    c: &mut Check,
    ns: &str,
) -> Option<(String, String)> {
    let ps = &o.ctx.platform.pull_secret;
    if ps.fan_out {
        return Some((
            ps.name.clone(),
            format!("made by ClusterExternalSecret {}", ps.name),
        ));
    }
    let Some(es) = src.find("ExternalSecret", Some(ns), &ps.name) else {
        if src.offline {
            c.fail(
                format!("ExternalSecret {ns}/{}", ps.name),
                format!(
                    "is not in the committed tree, so Secret {ns}/{} is never created and private images cannot be pulled",
                    ps.name
                ),
                src.fix("the ExternalSecret"),
            );
            return None;
        }
        return Some((ps.name.clone(), format!("ExternalSecret {ns}/{}", ps.name)));
    };
    c.looked_at(reference(es));
    let name = es["spec"]["target"]["name"]
        .as_str()
        .unwrap_or_else(|| name_of(es));
    Some((
        name.to_owned(),
        format!("spec.target.name of {}", reference(es)),
    ))
}

/// OpenBao: the tenant's policy and Kubernetes-auth role present and equal to the rendered
/// ones (`provision::plan`).
fn openbao(o: &Observed<'_>) -> Check {
    let c = Check::new("openbao", "OpenBao policy and role present and as rendered");
    let steps = match &o.openbao {
        None => return c.skipped("the tenant has no secrets.openbao"),
        Some(Err(reason)) => return c.skipped(reason.clone()),
        Some(Ok(steps)) => steps,
    };
    let mut c = c;
    let tenant = &o.tenant.name;
    for s in steps {
        let object = format!("OpenBao {} {}", s.target, s.name);
        c.looked_at(object.clone());
        let detail = if s.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", s.detail.join(", "))
        };
        match s.change.as_str() {
            "create" => c.fail(
                object,
                format!("missing, so External Secrets cannot log in or read for the tenant{detail}"),
                format!("tenantry secrets provision {tenant}"),
            ),
            "update" => c.fail(
                object,
                format!("differs from the rendered one{detail}"),
                format!("tenantry secrets provision {tenant}"),
            ),
            "foreign" => c.fail(
                object,
                format!("exists but was not written by Tenantry{detail}"),
                format!(
                    "check who wrote it, then `tenantry secrets provision {tenant} --force` replaces it"
                ),
            ),
            "blocked" => c.warn(
                object,
                format!("not checked further: another step of the tenant is refused{detail}"),
                format!("fix the refused step, then `tenantry secrets provision {tenant}`"),
            ),
            _ => {}
        }
    }
    c
}

/// The `Ready` condition of an object: `(status, reason, message)`.
fn ready(object: &Value) -> Option<(&str, &str, &str)> {
    let condition = object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?;
    Some((
        condition["status"].as_str().unwrap_or("Unknown"),
        condition["reason"].as_str().unwrap_or(""),
        condition["message"].as_str().unwrap_or(""),
    ))
}

/// An External Secrets error message, mapped to its cause and fix.
fn secret_cause(o: &Observed<'_>, object: &Value, message: &str) -> (String, String) {
    let m = message.to_ascii_lowercase();
    let tenant = &o.tenant.name;
    let bao = &o.ctx.platform.openbao;
    let platform_store = kind_of(object) == "ClusterSecretStore"
        || object["spec"]["secretStoreRef"]["kind"] == "ClusterSecretStore";
    if m.contains("permission denied") || m.contains("403") {
        return if platform_store {
            (
                "OpenBao refused the platform's ClusterSecretStore (permission denied)".to_owned(),
                "give the platform store's OpenBao role a policy that reads the pull credential (its path in pullSecret.key)".to_owned(),
            )
        } else {
            (
                "OpenBao refused the tenant's login or read (permission denied): its role or policy is missing or wrong".to_owned(),
                format!("tenantry secrets provision {tenant} (see the openbao check)"),
            )
        };
    }
    if m.contains("secret does not exist")
        || m.contains("not found")
        || m.contains("404")
        || m.contains("no secret")
    {
        let keys = crate::openbao_paths::remote_keys(object);
        let key = keys.first().copied().unwrap_or("<key>");
        return (
            format!("the OpenBao path is empty: nothing is stored at {key}"),
            format!(
                "write it: `bao kv put -mount={} {key} <field>=<value>`",
                bao.kv_mount
            ),
        );
    }
    if [
        "dial tcp",
        "connection refused",
        "i/o timeout",
        "no such host",
        "deadline exceeded",
    ]
    .iter()
    .any(|s| m.contains(s))
    {
        return (
            format!("External Secrets cannot reach OpenBao ({message})"),
            format!(
                "check openbao.address in tenantry.yaml ({}) and that network policy lets the external-secrets controller reach it",
                bao.address
            ),
        );
    }
    if m.contains("secretstore") && (m.contains("not ready") || m.contains("could not get")) {
        let store = object["spec"]["secretStoreRef"]["name"]
            .as_str()
            .unwrap_or("?");
        return (
            format!("its store {store} is not ready ({message})"),
            format!("fix store {store} first (above)"),
        );
    }
    (
        message.to_owned(),
        format!(
            "see the message; `kubectl -n {} describe {} {}`",
            namespace_of(object),
            kind_of(object).to_ascii_lowercase(),
            name_of(object)
        ),
    )
}

/// ExternalSecret, SecretStore and ClusterSecretStore conditions, with their messages mapped
/// to causes.
fn secret_sync(o: &Observed<'_>) -> Check {
    let c = Check::new(
        "secret-sync",
        "External Secrets stores and secrets are Ready",
    );
    let view = or_skipped!(cluster(o, &c));
    let objects = or_skipped!(part(&view.secret_sync, &c));
    let mut c = c;
    let rank = |o: &&Value| match kind_of(o) {
        "ClusterSecretStore" => 0,
        "SecretStore" => 1,
        _ => 2,
    };
    let mut sorted: Vec<&Value> = objects.iter().collect();
    sorted.sort_by_key(rank);
    for object in sorted {
        let r = reference(object);
        c.looked_at(r.clone());
        match ready(object) {
            Some(("True", _, _)) => {}
            Some((_, reason, message)) => {
                let text = if message.is_empty() { reason } else { message };
                let (cause, fix) = secret_cause(o, object, text);
                c.fail(r, format!("not Ready: {cause}"), fix);
            }
            None => c.warn(
                r,
                "no Ready condition yet: External Secrets has not reconciled it",
                "check that the external-secrets controller is running (`kubectl -n external-secrets get pods`)",
            ),
        }
    }
    c
}

/// The pull secret's registry hosts (its dockerconfigjson `auths`) against every image the
/// tenant's workloads use.
fn pull_secret_registries(o: &Observed<'_>) -> Check {
    let c = Check::new(
        "pull-secret-registries",
        "the pull secret holds credentials for the registries the workloads use",
    );
    if !o.tenant.pull_secret {
        return c.skipped(NO_PULL_SECRET);
    }
    if o.cluster.is_err() {
        return pull_secret_template(o, c);
    }
    let view = or_skipped!(cluster(o, &c));
    let secrets = or_skipped!(part(&view.pull_secrets, &c));
    let mut c = c;
    let ps = &o.ctx.platform.pull_secret;
    let workloads = view.workloads.as_deref().unwrap_or_default();
    for ns in &o.tenant.namespaces {
        let object = format!("Secret {ns}/{}", ps.name);
        c.looked_at(object.clone());
        let Some(secret) = pull_secret_in(o, secrets, ns) else {
            let source = if ps.fan_out {
                format!(
                    "ClusterExternalSecret {} (selecting label {}={})",
                    ps.name, ps.namespace_label.key, ps.namespace_label.value
                )
            } else {
                format!("ExternalSecret {ns}/{}", ps.name)
            };
            c.fail(
                object,
                "does not exist, so no pod here can pull a private image",
                format!(
                    "it is made by {source} from ClusterSecretStore {} key {}: fix what namespace-labels and secret-sync report above"
                    , ps.cluster_secret_store, ps.key
                ),
            );
            continue;
        };
        if secret["type"] != "kubernetes.io/dockerconfigjson" {
            c.fail(
                object.clone(),
                format!(
                    "is of type {}, not kubernetes.io/dockerconfigjson: the kubelet ignores it",
                    secret["type"].as_str().unwrap_or("Opaque")
                ),
                format!(
                    "delete it; ExternalSecret {ns}/{} recreates it with the right type",
                    ps.name
                ),
            );
            continue;
        }
        let hosts = match registry_hosts(secret) {
            Ok(hosts) => hosts,
            Err(why) => {
                c.warn(
                    object,
                    format!("its registries could not be read: {why}"),
                    format!(
                        "check the credential in ClusterSecretStore {} key {} property {}",
                        ps.cluster_secret_store, ps.key, ps.property
                    ),
                );
                continue;
            }
        };
        let mut seen = BTreeSet::new();
        for w in workloads
            .iter()
            .filter(|w| namespace_of(w) == ns && !is_controlled(w))
        {
            for image in pod_spec(w).map(images).unwrap_or_default() {
                if !seen.insert(image) {
                    continue;
                }
                c.looked_at(reference(w));
                let Ok(parsed) = ImageRef::parse(image) else {
                    c.fail(
                        reference(w),
                        format!("image {image:?} is not a valid image reference"),
                        "fix the image field of its container",
                    );
                    continue;
                };
                if hosts.contains(&parsed.registry) {
                    continue;
                }
                c.warn(
                    reference(w),
                    format!(
                        "image {image} comes from {}, for which {object} holds no credential (it has: {}); a private image there cannot be pulled",
                        parsed.registry,
                        hosts.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
                    ),
                    format!(
                        "if {} is private, add it to the dockerconfigjson in ClusterSecretStore {} key {} property {}; if it is public, nothing",
                        parsed.registry, ps.cluster_secret_store, ps.key, ps.property
                    ),
                );
            }
        }
    }
    c
}

/// Offline, the registries come from the pull secret's template: a literal dockerconfigjson
/// there names its hosts, compared with the tenant's allowed registries (`spec.registries`).
/// The rendered template reads the credential from the platform's store at run time, so its
/// hosts are only known online.
fn pull_secret_template(o: &Observed<'_>, c: Check) -> Check {
    let ps = &o.ctx.platform.pull_secret;
    if ps.fan_out {
        return c.skipped(format!(
            "the pull secret's template is the platform's ClusterExternalSecret {}; its hosts are read from the Secret online",
            ps.name
        ));
    }
    let src = or_skipped!(source(o, &c));
    let mut c = c;
    let mut literal = false;
    for ns in &o.tenant.namespaces {
        let Some(es) = src.find("ExternalSecret", Some(ns), &ps.name) else {
            continue; // service-account-pull-secret reports it.
        };
        let r = reference(es);
        c.looked_at(r.clone());
        let template = &es["spec"]["target"]["template"];
        let kind = template["type"].as_str().unwrap_or("Opaque");
        if kind != "kubernetes.io/dockerconfigjson" {
            c.fail(
                r.clone(),
                format!(
                    "spec.target.template.type is {kind}, not kubernetes.io/dockerconfigjson: the kubelet ignores the Secret it makes"
                ),
                src.fix("spec.target.template.type"),
            );
            continue;
        }
        let Some(text) = template["data"][".dockerconfigjson"].as_str() else {
            continue;
        };
        // A literal dockerconfigjson (template expressions only inside its values) names its
        // hosts; a whole-value expression is read from the store at run time.
        let hosts: BTreeSet<String> = match serde_json::from_str::<Value>(text) {
            Ok(config) => config["auths"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| credential_host(k))
                .collect(),
            Err(_) if text.contains("{{") => continue,
            Err(e) => {
                c.fail(
                    r.clone(),
                    format!("spec.target.template.data.\".dockerconfigjson\" is not JSON: {e}"),
                    src.fix("spec.target.template"),
                );
                continue;
            }
        };
        literal = true;
        for allowed in &o.tenant.registries {
            let host = credential_host(allowed);
            if !hosts.contains(&host) {
                c.warn(
                    r.clone(),
                    format!(
                        "the tenant may pull from {allowed} (spec.registries), but the template's auths hold no credential for {host} (it has: {})",
                        hosts.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
                    ),
                    format!(
                        "if {host} is private, add it to spec.target.template.data.\".dockerconfigjson\" auths; if it is public, nothing"
                    ),
                );
            }
        }
    }
    if !literal && c.findings.is_empty() {
        return c.skipped(format!(
            "the pull secret's registry hosts are read at run time from ClusterSecretStore {} key {}, not written in its template: run doctor online to compare them with the images",
            ps.cluster_secret_store, ps.key
        ));
    }
    c
}

/// The tenant's Tenantry policy that carries each floor rule, by provider: where a fix goes.
fn floor_policies(o: &Observed<'_>) -> (&'static str, &'static str, &'static str) {
    match o.tenant.network.provider {
        NetworkProvider::Kubernetes => ("NetworkPolicy", ALLOW_EGRESS, ALLOW_INGRESS),
        NetworkProvider::Cilium => ("CiliumNetworkPolicy", CILIUM_ISOLATION, CILIUM_ISOLATION),
    }
}

/// A pod of the tenant in `ns` with no particular labels, as the policies see it: what the
/// floor promises holds for every pod.
fn tenant_pod(o: &Observed<'_>, src: &Source<'_>, ns: &str) -> Endpoint {
    let declared = o
        .rendered
        .objects
        .iter()
        .find(|d| d.kind == "Namespace" && d.name == ns)
        .map(|d| &d.body);
    let labels = src
        .find("Namespace", None, ns)
        .or(declared)
        .and_then(|n| n["metadata"]["labels"].as_object());
    let mut namespace_labels: BTreeMap<String, String> = labels
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect();
    namespace_labels.insert(NAMESPACE_NAME_LABEL.to_owned(), ns.to_owned());
    Endpoint {
        namespace: ns.to_owned(),
        namespace_labels,
        pod_labels: Some(BTreeMap::new()),
    }
}

/// One flow the platform needs: its direction, the peer, and each port it must pass on.
struct Flow<'e> {
    direction: Direction,
    peer: &'e Endpoint,
    ports: Vec<Port>,
}

/// A flow judged on the observed policies and on the rendered ones: `Some((denied ports,
/// isolating policies, whether the rendered ones deny it too))` when it is denied.
fn denied(
    objects: &[Value],
    rendered: &[Value],
    pod: &Endpoint,
    flow: &Flow<'_>,
) -> Option<(Vec<String>, BTreeSet<String>, bool)> {
    let mut ports = Vec::new();
    let mut by = BTreeSet::new();
    let mut rendered_denies = false;
    for port in &flow.ports {
        if let Reach::Denied(policies) =
            netpol::evaluate(objects, pod, flow.direction, flow.peer, *port)
        {
            ports.push(match port.number {
                Some(n) => format!("{n}/{}", port.protocol),
                None => "any port".to_owned(),
            });
            by.extend(policies);
            rendered_denies |= matches!(
                netpol::evaluate(rendered, pod, flow.direction, flow.peer, *port),
                Reach::Denied(_)
            );
        }
    }
    (!ports.is_empty()).then_some((ports, by, rendered_denies))
}

fn list(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    items
        .into_iter()
        .map(|i| i.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The policies that decide the tenant's traffic: online, every NetworkPolicy and
/// CiliumNetworkPolicy in its namespaces (a tenant-authored one widens or narrows reach as
/// much as Tenantry's), or, when they could not be listed, the ones Tenantry labels, said in
/// a note; offline, the committed tree's.
fn deciding_policies(o: &Observed<'_>, src: &Source<'_>, c: &mut Check) -> Vec<Value> {
    let labelled = || {
        src.objects
            .iter()
            .filter(|x| matches!(kind_of(x), "NetworkPolicy" | "CiliumNetworkPolicy"))
            .cloned()
            .collect()
    };
    match &o.cluster {
        Ok(view) if !src.offline => match &view.network_policies {
            Ok(all) => all.iter().filter(|p| in_tenant(o, p)).cloned().collect(),
            Err(reason) => {
                c.notes.push(format!(
                    "only the policies Tenantry labels were judged ({reason}): a policy the tenant added is not seen"
                ));
                labelled()
            }
        },
        _ => labelled(),
    }
}

/// Other tenants' namespaces the tenant's pods may send to, by the policy that allows it,
/// under `policies`: a warning naming the policy (the other tenant's own ingress policies
/// still decide, so isolation holds only as long as theirs do).
fn egress_to_other_tenants(
    o: &Observed<'_>,
    policies: &[Value],
    pod: &Endpoint,
    rendered: &[Value],
    c: &mut Check,
) {
    let Ok(view) = &o.cluster else { return };
    let Ok(others) = &view.other_tenant_namespaces else {
        return;
    };
    let label = o.ctx.tenant_label();
    let mut by_policy: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for other in others {
        let name = name_of(other);
        let theirs = other["metadata"]["labels"][label].as_str();
        if o.tenant.namespaces.iter().any(|n| n == name) || theirs == Some(&o.tenant.name) {
            continue;
        }
        let mut peer = Endpoint::in_namespace(name, None);
        peer.namespace_labels.extend(
            other["metadata"]["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))),
        );
        let port = Port {
            protocol: "TCP",
            number: None,
        };
        if let Reach::Allowed(by) = netpol::evaluate(policies, pod, Direction::Egress, &peer, port)
        {
            by_policy.entry(by).or_default().push(name.to_owned());
        }
    }
    let ns = &pod.namespace;
    for (by, namespaces) in by_policy {
        let tenantry = rendered.iter().any(|r| reference(r) == by);
        let fix = if tenantry {
            "the rendered policy opens it: check network.* in tenant.yaml and tenantry.yaml, then `tenantry render --write`".to_owned()
        } else {
            let (kind, name) = by.split_once(' ').unwrap_or(("NetworkPolicy", &by));
            let name = name.rsplit_once('/').map_or(name, |(_, n)| n);
            format!(
                "remove or narrow the egress rule of {by} that selects other tenants' namespaces (`kubectl -n {ns} edit {} {name}`)",
                kind.to_ascii_lowercase()
            )
        };
        let shown: Vec<&String> = namespaces.iter().take(5).collect();
        let more = namespaces.len().saturating_sub(shown.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        c.warn(
            by.clone(),
            format!(
                "{by} lets pods in {ns} send to other tenants' namespaces {}{more}: only those tenants' own ingress policies keep them apart",
                list(shown)
            ),
            fix,
        );
    }
}

/// Network reachability, read from the policies (`netpol`): the tenant's pods reach the
/// platform's DNS, the gateway reaches them, they are not opened to other tenants, and
/// whether they reach OpenBao (External Secrets reads OpenBao from its own namespace, so that
/// flow is noted, not required).
fn network_reachability(o: &Observed<'_>) -> Check {
    let c = Check::new(
        "network-reachability",
        "network policies let DNS and the platform gateway through",
    );
    let src = or_skipped!(source(o, &c));
    let mut c = c;
    let platform = &o.ctx.platform;
    let (kind, egress_policy, ingress_policy) = floor_policies(o);
    let rendered: Vec<Value> = o
        .rendered
        .objects
        .iter()
        .filter(|d| matches!(d.kind, "NetworkPolicy" | "CiliumNetworkPolicy"))
        .map(|d| d.body.clone())
        .collect();
    let dns = &platform.dns;
    let dns_peer = Endpoint::in_namespace(&dns.namespace, Some(dns.pod_labels.clone()));
    let dns_flow = Flow {
        direction: Direction::Egress,
        peer: &dns_peer,
        ports: dns
            .ports
            .iter()
            .flat_map(|p| {
                ["UDP", "TCP"].map(|protocol| Port {
                    protocol,
                    number: Some(*p),
                })
            })
            .collect(),
    };
    let dns_pods = if dns.pod_labels.is_empty() {
        format!("pods in namespace {}", dns.namespace)
    } else {
        format!(
            "pods {} in namespace {}",
            list(dns.pod_labels.iter().map(|(k, v)| format!("{k}={v}"))),
            dns.namespace
        )
    };
    let gateway_peer = platform
        .gateway
        .as_ref()
        .map(|gw| Endpoint::in_namespace(&gw.namespace, None));
    if gateway_peer.is_none() {
        c.notes
            .push("no gateway in tenantry.yaml: ingress from one is not judged".to_owned());
    }
    let policies = deciding_policies(o, &src, &mut c);
    for ns in &o.tenant.namespaces {
        for p in policies.iter().filter(|x| namespace_of(x) == ns) {
            c.looked_at(reference(p));
        }
        let pod = tenant_pod(o, &src, ns);
        let missing = |name: &str| {
            if src.find(kind, Some(ns), name).is_none() {
                " (it is missing)"
            } else {
                ""
            }
        };
        if let Some((ports, by, rendered_denies)) = denied(&policies, &rendered, &pod, &dns_flow) {
            let fix = if rendered_denies {
                "the rendered policies deny it too: check dns.namespace, dns.podLabels and dns.ports in tenantry.yaml against the cluster's DNS pods, then `tenantry render --write`".to_owned()
            } else {
                src.fix(&format!(
                    "the DNS rule in spec.egress of {kind} {ns}/{egress_policy}"
                ))
            };
            c.fail(
                format!("{kind} {ns}/{egress_policy}"),
                format!(
                    "egress to DNS ({dns_pods}) on {} is denied by {}{}: pods in {ns} resolve no names",
                    list(ports),
                    list(by),
                    missing(egress_policy)
                ),
                fix,
            );
        }
        if let (Some(gw), Some(peer)) = (&platform.gateway, &gateway_peer) {
            let flow = Flow {
                direction: Direction::Ingress,
                peer,
                ports: vec![Port {
                    protocol: "TCP",
                    number: None,
                }],
            };
            if let Some((_, by, rendered_denies)) = denied(&policies, &rendered, &pod, &flow) {
                let fix = if rendered_denies {
                    format!(
                        "the rendered policies deny it too: check gateway.namespace in tenantry.yaml ({})",
                        gw.namespace
                    )
                } else {
                    src.fix(&format!(
                        "the gateway namespace {} in spec.ingress of {kind} {ns}/{ingress_policy}",
                        gw.namespace
                    ))
                };
                c.fail(
                    format!("{kind} {ns}/{ingress_policy}"),
                    format!(
                        "ingress from the platform gateway's namespace {} is denied by {}{}: Gateway {}/{} cannot reach the tenant's Services",
                        gw.namespace,
                        list(by),
                        missing(ingress_policy),
                        gw.namespace,
                        gw.name
                    ),
                    fix,
                );
            }
        }
        egress_to_other_tenants(o, &policies, &pod, &rendered, &mut c);
        if o.tenant.openbao {
            openbao_note(o, &policies, &pod, &mut c);
        }
    }
    c
}

/// Whether the tenant's pods reach OpenBao, as a note: External Secrets logs in and reads
/// from its own namespace, so a denial breaks only a workload that talks to OpenBao itself.
fn openbao_note(o: &Observed<'_>, policies: &[Value], pod: &Endpoint, c: &mut Check) {
    let address = &o.ctx.platform.openbao.address;
    let ns = &pod.namespace;
    let Some((bao_ns, port)) = netpol::service_namespace_port(address) else {
        c.notes.push(format!(
            "openbao.address {address} is not an in-cluster Service: egress from {ns} to it is by address, not judged from the policies"
        ));
        return;
    };
    let peer = Endpoint::in_namespace(&bao_ns, None);
    let port = Port {
        protocol: "TCP",
        number: Some(port),
    };
    let note = match netpol::evaluate(policies, pod, Direction::Egress, &peer, port) {
        Reach::Open | Reach::Allowed(_) => {
            format!(
                "pods in {ns} reach OpenBao (namespace {bao_ns}, {}/TCP)",
                port.number.unwrap_or_default()
            )
        }
        Reach::Denied(by) => format!(
            "pods in {ns} cannot reach OpenBao (namespace {bao_ns}, {}/TCP; denied by {}): not needed, External Secrets reads OpenBao from its own namespace; a workload that calls OpenBao itself needs an egress rule to {bao_ns}",
            port.number.unwrap_or_default(),
            list(by)
        ),
    };
    c.notes.push(note);
}

const DELIVERY_KINDS: [&str; 5] = [
    "OCIRepository",
    "GitRepository",
    "Kustomization",
    "HelmRelease",
    "Application",
];

/// A Flux error message, mapped to its cause and fix.
fn flux_cause(o: &Observed<'_>, object: &Value, message: &str) -> String {
    let m = message.to_ascii_lowercase();
    let reconcile = format!(
        "`flux reconcile {} {} -n {}`",
        match kind_of(object) {
            "OCIRepository" => "source oci",
            "GitRepository" => "source git",
            "HelmRelease" => "helmrelease",
            _ => "kustomization",
        },
        name_of(object),
        namespace_of(object)
    );
    if m.contains("verif") || m.contains("signature") {
        format!(
            "publish the artifact through the platform's signing workflow (it must be cosign-signed by the identity in tenantry.yaml), then {reconcile}"
        )
    } else if m.contains("unauthorized")
        || m.contains("401")
        || m.contains("403")
        || m.contains("denied")
    {
        format!(
            "the registry refused the credential: see pull-secret-registries for {}, then {reconcile}",
            o.ctx.platform.pull_secret.name
        )
    } else if m.contains("not found")
        || m.contains("manifest unknown")
        || m.contains("no artifact")
        || m.contains("no matching")
    {
        format!(
            "push an artifact that matches the source's URL and version range, then {reconcile}"
        )
    } else if m.contains("forbidden") {
        format!(
            "the tenant's ServiceAccount may not create what the tree holds: see `tenantry check --tenant {}` (tenant-rbac), then {reconcile}",
            o.tenant.name
        )
    } else {
        format!("fix what the message says, then {reconcile}")
    }
}

/// Delivery readiness: Flux sources and Kustomizations `Ready`, Argo CD Application health
/// and sync, with their last error.
fn delivery(o: &Observed<'_>) -> Check {
    let c = Check::new("delivery", "GitOps delivery is ready");
    let rendered: Vec<_> = o
        .rendered
        .objects
        .iter()
        .filter(|d| DELIVERY_KINDS.contains(&d.kind))
        .collect();
    if rendered.is_empty() {
        return c.skipped("the tenant renders no Flux or Argo CD objects");
    }
    let view = or_skipped!(cluster(o, &c));
    let mut c = c;
    for d in rendered {
        let Some(live) = view.live.iter().find(|l| {
            kind_of(l) == d.kind
                && name_of(l) == d.name
                && l["metadata"]["namespace"].as_str() == d.namespace.as_deref()
        }) else {
            continue; // `objects` reports it missing or not served.
        };
        let r = reference(live);
        c.looked_at(r.clone());
        if d.kind == "Application" {
            let health = live["status"]["health"]["status"].as_str().unwrap_or("");
            let sync = live["status"]["sync"]["status"].as_str().unwrap_or("");
            let errors: Vec<&str> = live["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["type"].as_str().is_some_and(|t| t.contains("Error")))
                .filter_map(|c| c["message"].as_str())
                .collect();
            let sync_fix = format!(
                "fix what the message says, then `argocd app sync {}`",
                d.name
            );
            if !errors.is_empty() {
                c.fail(
                    r.clone(),
                    format!("error: {}", errors.join("; ")),
                    sync_fix.clone(),
                );
            }
            match health {
                "Healthy" | "Suspended" => {}
                "" => c.warn(
                    r.clone(),
                    "no health yet: Argo CD has not reconciled it",
                    "check that Argo CD is running and watches this Application's namespace",
                ),
                "Progressing" => c.warn(
                    r.clone(),
                    "Progressing",
                    "wait, or look at its resources: `argocd app get`",
                ),
                other => c.fail(r.clone(), format!("health {other}"), sync_fix.clone()),
            }
            if sync == "OutOfSync" {
                c.warn(
                    r,
                    "OutOfSync with its source",
                    format!("`argocd app sync {}`", d.name),
                );
            }
            continue;
        }
        match ready(live) {
            Some(("True", _, _)) => {}
            Some(("False", reason, message)) => {
                let text = if message.is_empty() { reason } else { message };
                let fix = flux_cause(o, live, text);
                c.fail(r, format!("not Ready: {text}"), fix);
            }
            Some((_, _, message)) => c.warn(
                r,
                format!("reconciling: {message}"),
                "wait for Flux to finish; re-run `tenantry doctor`",
            ),
            None => c.warn(
                r,
                "no Ready condition yet: Flux has not reconciled it",
                "check that Flux's controllers are running (`flux check`)",
            ),
        }
    }
    c
}

/// Billionths per unit, as [`QuantityValue::nanos`] counts.
const NANOS: i128 = 1_000_000_000;

/// Quota headroom: `status.used` against `status.hard`, a warning above 90%.
fn quota_headroom(o: &Observed<'_>) -> Check {
    let c = Check::new("quota-headroom", "resource quotas have headroom");
    let view = or_skipped!(cluster(o, &c));
    let mut c = c;
    let raise = format!(
        "raise it under spec.quota in tenant.yaml, then `tenantry render --write {0}` and `tenantry apply {0}` (or free some)",
        o.tenant.name
    );
    let own_quotas = |ns: &str| {
        o.rendered
            .objects
            .iter()
            .filter(|d| d.kind == "ResourceQuota" && d.namespace.as_deref() == Some(ns))
            .count() as i128
    };
    for q in view.live.iter().filter(|l| kind_of(l) == "ResourceQuota") {
        let r = reference(q);
        c.looked_at(r.clone());
        let (Some(hard), Some(used)) = (
            q["status"]["hard"].as_object(),
            q["status"]["used"].as_object(),
        ) else {
            c.warn(
                r,
                "no usage recorded yet: the quota controller (kube-controller-manager) has not computed it",
                "check that kube-controller-manager is running",
            );
            continue;
        };
        for (resource, limit) in hard {
            let parse = |v: &Value| v.as_str().and_then(|s| QuantityValue::parse(s).ok());
            let (Some(limit_value), Some(used_value)) =
                (parse(limit), used.get(resource).and_then(parse))
            else {
                continue;
            };
            let (l, u) = (limit_value.nanos(), used_value.nanos());
            if l <= 0 {
                continue; // a zero quota is a ban (e.g. priority classes), not a budget.
            }
            // A `resourcequotas` limit filled by Tenantry's own quotas is a ban on more, not
            // a budget running out.
            if resource == "resourcequotas" && u <= own_quotas(namespace_of(q)) * NANOS {
                continue;
            }
            let text = format!(
                "{resource}: {} used of {}",
                used[resource].as_str().unwrap_or_default(),
                limit.as_str().unwrap_or_default()
            );
            if u >= l {
                c.fail(
                    r.clone(),
                    format!("{text}: exhausted, new objects that need it are refused"),
                    raise.clone(),
                );
            } else if u * 10 > l * 9 {
                c.warn(r.clone(), format!("{text}: above 90%"), raise.clone());
            }
        }
    }
    c
}

/// `[check-id]` tokens of a Tenantry webhook denial (not `[0]` of a field path), once each.
fn bracketed_ids(message: &str) -> Vec<&str> {
    let mut seen = BTreeSet::new();
    message
        .split('[')
        .skip(1)
        .filter_map(|s| s.split_once(']').map(|(id, _)| id))
        .filter(|id| {
            id.starts_with(|ch: char| ch.is_ascii_lowercase())
                && id
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
        })
        .filter(|id| seen.insert(*id))
        .collect()
}

/// The check that refused a pod, its ID and the fix, from a FailedCreate message.
fn refusal(o: &Observed<'_>, owner: &str, message: &str) -> (String, String) {
    let tenant = &o.tenant.name;
    if let Some(rest) = message.split("violates PodSecurity ").nth(1) {
        let level = rest
            .trim_start_matches('"')
            .split(['"', ':'])
            .next()
            .unwrap_or("?");
        let fields = rest.split_once(": ").map_or("", |(_, f)| f);
        return (
            format!("refused by [pod-security] at level {level}: {fields}"),
            format!(
                "change the pod template of {owner} to meet Pod Security {level} (`tenantry check --tenant {tenant}` on its manifest names each field and its fix); if the tenant must run it, raise spec.podSecurity in tenant.yaml"
            ),
        );
    }
    if message.contains("exceeded quota") {
        return (
            format!("refused by [resource-quota]: {message}"),
            format!(
                "see quota-headroom above: raise spec.quota in tenant.yaml or lower the requests of {owner}"
            ),
        );
    }
    let ids = bracketed_ids(message);
    if message.contains("admission webhook") || !ids.is_empty() {
        let ids = if ids.is_empty() {
            "the webhook".to_owned()
        } else {
            ids.iter()
                .map(|i| format!("[{i}]"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return (
            format!("refused by {ids}: {message}"),
            format!(
                "change {owner} as the message says (`tenantry check --tenant {tenant}` on its manifest gives each field and its fix)"
            ),
        );
    }
    if message.contains("ValidatingAdmissionPolicy") {
        return (
            format!("refused by a ValidatingAdmissionPolicy: {message}"),
            format!("change {owner} as the message says"),
        );
    }
    (
        format!("refused: {message}"),
        format!("change {owner} as the message says"),
    )
}

/// The workload a pod-creating controller belongs to: a ReplicaSet's Deployment, or itself.
fn owner_of(workloads: &[Value], kind: &str, ns: &str, name: &str) -> String {
    let object = workloads
        .iter()
        .find(|w| kind_of(w) == kind && namespace_of(w) == ns && name_of(w) == name);
    let owner = object.and_then(|w| {
        w["metadata"]["ownerReferences"]
            .as_array()?
            .iter()
            .find(|r| r["controller"] == true)
    });
    match owner {
        Some(r) => format!(
            "{} {ns}/{} ({kind} {name})",
            r["kind"].as_str().unwrap_or("?"),
            r["name"].as_str().unwrap_or("?")
        ),
        None => format!("{kind} {ns}/{name}"),
    }
}

/// Pods refused by admission, with the refusing check's ID, from FailedCreate events.
fn admission_refusals(o: &Observed<'_>) -> Check {
    let c = Check::new("admission-refusals", "no pod refused by admission");
    let view = or_skipped!(cluster(o, &c));
    let events = or_skipped!(part(&view.events, &c));
    let workloads = view.workloads.as_deref().ok();
    let mut c = c;
    // The latest FailedCreate per object that still exists.
    let mut latest: BTreeMap<(String, String, String), (&str, &str)> = BTreeMap::new();
    for e in events.iter().filter(|e| in_tenant(o, e)) {
        if e["reason"] != "FailedCreate" {
            continue;
        }
        let involved = &e["involvedObject"];
        let key = (
            involved["kind"].as_str().unwrap_or("").to_owned(),
            namespace_of(e).to_owned(),
            involved["name"].as_str().unwrap_or("").to_owned(),
        );
        let exists = workloads.is_none_or(|w| {
            w.iter()
                .any(|w| kind_of(w) == key.0 && namespace_of(w) == key.1 && name_of(w) == key.2)
        });
        if !exists {
            continue;
        }
        let time = e["lastTimestamp"]
            .as_str()
            .or_else(|| e["eventTime"].as_str())
            .or_else(|| e["metadata"]["creationTimestamp"].as_str())
            .unwrap_or("");
        let message = e["message"].as_str().unwrap_or("");
        let entry = latest.entry(key).or_insert((time, message));
        if time >= entry.0 {
            *entry = (time, message);
        }
    }
    for ((kind, ns, name), (_, message)) in latest {
        let owner = owner_of(workloads.unwrap_or_default(), &kind, &ns, &name);
        c.looked_at(owner.clone());
        let (cause, fix) = refusal(o, &owner, message);
        c.fail(owner, cause, fix);
    }
    c
}

/// Pods stuck in `Pending`: unschedulable, image pulls failing, or never started.
fn pods_pending(o: &Observed<'_>) -> Check {
    let c = Check::new("pods-pending", "no pod stuck Pending");
    let view = or_skipped!(cluster(o, &c));
    let workloads = or_skipped!(part(&view.workloads, &c));
    let mut c = c;
    for pod in workloads
        .iter()
        .filter(|w| kind_of(w) == "Pod" && in_tenant(o, w))
    {
        let r = reference(pod);
        c.looked_at(r.clone());
        if pod["status"]["phase"] != "Pending" {
            continue;
        }
        let waiting: Vec<(&str, &str)> = ["initContainerStatuses", "containerStatuses"]
            .iter()
            .filter_map(|k| pod["status"][*k].as_array())
            .flatten()
            .filter_map(|s| {
                let w = &s["state"]["waiting"];
                Some((w["reason"].as_str()?, w["message"].as_str().unwrap_or("")))
            })
            .collect();
        if let Some((reason, message)) = waiting
            .iter()
            .find(|(r, _)| matches!(*r, "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName"))
        {
            c.fail(
                r,
                format!("{reason}: {message}"),
                "see pull-secret-registries and service-account-pull-secret above, and check the image reference",
            );
            continue;
        }
        let scheduled = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "PodScheduled");
        if let Some(s) = scheduled.filter(|s| s["status"] == "False") {
            c.fail(
                r,
                format!(
                    "not schedulable: {}",
                    s["message"].as_str().or(s["reason"].as_str()).unwrap_or("")
                ),
                "free capacity or correct its nodeSelector, affinity or tolerations (within the tenant's spec.placement)",
            );
        } else if pod["spec"]["nodeName"].as_str().is_none() {
            c.warn(
                r,
                "not scheduled yet",
                "check that kube-scheduler is running",
            );
        } else {
            c.warn(
                r,
                format!(
                    "assigned to node {} but not started{}",
                    pod["spec"]["nodeName"].as_str().unwrap_or("?"),
                    waiting
                        .first()
                        .map(|(r, m)| format!(": {r} {m}"))
                        .unwrap_or_default()
                ),
                "check the node's kubelet and the pod's events (`kubectl describe pod`)",
            );
        }
    }
    c
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod offline_tests;
