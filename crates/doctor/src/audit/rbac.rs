//! Which RoleBinding or ClusterRoleBinding grants an access the authorizer allowed.
//!
//! A SubjectAccessReview says *whether*; a person fixing a hole needs *which object*. RBAC's
//! own reason string names one binding at most and only when RBAC (not another authorizer)
//! decided, so the bindings are walked here with RBAC's matching rules (subjects by user,
//! group and ServiceAccount; rules by verb, group, resource, `*/subresource`; a rule naming
//! resources never covers a request without a name) and every binding that grants it is
//! named, so removing one does not leave a second behind unnoticed.

use serde_json::Value;

use super::Identity;

/// The RBAC objects of the cluster, as listed.
#[derive(Clone, Debug, Default)]
pub struct Rbac {
    /// Every ClusterRole (aggregated ones carry their aggregated rules).
    pub cluster_roles: Vec<Value>,
    /// Every Role.
    pub roles: Vec<Value>,
    /// Every ClusterRoleBinding.
    pub cluster_role_bindings: Vec<Value>,
    /// Every RoleBinding.
    pub role_bindings: Vec<Value>,
}

/// One request, as RBAC matches it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// e.g. `list`.
    pub verb: &'a str,
    /// API group, empty for core.
    pub group: &'a str,
    /// e.g. `secrets`.
    pub resource: &'a str,
    /// e.g. `exec`, or empty.
    pub subresource: &'a str,
    /// `None` at cluster scope.
    pub namespace: Option<&'a str>,
}

fn str_list(value: &Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// Whether a binding subject is this identity (`binding_ns`: the RoleBinding's namespace,
/// which a ServiceAccount subject without one defaults to).
fn subject_matches(subject: &Value, identity: &Identity, binding_ns: Option<&str>) -> bool {
    let name = subject["name"].as_str().unwrap_or_default();
    match subject["kind"].as_str() {
        Some("User") => !identity.user.is_empty() && identity.user == name,
        Some("Group") => identity.groups.iter().any(|g| g == name),
        Some("ServiceAccount") => {
            let ns = subject["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .or(binding_ns)
                .unwrap_or_default();
            identity.user == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

fn rule_allows(rule: &Value, request: &Request<'_>) -> bool {
    let verb = str_list(&rule["verbs"]).any(|v| v == "*" || v == request.verb);
    let group = str_list(&rule["apiGroups"]).any(|g| g == "*" || g == request.group);
    let combined = if request.subresource.is_empty() {
        request.resource.to_owned()
    } else {
        format!("{}/{}", request.resource, request.subresource)
    };
    let resource = str_list(&rule["resources"]).any(|r| {
        r == "*"
            || r == combined
            || (!request.subresource.is_empty()
                && r.strip_prefix("*/") == Some(request.subresource))
    });
    let unnamed = str_list(&rule["resourceNames"]).next().is_none();
    verb && group && resource && unnamed
}

fn role_allows(role: Option<&Value>, request: &Request<'_>) -> bool {
    role.and_then(|r| r["rules"].as_array())
        .is_some_and(|rules| rules.iter().any(|rule| rule_allows(rule, request)))
}

fn named<'v>(objects: &'v [Value], name: &str, namespace: Option<&str>) -> Option<&'v Value> {
    objects.iter().find(|o| {
        o["metadata"]["name"].as_str() == Some(name)
            && o["metadata"]["namespace"].as_str() == namespace
    })
}

/// Every binding that grants `identity` the `request`, as `Kind [namespace/]name → role (to
/// subject)`, ClusterRoleBindings first, each list in name order.
pub fn granting_bindings(rbac: &Rbac, identity: &Identity, request: &Request<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let mut visit = |binding: &Value, kind: &str, binding_ns: Option<&str>| {
        let Some(subject) = binding["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| subject_matches(s, identity, binding_ns))
        else {
            return;
        };
        let role_kind = binding["roleRef"]["kind"].as_str().unwrap_or_default();
        let role_name = binding["roleRef"]["name"].as_str().unwrap_or_default();
        let role = match role_kind {
            "ClusterRole" => named(&rbac.cluster_roles, role_name, None),
            "Role" => named(&rbac.roles, role_name, binding_ns),
            _ => None,
        };
        if role_allows(role, request) {
            let name = binding["metadata"]["name"].as_str().unwrap_or("?");
            let at = binding_ns.map_or(name.to_owned(), |ns| format!("{ns}/{name}"));
            out.push(format!(
                "{kind} {at} → {role_kind} {role_name} (to {} {})",
                subject["kind"].as_str().unwrap_or_default(),
                subject["name"].as_str().unwrap_or_default()
            ));
        }
    };
    let mut crbs: Vec<&Value> = rbac.cluster_role_bindings.iter().collect();
    crbs.sort_by_key(|b| b["metadata"]["name"].as_str().unwrap_or_default());
    for b in crbs {
        visit(b, "ClusterRoleBinding", None);
    }
    if let Some(ns) = request.namespace {
        let mut rbs: Vec<&Value> = rbac
            .role_bindings
            .iter()
            .filter(|b| b["metadata"]["namespace"].as_str() == Some(ns))
            .collect();
        rbs.sort_by_key(|b| b["metadata"]["name"].as_str().unwrap_or_default());
        for b in rbs {
            visit(b, "RoleBinding", Some(ns));
        }
    }
    out
}
