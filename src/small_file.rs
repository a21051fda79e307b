//! Reading the small local files the exporter needs (control cookie, password, configuration),
//! none of which may stall or bloat it.
//!
//! The exporter runs one thread. A FIFO named as a cookie or config file would block that
//! thread forever on `open` or `read` (scrapes time out, SIGTERM is never handled), and
//! `/dev/zero` as a password file would be read until memory runs out. So every such file is
//! opened with `O_NONBLOCK` (which makes `open` of a FIFO return at once), must be a regular file
//! (checked on the open descriptor, so a swap between check and read changes nothing), and is
//! read only up to a cap.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum SmallFileError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a regular file (a FIFO, device or folder is refused)")]
    NotRegular,
    #[error("larger than {0} bytes")]
    TooLarge(u64),
}

/// Opens `path` without blocking and checks it is a regular file of at most `cap` bytes.
pub fn open_regular(path: &Path, cap: u64) -> Result<File, SmallFileError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let md = f.metadata()?;
    if !md.file_type().is_file() {
        return Err(SmallFileError::NotRegular);
    }
    if md.len() > cap {
        return Err(SmallFileError::TooLarge(cap));
    }
    Ok(f)
}

/// The whole content of a regular file of at most `cap` bytes, in memory that is wiped on drop
/// (cookies and passwords are secrets).
pub fn read_secret(path: &Path, cap: u64) -> Result<Zeroizing<Vec<u8>>, SmallFileError> {
    let f = open_regular(path, cap)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(64));
    // `take` also bounds a file that grows after the size check.
    f.take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(SmallFileError::TooLarge(cap));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_fifo_is_refused_at_once() {
        let d = crate::temp_dir::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let started = Instant::now();
        assert!(matches!(
            read_secret(&fifo, 32),
            Err(SmallFileError::NotRegular)
        ));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn devices_folders_and_big_files_are_refused() {
        assert!(matches!(
            read_secret(Path::new("/dev/zero"), 1024),
            Err(SmallFileError::NotRegular)
        ));
        let d = crate::temp_dir::tempdir().unwrap();
        assert!(matches!(
            read_secret(d.path(), 1024),
            Err(SmallFileError::NotRegular)
        ));
        let big = d.path().join("big");
        std::fs::write(&big, vec![b'x'; 2000]).unwrap();
        assert!(matches!(
            read_secret(&big, 1024),
            Err(SmallFileError::TooLarge(1024))
        ));
        let small = d.path().join("small");
        std::fs::write(&small, b"secret").unwrap();
        assert_eq!(&read_secret(&small, 1024).unwrap()[..], b"secret");
    }
}
