//! The objects that install the operator: `tenantry operator manifests`, and the kustomize
//! base under `deploy/operator/` generated from them.
//!
//! The ClusterRole is the part worth reading. The operator writes the isolation floor of
//! every tenant (namespaces, quotas, network policies, RoleBindings), so a broad role would
//! make it the easiest way to own the cluster. Every rule names its resources and verbs and
//! says why; there is no `*` and no `escalate`. RoleBindings to the tenants' ClusterRoles
//! are allowed by `bind` on exactly those roles (the platform's default role, Kubernetes'
//! user-facing `admin`/`edit`/`view`, and the roles its grants name), so the operator cannot
//! hand out `cluster-admin` or any role it was not told about even if its own code were
//! subverted. The platform-wide tenant-rbac ClusterRoles are the one place the operator
//! writes RBAC rules: the API server lets only a holder of every permission in a role (or of
//! `escalate`) write it, so the operator holds exactly the rules those roles grant, as
//! rendered from the platform's tenantry.yaml, and may patch or delete ClusterRoles by
//! their names only. Offboarding's final scan for leftovers lists every type; types this role may
//! not list are reported as not checked rather than granted.
//!
//! The same documents are printed, written as the kustomize base and as the Helm chart
//! ([`helm`]), and both are checked stale-free by a test, so neither can drift from the code.

use std::fmt::Write as _;

use kube::CustomResourceExt;
use serde_json::{Value, json};
use tenantry_api::{Platform, Tenant, platform::GeneratorKind};
use tenantry_core::{PlatformContext, document, render, resolve::default_cluster_role};

pub mod helm;

/// Name of the Deployment, ServiceAccount, ClusterRole and Lease.
pub const NAME: &str = "tenantry-operator";
/// Namespace installed into by default.
pub const NAMESPACE: &str = "tenantry-system";
/// The ConfigMap holding `tenantry.yaml`.
pub const CONFIG_MAP: &str = "tenantry-config";
/// Port of `/metrics`, `/healthz`, `/readyz`.
pub const METRICS_PORT: u16 = 8080;
/// The image, without its tag.
pub const IMAGE_REPOSITORY: &str = "ghcr.io/tenantry/tenantry";

/// The image tag of this version.
pub fn image_tag() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

/// What varies between installations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestOptions {
    /// Namespace to install into.
    pub namespace: String,
    /// Container image whose entrypoint is `tenantry`.
    pub image: String,
    /// `tenantry.yaml`; the built-in defaults when `None`.
    pub platform_config: Option<String>,
    /// Replicas (one leads, the others stand by).
    pub replicas: u32,
    /// Name of the ConfigMap holding `tenantry.yaml`.
    pub config_map: String,
    /// The operator's `TENANTRY_LOG` (a level, or `tracing` directives).
    pub log_level: String,
    /// The container's `resources` (requests and limits).
    pub resources: Value,
    /// OpenBao's address and the Kubernetes-auth role the operator logs in as with its own
    /// ServiceAccount, for tenants with `secrets.openbao`; none when `None`.
    pub openbao: Option<(String, String)>,
}

impl Default for ManifestOptions {
    fn default() -> Self {
        Self {
            namespace: NAMESPACE.to_owned(),
            image: format!("{IMAGE_REPOSITORY}:{}", image_tag()),
            platform_config: None,
            replicas: 2,
            config_map: CONFIG_MAP.to_owned(),
            log_level: "info".to_owned(),
            resources: json!({"requests": {"cpu": "100m", "memory": "64Mi"},
                              "limits": {"memory": "256Mi"}}),
            openbao: None,
        }
    }
}

/// One document, the comment printed above it, and, for a role, why each rule is there.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// Printed as `# ...` lines above the object.
    pub comment: String,
    /// The object.
    pub object: Value,
    /// One reason per entry of the object's `rules`, printed above it.
    pub rule_reasons: Vec<&'static str>,
}

