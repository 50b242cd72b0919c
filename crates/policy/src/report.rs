//! Findings as people and CI systems read them: text for a terminal, JSON for scripts, SARIF
//! 2.1.0 for code scanning (GitHub shows each finding on its line in the pull request), and
//! JUnit XML for CI test reports (each object is a test case).
//!
//! All four say the same things: every finding with its file, document, line, object, field
//! path, check ID and remediation; the checks that were skipped and why; inputs that could not
//! be read. SARIF is built here with `serde_json` and checked against the OASIS schema in tests
//! (why not `serde-sarif`: see the SARIF section); JUnit goes through `quick-junit`, which owns
//! the XML escaping. Every format is tested against hostile strings.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;

use quick_junit::{self as junit, NonSuccessKind, TestCase, TestCaseStatus, TestSuite, XmlString};
use serde_json::{Value, json};

use crate::catalog;
use crate::engine::{ObjectRef, Severity, Skipped, Violation};

/// A violation found in an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The input, as given (a path relative to where `check` ran, or `-` for stdin).
    pub file: String,
    /// 1-based document index in the input, when the finding is about one document.
    pub document: Option<usize>,
    /// 1-based line of the offending field, when known.
    pub line: Option<u64>,
    /// The violation (its path already includes any `items[i].` prefix of a List).
    pub violation: Violation,
}

/// An input that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The input.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// What is wrong.
    pub message: String,
}

/// An object that was judged, for reports that list passes too (JUnit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// The input.
    pub file: String,
    /// 1-based document index.
    pub document: usize,
    /// 1-based line of the document.
    pub line: u64,
    /// The object.
    pub object: ObjectRef,
}

/// Everything one `check` run found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Findings, in input order.
    pub findings: Vec<Located>,
    /// Objects judged, in input order.
    pub judged: Vec<Judged>,
    /// Number of inputs read.
    pub files: usize,
    /// Checks that could not run.
    pub skipped: Vec<Skipped>,
    /// Other things the reader should know (remote resources not followed, charts skipped).
    pub notes: Vec<String>,
    /// Inputs that could not be read.
    pub errors: Vec<InputError>,
}

impl Report {
    /// Number of findings at a severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.violation.severity == severity)
            .count()
    }
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people.
    Text,
    /// For scripts.
    Json,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
    /// JUnit XML, for CI test reports.
    Junit,
}

/// Render a report. `version` is the tool version written into SARIF.
pub fn render(report: &Report, format: Format, version: &str) -> String {
    let mut out = Vec::new();
    // Writing into memory cannot fail, and every format is written as UTF-8.
    let _ = write(report, format, version, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Write a report to `out` as it is rendered ([`render`] gives the same bytes): text finding
/// by finding, the other formats without first building the document as one string.
pub fn write(
    report: &Report,
    format: Format,
    version: &str,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    match format {
        Format::Text => text(report, out),
        Format::Json => pretty(&json_report(report, version), out),
        Format::Sarif => pretty(&sarif(report, version), out),
        Format::Junit => junit(report)
            .serialize(out)
            .map_err(|e| io::Error::other(e.to_string())),
    }
}

/// A JSON document, pretty-printed, with a final newline.
fn pretty(document: &Value, out: &mut dyn io::Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, document)?;
    out.write_all(b"\n")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn position(file: &str, line: Option<u64>) -> String {
    match line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_owned(),
    }
}

fn text(report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
    for error in &report.errors {
        let at = match (error.line, error.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", error.file),
            (Some(l), None) => format!("{}:{l}", error.file),
            _ => error.file.clone(),
        };
        writeln!(out, "{at}: error: {}", error.message)?;
    }
    for f in &report.findings {
        let v = &f.violation;
        let document = f
            .document
            .map(|d| format!(" (document {d})"))
            .unwrap_or_default();
        writeln!(
            out,
            "{}: {} {} [{}] {}{document}",
            position(&f.file, f.line),
            v.severity,
            v.check,
            v.policy,
            v.object
        )?;
        if !v.path.is_empty() {
            writeln!(out, "  at {}", v.path)?;
        }
        writeln!(out, "  {}", v.message)?;
        writeln!(out, "  fix: {}", v.remediation)?;
    }
    for s in &report.skipped {
        writeln!(out, "skipped {}: {}", s.policy, s.reason)?;
    }
    for note in &report.notes {
        writeln!(out, "note: {note}")?;
    }
    let deny = report.count(Severity::Deny);
    let warn = report.count(Severity::Warn);
    let verdict = match (deny, warn) {
        (0, 0) => "no violations".to_owned(),
        (d, 0) => plural(d, "violation", "violations"),
        (0, w) => format!("no violations, {}", plural(w, "warning", "warnings")),
        (d, w) => format!(
            "{}, {}",
            plural(d, "violation", "violations"),
            plural(w, "warning", "warnings")
        ),
    };
    let errors = if report.errors.is_empty() {
        String::new()
    } else {
        format!(
            "; {} could not be read",
            plural(report.errors.len(), "input", "inputs")
        )
    };
    writeln!(
        out,
        "{} in {}: {verdict}{errors}",
        plural(report.judged.len(), "object", "objects"),
        plural(report.files, "file", "files"),
    )
}

fn object_json(object: &ObjectRef) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

fn json_report(report: &Report, version: &str) -> Value {
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let v = &f.violation;
            json!({
                "file": f.file,
                "document": f.document,
                "line": f.line,
                "severity": v.severity,
                "check": v.check,
                "policy": v.policy,
                "object": object_json(&v.object),
                "path": v.path,
                "message": v.message,
                "remediation": v.remediation,
            })
        })
        .collect();
    let errors: Vec<Value> = report
        .errors
        .iter()
        .map(|e| json!({"file": e.file, "line": e.line, "column": e.column, "message": e.message}))
        .collect();
    json!({
        "tool": "tenantry",
        "version": version,
        "summary": {
            "files": report.files,
            "objects": report.judged.len(),
            "deny": report.count(Severity::Deny),
            "warn": report.count(Severity::Warn),
            "errors": report.errors.len(),
        },
        "findings": findings,
        "skipped": report.skipped,
        "notes": report.notes,
        "errors": errors,
    })
}

