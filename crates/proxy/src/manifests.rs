//! The objects that install the proxy: `tenantry proxy manifests`.
//!
//! The Deployment, PodDisruptionBudget, Service and cert-manager certificate are the
//! webhook's ([`tenantry_admission::manifests::Workload`]), so both run hardened, spread over
//! nodes and probed the same way. What is the proxy's own is its ClusterRole, and every rule
//! in it says why it exists: the proxy can impersonate, which is as strong a right as RBAC
//! has, so nothing beyond what the request path uses is granted.

use serde_json::{Value, json};
use tenantry_admission::manifests::{
    Document, Workload, component_metadata, serving_pod, to_yaml_titled,
};
use tenantry_api::platform::ProxyClusterKind;

use crate::cluster;

/// Name of every object.
pub const NAME: &str = "tenantry-proxy";
const COMPONENT: &str = "tenant-proxy";
const TLS_SECRET: &str = "tenantry-proxy-tls";
const CONFIG_MAP: &str = "tenantry-proxy-config";
const CONFIG_DIR: &str = "/etc/tenantry/config";

/// What varies between installations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestOptions {
    /// Namespace the proxy runs in (must not carry the tenant label).
    pub namespace: String,
    /// Container image running `tenantry`.
    pub image: String,
    /// Replicas.
    pub replicas: u32,
    /// `tenantry.yaml` to run with (its tenant label), mounted from a ConfigMap.
    pub platform_config: Option<String>,
    /// Whether the serving certificate comes from elsewhere (a given CA); without it
    /// cert-manager issues one.
    pub own_certificate: bool,
    /// Extra DNS names for the serving certificate (how tenants reach the proxy).
    pub dns_names: Vec<String>,
    /// The cluster-scoped kinds `tenantry.yaml` exposes (`proxy.clusterScoped`).
    pub cluster_reads: Vec<ProxyClusterKind>,
}

impl Default for ManifestOptions {
    fn default() -> Self {
        Self {
            namespace: "tenantry-system".to_owned(),
            image: format!("ghcr.io/tenantry/tenantry:v{}", env!("CARGO_PKG_VERSION")),
            replicas: 2,
            platform_config: None,
            own_certificate: false,
            dns_names: Vec::new(),
            cluster_reads: Vec::new(),
        }
    }
}

fn metadata(namespace: Option<&str>) -> Value {
    component_metadata((NAME, COMPONENT), NAME, namespace)
}

/// The ClusterRole's rules, each with why it exists; `cluster_reads` are the kinds the
/// platform exposes read-only (none: no rule for them).
pub fn rules(cluster_reads: &[ProxyClusterKind]) -> Vec<(&'static str, Value)> {
    let mut rules = vec![
        (
            "Forward each request as its caller: the identity a TokenReview reported (user, \
             groups, uid, extras such as the credential ID) becomes Impersonate-* headers. \
             ServiceAccount callers are impersonated by user name, which the API server checks \
             as impersonate on serviceaccounts.",
            json!({"apiGroups": [""], "resources": ["users", "groups", "serviceaccounts"], "verbs": ["impersonate"]}),
        ),
        (
            "Impersonate-Uid and Impersonate-Extra-*: without them the audit log and \
             credential-bound decisions would lose the caller's uid and credential ID. Each \
             extra is checked as the subresource userextras/<key>, which RBAC cannot wildcard \
             (userextras/* matches nothing), and the keys are the authenticator's to choose; \
             in this group impersonate exists only on uids and userextras, so * is exactly \
             those two.",
            json!({"apiGroups": ["authentication.k8s.io"], "resources": ["*"], "verbs": ["impersonate"]}),
        ),
        (
            "Authenticate bearer tokens exactly as the API server does (results cached).",
            json!({"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}),
        ),
        (
            "The index: tenant namespaces (list/watch, label-selected) are served to tenants \
             from memory, never fetched on the request path.",
            json!({"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}),
        ),
        (
            "The index: Tenant owners (users, groups, ServiceAccounts) decide who belongs to \
             which tenant.",
            json!({"apiGroups": ["tenantry.dev"], "resources": ["tenants"], "verbs": ["list", "watch"]}),
        ),
    ];
    for kind in cluster_reads {
        let (group, _, resource) = cluster::api(*kind);
        rules.push((
            "The platform exposes this cluster-scoped kind to tenants read-only              (tenantry.yaml proxy.clusterScoped): the proxy reads it as itself and shows a              tenant all of it or only the classes the tenant may use; tenants get no RBAC on it.",
            json!({"apiGroups": [group], "resources": [resource], "verbs": ["get", "list", "watch"]}),
        ));
    }
    rules
}

/// Every object, in apply order.
pub fn documents(opts: &ManifestOptions) -> Vec<Document> {
    let ns = opts.namespace.as_str();
    let (mut args, mut volumes, mut mounts) = serving_pod("proxy", TLS_SECRET);
    let mut docs = vec![Document {
        comment: "The identity the proxy connects as; tenants' requests carry their own identity \
                  by impersonation.",
        object: json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(Some(ns))}),
    }];
    let (why, rules): (Vec<&str>, Vec<Value>) = rules(&opts.cluster_reads).into_iter().unzip();
    let mut role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": metadata(None),
        "rules": rules,
    });
    // The reasons travel with the object, so `kubectl get clusterrole -o yaml` shows them.
    role["metadata"]["annotations"] = json!({
        "tenantry.dev/why": why.iter().enumerate().map(|(i, w)| format!("rule {i}: {w}")).collect::<Vec<_>>().join("\n"),
    });
    docs.push(Document {
        comment: "Least privilege for a proxy that impersonates: impersonate (users, groups, \
                  serviceaccounts, uids, userextras) to forward as the caller, create \
                  tokenreviews to authenticate, list/watch namespaces and tenants for the index. \
                  Impersonation is as strong as cluster-admin: run only this binary under this \
                  ServiceAccount. Each rule's reason is in the tenantry.dev/why annotation.",
        object: role,
    });
    docs.push(Document {
        comment: "",
        object: json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": metadata(None),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": ns}],
        }),
    });
    if let Some(config) = &opts.platform_config {
        docs.push(Document {
            comment: "The platform's tenantry.yaml: the tenant label the index selects namespaces by.",
            object: json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": component_metadata((NAME, COMPONENT), CONFIG_MAP, Some(ns)),
                "data": {"tenantry.yaml": config},
            }),
        });
        args.push(format!("--config={CONFIG_DIR}/tenantry.yaml"));
        volumes.push(json!({"name": "config", "configMap": {"name": CONFIG_MAP}}));
        mounts.push(json!({"name": "config", "mountPath": CONFIG_DIR, "readOnly": true}));
    }
    let workload = Workload {
        name: NAME,
        component: COMPONENT,
        container: "proxy",
        namespace: ns,
        image: &opts.image,
        replicas: opts.replicas,
        args,
        volumes,
        mounts,
        probes: ("/tenantry-proxy/readyz", "/tenantry-proxy/healthz"),
        tls_secret: TLS_SECRET,
        comment: "Two replicas on different nodes; not ready until the tenant namespace index has \
                  synced. Hardened to the restricted Pod Security level, read-only root filesystem.",
    };
    docs.push(workload.deployment());
    docs.extend(workload.availability_and_service());
    if !opts.own_certificate {
        docs.extend(workload.cert_manager(
            "No --ca given: cert-manager issues the serving certificate (self-signed Issuer; \
             replace with your own). Tenants' kubeconfigs need its CA: \
             `tenantry kubeconfig NAME --via-proxy URL --proxy-ca ca.crt`.",
            &opts.dns_names,
        ));
    }
    docs
}

