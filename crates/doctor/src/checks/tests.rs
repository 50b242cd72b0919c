//! Each check against a healthy tenant and against the ways it breaks, with the fix a person
//! would type asserted. The live objects are the rendered ones as the API server returns them
//! after Tenantry applied them, edited the way each failure edits them.

use base64::Engine as _;
use serde_json::{Value, json};
use tenantry_api::tenant::TenantFile;
use tenantry_core::{PlatformContext, Rendered, ResolvedTenant, document, render};

use super::*;
use crate::{BaoStep, Check, ClusterView, Observed, StaleFile, Verdict, diagnose};

/// Tenant `shop` with `spec` on the default platform, resolved and rendered (the audit's tests
/// start from it too).
pub(crate) struct Fixture {
    pub(crate) ctx: PlatformContext,
    pub(crate) tenant: ResolvedTenant,
    pub(crate) rendered: Rendered,
}

pub(crate) fn fixture(spec: &str) -> Fixture {
    on_platform("{}", spec)
}

/// Tenant `shop` with `spec` on a platform written as `tenantry.yaml` text.
pub(crate) fn on_platform(platform: &str, spec: &str) -> Fixture {
    let ctx = PlatformContext::new(document::parse_platform(platform).unwrap()).unwrap();
    let file: TenantFile = document::parse_tenant_file(&format!(
        "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: shop\nspec: {spec}\n"
    ))
    .unwrap();
    let tenant = ctx.resolve(&file).unwrap();
    let rendered = render::render(&ctx, &tenant);
    Fixture {
        ctx,
        tenant,
        rendered,
    }
}

/// A rendered object as the API server holds it once Tenantry applied it.
fn applied(body: &Value) -> Value {
    let mut live = body.clone();
    live["metadata"]["uid"] = json!("uid-1");
    live["metadata"]["managedFields"] = json!([
        { "manager": "tenantry", "operation": "Apply", "apiVersion": body["apiVersion"], "fieldsV1": {} }
    ]);
    live
}

fn dockerconfig(hosts: &[&str]) -> Value {
    let auths: serde_json::Map<String, Value> = hosts
        .iter()
        .map(|h| ((*h).to_owned(), json!({ "auth": "dTpw" })))
        .collect();
    let text = json!({ "auths": auths }).to_string();
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": { "name": "ghcr-auth", "namespace": "shop" },
        "data": { ".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(text) },
    })
}

fn deployment(name: &str, image: &str, service_account: Option<&str>) -> Value {
    let mut spec = json!({ "containers": [{ "name": "app", "image": image }] });
    if let Some(sa) = service_account {
        spec["serviceAccountName"] = json!(sa);
    }
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name, "namespace": "shop" },
        "spec": { "template": { "spec": spec } },
    })
}

impl Fixture {
    /// The cluster as `apply` leaves it, with the pull secret External Secrets made for
    /// ghcr.io and the Flux objects Ready.
    fn healthy(&self) -> ClusterView {
        let live: Vec<Value> = self
            .rendered
            .objects
            .iter()
            .map(|d| {
                let mut live = applied(&d.body);
                if matches!(d.kind, "OCIRepository" | "Kustomization" | "ExternalSecret") {
                    live["status"] =
                        json!({ "conditions": [{ "type": "Ready", "status": "True" }] });
                }
                if d.kind == "ResourceQuota" {
                    live["status"] = json!({ "hard": { "pods": "10" }, "used": { "pods": "1" } });
                }
                live
            })
            .collect();
        let service_accounts = live
            .iter()
            .filter(|l| l["kind"] == "ServiceAccount")
            .cloned()
            .collect();
        let secret_sync = live
            .iter()
            .filter(|l| l["kind"] == "ExternalSecret")
            .cloned()
            .collect();
        let network_policies = live
            .iter()
            .filter(|l| {
                matches!(
                    l["kind"].as_str(),
                    Some("NetworkPolicy" | "CiliumNetworkPolicy")
                )
            })
            .cloned()
            .collect();
        ClusterView {
            missing_kinds: Vec::new(),
            live,
            service_accounts: Ok(service_accounts),
            workloads: Ok(vec![deployment("web", "ghcr.io/acme/web:1", Some("shop"))]),
            events: Ok(Vec::new()),
            pull_secrets: Ok(vec![dockerconfig(&["ghcr.io"])]),
            secret_sync: Ok(secret_sync),
            network_policies: Ok(network_policies),
            other_tenant_namespaces: Ok(Vec::new()),
        }
    }

