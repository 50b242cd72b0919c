//! `policies.vap.tenantParameters`: a tenant's `GuardrailParameters` and its bindings to the
//! per-tenant ValidatingAdmissionPolicies are rendered with its other objects, so every
//! consumer converges and prunes them; pinned as a snapshot.

use tenantry_core::{
    Layer, PlatformContext, Rendered, document,
    render::guardrails::{BINDING_KIND, PARAMS_KIND},
    yaml,
};

const TENANT: &str = "apiVersion: tenantry.dev/v1alpha1
kind: Tenant
metadata:
  name: g14-shop
spec:
  registries: [ghcr.io/g14-shop, index.docker.io/g14shop]
  placement:
    nodeSelector:
      pool: shared
      zone: g14
    tolerations:
      - key: dedicated
        value: g14
        effect: NoSchedule
  network:
    allowFrom: [monitoring]
  classes:
    storage:
      allowed: [fast, standard]
      default: standard
    priority:
      allowed: [g14-high]
";

fn render(policies: &str) -> Rendered {
    let text = format!(
        "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\ndefaults:\n  registries: [ghcr.io/platform]\n  \
         placement:\n    nodeSelector:\n      pool: shared\n{policies}"
    );
    let ctx = PlatformContext::new(document::parse_platform(&text).unwrap()).unwrap();
    let file = document::parse_tenant_file(TENANT).unwrap();
    tenantry_core::render_tenant(&ctx, &file).unwrap()
}

const ON: &str = "policies:\n  vap:\n    tenantParameters: true\n";

fn guardrails(rendered: &Rendered) -> Vec<&tenantry_core::DesiredObject> {
    rendered
        .objects
        .iter()
        .filter(|o| o.layer == Layer::Guardrails)
        .collect()
}

#[test]
fn tenant_parameters_and_bindings_render_as_snapshotted() {
    let rendered = render(ON);
    let objects: Vec<_> = guardrails(&rendered).into_iter().cloned().collect();
    let mut text = String::new();
    for object in &objects {
        text.push_str(&format!("# {}\n", object.file_name()));
    }
    text.push_str(&yaml::multi_document(&objects));
    insta::assert_snapshot!(text);
}

#[test]
fn the_parameters_come_before_the_bindings_and_before_any_rights() {
    let rendered = render(ON);
    let kinds: Vec<&str> = guardrails(&rendered).iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        [
            PARAMS_KIND,
            BINDING_KIND,
            BINDING_KIND,
            BINDING_KIND,
            BINDING_KIND,
            BINDING_KIND,
            BINDING_KIND
        ]
    );
    // Apply order: the bindings deny while their parameters are missing, and nobody is
    // granted a right in the tenant's namespaces before the guardrails judge them.
    let position = |kind: &str| {
        rendered
            .objects
            .iter()
            .position(|o| o.kind == kind)
            .unwrap()
    };
    assert!(position(PARAMS_KIND) < position(BINDING_KIND));
    assert!(position(BINDING_KIND) < position("RoleBinding"));
    assert!(position("Namespace") < position(PARAMS_KIND));
    for object in guardrails(&rendered) {
        assert_eq!(object.namespace, None, "{}", object.reference());
        assert_eq!(
            object.body["metadata"]["labels"]["tenantry.dev/tenant"], "g14-shop",
            "the tenant label hands it to prune and offboarding"
        );
    }
}

#[test]
fn nothing_is_rendered_unless_the_platform_turns_it_on() {
    assert!(guardrails(&render("")).is_empty());
    // Only the bindings of the policies the platform runs.
    let no_registries = render(&format!("{ON}  allowedRegistries:\n    enabled: false\n"));
    let names: Vec<&str> = guardrails(&no_registries)
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "tenantry-g14-shop",
            "tenantry-restrict-secret-stores-tenant.g14-shop",
            "tenantry-restrict-network-policies.g14-shop",
            "tenantry-tenant-placement-tenant.g14-shop",
            "tenantry-allowed-classes.g14-shop",
            "tenantry-flux-lockdown-tenant.g14-shop",
        ]
    );
    let neither = render(&format!(
        "{ON}  allowedRegistries:\n    enabled: false\n  tenantPlacement:\n    enabled: false\n  \
         allowedClasses:\n    enabled: false\n  restrictNetworkPolicies:\n    enabled: false\n  \
         fluxLockdown:\n    enabled: false\n  restrictSecretStores:\n    enabled: false\n"
    ));
    assert!(guardrails(&neither).is_empty());
}

#[test]
fn a_binding_read_back_stands_for_its_tenant_only_as_render_writes_it() {
    use serde_json::json;
    use tenantry_core::render::guardrails::{BindingOptions, TenantBinding, tenant_binding};
    let label = "tenantry.dev/tenant";
    let written = tenant_binding(
        "tenantry-allowed-registries",
        "g14-shop",
        label,
        "tenantry-g14-shop",
        BindingOptions::default(),
    );
    let read = TenantBinding::from_object(&written, label).unwrap();
    assert_eq!(
        read,
        TenantBinding {
            policy: "tenantry-allowed-registries".into(),
            tenant: "g14-shop".into(),
            params: "tenantry-g14-shop".into(),
            denies: true,
        }
    );
    // As the API server returns it: defaulted matchPolicy and an empty objectSelector.
    let mut defaulted = written.clone();
    defaulted["spec"]["matchResources"]["objectSelector"] = json!({});
    defaulted["spec"]["matchResources"]["matchPolicy"] = json!("Equivalent");
    assert_eq!(TenantBinding::from_object(&defaulted, label), Some(read));
    // Warn-only bindings refuse nothing.
    let warn = tenant_binding(
        "tenantry-allowed-registries",
        "g14-shop",
        label,
        "tenantry-g14-shop",
        BindingOptions {
            actions: &["Warn", "Audit"],
            namespace: None,
        },
    );
    assert!(!TenantBinding::from_object(&warn, label).unwrap().denies);
    // Narrowed to one namespace, to some objects, or by another label: not the tenant's.
    let one_namespace = tenant_binding(
        "tenantry-allowed-registries",
        "g14-shop",
        label,
        "tenantry-g14-shop",
        BindingOptions {
            actions: &["Deny"],
            namespace: Some("g14-shop"),
        },
    );
    assert_eq!(TenantBinding::from_object(&one_namespace, label), None);
    let mut some_objects = written.clone();
    some_objects["spec"]["matchResources"]["objectSelector"] =
        json!({"matchLabels": {"app": "web"}});
    assert_eq!(TenantBinding::from_object(&some_objects, label), None);
    assert_eq!(
        TenantBinding::from_object(&written, "example.com/tenant"),
        None
    );
}

#[test]
fn warn_only_renders_bindings_that_warn_and_audit_instead_of_refusing() {
    let rendered = render("policies:\n  vap:\n    tenantParameters: true\n    warnOnly: true\n");
    let bindings: Vec<_> = guardrails(&rendered)
        .into_iter()
        .filter(|o| o.kind == BINDING_KIND)
        .collect();
    assert_eq!(bindings.len(), 6);
    for binding in bindings {
        assert_eq!(
            binding.body["spec"]["validationActions"],
            serde_json::json!(["Warn", "Audit"]),
            "{}",
            binding.reference()
        );
    }
    for binding in guardrails(&render(ON))
        .into_iter()
        .filter(|o| o.kind == BINDING_KIND)
    {
        assert_eq!(
            binding.body["spec"]["validationActions"],
            serde_json::json!(["Deny"])
        );
    }
}
