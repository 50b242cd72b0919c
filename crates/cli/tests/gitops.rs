//! The GitOps commands as a platform engineer runs them: real `tenantry` processes on
//! temporary platform repositories.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::SystemTime,
};

fn tenantry(repo: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(args)
        .arg("--repo")
        .arg(repo)
        .env_remove("TENANTRY_REPO")
        .output()
        .expect("tenantry runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Every file under `dir` with its bytes and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let meta = fs::metadata(&p).unwrap();
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    (fs::read(&p).unwrap(), meta.modified().unwrap()),
                );
            }
        }
    }
    out
}

fn listed_resources(kustomization: &Path) -> Vec<String> {
    let doc: serde_json::Value =
        serde_saphyr::from_str(&fs::read_to_string(kustomization).unwrap()).unwrap();
    doc["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn onboard_writes_a_complete_registered_tenant_tree() {
    let repo = tempfile::tempdir().unwrap();
    let out = ok(tenantry(repo.path(), &["onboard", "shop", "--gitops-only"]));
    assert!(
        out.contains("tenantry.yaml with the built-in defaults"),
        "{out}"
    );
    assert!(out.contains("tenant shop: created"), "{out}");
    assert!(repo.path().join("tenantry.yaml").is_file());
    assert_eq!(
        listed_resources(&repo.path().join("tenants/kustomization.yaml")),
        ["shop/"]
    );

    let dir = repo.path().join("tenants/shop");
    let listed = listed_resources(&dir.join("kustomization.yaml"));
    let mut on_disk: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "kustomization.yaml" && n != "tenant.yaml")
        .collect();
    on_disk.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(
        sorted, on_disk,
        "kustomization lists exactly the rendered files"
    );
    assert_eq!(listed[0], "namespace.shop.yaml", "namespace first");
    for kind in [
        "resourcequota",
        "limitrange",
        "rolebinding",
        "serviceaccount",
        "networkpolicy",
        "externalsecret",
        "ocirepository",
        "kustomization.",
    ] {
        assert!(
            listed.iter().any(|f| f.starts_with(kind)),
            "no {kind} file in {listed:?}"
        );
    }
    let tenant = fs::read_to_string(dir.join("tenant.yaml")).unwrap();
    assert!(
        tenant.contains("kind: Tenant") && tenant.contains("name: shop"),
        "{tenant}"
    );
}

#[test]
fn re_onboarding_with_the_same_input_writes_nothing() {
    let repo = tempfile::tempdir().unwrap();
    let args = [
        "onboard",
        "shop",
        "--gitops-only",
        "--mesh",
        "--owner",
        "group:team-shop",
        "--namespace",
        "shop-dev",
    ];
    ok(tenantry(repo.path(), &args));
    let before = snapshot(repo.path());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = ok(tenantry(repo.path(), &args));
    assert_eq!(out.trim(), "tenant shop: unchanged");
    assert_eq!(
        before,
        snapshot(repo.path()),
        "bytes and modification times unchanged"
    );
}

#[test]
fn changed_input_rewrites_only_what_changed() {
    let repo = tempfile::tempdir().unwrap();
    ok(tenantry(repo.path(), &["onboard", "shop", "--gitops-only"]));
    let before = snapshot(repo.path());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = ok(tenantry(
        repo.path(),
        &["onboard", "shop", "--gitops-only", "--mesh"],
    ));
    let after = snapshot(repo.path());
    let changed: Vec<&PathBuf> = after
        .keys()
        .filter(|p| before.get(*p) != after.get(*p))
        .collect();
    assert_eq!(
        changed,
        [
            Path::new("tenants/shop/namespace.shop.yaml"),
            Path::new("tenants/shop/tenant.yaml")
        ],
        "{out}"
    );
    assert!(out.contains("updated 2 files"), "{out}");
    assert!(
        out.contains("updated tenants/shop/namespace.shop.yaml"),
        "{out}"
    );
    assert!(
        fs::read_to_string(repo.path().join("tenants/shop/namespace.shop.yaml"))
            .unwrap()
            .contains("istio-injection: enabled")
    );
}

