//! The nodes: one tor process of the network (`Node`, `Kind`, its fingerprint file) and an onion
//! service of the onion-service node (`OnionService`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use super::control::{self, Control};
use super::error::{err, Error, Result};
use super::launch::make_private_dir;
use crate::support::process;

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Authority,
    /// A relay; the first one is the relay under test.
    Relay,
    OnionService,
    Client,
}

/// One tor process of the network.
pub struct Node {
    pub name: String,
    pub kind: Kind,
    /// DataDirectory (mode 0700).
    pub dir: PathBuf,
    pub torrc: PathBuf,
    /// `ControlSocket` path (a unix socket; usable from outside the namespace).
    pub control_socket: PathBuf,
    /// The control cookie (`<dir>/control_auth_cookie`, 32 bytes; never print its content).
    pub cookie_file: PathBuf,
    pub or_port: Option<u16>,
    pub dir_port: Option<u16>,
    pub(super) child: Option<Child>,
}

impl Node {
    /// A new authenticated control connection (10 s timeouts).
    pub fn control(&self) -> Result<Control> {
        Control::connect(
            &self.control_socket,
            &self.cookie_file,
            Duration::from_secs(10),
        )
        .map_err(err(&format!("control connection to {}", self.name)))
    }

    /// One `GETINFO key` on a fresh connection.
    pub fn getinfo(&self, key: &str) -> Result<String> {
        self.control()?
            .getinfo(key)
            .map_err(err(&format!("{}: GETINFO {key}", self.name)))
    }

    /// `PROGRESS=` of `status/bootstrap-phase`.
    pub fn bootstrap_progress(&self) -> Result<u8> {
        let phase = self.getinfo("status/bootstrap-phase")?;
        control::bootstrap_progress(&phase)
            .ok_or_else(|| Error(format!("{}: no PROGRESS in bootstrap phase", self.name)))
    }

    /// PID of the tor process while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends a signal (see `process::SIG*`) to the tor process.
    pub fn signal(&self, sig: i32) -> Result<()> {
        let pid = self
            .pid()
            .ok_or_else(|| Error(format!("{} is not running", self.name)))?;
        process::send_signal(pid, sig).map_err(err(&format!("signal {sig} to {}", self.name)))
    }

    /// tor's notice-level log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("notice.log")
    }

    /// tor's `fingerprint` file (`<nickname> <40 hex>`), for relays and authorities.
    pub fn fingerprint_file(&self) -> PathBuf {
        self.dir.join("fingerprint")
    }

    /// The 40-hex-digit identity fingerprint from the `fingerprint` file.
    pub fn fingerprint(&self) -> Result<String> {
        let text = fs::read_to_string(self.fingerprint_file())
            .map_err(err(&format!("{}: read fingerprint file", self.name)))?;
        parse_fingerprint_file(&text)
            .ok_or_else(|| Error(format!("{}: malformed fingerprint file", self.name)))
    }

    pub(super) fn stop_begin(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = process::send_signal(c.id(), process::SIGTERM);
                // A tor a test has SIGSTOPped acts on SIGTERM only once continued.
                let _ = process::send_signal(c.id(), process::SIGCONT);
            }
        }
    }

    pub(super) fn stop_finish(&mut self, deadline: Instant) {
        if let Some(mut c) = self.child.take() {
            let grace = deadline.saturating_duration_since(Instant::now());
            if process::wait_exit(&mut c, grace).is_none() {
                eprintln!("privnet: {} ignored SIGTERM, sending SIGKILL", self.name);
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn parse_fingerprint_file(text: &str) -> Option<String> {
    let fpr = text.split_whitespace().nth(1)?;
    (fpr.len() == 40 && fpr.bytes().all(|b| b.is_ascii_hexdigit())).then(|| fpr.to_string())
}

/// An onion service of the onion-service node.
#[derive(Debug, Clone)]
pub struct OnionService {
    pub role: String,
    /// The address: 56 base32 characters, without ".onion" (read from the `hostname` file).
    pub onion: String,
    /// HiddenServiceDir.
    pub dir: PathBuf,
    pub virt_port: u16,
    /// The loopback port (inside the namespace) the service forwards to: bind it with
    /// `PrivNet::bind_service`.
    pub target_port: u16,
    /// The unix socket the service forwards to instead, when asked for (`ServiceSpec::unix_target`).
    pub unix_target: Option<PathBuf>,
    pub client_auth: bool,
    /// Per-service torrc lines (see [`ServiceSpec::extra_torrc`]).
    pub extra_torrc: Vec<String>,
}

impl OnionService {
    /// `<onion56>.onion`
    pub fn hostname(&self) -> String {
        format!("{}.onion", self.onion)
    }
}

pub(super) fn new_node(root: &Path, name: &str, kind: Kind) -> Result<Node> {
    let dir = root.join(name);
    make_private_dir(&dir)?;
    Ok(Node {
        name: name.to_string(),
        kind,
        torrc: root.join(format!("{name}.torrc")),
        control_socket: dir.join("control"),
        cookie_file: dir.join("control_auth_cookie"),
        dir,
        or_port: None,
        dir_port: None,
        child: None,
    })
}
