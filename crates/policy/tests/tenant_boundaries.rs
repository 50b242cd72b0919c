//! What RBAC lets a tenant create is exactly what the guardrails then narrow: `tenant-rbac`
//! (check) says what Flux, as the tenant's ServiceAccount, will be refused; the SecretStore,
//! generator and network-policy checks keep the kinds tenants may create inside the tenant.

use std::{collections::BTreeSet, path::PathBuf};

use serde_json::{Value, json};
use tenantry_api::{
    Platform,
    platform::{GatewayRef, TenantRbacConfig},
    tenant::{Network, NetworkProvider, Rbac, Secrets, TenantFile, TenantSpec},
};
use tenantry_core::{PlatformContext, render::render};
use tenantry_policy::{
    Context, Engine, Mode, NamespaceInfo, Operation, Severity, TenantInfo, UserInfo, Violation,
    bootstrap_creates, resource_of,
};

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

fn platform() -> Platform {
    Platform {
        tenant_rbac: TenantRbacConfig {
            external_secrets: Some(true),
            cilium: Some(true),
            gateway_api: Some(true),
            ..TenantRbacConfig::default()
        },
        ..Platform::default()
    }
}

fn spec(provider: NetworkProvider) -> TenantSpec {
    TenantSpec {
        namespaces: vec!["shop-dev".to_owned()],
        network: Some(Network {
            provider: Some(provider),
            allow_from: Some(vec!["monitoring".to_owned()]),
            default_deny_egress: Some(true),
        }),
        secrets: Some(Secrets {
            openbao: Some(true),
            pull_secret: Some(true),
        }),
        ..TenantSpec::default()
    }
}

/// The engine's view of tenant `shop` (namespaces shop, shop-dev) on `platform`.
fn shop(platform: &Platform, spec: TenantSpec) -> TenantInfo {
    let ctx = PlatformContext::new(platform.clone()).unwrap();
    TenantInfo::from_resolved(&ctx.resolve(&TenantFile::new("shop", spec)).unwrap())
}

fn only(platform: &Platform, policy: &str) -> Engine {
    Engine::new(platform)
        .with_selection(Some(&[policy.to_owned()]), None, None)
        .unwrap()
}

fn checks(found: &[Violation]) -> Vec<(&str, &str)> {
    found
        .iter()
        .filter(|v| v.severity == Severity::Deny)
        .map(|v| (v.check.as_str(), v.path.as_str()))
        .collect()
}

fn object(api_version: &str, kind: &str, spec: Value) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "x", "namespace": "shop"},
        "spec": spec,
    })
}

/// An admission create in `namespace`, labelled as tenant `tenant`'s, by `user`.
fn admit(engine: &Engine, tenant: &TenantInfo, user: &str, object: &Value) -> Vec<Violation> {
    let namespace = NamespaceInfo {
        name: tenant.namespaces[0].clone(),
        labels: [(engine.tenant_label().to_owned(), tenant.name.clone())].into(),
    };
    let user = UserInfo {
        username: user.to_owned(),
        groups: vec!["system:authenticated".to_owned()],
    };
    engine.evaluate(
        object,
        &Context {
            mode: Mode::Admission,
            operation: Operation::Create,
            namespace: Some(&namespace),
            tenant: Some(tenant),
            user: Some(&user),
            old_object: None,
        },
    )
}

const TENANT_USER: &str = "system:serviceaccount:shop:shop";

// ---- tenant-rbac ----------------------------------------------------------------------------

