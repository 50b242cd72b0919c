//! `tenantry verify oci://…`: is this artifact signed by the platform's key, as Flux's
//! source-controller will ask before applying it. Exit 0 verified; 1 with the reason
//! (missing, wrong key, tampered); 2 when the registry could not be asked.

use std::{io, path::PathBuf, process::ExitCode};

use clap::Args;
use serde::Serialize;
use tenantry_delivery::{OciRef, cosign::Verdict, keys};

use crate::{
    args::runtime,
    commands::publish::{RegistryConfigArg, credentials},
    output::{self, Outcome, Output, Report},
};

/// `tenantry verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The artifact: `oci://REGISTRY/REPO:TAG` or `…@sha256:…`.
    #[arg(value_name = "OCI_URL")]
    pub target: String,
    /// A cosign public key (cosign.pub) the signature must verify with; repeat for several.
    #[arg(long, value_name = "FILE", required = true)]
    pub key: Vec<PathBuf>,
    /// Speak plain HTTP to the registry (a local registry only).
    #[arg(long)]
    pub insecure_registry: bool,
    #[command(flatten)]
    pub registry_config: RegistryConfigArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Serialize, Default)]
struct VerifyReport {
    reference: String,
    digest: Option<String>,
    /// `verified`, `missing`, `wrong-key` or `tampered`.
    verdict: Option<&'static str>,
    reason: Option<String>,
}

impl Report for VerifyReport {
    const COMMAND: &'static str = "verify";
    fn outcome(&self) -> Outcome {
        match self.verdict {
            Some("verified") => Outcome::Ok,
            Some(_) => Outcome::Findings,
            None => Outcome::Error,
        }
    }
    fn write_text(&self, out: &mut dyn io::Write) -> io::Result<()> {
        let Some(verdict) = self.verdict else {
            return Ok(());
        };
        let digest = self.digest.as_deref().unwrap_or_default();
        match &self.reason {
            None => writeln!(out, "{verdict}: {} ({digest})", self.reference),
            Some(reason) => writeln!(out, "{verdict}: {} ({digest}): {reason}", self.reference),
        }
    }
}

/// Run `tenantry verify`.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let mut report = VerifyReport {
        reference: args.target.clone(),
        ..VerifyReport::default()
    };
    let result = verify(&args, &mut report);
    output::finish(args.output, &report, result)
}

fn verify(args: &VerifyArgs, report: &mut VerifyReport) -> anyhow::Result<()> {
    let target = OciRef::parse(&args.target)?;
    let keys = keys::load_public_keys(&args.key)?;
    let credentials = credentials(&target.registry, &args.registry_config)?;
    let verified = runtime()?.block_on(tenantry_delivery::verify(
        &target,
        &keys,
        args.insecure_registry,
        &credentials,
    ))?;
    report.digest = Some(verified.digest);
    let (verdict, reason) = match verified.verdict {
        Verdict::Verified => ("verified", None),
        Verdict::Missing => (
            "missing",
            Some("no cosign signature for this digest".to_owned()),
        ),
        Verdict::WrongKey => (
            "wrong-key",
            Some("signed, but not by any of the given keys".to_owned()),
        ),
        Verdict::Tampered(why) => ("tampered", Some(why)),
    };
    report.verdict = Some(verdict);
    report.reason = reason;
    Ok(())
}
