//! `doctor --offline`: the checks of what Tenantry's objects wire together (labels, the pull
//! secret, network policy) judged on the committed tree, as rendered and as people break it
//! by editing files; the same checks online on the live objects.

use serde_json::{Value, json};

use super::tests::{Fixture, fixture, on_platform};
use crate::{Check, Finding, Observed, Verdict, diagnose};

const OFFLINE: &str = "--offline: the cluster was not consulted";

/// The checks that need only the platform repository.
const FROM_REPOSITORY: [&str; 5] = [
    "rendered-tree",
    "namespace-labels",
    "service-account-pull-secret",
    "pull-secret-registries",
    "network-reachability",
];

/// The committed tree as `render --write` leaves it.
fn tree(f: &Fixture) -> Vec<Value> {
    f.rendered.objects.iter().map(|d| d.body.clone()).collect()
}

fn offline<'f>(f: &'f Fixture, tree: Vec<Value>) -> Observed<'f> {
    Observed {
        ctx: &f.ctx,
        tenant: &f.tenant,
        rendered: &f.rendered,
        tenant_dir: "tenants/shop".to_owned(),
        stale: Vec::new(),
        tree: Ok(tree),
        cluster: Err(OFFLINE.to_owned()),
        openbao: f.tenant.openbao.then(|| Err(OFFLINE.to_owned())),
        openbao_kv: f.tenant.openbao.then(|| Err(OFFLINE.to_owned())),
    }
}

fn find<'t>(tree: &'t mut [Value], kind: &str, name: &str) -> &'t mut Value {
    tree.iter_mut()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} is rendered"))
}

fn check<'c>(checks: &'c [Check], id: &str) -> &'c Check {
    checks.iter().find(|c| c.id == id).unwrap()
}

#[track_caller]
fn only_fail(checks: &[Check], id: &str) -> Finding {
    let c = check(checks, id);
    assert_eq!(c.verdict, Verdict::Fail, "{c:#?}");
    assert_eq!(c.findings.len(), 1, "{c:#?}");
    c.findings[0].clone()
}

#[test]
fn a_rendered_tenant_passes_every_offline_check() {
    for spec in [
        "{}",
        "{ network: { defaultDenyEgress: true } }",
        "{ network: { provider: cilium, defaultDenyEgress: true } }",
        "{ namespaces: [shop-web], secrets: { openbao: true }, network: { defaultDenyEgress: true } }",
    ] {
        let f = fixture(spec);
        let checks = diagnose(&offline(&f, tree(&f)));
        for c in &checks {
            let expected = match c.id {
                "pull-secret-registries" => Verdict::Skipped,
                id if FROM_REPOSITORY.contains(&id) => Verdict::Ok,
                _ => Verdict::Skipped,
            };
            assert_eq!(c.verdict, expected, "{spec}: {c:#?}");
        }
        let network = check(&checks, "network-reachability");
        let policy = if spec.contains("cilium") {
            "CiliumNetworkPolicy shop/tenantry-isolation"
        } else {
            "NetworkPolicy shop/tenantry-default-deny"
        };
        assert!(network.objects.contains(&policy.to_owned()), "{network:#?}");
        // The template reads the credential at run time: its hosts are unknown offline.
        assert!(
            check(&checks, "pull-secret-registries")
                .reason
                .as_deref()
                .unwrap()
                .starts_with("the pull secret's registry hosts are read at run time"),
        );
    }
}

#[test]
fn a_tree_without_the_dns_egress_rule_fails_naming_the_policy_and_field() {
    let f = fixture("{ network: { defaultDenyEgress: true } }");
    let mut edited = tree(&f);
    let egress = &mut find(&mut edited, "NetworkPolicy", "tenantry-allow-egress")["spec"]["egress"];
    egress.as_array_mut().unwrap().truncate(1); // the intra-tenant rule stays
    let finding = only_fail(&diagnose(&offline(&f, edited)), "network-reachability");
    assert_eq!(finding.object, "NetworkPolicy shop/tenantry-allow-egress");
    assert_eq!(
        finding.message,
        "egress to DNS (pods k8s-app=kube-dns in namespace kube-system) on 53/UDP, 53/TCP is denied by NetworkPolicy shop/tenantry-allow-egress, NetworkPolicy shop/tenantry-default-deny: pods in shop resolve no names"
    );
    assert_eq!(
        finding.fix,
        "tenantry render --write shop (sets the DNS rule in spec.egress of NetworkPolicy shop/tenantry-allow-egress again), then commit the change"
    );

    // The allow policy's file dropped from the tree.
    let mut edited = tree(&f);
    edited.retain(|o| o["metadata"]["name"] != "tenantry-allow-egress");
    let finding = only_fail(&diagnose(&offline(&f, edited)), "network-reachability");
    assert!(
        finding
            .message
            .contains("denied by NetworkPolicy shop/tenantry-default-deny (it is missing)"),
        "{finding:?}"
    );

    // Only TCP allowed: UDP, which most lookups use, is named.
    let mut edited = tree(&f);
    let ports = &mut find(&mut edited, "NetworkPolicy", "tenantry-allow-egress")["spec"]["egress"]
        [1]["ports"];
    ports
        .as_array_mut()
        .unwrap()
        .retain(|p| p["protocol"] == "TCP");
    let finding = only_fail(&diagnose(&offline(&f, edited)), "network-reachability");
    assert!(
        finding.message.contains(" on 53/UDP is denied"),
        "{finding:?}"
    );
}

