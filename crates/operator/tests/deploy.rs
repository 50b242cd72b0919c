//! `deploy/operator/` is the kustomize base `tenantry operator manifests --write` generates,
//! and `charts/tenantry/` the Helm chart `--helm-chart` generates; these tests fail when the
//! code changed and they were not regenerated (as `render --check` does for tenants).
//! Regenerate with `cargo run -p tenantry-cli -- operator manifests --write deploy/operator`
//! and `... --helm-chart charts/tenantry` (or
//! `TENANTRY_REGENERATE=1 cargo test -p tenantry-operator --test deploy`).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use tenantry_operator::manifests::{ManifestOptions, documents, helm, kustomize_base};

/// Every file under `dir`, by its path relative to `dir`.
fn files_under(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = format!("{prefix}{}", path.file_name().unwrap().to_string_lossy());
        if path.is_dir() {
            files_under(&path, &format!("{name}/"), out);
        } else {
            out.insert(name, std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[track_caller]
fn assert_generated(relative: &str, expected: Vec<(String, String)>, command: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    let expected: BTreeMap<String, String> = expected.into_iter().collect();
    if std::env::var_os("TENANTRY_REGENERATE").is_some() {
        for (name, text) in &expected {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }
    let mut actual = BTreeMap::new();
    files_under(&dir, "", &mut actual);
    let stale: Vec<&String> = expected
        .keys()
        .chain(actual.keys())
        .filter(|k| expected.get(*k) != actual.get(*k))
        .collect();
    assert!(
        stale.is_empty(),
        "{relative} is stale ({stale:?}); run `cargo run -p tenantry-cli -- operator manifests {command} {relative}`"
    );
}

#[test]
fn the_kustomize_base_is_what_the_code_generates() {
    assert_generated(
        "deploy/operator",
        kustomize_base(&documents(&ManifestOptions::default()).unwrap()),
        "--write",
    );
}

#[test]
fn the_helm_chart_is_what_the_code_generates() {
    assert_generated(
        "charts/tenantry",
        helm::chart(None).unwrap(),
        "--helm-chart",
    );
}
