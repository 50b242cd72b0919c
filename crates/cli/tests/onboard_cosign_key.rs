//! `onboard --cosign-public-key FILE`: the platform's public key lands in the tenant's
//! declaration and its GitOps tree as the Secret Flux's `verify.secretRef` reads, and a file
//! that is not a cosign public key is refused naming the file.

use std::{path::Path, process::Output};

mod common;
use common::offline_run as run;

const COSIGN_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE5Zlsr3LHF/hRpD6MudAm3UkLAguK
iqTa3WyIcUh9uINeVJEOHfpMg9ed8ntFrc873ndmxbJN9V/Q/uzsjCgqqA==
-----END PUBLIC KEY-----
";

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under `dir`, with its text.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(t) = std::fs::read_to_string(&p) {
                out.push((p.display().to_string(), t));
            }
        }
    }
    out
}

#[test]
fn onboard_writes_the_public_key_secret_and_refuses_a_bad_key() {
    let repo = tempfile::tempdir().unwrap();
    let key = repo.path().join("cosign.pub");
    std::fs::write(&key, COSIGN_PUB).unwrap();
    let onboard = |tenant: &str, key: &Path| {
        run(
            repo.path(),
            &[
                "onboard",
                tenant,
                "--gitops-only",
                "--cosign-public-key",
                key.to_str().unwrap(),
            ],
        )
    };
    let o = onboard("shop", &key);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let all = files(repo.path());
    let secret = all
        .iter()
        .find(|(_, t)| t.contains("kind: Secret") && t.contains("cosign.pub:"))
        .unwrap_or_else(|| {
            panic!(
                "no cosign Secret among {:?}",
                all.iter().map(|f| &f.0).collect::<Vec<_>>()
            )
        });
    assert!(
        secret.1.contains("name: cosign-pub") && secret.1.contains("namespace: shop"),
        "{}",
        secret.1
    );
    let source = all
        .iter()
        .find(|(_, t)| t.contains("\nkind: OCIRepository"))
        .unwrap();
    assert!(
        source.1.contains("secretRef:\n      name: cosign-pub")
            && !source.1.contains("matchOIDCIdentity"),
        "{}",
        source.1
    );
    // Kept in the declaration: a later render produces the same tree.
    let o = run(repo.path(), &["render", "--check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // Not a P-256 public key: refused naming the file, nothing changed.
    let bad = repo.path().join("wrong.pub");
    std::fs::write(
        &bad,
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let o = onboard("web", &bad);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("--cosign-public-key {}", bad.display())),
        "{}",
        text(&o)
    );
    assert!(!files(repo.path()).iter().any(|(p, _)| p.contains("/web")));
}
