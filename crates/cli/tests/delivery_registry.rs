//! `tenantry keys generate`, `publish` and `verify` against a real registry (Debian's
//! `docker-registry`, started here on 127.0.0.1), with an independent verifier for every
//! verdict.
//!
//! The independent verifier is skopeo (containers/image's registry client) fetching the
//! artifact and its `sha256-<hex>.sig` attachment, and OpenSSL checking the ECDSA signature
//! over the payload with `cosign.pub`, then the payload's claims as skopeo's
//! `sigstoreSigned` + `matchRepository` policy reads them. Skopeo's own policy engine cannot
//! be the judge here: Debian's skopeo 1.9.3 is built with sigstore disabled (its policy
//! evaluation answers "Debian-local change: sigstore disabled" for every image).
//!
//! The binaries are installed by `.ci/run`; outside CI a missing one skips with a message, in
//! CI (`CI=true`) it fails.

use std::{
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

const PASSWORD: &str = "correct horse";

fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is not installed; .ci/run installs it (apt-get install docker-registry skopeo openssl)"
        );
        eprintln!(
            "skipping: {name} is not installed (apt-get install docker-registry skopeo openssl)"
        );
    }
    found
}

/// A registry on a free 127.0.0.1 port, stopped on drop.
struct LocalRegistry {
    child: Child,
    host: String,
    _dir: tempfile::TempDir,
}

impl LocalRegistry {
    fn start() -> Option<Self> {
        let bin = tool("docker-registry")?;
        tool("skopeo")?;
        tool("openssl")?;
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let registry = Self {
            child,
            host,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&registry.host).is_err() {
            assert!(Instant::now() < deadline, "registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(registry)
    }

    fn url(&self, repo_tag: &str) -> String {
        format!("oci://{}/{repo_tag}", self.host)
    }

    fn docker(&self, repo_tag: &str) -> String {
        format!("docker://{}/{repo_tag}", self.host)
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tenantry(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(args)
        .current_dir(cwd)
        .env("COSIGN_PASSWORD", PASSWORD)
        .env_remove("TENANTRY_SIGNING_KEY")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo").args(args).output().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

/// skopeo + openssl: does `repo:tag` carry a cosign signature by `public_key` over a payload
/// naming its digest and repository?
fn independent_accepts(reg: &LocalRegistry, repo: &str, tag: &str, public_key: &Path) -> bool {
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &reg.docker(&format!("{repo}:{tag}")),
    ]);
    assert!(raw.status.success(), "{}", text(&raw));
    let digest = format!("sha256:{}", sha256_hex(&raw.stdout));
    let work = tempfile::tempdir().unwrap();
    let sig_dir = work.path().join("sig");
    let sig_tag = format!("sha256-{}.sig", &digest[7..]);
    let copied = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &reg.docker(&format!("{repo}:{sig_tag}")),
        &format!("dir:{}", sig_dir.display()),
    ]);
    if !copied.status.success() {
        return false; // No signature attachment.
    }
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(sig_dir.join("manifest.json")).unwrap()).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        if layer["mediaType"] != "application/vnd.dev.cosign.simplesigning.v1+json" {
            continue;
        }
        let payload_path = sig_dir.join(&layer["digest"].as_str().unwrap()[7..]);
        let sig_b64 = layer["annotations"]["dev.cosignproject.cosign/signature"]
            .as_str()
            .unwrap_or_default();
        let b64_path = work.path().join("sig.b64");
        let der_path = work.path().join("sig.der");
        std::fs::write(&b64_path, sig_b64).unwrap();
        let decoded = Command::new("openssl")
            .args(["base64", "-d", "-A", "-in"])
            .arg(&b64_path)
            .arg("-out")
            .arg(&der_path)
            .output()
            .unwrap();
        assert!(decoded.status.success());
        let verified = Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(public_key)
            .arg("-signature")
            .arg(&der_path)
            .arg(&payload_path)
            .output()
            .unwrap();
        if !verified.status.success() {
            continue;
        }
        let payload: Value =
            serde_json::from_slice(&std::fs::read(&payload_path).unwrap()).unwrap();
        let c = &payload["critical"];
        if c["type"] == "cosign container image signature"
            && c["image"]["docker-manifest-digest"] == digest.as_str()
            && c["identity"]["docker-reference"] == format!("{}/{repo}", reg.host).as_str()
        {
            return true;
        }
    }
    false
}

