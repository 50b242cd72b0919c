//! The objects that install the webhook: `tenantry webhook manifests`.
//!
//! Installing a validating webhook wrongly can take a cluster down (every matching write
//! fails when the webhook is unreachable) or leave it open (a selector that misses tenant
//! namespaces), so the configuration is generated from the same platform settings the webhook
//! runs with rather than copied from a README:
//! - `failurePolicy: Fail`: a guardrail that lets writes through whenever it is down, slow or
//!   being restarted is a guardrail a tenant can wait out; failing closed is the only choice
//!   that makes the policies a promise. What keeps an outage from spreading: the
//!   `namespaceSelector` matches only namespaces carrying the tenant label, so `kube-system`,
//!   the webhook's own namespace and every platform namespace are never sent to it (the
//!   control plane and the webhook can always be repaired); `timeoutSeconds` is small; two
//!   replicas spread over nodes with a PodDisruptionBudget ride out node drains; and
//!   `/readyz` keeps a replica out of the Service until its namespace cache is synced;
//! - `sideEffects: None`: verdicts are pure, so dry-run requests are sent and answered
//!   exactly like real ones;
//! - namespaces have their own webhook entry selected by the tenant label on the Namespace
//!   object itself (`objectSelector`, matched against the old and the new object), so setting,
//!   changing or removing a tenant or Pod Security label is judged, and other namespaces are
//!   never touched;
//! - RBAC is `get`/`list`/`watch` on namespaces and nothing else: the webhook reads labels,
//!   it writes nothing.

use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::{Value, json};

/// Name of every object the manifests create.
pub const NAME: &str = "tenantry-webhook";
/// Port the webhook container listens on.
pub const CONTAINER_PORT: u16 = 8443;
/// API server → webhook timeout. Verdicts take well under a millisecond; the budget is for
/// network and TLS, and it is what every tenant write waits at worst while a replica hangs.
pub const TIMEOUT_SECONDS: u32 = 5;

/// What varies between installations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestOptions {
    /// Namespace the webhook runs in (must not carry the tenant label).
    pub namespace: String,
    /// Container image running `tenantry`.
    pub image: String,
    /// PEM CA bundle that signed the serving certificate; `None` means cert-manager issues
    /// the certificate and injects the CA.
    pub ca_bundle: Option<Vec<u8>>,
    /// The platform's tenant label key (`platform.tenant_label()`).
    pub tenant_label: String,
    /// `tenantry.yaml` to run with, mounted from a ConfigMap; `None` for built-in defaults.
    pub platform_config: Option<String>,
    /// Replicas of the Deployment.
    pub replicas: u32,
}

impl ManifestOptions {
    /// Defaults for a platform whose tenant label is `tenant_label`.
    pub fn new(tenant_label: impl Into<String>) -> Self {
        Self {
            namespace: "tenantry-system".to_owned(),
            image: format!("ghcr.io/tenantry/tenantry:v{}", env!("CARGO_PKG_VERSION")),
            ca_bundle: None,
            tenant_label: tenant_label.into(),
            platform_config: None,
            replicas: 2,
        }
    }
}

/// One document and the comment printed above it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Printed as `# ...` lines above the object.
    pub comment: &'static str,
    /// The object.
    pub object: Value,
}

fn labels() -> Value {
    json!({
        "app.kubernetes.io/name": NAME,
        "app.kubernetes.io/component": "admission-webhook",
        // part-of, not managed-by: objects labelled managed-by=tenantry belong to tenants'
        // rendered layers, which cluster mode prunes and protect-platform-objects guards.
        "app.kubernetes.io/part-of": "tenantry",
    })
}

fn metadata(name: &str, namespace: Option<&str>) -> Value {
    match namespace {
        Some(ns) => json!({"name": name, "namespace": ns, "labels": labels()}),
        None => json!({"name": name, "labels": labels()}),
    }
}

/// Where the serving certificate and the platform configuration are mounted.
const TLS_DIR: &str = "/etc/tenantry/tls";
const CONFIG_DIR: &str = "/etc/tenantry/config";
const CONFIG_MAP: &str = "tenantry-webhook-config";
const TLS_SECRET: &str = "tenantry-webhook-tls";

/// Every object, in apply order.
pub fn documents(opts: &ManifestOptions) -> Vec<Document> {
    let ns = opts.namespace.as_str();
    let mut docs = identity(ns);
    let mut pod = PodWiring::new();
    if let Some(config) = &opts.platform_config {
        docs.push(Document {
            comment: "The platform's tenantry.yaml: tenant label, default Pod Security level and policies.",
            object: json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": metadata(CONFIG_MAP, Some(ns)),
                "data": {"tenantry.yaml": config},
            }),
        });
        pod.mount_config();
    }
    docs.push(deployment(opts, pod));
    docs.extend(availability_and_service(ns));
    if opts.ca_bundle.is_none() {
        docs.extend(cert_manager(ns));
    }
    docs.push(webhook_configuration(opts));
    docs
}

