//! One input's text to its findings: the path `tenantry check` runs for every file and stdin,
//! and the one the fuzz targets drive, so what is fuzzed is what ships.
//!
//! Reading the file (and deciding which files to read) stays with the caller; everything
//! from the first byte of text to located findings happens here: parse under the input
//! budget (recording each node's line on the way), expand `kind: List`, judge each object and
//! locate each finding's line; only inputs read by the slower reference path need a second,
//! positioned read.

use serde_json::Value;

use crate::engine::{Context, Engine, ObjectRef};
use crate::input::{self, Format};
use crate::policies::repo_contract::RepoScan;
use crate::report::{InputError, Judged, Located};

/// One input to judge.
#[derive(Debug, Clone, Copy)]
pub struct TextInput<'a> {
    /// How the input is named in findings (a path, or `stdin`).
    pub label: &'a str,
    /// Its text.
    pub text: &'a str,
    /// YAML or JSON.
    pub format: Format,
    /// A `kustomization.yaml`: documents without `apiVersion`/`kind` are Kustomizations
    /// (kustomize identifies them by file name, and most omit both fields).
    pub kustomization: bool,
}

/// What one input yielded.
#[derive(Debug, Default)]
pub struct TextResult {
    /// Every object judged (documents with a `kind`).
    pub judged: Vec<Judged>,
    /// Findings, in document order, with lines.
    pub findings: Vec<Located>,
    /// Why the input could not be read, if it could not.
    pub error: Option<InputError>,
    /// The repository-wide contract facts seen in this input, if the contract is checked.
    pub scan: Option<RepoScan>,
}

/// Give a kustomization document without `kind` its implied identity.
fn as_kustomization(mut value: Value) -> Value {
    if let Value::Object(map) = &mut value
        && !map.contains_key("kind")
    {
        map.insert(
            "apiVersion".to_owned(),
            Value::from("kustomize.config.k8s.io/v1beta1"),
        );
        map.insert("kind".to_owned(), Value::from("Kustomization"));
    }
    value
}

/// Judge every object of one input.
pub fn check_text(input: &TextInput<'_>, engine: &Engine, ctx: &Context<'_>) -> TextResult {
    let mut result = TextResult {
        scan: engine.repo_scan(),
        ..TextResult::default()
    };
    let documents = match input::parse_with_lines(input.text, input.format) {
        Ok(documents) => documents,
        Err(e) => {
            result.error = Some(InputError {
                file: input.label.to_owned(),
                line: e.line,
                column: e.column,
                message: e.message,
            });
            return result;
        }
    };
    // Findings whose documents recorded no lines, located after judging with one re-read:
    // (finding index, document line).
    let mut unlocated: Vec<(usize, u64)> = Vec::new();
    for (document, lines) in documents {
        let value = if input.kustomization {
            as_kustomization(document.value)
        } else {
            document.value
        };
        for (prefix, object) in input::objects(&value) {
            if object.get("kind").and_then(Value::as_str).is_some() {
                result.judged.push(Judged {
                    file: input.label.to_owned(),
                    document: document.index,
                    line: document.line,
                    object: ObjectRef::of(object),
                });
            }
            if let Some(scan) = result.scan.as_mut() {
                scan.observe(object);
            }
            for mut violation in engine.evaluate(object, ctx) {
                if !prefix.is_empty() {
                    violation.path = if violation.path.is_empty() {
                        prefix.clone()
                    } else {
                        format!("{prefix}.{}", violation.path)
                    };
                }
                let line = match &lines {
                    Some(lines) => Some(lines.locate(document.line, &violation.path)),
                    None => {
                        unlocated.push((result.findings.len(), document.line));
                        None
                    }
                };
                result.findings.push(Located {
                    file: input.label.to_owned(),
                    document: Some(document.index),
                    line,
                    violation,
                });
            }
        }
    }
    if !unlocated.is_empty() {
        let wanted: Vec<(u64, &str)> = unlocated
            .iter()
            .map(|(i, line)| (*line, result.findings[*i].violation.path.as_str()))
            .collect();
        let lines = input::locate_many(input.text, &wanted);
        for ((i, _), at) in unlocated.iter().zip(lines) {
            result.findings[*i].line = Some(at);
        }
    }
    result
}
