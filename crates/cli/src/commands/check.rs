//! `tenantry check`: the guardrails a tenant meets at admission, run on files in CI.
//!
//! The command only gathers inputs and prints; every verdict comes from
//! `tenantry_policy::Engine`, the same engine the admission webhook runs, so CI and the
//! cluster cannot disagree. Inputs are files, directories and stdin. A directory with a
//! `kustomization.yaml` is read the way kustomize reads it: its `resources`, `bases` and
//! `components` are followed (patches are not objects and are not judged on their own);
//! other directories are walked for `.yaml`, `.yml` and `.json` files. Unreadable input is
//! never skipped silently: it is reported and makes the run exit 2, because a check that did
//! not see a file has not passed it.

use std::{
    collections::BTreeSet,
    fs,
    io::{self, Read, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use rayon::prelude::*;
use serde_json::Value;
use tenantry_gitops::{PlatformFile, Repo};
use tenantry_policy::{
    Context, Engine, Level, Severity, TenantInfo, TextInput, TextResult, Version, check_text,
    input,
    report::{self, InputError, Located, Report},
};

use crate::{
    args::RepoArg,
    output::{EXIT_ERROR, EXIT_FINDINGS},
};

/// Kustomize's file names for a kustomization, in the order it looks for them.
const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
/// Directories holding more files than this are refused rather than read forever.
const MAX_INPUTS: usize = 200_000;
/// Parsing recursion is bounded by the input budget; this leaves room for it in debug builds.
const WORKER_STACK_BYTES: usize = 16 * 1024 * 1024;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable, one finding per block, `file:line:` first.
    Text,
    /// One JSON document with findings, skipped checks and errors.
    Json,
    /// SARIF 2.1.0 for code scanning (e.g. GitHub's upload-sarif).
    Sarif,
    /// JUnit XML for CI test reports: one test case per object.
    Junit,
}

/// `tenantry check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Files and directories to check; `-` reads stdin. Default: the current directory.
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// Check only these policies (comma-separated); `pod-security` alone checks only the Pod
    /// Security Standards. Default: the policies tenantry.yaml enables.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub policy: Option<Vec<String>>,
    /// Pod Security level for every object, instead of the tenant's (or restricted).
    #[arg(long, value_name = "baseline|restricted", value_parser = parse_level)]
    pub level: Option<Level>,
    /// Pod Security policy version.
    #[arg(long, value_name = "v1.N|latest", value_parser = parse_version)]
    pub version: Option<Version>,
    /// Judge the manifests as this tenant's (its namespaces, ServiceAccount, registries and
    /// Pod Security level), read from the platform repository given by --repo.
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// Check the tenant repository contract for a repository of this name.
    #[arg(long, value_name = "NAME")]
    pub repo_name: Option<String>,
    #[command(flatten)]
    pub repo: RepoArg,
    /// List at most this many findings per object; the rest are counted in one last
    /// `findings-elided` finding (which fails the check when any of them would). 0: no limit.
    #[arg(long, value_name = "N", default_value_t = tenantry_policy::DEFAULT_MAX_FINDINGS_PER_OBJECT)]
    pub max_findings_per_object: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

fn parse_level(s: &str) -> Result<Level, String> {
    s.parse()
        .map_err(|e: tenantry_policy::ParseLevelError| e.to_string())
}

fn parse_version(s: &str) -> Result<Version, String> {
    s.parse()
        .map_err(|e: tenantry_policy::ParseVersionError| e.to_string())
}

/// Where an input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    File(PathBuf),
    Stdin,
}

/// One input to read.
#[derive(Debug, Clone)]
struct Input {
    /// How the input is named in output.
    label: String,
    source: Source,
    /// A kustomization file: a document without `apiVersion`/`kind` is a Kustomization.
    kustomization: bool,
}

/// Gathers inputs from paths, following kustomizations, each file and directory once.
#[derive(Default)]
struct Collector {
    inputs: Vec<Input>,
    seen: BTreeSet<PathBuf>,
    errors: Vec<InputError>,
    notes: Vec<String>,
}