#[test]
fn a_cilium_tree_without_dns_or_the_gateway_fails_on_its_one_policy() {
    let f = fixture("{ network: { provider: cilium, defaultDenyEgress: true } }");
    let mut edited = tree(&f);
    let spec = &mut find(&mut edited, "CiliumNetworkPolicy", "tenantry-isolation")["spec"];
    spec["egress"].as_array_mut().unwrap().truncate(1);
    spec["ingress"].as_array_mut().unwrap().truncate(1);
    let checks = diagnose(&offline(&f, edited));
    let c = check(&checks, "network-reachability");
    assert_eq!(c.verdict, Verdict::Fail);
    let objects: Vec<&str> = c.findings.iter().map(|x| x.object.as_str()).collect();
    assert_eq!(
        objects,
        [
            "CiliumNetworkPolicy shop/tenantry-isolation",
            "CiliumNetworkPolicy shop/tenantry-isolation"
        ]
    );
    assert!(c.findings[0].message.starts_with("egress to DNS"));
    assert!(
        c.findings[1]
            .fix
            .contains("spec.ingress of CiliumNetworkPolicy shop/tenantry-isolation")
    );
}

#[test]
fn a_tree_that_shuts_out_the_gateway_fails_and_a_platform_without_one_says_so() {
    let f = on_platform("gateway: { name: public, namespace: edge }\n", "{}");
    let mut edited = tree(&f);
    let from = &mut find(&mut edited, "NetworkPolicy", "tenantry-allow-ingress")["spec"]["ingress"]
        [0]["from"];
    from.as_array_mut().unwrap().truncate(1); // the tenant's own namespaces only
    let finding = only_fail(&diagnose(&offline(&f, edited)), "network-reachability");
    assert_eq!(finding.object, "NetworkPolicy shop/tenantry-allow-ingress");
    assert_eq!(
        finding.message,
        "ingress from the platform gateway's namespace edge is denied by NetworkPolicy shop/tenantry-allow-ingress, NetworkPolicy shop/tenantry-default-deny: Gateway edge/public cannot reach the tenant's Services"
    );
    assert_eq!(
        finding.fix,
        "tenantry render --write shop (sets the gateway namespace edge in spec.ingress of NetworkPolicy shop/tenantry-allow-ingress again), then commit the change"
    );

    let none = on_platform("gateway: null\n", "{}");
    let checks = diagnose(&offline(&none, tree(&none)));
    let c = check(&checks, "network-reachability");
    assert_eq!(c.verdict, Verdict::Ok);
    assert_eq!(
        c.notes,
        ["no gateway in tenantry.yaml: ingress from one is not judged"]
    );
}

#[test]
fn openbao_egress_is_noted_not_required() {
    let f = fixture("{ secrets: { openbao: true }, network: { defaultDenyEgress: true } }");
    let checks = diagnose(&offline(&f, tree(&f)));
    let c = check(&checks, "network-reachability");
    assert_eq!(c.verdict, Verdict::Ok, "{c:#?}");
    assert!(
        c.notes[0].starts_with(
            "pods in shop cannot reach OpenBao (namespace openbao, 8200/TCP; denied by NetworkPolicy shop/tenantry-allow-egress, NetworkPolicy shop/tenantry-default-deny): not needed"
        ),
        "{c:#?}"
    );
    let open = fixture("{ secrets: { openbao: true } }");
    let checks = diagnose(&offline(&open, tree(&open)));
    assert_eq!(
        check(&checks, "network-reachability").notes,
        ["pods in shop reach OpenBao (namespace openbao, 8200/TCP)"]
    );
}

#[test]
fn a_tree_without_the_pull_secret_wiring_fails_naming_the_object_and_field() {
    let f = fixture("{}");
    let id = "service-account-pull-secret";

    let mut edited = tree(&f);
    edited.retain(|o| o["kind"] != "ExternalSecret");
    let finding = only_fail(&diagnose(&offline(&f, edited)), id);
    assert_eq!(finding.object, "ExternalSecret shop/ghcr-auth");
    assert_eq!(
        finding.message,
        "is not in the committed tree, so Secret shop/ghcr-auth is never created and private images cannot be pulled"
    );
    assert_eq!(
        finding.fix,
        "tenantry render --write shop (sets the ExternalSecret again), then commit the change"
    );

    let mut edited = tree(&f);
    find(&mut edited, "ServiceAccount", "shop")
        .as_object_mut()
        .unwrap()
        .remove("imagePullSecrets");
    let finding = only_fail(&diagnose(&offline(&f, edited)), id);
    assert_eq!(finding.object, "ServiceAccount shop/shop");
    assert_eq!(
        finding.message,
        "Tenantry's ServiceAccount does not list ghcr-auth in imagePullSecrets"
    );
    assert_eq!(
        finding.fix,
        "tenantry render --write shop (sets imagePullSecrets again), then commit the change"
    );

    // The ExternalSecret makes another Secret than the one the ServiceAccount lists.
    let mut edited = tree(&f);
    find(&mut edited, "ExternalSecret", "ghcr-auth")["spec"]["target"]["name"] = json!("regcred");
    let finding = only_fail(&diagnose(&offline(&f, edited)), id);
    assert_eq!(finding.object, "ServiceAccount shop/shop");
    assert_eq!(
        finding.message,
        "imagePullSecrets lists ghcr-auth, but the pull secret is Secret shop/regcred (spec.target.name of ExternalSecret shop/ghcr-auth)"
    );
}

