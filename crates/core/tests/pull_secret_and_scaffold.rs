//! The External Secrets bridge: the platform's pull secret, fanned out by one
//! ClusterExternalSecret or rendered per tenant namespace, and the generated-secret scaffold
//! a tenant writes into its own `deploy/` tree.

mod common;

use common::{platform, tenant};
use serde_json::{Value, json};
use tenantry_api::tenant::{Secrets, TenantFile, TenantSpec};
use tenantry_core::{
    PlatformContext,
    render::{
        platform::{PULL_SECRET, render_platform},
        scaffold::{self, ScaffoldError},
    },
    render_tenant, yaml,
};

fn pull_secret_component(ctx: &PlatformContext) -> tenantry_core::Rendered {
    render_platform(ctx)
        .into_iter()
        .find(|r| r.tenant == PULL_SECRET)
        .expect("the pull-secret component is always rendered")
}

fn with_fan_out(fan_out: bool) -> PlatformContext {
    let mut p = platform("platform-caas.yaml").platform;
    p.pull_secret.fan_out = fan_out;
    PlatformContext::new(p).unwrap()
}

#[test]
fn fan_out_renders_one_cluster_external_secret_for_the_opt_in_label() {
    let rendered = pull_secret_component(&with_fan_out(true));
    let text: String = rendered
        .objects
        .iter()
        .map(|o| {
            format!(
                "# {}\n{}",
                o.file_name(),
                yaml::platform_object_file(PULL_SECRET, o)
            )
        })
        .collect();
    insta::assert_snapshot!(text);
    let [object] = rendered.objects.as_slice() else {
        panic!("{:?}", rendered.objects)
    };
    let read_back: Value = serde_saphyr::from_str(&yaml::object_yaml(object)).unwrap();
    assert_eq!(read_back, object.body);
}

#[test]
fn without_fan_out_the_component_is_empty_and_each_namespace_gets_the_same_spec() {
    assert!(
        pull_secret_component(&with_fan_out(false))
            .objects
            .is_empty()
    );
    let fanned = pull_secret_component(&with_fan_out(true)).objects[0]
        .body
        .clone();
    let per_namespace = render_tenant(&with_fan_out(false), &tenant("allow-root.yaml")).unwrap();
    let external_secrets: Vec<_> = per_namespace
        .objects
        .iter()
        .filter(|o| o.kind == "ExternalSecret")
        .collect();
    assert_eq!(external_secrets.len(), 3, "one per tenant namespace");
    for es in external_secrets {
        assert_eq!(es.body["spec"], fanned["spec"]["externalSecretSpec"]);
        assert_eq!(es.name, fanned["spec"]["externalSecretName"]);
    }
}

#[test]
fn with_fan_out_tenants_get_the_label_and_image_pull_secrets_but_no_external_secret() {
    let ctx = with_fan_out(true);
    let rendered = render_tenant(&ctx, &tenant("allow-root.yaml")).unwrap();
    assert!(rendered.objects.iter().all(|o| o.kind != "ExternalSecret"));
    let namespaces: Vec<_> = rendered
        .objects
        .iter()
        .filter(|o| o.kind == "Namespace")
        .collect();
    assert_eq!(namespaces.len(), 3);
    for ns in namespaces {
        assert_eq!(
            ns.body["metadata"]["labels"]["apps.platform/tenant"], "true",
            "{}",
            ns.name
        );
    }
    let accounts: Vec<_> = rendered
        .objects
        .iter()
        .filter(|o| o.kind == "ServiceAccount")
        .collect();
    assert_eq!(accounts.len(), 3);
    for sa in accounts {
        assert_eq!(
            sa.body["imagePullSecrets"],
            json!([{ "name": "app-registry-pull" }])
        );
    }
    // A tenant that opts out gets neither the label (so the fan-out skips it) nor the secret.
    let spec = TenantSpec {
        secrets: Some(Secrets {
            openbao: None,
            pull_secret: Some(false),
        }),
        ..TenantSpec::default()
    };
    let out = render_tenant(&ctx, &TenantFile::new("quiet", spec)).unwrap();
    let ns = out.objects.iter().find(|o| o.kind == "Namespace").unwrap();
    assert!(
        ns.body["metadata"]["labels"]
            .get("apps.platform/tenant")
            .is_none()
    );
}

fn wedding() -> (PlatformContext, tenantry_core::ResolvedTenant) {
    let ctx = platform("platform-flux.yaml");
    let t = ctx.resolve(&tenant("app-secrets.yaml")).unwrap();
    (ctx, t)
}

#[test]
fn scaffold_writes_the_generator_push_secret_and_external_secret() {
    let (ctx, t) = wedding();
    let files = scaffold::generated_secret_files(&ctx, &t, "admin-code").unwrap();
    let text: String = files
        .iter()
        .map(|f| format!("# file: {}\n{}", f.file_name, f.content))
        .collect();
    insta::assert_snapshot!(text);
    for f in &files {
        let _: Value = serde_saphyr::from_str(&f.content).expect("each file reads back");
    }
    let objects = scaffold::generated_secret(&ctx, &t, "admin-code").unwrap();
    let push = &objects[1].body["spec"];
    assert_eq!(push["updatePolicy"], "IfNotExists");
    assert_eq!(push["deletionPolicy"], "None");
    // The path the tenant's OpenBao policy grants, through the tenant's own store.
    let path = format!(
        "{}/admin-code",
        ctx.platform.openbao.tenant_path("wedding-app")
    );
    assert_eq!(path, "apps/wedding-app/admin-code");
    assert_eq!(push["data"][0]["match"]["remoteRef"]["remoteKey"], path);
    assert_eq!(objects[2].body["spec"]["data"][0]["remoteRef"]["key"], path);
    assert_eq!(push["secretStoreRefs"][0]["name"], "openbao");
    assert!(
        objects
            .iter()
            .all(|o| o.body["metadata"].get("labels").is_none()),
        "the tenant's objects, not Tenantry's"
    );
}

#[test]
fn scaffold_refuses_bad_names_naming_the_argument_and_tenants_without_openbao() {
    let (ctx, t) = wedding();
    let err = scaffold::generated_secret(&ctx, &t, "Admin_Code").unwrap_err();
    assert!(
        matches!(
            err,
            ScaffoldError::BadName {
                argument: "SECRET",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("SECRET \"Admin_Code\""),
        "{err}"
    );
    let err = scaffold::generated_secret(&ctx, &t, "a/b").unwrap_err();
    assert!(err.to_string().starts_with("SECRET \"a/b\""), "{err}");
    let err = scaffold::check_argument("NAME", "wedding.app").unwrap_err();
    assert!(err.to_string().starts_with("NAME \"wedding.app\""), "{err}");

    let plain = ctx.resolve(&tenant("static-site.yaml")).unwrap();
    let err = scaffold::generated_secret(&ctx, &plain, "admin-code").unwrap_err();
    assert!(err.to_string().contains("secrets.openbao"), "{err}");

    let mut p = ctx.platform.clone();
    p.tenant_rbac.generators.clear();
    let ctx = PlatformContext::new(p).unwrap();
    let err = scaffold::generated_secret(&ctx, &t, "admin-code").unwrap_err();
    assert!(err.to_string().contains("tenantRbac.generators"), "{err}");
}
