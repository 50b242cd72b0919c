//! Client certificates: the second way a caller authenticates (`tenantry proxy --client-ca`).
//!
//! Platforms that hand people x509 credentials (kubeadm's admin.conf, an internal CA) want those
//! people to reach the proxy with the same kubeconfig user they use directly. The proxy then
//! has to read a certificate exactly as the API server's x509 authenticator does, or the
//! identity it impersonates would differ from the one RBAC knows:
//! - the chain must verify against the configured CA for client authentication, at the time of
//!   the request. rustls checks it during the handshake ([`verifier`]), and
//!   [`certificate_user`] checks the validity period again on every request, because a
//!   kept-alive connection outlives the moment it was checked (the API server also re-verifies
//!   per request);
//! - the subject's CommonName is the user name (an empty one authenticates nobody), each
//!   Organization a group, the `1.3.6.1.4.1.57683.2` attribute (Kubernetes' user-UID OID) the
//!   uid; `system:authenticated` is added, as the API server's authenticator chain adds it and
//!   a TokenReview reports it, so both ways yield the same impersonation headers.
//!
//! The verifier also accepts clients that present no certificate, so bearer tokens keep
//! working on the same port. A certificate from another CA, or expired at the handshake, fails
//! the TLS handshake (as with the API server: the client sees a TLS alert, not a 401). When a
//! connection carries both a certificate and a token, the certificate decides, as in the API
//! server's authenticator order (x509 before tokens).

use std::{path::Path, sync::Arc, time::SystemTime};

use rustls::{
    RootCertStore,
    pki_types::{CertificateDer, pem::PemObject},
    server::{WebPkiClientVerifier, danger::ClientCertVerifier},
};

use crate::auth::UserInfo;

/// Kubernetes' OID for the user's UID in a client certificate's subject.
pub const UID_OID: &str = "1.3.6.1.4.1.57683.2";

/// Why `--client-ca` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientCaError {
    /// The file could not be read or holds no PEM certificate.
    #[error("{path}: {message}")]
    Unreadable {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the certificates as trust anchors.
    #[error("{path}: not usable as a client CA: {message}")]
    Unusable {
        /// The file.
        path: String,
        /// rustls's reason.
        message: String,
    },
}

/// A verifier accepting client certificates issued by the CAs in the PEM file `path` (and
/// clients with none), with the binary's one crypto provider.
pub fn verifier(path: &Path) -> Result<Arc<dyn ClientCertVerifier>, ClientCaError> {
    let shown = path.display().to_string();
    let unreadable = |message: String| ClientCaError::Unreadable {
        path: shown.clone(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(format!("not a PEM certificate bundle: {e}")))?;
    if certificates.is_empty() {
        return Err(unreadable("holds no PEM CERTIFICATE block".to_owned()));
    }
    verifier_for(certificates).map_err(|message| ClientCaError::Unusable {
        path: shown,
        message,
    })
}

/// [`verifier`] for certificates already read.
pub fn verifier_for(
    certificates: Vec<CertificateDer<'static>>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate).map_err(|e| e.to_string())?;
    }
    WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        tenantry_admission::tls::provider(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| e.to_string())
}

