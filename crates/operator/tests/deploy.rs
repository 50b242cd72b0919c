//! `deploy/operator/` is the kustomize base `tenantry operator manifests --write` generates;
//! this test fails when the code changed and the base was not regenerated (as
//! `render --check` does for tenants). Regenerate with
//! `cargo run -p tenantry-cli -- operator manifests --write deploy/operator` (or
//! `TENANTRY_REGENERATE=1 cargo test -p tenantry-operator --test deploy`).

use std::{collections::BTreeMap, path::PathBuf};

use tenantry_operator::manifests::{ManifestOptions, documents, kustomize_base};

#[test]
fn the_kustomize_base_is_what_the_code_generates() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/operator");
    let expected: BTreeMap<String, String> =
        kustomize_base(&documents(&ManifestOptions::default()).unwrap())
            .into_iter()
            .collect();
    // `TENANTRY_REGENERATE=1 cargo test -p tenantry-operator --test deploy` writes them.
    if std::env::var_os("TENANTRY_REGENERATE").is_some() {
        for (name, text) in &expected {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }
    let mut actual = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        actual.insert(name, std::fs::read_to_string(&path).unwrap());
    }
    let stale: Vec<&String> = expected
        .keys()
        .chain(actual.keys())
        .filter(|k| expected.get(*k) != actual.get(*k))
        .collect();
    assert!(
        stale.is_empty(),
        "deploy/operator is stale ({stale:?}); run `cargo run -p tenantry-cli -- operator manifests --write deploy/operator`"
    );
}
