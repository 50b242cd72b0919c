//! `tenantry crd`: the Tenant CustomResourceDefinition, for `kubectl apply`.

use std::{io::Write, process::ExitCode};

use kube::CustomResourceExt;
use tenantry_api::Tenant;

/// Print the CRD as YAML.
pub fn run() -> anyhow::Result<ExitCode> {
    let text = tenantry_core::document::to_yaml(&Tenant::crd());
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
