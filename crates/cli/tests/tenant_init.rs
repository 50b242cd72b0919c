//! `tenantry tenant init` as a team runs it: in a real Git repository, against a platform
//! repository made by `tenantry onboard --gitops-only`. The scaffold must pass the platform's
//! checks as it stands, a re-run must change nothing Git can see, and `--update` must refresh
//! the platform's files while keeping every edit of the team's.

mod common;

use std::{
    fs,
    path::Path,
    process::{Command, Output},
};

use common::{json_of, text};

fn tenantry(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(args)
        .current_dir(dir)
        .env_remove("TENANTRY_REPO")
        .output()
        .expect("run tenantry")
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(o.status.success(), "git {args:?}: {}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

struct Setup {
    platform: tempfile::TempDir,
    repo: tempfile::TempDir,
}

impl Setup {
    /// A platform repository with tenant `shop` (`extra`: more onboard flags) and an empty
    /// Git repository for the tenant.
    fn new(extra: &[&str]) -> Self {
        let platform = tempfile::tempdir().unwrap();
        let mut args = vec!["onboard", "shop", "--gitops-only"];
        args.extend(extra);
        let o = tenantry(platform.path(), &args);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let repo = tempfile::tempdir().unwrap();
        git(repo.path(), &["init", "-q"]);
        Self { platform, repo }
    }

    fn init(&self, extra: &[&str]) -> Output {
        let platform = self.platform.path().to_str().unwrap();
        let mut args = vec![
            "tenant",
            "init",
            ".",
            "--tenant",
            "shop",
            "--platform-repo",
            platform,
        ];
        args.extend(extra);
        tenantry(self.repo.path(), &args)
    }

    fn check(&self, extra: &[&str]) -> Output {
        let mut args = vec!["check"];
        args.extend(extra);
        tenantry(self.repo.path(), &args)
    }

    fn read(&self, path: &str) -> String {
        fs::read_to_string(self.repo.path().join(path)).unwrap()
    }
}

const FILES: [&str; 7] = [
    ".templatesyncignore",
    "README.md",
    ".github/workflows/tenantry.yaml",
    "deploy/kustomization.yaml",
    "deploy/deployment.yaml",
    "deploy/service.yaml",
    "deploy/httproute.yaml",
];

#[test]
fn the_scaffold_passes_every_check_for_its_tenant_and_a_rerun_changes_nothing() {
    let s = Setup::new(&["--registry", "ghcr.io/acme"]);
    let o = s.init(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for f in FILES {
        assert!(s.repo.path().join(f).is_file(), "{f} written");
    }
    assert!(
        s.read("deploy/deployment.yaml")
            .contains("image: ghcr.io/acme/shop:0.1.0")
    );
    assert!(
        s.read(".github/workflows/tenantry.yaml")
            .contains("OCI_URL: oci://ghcr.io/example/shop/manifests"),
        "the OCI URL the platform pulls"
    );

    let platform = s.platform.path().to_str().unwrap();
    for args in [
        &["--tenant", "shop", "--repo", platform, "deploy/"][..],
        &["--repo-name", "shop", "deploy/"],
        &[
            "--repo-name",
            "shop",
            "--tenant",
            "shop",
            "--repo",
            platform,
            "deploy/",
        ],
    ] {
        let o = s.check(&[&["--format", "json"], args].concat());
        let report = json_of(&o);
        assert_eq!(o.status.code(), Some(0), "check {args:?}: {report:#}");
        assert_eq!(report["findings"], serde_json::json!([]), "check {args:?}");
    }

    git(s.repo.path(), &["add", "-A"]);
    git(s.repo.path(), &["commit", "-qm", "scaffold"]);
    let o = s.init(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("unchanged"), "{}", text(&o));
    assert_eq!(git(s.repo.path(), &["status", "--porcelain"]), "");
}

#[test]
fn update_refreshes_only_platform_files_after_showing_the_diff_and_keeps_team_edits() {
    let s = Setup::new(&[]);
    assert_eq!(s.init(&[]).status.code(), Some(0));
    git(s.repo.path(), &["add", "-A"]);
    git(s.repo.path(), &["commit", "-qm", "scaffold"]);
    let workflow = s.read(".github/workflows/tenantry.yaml");
    let team_edit = s.read("deploy/service.yaml") + "# the team's comment\n";
    fs::write(s.repo.path().join("deploy/service.yaml"), &team_edit).unwrap();
    fs::write(
        s.repo.path().join(".github/workflows/tenantry.yaml"),
        workflow.replace("category: tenantry", "category: local-edit"),
    )
    .unwrap();

    // Without --update, both differing files are refused and nothing is written.
    let o = s.init(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("deploy/service.yaml (team-owned"),
        "{}",
        text(&o)
    );
    assert!(
        s.read(".github/workflows/tenantry.yaml")
            .contains("local-edit")
    );

    // --dry-run prints the diff and writes nothing.
    let o = s.init(&["--update", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("--- a/.github/workflows/tenantry.yaml"),
        "{out}"
    );
    assert!(
        out.contains("-          category: local-edit\n+          category: tenantry"),
        "{out}"
    );
    assert!(!out.contains("--- a/deploy/service.yaml"), "{out}");
    assert!(
        s.read(".github/workflows/tenantry.yaml")
            .contains("local-edit")
    );

    let o = s.init(&["--update"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("+          category: tenantry"),
        "diff first: {out}"
    );
    assert!(
        out.contains("updated      ./.github/workflows/tenantry.yaml"),
        "{out}"
    );
    assert!(out.contains("kept         ./deploy/service.yaml"), "{out}");
    assert_eq!(s.read(".github/workflows/tenantry.yaml"), workflow);
    assert_eq!(s.read("deploy/service.yaml"), team_edit);
    assert_eq!(
        git(s.repo.path(), &["status", "--porcelain"]),
        " M deploy/service.yaml\n",
        "only the team's edit is left"
    );

    // A platform file the team lists in .templatesyncignore becomes the team's.
    let claimed = s.read(".templatesyncignore") + ".github/workflows/tenantry.yaml\n";
    fs::write(s.repo.path().join(".templatesyncignore"), claimed).unwrap();
    fs::write(
        s.repo.path().join(".github/workflows/tenantry.yaml"),
        "# ours\n",
    )
    .unwrap();
    let o = s.init(&["--update"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(s.read(".github/workflows/tenantry.yaml"), "# ours\n");

    // A team file removed on purpose is not brought back by --update.
    fs::remove_file(s.repo.path().join("deploy/httproute.yaml")).unwrap();
    assert_eq!(s.init(&["--update"]).status.code(), Some(0));
    assert!(!s.repo.path().join("deploy/httproute.yaml").exists());
}

#[test]
fn without_a_platform_repository_placeholders_stand_in_and_the_readme_names_them() {
    let repo = tempfile::tempdir().unwrap();
    let o = tenantry(repo.path(), &["tenant", "init", "app", "--tenant", "shop"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let dir = repo.path().join("app");
    let readme = fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        readme.contains("registry.example.com/shop:0.1.0"),
        "{readme}"
    );
    assert!(readme.contains("TENANTRY_OCI_URL"), "{readme}");
    let workflow = fs::read_to_string(dir.join(".github/workflows/tenantry.yaml")).unwrap();
    assert!(workflow.contains("${{ vars.TENANTRY_OCI_URL }}"));
    let o = tenantry(&dir, &["check", "--repo-name", "shop", "deploy"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let o = tenantry(repo.path(), &["tenant", "init", "app", "--tenant", "Shop!"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--tenant \"Shop!\""), "{}", text(&o));
    let o = tenantry(
        repo.path(),
        &[
            "tenant",
            "init",
            "x",
            "--tenant",
            "nobody",
            "--platform-repo",
            ".",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn the_contract_names_a_missing_kustomization_at_its_path_and_says_when_stdin_hides_it() {
    let repo = tempfile::tempdir().unwrap();
    assert_eq!(
        tenantry(repo.path(), &["tenant", "init", ".", "--tenant", "shop"])
            .status
            .code(),
        Some(0)
    );
    let o = tenantry(
        repo.path(),
        &[
            "check",
            "--repo-name",
            "shop",
            "--format",
            "json",
            "deploy/deployment.yaml",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report = json_of(&o);
    let finding = &report["findings"][0];
    assert_eq!(finding["file"], "deploy/kustomization.yaml", "{report:#}");
    assert_eq!(finding["check"], "required-path", "{report:#}");

    // Run from inside deploy/, the kustomization is still found by its real path.
    let o = tenantry(
        &repo.path().join("deploy"),
        &["check", "--repo-name", "shop"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
