//! Cosign signatures, key-based, made and checked here rather than with the `sigstore` crate.
//!
//! Why not `sigstore` (0.14): its `cosign` and `sign` features both turn on `cert`, which is
//! `rustls-webpki/aws-lc-rs`, and its registry client is oci-client with reqwest's `rustls`
//! feature (aws-lc-rs again) or native-tls (OpenSSL). Signing with a key and attaching the
//! `sha256-<digest>.sig` signature cannot be had with ring alone, and the binary keeps one
//! crypto provider. It would also add ~520 crates (a TUF client, OIDC, a second oci-client).
//! What key-based cosign needs is small and fixed by its format, so it is implemented here:
//!
//! - the **payload** is cosign's "simple signing" JSON naming the repository
//!   (`docker-reference`) and the signed manifest digest;
//! - the **signature** is ECDSA P-256 with SHA-256 over the payload bytes, ASN.1 DER,
//!   base64 in the layer annotation `dev.cosignproject.cosign/signature`;
//! - the **signature manifest** is an OCI image whose one layer is the payload
//!   (`application/vnd.dev.cosign.simplesigning.v1+json`), tagged `sha256-<hex>.sig`;
//! - **keys** are cosign's files: `cosign.pub` is a PKIX `PUBLIC KEY` PEM, `cosign.key` an
//!   `ENCRYPTED SIGSTORE PRIVATE KEY` PEM (JSON: scrypt KDF, NaCl secretbox over the PKCS#8
//!   key), so `cosign`, `skopeo` and Flux read them as their own.
//!
//! No Rekor entry is written: Flux's key-based `verify.secretRef` and skopeo's
//! `sigstoreSigned` with a `keyPath` check the key, not a transparency log. Keyless signing
//! (Fulcio certificates, Rekor bundles) is not implemented.

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use p256::{
    ecdsa::{
        Signature, SigningKey, VerifyingKey,
        signature::{Signer as _, Verifier as _},
    },
    pkcs8::{
        DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _, EncodePublicKey as _,
        LineEnding, der::pem,
    },
};
use rand_core::{OsRng, RngCore as _};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::artifact::{Blob, Image, image_config, sha256_digest};

/// The media type of the signed payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The OCI image config media type cosign gives signature manifests.
pub const IMAGE_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The payload's `critical.type`.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";
/// The PEM label cosign 2 writes for an encrypted private key.
pub const ENCRYPTED_KEY_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label cosign 1 wrote; still read.
const LEGACY_ENCRYPTED_KEY_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// scrypt cost for new keys, cosign's: N = 2^15, r = 8, p = 1.
const SCRYPT_LOG_N: u8 = 15;
/// The most expensive scrypt a key file may ask for (N = 2^20, 1 GiB): a hostile file must
/// not be able to ask for unbounded memory.
const MAX_SCRYPT_LOG_N: u8 = 20;

/// Why a key could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not PEM, or a PEM of another kind.
    #[error("is not a cosign key: {0}")]
    Format(String),
    /// The passphrase did not decrypt it.
    #[error(
        "could not be decrypted: wrong passphrase (from TENANTRY_KEY_PASSWORD, COSIGN_PASSWORD or the prompt)"
    )]
    Passphrase,
    /// A key of another algorithm.
    #[error(
        "is not an ECDSA P-256 key ({0}); cosign keys made by `cosign generate-key-pair` or `tenantry keys generate` are"
    )]
    Algorithm(String),
}

/// A new key pair, as the two files cosign writes.
#[derive(Clone, Debug)]
pub struct KeyPairPem {
    /// `cosign.key`: the encrypted private key.
    pub private_pem: String,
    /// `cosign.pub`: the public key.
    pub public_pem: String,
}

/// Generate a P-256 key pair, the private key encrypted under `password` as cosign does.
pub fn generate(password: &[u8]) -> Result<KeyPairPem, KeyError> {
    let key = SigningKey::random(&mut OsRng);
    let der = key
        .to_pkcs8_der()
        .map_err(|e| KeyError::Format(e.to_string()))?;
    let private_pem = encrypt_pkcs8(der.as_bytes(), password, SCRYPT_LOG_N)?;
    Ok(KeyPairPem {
        private_pem,
        public_pem: public_pem(key.verifying_key())?,
    })
}

/// The PKIX PEM of a public key (`cosign.pub`).
pub fn public_pem(key: &VerifyingKey) -> Result<String, KeyError> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Format(e.to_string()))
}

#[derive(Serialize, Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

