//! `oci://REGISTRY/REPOSITORY[:TAG|@sha256:DIGEST]`, the form Flux's `OCIRepository.spec.url`
//! and `flux push artifact` take, parsed once so publish, verify and the signature tag agree
//! on what "the repository" is (the signed `docker-reference` is exactly `REGISTRY/REPOSITORY`).

use std::fmt;

use crate::DeliveryError;

/// A parsed `oci://` reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciRef {
    /// `host[:port]`.
    pub registry: String,
    /// The repository path inside the registry.
    pub repository: String,
    /// The tag or digest, if one was given.
    pub target: Option<Target>,
}

/// What a reference points at inside its repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A tag.
    Tag(String),
    /// A manifest digest (`sha256:<hex>`).
    Digest(String),
}

impl OciRef {
    /// Parse `oci://REGISTRY/REPOSITORY[:TAG|@DIGEST]`.
    pub fn parse(url: &str) -> Result<Self, DeliveryError> {
        let bad = |why: &str| DeliveryError::Reference {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let rest = url
            .strip_prefix("oci://")
            .ok_or_else(|| bad("must start with oci://"))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("needs a repository after the registry (oci://REGISTRY/REPO)"))?;
        if registry.is_empty()
            || !registry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        {
            return Err(bad("the registry must be host or host:port"));
        }
        let (path, target) = if let Some((p, digest)) = path.split_once('@') {
            if !is_digest(digest) {
                return Err(bad(
                    "a digest must be sha256: followed by 64 lowercase hex digits",
                ));
            }
            (p, Some(Target::Digest(digest.to_owned())))
        } else {
            // A colon after the last slash starts the tag.
            let last = path.rfind('/').map_or(0, |i| i + 1);
            match path[last..].find(':') {
                Some(i) => {
                    let tag = &path[last + i + 1..];
                    if !is_tag(tag) {
                        return Err(bad(
                            "a tag is 1-128 of [A-Za-z0-9_.-] and must not start with . or -",
                        ));
                    }
                    (&path[..last + i], Some(Target::Tag(tag.to_owned())))
                }
                None => (path, None),
            }
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
        };
        if !path.split('/').all(component_ok) {
            return Err(bad(
                "the repository is lowercase letters, digits and . _ - separated by /",
            ));
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository: path.to_owned(),
            target,
        })
    }

    /// `REGISTRY/REPOSITORY`: what cosign signs as the `docker-reference`.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository at another tag.
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            target: Some(Target::Tag(tag.to_owned())),
            ..self.clone()
        }
    }

    /// The same repository at a digest.
    pub fn with_digest(&self, digest: &str) -> Self {
        Self {
            target: Some(Target::Digest(digest.to_owned())),
            ..self.clone()
        }
    }

    /// The tag cosign stores a manifest's signatures under: `sha256-<hex>.sig`.
    pub fn signature_tag(digest: &str) -> String {
        format!("{}.sig", digest.replacen(':', "-", 1))
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        match &self.target {
            Some(Target::Tag(t)) => write!(f, ":{t}"),
            Some(Target::Digest(d)) => write!(f, "@{d}"),
            None => Ok(()),
        }
    }
}

fn is_tag(tag: &str) -> bool {
    (1..=128).contains(&tag.len())
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && !tag.starts_with(['.', '-'])
}

/// `sha256:` and 64 lowercase hex digits.
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_port_repository_and_tag() {
        let r = OciRef::parse("oci://127.0.0.1:5000/team/shop:1.2.0").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/shop");
        assert_eq!(r.target, Some(Target::Tag("1.2.0".into())));
        assert_eq!(r.repository_name(), "127.0.0.1:5000/team/shop");
        assert_eq!(r.to_string(), "oci://127.0.0.1:5000/team/shop:1.2.0");
    }

    #[test]
    fn parses_digest_and_names_the_signature_tag() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = OciRef::parse(&format!("oci://ghcr.io/x/y@{d}")).unwrap();
        assert_eq!(r.target, Some(Target::Digest(d.clone())));
        assert_eq!(
            OciRef::signature_tag(&d),
            format!("sha256-{}.sig", "a".repeat(64))
        );
    }

    #[test]
    fn refuses_what_a_registry_would() {
        for bad in [
            "https://ghcr.io/x:1",
            "oci://ghcr.io",
            "oci://ghcr.io/Upper:1",
            "oci://ghcr.io/x:-bad",
            "oci://ghcr.io/x@sha256:short",
            "oci:///x:1",
        ] {
            let e = OciRef::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}
