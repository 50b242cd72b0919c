//! The per-object finding limit, on the objects it exists for: a Pod with 20,000 containers,
//! each violating seven checks. What is listed, what the last finding says about the rest, and
//! that the verdict is the one every finding would have given.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tenantry_api::Platform;
use tenantry_policy::{
    Context, DEFAULT_MAX_FINDINGS_PER_OBJECT, Engine, FINDINGS_ELIDED, Mode, NamespaceInfo,
    Operation, Severity, TextInput, check_text, input::Format, report,
};

const CONTAINERS: usize = 20_000;
/// Per container: four restricted Pod Security checks (allowPrivilegeEscalation,
/// capabilities_restricted, runAsNonRoot, seccompProfile_restricted) and three
/// require-requests-limits checks (cpu-request, memory-request, memory-limit).
const PER_CONTAINER: usize = 7;

/// A Pod with `n` containers, image `x`, no securityContext, no resources.
fn pod(n: usize) -> Value {
    let containers: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("c{i}"), "image": "x"}))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "big", "namespace": "shop"},
        "spec": {"containers": containers},
    })
}

/// The same Pod as a person would write it in YAML.
fn pod_yaml(n: usize) -> String {
    let mut text =
        String::from("apiVersion: v1\nkind: Pod\nmetadata:\n  name: big\nspec:\n  containers:\n");
    for i in 0..n {
        text.push_str(&format!("  - name: c{i}\n    image: x\n"));
    }
    text
}

#[test]
fn a_20000_container_pod_lists_100_findings_and_counts_the_rest() {
    let engine = Engine::new(&Platform::default());
    let object = pod(CONTAINERS);
    let ctx = Context::check(None);
    let all = engine
        .clone()
        .with_max_findings(None)
        .evaluate(&object, &ctx);
    assert_eq!(all.len(), CONTAINERS * PER_CONTAINER);

    let listed = engine.evaluate(&object, &ctx);
    assert_eq!(listed.len(), DEFAULT_MAX_FINDINGS_PER_OBJECT + 1);
    assert_eq!(
        listed[..DEFAULT_MAX_FINDINGS_PER_OBJECT],
        all[..DEFAULT_MAX_FINDINGS_PER_OBJECT],
        "the listed findings are the first ones, unchanged"
    );
    let note = listed.last().expect("the elision note");
    assert_eq!(note.check, FINDINGS_ELIDED);
    assert_eq!(note.severity, Severity::Deny);
    assert_eq!(note.path, "");
    assert_eq!(note.object, all[0].object);
    // The first finding left out is the 101st: still Pod Security's.
    assert_eq!(note.policy, "pod-security");
    assert_eq!(
        note.message,
        "139900 more findings on this object are not listed (139900 denied): at most 100 are \
         reported per object"
    );
    assert!(note.remediation.contains("--max-findings-per-object 0"));
}

#[test]
fn the_note_warns_only_when_every_finding_left_out_warns() {
    // Enforce privileged, warn restricted: every Pod Security finding is a warning.
    let engine = Engine::new(&Platform::default())
        .with_selection(Some(&["pod-security".to_owned()]), None, None)
        .expect("known policy")
        .with_max_findings(Some(3));
    let labels: BTreeMap<String, String> = [
        ("tenantry.dev/tenant", "shop"),
        ("pod-security.kubernetes.io/enforce", "privileged"),
        ("pod-security.kubernetes.io/warn", "restricted"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let namespace = NamespaceInfo {
        name: "shop".to_owned(),
        labels,
    };
    let ctx = Context {
        mode: Mode::Admission,
        operation: Operation::Create,
        namespace: Some(&namespace),
        tenant: None,
        user: None,
        old_object: None,
    };
    let listed = engine.evaluate(&pod(2), &ctx);
    assert_eq!(listed.len(), 4);
    assert!(listed.iter().all(|v| v.severity == Severity::Warn));
    assert_eq!(
        listed[3].message,
        "5 more findings on this object are not listed (5 warnings): at most 3 are reported per \
         object"
    );
    // At or under the limit, nothing is added.
    let exact = engine
        .clone()
        .with_max_findings(Some(8))
        .evaluate(&pod(2), &ctx);
    assert_eq!(exact.len(), 8);
    assert!(exact.iter().all(|v| v.check != FINDINGS_ELIDED));
}

#[test]
fn check_text_locates_the_listed_findings_of_a_20000_container_pod() {
    let engine = Engine::new(&Platform::default());
    let text = pod_yaml(CONTAINERS);
    let result = check_text(
        &TextInput {
            label: "pod.yaml",
            text: &text,
            format: Format::Yaml,
            kustomization: false,
        },
        &engine,
        &Context::check(None),
    );
    assert!(result.error.is_none());
    assert_eq!(result.judged.len(), 1);
    assert_eq!(result.findings.len(), DEFAULT_MAX_FINDINGS_PER_OBJECT + 1);
    // Container i starts on line 7 + 2i; its missing securityContext is reported there.
    let first = &result.findings[0];
    assert_eq!(
        first.violation.path,
        "spec.containers[0].securityContext.allowPrivilegeEscalation"
    );
    assert_eq!(first.line, Some(7));
    let last_listed = &result.findings[DEFAULT_MAX_FINDINGS_PER_OBJECT - 1];
    assert_eq!(
        last_listed.violation.path,
        "spec.containers[99].securityContext.allowPrivilegeEscalation"
    );
    assert_eq!(last_listed.line, Some(7 + 2 * 99));
    let note = &result.findings[DEFAULT_MAX_FINDINGS_PER_OBJECT];
    assert_eq!(note.violation.check, FINDINGS_ELIDED);
    assert_eq!(note.line, Some(1), "the note is about the whole document");

    // Every report format carries the note.
    let report = report::Report {
        findings: result.findings,
        judged: result.judged,
        files: 1,
        ..report::Report::default()
    };
    for format in [
        report::Format::Text,
        report::Format::Json,
        report::Format::Sarif,
        report::Format::Junit,
    ] {
        let rendered = report::render(&report, format, "test");
        assert!(
            rendered.contains("139900 more findings on this object are not listed"),
            "{format:?} lacks the elision note"
        );
    }
}

#[test]
fn json_input_is_located_the_same_way() {
    let engine = Engine::new(&Platform::default());
    let text = serde_json::to_string_pretty(&pod(2_000)).expect("serializable");
    let result = check_text(
        &TextInput {
            label: "pod.json",
            text: &text,
            format: Format::Json,
            kustomization: false,
        },
        &engine,
        &Context::check(None),
    );
    assert_eq!(result.findings.len(), DEFAULT_MAX_FINDINGS_PER_OBJECT + 1);
    // Pretty JSON: container i's object opens on line 10 + 4i.
    let lines: Vec<Option<u64>> = result.findings[..8].iter().map(|f| f.line).collect();
    let want = |i: u64| Some(10 + 4 * i);
    assert_eq!(
        lines,
        vec![
            want(0),
            want(1),
            want(2),
            want(3),
            want(4),
            want(5),
            want(6),
            want(7)
        ]
    );
}