/// The namespace, and the identity the webhook runs as with the one permission it needs.
fn identity(ns: &str) -> Vec<Document> {
    vec![
        Document {
            comment: "The webhook's namespace. It must not carry the tenant label, so the webhook never judges itself.",
            object: json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                }},
            }),
        },
        Document {
            comment: "The identity the namespace watch runs as.",
            object: json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(NAME, Some(ns))}),
        },
        Document {
            comment: "Least privilege: the webhook only reads namespace labels (a metadata-only list and watch).",
            object: json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": metadata(NAME, None),
                "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}],
            }),
        },
        Document {
            comment: "",
            object: json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": metadata(NAME, None),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
                "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": ns}],
            }),
        },
    ]
}

/// The webhook container's arguments and what is mounted into it.
struct PodWiring {
    args: Vec<String>,
    volumes: Vec<Value>,
    mounts: Vec<Value>,
}

impl PodWiring {
    /// Serving with the certificate from the TLS Secret.
    fn new() -> Self {
        Self {
            args: vec![
                "webhook".to_owned(),
                format!("--listen=0.0.0.0:{CONTAINER_PORT}"),
                format!("--tls-cert={TLS_DIR}/tls.crt"),
                format!("--tls-key={TLS_DIR}/tls.key"),
            ],
            volumes: vec![json!({"name": "tls", "secret": {"secretName": TLS_SECRET}})],
            mounts: vec![json!({"name": "tls", "mountPath": TLS_DIR, "readOnly": true})],
        }
    }

    /// Also running with the platform's tenantry.yaml from its ConfigMap.
    fn mount_config(&mut self) {
        self.args
            .push(format!("--config={CONFIG_DIR}/tenantry.yaml"));
        self.volumes
            .push(json!({"name": "config", "configMap": {"name": CONFIG_MAP}}));
        self.mounts
            .push(json!({"name": "config", "mountPath": CONFIG_DIR, "readOnly": true}));
    }
}

fn selector() -> Value {
    json!({"app.kubernetes.io/name": NAME})
}

fn deployment(opts: &ManifestOptions, pod: PodWiring) -> Document {
    let probe = |path: &str, period: u32| {
        json!({"httpGet": {"path": path, "port": "https", "scheme": "HTTPS"},
               "periodSeconds": period, "timeoutSeconds": 2, "failureThreshold": 3})
    };
    Document {
        comment: "Two replicas on different nodes; not ready until the namespace cache has synced. \
                  Hardened to the restricted Pod Security level, read-only root filesystem.",
        object: json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": metadata(NAME, Some(&opts.namespace)),
            "spec": {
                "replicas": opts.replicas,
                "selector": {"matchLabels": selector()},
                "template": {
                    "metadata": {"labels": labels()},
                    "spec": {
                        "serviceAccountName": NAME,
                        "securityContext": {
                            "runAsNonRoot": true,
                            "runAsUser": 65532,
                            "runAsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "topologySpreadConstraints": [{
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": selector()},
                        }],
                        "containers": [{
                            "name": "webhook",
                            "image": opts.image,
                            "args": pod.args,
                            "env": [{"name": "TENANTRY_LOG", "value": "info"}],
                            "ports": [{"name": "https", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
                            "readinessProbe": probe("/readyz", 5),
                            "livenessProbe": probe("/healthz", 10),
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "64Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": pod.mounts,
                        }],
                        "volumes": pod.volumes,
                    },
                },
            },
        }),
    }
}

/// The PodDisruptionBudget and the Service the API server calls.
fn availability_and_service(ns: &str) -> [Document; 2] {
    [
        Document {
            comment: "A node drain never takes both replicas at once.",
            object: json!({
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": metadata(NAME, Some(ns)),
                "spec": {"minAvailable": 1, "selector": {"matchLabels": selector()}},
            }),
        },
        Document {
            comment: "",
            object: json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": metadata(NAME, Some(ns)),
                "spec": {
                    "selector": selector(),
                    "ports": [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}],
                },
            }),
        },
    ]
}

