//! `tenantry keys generate`: a cosign key pair for `tenantry publish`, in cosign's own file
//! formats so the platform can hand `cosign.pub` to Flux and `cosign`/`skopeo` as is.

use std::{io, path::PathBuf, process::ExitCode};

use clap::{Args, Subcommand};
use serde::Serialize;
use tenantry_delivery::keys;

use crate::output::{self, Outcome, Output, Report, display};

/// `tenantry keys`.
#[derive(Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Write cosign.key (encrypted with $COSIGN_PASSWORD, mode 0600) and cosign.pub.
    Generate {
        /// Directory to write the two files into.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Serialize, Default)]
struct GenerateReport {
    private_key: Option<String>,
    public_key: Option<String>,
    encrypted_with_empty_password: bool,
}

impl Report for GenerateReport {
    const COMMAND: &'static str = "keys generate";
    fn outcome(&self) -> Outcome {
        Outcome::Ok
    }
    fn write_text(&self, out: &mut dyn io::Write) -> io::Result<()> {
        if let (Some(private), Some(public)) = (&self.private_key, &self.public_key) {
            writeln!(
                out,
                "private key: {private} (keep it secret; publish signs with it)"
            )?;
            writeln!(out, "public key:  {public} (the platform verifies with it)")?;
            if self.encrypted_with_empty_password {
                writeln!(
                    out,
                    "warning: {} is not set: the key is encrypted with an empty password",
                    keys::PASSWORD_ENV
                )?;
            }
        }
        Ok(())
    }
}

/// Run `tenantry keys`.
pub fn run(args: KeysArgs) -> anyhow::Result<ExitCode> {
    let KeysCommand::Generate { dir, output } = args.command;
    let password = std::env::var(keys::PASSWORD_ENV).unwrap_or_default();
    let mut report = GenerateReport {
        encrypted_with_empty_password: password.is_empty(),
        ..GenerateReport::default()
    };
    let result = keys::generate(&dir, password.as_bytes()).map(|(private, public)| {
        report.private_key = Some(display(&private));
        report.public_key = Some(display(&public));
    });
    output::finish(output, &report, result.map_err(Into::into))
}