    fn observe(&self, cluster: Result<ClusterView, String>) -> Observed<'_> {
        Observed {
            ctx: &self.ctx,
            tenant: &self.tenant,
            rendered: &self.rendered,
            tenant_dir: "tenants/shop".to_owned(),
            stale: Vec::new(),
            tree: Ok(self
                .rendered
                .objects
                .iter()
                .map(|d| d.body.clone())
                .collect()),
            cluster,
            openbao: None,
            openbao_kv: None,
        }
    }
}

fn live_mut<'v>(view: &'v mut ClusterView, kind: &str, name: &str) -> &'v mut Value {
    view.live
        .iter_mut()
        .find(|l| l["kind"] == kind && l["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} is rendered"))
}

fn check<'c>(checks: &'c [Check], id: &str) -> &'c Check {
    checks.iter().find(|c| c.id == id).unwrap()
}

/// The one finding of a check, asserting its verdict.
#[track_caller]
fn only_finding(c: &Check, verdict: Verdict) -> &crate::Finding {
    assert_eq!(c.verdict, verdict, "{c:#?}");
    assert_eq!(c.findings.len(), 1, "{c:#?}");
    &c.findings[0]
}

#[test]
fn a_healthy_tenant_passes_every_check_in_cause_first_order() {
    let f = fixture("{}");
    let checks = diagnose(&f.observe(Ok(f.healthy())));
    let ids: Vec<&str> = checks.iter().map(|c| c.id).collect();
    assert_eq!(ids, CHECK_IDS);
    for c in &checks {
        if matches!(c.id, "openbao" | "openbao-paths") {
            assert_eq!(c.verdict, Verdict::Skipped);
            assert_eq!(
                c.reason.as_deref(),
                Some("the tenant has no secrets.openbao")
            );
        } else {
            assert_eq!(c.verdict, Verdict::Ok, "{c:#?}");
        }
    }
    assert!(
        check(&checks, "objects")
            .objects
            .contains(&"NetworkPolicy shop/tenantry-default-deny".to_owned())
    );
}

#[test]
fn offline_skips_every_cluster_check_and_still_judges_the_tree() {
    let f = fixture("{}");
    let mut o = f.observe(Err("--offline: the cluster was not consulted".to_owned()));
    o.stale = vec![
        StaleFile {
            path: "tenants/shop/namespace.shop.yaml".to_owned(),
            problem: "stale",
            platform: false,
        },
        StaleFile {
            path: "platform/tenant-rbac/kustomization.yaml".to_owned(),
            problem: "missing",
            platform: true,
        },
    ];
    let checks = diagnose(&o);
    let tree = check(&checks, "rendered-tree");
    assert_eq!(tree.verdict, Verdict::Fail);
    assert_eq!(
        tree.findings[0].fix,
        "tenantry render --write shop, then commit the change"
    );
    assert_eq!(
        tree.findings[1].fix,
        "tenantry render --write, then commit the change"
    );
    // The checks that read Tenantry's objects read the committed tree (offline_tests.rs).
    let from_tree = [
        "rendered-tree",
        "openbao",
        "openbao-paths",
        "namespace-labels",
        "service-account-pull-secret",
        "pull-secret-registries",
        "network-reachability",
    ];
    for c in checks.iter().filter(|c| !from_tree.contains(&c.id)) {
        assert_eq!(c.verdict, Verdict::Skipped, "{c:#?}");
        assert_eq!(
            c.reason.as_deref(),
            Some("--offline: the cluster was not consulted")
        );
    }
}