/// `tenantry verify`'s verdict word (exit 0 only for `verified`).
fn tenantry_verdict(reg: &LocalRegistry, repo_tag: &str, key: &Path, cwd: &Path) -> String {
    let o = tenantry(
        &[
            "verify",
            &reg.url(repo_tag),
            "--key",
            key.to_str().unwrap(),
            "--insecure-registry",
            "--output",
            "json",
        ],
        cwd,
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
    let verdict = v["verdict"].as_str().unwrap_or("none").to_owned();
    assert_eq!(
        o.status.code() == Some(0),
        verdict == "verified",
        "{}",
        text(&o)
    );
    if verdict != "verified" {
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    }
    verdict
}

fn write_tree(dir: &Path, data_value: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("kustomization.yaml"),
        "namespace: shop\ncommonLabels:\n  app.kubernetes.io/part-of: shop\nresources:\n  - settings.yaml\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("settings.yaml"),
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: {data_value}\n"),
    )
    .unwrap();
}

struct Keys {
    a_key: PathBuf,
    a_pub: PathBuf,
    b_key: PathBuf,
    b_pub: PathBuf,
}

fn keys(root: &Path) -> Keys {
    for name in ["a", "b"] {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let o = tenantry(&["keys", "generate", "--dir", dir.to_str().unwrap()], root);
        assert!(o.status.success(), "{}", text(&o));
    }
    Keys {
        a_key: root.join("a/cosign.key"),
        a_pub: root.join("a/cosign.pub"),
        b_key: root.join("b/cosign.key"),
        b_pub: root.join("b/cosign.pub"),
    }
}

fn publish(reg: &LocalRegistry, dir: &Path, repo_tag: &str, key: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "publish",
        dir.to_str().unwrap(),
        // The owned URL must outlive args.
    ];
    let url = reg.url(repo_tag);
    args.push(&url);
    args.extend(["--key", key.to_str().unwrap(), "--insecure-registry"]);
    args.extend(extra);
    tenantry(&args, dir.parent().unwrap())
}

#[test]
fn publish_sign_verify_agrees_with_an_independent_verifier() {
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let keys = keys(root.path());
    let tree = root.path().join("deploy");
    write_tree(&tree, "hello");

    // Published and signed with key A: both verifiers accept with A, both refuse with B.
    let o = publish(&reg, &tree, "team/shop:1.0.0", &keys.a_key, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("digest: sha256:"), "{}", text(&o));
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &reg.docker("team/shop:1.0.0"),
    ]);
    let manifest: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.cncf.flux.config.v1+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.cncf.flux.content.v1.tar+gzip"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.revision"],
        "1.0.0"
    );
    assert!(manifest["annotations"]["org.opencontainers.image.source"].is_string());
    assert!(independent_accepts(&reg, "team/shop", "1.0.0", &keys.a_pub));
    assert_eq!(
        tenantry_verdict(&reg, "team/shop:1.0.0", &keys.a_pub, root.path()),
        "verified"
    );
    assert!(!independent_accepts(
        &reg,
        "team/shop",
        "1.0.0",
        &keys.b_pub
    ));
    assert_eq!(
        tenantry_verdict(&reg, "team/shop:1.0.0", &keys.b_pub, root.path()),
        "wrong-key"
    );

    // The same tree again: same digest, nothing refused.
    let o = publish(&reg, &tree, "team/shop:1.0.0", &keys.a_key, &[]);
    assert!(
        o.status.success() && text(&o).contains("unchanged"),
        "{}",
        text(&o)
    );

    // Other content under the same tag is refused without --force, and the tag stays put.
    write_tree(&tree, "changed");
    let o = publish(&reg, &tree, "team/shop:1.0.0", &keys.a_key, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("already points at"), "{}", text(&o));
    assert_eq!(
        tenantry_verdict(&reg, "team/shop:1.0.0", &keys.a_pub, root.path()),
        "verified"
    );

    // Re-pushed unsigned (a different manifest under the tag, by skopeo): both refuse.
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("artifact");
    let o = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &reg.docker("team/shop:1.0.0"),
        &format!("dir:{}", copy.display()),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let manifest_path = copy.join("manifest.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    m["annotations"]["org.opencontainers.image.revision"] = "unsigned".into();
    std::fs::write(&manifest_path, serde_json::to_vec(&m).unwrap()).unwrap();
    let o = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("dir:{}", copy.display()),
        &reg.docker("team/shop:1.0.0"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!independent_accepts(
        &reg,
        "team/shop",
        "1.0.0",
        &keys.a_pub
    ));
    assert_eq!(
        tenantry_verdict(&reg, "team/shop:1.0.0", &keys.a_pub, root.path()),
        "missing"
    );

    // Re-published signed with another key (--force): A refuses, B accepts, on both sides.
    write_tree(&tree, "hello");
    let o = publish(&reg, &tree, "team/shop:1.0.0", &keys.b_key, &["--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!independent_accepts(
        &reg,
        "team/shop",
        "1.0.0",
        &keys.a_pub
    ));
    assert_eq!(
        tenantry_verdict(&reg, "team/shop:1.0.0", &keys.a_pub, root.path()),
        "wrong-key"
    );
    assert!(independent_accepts(&reg, "team/shop", "1.0.0", &keys.b_pub));
    assert_eq!(
        tenantry_verdict(&reg, "team/shop:1.0.0", &keys.b_pub, root.path()),
        "verified"
    );

    // A genuine signature for another artifact moved onto this one: tampered.
    write_tree(&tree, "other");
    let o = publish(&reg, &tree, "team/shop:2.0.0", &keys.b_key, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let digest_of = |tag: &str| {
        let raw = skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &reg.docker(&format!("team/shop:{tag}")),
        ]);
        sha256_hex(&raw.stdout)
    };
    let (one, two) = (digest_of("1.0.0"), digest_of("2.0.0"));
    let o = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &reg.docker(&format!("team/shop:sha256-{two}.sig")),
        &reg.docker(&format!("team/shop:sha256-{one}.sig")),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!independent_accepts(
        &reg,
        "team/shop",
        "1.0.0",
        &keys.b_pub
    ));
    assert_eq!(
        tenantry_verdict(&reg, "team/shop:1.0.0", &keys.b_pub, root.path()),
        "tampered"
    );
}

