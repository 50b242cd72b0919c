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
        .find(|o| {
            o.kind == kind && o.namespace.as_deref() == namespace.filter(|_| kind != "Namespace")
        })?
        .clone();
    edit(&mut object.body);
    Some(object)
}

/// The cases for a tenant, in its primary namespace. An edit case needs the rendered object
/// it edits, and is left out for a tenant that renders none (no quota, say).
pub fn cases(tenant: &ResolvedTenant, rendered: &Rendered) -> Vec<MtbCase> {
    let ns = tenant.primary_namespace();
    let case = |id, benchmark, title, object| MtbCase {
        id,
        benchmark,
        title,
        object,
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
            edited(rendered, "Namespace", None, |b| {
                b["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = json!("privileged");
            })
            .filter(|o| o.name == ns),
        ),
    ];
    out.extend(
        edits
            .into_iter()
            .filter_map(|(id, benchmark, title, object)| Some(case(id, benchmark, title, object?))),
    );
    let name = format!("tenantry-audit-{}", tenant.name);
    out.push(case(
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
    ));
    out.push(case(
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
    ));
    out
}