#[test]
fn objects_names_each_missing_or_changed_object_and_missing_crds() {
    let f = fixture("{}");
    let mut view = f.healthy();
    view.live
        .retain(|l| l["metadata"]["name"] != "tenantry-default-deny");
    live_mut(&mut view, "LimitRange", "tenantry-limits")["spec"]["limits"] = json!([]);
    view.live.retain(|l| l["kind"] != "OCIRepository");
    view.missing_kinds = vec!["OCIRepository.source.toolkit.fluxcd.io".to_owned()];
    let checks = diagnose(&f.observe(Ok(view)));
    let c = check(&checks, "objects");
    assert_eq!(c.verdict, Verdict::Fail);
    let by_object = |o: &str| c.findings.iter().find(|x| x.object == o).unwrap();
    let deny = by_object("NetworkPolicy shop/tenantry-default-deny");
    assert_eq!(deny.verdict, Verdict::Fail);
    assert!(
        deny.message.starts_with("missing from the cluster"),
        "{deny:?}"
    );
    assert_eq!(deny.fix, "tenantry apply shop");
    let limits = by_object("LimitRange shop/tenantry-limits");
    assert!(limits.message.contains("spec.limits"), "{limits:?}");
    assert_eq!(limits.fix, "tenantry apply shop");
    let oci = by_object("OCIRepository shop/shop");
    assert_eq!(oci.verdict, Verdict::Warn);
    assert!(
        oci.message.contains("does not serve OCIRepository"),
        "{oci:?}"
    );
    assert_eq!(c.findings.len(), 3, "{c:#?}");
}

#[test]
fn namespace_labels_say_what_each_missing_label_breaks() {
    let f = fixture("{}");
    let cases: [(&str, Option<&str>, &str); 3] = [
        (
            "apps.platform/tenant",
            None,
            "label apps.platform/tenant is missing, declared true: the pull-secret opt-in",
        ),
        (
            "pod-security.kubernetes.io/enforce",
            Some("privileged"),
            "label pod-security.kubernetes.io/enforce is \"privileged\", declared restricted: Pod Security admits pods",
        ),
        (
            "pod-security.kubernetes.io/enforce-version",
            None,
            "label pod-security.kubernetes.io/enforce-version is missing, declared latest",
        ),
    ];
    for (key, value, expected) in cases {
        let mut view = f.healthy();
        let labels = &mut live_mut(&mut view, "Namespace", "shop")["metadata"]["labels"];
        match value {
            Some(v) => labels[key] = json!(v),
            None => {
                labels.as_object_mut().unwrap().remove(key);
            }
        }
        let checks = diagnose(&f.observe(Ok(view)));
        let finding = only_finding(check(&checks, "namespace-labels"), Verdict::Fail);
        assert_eq!(finding.object, "Namespace shop");
        assert!(finding.message.starts_with(expected), "{key}: {finding:?}");
        assert_eq!(
            finding.fix,
            format!("tenantry apply shop (sets metadata.labels.{key} again)")
        );
    }
    // An opt-in the tenant did not ask for.
    let mut view = f.healthy();
    live_mut(&mut view, "Namespace", "shop")["metadata"]["labels"]["istio-injection"] =
        json!("enabled");
    let checks = diagnose(&f.observe(Ok(view)));
    let finding = only_finding(check(&checks, "namespace-labels"), Verdict::Warn);
    assert!(finding.message.contains("spec.mesh is off"), "{finding:?}");
    assert_eq!(
        finding.fix,
        "set spec.mesh: true in tenant.yaml, or `kubectl label namespace shop istio-injection-`"
    );
}

