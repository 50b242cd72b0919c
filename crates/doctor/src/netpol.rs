//! Does the network let one flow through? A small evaluator of NetworkPolicies and
//! CiliumNetworkPolicies, so `doctor` can say from the objects alone (offline, from the
//! committed tree) whether a tenant's pods reach DNS or the gateway reaches them, and name
//! the policy that decides.
//!
//! It follows the two APIs' own rules rather than a model of them: a pod is isolated in a
//! direction once any policy selecting it has that direction, and then a flow passes only if
//! some selecting policy has a rule matching the peer and the port (rules add up, nothing
//! subtracts, except Cilium's deny rules, which win). What cannot be known from objects is
//! never guessed as allowed: a peer whose pod labels are unknown (the gateway's pods) matches
//! only a selector that selects every pod, a named port matches no number, and an `ipBlock`
//! matches pods only when it is the whole address space. The namespace labels known for a
//! platform namespace are the one Kubernetes sets, `kubernetes.io/metadata.name`, which is
//! what Tenantry's policies select on.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The label Kubernetes puts on every namespace, with its name.
pub(crate) const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A pod, as far as a policy can see it.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub(crate) namespace: String,
    pub(crate) namespace_labels: BTreeMap<String, String>,
    /// `None`: unknown (another component's pods), matched only by select-all selectors.
    pub(crate) pod_labels: Option<BTreeMap<String, String>>,
}

impl Endpoint {
    /// Any pod of a platform namespace known only by its name.
    pub(crate) fn in_namespace(
        namespace: &str,
        pod_labels: Option<BTreeMap<String, String>>,
    ) -> Self {
        Self {
            namespace: namespace.to_owned(),
            namespace_labels: BTreeMap::from([(
                NAMESPACE_NAME_LABEL.to_owned(),
                namespace.to_owned(),
            )]),
            pod_labels,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// From the pod to the peer.
    Egress,
    /// From the peer to the pod.
    Ingress,
}

/// The port of a flow: `None` for "whatever port the workload serves", which any rule's
/// port list satisfies (the tenant chooses its own ports).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Port {
    pub(crate) protocol: &'static str,
    pub(crate) number: Option<u16>,
}

/// What the policies decide for one flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// No policy isolates the pod in that direction.
    Open,
    /// Allowed by this policy (`Kind namespace/name`).
    Allowed(String),
    /// Isolated by these policies and allowed by none (or denied by a Cilium deny rule).
    Denied(Vec<String>),
}

/// The decision for traffic between `pod` and `peer` in `direction` on `port`, under every
/// policy in `objects` (other kinds are ignored).
pub(crate) fn evaluate(
    objects: &[Value],
    pod: &Endpoint,
    direction: Direction,
    peer: &Endpoint,
    port: Port,
) -> Reach {
    let mut isolating = Vec::new();
    let mut allowed = None;
    for object in objects {
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
        if namespace != pod.namespace {
            continue;
        }
        let verdicts = match object["kind"].as_str() {
            Some("NetworkPolicy") => vec![kubernetes(
                &object["spec"],
                namespace,
                pod,
                direction,
                peer,
                port,
            )],
            Some("CiliumNetworkPolicy") => cilium_specs(object)
                .into_iter()
                .map(|spec| cilium(spec, namespace, pod, direction, peer, port))
                .collect(),
            _ => continue,
        };
        for v in verdicts {
            match v {
                Decision::NotSelected => {}
                Decision::Denied => return Reach::Denied(vec![reference(object)]),
                Decision::Isolates { allows } => {
                    isolating.push(reference(object));
                    if allows && allowed.is_none() {
                        allowed = Some(reference(object));
                    }
                }
            }
        }
    }
    isolating.sort();
    isolating.dedup();
    match (isolating.is_empty(), allowed) {
        (true, _) => Reach::Open,
        (false, Some(by)) => Reach::Allowed(by),
        (false, None) => Reach::Denied(isolating),
    }
}

/// One policy's say on a flow.
enum Decision {
    /// It does not select the pod, or not in that direction.
    NotSelected,
    /// It isolates the pod in that direction, and does or does not allow the flow.
    Isolates { allows: bool },
    /// A Cilium deny rule matches: nothing else can allow it.
    Denied,
}

fn reference(object: &Value) -> String {
    crate::reference(object)
}