fn doc(comment: impl Into<String>, object: Value) -> Document {
    Document {
        comment: comment.into(),
        object,
        rule_reasons: Vec::new(),
    }
}

fn labels() -> Value {
    // part-of, not managed-by: managed-by=tenantry marks tenants' rendered objects, which
    // pruning and offboarding delete.
    json!({"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "tenantry"})
}

const DEFAULT_PLATFORM: &str = "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\n";

/// Every object, in apply order. Fails when the platform configuration is invalid (it is
/// read to know which ClusterRoles tenants are bound to).
pub fn documents(opts: &ManifestOptions) -> Result<Vec<Document>, String> {
    let text = opts.platform_config.as_deref().unwrap_or(DEFAULT_PLATFORM);
    let platform = document::parse_platform(text).map_err(|e| e.in_file(&"tenantry.yaml"))?;
    let ctx = PlatformContext::new(platform).map_err(|e| format!("tenantry.yaml: {e}"))?;
    let ns = opts.namespace.as_str();
    let meta = |name: &str| json!({"name": name, "namespace": ns, "labels": labels()});
    let mut crd = serde_json::to_value(Tenant::crd()).map_err(|e| e.to_string())?;
    if let Some(m) = crd["metadata"].as_object_mut() {
        m.insert("labels".into(), labels());
    }
    let mut docs = vec![
        doc(
            "The Tenant kind the operator acts on (`tenantry crd`).",
            crd,
        ),
        doc(
            "The operator's namespace, at the restricted Pod Security level it runs at.",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
                "app.kubernetes.io/part-of": "tenantry",
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            }}}),
        ),
        doc(
            "The identity the operator runs as.",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(NAME),
                   "automountServiceAccountToken": true}),
        ),
        doc(
            "The platform's tenantry.yaml. Editing it re-queues every tenant.",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(&opts.config_map),
                   "data": {"tenantry.yaml": text}}),
        ),
    ];
    docs.push(cluster_role(&ctx));
    docs.push(doc(
        "Binds the ClusterRole above to the operator's ServiceAccount.",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": NAME, "labels": labels()},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
               "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": ns}]}),
    ));
    docs.push(Document {
        comment: "What the operator may do in its own namespace only.".into(),
        object: json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": meta(NAME),
        "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [opts.config_map],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "resourceNames": [NAME], "verbs": ["get", "list", "watch", "patch", "update"]},
        ]}),
        rule_reasons: vec![
            "Read tenantry.yaml, and watch it so that a change re-queues every tenant.",
            "Create the leader-election Lease on first start (create cannot be limited by name).",
            "Take, renew and release the leader-election Lease: only the leader writes.",
        ],
    });
    docs.push(doc(
        "Binds the Role above to the operator's ServiceAccount.",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": meta(NAME),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
               "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": ns}]}),
    ));
    docs.push(deployment(opts));
    docs.push(doc(
        "Keeps one replica up through node drains, so a leader is always there to take over.",
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(NAME),
               "spec": {"maxUnavailable": 1,
                        "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}}}}),
    ));
    docs.push(doc(
        "Prometheus scrapes /metrics here.",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(&format!("{NAME}-metrics")),
               "spec": {"selector": {"app.kubernetes.io/name": NAME},
                        "ports": [{"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics"}]}}),
    ));
    Ok(docs)
}

