//! OpenBao in cluster mode, the parts that need no cluster: a tenant with `secrets.openbao`
//! is refused before anything is written when no OpenBao is configured, unless
//! `--skip-openbao`. Provisioning itself runs in `secrets_cli.rs` (the same function) and, with
//! a real cluster and real Kubernetes auth, in `openbao_e2e.rs`.

use std::{
    fs,
    path::Path,
    process::{Command, Output},
};

mod common;
use common::{json_of, text};

fn tenantry(repo: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantry"));
    cmd.args(args)
        .arg("--repo")
        .arg(repo)
        // A cluster nobody listens on: the refusal must come before any connection.
        .arg("--kubeconfig")
        .arg(repo.join("nowhere.kubeconfig"))
        .env_remove("TENANTRY_REPO")
        .env_remove("KUBECONFIG");
    for var in [
        "BAO_ADDR",
        "VAULT_ADDR",
        "BAO_TOKEN",
        "VAULT_TOKEN",
        "BAO_K8S_ROLE",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().expect("tenantry runs")
}

fn repo() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    fs::write(repo.path().join("tenantry.yaml"), "").unwrap();
    fs::write(
        repo.path().join("nowhere.kubeconfig"),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:9\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n",
    )
    .unwrap();
    repo
}

#[test]
fn onboard_refuses_an_openbao_tenant_without_openbao_before_writing_anything() {
    let repo = repo();
    let o = tenantry(repo.path(), &["onboard", "shop", "--openbao"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("tenant shop has secrets.openbao")
            && out.contains("BAO_ADDR")
            && out.contains("--skip-openbao"),
        "{out}"
    );
    assert!(
        !repo.path().join("tenants").exists(),
        "nothing is written: {out}"
    );

    let o = tenantry(
        repo.path(),
        &["onboard", "shop", "--openbao", "--output", "json"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let report = json_of(&o);
    assert!(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("secrets.openbao")),
        "{report:#}"
    );

    // A tenant without secrets.openbao needs no OpenBao: it goes on to the cluster.
    let o = tenantry(repo.path(), &["onboard", "blog"]);
    let out = text(&o);
    assert!(!out.contains("secrets.openbao"), "{out}");
}

#[test]
fn skip_openbao_lets_onboard_go_on_to_the_cluster() {
    let repo = repo();
    let o = tenantry(
        repo.path(),
        &["onboard", "shop", "--openbao", "--skip-openbao"],
    );
    let out = text(&o);
    // It gets as far as the (absent) cluster, after writing the GitOps files.
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(!out.contains("secrets.openbao"), "{out}");
    assert!(repo.path().join("tenants/shop/openbao-policy.hcl").exists());
}

#[test]
fn apply_names_every_openbao_tenant_it_cannot_provision() {
    let repo = repo();
    for (name, openbao) in [("shop", true), ("blog", true), ("docs", false)] {
        let mut args = vec!["onboard", name, "--gitops-only"];
        if openbao {
            args.push("--openbao");
        }
        let o = Command::new(env!("CARGO_BIN_EXE_tenantry"))
            .args(&args)
            .arg("--repo")
            .arg(repo.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = tenantry(repo.path(), &["apply", "--all"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("tenants blog, shop have secrets.openbao"),
        "{out}"
    );
    let o = tenantry(repo.path(), &["apply", "docs"]);
    assert!(!text(&o).contains("secrets.openbao"), "{}", text(&o));
}
