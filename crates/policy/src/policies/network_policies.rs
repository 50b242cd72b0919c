//! `restrict-network-policies`: a tenant's own network policies open its pods to its own
//! namespaces and the platform's, never to the whole cluster.
//!
//! Tenants may write NetworkPolicies and CiliumNetworkPolicies (their `deploy/` tree holds
//! their allow-lists, and `edit` plus the platform's tenant roles grant both kinds). A
//! namespaced policy only ever selects the pods of its own namespace, but its peers can be
//! anything: `toEntities: [cluster]`, a namespace selector `{}`, or
//! `io.kubernetes.pod.namespace NotIn [me]` open a tenant's pods to, or let them reach, every
//! pod in the cluster, including platform components that have no policy of their own. So a
//! peer may name namespaces only by name (`matchLabels`, or `In`), and only the tenant's
//! own, the platform's shared ones (the DNS and gateway namespaces of `tenantry.yaml`) and
//! the tenant's `allowFrom` list, which the platform reviews in `tenant.yaml`. Selecting
//! namespaces by any other label is refused too: a tenant labels nothing outside its
//! namespaces, and a label it does not control is a promise it cannot keep.
//!
//! Deny rules (`ingressDeny`, `egressDeny`) only take traffic away and are not judged.
//! Tenantry's own floor policies, applied by Tenantry, are not judged either.

use serde_json::{Map, Value};
use tenantry_api::platform::Platform;

use super::{objects_in, str_of};
use crate::engine::{Eval, Sink, join};

/// The pod label Cilium gives every endpoint: its namespace's name.
const CILIUM_NAMESPACE_KEY: &str = "io.kubernetes.pod.namespace";
/// The prefix of the pod labels Cilium derives from its namespace's labels.
const CILIUM_NAMESPACE_LABELS: &str = "io.cilium.k8s.namespace.labels.";
/// The label Kubernetes sets on every namespace: its name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Entities that stand for every pod in the cluster.
const CLUSTER_ENTITIES: &[&str] = &["all", "cluster"];
/// Entities a tenant's egress may not reach besides those: the nodes themselves (kubelet,
/// host-network platform daemons).
const NODE_ENTITIES: &[&str] = &["host", "remote-node"];

/// The namespaces every tenant's policies may name: where DNS answers and where the
/// platform's gateway runs.
pub(crate) fn shared_namespaces(platform: &Platform) -> Vec<String> {
    let mut out = vec![platform.dns.namespace.clone()];
    if let Some(gw) = &platform.gateway {
        out.push(gw.namespace.clone());
    }
    out.sort();
    out.dedup();
    out
}

pub(crate) fn evaluate(eval: &Eval<'_>, sink: &mut Sink) {
    let view = eval.view;
    if eval
        .ctx
        .user
        .is_some_and(|user| eval.engine.is_platform_identity(user))
    {
        return;
    }
    let judge = Judge { eval };
    match (view.group, view.kind) {
        ("cilium.io", "CiliumNetworkPolicy") => {
            if let Some(spec) = view.object.get("spec").and_then(Value::as_object) {
                judge.cilium_spec(spec, "spec", sink);
            }
            for (i, spec) in objects_in(view.object, "specs") {
                judge.cilium_spec(spec, &format!("specs[{i}]"), sink);
            }
        }
        ("networking.k8s.io", "NetworkPolicy") => {
            if let Some(spec) = view.object.get("spec").and_then(Value::as_object) {
                judge.kubernetes_spec(spec, sink);
            }
        }
        _ => {}
    }
}

/// How a label key in a peer selector relates to namespaces.
enum Key<'a> {
    /// It names the namespace.
    Name,
    /// It is a label of the namespace.
    NamespaceLabel(&'a str),
    /// It says nothing about the namespace.
    Other,
}

struct Judge<'e, 'a> {
    eval: &'e Eval<'a>,
}