#[test]
fn objects_no_longer_rendered_are_removed() {
    let repo = tempfile::tempdir().unwrap();
    ok(tenantry(
        repo.path(),
        &[
            "onboard",
            "shop",
            "--gitops-only",
            "--namespace",
            "shop-dev",
            "--openbao",
        ],
    ));
    assert!(
        repo.path()
            .join("tenants/shop/namespace.shop-dev.yaml")
            .is_file()
    );
    assert!(
        repo.path()
            .join("tenants/shop/openbao-policy.hcl")
            .is_file()
    );
    // Hand-edit the declaration: drop the extra namespace and OpenBao.
    let path = repo.path().join("tenants/shop/tenant.yaml");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("  namespaces:\n  - shop-dev\n", "")
        .replace("openbao: true", "openbao: false");
    fs::write(&path, format!("# hand edited\n{text}")).unwrap();
    let out = ok(tenantry(repo.path(), &["render", "--write"]));
    assert!(
        out.contains("removed tenants/shop/namespace.shop-dev.yaml"),
        "{out}"
    );
    assert!(
        out.contains("removed tenants/shop/openbao-policy.hcl"),
        "{out}"
    );
    assert!(
        !repo
            .path()
            .join("tenants/shop/namespace.shop-dev.yaml")
            .exists()
    );
    assert!(
        fs::read_to_string(&path)
            .unwrap()
            .starts_with("# hand edited"),
        "tenant.yaml is the user's"
    );
    let hand_written = repo.path().join("tenants/shop/NOTES.md");
    fs::write(&hand_written, "mine").unwrap();
    ok(tenantry(repo.path(), &["render", "--write"]));
    assert!(
        hand_written.exists(),
        "files Tenantry did not render are never removed"
    );
}

#[test]
fn registration_keeps_other_entries_and_comments() {
    let repo = tempfile::tempdir().unwrap();
    fs::create_dir_all(repo.path().join("tenants")).unwrap();
    let reg = repo.path().join("tenants/kustomization.yaml");
    fs::write(&reg, "# our tenants\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - alpha/ # first\n  - zulu/\n").unwrap();
    ok(tenantry(repo.path(), &["onboard", "mike", "--gitops-only"]));
    assert_eq!(
        fs::read_to_string(&reg).unwrap(),
        "# our tenants\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - alpha/ # first\n  - mike/\n  - zulu/\n"
    );
    ok(tenantry(
        repo.path(),
        &["offboard", "mike", "--gitops-only"],
    ));
    assert_eq!(
        fs::read_to_string(&reg).unwrap(),
        "# our tenants\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - alpha/ # first\n  - zulu/\n"
    );
}

#[test]
fn offboard_removes_the_directory_and_registration() {
    let repo = tempfile::tempdir().unwrap();
    ok(tenantry(repo.path(), &["onboard", "shop", "--gitops-only"]));
    ok(tenantry(repo.path(), &["onboard", "blog", "--gitops-only"]));
    let out = ok(tenantry(
        repo.path(),
        &["offboard", "shop", "--gitops-only"],
    ));
    assert!(
        out.contains("removed") && out.contains("unregistered"),
        "{out}"
    );
    assert!(!repo.path().join("tenants/shop").exists());
    assert_eq!(
        listed_resources(&repo.path().join("tenants/kustomization.yaml")),
        ["blog/"]
    );

    let again = tenantry(repo.path(), &["offboard", "shop", "--gitops-only"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("no tenant named \"shop\""),
        "{}",
        stderr(&again)
    );
    ok(tenantry(
        repo.path(),
        &["offboard", "shop", "--gitops-only", "--ignore-not-found"],
    ));
}

#[test]
fn offboard_finishes_an_interrupted_removal() {
    let repo = tempfile::tempdir().unwrap();
    ok(tenantry(repo.path(), &["onboard", "shop", "--gitops-only"]));
    fs::remove_dir_all(repo.path().join("tenants/shop")).unwrap();
    let out = ok(tenantry(
        repo.path(),
        &["offboard", "shop", "--gitops-only"],
    ));
    assert!(out.contains("unregistered"), "{out}");
}

/// Run a failing command and assert: exit 2, the message names what to fix, nothing written.
#[track_caller]
fn refused(repo: &Path, args: &[&str], mentions: &[&str]) {
    let before = snapshot(repo);
    let o = tenantry(repo, args);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{args:?}\nstdout: {}\nstderr: {err}",
        stdout(&o)
    );
    for m in mentions {
        assert!(
            err.contains(m),
            "{args:?}: stderr does not mention {m:?}:\n{err}"
        );
    }
    assert_eq!(before, snapshot(repo), "{args:?} wrote something");
}

