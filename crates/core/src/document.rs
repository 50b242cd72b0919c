//! Reading and writing the YAML documents people edit: `tenant.yaml` and `tenantry.yaml`.
//!
//! Parse errors carry the line, column and field path of the offending value so that the CLI
//! can say `tenants/shop/tenant.yaml:7:5: spec.quota.pods: invalid type ...` rather than a
//! bare serde message. Parsing is bounded by serde-saphyr's budget (anchors, aliases, depth),
//! so a hostile file cannot exhaust memory.

use std::fmt;

use serde::{Serialize, de::DeserializeOwned};
use tenantry_api::{Platform, platform::Platform as PlatformDoc, tenant::TenantFile};

/// A document that could not be read as its type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct DocumentError {
    /// Field path of the offending value, when the parser got as far as a field.
    pub path: Option<String>,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "{line}:{column}: ")?;
        }
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        f.write_str(&self.message)
    }
}

fn options() -> serde_saphyr::Options {
    serde_saphyr::options! { with_snippet: false }
}

/// Parse one YAML document into `T`, reporting the field path of any error.
pub fn from_yaml<T: DeserializeOwned>(text: &str) -> Result<T, DocumentError> {
    let mut path: Option<String> = None;
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            let p = e.path().to_string();
            if p != "." && p != "?" {
                path = Some(p);
            }
            e.into_inner()
        })
    });
    result.map_err(|e| {
        let location = e.location();
        let mut message = e.without_snippet().to_string();
        // The position is reported separately; drop serde-saphyr's " at line L, column C".
        if let Some(at) = message.rfind(" at line ")
            && message[at..].contains(", column ")
        {
            message.truncate(at);
        }
        DocumentError {
            path,
            line: location.map(|l| l.line()),
            column: location.map(|l| l.column()),
            message,
        }
    })
}

/// Serialize a value as one YAML document.
pub fn to_yaml<T: Serialize>(value: &T) -> String {
    // Serializing plain data (maps, strings, numbers) into a String cannot fail; the only
    // errors serde-saphyr reports are for unsupported shapes Tenantry never produces.
    // Long single-line values (regular expressions, URLs) stay on one plain line: folding
    // them would make diffs and copy-paste harder for no gain.
    let options = serde_saphyr::ser_options! { folded_wrap_chars: 100_000 };
    serde_saphyr::to_string_with_options(value, options)
        .unwrap_or_else(|e| format!("# unserializable: {e}\n"))
}

/// Parse `tenant.yaml`, checking `apiVersion` and `kind`.
pub fn parse_tenant_file(text: &str) -> Result<TenantFile, DocumentError> {
    let file: TenantFile = from_yaml(text)?;
    check_type(&file.api_version, &file.kind, "Tenant")?;
    Ok(file)
}

/// Parse `tenantry.yaml`, checking `apiVersion` and `kind`. An empty file is the defaults.
pub fn parse_platform(text: &str) -> Result<Platform, DocumentError> {
    if text.trim().is_empty() {
        return Ok(Platform::default());
    }
    let platform: PlatformDoc = from_yaml(text)?;
    check_type(&platform.api_version, &platform.kind, "Platform")?;
    Ok(platform)
}

fn check_type(api_version: &str, kind: &str, want_kind: &str) -> Result<(), DocumentError> {
    if api_version != tenantry_api::API_VERSION {
        return Err(DocumentError {
            path: Some("apiVersion".to_owned()),
            line: None,
            column: None,
            message: format!(
                "is {api_version:?}; this version of Tenantry reads {:?}",
                tenantry_api::API_VERSION
            ),
        });
    }
    if kind != want_kind {
        return Err(DocumentError {
            path: Some("kind".to_owned()),
            line: None,
            column: None,
            message: format!("is {kind:?}; expected {want_kind:?}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_name_the_path_and_position() {
        let err = parse_tenant_file(
            "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: shop\nspec:\n  podSecurty: baseline\n",
        )
        .unwrap_err();
        assert_eq!(err.line, Some(6), "{err}");
        assert!(err.message.contains("podSecurty"), "{err}");
        assert!(
            err.message.contains("podSecurity"),
            "lists allowed fields: {err}"
        );
    }

    #[test]
    fn wrong_types_name_the_nested_path() {
        let err = parse_tenant_file(
            "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: shop\nspec:\n  quota:\n    pods: lots\n",
        )
        .unwrap_err();
        assert_eq!(err.path.as_deref(), Some("spec.quota.pods"), "{err}");
        assert_eq!(err.line, Some(7), "{err}");
    }

    #[test]
    fn wrong_kind_is_refused() {
        let err = parse_tenant_file(
            "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\nmetadata:\n  name: shop\n",
        )
        .unwrap_err();
        assert_eq!(err.path.as_deref(), Some("kind"));
    }

    #[test]
    fn empty_platform_file_is_all_defaults() {
        assert_eq!(parse_platform("").unwrap(), Platform::default());
        assert_eq!(
            parse_platform("apiVersion: tenantry.dev/v1alpha1\nkind: Platform\n").unwrap(),
            Platform::default()
        );
    }

    #[test]
    fn platform_round_trips() {
        let yaml = to_yaml(&Platform::default());
        assert_eq!(parse_platform(&yaml).unwrap(), Platform::default());
    }

    #[test]
    fn malformed_yaml_has_a_position() {
        let err = parse_platform("kind: [unclosed\n").unwrap_err();
        assert!(err.line.is_some(), "{err}");
    }
}
