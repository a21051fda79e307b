//! A folder opened once, without following a link, and every file operation in it done relative
//! to that open folder (`openat`, `renameat`, `linkat`, `unlinkat`, `fstatat`).
//!
//! The setup runs as root but works in two folders that tor's account owns (the onion service's
//! folder and its `authorized_clients/`), where that account can swap any name for a symlink or a
//! FIFO at any moment. Through a path, root would follow the link; through the folder's descriptor
//! with `O_NOFOLLOW` on the last (and only) component, a planted link is refused, a FIFO is
//! opened without blocking and refused as not a regular file, and the folder itself cannot be
//! swapped after it was checked. std has no `*at` calls, hence the few `unsafe` calls below, each
//! on a descriptor this type owns and a name checked to be one path component.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read as _};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};

/// What `fstat`/`fstatat` says of a file, without following a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub kind: Kind,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (with set-id and sticky).
    pub mode: u32,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Socket,
    /// A FIFO, a device.
    Other,
}

impl Stat {
    fn from_raw(st: &libc::stat) -> Stat {
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFSOCK => Kind::Socket,
            _ => Kind::Other,
        };
        Stat {
            kind,
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
            size: st.st_size as u64,
        }
    }
}

/// An open folder.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// `name` as a C string of one path component: no `/`, not `.` or `..`, not empty.
fn component(name: &str) -> io::Result<CString> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a file name: {name:?}"),
        ));
    }
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a name"))
}

