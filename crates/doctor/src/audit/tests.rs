//! The audit's decisions on recorded API-server answers (`testdata/k8s-wire`, a v1.36
//! server): the RBAC objects of a cluster holding a deliberately bad ClusterRoleBinding, the
//! SubjectAccessReview answers about that ServiceAccount, and the Status of each refusing
//! layer.

use std::path::PathBuf;

use serde_json::Value;

use super::mtb::{self, Attempt, Refuser};
use super::rbac::{Rbac, Request, granting_bindings};
use super::*;
use crate::checks::tests::{Fixture, fixture};

fn wire(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/k8s-wire")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (testdata/k8s-wire in the repository)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn items(name: &str) -> Vec<Value> {
    wire(name)["response"]["body"]["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// The server's RBAC objects as recorded.
fn recorded_rbac() -> Rbac {
    Rbac {
        cluster_roles: items("list-clusterroles-200.json"),
        roles: items("list-roles-200.json"),
        cluster_role_bindings: items("list-clusterrolebindings-200.json"),
        role_bindings: items("list-rolebindings-200.json"),
    }
}

/// The recorded ServiceAccount, as the audit sees it.
fn tenant_bot() -> Identity {
    service_account("tenantry-fx-audit", "tenant-bot")
}

fn request<'a>(verb: &'a str, resource: &'a str, namespace: Option<&'a str>) -> Request<'a> {
    Request {
        verb,
        group: "",
        resource,
        subresource: "",
        namespace,
    }
}

