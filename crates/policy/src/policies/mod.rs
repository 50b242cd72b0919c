//! The platform policies, one module per concern. Each function reads the object through the
//! engine's [`crate::engine::ObjectView`] and reports into a [`crate::engine::Sink`]; none of
//! them allocates unless it has something to report.

pub(crate) mod flux;
pub(crate) mod gateway;
pub(crate) mod network_policies;
pub(crate) mod placement;
pub(crate) mod pods;
pub(crate) mod protect;
pub(crate) mod repo_contract;
pub(crate) mod secret_stores;
pub(crate) mod services;
pub mod tenant_rbac;

use serde_json::{Map, Value};

/// `object[key]` as a string, if it is one.
pub(crate) fn str_of<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

/// The elements of `object[key]` that are JSON objects, with their indices.
pub(crate) fn objects_in<'a>(
    object: &'a Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = (usize, &'a Map<String, Value>)> {
    object
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.as_object().map(|o| (i, o)))
}
