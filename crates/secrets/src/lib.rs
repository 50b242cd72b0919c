//! Tenantry's OpenBao edge: provision each tenant's ACL policy and Kubernetes-auth role, and
//! revoke them with every token they issued.
//!
//! Like `tenantry-cluster`, this crate decides nothing about what a tenant gets: the policy
//! text and role body are `tenantry-core`'s rendering (the same bytes as the tenant's
//! `openbao-policy.hcl` and `openbao-role.json`). It reads OpenBao, compares, and writes only
//! what differs, through the [`SecretsApi`] trait that [`BaoClient`] implements over HTTP.
#![forbid(unsafe_code)]

pub mod access;
pub mod api;
pub mod client;
pub mod error;
pub mod provision;
pub mod revoke;
#[cfg(feature = "testing")]
pub mod testing;

pub use access::{DesiredAccess, Layout, TenantNames};
pub use api::SecretsApi;
pub use client::{BaoClient, Connection, ConnectionFlags, RequestCounts, Token};
pub use error::SecretsError;
