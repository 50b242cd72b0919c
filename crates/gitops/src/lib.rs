//! The platform repository as Tenantry sees it: `tenantry.yaml` at the root, one
//! `tenants/<name>/` directory per tenant, and `tenants/kustomization.yaml` registering them.
//!
//! This crate is the only place tenant files are read or written. It keeps three promises:
//! - **nothing half-written**: every input is parsed, resolved and rendered before the first
//!   byte is written, and each file is replaced atomically;
//! - **only what changed**: a file whose bytes would not change is not touched, so a re-run
//!   reports `unchanged` and Git sees no diff;
//! - **never outside the repository**: tenant names are DNS labels, the tenants directory
//!   is a plain relative path, and symlinks leading out of the repository are refused.
#![forbid(unsafe_code)]

mod fsutil;
pub mod registry;
pub mod scaffold;
pub mod tenant_repo;

use std::{
    collections::BTreeSet,
    fmt, fs, io,
    path::{Path, PathBuf},
    sync::Mutex,
};

use rayon::prelude::*;
use tenantry_api::{Platform, tenant::TenantFile};
use tenantry_core::{
    Invalid, PlatformContext, Rendered, ResolvedTenant,
    document::{self, DocumentError},
    render, yaml,
};

/// The platform configuration file at the repository root.
pub const PLATFORM_FILE: &str = "tenantry.yaml";
/// The tenant declaration inside its directory.
pub const TENANT_FILE: &str = "tenant.yaml";
/// The kustomization inside each tenant directory and the registration file above them.
pub const KUSTOMIZATION_FILE: &str = "kustomization.yaml";

/// Everything that can go wrong reading or writing a platform repository.
#[derive(Debug, thiserror::Error)]
pub enum GitopsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A YAML document is malformed or does not match its type.
    #[error("{}", error.in_file(&path.display()))]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and what.
        error: DocumentError,
    },
    /// A document parsed but has invalid values.
    #[error("{}", format_invalid(path, invalid))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every invalid field.
        invalid: Invalid,
    },
    /// A tenant name that is not a DNS-1123 label (and so could not be a directory).
    #[error("tenant name {name:?} {problem}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it is refused.
        problem: String,
    },
    /// No tenant directory with that name.
    #[error("no tenant named {name:?}: {path} does not exist")]
    NotFound {
        /// The tenant.
        name: String,
        /// The tenant file that was looked for.
        path: PathBuf,
    },
    /// Two tenants claim the same namespace.
    #[error("namespace {namespace:?} is claimed by tenants {}; each namespace belongs to one tenant", tenants.join(" and "))]
    NamespaceConflict {
        /// The namespace.
        namespace: String,
        /// The tenants.
        tenants: Vec<String>,
    },
    /// The registration file could not be edited safely.
    #[error("{path}: {message}")]
    Registry {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A path resolves outside the repository.
    #[error("{0}: resolves outside the repository (a symlink?); refusing to write there")]
    OutsideRepository(PathBuf),
    /// `tenantry tenant init` found files it may not replace; nothing was written.
    #[error(
        "{}: nothing written; these files exist with other content:\n  {}",
        root.display(),
        paths.join("\n  ")
    )]
    TenantRepoConflict {
        /// The tenant repository.
        root: PathBuf,
        /// Each file, with who owns it and what to do.
        paths: Vec<String>,
    },
    /// The directory given as the platform repository has no `tenantry.yaml`.
    #[error(
        "{} is not a platform repository: {} does not exist (pass --repo DIR, or run `tenantry onboard NAME --gitops-only` to start one)",
        root.display(),
        path.display()
    )]
    NotARepository {
        /// The directory given.
        root: PathBuf,
        /// The platform file looked for.
        path: PathBuf,
    },
}

/// What opening a repository does when it has no `tenantry.yaml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformFile {
    /// Refuse: a command run from the wrong directory must fail, not find zero tenants.
    Required,
    /// Use the built-in defaults and write them out on the first change (`onboard`).
    CreateIfMissing,
    /// Use the built-in defaults and write nothing (`check` in a tenant's repository,
    /// `onboard --no-gitops`).
    DefaultsIfMissing,
}

