//! The platform configuration the operator runs with: `tenantry.yaml` from a ConfigMap.
//!
//! The operator reads the very file the CLI reads from the repository root, with the same
//! parser and validation, so the two cannot disagree about a default. It comes from a
//! ConfigMap rather than a mounted file so that a change is seen at once (a watch) and every
//! tenant is re-queued, without a restart and without the kubelet's volume refresh delay.
//! A missing or invalid ConfigMap is never replaced by built-in defaults: applying tenants
//! with defaults the platform did not choose (an `edit` role where it bound `view`) is worse
//! than applying nothing, so every tenant reports the error instead.

use std::collections::BTreeMap;

use tenantry_core::{PlatformContext, document};

/// The key of the ConfigMap that holds `tenantry.yaml`.
pub const CONFIG_KEY: &str = "tenantry.yaml";

/// Where the platform configuration lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSource {
    /// The ConfigMap's namespace.
    pub namespace: String,
    /// The ConfigMap's name.
    pub name: String,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConfigMap {}/{}", self.namespace, self.name)
    }
}

/// Why the platform configuration cannot be used. Each message names the ConfigMap, the key
/// and, for a bad value, the line and field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// The ConfigMap does not exist.
    #[error("{0} not found: create it with the platform's tenantry.yaml under key {CONFIG_KEY}")]
    Missing(String),
    /// It has no `tenantry.yaml` key.
    #[error("{0} has no key {CONFIG_KEY}")]
    NoKey(String),
    /// `tenantry.yaml` does not parse or is invalid.
    #[error("{0}")]
    Invalid(String),
}

/// The platform context from a ConfigMap's `data`, or `None` when the ConfigMap is absent.
pub fn from_config_map(
    source: &ConfigSource,
    data: Option<&BTreeMap<String, String>>,
) -> Result<PlatformContext, PlatformError> {
    let Some(data) = data else {
        return Err(PlatformError::Missing(source.to_string()));
    };
    let Some(text) = data.get(CONFIG_KEY) else {
        return Err(PlatformError::NoKey(source.to_string()));
    };
    let file = format!("{source} key {CONFIG_KEY}");
    let platform =
        document::parse_platform(text).map_err(|e| PlatformError::Invalid(e.in_file(&file)))?;
    PlatformContext::new(platform).map_err(|invalid| {
        PlatformError::Invalid(
            invalid
                .errors
                .iter()
                .map(|e| format!("{file}: {e}"))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> ConfigSource {
        ConfigSource {
            namespace: "tenantry-system".into(),
            name: "tenantry-config".into(),
        }
    }

    fn data(text: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(CONFIG_KEY.to_owned(), text.to_owned())])
    }

    #[test]
    fn the_platform_file_reads_as_the_cli_reads_it() {
        let ctx = from_config_map(
            &source(),
            Some(&data(
                "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\nlabelPrefix: example.com\n",
            )),
        );
        let ctx = ctx.expect("valid platform");
        assert_eq!(ctx.tenant_label(), "example.com/tenant");
    }

    #[test]
    fn a_missing_config_map_or_key_is_named() {
        let missing = from_config_map(&source(), None).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("ConfigMap tenantry-system/tenantry-config not found")
        );
        let no_key = from_config_map(&source(), Some(&BTreeMap::new())).unwrap_err();
        assert!(
            no_key.to_string().contains("has no key tenantry.yaml"),
            "{no_key}"
        );
    }

    #[test]
    fn a_bad_field_names_the_config_map_and_the_field() {
        let err = from_config_map(
            &source(),
            Some(&data(
                "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\nlabelPrefx: x\n",
            )),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ConfigMap tenantry-system/tenantry-config key tenantry.yaml"),
            "{err}"
        );
        assert!(err.contains("labelPrefx"), "{err}");
    }
}
