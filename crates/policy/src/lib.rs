//! Tenantry's guardrail engine.
//!
//! Everything here is a pure function over JSON: no I/O, no clocks, no global state, so the
//! same manifest gets the same verdict in a CLI, a controller and a CI job. Pod Security is
//! reproduced exactly ([`pss`]); the platform's own policies ([`Engine`]) are configured in
//! `tenantry.yaml` and judged in the same pass. Reading manifests ([`input`]) and writing
//! reports ([`report`]) live here too, so the CLI, the webhook and the fuzz targets share one
//! path from bytes to verdict.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod check;
pub mod engine;
pub mod image;
pub mod input;
mod policies;
pub mod pss;
pub mod report;
pub mod vap;

pub use catalog::{CHECKS, CheckDoc};
pub use check::{TextInput, TextResult, check_text};
pub use engine::{
    Context, DEFAULT_MAX_FINDINGS_PER_OBJECT, Engine, EngineError, FINDINGS_ELIDED, Mode,
    NamespaceInfo, ObjectRef, Operation, Severity, Skipped, TenantInfo, UserInfo, Violation,
};
pub use policies::flux::is_remote as is_remote_kustomize_resource;
pub use policies::repo_contract::{CLUSTER_SCOPED, REQUIRED_PATHS, RepoScan, is_cluster_scoped};
pub use policies::tenant_rbac::{bootstrap_creates, resource_of};
pub use pss::{
    CheckInfo, Finding, LabelProblem, Level, ModeLabels, NamespaceLabels, ParseLevelError,
    ParseVersionError, PodTemplateRef, Version, check_object, check_pod, checks, pod_template,
};
