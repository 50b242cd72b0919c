//! `tenantry kubeconfig`: issue a fresh credential for a tenant that is already onboarded.

use std::{io::Write, process::ExitCode, time::Duration};

use clap::Args;
use serde::Serialize;
use tenantry_cluster::credential::TokenPolicy;
use tenantry_gitops::{PlatformFile, Repo};

use super::credentials::{self, CredentialReport};
use crate::{
    args::{ClusterFlags, ClusterInfo, RepoArg, parse_duration, runtime},
    output::{self, Outcome, Report},
};

/// `tenantry kubeconfig`.
#[derive(Args, Debug)]
pub struct KubeconfigArgs {
    /// The tenant.
    pub name: String,
    /// Lifetime of the token, e.g. 8h or 30m (default and maximum from tenantry.yaml).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Who will hold this kubeconfig (shown by `tenantry credentials list`).
    #[arg(long, value_name = "TEXT")]
    pub holder: Option<String>,
    #[command(flatten)]
    pub repo: RepoArg,
    #[command(flatten)]
    pub cluster: ClusterFlags,
}

/// What `kubeconfig` did.
#[derive(Debug, Serialize)]
struct KubeconfigReport {
    tenant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential: Option<CredentialReport>,
}

impl Report for KubeconfigReport {
    const COMMAND: &'static str = "kubeconfig";

    fn outcome(&self) -> Outcome {
        self.credential
            .as_ref()
            .map_or(Outcome::Error, CredentialReport::outcome)
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        match &self.credential {
            Some(credential) => credential.write_text(out),
            None => Ok(()),
        }
    }
}

/// Run `tenantry kubeconfig`.
pub fn run(args: KubeconfigArgs) -> anyhow::Result<ExitCode> {
    let mut report = KubeconfigReport {
        tenant: args.name.clone(),
        cluster: None,
        credential: None,
    };
    let result = issue(&args, &mut report);
    output::finish(args.cluster.output, &report, result)
}

fn issue(args: &KubeconfigArgs, report: &mut KubeconfigReport) -> anyhow::Result<()> {
    Repo::check_name(&args.name)?;
    let repo = args.repo.open(PlatformFile::Required)?;
    let lifetime = TokenPolicy::from_platform(&repo.context().platform.credentials)?
        .lifetime(args.duration)?;
    runtime()?.block_on(async {
        let (api, endpoint) = args.cluster.connect().await?;
        report.cluster = Some(ClusterInfo::from(&endpoint));
        let issue = credentials::Issue {
            repo: &repo,
            tenant: &args.name,
            endpoint: &endpoint,
            lifetime,
            holder: args.holder.as_deref(),
            output: args.cluster.output,
        };
        report.credential = Some(credentials::issue(&api, &issue).await?);
        Ok(())
    })
}
