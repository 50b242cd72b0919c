//! Container image references, read the way the container runtime reads them.
//!
//! An allow-list is only as good as its matching: `nginx` is `docker.io/library/nginx`,
//! `ghcr.io/acme` must not admit `ghcr.io/acme-evil`, and `registry.local:5000` is a different
//! registry from `registry.local`. So both the image and the allow-list entry are normalised
//! first (implicit `docker.io`, implicit `library/`, `index.docker.io`, lower-case host), and
//! matching is on the registry host and whole path segments, never on string prefixes.

use std::fmt;

pub use tenantry_core::registry::{DOCKER_HUB, RegistryPrefix};
use tenantry_core::registry::{is_registry_host, normalise_host};

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host, lower-case, with its port if any (`docker.io`, `registry.local:5000`).
    pub registry: String,
    /// Repository path below the registry (`library/nginx`, `acme/web`).
    pub repository: String,
    /// The tag, if the reference has one.
    pub tag: Option<String>,
    /// The digest (`sha256:…`), if the reference has one.
    pub digest: Option<String>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ImageError(&'static str);

impl ImageRef {
    /// Parse a reference as the container runtime would (`nginx`, `nginx:1.27`,
    /// `ghcr.io/acme/web@sha256:…`, `registry.local:5000/team/app:v1`).
    pub fn parse(reference: &str) -> Result<Self, ImageError> {
        if reference.is_empty() {
            return Err(ImageError("is empty"));
        }
        if reference.len() > 4096 {
            return Err(ImageError("is too long"));
        }
        if reference
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(ImageError("contains whitespace"));
        }
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) => {
                check_digest(digest)?;
                (name, Some(digest.to_owned()))
            }
            None => (reference, None),
        };
        // A tag follows the last ':' that comes after the last '/' (a ':' before it is a port).
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &name[last_slash + i + 1..];
                check_tag(tag)?;
                (&name[..last_slash + i], Some(tag.to_owned()))
            }
            None => (name, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if is_registry_host(first) => {
                (normalise_host(first), rest.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        if registry.is_empty() {
            return Err(ImageError("has an empty registry host"));
        }
        check_host(&registry)?;
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        for component in repository.split('/') {
            check_path_component(component)?;
        }
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The pull policy the API server defaults to when a container sets none: `Always` for
    /// `:latest` and for references with neither tag nor digest, `IfNotPresent` otherwise.
    pub fn default_pull_policy(&self) -> &'static str {
        match (&self.tag, &self.digest) {
            (Some(tag), _) if tag == "latest" => "Always",
            (None, None) => "Always",
            _ => "IfNotPresent",
        }
    }
}

impl fmt::Display for ImageRef {
    /// The fully qualified reference, e.g. `docker.io/library/nginx:1.27`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn check_host(host: &str) -> Result<(), ImageError> {
    let (name, port) = match host.strip_prefix('[') {
        // An IPv6 literal, `[::1]:5000`.
        Some(rest) => match rest.split_once(']') {
            Some((ip, after)) => (ip, after.strip_prefix(':')),
            None => return Err(ImageError("has a malformed registry host")),
        },
        None => match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if name_ok && port_ok {
        Ok(())
    } else {
        Err(ImageError("has a malformed registry host"))
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn check_path_component(component: &str) -> Result<(), ImageError> {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ok = !bytes.is_empty()
        && bytes.first().copied().is_some_and(alnum)
        && bytes.last().copied().is_some_and(alnum)
        && bytes
            .iter()
            .all(|&b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
        && !component.contains("..")
        && !component.contains("._")
        && !component.contains("_.")
        && !component.contains("___")
        && !component.contains(".-")
        && !component.contains("-.");
    if ok {
        Ok(())
    } else {
        Err(ImageError(
            "has a malformed repository path (lower-case letters, digits and single separators)",
        ))
    }
}

/// `[\w][\w.-]{0,127}`
fn check_tag(tag: &str) -> Result<(), ImageError> {
    let bytes = tag.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && bytes.first().copied().is_some_and(word)
        && bytes.iter().all(|&b| word(b) || matches!(b, b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ImageError("has a malformed tag"))
    }
}

/// `algorithm:encoded`; a `sha256` digest must be 64 lower-case hex digits.
fn check_digest(digest: &str) -> Result<(), ImageError> {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return Err(ImageError(
            "has a malformed digest (expected algorithm:hex)",
        ));
    };
    let algorithm_ok = !algorithm.is_empty()
        && algorithm.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'.' | b'_' | b'-')
        });
    let encoded_ok = encoded.len() >= 32
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
    let sha256_ok = algorithm != "sha256"
        || (encoded.len() == 64
            && encoded
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    if algorithm_ok && encoded_ok && sha256_ok {
        Ok(())
    } else {
        Err(ImageError(
            "has a malformed digest (expected sha256:<64 hex digits>)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn full(reference: &str) -> String {
        ImageRef::parse(reference)
            .unwrap_or_else(|e| panic!("{reference}: {e}"))
            .to_string()
    }

    #[test]
    fn normalises_like_the_runtime() {
        assert_eq!(full("nginx"), "docker.io/library/nginx");
        assert_eq!(full("nginx:1.27"), "docker.io/library/nginx:1.27");
        assert_eq!(full("acme/web:1"), "docker.io/acme/web:1");
        assert_eq!(full("index.docker.io/nginx"), "docker.io/library/nginx");
        assert_eq!(full("Docker.IO/nginx"), "docker.io/library/nginx");
        assert_eq!(full("localhost/app"), "localhost/app");
        assert_eq!(
            full("registry.local:5000/team/app:v1"),
            "registry.local:5000/team/app:v1"
        );
        assert_eq!(
            full(&format!("ghcr.io/acme/web:1.2@{DIGEST}")),
            format!("ghcr.io/acme/web:1.2@{DIGEST}")
        );
        assert_eq!(full("[::1]:5000/app"), "[::1]:5000/app");
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "",
            "nginx latest",
            "Nginx/App",
            "ghcr.io/acme/web:",
            "ghcr.io/acme/web@sha256:1234",
            "ghcr.io/acme/web@md5",
            "ghcr.io//web",
            "ghcr.io/acme/-web",
            "ghcr.io:port/web",
            "ghcr.io/acme/web:-tag",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn prefixes_match_whole_segments_only() {
        let admitted = |entry: &str, image: &str| {
            let image = ImageRef::parse(image).expect(image);
            RegistryPrefix::parse(entry).admits(&image.registry, &image.repository)
        };
        let acme = |image: &str| admitted("ghcr.io/acme", image);
        assert!(acme("ghcr.io/acme/web:1"));
        assert!(acme("GHCR.io/acme/tools/cli"));
        assert!(!acme("ghcr.io/acme-evil/web:1"));
        assert!(!acme("ghcr.io/acmeweb"));
        assert!(!acme("ghcr.io.evil.com/acme/web"));
        assert!(!acme("docker.io/acme/web"));

        assert!(admitted("docker.io/library", "nginx"));
        assert!(!admitted("docker.io/library", "acme/nginx"));

        assert!(admitted("registry.local:5000", "registry.local:5000/a/b"));
        assert!(!admitted("registry.local:5000", "registry.local/a/b"));
        assert!(!admitted("registry.local", "registry.local:5000/a"));
    }

    #[test]
    fn default_pull_policy_follows_the_api_server() {
        let policy = |r: &str| ImageRef::parse(r).expect(r).default_pull_policy();
        assert_eq!(policy("nginx"), "Always");
        assert_eq!(policy("nginx:latest"), "Always");
        assert_eq!(policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(policy(&format!("nginx@{DIGEST}")), "IfNotPresent");
        assert_eq!(policy(&format!("nginx:latest@{DIGEST}")), "Always");
    }
}