/// What the operator renders and deletes, by API group, resources and why.
const RENDERED: [(&str, &[&str], &str); 10] = [
    (
        "",
        &["namespaces"],
        "Each tenant's namespaces: created with their Pod Security labels, deleted when the tenant is offboarded.",
    ),
    (
        "",
        &["resourcequotas", "limitranges"],
        "The tenant's quota and container limits in each namespace.",
    ),
    (
        "",
        &["serviceaccounts"],
        "The tenant's ServiceAccount, deleted first when offboarding so every token issued for it dies at once.",
    ),
    (
        "networking.k8s.io",
        &["networkpolicies"],
        "The default-deny network policy and the tenant's allowed peers.",
    ),
    (
        "cilium.io",
        &["ciliumnetworkpolicies"],
        "The same network policy for platforms on Cilium.",
    ),
    (
        "external-secrets.io",
        &["secretstores", "externalsecrets"],
        "The tenant's SecretStore (OpenBao) and its registry pull secret.",
    ),
    (
        "source.toolkit.fluxcd.io",
        &["ocirepositories", "gitrepositories"],
        "Flux delivery: the artifact or repository a tenant deploys from.",
    ),
    (
        "kustomize.toolkit.fluxcd.io",
        &["kustomizations"],
        "Flux delivery: the Kustomization that applies it as the tenant's ServiceAccount.",
    ),
    (
        "tenantry.dev",
        &["guardrailparameters"],
        "policies.vap.tenantParameters: each tenant's GuardrailParameters, the values its per-tenant ValidatingAdmissionPolicies judge it by. Held whatever the toggle, since the operator lists every kind a tenant can render to prune it once turned off.",
    ),
    (
        "admissionregistration.k8s.io",
        &["validatingadmissionpolicybindings"],
        "policies.vap.tenantParameters: each tenant's bindings of the per-tenant ValidatingAdmissionPolicies to its namespaces. A binding can only add refusals; the policies themselves are not the operator's (`tenantry policy vap` installs them).",
    ),
];

