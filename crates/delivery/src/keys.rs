//! Key files on disk: cosign's `cosign.key` / `cosign.pub`, written private-first with mode
//! 0600 from creation and never over an existing file, and a private key refused when group
//! or others may read it (as ssh refuses one), because a signing key others can read signs
//! for them too. `env://VAR` reads the PEM from an environment variable, as cosign does, for
//! CI secrets that never touch disk.
//!
//! The passphrase is asked for only when the key is encrypted (a plain PKCS#8 `PRIVATE KEY`
//! needs none), and comes from `TENANTRY_KEY_PASSWORD`, else cosign's `COSIGN_PASSWORD`, so
//! one CI secret serves both tools; the caller may fall back to asking on a terminal.

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
};

use p256::ecdsa::{SigningKey, VerifyingKey};

use crate::{DeliveryError, cosign};

/// The private key file name `keys generate` writes (cosign's).
pub const PRIVATE_KEY_FILE: &str = "cosign.key";
/// The public key file name (cosign's, and the key Flux's `verify.secretRef` Secret holds).
pub const PUBLIC_KEY_FILE: &str = "cosign.pub";
/// The environment variable holding the private key's passphrase.
pub const PASSWORD_ENV: &str = "TENANTRY_KEY_PASSWORD";
/// cosign's variable for the same, read when [`PASSWORD_ENV`] is unset.
pub const COSIGN_PASSWORD_ENV: &str = "COSIGN_PASSWORD";

/// The passphrase from the environment, with the variable it came from; set-but-empty
/// counts (an empty passphrase is one cosign accepts).
pub fn passphrase_from_env() -> Option<(String, &'static str)> {
    [PASSWORD_ENV, COSIGN_PASSWORD_ENV]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().map(|v| (v, name)))
}

/// Where a private key comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// A PEM file.
    File(PathBuf),
    /// An environment variable holding the PEM (`env://NAME`).
    Env(String),
}

impl KeySource {
    /// `env://NAME` or a path.
    pub fn parse(s: &str) -> Self {
        match s.strip_prefix("env://") {
            Some(name) => Self::Env(name.to_owned()),
            None => Self::File(PathBuf::from(s)),
        }
    }

    fn label(&self) -> PathBuf {
        match self {
            Self::File(p) => p.clone(),
            Self::Env(n) => PathBuf::from(format!("env://{n}")),
        }
    }
}

/// Read and decrypt a private key; `passphrase` is called only for an encrypted key, and
/// `None` from it (nothing available) is [`DeliveryError::NoPassphrase`].
pub fn load_signing_key(
    source: &KeySource,
    passphrase: impl FnOnce() -> Option<String>,
) -> Result<SigningKey, DeliveryError> {
    let text = match source {
        KeySource::File(path) => {
            check_private_permissions(path)?;
            fs::read_to_string(path).map_err(|source| DeliveryError::Read {
                path: path.clone(),
                source,
            })?
        }
        KeySource::Env(name) => std::env::var(name).map_err(|_| DeliveryError::Key {
            path: source.label(),
            source: cosign::KeyError::Format(format!("environment variable {name} is not set")),
        })?,
    };
    let password = if cosign::is_encrypted(&text) {
        passphrase().ok_or_else(|| DeliveryError::NoPassphrase {
            path: source.label(),
        })?
    } else {
        String::new()
    };
    cosign::read_private_key(&text, password.as_bytes()).map_err(|e| DeliveryError::Key {
        path: source.label(),
        source: e,
    })
}

/// Read public keys (`cosign.pub` files).
pub fn load_public_keys(paths: &[PathBuf]) -> Result<Vec<VerifyingKey>, DeliveryError> {
    paths
        .iter()
        .map(|path| {
            let text = fs::read_to_string(path).map_err(|source| DeliveryError::Read {
                path: path.clone(),
                source,
            })?;
            cosign::read_public_key(&text).map_err(|e| DeliveryError::Key {
                path: path.clone(),
                source: e,
            })
        })
        .collect()
}