/// The documents as one YAML stream.
pub fn to_yaml(docs: &[Document]) -> String {
    to_yaml_titled(
        "# Tenantry tenant proxy. Generated by `tenantry proxy manifests`; apply with\n\
         # `kubectl apply --server-side -f -`.\n",
        docs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(docs: &[Document]) -> Vec<String> {
        let role = docs
            .iter()
            .find(|d| d.object["kind"] == "ClusterRole")
            .unwrap();
        let mut grants: Vec<String> = Vec::new();
        for rule in role.object["rules"].as_array().unwrap() {
            for group in rule["apiGroups"].as_array().unwrap() {
                for resource in rule["resources"].as_array().unwrap() {
                    for verb in rule["verbs"].as_array().unwrap() {
                        grants.push(format!(
                            "{}/{} {}",
                            group.as_str().unwrap(),
                            resource.as_str().unwrap(),
                            verb.as_str().unwrap()
                        ));
                    }
                }
            }
        }
        grants
    }

    #[test]
    fn exposed_cluster_scoped_kinds_are_read_only_and_only_those() {
        let base = grants(&documents(&ManifestOptions::default()));
        let docs = documents(&ManifestOptions {
            cluster_reads: vec![
                ProxyClusterKind::StorageClass,
                ProxyClusterKind::PriorityClass,
            ],
            ..ManifestOptions::default()
        });
        let with = grants(&docs);
        assert_eq!(&with[..base.len()], base.as_slice());
        assert_eq!(
            &with[base.len()..],
            [
                "storage.k8s.io/storageclasses get",
                "storage.k8s.io/storageclasses list",
                "storage.k8s.io/storageclasses watch",
                "scheduling.k8s.io/priorityclasses get",
                "scheduling.k8s.io/priorityclasses list",
                "scheduling.k8s.io/priorityclasses watch",
            ]
        );
        let role = docs
            .iter()
            .find(|d| d.object["kind"] == "ClusterRole")
            .unwrap();
        let why = role.object["metadata"]["annotations"]["tenantry.dev/why"]
            .as_str()
            .unwrap();
        assert!(why.contains("rule 6: The platform exposes"), "{why}");
    }

    #[test]
    fn the_cluster_role_grants_only_what_the_request_path_uses() {
        let docs = documents(&ManifestOptions::default());
        assert_eq!(
            grants(&docs),
            [
                "/users impersonate",
                "/groups impersonate",
                "/serviceaccounts impersonate",
                "authentication.k8s.io/* impersonate",
                "authentication.k8s.io/tokenreviews create",
                "/namespaces list",
                "/namespaces watch",
                "tenantry.dev/tenants list",
                "tenantry.dev/tenants watch",
            ]
        );
        let kinds: Vec<&str> = docs
            .iter()
            .map(|d| d.object["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Deployment",
                "PodDisruptionBudget",
                "Service",
                "Issuer",
                "Certificate"
            ]
        );
        let deployment = &docs[3].object;
        assert_eq!(
            deployment["spec"]["template"]["spec"]["containers"][0]["args"][0],
            "proxy"
        );
    }
}
