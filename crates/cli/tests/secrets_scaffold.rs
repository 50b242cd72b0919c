//! `tenantry secrets scaffold` as a tenant runs it in its own repository, against the
//! platform repository: the files it writes, that `tenantry check` accepts them for that
//! tenant, that re-runs change nothing, and that it never overwrites the tenant's edits.

mod common;

use std::{
    fs,
    path::Path,
    process::{Command, Output},
};

use common::{json_of, text};

const TENANT_WITH_OPENBAO: &str = "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: shop\nspec:\n  secrets:\n    openbao: true\n";
const TENANT_WITHOUT: &str = "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: blog\nspec:\n  secrets:\n    openbao: false\n";
const KUSTOMIZATION: &str = "# the shop's manifests\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- service.yaml\n";
const SERVICE: &str =
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: shop\nspec:\n  ports:\n  - port: 80\n";

const FILES: [&str; 3] = [
    "session-key-password.yaml",
    "session-key-pushsecret.yaml",
    "session-key-externalsecret.yaml",
];

struct Setup {
    platform: tempfile::TempDir,
    tenant_repo: tempfile::TempDir,
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn setup() -> Setup {
    let platform = tempfile::tempdir().unwrap();
    write(
        &platform.path().join("tenantry.yaml"),
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\nopenbao:\n  pathPrefix: teams\n",
    );
    write(
        &platform.path().join("tenants/shop/tenant.yaml"),
        TENANT_WITH_OPENBAO,
    );
    write(
        &platform.path().join("tenants/blog/tenant.yaml"),
        TENANT_WITHOUT,
    );
    let tenant_repo = tempfile::tempdir().unwrap();
    write(
        &tenant_repo.path().join("deploy/kustomization.yaml"),
        KUSTOMIZATION,
    );
    write(&tenant_repo.path().join("deploy/service.yaml"), SERVICE);
    Setup {
        platform,
        tenant_repo,
    }
}

impl Setup {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tenantry"))
            .args(args)
            .arg("--repo")
            .arg(self.platform.path())
            .current_dir(self.tenant_repo.path())
            .env_remove("TENANTRY_REPO")
            .output()
            .expect("run tenantry")
    }

    fn deploy(&self, file: &str) -> String {
        fs::read_to_string(self.tenant_repo.path().join("deploy").join(file)).unwrap()
    }

    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(self.tenant_repo.path().join("deploy"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

#[test]
fn scaffold_writes_objects_that_check_accepts_for_the_tenant_and_reruns_change_nothing() {
    let s = setup();
    let o = s.run(&["secrets", "scaffold", "shop", "session-key"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    for f in FILES {
        assert!(out.contains(&format!("created deploy/{f}")), "{out}");
    }
    assert!(out.contains("secret/teams/shop/session-key"), "{out}");

    // The tenant's own path, through its own store, with the policies that keep a
    // reconcile from rotating the value.
    let push = s.deploy("session-key-pushsecret.yaml");
    assert!(
        push.contains("remoteKey: teams/shop/session-key\n"),
        "{push}"
    );
    assert!(push.contains("updatePolicy: IfNotExists\n"), "{push}");
    assert!(push.contains("deletionPolicy: None\n"), "{push}");
    assert!(push.contains("# updatePolicy: IfNotExists - "), "{push}");
    assert!(push.contains("  namespace: shop\n"), "{push}");
    let es = s.deploy("session-key-externalsecret.yaml");
    assert!(es.contains("key: teams/shop/session-key\n"), "{es}");

    // Listed in the kustomization, the tenant's comment and entries kept.
    let kustomization = s.deploy("kustomization.yaml");
    assert!(
        kustomization.starts_with("# the shop's manifests\n"),
        "{kustomization}"
    );
    for f in FILES.iter().chain(&["service.yaml"]) {
        assert!(
            kustomization.contains(&format!("- {f}\n")),
            "{f} in {kustomization}"
        );
    }

    // `tenantry check` for that tenant accepts them.
    let mut check = vec!["check".to_owned(), "--tenant".to_owned(), "shop".to_owned()];
    check.extend(FILES.iter().map(|f| format!("deploy/{f}")));
    let o = s.run(&check.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("3 objects in 3 files"), "{}", text(&o));

    // A re-run writes nothing.
    let before = s.snapshot();
    let o = s.run(&[
        "secrets",
        "scaffold",
        "shop",
        "session-key",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report = json_of(&o);
    assert_eq!(report["created"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["unchanged"], 3);
    assert_eq!(report["kustomization"], "unchanged");
    assert_eq!(s.snapshot(), before);
}

#[test]
fn an_edited_file_is_never_overwritten_and_nothing_else_is_written() {
    let s = setup();
    let push = s
        .tenant_repo
        .path()
        .join("deploy/session-key-pushsecret.yaml");
    write(&push, "# mine\n");
    let before = s.snapshot();
    let o = s.run(&["secrets", "scaffold", "shop", "session-key"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("session-key-pushsecret.yaml"), "{out}");
    assert!(out.contains("refusing to overwrite"), "{out}");
    assert_eq!(s.snapshot(), before, "nothing written");
}

#[test]
fn bad_arguments_and_tenants_without_openbao_are_refused_by_name() {
    let s = setup();
    let before = s.snapshot();
    let o = s.run(&["secrets", "scaffold", "shop", "Session_Key"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("SECRET \"Session_Key\""), "{}", text(&o));
    let o = s.run(&["secrets", "scaffold", "shop.x", "session-key"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("NAME \"shop.x\""), "{}", text(&o));
    let o = s.run(&["secrets", "scaffold", "blog", "session-key"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("secrets.openbao"), "{out}");
    assert!(out.contains("tenants/blog/tenant.yaml"), "{out}");
    let o = s.run(&["secrets", "scaffold", "nobody", "session-key"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("no tenant named \"nobody\""),
        "{}",
        text(&o)
    );
    assert_eq!(s.snapshot(), before);
}

#[test]
fn a_deploy_dir_without_kustomization_gets_the_files_and_is_told_so() {
    let s = setup();
    let o = s.run(&[
        "secrets",
        "scaffold",
        "shop",
        "session-key",
        "--dir",
        "app/manifests",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("has no kustomization.yaml"), "{out}");
    let dir = s.tenant_repo.path().join("app/manifests");
    for f in FILES {
        assert!(dir.join(f).is_file(), "{f}");
    }
    assert!(!dir.join("kustomization.yaml").exists());
}
