//! Every check ID the engine can report, with its policy and a one-line summary.
//!
//! IDs are part of Tenantry's interface: CI configurations filter on them, SARIF rules are
//! keyed by them and exemptions will name them. They never change meaning; a new rule gets a
//! new ID. Pod Security checks keep their upstream IDs so that a finding reads the same here
//! as in the Kubernetes documentation and the PodSecurity plugin's messages.

use serde_json::{Value, json};

/// One check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckDoc {
    /// The check ID.
    pub id: &'static str,
    /// The policy it belongs to.
    pub policy: &'static str,
    /// What it requires, in one sentence.
    pub summary: &'static str,
}

const fn doc(policy: &'static str, id: &'static str, summary: &'static str) -> CheckDoc {
    CheckDoc {
        id,
        policy,
        summary,
    }
}

/// The platform policies' checks, in reporting order.
pub const CHECKS: &[CheckDoc] = &[
    doc(
        "require-requests-limits",
        "cpu-request",
        "Containers and init containers request cpu (or set a cpu limit).",
    ),
    doc(
        "require-requests-limits",
        "memory-request",
        "Containers and init containers request memory (or set a memory limit).",
    ),
    doc(
        "require-requests-limits",
        "memory-limit",
        "Containers and init containers set a memory limit.",
    ),
    doc(
        "allowed-registries",
        "registry-not-allowed",
        "Images come from one of the tenant's registries (matched on host and whole path segments).",
    ),
    doc(
        "allowed-registries",
        "invalid-image",
        "Image references are well-formed.",
    ),
    doc(
        "no-nodeport",
        "node-port",
        "Services are not of type NodePort and ask for no node ports.",
    ),
    doc(
        "no-loadbalancer",
        "load-balancer",
        "Services are not of type LoadBalancer.",
    ),
    doc(
        "no-external-ips",
        "external-ips",
        "Services set no externalIPs.",
    ),
    doc(
        "image-pull-policy-always",
        "image-pull-policy",
        "Containers pull with imagePullPolicy Always.",
    ),
    doc(
        "require-digest",
        "image-digest",
        "Images are pinned by digest.",
    ),
    doc(
        "restrict-secret-stores",
        "cluster-secret-store",
        "ExternalSecrets and PushSecrets reference only namespaced SecretStores.",
    ),
    doc(
        "restrict-secret-stores",
        "cluster-scoped-secret-object",
        "A tenant repository contains no ClusterSecretStore, ClusterExternalSecret or ClusterPushSecret.",
    ),
    doc(
        "restrict-secret-stores",
        "cluster-generator",
        "ExternalSecrets and PushSecrets generate with namespaced generators, never a ClusterGenerator.",
    ),
    doc(
        "restrict-secret-stores",
        "secret-store-scope",
        "A SecretStore reaching the platform's OpenBao logs in with the tenant's own Kubernetes-auth role on the platform's auth mount and reads the platform's KV mount.",
    ),
    doc(
        "restrict-secret-stores",
        "secret-path-scope",
        "Keys read or pushed through the tenant's store lie under the tenant's OpenBao path.",
    ),
    doc(
        "restrict-network-policies",
        "network-policy-reach",
        "NetworkPolicy and CiliumNetworkPolicy peers name only the tenant's namespaces, the platform's shared ones and its allowFrom; never every namespace, the cluster or the nodes.",
    ),
    doc(
        "flux-lockdown",
        "service-account-name",
        "Kustomizations and HelmReleases reconcile as the tenant's ServiceAccount.",
    ),
    doc(
        "flux-lockdown",
        "cross-namespace-ref",
        "Flux objects reference objects in their own namespace only.",
    ),
    doc(
        "flux-lockdown",
        "kubeconfig",
        "Flux objects use no kubeConfig but the tenant's proxy kubeconfig secret.",
    ),
    doc(
        "flux-lockdown",
        "target-namespace",
        "targetNamespace and storageNamespace are the tenant's namespaces.",
    ),
    doc(
        "flux-lockdown",
        "remote-base",
        "kustomization.yaml files have no remote resources, bases or components.",
    ),
    doc(
        "gateway-parent",
        "gateway-parent",
        "HTTPRoutes and GRPCRoutes attach only to the platform Gateway and listener.",
    ),
    doc(
        "protect-platform-objects",
        "managed-object",
        "Only the platform creates, changes or deletes objects Tenantry manages.",
    ),
    doc(
        "protect-platform-objects",
        "namespace-labels",
        "Only the platform sets a namespace's Pod Security and tenant labels.",
    ),
    doc(
        "tenant-repo-contract",
        "container-name",
        "A Deployment container is named after the repository.",
    ),
    doc(
        "tenant-repo-contract",
        "plaintext-secret",
        "No Secret with data is committed.",
    ),
    doc(
        "tenant-repo-contract",
        "sops-file",
        "No SOPS-encrypted file is committed.",
    ),
    doc(
        "tenant-repo-contract",
        "secret-store",
        "The tenant's SecretStore is namespaced and has the name the platform expects.",
    ),
    doc(
        "tenant-repo-contract",
        "required-path",
        "The repository has deploy/kustomization.yaml, the tree the platform publishes.",
    ),
    doc(
        "tenant-repo-contract",
        "cluster-scoped",
        "No cluster-scoped object: the tenant's delivery creates objects only in its namespaces.",
    ),
    doc(
        "tenant-repo-contract",
        "namespace",
        "Namespace fields are absent or name one of the tenant's namespaces.",
    ),
    doc(
        "tenant-placement",
        "node-name",
        "Pods and pod templates do not name their node: only the scheduler places a tenant's pods.",
    ),
    doc(
        "tenant-placement",
        "node-selector",
        "Pods select the tenant's nodes: every label of placement.nodeSelector, with its value.",
    ),
    doc(
        "tenant-placement",
        "tolerations",
        "Pods tolerate only the taints placement.tolerations allows (never every taint), besides Kubernetes' node-condition taints.",
    ),
    doc(
        "allowed-classes",
        "priority-class",
        "Pods use only the tenant's PriorityClasses, and never Kubernetes' system-* classes.",
    ),
    doc(
        "allowed-classes",
        "runtime-class",
        "Pods use only the tenant's RuntimeClasses.",
    ),
    doc(
        "allowed-classes",
        "storage-class",
        "PersistentVolumeClaims, claim templates and ephemeral volumes use only the tenant's StorageClasses.",
    ),
    doc(
        "allowed-classes",
        "ingress-class",
        "Ingresses use only the tenant's IngressClasses.",
    ),
    doc(
        "allowed-classes",
        "gateway-class",
        "Gateways use only the tenant's GatewayClasses.",
    ),
    doc(
        "tenant-rbac",
        "tenant-rbac",
        "Every object is of a kind the tenant's ServiceAccount, which Flux applies the tree as, may create.",
    ),
];

