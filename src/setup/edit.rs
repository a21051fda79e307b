//! Editing a file tor reads, so that tor only ever sees the old or the new file, whole: the new
//! text goes to a temporary file beside the real file (a symlinked torrc is followed to its
//! target, and the link stays), with the target's mode and owner, is synced, then renamed over it.
//! A disk that fills up, or any other failed write, leaves the file as it was.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a regular file: refusing to edit it")]
    NotRegular { path: PathBuf },
    #[error("cannot write {path}: {source}; it is unchanged")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Reads `path`, hands its bytes to `change`, and writes what `change` returns in place of the
/// file, atomically. `change` returns `None` to leave the file alone. Returns whether the file
/// changed. Refuses anything that is not a regular file (after following symlinks).
pub fn edit(path: &Path, change: impl FnOnce(&[u8]) -> Option<Vec<u8>>) -> Result<bool, EditError> {
    let (real, meta, old) = read_regular(path)?;
    let Some(new) = change(&old) else {
        return Ok(false);
    };
    replace(&real, &new, &meta).map_err(|source| EditError::Write {
        path: path.into(),
        source,
    })?;
    Ok(true)
}

/// What [`edit`] would write in place of `path`, without writing it: the text as `change`
/// leaves it, or as it is where `change` returns `None`. The same refusals as [`edit`], so that
/// a caller that writes the file itself (the package's postinst, with its rollback) reads it the
/// same way.
pub fn preview(
    path: &Path,
    change: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) -> Result<Vec<u8>, EditError> {
    let (_, _, old) = read_regular(path)?;
    Ok(change(&old).unwrap_or(old))
}

/// `path`'s target (symlinks followed), its metadata and its bytes; an error unless it is a
/// regular file.
fn read_regular(path: &Path) -> Result<(PathBuf, fs::Metadata, Vec<u8>), EditError> {
    let read_err = |source| EditError::Read {
        path: path.into(),
        source,
    };
    let real = fs::canonicalize(path).map_err(read_err)?;
    let meta = fs::metadata(&real).map_err(read_err)?;
    if !meta.is_file() {
        return Err(EditError::NotRegular { path: path.into() });
    }
    let old = fs::read(&real).map_err(read_err)?;
    Ok((real, meta, old))
}

/// Writes `content` to a new file beside `real` and renames it over `real`; on failure the
/// temporary file is removed and `real` is untouched.
fn replace(real: &Path, content: &[u8], meta: &fs::Metadata) -> std::io::Result<()> {
    let dir = real.parent().unwrap_or(Path::new("/"));
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (tmp, mut file) = create_beside(dir, &name)?;
    let written = (|| {
        file.write_all(content)?;
        std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()))?;
        // after fchown, which may clear set-id bits
        file.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, real)?;
        // the rename itself survives a crash once the folder is synced
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// A new file `.NAME.sdte-PID-N` in `dir`, created exclusively (never an existing file or a
/// planted symlink), readable by root alone until it gets the target's mode.
fn create_beside(dir: &Path, name: &str) -> std::io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut last = None;
    for n in 0..100 {
        let tmp = dir.join(format!(".{name}.sdte-{pid}-{n}"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}
