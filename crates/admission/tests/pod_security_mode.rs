//! `tenantry webhook --guardrails pod-security` is the engine with only `pod-security`
//! selected: the recorded reviews get the engine's verdict, namespace labels are read by the
//! engine's (upstream's) rules, and a namespace that pins no version is judged at the
//! platform's `policies.podSecurity.version`.

mod common;

use std::{collections::BTreeMap, sync::Arc};

use serde_json::Value;
use tenantry_admission::{
    EngineValidator, NamespaceCache, NamespaceScope, Validator, answer, review,
};
use tenantry_api::Platform;
use tenantry_core::PlatformContext;
use tenantry_policy::{Context, Engine, Mode, Severity, UserInfo, Version, checks};

use common::*;

/// A platform whose `policies.podSecurity.version` is `version`.
fn platform(version: &str) -> Platform {
    let mut platform = Platform::default();
    platform.policies.pod_security.version = version.parse().expect("valid version");
    platform
}

/// A synced cache knowing the fixture namespace as tenant `acme`'s with `labels`.
fn cache_with(platform: &Platform, labels: BTreeMap<String, String>) -> NamespaceCache {
    let cache = NamespaceCache::new(&PlatformContext::new(platform.clone()).expect("valid"));
    cache.upsert(FIXTURE_NAMESPACE, labels);
    cache.mark_synced();
    cache
}

fn pod_security_only(platform: &Platform) -> EngineValidator {
    EngineValidator::pod_security_only(platform)
}

/// The webhook's answer to a recorded review: (allowed, denied check IDs, warnings).
fn webhook(cache: &NamespaceCache, validator: &dyn Validator, review: &Value) -> Answer {
    let answered = answer(cache, validator, &serde_json::to_vec(review).unwrap())
        .expect("a recorded review decodes");
    Answer {
        allowed: answered.response.allowed,
        denied: answered.denied_checks,
        warnings: answered.response.warnings,
    }
}

#[derive(Debug, PartialEq)]
struct Answer {
    allowed: bool,
    denied: Vec<String>,
    warnings: Vec<String>,
}

/// The check IDs of `tenantry [check] …` warnings, in order.
fn warned_checks(warnings: &[String]) -> Vec<String> {
    warnings
        .iter()
        .filter_map(|w| w.strip_prefix("tenantry ["))
        .filter_map(|w| w.split_once(']'))
        .map(|(check, _)| check.to_owned())
        .collect()
}

/// The engine's own verdict on the request of a recorded review, called directly with what
/// the namespace cache knows: (deny check IDs, warn check IDs).
fn engine_verdict(
    engine: &Engine,
    cache: &NamespaceCache,
    review: &Value,
) -> Option<(Vec<String>, Vec<String>)> {
    let request = review::decode(&serde_json::to_vec(review).unwrap()).unwrap();
    let namespace = request.namespace.as_deref()?;
    let NamespaceScope::Tenant { namespace, tenant } = cache.scope(namespace) else {
        return None;
    };
    let user = UserInfo {
        username: request.user.username.clone(),
        groups: request.user.groups.clone(),
    };
    let ctx = Context {
        mode: Mode::Admission,
        operation: request.operation,
        namespace: Some(&namespace.info),
        tenant: tenant.as_deref(),
        user: Some(&user),
        old_object: request.old_object.as_ref(),
    };
    let violations = engine.evaluate(request.subject()?, &ctx);
    let of = |severity: Severity| -> Vec<String> {
        violations
            .iter()
            .filter(|v| v.severity == severity)
            .map(|v| v.check.clone())
            .collect()
    };
    Some((of(Severity::Deny), of(Severity::Warn)))
}

/// Namespace label sets the modes must agree on: Tenantry's own at both levels, unparsable
/// audit/warn levels, and no versions at all.
fn label_variants() -> Vec<(&'static str, BTreeMap<String, String>)> {
    let tenant = [
        ("kubernetes.io/metadata.name", FIXTURE_NAMESPACE),
        ("tenantry.dev/tenant", TENANT),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        labels(&tenant.iter().chain(extra).copied().collect::<Vec<_>>())
    };
    vec![
        ("restricted", tenant_namespace_labels("restricted")),
        (
            "baseline, warn restricted",
            tenant_namespace_labels("baseline"),
        ),
        (
            "unparsable audit and warn",
            with(&[
                ("pod-security.kubernetes.io/enforce", "baseline"),
                ("pod-security.kubernetes.io/audit", "Restricted"),
                ("pod-security.kubernetes.io/warn", "strict"),
            ]),
        ),
        (
            "no versions",
            with(&[
                ("pod-security.kubernetes.io/enforce", "restricted"),
                ("pod-security.kubernetes.io/warn", "restricted"),
            ]),
        ),
    ]
}