#[cfg(unix)]
fn check_private_permissions(path: &Path) -> Result<(), DeliveryError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = fs::metadata(path).map_err(|source| DeliveryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(DeliveryError::KeyPermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_permissions(_: &Path) -> Result<(), DeliveryError> {
    Ok(())
}

fn create_new(path: &Path, mode: u32, bytes: &[u8]) -> Result<(), DeliveryError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            DeliveryError::KeyExists {
                path: path.to_path_buf(),
            }
        } else {
            DeliveryError::Write {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|source| DeliveryError::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// Generate a key pair into `dir` as `cosign.key` (0600) and `cosign.pub`; refuses when
/// either exists, before writing anything.
pub fn generate(dir: &Path, password: &[u8]) -> Result<(PathBuf, PathBuf), DeliveryError> {
    let private = dir.join(PRIVATE_KEY_FILE);
    let public = dir.join(PUBLIC_KEY_FILE);
    for path in [&private, &public] {
        if path.symlink_metadata().is_ok() {
            return Err(DeliveryError::KeyExists { path: path.clone() });
        }
    }
    let pair = cosign::generate(password).map_err(|e| DeliveryError::Key {
        path: private.clone(),
        source: e,
    })?;
    create_new(&private, 0o600, pair.private_pem.as_bytes())?;
    if let Err(e) = create_new(&public, 0o644, pair.public_pem.as_bytes()) {
        // A private key without its public half is of no use; leave neither.
        let _ = fs::remove_file(&private);
        return Err(e);
    }
    Ok((private, public))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pair_loads_and_refuses_overwrite() {
        let d = tempfile::tempdir().unwrap();
        let (private, public) = generate(d.path(), b"pw").unwrap();
        let key = load_signing_key(&KeySource::File(private.clone()), pw("pw")).unwrap();
        let pubs = load_public_keys(&[public]).unwrap();
        assert_eq!(&pubs[0], key.verifying_key());
        assert!(matches!(
            generate(d.path(), b"pw"),
            Err(DeliveryError::KeyExists { .. })
        ));
        let e = load_signing_key(&KeySource::File(private.clone()), pw("nope")).unwrap_err();
        assert!(e.to_string().contains("wrong passphrase"), "{e}");
        // Encrypted, and nothing to open it with: named, with where a passphrase comes from.
        let e = load_signing_key(&KeySource::File(private), || None).unwrap_err();
        assert!(matches!(e, DeliveryError::NoPassphrase { .. }), "{e}");
        assert!(e.to_string().contains("TENANTRY_KEY_PASSWORD"), "{e}");
    }

    fn pw(p: &str) -> impl FnOnce() -> Option<String> + '_ {
        move || Some(p.to_owned())
    }

    #[cfg(unix)]
    #[test]
    fn unencrypted_pkcs8_key_needs_no_passphrase() {
        use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
        use std::os::unix::fs::PermissionsExt as _;
        let d = tempfile::tempdir().unwrap();
        let key = SigningKey::random(&mut rand_core::OsRng);
        let path = d.path().join("plain.key");
        fs::write(&path, key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let asked = std::cell::Cell::new(false);
        let loaded = load_signing_key(&KeySource::File(path), || {
            asked.set(true);
            None
        })
        .unwrap();
        assert_eq!(loaded.verifying_key(), key.verifying_key());
        assert!(!asked.get(), "a plain key must not ask for a passphrase");
    }

    #[cfg(unix)]
    #[test]
    fn readable_private_key_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let d = tempfile::tempdir().unwrap();
        let (private, _) = generate(d.path(), b"").unwrap();
        fs::set_permissions(&private, fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_signing_key(&KeySource::File(private), pw("")).unwrap_err();
        assert!(
            matches!(e, DeliveryError::KeyPermissions { mode: 0o644, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn env_source_is_parsed() {
        assert_eq!(KeySource::parse("env://K"), KeySource::Env("K".into()));
        assert_eq!(KeySource::parse("k.key"), KeySource::File("k.key".into()));
    }
}
