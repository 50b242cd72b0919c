//! The proof that the generated ValidatingAdmissionPolicies decide what the engine decides:
//! every case is sent to a real API server as a server-side dry-run create into a tenant
//! namespace, and the API server's verdict and check IDs are compared with
//! `Engine::evaluate` (admission mode) on the object as admitted.
//!
//! `#[ignore]`d: it needs a cluster. Run with
//! `TENANTRY_E2E_KUBECONFIG=… cargo test -p tenantry-policy --test vap_e2e -- --ignored
//! --nocapture`. It touches only what it creates: a namespace `vap-e2e-<pid>` (tenant label,
//! `pod-security.kubernetes.io/enforce: privileged` so the PodSecurity plugin never refuses
//! first), and policies, bindings and per-tenant parameters named `vap-e2e-<pid>-*` whose
//! bindings also match that namespace's name only; all are deleted at the end, also when the
//! test fails. The parameters' CRD (`guardrailparameters.tenantry.dev`) is created if absent
//! and then deleted at the end (if present with another schema, it is given this one, whose
//! new fields are optional). `TENANTRY_E2E_SCENARIO=<text>` runs only the scenarios whose
//! name contains the text.
//!
//! Three passes over the same cases: without the policies (the baseline latency), with them
//! bound `[Warn]` (every failing validation comes back as a warning, so every check ID and
//! each check's message for its first offender are compared, and the admitted object is what
//! the engine judges), and with them bound `[Deny]` (the verdict, and the latency the policies
//! add). In the first scenario and the per-tenant ones, objects created before the policies
//! are then updated, for the engine's update rules. Further scenarios read the Pod Security level and version from the
//! namespace's labels instead of a fixed level. The per-tenant scenarios install three
//! tenants' bindings and parameters at once and judge one tenant's namespace each, with
//! `Engine::evaluate` given that tenant, so a value of one tenant never admits another's.
//! Their requests are sent as an impersonated tenant-side user (`vap-e2e-<pid>-user`, in a
//! group bound to `cluster-admin` for the run), since `restrict-network-policies` never judges
//! the platform's identities, the admin included.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use tenantry_api::tenant::{
    AllowedToleration, ClassList, Classes, TaintEffect, TolerationOperator,
};
use tenantry_policy::pss::Level;
use tenantry_policy::vap::{self, Actions, VapOptions};
use tenantry_policy::{
    Context, Engine, Mode, NamespaceInfo, Operation, Severity, TenantInfo, UserInfo,
};

const PLATFORM: &str = "\
apiVersion: tenantry.dev/v1alpha1
kind: Platform
gateway:
  name: shared
  namespace: gateway-system
  sectionName: https
policies:
  imagePullPolicyAlways:
    enabled: true
  requireDigest:
    enabled: true
defaults:
  placement:
    tolerations:
      - key: dedicated
        operator: Equal
        value: shop
        effect: NoSchedule
  classes:
    priority:
      allowed: [tenant-high]
";

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Case {
    label: String,
    object: Value,
}

/// How the API server answered one dry-run create.
struct Answer {
    status: u16,
    body: Value,
    /// Check IDs of the policies' warnings (from `<check-id>: …` messages).
    warned: BTreeSet<String>,
    /// Each warned check's message.
    messages: BTreeMap<String, String>,
    took: Duration,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A client of the kubeconfig's user, or impersonating `user` (the kubeconfig's must be
/// allowed to).
async fn client(path: &Path, user: Option<&UserInfo>) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("reading the kubeconfig");
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    if let Some(user) = user {
        config.auth_info.impersonate = Some(user.username.clone());
        config.auth_info.impersonate_groups = Some(user.groups.clone());
    }
    Client::try_from(config).expect("client")
}

/// The collection URL of a kind in `ns`.
fn collection(object: &Value, ns: &str) -> String {
    let api_version = object["apiVersion"].as_str().unwrap_or("");
    let kind = object["kind"].as_str().unwrap_or("");
    let plural = match kind {
        "Pod" => "pods",
        "Deployment" => "deployments",
        "Service" => "services",
        "ExternalSecret" => "externalsecrets",
        "PushSecret" => "pushsecrets",
        "HTTPRoute" => "httproutes",
        "PersistentVolumeClaim" => "persistentvolumeclaims",
        "StatefulSet" => "statefulsets",
        "Ingress" => "ingresses",
        "Gateway" => "gateways",
        "NetworkPolicy" => "networkpolicies",
        "CiliumNetworkPolicy" => "ciliumnetworkpolicies",
        "Kustomization" => "kustomizations",
        "SecretStore" => "secretstores",
        "HelmRelease" => "helmreleases",
        "OCIRepository" => "ocirepositories",
        other => panic!("no plural for {other}"),
    };
    let base = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    format!("{base}/namespaces/{ns}/{plural}")
}

async fn send(
    client: &Client,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> (u16, Value, Vec<String>) {
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let mut builder = http_request(method, url);
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let request = builder.body(Body::from(bytes)).expect("request");
    let response = client.send(request).await.expect("sending");
    let status = response.status().as_u16();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let bytes = response.into_body().collect_bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body, warnings)
}

fn http_request(method: &str, url: &str) -> http::request::Builder {
    http::Request::builder().method(method).uri(url)
}

/// The message of one of the policies' warnings (`<check-id>: …`, after the API server's
/// `… with binding '<name>': ` prefix), unquoted as the `Warning` header quotes it.
fn warned_message(warning: &str, prefix: &str) -> Option<String> {
    let at = warning.find(&format!("with binding '{prefix}"))?;
    let rest = &warning[at..];
    let message = &rest[rest.find("': ")? + 3..];
    let message = message.strip_suffix('"').unwrap_or(message);
    Some(message.replace("\\\"", "\"").replace("\\\\", "\\"))
}

async fn dry_run(client: &Client, ns: &str, object: &Value, prefix: &str) -> Answer {
    let url = format!("{}?dryRun=All", collection(object, ns));
    let start = Instant::now();
    let (status, body, warnings) = send(client, "POST", &url, Some(object)).await;
    let took = start.elapsed();
    let mut messages = BTreeMap::new();
    for message in warnings.iter().filter_map(|w| warned_message(w, prefix)) {
        if let Some((check, _)) = message.split_once(": ") {
            messages.insert(check.to_owned(), message.clone());
        }
    }
    Answer {
        status,
        body,
        warned: messages.keys().cloned().collect(),
        messages,
        took,
    }
}

fn corpus_cases() -> (Vec<Case>, usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/pss");
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("corpus directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    let total = files.len();
    // The corpus repeats the same pods across levels and versions; each distinct pod is sent
    // once as a Pod and once as a Deployment.
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("corpus file");
        let mut pod: Value = serde_saphyr::from_str(&text).expect("corpus YAML");
        pod["metadata"]["name"] = json!("p");
        let key = serde_json::to_string(&pod).unwrap();
        seen.entry(key).or_insert_with(|| {
            file.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")))
                .unwrap_or(file)
                .display()
                .to_string()
        });
    }
    let mut cases = Vec::new();
    for (i, (key, label)) in seen.into_iter().enumerate() {
        let mut pod: Value = serde_json::from_str(&key).unwrap();
        pod["metadata"]["name"] = json!(format!("corpus-{i}"));
        cases.push(Case {
            label: format!("{label} as Deployment"),
            object: deployment(&format!("corpus-{i}"), &pod),
        });
        cases.push(Case {
            label: format!("{label} as Pod"),
            object: pod,
        });
    }
    (cases, total)
}

/// `pod` as a case and as the Deployment `name` templating it (`deployment`), labelled
/// `CHECK: pod WHAT` and `CHECK: deployment WHAT`: each per-tenant check is asked of both.
fn pod_and_deployment(out: &mut Vec<Case>, check: &str, what: &str, name: &str, pod: &Value) {
    out.push(Case {
        label: format!("{check}: pod {what}"),
        object: pod.clone(),
    });
    out.push(Case {
        label: format!("{check}: deployment {what}"),
        object: deployment(name, pod),
    });
}

fn deployment(name: &str, pod: &Value) -> Value {
    let mut metadata = pod["metadata"].clone();
    if let Some(m) = metadata.as_object_mut() {
        m.remove("name");
        m.remove("namespace");
    }
    metadata["labels"] = json!({"app": name});
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": metadata, "spec": pod["spec"].clone()},
        },
    })
}

/// A pod that passes every compiled check.
fn good_container(name: &str) -> Value {
    json!({
        "name": name,
        "image": format!("registry.example/app@{DIGEST}"),
        "imagePullPolicy": "Always",
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "16Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
        },
    })
}

fn good_pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [good_container("app")],
        },
    })
}

