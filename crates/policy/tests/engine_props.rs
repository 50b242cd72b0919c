//! Property tests (bounded to 256 cases each, run in CI): the engine, the reader and the report
//! writers never panic, whatever the input; verdicts are deterministic; every format stays
//! well-formed for any string a manifest can carry.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tenantry_api::Platform;
use tenantry_policy::{
    Context, Engine, Level, Mode, NamespaceInfo, Operation, TenantInfo, UserInfo,
    input::{self, Format},
    report::{self, Judged, Located, Report},
};

/// Kinds the engine treats specially, so random objects reach every policy.
const KINDS: &[(&str, &str)] = &[
    ("v1", "Pod"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "CronJob"),
    ("v1", "PodTemplate"),
    ("v1", "Service"),
    ("v1", "Namespace"),
    ("v1", "Secret"),
    ("v1", "ResourceQuota"),
    ("external-secrets.io/v1", "ExternalSecret"),
    ("external-secrets.io/v1alpha1", "PushSecret"),
    ("external-secrets.io/v1", "SecretStore"),
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
    ("helm.toolkit.fluxcd.io/v2", "HelmRelease"),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("example.com/v1", "Widget"),
];

/// Field names the policies read.
const KEYS: &[&str] = &[
    "metadata",
    "labels",
    "annotations",
    "name",
    "namespace",
    "spec",
    "template",
    "jobTemplate",
    "containers",
    "initContainers",
    "ephemeralContainers",
    "image",
    "imagePullPolicy",
    "resources",
    "requests",
    "limits",
    "cpu",
    "memory",
    "securityContext",
    "privileged",
    "volumes",
    "reference",
    "type",
    "ports",
    "nodePort",
    "externalIPs",
    "secretStoreRef",
    "secretStoreRefs",
    "kind",
    "data",
    "dataFrom",
    "sourceRef",
    "storeRef",
    "stringData",
    "serviceAccountName",
    "kubeConfig",
    "secretRef",
    "targetNamespace",
    "dependsOn",
    "chart",
    "chartRef",
    "parentRefs",
    "sectionName",
    "resources",
    "components",
    "sops",
    "mac",
    "deletionTimestamp",
    "app.kubernetes.io/managed-by",
    "tenantry.dev/tenant",
    "pod-security.kubernetes.io/enforce",
];

const WORDS: &[&str] = &[
    "",
    "tenantry",
    "shop",
    "kube-system",
    "platform",
    "https",
    "ClusterSecretStore",
    "SecretStore",
    "NodePort",
    "LoadBalancer",
    "Always",
    "nginx",
    "ghcr.io/acme/x:1",
    "acme/x@sha256:00",
    "https://github.com/x?ref=1",
    "restricted",
    "baseline",
    "openbao",
    "Gateway",
    "Service",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(WORDS).prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(8, 128, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<String, Value>>(),
                )
            }),
        ]
    })
}

/// A Kubernetes-shaped object of a kind the engine knows, with arbitrary content.
fn object() -> impl Strategy<Value = Value> {
    (prop::sample::select(KINDS), json_value(), json_value(), json_value()).prop_map(
        |((api_version, kind), metadata, spec, rest)| {
            let mut object = json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec});
            if let (Value::Object(o), Value::Object(extra)) = (&mut object, rest) {
                for (k, v) in extra {
                    o.entry(k).or_insert(v);
                }
            }
            object
        },
    )
}

fn engine() -> Engine {
    let mut platform = Platform::default();
    platform.policies.require_digest.enabled = true;
    platform.policies.image_pull_policy_always.enabled = true;
    Engine::new(&platform).with_repo_contract("shop")
}

