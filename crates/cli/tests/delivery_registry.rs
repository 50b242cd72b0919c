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

/// The user and password the authenticating registry accepts.
const PUSH_USER: &str = "ci";
const PUSH_PASSWORD: &str = "s3cret-push";
/// `PUSH_PASSWORD` hashed with bcrypt at cost 5 (libxcrypt's `crypt`, as `htpasswd -B -C 5`
/// writes it), the only hash docker-registry's htpasswd accepts. Fixed here rather than
/// made by a bcrypt dev-dependency or apache2-utils in CI: nothing to build or install, and
/// the successful publish below proves it matches. Cost 5, because the registry checks it
/// on every request.
const PUSH_HTPASSWD: &str = "ci:$2b$05$wijygpXN2U50l8hBbtdvjuL6Py0Ew8hCUfB4lT7Y0IStj6iQ2P2W2\n";

impl LocalRegistry {
    fn start() -> Option<Self> {
        Self::start_with(false)
    }

    /// With `htpasswd`, every request needs `PUSH_USER`/`PUSH_PASSWORD` (HTTP basic auth).
    fn start_with(htpasswd: bool) -> Option<Self> {
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
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        if htpasswd {
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, PUSH_HTPASSWD).unwrap();
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: tenantry-test\n    path: {}\n",
                file.display()
            ));
        }
        std::fs::write(&config, yaml).unwrap();
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
    tenantry_env(args, cwd, &[("COSIGN_PASSWORD", PASSWORD)])
}

/// The binary with only `env` for keys and registry credentials: no key, passphrase or
/// registry login of the machine running the tests leaks in.
fn tenantry_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantry"));
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .env("DOCKER_CONFIG", cwd.join("no-docker-config"));
    for var in [
        "TENANTRY_SIGNING_KEY",
        "TENANTRY_KEY_PASSWORD",
        "COSIGN_PASSWORD",
        "TENANTRY_REGISTRY_USERNAME",
        "TENANTRY_REGISTRY_PASSWORD",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
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
    publish_env(
        reg,
        dir,
        repo_tag,
        key,
        extra,
        &[("COSIGN_PASSWORD", PASSWORD)],
    )
}

/// `publish` with only `env` for passphrases and registry credentials (`tenantry_env`).
fn publish_env(
    reg: &LocalRegistry,
    dir: &Path,
    repo_tag: &str,
    key: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut args = vec![
        "publish",
        dir.to_str().unwrap(),
        // The owned URL must outlive args.
    ];
    let url = reg.url(repo_tag);
    args.push(&url);
    args.extend(["--key", key.to_str().unwrap(), "--insecure-registry"]);
    args.extend(extra);
    tenantry_env(&args, dir.parent().unwrap(), env)
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
    // Nothing of the refused artifact reached the registry, not even untagged by digest.
    let refused = text(&o)
        .split(", not ")
        .nth(1)
        .and_then(|rest| rest.get(..71))
        .unwrap_or_else(|| panic!("no new digest in {}", text(&o)))
        .to_owned();
    assert!(refused.starts_with("sha256:"), "{refused}");
    let by_digest = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &reg.docker(&format!("team/shop@{refused}")),
    ]);
    assert!(!by_digest.status.success(), "{refused} was pushed");

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
    let publish_with =
        |env: &[(&str, &str)]| publish_env(&reg, &tree, "team/app:1.0.0", &keys.a_key, &[], env);
    let o = publish_with(&[("COSIGN_PASSWORD", "wrong")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("wrong passphrase"), "{}", text(&o));
    // TENANTRY_KEY_PASSWORD comes first: a wrong one is wrong even with COSIGN_PASSWORD right.
    let o = publish_with(&[
        ("TENANTRY_KEY_PASSWORD", "wrong"),
        ("COSIGN_PASSWORD", PASSWORD),
    ]);
    assert!(text(&o).contains("wrong passphrase"), "{}", text(&o));
    // No passphrase anywhere and stdin is not a terminal (CI): refused, naming the key and
    // the variables, not tried with an empty one.
    let o = publish_with(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "key {} is encrypted and no passphrase is available",
            keys.a_key.display()
        )) && text(&o).contains("TENANTRY_KEY_PASSWORD"),
        "{}",
        text(&o)
    );
    assert!(!exists("1.0.0"));
    // `keys generate` likewise will not invent an empty passphrase.
    let o = tenantry_env(
        &["keys", "generate", "--dir", root.path().to_str().unwrap()],
        root.path(),
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("no passphrase for the new key"),
        "{}",
        text(&o)
    );
    assert!(!root.path().join("cosign.key").exists());

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

