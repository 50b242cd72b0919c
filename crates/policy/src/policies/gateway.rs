//! `gateway-parent`: tenant routes attach only to the platform Gateway.
//!
//! The shared Gateway is where TLS, rate limits and the network policy exception for ingress
//! live. A route attached to any other parent (another tenant's Gateway, a mesh Service, a
//! listener the platform did not open to tenants) either does nothing or routes around all of
//! it, so both are refused.

use serde_json::Value;

use super::{objects_in, str_of};
use crate::engine::{Eval, Sink};

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

pub(crate) fn evaluate(eval: &Eval<'_>, sink: &mut Sink) {
    let view = eval.view;
    if view.group != GATEWAY_GROUP || !matches!(view.kind, "HTTPRoute" | "GRPCRoute") {
        return;
    }
    let Some(gateway) = &eval.engine.gateway else {
        // Reported by `Engine::skipped`.
        return;
    };
    let Some(spec) = view.object.get("spec").and_then(Value::as_object) else {
        return;
    };
    let platform = match &gateway.section_name {
        Some(section) => format!(
            "Gateway {}/{} (sectionName {section})",
            gateway.namespace, gateway.name
        ),
        None => format!("Gateway {}/{}", gateway.namespace, gateway.name),
    };
    for (i, parent) in objects_in(spec, "parentRefs") {
        let at = |field: &str| format!("spec.parentRefs[{i}].{field}");
        let group = str_of(parent, "group").unwrap_or(GATEWAY_GROUP);
        let kind = str_of(parent, "kind").unwrap_or("Gateway");
        let name = str_of(parent, "name").unwrap_or("");
        // An unset namespace means the route's own, which is never the platform's.
        let namespace = str_of(parent, "namespace").or(eval.own_namespace);
        let section = str_of(parent, "sectionName");
        let problem = if group != GATEWAY_GROUP || kind != "Gateway" {
            Some((
                at("kind"),
                format!("attaches to a {kind} ({group}), not a Gateway"),
            ))
        } else if name != gateway.name {
            Some((at("name"), format!("attaches to Gateway {name:?}")))
        } else if namespace != Some(gateway.namespace.as_str()) {
            Some((
                at("namespace"),
                match namespace {
                    Some(ns) => format!("attaches to Gateway {name:?} in namespace {ns:?}"),
                    None => format!(
                        "attaches to Gateway {name:?} in the route's own namespace (no namespace set)"
                    ),
                },
            ))
        } else {
            match (&gateway.section_name, section) {
                (Some(want), Some(got)) if want == got => None,
                (Some(_), Some(got)) => {
                    Some((at("sectionName"), format!("attaches to listener {got:?}")))
                }
                (Some(_), None) => Some((
                    at("sectionName"),
                    "sets no sectionName, so it would attach to every listener of the Gateway"
                        .to_owned(),
                )),
                (None, _) => None,
            }
        };
        if let Some((path, what)) = problem {
            let mut remediation = format!(
                "Use parentRefs: [{{name: {}, namespace: {}",
                gateway.name, gateway.namespace
            );
            if let Some(section) = &gateway.section_name {
                remediation.push_str(&format!(", sectionName: {section}"));
            }
            remediation.push_str("}].");
            sink.deny(
                "gateway-parent",
                path,
                format!(
                    "{} {what}; tenant routes may attach only to the platform {platform}",
                    view.kind
                ),
                remediation,
            );
        }
    }
}