fn platform_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut pod = |label: &str, edit: &dyn Fn(&mut Value)| {
        let mut p = good_pod(label);
        edit(&mut p);
        cases.push(Case {
            label: format!("platform: {label} (Deployment)"),
            object: deployment(label, &p),
        });
        cases.push(Case {
            label: format!("platform: {label} (Pod)"),
            object: p,
        });
    };
    pod("compliant", &|_| {});
    pod("no-cpu-request", &|p| {
        p["spec"]["containers"][0]["resources"]["requests"]
            .as_object_mut()
            .unwrap()
            .remove("cpu");
    });
    pod("cpu-limit-only", &|p| {
        let r = &mut p["spec"]["containers"][0]["resources"];
        r["requests"].as_object_mut().unwrap().remove("cpu");
        r["limits"]["cpu"] = json!("20m");
    });
    pod("no-resources", &|p| {
        p["spec"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .remove("resources");
    });
    pod("init-no-memory-limit", &|p| {
        let mut init = good_container("init");
        init["resources"]["limits"] = json!({});
        p["spec"]["initContainers"] = json!([init]);
    });
    pod("pull-if-not-present", &|p| {
        p["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    });
    pod("pull-defaulted-tag", &|p| {
        let c = p["spec"]["containers"][0].as_object_mut().unwrap();
        c.remove("imagePullPolicy");
        c.insert("image".into(), json!("registry.example/app:1.2"));
    });
    pod("pull-defaulted-latest", &|p| {
        let c = p["spec"]["containers"][0].as_object_mut().unwrap();
        c.remove("imagePullPolicy");
        c.insert("image".into(), json!("registry.example/app"));
    });
    pod("tag-no-digest", &|p| {
        p["spec"]["containers"][0]["image"] = json!("registry.example/app:1.2");
    });
    pod("tag-and-digest", &|p| {
        p["spec"]["containers"][0]["image"] = json!(format!("registry.example/app:1.2@{DIGEST}"));
    });
    pod("short-digest", &|p| {
        p["spec"]["containers"][0]["image"] = json!("registry.example/app@sha256:0123");
    });
    pod("node-name", &|p| {
        p["spec"]["nodeName"] = json!("node-a");
    });
    pod("every-taint", &|p| {
        p["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
    });
    pod("every-taint-noschedule", &|p| {
        p["spec"]["tolerations"] = json!([{"operator": "Exists", "effect": "NoSchedule"}]);
    });
    pod("keyed-toleration", &|p| {
        p["spec"]["tolerations"] = json!([{"key": "dedicated", "operator": "Equal", "value": "shop", "effect": "NoSchedule"}]);
    });
    pod("node-condition-toleration", &|p| {
        p["spec"]["tolerations"] =
            json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]);
    });
    pod("system-priority", &|p| {
        p["spec"]["priorityClassName"] = json!("system-cluster-critical");
    });
    pod("privileged", &|p| {
        p["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true);
        p["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = json!(true);
    });
    pod("host-network", &|p| {
        p["spec"]["hostNetwork"] = json!(true);
    });
    pod("add-net-admin", &|p| {
        p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = json!(["NET_ADMIN"]);
    });
    pod("run-as-root-container", &|p| {
        p["spec"]["containers"][0]["securityContext"]["runAsUser"] = json!(0);
    });
    pod("apparmor-unconfined-pod", &|p| {
        p["spec"]["securityContext"]["appArmorProfile"] = json!({"type": "Unconfined"});
    });
    pod("apparmor-unconfined-container", &|p| {
        p["spec"]["containers"][0]["securityContext"]["appArmorProfile"] =
            json!({"type": "Unconfined"});
    });
    pod("apparmor-annotations", &|p| {
        p["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(good_container("sidecar"));
        p["metadata"]["annotations"] = json!({
            "container.apparmor.security.beta.kubernetes.io/sidecar": "unconfined",
            "container.apparmor.security.beta.kubernetes.io/app": "unconfined",
        });
    });
    pod("apparmor-localhost", &|p| {
        p["metadata"]["annotations"] =
            json!({"container.apparmor.security.beta.kubernetes.io/app": "localhost/mine"});
    });
    pod("liveness-probe-host", &|p| {
        p["spec"]["containers"][0]["livenessProbe"] =
            json!({"httpGet": {"host": "10.0.0.1", "port": 8080, "path": "/"}});
    });
    pod("readiness-and-poststart-hosts", &|p| {
        p["spec"]["containers"][0]["readinessProbe"] =
            json!({"tcpSocket": {"host": "10.0.0.2", "port": 8080}});
        p["spec"]["containers"][0]["lifecycle"] =
            json!({"postStart": {"httpGet": {"host": "10.0.0.3", "port": 8080}}});
    });
    pod("probe-without-host", &|p| {
        p["spec"]["containers"][0]["livenessProbe"] = json!({"tcpSocket": {"port": 8080}});
    });
    pod("proc-mount-unmasked-user-namespace", &|p| {
        p["spec"]["hostUsers"] = json!(false);
        p["spec"]["containers"][0]["securityContext"]["procMount"] = json!("Unmasked");
    });
    pod("selinux-type", &|p| {
        p["spec"]["securityContext"]["seLinuxOptions"] = json!({"type": "spc_t"});
    });
    pod("selinux-user-and-role", &|p| {
        p["spec"]["containers"][0]["securityContext"]["seLinuxOptions"] =
            json!({"type": "container_t", "user": "system_u", "role": "system_r"});
    });
    pod("selinux-engine-type", &|p| {
        p["spec"]["securityContext"]["seLinuxOptions"] = json!({"type": "container_engine_t"});
    });
    pod("unsafe-sysctl", &|p| {
        p["spec"]["securityContext"]["sysctls"] = json!([
            {"name": "net.ipv4.tcp_keepalive_time", "value": "60"},
            {"name": "kernel.msgmax", "value": "65536"},
        ]);
    });
    pod("safe-sysctls", &|p| {
        p["spec"]["securityContext"]["sysctls"] = json!([
            {"name": "net.ipv4.tcp_notsent_lowat", "value": "16384"},
        ]);
    });
    let mut service = |label: &str, spec: Value| {
        cases.push(Case {
            label: format!("platform: service {label}"),
            object: json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": label},
                "spec": spec,
            }),
        });
    };
    let ports = json!([{"port": 80, "targetPort": 8080}]);
    service("cluster-ip", json!({"ports": ports}));
    service("node-port", json!({"type": "NodePort", "ports": ports}));
    service(
        "load-balancer",
        json!({"type": "LoadBalancer", "ports": ports}),
    );
    service(
        "load-balancer-no-node-ports",
        json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": ports}),
    );
    service(
        "external-ips",
        json!({"ports": ports, "externalIPs": ["203.0.113.7"]}),
    );
    let mut route = |label: &str, parent: Value| {
        cases.push(Case {
            label: format!("platform: route {label}"),
            object: json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": label},
                "spec": {"parentRefs": [parent], "rules": [{"backendRefs": [{"name": "web", "port": 80}]}]},
            }),
        });
    };
    route(
        "platform-gateway",
        json!({"name": "shared", "namespace": "gateway-system", "sectionName": "https"}),
    );
    route(
        "no-section",
        json!({"name": "shared", "namespace": "gateway-system"}),
    );
    route(
        "other-section",
        json!({"name": "shared", "namespace": "gateway-system", "sectionName": "http"}),
    );
    route(
        "own-namespace",
        json!({"name": "shared", "sectionName": "https"}),
    );
    route(
        "other-namespace",
        json!({"name": "shared", "namespace": "other", "sectionName": "https"}),
    );
    route(
        "other-gateway",
        json!({"name": "mine", "namespace": "gateway-system", "sectionName": "https"}),
    );
    route(
        "service-parent",
        json!({"group": "", "kind": "Service", "name": "mesh", "namespace": "gateway-system"}),
    );
    let mut secret = |label: &str, object: Value| {
        cases.push(Case {
            label: format!("platform: {label}"),
            object,
        });
    };
    let es = |name: &str, spec: Value| {
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
               "metadata": {"name": name}, "spec": spec})
    };
    secret(
        "external-secret own store",
        es(
            "own",
            json!({"secretStoreRef": {"kind": "SecretStore", "name": "tenant"},
                   "target": {"name": "t"},
                   "data": [{"secretKey": "k", "remoteRef": {"key": "x"}}]}),
        ),
    );
    secret(
        "external-secret cluster store",
        es(
            "cluster",
            json!({"secretStoreRef": {"kind": "ClusterSecretStore", "name": "platform"},
                   "target": {"name": "t"},
                   "data": [{"secretKey": "k", "remoteRef": {"key": "x"}}]}),
        ),
    );
    secret(
        "external-secret cluster store in data",
        es(
            "cluster-data",
            json!({"target": {"name": "t"},
                   "data": [{"secretKey": "k", "remoteRef": {"key": "x"},
                             "sourceRef": {"storeRef": {"kind": "ClusterSecretStore", "name": "platform"}}}]}),
        ),
    );
    secret(
        "external-secret own store, cluster store in data",
        es(
            "both",
            json!({"secretStoreRef": {"kind": "SecretStore", "name": "tenant"},
                   "target": {"name": "t"},
                   "data": [{"secretKey": "k", "remoteRef": {"key": "x"},
                             "sourceRef": {"storeRef": {"kind": "ClusterSecretStore", "name": "platform"}}}]}),
        ),
    );
    secret(
        "external-secret cluster generator",
        es(
            "generator",
            json!({"target": {"name": "t"},
                   "dataFrom": [{"sourceRef": {"generatorRef": {
                       "apiVersion": "generators.external-secrets.io/v1alpha1",
                       "kind": "ClusterGenerator", "name": "gen"}}}]}),
        ),
    );
    secret(
        "external-secret namespaced generator",
        es(
            "password",
            json!({"target": {"name": "t"},
                   "dataFrom": [{"sourceRef": {"generatorRef": {
                       "apiVersion": "generators.external-secrets.io/v1alpha1",
                       "kind": "Password", "name": "gen"}}}]}),
        ),
    );
    secret(
        "push-secret cluster store",
        json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
               "metadata": {"name": "push"},
               "spec": {"secretStoreRefs": [{"kind": "ClusterSecretStore", "name": "platform"}],
                        "selector": {"secret": {"name": "s"}},
                        "data": [{"match": {"secretKey": "k", "remoteRef": {"remoteKey": "x"}}}]}}),
    );
    secret(
        "push-secret own store",
        json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
               "metadata": {"name": "push-own"},
               "spec": {"secretStoreRefs": [{"kind": "SecretStore", "name": "tenant"}],
                        "selector": {"secret": {"name": "s"}},
                        "data": [{"match": {"secretKey": "k", "remoteRef": {"remoteKey": "x"}}}]}}),
    );
    cases
}

/// Image references for `allowed-registries`, each as a Pod and as a Deployment: the
/// runtime's normalisation (implicit docker.io and library/, index.docker.io, host case,
/// ports, IPv6), whole path segments, and every way the parser refuses a reference.
fn registry_cases() -> Vec<Case> {
    let long = format!("ghcr.io/acme/{}", "a".repeat(4100));
    let images: Vec<String> = [
        "nginx",
        "nginx:1.27",
        "library/nginx",
        "index.docker.io/library/nginx:1",
        "registry-1.docker.io/nginx",
        "Docker.IO/nginx",
        "acme/web",
        "docker.io/acme/web",
        "ghcr.io/acme/web:1",
        "ghcr.io/acme",
        "ghcr.io/acme-evil/web:1",
        "ghcr.io/acmeweb",
        "ghcr.io.evil.com/acme/web",
        "GHCR.io/acme/tools/cli",
        "registry.local:5000/team/app:v1",
        "registry.local/team/app",
        "registry.local:5000/teamx/app",
        "registry.local:5000/team",
        "localhost/app",
        "localhost:5000/app",
        "[::1]:5000/app",
        "[::1]/app",
        "[::1]x/app",
        "ghcr.io/acme/web@DIGEST",
        "ghcr.io/acme/web:1.2@DIGEST",
        "nginx@DIGEST",
        // Refused by the parser.
        "nginx latest",
        "ghcr.io/acme/web\t1",
        "Nginx/App",
        "ghcr.io/acme/web:",
        "ghcr.io/acme/web:-tag",
        "ghcr.io/acme/web@sha256:1234",
        "ghcr.io/acme/web@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        "ghcr.io/acme/web@md5",
        "ghcr.io/acme/web@sha512:0123456789abcdef0123456789abcdef",
        "ghcr.io//web",
        "ghcr.io/acme/-web",
        "ghcr.io/acme/we__b",
        "ghcr.io/acme/we___b",
        "ghcr.io/acme/we.-b",
        "ghcr.io:port/web",
        "a:b:c/x",
        "ghcr.io/acme/a:b:c",
        "[]:5000/app",
        "[::1]:99999/app",
        "LONG",
    ]
    .iter()
    .map(|i| match *i {
        "LONG" => long.clone(),
        i => i.replace("DIGEST", DIGEST),
    })
    .collect();
    let mut out = Vec::new();
    for image in &images {
        let mut pod = good_pod("r");
        pod["spec"]["containers"][0]["image"] = json!(image);
        let label: String = image.chars().take(60).collect();
        pod_and_deployment(&mut out, "registries", &format!("{label:?}"), "r", &pod);
    }
    // The first offender of each check is reported: an allowed image first, then others.
    let mut several = good_pod("r");
    several["spec"]["initContainers"] = json!([good_container("init")]);
    several["spec"]["initContainers"][0]["image"] = json!("ghcr.io/acme/init:1");
    several["spec"]["containers"] = json!([good_container("a"), good_container("b")]);
    several["spec"]["containers"][0]["image"] = json!("registry.local:5000/team/a");
    several["spec"]["containers"][1]["image"] = json!("Bad/Ref");
    out.push(Case {
        label: "registries: init, allowed and invalid containers".to_owned(),
        object: several.clone(),
    });
    out.push(Case {
        label: "registries: deployment with init, allowed and invalid containers".to_owned(),
        object: deployment("r", &several),
    });
    let mut volume = good_pod("r");
    volume["spec"]["volumes"] =
        json!([{"name": "v", "image": {"reference": "evil.example/data:1"}}]);
    volume["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "v", "mountPath": "/v"}]);
    out.push(Case {
        label: "registries: image volume".to_owned(),
        object: volume,
    });
    out
}

/// Pods selecting nodes, for `node-selector` per tenant (each as a Pod and a Deployment).
fn node_selector_cases() -> Vec<Case> {
    let selectors = [
        json!(null),
        json!({"pool": "a"}),
        json!({"pool": "b"}),
        json!({"pool": "b", "zone": "z"}),
        json!({"pool": "b", "zone": "y"}),
        json!({"zone": "z"}),
        json!({"pool": "a", "zone": "z", "extra": "1"}),
    ];
    let mut out = Vec::new();
    for selector in selectors {
        let mut pod = good_pod("n");
        if !selector.is_null() {
            pod["spec"]["nodeSelector"] = selector.clone();
        }
        pod_and_deployment(&mut out, "node selector", &selector.to_string(), "n", &pod);
    }
    out
}

/// Pods tolerating taints, for `tolerations` per tenant (each as a Pod and a Deployment):
/// every taint with and without an effect, keys with and without a value or effect, an
/// operator left out (`Equal`), an empty value and effect, node-condition taints, and several
/// with the first offender later in the list.
fn toleration_cases() -> Vec<Case> {
    let lists = [
        json!([]),
        json!([{"operator": "Exists"}]),
        json!([{"operator": "Exists", "effect": "NoSchedule"}]),
        json!([{"operator": "Exists", "effect": "PreferNoSchedule"}]),
        json!([{"key": "dedicated", "operator": "Equal", "value": "shop", "effect": "NoSchedule"}]),
        json!([{"key": "dedicated", "operator": "Equal", "value": "shop"}]),
        json!([{"key": "dedicated", "operator": "Exists"}]),
        json!([{"key": "dedicated", "value": "other", "effect": "NoExecute"}]),
        json!([{"key": "dedicated", "operator": "Equal", "value": ""}]),
        json!([{"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoExecute",
                "tolerationSeconds": 60}]),
        json!([{"key": "gpu", "value": "true", "effect": ""}]),
        json!([{"key": "gpu", "operator": "Exists", "effect": "NoExecute"}]),
        json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}]),
        json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists"},
               {"key": "dedicated", "operator": "Equal", "value": "shop", "effect": "NoSchedule"},
               {"key": "other", "operator": "Exists"},
               {"operator": "Exists"}]),
    ];
    let mut out = Vec::new();
    for list in lists {
        let mut pod = good_pod("t");
        pod["spec"]["tolerations"] = list.clone();
        pod_and_deployment(&mut out, "tolerations", &list.to_string(), "t", &pod);
    }
    out
}

