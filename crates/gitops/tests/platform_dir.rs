//! The platform-wide objects' directory beside `tenants/`: written like a tenant's (only
//! changed files, atomically), checked, and pruned of files Tenantry no longer renders there.

use std::{fs, path::Path};

use tenantry_gitops::{FileChange, PlatformFile, Repo};

fn open(dir: &Path, platform: &str) -> Repo {
    fs::write(dir.join("tenantry.yaml"), platform).unwrap();
    Repo::open(dir, PlatformFile::Required).unwrap()
}

const HEADER: &str = "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\n";

#[test]
fn platform_roles_are_written_beside_the_tenants_and_rewritten_only_when_they_change() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(dir.path(), HEADER);
    assert_eq!(
        repo.platform_dir("tenant-rbac"),
        dir.path().join("platform/tenant-rbac")
    );
    assert_eq!(
        repo.check_platform().unwrap().len(),
        4,
        "three roles and the kustomization missing"
    );

    let mut reports = repo.write_platform().unwrap();
    assert_eq!(reports.len(), 1, "no pull-secret directory without fanOut");
    let report = reports.remove(0);
    assert_eq!(report.tenant, "tenant-rbac");
    let created: Vec<String> = report
        .changes
        .iter()
        .map(|(p, c)| {
            assert_eq!(*c, FileChange::Created);
            p.display().to_string()
        })
        .collect();
    assert_eq!(
        created,
        [
            "platform/tenant-rbac/clusterrole.tenantry-tenant-edit-external-secrets.yaml",
            "platform/tenant-rbac/clusterrole.tenantry-tenant-edit-external-secrets-generators.yaml",
            "platform/tenant-rbac/clusterrole.tenantry-tenant-edit-gateway-api.yaml",
            "platform/tenant-rbac/kustomization.yaml",
        ]
    );
    let kustomization =
        fs::read_to_string(dir.path().join("platform/tenant-rbac/kustomization.yaml")).unwrap();
    assert!(
        kustomization.ends_with("resources:\n- clusterrole.tenantry-tenant-edit-external-secrets.yaml\n- clusterrole.tenantry-tenant-edit-external-secrets-generators.yaml\n- clusterrole.tenantry-tenant-edit-gateway-api.yaml\n"),
        "{kustomization}"
    );
    assert!(repo.check_platform().unwrap().is_empty());
    let again = repo.write_platform().unwrap().remove(0);
    assert!(again.is_unchanged(), "{again:?}");
    assert_eq!(again.unchanged, 4);

    // Gateway API off, Cilium on: one file removed, one created; a file Tenantry never
    // rendered stays.
    fs::write(dir.path().join("platform/tenant-rbac/notes.md"), "mine").unwrap();
    let repo = open(
        dir.path(),
        &format!("{HEADER}tenantRbac:\n  gatewayApi: false\n  cilium: true\n"),
    );
    let check = repo.check_platform().unwrap();
    let stale_role =
        Path::new("platform/tenant-rbac/clusterrole.tenantry-tenant-edit-gateway-api.yaml");
    assert!(
        check.contains(&(stale_role.to_path_buf(), FileChange::Removed)),
        "{check:?}"
    );
    let report = repo.write_platform().unwrap().remove(0);
    assert!(
        report
            .changes
            .contains(&(stale_role.to_path_buf(), FileChange::Removed)),
        "{report:?}"
    );
    assert!(
        report.changes.contains(&(
            Path::new("platform/tenant-rbac/clusterrole.tenantry-tenant-edit-cilium.yaml")
                .to_path_buf(),
            FileChange::Created
        )),
        "{report:?}"
    );
    assert!(!dir.path().join(stale_role).exists());
    assert!(dir.path().join("platform/tenant-rbac/notes.md").exists());

    // Nothing enabled: every role file goes, the kustomization stays, listing nothing.
    let repo = open(
        dir.path(),
        &format!(
            "{HEADER}tenantRbac:\n  gatewayApi: false\n  cilium: false\n  externalSecrets: false\n"
        ),
    );
    repo.write_platform().unwrap();
    let left: Vec<String> = fs::read_dir(repo.platform_dir("tenant-rbac"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(left, ["kustomization.yaml", "notes.md"]);
    assert!(repo.check_platform().unwrap().is_empty());
}

#[test]
fn the_platform_directory_sits_beside_a_nested_tenants_directory() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(
        dir.path(),
        &format!("{HEADER}tenantsDir: clusters/prod/tenants\n"),
    );
    assert_eq!(
        repo.platform_dir("tenant-rbac"),
        dir.path().join("clusters/prod/platform/tenant-rbac")
    );
}

#[test]
fn the_fanned_out_pull_secret_gets_its_own_directory_and_leaves_it_empty_when_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let on = format!("{HEADER}pullSecret:\n  fanOut: true\n");
    let repo = open(dir.path(), &on);
    let reports = repo.write_platform().unwrap();
    let components: Vec<&str> = reports.iter().map(|r| r.tenant.as_str()).collect();
    assert_eq!(components, ["tenant-rbac", "pull-secret"]);
    let file = Path::new("platform/pull-secret/clusterexternalsecret.ghcr-auth.yaml");
    assert_eq!(
        reports[1].changes,
        [
            (file.to_path_buf(), FileChange::Created),
            (
                Path::new("platform/pull-secret/kustomization.yaml").to_path_buf(),
                FileChange::Created
            ),
        ]
    );
    let text = fs::read_to_string(dir.path().join(file)).unwrap();
    assert!(
        text.starts_with("# Rendered by Tenantry for the platform (pull-secret)"),
        "{text}"
    );
    assert!(text.contains("kind: ClusterExternalSecret\n"), "{text}");
    assert!(
        text.contains("tenantry.dev/component: pull-secret\n"),
        "{text}"
    );
    assert!(repo.check_platform().unwrap().is_empty());

    // Turned off: `render --check` sees the stale file, the writer removes it and leaves a
    // kustomization listing nothing for the platform's reconciler.
    let repo = open(dir.path(), HEADER);
    assert_eq!(
        repo.check_platform().unwrap(),
        [
            (
                Path::new("platform/pull-secret/kustomization.yaml").to_path_buf(),
                FileChange::Updated
            ),
            (file.to_path_buf(), FileChange::Removed),
        ]
    );
    let reports = repo.write_platform().unwrap();
    assert!(
        reports[1]
            .changes
            .contains(&(file.to_path_buf(), FileChange::Removed)),
        "{reports:?}"
    );
    assert!(!dir.path().join(file).exists());
    let kustomization =
        fs::read_to_string(dir.path().join("platform/pull-secret/kustomization.yaml")).unwrap();
    assert!(
        kustomization.ends_with("resources: []\n"),
        "{kustomization}"
    );
    assert!(repo.check_platform().unwrap().is_empty());
}
