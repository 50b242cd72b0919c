//! `tenantry keys generate`: a cosign key pair for `tenantry publish`, in cosign's own file
//! formats so the platform can hand `cosign.pub` to Flux and `cosign`/`skopeo` as is.

use std::{
    io::{self, IsTerminal as _},
    path::PathBuf,
    process::ExitCode,
};

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
    /// Write cosign.key (encrypted with $TENANTRY_KEY_PASSWORD, else $COSIGN_PASSWORD, else a
    /// passphrase asked on the terminal; mode 0600) and cosign.pub.
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
                    "warning: the passphrase is empty: anyone who gets the key file can sign with it"
                )?;
            }
        }
        Ok(())
    }
}

/// Run `tenantry keys`.
pub fn run(args: KeysArgs) -> anyhow::Result<ExitCode> {
    let KeysCommand::Generate { dir, output } = args.command;
    let mut report = GenerateReport::default();
    let result = generate(&dir, &mut report);
    output::finish(output, &report, result)
}

fn generate(dir: &std::path::Path, report: &mut GenerateReport) -> anyhow::Result<()> {
    let Some(password) = passphrase(true)? else {
        anyhow::bail!(
            "no passphrase for the new key: set {} (or {}; an empty value writes a key anyone holding the file can use), or run in a terminal to be asked",
            keys::PASSWORD_ENV,
            keys::COSIGN_PASSWORD_ENV
        );
    };
    report.encrypted_with_empty_password = password.is_empty();
    let (private, public) = keys::generate(dir, password.as_bytes())?;
    report.private_key = Some(display(&private));
    report.public_key = Some(display(&public));
    Ok(())
}

/// The private key's passphrase: `TENANTRY_KEY_PASSWORD`, else `COSIGN_PASSWORD`, else asked
/// on the terminal (twice when `confirm`, for a new key); `None` when none of these is
/// possible (no variable and stdin is not a terminal, as in CI).
pub fn passphrase(confirm: bool) -> anyhow::Result<Option<String>> {
    if let Some((password, _)) = keys::passphrase_from_env() {
        return Ok(Some(password));
    }
    if !io::stdin().is_terminal() {
        return Ok(None);
    }
    let password = rpassword::prompt_password("Enter password for private key: ")?;
    if confirm {
        let again = rpassword::prompt_password("Enter password for private key again: ")?;
        anyhow::ensure!(
            again == password,
            "the two passphrases differ; nothing written"
        );
    }
    Ok(Some(password))
}