#[test]
fn service_accounts_without_the_pull_secret_are_named_with_the_fix() {
    let f = fixture("{}");
    // Tenantry's own ServiceAccount stripped of imagePullSecrets.
    let mut view = f.healthy();
    if let Ok(accounts) = &mut view.service_accounts {
        accounts[0]
            .as_object_mut()
            .unwrap()
            .remove("imagePullSecrets");
    }
    let checks = diagnose(&f.observe(Ok(view)));
    let finding = only_finding(check(&checks, "service-account-pull-secret"), Verdict::Fail);
    assert_eq!(finding.object, "ServiceAccount shop/shop");
    assert_eq!(
        finding.fix,
        "tenantry apply shop (sets imagePullSecrets again)"
    );

    // A workload on the default ServiceAccount, by the registry of its image.
    let cases = [
        (
            "ghcr.io/acme/web:1",
            Some(vec!["ghcr.io"]),
            Some(Verdict::Fail),
        ),
        ("nginx:1.27", Some(vec!["ghcr.io"]), None),
        ("nginx:1.27", None, Some(Verdict::Warn)),
    ];
    for (image, hosts, expected) in cases {
        let mut view = f.healthy();
        view.workloads = Ok(vec![deployment("api", image, None)]);
        view.pull_secrets = Ok(hosts.map(|h| vec![dockerconfig(&h)]).unwrap_or_default());
        let checks = diagnose(&f.observe(Ok(view)));
        let c = check(&checks, "service-account-pull-secret");
        match expected {
            None => assert_eq!(c.verdict, Verdict::Ok, "{image}: {c:#?}"),
            Some(v) => {
                let finding = only_finding(c, v);
                assert_eq!(finding.object, "Deployment shop/api");
                assert!(
                    finding
                        .message
                        .starts_with("runs as ServiceAccount default"),
                    "{finding:?}"
                );
                assert_eq!(
                    finding.fix,
                    "set serviceAccountName: shop in its pod template (Tenantry's ServiceAccount lists ghcr-auth), or `kubectl -n shop patch serviceaccount default --type merge -p '{\"imagePullSecrets\":[{\"name\":\"ghcr-auth\"}]}'`"
                );
            }
        }
    }
    // Without the pull secret, nothing to check.
    let off = fixture("{ secrets: { pullSecret: false } }");
    let checks = diagnose(&off.observe(Ok(off.healthy())));
    assert_eq!(
        check(&checks, "service-account-pull-secret").verdict,
        Verdict::Skipped
    );
}