/// The `create` grants of a recorded ClusterRole, as (group, resource).
fn recorded_creates(file: &str) -> BTreeSet<(String, String)> {
    let path = testdata().join("k8s-wire").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut out = BTreeSet::new();
    for rule in doc["response"]["body"]["rules"].as_array().unwrap() {
        let verbs = rule["verbs"].as_array().unwrap();
        if !verbs.iter().any(|v| v == "create" || v == "*") {
            continue;
        }
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                out.insert((
                    group.as_str().unwrap().to_owned(),
                    resource.as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    out
}

fn owned(pairs: Vec<(&str, &str)>) -> BTreeSet<(String, String)> {
    pairs
        .into_iter()
        .map(|(g, r)| (g.to_owned(), r.to_owned()))
        .collect()
}

#[test]
fn the_bootstrap_tables_are_what_a_v1_36_api_server_grants() {
    let edit = recorded_creates("get-clusterrole-aggregate-to-edit-200.json");
    assert_eq!(owned(bootstrap_creates("edit").unwrap()), edit);
    let mut admin = edit;
    admin.extend(recorded_creates(
        "get-clusterrole-aggregate-to-admin-200.json",
    ));
    assert_eq!(owned(bootstrap_creates("admin").unwrap()), admin);
    assert!(bootstrap_creates("platform-tenant").is_none());
}

#[test]
fn kind_to_resource_agrees_with_every_upstream_crd() {
    let mut stack = vec![testdata().join("crds")];
    let mut seen = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                let crd: Value =
                    serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let names = &crd["spec"]["names"];
                assert_eq!(
                    resource_of(names["kind"].as_str().unwrap()),
                    names["plural"].as_str().unwrap(),
                    "{}",
                    path.display()
                );
                seen += 1;
            }
        }
    }
    assert!(seen >= 18, "read {seen} CRDs");
    for (kind, resource) in [
        ("Ingress", "ingresses"),
        ("NetworkPolicy", "networkpolicies"),
        ("Endpoints", "endpoints"),
        ("ConfigMap", "configmaps"),
        ("PodDisruptionBudget", "poddisruptionbudgets"),
    ] {
        assert_eq!(resource_of(kind), resource);
    }
}

