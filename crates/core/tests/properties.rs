//! Properties every valid tenant must have, over generated specs: rendering is
//! deterministic, every derived name is one the API server accepts, and the rendered YAML
//! reads back to the same objects. Plus: no input makes the parsers panic.

use proptest::prelude::*;
use tenantry_api::{
    Platform, Quantity,
    tenant::{
        ArgoCd, ClassList, Classes, ComputeResources, Delivery, FluxGit, FluxOci, Network,
        NetworkProvider, NoDelivery, Owner, OwnerKind, Placement, PodSecurityLevel, Quota, Rbac,
        Secrets, TenantFile, TenantSpec,
    },
};
use tenantry_core::{PlatformContext, document, names, render, yaml};

fn name() -> impl Strategy<Value = String> {
    // DNS labels that are not reserved (reserved names are refused; tested elsewhere).
    "[a-j][a-z0-9]{0,20}(-[a-z0-9]{1,10}){0,2}".prop_filter("not reserved", |n| {
        names::reserved_match(n, names::BUILTIN_RESERVED.iter().copied()).is_none()
    })
}

fn owner() -> impl Strategy<Value = Owner> {
    prop_oneof![
        "[a-z]{1,8}@example\\.com".prop_map(|n| Owner {
            kind: OwnerKind::User,
            name: n,
            namespace: None
        }),
        "team-[a-z]{1,8}".prop_map(|n| Owner {
            kind: OwnerKind::Group,
            name: n,
            namespace: None
        }),
        ("[a-z]{1,8}", "[a-z]{1,8}").prop_map(|(ns, n)| Owner {
            kind: OwnerKind::ServiceAccount,
            name: n,
            namespace: Some(ns),
        }),
    ]
}

fn quantity(units: &'static [&'static str]) -> impl Strategy<Value = Quantity> {
    (1u32..64, prop::sample::select(units)).prop_map(|(n, u)| Quantity(format!("{n}{u}")))
}

fn quota() -> impl Strategy<Value = Quota> {
    // Requests never above limits: the same value, or limits doubled.
    (
        quantity(&["", "00m"]),
        quantity(&["Mi", "Gi"]),
        prop::option::of(0u32..200),
        prop::option::of(0u32..3),
    )
        .prop_map(|(cpu, mem, pods, lbs)| {
            let double = |q: &Quantity| {
                let (n, u) =
                    q.0.split_at(q.0.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.0.len()));
                Quantity(format!("{}{u}", n.parse::<u64>().unwrap() * 2))
            };
            Quota {
                requests: Some(ComputeResources {
                    cpu: Some(cpu.clone()),
                    memory: Some(mem.clone()),
                    ephemeral_storage: None,
                }),
                limits: Some(ComputeResources {
                    cpu: Some(double(&cpu)),
                    memory: Some(double(&mem)),
                    ephemeral_storage: None,
                }),
                pods,
                services_load_balancers: lbs,
                ..Quota::default()
            }
        })
}

fn delivery() -> impl Strategy<Value = Option<Delivery>> {
    prop_oneof![
        Just(None),
        Just(Some(Delivery::None(NoDelivery {}))),
        prop::option::of("[0-9]\\.[0-9]").prop_map(|v| Some(Delivery::FluxOci(FluxOci {
            semver: v.map(|v| format!(">={v}.0")),
            ..FluxOci::default()
        }))),
        ("[a-z]{1,10}", prop::option::of("deploy/[a-z]{1,6}")).prop_map(|(repo, path)| {
            Some(Delivery::FluxGit(FluxGit {
                url: Some(format!("https://git.example.com/{repo}.git")),
                path,
                ..FluxGit::default()
            }))
        }),
        "[a-z]{1,10}".prop_map(|repo| Some(Delivery::ArgoCd(ArgoCd {
            repo_url: Some(format!("git@github.com:acme/{repo}.git")),
            ..ArgoCd::default()
        }))),
    ]
}

