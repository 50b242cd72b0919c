//! Key-based cosign verification with the key given in `verify.publicKey`: the tenant's
//! delivery then carries the Secret Flux's `verify.secretRef` reads, so render, apply and
//! offboard handle it with the OCIRepository that needs it. Pinned as a snapshot; bad keys
//! are refused naming the field.

mod common;

use base64::Engine as _;
use tenantry_api::tenant::{CosignIdentity, Delivery, FluxOci, TenantFile, TenantSpec};
use tenantry_core::{Layer, document, yaml};

/// A P-256 public key as `cosign.pub` holds it (made with openssl for this test).
const COSIGN_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE5Zlsr3LHF/hRpD6MudAm3UkLAguK
iqTa3WyIcUh9uINeVJEOHfpMg9ed8ntFrc873ndmxbJN9V/Q/uzsjCgqqA==
-----END PUBLIC KEY-----
";

/// A P-384 key: a valid PEM public key, but not one cosign key pairs use.
const P384_PUB: &str = "-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAESLgQQMalwv9ajNQLrcGYbDa5FttceSd7
adkmTsZWSfHByLP03DvdhNoetWoBCbMey8MIC3zaSvGnCMZQfRIXSyMJMS0DCQ5r
UkBpOKr7xk+Sn7MYF+uL07M73yRzKNPh
-----END PUBLIC KEY-----
";

fn keyed(secret_ref: Option<&str>, public_key: &str) -> TenantFile {
    TenantFile::new(
        "shop",
        TenantSpec {
            delivery: Some(Delivery::FluxOci(FluxOci {
                verify: Some(CosignIdentity {
                    secret_ref: secret_ref.map(str::to_owned),
                    public_key: Some(public_key.to_owned()),
                    ..CosignIdentity::default()
                }),
                ..FluxOci::default()
            })),
            ..TenantSpec::default()
        },
    )
}

fn delivery_text(objects: &[tenantry_core::DesiredObject]) -> String {
    let picked: Vec<_> = objects
        .iter()
        .filter(|o| o.kind == "Secret" || o.kind == "OCIRepository")
        .cloned()
        .collect();
    yaml::multi_document(&picked)
}

#[test]
fn tenant_public_key_renders_the_secret_flux_verifies_with() {
    let rendered = tenantry_core::render_tenant(
        &common::platform("platform-flux.yaml"),
        &keyed(Some("shop-cosign-pub"), COSIGN_PUB),
    )
    .unwrap();
    insta::assert_snapshot!(delivery_text(&rendered.objects));
    let secret = rendered
        .objects
        .iter()
        .find(|o| o.kind == "Secret" && o.name == "shop-cosign-pub")
        .expect("the Secret verify.secretRef names");
    assert_eq!(secret.namespace.as_deref(), Some("shop"));
    assert_eq!(secret.layer, Layer::Secrets);
    let data = secret.body["data"]["cosign.pub"].as_str().unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap(),
        COSIGN_PUB.as_bytes()
    );
    // Applied before the OCIRepository that reads it (objects come out in layer order).
    let position = |kind: &str| rendered.objects.iter().position(|o| o.kind == kind);
    assert!(position("Secret") < position("OCIRepository"));
}

#[test]
fn platform_public_key_in_tenantry_yaml_serves_every_keyed_tenant() {
    let platform = document::parse_platform(&format!(
        "defaults:\n  delivery:\n    fluxOCI:\n      url: oci://registry.example/{{tenant}}/manifests\n      verify:\n        secretRef: cosign-pub\n        publicKey: |\n{}",
        COSIGN_PUB
            .lines()
            .map(|l| format!("          {l}\n"))
            .collect::<String>()
    ))
    .unwrap();
    let ctx = tenantry_core::PlatformContext::new(platform).unwrap();
    let rendered =
        tenantry_core::render_tenant(&ctx, &TenantFile::new("web", TenantSpec::default())).unwrap();
    insta::assert_snapshot!(delivery_text(&rendered.objects));
}

#[test]
fn no_public_key_renders_no_secret() {
    let rendered = common::render_oci_verified_by("made-elsewhere");
    assert!(!rendered.objects.iter().any(|o| o.kind == "Secret"));
}

#[test]
fn bad_public_keys_are_refused_naming_the_field() {
    let ctx = common::platform("platform-flux.yaml");
    for (tenant, path, words) in [
        (
            keyed(Some("k"), "not a key"),
            "spec.delivery.fluxOCI.verify.publicKey",
            "PUBLIC KEY",
        ),
        (
            keyed(Some("k"), P384_PUB),
            "spec.delivery.fluxOCI.verify.publicKey",
            "P-256",
        ),
        (
            keyed(
                Some("k"),
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            ),
            "spec.delivery.fluxOCI.verify.publicKey",
            "P-256",
        ),
        (
            keyed(None, COSIGN_PUB),
            "spec.delivery.fluxOCI.verify.secretRef",
            "required with publicKey",
        ),
    ] {
        let e = tenantry_core::render_tenant(&ctx, &tenant)
            .unwrap_err()
            .to_string();
        assert!(e.contains(path) && e.contains(words), "{e}");
    }
}