impl Judge<'_, '_> {
    fn cilium_spec(&self, spec: &Map<String, Value>, at: &str, sink: &mut Sink) {
        for (direction, peers, entities, services) in [
            ("ingress", "fromEndpoints", "fromEntities", None),
            ("egress", "toEndpoints", "toEntities", Some("toServices")),
        ] {
            for (i, rule) in objects_in(spec, direction) {
                let rule_at = format!("{at}.{direction}[{i}]");
                for (j, selector) in objects_in(rule, peers) {
                    self.selector(
                        selector,
                        &format!("{rule_at}.{peers}[{j}]"),
                        cilium_key,
                        sink,
                    );
                }
                self.entities(rule, direction, entities, &rule_at, sink);
                let Some(services) = services else { continue };
                for (j, service) in objects_in(rule, services) {
                    for field in ["k8sService", "k8sServiceSelector"] {
                        let namespace = service
                            .get(field)
                            .and_then(Value::as_object)
                            .and_then(|s| str_of(s, "namespace"));
                        if let Some(namespace) = namespace {
                            let path = format!("{rule_at}.{services}[{j}].{field}.namespace");
                            self.named(namespace, path, sink);
                        }
                    }
                }
            }
        }
    }

    fn kubernetes_spec(&self, spec: &Map<String, Value>, sink: &mut Sink) {
        for (direction, peers) in [("ingress", "from"), ("egress", "to")] {
            for (i, rule) in objects_in(spec, direction) {
                for (j, peer) in objects_in(rule, peers) {
                    let Some(selector) = peer.get("namespaceSelector").and_then(Value::as_object)
                    else {
                        continue;
                    };
                    let at = format!("spec.{direction}[{i}].{peers}[{j}].namespaceSelector");
                    if selector_is_empty(selector) {
                        self.deny_any(&at, "selects every namespace", sink);
                        continue;
                    }
                    self.selector(selector, &at, kubernetes_key, sink);
                }
            }
        }
    }

    fn entities(
        &self,
        rule: &Map<String, Value>,
        direction: &str,
        field: &str,
        at: &str,
        sink: &mut Sink,
    ) {
        let Some(list) = rule.get(field).and_then(Value::as_array) else {
            return;
        };
        for (k, entity) in list.iter().enumerate() {
            let Some(entity) = entity.as_str() else {
                continue;
            };
            let path = format!("{at}.{field}[{k}]");
            if CLUSTER_ENTITIES.contains(&entity) {
                self.deny_any(&path, &format!("names the entity {entity:?}"), sink);
            } else if direction == "egress" && NODE_ENTITIES.contains(&entity) {
                sink.deny(
                    "network-policy-reach",
                    path,
                    format!(
                        "egress to the entity {entity:?} lets the tenant's pods reach the \
                         cluster's nodes (kubelet and host-network platform services)"
                    ),
                    "Remove it: a tenant's workloads have nothing to call on a node. Ask the \
                     platform if a node-local service is needed."
                        .to_owned(),
                );
            }
        }
    }