impl GitopsError {
    fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn format_invalid(path: &Path, invalid: &Invalid) -> String {
    invalid
        .errors
        .iter()
        .map(|e| format!("{}: {e}", path.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A platform repository with its validated configuration.
pub struct Repo {
    root: PathBuf,
    /// `root` with symlinks resolved, for the outside-the-repository check.
    root_canonical: PathBuf,
    ctx: PlatformContext,
    /// The default `tenantry.yaml` to write on the first successful change, when the
    /// repository has none yet.
    pending_platform: Mutex<Option<String>>,
}

/// What happened to one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileChange {
    /// Did not exist; written.
    Created,
    /// Existed with other content; rewritten.
    Updated,
    /// Rendered before, no longer; deleted.
    Removed,
}

impl fmt::Display for FileChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Removed => "removed",
        })
    }
}

/// The outcome of writing one tenant's directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantReport {
    /// The tenant.
    pub tenant: String,
    /// Changed files, relative to the repository root, in the order they were changed.
    pub changes: Vec<(PathBuf, FileChange)>,
    /// Whether the tenant was added to the registration file.
    pub registered: bool,
    /// Files that already had the rendered content.
    pub unchanged: usize,
}

impl TenantReport {
    /// True when nothing was written.
    pub fn is_unchanged(&self) -> bool {
        self.changes.is_empty() && !self.registered
    }
}

/// A tenant read from the repository: its declaration, the declaration's text as written,
/// and its resolution against the platform.
#[derive(Clone, Debug)]
pub struct LoadedTenant {
    /// The parsed `tenant.yaml`.
    pub file: TenantFile,
    /// `tenant.yaml` byte for byte, kept when re-rendering.
    pub text: String,
    /// The tenant resolved against the platform.
    pub resolved: ResolvedTenant,
}

/// One file a tenant directory should contain.
struct PlannedFile {
    name: String,
    content: String,
}

impl Repo {
    /// Open a repository; `missing` says what a missing `tenantry.yaml` means.
    pub fn open(root: impl Into<PathBuf>, missing: PlatformFile) -> Result<Self, GitopsError> {
        let root = root.into();
        let path = root.join(PLATFORM_FILE);
        let create_platform = missing == PlatformFile::CreateIfMissing;
        let (platform, pending_platform) =
            match fsutil::read_optional(&path).map_err(|e| GitopsError::io(&path, e))? {
                Some(bytes) => {
                    let text = String::from_utf8(bytes).map_err(|_| GitopsError::Parse {
                        path: path.clone(),
                        error: not_utf8(),
                    })?;
                    let platform =
                        document::parse_platform(&text).map_err(|error| GitopsError::Parse {
                            path: path.clone(),
                            error,
                        })?;
                    (platform, None)
                }
                None if missing == PlatformFile::Required => {
                    return Err(GitopsError::NotARepository { root, path });
                }
                None => {
                    let platform = Platform::default();
                    let pending = create_platform.then(|| default_platform_file(&platform));
                    (platform, pending)
                }
            };
        let ctx = PlatformContext::new(platform).map_err(|invalid| GitopsError::Invalid {
            path: path.clone(),
            invalid,
        })?;
        let root_canonical = root.canonicalize().unwrap_or_else(|_| root.clone());
        Ok(Self {
            root,
            root_canonical,
            ctx,
            pending_platform: Mutex::new(pending_platform),
        })
    }

    /// The validated platform.
    pub fn context(&self) -> &PlatformContext {
        &self.ctx
    }

    /// The repository root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when this repository had no `tenantry.yaml` and one will be created.
    pub fn creates_platform_file(&self) -> bool {
        self.pending_platform.lock().is_ok_and(|p| p.is_some())
    }

