//! Throwaway folders and files for tests, removed when dropped.
//!
//! The tests only ever need "a fresh private folder under the temp dir": a name no other process
//! holds, mode 0700, gone afterwards. That is a few lines over `std`, so the crate does not pull
//! `tempfile` (and with it `rustix`, `linux-raw-sys`, `fastrand` and a second `getrandom`) into
//! its dependency tree for it. The names follow `tempfile`'s API so a test reads the same.
//!
//! One copy: the integration tests reach it as `support::temp_dir` (or by `#[path]`), the
//! library's unit tests by `#[path]` from `src/lib.rs`.

#![allow(dead_code)]

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A folder removed (with its contents) on drop, unless [`TempDir::keep`] was called.
#[derive(Debug)]
pub struct TempDir {
    path: Option<PathBuf>,
}

impl TempDir {
    pub fn path(&self) -> &Path {
        self.path.as_deref().expect("a kept TempDir has no path")
    }

    /// Leaves the folder in place (for a person to look at) and returns its path.
    pub fn keep(mut self) -> PathBuf {
        self.path.take().expect("kept twice")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// A file removed on drop; writes go to the open handle.
#[derive(Debug)]
pub struct NamedTempFile {
    file: File,
    path: PathBuf,
}

impl NamedTempFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl io::Write for NamedTempFile {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.file.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for NamedTempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A fresh folder under the system's temp dir.
pub fn tempdir() -> io::Result<TempDir> {
    Builder::new().tempdir()
}

/// Name parts and where; `tempfile::Builder`'s names.
#[derive(Debug, Default)]
pub struct Builder {
    prefix: String,
    suffix: String,
}

impl Builder {
    pub fn new() -> Builder {
        Builder {
            prefix: ".tmp".to_owned(),
            suffix: String::new(),
        }
    }

    pub fn prefix(&mut self, prefix: &str) -> &mut Builder {
        prefix.clone_into(&mut self.prefix);
        self
    }

    pub fn suffix(&mut self, suffix: &str) -> &mut Builder {
        suffix.clone_into(&mut self.suffix);
        self
    }

    pub fn tempdir(&self) -> io::Result<TempDir> {
        self.tempdir_in(std::env::temp_dir())
    }

    pub fn tempdir_in(&self, parent: impl AsRef<Path>) -> io::Result<TempDir> {
        self.create(parent.as_ref(), |p| DirBuilder::new().mode(0o700).create(p))
            .map(|path| TempDir { path: Some(path) })
    }

    pub fn tempfile(&self) -> io::Result<NamedTempFile> {
        let mut file = None;
        let path = self.create(&std::env::temp_dir(), |p| {
            file = Some(
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(p)?,
            );
            Ok(())
        })?;
        Ok(NamedTempFile {
            file: file.expect("created"),
            path,
        })
    }

    /// Tries names until `make` creates one that did not exist (bounded: 100 tries).
    fn create(
        &self,
        parent: &Path,
        mut make: impl FnMut(&Path) -> io::Result<()>,
    ) -> io::Result<PathBuf> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut last = None;
        for _ in 0..100 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = format!(
                "{}{}-{}-{:08x}{}",
                self.prefix,
                std::process::id(),
                n,
                nanos,
                self.suffix
            );
            let path = parent.join(name);
            match make(&path) {
                Ok(()) => return Ok(path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free temp name")))
    }
}