fn cluster_role(ctx: &PlatformContext) -> Document {
    let platform = &ctx.platform;
    let write = ["get", "list", "watch", "create", "patch", "delete"];
    let mut rules = Vec::new();
    let mut reasons = Vec::new();
    for (group, resources, why) in RENDERED {
        rules.push(json!({"apiGroups": [group], "resources": resources, "verbs": write}));
        reasons.push(why);
    }
    rules.push(json!({"apiGroups": ["argoproj.io"], "resources": ["appprojects", "applications"], "verbs": write}));
    reasons.push(
        "Argo CD delivery: the tenant's AppProject and Application (in the Argo CD namespace).",
    );
    rules.push(json!({"apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["rolebindings", "clusterrolebindings"], "verbs": write}));
    reasons.push("Bind the tenant's owners and ServiceAccount to its ClusterRole in each namespace, and the platform's grants. Creating a binding also needs the `bind` rule below.");
    let mut roles: Vec<String> = vec![
        default_cluster_role(platform),
        "admin".into(),
        "edit".into(),
        "view".into(),
    ];
    roles.extend(
        platform
            .grants
            .values()
            .flat_map(|g| &g.bindings)
            .map(|b| b.cluster_role.clone()),
    );
    roles.sort();
    roles.dedup();
    rules.push(
        json!({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
        "resourceNames": roles, "verbs": ["bind"]}),
    );
    reasons.push("`bind` on exactly the ClusterRoles tenants are bound to (the platform's default, admin/edit/view, and its grants' roles), instead of `escalate` or holding every permission those roles grant: a binding to any other role, cluster-admin included, is refused by the API server.");
    platform_rules(ctx, &mut rules, &mut reasons);
    flux_proxy_rules(ctx, &mut rules, &mut reasons);
    rules.push(
        json!({"apiGroups": ["tenantry.dev"], "resources": ["tenants"],
        "verbs": ["get", "list", "watch", "patch"]}),
    );
    reasons.push("Watch Tenants, and add or remove the tenantry.dev/offboard finalizer.");
    rules.push(
        json!({"apiGroups": ["tenantry.dev"], "resources": ["tenants/status"],
        "verbs": ["get", "patch"]}),
    );
    reasons.push("Write each Tenant's status (server-side apply, field manager tenantry-status).");
    rules.push(
        json!({"apiGroups": ["events.k8s.io"], "resources": ["events"],
        "verbs": ["create", "patch"]}),
    );
    reasons.push(
        "Events on a Tenant for failed applies and repaired drift (`kubectl describe tenant`).",
    );
    Document {
        comment: "What the operator may do cluster-wide. Each rule says why; nothing is `*`."
            .into(),
        object: json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": NAME, "labels": labels()}, "rules": rules}),
        rule_reasons: reasons,
    }
}

/// The rules the platform-wide components need (`tenantry apply` converges them before any
/// tenant; the operator does on start and on every change of tenantry.yaml).
fn platform_rules(ctx: &PlatformContext, rules: &mut Vec<Value>, reasons: &mut Vec<&'static str>) {
    rules.push(
        json!({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
        "verbs": ["list", "watch", "create"]}),
    );
    reasons.push("Find the platform's tenant-rbac ClusterRoles by their component label, and create them (create and list cannot be limited by name).");
    rules.push(
        json!({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
        "resourceNames": every_tenant_edit_role(), "verbs": ["get", "patch", "delete"]}),
    );
    reasons.push("Update and prune the tenant-rbac ClusterRoles, by name: every one Tenantry can render, so a role the platform turns off can still be pruned; no other ClusterRole (edit, admin, cluster-admin) can be changed.");
    // What the tenant-rbac roles grant, rule for rule, as this platform renders them.
    let mut held: Vec<Value> = Vec::new();
    for component in render::platform::render_platform(ctx) {
        for object in component.objects.iter().filter(|o| o.kind == "ClusterRole") {
            for rule in object.body["rules"].as_array().into_iter().flatten() {
                if !held.contains(rule) {
                    held.push(rule.clone());
                }
            }
        }
    }
    for rule in held {
        rules.push(rule);
        reasons.push("Held only because the tenant-rbac ClusterRoles grant it (aggregated into edit and admin, which tenants are bound to): the API server lets a ClusterRole be written only by someone who holds every permission in it, or has `escalate`. Holding exactly these is narrower than `escalate`, which would let the operator write any role, cluster-admin's rules included. Regenerate these manifests when tenantRbac changes.");
    }
    let name = &ctx.platform.pull_secret.name;
    rules.push(
        json!({"apiGroups": ["external-secrets.io"], "resources": ["clusterexternalsecrets"],
        "verbs": ["list", "watch", "create"]}),
    );
    reasons.push("Find the fanned-out pull secret (pullSecret.fanOut) by its component label, and create it (create and list cannot be limited by name).");
    rules.push(
        json!({"apiGroups": ["external-secrets.io"], "resources": ["clusterexternalsecrets"],
        "resourceNames": [name], "verbs": ["get", "patch", "delete"]}),
    );
    reasons
        .push("Update and prune the fanned-out pull secret, by its name (pullSecret.name) only.");
}

/// The rules Flux's proxy kubeconfigs need (`flux.proxy`), and only when the platform sets
/// it: without it the operator holds no right on any Secret or token.
fn flux_proxy_rules(
    ctx: &PlatformContext,
    rules: &mut Vec<Value>,
    reasons: &mut Vec<&'static str>,
) {
    if ctx.platform.flux.proxy.is_none() {
        return;
    }
    rules.push(
        json!({"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}),
    );
    reasons.push("flux.proxy: mint the token in each tenant's Flux proxy kubeconfig (TokenRequest for the tenant's ServiceAccount, bound to that Secret). Not limited by resourceNames: the ServiceAccount is named after its tenant, so there is no fixed name; the operator already creates and deletes those ServiceAccounts.");
    rules.push(json!({"apiGroups": [""], "resources": ["secrets"],
        "resourceNames": [tenantry_api::platform::FLUX_PROXY_KUBECONFIG_SECRET],
        "verbs": ["get", "list", "watch", "create", "patch", "delete"]}));
    reasons.push("flux.proxy: keep the one Secret of that name in each tenant's primary namespace, and no other Secret. `create` by name is enough because the operator creates it with server-side apply, which the API server authorizes as `patch` and, when the object does not exist yet, also as `create` with the object's name (a POST create has no name to check and would need create on every Secret; the operator e2e proves both). `list`/`watch` by name: the operator watches with fieldSelector metadata.name, which the API server checks against resourceNames, so a deleted Secret is written again at once.");
}

/// The name of every tenant-rbac ClusterRole Tenantry can render, whatever the toggles.
fn every_tenant_edit_role() -> Vec<&'static str> {
    let mut all = Platform::default();
    let t = &mut all.tenant_rbac;
    (t.external_secrets, t.cilium, t.gateway_api, t.flux) =
        (Some(true), Some(true), Some(true), Some(true));
    t.generators = vec![GeneratorKind::Fakes];
    render::platform::tenant_edit_roles(&all)
        .into_iter()
        .map(|r| r.name)
        .collect()
}

fn deployment(opts: &ManifestOptions) -> Document {
    let ns = opts.namespace.as_str();
    let mut args: Vec<String> = [
        "operator",
        "--namespace",
        ns,
        "--config-map",
        &opts.config_map,
        "--listen",
        &format!("0.0.0.0:{METRICS_PORT}"),
    ]
    .map(str::to_owned)
    .to_vec();
    if let Some((address, role)) = &opts.openbao {
        // Kubernetes auth with the pod's own ServiceAccount token: no OpenBao token to
        // store or rotate in the cluster.
        args.extend([
            "--bao-addr".to_owned(),
            address.clone(),
            "--openbao-k8s-role".to_owned(),
            role.clone(),
        ]);
    }
    doc(
        "Two replicas by default: one holds the Lease and reconciles, the other takes over within the lease duration. Restricted Pod Security, read-only root filesystem, no privilege.",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": ns, "labels": labels()},
        "spec": {
            "replicas": opts.replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
            "template": {
                "metadata": {"labels": labels()},
                "spec": {
                    "serviceAccountName": NAME,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532,
                        "runAsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                    "topologySpreadConstraints": [{"maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": NAME}}}],
                    "containers": [{
                        "name": "operator",
                        "image": opts.image,
                        "args": args,
                        "env": [
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "TENANTRY_LOG", "value": opts.log_level},
                        ],
                        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}},
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}},
                        "resources": opts.resources,
                        "securityContext": {"allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]}},
                    }],
                },
            },
        }}),
    )
}

