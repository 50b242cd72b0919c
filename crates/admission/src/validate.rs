//! What decides a verdict, behind one small trait so the HTTP server, the metrics and the
//! tests do not care which guardrails run.
//!
//! [`EngineValidator`] is the production path: `tenantry_policy::Engine` in admission mode,
//! the same engine and the same `tenantry.yaml` `policies:` as `tenantry check`, so CI and the
//! cluster agree. Its `deny` findings deny, its `warn` findings (audit/warn-level Pod
//! Security, violations an update carries over unchanged) become AdmissionReview warnings.
//!
//! [`PodSecurityValidator`] is the minimal guardrail, kept for a webhook that should enforce
//! Pod Security only and as an independent cross-check of the engine in tests: it enforces the Pod Security Standards from the namespace's own
//! `pod-security.kubernetes.io/*` labels with `tenantry_policy::pss`, which reproduces the
//! API server's PodSecurity plugin check for check. Where it differs from that plugin it is
//! on purpose, and in one direction only (earlier, never laxer):
//!
//! * pod controllers (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, ...)
//!   whose pod template violates the `enforce` level are **denied**, where the plugin only
//!   warns. Every pod such a controller creates would be refused, so accepting it just moves
//!   the failure from `kubectl apply` to a ReplicaSet event nobody reads, and leaves a GitOps
//!   sync green on a workload that cannot run. Updates that leave the pod template unchanged
//!   are not judged, so scaling or relabelling an old workload keeps working;
//! * Pod updates are judged like the plugin judges them: the `ephemeralcontainers`
//!   subresource always (that is how `kubectl debug` adds a container), the main resource
//!   only when an image or a seccomp annotation changes; other subresources never.

use serde_json::Value;
use tenantry_api::Platform;
use tenantry_policy::{
    Context, Engine, EngineError, Mode, Severity, TenantInfo, Violation,
    pss::{self, Finding},
};

use crate::{
    decision::{Decision, Denial},
    namespaces::{LevelVersion, NamespaceEntry},
    review::{AdmissionRequestView, Operation},
};

/// The namespace (and tenant) a request is judged for.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The request's namespace; for a Namespace object, the namespace itself.
    pub namespace: &'a NamespaceEntry,
    /// Its tenant, when known.
    pub tenant: Option<&'a TenantInfo>,
}

/// Decides one admission request. Implementations are pure: no I/O, no clock, so the same
/// review always gets the same answer and a dry run predicts the real one.
pub trait Validator: Send + Sync + 'static {
    /// The verdict on `request` for a tenant namespace.
    fn validate(&self, request: &AdmissionRequestView, target: &Target<'_>) -> Decision;
}

/// Pod Security Standards from namespace labels: `enforce` denies, `warn` and `audit` warn.
#[derive(Debug, Clone, Copy, Default)]
pub struct PodSecurityValidator;

impl Validator for PodSecurityValidator {
    fn validate(&self, request: &AdmissionRequestView, target: &Target<'_>) -> Decision {
        let mut decision = Decision::allow();
        let policy = &target.namespace.pod_security;
        decision.warnings.extend(
            policy
                .problems
                .iter()
                .map(|p| format!("tenantry: namespace {}: {p}", target.namespace.info.name)),
        );
        let Some(object) = pod_security_subject(request) else {
            return decision;
        };
        let enforce = policy.enforce;
        let findings = pss::check_object(enforce.level, enforce.version, object);
        decision.denials = findings.iter().map(denial).collect();
        if !decision.denials.is_empty() {
            decision.summary = format!("{} violates PodSecurity \"{enforce}\"", request.describe());
        }
        let mut seen_modes: Vec<LevelVersion> = vec![enforce];
        for (mode, level) in [("warn", policy.warn), ("audit", policy.audit)] {
            let Some(level) = level else { continue };
            if seen_modes.contains(&level) {
                continue;
            }
            seen_modes.push(level);
            let extra: Vec<Finding> = pss::check_object(level.level, level.version, object)
                .into_iter()
                .filter(|f| {
                    !findings
                        .iter()
                        .any(|d| d.check == f.check && d.path == f.path)
                })
                .collect();
            decision.warnings.extend(warnings(mode, level, &extra));
        }
        decision
    }
}

