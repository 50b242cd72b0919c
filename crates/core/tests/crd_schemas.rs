//! Every rendered object must be accepted by a real API server with strict field
//! validation (what `kubectl apply --server-side` uses). Custom objects are validated against
//! the upstream CRDs in `testdata/crds/` (as installed on Kubernetes 1.36), made strict the
//! way the API server is: a field the schema does not declare is an error, not silently
//! pruned. Built-in objects must round-trip through their k8s-openapi types unchanged, which
//! proves every field is one the built-in type has.

mod common;

use std::{collections::BTreeMap, path::Path};

use common::{REFERENCE_TENANTS, platform, render_reference, testdata_dir};
use serde_json::Value;
use tenantry_api::tenant::{
    CosignIdentity, Delivery, FluxGit, FluxOci, Network, NetworkProvider, Secrets, TenantFile,
    TenantSpec,
};
use tenantry_core::{
    DesiredObject, Rendered,
    render::{platform::render_platform, scaffold},
    render_tenant,
};

type Key = (String, String, String); // (group, version, kind)

/// Load every CRD, keyed by group/version/kind, with a strict JSON schema per version.
fn load_crds() -> BTreeMap<Key, Value> {
    let mut out = BTreeMap::new();
    let mut stack = vec![testdata_dir().join("crds")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                load_crd(&path, &mut out);
            }
        }
    }
    assert!(
        out.len() >= 15,
        "expected the upstream CRDs, found {}",
        out.len()
    );
    out
}

fn load_crd(path: &Path, out: &mut BTreeMap<Key, Value>) {
    let text = std::fs::read_to_string(path).unwrap();
    let crd: Value =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let group = crd["spec"]["group"].as_str().unwrap().to_owned();
    let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_owned();
    for version in crd["spec"]["versions"].as_array().unwrap() {
        if version["served"] != Value::Bool(true) {
            continue;
        }
        let mut schema = version["schema"]["openAPIV3Schema"].clone();
        make_strict(&mut schema);
        out.insert(
            (
                group.clone(),
                version["name"].as_str().unwrap().to_owned(),
                kind.clone(),
            ),
            schema,
        );
    }
}