/// How a path is shown: lexically normalised (`deploy/../base/x.yaml` is `base/x.yaml`), so
/// one file has one name in every report and SARIF fingerprints stay stable.
fn label_of(path: &Path) -> String {
    use std::path::Component;
    let mut parts: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if matches!(parts.last(), Some(Component::Normal(_))) => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return ".".to_owned();
    }
    parts.iter().collect::<PathBuf>().display().to_string()
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n != "." && n != "..")
}

fn is_manifest_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "yaml" | "yml" | "json"))
}

impl Collector {
    fn error(&mut self, path: &Path, message: impl Into<String>) {
        self.errors.push(InputError {
            file: label_of(path),
            line: None,
            column: None,
            message: message.into(),
        });
    }

    /// First visit of a path (by its canonical form, so symlink loops end).
    fn first_visit(&mut self, path: &Path) -> bool {
        let key = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.seen.insert(key)
    }

    fn add_file(&mut self, path: &Path, kustomization: bool) {
        if self.inputs.len() >= MAX_INPUTS {
            self.error(
                path,
                format!("more than {MAX_INPUTS} inputs; check fewer at once"),
            );
            return;
        }
        if self.first_visit(path) {
            self.inputs.push(Input {
                label: label_of(path),
                source: Source::File(path.to_path_buf()),
                kustomization,
            });
        }
    }

    fn add_path(&mut self, path: &Path) {
        match fs::metadata(path) {
            Err(e) => self.error(path, e.to_string()),
            Ok(meta) if meta.is_dir() => self.add_dir(path),
            Ok(_) => {
                let is_kustomization = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| KUSTOMIZATION_FILES.contains(&n));
                if is_kustomization {
                    self.add_kustomization(path);
                } else {
                    self.add_file(path, false);
                }
            }
        }
    }

    fn add_dir(&mut self, dir: &Path) {
        if !self.first_visit(dir) {
            return;
        }
        if let Some(k) = KUSTOMIZATION_FILES
            .iter()
            .map(|name| dir.join(name))
            .find(|p| p.is_file())
        {
            self.add_kustomization(&k);
            return;
        }
        if dir.join("Chart.yaml").is_file() {
            self.notes.push(format!(
                "{} is a Helm chart and was not checked: its templates are not manifests until \
                 rendered (`helm template ... | tenantry check -`)",
                label_of(dir)
            ));
            return;
        }
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => return self.error(dir, e.to_string()),
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            if is_hidden(&path) {
                continue;
            }
            if path.is_dir() {
                self.add_dir(&path);
            } else if is_manifest_name(&path) {
                self.add_file(&path, false);
            }
        }
    }

    /// A kustomization and everything local it includes.
    fn add_kustomization(&mut self, file: &Path) {
        if self
            .seen
            .contains(&fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf()))
        {
            return;
        }
        self.add_file(file, true);
        let Ok(text) = fs::read_to_string(file) else {
            return; // Reported when the file itself is read.
        };
        let Ok(documents) = input::parse(&text, input::Format::Yaml) else {
            return; // Likewise.
        };
        let base = file.parent().unwrap_or(Path::new("."));
        for document in &documents {
            for field in ["resources", "bases", "components"] {
                let entries = document.value.get(field).and_then(Value::as_array);
                for (i, entry) in entries.into_iter().flatten().enumerate() {
                    let Some(entry) = entry.as_str() else {
                        continue;
                    };
                    if tenantry_policy::is_remote_kustomize_resource(entry) {
                        self.notes.push(format!(
                            "{}: {field}[{i}] {entry:?} is remote and was not fetched or checked",
                            label_of(file)
                        ));
                        continue;
                    }
                    let target = base.join(entry);
                    if !target.exists() {
                        self.errors.push(InputError {
                            file: label_of(file),
                            line: Some(input::locate(
                                &text,
                                document.line,
                                &format!("{field}[{i}]"),
                            )),
                            column: None,
                            message: format!(
                                "{field}[{i}] {entry:?} does not exist (kustomize build would fail)"
                            ),
                        });
                        continue;
                    }
                    self.add_path(&target);
                }
            }
            let has_patches = ["patches", "patchesStrategicMerge", "patchesJson6902"]
                .iter()
                .any(|k| document.value.get(k).is_some_and(|v| !v.is_null()));
            if has_patches {
                self.notes.push(format!(
                    "{}: patches are not applied; to judge the patched result run `kustomize \
                     build {} | tenantry check -`",
                    label_of(file),
                    label_of(base)
                ));
            }
        }
    }
}

