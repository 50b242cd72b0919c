//! The vocabulary every other Tenantry crate speaks.
//!
//! A tenant is declared once and read in two places: as a file a platform repository commits
//! (`tenants/<name>/tenant.yaml`) and as a cluster-scoped `Tenant` custom resource an operator
//! watches. Both are the same Rust type, so a field means the same thing wherever it is read.
//!
//! Every tenant field is optional: what a tenant leaves out comes from the platform's
//! `tenantry.yaml` defaults, so changing a platform default changes every tenant that did not
//! choose otherwise. A value whose validity depends on nothing else (a duration, a name pattern,
//! a Pod Security version) is a type here that deserializes only when valid, so every command
//! reading `tenantry.yaml` accepts and refuses the same file. Rules that relate fields to each
//! other, and defaulting, live in `tenantry-core`, which reports every problem at once with
//! its field path.
#![forbid(unsafe_code)]

/// Serialize a value type as its `Display` text and deserialize it through `FromStr`, so the
/// type's own parser (and its message) decides what a file may hold.
macro_rules! serde_as_text {
    ($type:ty) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub mod duration;
pub mod pattern;
pub mod platform;
pub mod policies;
pub mod quantity;
pub mod tenant;

pub use platform::Platform;
pub use quantity::Quantity;
pub use tenant::{Tenant, TenantSpec, TenantStatus};

/// The API group of every Tenantry kind.
pub const GROUP: &str = "tenantry.dev";
/// The API version of the `Tenant` and `Platform` documents this build reads and writes.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of Tenantry documents.
pub const API_VERSION: &str = "tenantry.dev/v1alpha1";

/// The value of `app.kubernetes.io/managed-by` on everything Tenantry renders.
pub const MANAGED_BY: &str = "tenantry";
/// The well-known label naming the tool that manages an object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