#[test]
fn bad_input_is_refused_with_file_field_and_nothing_written() {
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path();
    refused(
        r,
        &["onboard", "../x", "--gitops-only"],
        &["tenant name \"../x\"", "DNS-1123"],
    );
    refused(r, &["onboard", "Shop", "--gitops-only"], &["lower-case"]);
    refused(
        r,
        &["onboard", "kube-system", "--gitops-only"],
        &[
            "tenants/kube-system/tenant.yaml",
            "metadata.name",
            "reserved",
        ],
    );
    refused(
        r,
        &["onboard", &"a".repeat(64), "--gitops-only"],
        &["at most 63"],
    );
    refused(
        r,
        &["onboard", "shop", "--gitops-only", "--namespace", "other"],
        &[
            "tenants/shop/tenant.yaml",
            "spec.namespaces[0]",
            "start with \"shop-\"",
        ],
    );
    refused(
        r,
        &["onboard", "shop", "--gitops-only", "--delivery", "flux-git"],
        &["spec.delivery.fluxGit.url", "required"],
    );
    refused(
        r,
        &[
            "onboard",
            "shop",
            "--gitops-only",
            "--delivery",
            "flux-oci",
            "--semver",
            "newest",
        ],
        &["spec.delivery.fluxOCI.semver"],
    );
    refused(
        r,
        &[
            "onboard",
            "shop",
            "--gitops-only",
            "--delivery",
            "argocd",
            "--source-url",
            "ftp://x/y",
        ],
        &["spec.delivery.argoCD.repoURL", "scheme"],
    );
    refused(
        r,
        &["onboard", "shop", "--gitops-only", "--grant", "root"],
        &["spec.rbac.grants[0]", "not defined"],
    );
    refused(
        r,
        &["onboard", "shop", "--gitops-only", "--owner", "robot:x"],
        &["owner kind"],
    );
    refused(
        r,
        &[
            "onboard",
            "shop",
            "--gitops-only",
            "--delivery",
            "argocd",
            "--source-url",
            "https://g.example/x.git",
            "--source-path",
            "../../etc",
        ],
        &["spec.delivery.argoCD.path", "relative path"],
    );
    assert!(
        snapshot(r).is_empty(),
        "no tenantry.yaml was created by failed onboards"
    );

    // Errors in files the user wrote.
    ok(tenantry(r, &["onboard", "shop", "--gitops-only"]));
    let platform = r.join("tenantry.yaml");
    let good = fs::read_to_string(&platform).unwrap();
    fs::write(&platform, format!("{good}colour: blue\n")).unwrap();
    refused(
        r,
        &["onboard", "blog", "--gitops-only"],
        &["tenantry.yaml", "unknown field", "colour"],
    );
    fs::write(
        &platform,
        good.replace("tenantsDir: tenants", "tenantsDir: ../outside"),
    )
    .unwrap();
    refused(
        r,
        &["onboard", "blog", "--gitops-only"],
        &["tenantry.yaml", "tenantsDir", "relative"],
    );
    fs::write(&platform, &good).unwrap();

    let tenant = r.join("tenants/shop/tenant.yaml");
    let good_tenant = fs::read_to_string(&tenant).unwrap();
    fs::write(&tenant, "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: shop\nspec:\n  quota:\n    requests:\n      cpu: 2x\n").unwrap();
    refused(
        r,
        &["onboard", "shop", "--gitops-only"],
        &[
            "tenants/shop/tenant.yaml",
            "spec.quota.requests.cpu",
            "not a quantity",
        ],
    );
    refused(
        r,
        &["render"],
        &["tenants/shop/tenant.yaml", "spec.quota.requests.cpu"],
    );
    fs::write(&tenant, "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: shop\nspec:\n  mesh: [\n").unwrap();
    refused(
        r,
        &["onboard", "shop", "--gitops-only"],
        &["tenants/shop/tenant.yaml:"],
    );
    fs::write(&tenant, good_tenant.replace("name: shop", "name: other")).unwrap();
    refused(
        r,
        &["render"],
        &["tenants/shop/tenant.yaml", "metadata.name", "must match"],
    );
}

#[test]
fn a_namespace_belongs_to_one_tenant() {
    let repo = tempfile::tempdir().unwrap();
    ok(tenantry(
        repo.path(),
        &[
            "onboard",
            "shop",
            "--gitops-only",
            "--namespace",
            "shop-dev",
        ],
    ));
    refused(
        repo.path(),
        &["onboard", "shop-dev", "--gitops-only"],
        &["namespace \"shop-dev\"", "shop and shop-dev"],
    );
    // A shared prefix without a `-` boundary is another tenant's business.
    ok(tenantry(
        repo.path(),
        &["onboard", "shopping", "--gitops-only"],
    ));
    ok(tenantry(
        repo.path(),
        &["onboard", "blog-x", "--gitops-only"],
    ));
    refused(
        repo.path(),
        &["onboard", "blog", "--gitops-only", "--namespace", "blog-x"],
        &["namespace \"blog-x\"", "blog and blog-x"],
    );
}

