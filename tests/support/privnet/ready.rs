//! Readiness: waiting until the network is ready (recording `Timings`), polling GETINFO on
//! cached connections, and the diagnostics of an attempt that failed.

use std::fs;
use std::time::{Duration, Instant};

use super::control::{self, Control};
use super::error::{wait_for, Error, Result, POLL};
use super::events::EventLog;
use super::node::Node;
use super::options::Options;
use super::{PrivNet, KEEP_ENV, N_AUTH, N_RELAY};

const HSFETCH_RETRY: Duration = Duration::from_secs(5);

/// How long the last (successful) attempt took to reach each milestone, from launching the tors.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    /// Which attempt succeeded (1 or 2).
    pub attempt: u32,
    /// Authority key generation (before launch).
    pub keygen: Duration,
    /// An authority has a consensus listing all 6 relays (3 authorities + 3 relays).
    pub consensus: Option<Duration>,
    /// The onion-service node reached bootstrap 100.
    pub onion_bootstrapped: Option<Duration>,
    /// Every node reached bootstrap 100.
    pub all_bootstrapped: Option<Duration>,
    /// First `HS_DESC UPLOADED` of any service.
    pub first_upload: Option<Duration>,
    /// Every service had an `HS_DESC UPLOADED`.
    pub all_uploaded: Option<Duration>,
    /// The client had `HS_DESC RECEIVED` for every service without client auth.
    pub descriptors_fetched: Option<Duration>,
    /// The whole readiness wait.
    pub ready: Duration,
}

/// Warnings every node of a private network logs; left out of diagnostics.
const HARMLESS_WARNINGS: &[&str] = &[
    "running Tor as root",
    "used DirAuthority or AlternateDirAuthority",
    "TestingTorNetwork is set",
    "V3AuthVotingInterval is very low",
    "Your log may contain sensitive information",
    "sr-state",
    "Your ContactInfo config option is not set",
];

