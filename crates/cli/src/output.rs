//! One way out for every command: a report, printed once, as text or as JSON.
//!
//! Commands do their work into a `#[derive(Serialize)]` report and hand it to [`finish`]
//! with their result. Text is for people and may change between releases; the JSON shape
//! (`{"command": …, <report fields>, "result": …, "error"?: …}`) is for scripts, and its
//! `result` comes from [`Outcome`], never from prose. An error that stops a command still
//! prints what was done before it, so a half-finished run says how far it got.

use std::{
    io::{self, Write},
    path::Path,
    process::ExitCode,
};

use clap::ValueEnum;
use serde::Serialize;

/// Exit code when a check found problems (stale files, violations, a wrong credential).
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code for bad input or a failed operation.
pub const EXIT_ERROR: u8 = 2;

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables and sentences for people.
    #[default]
    Text,
    /// One JSON document on stdout, nothing else.
    Json,
}

/// How a command ended: the `result` field of its JSON report, and its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Done.
    Ok,
    /// Nothing to do: the tenant does not exist and that was accepted.
    NotFound,
    /// Done, with problems the user must look at (exit 1).
    Findings,
    /// The issued credential reaches further than the tenant; it was revoked (exit 1).
    CredentialTooBroad,
    /// The issued credential does not work in the tenant's namespace; it was revoked (exit 1).
    CredentialNotWorking,
    /// An operation failed part-way; the report says how far it got (exit 2).
    Failed,
    /// The command could not run (exit 2).
    Error,
}

impl Outcome {
    /// The process exit code this outcome means.
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(match self {
            Outcome::Ok | Outcome::NotFound => 0,
            Outcome::Findings | Outcome::CredentialTooBroad | Outcome::CredentialNotWorking => {
                EXIT_FINDINGS
            }
            Outcome::Failed | Outcome::Error => EXIT_ERROR,
        })
    }
}

/// What a command did, as data.
pub trait Report: Serialize {
    /// The command's name, the `command` field of the JSON report.
    const COMMAND: &'static str;
    /// How it ended.
    fn outcome(&self) -> Outcome;
    /// The report for people.
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()>;
}

#[derive(Serialize)]
struct Envelope<'a, R> {
    command: &'static str,
    #[serde(flatten)]
    report: &'a R,
    result: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Print `report` and turn the command's `result` into its exit code. In text mode an error
/// is returned (after the report) for `main` to print on stderr; in JSON mode it becomes the
/// document's `error` and exit code 2, so stdout always holds exactly one document.
pub fn finish<R: Report>(
    output: Output,
    report: &R,
    result: anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    match output {
        Output::Text => {
            let mut out = io::stdout().lock();
            ignore_broken_pipe(report.write_text(&mut out).and_then(|()| out.flush()))?;
            result?;
            Ok(report.outcome().exit_code())
        }
        Output::Json => {
            let (outcome, error) = match &result {
                Ok(()) => (report.outcome(), None),
                Err(e) => (Outcome::Error, Some(format!("{e:#}"))),
            };
            print_json(&Envelope {
                command: R::COMMAND,
                report,
                result: outcome,
                error,
            })?;
            Ok(outcome.exit_code())
        }
    }
}

/// Pretty JSON and a newline on stdout.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    let written = serde_json::to_writer_pretty(&mut out, value)
        .map_err(io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    ignore_broken_pipe(written)?;
    Ok(())
}

/// A closed pipe (`| head`) is the reader's choice, not a failure of the command.
fn ignore_broken_pipe(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// A path as printed in reports.
pub fn display(path: &Path) -> String {
    path.display().to_string()
}

/// `"1 file"`, `"2 files"`.
pub fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// `a, b` or `none`.
pub fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}
