//! The `systemd-generator` command's I/O: the drop-in of [`super::socket_unit`] written into the
//! generator folder systemd passes, or nothing.
//!
//! systemd runs generators early at boot and on every daemon-reload, and a generator that fails
//! only leaves systemd without its output: so a configuration that does not load is not an
//! error here (the socket keeps the unit file's default address, and the exporter itself will
//! say what is wrong when it starts); only a drop-in that cannot be written is.

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use super::socket_unit;

#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes the drop-in for `listen` under `normal_dir` (which systemd made, empty) and returns
/// its path; for the default address writes nothing and returns `None`. A drop-in that cannot be
/// written whole is removed again, so systemd never reads half of one.
pub fn write(normal_dir: &Path, listen: SocketAddr) -> Result<Option<PathBuf>, GeneratorError> {
    let Some(text) = socket_unit::dropin(listen) else {
        return Ok(None);
    };
    let path = socket_unit::dropin_path(normal_dir);
    let result = (|| {
        let dir = path.parent().expect("the drop-in is in a folder");
        // Only the unit's folder: the generator folder itself is systemd's to make.
        match std::fs::DirBuilder::new().mode(0o755).create(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&path)?;
        f.write_all(text.as_bytes())
    })();
    result.map_err(|source| {
        let _ = std::fs::remove_file(&path);
        GeneratorError::Write {
            path: path.clone(),
            source,
        }
    })?;
    Ok(Some(path))
}

/// The command: `listen` is `web.listen_address` as the configuration loaded, or why it did
/// not load (then one line on standard error, nothing written, and still success).
pub fn run(normal_dir: &Path, listen: Result<SocketAddr, String>) -> Result<(), GeneratorError> {
    match listen {
        Ok(addr) => write(normal_dir, addr).map(|_| ()),
        Err(why) => {
            eprintln!("{}", socket_unit::unloadable_line(&why));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_dropin_or_nothing() {
        let d = crate::temp_dir::tempdir().unwrap();
        assert_eq!(
            write(d.path(), socket_unit::default_address()).unwrap(),
            None
        );
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);

        let addr: SocketAddr = "127.0.0.1:9748".parse().unwrap();
        let path = write(d.path(), addr).unwrap().unwrap();
        assert_eq!(path, socket_unit::dropin_path(d.path()));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            socket_unit::dropin(addr).unwrap()
        );
        // Again (a second run into the same folder) is the same file.
        write(d.path(), addr).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            socket_unit::dropin(addr).unwrap()
        );
    }

    #[test]
    fn a_missing_generator_folder_is_an_error_naming_the_file() {
        let d = crate::temp_dir::tempdir().unwrap();
        let e = write(&d.path().join("absent"), "127.0.0.1:9748".parse().unwrap()).unwrap_err();
        assert!(e.to_string().contains("50-listen-address.conf"), "{e}");
    }
}
