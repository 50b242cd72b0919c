//! The Multi-Tenancy Benchmarks' behavioural cases, and which layer refused each.
//!
//! RBAC answers say what a tenant may *ask*; these cases show what the API server *does*
//! when it asks: each is a write the tenant must not get through, sent as the tenant with
//! server-side dry-run (nothing is stored), so the whole admission chain runs — RBAC,
//! PodSecurity, LimitRanger, the admission policies and webhooks, ResourceQuota. Knowing
//! the layer matters as much as the refusal: a privileged pod refused only by a webhook
//! becomes admitted the day the webhook is down (`failurePolicy: Ignore`) or removed.
//!
//! Every pod case is a pod that the restricted Pod Security level admits except for the one
//! thing the case is about, so a refusal is about that thing. The edits start from the
//! objects Tenantry rendered for the tenant, changed in one field.

use serde::Serialize;
use serde_json::{Value, json};
use tenantry_core::{DesiredObject, Layer as ApplyLayer, Rendered, ResolvedTenant};

/// One behavioural case.
#[derive(Clone, Debug)]
pub struct MtbCase {
    /// Stable ID, e.g. `privileged`.
    pub id: &'static str,
    /// The benchmark it comes from.
    pub benchmark: &'static str,
    /// What is attempted, in a few words.
    pub title: &'static str,
    /// The object server-side applied (dry-run) as the tenant.
    pub object: DesiredObject,
    /// The tenant namespace it is about (a Namespace edit included); `None` for the
    /// cluster-scoped cases.
    pub namespace: Option<String>,
}

/// The layer of the API server that refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refuser {
    /// The authorizer (403 `cannot <verb> resource`).
    Rbac,
    /// The PodSecurity admission plugin.
    PodSecurity,
    /// The LimitRanger admission plugin.
    LimitRange,
    /// The ResourceQuota admission plugin.
    Quota,
    /// A ValidatingAdmissionPolicy (`by` names it).
    AdmissionPolicy,
    /// A validating admission webhook (`by` names it).
    Webhook,
    /// Object validation (422): the object itself is malformed, which proves nothing.
    Validation,
    /// A refusal none of the above explains.
    Other,
}

impl Refuser {
    /// As printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Refuser::Rbac => "RBAC",
            Refuser::PodSecurity => "PodSecurity",
            Refuser::LimitRange => "LimitRange",
            Refuser::Quota => "ResourceQuota",
            Refuser::AdmissionPolicy => "ValidatingAdmissionPolicy",
            Refuser::Webhook => "webhook",
            Refuser::Validation => "validation",
            Refuser::Other => "other",
        }
    }
}

/// What the API server did with a case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Attempt {
    /// Admitted: a finding.
    Allowed,
    /// Refused.
    Refused {
        /// The refusing layer.
        layer: Refuser,
        /// The webhook or admission policy, when one refused.
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// The API server's message.
        message: String,
    },
}

/// The text between the first pair of `open`/`close` after `prefix`.
fn quoted_after(message: &str, prefix: &str, quote: char) -> Option<String> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    let rest = rest.strip_prefix(quote)?;
    Some(rest[..rest.find(quote)?].to_owned())
}

/// Which layer refused, read from the API server's Status (`code`, `message`). Admission
/// webhooks and policies are recognised first: their messages are free text and may quote
/// anything, including another layer's words.
pub fn classify(code: u16, message: &str) -> Attempt {
    let refused = |layer, by: Option<String>| Attempt::Refused {
        layer,
        by,
        message: message.to_owned(),
    };
    if let Some(name) = quoted_after(message, "admission webhook ", '"')
        .filter(|_| message.contains("denied the request"))
    {
        return refused(Refuser::Webhook, Some(name));
    }
    if let Some(name) = quoted_after(message, "ValidatingAdmissionPolicy ", '\'')
        .filter(|_| message.contains("denied request"))
    {
        return refused(Refuser::AdmissionPolicy, Some(name));
    }
    if code == 422 {
        return refused(Refuser::Validation, None);
    }
    if code != 403 {
        return refused(Refuser::Other, None);
    }
    if message.contains("violates PodSecurity") {
        refused(Refuser::PodSecurity, None)
    } else if message.contains("exceeded quota") || message.contains("must specify") {
        refused(Refuser::Quota, None)
    } else if message.contains(" cannot ") && message.contains("resource \"") {
        refused(Refuser::Rbac, None)
    } else if message.contains(" usage per ") || message.contains("ratio per ") {
        refused(Refuser::LimitRange, None)
    } else {
        refused(Refuser::Other, None)
    }
}

