//! Tenantry's guardrail engine.
//!
//! Everything here is a pure function over JSON: no I/O, no clocks, no global state, so the
//! same manifest gets the same verdict in a CLI, a controller and a CI job.
#![forbid(unsafe_code)]

pub mod pss;

pub use pss::{
    CheckInfo, Finding, Level, ParseLevelError, ParseVersionError, PodTemplateRef, Version,
    check_object, check_pod, checks, pod_template,
};