#[test]
fn the_bad_binding_is_named_for_cluster_wide_secrets_and_the_tenant_role_for_home() {
    let rbac = recorded_rbac();
    let sa = tenant_bot();
    // What the recorded SubjectAccessReview allowed, RBAC said by which binding.
    let sar = wire("subjectaccessreview-sa-secrets-cluster-allowed-201.json");
    assert_eq!(sar["response"]["body"]["status"]["allowed"], true);
    assert!(
        sar["response"]["body"]["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("tenantry-fx-audit-secrets")
    );
    assert_eq!(
        granting_bindings(&rbac, &sa, &request("list", "secrets", None)),
        [
            "ClusterRoleBinding tenantry-fx-audit-secrets → ClusterRole tenantry-fx-secret-reader (to ServiceAccount tenant-bot)"
        ]
    );
    // In its own namespace the same read is granted twice: the walk names both, so
    // removing the bad binding is seen not to remove the tenant's own access.
    assert_eq!(
        granting_bindings(
            &rbac,
            &sa,
            &request("get", "secrets", Some("tenantry-fx-audit"))
        ),
        [
            "ClusterRoleBinding tenantry-fx-audit-secrets → ClusterRole tenantry-fx-secret-reader (to ServiceAccount tenant-bot)",
            "RoleBinding tenantry-fx-audit/tenant-bot-edit → ClusterRole edit (to ServiceAccount tenant-bot)",
        ]
    );
    // Writes are granted at home only, by the tenant's binding.
    assert_eq!(
        granting_bindings(
            &rbac,
            &sa,
            &request("delete", "secrets", Some("tenantry-fx-audit"))
        ),
        [
            "RoleBinding tenantry-fx-audit/tenant-bot-edit → ClusterRole edit (to ServiceAccount tenant-bot)"
        ]
    );
    assert!(granting_bindings(&rbac, &sa, &request("delete", "secrets", None)).is_empty());
}

#[test]
fn groups_every_identity_is_in_are_matched_and_subresources_by_their_rules() {
    let rbac = recorded_rbac();
    let sa = tenant_bot();
    // system:basic-user is bound to the group system:authenticated.
    let selfreview = Request {
        verb: "create",
        group: "authorization.k8s.io",
        resource: "selfsubjectaccessreviews",
        subresource: "",
        namespace: None,
    };
    assert_eq!(
        granting_bindings(&rbac, &sa, &selfreview),
        [
            "ClusterRoleBinding system:basic-user → ClusterRole system:basic-user (to Group system:authenticated)"
        ]
    );
    // edit grants pods/exec at home, through the `pods/exec` rule; nothing grants it in
    // kube-system (the recorded SubjectAccessReview said no as well).
    let exec = |ns| Request {
        verb: "create",
        group: "",
        resource: "pods",
        subresource: "exec",
        namespace: Some(ns),
    };
    assert_eq!(
        granting_bindings(&rbac, &sa, &exec("tenantry-fx-audit")).len(),
        1
    );
    assert!(granting_bindings(&rbac, &sa, &exec("kube-system")).is_empty());
    let denied = wire("subjectaccessreview-sa-pods-exec-denied-201.json");
    assert_eq!(denied["response"]["body"]["status"]["allowed"], false);
    // A User named like the ServiceAccount is not the ServiceAccount, and a group owner
    // (no user) matches no User subject.
    let group_owner = Identity {
        name: "Group devs".into(),
        user: String::new(),
        groups: vec!["devs".into(), "system:authenticated".into()],
        acts_as: group_member("devs"),
    };
    assert!(
        granting_bindings(
            &rbac,
            &group_owner,
            &request("get", "secrets", Some("tenantry-fx-audit"))
        )
        .is_empty()
    );
}

#[test]
fn rules_naming_resources_do_not_cover_unnamed_requests_and_wildcards_do() {
    let rbac = Rbac {
        cluster_roles: vec![
            serde_json::json!({"metadata": {"name": "one-secret"}, "rules": [
                {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"], "verbs": ["get"]}]}),
            serde_json::json!({"metadata": {"name": "any-exec"}, "rules": [
                {"apiGroups": ["*"], "resources": ["*/exec"], "verbs": ["*"]}]}),
        ],
        cluster_role_bindings: ["one-secret", "any-exec"]
            .map(|r| serde_json::json!({"metadata": {"name": r}, "roleRef": {"kind": "ClusterRole", "name": r},
                "subjects": [{"kind": "Group", "name": "system:serviceaccounts"}]}))
            .to_vec(),
        ..Rbac::default()
    };
    let sa = tenant_bot();
    assert!(granting_bindings(&rbac, &sa, &request("get", "secrets", None)).is_empty());
    let exec = Request {
        verb: "create",
        group: "",
        resource: "pods",
        subresource: "exec",
        namespace: Some("kube-system"),
    };
    assert_eq!(
        granting_bindings(&rbac, &sa, &exec),
        ["ClusterRoleBinding any-exec → ClusterRole any-exec (to Group system:serviceaccounts)"]
    );
}

/// Tenant `shop` with the defaults, as the checks' tests build it.
fn shop() -> (tenantry_core::ResolvedTenant, tenantry_core::Rendered) {
    let Fixture {
        tenant, rendered, ..
    } = fixture("{}");
    (tenant, rendered)
}

fn served(group: &str, resource: &str, namespaced: bool, verbs: &[&str]) -> ServedResource {
    ServedResource {
        group: group.into(),
        resource: resource.into(),
        namespaced,
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
    }
}

/// The cluster-scoped type every identity may create (`system:basic-user`).
fn self_reviews() -> ServedResource {
    served(
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        false,
        &["create"],
    )
}

#[test]
fn the_plan_asks_each_served_verb_once_per_scope_and_every_escalation_path() {
    let (t, rendered) = shop();
    let ids = identities(&t, &rendered);
    assert_eq!(ids, [service_account("shop", "shop")]);
    let scopes = scopes(
        &t,
        &["other".into(), "shop".into(), "another".into()],
        "kube-system",
    );
    assert_eq!(
        scopes.iter().map(Scope::label).collect::<Vec<_>>(),
        [
            "own namespace shop",
            "other tenant's namespace another",
            "platform namespace kube-system",
            "cluster-wide"
        ]
    );
    let resources = [
        served("", "secrets", true, &VERBS),
        // Served in two versions: one type to RBAC.
        served("", "secrets", true, &VERBS),
        served("", "nodes", false, &["get", "list"]),
        self_reviews(),
    ];
    let questions = plan(&ids, &scopes, &resources);
    let count = |scope: usize, resource: &str| {
        questions
            .iter()
            .filter(|q| q.scope == scope && q.resource == resource && q.subresource.is_empty())
            .count()
    };
    for s in 0..4 {
        assert_eq!(count(s, "secrets"), 8, "scope {s}");
    }
    assert_eq!((count(0, "nodes"), count(3, "nodes")), (0, 2));
    assert_eq!(count(3, "selfsubjectaccessreviews"), 1);
    let asked = |scope: usize, verb: &str, resource: &str, sub: &str| {
        questions.iter().any(|q| {
            q.scope == scope && q.verb == verb && q.resource == resource && q.subresource == sub
        })
    };
    // bind/escalate everywhere, even at home; tokens and exec only outside.
    assert!(asked(0, "bind", "clusterroles", "") && asked(3, "escalate", "roles", ""));
    assert!(!asked(0, "create", "serviceaccounts", "token"));
    assert!(asked(1, "create", "serviceaccounts", "token") && asked(2, "create", "pods", "exec"));
    assert!(asked(3, "impersonate", "groups", "") && !asked(1, "impersonate", "groups", ""));
    let mut sorted = questions.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), questions.len());
    // 4 scopes × 8 secrets, 2 nodes, 1 self-review, 4×4 bind/escalate, 3×4 token/exec/
    // impersonate serviceaccounts, 3 cluster-only impersonations.
    assert_eq!(questions.len(), 32 + 2 + 1 + 16 + 12 + 3);
}

/// Answers as the recorded server would give them: RBAC's decision for each question,
/// from the recorded objects (the reason as RBAC words it).
fn answer(rbac: &Rbac, ids: &[Identity], scopes: &[Scope], q: &Question) -> Answer {
    let by = granting_bindings(
        rbac,
        &ids[q.identity],
        &Request {
            verb: &q.verb,
            group: &q.group,
            resource: &q.resource,
            subresource: &q.subresource,
            namespace: scopes[q.scope].namespace.as_deref(),
        },
    );
    Answer {
        allowed: !by.is_empty(),
        reason: by.first().cloned().unwrap_or_default(),
    }
}

#[test]
fn the_bad_binding_is_the_one_finding_and_home_access_reads_on_one_screen() {
    let rbac = recorded_rbac();
    let ids = vec![tenant_bot()];
    let scopes = vec![
        Scope {
            kind: ScopeKind::Own,
            namespace: Some("tenantry-fx-audit".into()),
        },
        Scope {
            kind: ScopeKind::Platform,
            namespace: Some("kube-system".into()),
        },
        Scope {
            kind: ScopeKind::Cluster,
            namespace: None,
        },
    ];
    let resources = [
        served("", "secrets", true, &VERBS),
        served("", "pods", true, &VERBS),
        served("", "resourcequotas", true, &VERBS),
        served("", "namespaces", false, &VERBS),
        self_reviews(),
    ];
    let questions = plan(&ids, &scopes, &resources);
    let answers: Vec<Answer> = questions
        .iter()
        .map(|q| answer(&rbac, &ids, &scopes, q))
        .collect();
    let audit = summarise(&ids, &scopes, &questions, &answers, &rbac);

    // Findings: reading secrets everywhere, once per scope with the verbs merged, naming the
    // bad binding; nothing else (the self-review is everyone's, home access is expected).
    let found: Vec<(ScopeKind, &str, Vec<&str>, bool)> = audit
        .findings
        .iter()
        .map(|f| {
            (
                f.scope,
                f.resource.as_str(),
                f.verbs.iter().map(String::as_str).collect(),
                f.granted_by
                    .iter()
                    .all(|b| b.contains("tenantry-fx-audit-secrets")),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                ScopeKind::Platform,
                "secrets",
                vec!["get", "list", "watch"],
                true
            ),
            (
                ScopeKind::Cluster,
                "secrets",
                vec!["get", "list", "watch"],
                true
            ),
        ]
    );
    assert!(
        audit.findings[1]
            .escalation
            .is_some_and(|w| w.contains("every Secret"))
    );

    let home = &audit.identities[0].scopes[0];
    assert_eq!(
        home.grants,
        [
            Grant {
                verbs: VERBS.map(String::from).to_vec(),
                resources: vec!["pods".into(), "secrets".into()]
            },
            Grant {
                verbs: vec!["get".into(), "list".into(), "watch".into()],
                resources: vec!["resourcequotas".into()]
            },
        ]
    );
    let cluster = &audit.identities[0].scopes[2];
    assert_eq!(
        cluster.everyone,
        ["selfsubjectaccessreviews.authorization.k8s.io"]
    );
    assert_eq!(cluster.allowed, 4);
}

#[test]
fn a_clean_tenant_has_no_finding_even_with_escalations_asked_at_home() {
    let (t, rendered) = shop();
    let ids = identities(&t, &rendered);
    let scopes = scopes(&t, &[], "kube-system");
    let questions = plan(&ids, &scopes, &[served("", "pods", true, &["get"])]);
    let answers: Vec<Answer> = questions
        .iter()
        .map(|q| Answer {
            // Everything asked at home allowed, bind and escalate included.
            allowed: scopes[q.scope].kind == ScopeKind::Own,
            reason: String::new(),
        })
        .collect();
    let audit = summarise(&ids, &scopes, &questions, &answers, &Rbac::default());
    // One escalation finding per resource, verbs merged; plain access at home is none.
    let found: Vec<(ScopeKind, &str, Vec<&str>)> = audit
        .findings
        .iter()
        .map(|f| {
            (
                f.scope,
                f.resource.as_str(),
                f.verbs.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                ScopeKind::Own,
                "clusterroles.rbac.authorization.k8s.io",
                vec!["bind", "escalate"]
            ),
            (
                ScopeKind::Own,
                "roles.rbac.authorization.k8s.io",
                vec!["bind", "escalate"]
            ),
        ]
    );
    assert!(audit.findings.iter().all(|f| f.escalation.is_some()));
    let denied: Vec<Answer> = questions
        .iter()
        .map(|q| Answer {
            allowed: scopes[q.scope].kind == ScopeKind::Own && q.verb == "get",
            reason: String::new(),
        })
        .collect();
    let audit = summarise(&ids, &scopes, &questions, &denied, &Rbac::default());
    assert!(audit.findings.is_empty(), "{:#?}", audit.findings);
}

fn status(name: &str) -> (u16, String) {
    let record = wire(name);
    let body = &record["response"]["body"];
    (
        body["code"].as_u64().unwrap() as u16,
        body["message"].as_str().unwrap().to_owned(),
    )
}

#[track_caller]
fn refused_by(name: &str) -> (Refuser, Option<String>) {
    let (code, message) = status(name);
    match mtb::classify(code, &message) {
        Attempt::Refused { layer, by, .. } => (layer, by),
        Attempt::Allowed => panic!("{name}: allowed"),
    }
}

#[test]
fn each_refusing_layer_is_read_from_the_recorded_status() {
    assert_eq!(
        refused_by("impersonated-dryrun-apply-clusterrole-403.json").0,
        Refuser::Rbac
    );
    assert_eq!(
        refused_by("impersonated-dryrun-apply-resourcequota-403.json").0,
        Refuser::Rbac
    );
    assert_eq!(
        refused_by("forbidden-sa-list-nodes-403.json").0,
        Refuser::Rbac
    );
    assert_eq!(
        refused_by("impersonated-dryrun-apply-nodeport-service-quota-403.json").0,
        Refuser::Quota
    );
    assert_eq!(
        refused_by("resourcequota-exceeded-pods-403.json").0,
        Refuser::Quota
    );
    assert_eq!(
        refused_by("resourcequota-missing-requests-403.json").0,
        Refuser::Quota
    );
    assert_eq!(
        refused_by("impersonated-dryrun-apply-pod-run-as-root-403.json").0,
        Refuser::PodSecurity
    );
    assert_eq!(
        refused_by("podsecurity-privileged-pod-403.json").0,
        Refuser::PodSecurity
    );
    assert_eq!(
        refused_by("limitrange-max-exceeded-403.json").0,
        Refuser::LimitRange
    );
    let (layer, by) = refused_by("webhook-denied-configmap-403.json");
    assert_eq!(layer, Refuser::Webhook);
    assert!(by.is_some_and(|b| !b.is_empty()));
    assert_eq!(
        refused_by("create-configmap-invalid-name-422.json").0,
        Refuser::Validation
    );
}

#[test]
fn every_case_targets_the_tenant_and_pods_differ_from_a_restricted_pod_in_one_thing() {
    let (t, rendered) = shop();
    let cases = mtb::cases(&t, &rendered);
    let ids: Vec<&str> = cases.iter().map(|c| c.id).collect();
    assert_eq!(
        ids,
        [
            "privileged",
            "host-namespaces",
            "host-path",
            "host-port",
            "capabilities",
            "run-as-root",
            "nodeport-service",
            "loadbalancer-service",
            "edit-quota",
            "edit-limit-range",
            "edit-network-policy",
            "edit-namespace-labels",
            "create-cluster-role",
            "create-cluster-role-binding",
        ]
    );
    for c in &cases {
        assert!(
            c.object.namespace.as_deref().is_none_or(|ns| ns == "shop"),
            "{}",
            c.id
        );
    }
    // The edits change the rendered objects in one field.
    let edit = |id: &str| cases.iter().find(|c| c.id == id).unwrap().object.clone();
    let quota = edit("edit-quota");
    let rendered_quota = rendered
        .objects
        .iter()
        .find(|o| o.kind == "ResourceQuota")
        .unwrap();
    assert_eq!(quota.name, rendered_quota.name);
    assert_eq!(quota.body["spec"]["hard"]["pods"], "100000");
    let ns = edit("edit-namespace-labels");
    assert_eq!(ns.name, "shop");
    assert_eq!(
        ns.body["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    // The pods pass the restricted level except for their one violation (checked with the
    // guardrail engine's exact Pod Security implementation).
    for c in cases.iter().filter(|c| c.object.kind == "Pod") {
        let violations = restricted_violations(&c.object.body);
        let expected: &[&str] = match c.id {
            "privileged" => &["privileged", "allowPrivilegeEscalation"],
            "host-namespaces" => &["hostNamespaces"],
            // At restricted, restrictedVolumes is the check that refuses hostPath.
            "host-path" => &["restrictedVolumes"],
            "host-port" => &["hostPorts"],
            "capabilities" => &["capabilities_restricted"],
            "run-as-root" => &["runAsNonRoot", "runAsUser"],
            other => panic!("unexpected pod case {other}"),
        };
        let mut violations = violations;
        violations.sort();
        let mut expected = expected.to_vec();
        expected.sort();
        assert_eq!(violations, expected, "{}", c.id);
    }
    let control = mtb::restricted_pod("shop", "control", |_| {});
    assert!(restricted_violations(&control.body).is_empty());
}

/// The restricted Pod Security checks a pod fails, one ID each.
fn restricted_violations(pod: &Value) -> Vec<&'static str> {
    use tenantry_policy::pss::{Level, Version, check_object};
    let mut ids: Vec<&str> = check_object(Level::Restricted, Version::Latest, pod)
        .into_iter()
        .map(|f| f.check)
        .collect();
    ids.dedup();
    ids
}

/// Tenant `shop` with a second namespace, a user owner and a group owner.
fn shop_with_owners() -> (tenantry_core::ResolvedTenant, tenantry_core::Rendered) {
    let Fixture {
        tenant, rendered, ..
    } = fixture(
        "{namespaces: [shop-batch], owners: [{kind: User, name: alice}, {kind: Group, name: devs}]}",
    );
    (tenant, rendered)
}

#[test]
fn every_identity_is_asked_about_every_namespace_of_the_tenant() {
    let (t, rendered) = shop_with_owners();
    let ids = identities(&t, &rendered);
    let names: Vec<&str> = ids.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ServiceAccount shop/shop",
            "ServiceAccount shop-batch/shop",
            "User alice",
            "Group devs"
        ]
    );
    // A group owner is asked about as any member (no user), and its cases run as a
    // synthetic member of the group only.
    let group = &ids[3];
    assert!(group.user.is_empty() && group.synthetic());
    assert_eq!(group.acts_as, "tenantry-audit:member-of:devs");
    assert_eq!(group.groups, ["devs", "system:authenticated"]);
    assert_eq!(ids[2].acts_as, "alice");
    assert!(!ids[2].synthetic());

    let scopes = scopes(&t, &["other".into()], "kube-system");
    assert_eq!(
        scopes.iter().map(Scope::label).collect::<Vec<_>>(),
        [
            "own namespace shop",
            "own namespace shop-batch",
            "other tenant's namespace other",
            "platform namespace kube-system",
            "cluster-wide"
        ]
    );
    let questions = plan(&ids, &scopes, &[served("", "secrets", true, &VERBS)]);
    for identity in 0..ids.len() {
        for scope in 0..scopes.len() {
            let secrets = questions
                .iter()
                .filter(|q| q.identity == identity && q.scope == scope && q.resource == "secrets")
                .count();
            assert_eq!(secrets, 8, "identity {identity} scope {scope}");
        }
    }

    // The behavioural cases: the namespaced ones in each namespace, the cluster ones once.
    let cases = mtb::cases(&t, &rendered);
    let in_ns = |ns: &str| {
        cases
            .iter()
            .filter(|c| c.object.namespace.as_deref() == Some(ns) || c.object.name == ns)
            .map(|c| c.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(in_ns("shop"), in_ns("shop-batch"));
    assert!(in_ns("shop-batch").contains(&"edit-namespace-labels"));
    assert!(in_ns("shop-batch").contains(&"privileged"));
    let labels = cases
        .iter()
        .filter(|c| c.id == "edit-namespace-labels")
        .map(|c| c.object.name.as_str())
        .collect::<Vec<_>>();
    assert_eq!(labels, ["shop", "shop-batch"]);
    assert_eq!(
        cases
            .iter()
            .filter(|c| c.id == "create-cluster-role-binding")
            .count(),
        1
    );
}

fn access(namespace: &str, grants: Vec<Grant>) -> ScopeAccess {
    ScopeAccess {
        scope: ScopeKind::Own,
        namespace: Some(namespace.into()),
        asked: 10,
        allowed: grants
            .iter()
            .map(|g| g.verbs.len() * g.resources.len())
            .sum(),
        grants,
        everyone: Vec::new(),
    }
}

#[test]
fn own_namespaces_with_the_same_access_read_as_one_row_and_one_that_differs_is_named() {
    let edit = || Grant {
        verbs: vec!["get".into(), "list".into()],
        resources: vec!["pods".into()],
    };
    let mut platform = access("kube-system", Vec::new());
    platform.scope = ScopeKind::Platform;
    let identity = IdentityAccess {
        identity: "User alice".into(),
        scopes: vec![
            access("shop", vec![edit()]),
            access("shop-batch", vec![edit()]),
            access(
                "shop-web",
                vec![
                    edit(),
                    Grant {
                        verbs: vec!["update".into()],
                        resources: vec!["resourcequotas".into()],
                    },
                ],
            ),
            access("shop-x", vec![edit()]),
            platform,
        ],
    };
    let rows: Vec<(String, usize)> = rows(&identity)
        .into_iter()
        .map(|r| (r.label, r.access.allowed))
        .collect();
    assert_eq!(
        rows,
        [
            ("own namespaces shop, shop-batch, shop-x".to_owned(), 2),
            ("own namespace shop-web".to_owned(), 3),
            ("platform namespace kube-system".to_owned(), 0),
        ]
    );
}

fn run(id: &'static str, identity: &str, ns: Option<&str>, attempt: Attempt) -> mtb::CaseRun {
    mtb::CaseRun {
        id,
        benchmark: "b",
        title: "t",
        identity: identity.into(),
        namespace: ns.map(str::to_owned),
        object: String::new(),
        attempt,
    }
}

#[test]
fn cases_fold_to_one_row_unless_an_identity_or_namespace_differs_and_then_name_it() {
    let rbac = |ns: &str| Attempt::Refused {
        layer: Refuser::Rbac,
        by: None,
        message: format!("cannot update resource \"resourcequotas\" in {ns}"),
    };
    let runs = [
        run(
            "edit-quota",
            "ServiceAccount shop/shop",
            Some("shop"),
            rbac("shop"),
        ),
        run(
            "edit-quota",
            "ServiceAccount shop/shop",
            Some("shop-batch"),
            rbac("shop-batch"),
        ),
        run("edit-quota", "User alice", Some("shop"), rbac("shop")),
        run(
            "edit-quota",
            "User alice",
            Some("shop-batch"),
            Attempt::Allowed,
        ),
        run(
            "create-cluster-role",
            "ServiceAccount shop/shop",
            None,
            rbac(""),
        ),
        run("create-cluster-role", "User alice", None, rbac("")),
    ];
    let folded = mtb::fold(&runs);
    assert_eq!(folded.len(), 2);
    let quota = &folded[0];
    assert_eq!((quota.id, quota.runs), ("edit-quota", 4));
    // The allowed one first, naming who and where.
    assert_eq!(quota.outcomes[0].run.attempt, Attempt::Allowed);
    assert_eq!(quota.outcomes[0].who, ["User alice in shop-batch"]);
    assert_eq!(
        quota.outcomes[1].who,
        [
            "ServiceAccount shop/shop in shop",
            "ServiceAccount shop/shop in shop-batch",
            "User alice in shop"
        ]
    );
    // The same refusal everywhere (messages differ by namespace): one row, nobody named.
    let role = &folded[1];
    assert_eq!((role.runs, role.outcomes.len()), (2, 1));
    assert!(role.outcomes[0].who.is_empty());
}

#[test]
fn identities_with_the_same_access_everywhere_read_once() {
    let scopes = |grants: Vec<Grant>| vec![access("shop", grants)];
    let pods = || Grant {
        verbs: vec!["get".into()],
        resources: vec!["pods".into()],
    };
    let identity = |name: &str, grants| IdentityAccess {
        identity: name.into(),
        scopes: scopes(grants),
    };
    let audit = AccessAudit {
        identities: vec![
            identity("ServiceAccount shop/shop", vec![pods()]),
            identity("User alice", vec![]),
            identity("Group devs", vec![pods()]),
        ],
        findings: Vec::new(),
    };
    let folded: Vec<Vec<&str>> = same_access(&audit).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        folded,
        [
            vec!["ServiceAccount shop/shop", "Group devs"],
            vec!["User alice"]
        ]
    );
}
