//! The one way the setup changes files: every change journaled before it is made, every file
//! written beside its final name, synced, given its owner and mode on the descriptor and renamed
//! into place, the version it replaces kept as a hard link until the run commits. So a rollback
//! is a rename too (it needs no disk space), and a run cut off at any point (kill -9, power loss)
//! is rolled back by the next one ([`Tx::recover`]).
//!
//! Folders are trusted only as their owner allows: root writes in a folder only root can change
//! (a real folder owned by root, not writable by its group or others), and in tor's onion
//! folders (owned by `debian-tor`, which can put anything there) only through the open folder
//! ([`super::dir`]), never following a name that account could have planted.
//!
//! [`Faults`] is the seam the tests use to cut a run off, fill the disk, or swap a file for a
//! link or a FIFO before any single change; on a server it is [`NoFaults`].

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::accounts::Accounts;
use super::dir::{Dir, Kind};
use super::journal::{self, Entry};
use super::paths::{self, Root};

/// The kinds of change, for [`Faults`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A line of the journal, or the journal's removal.
    Journal,
    /// A new (temp) file or a hard link made.
    Create,
    /// The content of a new file.
    Write,
    /// A rename into place (or back, on rollback).
    Rename,
    Remove,
    MakeDir,
}

/// Called before every change the setup makes, with the path it is about to change.
pub trait Faults {
    fn before(&mut self, op: Op, path: &Path) -> io::Result<()>;
}

/// A server's run: nothing injected.
pub struct NoFaults;
impl Faults for NoFaults {
    fn before(&mut self, _: Op, _: &Path) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TxError {
    #[error("{dir} can be changed by other accounts than root: refusing to use it.")]
    NotRootOnly { dir: String },
    #[error("{0} is a symbolic link: refusing to use it (tor's onion folders must be folders owned by debian-tor).")]
    TorDirLink(String),
    #[error("{0} is not a folder.")]
    NotDir(String),
    #[error("{0} is not owned by debian-tor: refusing to use it.")]
    TorDirOwner(String),
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("cannot {what} {path} ({why})")]
    Change {
        what: &'static str,
        path: String,
        why: String,
    },
}

/// What the run before this one left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovered {
    /// Nothing: it finished.
    Nothing,
    /// It was cut off and what it changed is put back.
    RolledBack,
    /// It was cut off after committing: its backups are deleted.
    Finished,
}

/// Why an I/O error happened, in the words an admin needs.
fn why(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => "disk full?".to_owned(),
        _ => e.to_string(),
    }
}

fn change<'p>(what: &'static str, path: &'p str) -> impl FnOnce(io::Error) -> TxError + 'p {
    move |e| TxError::Change {
        what,
        path: path.to_owned(),
        why: why(&e),
    }
}

/// A run's changes.
pub struct Tx<'a> {
    root: &'a Root,
    acc: Accounts,
    faults: &'a mut dyn Faults,
    /// This run's entries (the journal's, since it began).
    entries: Vec<Entry>,
    /// Paths this run backed up or created already (each is undone once, to its first state).
    seen: Vec<String>,
    begun: bool,
    tmp_n: u32,
}