#[test]
fn a_tree_namespace_without_its_declared_labels_fails() {
    let f = fixture("{}");
    let mut edited = tree(&f);
    find(&mut edited, "Namespace", "shop")["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("apps.platform/tenant");
    let finding = only_fail(&diagnose(&offline(&f, edited)), "namespace-labels");
    assert_eq!(finding.object, "Namespace shop");
    assert!(
        finding.message.starts_with(
            "label apps.platform/tenant is missing, declared true: the pull-secret opt-in"
        ),
        "{finding:?}"
    );
    assert_eq!(
        finding.fix,
        "tenantry render --write shop (sets metadata.labels.apps.platform/tenant again), then commit the change"
    );
    let mut edited = tree(&f);
    edited.retain(|o| o["kind"] != "Namespace");
    let finding = only_fail(&diagnose(&offline(&f, edited)), "namespace-labels");
    assert_eq!(
        finding.message,
        "is not in the committed tree, so GitOps does not create it"
    );
}

#[test]
fn a_literal_pull_secret_template_is_compared_with_the_allowed_registries() {
    let f = fixture("{ registries: [ghcr.io/acme, quay.io/acme] }");
    let mut edited = tree(&f);
    find(&mut edited, "ExternalSecret", "ghcr-auth")["spec"]["target"]["template"]["data"][".dockerconfigjson"] =
        json!(r#"{"auths":{"https://ghcr.io":{"auth":"{{ .auth }}"}}}"#);
    let checks = diagnose(&offline(&f, edited.clone()));
    let c = check(&checks, "pull-secret-registries");
    assert_eq!(c.verdict, Verdict::Warn, "{c:#?}");
    assert_eq!(c.findings.len(), 1, "{c:#?}");
    assert!(
        c.findings[0]
            .message
            .starts_with("the tenant may pull from quay.io/acme (spec.registries), but the template's auths hold no credential for quay.io"),
        "{c:#?}"
    );
    find(&mut edited, "ExternalSecret", "ghcr-auth")["spec"]["target"]["template"]["type"] =
        json!("Opaque");
    let finding = only_fail(&diagnose(&offline(&f, edited)), "pull-secret-registries");
    assert_eq!(
        finding.fix,
        "tenantry render --write shop (sets spec.target.template.type again), then commit the change"
    );
}

#[test]
fn without_the_tree_the_offline_checks_say_why() {
    let f = fixture("{}");
    let mut o = offline(&f, Vec::new());
    o.tree = Err("tenants/shop/kustomization.yaml is missing".to_owned());
    let checks = diagnose(&o);
    let c = check(&checks, "network-reachability");
    assert_eq!(c.verdict, Verdict::Skipped);
    assert_eq!(
        c.reason.as_deref(),
        Some(
            "--offline: the cluster was not consulted, and tenants/shop/kustomization.yaml is missing"
        )
    );
}

#[test]
fn online_the_same_checks_read_the_live_objects() {
    let f = fixture("{ network: { defaultDenyEgress: true } }");
    let mut live = tree(&f);
    let egress = &mut find(&mut live, "NetworkPolicy", "tenantry-allow-egress")["spec"]["egress"];
    egress.as_array_mut().unwrap().truncate(1);
    let mut o = offline(&f, tree(&f)); // the committed tree is fine; the cluster is not
    o.cluster = Ok(crate::ClusterView {
        missing_kinds: Vec::new(),
        live,
        service_accounts: Ok(Vec::new()),
        workloads: Ok(Vec::new()),
        events: Ok(Vec::new()),
        pull_secrets: Ok(Vec::new()),
        secret_sync: Ok(Vec::new()),
        // Not listed: the check falls back to the labelled objects, and says so.
        network_policies: Err("cannot list NetworkPolicies: forbidden".to_owned()),
        other_tenant_namespaces: Ok(Vec::new()),
    });
    let finding = only_fail(&diagnose(&o), "network-reachability");
    assert_eq!(finding.object, "NetworkPolicy shop/tenantry-allow-egress");
    assert_eq!(
        finding.fix,
        "tenantry apply shop (sets the DNS rule in spec.egress of NetworkPolicy shop/tenantry-allow-egress again)"
    );
}