fn kubernetes(
    spec: &Value,
    namespace: &str,
    pod: &Endpoint,
    direction: Direction,
    peer: &Endpoint,
    port: Port,
) -> Decision {
    if !selects(&spec["podSelector"], pod.pod_labels.as_ref()) {
        return Decision::NotSelected;
    }
    let (type_name, rules_key, peers_key) = match direction {
        Direction::Egress => ("Egress", "egress", "to"),
        Direction::Ingress => ("Ingress", "ingress", "from"),
    };
    let types = match spec["policyTypes"].as_array() {
        Some(types) => types.iter().any(|t| t == type_name),
        // Unset: Ingress always, Egress when there are egress rules.
        None => direction == Direction::Ingress || spec["egress"].is_array(),
    };
    if !types {
        return Decision::NotSelected;
    }
    let allows = spec[rules_key]
        .as_array()
        .into_iter()
        .flatten()
        .any(|rule| {
            let peers_match = match rule[peers_key].as_array() {
                None => true,
                Some(peers) if peers.is_empty() => true,
                Some(peers) => peers.iter().any(|p| kubernetes_peer(p, namespace, peer)),
            };
            peers_match && ports_match(&rule["ports"], port, "TCP")
        });
    Decision::Isolates { allows }
}

fn kubernetes_peer(p: &Value, namespace: &str, peer: &Endpoint) -> bool {
    if let Some(block) = p.get("ipBlock") {
        return whole_address_space(&block["cidr"])
            && block["except"].as_array().is_none_or(Vec::is_empty);
    }
    let namespace_ok = match p.get("namespaceSelector") {
        Some(selector) => matches(selector, &peer.namespace_labels),
        None => peer.namespace == namespace,
    };
    let pod_ok = match p.get("podSelector") {
        Some(selector) => selects(selector, peer.pod_labels.as_ref()),
        None => true,
    };
    namespace_ok && pod_ok
}

fn whole_address_space(cidr: &Value) -> bool {
    matches!(cidr.as_str(), Some("0.0.0.0/0" | "::/0"))
}

/// A policy port list against a flow's port. Absent or empty: every port.
fn ports_match(ports: &Value, port: Port, default_protocol: &str) -> bool {
    let Some(list) = ports.as_array().filter(|l| !l.is_empty()) else {
        return true;
    };
    list.iter().any(|p| {
        let protocol = p["protocol"].as_str().unwrap_or(default_protocol);
        let protocol_ok = port.number.is_none()
            || protocol.eq_ignore_ascii_case(port.protocol)
            || protocol.eq_ignore_ascii_case("ANY");
        let Some(number) = port.number else {
            return protocol_ok;
        };
        let first = match &p["port"] {
            Value::Null => return protocol_ok,
            Value::Number(n) => n.as_u64(),
            // Cilium writes ports as strings; a name (`dns`) is resolved per pod, not here.
            Value::String(s) => s.parse::<u64>().ok(),
            _ => None,
        };
        let Some(first) = first else { return false };
        let last = p["endPort"].as_u64().unwrap_or(first);
        protocol_ok && (first..=last).contains(&u64::from(number))
    })
}

/// A label selector against labels; `None` labels (unknown pods) are selected only by a
/// selector that selects everything.
fn selects(selector: &Value, labels: Option<&BTreeMap<String, String>>) -> bool {
    match labels {
        Some(labels) => matches(selector, labels),
        None => selects_all(selector),
    }
}

fn selects_all(selector: &Value) -> bool {
    let empty = |k: &str| match &selector[k] {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    selector.is_null()
        || (selector.is_object() && empty("matchLabels") && empty("matchExpressions"))
}

/// `matchLabels` and `matchExpressions` against a label set. Keys are read without a Cilium
/// source prefix (`k8s:`, `any:`), so the same function serves both APIs.
fn matches(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let get = |key: &str| labels.get(unprefixed(key)).map(String::as_str);
    let labels_ok = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| get(k) == v.as_str());
    let expressions_ok = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let value = get(e["key"].as_str().unwrap_or_default());
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match e["operator"].as_str() {
                Some("In") => value.is_some_and(|v| values.contains(&v)),
                Some("NotIn") => value.is_none_or(|v| !values.contains(&v)),
                Some("Exists") => value.is_some(),
                Some("DoesNotExist") => value.is_none(),
                _ => false,
            }
        });
    labels_ok && expressions_ok
}

fn unprefixed(key: &str) -> &str {
    key.strip_prefix("k8s:")
        .or_else(|| key.strip_prefix("any:"))
        .unwrap_or(key)
}

const CILIUM_NAMESPACE: &str = "io.kubernetes.pod.namespace";
const CILIUM_NAMESPACE_LABELS: &str = "io.cilium.k8s.namespace.labels.";