#[test]
fn pull_secret_registries_are_compared_with_every_image() {
    let f = fixture("{}");
    let cases: [(Vec<Value>, Vec<Value>, Verdict, &str); 5] = [
        (
            vec![dockerconfig(&["ghcr.io"])],
            vec![deployment("web", "ghcr.io/acme/web:1", Some("shop"))],
            Verdict::Ok,
            "",
        ),
        (
            vec![dockerconfig(&["https://index.docker.io/v1/"])],
            vec![deployment("web", "nginx", Some("shop"))],
            Verdict::Ok,
            "",
        ),
        (
            vec![dockerconfig(&["ghcr.io"])],
            vec![deployment("web", "quay.io/acme/web:1", Some("shop"))],
            Verdict::Warn,
            "image quay.io/acme/web:1 comes from quay.io, for which Secret shop/ghcr-auth holds no credential (it has: ghcr.io)",
        ),
        (
            Vec::new(),
            vec![deployment("web", "ghcr.io/acme/web:1", Some("shop"))],
            Verdict::Fail,
            "does not exist, so no pod here can pull a private image",
        ),
        (
            vec![
                json!({ "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                          "metadata": { "name": "ghcr-auth", "namespace": "shop" } }),
            ],
            Vec::new(),
            Verdict::Fail,
            "is of type Opaque, not kubernetes.io/dockerconfigjson",
        ),
    ];
    for (secrets, workloads, verdict, message) in cases {
        let mut view = f.healthy();
        view.pull_secrets = Ok(secrets);
        view.workloads = Ok(workloads);
        let checks = diagnose(&f.observe(Ok(view)));
        let c = check(&checks, "pull-secret-registries");
        if verdict == Verdict::Ok {
            assert_eq!(c.verdict, Verdict::Ok, "{c:#?}");
            continue;
        }
        let finding = only_finding(c, verdict);
        assert!(finding.message.starts_with(message), "{finding:?}");
    }
    let mut view = f.healthy();
    view.pull_secrets = Ok(Vec::new());
    let checks = diagnose(&f.observe(Ok(view)));
    let finding = only_finding(check(&checks, "pull-secret-registries"), Verdict::Fail);
    assert_eq!(
        finding.fix,
        "it is made by ExternalSecret shop/ghcr-auth from ClusterSecretStore openbao key infrastructure/ghcr/auth: fix what namespace-labels and secret-sync report above"
    );
}

#[test]
fn openbao_steps_that_differ_fail_with_the_provision_command() {
    let f = fixture("{}");
    let step = |change: &str, detail: &[&str]| BaoStep {
        target: "policy".to_owned(),
        name: "tenant-shop".to_owned(),
        change: change.to_owned(),
        detail: detail.iter().map(|d| (*d).to_owned()).collect(),
    };
    let cases = [
        (step("unchanged", &[]), Verdict::Ok, ""),
        (
            step("create", &[]),
            Verdict::Fail,
            "tenantry secrets provision shop",
        ),
        (
            step("update", &["policy"]),
            Verdict::Fail,
            "tenantry secrets provision shop",
        ),
        (
            step("foreign", &[]),
            Verdict::Fail,
            "check who wrote it, then `tenantry secrets provision shop --force` replaces it",
        ),
    ];
    for (s, verdict, fix) in cases {
        let mut o = f.observe(Ok(f.healthy()));
        o.openbao = Some(Ok(vec![s]));
        let checks = diagnose(&o);
        let c = check(&checks, "openbao");
        assert_eq!(c.objects, ["OpenBao policy tenant-shop"]);
        if verdict == Verdict::Ok {
            assert_eq!(c.verdict, Verdict::Ok);
        } else {
            assert_eq!(only_finding(c, verdict).fix, fix);
        }
    }
    let mut o = f.observe(Ok(f.healthy()));
    o.openbao = Some(Err("OpenBao is not configured (set BAO_ADDR)".to_owned()));
    let checks = diagnose(&o);
    assert_eq!(check(&checks, "openbao").verdict, Verdict::Skipped);
}

#[test]
fn secret_sync_messages_map_to_their_causes() {
    let f = fixture("{}");
    let store = |message: &str| {
        json!({ "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
                "metadata": { "name": "openbao", "namespace": "shop" },
                "status": { "conditions": [{ "type": "Ready", "status": "False", "reason": "InvalidProviderConfig", "message": message }] } })
    };
    let secret = |message: &str| {
        json!({ "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                "metadata": { "name": "db", "namespace": "shop" },
                "spec": { "secretStoreRef": { "kind": "SecretStore", "name": "openbao" },
                          "data": [{ "secretKey": "password", "remoteRef": { "key": "tenants/shop/db", "property": "password" } }] },
                "status": { "conditions": [{ "type": "Ready", "status": "False", "reason": "SecretSyncedError", "message": message }] } })
    };
    let cases = [
        (
            store(
                "unable to log in to auth method: Error making API request. Code: 403. Errors: * permission denied",
            ),
            "not Ready: OpenBao refused the tenant's login or read (permission denied)",
            "tenantry secrets provision shop (see the openbao check)",
        ),
        (
            secret(
                "error processing spec.data[0] (key: tenants/shop/db), err: Secret does not exist",
            ),
            "not Ready: the OpenBao path is empty: nothing is stored at tenants/shop/db",
            "write it: `bao kv put -mount=secret tenants/shop/db <field>=<value>`",
        ),
        (
            store("dial tcp 10.0.0.5:8200: i/o timeout"),
            "not Ready: External Secrets cannot reach OpenBao",
            "check openbao.address in tenantry.yaml",
        ),
        (
            secret("could not get SecretStore \"openbao\", SecretStore \"openbao\" is not ready"),
            "not Ready: its store openbao is not ready",
            "fix store openbao first (above)",
        ),
    ];
    for (object, message, fix) in cases {
        let mut view = f.healthy();
        view.secret_sync = Ok(vec![object]);
        let checks = diagnose(&f.observe(Ok(view)));
        let finding = only_finding(check(&checks, "secret-sync"), Verdict::Fail);
        assert!(finding.message.starts_with(message), "{finding:?}");
        assert!(finding.fix.starts_with(fix), "{finding:?}");
    }
    // Stores come before the secrets that use them.
    let mut view = f.healthy();
    view.secret_sync = Ok(vec![secret("x"), store("y")]);
    let checks = diagnose(&f.observe(Ok(view)));
    let c = check(&checks, "secret-sync");
    assert_eq!(c.objects[0], "SecretStore shop/openbao");
    // Never reconciled.
    let mut view = f.healthy();
    view.secret_sync = Ok(vec![
        json!({ "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                                        "metadata": { "name": "db", "namespace": "shop" } }),
    ]);
    let checks = diagnose(&f.observe(Ok(view)));
    only_finding(check(&checks, "secret-sync"), Verdict::Warn);
}

#[test]
fn delivery_reports_flux_errors_with_the_reconcile_command() {
    let f = fixture("{}");
    let mut view = f.healthy();
    live_mut(&mut view, "OCIRepository", "shop")["status"] = json!({ "conditions": [{
        "type": "Ready", "status": "False", "reason": "VerificationError",
        "message": "failed to verify the signature using provider 'cosign': no matching signatures were found" }] });
    live_mut(&mut view, "Kustomization", "shop")
        .as_object_mut()
        .unwrap()
        .remove("status");
    let checks = diagnose(&f.observe(Ok(view)));
    let c = check(&checks, "delivery");
    assert_eq!(c.verdict, Verdict::Fail);
    assert_eq!(c.findings.len(), 2);
    assert_eq!(c.findings[0].object, "OCIRepository shop/shop");
    assert!(c.findings[0].message.contains("no matching signatures"));
    assert_eq!(
        c.findings[0].fix,
        "publish the artifact through the platform's signing workflow (it must be cosign-signed by the identity in tenantry.yaml), then `flux reconcile source oci shop -n shop`"
    );
    assert_eq!(c.findings[1].verdict, Verdict::Warn);
    assert!(c.findings[1].message.contains("Flux has not reconciled it"));
}

#[test]
fn quota_headroom_warns_above_90_percent_and_fails_when_exhausted() {
    let f = fixture("{}");
    let cases = [
        (
            json!({ "hard": { "pods": "10", "requests.cpu": "2" }, "used": { "pods": "9", "requests.cpu": "1" } }),
            Verdict::Ok,
            "",
        ),
        (
            json!({ "hard": { "requests.memory": "1Gi" }, "used": { "requests.memory": "1000Mi" } }),
            Verdict::Warn,
            "requests.memory: 1000Mi used of 1Gi: above 90%",
        ),
        (
            json!({ "hard": { "pods": "10" }, "used": { "pods": "10" } }),
            Verdict::Fail,
            "pods: 10 used of 10: exhausted",
        ),
        (
            json!({ "hard": { "pods": "0" }, "used": { "pods": "0" } }),
            Verdict::Ok,
            "",
        ),
        (json!({}), Verdict::Warn, "no usage recorded yet"),
        // Tenantry's own quota fills `resourcequotas: 1` by design: a ban on more quotas.
        (
            json!({ "hard": { "resourcequotas": "1" }, "used": { "resourcequotas": "1" } }),
            Verdict::Ok,
            "",
        ),
        (
            json!({ "hard": { "resourcequotas": "2" }, "used": { "resourcequotas": "2" } }),
            Verdict::Fail,
            "resourcequotas: 2 used of 2: exhausted",
        ),
    ];
    for (status, verdict, message) in cases {
        let mut view = f.healthy();
        live_mut(&mut view, "ResourceQuota", "tenantry-quota")["status"] = status;
        let checks = diagnose(&f.observe(Ok(view)));
        let c = check(&checks, "quota-headroom");
        if verdict == Verdict::Ok {
            assert_eq!(c.verdict, Verdict::Ok, "{c:#?}");
            continue;
        }
        let finding = only_finding(c, verdict);
        assert!(finding.message.starts_with(message), "{finding:?}");
        if message.contains("used of") {
            assert_eq!(
                finding.fix,
                "raise it under spec.quota in tenant.yaml, then `tenantry render --write shop` and `tenantry apply shop` (or free some)"
            );
        }
    }
}

fn failed_create(rs: &str, message: &str, time: &str) -> Value {
    json!({ "apiVersion": "v1", "kind": "Event", "type": "Warning", "reason": "FailedCreate",
            "metadata": { "name": format!("{rs}.1"), "namespace": "shop" },
            "involvedObject": { "kind": "ReplicaSet", "namespace": "shop", "name": rs },
            "lastTimestamp": time, "message": message })
}

fn replica_set(name: &str, deployment: &str) -> Value {
    json!({ "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": { "name": name, "namespace": "shop",
                          "ownerReferences": [{ "kind": "Deployment", "name": deployment, "controller": true }] },
            "spec": { "template": { "spec": { "containers": [{ "name": "a", "image": "ghcr.io/acme/web:1" }] } } } })
}

#[test]
fn admission_refusals_name_the_refusing_check_and_the_workload() {
    let f = fixture("{}");
    let pss = "Error creating: pods \"web-5d9c-x\" is forbidden: violates PodSecurity \"restricted:latest\": privileged (container \"app\" must not set securityContext.privileged=true)";
    let webhook = "Error creating: admission webhook \"validate.tenantry.dev\" denied the request: image not from an allowed registry (1 finding): [allowed-registries] spec.containers[0].image: use an image from ghcr.io/acme";
    let cases = [
        (
            pss,
            "refused by [pod-security] at level restricted: privileged (container",
            "change the pod template of Deployment shop/web (ReplicaSet web-5d9c) to meet Pod Security restricted",
        ),
        (
            webhook,
            "refused by [allowed-registries]: ",
            "change Deployment shop/web (ReplicaSet web-5d9c) as the message says (`tenantry check --tenant shop`",
        ),
        (
            "Error creating: pods \"x\" is forbidden: exceeded quota: tenantry-quota, requested: pods=1, used: pods=10, limited: pods=10",
            "refused by [resource-quota]",
            "see quota-headroom above",
        ),
    ];
    for (message, cause, fix) in cases {
        let mut view = f.healthy();
        view.workloads = Ok(vec![
            deployment("web", "ghcr.io/acme/web:1", Some("shop")),
            replica_set("web-5d9c", "web"),
        ]);
        view.events = Ok(vec![
            failed_create("web-5d9c", "older", "2026-01-01T00:00:00Z"),
            failed_create("web-5d9c", message, "2026-01-01T00:05:00Z"),
            // A ReplicaSet that is gone: its events are history, not a problem.
            failed_create("old-1234", pss, "2026-01-01T00:06:00Z"),
        ]);
        let checks = diagnose(&f.observe(Ok(view)));
        let finding = only_finding(check(&checks, "admission-refusals"), Verdict::Fail);
        assert_eq!(finding.object, "Deployment shop/web (ReplicaSet web-5d9c)");
        assert!(finding.message.starts_with(cause), "{finding:?}");
        assert!(finding.fix.starts_with(fix), "{finding:?}");
    }
    assert_eq!(
        bracketed_ids("a [x-1] b [Not] c [y] d[0] [x-1]"),
        ["x-1", "y"]
    );
}

#[test]
fn pending_pods_say_why() {
    let f = fixture("{}");
    let pod = |status: Value, node: Option<&str>| {
        let mut p = json!({ "apiVersion": "v1", "kind": "Pod",
                            "metadata": { "name": "web-1", "namespace": "shop" },
                            "spec": { "serviceAccountName": "shop", "containers": [{ "name": "a", "image": "ghcr.io/acme/web:1" }] },
                            "status": status });
        if let Some(n) = node {
            p["spec"]["nodeName"] = json!(n);
        }
        p
    };
    let cases = [
        (
            pod(json!({ "phase": "Running" }), Some("n1")),
            Verdict::Ok,
            "",
        ),
        (
            pod(
                json!({ "phase": "Pending", "containerStatuses": [{ "state": { "waiting": { "reason": "ImagePullBackOff", "message": "Back-off pulling image" } } }] }),
                Some("n1"),
            ),
            Verdict::Fail,
            "ImagePullBackOff: Back-off pulling image",
        ),
        (
            pod(
                json!({ "phase": "Pending", "conditions": [{ "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient cpu." }] }),
                None,
            ),
            Verdict::Fail,
            "not schedulable: 0/3 nodes are available",
        ),
        (
            pod(json!({ "phase": "Pending" }), None),
            Verdict::Warn,
            "not scheduled yet",
        ),
        (
            pod(json!({ "phase": "Pending" }), Some("n1")),
            Verdict::Warn,
            "assigned to node n1 but not started",
        ),
    ];
    for (p, verdict, message) in cases {
        let mut view = f.healthy();
        view.workloads = Ok(vec![p]);
        let checks = diagnose(&f.observe(Ok(view)));
        let c = check(&checks, "pods-pending");
        assert_eq!(c.objects, ["Pod shop/web-1"]);
        if verdict == Verdict::Ok {
            assert_eq!(c.verdict, Verdict::Ok, "{c:#?}");
            continue;
        }
        assert!(
            only_finding(c, verdict).message.starts_with(message),
            "{c:#?}"
        );
    }
}

/// A NetworkPolicy the tenant wrote itself (no Tenantry label), in `shop`.
fn tenant_policy(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": { "name": name, "namespace": "shop" },
        "spec": spec,
    })
}

fn other_tenant_namespace(f: &Fixture, name: &str, tenant: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": { "name": name, "labels": {
            f.ctx.tenant_label(): tenant, "kubernetes.io/metadata.name": name,
        } },
    })
}

