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
//! - RBAC is `get`/`list`/`watch` on namespaces and on the tenants' `GuardrailParameters`
//!   and nothing else: the webhook reads labels and each tenant's own values, it writes
//!   nothing.

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
    /// ValidatingAdmissionPolicies and their bindings (`tenantry_policy::vap::generate`, from
    /// the engine of `platform_config`), installed before the webhook, which then runs with
    /// `--with-vap` and leaves their checks to them. Empty: the webhook judges everything.
    pub policies: Vec<Value>,
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
            policies: Vec::new(),
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

/// The labels of every object of one component (`app.kubernetes.io/name` is `name`).
pub fn component_labels(name: &str, component: &str) -> Value {
    json!({
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        // part-of, not managed-by: objects labelled managed-by=tenantry belong to tenants'
        // rendered layers, which cluster mode prunes and protect-platform-objects guards.
        "app.kubernetes.io/part-of": "tenantry",
    })
}

/// `metadata` of an object of one component.
pub fn component_metadata(
    (name, component): (&str, &str),
    object: &str,
    namespace: Option<&str>,
) -> Value {
    let labels = component_labels(name, component);
    match namespace {
        Some(ns) => json!({"name": object, "namespace": ns, "labels": labels}),
        None => json!({"name": object, "labels": labels}),
    }
}

const COMPONENT: (&str, &str) = (NAME, "admission-webhook");

fn metadata(name: &str, namespace: Option<&str>) -> Value {
    component_metadata(COMPONENT, name, namespace)
}

/// Where the serving certificate and the platform configuration are mounted.
const TLS_DIR: &str = "/etc/tenantry/tls";
const CONFIG_DIR: &str = "/etc/tenantry/config";
const CONFIG_MAP: &str = "tenantry-webhook-config";
const TLS_SECRET: &str = "tenantry-webhook-tls";

/// Every object, in apply order.
pub fn documents(opts: &ManifestOptions) -> Vec<Document> {
    let ns = opts.namespace.as_str();
    // The policies first: a webhook leaving checks to them must never run before they exist.
    let mut docs: Vec<Document> = opts
        .policies
        .iter()
        .map(|object| Document {
            comment: if object["kind"] == "ValidatingAdmissionPolicy" {
                "Enforced by the API server itself; the webhook (--with-vap) leaves this \
                 policy's checks to it (a per-tenant one's, for each tenant it sees bound)."
            } else if object["kind"] == "CustomResourceDefinition" {
                "Each tenant's GuardrailParameters (cluster-scoped, rendered with the tenant): \
                 the values the per-tenant policies judge it by."
            } else {
                ""
            },
            object: object.clone(),
        })
        .collect();
    docs.extend(identity(ns, !opts.policies.is_empty()));
    let mut pod = PodWiring::new();
    if !opts.policies.is_empty() {
        pod.args.push("--with-vap".to_owned());
    }
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
    let workload = workload(opts, pod);
    docs.push(workload.deployment());
    docs.extend(workload.availability_and_service());
    if opts.ca_bundle.is_none() {
        docs.extend(workload.cert_manager(
            "No --ca-bundle given: cert-manager issues the serving certificate and injects its CA \
             into the webhook configuration. Replace with your own issuer if you have one.",
            &[],
        ));
    }
    docs.push(webhook_configuration(opts));
    docs
}

