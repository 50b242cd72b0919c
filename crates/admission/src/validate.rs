//! What decides a verdict, behind one small trait so the HTTP server, the metrics and the
//! tests do not care which guardrails run.
//!
//! [`EngineValidator`] is the production path: `tenantry_policy::Engine` in admission mode,
//! the same engine and the same `tenantry.yaml` `policies:` as `tenantry check`, so CI and the
//! cluster agree. Its `deny` findings deny, its `warn` findings (audit/warn-level Pod
//! Security, violations an update carries over unchanged) become AdmissionReview warnings.
//!
//! `tenantry webhook --guardrails pod-security` is the same validator over an engine running
//! only `pod-security` ([`EngineValidator::pod_security_only`]), not a second implementation:
//! one reader of the namespace labels, one rule for which updates are judged again, one level
//! mapping, so the two modes cannot disagree on Pod Security. Where the engine differs from the
//! PodSecurity plugin it is on purpose, and in one direction only (earlier, never laxer): pod
//! controllers whose template violates the `enforce` level are denied where the plugin only
//! warns (see `tenantry_policy::engine`).
//!
//! `--with-vap` is again the same validator, over `tenantry_policy::vap::webhook_engine`: the
//! engine without the checks the generated ValidatingAdmissionPolicies decide, read from the
//! list the generator itself keeps, so the API server and the webhook never both judge one.
//!
//! Namespace labels the engine had to read by upstream's fallback rules (an unparsable level
//! or version) are reported as warnings on every request with a pod template that Pod
//! Security judges, so the person whose pod was judged at `restricted` because of a typo in a
//! label learns why.

use serde_json::Value;
use tenantry_api::Platform;
use tenantry_policy::{Context, Engine, Mode, NamespaceLabels, Severity, TenantInfo, Violation};

use crate::{
    decision::{Decision, Denial},
    namespaces::NamespaceEntry,
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

/// The ID of the Pod Security policy.
const POD_SECURITY: &str = "pod-security";

/// The policy engine in admission mode: every policy `tenantry.yaml` enables.
#[derive(Debug, Clone)]
pub struct EngineValidator {
    engine: Engine,
    /// Whether the engine runs Pod Security (and so reads the namespace's labels).
    pod_security: bool,
}

impl EngineValidator {
    /// An engine configured from the platform's `policies:`.
    pub fn new(platform: &Platform) -> Self {
        Self::from_engine(Engine::new(platform))
    }

    /// An engine running Pod Security only, configured from the platform's `policies:` (its
    /// `podSecurity.version` is the version of namespaces that pin none), whether or not
    /// `tenantry.yaml` enables `pod-security`.
    pub fn pod_security_only(platform: &Platform) -> Self {
        let engine = Engine::new(platform)
            .with_selection(Some(&[POD_SECURITY.to_owned()]), None, None)
            // Selection fails only for an unknown policy ID; `POD_SECURITY` is a constant known
            // to the engine (the test below pins it), never user input.
            .expect("pod-security is a policy ID");
        Self::from_engine(engine)
    }

    /// Wrap an engine configured by the caller.
    pub fn from_engine(engine: Engine) -> Self {
        let pod_security = engine
            .enabled_policies(Mode::Admission)
            .contains(&POD_SECURITY);
        Self {
            engine,
            pod_security,
        }
    }

    /// The same validator next to the ValidatingAdmissionPolicies `tenantry policy vap`
    /// generates from the same engine: the checks they decide are left to them
    /// (`tenantry_policy::vap::webhook_engine`, the one list both sides read).
    pub fn with_vap(self) -> Self {
        Self::from_engine(tenantry_policy::vap::webhook_engine(self.engine))
    }

    /// The checks this validator leaves to the ValidatingAdmissionPolicies (empty unless
    /// [`EngineValidator::with_vap`]).
    pub fn delegated_checks(&self) -> &[&'static str] {
        self.engine.delegated_checks()
    }

    /// The policies this validator runs.
    pub fn enabled_policies(&self) -> Vec<&'static str> {
        self.engine.enabled_policies(Mode::Admission)
    }

    /// Whether Pod Security runs on this request: a create or update of an object with a pod
    /// template, with the policy enabled.
    fn judges_pod_security(&self, request: &AdmissionRequestView, object: &Value) -> bool {
        self.pod_security
            && matches!(request.operation, Operation::Create | Operation::Update)
            && tenantry_policy::pod_template(object).is_some()
    }
}

/// `tenantry: namespace shop: label …=… is not a Pod Security level; read as …`, one per
/// unparsable Pod Security label of the namespace.
fn label_warnings(namespace: &NamespaceEntry) -> impl Iterator<Item = String> + '_ {
    NamespaceLabels::read(&namespace.info.labels)
        .problems
        .into_iter()
        .map(move |p| format!("tenantry: namespace {}: {p}", namespace.info.name))
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
        if self.judges_pod_security(request, object) {
            decision.warnings.extend(label_warnings(target.namespace));
        }
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

#[cfg(test)]
mod tests {
    use tenantry_api::Platform;

    use super::EngineValidator;

    #[test]
    fn pod_security_only_runs_pod_security_even_when_tenantry_yaml_disables_it() {
        let mut platform = Platform::default();
        platform.policies.pod_security.enabled = false;
        let only: EngineValidator = EngineValidator::pod_security_only(&platform);
        assert_eq!(only.enabled_policies(), ["pod-security"]);
        let full: EngineValidator = EngineValidator::new(&platform);
        assert!(!full.enabled_policies().contains(&"pod-security"));
        assert!(full.enabled_policies().len() > 1);
    }
}
