//! The machine-read formats of `tenantry check` as their consumers read them: SARIF documents
//! must pass the OASIS SARIF 2.1.0 schema (GitHub code scanning rejects an upload that does
//! not), and JUnit reports must be well-formed XML whose counts match the cases (CI systems
//! show the counts and drop a report they cannot parse). Both are fed hostile file names,
//! object names and messages.

use std::path::PathBuf;

use quick_xml::events::Event;
use serde_json::{Value, json};
use tenantry_api::Platform;
use tenantry_policy::{
    Context, Engine, Severity, TextInput, check_text,
    input::Format as InputFormat,
    report::{self, Format, InputError, Report},
};

/// Characters every format must survive: markup, quotes, a control character, an ANSI
/// colour, and the two non-characters XML 1.0 cannot carry.
const HOSTILE: &str = "w<e>b&'\" \u{1}\u{1b}[31m\u{FFFE}\u{FFFF}é";

const DEPLOY: &str = r#"{"apiVersion": "apps/v1", "kind": "Deployment",
 "metadata": {"name": "web"},
 "spec": {"template": {"spec": {"hostNetwork": true, "containers": [
   {"name": "app", "image": "nginx:1", "securityContext": {"privileged": true}}]}}}}"#;

const SERVICE: &str =
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: api\nspec:\n  type: NodePort\n";

const CONFIG_MAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n";

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// A report like one `tenantry check` run over several files: deny findings, a warning, a
/// clean object, an unreadable input, skipped checks and a note, with hostile names.
fn report(hostile: bool) -> Report {
    let engine = Engine::new(&Platform::default());
    let ctx = Context::check(None);
    let name = if hostile { HOSTILE } else { "web" };
    let mut deploy: Value = serde_json::from_str(DEPLOY).expect("JSON");
    deploy["metadata"]["name"] = json!(name);
    let deploy = deploy.to_string();
    let deploy_file = if hostile {
        format!("dir with space/{HOSTILE}:x\\app.json")
    } else {
        "deploy/app.json".to_owned()
    };
    let inputs = [
        (deploy_file.as_str(), deploy.as_str(), InputFormat::Json),
        ("svc.yaml", SERVICE, InputFormat::Yaml),
        ("cm.yaml", CONFIG_MAP, InputFormat::Yaml),
        ("broken.yaml", "kind: [", InputFormat::Yaml),
    ];
    let mut out = Report::default();
    for (label, text, format) in inputs {
        let result = check_text(
            &TextInput {
                label,
                text,
                format,
                kustomization: false,
            },
            &engine,
            &ctx,
        );
        out.files += 1;
        out.judged.extend(result.judged);
        out.findings.extend(result.findings);
        out.errors.extend(result.error);
    }
    // The Service's finding as a warning, the way an update carries one over.
    let service = out
        .findings
        .iter_mut()
        .find(|f| f.file == "svc.yaml")
        .expect("the NodePort Service is a finding");
    service.violation.severity = Severity::Warn;
    if hostile {
        service.violation.message = HOSTILE.to_owned();
        out.errors.push(InputError {
            file: HOSTILE.to_owned(),
            line: None,
            column: None,
            message: HOSTILE.to_owned(),
        });
        out.notes.push(HOSTILE.to_owned());
    }
    out.skipped = engine.skipped(&ctx);
    out.notes
        .push("remote resource https://example.com/x.yaml not followed".to_owned());
    out
}

/// `uri` is an RFC 3986 relative reference made of unreserved characters, `/` and
/// percent-escapes (so no scheme can be read into it).
fn is_relative_reference(uri: &str) -> bool {
    let bytes = uri.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let escape = bytes.get(i + 1..i + 3);
                if !escape.is_some_and(|e| e.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) => i += 1,
            _ => return false,
        }
    }
    !uri.is_empty()
}

fn sarif_schema() -> jsonschema::Validator {
    let path = testdata().join("sarif/sarif-schema-2.1.0.json");
    let text = std::fs::read_to_string(&path).expect("testdata/sarif/sarif-schema-2.1.0.json");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the SARIF schema compiles")
}

fn assert_valid_sarif(validator: &jsonschema::Validator, document: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "invalid SARIF:\n{}", errors.join("\n"));
}

#[test]
fn sarif_validates_against_the_sarif_2_1_0_schema() {
    let validator = sarif_schema();
    for hostile in [false, true] {
        let report = report(hostile);
        assert!(report.count(Severity::Deny) >= 2 && report.count(Severity::Warn) == 1);
        let text = report::render(&report, Format::Sarif, "1.2.3");
        let document: Value = serde_json::from_str(&text).expect("SARIF is JSON");
        assert_valid_sarif(&validator, &document);
        let run = &document["runs"][0];
        assert_eq!(run["tool"]["driver"]["version"], "1.2.3");
        let results = run["results"].as_array().expect("results");
        assert_eq!(results.len(), report.findings.len());
        let levels: Vec<&str> = results.iter().filter_map(|r| r["level"].as_str()).collect();
        assert!(
            levels.contains(&"error") && levels.contains(&"warning"),
            "{levels:?}"
        );
        // The schema's `uri-reference` format is not checked by the validator: every location
        // must be a relative reference with only unreserved characters, `/` and escapes.
        for result in results {
            let uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .expect("uri");
            assert!(is_relative_reference(uri), "{uri}");
        }
        let notifications = run["invocations"][0]["toolExecutionNotifications"]
            .as_array()
            .expect("notifications");
        assert_eq!(
            notifications.len(),
            report.errors.len() + report.skipped.len() + report.notes.len()
        );
    }
    // An empty run (nothing found, nothing skipped) is valid too.
    let empty = report::render(&Report::default(), Format::Sarif, "0.0.0");
    assert_valid_sarif(&validator, &serde_json::from_str(&empty).expect("JSON"));
}