const POD_IMAGE: &str = "registry.k8s.io/pause:3.10";

/// A pod the restricted level admits, with `edit` applied to it.
pub(crate) fn restricted_pod(
    namespace: &str,
    id: &str,
    edit: impl FnOnce(&mut Value),
) -> DesiredObject {
    let mut body = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": format!("tenantry-audit-{id}"), "namespace": namespace },
        "spec": {
            "securityContext": {
                "runAsNonRoot": true, "runAsUser": 65532,
                "seccompProfile": { "type": "RuntimeDefault" },
            },
            "containers": [{
                "name": "c", "image": POD_IMAGE, "imagePullPolicy": "Always",
                "resources": {
                    "requests": { "cpu": "10m", "memory": "16Mi" },
                    "limits": { "cpu": "10m", "memory": "16Mi" },
                },
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "capabilities": { "drop": ["ALL"] },
                },
            }],
        },
    });
    edit(&mut body);
    desired("v1", "Pod", Some(namespace), body)
}

fn service(namespace: &str, id: &str, kind: &str) -> DesiredObject {
    desired(
        "v1",
        "Service",
        Some(namespace),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": { "name": format!("tenantry-audit-{id}"), "namespace": namespace },
            "spec": { "type": kind, "selector": { "app": "x" }, "ports": [{ "port": 80 }] },
        }),
    )
}

/// The first container of a pod body.
fn container(body: &mut Value) -> &mut Value {
    &mut body["spec"]["containers"][0]
}