impl<'a> Tx<'a> {
    pub fn new(root: &'a Root, acc: Accounts, faults: &'a mut dyn Faults) -> Tx<'a> {
        Tx {
            root,
            acc,
            faults,
            entries: Vec::new(),
            seen: Vec::new(),
            begun: false,
            tmp_n: 0,
        }
    }

    pub fn root(&self) -> &Root {
        self.root
    }

    pub fn accounts(&self) -> Accounts {
        self.acc
    }

    /// Has this run changed anything (not committed yet)?
    pub fn changed(&self) -> bool {
        self.entries.iter().any(|e| !matches!(e, Entry::Begin(_)))
    }

    fn fault(&mut self, op: Op, abs: &str) -> io::Result<()> {
        let p = self.root.at(abs);
        self.faults.before(op, &p)
    }

    /// Opens the folder `abs` and checks who can change it: root alone, or, for tor's onion
    /// folders, tor's account.
    pub fn folder(&self, abs: &str) -> Result<Dir, TxError> {
        let tor = abs == paths::HS_DIR || abs == paths::CLIENTS_DIR;
        let p = self.root.at(abs);
        // said by name before the open (which refuses a link anyway, as "not a folder")
        if p.symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(if tor {
                TxError::TorDirLink(abs.to_owned())
            } else {
                TxError::NotRootOnly {
                    dir: abs.to_owned(),
                }
            });
        }
        let d = match Dir::open(&p) {
            Ok(d) => d,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) && tor => {
                return Err(TxError::TorDirLink(abs.to_owned()))
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(TxError::NotRootOnly {
                    dir: abs.to_owned(),
                })
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(TxError::NotDir(abs.to_owned()))
            }
            Err(source) => {
                return Err(TxError::Open {
                    path: abs.to_owned(),
                    source,
                })
            }
        };
        let st = d.stat().map_err(|source| TxError::Open {
            path: abs.to_owned(),
            source,
        })?;
        if tor {
            if st.uid != self.acc.tor_uid {
                return Err(TxError::TorDirOwner(abs.to_owned()));
            }
        } else if st.uid != self.acc.admin || st.mode & 0o022 != 0 {
            return Err(TxError::NotRootOnly {
                dir: abs.to_owned(),
            });
        }
        Ok(d)
    }

    /// The bytes of the file `abs` (at most `cap`), opened as [`Dir::open_file`] does; `None`
    /// where there is none.
    pub fn read(&self, abs: &str, cap: u64) -> Result<Option<Vec<u8>>, TxError> {
        let (d, n) = paths::split(abs);
        self.folder(d)?
            .read(n, cap)
            .map_err(|source| TxError::Read {
                path: abs.to_owned(),
                source,
            })
    }

    fn journal_dir(&self) -> Result<Dir, TxError> {
        self.folder(paths::split(paths::JOURNAL).0)
    }

    fn append(&mut self, e: Entry) -> Result<(), TxError> {
        self.fault(Op::Journal, paths::JOURNAL)
            .map_err(change("write the journal", paths::JOURNAL))?;
        let d = self.journal_dir()?;
        let name = paths::split(paths::JOURNAL).1;
        let p = d.path().join(name);
        let write = || -> io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&p)?;
            f.write_all(e.line().as_bytes())?;
            f.sync_all()?;
            d.sync()
        };
        write().map_err(change("write the journal", paths::JOURNAL))?;
        self.entries.push(e);
        Ok(())
    }

    fn begin(&mut self) -> Result<(), TxError> {
        if !self.begun {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            self.append(Entry::Begin(now))?;
            self.begun = true;
        }
        Ok(())
    }

    /// Before the first change of `abs` in this run: journal how to undo it, and keep the
    /// present version as a hard link.
    fn backup_once(&mut self, d: &Dir, abs: &str, digest: &str) -> Result<(), TxError> {
        if self.seen.iter().any(|s| s == abs) {
            return Ok(());
        }
        self.begin()?;
        let (_, n) = paths::split(abs);
        let present = d
            .stat_at(n)
            .map_err(|source| TxError::Read {
                path: abs.to_owned(),
                source,
            })?
            .is_some();
        if present {
            self.append(Entry::Replaced(abs.to_owned(), digest.to_owned()))?;
            let orig = paths::orig_name(n);
            self.fault(Op::Create, &format!("{}/{orig}", paths::split(abs).0))
                .and_then(|()| d.unlink(&orig).map(drop))
                .and_then(|()| d.link(n, &orig))
                .map_err(change("back up", abs))?;
        } else {
            self.append(Entry::Created(abs.to_owned(), digest.to_owned()))?;
        }
        self.seen.push(abs.to_owned());
        Ok(())
    }

    /// The file `abs` holds exactly `content`, owned by `uid:gid` with `mode`. Returns whether it
    /// changed. Written beside, synced, renamed in; on any error the old file stays.
    pub fn put(
        &mut self,
        abs: &str,
        content: &[u8],
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> Result<bool, TxError> {
        let (dir, n) = paths::split(abs);
        let d = self.folder(dir)?;
        if let Ok(Some((f, st))) = d.open_file(n) {
            let same = st.uid == uid && st.gid == gid && st.mode == mode && {
                use std::io::Read as _;
                let mut old = Vec::new();
                f.take(content.len() as u64 + 1)
                    .read_to_end(&mut old)
                    .is_ok_and(|_| old == content)
            };
            if same {
                return Ok(false);
            }
        }
        self.begin()?;
        self.tmp_n += 1;
        let tmp = format!(
            ".{n}.{}.{}{}",
            paths::TMP_TAG,
            std::process::id(),
            self.tmp_n
        );
        let tmp_abs = format!("{dir}/{tmp}");
        let mut f = self
            .fault(Op::Create, &tmp_abs)
            .and_then(|()| d.create(&tmp, 0o600))
            .map_err(change("write", abs))?;
        // Written through the descriptor of the file made above: a name swapped meanwhile
        // changes nothing of what is written, and the check after the rename sees the swap.
        let written = (|| -> io::Result<()> {
            self.fault(Op::Write, &tmp_abs)?;
            f.write_all(content)?;
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
            use std::os::unix::fs::PermissionsExt as _;
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
            f.sync_all()
        })();
        drop(f);
        if let Err(e) = written {
            let _ = self
                .fault(Op::Remove, &tmp_abs)
                .and_then(|()| d.unlink(&tmp));
            return Err(change("write", abs)(e));
        }
        let placed = self
            .backup_once(&d, abs, &journal::digest(content))
            .and_then(|()| {
                self.fault(Op::Rename, abs)
                    .and_then(|()| d.rename(&tmp, n))
                    .and_then(|()| d.sync())
                    .map_err(change("replace", abs))
            });
        if let Err(e) = placed {
            let _ = self
                .fault(Op::Remove, &tmp_abs)
                .and_then(|()| d.unlink(&tmp));
            return Err(e);
        }
        Ok(true)
    }

    /// `abs` goes (undone on rollback). Returns whether there was one.
    pub fn remove(&mut self, abs: &str) -> Result<bool, TxError> {
        let (dir, n) = paths::split(abs);
        let d = match self.folder(dir) {
            Ok(d) => d,
            Err(TxError::Open { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(false)
            }
            Err(e) => return Err(e),
        };
        match d.stat_at(n) {
            Ok(None) => return Ok(false),
            Ok(Some(_)) => {}
            Err(source) => {
                return Err(TxError::Read {
                    path: abs.to_owned(),
                    source,
                })
            }
        }
        self.backup_once(&d, abs, journal::GONE)?;
        self.fault(Op::Remove, abs)
            .and_then(|()| d.unlink(n).map(drop))
            .and_then(|()| d.sync())
            .map_err(change("remove", abs))?;
        Ok(true)
    }

    /// The folder `abs` exists, owned by `uid:gid` with `mode` where this run makes it. Returns
    /// whether it was made.
    pub fn make_dir(&mut self, abs: &str, uid: u32, gid: u32, mode: u32) -> Result<bool, TxError> {
        let (parent, n) = paths::split(abs);
        let p = self.root.at(parent);
        let d = Dir::open(&p).map_err(|source| TxError::Open {
            path: parent.to_owned(),
            source,
        })?;
        if d.stat_at(n).ok().flatten().is_some() {
            return Ok(false);
        }
        self.begin()?;
        self.append(Entry::MadeDir(abs.to_owned()))?;
        self.seen.push(abs.to_owned());
        self.fault(Op::MakeDir, abs)
            .and_then(|()| d.make_dir(n, uid, gid, mode))
            .map_err(change("create", abs))?;
        Ok(true)
    }

    /// The folder `abs` exists; made with `uid:gid` and `mode` where missing. Not journaled:
    /// the package's own folders stay once made (purge deletes them).
    pub fn make_plain_dir(
        &mut self,
        abs: &str,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> Result<(), TxError> {
        let (parent, n) = paths::split(abs);
        let d = Dir::open(&self.root.at(parent)).map_err(|source| TxError::Open {
            path: parent.to_owned(),
            source,
        })?;
        if d.stat_at(n).ok().flatten().is_some() {
            return Ok(());
        }
        self.fault(Op::MakeDir, abs)
            .and_then(|()| d.make_dir(n, uid, gid, mode))
            .map_err(change("create", abs))
    }

    /// Puts back what `entries` changed, last first; a step that finds nothing to undo (its
    /// change never happened) is skipped.
    fn undo(&mut self, entries: &[Entry]) -> Result<(), TxError> {
        let mut first_err = None;
        for e in entries.iter().rev() {
            let r = match e {
                Entry::Replaced(abs, dig) => self.undo_replaced(abs, dig),
                Entry::Created(abs, dig) => self.undo_created(abs, dig),
                Entry::MadeDir(abs) => self.undo_made_dir(abs),
                Entry::Begin(_) | Entry::Commit => Ok(()),
            };
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Is `n` in `d` still what the run made of it (content of digest `dig`, or gone)?
    fn still_ours(d: &Dir, n: &str, dig: &str) -> bool {
        match d.read(n, 1 << 20) {
            Ok(None) => dig == journal::GONE,
            Ok(Some(b)) => dig != journal::GONE && journal::digest(&b) == dig,
            Err(_) => false,
        }
    }

    fn undo_replaced(&mut self, abs: &str, dig: &str) -> Result<(), TxError> {
        let (dir, n) = paths::split(abs);
        let d = self.folder(dir)?;
        let orig = paths::orig_name(n);
        if d.stat_at(&orig).ok().flatten().is_none() {
            return Ok(());
        }
        if !Self::still_ours(&d, n, dig) {
            // changed since (an admin's edit after a crash): it stays, the backup goes
            return self
                .fault(Op::Remove, abs)
                .and_then(|()| d.unlink(&orig).map(drop))
                .map_err(change("remove", abs));
        }
        self.fault(Op::Rename, abs)
            .and_then(|()| d.rename(&orig, n))
            .and_then(|()| d.sync())
            .map_err(change("put back", abs))
    }

    fn undo_created(&mut self, abs: &str, dig: &str) -> Result<(), TxError> {
        let (dir, n) = paths::split(abs);
        let d = match self.folder(dir) {
            Ok(d) => d,
            Err(TxError::Open { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        let planted = d
            .stat_at(n)
            .ok()
            .flatten()
            .is_some_and(|s| s.kind != Kind::File);
        if !planted && !Self::still_ours(&d, n, dig) {
            return Ok(());
        }
        self.fault(Op::Remove, abs)
            .and_then(|()| d.unlink(n).map(drop))
            .and_then(|()| d.sync())
            .map_err(change("remove", abs))
    }

    fn undo_made_dir(&mut self, abs: &str) -> Result<(), TxError> {
        let (parent, n) = paths::split(abs);
        let Ok(d) = Dir::open(&self.root.at(parent)) else {
            return Ok(());
        };
        if d.stat_at(n).ok().flatten().map(|s| s.kind) != Some(Kind::Dir) {
            return Ok(());
        }
        self.fault(Op::Remove, abs).map_err(change("remove", abs))?;
        // tor may have written its keys there meanwhile: a folder that is not empty stays
        match d.rmdir(n) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => Ok(()),
            Err(e) => Err(change("remove", abs)(e)),
        }
    }

    fn delete_backups(&mut self, entries: &[Entry]) -> Result<(), TxError> {
        for e in entries {
            if let Entry::Replaced(abs, _) = e {
                let (dir, n) = paths::split(abs);
                let d = self.folder(dir)?;
                let orig = paths::orig_name(n);
                self.fault(Op::Remove, &format!("{dir}/{orig}"))
                    .and_then(|()| d.unlink(&orig).map(drop))
                    .map_err(change("remove", &format!("{dir}/{orig}")))?;
            }
        }
        Ok(())
    }

    fn remove_journal(&mut self) -> Result<(), TxError> {
        self.fault(Op::Journal, paths::JOURNAL)
            .map_err(change("remove", paths::JOURNAL))?;
        let d = self.journal_dir()?;
        d.unlink(paths::split(paths::JOURNAL).1)
            .and_then(|_| d.sync())
            .map_err(change("remove", paths::JOURNAL))?;
        self.entries.clear();
        self.seen.clear();
        self.begun = false;
        Ok(())
    }

    /// Puts back everything this run changed. The journal stays where a step fails, so the
    /// next run tries again.
    pub fn rollback(&mut self) -> Result<(), TxError> {
        if !self.begun {
            return Ok(());
        }
        let entries = std::mem::take(&mut self.entries);
        if let Err(e) = self.undo(&entries) {
            self.entries = entries;
            return Err(e);
        }
        self.remove_journal()
    }

    /// What this run wrote stays: the backups go, then the journal.
    pub fn commit(&mut self) -> Result<(), TxError> {
        if !self.begun {
            return Ok(());
        }
        self.append(Entry::Commit)?;
        let entries = self.entries.clone();
        self.delete_backups(&entries)?;
        self.remove_journal()
    }

    /// At the start of a run: what a run cut off before left is put back (or, if it had
    /// committed, its backups deleted).
    pub fn recover(&mut self) -> Result<Recovered, TxError> {
        let text = match self.read(paths::JOURNAL, 1 << 20)? {
            None => return Ok(Recovered::Nothing),
            Some(b) => String::from_utf8_lossy(&b).into_owned(),
        };
        let entries = journal::parse(&text);
        self.begun = true;
        if entries.contains(&Entry::Commit) {
            self.delete_backups(&entries)?;
            self.remove_journal()?;
            return Ok(Recovered::Finished);
        }
        self.undo(&entries)?;
        self.remove_journal()?;
        Ok(Recovered::RolledBack)
    }

    /// Deletes the temp files and backups a cut-off run of this or an earlier version left in
    /// `dir` (each is a whole old or new version, never the file in use). Call after
    /// [`Tx::recover`], which needs the backups.
    pub fn clean_leftovers(&mut self, dir: &str) -> Result<(), TxError> {
        let Ok(d) = self.folder(dir) else {
            return Ok(());
        };
        for n in d.names().unwrap_or_default() {
            if !paths::is_leftover(&n) {
                continue;
            }
            if d.stat_at(&n).ok().flatten().map(|s| s.kind) == Some(Kind::Dir) {
                continue;
            }
            let abs = format!("{dir}/{n}");
            self.fault(Op::Remove, &abs)
                .and_then(|()| d.unlink(&n).map(drop))
                .map_err(change("remove", &abs))?;
        }
        Ok(())
    }

    /// The path `abs` under the root (for messages and for the tools that need a path).
    pub fn real(&self, abs: &str) -> PathBuf {
        self.root.at(abs)
    }
}
