//! File writes that are never seen half-done, and paths that never leave the repository.

use std::{
    fs,
    io::{self, Write},
    path::{Component, Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Write `content` to `path` through a temporary file in the same directory and a rename,
/// so a reader (Git, Flux, an editor) sees the old file or the new one, never a torn one.
pub(crate) fn write_atomic(path: &Path, content: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{file_name}.tenantry-{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(content)?;
        f.flush()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Read a file, `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// True when `relative` is a plain relative path: no root, no `..`.
pub(crate) fn is_plain_relative(relative: &Path) -> bool {
    relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Refuse a path whose existing part resolves (through symlinks) outside `root`.
pub(crate) fn check_inside(root: &Path, path: &Path) -> Result<(), PathBuf> {
    let Ok(root) = root.canonicalize() else {
        return Ok(());
    };
    // Walk up to the nearest existing ancestor and resolve it.
    let mut probe = path.to_path_buf();
    loop {
        if let Ok(resolved) = probe.canonicalize() {
            return if resolved.starts_with(&root) {
                Ok(())
            } else {
                Err(path.to_path_buf())
            };
        }
        if !probe.pop() {
            return Ok(());
        }
    }
}