// SARIF is written by hand with `serde_json::json!` rather than through `serde-sarif` (0.8.0,
// the latest). That crate can express everything emitted here, but it generates its ~120 KB
// of types from the schema in a build script, which adds about a dozen crates to the build
// (schemafy, syn 1, Inflector, prettyplease, typed-builder, strum, uriparse, ...) for about
// 150 lines of JSON; 0.8.0 does not compile on its own (it derives serde traits without
// enabling serde's `derive` feature); and it has had no release, and no change but dependency
// bumps and docs, since May 2025. The typo-safety its types would give comes instead from
// validating every emitted document against the OASIS SARIF 2.1.0 schema in tests
// (`testdata/sarif/sarif-schema-2.1.0.json`); `preserve_order` keeps the key order, and so
// the bytes, fixed.

/// A relative URI reference for a path: forward slashes, everything outside RFC 3986's
/// unreserved set and `/` percent-encoded.
fn uri(path: &str) -> String {
    let path = path.replace('\\', "/");
    let path = path.strip_prefix("./").unwrap_or(&path);
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// FNV-1a, 64 bit: a stable fingerprint without a hashing dependency (not for security).
fn fingerprint(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.as_bytes().iter().chain(&[0u8]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

fn sarif(report: &Report, version: &str) -> Value {
    let (rule_index, rules) = sarif_rules(report);
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| sarif_result(f, &rule_index))
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "tenantry",
                    "semanticVersion": version,
                    "version": version,
                    "informationUri": "https://tenantry.dev",
                    "rules": rules,
                }
            },
            "invocations": [{
                "executionSuccessful": report.errors.is_empty(),
                "toolExecutionNotifications": sarif_notifications(report),
            }],
            "results": results,
        }]
    })
}

/// One SARIF rule per check that occurs, in first-seen order so that `ruleIndex` is stable
/// per run; with the index of each check's rule.
fn sarif_rules(report: &Report) -> (BTreeMap<&str, usize>, Vec<Value>) {
    let mut rule_index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rules: Vec<Value> = Vec::new();
    for f in &report.findings {
        let v = &f.violation;
        if rule_index.contains_key(v.check.as_str()) {
            continue;
        }
        rule_index.insert(&v.check, rules.len());
        let summary = catalog::describe(&v.check).map_or(v.message.as_str(), |d| d.summary);
        rules.push(json!({
            "id": v.check,
            "name": v.check,
            "shortDescription": { "text": summary },
            "fullDescription": { "text": format!("{summary} Policy: {}.", v.policy) },
            "help": { "text": format!("{summary} Policy: {}. Run `tenantry check --policy {}` to check only this policy.", v.policy, v.policy) },
            "defaultConfiguration": { "level": "error" },
            "properties": { "tags": ["security", "kubernetes", v.policy] },
        }));
    }
    (rule_index, rules)
}