/// The namespace, and the identity the webhook runs as with the one permission it needs
/// (`with_vap`: next to the policies, also reading Tenantry's policies and bindings).
fn identity(ns: &str, with_vap: bool) -> Vec<Document> {
    let mut rules = vec![
        json!({"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}),
        json!({"apiGroups": [tenantry_core::render::guardrails::PARAMS_GROUP],
               "resources": [tenantry_core::render::guardrails::PARAMS_PLURAL],
               "verbs": ["get", "list", "watch"]}),
    ];
    if with_vap {
        rules.push(json!({"apiGroups": ["admissionregistration.k8s.io"],
                          "resources": ["validatingadmissionpolicies",
                                        "validatingadmissionpolicybindings"],
                          "verbs": ["get", "list", "watch"]}));
    }
    let comment = if with_vap {
        "Least privilege: the webhook only reads. Namespaces: their labels (a metadata-only list and watch) say which tenant a request is for and its Pod Security level. GuardrailParameters (tenantry.dev, cluster-scoped): each tenant's own values, the ones the per-tenant ValidatingAdmissionPolicies read, so the webhook judges a tenant by them too instead of by the platform defaults. ValidatingAdmissionPolicies and their bindings (only Tenantry's are watched, by label): a tenant's per-tenant checks are left to the API server only once its policy, parameters and a Deny binding are all there, so no tenant is judged by neither and none twice. Reading them discloses no tenant data."
    } else {
        "Least privilege: the webhook only reads. Namespaces: their labels (a metadata-only list and watch) say which tenant a request is for and its Pod Security level. GuardrailParameters (tenantry.dev, cluster-scoped): each tenant's own values, the ones the per-tenant ValidatingAdmissionPolicies read, so the webhook judges a tenant by them too instead of by the platform defaults."
    };
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
            comment,
            object: json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": metadata(NAME, None),
                "rules": rules,
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
        let (args, volumes, mounts) = serving_pod("webhook", TLS_SECRET);
        Self {
            args,
            volumes,
            mounts,
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

/// The arguments, volumes and mounts of `tenantry <command>` serving HTTPS on
/// [`CONTAINER_PORT`] with the certificate of Secret `tls_secret`.
pub fn serving_pod(command: &str, tls_secret: &str) -> (Vec<String>, Vec<Value>, Vec<Value>) {
    (
        vec![
            command.to_owned(),
            format!("--listen=0.0.0.0:{CONTAINER_PORT}"),
            format!("--tls-cert={TLS_DIR}/tls.crt"),
            format!("--tls-key={TLS_DIR}/tls.key"),
        ],
        vec![json!({"name": "tls", "secret": {"secretName": tls_secret}})],
        vec![json!({"name": "tls", "mountPath": TLS_DIR, "readOnly": true})],
    )
}

/// One HTTPS Deployment of the `tenantry` binary with its ServiceAccount, PDB, Service and
/// (without a CA bundle) cert-manager certificate: what the webhook's and the tenant proxy's
/// installs share, so both are hardened, spread and probed the same way.
#[derive(Debug, Clone)]
pub struct Workload<'a> {
    /// `app.kubernetes.io/name`, and the name of every object.
    pub name: &'a str,
    /// `app.kubernetes.io/component`.
    pub component: &'a str,
    /// The container's name.
    pub container: &'a str,
    /// Namespace.
    pub namespace: &'a str,
    /// Container image whose entrypoint is `tenantry`.
    pub image: &'a str,
    /// Replicas.
    pub replicas: u32,
    /// The container's arguments.
    pub args: Vec<String>,
    /// Volumes (start from [`serving_pod`]).
    pub volumes: Vec<Value>,
    /// Mounts (start from [`serving_pod`]).
    pub mounts: Vec<Value>,
    /// HTTPS paths of the readiness and liveness probes.
    pub probes: (&'a str, &'a str),
    /// The Secret holding the serving certificate.
    pub tls_secret: &'a str,
    /// Printed above the Deployment.
    pub comment: &'static str,
}

impl Workload<'_> {
    fn metadata(&self, namespaced: bool) -> Value {
        component_metadata(
            (self.name, self.component),
            self.name,
            namespaced.then_some(self.namespace),
        )
    }

    fn selector(&self) -> Value {
        json!({"app.kubernetes.io/name": self.name})
    }

    /// The Deployment.
    pub fn deployment(&self) -> Document {
        let probe = |path: &str, period: u32| {
            json!({"httpGet": {"path": path, "port": "https", "scheme": "HTTPS"},
                   "periodSeconds": period, "timeoutSeconds": 2, "failureThreshold": 3})
        };
        Document {
            comment: self.comment,
            object: json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": self.metadata(true),
                "spec": {
                    "replicas": self.replicas,
                    "selector": {"matchLabels": self.selector()},
                    "template": {
                        "metadata": {"labels": component_labels(self.name, self.component)},
                        "spec": {
                            "serviceAccountName": self.name,
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
                                "labelSelector": {"matchLabels": self.selector()},
                            }],
                            "containers": [{
                                "name": self.container,
                                "image": self.image,
                                "args": self.args,
                                "env": [{"name": "TENANTRY_LOG", "value": "info"}],
                                "ports": [{"name": "https", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
                                "readinessProbe": probe(self.probes.0, 5),
                                "livenessProbe": probe(self.probes.1, 10),
                                "resources": {
                                    "requests": {"cpu": "100m", "memory": "64Mi"},
                                    "limits": {"memory": "256Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": false,
                                    "readOnlyRootFilesystem": true,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": self.mounts,
                            }],
                            "volumes": self.volumes,
                        },
                    },
                },
            }),
        }
    }

    /// The PodDisruptionBudget and the Service (port 443).
    pub fn availability_and_service(&self) -> [Document; 2] {
        [
            Document {
                comment: "A node drain never takes both replicas at once.",
                object: json!({
                    "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                    "metadata": self.metadata(true),
                    "spec": {"minAvailable": 1, "selector": {"matchLabels": self.selector()}},
                }),
            },
            Document {
                comment: "",
                object: json!({
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": self.metadata(true),
                    "spec": {
                        "selector": self.selector(),
                        "ports": [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}],
                    },
                }),
            },
        ]
    }

    /// A self-signed cert-manager Issuer and the serving Certificate for the Service's names
    /// (and `extra_dns`), for when no CA bundle is given.
    pub fn cert_manager(&self, comment: &'static str, extra_dns: &[String]) -> [Document; 2] {
        let (name, ns) = (self.name, self.namespace);
        let mut dns = vec![
            format!("{name}.{ns}.svc"),
            format!("{name}.{ns}.svc.cluster.local"),
        ];
        dns.extend(extra_dns.iter().cloned());
        [
            Document {
                comment,
                object: json!({
                    "apiVersion": "cert-manager.io/v1", "kind": "Issuer",
                    "metadata": self.metadata(true),
                    "spec": {"selfSigned": {}},
                }),
            },
            Document {
                comment: "",
                object: json!({
                    "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
                    "metadata": self.metadata(true),
                    "spec": {
                        "secretName": self.tls_secret,
                        "dnsNames": dns,
                        "issuerRef": {"name": name, "kind": "Issuer"},
                        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                    },
                }),
            },
        ]
    }
}

fn workload<'a>(opts: &'a ManifestOptions, pod: PodWiring) -> Workload<'a> {
    Workload {
        name: NAME,
        component: COMPONENT.1,
        container: "webhook",
        namespace: &opts.namespace,
        image: &opts.image,
        replicas: opts.replicas,
        args: pod.args,
        volumes: pod.volumes,
        mounts: pod.mounts,
        probes: ("/readyz", "/healthz"),
        tls_secret: TLS_SECRET,
        comment: "Two replicas on different nodes; not ready until the namespace cache has synced. \
                  Hardened to the restricted Pod Security level, read-only root filesystem.",
    }
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
    let mut objects = common(
        "objects.webhook.tenantry.dev",
        tenantry_policy::catalog::admission_object_rules(),
    );
    objects["namespaceSelector"] = exists.clone();
    let mut namespaces = common(
        "namespaces.webhook.tenantry.dev",
        tenantry_policy::catalog::admission_namespace_rules(),
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

/// The documents as one multi-document YAML stream with their comments.
pub fn to_yaml(docs: &[Document]) -> String {
    to_yaml_titled(
        "# Tenantry admission webhook. Generated by `tenantry webhook manifests`; apply with\n\
         # `kubectl apply --server-side -f -`.\n",
        docs,
    )
}

/// [`to_yaml`] under another header (comment lines, each ending in a newline).
pub fn to_yaml_titled(header: &str, docs: &[Document]) -> String {
    let mut out = String::from(header);
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
