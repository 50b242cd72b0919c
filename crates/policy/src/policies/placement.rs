//! `tenant-placement` and `allowed-classes`: a tenant's pods land only on its nodes, and its
//! objects use only the shared classes the platform gave it.
//!
//! Everything here is cluster-wide state a namespace boundary does not contain: a pod naming
//! its node (`nodeName`) skips the scheduler and every taint; one tolerating `Exists` without a
//! key lands on control-plane or another team's dedicated nodes; `system-node-critical`
//! preempts other tenants' pods; a StorageClass, IngressClass, GatewayClass or RuntimeClass may
//! be another team's or the platform's. The bounds come from the tenant (`placement`,
//! `classes`, within the platform's `defaults`), or from the platform's defaults when the
//! tenant is not known (the webhook, `check` without `--tenant`).
//!
//! Kubernetes' node-condition taints (`node.kubernetes.io/*`) are always tolerable: the API
//! server adds tolerations for two of them to every pod and the DaemonSet controller the rest
//! to its pods, and tolerating them reaches nobody's dedicated node. Mutation is not the
//! answer: the denial says what to write.

use serde_json::{Map, Value};
use tenantry_api::tenant::{
    AllowedToleration, ClassList, Classes, Placement, TaintEffect, TolerationOperator,
};
use tenantry_core::placement::{describe_toleration, is_node_condition_taint, tolerates_within};

use super::{objects_in, str_of};
use crate::{
    engine::{Eval, Operation, Sink, join},
    pss::{self, PodTemplateRef},
};

/// Kubernetes reserves PriorityClass names with this prefix for its own critical pods.
const SYSTEM_PRIORITY_PREFIX: &str = "system-";

/// The bounds that apply to the object under judgement.
fn bounds<'a>(eval: &Eval<'a>) -> (&'a Placement, &'a Classes) {
    match eval.ctx.tenant {
        Some(t) => (&t.placement, &t.classes),
        None => (&eval.engine.default_placement, &eval.engine.default_classes),
    }
}

/// Whether this is an update that keeps `fields` of the pod spec as they were. Such an update
/// is not judged on them: it changes nothing they decide, and refusing it would freeze an
/// object admitted before the bounds existed.
fn unchanged_on_update(eval: &Eval<'_>, template: &PodTemplateRef<'_>, fields: &[&str]) -> bool {
    eval.ctx.operation == Operation::Update
        && eval
            .ctx
            .old_object
            .and_then(pss::pod_template)
            .is_some_and(|old| {
                fields
                    .iter()
                    .all(|f| template.spec.get(f) == old.spec.get(f))
            })
}

/// `tenant-placement` on a pod or pod template.
pub(crate) fn placement(eval: &Eval<'_>, template: &PodTemplateRef<'_>, sink: &mut Sink) {
    let Some(spec) = template.spec.as_object() else {
        return;
    };
    // Not a pod policy's "significant update": a running pod's tolerations can grow.
    if unchanged_on_update(eval, template, &["nodeName", "nodeSelector", "tolerations"]) {
        return;
    }
    let (placement, _) = bounds(eval);
    let at = |field: &str| join(template.path_prefix, &format!("spec.{field}"));
    // A bound pod's nodeName was set by the scheduler's binding: only a create (or a
    // template, which never carries the scheduler's choice) names a node by hand.
    let bare_pod_update =
        template.path_prefix.is_empty() && eval.ctx.operation == Operation::Update;
    if let Some(node) = str_of(spec, "nodeName").filter(|n| !n.is_empty())
        && !bare_pod_update
    {
        sink.deny(
            "node-name",
            at("nodeName"),
            format!("names node {node:?}: only the scheduler places a tenant's pods"),
            match &placement.node_selector {
                Some(labels) if !labels.is_empty() => format!(
                    "Remove nodeName; the tenant's pods select their nodes with nodeSelector {}.",
                    pairs(labels)
                ),
                _ => "Remove nodeName and let the scheduler choose.".to_owned(),
            },
        );
    }
    if let Some(required) = &placement.node_selector {
        let selector = spec.get("nodeSelector").and_then(Value::as_object);
        for (key, value) in required {
            let got = selector.and_then(|s| s.get(key)).and_then(Value::as_str);
            if got == Some(value.as_str()) {
                continue;
            }
            let found = match got {
                Some(other) => format!("selects {key}={other}"),
                None => format!("does not select {key}={value}"),
            };
            sink.deny(
                "node-selector",
                at(&format!("nodeSelector[{key:?}]")),
                format!(
                    "{found}; the tenant's pods must run on nodes labelled {}",
                    pairs(required)
                ),
                format!("Set nodeSelector {key}: {value} (the tenant's placement.nodeSelector)."),
            );
        }
    }
    for (i, toleration) in objects_in(spec, "tolerations") {
        judge_toleration(
            placement,
            toleration,
            at(&format!("tolerations[{i}]")),
            sink,
        );
    }
}