/// One finding as a SARIF result, located on its file and line.
fn sarif_result(f: &Located, rule_index: &BTreeMap<&str, usize>) -> Value {
    let v = &f.violation;
    let mut message = format!("{}: {}", v.object, v.message);
    if !v.path.is_empty() {
        let _ = write!(message, " (at {})", v.path);
    }
    let _ = write!(message, ". Fix: {}", v.remediation);
    let mut region = json!({ "startLine": f.line.unwrap_or(1).max(1) });
    if let Some(d) = f.document {
        region["properties"] = json!({ "document": d });
    }
    json!({
        "ruleId": v.check,
        "ruleIndex": rule_index.get(v.check.as_str()).copied().unwrap_or(0),
        "level": match v.severity { Severity::Deny => "error", Severity::Warn => "warning" },
        "message": { "text": message },
        "locations": [{
            "physicalLocation": {
                "artifactLocation": { "uri": uri(&f.file) },
                "region": region,
            },
            "logicalLocations": [{
                "name": v.path,
                "fullyQualifiedName": format!("{}/{}", v.object, v.path),
                "kind": "member",
            }],
        }],
        "partialFingerprints": {
            "tenantryFinding/v1": fingerprint(&[
                &v.check,
                &f.file,
                &v.object.to_string(),
                &v.path,
            ]),
        },
        "properties": {
            "policy": v.policy,
            "object": object_json(&v.object),
            "path": v.path,
            "remediation": v.remediation,
        },
    })
}

/// Unreadable inputs (errors), then skipped checks and notes (notes).
fn sarif_notifications(report: &Report) -> Vec<Value> {
    let mut notifications: Vec<Value> = report
        .errors
        .iter()
        .map(|e| {
            let mut location =
                json!({ "physicalLocation": { "artifactLocation": { "uri": uri(&e.file) } } });
            if let Some(line) = e.line {
                location["physicalLocation"]["region"] = json!({ "startLine": line.max(1) });
            }
            json!({
                "level": "error",
                "message": { "text": format!("{} could not be read: {}", e.file, e.message) },
                "locations": [location],
            })
        })
        .collect();
    notifications.extend(report.skipped.iter().map(|s| {
        json!({
            "level": "note",
            "message": { "text": format!("skipped {}: {}", s.policy, s.reason) },
        })
    }));
    notifications.extend(
        report
            .notes
            .iter()
            .map(|n| json!({ "level": "note", "message": { "text": n } })),
    );
    notifications
}

// JUnit XML is written by `quick-junit` (nextest's data model and serializer, over quick-xml):
// it escapes text and attributes, drops C0 controls and whole ANSI escape sequences (which
// XML 1.0 cannot carry, or CI pages would show as noise), and keeps the suite and total counts
// consistent with the cases. It writes no timestamp, time or UUID unless asked, so the output
// stays a function of the report.

/// Text for the JUnit report. `XmlString` drops C0 controls but passes U+FFFE and U+FFFF,
/// which XML 1.0 cannot carry either (a hostile file or object name could hold them).
fn xml(text: &str) -> XmlString {
    if text.contains(['\u{FFFE}', '\u{FFFF}']) {
        XmlString::new(text.replace(['\u{FFFE}', '\u{FFFF}'], "\u{FFFD}"))
    } else {
        XmlString::new(text)
    }
}

/// One JUnit test case: a judged object, whose deny findings are its one failure and whose
/// warnings are its output.
struct JunitCase<'a> {
    name: String,
    line: u64,
    deny: Vec<&'a Located>,
    warn: Vec<&'a Located>,
}

/// One JUnit test suite per input file.
type JunitSuite<'a> = (String, Vec<JunitCase<'a>>);

fn junit(report: &Report) -> junit::Report {
    let mut out = junit::Report::new("tenantry check");
    for (file, cases) in &junit_suites(report) {
        out.add_test_suite(junit_file_suite(file, cases));
    }
    if !report.errors.is_empty() {
        out.add_test_suite(junit_unreadable_suite(&report.errors));
    }
    if !report.skipped.is_empty() {
        out.add_test_suite(junit_skipped_suite(&report.skipped));
    }
    out
}