#[test]
fn a_policy_the_tenant_added_is_judged_and_named_when_it_opens_egress_to_another_tenant() {
    let f = fixture("{ network: { defaultDenyEgress: true } }");
    let mut view = f.healthy();
    view.other_tenant_namespaces = Ok(vec![
        other_tenant_namespace(&f, "bank", "bank"),
        other_tenant_namespace(&f, "bank-batch", "bank"),
        other_tenant_namespace(&f, "zoo", "zoo"),
    ]);
    // Healthy: the tenant's pods are opened to no other tenant.
    let checks = diagnose(&f.observe(Ok(view.clone())));
    assert_eq!(check(&checks, "network-reachability").verdict, Verdict::Ok);

    let label = f.ctx.tenant_label();
    let widening = tenant_policy(
        "talk-to-bank",
        json!({ "podSelector": {}, "policyTypes": ["Egress"],
                "egress": [{ "to": [{ "namespaceSelector": { "matchLabels": { label: "bank" } } }] }] }),
    );
    // Only the list of every policy has it: the labelled objects do not.
    view.network_policies.as_mut().unwrap().push(widening);
    let checks = diagnose(&f.observe(Ok(view)));
    let c = check(&checks, "network-reachability");
    let finding = only_finding(c, Verdict::Warn);
    assert_eq!(finding.object, "NetworkPolicy shop/talk-to-bank");
    assert_eq!(
        finding.message,
        "NetworkPolicy shop/talk-to-bank lets pods in shop send to other tenants' namespaces bank, bank-batch: only those tenants' own ingress policies keep them apart"
    );
    assert_eq!(
        finding.fix,
        "remove or narrow the egress rule of NetworkPolicy shop/talk-to-bank that selects other tenants' namespaces (`kubectl -n shop edit networkpolicy talk-to-bank`)"
    );
    assert!(
        c.objects
            .contains(&"NetworkPolicy shop/talk-to-bank".to_owned())
    );
}