fn judge_toleration(
    placement: &Placement,
    toleration: &Map<String, Value>,
    path: String,
    sink: &mut Sink,
) {
    let key = str_of(toleration, "key").unwrap_or("");
    let exists = str_of(toleration, "operator") == Some("Exists");
    if !key.is_empty() && is_node_condition_taint(key) {
        return;
    }
    let wanted = AllowedToleration {
        key: key.to_owned(),
        operator: Some(if exists {
            TolerationOperator::Exists
        } else {
            TolerationOperator::Equal
        }),
        value: (!exists).then(|| str_of(toleration, "value").unwrap_or("").to_owned()),
        effect: match str_of(toleration, "effect") {
            Some("NoSchedule") => Some(TaintEffect::NoSchedule),
            Some("PreferNoSchedule") => Some(TaintEffect::PreferNoSchedule),
            Some("NoExecute") => Some(TaintEffect::NoExecute),
            _ => None,
        },
    };
    let allowed = match &placement.tolerations {
        Some(list) => list.iter().any(|a| tolerates_within(a, &wanted)),
        // No list: any keyed toleration, never every taint at once.
        None => !key.is_empty(),
    };
    if allowed {
        return;
    }
    let list = placement
        .tolerations
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(describe_toleration)
        .collect::<Vec<_>>();
    sink.deny(
        "tolerations",
        path,
        format!(
            "tolerates {}, which lets the pod onto nodes the tenant may not use",
            describe_toleration(&wanted)
        ),
        if list.is_empty() {
            "Tolerate only the taints the platform names for the tenant's nodes, by key.".to_owned()
        } else {
            format!(
                "Tolerate only what the tenant's placement.tolerations allows: {}.",
                list.join(", ")
            )
        },
    );
}

/// `allowed-classes` on a pod or pod template: its PriorityClass, RuntimeClass and the
/// StorageClasses of its ephemeral volumes.
pub(crate) fn pod_classes(eval: &Eval<'_>, template: &PodTemplateRef<'_>, sink: &mut Sink) {
    let Some(spec) = template.spec.as_object() else {
        return;
    };
    if unchanged_on_update(
        eval,
        template,
        &["priorityClassName", "runtimeClassName", "volumes"],
    ) {
        return;
    }
    let (_, classes) = bounds(eval);
    let at = |field: &str| join(template.path_prefix, &format!("spec.{field}"));
    if let Some(class) = str_of(spec, "priorityClassName").filter(|c| !c.is_empty()) {
        match &classes.priority {
            Some(list) => judge_class("priority", list, class, at("priorityClassName"), sink),
            None if class.starts_with(SYSTEM_PRIORITY_PREFIX) => sink.deny(
                "priority-class",
                at("priorityClassName"),
                format!(
                    "PriorityClass {class:?} is Kubernetes' own, for node- and cluster-critical \
                     pods: a tenant's pod would preempt other tenants'"
                ),
                "Remove priorityClassName, or use a class the platform provides for tenants."
                    .to_owned(),
            ),
            None => {}
        }
    }
    if let (Some(list), Some(class)) = (
        &classes.runtime,
        str_of(spec, "runtimeClassName").filter(|c| !c.is_empty()),
    ) {
        judge_class("runtime", list, class, at("runtimeClassName"), sink);
    }
    if let Some(list) = &classes.storage {
        for (i, volume) in objects_in(spec, "volumes") {
            let class = volume
                .get("ephemeral")
                .and_then(|e| e.get("volumeClaimTemplate"))
                .and_then(|t| t.get("spec"))
                .and_then(|s| s.get("storageClassName"))
                .and_then(Value::as_str);
            if let Some(class) = class {
                let path = at(&format!(
                    "volumes[{i}].ephemeral.volumeClaimTemplate.spec.storageClassName"
                ));
                judge_class("storage", list, class, path, sink);
            }
        }
    }
}

