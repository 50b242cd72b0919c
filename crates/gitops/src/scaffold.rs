//! Writing scaffolded files into a tenant's own `deploy/` tree (`tenantry secrets scaffold`).
//!
//! The tenant's repository is not the platform's: nothing here is Tenantry's to re-render or
//! prune later, so a file that exists with other bytes is the tenant's edit and is never
//! overwritten. Every file is checked before the first write, so a refusal leaves the tree
//! as it was; an identical file is left alone, so a re-run is a no-op Git cannot see. The
//! files are written as the platform repository's are (temp file, then rename), and added to
//! the directory's `kustomization.yaml` by the same line-preserving edit that registers
//! tenants, so the tenant's comments and other fields survive.

use std::{
    io,
    path::{Path, PathBuf},
};

use tenantry_core::render::scaffold::ScaffoldFile;

use crate::{FileChange, GitopsError, KUSTOMIZATION_FILE, fsutil, not_utf8, registry};

/// What writing a scaffold did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScaffoldReport {
    /// Files created (the scaffold's, then the kustomization when it was updated), as paths
    /// under the deploy directory given.
    pub changes: Vec<(PathBuf, FileChange)>,
    /// Files that already had these bytes.
    pub unchanged: usize,
    /// Whether `kustomization.yaml` was absent, so nothing was listed in it.
    pub no_kustomization: bool,
}

/// Write `files` into `dir` (created if missing), refusing before any write when one exists
/// with different content, then list them in `dir/kustomization.yaml` when there is one.
pub fn write_scaffold(dir: &Path, files: &[ScaffoldFile]) -> Result<ScaffoldReport, GitopsError> {
    let mut report = ScaffoldReport::default();
    let mut writes = Vec::new();
    for f in files {
        let path = dir.join(&f.file_name);
        match fsutil::read_optional(&path).map_err(|e| GitopsError::io(&path, e))? {
            Some(bytes) if bytes == f.content.as_bytes() => report.unchanged += 1,
            Some(_) => {
                return Err(GitopsError::io(
                    &path,
                    io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "exists with other content; refusing to overwrite it (move it away, or choose another NAME)",
                    ),
                ));
            }
            None => writes.push((path, f)),
        }
    }
    let kustomization = dir.join(KUSTOMIZATION_FILE);
    let listed = match fsutil::read_optional(&kustomization)
        .map_err(|e| GitopsError::io(&kustomization, e))?
    {
        None => None,
        Some(bytes) => {
            let text = String::from_utf8(bytes).map_err(|_| GitopsError::Parse {
                path: kustomization.clone(),
                error: not_utf8(),
            })?;
            let entries: Vec<String> = files.iter().map(|f| f.file_name.clone()).collect();
            // Edited (and proven) before anything is written, so a kustomization that
            // cannot be edited safely stops the command with the tree untouched.
            let (new_text, _) =
                registry::add_many(Some(&text), &entries).map_err(|e| GitopsError::Registry {
                    path: kustomization.clone(),
                    message: e.0,
                })?;
            Some(new_text)
        }
    };
    for (path, f) in writes {
        fsutil::write_atomic(&path, f.content.as_bytes()).map_err(|e| GitopsError::io(&path, e))?;
        report
            .changes
            .push((PathBuf::from(&f.file_name), FileChange::Created));
    }
    match listed {
        None => report.no_kustomization = true,
        Some(None) => {}
        Some(Some(text)) => {
            fsutil::write_atomic(&kustomization, text.as_bytes())
                .map_err(|e| GitopsError::io(&kustomization, e))?;
            report
                .changes
                .push((PathBuf::from(KUSTOMIZATION_FILE), FileChange::Updated));
        }
    }
    Ok(report)
}
