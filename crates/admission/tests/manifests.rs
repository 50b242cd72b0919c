//! `tenantry webhook manifests` prints YAML that parses into the Kubernetes types it claims to
//! be, and installs the webhook the safe way: fail closed, limited to tenant namespaces,
//! least-privilege RBAC, a hardened pod.

use k8s_openapi::api::{
    admissionregistration::v1::ValidatingWebhookConfiguration,
    apps::v1::Deployment,
    core::v1::{Service, ServiceAccount},
    policy::v1::PodDisruptionBudget,
    rbac::v1::{ClusterRole, ClusterRoleBinding},
};
use serde_json::{Value, json};
use tenantry_admission::manifests::{ManifestOptions, documents, to_yaml};

fn parse(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(yaml).expect("manifests are valid YAML")
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

fn typed<T: serde::de::DeserializeOwned>(docs: &[Value], kind: &str) -> T {
    serde_json::from_value(find(docs, kind).clone())
        .unwrap_or_else(|e| panic!("{kind} does not match its schema: {e}"))
}

#[test]
fn manifests_install_a_fail_closed_webhook_limited_to_tenant_namespaces() {
    let mut opts = ManifestOptions::new("tenantry.dev/tenant");
    opts.ca_bundle =
        Some(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".to_vec());
    let yaml = to_yaml(&documents(&opts));
    assert!(
        yaml.contains("# failurePolicy Fail"),
        "the choice is explained in the output"
    );
    let docs = parse(&yaml);
    assert!(
        docs.iter().all(|d| d["kind"] != "Certificate"),
        "no cert-manager with --ca-bundle"
    );

    let vwc: ValidatingWebhookConfiguration = typed(&docs, "ValidatingWebhookConfiguration");
    let webhooks = vwc.webhooks.unwrap();
    assert_eq!(webhooks.len(), 2);
    for hook in &webhooks {
        assert_eq!(
            hook.failure_policy.as_deref(),
            Some("Fail"),
            "{}",
            hook.name
        );
        assert_eq!(hook.side_effects, "None");
        assert_eq!(hook.admission_review_versions, ["v1"]);
        assert!(hook.timeout_seconds.unwrap() <= 10);
        let service = hook.client_config.service.as_ref().unwrap();
        assert_eq!(
            (
                service.namespace.as_str(),
                service.name.as_str(),
                service.path.as_deref()
            ),
            ("tenantry-system", "tenantry-webhook", Some("/validate"))
        );
        assert!(hook.client_config.ca_bundle.is_some());
    }
    // Objects: only namespaces carrying the tenant label are ever sent.
    let objects = &webhooks[0];
    let selector = objects.namespace_selector.as_ref().unwrap();
    let expr = &selector.match_expressions.as_ref().unwrap()[0];
    assert_eq!(
        (expr.key.as_str(), expr.operator.as_str()),
        ("tenantry.dev/tenant", "Exists")
    );
    let rules = objects.rules.as_ref().unwrap();
    let covers = |group: &str, resource: &str, op: &str| {
        rules.iter().any(|r| {
            r.api_groups.as_ref().unwrap().iter().any(|g| g == group)
                && r.resources.as_ref().unwrap().iter().any(|x| x == resource)
                && r.operations.as_ref().unwrap().iter().any(|o| o == op)
        })
    };
    for (group, resource, op) in [
        ("", "pods", "CREATE"),
        ("", "pods/ephemeralcontainers", "UPDATE"),
        ("", "services", "CREATE"),
        ("", "resourcequotas", "DELETE"),
        ("", "limitranges", "UPDATE"),
        ("apps", "deployments", "UPDATE"),
        ("apps", "statefulsets", "CREATE"),
        ("batch", "cronjobs", "CREATE"),
        ("networking.k8s.io", "networkpolicies", "DELETE"),
        ("rbac.authorization.k8s.io", "rolebindings", "UPDATE"),
        ("external-secrets.io", "externalsecrets", "CREATE"),
        ("kustomize.toolkit.fluxcd.io", "kustomizations", "CREATE"),
        ("helm.toolkit.fluxcd.io", "helmreleases", "UPDATE"),
        ("gateway.networking.k8s.io", "httproutes", "CREATE"),
    ] {
        assert!(
            covers(group, resource, op),
            "{op} {group}/{resource} not covered"
        );
    }
    assert!(
        !covers("", "pods", "DELETE"),
        "deleting workloads never waits on the webhook"
    );
    // Namespaces: a separate entry selected by the tenant label on the Namespace itself.
    let namespaces = &webhooks[1];
    let object_selector = namespaces.object_selector.as_ref().unwrap();
    assert_eq!(
        object_selector.match_expressions.as_ref().unwrap()[0].key,
        "tenantry.dev/tenant"
    );
    let rule = &namespaces.rules.as_ref().unwrap()[0];
    assert_eq!(
        rule.resources.as_deref(),
        Some(&["namespaces".to_owned()][..])
    );
    for op in ["UPDATE", "DELETE"] {
        assert!(rule.operations.as_ref().unwrap().iter().any(|o| o == op));
    }

    // RBAC: read namespaces and the tenants' parameters, nothing else.
    let role: ClusterRole = typed(&docs, "ClusterRole");
    let rules = role.rules.unwrap();
    assert_eq!(rules.len(), 2);
    for (rule, (group, resource)) in rules
        .iter()
        .zip([("", "namespaces"), ("tenantry.dev", "guardrailparameters")])
    {
        assert_eq!(rule.api_groups.as_deref(), Some(&[group.to_owned()][..]));
        assert_eq!(rule.resources.as_deref(), Some(&[resource.to_owned()][..]));
        let mut verbs = rule.verbs.clone();
        verbs.sort();
        assert_eq!(verbs, ["get", "list", "watch"]);
    }
    let binding: ClusterRoleBinding = typed(&docs, "ClusterRoleBinding");
    assert_eq!(binding.role_ref.name, "tenantry-webhook");
    let _: ServiceAccount = typed(&docs, "ServiceAccount");

    // The pod: restricted-compliant, read-only, two replicas, a PDB.
    let deployment: Deployment = typed(&docs, "Deployment");
    let spec = deployment.spec;
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.unwrap();
    let pod_sc = pod.security_context.unwrap();
    assert_eq!(pod_sc.run_as_non_root, Some(true));
    assert_eq!(pod_sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
    let container = &pod.containers[0];
    let sc = container.security_context.as_ref().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(
        sc.capabilities.as_ref().unwrap().drop.as_deref(),
        Some(&["ALL".to_owned()][..])
    );
    assert!(container.resources.as_ref().unwrap().requests.is_some());
    assert!(
        container
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .as_deref()
            == Some("/readyz")
    );
    let args = container.args.as_ref().unwrap();
    assert_eq!(args[0], "webhook");
    let pdb: PodDisruptionBudget = typed(&docs, "PodDisruptionBudget");
    assert!(pdb.spec.unwrap().min_available.is_some());
    let _: Service = typed(&docs, "Service");

    // The webhook's own Deployment passes Tenantry's own Pod Security check at restricted.
    let findings = tenantry_policy::check_object(
        tenantry_policy::Level::Restricted,
        tenantry_policy::Version::Latest,
        find(&docs, "Deployment"),
    );
    assert!(findings.is_empty(), "{findings:?}");
    // And its namespace is not a tenant namespace.
    let ns = find(&docs, "Namespace");
    assert!(
        ns["metadata"]["labels"]
            .get("tenantry.dev/tenant")
            .is_none()
    );
}

#[test]
fn without_a_ca_bundle_cert_manager_issues_and_injects_the_certificate() {
    let mut opts = ManifestOptions::new("example.com/tenant");
    opts.namespace = "guardrails".to_owned();
    opts.platform_config = Some(
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\nlabelPrefix: example.com\n".to_owned(),
    );
    let docs = parse(&to_yaml(&documents(&opts)));
    let vwc = find(&docs, "ValidatingWebhookConfiguration");
    assert_eq!(
        vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "guardrails/tenantry-webhook"
    );
    assert_eq!(
        vwc["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]["key"], "example.com/tenant",
        "the selector uses the platform's tenant label"
    );
    let certificate = find(&docs, "Certificate");
    assert_eq!(certificate["spec"]["secretName"], "tenantry-webhook-tls");
    assert!(
        certificate["spec"]["dnsNames"]
            .as_array()
            .unwrap()
            .contains(&"tenantry-webhook.guardrails.svc".into())
    );
    let config = find(&docs, "ConfigMap");
    assert!(
        config["data"]["tenantry.yaml"]
            .as_str()
            .unwrap()
            .contains("labelPrefix: example.com")
    );
    let deployment = find(&docs, "Deployment");
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap();
    assert!(
        args.contains(&"--config=/etc/tenantry/config/tenantry.yaml".into()),
        "{args:?}"
    );
}

#[test]
fn with_policies_they_are_installed_first_and_the_webhook_leaves_their_checks_to_them() {
    use tenantry_policy::{
        Engine,
        vap::{self, VapOptions},
    };
    let engine = Engine::new(&tenantry_api::Platform::default());
    let args = |docs: &[Value]| -> Vec<String> {
        serde_json::from_value(
            find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"].clone(),
        )
        .unwrap()
    };
    let mut opts = ManifestOptions::new("tenantry.dev/tenant");
    let plain = parse(&to_yaml(&documents(&opts)));
    assert!(!args(&plain).contains(&"--with-vap".to_owned()));
    assert!(
        plain
            .iter()
            .all(|d| d["kind"] != "ValidatingAdmissionPolicy")
    );

    opts.policies = vap::generate(&engine, &VapOptions::default());
    let docs = parse(&to_yaml(&documents(&opts)));
    assert!(args(&docs).contains(&"--with-vap".to_owned()));
    // Next to the policies it reads Tenantry's policies and bindings (to leave a bound
    // tenant's per-tenant checks to them), and only then; never a write.
    let reads_bindings = |docs: &[Value]| {
        find(docs, "ClusterRole")["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| {
                r["resources"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("validatingadmissionpolicybindings"))
            })
    };
    assert!(reads_bindings(&docs));
    assert!(!reads_bindings(&plain));
    for rule in find(&docs, "ClusterRole")["rules"].as_array().unwrap() {
        assert_eq!(rule["verbs"], json!(["get", "list", "watch"]), "{rule}");
    }
    // Every policy and binding, before anything of the webhook's.
    let n = opts.policies.len();
    assert_eq!(docs[..n], opts.policies[..]);
    assert!(docs[n..].iter().all(|d| {
        !d["kind"]
            .as_str()
            .unwrap()
            .starts_with("ValidatingAdmissionPolicy")
    }));
}
