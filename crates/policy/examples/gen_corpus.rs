//! Writes a deterministic corpus of Kubernetes manifests for throughput measurements of
//! `tenantry check` (and for comparing with other scanners on the same files).
//!
//! ```text
//! cargo run --release -p tenantry-policy --example gen_corpus -- DIR [OBJECTS] [PER_FILE]
//! ```
//!
//! OBJECTS (default 10000) objects are written as `DIR/app-NNN/objects-NNNNN.yaml`, PER_FILE
//! (default 1) per file, 100 files per directory. The mix is what a platform sees from its
//! tenants: mostly Deployments (half of them hardened, half with typical violations),
//! Services, ConfigMaps, HTTPRoutes, CronJobs, StatefulSets and ExternalSecrets. The same
//! arguments always produce byte-identical files.

use std::fmt::Write as _;
use std::{env, fs, path::PathBuf, process::ExitCode};

/// A tiny deterministic generator (xorshift64*), so runs are reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn deployment(i: usize, rng: &mut Rng, kind: &str) -> String {
    let hardened = rng.below(2) == 0;
    let flaw = rng.below(4);
    let image = if !hardened && flaw == 3 {
        format!("docker.io/someone/app-{i}:latest")
    } else {
        format!("ghcr.io/acme/app-{}:1.{}.{}", i % 50, i % 7, i % 13)
    };
    // Pod-spec fragments, indented as they sit under the template's `spec:`.
    let security = if hardened || flaw != 0 {
        "      securityContext:\n        allowPrivilegeEscalation: false\n        readOnlyRootFilesystem: true\n        capabilities:\n          drop: [ALL]\n"
    } else {
        "      securityContext:\n        privileged: true\n"
    };
    let resources = if hardened || flaw != 1 {
        "      resources:\n        requests:\n          cpu: 100m\n          memory: 128Mi\n        limits:\n          memory: 256Mi\n"
    } else {
        ""
    };
    let volume = if !hardened && flaw == 2 {
        "  volumes:\n    - name: host\n      hostPath:\n        path: /var/run\n"
    } else {
        "  volumes:\n    - name: tmp\n      emptyDir: {}\n"
    };
    let (head, template_indent) = match kind {
        "CronJob" => (
            format!(
                "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: job-{i}\n  namespace: tenant-{ns}\n  labels:\n    app.kubernetes.io/name: job-{i}\nspec:\n  schedule: \"*/5 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n",
                ns = i % 20
            ),
            "        ",
        ),
        _ => (
            format!(
                "apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: app-{i}\n  namespace: tenant-{ns}\n  labels:\n    app.kubernetes.io/name: app-{i}\nspec:\n  replicas: {r}\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: app-{i}\n  template:\n",
                ns = i % 20,
                r = 1 + i % 3
            ),
            "    ",
        ),
    };
    let mut pod = format!(
        "metadata:\n  labels:\n    app.kubernetes.io/name: app-{i}\n  annotations:\n    prometheus.io/scrape: \"true\"\nspec:\n  serviceAccountName: app-{i}\n  automountServiceAccountToken: false\n  securityContext:\n    runAsNonRoot: true\n    runAsUser: 10001\n    seccompProfile:\n      type: RuntimeDefault\n  containers:\n    - name: app\n      image: {image}\n      ports:\n        - name: http\n          containerPort: 8080\n      readinessProbe:\n        httpGet:\n          path: /healthz\n          port: http\n      env:\n        - name: LOG_LEVEL\n          value: info\n"
    );
    pod.push_str(security);
    pod.push_str(resources);
    pod.push_str(volume);
    let mut out = head;
    for line in pod.lines() {
        let _ = writeln!(out, "{template_indent}{line}");
    }
    out
}

fn object(i: usize, rng: &mut Rng) -> String {
    let ns = i % 20;
    match rng.below(100) {
        0..=39 => deployment(i, rng, "Deployment"),
        40..=44 => deployment(i, rng, "StatefulSet"),
        45..=49 => deployment(i, rng, "CronJob"),
        50..=69 => {
            let kind = match rng.below(10) {
                0 => "NodePort",
                1 => "LoadBalancer",
                _ => "ClusterIP",
            };
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: tenant-{ns}\nspec:\n  type: {kind}\n  selector:\n    app.kubernetes.io/name: app-{i}\n  ports:\n    - name: http\n      port: 80\n      targetPort: http\n"
            )
        }
        70..=84 => format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\n  namespace: tenant-{ns}\ndata:\n  LOG_LEVEL: info\n  FEATURE_FLAGS: \"a,b,c\"\n  config.yaml: |\n    server:\n      port: 8080\n      timeout: 30s\n"
        ),
        85..=94 => {
            let section = if rng.below(5) == 0 { "admin" } else { "https" };
            format!(
                "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: route-{i}\n  namespace: tenant-{ns}\nspec:\n  parentRefs:\n    - name: platform\n      namespace: kube-system\n      sectionName: {section}\n  hostnames:\n    - app-{i}.example.com\n  rules:\n    - backendRefs:\n        - name: svc-{i}\n          port: 80\n"
            )
        }
        _ => {
            let store = if rng.below(4) == 0 {
                "ClusterSecretStore"
            } else {
                "SecretStore"
            };
            format!(
                "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata:\n  name: secret-{i}\n  namespace: tenant-{ns}\nspec:\n  refreshInterval: 1h\n  secretStoreRef:\n    kind: {store}\n    name: openbao\n  target:\n    name: secret-{i}\n  data:\n    - secretKey: password\n      remoteRef:\n        key: apps/tenant-{ns}/db\n        property: password\n"
            )
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: gen_corpus DIR [OBJECTS] [PER_FILE]");
        return ExitCode::from(2);
    };
    let count: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let per_file: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1).max(1);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut written = 0usize;
    let mut file_index = 0usize;
    while written < count {
        let sub = dir.join(format!("app-{:03}", file_index / 100));
        if let Err(e) = fs::create_dir_all(&sub) {
            eprintln!("{}: {e}", sub.display());
            return ExitCode::from(2);
        }
        let mut text = String::new();
        for _ in 0..per_file.min(count - written) {
            if !text.is_empty() {
                text.push_str("---\n");
            }
            text.push_str(&object(written, &mut rng));
            written += 1;
        }
        let path = sub.join(format!("objects-{file_index:05}.yaml"));
        if let Err(e) = fs::write(&path, text) {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(2);
        }
        file_index += 1;
    }
    println!(
        "wrote {written} objects in {file_index} files under {}",
        dir.display()
    );
    ExitCode::SUCCESS
}