/// The judged objects grouped into suites by file, in input order, each with its findings.
/// Findings about an object that was not judged (none today) get a case of their own.
fn junit_suites(report: &Report) -> Vec<JunitSuite<'_>> {
    let mut suites: Vec<JunitSuite<'_>> = Vec::new();
    // (file, document, object) → (suite, case): a List document holds several objects.
    let mut index: BTreeMap<(String, usize, String), (usize, usize)> = BTreeMap::new();
    // file → suite, so that thousands of files cost a lookup each, not a search.
    let mut suite_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut suite_of = |suites: &mut Vec<JunitSuite<'_>>, file: &str| -> usize {
        if let Some(&i) = suite_index.get(file) {
            return i;
        }
        suites.push((file.to_owned(), Vec::new()));
        suite_index.insert(file.to_owned(), suites.len() - 1);
        suites.len() - 1
    };
    for j in &report.judged {
        let s = suite_of(&mut suites, &j.file);
        let cases = &mut suites[s].1;
        cases.push(JunitCase {
            name: format!("{} (document {})", j.object, j.document),
            line: j.line,
            deny: Vec::new(),
            warn: Vec::new(),
        });
        index
            .entry((j.file.clone(), j.document, j.object.to_string()))
            .or_insert((s, cases.len() - 1));
    }
    for f in &report.findings {
        let key = (
            f.file.clone(),
            f.document.unwrap_or(0),
            f.violation.object.to_string(),
        );
        let (s, c) = match index.get(&key) {
            Some(&at) => at,
            None => {
                let s = suite_of(&mut suites, &f.file);
                suites[s].1.push(JunitCase {
                    name: f.violation.object.to_string(),
                    line: f.line.unwrap_or(1),
                    deny: Vec::new(),
                    warn: Vec::new(),
                });
                let at = (s, suites[s].1.len() - 1);
                index.insert(key, at);
                at
            }
        };
        let case = &mut suites[s].1[c];
        match f.violation.severity {
            Severity::Deny => case.deny.push(f),
            Severity::Warn => case.warn.push(f),
        }
    }
    suites
}

/// A finding as the text of a failure or of a case's output.
fn junit_describe(f: &Located) -> String {
    let v = &f.violation;
    format!(
        "{}: {} {} [{}] at {}\n  {}\n  fix: {}\n",
        position(&f.file, f.line),
        v.severity,
        v.check,
        v.policy,
        if v.path.is_empty() { "-" } else { &v.path },
        v.message,
        v.remediation
    )
}

fn junit_file_suite(file: &str, cases: &[JunitCase<'_>]) -> TestSuite {
    let mut suite = TestSuite::new(xml(file));
    for case in cases {
        let status = if case.deny.is_empty() {
            TestCaseStatus::success()
        } else {
            let checks: Vec<&str> = case
                .deny
                .iter()
                .map(|f| f.violation.check.as_str())
                .collect();
            let body: String = case.deny.iter().map(|f| junit_describe(f)).collect();
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(xml(&format!(
                    "{}: {}",
                    plural(case.deny.len(), "violation", "violations"),
                    checks.join(", ")
                )))
                .set_type("tenantry.deny")
                .set_description(xml(&body));
            status
        };
        let mut test_case = TestCase::new(xml(&case.name), status);
        test_case.set_classname(xml(file));
        test_case.extra.insert("file".into(), xml(file));
        test_case
            .extra
            .insert("line".into(), case.line.to_string().into());
        if !case.warn.is_empty() {
            let body: String = case.warn.iter().map(|f| junit_describe(f)).collect();
            test_case.set_system_out(xml(&body));
        }
        suite.add_test_case(test_case);
    }
    suite
}

fn junit_unreadable_suite(errors: &[InputError]) -> TestSuite {
    let mut suite = TestSuite::new("unreadable inputs");
    for e in errors {
        let message = xml(&match e.line {
            Some(l) => format!("line {l}: {}", e.message),
            None => e.message.clone(),
        });
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status
            .set_message(message.clone())
            .set_type("tenantry.unreadable")
            .set_description(message);
        let mut test_case = TestCase::new(xml(&format!("read {}", e.file)), status);
        test_case.set_classname(xml(&e.file));
        suite.add_test_case(test_case);
    }
    suite
}

fn junit_skipped_suite(skipped: &[Skipped]) -> TestSuite {
    let mut suite = TestSuite::new("skipped checks");
    for s in skipped {
        let mut status = TestCaseStatus::skipped();
        status.set_message(xml(&s.reason));
        let mut test_case = TestCase::new(s.policy, status);
        test_case.set_classname("policies");
        suite.add_test_case(test_case);
    }
    suite
}