#[test]
fn the_schema_check_catches_an_invalid_document() {
    // Guards the test above against a validator that accepts anything.
    let validator = sarif_schema();
    let text = report::render(&report(false), Format::Sarif, "1.2.3");
    let mut document: Value = serde_json::from_str(&text).expect("JSON");
    document["runs"][0]["results"][0]["level"] = json!("fatal");
    assert!(!validator.is_valid(&document));
    let mut document: Value = serde_json::from_str(&text).expect("JSON");
    document["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        json!(0);
    assert!(!validator.is_valid(&document));
}

/// The characters XML 1.0 allows in a document.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Reads the whole document with quick-xml: tags balanced and matching, one root, every
/// attribute and text node unescapes.
fn assert_well_formed(xml: &str) {
    if let Some(bad) = xml.chars().find(|&c| !is_xml_char(c)) {
        panic!(
            "U+{:04X} is not an XML 1.0 character:\n{xml}",
            u32::from(bad)
        );
    }
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut roots = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Start(start)) => {
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
                for attribute in start.attributes() {
                    let attribute = attribute.expect("well-formed attribute");
                    attribute
                        .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                        .expect("attribute unescapes");
                }
            }
            Ok(Event::Empty(start)) => {
                if depth == 0 {
                    roots += 1;
                }
                for attribute in start.attributes() {
                    let attribute = attribute.expect("well-formed attribute");
                    attribute
                        .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                        .expect("attribute unescapes");
                }
            }
            Ok(Event::End(_)) => depth = depth.checked_sub(1).expect("no stray end tag"),
            Ok(Event::Text(text)) => {
                text.decode().expect("text decodes");
            }
            Ok(Event::GeneralRef(reference)) => {
                let name = reference.decode().expect("reference decodes");
                assert!(
                    matches!(&*name, "amp" | "lt" | "gt" | "quot" | "apos")
                        || reference.is_char_ref(),
                    "unknown entity &{name};"
                );
            }
            Ok(_) => {}
            Err(e) => panic!(
                "not well-formed at {}: {e}\n{xml}",
                reader.buffer_position()
            ),
        }
    }
    assert_eq!(depth, 0, "unclosed elements");
    assert_eq!(roots, 1, "one root element");
}

#[test]
fn junit_is_well_formed_xml_with_counts_that_match_its_cases() {
    for hostile in [false, true] {
        let report = report(hostile);
        let xml = report::render(&report, Format::Junit, "1.2.3");
        assert_well_formed(&xml);
        let junit = quick_junit::Report::deserialize_from_str(&xml).expect("a JUnit report");

        // One suite per input file with objects, then the unreadable inputs, then the skips.
        let objects = report.judged.len();
        let suites: Vec<&str> = junit.test_suites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(suites.len(), 3 + 2, "{suites:?}");
        assert_eq!(suites[3..], ["unreadable inputs", "skipped checks"]);
        assert_eq!(
            junit.tests,
            objects + report.errors.len() + report.skipped.len()
        );
        // The Deployment fails (its deny findings are one failure); the warned Service and the
        // clean ConfigMap pass.
        assert_eq!(junit.failures, 1);
        assert_eq!(junit.errors, report.errors.len());
        assert_eq!(junit.skipped, report.skipped.len());
        for suite in &junit.test_suites {
            assert_eq!(
                suite.tests,
                suite.test_cases.len(),
                "{}",
                suite.name.as_str()
            );
        }

        let deploy = &junit.test_suites[0];
        let case = &deploy.test_cases[0];
        let quick_junit::TestCaseStatus::NonSuccess {
            kind,
            message,
            ty,
            description,
            ..
        } = &case.status
        else {
            panic!("the Deployment fails: {:?}", case.status);
        };
        assert_eq!(*kind, quick_junit::NonSuccessKind::Failure);
        assert_eq!(ty.as_ref().map(|t| t.as_str()), Some("tenantry.deny"));
        let deny = report
            .findings
            .iter()
            .filter(|f| f.violation.severity == Severity::Deny)
            .count();
        assert!(
            message
                .as_ref()
                .is_some_and(|m| m.as_str().starts_with(&format!("{deny} violations: "))),
            "{message:?}"
        );
        let description = description.as_ref().expect("the findings").as_str();
        assert!(description.contains("privileged"), "{description}");
        assert_eq!(case.extra.get("line").map(|l| l.as_str()), Some("1"));

        let service = &junit.test_suites[1].test_cases[0];
        assert!(matches!(
            service.status,
            quick_junit::TestCaseStatus::Success { .. }
        ));
        assert!(
            service
                .system_out
                .as_ref()
                .is_some_and(|out| out.as_str().contains("warn node-port")),
            "{service:?}"
        );

        if hostile {
            // Markup survives escaping; the control character and the ANSI colour are dropped,
            // the non-characters replaced.
            assert_eq!(
                case.name.as_str(),
                "Deployment w<e>b&'\" \u{FFFD}\u{FFFD}é (document 1)"
            );
            assert!(!xml.contains("w<e>"));
            assert!(deploy.name.as_str().contains("\u{FFFD}"));
        } else {
            assert_eq!(case.name.as_str(), "Deployment web (document 1)");
            assert_eq!(deploy.name.as_str(), "deploy/app.json");
        }
    }
}

#[test]
fn junit_output_is_a_function_of_the_report() {
    let report = report(true);
    let first = report::render(&report, Format::Junit, "1.2.3");
    assert_eq!(first, report::render(&report, Format::Junit, "1.2.3"));
    assert!(first.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
    assert!(!first.contains("timestamp=") && !first.contains("time=") && !first.contains("uuid="));
}
