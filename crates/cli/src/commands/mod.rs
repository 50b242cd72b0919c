//! One module per command. Each parses its flags, calls the library crates, fills a report
//! ([`crate::output::Report`]) and hands it to [`crate::output::finish`]; nothing here decides
//! what a tenant is or how the cluster is changed.

pub mod apply;
pub mod audit;
pub mod check;
pub mod crd;
pub mod credentials;
pub mod doctor;
pub mod keys;
pub mod kubeconfig;
pub mod offboard;
pub mod onboard;
pub mod operator;
pub mod policy;
pub mod proxy;
pub mod publish;
pub mod render;
mod reports;
pub mod secrets;
pub mod tenant;
pub mod verify;
pub mod webhook;
