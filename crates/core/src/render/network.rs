//! The network floor: deny by default, then allow only what a tenant always needs.
//!
//! A new namespace denies all ingress before any workload exists. Traffic is allowed between
//! all of the tenant's own namespaces (selected by the tenant label, which tenants cannot
//! edit on a Namespace), from the platform gateway's namespace and the tenant's `allowFrom`
//! list. With default-deny egress, DNS and the tenant's own namespaces stay reachable.
//! Tenants add their own allow-lists on top; they cannot remove the floor because the
//! guardrails protect these objects.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::networking::v1::{
        NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
        NetworkPolicyPort, NetworkPolicySpec,
    },
    apimachinery::pkg::{
        apis::meta::v1::{LabelSelector, LabelSelectorRequirement},
        util::intstr::IntOrString,
    },
};
use serde_json::{Value, json};
use tenantry_api::tenant::NetworkProvider;

use super::Renderer;
use crate::object::Layer;

/// Name of the default-deny NetworkPolicy.
pub const DEFAULT_DENY: &str = "tenantry-default-deny";
/// Name of the NetworkPolicy allowing ingress from the tenant and the platform.
pub const ALLOW_INGRESS: &str = "tenantry-allow-ingress";
/// Name of the NetworkPolicy allowing DNS and intra-tenant egress.
pub const ALLOW_EGRESS: &str = "tenantry-allow-egress";
/// Name of the CiliumNetworkPolicy that carries the whole floor.
pub const CILIUM_ISOLATION: &str = "tenantry-isolation";

const CILIUM_NETWORK_POLICY: (&str, &str) = ("cilium.io/v2", "CiliumNetworkPolicy");

pub(super) fn render(r: &mut Renderer<'_>) {
    match r.t.network.provider {
        NetworkProvider::Kubernetes => kubernetes(r),
        NetworkProvider::Cilium => cilium(r),
    }
}

fn tenant_peer(r: &Renderer<'_>) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                r.ctx.tenant_label().to_owned(),
                r.t.name.clone(),
            )])),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    }
}

fn kubernetes(r: &mut Renderer<'_>) {
    let deny_egress = r.t.network.default_deny_egress;
    let mut ingress_from = vec![tenant_peer(r)];
    if !r.t.network.allow_from.is_empty() {
        ingress_from.push(NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "kubernetes.io/metadata.name".to_owned(),
                    operator: "In".to_owned(),
                    values: Some(r.t.network.allow_from.clone()),
                }]),
                ..LabelSelector::default()
            }),
            ..NetworkPolicyPeer::default()
        });
    }
    let dns = &r.ctx.platform.dns;
    let dns_rule = NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "kubernetes.io/metadata.name".to_owned(),
                    dns.namespace.clone(),
                )])),
                ..LabelSelector::default()
            }),
            pod_selector: Some(LabelSelector {
                match_labels: Some(dns.pod_labels.clone()),
                ..LabelSelector::default()
            }),
            ..NetworkPolicyPeer::default()
        }]),
        ports: Some(
            dns.ports
                .iter()
                .flat_map(|p| {
                    ["UDP", "TCP"].map(|proto| NetworkPolicyPort {
                        protocol: Some(proto.to_owned()),
                        port: Some(IntOrString::Int(i32::from(*p))),
                        end_port: None,
                    })
                })
                .collect(),
        ),
    };

    for ns in r.t.namespaces.clone() {
        let mut policy_types = vec!["Ingress".to_owned()];
        if deny_egress {
            policy_types.push("Egress".to_owned());
        }
        let deny = NetworkPolicy {
            metadata: r.meta(DEFAULT_DENY, Some(&ns)),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(policy_types),
                ..NetworkPolicySpec::default()
            }),
        };
        r.push_typed(Layer::Network, Some(&ns), DEFAULT_DENY, &deny);

        let allow = NetworkPolicy {
            metadata: r.meta(ALLOW_INGRESS, Some(&ns)),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Ingress".to_owned()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(ingress_from.clone()),
                    ports: None,
                }]),
                ..NetworkPolicySpec::default()
            }),
        };
        r.push_typed(Layer::Network, Some(&ns), ALLOW_INGRESS, &allow);

        if deny_egress {
            let egress = NetworkPolicy {
                metadata: r.meta(ALLOW_EGRESS, Some(&ns)),
                spec: Some(NetworkPolicySpec {
                    pod_selector: Some(LabelSelector::default()),
                    policy_types: Some(vec!["Egress".to_owned()]),
                    egress: Some(vec![
                        NetworkPolicyEgressRule {
                            to: Some(vec![tenant_peer(r)]),
                            ports: None,
                        },
                        dns_rule.clone(),
                    ]),
                    ..NetworkPolicySpec::default()
                }),
            };
            r.push_typed(Layer::Network, Some(&ns), ALLOW_EGRESS, &egress);
        }
    }
}

/// Cilium selects namespaces through the `io.cilium.k8s.namespace.labels.` prefix and pods'
/// namespaces through `io.kubernetes.pod.namespace`.
fn cilium(r: &mut Renderer<'_>) {
    let tenant_endpoints = json!({
        "matchLabels": {
            format!("k8s:io.cilium.k8s.namespace.labels.{}", r.ctx.tenant_label()): r.t.name,
        }
    });
    let mut ingress = vec![json!({ "fromEndpoints": [tenant_endpoints] })];
    if !r.t.network.allow_from.is_empty() {
        ingress.push(json!({
            "fromEndpoints": [{
                "matchExpressions": [{
                    "key": "k8s:io.kubernetes.pod.namespace",
                    "operator": "In",
                    "values": r.t.network.allow_from,
                }]
            }]
        }));
    }
    let deny_egress = r.t.network.default_deny_egress;
    let dns = &r.ctx.platform.dns;
    let mut dns_labels = serde_json::Map::new();
    dns_labels.insert(
        "k8s:io.kubernetes.pod.namespace".into(),
        Value::from(dns.namespace.as_str()),
    );
    for (k, v) in &dns.pod_labels {
        dns_labels.insert(format!("k8s:{k}"), Value::from(v.as_str()));
    }
    let egress = json!([
        { "toEndpoints": [tenant_endpoints] },
        {
            "toEndpoints": [{ "matchLabels": dns_labels }],
            "toPorts": [{
                "ports": dns.ports.iter().map(|p| json!({"port": p.to_string(), "protocol": "ANY"})).collect::<Vec<_>>(),
                "rules": { "dns": [{ "matchPattern": "*" }] },
            }],
        },
    ]);
    for ns in r.t.namespaces.clone() {
        let mut spec = json!({
            "endpointSelector": {},
            "enableDefaultDeny": { "ingress": true, "egress": deny_egress },
            "ingress": ingress,
        });
        if deny_egress {
            spec["egress"] = egress.clone();
        }
        r.push_custom(
            Layer::Network,
            CILIUM_NETWORK_POLICY,
            Some(&ns),
            CILIUM_ISOLATION,
            json!({ "spec": spec }),
        );
    }
}