fn desired(
    api_version: &'static str,
    kind: &'static str,
    namespace: Option<&str>,
    body: Value,
) -> DesiredObject {
    DesiredObject {
        layer: ApplyLayer::Delivery,
        api_version,
        kind,
        namespace: namespace.map(str::to_owned),
        name: body["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body,
    }
}

/// The rendered object of `kind` in `namespace` (the first, in apply order), edited.
fn edited(
    rendered: &Rendered,
    kind: &str,
    namespace: Option<&str>,
    edit: impl FnOnce(&mut Value),
) -> Option<DesiredObject> {
    let mut object = rendered
        .objects
        .iter()
        .find(|o| match kind {
            "Namespace" => o.kind == kind && Some(o.name.as_str()) == namespace,
            _ => o.kind == kind && o.namespace.as_deref() == namespace,
        })?
        .clone();
    edit(&mut object.body);
    Some(object)
}

/// The cases for a tenant: the namespaced ones in each of its namespaces (a binding or an
/// exemption can differ from one to the next), then the cluster-scoped ones once. An edit
/// case needs the rendered object it edits, and is left out where the tenant renders none
/// (no quota, say).
pub fn cases(tenant: &ResolvedTenant, rendered: &Rendered) -> Vec<MtbCase> {
    let mut out: Vec<MtbCase> = tenant
        .namespaces
        .iter()
        .flat_map(|ns| namespaced_cases(ns, rendered))
        .collect();
    out.extend(cluster_cases(tenant));
    out
}

/// The cases in one namespace.
fn namespaced_cases(ns: &str, rendered: &Rendered) -> Vec<MtbCase> {
    let case = |id, benchmark, title, object| MtbCase {
        id,
        benchmark,
        title,
        object,
        namespace: Some(ns.to_owned()),
    };
    let mut out = vec![
        case(
            "privileged",
            "MTB-PL1-BC-CPI-5 block privileged containers",
            "a privileged container",
            restricted_pod(ns, "privileged", |b| {
                let sc = &mut container(b)["securityContext"];
                sc["privileged"] = json!(true);
                sc["allowPrivilegeEscalation"] = json!(true);
            }),
        ),
        case(
            "host-namespaces",
            "MTB-PL1-BC-HI-3 block host PID/IPC/network",
            "a pod in the host's network, PID and IPC namespaces",
            restricted_pod(ns, "host-namespaces", |b| {
                for field in ["hostNetwork", "hostPID", "hostIPC"] {
                    b["spec"][field] = json!(true);
                }
            }),
        ),
        case(
            "host-path",
            "MTB-PL1-BC-HI-2 block hostPath volumes",
            "a pod mounting the node's /etc",
            restricted_pod(ns, "host-path", |b| {
                b["spec"]["volumes"] = json!([{ "name": "host", "hostPath": { "path": "/etc" } }]);
                container(b)["volumeMounts"] = json!([{ "name": "host", "mountPath": "/host" }]);
            }),
        ),
        case(
            "host-port",
            "MTB-PL1-BC-HI-1 block host ports",
            "a container listening on a host port",
            restricted_pod(ns, "host-port", |b| {
                container(b)["ports"] = json!([{ "containerPort": 8080, "hostPort": 8080 }]);
            }),
        ),
        case(
            "capabilities",
            "MTB-PL1-BC-CPI-3 block add capabilities",
            "a container adding SYS_ADMIN",
            restricted_pod(ns, "capabilities", |b| {
                container(b)["securityContext"]["capabilities"]["add"] = json!(["SYS_ADMIN"]);
            }),
        ),
        case(
            "run-as-root",
            "MTB-PL1-BC-CPI-8 require run as non-root user",
            "a pod running as root (uid 0)",
            restricted_pod(ns, "run-as-root", |b| {
                b["spec"]["securityContext"]["runAsNonRoot"] = json!(false);
                b["spec"]["securityContext"]["runAsUser"] = json!(0);
            }),
        ),
        case(
            "nodeport-service",
            "MTB-PL1-BC-HI-4 block NodePort services",
            "a NodePort Service",
            service(ns, "nodeport", "NodePort"),
        ),
        case(
            "loadbalancer-service",
            "block LoadBalancer services",
            "a LoadBalancer Service",
            service(ns, "loadbalancer", "LoadBalancer"),
        ),
    ];
    let edits = [
        (
            "edit-quota",
            "MTB-PL1-CC-TI-2 block modification of resource quotas",
            "raising its ResourceQuota",
            edited(rendered, "ResourceQuota", Some(ns), |b| {
                b["spec"]["hard"]["pods"] = json!("100000");
            }),
        ),
        (
            "edit-limit-range",
            "MTB-PL1-CC-FNS-2 configure namespace object limits",
            "removing its LimitRange's maximums",
            edited(rendered, "LimitRange", Some(ns), |b| {
                if let Some(limits) = b["spec"]["limits"].as_array_mut() {
                    for limit in limits {
                        if let Some(l) = limit.as_object_mut() {
                            l.remove("max");
                        }
                    }
                }
            }),
        ),
        (
            "edit-network-policy",
            "MTB-PL1-CC-TI-1 block multitenant resources (network isolation)",
            "opening its default-deny NetworkPolicy to all ingress",
            edited(rendered, "NetworkPolicy", Some(ns), |b| {
                b["spec"]["ingress"] = json!([{}]);
            }),
        ),
        (
            "edit-namespace-labels",
            "MTB-PL1-CC-TI-1 block modification of namespace labels",
            "setting its namespace's Pod Security level to privileged",
            edited(rendered, "Namespace", Some(ns), |b| {
                b["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = json!("privileged");
            }),
        ),
    ];
    out.extend(
        edits
            .into_iter()
            .filter_map(|(id, benchmark, title, object)| Some(case(id, benchmark, title, object?))),
    );
    out
}

/// The cluster-scoped cases: the same objects wherever the tenant lives.
fn cluster_cases(tenant: &ResolvedTenant) -> Vec<MtbCase> {
    let ns = tenant.primary_namespace();
    let case = |id, benchmark, title, object| MtbCase {
        id,
        benchmark,
        title,
        object,
        namespace: None,
    };
    let name = format!("tenantry-audit-{}", tenant.name);
    vec![
        case(
            "create-cluster-role",
            "MTB-PL1-CC-CPI-1 block access to cluster resources",
            "creating a ClusterRole",
            desired(
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                None,
                json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                    "metadata": { "name": name },
                    "rules": [{ "apiGroups": [""], "resources": ["secrets"], "verbs": ["get"] }],
                }),
            ),
        ),
        case(
            "create-cluster-role-binding",
            "MTB-PL1-CC-CPI-1 block access to cluster resources",
            "binding itself to cluster-admin",
            desired(
                "rbac.authorization.k8s.io/v1",
                "ClusterRoleBinding",
                None,
                json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": { "name": name },
                    "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
                    "subjects": [{ "kind": "ServiceAccount", "name": tenant.name, "namespace": ns }],
                }),
            ),
        ),
    ]
}