/// `allowed-classes` on the objects that name a class themselves: PersistentVolumeClaims,
/// StatefulSets' claim templates, Ingresses and Gateways.
pub(crate) fn object_classes(eval: &Eval<'_>, sink: &mut Sink) {
    let view = eval.view;
    let (_, classes) = bounds(eval);
    let spec = view.object.get("spec").and_then(Value::as_object);
    match (view.group, view.kind) {
        ("", "PersistentVolumeClaim") => {
            if let (Some(list), Some(class)) = (
                &classes.storage,
                spec.and_then(|s| str_of(s, "storageClassName")),
            ) {
                judge_class(
                    "storage",
                    list,
                    class,
                    "spec.storageClassName".to_owned(),
                    sink,
                );
            }
        }
        ("apps", "StatefulSet") => {
            let (Some(list), Some(spec)) = (&classes.storage, spec) else {
                return;
            };
            for (i, claim) in objects_in(spec, "volumeClaimTemplates") {
                let class = claim
                    .get("spec")
                    .and_then(|s| s.get("storageClassName"))
                    .and_then(Value::as_str);
                if let Some(class) = class {
                    let path = format!("spec.volumeClaimTemplates[{i}].spec.storageClassName");
                    judge_class("storage", list, class, path, sink);
                }
            }
        }
        ("networking.k8s.io" | "extensions", "Ingress") => {
            let Some(list) = &classes.ingress else { return };
            if let Some(class) = spec.and_then(|s| str_of(s, "ingressClassName")) {
                judge_class(
                    "ingress",
                    list,
                    class,
                    "spec.ingressClassName".to_owned(),
                    sink,
                );
            }
            const LEGACY: &str = "kubernetes.io/ingress.class";
            if let Some(class) = view
                .metadata
                .and_then(|m| m.get("annotations"))
                .and_then(|a| a.get(LEGACY))
                .and_then(Value::as_str)
            {
                let path = format!("metadata.annotations[{LEGACY:?}]");
                judge_class("ingress", list, class, path, sink);
            }
        }
        ("gateway.networking.k8s.io", "Gateway") => {
            if let (Some(list), Some(class)) = (
                &classes.gateway,
                spec.and_then(|s| str_of(s, "gatewayClassName")),
            ) {
                judge_class(
                    "gateway",
                    list,
                    class,
                    "spec.gatewayClassName".to_owned(),
                    sink,
                );
            }
        }
        _ => {}
    }
}

fn judge_class(kind: &str, list: &ClassList, class: &str, path: String, sink: &mut Sink) {
    if list.allowed.iter().any(|a| a == class) {
        return;
    }
    let title = match kind {
        "priority" => "PriorityClass",
        "storage" => "StorageClass",
        "ingress" => "IngressClass",
        "gateway" => "GatewayClass",
        _ => "RuntimeClass",
    };
    let allowed = if list.allowed.is_empty() {
        "none".to_owned()
    } else {
        list.allowed.join(", ")
    };
    sink.deny(
        &format!("{kind}-class"),
        path,
        format!("{title} {class:?} is not one the tenant may use (allowed: {allowed})"),
        match &list.default {
            Some(default) => {
                format!("Use one of {allowed}, or leave it out to get the default, {default}.")
            }
            None => format!("Use one of {allowed} (the tenant's classes.{kind})."),
        },
    );
}

fn pairs(labels: &std::collections::BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}
