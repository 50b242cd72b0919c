//! `tenantry check` as a CI job runs it: the built binary on temporary directories, stdin and
//! every output format, asserting exit codes and what a reader needs to find each problem.

use std::{
    fs,
    io::Write,
    path::Path,
    process::{Command, Output, Stdio},
};

use serde_json::Value;

const COMPLIANT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  template:
    spec:
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: shop
          image: ghcr.io/acme/shop:1.0.0
          resources:
            requests: {cpu: 100m, memory: 64Mi}
            limits: {memory: 128Mi}
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
"#;

fn tenantry(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .arg("check")
        .args(args)
        .current_dir(dir)
        .env_remove("TENANTRY_REPO")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tenantry");
    if let Some(text) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("tenantry output")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(path, text).expect("write file");
}

fn insecure() -> String {
    COMPLIANT
        .replace("allowPrivilegeEscalation: false", "privileged: true")
        .replace("  name: shop\nspec:", "  name: web\nspec:")
}

#[test]
fn clean_manifests_exit_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "deploy/deployment.yaml", COMPLIANT);
    let out = tenantry(dir.path(), &["deploy"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("1 object in 1 file: no violations"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn violations_name_file_line_document_object_path_check_and_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!("{COMPLIANT}---\n{}", insecure());
    write(dir.path(), "deploy/app.yaml", &text);
    let out = tenantry(dir.path(), &["deploy"], None);
    assert_eq!(out.status.code(), Some(1));
    let report = stdout(&out);
    // The second document's privileged field is on line 20 + 19 = 39.
    let privileged_line = text
        .lines()
        .position(|l| l.contains("privileged: true"))
        .expect("line")
        + 1;
    let header = format!(
        "deploy/app.yaml:{privileged_line}: deny privileged [pod-security] Deployment web (document 2)"
    );
    assert!(report.contains(&header), "{report}");
    assert!(
        report.contains("  at spec.template.spec.containers[0].securityContext.privileged"),
        "{report}"
    );
    assert!(report.contains("fix: "), "{report}");
    assert!(report.contains("allowPrivilegeEscalation"), "{report}");
    assert!(report.contains("2 objects in 1 file:"), "{report}");
}

#[test]
fn unreadable_input_exits_two_with_a_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "ok.yaml", COMPLIANT);
    write(
        dir.path(),
        "broken.yaml",
        "kind: Pod\nspec:\n  containers: [\n",
    );
    let out = tenantry(dir.path(), &["."], None);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let report = stdout(&out);
    assert!(report.contains("broken.yaml:"), "{report}");
    assert!(report.contains("error:"), "{report}");
    assert!(report.contains("1 input could not be read"), "{report}");

    // A YAML bomb is refused, not expanded.
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (prev, next) in [
        ("a", "b"),
        ("b", "c"),
        ("c", "d"),
        ("d", "e"),
        ("e", "f"),
        ("f", "g"),
    ] {
        bomb.push_str(&format!("{next}: &{next} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    let out = tenantry(dir.path(), &["-"], Some(&bomb));
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));

    // Missing paths are errors too.
    let out = tenantry(dir.path(), &["nowhere.yaml"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn stdin_reads_yaml_streams_and_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tenantry(
        dir.path(),
        &["-"],
        Some(&format!("---\n{COMPLIANT}---\n{}", insecure())),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("stdin:"), "{}", stdout(&out));
    assert!(stdout(&out).contains("(document 2)"), "{}", stdout(&out));

    let json = r#"{"apiVersion": "v1", "kind": "List", "items": [
      {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"type": "ClusterIP"}},
      {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b"}, "spec": {"type": "LoadBalancer"}}
    ]}"#;
    let out = tenantry(dir.path(), &["-"], Some(json));
    assert_eq!(out.status.code(), Some(1));
    let report = stdout(&out);
    assert!(
        report.contains("stdin:3: deny load-balancer [no-loadbalancer] Service b"),
        "{report}"
    );
    assert!(report.contains("at items[1].spec.type"), "{report}");
}

#[test]
fn kustomizations_are_followed_and_patches_are_not_judged() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "overlay/kustomization.yaml",
        "resources:\n  - ../base\n  - service.yaml\npatches:\n  - path: patch.yaml\n",
    );
    write(
        dir.path(),
        "overlay/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: NodePort}\n",
    );
    // A partial object: judged on its own it would lack everything.
    write(
        dir.path(),
        "overlay/patch.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: shop}\nspec:\n  template:\n    spec:\n      containers: [{name: shop}]\n",
    );
    write(
        dir.path(),
        "base/kustomization.yaml",
        "resources: [deployment.yaml]\n",
    );
    write(dir.path(), "base/deployment.yaml", COMPLIANT);
    write(dir.path(), "base/unlisted.yaml", &insecure());
    let out = tenantry(dir.path(), &["overlay"], None);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report = stdout(&out);
    assert!(
        report.contains("overlay/service.yaml:4: deny node-port"),
        "{report}"
    );
    assert!(
        !report.contains("patch.yaml:"),
        "patches are not objects: {report}"
    );
    assert!(
        !report.contains("unlisted.yaml"),
        "not in the kustomization: {report}"
    );
    assert!(
        report.contains("note: overlay/kustomization.yaml: patches are not applied"),
        "{report}"
    );
    assert!(report.contains("4 objects in 4 files"), "{report}");

    // Remote bases are refused; missing local ones make the input unreadable.
    write(
        dir.path(),
        "remote/kustomization.yaml",
        "resources:\n  - github.com/acme/base//deploy?ref=v1\n",
    );
    let out = tenantry(dir.path(), &["remote"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("remote/kustomization.yaml:2: deny remote-base [flux-lockdown]"),
        "{}",
        stdout(&out)
    );
    write(
        dir.path(),
        "missing/kustomization.yaml",
        "resources: [gone.yaml]\n",
    );
    let out = tenantry(dir.path(), &["missing"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("\"gone.yaml\" does not exist"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn policy_level_and_version_selection() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Root with no resources: baseline allows it; restricted and require-requests-limits do not.
    write(
        dir.path(),
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: nginx}]\n",
    );
    let out = tenantry(
        dir.path(),
        &[
            "--policy",
            "pod-security",
            "--level",
            "baseline",
            "pod.yaml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = tenantry(dir.path(), &["--policy", "pod-security", "pod.yaml"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("runAsNonRoot"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("cpu-request"), "{}", stdout(&out));
    // runAsNonRoot exists at every version; allowPrivilegeEscalation only from v1.8.
    let out = tenantry(
        dir.path(),
        &["--policy", "pod-security", "--version", "v1.7", "pod.yaml"],
        None,
    );
    assert!(
        !stdout(&out).contains("allowPrivilegeEscalation"),
        "{}",
        stdout(&out)
    );
    let out = tenantry(
        dir.path(),
        &[
            "--policy",
            "require-requests-limits,no-nodeport",
            "pod.yaml",
        ],
        None,
    );
    assert!(stdout(&out).contains("cpu-request"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("runAsNonRoot"), "{}", stdout(&out));

    let out = tenantry(dir.path(), &["--policy", "pod-securty", "pod.yaml"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown policy \"pod-securty\""), "{err}");
    assert!(
        err.contains("require-requests-limits"),
        "lists valid IDs: {err}"
    );
    let out = tenantry(dir.path(), &["--level", "strict", "pod.yaml"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn without_a_tenant_skipped_checks_are_said() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "d.yaml", COMPLIANT);
    let out = tenantry(dir.path(), &["d.yaml"], None);
    assert!(
        stdout(&out).contains("skipped allowed-registries: no tenant given"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_tenant_from_the_platform_repository_brings_its_registries_and_identity() {
    let platform = tempfile::tempdir().expect("tempdir");
    // An empty tenantry.yaml: the platform repository, with the built-in defaults.
    write(platform.path(), "tenantry.yaml", "");
    write(
        platform.path(),
        "tenants/shop/tenant.yaml",
        "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: shop\nspec:\n  registries: [ghcr.io/acme]\n",
    );
    let app = tempfile::tempdir().expect("tempdir");
    write(
        app.path(),
        "deploy/deployment.yaml",
        &COMPLIANT.replace("ghcr.io/acme/", "ghcr.io/acme-evil/"),
    );
    write(
        app.path(),
        "deploy/sync.yaml",
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: app}\nspec:\n  serviceAccountName: default\n  sourceRef: {kind: GitRepository, name: app}\n",
    );
    let repo = platform.path().to_str().expect("utf-8 path");
    let out = tenantry(
        app.path(),
        &["--tenant", "shop", "--repo", repo, "deploy"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report = stdout(&out);
    assert!(
        report.contains("deny registry-not-allowed [allowed-registries]"),
        "{report}"
    );
    assert!(
        report.contains("deny service-account-name [flux-lockdown]"),
        "{report}"
    );
    assert!(!report.contains("skipped"), "{report}");

    let out = tenantry(
        app.path(),
        &["--tenant", "nobody", "--repo", repo, "deploy"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_repository_contract_is_checked_with_a_repository_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "deploy/deployment.yaml", COMPLIANT);
    write(
        dir.path(),
        "deploy/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: hunter2}\n",
    );
    let out = tenantry(dir.path(), &["deploy"], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "no contract without --repo-name"
    );
    let out = tenantry(dir.path(), &["--repo-name", "shop", "deploy"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("deny plaintext-secret [tenant-repo-contract]"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("container-name"), "{}", stdout(&out));
    let out = tenantry(
        dir.path(),
        &["--repo-name", "billing", "deploy/deployment.yaml"],
        None,
    );
    assert!(
        stdout(&out).contains("deny container-name [tenant-repo-contract]"),
        "{}",
        stdout(&out)
    );
    let out = tenantry(
        dir.path(),
        &["--policy", "tenant-repo-contract", "deploy"],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "the contract needs a name");
}

#[test]
fn json_sarif_and_junit_carry_the_same_findings() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A name with characters every format must escape.
    let hostile = insecure().replace("name: web", "name: \"w<e>b&'\\\"\"");
    write(dir.path(), "dir with space/app.yaml", &hostile);
    write(dir.path(), "broken.json", "{\"kind\": ");

    let out = tenantry(dir.path(), &["--format", "json", "."], None);
    assert_eq!(out.status.code(), Some(2));
    let json: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let findings = json["findings"].as_array().expect("findings");
    assert!(!findings.is_empty());
    assert_eq!(
        json["summary"]["deny"].as_u64(),
        Some(findings.len() as u64)
    );
    assert_eq!(json["errors"][0]["file"], "broken.json");
    assert!(
        findings
            .iter()
            .all(|f| f["line"].as_u64().is_some_and(|l| l > 0))
    );
    assert_eq!(findings[0]["object"]["name"], "w<e>b&'\"");

    let out = tenantry(dir.path(), &["--format", "sarif", "."], None);
    let sarif: Value = serde_json::from_slice(&out.stdout).expect("valid SARIF JSON");
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), findings.len());
    for result in results {
        let index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(
            location["artifactLocation"]["uri"],
            "dir%20with%20space/app.yaml"
        );
        assert!(
            location["region"]["startLine"]
                .as_u64()
                .is_some_and(|l| l >= 1)
        );
        assert!(result["partialFingerprints"]["tenantryFinding/v1"].is_string());
    }
    assert_eq!(run["invocations"][0]["executionSuccessful"], false);

    let out = tenantry(dir.path(), &["--format", "junit", "."], None);
    let xml = stdout(&out);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
    assert!(xml.contains("w&lt;e&gt;b&amp;&apos;&quot;"), "{xml}");
    assert!(!xml.contains("w<e>"), "{xml}");
    assert!(xml.contains("<failure message="), "{xml}");
    assert!(xml.contains("<error message="), "{xml}");
    assert!(xml.trim_end().ends_with("</testsuites>"));
}

/// A Pod with `n` containers, image `x`, no securityContext or resources: seven findings each.
fn many_containers(n: usize) -> String {
    let mut text =
        String::from("apiVersion: v1\nkind: Pod\nmetadata:\n  name: big\nspec:\n  containers:\n");
    for i in 0..n {
        text.push_str(&format!("  - name: c{i}\n    image: x\n"));
    }
    text
}

#[test]
fn findings_per_object_are_capped_and_the_rest_counted_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "pod.yaml", &many_containers(20_000));
    let out = tenantry(dir.path(), &["pod.yaml"], None);
    assert_eq!(out.status.code(), Some(1));
    let report = stdout(&out);
    assert_eq!(report.matches(": deny ").count(), 101, "{report}");
    assert!(
        report.contains(
            "pod.yaml:1: deny findings-elided [pod-security] Pod big (document 1)\n  139900 more \
             findings on this object are not listed (139900 denied): at most 100 are reported \
             per object\n"
        ),
        "{report}"
    );
    assert!(
        report.ends_with("1 object in 1 file: 101 violations\n"),
        "{report}"
    );
    for format in ["json", "sarif", "junit"] {
        let out = tenantry(dir.path(), &["pod.yaml", "--format", format], None);
        assert_eq!(out.status.code(), Some(1), "{format}");
        let text = stdout(&out);
        assert!(
            text.contains("139900 more findings on this object are not listed"),
            "{format}: {text}"
        );
    }
    let out = tenantry(dir.path(), &["pod.yaml", "--format", "json"], None);
    let json: Value = serde_json::from_str(&stdout(&out)).expect("JSON report");
    assert_eq!(json["findings"].as_array().map(Vec::len), Some(101));
    assert_eq!(json["findings"][100]["check"], "findings-elided");
    assert_eq!(json["summary"]["deny"], 101);
}

#[test]
fn the_finding_limit_is_a_flag_and_zero_lifts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "pod.yaml", &many_containers(3));
    let count = |args: &[&str]| {
        let out = tenantry(dir.path(), args, None);
        assert_eq!(out.status.code(), Some(1));
        let json: Value = serde_json::from_str(&stdout(&out)).expect("JSON report");
        let findings = json["findings"].as_array().cloned().unwrap_or_default();
        let elided = findings
            .iter()
            .filter(|f| f["check"] == "findings-elided")
            .count();
        (findings.len(), elided)
    };
    assert_eq!(count(&["pod.yaml", "--format", "json"]), (21, 0));
    assert_eq!(
        count(&[
            "pod.yaml",
            "--format",
            "json",
            "--max-findings-per-object",
            "5"
        ]),
        (6, 1)
    );
    assert_eq!(
        count(&[
            "pod.yaml",
            "--format",
            "json",
            "--max-findings-per-object",
            "0"
        ]),
        (21, 0)
    );
}

#[test]
fn tenant_rbac_says_in_ci_what_flux_will_be_refused_in_the_cluster() {
    let platform = tempfile::tempdir().expect("tempdir");
    write(
        platform.path(),
        "tenantry.yaml",
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\ntenantRbac:\n  cilium: true\n",
    );
    write(
        platform.path(),
        "tenants/shop/tenant.yaml",
        "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: shop\n",
    );
    let app = tempfile::tempdir().expect("tempdir");
    write(app.path(), "deploy/deployment.yaml", COMPLIANT);
    // kustomize's own file is read by the build, never applied: not a finding.
    write(
        app.path(),
        "deploy/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deployment.yaml, policy.yaml, quota.yaml]\n",
    );
    write(
        app.path(),
        "deploy/policy.yaml",
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: web}\nspec:\n  endpointSelector: {}\n  ingress:\n    - fromEndpoints: [{}]\n",
    );
    write(
        app.path(),
        "deploy/quota.yaml",
        "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: more}\nspec:\n  hard: {cpu: '100'}\n",
    );
    let repo = platform.path().to_str().expect("utf-8 path");
    let out = tenantry(
        app.path(),
        &[
            "--tenant", "shop", "--repo", repo, "--format", "json", "deploy",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("json");
    let findings: Vec<(String, String)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|v| {
            (
                v["check"].as_str().unwrap_or("").to_owned(),
                v["message"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(findings.len(), 1, "{findings:?}");
    let (check, message) = &findings[0];
    assert_eq!(check, "tenant-rbac");
    assert!(
        message.contains("ServiceAccount shop/shop, which may not create resourcequotas"),
        "{message}"
    );
    // Turned off by the platform, the check is gone.
    write(
        platform.path(),
        "tenantry.yaml",
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\ntenantRbac:\n  cilium: true\npolicies:\n  tenantRbac: {enabled: false}\n",
    );
    let out = tenantry(
        app.path(),
        &["--tenant", "shop", "--repo", repo, "deploy"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}