    /// Judge one label selector whose keys `classify` maps to namespace terms.
    fn selector(
        &self,
        selector: &Map<String, Value>,
        at: &str,
        classify: fn(&str) -> Key<'_>,
        sink: &mut Sink,
    ) {
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            for (key, value) in labels {
                let value = value.as_str().unwrap_or("");
                let path = join(at, &format!("matchLabels[{key:?}]"));
                match classify(key) {
                    Key::Name => self.named(value, path, sink),
                    Key::NamespaceLabel(label) => self.labelled(label, value, path, sink),
                    Key::Other => {}
                }
            }
        }
        for (i, req) in objects_in(selector, "matchExpressions") {
            let key = str_of(req, "key").unwrap_or("");
            let operator = str_of(req, "operator").unwrap_or("");
            let path = format!("{at}.matchExpressions[{i}]");
            let values = req
                .get("values")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let class = classify(key);
            if matches!(class, Key::Other) {
                continue;
            }
            if operator != "In" {
                self.deny_any(
                    &path,
                    &format!(
                        "selects namespaces with {key} {operator}, which reaches namespaces \
                              the tenant does not own"
                    ),
                    sink,
                );
                continue;
            }
            for (j, value) in values.iter().enumerate() {
                let value = value.as_str().unwrap_or("");
                let path = format!("{path}.values[{j}]");
                match class {
                    Key::Name => self.named(value, path, sink),
                    Key::NamespaceLabel(label) => self.labelled(label, value, path, sink),
                    Key::Other => {}
                }
            }
        }
    }

    /// A peer naming the namespace `name`.
    fn named(&self, name: &str, path: String, sink: &mut Sink) {
        if self.may_name(name) {
            return;
        }
        sink.deny(
            "network-policy-reach",
            path,
            format!("names namespace {name:?}, which is neither the tenant's nor the platform's"),
            self.remedy(),
        );
    }

    /// A peer selecting namespaces by their label `label=value`.
    fn labelled(&self, label: &str, value: &str, path: String, sink: &mut Sink) {
        if label == NAMESPACE_NAME_LABEL {
            return self.named(value, path, sink);
        }
        // Without a tenant (`check` without --tenant) the tenant label cannot be compared;
        // `skipped` says so.
        let own = label == self.eval.engine.tenant_label()
            && self.eval.ctx.tenant.is_none_or(|t| t.name == value);
        if own {
            return;
        }
        sink.deny(
            "network-policy-reach",
            path,
            format!(
                "selects namespaces by label {label}={value}, which the tenant does not control \
                 (any namespace carrying it would be reached)"
            ),
            self.remedy(),
        );
    }

    fn deny_any(&self, path: &str, what: &str, sink: &mut Sink) {
        sink.deny(
            "network-policy-reach",
            path.to_owned(),
            format!("{what}: it opens the tenant's pods to, or lets them reach, every pod in the cluster"),
            self.remedy(),
        );
    }

    fn may_name(&self, namespace: &str) -> bool {
        let engine = self.eval.engine;
        let tenant = self.eval.ctx.tenant;
        let own = match tenant {
            Some(t) => t.namespaces.iter().any(|n| n == namespace),
            // Without a tenant (`check` without --tenant) its namespaces are unknown;
            // `skipped` says so.
            None => true,
        };
        own || engine.shared_namespaces.iter().any(|n| n == namespace)
            || tenant.is_some_and(|t| t.network_peers.iter().any(|n| n == namespace))
    }

    fn remedy(&self) -> String {
        let mut allowed: Vec<&str> = Vec::new();
        if let Some(t) = self.eval.ctx.tenant {
            allowed.extend(t.namespaces.iter().map(String::as_str));
            allowed.extend(t.network_peers.iter().map(String::as_str));
        }
        allowed.extend(
            self.eval
                .engine
                .shared_namespaces
                .iter()
                .map(String::as_str),
        );
        allowed.sort_unstable();
        allowed.dedup();
        format!(
            "Name peer namespaces by name, one of: {}. To accept traffic from another team, \
             the platform adds its namespace to the tenant's `network.allowFrom`.",
            allowed.join(", ")
        )
    }
}

/// Keys of a Cilium endpoint selector: `[source:]io.kubernetes.pod.namespace` names the
/// namespace, `[source:]io.cilium.k8s.namespace.labels.<label>` is a namespace label.
fn cilium_key(key: &str) -> Key<'_> {
    let bare = ["k8s:", "any:"]
        .iter()
        .find_map(|source| key.strip_prefix(source))
        .unwrap_or(key);
    if bare == CILIUM_NAMESPACE_KEY {
        Key::Name
    } else if let Some(label) = bare.strip_prefix(CILIUM_NAMESPACE_LABELS) {
        Key::NamespaceLabel(label)
    } else {
        Key::Other
    }
}

/// Keys of a Kubernetes `namespaceSelector`: every key is a namespace label.
fn kubernetes_key(key: &str) -> Key<'_> {
    Key::NamespaceLabel(key)
}

fn selector_is_empty(selector: &Map<String, Value>) -> bool {
    let empty = |field: &str| match selector.get(field) {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    };
    empty("matchLabels") && empty("matchExpressions")
}