/// The policy engine in admission mode: every policy `tenantry.yaml` enables.
#[derive(Debug, Clone)]
pub struct EngineValidator {
    engine: Engine,
}

impl EngineValidator {
    /// An engine configured from the platform's `policies:`.
    pub fn new(platform: &Platform) -> Result<Self, EngineError> {
        Ok(Self {
            engine: Engine::new(platform)?,
        })
    }

    /// Wrap an engine configured by the caller.
    pub fn from_engine(engine: Engine) -> Self {
        Self { engine }
    }

    /// The policies this validator runs.
    pub fn enabled_policies(&self) -> Vec<&'static str> {
        self.engine.enabled_policies(Mode::Admission)
    }
}

impl Validator for EngineValidator {
    fn validate(&self, request: &AdmissionRequestView, target: &Target<'_>) -> Decision {
        let Some(object) = request.subject() else {
            return Decision::allow();
        };
        let user = tenantry_policy::UserInfo {
            username: request.user.username.clone(),
            groups: request.user.groups.clone(),
        };
        let ctx = Context {
            mode: Mode::Admission,
            operation: request.operation,
            namespace: Some(&target.namespace.info),
            tenant: target.tenant,
            user: Some(&user),
            old_object: request.old_object.as_ref(),
        };
        let violations = self.engine.evaluate(object, &ctx);
        let mut decision = Decision::allow();
        let mut policies: Vec<&str> = Vec::new();
        for v in violations {
            match v.severity {
                Severity::Deny => {
                    if !policies.contains(&v.policy) {
                        policies.push(v.policy);
                    }
                    decision.denials.push(violation_denial(v));
                }
                Severity::Warn => decision.warnings.push(violation_warning(&v)),
            }
        }
        if !decision.denials.is_empty() {
            decision.summary = format!(
                "{} violates Tenantry polic{} {}",
                request.describe(),
                if policies.len() == 1 { "y" } else { "ies" },
                policies.join(", ")
            );
        }
        decision
    }
}

fn violation_denial(v: Violation) -> Denial {
    Denial {
        check: v.check,
        path: v.path,
        message: v.message,
        remediation: v.remediation,
    }
}

/// `[check] path: message` — the remediation is left out: warnings are cut at 256 bytes and the
/// message already says what is wrong where.
fn violation_warning(v: &Violation) -> String {
    if v.path.is_empty() {
        format!("tenantry [{}]: {}", v.check, v.message)
    } else {
        format!("tenantry [{}] {}: {}", v.check, v.path, v.message)
    }
}

/// A Pod Security finding as a denial.
pub fn denial(f: &Finding) -> Denial {
    Denial {
        check: f.check.to_owned(),
        path: f.path.clone(),
        message: f.message.clone(),
        remediation: f.remediation.clone(),
    }
}

/// One warning per check: `would violate PodSecurity "restricted:latest" (warn): [check]
/// paths: remediation`.
fn warnings(mode: &str, level: LevelVersion, findings: &[Finding]) -> Vec<String> {
    let mut out: Vec<(String, Vec<&str>, &str)> = Vec::new();
    for f in findings {
        match out.iter_mut().find(|(check, ..)| check == f.check) {
            Some((_, paths, _)) => paths.push(&f.path),
            None => out.push((f.check.to_owned(), vec![&f.path], &f.remediation)),
        }
    }
    out.into_iter()
        .map(|(check, paths, remediation)| {
            format!(
                "would violate PodSecurity \"{level}\" ({mode}): [{check}] {}: {remediation}",
                paths.join(", ")
            )
        })
        .collect()
}

/// The object whose pod spec Pod Security judges for this request, or `None` when the
/// request is not one Pod Security judges (see the module documentation).
pub fn pod_security_subject(request: &AdmissionRequestView) -> Option<&Value> {
    let object = request.object.as_ref()?;
    pss::pod_template(object)?;
    let is_pod = request.kind.group.is_empty() && request.kind.kind == "Pod";
    match (request.operation, request.sub_resource.as_deref()) {
        (Operation::Create, None) => Some(object),
        (Operation::Update, Some("ephemeralcontainers")) if is_pod => Some(object),
        (Operation::Update, None) => {
            let Some(old) = request.old_object.as_ref() else {
                return Some(object);
            };
            let significant = if is_pod {
                significant_pod_update(object, old)
            } else {
                template_changed(object, old)
            };
            significant.then_some(object)
        }
        _ => None,
    }
}

