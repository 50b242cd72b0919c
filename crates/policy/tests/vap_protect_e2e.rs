//! `protect-platform-objects` compiled to ValidatingAdmissionPolicy decides what the engine
//! decides, on a real API server, for requests made by someone other than the platform.
//!
//! The policy judges by who asks, so the requests here are sent as an impersonated user
//! (`vapp-user`, in a group bound to `cluster-admin` so RBAC never stops a request before
//! admission) and judged by the engine with the same identity; the same requests as the
//! cluster admin (`system:masters`, exempt) must draw nothing. The policies are installed with
//! `[Warn, Audit]` and bound to one test namespace, so other work on the same API server is
//! not affected, and every failed validation comes back as a warning to compare.
//!
//! ```sh
//! TENANTRY_E2E_KUBECONFIG=~/.cache/tenantry-kube/admin.kubeconfig \
//!   cargo test -p tenantry-policy --test vap_protect_e2e -- --ignored --nocapture
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use tenantry_policy::vap::{self, Actions, VapOptions};
use tenantry_policy::{Context, Engine, Mode, NamespaceInfo, Operation, Severity, UserInfo};

const CHECKS: [&str; 2] = ["managed-object", "namespace-labels"];
const USER: &str = "vapp-user";

fn kubeconfig() -> PathBuf {
    PathBuf::from(
        std::env::var_os("TENANTRY_E2E_KUBECONFIG")
            .expect("set TENANTRY_E2E_KUBECONFIG to a cluster-admin kubeconfig"),
    )
}

async fn client(impersonate: Option<(&str, Vec<String>)>) -> Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig()).expect("reading the kubeconfig");
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    if let Some((user, groups)) = impersonate {
        config.auth_info.impersonate = Some(user.to_owned());
        config.auth_info.impersonate_groups = Some(groups);
    }
    Client::try_from(config).expect("client")
}

/// Send a request; the status, the body and the policies' warnings of this test (`prefix`),
/// each as `<check-id>: <message>`.
async fn send(
    client: &Client,
    method: &str,
    url: &str,
    body: Option<&Value>,
    prefix: &str,
) -> (u16, Value, BTreeMap<String, String>) {
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let mut builder = http::Request::builder().method(method).uri(url);
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let response = client
        .send(builder.body(Body::from(bytes)).unwrap())
        .await
        .expect("sending");
    let status = response.status().as_u16();
    let mut warned = BTreeMap::new();
    for warning in response.headers().get_all("warning") {
        let warning = String::from_utf8_lossy(warning.as_bytes());
        let Some(at) = warning.find(&format!("with binding '{prefix}")) else {
            continue;
        };
        let rest = &warning[at..];
        let Some(start) = rest.find("': ") else {
            continue;
        };
        let message = &rest[start + 3..];
        let message = message.strip_suffix('"').unwrap_or(message);
        let message = message.replace("\\\"", "\"").replace("\\\\", "\\");
        if let Some((check, _)) = message.split_once(": ") {
            warned.insert(check.to_owned(), message.clone());
        }
    }
    let bytes = response.into_body().collect_bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        warned,
    )
}

/// The engine's denials of this policy for the request: each check's first finding, worded
/// as the policies word it.
fn engine_denies(
    engine: &Engine,
    user: &UserInfo,
    operation: Operation,
    namespace: Option<&NamespaceInfo>,
    object: &Value,
    old: Option<&Value>,
) -> BTreeMap<String, String> {
    let ctx = Context {
        mode: Mode::Admission,
        operation,
        namespace,
        tenant: None,
        user: Some(user),
        old_object: old,
    };
    let mut out = BTreeMap::new();
    for v in engine.evaluate(object, &ctx) {
        if v.severity == Severity::Deny && CHECKS.contains(&v.check.as_str()) {
            out.entry(v.check.clone())
                .or_insert_with(|| format!("{}: {} — {}", v.check, v.message, v.remediation));
        }
    }
    out
}

