//! The webhook's TLS: one crypto provider, and a serving certificate that is replaced without
//! a restart when its files change.
//!
//! The API server only talks to webhooks over HTTPS, and the serving certificate is usually
//! issued by cert-manager or a rotation job that rewrites the mounted Secret's files in place.
//! Restarting pods for a rotation would mean a window in which `failurePolicy: Fail` blocks
//! tenant writes, so the certificate sits behind a [`ResolvesServerCert`] that hands each new
//! handshake the current `Arc<CertifiedKey>`: swapping it changes what new connections see,
//! while connections already established keep the keys they negotiated. A new pair that does
//! not load (half-written files, a key that does not match the certificate) is logged and
//! ignored; the old certificate keeps serving until a good pair appears.
//!
//! Only `ring` is used, for the server config and (through the process default installed by
//! [`install_crypto_provider`]) for the kube client: see that function for why.

use std::{
    fs, io,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::{Duration, SystemTime},
};

use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};

/// Why a certificate pair could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file is not the PEM it should be.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the key or the pair (unsupported key type, key not matching the
    /// certificate).
    #[error("certificate {cert} with key {key}: {source}")]
    Rustls {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// The cause.
        source: rustls::Error,
    },
}

/// The crypto provider of the whole `tenantry` binary.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Install `ring` as the process-wide rustls provider. Call once, first thing in `main`.
///
/// rustls picks a provider implicitly only when exactly one is compiled in; as soon as any
/// crate in the binary enables `aws-lc-rs` as well (the default feature of rustls, tokio-rustls
/// and hyper-rustls, or kube's `aws-lc-rs` feature), implicit selection panics at the first
/// TLS handshake, which for the webhook would be the first watch request. kube's client builds its `ClientConfig` from the process default, so
/// installing it explicitly makes the choice deterministic and keeps the server and the
/// client on the same, audited implementation. Returns false when a provider was already
/// installed (then that one stays).
pub fn install_crypto_provider() -> bool {
    rustls::crypto::ring::default_provider()
        .install_default()
        .is_ok()
}

/// Read a PEM certificate chain and private key into a [`CertifiedKey`], checking that the
/// key belongs to the first certificate.
pub fn load_certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Io { path, source }
    };
    let cert_pem = fs::read(cert).map_err(io_err(cert))?;
    let key_pem = fs::read(key).map_err(io_err(key))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert.to_owned(),
            message: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: cert.to_owned(),
            message: "no CERTIFICATE block".to_owned(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Pem {
        path: key.to_owned(),
        message: format!("no usable private key: {e}"),
    })?;
    CertifiedKey::from_der(chain, private_key, provider).map_err(|source| TlsError::Rustls {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    })
}

/// What a file looked like when last read: reloading is keyed on a change of either.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// A certificate resolver that serves the current pair from two PEM files and can reload it.
#[derive(Debug)]
pub struct ReloadingCertificate {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    seen: Mutex<(Stamp, Stamp)>,
}

impl ReloadingCertificate {
    /// Load the pair; fails when it cannot be used, so a webhook never starts without a
    /// certificate.
    pub fn load(
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        let (cert, key) = (cert.into(), key.into());
        let seen = (stamp(&cert), stamp(&key));
        let current = load_certified_key(&cert, &key, &provider)?;
        Ok(Self {
            cert,
            key,
            provider,
            current: RwLock::new(Arc::new(current)),
            seen: Mutex::new(seen),
        })
    }

    /// The pair new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reload when either file changed since the last attempt. `Ok(true)`: a new pair is
    /// served; `Ok(false)`: nothing changed; `Err`: the files changed but do not load, and the
    /// previous pair is still served (the attempt is not repeated until the files change
    /// again).
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = (stamp(&self.cert), stamp(&self.key));
        {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if *seen == now {
                return Ok(false);
            }
            *seen = now;
        }
        let fresh = load_certified_key(&self.cert, &self.key, &self.provider)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
        Ok(true)
    }

    /// Poll the files every `interval` for as long as the returned task runs, logging each
    /// reload and each failed one.
    pub fn spawn_reloader(self: Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let this = self.clone();
                // File reads block; keep them off the request-serving workers.
                let result = tokio::task::spawn_blocking(move || this.reload_if_changed()).await;
                match result {
                    Ok(Ok(true)) => tracing::info!(
                        cert = %self.cert.display(),
                        "serving certificate reloaded"
                    ),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => tracing::error!(
                        error = %e,
                        "new serving certificate rejected; still serving the previous one"
                    ),
                    Err(e) => tracing::error!(error = %e, "certificate reload task failed"),
                }
            }
        })
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// A server config serving `certificate` over TLS 1.2/1.3 with HTTP/1.1 ALPN.
///
/// HTTP/1.1 only: the API server calls in-cluster webhooks over HTTP/1.1 (it opens several
/// connections so that requests spread over the webhook's replicas), and leaving HTTP/2 out
/// removes a protocol surface (stream floods, rapid reset) a webhook does not need.
pub fn server_config(
    certificate: Arc<ReloadingCertificate>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    server_config_with_clients(certificate, Arc::new(rustls::server::NoClientAuth))
}

/// [`server_config`] that asks clients for certificates `clients` verifies (the tenant
/// proxy's `--client-ca`); a verified chain reaches handlers as
/// [`crate::server::PeerCertificates`].
pub fn server_config_with_clients(
    certificate: Arc<ReloadingCertificate>,
    clients: Arc<dyn rustls::server::danger::ClientCertVerifier>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(certificate.provider.clone())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(clients)
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