/// A Docker config file holding `user:password` for `host` as `docker login` writes it.
fn docker_config(dir: &Path, host: &str, user: &str, password: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let auth = Command::new("openssl")
        .args(["base64", "-A"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin
                .take()
                .unwrap()
                .write_all(format!("{user}:{password}").as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let auth = String::from_utf8(auth.stdout).unwrap();
    let path = dir.join("config.json");
    std::fs::write(
        &path,
        serde_json::json!({ "auths": { host: { "auth": auth.trim() } } }).to_string(),
    )
    .unwrap();
    path
}

#[test]
fn registry_credentials_come_from_the_docker_config() {
    let Some(reg) = LocalRegistry::start_with(true) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let keys = keys(root.path());
    let tree = root.path().join("deploy");
    write_tree(&tree, "hello");
    let creds = format!("--creds={PUSH_USER}:{PUSH_PASSWORD}");
    let exists = |tag: &str| {
        skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &creds,
            &reg.docker(&format!("team/auth:{tag}")),
        ])
        .status
        .success()
    };

    // The right password in `--registry-config`: published, signed, verified.
    let good = docker_config(
        &root.path().join("good"),
        &reg.host,
        PUSH_USER,
        PUSH_PASSWORD,
    );
    let o = publish(
        &reg,
        &tree,
        "team/auth:1.0.0",
        &keys.a_key,
        &["--registry-config", good.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(exists("1.0.0"));
    // `$DOCKER_CONFIG/config.json` is read the same way (verify here).
    let verify_args = [
        "verify",
        &reg.url("team/auth:1.0.0"),
        "--key",
        keys.a_pub.to_str().unwrap(),
        "--insecure-registry",
    ];
    let o = tenantry_env(
        &verify_args,
        root.path(),
        &[("DOCKER_CONFIG", root.path().join("good").to_str().unwrap())],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).starts_with("verified:"), "{}", text(&o));

    // A wrong password: a clear auth error naming the registry and the file and entry the
    // credentials came from, and nothing pushed.
    let bad = docker_config(&root.path().join("bad"), &reg.host, PUSH_USER, "wrong");
    let o = publish(
        &reg,
        &tree,
        "team/auth:2.0.0",
        &keys.a_key,
        &["--registry-config", bad.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let want = format!(
        "registry {} refused user \"{PUSH_USER}\" from {} auths.{}",
        reg.host,
        bad.display(),
        reg.host
    );
    assert!(text(&o).contains(&want), "want {want:?} in {}", text(&o));
    assert!(!exists("2.0.0"));

    // No credentials at all (no config file): refused as anonymous, still nothing pushed.
    let o = publish(&reg, &tree, "team/auth:2.0.0", &keys.a_key, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "registry {} refused no credentials (anonymous)",
            reg.host
        )),
        "{}",
        text(&o)
    );
    assert!(!exists("2.0.0"));

    // `credHelpers`: the helper runs as Docker runs it (`get`, the host on stdin); one that
    // is not installed is named.
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-tenantry-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread host\n[ \"$host\" = \"{}\" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\necho '{{\"ServerURL\":\"'$host'\",\"Username\":\"{PUSH_USER}\",\"Secret\":\"{PUSH_PASSWORD}\"}}'\n",
            reg.host
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let helpers = root.path().join("helpers.json");
    std::fs::write(
        &helpers,
        serde_json::json!({ "credHelpers": { &reg.host: "tenantry-test" } }).to_string(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let with_helper = || {
        publish_env(
            &reg,
            &tree,
            "team/auth:3.0.0",
            &keys.a_key,
            &["--registry-config", helpers.to_str().unwrap()],
            &[("COSIGN_PASSWORD", PASSWORD), ("PATH", &path)],
        )
    };
    let o = with_helper();
    assert!(o.status.success(), "{}", text(&o));
    assert!(exists("3.0.0"));
    std::fs::write(
        &helpers,
        serde_json::json!({ "credHelpers": { &reg.host: "tenantry-absent" } }).to_string(),
    )
    .unwrap();
    let o = with_helper();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("credential helper docker-credential-tenantry-absent")
            && text(&o).contains("not installed")
            && text(&o).contains(&reg.host),
        "{}",
        text(&o)
    );
}

/// `script` runs the binary on a pseudo-terminal fed `input`, as a person typing.
fn on_terminal(command: &str, input: &str, cwd: &Path) -> Option<Output> {
    let script = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("script"))
            .find(|p| p.is_file())
    });
    let Some(script) = script else {
        eprintln!("skipping: util-linux `script` is not installed");
        return None;
    };
    let mut child = Command::new(script)
        .args(["-qec", command, "/dev/null"])
        .current_dir(cwd)
        .env_remove("TENANTRY_KEY_PASSWORD")
        .env_remove("COSIGN_PASSWORD")
        .env_remove("TENANTRY_SIGNING_KEY")
        .env("DOCKER_CONFIG", cwd.join("no-docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    Some(child.wait_with_output().unwrap())
}

#[test]
fn the_passphrase_is_asked_on_a_terminal() {
    let root = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_tenantry");
    let dir = root.path().join("k");
    std::fs::create_dir_all(&dir).unwrap();
    // Asked twice for a new key; two different answers write nothing.
    let generate = format!("{bin} keys generate --dir {}", dir.display());
    let Some(o) = on_terminal(&generate, "one\ntwo\n", root.path()) else {
        return;
    };
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("the two passphrases differ"),
        "{}",
        text(&o)
    );
    assert!(!dir.join("cosign.key").exists());
    let o = on_terminal(&generate, "typed\ntyped\n", root.path()).unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("Enter password for private key"),
        "{}",
        text(&o)
    );

    // publish asks once; the typed passphrase opens the key (so the run gets as far as the
    // registry, closed here), a wrong one does not.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tree = root.path().join("deploy");
    write_tree(&tree, "x");
    let publish = format!(
        "{bin} publish {} oci://127.0.0.1:{closed}/team/app:1.0.0 --insecure-registry --key {}",
        tree.display(),
        dir.join("cosign.key").display()
    );
    let o = on_terminal(&publish, "typed\n", root.path()).unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is unreachable"), "{}", text(&o));
    let o = on_terminal(&publish, "wrong\n", root.path()).unwrap();
    assert!(text(&o).contains("wrong passphrase"), "{}", text(&o));
}
