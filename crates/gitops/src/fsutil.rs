//! File writes that are never seen half-done, and paths that never leave the repository.

use std::{
    fs,
    io::{self, Write},
    path::{Component, Path, PathBuf},
};

/// Write `content` to `path` through a temporary file in the same directory, synced to disk,
/// then renamed over it, so a reader (Git, Flux, an editor) sees the old file or the new one,
/// never a torn or empty one, even after a crash. The file is readable by all (0644, as Git
/// checks files out): these are the files a platform repository commits, not secrets.
pub(crate) fn write_atomic(path: &Path, content: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{file_name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tenantry.tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o644));
    }
    // The temporary file is removed if anything below fails.
    let mut file = builder.tempfile_in(dir)?;
    file.write_all(content)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
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

/// Refuse a path under `root` whose existing part resolves, through a symlink, outside the
/// repository. `root_canonical` is `root` resolved once by the caller.
///
/// Only the components below `root` are inspected, with one `lstat` each; a path is resolved
/// (the expensive part) only when one of them is a symlink, so a repository-wide pass over
/// thousands of tenants costs two `lstat`s per tenant.
pub(crate) fn check_inside(root: &Path, root_canonical: &Path, path: &Path) -> Result<(), PathBuf> {
    let Ok(relative) = path.strip_prefix(root) else {
        return Err(path.to_path_buf());
    };
    let mut probe = root.to_path_buf();
    for component in relative.components() {
        probe.push(component);
        match fs::symlink_metadata(&probe) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return match probe.canonicalize() {
                    Ok(resolved) if resolved.starts_with(root_canonical) => Ok(()),
                    // A dangling link would be created wherever it points.
                    _ => Err(path.to_path_buf()),
                };
            }
            Ok(_) => {}
            // Nothing exists from here on: it will be created inside the repository.
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// How a file on disk compares with the bytes it should hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Comparison {
    /// No such file.
    Missing,
    /// Byte for byte the same.
    Same,
    /// Present with other content.
    Different,
}

/// Compare a file with `expected` without a size lookup: read at most one byte more than
/// expected, so a longer file is caught without reading it whole.
pub(crate) fn compare(path: &Path, expected: &[u8]) -> io::Result<Comparison> {
    use std::io::Read;
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Comparison::Missing),
        Err(e) => return Err(e),
    };
    let mut actual = Vec::with_capacity(expected.len() + 1);
    file.take(expected.len() as u64 + 1)
        .read_to_end(&mut actual)?;
    Ok(if actual == expected {
        Comparison::Same
    } else {
        Comparison::Different
    })
}

#[cfg(test)]
mod write_tests {
    use super::*;

    #[test]
    fn a_replaced_file_has_the_new_bytes_mode_0644_and_no_temporary_file_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenants/shop/namespace.shop.yaml");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644);
        }
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["namespace.shop.yaml"]);
    }
}
