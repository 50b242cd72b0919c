//! `flux.proxy` in tenantry.yaml: every Flux-delivered tenant's Kustomization reconciles
//! through the tenant proxy with the operator-kept kubeconfig Secret, unless the tenant names
//! its own; the setting is refused when it could leak the token (plain HTTP) or cannot be
//! a CA bundle.

use tenantry_api::{
    platform::FLUX_PROXY_KUBECONFIG_SECRET,
    tenant::{Delivery, FluxGit, FluxOci, TenantFile, TenantSpec},
};
use tenantry_core::{PlatformContext, document};

const PROXY: &str = "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\nflux:\n  proxy:\n    url: https://tenantry-proxy.tenantry-system.svc:8443\n    tokenExpiration: 30m\n";

fn ctx(text: &str) -> PlatformContext {
    PlatformContext::new(document::parse_platform(text).unwrap()).unwrap()
}

fn tenant(delivery: Delivery) -> TenantFile {
    TenantFile::new(
        "shop",
        TenantSpec {
            delivery: Some(delivery),
            ..TenantSpec::default()
        },
    )
}

fn oci() -> Delivery {
    Delivery::FluxOci(FluxOci {
        url: Some("oci://ghcr.io/acme/shop-deploy".into()),
        verify: Some(tenantry_api::tenant::CosignIdentity {
            issuer: Some("^https://token\\.actions\\.githubusercontent\\.com$".into()),
            subject: Some("^https://github\\.com/acme/.*$".into()),
            ..Default::default()
        }),
        ..FluxOci::default()
    })
}

fn git(secret: Option<&str>) -> Delivery {
    Delivery::FluxGit(FluxGit {
        url: Some("https://github.com/acme/shop".into()),
        proxy_kubeconfig_secret: secret.map(str::to_owned),
        ..FluxGit::default()
    })
}

/// The Kustomization's `spec.kubeConfig`, if any.
fn kube_config(ctx: &PlatformContext, delivery: Delivery) -> serde_json::Value {
    let rendered = tenantry_core::render_tenant(ctx, &tenant(delivery)).unwrap();
    let kustomization = rendered
        .objects
        .iter()
        .find(|o| o.kind == "Kustomization")
        .unwrap();
    assert_eq!(kustomization.body["spec"]["serviceAccountName"], "shop");
    kustomization.body["spec"]["kubeConfig"].clone()
}

#[test]
fn with_flux_proxy_every_flux_kustomization_reconciles_through_the_operator_kept_secret() {
    let ctx = ctx(PROXY);
    let expected = serde_json::json!({
        "secretRef": { "name": FLUX_PROXY_KUBECONFIG_SECRET, "key": "kubeconfig" }
    });
    assert_eq!(kube_config(&ctx, oci()), expected);
    assert_eq!(kube_config(&ctx, git(None)), expected);
    // A tenant naming its own proxy kubeconfig keeps it.
    assert_eq!(
        kube_config(&ctx, git(Some("shop-proxy")))["secretRef"]["name"],
        "shop-proxy"
    );
    let proxy = ctx.platform.flux.proxy.as_ref().unwrap();
    assert_eq!(proxy.token_expiration.duration().as_secs(), 1800);
}

#[test]
fn without_flux_proxy_flux_talks_to_the_api_server_directly() {
    let ctx = ctx("apiVersion: tenantry.dev/v1alpha1\nkind: Platform\n");
    assert!(kube_config(&ctx, oci()).is_null());
    assert!(kube_config(&ctx, git(None)).is_null());
}

#[test]
fn a_plain_http_proxy_a_non_pem_ca_or_a_short_token_is_refused_naming_the_field() {
    let refused = |text: &str| match document::parse_platform(text) {
        Ok(platform) => PlatformContext::new(platform).unwrap_err().to_string(),
        Err(e) => e.to_string(),
    };
    let http = refused(&PROXY.replace("https://", "http://"));
    assert!(http.contains("flux.proxy.url"), "{http}");
    let ca = refused(&format!("{PROXY}    caBundle: not a certificate\n"));
    assert!(ca.contains("flux.proxy.caBundle"), "{ca}");
    let short = refused(&PROXY.replace("30m", "5m"));
    assert!(
        short.contains("tokenExpiration") || short.contains("10m"),
        "{short}"
    );
    // The default lifetime is an hour.
    let default = ctx(&PROXY.replace("    tokenExpiration: 30m\n", ""));
    assert_eq!(
        default
            .platform
            .flux
            .proxy
            .unwrap()
            .token_expiration
            .duration()
            .as_secs(),
        3600
    );
}