/// One document as YAML, with its comment and its rules' reasons.
fn document_yaml(d: &Document, out: &mut String) {
    for line in tenantry_core::yaml::wrap_words(&d.comment, 98) {
        let _ = writeln!(out, "# {line}");
    }
    let Some(rules) = d.object["rules"]
        .as_array()
        .filter(|_| !d.rule_reasons.is_empty())
    else {
        out.push_str(&document::to_yaml(&d.object));
        return;
    };
    let mut head = d.object.clone();
    if let Some(m) = head.as_object_mut() {
        m.remove("rules");
    }
    out.push_str(&document::to_yaml(&head));
    out.push_str("rules:\n");
    for (rule, why) in rules.iter().zip(&d.rule_reasons) {
        for line in tenantry_core::yaml::wrap_words(why, 98) {
            let _ = writeln!(out, "# {line}");
        }
        for (i, line) in document::to_yaml(rule).lines().enumerate() {
            let _ = writeln!(out, "{}{line}", if i == 0 { "- " } else { "  " });
        }
    }
}

/// The rules of the operator's own ClusterRole among `docs`: what it may do in the cluster,
/// asked of one place by every check that a right is granted or withheld.
pub fn cluster_role_rules(docs: &[Document]) -> Option<&[Value]> {
    docs.iter()
        .find(|d| d.object["kind"] == "ClusterRole")
        .and_then(|role| role.object["rules"].as_array())
        .map(Vec::as_slice)
}

/// The documents as one multi-document YAML stream.
pub fn to_yaml(docs: &[Document]) -> String {
    let mut out = String::from(
        "# Tenantry operator. Generated by `tenantry operator manifests`; apply with\n\
         # `kubectl apply --server-side -f -`.\n",
    );
    for d in docs {
        out.push_str("---\n");
        document_yaml(d, &mut out);
    }
    out
}

