//! The YAML emitter against serde-saphyr as the oracle: whatever JSON value Tenantry emits,
//! a YAML reader must read back exactly that value. Strings are drawn from the characters
//! and words that make YAML quoting hard.

use proptest::prelude::*;
use serde_json::{Map, Value};

fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        // Words and shapes YAML readers turn into non-strings.
        prop::sample::select(vec![
            "",
            "true",
            "False",
            "yes",
            "NO",
            "on",
            "Off",
            "y",
            "n",
            "null",
            "~",
            "NULL",
            ".inf",
            "-.Inf",
            ".nan",
            "0",
            "-1",
            "+1",
            "007",
            "0x1F",
            "0o17",
            "0b101",
            "1e3",
            "1E-3",
            "1_000",
            "1:20",
            "2001-12-14",
            "2001-12-14t21:59:43.10-05:00",
            "1.5",
            ".5",
            "5.",
            "500m",
            "8Gi",
            "1h30m",
            "<<",
            "---",
            "...",
            "- x",
            "-",
            "?",
            ":",
            "a: b",
            "a:b",
            "a #b",
            "#x",
            "&a",
            "*a",
            "!tag",
            "%x",
            "@x",
            "`x",
            "'q'",
            "\"q\"",
            "{a}",
            "[a]",
            "a,b",
            "|",
            ">",
            "a\\b",
            "^https://x\\.y$",
            "it's",
            "tab\tx",
            "nl\nx",
            "cr\rx",
            "\u{7f}",
            "\u{85}",
            "ü",
            "日本",
            " lead",
            "trail ",
            "x:",
            "{{ .dockerconfigjson }}",
            ">=1.0.0",
            "k8s:io.x",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,16}",
        "\\PC{0,8}",
        "[a-z0-9.:/_-]{1,12}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        tricky_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((tricky_string(), inner), 0..5)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn serde_saphyr_reads_back_every_emitted_value(v in value()) {
        let doc = match &v {
            Value::Object(_) => v.clone(),
            other => serde_json::json!({ "root": other }),
        };
        let text = tenantry_core::yaml::to_yaml(&doc);
        let back: Value = serde_saphyr::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("{e}\n---\n{text}")))?;
        prop_assert_eq!(&back, &doc, "\n---\n{}", text);
    }
}

#[test]
fn every_rendered_reference_object_reads_back() {
    // The property above covers shapes; this covers the exact objects Tenantry writes.
    let ctx = tenantry_core::PlatformContext::new(tenantry_api::Platform::default()).unwrap();
    let file = tenantry_api::tenant::TenantFile::new("shop", Default::default());
    let rendered = tenantry_core::render_tenant(&ctx, &file).unwrap();
    for o in &rendered.objects {
        let text = tenantry_core::yaml::object_yaml(o);
        let back: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back, o.body, "{text}");
    }
}