/// Go's `[]byte` in JSON: standard base64 with padding.
mod b64 {
    use base64::{Engine as _, engine::general_purpose::STANDARD};
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

fn scrypt_key(
    password: &[u8],
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> Result<[u8; 32], KeyError> {
    let params = scrypt::Params::new(log_n, r, p, 32)
        .map_err(|e| KeyError::Format(format!("scrypt parameters: {e}")))?;
    let mut out = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut out)
        .map_err(|e| KeyError::Format(format!("scrypt: {e}")))?;
    Ok(out)
}

fn encrypt_pkcs8(der: &[u8], password: &[u8], log_n: u8) -> Result<String, KeyError> {
    use crypto_secretbox::{KeyInit as _, XSalsa20Poly1305, aead::Aead as _};
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut nonce);
    let key = scrypt_key(password, &salt, log_n, 8, 1)?;
    let ciphertext = XSalsa20Poly1305::new(&key.into())
        .encrypt(&nonce.into(), der)
        .map_err(|e| KeyError::Format(format!("secretbox: {e}")))?;
    let body = Encrypted {
        kdf: Kdf {
            name: "scrypt".to_owned(),
            params: KdfParams {
                n: 1 << log_n,
                r: 8,
                p: 1,
            },
            salt: salt.to_vec(),
        },
        cipher: Cipher {
            name: "nacl/secretbox".to_owned(),
            nonce: nonce.to_vec(),
        },
        ciphertext,
    };
    let json = serde_json::to_vec(&body).map_err(|e| KeyError::Format(e.to_string()))?;
    pem::encode_string(ENCRYPTED_KEY_LABEL, LineEnding::LF, &json)
        .map_err(|e| KeyError::Format(e.to_string()))
}

/// Whether a private key PEM is cosign's encrypted kind (and so needs a passphrase).
pub fn is_encrypted(pem_text: &str) -> bool {
    [ENCRYPTED_KEY_LABEL, LEGACY_ENCRYPTED_KEY_LABEL]
        .iter()
        .any(|l| pem_text.contains(&format!("-----BEGIN {l}-----")))
}

/// Read a private key: cosign's encrypted PEM (decrypted with `password`) or an unencrypted
/// PKCS#8 `PRIVATE KEY`.
pub fn read_private_key(pem_text: &str, password: &[u8]) -> Result<SigningKey, KeyError> {
    use crypto_secretbox::{KeyInit as _, XSalsa20Poly1305, aead::Aead as _};
    let (label, body) =
        pem::decode_vec(pem_text.trim().as_bytes()).map_err(|e| KeyError::Format(e.to_string()))?;
    let der = match label {
        ENCRYPTED_KEY_LABEL | LEGACY_ENCRYPTED_KEY_LABEL => {
            let e: Encrypted = serde_json::from_slice(&body)
                .map_err(|e| KeyError::Format(format!("encrypted key body: {e}")))?;
            if e.kdf.name != "scrypt" || e.cipher.name != "nacl/secretbox" {
                return Err(KeyError::Format(format!(
                    "unsupported encryption {}/{}",
                    e.kdf.name, e.cipher.name
                )));
            }
            let n = e.kdf.params.n;
            if !n.is_power_of_two() || n < 2 || n.trailing_zeros() > u32::from(MAX_SCRYPT_LOG_N) {
                return Err(KeyError::Format(format!(
                    "scrypt N={n} is not a power of two up to 2^{MAX_SCRYPT_LOG_N}"
                )));
            }
            if e.kdf.params.r > 32 || e.kdf.params.p > 16 {
                return Err(KeyError::Format("scrypt r or p out of range".to_owned()));
            }
            let nonce: [u8; 24] = e
                .cipher
                .nonce
                .as_slice()
                .try_into()
                .map_err(|_| KeyError::Format("nonce is not 24 bytes".to_owned()))?;
            #[allow(clippy::cast_possible_truncation)] // At most MAX_SCRYPT_LOG_N.
            let log_n = n.trailing_zeros() as u8;
            let key = scrypt_key(password, &e.kdf.salt, log_n, e.kdf.params.r, e.kdf.params.p)?;
            XSalsa20Poly1305::new(&key.into())
                .decrypt(&nonce.into(), e.ciphertext.as_slice())
                .map_err(|_| KeyError::Passphrase)?
        }
        "PRIVATE KEY" => body,
        other => {
            return Err(KeyError::Format(format!(
                "PEM block {other:?}; expected {ENCRYPTED_KEY_LABEL:?} or \"PRIVATE KEY\""
            )));
        }
    };
    SigningKey::from_pkcs8_der(&der).map_err(|e| KeyError::Algorithm(e.to_string()))
}