#[test]
fn pod_security_only_mode_gives_the_engines_verdict_on_every_recorded_review() {
    let platform = platform("v1.21");
    let engine = Engine::new(&platform)
        .with_selection(Some(&["pod-security".to_owned()]), None, None)
        .expect("known policy");
    let only = pod_security_only(&platform);
    let full: Arc<dyn Validator> = Arc::new(EngineValidator::new(&platform));
    let pss_checks: Vec<&str> = checks().map(|c| c.id).collect();
    let mut judged = 0;
    for (variant, labels) in label_variants() {
        let cache = cache_with(&platform, labels);
        for name in fixture_names() {
            let review = fixture_json(&name);
            let got = webhook(&cache, &only, &review);
            let label = format!("{name} in a namespace labelled {variant}");
            match engine_verdict(&engine, &cache, &review) {
                Some((deny, warn)) => {
                    judged += 1;
                    assert_eq!(got.allowed, deny.is_empty(), "{label}");
                    assert_eq!(got.denied, deny, "{label}");
                    assert_eq!(warned_checks(&got.warnings), warn, "{label}");
                }
                None => assert!(got.allowed && got.warnings.is_empty(), "{label}"),
            }
            // And the full engine finds the same Pod Security violations.
            let all = webhook(&cache, full.as_ref(), &review);
            let pss_only = |checks: &[String]| -> Vec<String> {
                checks
                    .iter()
                    .filter(|c| pss_checks.contains(&c.as_str()))
                    .cloned()
                    .collect()
            };
            assert_eq!(pss_only(&all.denied), got.denied, "{label}: full engine");
            assert_eq!(
                pss_only(&warned_checks(&all.warnings)),
                warned_checks(&got.warnings),
                "{label}: full engine"
            );
        }
    }
    assert!(judged >= 4 * 10, "only {judged} reviews reached the engine");
}

#[test]
fn an_unparsable_warn_level_checks_nothing_for_warn_in_pod_security_only_mode() {
    // Upstream reads an unparsable `warn` (or `audit`) level as privileged: it warns about
    // nothing. The pod passes baseline, so the only thing to say is which label was ignored.
    let platform = Platform::default();
    for (mode, value) in [("warn", "Restricted"), ("audit", "strict")] {
        let key = format!("pod-security.kubernetes.io/{mode}");
        let cache = cache_with(
            &platform,
            labels(&[
                ("tenantry.dev/tenant", TENANT),
                ("pod-security.kubernetes.io/enforce", "baseline"),
                (key.as_str(), value),
            ]),
        );
        let got = webhook(
            &cache,
            &pod_security_only(&platform),
            &fixture_json("pod-create.json"),
        );
        assert!(got.allowed, "{mode}: {got:?}");
        assert_eq!(
            got.warnings,
            [format!(
                "tenantry: namespace {FIXTURE_NAMESPACE}: label {key}=\"{value}\" is not a Pod \
                 Security level; read as \"privileged\", as the PodSecurity admission plugin \
                 reads it"
            )],
            "{mode}: no restricted warnings"
        );
    }
}

#[test]
fn a_namespace_without_enforce_version_is_judged_at_the_platforms_version() {
    // capabilities_restricted exists from policy version 1.22: a pod that sets no
    // capabilities is refused for it at latest, not at v1.21.
    let capabilities = checks()
        .find(|c| c.id == "capabilities_restricted")
        .expect("upstream check");
    assert!(!capabilities.active_at(Version::V1(21)) && capabilities.active_at(Version::Latest));

    let platform = platform("v1.21");
    let validator = pod_security_only(&platform);
    let enforce = ("pod-security.kubernetes.io/enforce", "restricted");
    let tenant = ("tenantry.dev/tenant", TENANT);

    let unpinned = cache_with(&platform, labels(&[tenant, enforce]));
    let got = webhook(&unpinned, &validator, &fixture_json("pod-create.json"));
    assert!(!got.allowed, "{got:?}");
    assert!(got.denied.contains(&"runAsNonRoot".to_owned()), "{got:?}");
    assert!(
        !got.denied.contains(&"capabilities_restricted".to_owned()),
        "judged at v1.21, the platform's version, not latest: {got:?}"
    );

    // A version the namespace pins wins over the platform's.
    let pinned = cache_with(
        &platform,
        labels(&[
            tenant,
            enforce,
            ("pod-security.kubernetes.io/enforce-version", "latest"),
        ]),
    );
    let got = webhook(&pinned, &validator, &fixture_json("pod-create.json"));
    assert!(
        got.denied.contains(&"capabilities_restricted".to_owned()),
        "{got:?}"
    );
}