/// An allowed toleration: `key`, `Exists` when `value` is `None` (else `Equal`), `effect`.
fn allowed(key: &str, value: Option<&str>, effect: Option<TaintEffect>) -> AllowedToleration {
    AllowedToleration {
        key: key.to_owned(),
        operator: Some(if value.is_some() {
            TolerationOperator::Equal
        } else {
            TolerationOperator::Exists
        }),
        value: value.map(str::to_owned),
        effect,
    }
}

/// The engine's view of a tenant with these registries, node selector, tolerations and classes
/// (nothing else is read by the per-tenant checks).
fn tenant(
    name: &str,
    registries: &[&str],
    node_selector: &[(&str, &str)],
    tolerations: Option<Vec<AllowedToleration>>,
    classes: Classes,
) -> TenantInfo {
    TenantInfo {
        name: name.to_owned(),
        namespaces: vec![name.to_owned()],
        service_account: name.to_owned(),
        registries: registries.iter().map(|r| (*r).to_owned()).collect(),
        pod_security: Level::Restricted,
        proxy_kubeconfig_secret: None,
        cluster_role: None,
        network_peers: Vec::new(),
        placement: tenantry_api::tenant::Placement {
            node_selector: (!node_selector.is_empty()).then(|| {
                node_selector
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            }),
            tolerations,
        },
        classes,
        vap_bound: Vec::new(),
    }
}

/// A class list (`allowed`, `default`).
fn class_list(allowed: &[&str], default: Option<&str>) -> Option<ClassList> {
    Some(ClassList {
        allowed: allowed.iter().map(|c| (*c).to_owned()).collect(),
        default: default.map(str::to_owned),
    })
}

/// Objects naming classes, for `allowed-classes` per tenant: pod templates (PriorityClass,
/// RuntimeClass, ephemeral volumes' StorageClass), PersistentVolumeClaims, StatefulSets'
/// claim templates, Ingresses (field and legacy annotation) and Gateways. Deployments rather
/// than Pods for the pod fields: the Priority and RuntimeClass admission plugins refuse a Pod
/// naming a class that does not exist (or a critical one outside kube-system) before any
/// policy runs.
fn class_cases() -> Vec<Case> {
    let mut out = Vec::new();
    let with_spec = |edit: &dyn Fn(&mut Value)| {
        let mut pod = good_pod("c");
        edit(&mut pod["spec"]);
        pod
    };
    for class in [
        "acme-high",
        "team-low",
        "tenant-high",
        "other",
        "system-cluster-critical",
        "system-node-critical",
    ] {
        let pod = with_spec(&|s| s["priorityClassName"] = json!(class));
        out.push(Case {
            label: format!("classes: deployment priority {class:?}"),
            object: deployment("c", &pod),
        });
    }
    for class in ["gvisor", "kata"] {
        let pod = with_spec(&|s| s["runtimeClassName"] = json!(class));
        out.push(Case {
            label: format!("classes: deployment runtime {class:?}"),
            object: deployment("c", &pod),
        });
    }
    let pod = with_spec(&|s| {
        s["priorityClassName"] = json!("acme-high");
        s["runtimeClassName"] = json!("kata");
    });
    out.push(Case {
        label: "classes: deployment priority acme-high, runtime kata".to_owned(),
        object: deployment("c", &pod),
    });
    let ephemeral = |classes: &[&str]| -> Value {
        classes
            .iter()
            .enumerate()
            .map(|(i, class)| {
                json!({"name": format!("e{i}"), "ephemeral": {"volumeClaimTemplate": {"spec": {
                    "accessModes": ["ReadWriteOnce"], "storageClassName": class,
                    "resources": {"requests": {"storage": "1Gi"}}}}}})
            })
            .collect()
    };
    for classes in [
        &["standard"][..],
        &["fast", "other"],
        &["other", "team-ssd"],
    ] {
        let pod = with_spec(&|s| s["volumes"] = ephemeral(classes));
        out.push(Case {
            label: format!("classes: pod ephemeral volumes {classes:?}"),
            object: pod.clone(),
        });
        out.push(Case {
            label: format!("classes: deployment ephemeral volumes {classes:?}"),
            object: deployment("c", &pod),
        });
    }
    let pvc = |class: Option<&str>| {
        let mut spec = json!({"accessModes": ["ReadWriteOnce"],
                              "resources": {"requests": {"storage": "1Gi"}}});
        if let Some(class) = class {
            spec["storageClassName"] = json!(class);
        }
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "c"}, "spec": spec})
    };
    for class in [
        None,
        Some("fast"),
        Some("team-ssd"),
        Some("other"),
        Some(""),
    ] {
        out.push(Case {
            label: format!("classes: claim {class:?}"),
            object: pvc(class),
        });
    }
    for (claims, template) in [
        (&["fast"][..], &[][..]),
        (&["other", "fast"], &[]),
        (&["team-ssd"], &["other"]),
        (&["standard"], &["standard"]),
    ] {
        let pod = with_spec(&|s| s["volumes"] = ephemeral(template));
        let mut set = deployment("c", &pod);
        set["kind"] = json!("StatefulSet");
        set["spec"]["serviceName"] = json!("c");
        set["spec"]["volumeClaimTemplates"] = claims
            .iter()
            .enumerate()
            .map(|(i, class)| {
                let mut claim = pvc(Some(class));
                claim["metadata"]["name"] = json!(format!("d{i}"));
                claim
            })
            .collect();
        out.push(Case {
            label: format!("classes: statefulset claims {claims:?}, ephemeral {template:?}"),
            object: set,
        });
    }
    let backend = json!({"service": {"name": "web", "port": {"number": 80}}});
    for class in [None, Some("nginx"), Some("other")] {
        let mut ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                                 "metadata": {"name": "c"},
                                 "spec": {"defaultBackend": backend}});
        if let Some(class) = class {
            ingress["spec"]["ingressClassName"] = json!(class);
        }
        out.push(Case {
            label: format!("classes: ingress {class:?}"),
            object: ingress.clone(),
        });
        if let Some(class) = class {
            ingress["spec"]
                .as_object_mut()
                .map(|s| s.remove("ingressClassName"));
            ingress["metadata"]["annotations"] = json!({"kubernetes.io/ingress.class": class});
            out.push(Case {
                label: format!("classes: ingress annotation {class:?}"),
                object: ingress,
            });
        }
    }
    for class in ["acme-gw", "team-gw", "other"] {
        out.push(Case {
            label: format!("classes: gateway {class:?}"),
            object: json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                           "metadata": {"name": "c"},
                           "spec": {"gatewayClassName": class, "listeners": [
                               {"name": "http", "port": 80, "protocol": "HTTP"}]}}),
        });
    }
    out
}

/// Flux objects every way `flux-lockdown` reads them: the ServiceAccount (none, empty, each
/// tenant's, another, one needing quotes), every kind of reference in and out of the
/// namespace (`vap-e2e-<pid>-0` is the first per-tenant scenario's own namespace, another
/// one's in the others), the kubeconfig (each tenant's proxy Secret, another, a ConfigMap;
/// both at once and an empty target namespace are refused by the CRD's own validation), the
/// target and storage namespaces (each tenant's, another), and
/// several offences at once (the first reported is the engine's first).
fn flux_cases(pid: u32) -> Vec<Case> {
    let [acme, acme_dev, team, _, _, _] = network_names(pid);
    let first_scenario = format!("vap-e2e-{pid}-0");
    let kustomization = |label: &str, spec: Value| {
        let mut full = json!({"interval": "5m", "prune": true,
                              "sourceRef": {"kind": "OCIRepository", "name": "app"}});
        if let (Some(full), Some(spec)) = (full.as_object_mut(), spec.as_object()) {
            for (k, v) in spec {
                full.insert(k.clone(), v.clone());
            }
        }
        Case {
            label: format!("flux: kustomization {label}"),
            object: json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                           "kind": "Kustomization", "metadata": {"name": "f"}, "spec": full}),
        }
    };
    let helm_release = |label: &str, spec: Value| Case {
        label: format!("flux: helm release {label}"),
        object: json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                       "metadata": {"name": "f"}, "spec": spec}),
    };
    let mut out = Vec::new();
    for (label, account) in [
        ("acme's ServiceAccount", json!(acme)),
        ("team's ServiceAccount", json!(team)),
        ("another ServiceAccount", json!("flux-system")),
        ("an empty ServiceAccount", json!("")),
        ("a ServiceAccount needing quotes", json!("a\"b\\c")),
    ] {
        out.push(kustomization(label, json!({"serviceAccountName": account})));
    }
    out.push(kustomization("without a ServiceAccount", json!({})));
    for (label, namespace) in [
        ("source in no namespace", None),
        ("source in an empty namespace", Some(String::new())),
        (
            "source in the first scenario's namespace",
            Some(first_scenario.clone()),
        ),
        ("source in flux-system", Some("flux-system".to_owned())),
    ] {
        let mut source = json!({"kind": "GitRepository", "name": "app"});
        if let Some(ns) = namespace {
            source["namespace"] = json!(ns);
        }
        out.push(kustomization(
            label,
            json!({"serviceAccountName": acme, "sourceRef": source}),
        ));
    }
    out.push(kustomization(
        "depends on one in its namespace and one elsewhere",
        json!({"serviceAccountName": acme, "dependsOn": [
            {"name": "base"}, {"name": "infra", "namespace": "flux-system"},
            {"name": "\"quoted\"", "namespace": "other"}]}),
    ));
    for (label, kubeconfig) in [
        (
            "acme's proxy kubeconfig",
            json!({"secretRef": {"name": "acme-proxy"}}),
        ),
        (
            "team's proxy kubeconfig",
            json!({"secretRef": {"name": "team-proxy"}}),
        ),
        (
            "acme's proxy kubeconfig with a key",
            json!({"secretRef": {"name": "acme-proxy", "key": "value"}}),
        ),
        (
            "another kubeconfig Secret",
            json!({"secretRef": {"name": "admin-kubeconfig"}}),
        ),
        (
            "a kubeconfig ConfigMap",
            json!({"configMapRef": {"name": "acme-proxy"}}),
        ),
    ] {
        out.push(kustomization(
            label,
            json!({"serviceAccountName": acme, "kubeConfig": kubeconfig}),
        ));
    }
    for (label, target) in [
        ("targets acme", &acme),
        ("targets acme's second namespace", &acme_dev),
        ("targets team", &team),
        ("targets kube-system", &"kube-system".to_owned()),
    ] {
        out.push(kustomization(
            label,
            json!({"serviceAccountName": acme, "targetNamespace": target}),
        ));
    }
    out.push(kustomization(
        "every offence at once",
        json!({"serviceAccountName": "default", "targetNamespace": "kube-system",
               "sourceRef": {"kind": "GitRepository", "name": "app", "namespace": "flux-system"},
               "kubeConfig": {"secretRef": {"name": "admin-kubeconfig"}}}),
    ));
    let chart = |namespace: Option<&str>| {
        let mut source = json!({"kind": "HelmRepository", "name": "charts"});
        if let Some(ns) = namespace {
            source["namespace"] = json!(ns);
        }
        json!({"spec": {"chart": "app", "sourceRef": source}})
    };
    out.push(helm_release(
        "acme's, chart from its namespace",
        json!({"interval": "5m", "serviceAccountName": acme, "chart": chart(None),
               "targetNamespace": acme, "storageNamespace": acme_dev}),
    ));
    out.push(helm_release(
        "chart from flux-system, stored in team",
        json!({"interval": "5m", "serviceAccountName": acme,
               "chart": chart(Some("flux-system")), "storageNamespace": team}),
    ));
    out.push(helm_release(
        "chartRef elsewhere, no ServiceAccount, target and storage elsewhere",
        json!({"interval": "5m",
               "chartRef": {"kind": "OCIRepository", "name": "app", "namespace": "other"},
               "targetNamespace": "default", "storageNamespace": "kube-system"}),
    ));
    out.push(Case {
        label: "flux: oci repository (no reference, no identity)".to_owned(),
        object: json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
                       "metadata": {"name": "f"},
                       "spec": {"interval": "5m", "url": "oci://ghcr.io/acme/app",
                                "ref": {"tag": "latest"}}}),
    });
    out
}