/// A self-signed cert-manager Issuer and the serving Certificate, for when no CA bundle is
/// given.
fn cert_manager(ns: &str) -> [Document; 2] {
    let dns = [
        format!("{NAME}.{ns}.svc"),
        format!("{NAME}.{ns}.svc.cluster.local"),
    ];
    [
        Document {
            comment: "No --ca-bundle given: cert-manager issues the serving certificate and injects its CA \
                      into the webhook configuration. Replace with your own issuer if you have one.",
            object: json!({
                "apiVersion": "cert-manager.io/v1", "kind": "Issuer",
                "metadata": metadata(NAME, Some(ns)),
                "spec": {"selfSigned": {}},
            }),
        },
        Document {
            comment: "",
            object: json!({
                "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
                "metadata": metadata(NAME, Some(ns)),
                "spec": {
                    "secretName": TLS_SECRET,
                    "dnsNames": dns,
                    "issuerRef": {"name": NAME, "kind": "Issuer"},
                    "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                },
            }),
        },
    ]
}

/// The ValidatingWebhookConfiguration: one webhook for objects in tenant namespaces, one for
/// tenant Namespaces themselves.
fn webhook_configuration(opts: &ManifestOptions) -> Document {
    let ns = opts.namespace.as_str();
    let mut vwc_metadata = metadata(NAME, None);
    if opts.ca_bundle.is_none() {
        vwc_metadata["annotations"] =
            json!({"cert-manager.io/inject-ca-from": format!("{ns}/{NAME}")});
    }
    let mut client_config = json!({
        "service": {"namespace": ns, "name": NAME, "path": "/validate", "port": 443},
    });
    if let Some(ca) = &opts.ca_bundle {
        client_config["caBundle"] = json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    let exists = json!({"matchExpressions": [{"key": opts.tenant_label, "operator": "Exists"}]});
    let common = |name: &str, rules: Value| {
        json!({
            "name": name,
            "admissionReviewVersions": ["v1"],
            "clientConfig": client_config,
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "sideEffects": "None",
            "timeoutSeconds": TIMEOUT_SECONDS,
            "rules": rules,
        })
    };
    let mut objects = common("objects.webhook.tenantry.dev", object_rules());
    objects["namespaceSelector"] = exists.clone();
    let mut namespaces = common(
        "namespaces.webhook.tenantry.dev",
        json!([{
            "apiGroups": [""], "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE", "DELETE"],
            "resources": ["namespaces"], "scope": "Cluster",
        }]),
    );
    namespaces["objectSelector"] = exists;
    Document {
        comment: "failurePolicy Fail: a guardrail that admits whatever arrives while it is down can be waited \
                  out, so it fails closed. The namespaceSelector (tenant label) keeps kube-system, this \
                  namespace and every platform namespace out of its reach, so an outage blocks tenant \
                  writes only and the webhook can always be repaired. sideEffects None: dry runs are judged \
                  like real requests.",
        object: json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": vwc_metadata,
            "webhooks": [objects, namespaces],
        }),
    }
}

/// The kinds the policy engine judges in tenant namespaces. Workloads are judged on create
/// and update; the kinds Tenantry renders into tenant namespaces also on delete, so a tenant
/// cannot remove its own quota, network policy or bindings (protect-platform-objects).
fn object_rules() -> Value {
    let rule = |group: &str, resources: &[&str], delete: bool| {
        let mut operations = vec!["CREATE", "UPDATE"];
        if delete {
            operations.push("DELETE");
        }
        json!({
            "apiGroups": [group], "apiVersions": ["*"], "operations": operations,
            "resources": resources, "scope": "Namespaced",
        })
    };
    json!([
        rule(
            "",
            &[
                "pods",
                "pods/ephemeralcontainers",
                "replicationcontrollers",
                "podtemplates",
                "services"
            ],
            false
        ),
        rule("", &["persistentvolumeclaims"], false),
        rule(
            "",
            &["serviceaccounts", "resourcequotas", "limitranges"],
            true
        ),
        rule(
            "apps",
            &["deployments", "statefulsets", "daemonsets", "replicasets"],
            false
        ),
        rule("batch", &["jobs", "cronjobs"], false),
        rule("networking.k8s.io", &["networkpolicies"], true),
        rule("networking.k8s.io", &["ingresses"], false),
        rule(
            "rbac.authorization.k8s.io",
            &["roles", "rolebindings"],
            true
        ),
        rule("cilium.io", &["ciliumnetworkpolicies"], true),
        rule(
            "external-secrets.io",
            &["externalsecrets", "secretstores", "pushsecrets"],
            true
        ),
        rule(
            "source.toolkit.fluxcd.io",
            &[
                "gitrepositories",
                "ocirepositories",
                "helmrepositories",
                "helmcharts",
                "buckets"
            ],
            true
        ),
        rule("kustomize.toolkit.fluxcd.io", &["kustomizations"], true),
        rule("helm.toolkit.fluxcd.io", &["helmreleases"], true),
        rule(
            "gateway.networking.k8s.io",
            &["httproutes", "grpcroutes", "gateways"],
            false
        ),
    ])
}

/// The documents as one multi-document YAML stream with their comments.
pub fn to_yaml(docs: &[Document]) -> String {
    let mut out = String::from(
        "# Tenantry admission webhook. Generated by `tenantry webhook manifests`; apply with\n\
         # `kubectl apply --server-side -f -`.\n",
    );
    for doc in docs {
        out.push_str("---\n");
        if !doc.comment.is_empty() {
            for line in tenantry_core::yaml::wrap_words(doc.comment, 98) {
                let _ = writeln!(out, "# {line}");
            }
        }
        out.push_str(&tenantry_core::document::to_yaml(&doc.object));
    }
    out
}