#[test]
fn tenant_rbac_flags_what_the_tenant_service_account_may_not_create() {
    let p = platform();
    let engine = only(&p, "tenant-rbac");
    let tenant = shop(&p, spec(NetworkProvider::Cilium));
    let ctx = Context::check(Some(&tenant));
    let allowed = [
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("v1", "ConfigMap"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("external-secrets.io/v1", "ExternalSecret"),
        ("external-secrets.io/v1", "SecretStore"),
        ("external-secrets.io/v1alpha1", "PushSecret"),
        ("generators.external-secrets.io/v1alpha1", "Password"),
        ("cilium.io/v2", "CiliumNetworkPolicy"),
        ("gateway.networking.k8s.io/v1", "HTTPRoute"),
        ("gateway.networking.k8s.io/v1", "GRPCRoute"),
    ];
    for (api_version, kind) in allowed {
        let found = engine.evaluate(&object(api_version, kind, json!({})), &ctx);
        assert!(found.is_empty(), "{kind}: {found:?}");
    }
    let refused = [
        ("v1", "Namespace", "namespaces"),
        ("v1", "ResourceQuota", "resourcequotas"),
        ("v1", "Endpoints", "endpoints"),
        (
            "rbac.authorization.k8s.io/v1",
            "Role",
            "roles.rbac.authorization.k8s.io",
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "clusterroles.rbac.authorization.k8s.io",
        ),
        (
            "external-secrets.io/v1",
            "ClusterSecretStore",
            "clustersecretstores.external-secrets.io",
        ),
        (
            "external-secrets.io/v1",
            "ClusterExternalSecret",
            "clusterexternalsecrets.external-secrets.io",
        ),
        (
            "cilium.io/v2",
            "CiliumClusterwideNetworkPolicy",
            "ciliumclusterwidenetworkpolicies.cilium.io",
        ),
        (
            "generators.external-secrets.io/v1alpha1",
            "ECRAuthorizationToken",
            "ecrauthorizationtokens.generators.external-secrets.io",
        ),
        (
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            "kustomizations.kustomize.toolkit.fluxcd.io",
        ),
    ];
    for (api_version, kind, resource) in refused {
        let found = engine.evaluate(&object(api_version, kind, json!({})), &ctx);
        assert_eq!(checks(&found), [("tenant-rbac", "kind")], "{kind}");
        assert!(
            found[0].message.contains("ServiceAccount shop/shop")
                && found[0]
                    .message
                    .contains(&format!("may not create {resource}:")),
            "{}",
            found[0].message
        );
    }
    // Flux kinds are granted only when the platform lets tenants manage Flux objects.
    let with_flux = Platform {
        tenant_rbac: TenantRbacConfig {
            flux: Some(true),
            ..p.tenant_rbac.clone()
        },
        ..p.clone()
    };
    let kustomization = object("kustomize.toolkit.fluxcd.io/v1", "Kustomization", json!({}));
    assert!(
        only(&with_flux, "tenant-rbac")
            .evaluate(&kustomization, &ctx)
            .is_empty()
    );
}

#[test]
fn tenant_rbac_follows_the_tenants_cluster_role() {
    let p = platform();
    let engine = only(&p, "tenant-rbac");
    let role = object("rbac.authorization.k8s.io/v1", "Role", json!({}));
    let as_role = |cluster_role: &str| {
        shop(
            &p,
            TenantSpec {
                rbac: Some(Rbac {
                    cluster_role: Some(cluster_role.to_owned()),
                    grants: None,
                }),
                ..TenantSpec::default()
            },
        )
    };
    // admin adds Roles and RoleBindings to edit.
    let admin = as_role("admin");
    assert!(
        engine
            .evaluate(&role, &Context::check(Some(&admin)))
            .is_empty()
    );
    // A platform-defined role is unknown offline: nothing judged, and it says so.
    let custom = as_role("platform-tenant");
    let ctx = Context::check(Some(&custom));
    assert!(engine.evaluate(&role, &ctx).is_empty());
    let skipped = engine.skipped(&ctx);
    assert!(
        skipped
            .iter()
            .any(|s| s.policy == "tenant-rbac" && s.reason.contains("platform-tenant")),
        "{skipped:?}"
    );
    assert!(
        skipped.iter().all(|s| !s.reason.contains("  ")),
        "{skipped:?}"
    );
    // kustomize's build files never reach the API server.
    for (api_version, kind) in [
        ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
        ("kustomize.config.k8s.io/v1alpha1", "Component"),
        ("", "Kustomization"),
    ] {
        let file = json!({"apiVersion": api_version, "kind": kind, "resources": ["a.yaml"]});
        assert!(
            engine.evaluate(&file, &Context::check(None)).is_empty(),
            "{kind}"
        );
    }
    // Without --tenant, the platform's default role (edit) applies.
    let found = engine.evaluate(&role, &Context::check(None));
    assert_eq!(checks(&found), [("tenant-rbac", "kind")]);
    assert!(found[0].message.contains("the tenant's ServiceAccount"));
    // Never at admission: RBAC itself answers there.
    let tenant = shop(&p, TenantSpec::default());
    assert!(admit(&engine, &tenant, TENANT_USER, &role).is_empty());
}

// ---- restrict-secret-stores -------------------------------------------------------------------

fn vault_store(vault: Value) -> Value {
    object(
        "external-secrets.io/v1",
        "SecretStore",
        json!({"provider": {"vault": vault}}),
    )
}

fn own_vault() -> Value {
    json!({
        "server": "http://openbao.openbao.svc:8200",
        "path": "secret",
        "version": "v2",
        "auth": {"kubernetes": {"mountPath": "kubernetes", "role": "shop", "serviceAccountRef": {"name": "shop"}}},
    })
}

#[test]
fn a_tenant_secret_store_reaches_the_platforms_openbao_only_as_the_tenant() {
    let p = platform();
    let engine = only(&p, "restrict-secret-stores");
    let tenant = shop(&p, spec(NetworkProvider::Kubernetes));
    let judge = |vault: Value| {
        let found = admit(&engine, &tenant, TENANT_USER, &vault_store(vault));
        checks(&found)
            .into_iter()
            .map(|(c, p)| (c.to_owned(), p.to_owned()))
            .collect::<Vec<_>>()
    };
    let pairs = |expected: &[(&str, &str)]| {
        expected
            .iter()
            .map(|(c, p)| ((*c).to_owned(), (*p).to_owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(judge(own_vault()), pairs(&[]));
    let mut other_role = own_vault();
    other_role["auth"]["kubernetes"]["role"] = json!("payments");
    assert_eq!(
        judge(other_role),
        pairs(&[(
            "secret-store-scope",
            "spec.provider.vault.auth.kubernetes.role"
        )])
    );
    // The same server under another cluster-DNS spelling is still the platform's.
    let mut aliased = own_vault();
    aliased["server"] = json!("https://OpenBao.openbao.svc.cluster.local.:8200/");
    aliased["path"] = json!("infrastructure");
    aliased["auth"]["kubernetes"]["mountPath"] = json!("kubernetes-admin");
    assert_eq!(
        judge(aliased),
        pairs(&[
            ("secret-store-scope", "spec.provider.vault.path"),
            (
                "secret-store-scope",
                "spec.provider.vault.auth.kubernetes.mountPath"
            ),
        ])
    );
    let mut token = own_vault();
    token["auth"] = json!({"tokenSecretRef": {"name": "root", "key": "token"}});
    assert_eq!(
        judge(token),
        pairs(&[(
            "secret-store-scope",
            "spec.provider.vault.auth.tokenSecretRef"
        )])
    );
    // The tenant's own Vault elsewhere is its business.
    let mut elsewhere = own_vault();
    elsewhere["server"] = json!("https://vault.shop.example.com");
    elsewhere["auth"]["kubernetes"]["role"] = json!("anything");
    assert_eq!(judge(elsewhere), pairs(&[]));
}

#[test]
fn the_store_tenantry_renders_and_its_whole_tree_pass_the_narrowed_guardrails() {
    let p = platform();
    let engine = Engine::new(&p);
    for provider in [NetworkProvider::Kubernetes, NetworkProvider::Cilium] {
        let ctx = PlatformContext::new(p.clone()).unwrap();
        let resolved = ctx
            .resolve(&TenantFile::new("shop", spec(provider)))
            .unwrap();
        let tenant = TenantInfo::from_resolved(&resolved);
        for o in render(&ctx, &resolved).objects {
            // Judged as the tenant would have written it (no platform identity exemption),
            // except the platform's pull secret, which reads the platform's store by design.
            if o.kind == "ExternalSecret" {
                continue;
            }
            let found = admit(&engine, &tenant, TENANT_USER, &o.body);
            let found: Vec<_> = found
                .iter()
                .filter(|v| {
                    v.policy == "restrict-secret-stores" || v.policy == "restrict-network-policies"
                })
                .collect();
            assert!(
                found.is_empty(),
                "{provider:?} {} {}: {found:?}",
                o.kind,
                o.name
            );
        }
    }
}

#[test]
fn keys_through_the_tenants_store_stay_under_its_path() {
    let p = platform();
    let engine = only(&p, "restrict-secret-stores");
    let tenant = shop(&p, spec(NetworkProvider::Kubernetes));
    let external = object(
        "external-secrets.io/v1",
        "ExternalSecret",
        json!({
            "secretStoreRef": {"kind": "SecretStore", "name": "openbao"},
            "data": [
                {"secretKey": "ok", "remoteRef": {"key": "apps/shop/db"}},
                {"secretKey": "other", "remoteRef": {"key": "apps/payments/db"}},
                {"secretKey": "escape", "remoteRef": {"key": "apps/shop/../payments/db"}},
                {"secretKey": "platform", "remoteRef": {"key": "infrastructure/ghcr/auth"}},
            ],
            "dataFrom": [
                {"extract": {"key": "apps/shop/config"}},
                {"find": {"path": "apps/"}},
                {"sourceRef": {"generatorRef": {"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "ClusterGenerator", "name": "ecr"}}},
                {"sourceRef": {"storeRef": {"kind": "SecretStore", "name": "own-vault"}}, "extract": {"key": "anything/else"}},
            ],
        }),
    );
    let found = admit(&engine, &tenant, TENANT_USER, &external);
    assert_eq!(
        checks(&found),
        [
            ("secret-path-scope", "spec.data[1].remoteRef.key"),
            ("secret-path-scope", "spec.data[2].remoteRef.key"),
            ("secret-path-scope", "spec.data[3].remoteRef.key"),
            ("secret-path-scope", "spec.dataFrom[1].find.path"),
            (
                "cluster-generator",
                "spec.dataFrom[2].sourceRef.generatorRef.kind"
            ),
        ]
    );
    let push = object(
        "external-secrets.io/v1alpha1",
        "PushSecret",
        json!({
            "secretStoreRefs": [{"kind": "SecretStore", "name": "openbao"}],
            "selector": {"generatorRef": {"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "ClusterGenerator", "name": "pw"}},
            "data": [
                {"match": {"secretKey": "password", "remoteRef": {"remoteKey": "apps/shop/db-password"}}},
                {"match": {"secretKey": "password", "remoteRef": {"remoteKey": "apps/payments/db-password"}}},
            ],
        }),
    );
    let found = admit(&engine, &tenant, TENANT_USER, &push);
    assert_eq!(
        checks(&found),
        [
            ("cluster-generator", "spec.selector.generatorRef.kind"),
            (
                "secret-path-scope",
                "spec.data[1].match.remoteRef.remoteKey"
            ),
        ]
    );
}

// ---- restrict-network-policies ----------------------------------------------------------------

#[test]
fn network_policies_name_only_the_tenants_and_the_platforms_namespaces() {
    let p = Platform {
        gateway: Some(GatewayRef {
            namespace: "gateway-system".to_owned(),
            ..GatewayRef::default()
        }),
        ..platform()
    };
    let engine = only(&p, "restrict-network-policies");
    let tenant = shop(&p, spec(NetworkProvider::Cilium));
    let cnp = object(
        "cilium.io/v2",
        "CiliumNetworkPolicy",
        json!({
            "endpointSelector": {},
            "ingress": [
                {"fromEndpoints": [
                    {},
                    {"matchLabels": {"app": "web"}},
                    {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "shop-dev"}},
                    {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "gateway-system"}},
                    {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "monitoring"}},
                    {"matchLabels": {"io.kubernetes.pod.namespace": "payments"}},
                    {"matchExpressions": [{"key": "k8s:io.kubernetes.pod.namespace", "operator": "NotIn", "values": ["shop"]}]},
                    {"matchLabels": {"k8s:io.cilium.k8s.namespace.labels.tenantry.dev/tenant": "shop"}},
                    {"matchLabels": {"k8s:io.cilium.k8s.namespace.labels.team": "shop"}},
                ]},
                {"fromEntities": ["cluster", "world"]},
            ],
            "egress": [
                {"toEntities": ["all"]},
                {"toEntities": ["host", "kube-apiserver", "world"]},
                {"toEndpoints": [{"matchExpressions": [{"key": "k8s:io.kubernetes.pod.namespace", "operator": "In", "values": ["kube-system", "payments"]}]}]},
                {"toServices": [{"k8sService": {"serviceName": "db", "namespace": "payments"}}]},
            ],
            "egressDeny": [{"toEntities": ["cluster"]}],
        }),
    );
    let found = admit(&engine, &tenant, TENANT_USER, &cnp);
    assert_eq!(
        checks(&found),
        [
            (
                "network-policy-reach",
                "spec.ingress[0].fromEndpoints[5].matchLabels[\"io.kubernetes.pod.namespace\"]"
            ),
            (
                "network-policy-reach",
                "spec.ingress[0].fromEndpoints[6].matchExpressions[0]"
            ),
            (
                "network-policy-reach",
                "spec.ingress[0].fromEndpoints[8].matchLabels[\"k8s:io.cilium.k8s.namespace.labels.team\"]"
            ),
            ("network-policy-reach", "spec.ingress[1].fromEntities[0]"),
            ("network-policy-reach", "spec.egress[0].toEntities[0]"),
            ("network-policy-reach", "spec.egress[1].toEntities[0]"),
            (
                "network-policy-reach",
                "spec.egress[2].toEndpoints[0].matchExpressions[0].values[1]"
            ),
            (
                "network-policy-reach",
                "spec.egress[3].toServices[0].k8sService.namespace"
            ),
        ]
    );
    assert!(
        found[0]
            .remediation
            .contains("gateway-system, kube-system, monitoring, shop, shop-dev")
    );

    let np = object(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        json!({
            "podSelector": {},
            "ingress": [{"from": [
                {"podSelector": {}},
                {"namespaceSelector": {}},
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop-dev"}}},
                {"namespaceSelector": {"matchLabels": {"tenantry.dev/tenant": "payments"}}},
            ]}],
            "egress": [{"to": [{"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "Exists"}]}}]}],
        }),
    );
    let found = admit(&engine, &tenant, TENANT_USER, &np);
    assert_eq!(
        checks(&found),
        [
            (
                "network-policy-reach",
                "spec.ingress[0].from[1].namespaceSelector"
            ),
            (
                "network-policy-reach",
                "spec.ingress[0].from[3].namespaceSelector.matchLabels[\"tenantry.dev/tenant\"]"
            ),
            (
                "network-policy-reach",
                "spec.egress[0].to[0].namespaceSelector.matchExpressions[0]"
            ),
        ]
    );
    // Tenantry applying its own floor is not judged.
    assert!(
        admit(
            &engine,
            &tenant,
            "system:serviceaccount:tenantry-system:tenantry",
            &np
        )
        .is_empty()
    );
    // Without --tenant, names cannot be compared (and that is reported), the cluster still can.
    let found = engine.evaluate(&cnp, &Context::check(None));
    assert_eq!(found.len(), 5, "{found:?}");
    assert!(
        engine
            .skipped(&Context::check(None))
            .iter()
            .any(|s| s.policy == "restrict-network-policies")
    );
}