/// The Pod Security Standards checks (upstream IDs).
const PSS_SUMMARIES: [(&str, &str); 19] = [
    (
        "appArmorProfile",
        "AppArmor profiles are RuntimeDefault or Localhost.",
    ),
    (
        "capabilities_baseline",
        "Only the container runtime's default capabilities are added.",
    ),
    (
        "hostNamespaces",
        "Pods do not share the host's network, PID or IPC namespaces.",
    ),
    ("hostPathVolumes", "Pods mount no hostPath volumes."),
    ("hostPorts", "Containers use no host ports."),
    (
        "hostProbesAndHostLifecycle",
        "Probes and lifecycle handlers name no host.",
    ),
    ("privileged", "Containers are not privileged."),
    ("procMount", "Containers use the default /proc mask."),
    (
        "seLinuxOptions",
        "SELinux options set no custom user, role or type.",
    ),
    ("seccompProfile_baseline", "Seccomp is not Unconfined."),
    ("sysctls", "Pods set only safe sysctls."),
    (
        "windowsHostProcess",
        "Pods are not Windows HostProcess pods.",
    ),
    (
        "allowPrivilegeEscalation",
        "Containers set allowPrivilegeEscalation: false.",
    ),
    (
        "capabilities_restricted",
        "Containers drop ALL capabilities and add at most NET_BIND_SERVICE.",
    ),
    (
        "procMount_restricted",
        "Containers use the default /proc mask, in user namespaces too.",
    ),
    (
        "restrictedVolumes",
        "Pods use only non-host, non-network volume types.",
    ),
    ("runAsNonRoot", "Containers run as non-root."),
    ("runAsUser", "Containers do not run as UID 0."),
    (
        "seccompProfile_restricted",
        "Seccomp is RuntimeDefault or Localhost on every container.",
    ),
];

/// The finding standing for an object's findings past the per-object limit. It belongs to no
/// one policy (its policy is left empty here); each such finding carries the policy of the
/// first finding it stands for.
pub const ELIDED: CheckDoc = doc(
    "",
    crate::engine::FINDINGS_ELIDED,
    "An object had more findings than are listed per object; the rest are counted, not listed.",
);

/// The policy and summary of any check ID the engine can report.
pub fn describe(check: &str) -> Option<CheckDoc> {
    if let Some(doc) = CHECKS.iter().find(|c| c.id == check) {
        return Some(*doc);
    }
    if check == ELIDED.id {
        return Some(ELIDED);
    }
    PSS_SUMMARIES
        .iter()
        .find(|(id, _)| *id == check)
        .map(|&(id, summary)| CheckDoc {
            id,
            policy: "pod-security",
            summary,
        })
}

/// The kinds the policy engine judges in tenant namespaces (the webhook's registration, and
/// what the compiled `protect-platform-objects` matches, so both judge the same requests). Workloads are judged on create
/// and update; the kinds Tenantry renders into tenant namespaces also on delete, so a tenant
/// cannot remove its own quota, network policy or bindings (protect-platform-objects).
pub fn admission_object_rules() -> Value {
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

/// Namespaces themselves: created, relabelled or deleted (the webhook's second registration,
/// selected by the tenant label on the old or new object).
pub fn admission_namespace_rules() -> Value {
    json!([{
        "apiGroups": [""], "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE", "DELETE"],
        "resources": ["namespaces"], "scope": "Cluster",
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pod_security_check_is_described() {
        for check in crate::pss::checks() {
            assert!(describe(check.id).is_some(), "{} has no summary", check.id);
        }
    }

    #[test]
    fn check_ids_are_unique_and_belong_to_known_policies() {
        let policies = crate::Engine::policy_ids();
        for (i, c) in CHECKS.iter().enumerate() {
            assert!(
                policies.contains(&c.policy),
                "{} has policy {}",
                c.id,
                c.policy
            );
            assert!(
                CHECKS[i + 1..].iter().all(|d| d.id != c.id),
                "{} is listed twice",
                c.id
            );
            assert!(describe(c.id).is_some());
        }
    }
}