/// Read a public key (`cosign.pub`, PKIX PEM).
pub fn read_public_key(pem_text: &str) -> Result<VerifyingKey, KeyError> {
    if !pem_text.contains("-----BEGIN PUBLIC KEY-----") {
        return Err(KeyError::Format(
            "expected a \"PUBLIC KEY\" PEM block".to_owned(),
        ));
    }
    VerifyingKey::from_public_key_pem(pem_text.trim())
        .map_err(|e| KeyError::Algorithm(e.to_string()))
}

/// Cosign's simple-signing payload for `manifest_digest` in `repository` (`REGISTRY/REPO`),
/// byte for byte as cosign marshals it.
pub fn payload(repository: &str, manifest_digest: &str) -> Vec<u8> {
    let v = json!({
        "critical": {
            "identity": { "docker-reference": repository },
            "image": { "docker-manifest-digest": manifest_digest },
            "type": PAYLOAD_TYPE,
        },
        "optional": null,
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The signature image for a payload signed with `key`: pushed as `sha256-<hex>.sig`.
pub fn signature_image(key: &SigningKey, payload: Vec<u8>) -> Image {
    let signature: Signature = key.sign(&payload);
    let mut layer = Blob::new(SIMPLE_SIGNING_MEDIA_TYPE, payload);
    layer.annotations.insert(
        SIGNATURE_ANNOTATION.to_owned(),
        B64.encode(signature.to_der().as_bytes()),
    );
    let config = Blob::new(IMAGE_CONFIG_MEDIA_TYPE, image_config(&[layer.digest()]));
    Image::new(config, vec![layer], &Default::default())
}

/// One signature layer as found in a registry: its descriptor and the payload bytes fetched
/// for it.
#[derive(Clone, Debug)]
pub struct FoundSignature {
    /// The descriptor's digest.
    pub digest: String,
    /// The base64 signature annotation, if present.
    pub signature: Option<String>,
    /// The payload blob's bytes.
    pub payload: Vec<u8>,
}

/// What checking a manifest's signatures found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A signature by one of the keys over a payload naming this manifest and repository.
    Verified,
    /// No signature manifest, or none of its layers is a signature.
    Missing,
    /// Signatures exist but none verifies with the given keys: signed by another key.
    WrongKey,
    /// A signature is not what it claims: its payload does not match its descriptor, or it
    /// verifies but names another manifest or repository.
    Tampered(String),
}

/// Judge the signatures found for `manifest_digest` in `repository` against `keys`, as
/// cosign's key-based verification does: a layer passes when its payload bytes match their
/// digest, its signature verifies with one key, and the payload names this manifest.
pub fn judge(
    found: &[FoundSignature],
    keys: &[VerifyingKey],
    repository: &str,
    manifest_digest: &str,
) -> Verdict {
    if found.is_empty() {
        return Verdict::Missing;
    }
    let mut tampered = None;
    for s in found {
        if sha256_digest(&s.payload) != s.digest {
            tampered
                .get_or_insert_with(|| format!("payload {} does not match its digest", s.digest));
            continue;
        }
        let Some(sig) = s
            .signature
            .as_deref()
            .and_then(|b| B64.decode(b).ok())
            .and_then(|der| Signature::from_der(&der).ok())
        else {
            tampered.get_or_insert_with(|| {
                format!("layer {} has no readable {SIGNATURE_ANNOTATION}", s.digest)
            });
            continue;
        };
        if !keys.iter().any(|k| k.verify(&s.payload, &sig).is_ok()) {
            continue;
        }
        match payload_claims(&s.payload) {
            Some((kind, reference, digest))
                if kind == PAYLOAD_TYPE && digest == manifest_digest && reference == repository =>
            {
                return Verdict::Verified;
            }
            Some((_, reference, digest)) => {
                tampered.get_or_insert_with(|| {
                    format!("the signed payload names {reference}@{digest}, not {repository}@{manifest_digest}")
                });
            }
            None => {
                tampered.get_or_insert_with(|| {
                    "the signed payload is not simple-signing JSON".to_owned()
                });
            }
        }
    }
    tampered.map_or(Verdict::WrongKey, Verdict::Tampered)
}

fn payload_claims(payload: &[u8]) -> Option<(String, String, String)> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let c = v.get("critical")?;
    Some((
        c.get("type")?.as_str()?.to_owned(),
        c.pointer("/identity/docker-reference")?
            .as_str()?
            .to_owned(),
        c.pointer("/image/docker-manifest-digest")?
            .as_str()?
            .to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO: &str = "127.0.0.1:5000/team/shop";

    fn digest() -> String {
        format!("sha256:{}", "ab".repeat(32))
    }

    fn found(image: &Image) -> Vec<FoundSignature> {
        image
            .layers
            .iter()
            .map(|l| FoundSignature {
                digest: l.digest(),
                signature: l.annotations.get(SIGNATURE_ANNOTATION).cloned(),
                payload: l.bytes.clone(),
            })
            .collect()
    }

    #[test]
    fn payload_is_cosigns_bytes() {
        assert_eq!(
            String::from_utf8(payload("ghcr.io/x/y", "sha256:00")).unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"ghcr.io/x/y"},"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature"},"optional":null}"#
        );
    }

    #[test]
    fn key_pair_round_trips_through_cosigns_encrypted_pem() {
        let pair = generate(b"s3cret").unwrap();
        assert!(
            pair.private_pem
                .starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
        );
        assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let key = read_private_key(&pair.private_pem, b"s3cret").unwrap();
        assert_eq!(public_pem(key.verifying_key()).unwrap(), pair.public_pem);
        assert_eq!(
            read_private_key(&pair.private_pem, b"wrong").unwrap_err(),
            KeyError::Passphrase
        );
        // The body is the JSON cosign writes.
        let (_, body) = pem::decode_vec(pair.private_pem.as_bytes()).unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["kdf"]["name"], "scrypt");
        assert_eq!(v["kdf"]["params"]["N"], 32768);
        assert_eq!(v["cipher"]["name"], "nacl/secretbox");
    }

    #[test]
    fn signature_verifies_only_with_its_key_and_for_its_manifest() {
        let key = SigningKey::random(&mut OsRng);
        let other = SigningKey::random(&mut OsRng);
        let image = signature_image(&key, payload(REPO, &digest()));
        let found = found(&image);
        let pubkey = *key.verifying_key();
        assert_eq!(judge(&found, &[pubkey], REPO, &digest()), Verdict::Verified);
        assert_eq!(
            judge(&found, &[*other.verifying_key()], REPO, &digest()),
            Verdict::WrongKey
        );
        assert_eq!(judge(&[], &[pubkey], REPO, &digest()), Verdict::Missing);
        let elsewhere = format!("sha256:{}", "cd".repeat(32));
        assert!(
            matches!(judge(&found, &[pubkey], REPO, &elsewhere), Verdict::Tampered(m) if m.contains(&elsewhere))
        );
    }

    #[test]
    fn altered_payload_or_signature_is_tampered_or_unverified() {
        let key = SigningKey::random(&mut OsRng);
        let image = signature_image(&key, payload(REPO, &digest()));
        let mut f = found(&image);
        f[0].payload.push(b' ');
        assert!(matches!(
            judge(&f, &[*key.verifying_key()], REPO, &digest()),
            Verdict::Tampered(_)
        ));
        let mut f = found(&image);
        f[0].signature = Some("not base64!".into());
        assert!(matches!(
            judge(&f, &[*key.verifying_key()], REPO, &digest()),
            Verdict::Tampered(_)
        ));
    }

    #[test]
    fn signature_manifest_has_cosigns_shape() {
        let key = SigningKey::random(&mut OsRng);
        let image = signature_image(&key, payload(REPO, &digest()));
        let m: Value = serde_json::from_slice(&image.manifest).unwrap();
        assert_eq!(m["config"]["mediaType"], IMAGE_CONFIG_MEDIA_TYPE);
        assert_eq!(m["layers"][0]["mediaType"], SIMPLE_SIGNING_MEDIA_TYPE);
        assert!(m["layers"][0]["annotations"][SIGNATURE_ANNOTATION].is_string());
    }

    /// `pemsigstorekey` from cosign's own tests (sigstore/cosign pkg/cosign/keys_test.go,
    /// Apache-2.0), written by cosign's `GenerateKeyPair` with the passphrase "hello":
    /// proof that the envelope read here is the one cosign writes.
    const COSIGN_SIGSTORE_KEY: &str = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiI3T3VGd2VsbWZZNXVId2NoaURSc210anNwZ2ZlZjFG
Mk5lOGFDTjVLYVpZPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJQNHk4OGhCb3ZTa09MbXN0bFVBaGJwdDJ0K2xTNUxQSCJ9LCJj
aXBoZXJ0ZXh0IjoiMnB1QzdyZldJOWh3bnJlQ2s4aUZDRlVwQlRrSzRJNlIvbFBF
cnBDekpXUGpJWXl4eGVIL1A2VW52cFJHdVhla1NNb3JMdGhLamdoQ1JlNy82NDVH
QWtoVm1LRC92eEF0S2EvbE1abENSQ3FlekJGUFd1dzNpeFRtZ2xhb2J1ZFVSbUVs
bmNGOGlZbzBTMVl6Y1ZOMVFwY2J2c0dNcUlYRzVlbmdteGp5dCtBcXlyZTF0Q0Y0
V01tU1BlaEljNlBqd2h1Q2xHaVpJUWRvTGc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----
";

    /// `pemcosignkey` from the same file: cosign 1's label, passphrase "hello".
    const COSIGN_LEGACY_KEY: &str = "-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiJ4WWdoc09JTUxUWGNOT0RsclNIOUNKc1FlOVFnZmN1
cmUrMXlLdHh1TlkwPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiI0cS9PSlVmaXJkSUkrUjZ0ajZBMmcyQ0JqL25xdFNicCJ9LCJj
aXBoZXJ0ZXh0IjoiKzB4Q3NzcFN0WStBczdKanJpOWtsbHBWd2JhcUI4ZWJNdWto
eS9aVE1MSXRsL3B1YS9jWVJvbytLRGxMWWdmOW1kSjk4K1FnQW9oTktoYnJPMTcw
MHdBY1JTMjFDOE4zQUNJRUVZaWpOMllBNnMraGJSbkhjUnd4eGhDMDFtb2FvL0dO
Y1pmbEJheXZMV3pXblo4d2NDZ2ZpT1o1VXlRTEFJMHh0dnR6dEh3cTdDV1Vhd3V4
RlhlNDZzck9TUE9SNHN6bytabWErUGovSFE9PSJ9
-----END ENCRYPTED COSIGN PRIVATE KEY-----
";

    #[test]
    fn keys_written_by_cosign_decrypt_and_sign() {
        for pem_text in [COSIGN_SIGSTORE_KEY, COSIGN_LEGACY_KEY] {
            assert!(is_encrypted(pem_text));
            let key = read_private_key(pem_text, b"hello").unwrap();
            // A usable P-256 key: what it signs its public half verifies.
            let image = signature_image(&key, payload(REPO, &digest()));
            assert_eq!(
                judge(&found(&image), &[*key.verifying_key()], REPO, &digest()),
                Verdict::Verified
            );
            assert_eq!(
                read_private_key(pem_text, b"hellO").unwrap_err(),
                KeyError::Passphrase
            );
        }
    }

    #[test]
    fn truncated_or_altered_envelopes_are_refused_not_panicked_on() {
        let pair = generate(b"pw").unwrap();
        let (label, body) = pem::decode_vec(pair.private_pem.as_bytes()).unwrap();
        // The JSON cut short: a format error naming the body.
        let cut = pem::encode_string(label, LineEnding::LF, &body[..body.len() / 2]).unwrap();
        let e = read_private_key(&cut, b"pw").unwrap_err();
        assert!(
            matches!(&e, KeyError::Format(m) if m.contains("encrypted key body")),
            "{e}"
        );
        // Well-formed JSON whose ciphertext lost its last bytes: the MAC fails.
        let mut v: Value = serde_json::from_slice(&body).unwrap();
        let ct = B64.decode(v["ciphertext"].as_str().unwrap()).unwrap();
        v["ciphertext"] = B64.encode(&ct[..ct.len() - 8]).into();
        let short =
            pem::encode_string(label, LineEnding::LF, &serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(
            read_private_key(&short, b"pw").unwrap_err(),
            KeyError::Passphrase
        );
        // A nonce of the wrong size, and the PEM itself cut mid-line.
        v["cipher"]["nonce"] = B64.encode([0u8; 12]).into();
        let bad_nonce =
            pem::encode_string(label, LineEnding::LF, &serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(matches!(
            read_private_key(&bad_nonce, b"pw"),
            Err(KeyError::Format(m)) if m.contains("nonce")
        ));
        let half = &pair.private_pem[..pair.private_pem.len() / 2];
        assert!(matches!(
            read_private_key(half, b"pw"),
            Err(KeyError::Format(_))
        ));
    }

    #[test]
    fn other_pem_kinds_are_refused_by_name() {
        let e = read_private_key(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            b"",
        )
        .unwrap_err();
        assert!(e.to_string().contains("CERTIFICATE"), "{e}");
        assert!(read_public_key("nonsense").is_err());
    }
}