/// Secret stores every way `restrict-secret-stores` reads them per tenant: keys read or
/// pushed through the tenant's store (the default or the entry's, each tenant's path, the
/// prefix alone, `..` and `.` segments, another store, a generator), and SecretStores
/// reaching the platform's OpenBao by every spelling of its address (scheme or none, user
/// info, port, upper case, trailing dot, `svc.cluster.local`) with every mount, version, auth
/// method, auth mount and role, several offences at once, and another server.
fn secret_store_cases(pid: u32) -> Vec<Case> {
    let tenant = |t: &str| format!("vap-e2e-{pid}-{t}");
    let (acme, team) = (tenant("acme"), tenant("team"));
    let mut out = Vec::new();
    let es = |label: &str, spec: Value| Case {
        label: format!("secret stores: external secret {label}"),
        object: json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                       "metadata": {"name": "s"}, "spec": spec}),
    };
    let openbao = json!({"kind": "SecretStore", "name": "openbao"});
    for (label, key) in [
        ("acme's key", format!("apps/{acme}/db")),
        ("team's key", format!("apps/{team}/db")),
        ("the prefix alone", format!("apps/{acme}/")),
        ("climbing out", format!("apps/{acme}/../{team}/db")),
        ("a dot segment", format!("apps/{acme}/./db")),
        ("another path", "infra/registry".to_owned()),
        ("a quoted key", "a\"b".to_owned()),
    ] {
        out.push(es(
            &format!("{label}, default store"),
            json!({"secretStoreRef": openbao, "target": {"name": "t"},
                   "data": [{"secretKey": "k", "remoteRef": {"key": key}}]}),
        ));
    }
    out.push(es(
        "every key field, the entry's store",
        json!({"target": {"name": "t"},
               "data": [{"secretKey": "k", "remoteRef": {"key": format!("apps/{acme}/a")},
                         "sourceRef": {"storeRef": {"name": "openbao"}}}],
               "dataFrom": [
                   {"extract": {"key": "elsewhere"},
                    "sourceRef": {"storeRef": {"kind": "SecretStore", "name": "openbao"}}},
                   {"find": {"path": format!("apps/{team}"), "name": {"regexp": ".*"}},
                    "sourceRef": {"storeRef": {"name": "openbao"}}}]}),
    ));
    out.push(es(
        "another store, any key",
        json!({"secretStoreRef": {"kind": "SecretStore", "name": "vault-b"},
               "target": {"name": "t"},
               "data": [{"secretKey": "k", "remoteRef": {"key": "infra/registry"}}]}),
    ));
    out.push(es(
        "the default store, one entry through another",
        json!({"secretStoreRef": openbao, "target": {"name": "t"},
               "data": [
                   {"secretKey": "a", "remoteRef": {"key": "infra/a"},
                    "sourceRef": {"storeRef": {"name": "vault-b"}}},
                   {"secretKey": "b", "remoteRef": {"key": "infra/b"}}]}),
    ));
    for (label, key) in [
        ("acme's key", format!("apps/{acme}/out")),
        ("another path", "out".to_owned()),
    ] {
        out.push(Case {
            label: format!("secret stores: push secret {label}"),
            object: json!({"apiVersion": "external-secrets.io/v1alpha1", "kind": "PushSecret",
                           "metadata": {"name": "s"},
                           "spec": {"secretStoreRefs": [{"kind": "SecretStore", "name": "vault-b"},
                                                        {"kind": "SecretStore", "name": "openbao"}],
                                    "selector": {"secret": {"name": "s"}},
                                    "data": [{"match": {"secretKey": "k",
                                                        "remoteRef": {"remoteKey": key}}}]}}),
        });
    }
    let store = |label: &str, vault: Value| Case {
        label: format!("secret stores: store {label}"),
        object: json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
                       "metadata": {"name": "s"}, "spec": {"provider": {"vault": vault}}}),
    };
    let kubernetes = |role: &str| json!({"kubernetes": {"role": role, "mountPath": "kubernetes"}});
    for server in [
        "http://openbao.openbao.svc:8200",
        "https://user:pw@OpenBao.OpenBao.svc.cluster.local.:8200/v1?x#y",
        "openbao.openbao:8200",
        "http://openbao.openbao./",
    ] {
        out.push(store(
            &format!("acme's role at {server}"),
            json!({"server": server, "path": "secret", "version": "v2", "auth": kubernetes(&acme)}),
        ));
    }
    for (label, vault) in [
        (
            "team's role",
            json!({"server": "http://openbao.openbao.svc:8200", "path": "/secret/",
                               "auth": kubernetes(&team)}),
        ),
        (
            "another mount, KV v1",
            json!({"server": "http://openbao.openbao.svc:8200",
                                         "path": "infra", "version": "v1",
                                         "auth": kubernetes(&acme)}),
        ),
        (
            "no mount",
            json!({"server": "http://openbao.openbao.svc:8200", "auth": kubernetes(&acme)}),
        ),
        (
            "another auth mount",
            json!({"server": "http://openbao.openbao.svc:8200", "path": "secret",
                                       "auth": {"kubernetes": {"role": acme, "mountPath": "/k8s-b/"}}}),
        ),
        (
            "token and userpass auth",
            json!({"server": "http://openbao.openbao.svc:8200",
                                            "path": "secret",
                                            "auth": {"userPass": {"path": "userpass", "username": "u"},
                                                     "tokenSecretRef": {"name": "t", "key": "k"}}}),
        ),
        (
            "every offence at once",
            json!({"server": "HTTP://openbao.openbao.SVC:8200", "path": "infra",
                                          "version": "v1",
                                          "auth": {"appRole": {"path": "approle", "roleId": "r",
                                                               "secretRef": {"name": "s", "key": "k"}},
                                                   "kubernetes": {"role": "root", "mountPath": "other"}}}),
        ),
        (
            "another server",
            json!({"server": "https://vault.example.com", "path": "infra",
                                   "auth": {"tokenSecretRef": {"name": "t", "key": "k"}}}),
        ),
        (
            "the platform's by IP",
            json!({"server": "http://[fd00::1]:8200", "path": "infra",
                                         "auth": kubernetes("root")}),
        ),
    ] {
        out.push(store(label, vault));
    }
    out
}

/// The namespaces the network-policy cases name, by role: (acme, acme's second namespace,
/// team, open, a peer of acme's, a peer of team's). Each tenant's own, peers and the
/// platform's shared ones (kube-system for DNS, gateway-system) differ per tenant, so one set
/// of cases reaches allowed and refused namespaces in every scenario.
fn network_names(pid: u32) -> [String; 6] {
    [
        format!("vap-e2e-{pid}-acme"),
        format!("vap-e2e-{pid}-acme-dev"),
        format!("vap-e2e-{pid}-team"),
        format!("vap-e2e-{pid}-open"),
        "monitoring".to_owned(),
        "ci".to_owned(),
    ]
}

