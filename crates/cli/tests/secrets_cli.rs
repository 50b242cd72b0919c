//! `tenantry secrets` as a platform engineer runs it: real `tenantry` processes against a
//! real `bao server -dev` (see `tenantry_secrets::testing`), token from the environment or a
//! file, never printed.

use std::{
    fs,
    path::Path,
    process::{Command, Output},
};

use serde_json::json;
use tenantry_secrets::{
    SecretsApi,
    client::Verb,
    testing::{DevServer, ROOT_TOKEN, free_port},
};

mod common;
use common::{json_of, text};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A platform repository with two OpenBao tenants and one without.
fn repo() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    fs::write(repo.path().join("tenantry.yaml"), "").unwrap();
    for (name, openbao) in [("shop", true), ("blog", true), ("docs", false)] {
        let mut args = vec!["onboard", name, "--gitops-only"];
        if openbao {
            args.push("--openbao");
        }
        let o = tenantry(repo.path(), &args, None, &[]);
        assert!(o.status.success(), "{}", text(&o));
    }
    repo
}

fn tenantry(repo: &Path, args: &[&str], bao: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantry"));
    cmd.args(args)
        .arg("--repo")
        .arg(repo)
        .env_remove("TENANTRY_REPO")
        .env_remove("KUBECONFIG");
    for var in [
        "BAO_ADDR",
        "VAULT_ADDR",
        "BAO_TOKEN",
        "VAULT_TOKEN",
        "BAO_CACERT",
        "VAULT_CACERT",
    ] {
        cmd.env_remove(var);
    }
    if let Some(address) = bao {
        cmd.env("BAO_ADDR", address).env("BAO_TOKEN", ROOT_TOKEN);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("tenantry runs")
}

#[test]
fn provision_plans_then_writes_and_a_second_run_writes_nothing() {
    let rt = runtime();
    let bao = rt.block_on(DevServer::start());
    let root = rt.block_on(bao.platform_ready());
    let repo = repo();
    let addr = Some(bao.address.as_str());

    let o = tenantry(
        repo.path(),
        &["secrets", "provision", "--all", "--dry-run"],
        addr,
        &[],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("create     policy      app-shop (tenant shop)"),
        "{out}"
    );
    assert!(out.contains("dry run: nothing written"), "{out}");
    assert!(rt.block_on(root.read_policy("app-shop")).unwrap().is_none());

    let o = tenantry(repo.path(), &["secrets", "provision", "--all"], addr, &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("written: 4 objects"), "{out}");
    assert!(
        !out.contains("docs"),
        "--all takes only OpenBao tenants: {out}"
    );
    let policy = fs::read_to_string(repo.path().join("tenants/shop/openbao-policy.hcl")).unwrap();
    assert_eq!(
        rt.block_on(root.read_policy("app-shop")).unwrap().unwrap(),
        policy,
        "what is provisioned is the repository's file, byte for byte"
    );

    let o = tenantry(
        repo.path(),
        &["secrets", "provision", "--all", "--output", "json"],
        addr,
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report = json_of(&o);
    assert_eq!(report["requests"]["writes"], 0, "{report:#}");
    assert!(
        report["plan"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["change"] == "unchanged"),
        "{report:#}"
    );

    let o = tenantry(repo.path(), &["secrets", "provision", "docs"], addr, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("tenant docs: no secrets.openbao"));
}

#[test]
fn a_foreign_policy_is_refused_with_exit_1_until_forced() {
    let rt = runtime();
    let bao = rt.block_on(DevServer::start());
    let root = rt.block_on(bao.platform_ready());
    let repo = repo();
    let addr = Some(bao.address.as_str());
    rt.block_on(root.write_policy(
        "app-shop",
        "path \"secret/*\" { capabilities = [\"read\"] }",
    ))
    .unwrap();
    let o = tenantry(repo.path(), &["secrets", "provision", "shop"], addr, &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("REFUSED    policy      app-shop"), "{out}");
    assert!(out.contains("--force"), "{out}");
    let o = tenantry(
        repo.path(),
        &["secrets", "provision", "shop", "--force"],
        addr,
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        rt.block_on(root.read_policy("app-shop"))
            .unwrap()
            .unwrap()
            .contains("rendered by Tenantry")
    );
}

#[test]
fn revoke_deletes_access_revokes_tokens_and_keeps_secrets() {
    let rt = runtime();
    let bao = rt.block_on(DevServer::start());
    let root = rt.block_on(bao.platform_ready());
    let repo = repo();
    let addr = Some(bao.address.as_str());
    let o = tenantry(repo.path(), &["secrets", "provision", "--all"], addr, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (_, accessor) = rt.block_on(bao.token_with("app-shop"));
    rt.block_on(root.request(
        Verb::Write,
        "secret/data/apps/shop/db",
        Some(&json!({ "data": { "password": "hunter2" } })),
    ))
    .unwrap();

    let o = tenantry(
        repo.path(),
        &["secrets", "revoke", "shop", "--output", "json"],
        addr,
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report = json_of(&o);
    assert_eq!(report["role"], "deleted", "{report:#}");
    assert_eq!(report["policy"], "deleted");
    assert_eq!(report["tokensRevoked"], 1);
    assert_eq!(report["secrets"], 1);
    assert_eq!(report["secretsPurged"], false);
    assert_eq!(rt.block_on(root.lookup_accessor(&accessor)).unwrap(), None);
    assert!(
        rt.block_on(root.read_role("kubernetes", "shop"))
            .unwrap()
            .is_none()
    );
    assert!(
        rt.block_on(root.read_role("kubernetes", "blog"))
            .unwrap()
            .is_some()
    );

    let o = tenantry(
        repo.path(),
        &["secrets", "revoke", "shop", "--purge-secrets"],
        addr,
        &[],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("purged        1 secret under secret/apps/shop/"),
        "{out}"
    );
    assert!(!out.contains("hunter2"));
}

#[test]
fn the_token_comes_from_a_file_and_never_appears_in_output() {
    let rt = runtime();
    let bao = rt.block_on(DevServer::start());
    rt.block_on(bao.platform_ready());
    let (token, _) = rt.block_on(bao.token_with("root"));
    let repo = repo();
    let file = repo.path().join("bao-token");
    fs::write(&file, format!("{token}\n")).unwrap();
    let file = file.to_string_lossy().into_owned();
    for args in [
        vec!["secrets", "provision", "--all", "--bao-token-file", &file],
        vec![
            "secrets",
            "provision",
            "--all",
            "--bao-token-file",
            &file,
            "--output",
            "json",
        ],
        vec![
            "secrets",
            "revoke",
            "blog",
            "--bao-token-file",
            &file,
            "--output",
            "json",
        ],
    ] {
        let o = tenantry(
            repo.path(),
            &args,
            None,
            &[("BAO_ADDR", &bao.address), ("TENANTRY_LOG", "trace")],
        );
        let out = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}");
        assert!(!out.contains(&token), "the token leaked: {out}");
    }
    // A token without the capability: the error names path, capability and address.
    let (weak, _) = rt.block_on(bao.token_with("default"));
    let o = tenantry(
        repo.path(),
        &["secrets", "provision", "shop"],
        None,
        &[("BAO_ADDR", &bao.address), ("BAO_TOKEN", &weak)],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("the token lacks capability \"read\" on path \"sys/mounts\"")
            && out.contains(&bao.address),
        "{out}"
    );
    assert!(!out.contains(&weak), "{out}");
}

#[test]
fn sealed_or_unreachable_openbao_exits_1_naming_it_and_no_address_exits_2() {
    let rt = runtime();
    let bao = rt.block_on(DevServer::start());
    let root = rt.block_on(bao.platform_ready());
    let repo = repo();
    rt.block_on(root.request(Verb::Write, "sys/seal", None))
        .unwrap();
    let o = tenantry(
        repo.path(),
        &["secrets", "provision", "--all"],
        Some(&bao.address),
        &[],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("OpenBao at {} is sealed", bao.address)),
        "{out}"
    );

    let gone = format!("http://127.0.0.1:{}", free_port());
    let o = tenantry(
        repo.path(),
        &["secrets", "revoke", "shop"],
        Some(&gone),
        &[],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("OpenBao at {gone} is unreachable")),
        "{out}"
    );

    let o = tenantry(repo.path(), &["secrets", "provision", "--all"], None, &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("BAO_ADDR"), "{out}");
}