#[test]
fn writes_leave_no_temporary_files() {
    let repo = tempfile::tempdir().unwrap();
    for name in ["a1", "b2", "c3"] {
        ok(tenantry(
            repo.path(),
            &["onboard", name, "--gitops-only", "--openbao"],
        ));
    }
    let leftovers: Vec<_> = snapshot(repo.path())
        .into_keys()
        .filter(|p| p.to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn render_prints_every_tenant_as_multi_document_yaml() {
    let repo = tempfile::tempdir().unwrap();
    ok(tenantry(repo.path(), &["onboard", "shop", "--gitops-only"]));
    ok(tenantry(
        repo.path(),
        &["onboard", "blog", "--gitops-only", "--delivery", "none"],
    ));
    let all = ok(tenantry(repo.path(), &["render"]));
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&all).unwrap();
    assert!(
        docs.iter()
            .any(|d| d["metadata"]["name"] == "shop" && d["kind"] == "Namespace")
    );
    assert!(
        docs.iter()
            .any(|d| d["metadata"]["name"] == "blog" && d["kind"] == "Namespace")
    );
    assert!(
        docs.iter()
            .all(|d| d["kind"] != "Kustomization" || d["metadata"]["namespace"] == "shop")
    );
    let one = ok(tenantry(repo.path(), &["render", "blog"]));
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&one).unwrap();
    assert!(
        docs.iter()
            .all(|d| d["metadata"]["labels"]["tenantry.dev/tenant"] == "blog")
    );
    refused(
        repo.path(),
        &["render", "nobody"],
        &["no tenant named \"nobody\""],
    );
}

#[test]
fn render_check_finds_stale_files_and_render_write_fixes_them() {
    let repo = tempfile::tempdir().unwrap();
    ok(tenantry(repo.path(), &["onboard", "shop", "--gitops-only"]));
    ok(tenantry(repo.path(), &["onboard", "blog", "--gitops-only"]));
    assert!(ok(tenantry(repo.path(), &["render", "--check"])).contains("2 tenant(s) up to date"));

    // A platform-wide change: every tenant's quota file goes stale.
    let platform = repo.path().join("tenantry.yaml");
    let text = fs::read_to_string(&platform)
        .unwrap()
        .replace("pods: 50", "pods: 70");
    fs::write(&platform, text).unwrap();
    let check = tenantry(repo.path(), &["render", "--check"]);
    assert_eq!(check.status.code(), Some(1));
    let out = stdout(&check);
    assert!(
        out.contains("tenants/shop/resourcequota.shop.tenantry-quota.yaml: stale"),
        "{out}"
    );
    assert!(
        out.contains("tenants/blog/resourcequota.blog.tenantry-quota.yaml: stale"),
        "{out}"
    );

    let write = ok(tenantry(repo.path(), &["render", "--write"]));
    assert!(
        write.contains("tenant blog: updated 1 file")
            && write.contains("tenant shop: updated 1 file"),
        "{write}"
    );
    assert!(ok(tenantry(repo.path(), &["render", "--check"])).contains("up to date"));
    assert!(
        ok(tenantry(repo.path(), &["render", "--write"]))
            .lines()
            .all(|l| l.ends_with("unchanged"))
    );
}

#[test]
fn crd_prints_the_tenant_custom_resource_definition() {
    let out = Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(out.status.success());
    let crd: serde_json::Value = serde_saphyr::from_str(&stdout(&out)).unwrap();
    assert_eq!(crd["kind"], "CustomResourceDefinition");
    assert_eq!(crd["metadata"]["name"], "tenants.tenantry.dev");
    assert_eq!(crd["spec"]["scope"], "Cluster");
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in [
        &["--help"][..],
        &["onboard", "--help"],
        &["render", "--help"],
        &["offboard", "--help"],
        &["crd", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tenantry"))
            .args(cmd)
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd:?}");
        assert!(
            stdout(&out).contains("Examples:"),
            "{cmd:?} has no example:\n{}",
            stdout(&out)
        );
    }
}