/// A CiliumNetworkPolicy's rules: `spec`, and each of `specs`.
fn cilium_specs(object: &Value) -> Vec<&Value> {
    let mut specs: Vec<&Value> = object["spec"]
        .is_object()
        .then_some(&object["spec"])
        .into_iter()
        .collect();
    specs.extend(object["specs"].as_array().into_iter().flatten());
    specs
}

/// The labels Cilium gives an endpoint: its pod's, its namespace's name and its namespace's
/// labels (under `io.cilium.k8s.namespace.labels.`). `None` when its pod labels are unknown.
fn cilium_labels(e: &Endpoint) -> Option<BTreeMap<String, String>> {
    let mut labels = e.pod_labels.clone()?;
    labels.insert(CILIUM_NAMESPACE.to_owned(), e.namespace.clone());
    for (k, v) in &e.namespace_labels {
        labels.insert(format!("{CILIUM_NAMESPACE_LABELS}{k}"), v.clone());
    }
    Some(labels)
}

/// A rule's endpoint selector: without the namespace key it means the policy's own namespace
/// (Cilium adds it). Unknown pod labels match only when every other term selects all.
fn cilium_endpoint(selector: &Value, namespace: &str, peer: &Endpoint) -> bool {
    let names_namespace = selector["matchLabels"]
        .as_object()
        .is_some_and(|m| m.keys().any(|k| unprefixed(k) == CILIUM_NAMESPACE))
        || selector["matchExpressions"].as_array().is_some_and(|a| {
            a.iter().any(|e| {
                e["key"]
                    .as_str()
                    .is_some_and(|k| unprefixed(k) == CILIUM_NAMESPACE)
            })
        });
    if !names_namespace && peer.namespace != namespace {
        return false;
    }
    match cilium_labels(peer) {
        Some(labels) => matches(selector, &labels),
        None => {
            // Only the namespace terms can be judged: keep them, require the rest be empty.
            let mut namespace_only = Map::new();
            let mut other = false;
            for (k, v) in selector["matchLabels"].as_object().into_iter().flatten() {
                if unprefixed(k) == CILIUM_NAMESPACE
                    || unprefixed(k).starts_with(CILIUM_NAMESPACE_LABELS)
                {
                    namespace_only.insert(k.clone(), v.clone());
                } else {
                    other = true;
                }
            }
            let mut expressions = Vec::new();
            for e in selector["matchExpressions"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let k = unprefixed(e["key"].as_str().unwrap_or_default());
                if k == CILIUM_NAMESPACE || k.starts_with(CILIUM_NAMESPACE_LABELS) {
                    expressions.push(e.clone());
                } else {
                    other = true;
                }
            }
            let labels = cilium_labels(&Endpoint {
                pod_labels: Some(BTreeMap::new()),
                ..peer.clone()
            })
            .unwrap_or_default();
            let selector = serde_json::json!({ "matchLabels": namespace_only, "matchExpressions": expressions });
            !other && matches(&selector, &labels)
        }
    }
}

fn cilium(
    spec: &Value,
    namespace: &str,
    pod: &Endpoint,
    direction: Direction,
    peer: &Endpoint,
    port: Port,
) -> Decision {
    let selected = match cilium_labels(pod) {
        Some(labels) => spec
            .get("endpointSelector")
            .is_some_and(|s| matches(s, &labels)),
        None => spec.get("endpointSelector").is_some_and(selects_all),
    };
    if !selected {
        return Decision::NotSelected;
    }
    let (key, deny_key, endpoints_key, entities_key, default_deny) = match direction {
        Direction::Egress => (
            "egress",
            "egressDeny",
            "toEndpoints",
            "toEntities",
            "egress",
        ),
        Direction::Ingress => (
            "ingress",
            "ingressDeny",
            "fromEndpoints",
            "fromEntities",
            "ingress",
        ),
    };
    let rule_matches = |rule: &Value| {
        let endpoints = rule[endpoints_key].as_array();
        let entities = rule[entities_key].as_array();
        let prefix = if direction == Direction::Egress {
            "to"
        } else {
            "from"
        };
        let any_peer_field = rule
            .as_object()
            .is_some_and(|r| r.keys().any(|k| k.starts_with(prefix) && k != "toPorts"));
        let peer_ok = !any_peer_field
            || endpoints.is_some_and(|e| e.iter().any(|s| cilium_endpoint(s, namespace, peer)))
            || entities.is_some_and(|e| {
                e.iter()
                    .any(|x| matches!(x.as_str(), Some("all" | "cluster")))
            });
        let ports_ok = match rule["toPorts"].as_array().filter(|l| !l.is_empty()) {
            None => true,
            Some(list) => list.iter().any(|p| ports_match(&p["ports"], port, "ANY")),
        };
        peer_ok && ports_ok
    };
    if spec[deny_key]
        .as_array()
        .into_iter()
        .flatten()
        .any(rule_matches)
    {
        return Decision::Denied;
    }
    let isolates = match spec["enableDefaultDeny"][default_deny].as_bool() {
        Some(on) => on,
        None => spec.get(key).is_some() || spec.get(deny_key).is_some(),
    };
    if !isolates {
        // Rules still allow, but nothing is denied by this policy.
        return Decision::NotSelected;
    }
    Decision::Isolates {
        allows: spec[key].as_array().into_iter().flatten().any(rule_matches),
    }
}

