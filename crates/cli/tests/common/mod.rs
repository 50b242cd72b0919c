//! What the CLI test suites share for reading a finished `tenantry` process.
#![allow(dead_code)] // each suite uses its own subset

use std::{
    path::Path,
    process::{Command, Output},
};

use serde_json::Value;

/// Exit code, stdout and stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Stdout as the one JSON document `--output json` promises.
#[track_caller]
pub fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}):\n{}", text(o)))
}

/// `tenantry ARGS --repo REPO` with no cluster: `KUBECONFIG` names a file that does not exist,
/// so anything that would reach an API server fails instead of finding the developer's.
pub fn offline_run(repo: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(args)
        .arg("--repo")
        .arg(repo)
        .env_remove("TENANTRY_REPO")
        .env("KUBECONFIG", repo.join("no-such-kubeconfig"))
        .output()
        .unwrap()
}