#[test]
fn a_policy_the_tenant_added_that_isolates_egress_is_named_as_what_blocks_dns() {
    // Without defaultDenyEgress Tenantry leaves egress open; a tenant policy selecting every
    // pod for egress to one peer closes everything else, DNS included.
    let f = fixture("{}");
    let mut view = f.healthy();
    view.network_policies
        .as_mut()
        .unwrap()
        .push(tenant_policy(
            "only-the-db",
            json!({ "podSelector": {}, "policyTypes": ["Egress"],
                    "egress": [{ "to": [{ "podSelector": { "matchLabels": { "app": "db" } } }] }] }),
        ));
    let checks = diagnose(&f.observe(Ok(view.clone())));
    let finding = only_finding(check(&checks, "network-reachability"), Verdict::Fail);
    assert!(
        finding
            .message
            .contains("is denied by NetworkPolicy shop/only-the-db"),
        "{}",
        finding.message
    );
    // When every policy could not be listed, the labelled ones are judged, and the check
    // says a tenant's own policy was not seen.
    view.network_policies = Err("cannot list NetworkPolicies: forbidden".to_owned());
    let checks = diagnose(&f.observe(Ok(view)));
    let c = check(&checks, "network-reachability");
    assert_eq!(c.verdict, Verdict::Ok);
    assert!(
        c.notes.iter().any(|n| n
            == "only the policies Tenantry labels were judged (cannot list NetworkPolicies: forbidden): a policy the tenant added is not seen"),
        "{:?}",
        c.notes
    );
}