/// NetworkPolicies and CiliumNetworkPolicies naming namespaces every way the engine reads:
/// by name (label or Cilium key, with and without a source prefix), by the tenant label and
/// other labels, by every operator, every namespace at once, cluster and node entities,
/// services in other namespaces, several specs, deny rules, and several offences in one
/// object (the first reported is the engine's first).
fn network_cases(pid: u32) -> Vec<Case> {
    let [acme, acme_dev, team, open, monitoring, ci] = network_names(pid);
    let tenant_label = "tenantry.dev/tenant";
    let mut out = Vec::new();
    let kubernetes = |label: &str, direction: &str, peers: Value| Case {
        label: format!("network: networkpolicy {direction} {label}"),
        object: json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                       "metadata": {"name": "n"},
                       "spec": {"podSelector": {}, direction: [{
                           if direction == "ingress" { "from" } else { "to" }: peers}]}}),
    };
    let by_name = |ns: &str| {
        json!({"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": ns}}})
    };
    for direction in ["ingress", "egress"] {
        for ns in [
            &acme,
            &acme_dev,
            &team,
            &open,
            &monitoring,
            &ci,
            "kube-system",
            "gateway-system",
            "default",
        ] {
            out.push(kubernetes(
                &format!("names {ns}"),
                direction,
                json!([by_name(ns)]),
            ));
        }
        out.push(kubernetes(
            "selects every namespace",
            direction,
            json!([{"namespaceSelector": {}}]),
        ));
        out.push(kubernetes(
            "empty lists select every namespace",
            direction,
            json!([{"namespaceSelector": {"matchLabels": {},
                                                          "matchExpressions": []}}]),
        ));
        out.push(kubernetes(
            "pods and blocks only",
            direction,
            json!([{"podSelector": {"matchLabels": {"app": "x"}}},
                                   {"ipBlock": {"cidr": "10.0.0.0/8"}}]),
        ));
    }
    for tenant in [&acme, &team, &open, "other"] {
        out.push(kubernetes(
            &format!("tenant label {tenant}"),
            "ingress",
            json!([{"namespaceSelector": {"matchLabels": {tenant_label: tenant}}}]),
        ));
    }
    out.push(kubernetes(
        "other label",
        "ingress",
        json!([{"namespaceSelector": {"matchLabels": {"team": "acme"}}}]),
    ));
    out.push(kubernetes(
        "two labels (sorted)",
        "ingress",
        json!([{"namespaceSelector": {"matchLabels": {
                            "zone": "a", "kubernetes.io/metadata.name": "default",
                            "app.kubernetes.io/part-of": "x"}}}]),
    ));
    for (operator, values) in [
        ("In", json!([&acme, "default", "kube-system"])),
        ("In", json!([&team, &monitoring])),
        ("NotIn", json!([&acme])),
        ("Exists", Value::Null),
        ("DoesNotExist", Value::Null),
    ] {
        for key in ["kubernetes.io/metadata.name", tenant_label, "team"] {
            let mut expression = json!({"key": key, "operator": operator});
            if !values.is_null() {
                expression["values"] = values.clone();
            }
            out.push(kubernetes(
                &format!("{key} {operator} {values}"),
                "egress",
                json!([{"namespaceSelector": {"matchExpressions": [expression]}}]),
            ));
        }
    }
    out.push(kubernetes(
        "several offences",
        "egress",
        json!([
        by_name(&acme), by_name("default"),
        {"namespaceSelector": {"matchExpressions": [
            {"key": tenant_label, "operator": "In", "values": [&acme, "other"]}]},
         "podSelector": {}},
        {"namespaceSelector": {}}]),
    ));
    let two_rules = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "n"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                 "egress": [{"to": [by_name("default")]}],
                 "ingress": [{"from": [by_name(&acme)]}, {"from": [by_name(&ci)]}]}});
    out.push(Case {
        label: "network: networkpolicy ingress and egress".to_owned(),
        object: two_rules,
    });

    let cilium = |label: &str, spec: Value| Case {
        label: format!("network: cilium {label}"),
        object: json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                       "metadata": {"name": "n"}, "spec": spec}),
    };
    let endpoints = |direction: &str, selector: Value| {
        let (rule, peers) = if direction == "ingress" {
            ("ingress", "fromEndpoints")
        } else {
            ("egress", "toEndpoints")
        };
        json!({"endpointSelector": {}, rule: [{peers: [selector]}]})
    };
    for direction in ["ingress", "egress"] {
        for key in [
            "k8s:io.kubernetes.pod.namespace",
            "io.kubernetes.pod.namespace",
            "any:io.kubernetes.pod.namespace",
            "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name",
        ] {
            for ns in [&acme, &team, &monitoring, &ci, "kube-system", "default"] {
                out.push(cilium(
                    &format!("{direction} {key}={ns}"),
                    endpoints(direction, json!({"matchLabels": {key: ns}})),
                ));
            }
        }
        for (key, value) in [
            (
                "k8s:io.cilium.k8s.namespace.labels.tenantry.dev/tenant",
                acme.as_str(),
            ),
            (
                "io.cilium.k8s.namespace.labels.tenantry.dev/tenant",
                team.as_str(),
            ),
            ("k8s:io.cilium.k8s.namespace.labels.team", "acme"),
            ("k8s:app", "web"),
            ("other:io.kubernetes.pod.namespace", "default"),
        ] {
            out.push(cilium(
                &format!("{direction} {key}={value}"),
                endpoints(direction, json!({"matchLabels": {key: value}})),
            ));
        }
        for (key, operator, values) in [
            ("k8s:io.kubernetes.pod.namespace", "NotIn", json!([&acme])),
            (
                "k8s:io.kubernetes.pod.namespace",
                "In",
                json!([&acme, "default"]),
            ),
            (
                "io.cilium.k8s.namespace.labels.tenantry.dev/tenant",
                "In",
                json!([&team, &acme]),
            ),
            ("k8s:io.kubernetes.pod.namespace", "Exists", json!([])),
            ("k8s:app", "NotIn", json!(["x"])),
        ] {
            out.push(cilium(
                &format!("{direction} {key} {operator} {values}"),
                endpoints(
                    direction,
                    json!({"matchExpressions": [
                                {"key": key, "operator": operator, "values": values}]}),
                ),
            ));
        }
        out.push(cilium(
            &format!("{direction} every endpoint of its namespace"),
            endpoints(direction, json!({})),
        ));
    }
    for entities in [
        json!(["cluster"]),
        json!(["world", "all"]),
        json!(["host"]),
        json!(["remote-node", "kube-apiserver"]),
        json!(["world"]),
    ] {
        out.push(cilium(
            &format!("ingress entities {entities}"),
            json!({"endpointSelector": {}, "ingress": [{"fromEntities": entities}]}),
        ));
        out.push(cilium(
            &format!("egress entities {entities}"),
            json!({"endpointSelector": {}, "egress": [{"toEntities": entities}]}),
        ));
    }
    for ns in [&acme, &monitoring, "default"] {
        out.push(cilium(
            &format!("egress to a service in {ns}"),
            json!({
            "endpointSelector": {},
            "egress": [{"toServices": [
                {"k8sService": {"serviceName": "web", "namespace": ns}},
                {"k8sServiceSelector": {"selector": {}, "namespace": ns}}]}]}),
        ));
    }
    out.push(cilium(
        "deny rules only",
        json!({"endpointSelector": {},
        "ingressDeny": [{"fromEntities": ["cluster"]}],
        "egressDeny": [{"toEntities": ["all"]}]}),
    ));
    out.push(cilium("several offences", json!({"endpointSelector": {},
        "ingress": [{"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": &ci}}],
                     "fromEntities": ["cluster"]}],
        "egress": [{"toEndpoints": [{"matchLabels": {
                        "k8s:io.kubernetes.pod.namespace": "default",
                        "k8s:io.cilium.k8s.namespace.labels.team": "x"}}],
                    "toEntities": ["host"],
                    "toServices": [{"k8sService": {"serviceName": "a", "namespace": "default"}}]}]})));
    let mut specs = cilium(
        "specs",
        json!({"endpointSelector": {},
        "egress": [{"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": &acme}}]}]}),
    );
    specs.object["specs"] = json!([
        {"endpointSelector": {}, "ingress": [{"fromEndpoints": [
            {"matchLabels": {"k8s:io.kubernetes.pod.namespace": &team}}]}]},
        {"endpointSelector": {}, "egress": [{"toEntities": ["remote-node"]}]}]);
    out.push(specs);
    let mut only_specs = cilium("specs only", json!(null));
    only_specs.object.as_object_mut().map(|o| o.remove("spec"));
    only_specs.object["specs"] = json!([
        {"endpointSelector": {}, "egress": [{"toEndpoints": [
            {"matchLabels": {"k8s:io.kubernetes.pod.namespace": &monitoring}}]}]}]);
    out.push(only_specs);
    out
}

#[test]
#[ignore = "needs a real API server: set TENANTRY_E2E_KUBECONFIG"]
fn generated_policies_decide_what_the_engine_decides() {
    let Some(kubeconfig) = std::env::var_os("TENANTRY_E2E_KUBECONFIG") else {
        panic!("set TENANTRY_E2E_KUBECONFIG to the admin kubeconfig of a test API server");
    };
    let rt = runtime();
    rt.block_on(run(PathBuf::from(kubeconfig)));
}

/// Objects created before the policies are installed, each violating compiled checks.
fn legacy_objects() -> Vec<Value> {
    let mut privileged = good_pod("legacy");
    privileged["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true);
    privileged["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] =
        json!(true);
    vec![
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "legacy"},
               "spec": {"type": "NodePort", "ports": [{"port": 80}]}}),
        deployment("legacy", &privileged),
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
               "metadata": {"name": "legacy"},
               "spec": {"secretStoreRef": {"kind": "ClusterSecretStore", "name": "platform"},
                        "target": {"name": "t"},
                        "data": [{"secretKey": "k", "remoteRef": {"key": "x"}}]}}),
        deployment("legacy-tolerations", &{
            let mut pod = good_pod("legacy-tolerations");
            pod["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
            pod
        }),
        deployment("legacy-classes", &{
            let mut pod = good_pod("legacy-classes");
            pod["spec"]["priorityClassName"] = json!("system-node-critical");
            pod
        }),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "legacy"},
               "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "other",
                        "resources": {"requests": {"storage": "1Gi"}}}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "legacy"},
               "spec": {"podSelector": {}, "egress": [{"to": [{"namespaceSelector":
                   {"matchLabels": {"kubernetes.io/metadata.name": "default"}}}]}]}}),
        json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
               "metadata": {"name": "legacy"},
               "spec": {"endpointSelector": {}, "egress": [{"toEntities": ["cluster"]}]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "legacy"},
               "spec": {"ingressClassName": "other",
                        "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}}),
        json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
               "metadata": {"name": "legacy"},
               "spec": {"provider": {"vault": {
                   "server": "http://openbao.openbao.svc:8200", "path": "infra",
                   "auth": {"kubernetes": {"role": "root", "mountPath": "kubernetes"}}}}}}),
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
               "metadata": {"name": "legacy-keys"},
               "spec": {"secretStoreRef": {"kind": "SecretStore", "name": "openbao"},
                        "target": {"name": "t"},
                        "data": [{"secretKey": "k", "remoteRef": {"key": "infra/x"}}]}}),
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
               "metadata": {"name": "legacy"},
               "spec": {"interval": "5m", "prune": true, "targetNamespace": "default",
                        "sourceRef": {"kind": "GitRepository", "name": "app",
                                      "namespace": "flux-system"}}}),
    ]
}

type Edit = fn(&mut Value);

