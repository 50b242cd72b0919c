//! `render`, `onboard`, `apply` and `check` all open the repository the same way, so a
//! `tenantry.yaml` is refused by all of them with the same message, naming the file, line and
//! field of every problem.

use std::path::PathBuf;

use tenantry_gitops::{PlatformFile, Repo};

struct TempRepo(PathBuf);

impl TempRepo {
    fn new(name: &str, platform: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tenantry-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("tenantry.yaml"), platform).expect("write tenantry.yaml");
        Self(dir)
    }
}

impl Drop for TempRepo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn every_problem_in_tenantry_yaml_names_the_file_line_and_field() {
    let repo = TempRepo::new(
        "bad-platform",
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\npolicies:\n  podSecurity:\n    version: v1.030\n  protectPlatformObjects:\n    exemptUsers: [\"system:*:x\"]\n",
    );
    let Err(err) = Repo::open(&repo.0, PlatformFile::Required) else {
        panic!("v1.030 and system:*:x must be refused");
    };
    let file = repo.0.join("tenantry.yaml");
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with(&format!(
            "{}:5:14: policies.podSecurity.version: \"v1.030\" must be",
            file.display()
        )),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{}:7:19: policies.protectPlatformObjects.exemptUsers[0]: \"system:*:x\"",
            file.display()
        )),
        "{text}"
    );
}
