//! No input makes the webhook panic: every body gets a verdict or a 400 reason, the same way
//! the fuzz target drives it, here as a quick deterministic property test.

mod common;

use proptest::prelude::*;
use serde_json::Value;
use tenantry_admission::answer;

fn check(body: &[u8]) {
    let state = common::state("restricted");
    match answer(&state.cache, state.validator.as_ref(), body) {
        Ok(answered) => {
            let json: Value = serde_json::from_slice(&answered.response.to_review_json()).unwrap();
            assert_eq!(json["kind"], "AdmissionReview");
            assert!(!answered.response.uid.is_empty());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// JSON values of every type, nested a little.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z0-9/:._-]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Dotted paths into the recorded reviews that a hostile or buggy sender could get wrong.
const PATHS: &[&str] = &[
    "/request/object",
    "/request/oldObject",
    "/request/object/metadata",
    "/request/object/metadata/labels",
    "/request/object/spec",
    "/request/object/spec/template",
    "/request/object/spec/template/spec/containers",
    "/request/object/spec/containers/0",
    "/request/object/spec/securityContext",
    "/request/kind",
    "/request/namespace",
    "/request/name",
    "/request/userInfo",
    "/request/userInfo/groups",
    "/request/subResource",
    "/request/dryRun",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&body);
    }

    #[test]
    fn recorded_reviews_with_a_field_replaced_never_panic(
        fixture in 0usize..14,
        path in 0usize..PATHS.len(),
        value in any_json(),
    ) {
        let name = &common::fixture_names()[fixture];
        let mut review = common::fixture_json(name);
        if let Some(slot) = review.pointer_mut(PATHS[path]) {
            *slot = value;
        }
        check(&serde_json::to_vec(&review).unwrap());
    }

    #[test]
    fn truncated_and_flipped_reviews_never_panic(
        fixture in 0usize..14,
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut body = common::fixture_bytes(&common::fixture_names()[fixture]);
        let i = flip.index(body.len());
        body[i] = byte;
        check(&body);
        body.truncate(cut.index(body.len()));
        check(&body);
    }
}

#[test]
fn deeply_nested_json_is_refused_not_overflowed() {
    let depth = 100_000;
    let body = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","kind":{{"kind":"Pod"}},"operation":"CREATE","object":{}{}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    check(body.as_bytes());
}
