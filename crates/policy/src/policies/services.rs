//! Services that bypass the platform's front door: node ports and load balancers reach tenant
//! pods without the shared Gateway, and `externalIPs` let a Service claim traffic for any
//! address in the cluster (CVE-2020-8554).

use serde_json::Value;

use crate::engine::{ObjectView, PolicyId, Sink};

/// `no-nodeport`, `no-loadbalancer` and `no-external-ips` on core `v1` Services.
pub(crate) fn evaluate(id: PolicyId, view: &ObjectView<'_>, sink: &mut Sink) {
    if !(view.group.is_empty() && view.kind == "Service") {
        return;
    }
    let Some(spec) = view.object.get("spec").and_then(Value::as_object) else {
        return;
    };
    let service_type = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    match id {
        PolicyId::NoNodePort => {
            if service_type == "NodePort" {
                sink.deny(
                    "node-port",
                    "spec.type".to_owned(),
                    "Service type NodePort opens a port on every node, around the platform \
                     Gateway"
                        .to_owned(),
                    "Use type ClusterIP and expose the Service through an HTTPRoute on the \
                     platform Gateway."
                        .to_owned(),
                );
                return;
            }
            let ports = spec.get("ports").and_then(Value::as_array);
            for (i, port) in ports.map(Vec::as_slice).unwrap_or(&[]).iter().enumerate() {
                let node_port = port.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
                if node_port != 0 {
                    sink.deny(
                        "node-port",
                        format!("spec.ports[{i}].nodePort"),
                        format!("Service port {i} asks for node port {node_port}"),
                        "Remove nodePort; expose the Service through the platform Gateway."
                            .to_owned(),
                    );
                }
            }
        }
        PolicyId::NoLoadBalancer if service_type == "LoadBalancer" => {
            sink.deny(
                "load-balancer",
                "spec.type".to_owned(),
                "Service type LoadBalancer provisions an external load balancer around the \
                 platform Gateway"
                    .to_owned(),
                "Use type ClusterIP and expose the Service through an HTTPRoute on the platform \
                 Gateway."
                    .to_owned(),
            );
        }
        PolicyId::NoExternalIps => {
            let ips = spec.get("externalIPs").and_then(Value::as_array);
            for (i, ip) in ips.map(Vec::as_slice).unwrap_or(&[]).iter().enumerate() {
                let ip = ip.as_str().unwrap_or("");
                sink.deny(
                    "external-ips",
                    format!("spec.externalIPs[{i}]"),
                    format!(
                        "Service claims external IP {ip:?}: traffic for that address from \
                         anywhere in the cluster would reach this tenant"
                    ),
                    "Remove spec.externalIPs.".to_owned(),
                );
            }
        }
        _ => {}
    }
}