/// One case sent as one identity, and what the API server did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CaseRun {
    /// The case's ID.
    pub id: &'static str,
    /// The benchmark it comes from.
    pub benchmark: &'static str,
    /// What was attempted.
    pub title: &'static str,
    /// Who sent it, as printed (`User alice`).
    pub identity: String,
    /// The namespace it was sent to; `None` for a cluster-scoped case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The object, as `Kind namespace/name`.
    pub object: String,
    /// The result.
    #[serde(flatten)]
    pub attempt: Attempt,
}

/// One outcome of a case and who met it, for a reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome<'r> {
    /// The first run with this outcome (its message is one example).
    pub run: &'r CaseRun,
    /// `identity in namespace` for each run with this outcome; empty when every run of the
    /// case had it.
    pub who: Vec<String>,
}

/// A case's runs folded: one outcome when every identity in every namespace met the same
/// (the usual, clean case), else one per outcome naming who and where met it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoldedCase<'r> {
    /// The case's ID.
    pub id: &'static str,
    /// What was attempted.
    pub title: &'static str,
    /// How many runs (identities × namespaces).
    pub runs: usize,
    /// The outcomes, allowed first.
    pub outcomes: Vec<Outcome<'r>>,
}

/// What makes two runs' outcomes the same: admitted, or refused by the same layer and
/// webhook/policy (the message names the namespace, so it differs anyway).
fn outcome_key(a: &Attempt) -> (bool, Option<Refuser>, Option<&str>) {
    match a {
        Attempt::Allowed => (true, None, None),
        Attempt::Refused { layer, by, .. } => (false, Some(*layer), by.as_deref()),
    }
}

/// Fold the runs by case (in first-run order), so one identity × namespace that differs
/// stands out in a screen of refusals.
pub fn fold(runs: &[CaseRun]) -> Vec<FoldedCase<'_>> {
    let mut out: Vec<FoldedCase<'_>> = Vec::new();
    let mut groups: Vec<Vec<&CaseRun>> = Vec::new();
    for run in runs {
        let i = match out.iter().position(|c| c.id == run.id) {
            Some(i) => i,
            None => {
                out.push(FoldedCase {
                    id: run.id,
                    title: run.title,
                    runs: 0,
                    outcomes: Vec::new(),
                });
                groups.push(Vec::new());
                out.len() - 1
            }
        };
        out[i].runs += 1;
        groups[i].push(run);
    }
    for (case, runs) in out.iter_mut().zip(groups) {
        let mut outcomes: Vec<(&CaseRun, Vec<&CaseRun>)> = Vec::new();
        for run in runs {
            match outcomes
                .iter_mut()
                .find(|(first, _)| outcome_key(&first.attempt) == outcome_key(&run.attempt))
            {
                Some((_, all)) => all.push(run),
                None => outcomes.push((run, vec![run])),
            }
        }
        outcomes.sort_by_key(|(first, _)| first.attempt != Attempt::Allowed);
        let uniform = outcomes.len() == 1;
        case.outcomes = outcomes
            .into_iter()
            .map(|(run, all)| Outcome {
                run,
                who: if uniform {
                    Vec::new()
                } else {
                    all.iter()
                        .map(|r| match &r.namespace {
                            Some(ns) => format!("{} in {ns}", r.identity),
                            None => r.identity.clone(),
                        })
                        .collect()
                },
            })
            .collect();
    }
    out
}
