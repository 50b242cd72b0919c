//! Registry allow-list entries, read the way the container runtime reads image references.
//!
//! A tenant's `registries` are compared in three places: the engine's `allowed-registries`
//! check (the webhook and `tenantry check`), the CEL of the compiled ValidatingAdmissionPolicy,
//! and the per-tenant parameter object that CEL reads, which `render` writes with the tenant.
//! All three must read `ghcr.io/acme/` and `GHCR.io/acme` as the same entry, so the one
//! normalisation lives here, below every crate that needs it (the renderer may not depend on
//! the policy engine).
//!
//! Matching is on the registry host and whole path segments, never on string prefixes:
//! `ghcr.io/acme` must not admit `ghcr.io/acme-evil`.

use std::fmt;

/// The registry Docker Hub images come from when a reference names none.
pub const DOCKER_HUB: &str = "docker.io";

/// One entry of an allow-list: a registry, optionally narrowed to a repository prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryPrefix {
    /// Registry host, lower-case, `index.docker.io` read as `docker.io`.
    pub registry: String,
    /// Path segments the repository must start with (empty: the whole registry).
    pub path: Vec<String>,
}

impl RegistryPrefix {
    /// Read an entry like `ghcr.io/acme`, `docker.io` or `registry.local:5000/team`. A first
    /// segment that is not a host (`acme/tools`) is a Docker Hub path, as in image references.
    pub fn parse(entry: &str) -> Self {
        let entry = entry.trim().trim_end_matches('/');
        let (registry, rest) = match entry.split_once('/') {
            Some((first, rest)) if is_registry_host(first) => (normalise_host(first), rest),
            None if is_registry_host(entry) => (normalise_host(entry), ""),
            _ => (DOCKER_HUB.to_owned(), entry),
        };
        Self {
            registry,
            path: rest
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    /// Whether an image from `registry` (normalised as [`normalise_host`] does) with
    /// repository path `repository` comes from this registry and under this path, segment by
    /// segment.
    pub fn admits(&self, registry: &str, repository: &str) -> bool {
        if registry != self.registry {
            return false;
        }
        let mut segments = repository.split('/');
        self.path
            .iter()
            .all(|want| segments.next() == Some(want.as_str()))
    }
}

impl fmt::Display for RegistryPrefix {
    /// The normalised entry, `registry[/segment…]`: the form the compiled policies compare.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.registry)?;
        for segment in &self.path {
            write!(f, "/{segment}")?;
        }
        Ok(())
    }
}

/// Docker's rule: the first segment names a registry if it has a '.' or a ':', is
/// `localhost`, or has an upper-case letter (which a repository path cannot).
pub fn is_registry_host(segment: &str) -> bool {
    segment.contains(['.', ':'])
        || segment == "localhost"
        || segment.bytes().any(|b| b.is_ascii_uppercase())
}

/// A registry host as the runtime compares it: lower-case, Docker Hub's aliases as
/// [`DOCKER_HUB`].
pub fn normalise_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    if host == "index.docker.io" || host == "registry-1.docker.io" {
        DOCKER_HUB.to_owned()
    } else {
        host
    }
}

/// The registry host a Docker credential key names, as [`normalise_host`] reads it: keys of
/// a `config.json` or a dockerconfigjson Secret may be `host`, `https://host/v1/` or
/// `host/path`, and Docker Hub's are written under any of its names (`registry.hub.docker.com`
/// too, which never appears in an image reference). `tenantry publish` picks credentials by
/// it and `doctor` compares a pull secret's hosts with the images by it.
pub fn credential_host(key: &str) -> String {
    let host = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = host.split('/').next().unwrap_or_default();
    if host.eq_ignore_ascii_case("registry.hub.docker.com") {
        DOCKER_HUB.to_owned()
    } else {
        normalise_host(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_normalise_to_host_and_whole_segments() {
        for (entry, normalised) in [
            ("ghcr.io/acme/", "ghcr.io/acme"),
            ("GHCR.io/acme", "ghcr.io/acme"),
            ("index.docker.io/library", "docker.io/library"),
            ("acme/tools", "docker.io/acme/tools"),
            ("registry.local:5000", "registry.local:5000"),
        ] {
            assert_eq!(
                RegistryPrefix::parse(entry).to_string(),
                normalised,
                "{entry}"
            );
        }
        let acme = RegistryPrefix::parse("ghcr.io/acme");
        assert!(acme.admits("ghcr.io", "acme/web"));
        assert!(!acme.admits("ghcr.io", "acme-evil/web"));
        assert!(!acme.admits("docker.io", "acme/web"));
    }
}