/// (label, object name, kind, change) for the update cases.
fn update_cases() -> Vec<(&'static str, &'static str, &'static str, Edit)> {
    vec![
        (
            "service: relabelled, keeps its node port",
            "legacy",
            "Service",
            |o| {
                o["metadata"]["labels"] = json!({"touched": "yes"});
            },
        ),
        ("service: adds an external IP", "legacy", "Service", |o| {
            o["spec"]["externalIPs"] = json!(["203.0.113.9"]);
        }),
        (
            "service: becomes a LoadBalancer",
            "legacy",
            "Service",
            |o| {
                o["spec"]["type"] = json!("LoadBalancer");
            },
        ),
        (
            "deployment: scaled, same template",
            "legacy",
            "Deployment",
            |o| {
                o["spec"]["replicas"] = json!(2);
            },
        ),
        (
            "deployment: relabelled, same template",
            "legacy",
            "Deployment",
            |o| {
                o["metadata"]["labels"] = json!({"touched": "yes"});
            },
        ),
        (
            "deployment: template changed",
            "legacy",
            "Deployment",
            |o| {
                o["spec"]["template"]["metadata"]["annotations"] = json!({"restartedAt": "now"});
            },
        ),
        (
            "deployment: template node name",
            "legacy",
            "Deployment",
            |o| {
                o["spec"]["template"]["spec"]["nodeName"] = json!("node-a");
            },
        ),
        (
            "tolerations deployment: scaled, keeps tolerating every taint",
            "legacy-tolerations",
            "Deployment",
            |o| {
                o["spec"]["replicas"] = json!(2);
            },
        ),
        (
            "tolerations deployment: adds a keyed toleration, keeps every taint",
            "legacy-tolerations",
            "Deployment",
            |o| {
                o["spec"]["template"]["spec"]["tolerations"] = json!([
                    {"operator": "Exists"},
                    {"key": "dedicated", "operator": "Exists"},
                ]);
            },
        ),
        (
            "tolerations deployment: tolerates dedicated only",
            "legacy-tolerations",
            "Deployment",
            |o| {
                o["spec"]["template"]["spec"]["tolerations"] =
                    json!([{"key": "dedicated", "operator": "Exists"}]);
            },
        ),
        (
            "classes deployment: scaled, keeps its PriorityClass",
            "legacy-classes",
            "Deployment",
            |o| {
                o["spec"]["replicas"] = json!(2);
            },
        ),
        (
            "classes deployment: template changed, same classes",
            "legacy-classes",
            "Deployment",
            |o| {
                o["spec"]["template"]["metadata"]["annotations"] = json!({"restartedAt": "now"});
            },
        ),
        (
            "classes deployment: adds a RuntimeClass",
            "legacy-classes",
            "Deployment",
            |o| {
                o["spec"]["template"]["spec"]["runtimeClassName"] = json!("gvisor");
            },
        ),
        (
            "classes claim: relabelled, keeps its StorageClass",
            "legacy",
            "PersistentVolumeClaim",
            |o| {
                o["metadata"]["labels"] = json!({"touched": "yes"});
            },
        ),
        (
            "classes ingress: relabelled, keeps its IngressClass",
            "legacy",
            "Ingress",
            |o| {
                o["metadata"]["labels"] = json!({"touched": "yes"});
            },
        ),
        (
            "classes ingress: changes its IngressClass",
            "legacy",
            "Ingress",
            |o| {
                o["spec"]["ingressClassName"] = json!("other-2");
            },
        ),
        (
            "classes ingress: adds the legacy annotation beside its field",
            "legacy",
            "Ingress",
            |o| {
                o["metadata"]["annotations"] = json!({"kubernetes.io/ingress.class": "nginx"});
            },
        ),
        (
            "network policy: relabelled, keeps naming default",
            "legacy",
            "NetworkPolicy",
            |o| {
                o["metadata"]["labels"] = json!({"touched": "yes"});
            },
        ),
        (
            "network policy: keeps naming default, adds another namespace",
            "legacy",
            "NetworkPolicy",
            |o| {
                if let Some(to) = o["spec"]["egress"][0]["to"].as_array_mut() {
                    to.push(json!({"namespaceSelector":
                        {"matchLabels": {"kubernetes.io/metadata.name": "elsewhere"}}}));
                }
            },
        ),
        (
            "network policy: its offence moved to a new rule",
            "legacy",
            "NetworkPolicy",
            |o| {
                let old = o["spec"]["egress"][0].clone();
                o["spec"]["egress"] = json!([{"to": [{"podSelector": {}}]}, old]);
            },
        ),
        (
            "cilium policy: relabelled, keeps the cluster entity",
            "legacy",
            "CiliumNetworkPolicy",
            |o| {
                o["metadata"]["labels"] = json!({"touched": "yes"});
            },
        ),
        (
            "cilium policy: adds ingress from every entity",
            "legacy",
            "CiliumNetworkPolicy",
            |o| {
                o["spec"]["ingress"] = json!([{"fromEntities": ["all"]}]);
            },
        ),
        (
            "secret store: relabelled, keeps its mount and role",
            "legacy",
            "SecretStore",
            |o| {
                o["metadata"]["labels"] = json!({"touched": "yes"});
            },
        ),
        (
            "secret store: logs in as another role",
            "legacy",
            "SecretStore",
            |o| {
                o["spec"]["provider"]["vault"]["auth"]["kubernetes"]["role"] = json!("root-2");
            },
        ),
        (
            "external secret: relabelled, keeps its key outside the path",
            "legacy-keys",
            "ExternalSecret",
            |o| {
                o["metadata"]["labels"] = json!({"touched": "yes"});
            },
        ),
        (
            "external secret: reads a second key outside the path",
            "legacy-keys",
            "ExternalSecret",
            |o| {
                if let Some(data) = o["spec"]["data"].as_array_mut() {
                    data.push(json!({"secretKey": "k2", "remoteRef": {"key": "infra/y"}}));
                }
            },
        ),
        (
            "flux kustomization: relabelled, keeps every offence",
            "legacy",
            "Kustomization",
            |o| {
                o["metadata"]["labels"] = json!({"touched": "yes"});
            },
        ),
        (
            "flux kustomization: adds another kubeconfig",
            "legacy",
            "Kustomization",
            |o| {
                o["spec"]["kubeConfig"] = json!({"secretRef": {"name": "admin-kubeconfig"}});
            },
        ),
        (
            "flux kustomization: adds a dependency elsewhere, keeps its source elsewhere",
            "legacy",
            "Kustomization",
            |o| {
                o["spec"]["dependsOn"] = json!([{"name": "infra", "namespace": "other"}]);
            },
        ),
        (
            "external secret: relabelled, keeps its cluster store",
            "legacy",
            "ExternalSecret",
            |o| {
                o["metadata"]["labels"] = json!({"touched": "yes"});
            },
        ),
        (
            "external secret: adds a cluster generator",
            "legacy",
            "ExternalSecret",
            |o| {
                o["spec"]["dataFrom"] = json!([{"sourceRef": {"generatorRef": {
                "apiVersion": "generators.external-secrets.io/v1alpha1",
                "kind": "ClusterGenerator", "name": "gen"}}}]);
            },
        ),
    ]
}

/// One configuration judged on one namespace.
struct Scenario {
    name: &'static str,
    engine: Engine,
    /// Per-tenant policies: the namespace's tenant first (its name is the tenant label's
    /// value), then tenants whose bindings and parameters are installed beside it. Empty: no
    /// tenant (the label's value is `vap-e2e`).
    tenants: Vec<TenantInfo>,
    /// The namespace's Pod Security labels besides the tenant label.
    pod_security: &'static [(&'static str, &'static str)],
    cases: Vec<Case>,
}