#[test]
fn output_json_reports_what_changed() {
    let repo = tempfile::tempdir().unwrap();
    let first: serde_json::Value = serde_json::from_str(&ok(tenantry(
        repo.path(),
        &["onboard", "shop", "--gitops-only", "--output", "json"],
    )))
    .unwrap();
    assert_eq!(first["result"], "ok");
    assert!(
        first["platformFileCreated"]
            .as_str()
            .unwrap()
            .ends_with("tenantry.yaml")
    );
    assert_eq!(first["gitops"]["registered"], true);
    assert!(
        first["gitops"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["change"] == "created")
    );
    let again: serde_json::Value = serde_json::from_str(&ok(tenantry(
        repo.path(),
        &["onboard", "shop", "--gitops-only", "--output", "json"],
    )))
    .unwrap();
    assert_eq!(again["gitops"]["changes"], serde_json::json!([]));
    assert_eq!(again["platformFileCreated"], serde_json::Value::Null);
    let gone: serde_json::Value = serde_json::from_str(&ok(tenantry(
        repo.path(),
        &["offboard", "shop", "--gitops-only", "--output", "json"],
    )))
    .unwrap();
    assert_eq!(
        gone["gitops"],
        serde_json::json!({ "removedDirectory": true, "unregistered": true })
    );
}

#[test]
fn symlinks_leading_out_of_the_repository_are_refused() {
    let repo = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    ok(tenantry(repo.path(), &["onboard", "blog", "--gitops-only"]));
    // A tenant directory that is a link to somewhere else.
    std::os::unix::fs::symlink(outside.path(), repo.path().join("tenants/shop")).unwrap();
    refused(
        repo.path(),
        &["onboard", "shop", "--gitops-only"],
        &["resolves outside the repository"],
    );
    assert!(
        snapshot(outside.path()).is_empty(),
        "nothing was written through the link"
    );
    // A link that stays inside the repository is followed.
    fs::remove_file(repo.path().join("tenants/shop")).unwrap();
    fs::create_dir_all(repo.path().join("elsewhere/shop")).unwrap();
    std::os::unix::fs::symlink(
        repo.path().join("elsewhere/shop"),
        repo.path().join("tenants/shop"),
    )
    .unwrap();
    ok(tenantry(repo.path(), &["onboard", "shop", "--gitops-only"]));
    assert!(
        repo.path()
            .join("elsewhere/shop/namespace.shop.yaml")
            .is_file()
    );
}

#[test]
fn a_directory_without_tenantry_yaml_is_refused_by_every_command_that_reads_one() {
    let empty = tempfile::tempdir().unwrap();
    let missing = empty.path().join("nonexistent");
    for repo in [empty.path(), missing.as_path()] {
        for args in [
            &["render"][..],
            &["render", "--write"],
            &["render", "--check"],
            &["offboard", "shop", "--gitops-only"],
            &["apply", "--all"],
            &["kubeconfig", "shop"],
        ] {
            let o = tenantry(repo, args);
            assert_eq!(o.status.code(), Some(2), "{args:?} in {repo:?}: {o:?}");
            let err = stderr(&o);
            assert!(
                err.contains("is not a platform repository")
                    && err.contains(&repo.join("tenantry.yaml").display().to_string()),
                "{args:?}: the error names the file looked for: {err}"
            );
            assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
        }
    }
    // `onboard` starts a repository; `check` in a tenant's own repository uses the defaults.
    ok(tenantry(
        empty.path(),
        &["onboard", "shop", "--gitops-only"],
    ));
    let tenant_repo = tempfile::tempdir().unwrap();
    fs::write(
        tenant_repo.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    )
    .unwrap();
    ok(tenantry(
        tenant_repo.path(),
        &[
            "check",
            tenant_repo.path().join("cm.yaml").to_str().unwrap(),
        ],
    ));
}

#[test]
fn a_corrupt_tenant_kustomization_is_refused_with_its_file_and_line() {
    let repo = tempfile::tempdir().unwrap();
    ok(tenantry(repo.path(), &["onboard", "shop", "--gitops-only"]));
    let kustomization = repo.path().join("tenants/shop/kustomization.yaml");
    fs::write(
        &kustomization,
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- a.yaml\n  - : [\n",
    )
    .unwrap();
    for args in [&["render", "--check"][..], &["render", "--write"]] {
        let o = tenantry(repo.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        let err = stderr(&o);
        assert!(
            err.contains(&kustomization.display().to_string()) && err.contains(":5:"),
            "{args:?}: names the file and line: {err}"
        );
    }
    // Not a list of file names is refused too.
    fs::write(&kustomization, "resources: {a: b}\n").unwrap();
    let o = tenantry(repo.path(), &["render", "--check"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(stderr(&o).contains("resources"), "{}", stderr(&o));
}