/// The URL of a generated policy or binding.
fn policy_url(doc: &Value) -> String {
    let plural = if doc["kind"] == "ValidatingAdmissionPolicy" {
        "validatingadmissionpolicies"
    } else {
        "validatingadmissionpolicybindings"
    };
    format!(
        "/apis/admissionregistration.k8s.io/v1/{plural}/{}",
        doc["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// What the requests came to.
#[derive(Default)]
struct Tally {
    judged: usize,
    denied: usize,
    disagreements: Vec<String>,
}

impl Tally {
    /// One request: the policies' warnings as the user, and as the admin (none expected),
    /// against the engine's denials.
    fn record(
        &mut self,
        what: &str,
        warned: &BTreeMap<String, String>,
        as_admin: &BTreeMap<String, String>,
        engine_says: &BTreeMap<String, String>,
    ) {
        self.judged += 1;
        self.denied += usize::from(!engine_says.is_empty());
        if warned != engine_says {
            self.disagreements.push(format!(
                "{what}:\n  policies {warned:?}\n  engine   {engine_says:?}"
            ));
        }
        if !as_admin.is_empty() {
            self.disagreements
                .push(format!("{what}: the platform was judged: {as_admin:?}"));
        }
    }
}

/// A new version of an object, made from the current one.
type Edit = Box<dyn Fn(&Value) -> Value>;

/// The current object with its labels edited.
fn relabel(edit: fn(&mut serde_json::Map<String, Value>)) -> Edit {
    Box::new(move |current: &Value| {
        let mut next = current.clone();
        if !next["metadata"]["labels"].is_object() {
            next["metadata"]["labels"] = json!({});
        }
        edit(next["metadata"]["labels"].as_object_mut().unwrap());
        next
    })
}

/// The current ResourceQuota with another pod count.
fn with_pods(pods: &'static str) -> Edit {
    Box::new(move |current: &Value| {
        let mut next = current.clone();
        next["spec"]["hard"]["pods"] = json!(pods);
        next
    })
}

fn labels_of(object: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(object["metadata"]["labels"].clone()).unwrap_or_default()
}

#[test]
#[ignore = "needs a real cluster: set TENANTRY_E2E_KUBECONFIG and run with --ignored"]
fn compiled_protect_platform_objects_decides_what_the_engine_decides() {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

async fn run() {
    let suffix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 1_000_000_000;
    let ns = format!("vapp-{suffix}");
    let prefix = format!("vapp-{suffix}-");
    let group = format!("vapp-{suffix}-admins");
    let admin = client(None).await;
    let user_groups = vec![group.clone(), "system:authenticated".to_owned()];
    let as_user = client(Some((USER, user_groups.clone()))).await;
    let user = UserInfo {
        username: USER.to_owned(),
        groups: user_groups,
    };
    let engine = Engine::new(&tenantry_api::Platform::default());
    let docs: Vec<Value> = vap::generate(
        &engine,
        &VapOptions {
            actions: Actions::WarnAudit,
            name_prefix: prefix.clone(),
            namespace: Some(ns.clone()),
        },
    )
    .into_iter()
    .filter(|d| {
        d["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.contains("protect-platform-objects"))
    })
    .collect();
    assert_eq!(docs.len(), 4, "two policies and their bindings");

    let apply = |url: String, body: Value| {
        let admin = admin.clone();
        async move {
            let request = http::Request::builder()
                .method("PATCH")
                .uri(format!("{url}?fieldManager=tenantry-e2e&force=true"))
                .header("content-type", "application/apply-patch+yaml")
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap();
            let response = admin.send(request).await.expect("applying");
            assert!(
                response.status().is_success(),
                "applying {url}: {}",
                response.status()
            );
        }
    };
    let ns_url = format!("/api/v1/namespaces/{ns}");
    // A kind the webhook is registered for (ConfigMaps are not).
    let quotas = format!("/api/v1/namespaces/{ns}/resourcequotas");
    let rbac = format!("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{prefix}admins");
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns,
        "labels": {"tenantry.dev/tenant": ns, "pod-security.kubernetes.io/enforce": "restricted"}}});
    apply(ns_url.clone(), namespace).await;
    apply(
        rbac.clone(),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": format!("{prefix}admins")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]}),
    )
    .await;
    let cm = |name: &str, labels: Value, data: &str| {
        json!({"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"hard": {"pods": data}}})
    };
    let managed = json!({"app.kubernetes.io/managed-by": "tenantry"});
    apply(
        format!("{quotas}/managed"),
        cm("managed", managed.clone(), "1"),
    )
    .await;
    apply(format!("{quotas}/plain"), cm("plain", json!({}), "1")).await;
    for doc in &docs {
        apply(policy_url(doc), doc.clone()).await;
    }

    // Wait until both policies judge: a managed ResourceQuota and a relabelled namespace warn.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, _, a) = send(
            &as_user,
            "POST",
            &format!("{quotas}?dryRun=All"),
            Some(&cm("probe", managed.clone(), "1")),
            &prefix,
        )
        .await;
        let (_, current, _) = send(&admin, "GET", &ns_url, None, &prefix).await;
        let mut relabelled = current.clone();
        relabelled["metadata"]["labels"]["pod-security.kubernetes.io/warn"] = json!("baseline");
        let (_, _, b) = send(
            &as_user,
            "PUT",
            &format!("{ns_url}?dryRun=All"),
            Some(&relabelled),
            &prefix,
        )
        .await;
        if a.contains_key("managed-object") && b.contains_key("namespace-labels") {
            break;
        }
        assert!(Instant::now() < deadline, "the policies never judged");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let ns_info = |object: &Value| NamespaceInfo {
        name: ns.clone(),
        labels: labels_of(object),
    };
    let mut tally = Tally::default();
    // Each case: what, method, URL (dry run added), new object (None: delete), and for the
    // engine the operation; the old object is read from the server first.
    let cases: Vec<(&str, &str, String, Option<Edit>)> = vec![
        ("create a plain ResourceQuota", "POST", quotas.clone(), None),
        (
            "create a managed ResourceQuota",
            "POST",
            quotas.clone(),
            None,
        ),
        (
            "create one managed by another tool",
            "POST",
            quotas.clone(),
            None,
        ),
        (
            "change a managed ResourceQuota",
            "PUT",
            format!("{quotas}/managed"),
            Some(with_pods("2")),
        ),
        (
            "unlabel a managed ResourceQuota",
            "PUT",
            format!("{quotas}/managed"),
            Some(relabel(|l| {
                l.remove("app.kubernetes.io/managed-by");
            })),
        ),
        (
            "mark a plain ResourceQuota as managed",
            "PUT",
            format!("{quotas}/plain"),
            Some(relabel(|l| {
                l.insert("app.kubernetes.io/managed-by".into(), json!("tenantry"));
            })),
        ),
        (
            "change a plain ResourceQuota",
            "PUT",
            format!("{quotas}/plain"),
            Some(with_pods("3")),
        ),
        (
            "delete a managed ResourceQuota",
            "DELETE",
            format!("{quotas}/managed"),
            None,
        ),
        (
            "delete a plain ResourceQuota",
            "DELETE",
            format!("{quotas}/plain"),
            None,
        ),
        (
            "lower the namespace's enforce level",
            "PUT",
            ns_url.clone(),
            Some(relabel(|l| {
                l.insert(
                    "pod-security.kubernetes.io/enforce".into(),
                    json!("baseline"),
                );
            })),
        ),
        (
            "remove the namespace's tenant label",
            "PUT",
            ns_url.clone(),
            Some(relabel(|l| {
                l.remove("tenantry.dev/tenant");
            })),
        ),
        (
            "set a warn level and change enforce",
            "PUT",
            ns_url.clone(),
            Some(relabel(|l| {
                l.insert("pod-security.kubernetes.io/warn".into(), json!("baseline"));
                l.insert(
                    "pod-security.kubernetes.io/enforce".into(),
                    json!("privileged"),
                );
            })),
        ),
        (
            "add an unguarded label",
            "PUT",
            ns_url.clone(),
            Some(relabel(|l| {
                l.insert("team".into(), json!("web"));
            })),
        ),
    ];
    let created = |what: &str| match what {
        "create a plain ResourceQuota" => cm("new-plain", json!({}), "1"),
        "create a managed ResourceQuota" => cm("new-managed", managed.clone(), "1"),
        _ => cm(
            "new-other",
            json!({"app.kubernetes.io/managed-by": "helm"}),
            "1",
        ),
    };
    let judge = |what: String,
                 method: &str,
                 url: String,
                 object: Option<Value>,
                 engine_says: BTreeMap<String, String>| {
        let as_user = as_user.clone();
        let admin = admin.clone();
        let prefix = prefix.clone();
        let method = method.to_owned();
        async move {
            let (status, body, warned) = send(
                &as_user,
                &method,
                &format!("{url}?dryRun=All"),
                object.as_ref(),
                &prefix,
            )
            .await;
            assert!(status < 300, "{what}: {status} {body}");
            // The platform (system:masters) is never judged.
            let (_, _, as_admin) = send(
                &admin,
                &method,
                &format!("{url}?dryRun=All"),
                object.as_ref(),
                &prefix,
            )
            .await;
            (what, warned, as_admin, engine_says)
        }
    };
    for (what, method, url, edit) in &cases {
        let (object, current, operation) = match (*method, edit) {
            ("POST", _) => (Some(created(what)), None, Operation::Create),
            ("DELETE", _) => {
                let (_, current, _) = send(&admin, "GET", url, None, &prefix).await;
                (None, Some(current), Operation::Delete)
            }
            (_, Some(edit)) => {
                let (_, current, _) = send(&admin, "GET", url, None, &prefix).await;
                (Some(edit(&current)), Some(current), Operation::Update)
            }
            _ => unreachable!(),
        };
        let is_namespace = url == &ns_url;
        let info = ns_info(&send(&admin, "GET", &ns_url, None, &prefix).await.1);
        let engine_says = engine_denies(
            &engine,
            &user,
            operation,
            (!is_namespace).then_some(&info),
            object.as_ref().unwrap_or(&Value::Null),
            current.as_ref(),
        );
        let (what, warned, as_admin, engine_says) =
            judge((*what).to_owned(), method, url.clone(), object, engine_says).await;
        tally.record(&what, &warned, &as_admin, &engine_says);
    }

    // The namespace itself managed by Tenantry: any change, and its deletion, are refused.
    let (_, current, _) = send(&admin, "GET", &ns_url, None, &prefix).await;
    let mut marked = current.clone();
    marked["metadata"]["labels"]["app.kubernetes.io/managed-by"] = json!("tenantry");
    marked["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    let request = http::Request::builder()
        .method("PUT")
        .uri(&ns_url)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&marked).unwrap()))
        .unwrap();
    assert!(admin.send(request).await.unwrap().status().is_success());
    let (_, current, _) = send(&admin, "GET", &ns_url, None, &prefix).await;
    let mut annotated = current.clone();
    annotated["metadata"]["annotations"] = json!({"note": "x"});
    for (what, method, object, operation) in [
        (
            "annotate a managed namespace",
            "PUT",
            Some(annotated),
            Operation::Update,
        ),
        (
            "delete a managed namespace",
            "DELETE",
            None,
            Operation::Delete,
        ),
    ] {
        let engine_says = engine_denies(
            &engine,
            &user,
            operation,
            None,
            object.as_ref().unwrap_or(&Value::Null),
            Some(&current),
        );
        let (what, warned, as_admin, engine_says) =
            judge(what.to_owned(), method, ns_url.clone(), object, engine_says).await;
        tally.record(&what, &warned, &as_admin, &engine_says);
    }

    // Clean up: the policies, the binding of the group, the namespace.
    for doc in &docs {
        let _ = send(&admin, "DELETE", &policy_url(doc), None, &prefix).await;
    }
    let _ = send(&admin, "DELETE", &rbac, None, &prefix).await;
    let _ = send(&admin, "DELETE", &ns_url, None, &prefix).await;

    let Tally {
        judged,
        denied,
        disagreements,
    } = tally;
    eprintln!(
        "protect-platform-objects: {judged} requests as {USER}, {denied} refused by the engine, \
         {} disagreements",
        disagreements.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    assert!(denied >= 9, "the cases exercise the refusals: {denied}");
}