fn cpath(p: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt as _;
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Dir {
    /// Opens the folder at `path`; a symlink (as the last component) or anything else than a
    /// folder is refused.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let c = cpath(path)?;
        // SAFETY: `c` is a valid NUL-terminated string; the returned descriptor is owned below.
        let fd = check(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: `fd` was just opened and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder's own owner and mode.
    pub fn stat(&self) -> io::Result<Stat> {
        // SAFETY: zeroed `stat` is a valid out-parameter; the descriptor is ours.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        check(unsafe { libc::fstat(self.fd.as_raw_fd(), &mut st) })?;
        Ok(Stat::from_raw(&st))
    }

    /// `name` in this folder, not following a link; `None` where there is none.
    pub fn stat_at(&self, name: &str) -> io::Result<Option<Stat>> {
        let c = component(name)?;
        // SAFETY: as in `stat`, with a valid name.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        match check(r) {
            Ok(_) => Ok(Some(Stat::from_raw(&st))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens `name` for reading without following a link or blocking on a FIFO; `None` where
    /// there is none. Anything else than a regular file is an error.
    pub fn open_file(&self, name: &str) -> io::Result<Option<(File, Stat)>> {
        let c = component(name)?;
        // SAFETY: valid name, our descriptor; the result is owned below.
        let r = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        let fd = match check(r) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(io::Error::other("it is a symbolic link"))
            }
            Err(e) => return Err(e),
        };
        // SAFETY: just opened.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        check(unsafe { libc::fstat(file.as_raw_fd(), &mut st) })?;
        let st = Stat::from_raw(&st);
        if st.kind != Kind::File {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(Some((file, st)))
    }

    /// The bytes of `name` (a regular file of at most `cap` bytes), as [`Dir::open_file`] opens it.
    pub fn read(&self, name: &str, cap: u64) -> io::Result<Option<Vec<u8>>> {
        let Some((f, _)) = self.open_file(name)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        f.take(cap + 1).read_to_end(&mut out)?;
        if out.len() as u64 > cap {
            return Err(io::Error::other(format!("larger than {cap} bytes")));
        }
        Ok(Some(out))
    }

    /// Creates `name`, which must not exist (a planted link or file makes this fail), mode
    /// `mode` before anything is written.
    pub fn create(&self, name: &str, mode: u32) -> io::Result<File> {
        let c = component(name)?;
        // SAFETY: valid name, our descriptor; the result is owned below.
        let fd = check(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        })?;
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Renames `from` over `to`, both in this folder (atomic: `to` is the old or the new file).
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (a, b) = (component(from)?, component(to)?);
        let fd = self.fd.as_raw_fd();
        // SAFETY: valid names, our descriptor.
        check(unsafe { libc::renameat(fd, a.as_ptr(), fd, b.as_ptr()) }).map(drop)
    }

    /// A second name `to` for the file `from` (a link is linked as itself, never followed).
    pub fn link(&self, from: &str, to: &str) -> io::Result<()> {
        let (a, b) = (component(from)?, component(to)?);
        let fd = self.fd.as_raw_fd();
        // SAFETY: valid names, our descriptor; flags 0: a symlink is not followed.
        check(unsafe { libc::linkat(fd, a.as_ptr(), fd, b.as_ptr(), 0) }).map(drop)
    }

    /// Removes the file (or link, socket, FIFO) `name`; `false` where there was none.
    pub fn unlink(&self, name: &str) -> io::Result<bool> {
        let c = component(name)?;
        // SAFETY: valid name, our descriptor.
        match check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) }) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes the empty folder `name`; `false` where there was none.
    pub fn rmdir(&self, name: &str) -> io::Result<bool> {
        let c = component(name)?;
        // SAFETY: valid name, our descriptor.
        match check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) })
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Makes the folder `name` with `mode` (the umask may narrow it: callers set it after).
    pub fn mkdir(&self, name: &str, mode: u32) -> io::Result<()> {
        let c = component(name)?;
        // SAFETY: valid name, our descriptor.
        check(unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), mode as libc::mode_t) })
            .map(drop)
    }

    /// Makes the folder `name` (0700 until it has its owner), gives it `uid:gid` and `mode`
    /// through its own descriptor, and syncs this folder.
    pub fn make_dir(&self, name: &str, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
        self.mkdir(name, 0o700)?;
        self.open_dir(name)?.set_owner_mode(uid, gid, mode)?;
        self.sync()
    }

    /// Opens the folder `name` inside this one, as [`Dir::open`] does.
    pub fn open_dir(&self, name: &str) -> io::Result<Dir> {
        let c = component(name)?;
        // SAFETY: valid name, our descriptor; the result is owned below.
        let fd = check(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        })?;
        Ok(Dir {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: self.path.join(name),
        })
    }

    /// Sets the folder's own mode and owner (on the descriptor).
    pub fn set_owner_mode(&self, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
        let f = self.fd.try_clone()?;
        let f = File::from(f);
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(mode))
    }

    /// Makes the folder's entries (renames, new and removed names) survive a crash.
    pub fn sync(&self) -> io::Result<()> {
        // SAFETY: our descriptor.
        check(unsafe { libc::fsync(self.fd.as_raw_fd()) }).map(drop)
    }

    /// The names in this folder (read through its path: a listing only proposes names, each is
    /// then opened through the descriptor).
    pub fn names(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.path)? {
            if let Some(n) = e?.file_name().to_str() {
                out.push(n.to_owned());
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_fifos_are_refused_not_followed() {
        let t = crate::temp_dir::tempdir().unwrap();
        std::fs::write(t.path().join("secret"), "root only").unwrap();
        std::os::unix::fs::symlink("secret", t.path().join("link")).unwrap();
        let fifo = CString::new(t.path().join("fifo").to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let d = Dir::open(t.path()).unwrap();
        assert!(d.read("link", 100).is_err());
        assert!(d.read("fifo", 100).is_err(), "a FIFO is refused at once");
        assert!(d.create("link", 0o600).is_err(), "never written through");
        assert_eq!(d.stat_at("link").unwrap().unwrap().kind, Kind::Symlink);
        assert_eq!(
            std::fs::read_to_string(t.path().join("secret")).unwrap(),
            "root only"
        );
        assert!(Dir::open(&t.path().join("link")).is_err());
        assert!(d.rename("../x", "y").is_err());
    }
}