async fn run(kubeconfig: PathBuf) {
    let user_client_for = |user: UserInfo| {
        let path = kubeconfig.clone();
        async move { client(&path, Some(&user)).await }
    };
    let client = client(&kubeconfig, None).await;
    let pid = std::process::id();
    // The admin (a platform identity: restrict-network-policies never judges it), and a
    // tenant-side user for the per-tenant scenarios, in a group bound to cluster-admin so RBAC
    // never stops a request before admission.
    let admin = UserInfo {
        username: "platform-admin".to_owned(),
        groups: vec!["system:masters".to_owned()],
    };
    let tenant_user = UserInfo {
        username: format!("vap-e2e-{pid}-user"),
        groups: vec![format!("vap-e2e-{pid}-admins")],
    };
    let rbac_url =
        format!("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/vap-e2e-{pid}-admins");
    let (status, body, _) = send(
        &client,
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        Some(
            &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                     "metadata": {"name": format!("vap-e2e-{pid}-admins")},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                 "name": "cluster-admin"},
                     "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                   "name": tenant_user.groups[0]}]}),
        ),
    )
    .await;
    assert_eq!(status, 201, "binding the tenant-side user: {body}");
    let user_client = user_client_for(tenant_user.clone()).await;
    let platform = tenantry_core::document::parse_platform(PLATFORM).expect("platform");
    let base = Engine::new(&platform).with_max_findings(None);
    let restricted = |policies: Option<&[String]>| {
        base.clone()
            .with_selection(policies, Some(Level::Restricted), None)
            .expect("selection")
    };
    let mut compiled_policies: Vec<String> = vap::compiled_checks(&restricted(None))
        .iter()
        .filter(|c| !c.per_tenant)
        .map(|c| c.policy.to_owned())
        .collect();
    compiled_policies.dedup();
    let pod_security = ["pod-security".to_owned()];
    let labelled = base
        .clone()
        .with_selection(Some(&pod_security), None, None)
        .expect("selection");
    let (corpus, corpus_files) = corpus_cases();
    let deployments = || -> Vec<Case> {
        corpus_cases()
            .0
            .into_iter()
            .filter(|c| c.object["kind"] == "Deployment")
            .collect()
    };
    let mut all_cases = platform_cases();
    // Flux's references are judged platform-wide (the tenant's identity is per tenant).
    all_cases.extend(flux_cases(pid));
    let platform_count = all_cases.len();
    all_cases.extend(corpus_cases().0);
    println!(
        "corpus: {} distinct pods from {corpus_files} files",
        corpus.len() / 2
    );
    let privileged: &[(&str, &str)] = &[("pod-security.kubernetes.io/enforce", "privileged")];
    let per_tenant = base
        .clone()
        .with_selection(
            Some(&[
                "allowed-registries".to_owned(),
                "restrict-network-policies".to_owned(),
                "tenant-placement".to_owned(),
                "allowed-classes".to_owned(),
                "flux-lockdown".to_owned(),
                "restrict-secret-stores".to_owned(),
            ]),
            None,
            None,
        )
        .expect("selection");
    // Three tenants with different values, all installed at once: what one tenant may do
    // never lets another's namespace through.
    let acme = tenant(
        &format!("vap-e2e-{pid}-acme"),
        &["ghcr.io/acme", "docker.io/library"],
        &[("pool", "a")],
        // The platform's bound, as a tenant without a list of its own resolves it.
        Some(vec![AllowedToleration {
            key: "dedicated".to_owned(),
            operator: Some(TolerationOperator::Equal),
            value: Some("shop".to_owned()),
            effect: Some(TaintEffect::NoSchedule),
        }]),
        Classes {
            priority: class_list(&["acme-high"], Some("acme-high")),
            runtime: class_list(&["gvisor"], None),
            storage: class_list(&["fast", "standard"], Some("standard")),
            ingress: class_list(&["nginx"], None),
            gateway: class_list(&["acme-gw"], None),
        },
    );
    let team = tenant(
        &format!("vap-e2e-{pid}-team"),
        &[
            "registry.local:5000/team/",
            "localhost",
            "[::1]:5000",
            "Index.Docker.io/acme",
        ],
        &[("zone", "z"), ("pool", "b")],
        // Any value of `dedicated`, one `gpu` value with an effect, and every taint, but only
        // with PreferNoSchedule.
        Some(vec![
            allowed("dedicated", None, None),
            allowed("gpu", Some("true"), Some(TaintEffect::NoExecute)),
            allowed("", None, Some(TaintEffect::PreferNoSchedule)),
        ]),
        // A system-* PriorityClass of its own, an empty RuntimeClass list (none allowed), no
        // IngressClass list (not restricted).
        Classes {
            priority: class_list(&["team-low", "system-cluster-critical"], None),
            runtime: class_list(&[], None),
            storage: class_list(&["team-ssd"], Some("team-ssd")),
            ingress: None,
            gateway: class_list(&["team-gw"], Some("team-gw")),
        },
    );
    // No list at all: any keyed toleration.
    let open = tenant(
        &format!("vap-e2e-{pid}-open"),
        &[],
        &[],
        None,
        Classes::default(),
    );
    // Their namespaces and peers, for restrict-network-policies.
    let [acme_ns, acme_dev, _, _, monitoring, ci] = network_names(pid);
    let mut acme = acme;
    acme.namespaces = vec![acme_ns.clone(), acme_dev];
    acme.network_peers = vec![monitoring, "gateway-system".to_owned()];
    acme.proxy_kubeconfig_secret = Some("acme-proxy".to_owned());
    let mut team = team;
    team.network_peers = vec![acme_ns, ci];
    team.proxy_kubeconfig_secret = Some("team-proxy".to_owned());
    // What one tenant may use never passes in another's namespace (the engine says so here;
    // the scenarios below show the policies decide as the engine does).
    for (own, other, object) in [
        (&acme, &team, "acme-high"),
        (&team, &acme, "team-low"),
        (&team, &open, "system-cluster-critical"),
    ] {
        let mut pod = good_pod("c");
        pod["spec"]["priorityClassName"] = json!(object);
        let object = deployment("c", &pod);
        let compiled: BTreeSet<&str> = ["priority-class"].into();
        let ns = |t: &TenantInfo| NamespaceInfo {
            name: t.name.clone(),
            labels: BTreeMap::from([(per_tenant.tenant_label().to_owned(), t.name.clone())]),
        };
        let denies = |t: &TenantInfo| {
            engine_denies(
                &per_tenant,
                &compiled,
                &ns(t),
                Some(t),
                &admin,
                &object,
                None,
            )
        };
        assert!(denies(own).is_empty(), "{} may use its own class", own.name);
        assert_eq!(
            denies(other).len(),
            1,
            "{}'s class passed for {}",
            own.name,
            other.name
        );
    }
    let per_tenant_cases = || {
        let mut cases = registry_cases();
        cases.extend(network_cases(pid));
        cases.extend(node_selector_cases());
        cases.extend(toleration_cases());
        cases.extend(class_cases());
        cases.extend(flux_cases(pid));
        cases.extend(secret_store_cases(pid));
        cases
    };
    let all_tenants = [acme.clone(), team.clone(), open.clone()];
    let with_first = |first: &TenantInfo| -> Vec<TenantInfo> {
        let mut out = vec![first.clone()];
        out.extend(all_tenants.iter().filter(|t| t.name != first.name).cloned());
        out
    };
    let scenarios = [
        Scenario {
            name: "per tenant: allowed-registries, network-policy-reach, node-selector, \
                   tolerations, allowed-classes, flux-lockdown and restrict-secret-stores, tenant acme (ghcr.io/acme, \
                   docker.io/library; two namespaces, peers monitoring and gateway-system; \
                   pool=a; dedicated=shop:NoSchedule; a list of every class kind)",
            engine: per_tenant.clone(),
            tenants: with_first(&acme),
            pod_security: privileged,
            cases: per_tenant_cases(),
        },
        Scenario {
            name: "per tenant: allowed-registries, network-policy-reach, node-selector, \
                   tolerations, allowed-classes, flux-lockdown and restrict-secret-stores, tenant team (registry.local:5000/team, \
                   localhost, [::1]:5000, docker.io/acme; peers acme and ci; zone=z, pool=b; dedicated (any value), \
                   gpu=true:NoExecute, every taint:PreferNoSchedule; system-cluster-critical \
                   allowed, no RuntimeClass, any IngressClass)",
            engine: per_tenant.clone(),
            tenants: with_first(&team),
            pod_security: privileged,
            cases: per_tenant_cases(),
        },
        Scenario {
            name: "per tenant: allowed-registries, network-policy-reach, node-selector, \
                   tolerations, allowed-classes, flux-lockdown and restrict-secret-stores, tenant open (no registries, no peers, no \
                   node selector, no toleration list: any key, no class lists: only system-* \
                   PriorityClasses refused)",
            engine: per_tenant,
            tenants: with_first(&open),
            pod_security: privileged,
            cases: per_tenant_cases(),
        },
        Scenario {
            name: "every compiled policy, Pod Security fixed at restricted",
            engine: restricted(Some(&compiled_policies)),
            tenants: Vec::new(),
            pod_security: privileged,
            cases: all_cases,
        },
        Scenario {
            name: "pod-security only, fixed at restricted",
            engine: restricted(Some(&pod_security)),
            tenants: Vec::new(),
            pod_security: privileged,
            cases: corpus,
        },
        // The level and version read from the namespace's labels. Deployments only: the
        // PodSecurity plugin only warns about them, so it never refuses first.
        Scenario {
            name: "pod-security only, namespace enforce=baseline enforce-version=v1.24",
            engine: labelled.clone(),
            tenants: Vec::new(),
            pod_security: &[
                ("pod-security.kubernetes.io/enforce", "baseline"),
                ("pod-security.kubernetes.io/enforce-version", "v1.24"),
            ],
            cases: deployments(),
        },
        Scenario {
            name: "pod-security only, namespace enforce=baseline enforce-version=v1.18 \
                   (seccomp annotations)",
            engine: labelled.clone(),
            tenants: Vec::new(),
            pod_security: &[
                ("pod-security.kubernetes.io/enforce", "baseline"),
                ("pod-security.kubernetes.io/enforce-version", "v1.18"),
            ],
            cases: deployments(),
        },
        Scenario {
            name: "pod-security only, namespace enforce=baseline, no version (platform's)",
            engine: labelled.clone(),
            tenants: Vec::new(),
            pod_security: &[("pod-security.kubernetes.io/enforce", "baseline")],
            cases: deployments(),
        },
        Scenario {
            name: "pod-security only, namespace enforce=restricted enforce-version=v1.20",
            engine: labelled.clone(),
            tenants: Vec::new(),
            pod_security: &[
                ("pod-security.kubernetes.io/enforce", "restricted"),
                ("pod-security.kubernetes.io/enforce-version", "v1.20"),
            ],
            cases: deployments(),
        },
        Scenario {
            name: "pod-security only, namespace enforce=restricted, no version (platform's)",
            engine: labelled.clone(),
            tenants: Vec::new(),
            pod_security: &[("pod-security.kubernetes.io/enforce", "restricted")],
            cases: deployments(),
        },
        Scenario {
            name: "pod-security only, namespace enforce=restricted enforce-version=v1.999 \
                   (beyond latest)",
            engine: labelled,
            tenants: Vec::new(),
            pod_security: &[
                ("pod-security.kubernetes.io/enforce", "restricted"),
                ("pod-security.kubernetes.io/enforce-version", "v1.999"),
            ],
            cases: deployments(),
        },
    ];
    println!("platform cases: {platform_count}");

    // The per-tenant parameters' kind, created here unless it exists (and then removed at
    // the end).
    let crd = vap::params_crd();
    let crd_url = format!(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{}",
        crd["metadata"]["name"].as_str().unwrap_or("")
    );
    let (status, body, _) = send(
        &client,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        Some(&crd),
    )
    .await;
    assert!(status == 201 || status == 409, "creating the CRD: {body}");
    let created_crd = status == 201;
    if !created_crd {
        // Installed by an older run or build: give it this schema (a superset: new fields are
        // optional), or the API server prunes the fields the policies read.
        let (_, live, _) = send(&client, "GET", &crd_url, None).await;
        if live["spec"]["versions"] != crd["spec"]["versions"] {
            let mut updated = crd.clone();
            updated["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"].clone();
            let (status, body, _) = send(&client, "PUT", &crd_url, Some(&updated)).await;
            assert_eq!(status, 200, "updating the CRD's schema: {body}");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, live, _) = send(&client, "GET", &crd_url, None).await;
        let established = live["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        });
        if established {
            break;
        }
        assert!(Instant::now() < deadline, "CRD not established: {live}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut failures = Vec::new();
    // `TENANTRY_E2E_SCENARIO=registries` runs only the scenarios whose name contains it.
    let only = std::env::var("TENANTRY_E2E_SCENARIO").unwrap_or_default();
    for (i, scenario) in scenarios.iter().enumerate() {
        if !scenario.name.contains(&only) {
            continue;
        }
        let ns = format!("vap-e2e-{pid}-{i}");
        let prefix = format!("vap-e2e-{pid}-{i}-");
        let tenant_name = scenario
            .tenants
            .first()
            .map_or("vap-e2e".to_owned(), |t| t.name.clone());
        let mut labels = BTreeMap::from([(scenario.engine.tenant_label().to_owned(), tenant_name)]);
        for (k, v) in scenario.pod_security {
            labels.insert((*k).to_owned(), (*v).to_owned());
        }
        let namespace = NamespaceInfo {
            name: ns.clone(),
            labels: labels.clone(),
        };
        let (status, body, _) = send(
            &client,
            "POST",
            "/api/v1/namespaces",
            Some(&json!({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": ns, "labels": labels}})),
        )
        .await;
        assert_eq!(status, 201, "creating namespace {ns}: {body}");
        // Per-tenant checks only where the scenario installs tenants' bindings.
        let compiled: BTreeSet<&str> = vap::compiled_checks(&scenario.engine)
            .iter()
            .filter(|c| !c.per_tenant || !scenario.tenants.is_empty())
            .map(|c| c.check)
            .collect();
        println!("\n== {}", scenario.name);
        let per_tenant = scenario.name.starts_with("per tenant");
        let setup = Setup {
            engine: &scenario.engine,
            tenants: &scenario.tenants,
            prefix: &prefix,
            user: if per_tenant { &tenant_user } else { &admin },
        };
        let outcome = std::panic::AssertUnwindSafe(differential(
            if per_tenant { &user_client } else { &client },
            &setup,
            &compiled,
            &namespace,
            &scenario.cases,
            scenario.name.starts_with("every compiled policy")
                || scenario.name.starts_with("per tenant"),
        ));
        let result = futures_catch(outcome).await;
        cleanup(&client, &setup, &ns).await;
        match result {
            Ok(mut found) => failures.append(&mut found),
            Err(panic) => {
                let _ = send(&client, "DELETE", &rbac_url, None).await;
                if created_crd {
                    let _ = send(&client, "DELETE", &crd_url, None).await;
                }
                std::panic::resume_unwind(panic)
            }
        }
    }
    let _ = send(&client, "DELETE", &rbac_url, None).await;
    if created_crd {
        let _ = send(&client, "DELETE", &crd_url, None).await;
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

async fn futures_catch<T, F: std::future::Future<Output = T>>(
    f: std::panic::AssertUnwindSafe<F>,
) -> std::thread::Result<T> {
    // A current-thread runtime polls this future on this thread: a panic inside unwinds here.
    let mut f = Box::pin(f.0);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.as_mut().poll(cx))) {
            Ok(std::task::Poll::Ready(value)) => std::task::Poll::Ready(Ok(value)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    })
    .await
}

/// What one scenario installs: the engine's policies under `prefix`, and the per-tenant
/// policies' bindings and parameters for `tenants`.
struct Setup<'a> {
    engine: &'a Engine,
    tenants: &'a [TenantInfo],
    prefix: &'a str,
    /// Who sends the cases (and whom the engine judges them for).
    user: &'a UserInfo,
}

impl Setup<'_> {
    fn documents(&self, ns: &str, actions: Actions) -> Vec<Value> {
        let opts = VapOptions {
            actions,
            name_prefix: self.prefix.to_owned(),
            namespace: Some(ns.to_owned()),
        };
        let mut docs = vap::generate(self.engine, &opts);
        if !self.tenants.is_empty() {
            docs.extend(vap::generate_tenants(self.engine, self.tenants, &opts));
        }
        docs
    }
}

/// The URL of one generated object.
fn object_url(doc: &Value) -> String {
    let name = doc["metadata"]["name"].as_str().unwrap_or("");
    match doc["kind"].as_str() {
        Some("ValidatingAdmissionPolicy") => {
            format!("/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/{name}")
        }
        Some("ValidatingAdmissionPolicyBinding") => format!(
            "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/{name}"
        ),
        _ => format!(
            "/apis/{}/{}/guardrailparameters/{name}",
            vap::PARAMS_GROUP,
            vap::PARAMS_VERSION
        ),
    }
}

async fn cleanup(client: &Client, setup: &Setup<'_>, ns: &str) {
    for doc in setup.documents(ns, Actions::Deny) {
        let _ = send(client, "DELETE", &object_url(&doc), None).await;
    }
    let _ = send(client, "DELETE", &format!("/api/v1/namespaces/{ns}"), None).await;
}

async fn install(client: &Client, setup: &Setup<'_>, ns: &str, actions: Actions) {
    for doc in setup.documents(ns, actions) {
        let name = doc["metadata"]["name"].as_str().unwrap();
        let kind = doc["kind"].as_str().unwrap_or("");
        let url = format!("{}?fieldManager=tenantry-e2e&force=true", object_url(&doc));
        let request = http_request("PATCH", &url)
            .header("content-type", "application/apply-patch+yaml")
            .body(Body::from(serde_json::to_vec(&doc).unwrap()))
            .unwrap();
        let response = client.send(request).await.expect("applying");
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect_bytes()
            .await
            .unwrap_or_default();
        assert!(
            status == 200 || status == 201,
            "applying {kind}/{name}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

/// What the engine denies, restricted to the compiled checks.
#[allow(clippy::too_many_arguments)]
fn engine_denies(
    engine: &Engine,
    compiled: &BTreeSet<&str>,
    namespace: &NamespaceInfo,
    tenant: Option<&TenantInfo>,
    user: &UserInfo,
    object: &Value,
    old: Option<&Value>,
) -> BTreeSet<String> {
    let ctx = Context {
        mode: Mode::Admission,
        operation: if old.is_some() {
            Operation::Update
        } else {
            Operation::Create
        },
        namespace: Some(namespace),
        tenant,
        user: Some(user),
        old_object: old,
    };
    engine_findings(engine, compiled, &ctx, object)
        .into_keys()
        .collect()
}

/// The engine's denials among the compiled checks: each check's first finding, worded as the
/// policies word it (`<check-id>: <message> — <remediation>`; Pod Security's level suffix,
/// which the policies leave out, removed).
fn engine_findings(
    engine: &Engine,
    compiled: &BTreeSet<&str>,
    ctx: &Context<'_>,
    object: &Value,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for v in engine.evaluate(object, ctx) {
        if v.severity != Severity::Deny || !compiled.contains(v.check.as_str()) {
            continue;
        }
        let message = match v.message.find(" (violates PodSecurity ") {
            Some(at) => &v.message[..at],
            None => &v.message,
        };
        out.entry(v.check.clone())
            .or_insert_with(|| format!("{}: {message} — {}", v.check, v.remediation));
    }
    out
}

/// Wait until the policies judge with their new actions: a case each probed policy refuses
/// must come back with its warning (`deny`: refused). The API server compiles new policies
/// and bindings asynchronously; one policy per engine policy is probed, and every policy is
/// given two more seconds.
async fn wait_active(
    client: &Client,
    ns: &str,
    prefix: &str,
    probes: &[(&str, Value)],
    deny: bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for (check, object) in probes {
        loop {
            let answer = dry_run(client, ns, object, prefix).await;
            let refused = answer.status == 403
                && answer.body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("ValidatingAdmissionPolicy"));
            let active = if deny {
                refused
            } else {
                answer.warned.contains(*check)
            };
            if active {
                break;
            }
            // A parameter object the API server has not seen yet (its informer lags).
            let params_pending = answer.body["message"]
                .as_str()
                .is_some_and(|m| m.contains("no params found"));
            assert!(
                answer.status == 201 || refused || params_pending,
                "probe for {check}: {}",
                answer.body
            );
            assert!(
                Instant::now() < deadline,
                "policies not active after 60s (no {check} for the probe): {} {:?} {}",
                answer.status,
                answer.warned,
                answer.body
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// Wait until the API server has seen the tenants' parameters: until then a binding
/// with `parameterNotFoundAction: Deny` refuses everything.
async fn wait_params(client: &Client, ns: &str, prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let probe = deployment("params", &good_pod("params"));
    loop {
        let answer = dry_run(client, ns, &probe, prefix).await;
        let pending = answer.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("no params found"));
        if !pending {
            return;
        }
        assert!(Instant::now() < deadline, "parameters not found after 60s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn summary(name: &str, mut took: Vec<Duration>) -> String {
    took.sort();
    format!(
        "{name}: {} requests, median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
        took.len(),
        percentile(&took, 0.5).as_secs_f64() * 1e3,
        percentile(&took, 0.9).as_secs_f64() * 1e3,
        percentile(&took, 0.99).as_secs_f64() * 1e3,
    )
}

async fn differential(
    client: &Client,
    setup: &Setup<'_>,
    compiled: &BTreeSet<&str>,
    namespace: &NamespaceInfo,
    cases: &[Case],
    updates: bool,
) -> Vec<String> {
    let ns = namespace.name.as_str();
    let (engine, prefix) = (setup.engine, setup.prefix);
    let tenant = setup.tenants.first();

    // Pass 1: no policies.
    let mut without = Vec::new();
    for case in cases {
        without.push(dry_run(client, ns, &case.object, prefix).await.took);
    }

    // Objects admitted before the policies existed, for the update cases.
    let legacy = if updates {
        legacy_objects()
    } else {
        Vec::new()
    };
    for object in &legacy {
        let (status, body, _) = send(client, "POST", &collection(object, ns), Some(object)).await;
        assert_eq!(
            status, 201,
            "creating {}: {body}",
            object["metadata"]["name"]
        );
    }

    // Pass 2: [Warn]; every failing validation is a warning and the object is admitted.
    install(client, setup, ns, Actions::WarnAudit).await;
    let mut privileged = good_pod("probe");
    privileged["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true);
    privileged["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] =
        json!(true);
    let probes: Vec<(&str, Value)> = [
        ("privileged", deployment("probe", &privileged)),
        (
            "node-port",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "probe"},
                   "spec": {"type": "NodePort", "ports": [{"port": 80}]}}),
        ),
        ("registry-not-allowed", {
            let mut pod = good_pod("probe");
            pod["spec"]["containers"][0]["image"] = json!("evil.example/probe");
            deployment("probe", &pod)
        }),
        ("node-selector", deployment("probe", &good_pod("probe"))),
        (
            "network-policy-reach",
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                   "metadata": {"name": "probe"},
                   "spec": {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}}),
        ),
        ("tolerations", {
            let mut pod = good_pod("probe");
            pod["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
            deployment("probe", &pod)
        }),
        ("priority-class", {
            let mut pod = good_pod("probe");
            pod["spec"]["priorityClassName"] = json!("system-node-critical");
            deployment("probe", &pod)
        }),
    ]
    .into_iter()
    .filter(|(check, _)| compiled.contains(check))
    // A tenant with no registries or node selector is not restricted: nothing to probe with.
    .filter(|(check, _)| match *check {
        "registry-not-allowed" => tenant.is_some_and(|t| !t.registries.is_empty()),
        "node-selector" => tenant.is_some_and(|t| t.placement.node_selector.is_some()),
        _ => true,
    })
    .collect();
    if tenant.is_some() {
        wait_params(client, ns, prefix).await;
    }
    wait_active(client, ns, prefix, &probes, false).await;
    let mut refused_by_api = Vec::new();
    let mut disagreements = Vec::new();
    let mut as_sent_differs = Vec::new();
    let mut compared = 0usize;
    let mut messages_compared = 0usize;
    let mut message_differs = Vec::new();
    let mut truncated_by_api = 0usize;
    let mut denied = 0usize;
    let mut admitted_objects: Vec<Option<BTreeSet<String>>> = Vec::new();
    let mut checks_seen: BTreeMap<String, usize> = BTreeMap::new();
    for case in cases {
        let answer = dry_run(client, ns, &case.object, prefix).await;
        if answer.status != 201 {
            let reason = answer.body["message"].as_str().unwrap_or("").to_owned();
            refused_by_api.push(format!("{}: {} {reason}", case.label, answer.status));
            admitted_objects.push(None);
            continue;
        }
        compared += 1;
        let expected = engine_denies(
            engine,
            compiled,
            namespace,
            tenant,
            setup.user,
            &answer.body,
            None,
        );
        let as_sent = engine_denies(
            engine,
            compiled,
            namespace,
            tenant,
            setup.user,
            &case.object,
            None,
        );
        if as_sent != expected {
            as_sent_differs.push(format!(
                "{}: as sent {as_sent:?}, as admitted {expected:?}",
                case.label
            ));
        }
        if !expected.is_empty() {
            denied += 1;
        }
        for id in &expected {
            *checks_seen.entry(id.clone()).or_default() += 1;
        }
        let ctx = Context {
            mode: Mode::Admission,
            operation: Operation::Create,
            namespace: Some(namespace),
            tenant,
            user: Some(setup.user),
            old_object: None,
        };
        let findings = engine_findings(engine, compiled, &ctx, &answer.body);
        // The API server cuts every warning of a response short once their total passes
        // 4 KiB (a reference over 4096 bytes is quoted whole): then each policy message, as far
        // as it was delivered, must be the engine's.
        let cut_short = findings.values().map(String::len).sum::<usize>() > 4096;
        for (check, message) in findings {
            messages_compared += 1;
            match answer.messages.get(&check) {
                Some(got) if *got == message => {}
                Some(got) if cut_short && message.starts_with(got.as_str()) => {
                    truncated_by_api += 1;
                }
                got => message_differs.push(format!(
                    "{}: engine {message:?}\n      policy {got:?}",
                    case.label
                )),
            }
        }
        if expected != answer.warned {
            disagreements.push(format!(
                "{}: engine {expected:?}, policies {:?}",
                case.label, answer.warned
            ));
        }
        admitted_objects.push(Some(expected));
    }

    // Pass 3: [Deny]; the verdict, and the latency the policies add.
    install(client, setup, ns, Actions::Deny).await;
    wait_active(client, ns, prefix, &probes, true).await;
    let mut with = Vec::new();
    let mut verdicts_differ = Vec::new();
    for (case, expected) in cases.iter().zip(&admitted_objects) {
        let answer = dry_run(client, ns, &case.object, prefix).await;
        with.push(answer.took);
        let Some(expected) = expected else { continue };
        let refused = answer.status == 403
            && answer.body["message"]
                .as_str()
                .is_some_and(|m| m.contains("ValidatingAdmissionPolicy"));
        if refused == expected.is_empty() || (answer.status != 201 && !refused) {
            verdicts_differ.push(format!(
                "{}: engine denies {expected:?}, API server answered {} {}",
                case.label, answer.status, answer.body["message"]
            ));
        }
    }

    // Updates of the objects admitted before the policies: the engine's update rules (pod
    // policies only when the pods can change; a violation the old object had is carried over).
    let mut update_count = 0usize;
    let mut update_denied = 0usize;
    for (label, name, kind, edit) in update_cases() {
        let Some(object) = legacy
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        else {
            continue;
        };
        let url = format!("{}/{name}", collection(object, ns));
        let (status, live, _) = send(client, "GET", &url, None).await;
        assert_eq!(status, 200, "reading {url}: {live}");
        let mut changed = live.clone();
        edit(&mut changed);
        let expected = engine_denies(
            engine,
            compiled,
            namespace,
            tenant,
            setup.user,
            &changed,
            Some(&live),
        );
        let (status, body, _) =
            send(client, "PUT", &format!("{url}?dryRun=All"), Some(&changed)).await;
        update_count += 1;
        update_denied += usize::from(!expected.is_empty());
        let refused = status == 403
            && body["message"]
                .as_str()
                .is_some_and(|m| m.contains("ValidatingAdmissionPolicy"));
        if refused == expected.is_empty() || (status != 200 && !refused) {
            verdicts_differ.push(format!(
                "update {label}: engine denies {expected:?}, API server answered {status} {}",
                body["message"]
            ));
        }
    }
    if updates {
        println!(
            "{update_count} update cases, {update_denied} denied by the engine (dry-run PUT of \
             objects admitted before the policies)"
        );
    }

    println!(
        "{} cases: {compared} admitted by the API server and compared ({denied} denied by the \
         engine), {} refused by the API server itself",
        cases.len(),
        refused_by_api.len()
    );
    println!("checks denied (cases): {checks_seen:?}");
    println!("{}", summary("dry-run create without policies", without));
    println!("{}", summary("dry-run create with policies [Deny]", with));
    println!(
        "check-ID disagreements: {}; verdict disagreements (Deny): {}",
        disagreements.len(),
        verdicts_differ.len()
    );
    for line in &refused_by_api {
        println!("  refused by the API server: {line}");
    }
    println!(
        "messages (first finding per check) compared: {messages_compared}, worded differently: \
         {}, cut short by the API server's warning limit (equal as far as delivered): \
         {truncated_by_api}",
        message_differs.len()
    );
    for line in message_differs.iter().take(15) {
        println!("  message differs: {line}");
    }
    for line in &as_sent_differs {
        println!("  engine differs on the object as sent: {line}");
    }
    disagreements.extend(verdicts_differ);
    disagreements.extend(message_differs);
    disagreements
}