/// The file the `i`th document is written to: its place in apply order, kind and name.
fn file_name(i: usize, d: &Document) -> String {
    let kind = d.object["kind"]
        .as_str()
        .unwrap_or("object")
        .to_ascii_lowercase();
    let name = d.object["metadata"]["name"].as_str().unwrap_or("unnamed");
    format!("{:02}-{kind}-{name}.yaml", i + 1)
}

/// The kustomize base: one file per document and a `kustomization.yaml` listing them in
/// apply order, as `(file name, contents)`.
pub fn kustomize_base(docs: &[Document]) -> Vec<(String, String)> {
    let header = "# Generated by `tenantry operator manifests --write`; do not edit.\n";
    let mut files = Vec::new();
    let mut resources = String::new();
    for (i, d) in docs.iter().enumerate() {
        let file = file_name(i, d);
        let mut text = String::from(header);
        document_yaml(d, &mut text);
        let _ = writeln!(resources, "  - {file}");
        files.push((file, text));
    }
    files.push((
        "kustomization.yaml".to_owned(),
        format!(
            "{header}apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{resources}"
        ),
    ));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> Vec<Document> {
        documents(&ManifestOptions::default()).unwrap()
    }

    #[test]
    fn the_printed_yaml_reads_back_as_the_objects_with_every_rule() {
        let docs = docs();
        let text = to_yaml(&docs);
        let parsed: Vec<Value> = text
            .split("\n---\n")
            .skip(1)
            .map(|d| serde_saphyr::from_str(d).unwrap())
            .collect();
        let objects: Vec<Value> = docs.iter().map(|d| d.object.clone()).collect();
        assert_eq!(parsed, objects);
    }

    #[test]
    fn the_cluster_role_has_a_reason_per_rule_and_no_wildcard_or_escalate() {
        for d in docs().iter().filter(|d| d.object["rules"].is_array()) {
            let rules = d.object["rules"].as_array().unwrap();
            assert_eq!(rules.len(), d.rule_reasons.len(), "{}", d.object["kind"]);
            let text = serde_json::to_string(rules).unwrap();
            assert!(!text.contains("\"*\""), "{text}");
            assert!(!text.contains("escalate"), "{text}");
        }
        let all = docs();
        let bind = cluster_role_rules(&all)
            .unwrap()
            .iter()
            .find(|r| r["verbs"] == json!(["bind"]))
            .unwrap();
        let names = bind["resourceNames"].as_array().unwrap();
        assert!(names.contains(&json!("edit")));
        assert!(
            names.contains(&json!("tenant-external-dns")),
            "grant roles: {names:?}"
        );
        assert!(!names.contains(&json!("cluster-admin")));
    }

    /// Whether `rules` allow `verb` on `group/resource` named `name`, as RBAC decides it.
    fn allows(
        rules: &[Value],
        group: &str,
        resource: &str,
        verb: &str,
        name: Option<&str>,
    ) -> bool {
        let has = |v: &Value, x: &str| v.as_array().is_some_and(|a| a.iter().any(|i| i == x));
        rules.iter().any(|r| {
            has(&r["apiGroups"], group)
                && has(&r["resources"], resource)
                && has(&r["verbs"], verb)
                && match r["resourceNames"].as_array() {
                    None => true,
                    Some(names) => name.is_some_and(|n| names.iter().any(|x| x == n)),
                }
        })
    }

    #[test]
    fn the_operator_holds_what_the_tenant_rbac_roles_grant_and_may_write_only_those() {
        let text = "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\ntenantRbac:\n  flux: true\n  cilium: true\n  generators: [fakes]\n";
        let options = ManifestOptions {
            platform_config: Some(text.to_owned()),
            ..ManifestOptions::default()
        };
        let docs = documents(&options).unwrap();
        let rules = cluster_role_rules(&docs).unwrap();
        let ctx = PlatformContext::new(document::parse_platform(text).unwrap()).unwrap();
        let components = render::platform::render_platform(&ctx);
        let roles: Vec<_> = components
            .iter()
            .flat_map(|c| &c.objects)
            .filter(|o| o.kind == "ClusterRole")
            .collect();
        assert!(roles.len() >= 4, "{}", roles.len());
        for object in roles {
            // Creating and updating it is allowed, by its name...
            assert!(allows(
                rules,
                "rbac.authorization.k8s.io",
                "clusterroles",
                "create",
                None
            ));
            for verb in ["patch", "delete"] {
                assert!(
                    allows(
                        rules,
                        "rbac.authorization.k8s.io",
                        "clusterroles",
                        verb,
                        Some(&object.name)
                    ),
                    "{verb} {}",
                    object.name
                );
            }
            // ...and so is every permission it grants, so no `escalate` is needed.
            for rule in object.body["rules"].as_array().unwrap() {
                for group in rule["apiGroups"].as_array().unwrap() {
                    for resource in rule["resources"].as_array().unwrap() {
                        for verb in rule["verbs"].as_array().unwrap() {
                            let (g, r, v) = (
                                group.as_str().unwrap(),
                                resource.as_str().unwrap(),
                                verb.as_str().unwrap(),
                            );
                            assert!(
                                allows(rules, g, r, v, None),
                                "{} needs {v} {g}/{r}",
                                object.name
                            );
                        }
                    }
                }
            }
        }
        for other in ["edit", "admin", "cluster-admin", "tenantry-operator"] {
            for verb in ["patch", "delete", "escalate"] {
                assert!(
                    !allows(
                        rules,
                        "rbac.authorization.k8s.io",
                        "clusterroles",
                        verb,
                        Some(other)
                    ),
                    "{verb} {other}"
                );
            }
        }
        assert!(allows(
            rules,
            "external-secrets.io",
            "clusterexternalsecrets",
            "list",
            None
        ));
    }

    #[test]
    fn flux_proxy_rights_exist_only_with_flux_proxy_and_only_on_its_secret() {
        let rules_for = |text: Option<&str>| {
            let docs = documents(&ManifestOptions {
                platform_config: text.map(str::to_owned),
                ..ManifestOptions::default()
            })
            .unwrap();
            cluster_role_rules(&docs).unwrap().to_vec()
        };
        let name = tenantry_api::platform::FLUX_PROXY_KUBECONFIG_SECRET;
        let without = rules_for(None);
        assert!(!allows(
            &without,
            "",
            "serviceaccounts/token",
            "create",
            Some("shop")
        ));
        assert!(!allows(&without, "", "secrets", "get", Some(name)));
        let with = rules_for(Some(
            "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\nflux:\n  proxy:\n    url: https://proxy.tenantry-system.svc:8443\n",
        ));
        assert!(allows(
            &with,
            "",
            "serviceaccounts/token",
            "create",
            Some("shop")
        ));
        for verb in ["get", "list", "watch", "create", "patch", "delete"] {
            assert!(allows(&with, "", "secrets", verb, Some(name)), "{verb}");
            // No other Secret: not a tenant's, not a listing of all.
            assert!(
                !allows(&with, "", "secrets", verb, Some("shop-db")),
                "{verb}"
            );
            assert!(!allows(&with, "", "secrets", verb, None), "{verb}");
        }
    }

    #[test]
    fn the_deployment_is_ha_restricted_and_read_only() {
        let d = docs()
            .into_iter()
            .find(|d| d.object["kind"] == "Deployment")
            .unwrap();
        let spec = &d.object["spec"];
        assert_eq!(spec["replicas"], 2);
        let c = &spec["template"]["spec"]["containers"][0];
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(
            spec["template"]["spec"]["securityContext"]["runAsNonRoot"],
            true
        );
    }
}