fn template_changed(object: &Value, old: &Value) -> bool {
    match (pss::pod_template(object), pss::pod_template(old)) {
        (Some(new), Some(old)) => new.metadata != old.metadata || new.spec != old.spec,
        _ => true,
    }
}

/// The PodSecurity plugin re-evaluates a pod update only when it could change the verdict:
/// an image (a new image may run as another user) or a seccomp annotation changed. The rest
/// of a pod spec is immutable.
fn significant_pod_update(object: &Value, old: &Value) -> bool {
    let images = |pod: &Value, list: &str| -> Vec<Option<String>> {
        pod.pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .map(|containers| {
                containers
                    .iter()
                    .map(|c| c.get("image").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let seccomp = |pod: &Value| -> Vec<(String, String)> {
        pod.pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .map(|annotations| {
                annotations
                    .iter()
                    .filter(|(k, _)| k.contains("seccomp.security.alpha.kubernetes.io/"))
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    };
    ["containers", "initContainers"]
        .iter()
        .any(|list| images(object, list) != images(old, list))
        || seccomp(object) != seccomp(old)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::review::{GroupVersionKind, UserInfo};

    fn request(
        operation: Operation,
        kind: &str,
        object: Value,
        old: Option<Value>,
    ) -> AdmissionRequestView {
        AdmissionRequestView {
            uid: "u".into(),
            kind: GroupVersionKind {
                group: if kind == "Pod" { "" } else { "apps" }.into(),
                version: "v1".into(),
                kind: kind.into(),
            },
            resource: Default::default(),
            sub_resource: None,
            name: "x".into(),
            namespace: Some("shop".into()),
            operation,
            user: UserInfo::default(),
            object: Some(object),
            old_object: old,
            dry_run: false,
        }
    }

    fn pod(image: &str, privileged: bool) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
            "spec": {"containers": [{"name": "app", "image": image,
                "securityContext": {"privileged": privileged}}]}})
    }

    #[test]
    fn pod_updates_are_judged_only_when_significant() {
        let old = pod("a:1", true);
        let mut relabelled = old.clone();
        relabelled["metadata"]["labels"] = json!({"x": "y"});
        let same = request(Operation::Update, "Pod", relabelled, Some(old.clone()));
        assert!(pod_security_subject(&same).is_none());
        let new_image = request(
            Operation::Update,
            "Pod",
            pod("a:2", true),
            Some(old.clone()),
        );
        assert!(pod_security_subject(&new_image).is_some());
        let mut status = request(
            Operation::Update,
            "Pod",
            pod("a:2", true),
            Some(old.clone()),
        );
        status.sub_resource = Some("status".into());
        assert!(pod_security_subject(&status).is_none());
        let mut debug = request(Operation::Update, "Pod", old.clone(), Some(old));
        debug.sub_resource = Some("ephemeralcontainers".into());
        assert!(pod_security_subject(&debug).is_some());
    }

    #[test]
    fn controller_updates_are_judged_only_when_the_template_changes() {
        let deployment = |replicas: u32, image: &str| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": replicas,
                "template": {"spec": {"containers": [{"name": "a", "image": image}]}}}})
        };
        let scaled = request(
            Operation::Update,
            "Deployment",
            deployment(3, "a:1"),
            Some(deployment(1, "a:1")),
        );
        assert!(pod_security_subject(&scaled).is_none());
        let bumped = request(
            Operation::Update,
            "Deployment",
            deployment(1, "a:2"),
            Some(deployment(1, "a:1")),
        );
        assert!(pod_security_subject(&bumped).is_some());
    }

    #[test]
    fn objects_without_pod_templates_and_deletes_are_not_judged() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert!(pod_security_subject(&request(Operation::Create, "ConfigMap", cm, None)).is_none());
        let mut delete = request(Operation::Delete, "Pod", pod("a", true), None);
        delete.old_object = delete.object.take();
        assert!(pod_security_subject(&delete).is_none());
    }
}