impl PrivNet {
    /// Polls until ready or the attempt's deadline; records timings.
    pub(super) fn wait_ready(&mut self, opts: &Options) -> Result<()> {
        let deadline = self.launched + opts.ready_timeout;
        let t0 = self.launched;

        // Subscribe to HS_DESC on the onion node and the client as early as possible: the first
        // uploads come right after bootstrap and we must not miss them.
        let onion = self.onion_node();
        let c = control::connect_until(&onion.control_socket, &onion.cookie_file, deadline)
            .map_err(Error)?;
        let log = EventLog::new(t0);
        log.attach(c, &["HS_DESC"])?;
        self.onion_events = Some(log);
        let client = self.client();
        let c = control::connect_until(&client.control_socket, &client.cookie_file, deadline)
            .map_err(Error)?;
        let log = EventLog::new(t0);
        log.attach(c, &["HS_DESC"])?;
        self.client_events = Some(log);

        // Onion addresses: tor writes `hostname` right after start.
        for i in 0..self.services.len() {
            let path = self.services[i].dir.join("hostname");
            let onion = wait_for(
                &format!("{}", path.display()),
                deadline.saturating_duration_since(Instant::now()),
                || {
                    let text = fs::read_to_string(&path).map_err(|e| e.to_string())?;
                    let host = text.trim();
                    let onion = host
                        .strip_suffix(".onion")
                        .ok_or_else(|| "no .onion suffix".to_string())?;
                    if onion.len() == 56 {
                        Ok(onion.to_string())
                    } else {
                        Err("hostname is not a v3 address".into())
                    }
                },
            )?;
            self.services[i].onion = onion;
        }

        let mut controls: Vec<Option<Control>> = (0..self.nodes.len()).map(|_| None).collect();
        let mut progress = vec![0u8; self.nodes.len()];
        let mut last_hsfetch: Vec<Option<Instant>> = vec![None; self.services.len()];
        let onion_idx = N_AUTH + N_RELAY;
        let client_idx = onion_idx + 1;
        let mut circuit = false;
        loop {
            // A tor that exited is a failure of this attempt, at once.
            for n in self.nodes.iter_mut() {
                if !n.is_running() {
                    return Err(Error(format!("{} exited during start-up", n.name)));
                }
            }
            for i in 0..self.nodes.len() {
                if progress[i] == 100 {
                    continue;
                }
                if let Some(p) =
                    poll_getinfo(&self.nodes[i], &mut controls[i], "status/bootstrap-phase")
                        .and_then(|v| control::bootstrap_progress(&v))
                {
                    progress[i] = p;
                }
            }
            if self.timings.consensus.is_none() {
                if let Some(all) = poll_getinfo(&self.nodes[0], &mut controls[0], "ns/all") {
                    if all.lines().filter(|l| l.starts_with("r ")).count() >= N_AUTH + N_RELAY {
                        self.timings.consensus = Some(t0.elapsed());
                    }
                }
            }
            if progress[onion_idx] == 100 && self.timings.onion_bootstrapped.is_none() {
                self.timings.onion_bootstrapped = Some(t0.elapsed());
            }
            if progress.iter().all(|&p| p == 100) && self.timings.all_bootstrapped.is_none() {
                self.timings.all_bootstrapped = Some(t0.elapsed());
            }
            if !circuit && progress[onion_idx] == 100 {
                circuit = poll_getinfo(
                    &self.nodes[onion_idx],
                    &mut controls[onion_idx],
                    "status/circuit-established",
                )
                .is_some_and(|v| v == "1");
            }
            let events = self.onion_events.as_ref().expect("event log");
            let uploads: Vec<Option<Duration>> = self
                .services
                .iter()
                .map(|s| {
                    events
                        .first_hs_desc_times("UPLOADED", &s.onion)
                        .first()
                        .copied()
                })
                .collect();
            if self.timings.first_upload.is_none() {
                self.timings.first_upload = uploads.iter().flatten().min().copied();
            }
            if self.timings.all_uploaded.is_none() && uploads.iter().all(Option::is_some) {
                self.timings.all_uploaded = uploads.iter().flatten().max().copied();
            }

            // The client fetches each published descriptor (retrying every few seconds).
            let client_events = self.client_events.as_ref().expect("event log");
            let mut all_fetched = true;
            for (i, s) in self.services.iter().enumerate() {
                if s.client_auth {
                    continue;
                }
                if client_events.hs_desc_count("RECEIVED", &s.onion) > 0 {
                    continue;
                }
                all_fetched = false;
                if uploads[i].is_some()
                    && progress[client_idx] == 100
                    && last_hsfetch[i].map_or(true, |t| t.elapsed() >= HSFETCH_RETRY)
                {
                    last_hsfetch[i] = Some(Instant::now());
                    let client = &self.nodes[client_idx];
                    if controls[client_idx].is_none() {
                        controls[client_idx] = client.control().ok();
                    }
                    if let Some(c) = controls[client_idx].as_mut() {
                        if c.command_ok(&format!("HSFETCH {}", s.onion)).is_err() {
                            controls[client_idx] = None;
                        }
                    }
                }
            }
            if all_fetched && self.timings.descriptors_fetched.is_none() {
                self.timings.descriptors_fetched = Some(t0.elapsed());
            }

            let ready = progress.iter().all(|&p| p == 100)
                && circuit
                && self.timings.consensus.is_some()
                && self.timings.all_uploaded.is_some()
                && all_fetched;
            if ready {
                self.timings.ready = t0.elapsed();
                return Ok(());
            }
            if Instant::now() >= deadline {
                let names: Vec<String> = self
                    .nodes
                    .iter()
                    .zip(&progress)
                    .map(|(n, p)| format!("{}={p}", n.name))
                    .collect();
                let unpublished: Vec<&str> = self
                    .services
                    .iter()
                    .zip(&uploads)
                    .filter(|(_, u)| u.is_none())
                    .map(|(s, _)| s.role.as_str())
                    .collect();
                return Err(Error(format!(
                    "network not ready after {:?}: bootstrap [{}], circuit established {circuit}, \
                     consensus {:?}, services without upload {unpublished:?}, all fetched {all_fetched}",
                    opts.ready_timeout,
                    names.join(" "),
                    self.timings.consensus,
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Per node: running or not, last bootstrap phase, and the last warnings of its log.
    pub fn diagnostics(&mut self) -> String {
        let mut out = String::from("privnet diagnostics:\n");
        for n in self.nodes.iter_mut() {
            let running = n.is_running();
            let phase = if running {
                n.getinfo("status/bootstrap-phase").unwrap_or_else(|e| e.0)
            } else {
                "not running".into()
            };
            out.push_str(&format!("  {} ({:?}): {phase}\n", n.name, n.kind));
            // notice.log, plus stdout.log for what tor said before it opened its log file.
            let mut tail: Vec<String> = Vec::new();
            for f in [n.dir.join("stdout.log"), n.log_file()] {
                if let Ok(text) = fs::read_to_string(&f) {
                    tail.extend(
                        text.lines()
                            .filter(|l| l.contains("[warn]") || l.contains("[err]"))
                            .filter(|l| !HARMLESS_WARNINGS.iter().any(|h| l.contains(h)))
                            .map(String::from),
                    );
                }
            }
            tail.dedup();
            let skip = tail.len().saturating_sub(8);
            for l in &tail[skip..] {
                out.push_str(&format!("      {l}\n"));
            }
            // The rendezvous story of the onion node and the client (info level).
            if let Ok(text) = fs::read_to_string(n.dir.join("rend.log")) {
                let lines: Vec<&str> = text.lines().collect();
                let skip = lines.len().saturating_sub(12);
                if !lines.is_empty() {
                    out.push_str("      rend.log:\n");
                }
                for l in &lines[skip..] {
                    out.push_str(&format!("        {l}\n"));
                }
            }
        }
        if std::env::var(KEEP_ENV).is_ok_and(|v| v == "1") {
            out.push_str(&format!(
                "  files in {} are kept ({KEEP_ENV}=1)\n",
                self.root_path.display()
            ));
        } else {
            out.push_str(&format!(
                "  files in {} are removed (set {KEEP_ENV}=1 to keep them)\n",
                self.root_path.display()
            ));
        }
        out
    }
}

/// A GETINFO on a cached connection; reconnects next time after an error.
fn poll_getinfo(node: &Node, slot: &mut Option<Control>, key: &str) -> Option<String> {
    if slot.is_none() {
        *slot = Control::connect(
            &node.control_socket,
            &node.cookie_file,
            Duration::from_secs(5),
        )
        .ok();
    }
    let c = slot.as_mut()?;
    match c.getinfo(key) {
        Ok(v) => Some(v),
        Err(e) => {
            // A 552/551 answer keeps the connection; an I/O error drops it.
            if e.kind() != std::io::ErrorKind::Other {
                *slot = None;
            }
            None
        }
    }
}
