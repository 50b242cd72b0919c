//! The OCI registry, through `oci-client`, reduced to the five things delivery does: resolve a
//! tag, push an image (blobs the registry lacks, then the manifest), read a manifest, read a
//! blob, and say clearly why a call failed.
//!
//! oci-client's HTTP stack is reqwest with rustls and *no* provider of its own
//! (`rustls-tls-no-provider`): it uses the process default, which [`Registry::new`] makes
//! ring when nothing installed one yet (the binary installs ring first thing in `main`).

use oci_client::{
    Client, Reference, RegistryOperation,
    client::{ClientConfig, ClientProtocol},
    errors::{OciDistributionError, OciErrorCode},
    secrets::RegistryAuth,
};

use crate::{
    DeliveryError,
    artifact::{Image, OCI_MANIFEST_MEDIA_TYPE},
    reference::{OciRef, Target},
};

/// Manifests and signature payloads larger than this are refused rather than buffered.
const MAX_SMALL_BLOB: usize = 4 * 1024 * 1024;

/// Credentials for a registry.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// `username` and `password` for HTTP basic / token auth; anonymous when `None`.
    pub basic: Option<(String, String)>,
    /// Where they came from (a file and field, a helper, variables), for error messages.
    pub source: String,
}

impl Credentials {
    /// How an error names them: their source, or "no credentials (anonymous)".
    pub fn describe(&self) -> String {
        match &self.basic {
            Some((user, _)) if !self.source.is_empty() => {
                format!("user {user:?} from {}", self.source)
            }
            Some((user, _)) => format!("user {user:?}"),
            None => "no credentials (anonymous)".to_owned(),
        }
    }
}

/// One registry.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
    registry: String,
    credentials: String,
}

impl Registry {
    /// A client for `registry`; `plain_http` speaks HTTP instead of HTTPS (a local registry).
    pub fn new(registry: &str, plain_http: bool, credentials: &Credentials) -> Self {
        // Ignored when a provider is already installed (the CLI installs ring itself).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: if plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            ..ClientConfig::default()
        };
        Self {
            client: Client::new(config),
            auth: match &credentials.basic {
                Some((u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
                None => RegistryAuth::Anonymous,
            },
            registry: registry.to_owned(),
            credentials: credentials.describe(),
        }
    }

    fn reference(&self, r: &OciRef) -> Reference {
        match &r.target {
            Some(Target::Digest(d)) => {
                Reference::with_digest(r.registry.clone(), r.repository.clone(), d.clone())
            }
            Some(Target::Tag(t)) => {
                Reference::with_tag(r.registry.clone(), r.repository.clone(), t.clone())
            }
            None => Reference::with_tag(r.registry.clone(), r.repository.clone(), "latest".into()),
        }
    }

    fn error(&self, doing: String, e: OciDistributionError) -> DeliveryError {
        let unreachable =
            matches!(&e, OciDistributionError::RequestError(r) if r.is_connect() || r.is_timeout());
        let auth = matches!(
            &e,
            OciDistributionError::UnauthorizedError { .. }
                | OciDistributionError::AuthenticationFailure(_)
                | OciDistributionError::ServerError {
                    code: 401 | 403,
                    ..
                }
        ) || matches!(&e, OciDistributionError::RegistryError { envelope, .. }
                if envelope.errors.iter().any(|x| matches!(x.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)));
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        if unreachable {
            DeliveryError::Unreachable {
                registry: self.registry.clone(),
                message,
            }
        } else if auth {
            DeliveryError::Auth {
                registry: self.registry.clone(),
                credentials: self.credentials.clone(),
                doing: format!("{doing}: {message}"),
            }
        } else {
            DeliveryError::Registry { doing, message }
        }
    }

    /// The manifest at `r` and its digest, or `None` when the tag or digest does not exist.
    pub async fn manifest(&self, r: &OciRef) -> Result<Option<(Vec<u8>, String)>, DeliveryError> {
        let reference = self.reference(r);
        match self
            .client
            .pull_manifest_raw(&reference, &self.auth, &[OCI_MANIFEST_MEDIA_TYPE])
            .await
        {
            Ok((bytes, digest)) if bytes.len() <= MAX_SMALL_BLOB => {
                Ok(Some((bytes.to_vec(), digest)))
            }
            Ok((bytes, _)) => Err(DeliveryError::Registry {
                doing: format!("reading the manifest of {r}"),
                message: format!(
                    "manifest is {} bytes, more than {MAX_SMALL_BLOB}",
                    bytes.len()
                ),
            }),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.error(format!("reading the manifest of {r}"), e)),
        }
    }

    /// The bytes of blob `digest` in `r`'s repository, or an error naming a digest mismatch.
    pub async fn blob(&self, r: &OciRef, digest: &str) -> Result<Vec<u8>, DeliveryError> {
        let reference = self.reference(r);
        let mut out = Vec::new();
        self.client
            .pull_blob(&reference, digest, &mut out)
            .await
            .map_err(|e| self.error(format!("reading blob {digest} of {r}"), e))?;
        if out.len() > MAX_SMALL_BLOB {
            return Err(DeliveryError::Registry {
                doing: format!("reading blob {digest} of {r}"),
                message: format!("blob is larger than {MAX_SMALL_BLOB} bytes"),
            });
        }
        Ok(out)
    }

    /// Push `image` to `at` (a tag, or its own digest); returns the manifest digest.
    pub async fn push(&self, at: &OciRef, image: &Image) -> Result<String, DeliveryError> {
        let reference = self.reference(at);
        self.client
            .auth(&reference, &self.auth, RegistryOperation::Push)
            .await
            .map_err(|e| self.error(format!("logging in to push {at}"), e))?;
        for blob in std::iter::once(&image.config).chain(&image.layers) {
            let digest = blob.digest();
            let exists = self
                .client
                .blob_exists(&reference, &digest)
                .await
                .map_err(|e| self.error(format!("checking blob {digest} in {at}"), e))?;
            if !exists {
                self.client
                    .push_blob(&reference, blob.bytes.clone(), &digest)
                    .await
                    .map_err(|e| self.error(format!("pushing blob {digest} to {at}"), e))?;
            }
        }
        let content_type =
            OCI_MANIFEST_MEDIA_TYPE
                .parse()
                .map_err(|_| DeliveryError::Registry {
                    doing: "pushing".into(),
                    message: "bad content type".into(),
                })?;
        self.client
            .push_manifest_raw(&reference, image.manifest.clone(), content_type)
            .await
            .map_err(|e| self.error(format!("pushing the manifest of {at}"), e))?;
        Ok(image.digest())
    }
}

fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code: 404, .. } => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|x| {
            matches!(
                x.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        }),
        _ => false,
    }
}