/// The identity of a verified leaf certificate at `now`: `Ok(None)` when its CommonName is
/// empty (it authenticates nobody; a token may still), `Err` with the reason when it is outside
/// its validity period or unreadable (the caller answers 401 `Unauthorized`, worded as the API
/// server words it, and logs the reason).
pub fn certificate_user(leaf: &[u8], now: SystemTime) -> Result<Option<UserInfo>, String> {
    let (_, certificate) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|_| "the client certificate is unreadable".to_owned())?;
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let validity = certificate.validity();
    if now < validity.not_before.timestamp() || now > validity.not_after.timestamp() {
        return Err("the client certificate has expired or is not yet valid".to_owned());
    }
    let subject = certificate.subject();
    let text = |attribute: &x509_parser::x509::AttributeTypeAndValue<'_>| {
        attribute
            .as_str()
            .map(str::to_owned)
            .map_err(|_| "the client certificate's subject is not text".to_owned())
    };
    let Some(username) = subject.iter_common_name().next().map(text).transpose()? else {
        return Ok(None);
    };
    if username.is_empty() {
        return Ok(None);
    }
    let mut groups = subject
        .iter_organization()
        .map(text)
        .collect::<Result<Vec<_>, _>>()?;
    if !groups.iter().any(|g| g == "system:authenticated") {
        groups.push("system:authenticated".to_owned());
    }
    let uid = subject
        .iter_attributes()
        .find(|a| a.attr_type().to_id_string() == UID_OID)
        .map(text)
        .transpose()?
        .unwrap_or_default();
    Ok(Some(UserInfo {
        username,
        uid,
        groups,
        extra: Default::default(),
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    use rustls::pki_types::UnixTime;

    use super::*;

    struct Ca {
        der: CertificateDer<'static>,
        issuer: Issuer<'static, KeyPair>,
    }

    fn ca(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().clone();
        Ca {
            der,
            issuer: Issuer::new(params, key),
        }
    }

    /// A client certificate for `cn` in `orgs`, valid from `from` for `days`.
    fn client(ca: &Ca, cn: &str, orgs: &[&str], from: SystemTime, days: u64) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        // rcgen keeps one value per DnType: a second O (at most two here) goes in under the
        // same OID, 2.5.4.10, spelled as a custom type.
        assert!(orgs.len() <= 2);
        for (i, org) in orgs.iter().enumerate() {
            let kind = match i {
                0 => DnType::OrganizationName,
                _ => DnType::CustomDnType(vec![2, 5, 4, 10]),
            };
            params.distinguished_name.push(kind, *org);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = from.into();
        params.not_after = (from + Duration::from_secs(days * 86_400)).into();
        let key = KeyPair::generate().unwrap();
        params.signed_by(&key, &ca.issuer).unwrap().der().to_vec()
    }

    fn at(time: SystemTime) -> UnixTime {
        UnixTime::since_unix_epoch(time.duration_since(SystemTime::UNIX_EPOCH).unwrap())
    }

    #[test]
    fn the_api_servers_reading_cn_is_the_user_and_each_o_a_group() {
        let ca = ca("platform CA");
        let now = SystemTime::now();
        let leaf = client(&ca, "ann", &["shop-owners", "devs"], now, 1);
        let user = certificate_user(&leaf, now).unwrap().unwrap();
        assert_eq!(user.username, "ann");
        assert_eq!(
            user.groups,
            ["shop-owners", "devs", "system:authenticated"].map(String::from)
        );
        assert_eq!(user.uid, "");
        // No CommonName: nobody (a token on the same request may still authenticate).
        let nameless = client(&ca, "", &["devs"], now, 1);
        assert_eq!(certificate_user(&nameless, now).unwrap(), None);
    }

    #[test]
    fn an_expired_certificate_is_refused_on_the_request_too() {
        let ca = ca("platform CA");
        let issued = SystemTime::now() - Duration::from_secs(10 * 86_400);
        let leaf = client(&ca, "ann", &[], issued, 1);
        let reason = certificate_user(&leaf, SystemTime::now()).unwrap_err();
        assert!(reason.contains("expired"), "{reason}");
        // Still fine within its validity.
        assert!(
            certificate_user(&leaf, issued + Duration::from_secs(3600))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn the_handshake_accepts_the_cas_clients_and_clients_without_a_certificate_only() {
        let ours = ca("platform CA");
        let theirs = ca("someone else's CA");
        let verifier = verifier_for(vec![ours.der.clone()]).unwrap();
        // Tokens keep working: a certificate is asked for, not required.
        assert!(verifier.offer_client_auth());
        assert!(!verifier.client_auth_mandatory());
        let now = SystemTime::now();
        let good = CertificateDer::from(client(&ours, "ann", &["devs"], now, 1));
        assert!(verifier.verify_client_cert(&good, &[], at(now)).is_ok());
        // Another CA's certificate with the same subject fails the handshake.
        let forged = CertificateDer::from(client(&theirs, "ann", &["devs"], now, 1));
        assert!(verifier.verify_client_cert(&forged, &[], at(now)).is_err());
        // So does an expired one.
        let old = now - Duration::from_secs(10 * 86_400);
        let expired = CertificateDer::from(client(&ours, "ann", &[], old, 1));
        assert!(verifier.verify_client_cert(&expired, &[], at(now)).is_err());
    }

    #[test]
    fn an_unusable_ca_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let message = verifier(&path).err().unwrap().to_string();
        assert!(
            message.contains("ca.crt") && message.contains("no PEM"),
            "{message}"
        );
        let missing = verifier(&dir.path().join("missing.crt")).err().unwrap();
        assert!(missing.to_string().contains("missing.crt"));
    }
}