/// The namespace and port of an in-cluster service address
/// (`http://openbao.openbao.svc:8200`), or `None` when it names no in-cluster service.
pub(crate) fn service_namespace_port(address: &str) -> Option<(String, u16)> {
    let (scheme, rest) = address.split_once("://").unwrap_or(("http", address));
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (authority, if scheme == "https" { 443 } else { 80 }),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host = host.strip_suffix(".cluster.local").unwrap_or(&host);
    let host = host.strip_suffix(".svc").unwrap_or(host);
    let mut parts = host.split('.');
    let (Some(_service), Some(namespace), None) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let dns_label = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    dns_label(namespace).then(|| (namespace.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(ns: &str) -> Endpoint {
        Endpoint {
            namespace: ns.to_owned(),
            namespace_labels: BTreeMap::from([
                (NAMESPACE_NAME_LABEL.to_owned(), ns.to_owned()),
                ("tenantry.dev/tenant".to_owned(), "shop".to_owned()),
            ]),
            pod_labels: Some(BTreeMap::new()),
        }
    }

    fn dns() -> Endpoint {
        Endpoint::in_namespace(
            "kube-system",
            Some(BTreeMap::from([(
                "k8s-app".to_owned(),
                "kube-dns".to_owned(),
            )])),
        )
    }

    const UDP53: Port = Port {
        protocol: "UDP",
        number: Some(53),
    };

    fn policy(name: &str, spec: Value) -> Value {
        json!({ "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": { "name": name, "namespace": "shop" }, "spec": spec })
    }

    fn deny_all() -> Value {
        policy(
            "deny",
            json!({ "podSelector": {}, "policyTypes": ["Ingress", "Egress"] }),
        )
    }

    fn allow_dns(ports: Value) -> Value {
        policy(
            "dns",
            json!({ "podSelector": {}, "policyTypes": ["Egress"], "egress": [{
            "to": [{ "namespaceSelector": { "matchLabels": { NAMESPACE_NAME_LABEL: "kube-system" } },
                     "podSelector": { "matchLabels": { "k8s-app": "kube-dns" } } }],
            "ports": ports }] }),
        )
    }

    #[test]
    fn no_policy_is_open_and_an_isolating_one_denies_until_a_rule_allows() {
        let e = |objects: &[Value], port| {
            evaluate(objects, &pod("shop"), Direction::Egress, &dns(), port)
        };
        assert_eq!(e(&[], UDP53), Reach::Open);
        // Ingress-only isolation leaves egress open.
        let ingress_only = policy("in", json!({ "podSelector": {} }));
        assert_eq!(e(&[ingress_only], UDP53), Reach::Open);
        assert_eq!(
            e(&[deny_all()], UDP53),
            Reach::Denied(vec!["NetworkPolicy shop/deny".to_owned()])
        );
        let dns_udp = allow_dns(json!([{ "protocol": "UDP", "port": 53 }]));
        assert_eq!(
            e(&[deny_all(), dns_udp.clone()], UDP53),
            Reach::Allowed("NetworkPolicy shop/dns".to_owned())
        );
        // Protocol defaults to TCP; a UDP-only rule does not allow TCP.
        let tcp53 = Port {
            protocol: "TCP",
            number: Some(53),
        };
        assert!(matches!(e(&[deny_all(), dns_udp], tcp53), Reach::Denied(_)));
        let range = allow_dns(json!([{ "port": 50, "endPort": 60 }]));
        assert!(matches!(e(&[deny_all(), range], tcp53), Reach::Allowed(_)));
        // A named port is not resolved from objects.
        let named = allow_dns(json!([{ "protocol": "UDP", "port": "dns" }]));
        assert!(matches!(e(&[deny_all(), named], UDP53), Reach::Denied(_)));
    }

    #[test]
    fn peers_match_by_namespace_labels_pod_labels_and_own_namespace() {
        let to = |peer: Value| {
            vec![
                deny_all(),
                policy(
                    "p",
                    json!({ "podSelector": {}, "policyTypes": ["Egress"], "egress": [{ "to": [peer] }] }),
                ),
            ]
        };
        let e = |objects: Vec<Value>| {
            evaluate(&objects, &pod("shop"), Direction::Egress, &dns(), UDP53)
        };
        // podSelector alone: the policy's own namespace only.
        assert!(matches!(
            e(to(json!({ "podSelector": {} }))),
            Reach::Denied(_)
        ));
        assert!(matches!(
            e(to(json!({ "namespaceSelector": {} }))),
            Reach::Allowed(_)
        ));
        assert!(matches!(
            e(to(
                json!({ "namespaceSelector": { "matchExpressions": [{ "key": NAMESPACE_NAME_LABEL, "operator": "In", "values": ["kube-system"] }] } })
            )),
            Reach::Allowed(_)
        ));
        assert!(matches!(
            e(to(
                json!({ "namespaceSelector": { "matchLabels": { NAMESPACE_NAME_LABEL: "kube-system" } }, "podSelector": { "matchLabels": { "k8s-app": "other" } } })
            )),
            Reach::Denied(_)
        ));
        assert!(matches!(
            e(to(json!({ "ipBlock": { "cidr": "0.0.0.0/0" } }))),
            Reach::Allowed(_)
        ));
        assert!(matches!(
            e(to(json!({ "ipBlock": { "cidr": "10.0.0.0/8" } }))),
            Reach::Denied(_)
        ));
    }

    #[test]
    fn unknown_peer_pods_match_only_select_all_selectors() {
        let gateway = Endpoint::in_namespace("gateway", None);
        let allow = |pod_selector: Value| {
            vec![
                deny_all(),
                policy(
                    "in",
                    json!({ "podSelector": {}, "ingress": [{ "from": [{
                "namespaceSelector": { "matchLabels": { NAMESPACE_NAME_LABEL: "gateway" } }, "podSelector": pod_selector }] }] }),
                ),
            ]
        };
        let any = Port {
            protocol: "TCP",
            number: None,
        };
        let e = |objects: Vec<Value>| {
            evaluate(&objects, &pod("shop"), Direction::Ingress, &gateway, any)
        };
        assert!(matches!(e(allow(json!({}))), Reach::Allowed(_)));
        assert!(matches!(
            e(allow(json!({ "matchLabels": { "app": "envoy" } }))),
            Reach::Denied(_)
        ));
    }

    fn cnp(spec: Value) -> Value {
        json!({ "apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                "metadata": { "name": "c", "namespace": "shop" }, "spec": spec })
    }

    #[test]
    fn cilium_rules_select_by_endpoint_labels_and_ports() {
        let e = |objects: &[Value], port| {
            evaluate(objects, &pod("shop"), Direction::Egress, &dns(), port)
        };
        let dns_rule = json!({
            "toEndpoints": [{ "matchLabels": { "k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns" } }],
            "toPorts": [{ "ports": [{ "port": "53", "protocol": "ANY" }] }],
        });
        let allowed = cnp(json!({ "endpointSelector": {}, "egress": [dns_rule] }));
        assert!(matches!(e(&[allowed], UDP53), Reach::Allowed(_)));
        // Without the namespace key a selector means the policy's own namespace.
        let own = cnp(
            json!({ "endpointSelector": {}, "egress": [{ "toEndpoints": [{ "matchLabels": { "k8s:k8s-app": "kube-dns" } }] }] }),
        );
        assert!(matches!(e(&[own], UDP53), Reach::Denied(_)));
        let off = cnp(
            json!({ "endpointSelector": {}, "enableDefaultDeny": { "egress": false }, "egress": [] }),
        );
        assert_eq!(e(&[off], UDP53), Reach::Open);
        let denied =
            cnp(json!({ "endpointSelector": {}, "egressDeny": [{ "toEntities": ["all"] }] }));
        assert!(matches!(
            e(&[denied, allow_dns(json!(null))], UDP53),
            Reach::Denied(_)
        ));
    }

    #[test]
    fn service_addresses_name_their_namespace_and_port() {
        let s = service_namespace_port;
        assert_eq!(
            s("http://openbao.openbao.svc:8200"),
            Some(("openbao".to_owned(), 8200))
        );
        assert_eq!(
            s("https://bao.vault.svc.cluster.local"),
            Some(("vault".to_owned(), 443))
        );
        assert_eq!(s("https://vault.example.com:8200"), None);
        assert_eq!(s("http://10.0.0.5:8200"), None);
    }
}