prop_compose! {
    fn tenant()(
        name in name(),
        suffixes in prop::collection::btree_set("[a-z0-9]{1,8}", 0..3),
        owners in prop::collection::vec(owner(), 0..3),
        pod_security in prop::option::of(prop_oneof![Just(PodSecurityLevel::Restricted), Just(PodSecurityLevel::Baseline)]),
        mesh in prop::option::of(any::<bool>()),
        quota in prop::option::of(quota()),
        provider in prop::option::of(prop_oneof![Just(NetworkProvider::Kubernetes), Just(NetworkProvider::Cilium)]),
        allow_from in prop::option::of(prop::collection::vec("[k-z][a-z]{1,8}", 0..3)),
        deny_egress in prop::option::of(any::<bool>()),
        grant in any::<bool>(),
        cluster_role in prop::option::of(prop_oneof![Just("edit".to_owned()), Just("admin".to_owned()), Just("tenant:deployer".to_owned())]),
        delivery in delivery(),
        openbao in prop::option::of(any::<bool>()),
        pull_secret in prop::option::of(any::<bool>()),
        priority in prop::option::of(prop::collection::btree_set("[a-z]{1,8}", 0..3)),
        node_pool in prop::option::of("[a-z]{1,8}"),
    ) -> TenantFile {
        let namespaces = suffixes.iter().map(|s| format!("{name}-{s}")).collect();
        TenantFile::new(name, TenantSpec {
            owners,
            namespaces,
            pod_security,
            mesh,
            quota,
            limits: None,
            network: Some(Network { provider, allow_from, default_deny_egress: deny_egress }),
            rbac: Some(Rbac { cluster_role, grants: grant.then(|| vec!["external-dns".to_owned()]) }),
            registries: None,
            delivery,
            secrets: Some(Secrets { openbao, pull_secret }),
            placement: node_pool.map(|pool| Placement {
                node_selector: Some([("pool".to_owned(), pool)].into()),
                tolerations: None,
            }),
            classes: priority.map(|allowed| Classes {
                priority: Some(ClassList { allowed: allowed.into_iter().collect(), default: None }),
                ..Classes::default()
            }),
        })
    }
}

fn label_values_valid(labels: &serde_json::Value) -> Result<(), String> {
    for (k, v) in labels.as_object().into_iter().flatten() {
        if let Some(p) = names::label_key_problem(k) {
            return Err(format!("label key {k}: {p}"));
        }
        if let Some(p) = names::label_value_problem(v.as_str().unwrap_or("<not a string>")) {
            return Err(format!("label {k}={v}: {p}"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn valid_specs_render_deterministically_with_valid_names(file in tenant()) {
        let ctx = PlatformContext::new(Platform::default()).unwrap();
        let resolved = ctx.resolve(&file).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let first = render::render(&ctx, &resolved);
        let second = render::render(&ctx, &ctx.resolve(&file).unwrap());
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(yaml::multi_document(&first.objects), yaml::multi_document(&second.objects));

        let mut files = std::collections::BTreeSet::new();
        for o in &first.objects {
            prop_assert!(files.insert(o.file_name()), "duplicate file {}", o.file_name());
            let name_problem = match o.kind {
                "Namespace" => names::dns_label_problem(&o.name),
                "RoleBinding" | "ClusterRoleBinding" => names::rbac_name_problem(&o.name),
                _ => names::dns_subdomain_problem(&o.name),
            };
            prop_assert!(name_problem.is_none(), "{}: {:?}", o.reference(), name_problem);
            if let Some(ns) = &o.namespace {
                prop_assert!(names::is_dns_label(ns), "{}", o.reference());
            }
            prop_assert_eq!(o.body["metadata"]["name"].as_str(), Some(o.name.as_str()));
            label_values_valid(&o.body["metadata"]["labels"]).map_err(TestCaseError::fail)?;
            let text = yaml::object_yaml(o);
            let back: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
            prop_assert_eq!(&back, &o.body, "YAML does not read back");
        }
    }

    #[test]
    fn arbitrary_text_never_panics_the_parsers(text in "\\PC{0,200}") {
        let _ = document::parse_tenant_file(&text);
        let _ = document::parse_platform(&text);
    }

    #[test]
    fn yaml_shaped_text_never_panics_resolution(
        key in prop::sample::select(vec!["quota", "limits", "network", "rbac", "delivery", "owners", "namespaces", "registries", "secrets", "podSecurity", "mesh"]),
        value in prop_oneof![Just("null".to_owned()), Just("[]".to_owned()), Just("{}".to_owned()), "-?[0-9]{1,25}", "\"[ -~]{0,12}\"", Just("{fluxOCI: {url: 'oci://'}}".to_owned()), Just("{cpu: 1e400}".to_owned())],
    ) {
        let text = format!("apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: t\nspec:\n  {key}: {value}\n");
        if let Ok(file) = document::parse_tenant_file(&text) {
            let ctx = PlatformContext::new(Platform::default()).unwrap();
            if let Ok(r) = ctx.resolve(&file) {
                let _ = render::render(&ctx, &r);
            }
        }
    }
}
