//! The I/O around [`super::policy`]: read the exporter's `/health` over loopback, check whether
//! dpkg runs, keep the state file, call systemctl.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::policy::{decide, Decision, Policy, State};
use crate::health::{parse_report, ReportError, Reported};

/// Where the package keeps the state (the unit's `StateDirectory=`); the exporter reads it for
/// `tor_exporter_recovery_actions_total`.
pub const STATE_FILE: &str = "/var/lib/securedrop-tor-exporter-recover/state";
/// dpkg's locks: held while dpkg or apt installs anything (an upgrade may restart tor itself).
const DPKG_LOCKS: &[&str] = &["/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"];
/// The most of `/health` that is read (a report is a few hundred bytes).
const MAX_REPORT_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone)]
pub struct Options {
    /// The exporter's listen address (`web.listen_address`).
    pub exporter: SocketAddr,
    pub state_file: PathBuf,
    /// The unit systemctl reloads or restarts.
    pub unit: String,
    pub systemctl: PathBuf,
    pub policy: Policy,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("cannot read the exporter's judgements from http://{addr}/health: {reason}")]
    Exporter { addr: SocketAddr, reason: String },
    #[error("the exporter's /health answer: {0}")]
    Report(#[from] ReportError),
    #[error("cannot write the state file {path}: {source}")]
    StateFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`systemctl {verb} {unit}` did not succeed ({status})")]
    Systemctl {
        verb: &'static str,
        unit: String,
        status: String,
    },
}

/// One run: read, decide, act, remember. Returns the decision; the line to log is printed by
/// the caller (to standard error, which systemd sends to the journal, and on to OSSEC).
pub fn run_once(
    o: &Options,
    now_unix: u64,
    say: &mut dyn FnMut(&str),
) -> Result<Decision, RecoverError> {
    let report = fetch_report(o.exporter, o.timeout)?;
    let state = match std::fs::read_to_string(&o.state_file) {
        Ok(text) => State::parse(&text).unwrap_or_else(|| {
            say("recovery: the state file was not readable as written; starting afresh");
            State::default()
        }),
        Err(_) => State::default(),
    };
    let (decision, next, line) = decide(&o.policy, &report, &state, now_unix, dpkg_busy());
    // Remember before acting: a run killed during a restart must not forget that it restarted.
    if next != state {
        write_state(&o.state_file, &next)?;
    }
    if let Some(line) = &line {
        say(line);
    }
    let verb = match decision {
        Decision::Reload => "reload",
        Decision::Restart => "restart",
        _ => return Ok(decision),
    };
    let status = Command::new(&o.systemctl)
        .args([verb, o.unit.as_str()])
        .status()
        .map_err(|e| RecoverError::Systemctl {
            verb,
            unit: o.unit.clone(),
            status: e.to_string(),
        })?;
    if !status.success() {
        return Err(RecoverError::Systemctl {
            verb,
            unit: o.unit.clone(),
            status: status.to_string(),
        });
    }
    Ok(decision)
}

/// `GET /health` over loopback with a deadline; HTTP/1.0, so the body ends with the connection.
fn fetch_report(addr: SocketAddr, timeout: Duration) -> Result<Vec<Reported>, RecoverError> {
    let fail = |reason: String| RecoverError::Exporter { addr, reason };
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| fail(e.to_string()))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|()| s.set_write_timeout(Some(timeout)))
        .and_then(|()| s.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n"))
        .map_err(|e| fail(e.to_string()))?;
    let mut raw = Vec::new();
    s.take(MAX_REPORT_BYTES)
        .read_to_end(&mut raw)
        .map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8(raw).map_err(|_| fail("not UTF-8".into()))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| fail("no HTTP response".into()))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split(' ').nth(1) != Some("200") {
        return Err(fail(format!("answered `{status}`")));
    }
    Ok(parse_report(body)?)
}

/// Whether dpkg holds one of its locks (an install or upgrade runs). Asked with `F_GETLK`, which
/// takes no lock and needs no write access.
fn dpkg_busy() -> bool {
    DPKG_LOCKS.iter().any(|p| lock_held(Path::new(p)))
}

fn lock_held(path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    // SAFETY: a zeroed flock is a valid argument; fcntl only reads and writes it.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: F_GETLK with a valid descriptor and a pointer to a flock.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut lock) };
    r == 0 && lock.l_type != libc::F_UNLCK as libc::c_short
}

/// Beside, fsync, rename: a crash leaves the old state or the new one. 0644: the exporter (a
/// dynamic user) reads it for its counters; nothing in it is secret.
fn write_state(path: &Path, state: &State) -> Result<(), RecoverError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| RecoverError::StateFile {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(state.to_text().as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_nobody_holds_is_free_and_a_held_one_is_seen() {
        let d = crate::temp_dir::tempdir().unwrap();
        let p = d.path().join("lock");
        std::fs::write(&p, "").unwrap();
        assert!(!lock_held(&p));
        assert!(!lock_held(&d.path().join("missing")));
        // held by another process (fcntl locks are per process: F_GETLK ignores our own), the
        // way dpkg holds it; the child says when it holds it
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import fcntl, sys; f = open(sys.argv[1], 'w'); fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
                p.to_str().unwrap(),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line, "locked\n");
        let held = lock_held(&p);
        drop(child.stdin.take());
        let _ = child.wait();
        assert!(held, "a lock held by another process was not seen");
        assert!(!lock_held(&p), "released");
    }
}