#[test]
fn refusals_push_nothing() {
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let keys = keys(root.path());
    let exists = |tag: &str| {
        skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &reg.docker(&format!("team/app:{tag}")),
        ])
        .status
        .success()
    };

    // A tree the guardrails deny: exit 1, the finding named, nothing pushed.
    let tree = root.path().join("deploy");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("kustomization.yaml"), "resources: [pod.yaml]\n").unwrap();
    std::fs::write(
        tree.join("pod.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: c\n      image: nginx\n      securityContext:\n        privileged: true\n",
    )
    .unwrap();
    let o = publish(&reg, &tree, "team/app:1.0.0", &keys.a_key, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("privileged") && text(&o).contains("nothing was pushed"),
        "{}",
        text(&o)
    );
    assert!(!exists("1.0.0"));

    // An unsupported kustomize field: named with its file, nothing pushed.
    std::fs::write(
        tree.join("kustomization.yaml"),
        "resources: [pod.yaml]\nhelmCharts: []\n",
    )
    .unwrap();
    let o = publish(&reg, &tree, "team/app:1.0.0", &keys.a_key, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("kustomization.yaml: helmCharts"),
        "{}",
        text(&o)
    );

    // A private key others can read, and a wrong passphrase: refused before any push.
    write_tree(&tree, "x");
    std::fs::remove_file(tree.join("pod.yaml")).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&keys.a_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = publish(&reg, &tree, "team/app:1.0.0", &keys.a_key, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("chmod 600"), "{}", text(&o));
    std::fs::set_permissions(&keys.a_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args([
            "publish",
            tree.to_str().unwrap(),
            &reg.url("team/app:1.0.0"),
            "--insecure-registry",
            "--key",
        ])
        .arg(&keys.a_key)
        .env("COSIGN_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("wrong passphrase"), "{}", text(&o));
    assert!(!exists("1.0.0"));

    // An unreachable registry: a clear error naming it.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("oci://127.0.0.1:{closed}/team/app:1.0.0");
    let o = tenantry(
        &[
            "publish",
            tree.to_str().unwrap(),
            &url,
            "--key",
            keys.a_key.to_str().unwrap(),
            "--insecure-registry",
        ],
        root.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("registry 127.0.0.1:{closed} is unreachable")),
        "{}",
        text(&o)
    );
    let o = tenantry(
        &[
            "verify",
            &url,
            "--key",
            keys.a_pub.to_str().unwrap(),
            "--insecure-registry",
        ],
        root.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is unreachable"), "{}", text(&o));
}
