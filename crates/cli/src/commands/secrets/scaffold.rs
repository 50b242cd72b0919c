//! `tenantry secrets scaffold NAME SECRET`: a generated secret's objects, written into the
//! tenant's own `deploy/` tree (see `tenantry_core::render::scaffold` for the pattern and
//! its policies).
//!
//! The platform repository is read only to know the tenant as the platform does (its
//! primary namespace, whether it has OpenBao, the store name and path prefix), so the files
//! pass `tenantry check --tenant NAME` and the store's role can write where they push.
//! Nothing in the platform repository is written.

use std::{io::Write, path::PathBuf};

use clap::Args;
use serde::Serialize;
use tenantry_core::render::scaffold;
use tenantry_gitops::{PlatformFile, scaffold::write_scaffold};

use crate::{
    args::RepoArg,
    output::{Outcome, Output, Report, display},
};

/// `tenantry secrets scaffold`.
#[derive(Args, Debug)]
pub struct ScaffoldArgs {
    /// The tenant (its primary namespace, OpenBao path and SecretStore are the platform's).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The secret: the objects' and the Kubernetes Secret's name, and the last segment of
    /// its OpenBao path `<pathPrefix>/<tenant>/<SECRET>`.
    #[arg(value_name = "SECRET")]
    pub secret: String,
    /// The tenant's deploy directory (default: deploy/ under the current directory).
    #[arg(long, value_name = "DEPLOY_DIR", default_value = "deploy")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub repo: RepoArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text, value_name = "FORMAT")]
    pub output: Output,
}

/// What `secrets scaffold` wrote.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaffoldReport {
    tenant: String,
    /// Where the value lives in OpenBao, under the KV mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    /// Files created or updated, under the deploy directory.
    created: Vec<String>,
    /// The deploy directory's `kustomization.yaml`: `updated` (the files were added to its
    /// resources), `unchanged` (already listed) or `missing` (there is none).
    #[serde(skip_serializing_if = "Option::is_none")]
    kustomization: Option<&'static str>,
    unchanged: usize,
    #[serde(skip)]
    dir: String,
}

impl Report for ScaffoldReport {
    const COMMAND: &'static str = "secrets scaffold";

    fn outcome(&self) -> Outcome {
        Outcome::Ok
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        for f in &self.created {
            writeln!(out, "created {}/{f}", self.dir)?;
        }
        match self.kustomization {
            Some("updated") => writeln!(out, "listed them in {}/kustomization.yaml", self.dir)?,
            Some("missing") => writeln!(
                out,
                "{} has no kustomization.yaml: list the files wherever your manifests are assembled",
                self.dir
            )?,
            _ => {}
        }
        if self.created.is_empty() {
            writeln!(
                out,
                "unchanged: {} files already scaffolded",
                self.unchanged
            )?;
        }
        writeln!(
            out,
            "tenant {}: the value is generated once into OpenBao at {path}",
            self.tenant
        )
    }
}

/// Render the scaffold for the tenant and write it into the deploy directory.
pub fn run(args: &ScaffoldArgs, report: &mut ScaffoldReport) -> anyhow::Result<()> {
    report.tenant = args.name.clone();
    report.dir = display(&args.dir);
    // Both arguments are checked before anything is read.
    scaffold::check_argument("NAME", &args.name)?;
    scaffold::check_argument("SECRET", &args.secret)?;
    let repo = args.repo.open(PlatformFile::Required)?;
    let Some(file) = repo.read_tenant(&args.name)? else {
        anyhow::bail!(
            "no tenant named {:?} in {} (NAME is the tenant, as registered in the platform repository given by --repo)",
            args.name,
            display(&repo.tenants_dir())
        );
    };
    let tenant = repo.resolve(&file)?;
    let ctx = repo.context();
    let files = scaffold::generated_secret_files(ctx, &tenant, &args.secret)
        .map_err(|e| anyhow::anyhow!("{}: {e}", display(&repo.tenant_path(&args.name))))?;
    let written = write_scaffold(&args.dir, &files)?;
    let ob = &ctx.platform.openbao;
    report.path = Some(format!(
        "{}/{}/{}",
        ob.kv_mount,
        ob.tenant_path(&tenant.name),
        args.secret
    ));
    report.kustomization = Some(if written.no_kustomization {
        "missing"
    } else {
        "unchanged"
    });
    for (path, _) in &written.changes {
        if path.as_os_str() == tenantry_gitops::KUSTOMIZATION_FILE {
            report.kustomization = Some("updated");
        } else {
            report.created.push(display(path));
        }
    }
    report.unchanged = written.unchanged;
    Ok(())
}
