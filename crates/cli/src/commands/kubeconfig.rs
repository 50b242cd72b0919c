//! `tenantry kubeconfig`: issue a fresh credential for a tenant that is already onboarded.

use std::{io::Write, process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use tenantry_cluster::{
    ClusterEndpoint,
    credential::{self, TokenPolicy},
};
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
    /// Point the kubeconfig at the tenant proxy at this https URL instead of the API server
    /// (`tenantry proxy`); the credential is checked through it.
    #[arg(long, value_name = "URL")]
    pub via_proxy: Option<String>,
    /// PEM CA bundle that signed the proxy's certificate (system roots when not given).
    #[arg(long, value_name = "FILE", requires = "via_proxy")]
    pub proxy_ca: Option<std::path::PathBuf>,
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
        let endpoint = match &args.via_proxy {
            Some(url) => {
                let ca = match &args.proxy_ca {
                    Some(path) => Some(
                        std::fs::read(path)
                            .with_context(|| format!("reading {}", path.display()))?,
                    ),
                    None => None,
                };
                proxy_endpoint(&endpoint, url, ca.as_deref())?
            }
            None => endpoint,
        };
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

/// The endpoint an issued kubeconfig points at to go through the tenant proxy at `url`,
/// trusting `ca` (PEM) or the system roots.
fn proxy_endpoint(
    direct: &ClusterEndpoint,
    url: &str,
    ca: Option<&[u8]>,
) -> anyhow::Result<ClusterEndpoint> {
    let ca_given = ca.is_some();
    let parsed = url::Url::parse(url).with_context(|| format!("--via-proxy {url}"))?;
    if parsed.scheme() != "https" || parsed.host_str().is_none() {
        bail!("--via-proxy {url}: the proxy is reached over https://HOST[:PORT]");
    }
    let ca = ca
        .map(std::str::from_utf8)
        .transpose()
        .ok()
        .flatten()
        .filter(|pem| pem.contains("-----BEGIN CERTIFICATE-----"));
    if ca_given && ca.is_none() {
        bail!("--proxy-ca holds no PEM certificate");
    }
    Ok(ClusterEndpoint {
        context: direct.context.clone(),
        ..credential::endpoint_for(url.trim_end_matches('/'), ca)
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn direct() -> ClusterEndpoint {
        ClusterEndpoint {
            context: "admin".into(),
            server: "https://10.0.0.1:6443".into(),
            certificate_authority_data: Some("Y2E=".into()),
            tls_server_name: Some("kubernetes".into()),
            insecure_skip_tls_verify: true,
            proxy_url: None,
        }
    }

    #[test]
    fn a_proxy_kubeconfig_trusts_the_proxy_not_the_api_server() {
        let pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let e = proxy_endpoint(&direct(), "https://proxy.example.com:8443/", Some(pem)).unwrap();
        assert_eq!(e.server, "https://proxy.example.com:8443");
        assert_eq!(
            e.certificate_authority_data.as_deref(),
            Some(
                base64::engine::general_purpose::STANDARD
                    .encode(pem)
                    .as_str()
            )
        );
        assert_eq!(
            (e.tls_server_name, e.insecure_skip_tls_verify),
            (None, false)
        );
        let e = proxy_endpoint(&direct(), "https://proxy", None).unwrap();
        assert_eq!(e.certificate_authority_data, None);
        assert!(proxy_endpoint(&direct(), "http://proxy", None).is_err());
        assert!(proxy_endpoint(&direct(), "https://proxy", Some(b"junk")).is_err());
    }
}
