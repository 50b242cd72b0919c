//! Fixtures shared by the core integration tests: two platforms and the four reference
//! tenants drawn from the design seeds.

#![allow(dead_code)]

use std::path::PathBuf;

use tenantry_api::tenant::TenantFile;
use tenantry_core::{PlatformContext, Rendered, document};

pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn platform(name: &str) -> PlatformContext {
    let platform = document::parse_platform(&fixture(name)).expect("fixture platform parses");
    PlatformContext::new(platform).expect("fixture platform is valid")
}

pub fn tenant(name: &str) -> TenantFile {
    document::parse_tenant_file(&fixture(name)).expect("fixture tenant parses")
}

/// (snapshot name, platform fixture, tenant fixture) for the four reference tenants.
pub const REFERENCE_TENANTS: [(&str, &str, &str); 4] = [
    (
        "static_site_flux_oci_external_dns",
        "platform-flux.yaml",
        "static-site.yaml",
    ),
    (
        "openbao_app_secrets",
        "platform-flux.yaml",
        "app-secrets.yaml",
    ),
    ("argocd_mesh", "platform-caas.yaml", "argocd-mesh.yaml"),
    (
        "allow_root_three_namespaces_group_owner",
        "platform-caas.yaml",
        "allow-root.yaml",
    ),
];

pub fn render_reference(platform_file: &str, tenant_file: &str) -> Rendered {
    let ctx = platform(platform_file);
    tenantry_core::render_tenant(&ctx, &tenant(tenant_file)).expect("reference tenant renders")
}

/// The repository's test data (`testdata/`: upstream CRDs, recorded API traffic).
pub fn testdata_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
    assert!(
        dir.is_dir(),
        "{} is missing: the tests read their data from testdata/ in the repository",
        dir.display()
    );
    dir
}

/// Tenant `shop` delivered by Flux OCI, verified by the public key in Secret `secret_ref`,
/// rendered with the reference Flux platform.
pub fn render_oci_verified_by(secret_ref: &str) -> Rendered {
    use tenantry_api::tenant::{CosignIdentity, Delivery, FluxOci, TenantSpec};
    let spec = TenantSpec {
        delivery: Some(Delivery::FluxOci(FluxOci {
            verify: Some(CosignIdentity {
                secret_ref: Some(secret_ref.into()),
                ..CosignIdentity::default()
            }),
            ..FluxOci::default()
        })),
        ..TenantSpec::default()
    };
    tenantry_core::render_tenant(
        &platform("platform-flux.yaml"),
        &TenantFile::new("shop", spec),
    )
    .unwrap()
}