    /// Write the pending `tenantry.yaml`, once, before the first change it governs.
    fn write_pending_platform(&self) -> Result<bool, GitopsError> {
        let pending = match self.pending_platform.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        match pending {
            Some(text) => {
                let path = self.root.join(PLATFORM_FILE);
                fsutil::write_atomic(&path, text.as_bytes())
                    .map_err(|e| GitopsError::io(&path, e))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// `<root>/<tenantsDir>`.
    pub fn tenants_dir(&self) -> PathBuf {
        self.root.join(&self.ctx.platform.tenants_dir)
    }

    /// `<root>/<tenantsDir>/<name>`.
    pub fn tenant_dir(&self, name: &str) -> PathBuf {
        self.tenants_dir().join(name)
    }

    /// `tenants/<name>/tenant.yaml`.
    pub fn tenant_path(&self, name: &str) -> PathBuf {
        self.tenant_dir(name).join(TENANT_FILE)
    }

    /// Refuse a tenant name before it is used in a path: only DNS labels can name a tenant,
    /// so `../x` or `a/b` never reach the file system.
    pub fn check_name(name: &str) -> Result<(), GitopsError> {
        match tenantry_core::names::dns_label_problem(name) {
            None => Ok(()),
            Some(problem) => Err(GitopsError::InvalidName {
                name: name.to_owned(),
                problem,
            }),
        }
    }

    /// Read a tenant's file, `None` if the tenant has no directory.
    pub fn read_tenant(&self, name: &str) -> Result<Option<TenantFile>, GitopsError> {
        Ok(self.read_tenant_with_text(name)?.map(|(file, _)| file))
    }

    /// Read a tenant's file and its text as written (kept byte for byte when re-rendering).
    pub fn read_tenant_with_text(
        &self,
        name: &str,
    ) -> Result<Option<(TenantFile, String)>, GitopsError> {
        Self::check_name(name)?;
        let path = self.tenant_path(name);
        let Some(bytes) = fsutil::read_optional(&path).map_err(|e| GitopsError::io(&path, e))?
        else {
            return Ok(None);
        };
        let text = String::from_utf8(bytes).map_err(|_| GitopsError::Parse {
            path: path.clone(),
            error: not_utf8(),
        })?;
        let file = document::parse_tenant_file(&text).map_err(|error| GitopsError::Parse {
            path: path.clone(),
            error,
        })?;
        if file.metadata.name != name {
            return Err(GitopsError::Invalid {
                path,
                invalid: Invalid {
                    errors: vec![tenantry_core::FieldError::new(
                        "metadata.name",
                        format!(
                            "is {:?} but the directory is {name:?}; they must match",
                            file.metadata.name
                        ),
                    )],
                },
            });
        }
        Ok(Some((file, text)))
    }

    /// Names of every tenant directory holding a `tenant.yaml`, sorted.
    pub fn tenant_names(&self) -> Result<Vec<String>, GitopsError> {
        let dir = self.tenants_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(GitopsError::io(&dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| GitopsError::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if tenantry_core::names::is_dns_label(&name) && entry.path().join(TENANT_FILE).is_file()
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Resolve a tenant file against the platform, errors naming the tenant's file.
    pub fn resolve(&self, file: &TenantFile) -> Result<ResolvedTenant, GitopsError> {
        self.ctx
            .resolve(file)
            .map_err(|invalid| GitopsError::Invalid {
                path: self.tenant_path(&file.metadata.name),
                invalid,
            })
    }

    /// Load and resolve the named tenants (all when `names` is empty), in name order.
    /// Every tenant of the repository is resolved, not only the named ones, so that a
    /// namespace claimed by two tenants is found wherever it is.
    pub fn load_tenants(&self, names: &[String]) -> Result<Vec<LoadedTenant>, GitopsError> {
        let all = self.tenant_names()?;
        for name in names {
            Self::check_name(name)?;
            if !all.contains(name) {
                return Err(GitopsError::NotFound {
                    name: name.clone(),
                    path: self.tenant_path(name),
                });
            }
        }
        let loaded: Vec<LoadedTenant> = all
            .par_iter()
            .map(|name| {
                let (file, text) =
                    self.read_tenant_with_text(name)?
                        .ok_or_else(|| GitopsError::NotFound {
                            name: name.clone(),
                            path: self.tenant_path(name),
                        })?;
                let resolved = self.resolve(&file)?;
                Ok(LoadedTenant {
                    file,
                    text,
                    resolved,
                })
            })
            .collect::<Result<_, GitopsError>>()?;
        if let Some(c) =
            tenantry_core::resolve::namespace_conflicts(loaded.iter().map(|t| &t.resolved))
                .into_iter()
                .next()
        {
            return Err(GitopsError::NamespaceConflict {
                namespace: c.namespace,
                tenants: c.tenants,
            });
        }
        Ok(loaded
            .into_iter()
            .filter(|t| names.is_empty() || names.contains(&t.resolved.name))
            .collect())
    }

    /// Load, resolve and render the named tenants (all when `names` is empty).
    pub fn render_all(&self, names: &[String]) -> Result<Vec<Rendered>, GitopsError> {
        Ok(self
            .load_tenants(names)?
            .par_iter()
            .map(|t| render::render(&self.ctx, &t.resolved))
            .collect())
    }

    /// Check that `tenant`'s namespaces are not claimed by another tenant of the repository.
    ///
    /// Another tenant `x` can only claim namespace `n` if `n` is `x` or starts with `x-`, so
    /// only the `-`-delimited prefixes of the tenant's namespaces need to be looked at: a
    /// cost per onboarding independent of how many tenants the repository holds.
    pub fn check_namespace_ownership(&self, tenant: &ResolvedTenant) -> Result<(), GitopsError> {
        let mut candidates = BTreeSet::new();
        for ns in &tenant.namespaces {
            candidates.insert(ns.clone());
            for (i, _) in ns.match_indices('-') {
                candidates.insert(ns[..i].to_owned());
            }
        }
        candidates.remove(&tenant.name);
        for candidate in candidates {
            if !tenantry_core::names::is_dns_label(&candidate) {
                continue;
            }
            if let Some(other) = self.read_tenant(&candidate)? {
                let other = self.resolve(&other)?;
                if let Some(c) = tenantry_core::resolve::namespace_conflicts([tenant, &other])
                    .into_iter()
                    .next()
                {
                    return Err(GitopsError::NamespaceConflict {
                        namespace: c.namespace,
                        tenants: c.tenants,
                    });
                }
            }
        }
        Ok(())
    }

    /// Everything a tenant directory should contain, with `tenant.yaml` last.
    fn planned_files(&self, rendered: &Rendered, tenant_yaml: String) -> Vec<PlannedFile> {
        let mut files = Vec::with_capacity(rendered.objects.len() + rendered.artifacts.len() + 2);
        let mut resources = Vec::with_capacity(rendered.objects.len());
        for object in &rendered.objects {
            let name = object.file_name();
            files.push(PlannedFile {
                content: yaml::object_file(&rendered.tenant, object),
                name: name.clone(),
            });
            resources.push(name);
        }
        for artifact in &rendered.artifacts {
            files.push(PlannedFile {
                name: artifact.file_name.clone(),
                content: artifact.content.clone(),
            });
        }
        files.push(PlannedFile {
            name: KUSTOMIZATION_FILE.to_owned(),
            content: tenant_kustomization(&rendered.tenant, &resources),
        });
        files.push(PlannedFile {
            name: TENANT_FILE.to_owned(),
            content: tenant_yaml,
        });
        files
    }

    /// Write a rendered (and checked) tenant's directory with `tenant_yaml` as its
    /// declaration: every rendered object and artifact, and its `kustomization.yaml`. Files
    /// rendered before but not now are removed; nothing is written when nothing changed.
    /// Registration is separate ([`Repo::register`]) so that it happens last, and once for
    /// many tenants.
    pub fn write_rendered(
        &self,
        rendered: &Rendered,
        tenant_yaml: String,
    ) -> Result<TenantReport, GitopsError> {
        let planned = self.planned_files(rendered, tenant_yaml);
        self.apply_files(
            &self.tenant_dir(&rendered.tenant),
            &rendered.tenant,
            &planned,
        )
    }

    /// Re-render loaded tenants in parallel, writing only what changed; reports in order.
    pub fn write_loaded(&self, tenants: &[LoadedTenant]) -> Result<Vec<TenantReport>, GitopsError> {
        tenants
            .par_iter()
            .map(|t| self.write_rendered(&render::render(&self.ctx, &t.resolved), t.text.clone()))
            .collect()
    }

    /// The files of loaded tenants that differ from what they render to, without writing.
    pub fn check_loaded(
        &self,
        tenants: &[LoadedTenant],
    ) -> Result<Vec<(PathBuf, FileChange)>, GitopsError> {
        let per_tenant: Vec<Vec<(PathBuf, FileChange)>> = tenants
            .par_iter()
            .map(|t| {
                let rendered = render::render(&self.ctx, &t.resolved);
                let planned = self.planned_files(&rendered, t.text.clone());
                self.differences(&self.tenant_dir(&t.resolved.name), &planned)
            })
            .collect::<Result<_, _>>()?;
        Ok(per_tenant.into_iter().flatten().collect())
    }

    /// What writing `planned` into `dir` would change.
    fn differences(
        &self,
        dir: &Path,
        planned: &[PlannedFile],
    ) -> Result<Vec<(PathBuf, FileChange)>, GitopsError> {
        let (classified, kustomization_same) = self.classify(dir, planned)?;
        let mut changes: Vec<(PathBuf, FileChange)> = classified
            .into_iter()
            .filter_map(|(path, _, change)| change.map(|c| (path, c)))
            .collect();
        for stale in self.stale_files(dir, planned, kustomization_same)? {
            changes.push((dir.join(stale), FileChange::Removed));
        }
        Ok(changes
            .into_iter()
            .map(|(path, change)| (self.relative(&path), change))
            .collect())
    }

    fn relative(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root).unwrap_or(path).to_path_buf()
    }

    /// Compare every planned file with the disk: `None` for an unchanged file, the change a
    /// write would make otherwise. Also says whether the kustomization is unchanged, which
    /// makes reading it again for stale files unnecessary.
    #[allow(clippy::type_complexity)]
    fn classify<'p>(
        &self,
        dir: &Path,
        planned: &'p [PlannedFile],
    ) -> Result<(Vec<(PathBuf, &'p PlannedFile, Option<FileChange>)>, bool), GitopsError> {
        let mut kustomization_same = false;
        let mut out = Vec::with_capacity(planned.len());
        for f in planned {
            let path = dir.join(&f.name);
            let change = match fsutil::compare(&path, f.content.as_bytes())
                .map_err(|e| GitopsError::io(&path, e))?
            {
                fsutil::Comparison::Missing => Some(FileChange::Created),
                fsutil::Comparison::Different => Some(FileChange::Updated),
                fsutil::Comparison::Same => None,
            };
            if f.name == KUSTOMIZATION_FILE {
                kustomization_same = change.is_none();
            }
            out.push((path, f, change));
        }
        Ok((out, kustomization_same))
    }

    /// Files listed in the directory's current kustomization (or known artifacts) that the
    /// new rendering no longer produces. Files Tenantry did not render are never touched.
    fn stale_files(
        &self,
        dir: &Path,
        planned: &[PlannedFile],
        kustomization_same: bool,
    ) -> Result<Vec<String>, GitopsError> {
        let mut previous: BTreeSet<String> = BTreeSet::new();
        // An identical kustomization lists exactly the planned files: nothing listed is stale.
        let path = dir.join(KUSTOMIZATION_FILE);
        if !kustomization_same
            && let Some(bytes) =
                fsutil::read_optional(&path).map_err(|e| GitopsError::io(&path, e))?
        {
            // A kustomization that cannot be read is refused, not taken as empty: the files it
            // listed would never be pruned and `render --check` would stay green.
            let text = String::from_utf8(bytes).map_err(|_| GitopsError::Parse {
                path: path.clone(),
                error: not_utf8(),
            })?;
            let listed: ListedResources = if text.trim().is_empty() {
                ListedResources::default()
            } else {
                document::from_yaml(&text).map_err(|error| GitopsError::Parse {
                    path: path.clone(),
                    error,
                })?
            };
            previous.extend(
                listed
                    .resources
                    .into_iter()
                    .filter(|s| is_rendered_file_name(s)),
            );
        }
        for artifact in [render::OPENBAO_POLICY_FILE, render::OPENBAO_ROLE_FILE] {
            if !planned.iter().any(|f| f.name == artifact) && dir.join(artifact).is_file() {
                previous.insert(artifact.to_owned());
            }
        }
        for f in planned {
            previous.remove(&f.name);
        }
        Ok(previous.into_iter().collect())
    }

    /// Write `planned` into `dir` (a tenant's, or the platform's), reporting under `name`.
    fn apply_files(
        &self,
        dir: &Path,
        name: &str,
        planned: &[PlannedFile],
    ) -> Result<TenantReport, GitopsError> {
        fsutil::check_inside(&self.root, &self.root_canonical, dir)
            .map_err(GitopsError::OutsideRepository)?;
        let mut report = TenantReport {
            tenant: name.to_owned(),
            ..TenantReport::default()
        };
        let (classified, kustomization_same) = self.classify(dir, planned)?;
        let stale = self.stale_files(dir, planned, kustomization_same)?;
        let mut writes = Vec::new();
        for (path, f, change) in classified {
            match change {
                Some(change) => writes.push((path, f, change)),
                None => report.unchanged += 1,
            }
        }
        if (!writes.is_empty() || !stale.is_empty()) && self.write_pending_platform()? {
            report
                .changes
                .push((PathBuf::from(PLATFORM_FILE), FileChange::Created));
        }
        for (path, f, change) in writes {
            fsutil::write_atomic(&path, f.content.as_bytes())
                .map_err(|e| GitopsError::io(&path, e))?;
            report.changes.push((self.relative(&path), change));
        }
        for s in stale {
            let path = dir.join(&s);
            match fs::remove_file(&path) {
                Ok(()) => report
                    .changes
                    .push((self.relative(&path), FileChange::Removed)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(GitopsError::io(&path, e)),
            }
        }
        Ok(report)
    }

    /// `<root>/<tenantsDir>/../platform/<component>`: one platform-wide component's objects,
    /// beside the tenants directory, with a kustomization of their own for the platform's
    /// reconciler (see `tenantry_core::render::platform` for why one directory per component).
    pub fn platform_dir(&self, component: &str) -> PathBuf {
        let tenants = Path::new(&self.ctx.platform.tenants_dir);
        self.root
            .join(tenants.parent().unwrap_or(Path::new("")))
            .join(render::platform::PLATFORM_DIR)
            .join(component)
    }

    /// Each component's directory and everything it should contain: each object and the
    /// kustomization listing them. A component with nothing to render keeps a kustomization
    /// listing nothing once its directory exists, so files it rendered before are pruned and
    /// the platform's reconciler still finds a valid directory; one that never rendered
    /// anything gets no directory at all.
    fn platform_files(&self) -> Vec<(PathBuf, String, Vec<PlannedFile>)> {
        render::platform::render_platform(&self.ctx)
            .into_iter()
            .filter_map(|rendered| {
                let component = rendered.tenant;
                let dir = self.platform_dir(&component);
                if rendered.objects.is_empty() && !dir.exists() {
                    return None;
                }
                let mut files = Vec::with_capacity(rendered.objects.len() + 1);
                let mut text = yaml::platform_header(&component);
                text.push_str("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n");
                text.push_str(if rendered.objects.is_empty() {
                    "resources: []\n"
                } else {
                    "resources:\n"
                });
                for object in &rendered.objects {
                    let name = object.file_name();
                    text.push_str("- ");
                    text.push_str(&name);
                    text.push('\n');
                    files.push(PlannedFile {
                        content: yaml::platform_object_file(&component, object),
                        name,
                    });
                }
                files.push(PlannedFile {
                    name: KUSTOMIZATION_FILE.to_owned(),
                    content: text,
                });
                Some((dir, component, files))
            })
            .collect()
    }

    /// Write the platform-wide components' directories, the same way as a tenant's: only
    /// changed files, atomically, and files rendered before but not now removed. One report
    /// per component written, in apply order.
    pub fn write_platform(&self) -> Result<Vec<TenantReport>, GitopsError> {
        self.platform_files()
            .into_iter()
            .map(|(dir, component, files)| self.apply_files(&dir, &component, &files))
            .collect()
    }

    /// The platform directories' files that differ from what `tenantry.yaml` renders.
    pub fn check_platform(&self) -> Result<Vec<(PathBuf, FileChange)>, GitopsError> {
        let mut changes = Vec::new();
        for (dir, _, files) in self.platform_files() {
            changes.extend(self.differences(&dir, &files)?);
        }
        Ok(changes)
    }

    fn registration_path(&self) -> PathBuf {
        self.tenants_dir().join(KUSTOMIZATION_FILE)
    }

    /// Add `<name>/` entries to the registration file; returns the names that were added.
    /// Call after the tenants' directories are complete, so a registration never points at
    /// a half-written directory.
    pub fn register(&self, names: &[&str]) -> Result<Vec<String>, GitopsError> {
        let path = self.registration_path();
        let existing = match fsutil::read_optional(&path).map_err(|e| GitopsError::io(&path, e))? {
            None => None,
            Some(bytes) => Some(String::from_utf8(bytes).map_err(|_| GitopsError::Parse {
                path: path.clone(),
                error: not_utf8(),
            })?),
        };
        let entries: Vec<String> = names.iter().map(|n| registry::entry_for(n)).collect();
        let (text, added) = registry::add_many(existing.as_deref(), &entries).map_err(|e| {
            GitopsError::Registry {
                path: path.clone(),
                message: e.0,
            }
        })?;
        if let Some(text) = text {
            self.write_pending_platform()?;
            fsutil::write_atomic(&path, text.as_bytes()).map_err(|e| GitopsError::io(&path, e))?;
        }
        Ok(added
            .into_iter()
            .map(|e| e.trim_end_matches('/').to_owned())
            .collect())
    }

    /// Remove a tenant's directory and registration. Returns what was removed (the
    /// directory, the registration), so a re-run after an interruption finishes the job.
    pub fn remove_tenant(&self, name: &str) -> Result<(bool, bool), GitopsError> {
        Self::check_name(name)?;
        let reg = self.registration_path();
        let unregistered =
            match fsutil::read_optional(&reg).map_err(|e| GitopsError::io(&reg, e))? {
                None => false,
                Some(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    match registry::remove(&text, &registry::entry_for(name)).map_err(|e| {
                        GitopsError::Registry {
                            path: reg.clone(),
                            message: e.0,
                        }
                    })? {
                        Some(new_text) => {
                            // Unregister first: a registration never points at a missing directory.
                            fsutil::write_atomic(&reg, new_text.as_bytes())
                                .map_err(|e| GitopsError::io(&reg, e))?;
                            true
                        }
                        None => false,
                    }
                }
            };
        let dir = self.tenant_dir(name);
        let removed_dir = match fs::symlink_metadata(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(GitopsError::io(&dir, e)),
            Ok(meta) if meta.file_type().is_symlink() => {
                fs::remove_file(&dir).map_err(|e| GitopsError::io(&dir, e))?;
                true
            }
            Ok(_) => {
                fsutil::check_inside(&self.root, &self.root_canonical, &dir)
                    .map_err(GitopsError::OutsideRepository)?;
                fs::remove_dir_all(&dir).map_err(|e| GitopsError::io(&dir, e))?;
                true
            }
        };
        Ok((removed_dir, unregistered))
    }
}

fn not_utf8() -> DocumentError {
    DocumentError::whole_file("is not UTF-8 text")
}

/// The part of a tenant's `kustomization.yaml` that says which files it holds; other fields
/// (people add patches, labels, comments) are left alone.
#[derive(Debug, Default, serde::Deserialize)]
struct ListedResources {
    #[serde(default)]
    resources: Vec<String>,
}

/// Names Tenantry gives rendered objects: `<kind>.<…>.yaml`, no directories.
fn is_rendered_file_name(name: &str) -> bool {
    fsutil::is_plain_relative(Path::new(name))
        && !name.contains('/')
        && name.ends_with(".yaml")
        && name != TENANT_FILE
        && name != KUSTOMIZATION_FILE
        && name.matches('.').count() >= 2
}

/// The kustomization inside a tenant directory: the rendered objects in apply order.
/// `tenant.yaml` is not listed: it is the source, applied as a Tenant object only where the
/// Tenant CRD is installed (the operator's job), not by every GitOps reconciler.
fn tenant_kustomization(tenant: &str, resources: &[String]) -> String {
    let mut text = yaml::header(tenant);
    text.push_str("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n");
    for r in resources {
        text.push_str("- ");
        text.push_str(r);
        text.push('\n');
    }
    text
}

/// `tenant.yaml` as Tenantry writes it.
pub fn tenant_file_text(file: &TenantFile) -> String {
    format!(
        "# Tenant {name}. Edit this file, then run `tenantry render --write` (or\n\
         # `tenantry onboard {name} --gitops-only`) to update the rendered files beside it.\n{}",
        document::to_yaml(file),
        name = file.metadata.name,
    )
}

fn default_platform_file(platform: &Platform) -> String {
    format!(
        "# Tenantry platform configuration: defaults for every tenant in {dir}/.\n\
         # Created with Tenantry's built-in defaults; review delivery, pullSecret, openbao and\n\
         # gateway for this platform. Tenants override `defaults` field by field.\n{}",
        document::to_yaml(platform),
        dir = platform.tenants_dir,
    )
}
