//! `POST /validate` on arbitrary bytes: the exact path a request body takes in the webhook
//! (AdmissionReview decoding, namespace lookup in a seeded cache, the policy engine in
//! admission mode, the bounded response). Every input must end in a well-formed response or a
//! decode error for HTTP 400; anything else (a panic, a stack overflow, runaway memory, an
//! unbounded message) is a bug.
//!
//! Seeds: the API server's recorded reviews, read in place from the repository's test data:
//! `cargo fuzz run admission_review corpus/admission_review ../testdata/k8s-wire/admission-review`.
#![no_main]

use std::{collections::BTreeMap, sync::LazyLock};

use libfuzzer_sys::fuzz_target;
use tenantry_admission::{
    EngineValidator, NamespaceCache, answer,
    decision::{MAX_MESSAGE_LEN, MAX_WARNING_LEN},
};
use tenantry_api::Platform;
use tenantry_core::PlatformContext;

static STATE: LazyLock<(NamespaceCache, EngineValidator)> = LazyLock::new(|| {
    let platform = Platform::default();
    let ctx = PlatformContext::new(platform.clone()).expect("default platform");
    let cache = NamespaceCache::new(&ctx);
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    // The recorded reviews' namespace as a restricted tenant namespace, a baseline one, and a
    // platform namespace, so every scope rule is reachable.
    cache.upsert(
        "tenantry-fx-webhook",
        labels(&[
            ("tenantry.dev/tenant", "acme"),
            ("pod-security.kubernetes.io/enforce", "restricted"),
            ("pod-security.kubernetes.io/warn", "restricted"),
            ("pod-security.kubernetes.io/audit", "restricted"),
        ]),
    );
    cache.upsert(
        "acme-dev",
        labels(&[
            ("tenantry.dev/tenant", "acme"),
            ("pod-security.kubernetes.io/enforce", "baseline"),
            ("pod-security.kubernetes.io/warn", "restricted"),
        ]),
    );
    cache.upsert("monitoring", labels(&[("team", "platform")]));
    cache.mark_synced();
    let engine = EngineValidator::new(&platform);
    (cache, engine)
});

fuzz_target!(|data: &[u8]| {
    let (cache, engine) = &*STATE;
    let Ok(answered) = answer(cache, engine, data) else {
        return;
    };
    let response = &answered.response;
    assert!(!response.uid.is_empty(), "a review without uid is refused");
    assert_eq!(response.allowed, response.status.is_none());
    assert_eq!(response.allowed, answered.denied_checks.is_empty());
    if let Some(status) = &response.status {
        assert_eq!(status.code, 403);
        assert!(status.message.len() <= MAX_MESSAGE_LEN);
    }
    assert!(response.warnings.iter().all(|w| w.len() <= MAX_WARNING_LEN));
    let json: serde_json::Value =
        serde_json::from_slice(&response.to_review_json()).expect("response is JSON");
    assert_eq!(
        json["response"]["uid"].as_str(),
        Some(response.uid.as_str())
    );
});