/// The API server's strict field validation as JSON Schema: objects with declared
/// properties accept no others, unless the schema preserves unknown fields. `metadata` is
/// checked by the API server itself, not by the CRD schema.
fn make_strict(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    // Go's RE2 Unicode classes (`\PC`: no control characters) have no ECMA-262 spelling the
    // validator accepts; `\PC` is rewritten as the equivalent range, anything rarer dropped.
    if let Some(Value::String(pattern)) = map.get_mut("pattern") {
        *pattern = pattern.replace("\\PC", "[^\\x00-\\x1f\\x7f-\\x9f]");
        if pattern.contains("\\p") || pattern.contains("\\P") {
            map.remove("pattern");
        }
    }
    let preserves = map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if map.contains_key("properties") && !map.contains_key("additionalProperties") && !preserves {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    for (key, child) in map.iter_mut() {
        match key.as_str() {
            "properties" => {
                if let Value::Object(props) = child {
                    for (name, prop) in props.iter_mut() {
                        if name == "metadata" {
                            if let Value::Object(m) = prop {
                                m.remove("additionalProperties");
                            }
                            continue;
                        }
                        make_strict(prop);
                    }
                }
            }
            "items" | "additionalProperties" => make_strict(child),
            // allOf/anyOf/oneOf/not in a structural schema only restate constraints on
            // fields declared above (`required: [ingress]`); they declare no fields of
            // their own, so strictness does not apply inside them.
            _ => {}
        }
    }
}

fn key_of(o: &DesiredObject) -> Key {
    let (group, version) = o
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", o.api_version));
    (group.to_owned(), version.to_owned(), o.kind.to_owned())
}

/// Built-in kinds Tenantry renders, checked by a typed round trip.
fn builtin_round_trip(o: &DesiredObject) -> Result<(), String> {
    fn check<K: serde::de::DeserializeOwned + serde::Serialize>(
        o: &DesiredObject,
    ) -> Result<(), String> {
        let typed: K = serde_json::from_value(o.body.clone()).map_err(|e| e.to_string())?;
        let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
        let mut want = o.body.clone();
        let mut got = back;
        sort_keys(&mut want);
        sort_keys(&mut got);
        if want == got {
            Ok(())
        } else {
            Err(format!("fields lost in round trip:\n{want:#}\nvs\n{got:#}"))
        }
    }
    use k8s_openapi::api::{core::v1::*, networking::v1::NetworkPolicy, rbac::v1::*};
    match (o.api_version, o.kind) {
        ("v1", "Namespace") => check::<Namespace>(o),
        ("v1", "ResourceQuota") => check::<ResourceQuota>(o),
        ("v1", "LimitRange") => check::<LimitRange>(o),
        ("v1", "ServiceAccount") => check::<ServiceAccount>(o),
        ("v1", "Secret") => check::<Secret>(o),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => check::<RoleBinding>(o),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => check::<ClusterRoleBinding>(o),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => check::<ClusterRole>(o),
        ("networking.k8s.io/v1", "NetworkPolicy") => check::<NetworkPolicy>(o),
        other => Err(format!("no built-in check for {other:?}")),
    }
}

fn sort_keys(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.sort_keys();
            m.values_mut().for_each(sort_keys);
        }
        Value::Array(a) => a.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

/// Tenants covering every rendering branch: both network providers with and without
/// default-deny egress, all delivery kinds (Git through a proxy kubeconfig too), OpenBao,
/// grants at every scope, and the fanned-out pull secret; then every platform-wide component
/// of both platforms, and the generated-secret scaffold a tenant writes into its `deploy/`.
fn coverage() -> Vec<Rendered> {
    let mut all: Vec<Rendered> = REFERENCE_TENANTS
        .iter()
        .map(|(_, p, t)| render_reference(p, t))
        .collect();
    let flux = platform("platform-flux.yaml");
    let variants = [
        TenantSpec {
            delivery: Some(Delivery::FluxGit(FluxGit {
                url: Some("ssh://git@github.com/acme/shop.git".into()),
                branch: Some("release".into()),
                path: Some("./clusters/prod".into()),
                proxy_kubeconfig_secret: Some("shop-proxy-kubeconfig".into()),
            })),
            network: Some(Network {
                provider: Some(NetworkProvider::Cilium),
                allow_from: Some(vec!["monitoring".into()]),
                default_deny_egress: Some(true),
            }),
            secrets: Some(Secrets {
                openbao: Some(true),
                pull_secret: Some(true),
            }),
            namespaces: vec!["shop-dev".into()],
            ..TenantSpec::default()
        },
        TenantSpec {
            network: Some(Network {
                provider: Some(NetworkProvider::Kubernetes),
                allow_from: None,
                default_deny_egress: Some(true),
            }),
            delivery: Some(Delivery::None(Default::default())),
            secrets: Some(Secrets {
                openbao: Some(false),
                pull_secret: Some(false),
            }),
            ..TenantSpec::default()
        },
    ];
    // Key-based cosign verification (`verify.secretRef`), over the platform's keyless default.
    let keyed = TenantSpec {
        delivery: Some(Delivery::FluxOci(FluxOci {
            verify: Some(CosignIdentity {
                secret_ref: Some("shop-cosign-pub".into()),
                // Rendered as a Secret, which must be a valid built-in object too.
                public_key: Some(
                    "-----BEGIN PUBLIC KEY-----\n\
                     MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE5Zlsr3LHF/hRpD6MudAm3UkLAguK\n\
                     iqTa3WyIcUh9uINeVJEOHfpMg9ed8ntFrc873ndmxbJN9V/Q/uzsjCgqqA==\n\
                     -----END PUBLIC KEY-----\n"
                        .into(),
                ),
                ..CosignIdentity::default()
            }),
            ..FluxOci::default()
        })),
        ..TenantSpec::default()
    };
    for (name, spec) in ["shop", "quiet", "keyed"]
        .into_iter()
        .zip(variants.into_iter().chain([keyed]))
    {
        all.push(render_tenant(&flux, &TenantFile::new(name, spec)).unwrap());
    }
    for ctx in [&flux, &platform("platform-caas.yaml")] {
        all.extend(render_platform(ctx));
    }
    let wedding = flux.resolve(&common::tenant("app-secrets.yaml")).unwrap();
    all.push(Rendered {
        tenant: wedding.name.clone(),
        objects: scaffold::generated_secret(&flux, &wedding, "admin-code").unwrap(),
        artifacts: Vec::new(),
    });
    all
}

#[test]
fn custom_objects_match_the_installed_crds_strictly() {
    let crds = load_crds();
    let mut checked = BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    for rendered in coverage() {
        for o in rendered
            .objects
            .iter()
            .filter(|o| !o.group().is_empty() && !o.group().ends_with("k8s.io"))
        {
            let key = key_of(o);
            let Some(schema) = crds.get(&key) else {
                failures.push(format!(
                    "{}: no served CRD version for {key:?}",
                    o.reference()
                ));
                continue;
            };
            let validator = jsonschema::draft4::new(schema).expect("CRD schema compiles");
            for error in validator.iter_errors(&o.body) {
                failures.push(format!(
                    "{} ({}): {} at {}",
                    o.reference(),
                    o.api_version,
                    error,
                    error.instance_path()
                ));
            }
            *checked
                .entry(format!("{}/{}", o.api_version, o.kind))
                .or_default() += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for kind in [
        "source.toolkit.fluxcd.io/v1/OCIRepository",
        "source.toolkit.fluxcd.io/v1/GitRepository",
        "kustomize.toolkit.fluxcd.io/v1/Kustomization",
        "argoproj.io/v1alpha1/AppProject",
        "argoproj.io/v1alpha1/Application",
        "external-secrets.io/v1/ExternalSecret",
        "external-secrets.io/v1/SecretStore",
        "external-secrets.io/v1/ClusterExternalSecret",
        "external-secrets.io/v1alpha1/PushSecret",
        "generators.external-secrets.io/v1alpha1/Password",
        "cilium.io/v2/CiliumNetworkPolicy",
    ] {
        assert!(
            checked.contains_key(kind),
            "{kind} was never rendered, so never checked: {checked:?}"
        );
    }
}

#[test]
fn strictness_catches_a_misspelt_field() {
    // The check above is only worth something if it can fail.
    let crds = load_crds();
    let mut rendered = render_reference("platform-flux.yaml", "static-site.yaml");
    let source = rendered
        .objects
        .iter_mut()
        .find(|o| o.kind == "OCIRepository")
        .unwrap();
    source.body["spec"]["verify"]["matchOIDCIdentities"] = serde_json::json!([]);
    let schema = &crds[&key_of(source)];
    let validator = jsonschema::draft4::new(schema).unwrap();
    assert!(!validator.is_valid(&source.body));
}

#[test]
fn built_in_objects_round_trip_through_their_types() {
    let mut failures = Vec::new();
    for rendered in coverage() {
        for o in rendered
            .objects
            .iter()
            .filter(|o| o.group().is_empty() || o.group().ends_with("k8s.io"))
        {
            if let Err(e) = builtin_round_trip(o) {
                failures.push(format!("{}: {e}", o.reference()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