fn read_input(input: &Input) -> Result<String, InputError> {
    let fail = |message: String| InputError {
        file: input.label.clone(),
        line: None,
        column: None,
        message,
    };
    let mut bytes = Vec::new();
    match &input.source {
        Source::Stdin => {
            io::stdin()
                .lock()
                .take(input::MAX_INPUT_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| fail(e.to_string()))?;
        }
        Source::File(path) => {
            let file = fs::File::open(path).map_err(|e| fail(e.to_string()))?;
            file.take(input::MAX_INPUT_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| fail(e.to_string()))?;
        }
    }
    if bytes.len() > input::MAX_INPUT_BYTES {
        return Err(fail(format!(
            "is larger than {} bytes; inputs are limited to that size",
            input::MAX_INPUT_BYTES
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        InputError {
            file: input.label.clone(),
            line: Some(valid.iter().filter(|&&b| b == b'\n').count() as u64 + 1),
            column: None,
            message: "is not UTF-8 text".to_owned(),
        }
    })
}

fn check_input(input: &Input, engine: &Engine, ctx: &Context<'_>) -> TextResult {
    let text = match read_input(input) {
        Ok(text) => text,
        Err(e) => {
            return TextResult {
                error: Some(e),
                ..TextResult::default()
            };
        }
    };
    let format = match input.source {
        Source::Stdin => input::Format::sniff(&text),
        Source::File(_) => input::Format::for_file_name(&input.label),
    };
    check_text(
        &TextInput {
            label: &input.label,
            text: &text,
            format,
            kustomization: input.kustomization,
        },
        engine,
        ctx,
    )
}

/// Run `tenantry check`.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    // A tenant's own repository has no tenantry.yaml: the platform defaults apply. Judging
    // as a named tenant needs the platform repository, so then it must be one.
    let missing = if args.tenant.is_some() {
        PlatformFile::Required
    } else {
        PlatformFile::DefaultsIfMissing
    };
    let repo = Repo::open(&args.repo.repo, missing).with_context(|| {
        format!(
            "reading the platform repository {}",
            args.repo.repo.display()
        )
    })?;
    let engine = engine_for(&args, &repo)?;
    let tenant = tenant_for(&args, &repo)?;
    let ctx = Context::check(tenant.as_ref());
    let paths = if args.paths.is_empty() {
        vec![".".to_owned()]
    } else {
        args.paths.clone()
    };
    let collector = collect(&paths);
    let results = judge_all(&collector.inputs, &engine, &ctx)?;
    let report = merge(
        results,
        &engine,
        &ctx,
        collector,
        paths.first().map_or(".", String::as_str),
    );
    print_report(&report, args.format)?;
    Ok(if !report.errors.is_empty() {
        ExitCode::from(EXIT_ERROR)
    } else if report.count(Severity::Deny) > 0 {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

/// The engine `tenantry.yaml` configures, narrowed by `--policy`, `--level`, `--version`,
/// and with the repository contract when `--repo-name` names the repository.
fn engine_for(args: &CheckArgs, repo: &Repo) -> anyhow::Result<Engine> {
    let engine = Engine::new(&repo.context().platform)
        .with_selection(args.policy.as_deref(), args.level, args.version)?
        .with_max_findings(match args.max_findings_per_object {
            0 => None,
            n => Some(n),
        });
    let contract_selected = args
        .policy
        .as_ref()
        .is_some_and(|p| p.iter().any(|id| id.trim() == "tenant-repo-contract"));
    match &args.repo_name {
        Some(name) => Ok(engine.with_repo_contract(name)),
        None if contract_selected => bail!(
            "--policy tenant-repo-contract needs --repo-name NAME (the contract is about that name)"
        ),
        None => Ok(engine),
    }
}

/// The tenant named by `--tenant`, as the engine sees it.
fn tenant_for(args: &CheckArgs, repo: &Repo) -> anyhow::Result<Option<TenantInfo>> {
    let Some(name) = &args.tenant else {
        return Ok(None);
    };
    let file = repo.read_tenant(name)?.with_context(|| {
        format!(
            "no tenant {name:?} in {} (looked for {})",
            args.repo.repo.display(),
            repo.tenant_path(name).display()
        )
    })?;
    Ok(Some(TenantInfo::from_resolved(&repo.resolve(&file)?)))
}

/// Every input the paths name; stdin (`-`) once.
fn collect(paths: &[String]) -> Collector {
    let mut collector = Collector::default();
    let mut stdin_taken = false;
    for path in paths {
        if path == "-" {
            if !stdin_taken {
                stdin_taken = true;
                collector.inputs.push(Input {
                    label: "stdin".to_owned(),
                    source: Source::Stdin,
                    kustomization: false,
                });
            }
            continue;
        }
        collector.add_path(Path::new(path));
    }
    collector
}

/// Judge every input in parallel, in input order.
fn judge_all(
    inputs: &[Input],
    engine: &Engine,
    ctx: &Context<'_>,
) -> anyhow::Result<Vec<TextResult>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .stack_size(WORKER_STACK_BYTES)
        .build()
        .context("starting worker threads")?;
    Ok(pool.install(|| {
        inputs
            .par_iter()
            .map(|input| check_input(input, engine, ctx))
            .collect()
    }))
}

/// One report from every input's result, plus the repository-wide contract findings (placed
/// at the first Deployment's file, where the fix usually goes).
fn merge(
    results: Vec<TextResult>,
    engine: &Engine,
    ctx: &Context<'_>,
    collector: Collector,
    first_path: &str,
) -> Report {
    let mut report = Report {
        files: collector.inputs.len(),
        skipped: engine.skipped(ctx),
        notes: collector.notes,
        errors: collector.errors,
        ..Report::default()
    };
    let mut scan = engine.repo_scan();
    if let Some(scan) = scan.as_mut() {
        // Resolved, so `tenantry check .` run inside deploy/ still shows the layout.
        for input in &collector.inputs {
            if let Source::File(path) = &input.source {
                scan.observe_path(&fs::canonicalize(path).unwrap_or_else(|_| path.clone()));
            }
        }
    }
    let mut first_deployment_file: Option<String> = None;
    for result in results {
        if let Some(error) = result.error {
            report.errors.push(error);
        }
        if first_deployment_file.is_none() {
            first_deployment_file = result
                .judged
                .iter()
                .find(|j| {
                    j.object.kind == "Deployment" && j.object.api_version.starts_with("apps/")
                })
                .map(|j| j.file.clone());
        }
        report.judged.extend(result.judged);
        report.findings.extend(result.findings);
        if let (Some(total), Some(part)) = (scan.as_mut(), result.scan) {
            total.merge(part);
        }
    }
    if let Some(scan) = scan {
        if scan.layout_unknown() {
            report.skipped.push(tenantry_policy::Skipped {
                policy: "tenant-repo-contract",
                reason: format!(
                    "only stdin was read: the repository was not checked for {}",
                    tenantry_policy::REQUIRED_PATHS.join(", ")
                ),
            });
        }
        for violation in scan.finish() {
            // A missing file is reported at its own path, everything else where the
            // application's Deployment is.
            let missing = (violation.check == "required-path")
                .then(|| {
                    tenantry_policy::REQUIRED_PATHS
                        .iter()
                        .find(|p| violation.message.starts_with(*p))
                })
                .flatten();
            report.findings.push(Located {
                file: missing.map(|p| (*p).to_owned()).unwrap_or_else(|| {
                    first_deployment_file
                        .clone()
                        .unwrap_or_else(|| first_path.to_owned())
                }),
                document: None,
                line: None,
                violation,
            });
        }
    }
    report
}

fn print_report(report: &Report, format: OutputFormat) -> anyhow::Result<()> {
    let format = match format {
        OutputFormat::Text => report::Format::Text,
        OutputFormat::Json => report::Format::Json,
        OutputFormat::Sarif => report::Format::Sarif,
        OutputFormat::Junit => report::Format::Junit,
    };
    // Streamed: a large report is never held as one string.
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    match report::write(report, format, env!("CARGO_PKG_VERSION"), &mut stdout)
        .and_then(|()| stdout.flush())
    {
        // A closed pipe (`| head`) is the reader's choice, not a failure of the check.
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e).context("writing the report"),
        _ => Ok(()),
    }
}