fn tenant() -> TenantInfo {
    TenantInfo {
        name: "shop".to_owned(),
        namespaces: vec!["shop".to_owned()],
        service_account: "shop".to_owned(),
        registries: vec!["ghcr.io/acme".to_owned()],
        pod_security: Level::Baseline,
        proxy_kubeconfig_secret: Some("proxy".to_owned()),
        cluster_role: None,
        network_peers: Vec::new(),
        placement: Default::default(),
        classes: Default::default(),
        vap_bound: Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn evaluate_never_panics_and_is_deterministic(
        object in object(),
        old in prop::option::of(object()),
        admission in any::<bool>(),
        operation in prop::sample::select(vec![Operation::Create, Operation::Update, Operation::Delete, Operation::Connect]),
        with_tenant in any::<bool>(),
        labels in prop::collection::btree_map(prop::sample::select(KEYS), prop::sample::select(WORDS), 0..4),
        username in prop::sample::select(WORDS),
        platform_user in any::<bool>(),
    ) {
        let engine = engine();
        let shop = tenant();
        let namespace = NamespaceInfo {
            name: "shop".to_owned(),
            labels: labels.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned()))
                .chain([("tenantry.dev/tenant".to_owned(), "shop".to_owned())])
                .collect::<BTreeMap<_, _>>(),
        };
        let user = UserInfo {
            username: if platform_user { "system:serviceaccount:kube-system:x".to_owned() } else { username.to_owned() },
            groups: vec![],
        };
        let ctx = Context {
            mode: if admission { Mode::Admission } else { Mode::Check },
            operation,
            namespace: admission.then_some(&namespace),
            tenant: with_tenant.then_some(&shop),
            user: admission.then_some(&user),
            old_object: old.as_ref(),
        };
        let first = engine.evaluate(&object, &ctx);
        prop_assert_eq!(&first, &engine.evaluate(&object, &ctx));
        for v in &first {
            prop_assert!(Engine::policy_ids().contains(&v.policy));
            prop_assert!(!v.check.is_empty());
            prop_assert!(!v.message.is_empty() && !v.remediation.is_empty());
        }
        let _ = engine.skipped(&ctx);
        if let Some(mut scan) = engine.repo_scan() {
            scan.observe(&object);
            let _ = scan.finish();
        }
    }

    #[test]
    fn reading_any_text_never_panics(text in "(?s).{0,300}", json_like in any::<bool>()) {
        let format = if json_like { Format::Json } else { Format::Yaml };
        if let Ok(documents) = input::parse(&text, format) {
            for d in &documents {
                prop_assert!(d.index >= 1 && d.line >= 1);
                let _ = input::locate_all(&text, d.line, &["spec.containers[0].image", "metadata.labels[a/b]"]);
            }
        }
    }

    #[test]
    fn yaml_shaped_text_round_trips_positions(value in json_value()) {
        // Any JSON value written as a YAML document reads back equal, at line 1 or 2.
        let text = format!("---\n{}\n", serde_json::to_string(&value).unwrap_or_default());
        let documents = input::parse(&text, Format::Yaml);
        if let Ok(documents) = documents
            && !value.is_null()
        {
            prop_assert_eq!(documents.len(), 1);
            prop_assert_eq!(documents[0].index, 1);
        }
    }

    #[test]
    fn every_format_stays_well_formed(
        name in "(?s).{0,24}",
        file in "(?s).{0,24}",
        message in "(?s).{0,40}",
    ) {
        let engine = Engine::new(&Platform::default());
        let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": {"type": "NodePort"}});
        let mut violations = engine.evaluate(&service, &Context::check(None));
        prop_assert_eq!(violations.len(), 1);
        violations[0].message = message.clone();
        let report = Report {
            findings: violations.into_iter().map(|violation| Located { file: file.clone(), document: Some(1), line: Some(3), violation }).collect(),
            judged: vec![Judged { file: file.clone(), document: 1, line: 1, object: tenantry_policy::ObjectRef::of(&service) }],
            files: 1,
            ..Report::default()
        };
        for format in [report::Format::Json, report::Format::Sarif] {
            let text = report::render(&report, format, "0.0.0");
            let parsed: Value = serde_json::from_str(&text).expect("valid JSON");
            prop_assert!(parsed.is_object());
        }
        let xml = report::render(&report, report::Format::Junit, "0.0.0");
        // Only XML 1.0 characters, and it reads back as the same one failing case: every
        // markup character in the payload was escaped.
        let xml_char = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
        prop_assert!(xml.chars().all(xml_char), "{}", xml);
        let junit = quick_junit::Report::deserialize_from_str(&xml).expect("well-formed JUnit");
        prop_assert_eq!((junit.tests, junit.failures), (1, 1));
        let case = &junit.test_suites[0].test_cases[0];
        if !name.contains(|c: char| c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}') {
            prop_assert_eq!(case.name.as_str(), format!("{} (document 1)", report.judged[0].object));
        }
        let text = report::render(&report, report::Format::Text, "0.0.0");
        prop_assert!(text.contains("node-port"));
    }
}
