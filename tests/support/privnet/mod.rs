//! A private Tor network on loopback for integration tests (see docs/privnet.md).
//!
//! 3 directory authorities (keys made with `tor-gencert` for every run), 3 relays (one of them the
//! "relay under test", with a nickname, AccountingMax and a control socket), one onion-service
//! node (control socket with cookie auth, 2+ onion services from its torrc) and one client
//! (SocksPort on 127.0.0.1). Every tor runs inside one network namespace with only loopback, is
//! started with `--defaults-torrc /dev/null` and `__OwningControllerProcess <our pid>`, and every
//! `DirAuthority` line points at 127.0.0.1: nothing can reach the public Tor network.
//!
//! ```ignore
//! mod support;
//! use support::privnet;
//! let net = privnet::PrivNet::start().expect("private tor network");
//! let onion = net.onion_node();            // control_socket, cookie_file
//! let listener = net.bind_service("metrics").unwrap(); // 127.0.0.1:<target> inside the netns
//! ```
//!
//! Readiness (`start`) means: every node at bootstrap 100, the onion node's
//! `status/circuit-established` 1, at least one `HS_DESC UPLOADED` for every service, and the
//! client has fetched every descriptor (`HSFETCH` → `HS_DESC RECEIVED`; services with client
//! authorization are exempt). It polls with a deadline (180 s by default) and restarts the whole
//! network once before giving up. Dropping the `PrivNet` (also while unwinding from a panic) stops
//! every tor (SIGTERM, then SIGKILL after 10 s) and the namespace holder.

pub mod control;
pub mod counting_proxy;
pub mod netns;
pub mod ns_process;
pub mod socks;
pub mod static_server;

#[allow(unused_imports)]
pub use crate::support::http::{FetchError, Response};
#[allow(unused_imports)]
pub use control::{Control, Reply};
#[allow(unused_imports)]
pub use netns::NetNs;
#[allow(unused_imports)]
pub use static_server::StaticServer;

use std::fmt;
use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::{http, poll, process};

/// Environment variable: set to 1 to keep the network's temp dir when a start fails or the test
/// panics (its path is printed). Without it the dir is always removed.
pub const KEEP_ENV: &str = "PRIVNET_KEEP_DIRS";
/// Environment variable: readiness deadline per attempt, in seconds (default 180).
pub const TIMEOUT_ENV: &str = "PRIVNET_READY_TIMEOUT";

const POLL: Duration = Duration::from_millis(250);
const STOP_GRACE: Duration = Duration::from_secs(10);
const HSFETCH_RETRY: Duration = Duration::from_secs(5);

/// The harness's error: a message (never containing a cookie or key).
#[derive(Debug, Clone)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Error(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Error(s.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Error>;

fn err<E: fmt::Display>(context: &str) -> impl FnOnce(E) -> Error + '_ {
    move |e| Error(format!("{context}: {e}"))
}

/// Polls `check` every 250 ms until it returns `Ok`, or fails after `timeout` with `what` and the
/// last `Err` message. The way to wait for anything on the network: never sleep instead.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    check: impl FnMut() -> std::result::Result<T, String>,
) -> Result<T> {
    poll::wait_for(what, timeout, POLL, check).map_err(|e| Error(e.to_string()))
}

/// One onion service of the onion-service node.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Role name, also the HiddenServiceDir's name (e.g. "source", "metrics").
    pub role: String,
    /// The virtual port (HiddenServicePort VIRT 127.0.0.1:TARGET). Default 80.
    pub virt_port: u16,
    /// If set, a `descriptor:x25519:<PUB52>` line written to `authorized_clients/test.auth`
    /// before tor starts (v3 client authorization).
    pub authorized_client: Option<String>,
    /// Extra torrc lines for this service, written right after its `HiddenServicePort` (per-service
    /// options such as `HiddenServicePoWDefensesEnabled 1`).
    pub extra_torrc: Vec<String>,
}

impl ServiceSpec {
    pub fn new(role: &str) -> ServiceSpec {
        ServiceSpec {
            role: role.to_string(),
            virt_port: 80,
            authorized_client: None,
            extra_torrc: Vec::new(),
        }
    }
}

/// What to build. `Options::default()` is what `PrivNet::start()` uses.
#[derive(Debug, Clone)]
pub struct Options {
    /// Onion services of the onion-service node. Default: "source" and "metrics".
    pub services: Vec<ServiceSpec>,
    /// Nickname of the relay under test (1–19 letters/digits). Default "RelayUnderTest".
    pub relay_nickname: String,
    /// `AccountingMax` of the relay under test; `None` leaves accounting off.
    /// Default `Some("1 GBytes")`.
    pub relay_accounting_max: Option<String>,
    /// Extra torrc lines for the relay under test (e.g. "RelayBandwidthRate 1 MBytes").
    pub relay_extra_torrc: Vec<String>,
    /// Extra torrc lines for the onion-service node.
    pub onion_extra_torrc: Vec<String>,
    /// Extra torrc lines for the client.
    pub client_extra_torrc: Vec<String>,
    /// Extra torrc lines for every authority.
    pub authority_extra_torrc: Vec<String>,
    /// Authorities recommend the running tor version (`VersioningAuthoritativeDirectory 1`,
    /// `RecommendedVersions <v>`), so `status/version/current` becomes `recommended`. Default true.
    pub recommend_running_version: bool,
    /// Readiness deadline of one attempt. Default 180 s (or $PRIVNET_READY_TIMEOUT).
    pub ready_timeout: Duration,
    /// How many times to build the network before giving up. Default 2 (one restart).
    pub attempts: u32,
}

impl Default for Options {
    fn default() -> Self {
        let ready_timeout = std::env::var(TIMEOUT_ENV)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(180));
        Options {
            services: vec![ServiceSpec::new("source"), ServiceSpec::new("metrics")],
            relay_nickname: "RelayUnderTest".into(),
            relay_accounting_max: Some("1 GBytes".into()),
            relay_extra_torrc: Vec::new(),
            onion_extra_torrc: Vec::new(),
            client_extra_torrc: Vec::new(),
            authority_extra_torrc: Vec::new(),
            recommend_running_version: true,
            ready_timeout,
            attempts: 2,
        }
    }
}

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
    child: Option<Child>,
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

    fn stop_begin(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = process::send_signal(c.id(), process::SIGTERM);
                // A tor a test has SIGSTOPped acts on SIGTERM only once continued.
                let _ = process::send_signal(c.id(), process::SIGCONT);
            }
        }
    }

    fn stop_finish(&mut self, deadline: Instant) {
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

/// An event recorder: a control connection subscribed to some events, appending every event's
/// first line (with the time since launch) to a shared list until tor closes the connection.
pub struct EventLog {
    events: Arc<Mutex<Vec<(Duration, String)>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    t0: Instant,
}

impl EventLog {
    fn new(t0: Instant) -> EventLog {
        EventLog {
            events: Arc::new(Mutex::new(Vec::new())),
            threads: Mutex::new(Vec::new()),
            t0,
        }
    }

    /// Subscribes `control` to `events` and records them (from a thread) until tor closes it.
    fn attach(&self, mut control: Control, events: &[&str]) -> Result<()> {
        control.setevents(events).map_err(err("SETEVENTS"))?;
        let store = self.events.clone();
        let t0 = self.t0;
        let thread = std::thread::spawn(move || {
            loop {
                match control.next_event(Duration::from_secs(1)) {
                    Ok(Some(ev)) => {
                        let line = ev.lines.first().cloned().unwrap_or_default();
                        let mut s = store.lock().unwrap_or_else(|p| p.into_inner());
                        if s.len() < 100_000 {
                            s.push((t0.elapsed(), line));
                        }
                    }
                    Ok(None) => {}
                    Err(_) => break, // tor closed the connection (stopped)
                }
            }
        });
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(thread);
        Ok(())
    }

    /// All events so far: (time since launch, first line, e.g. "HS_DESC UPLOADED <onion> …").
    pub fn snapshot(&self) -> Vec<(Duration, String)> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Number of `HS_DESC <action> <onion> …` events so far.
    pub fn hs_desc_count(&self, action: &str, onion: &str) -> usize {
        self.first_hs_desc_times(action, onion).len()
    }

    fn first_hs_desc_times(&self, action: &str, onion: &str) -> Vec<Duration> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, l)| {
                let mut w = l.split_whitespace();
                w.next() == Some("HS_DESC") && w.next() == Some(action) && w.next() == Some(onion)
            })
            .map(|(t, _)| *t)
            .collect()
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        // A thread ends within ~1 s of tor closing the socket; tors are stopped before this.
        let threads = std::mem::take(self.threads.get_mut().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

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

/// A running private Tor network. Drop stops it.
pub struct PrivNet {
    nodes: Vec<Node>,
    services: Vec<OnionService>,
    socks_port: u16,
    onion_events: Option<EventLog>,
    client_events: Option<EventLog>,
    netns: Option<NetNs>,
    root: Option<tempfile::TempDir>,
    root_path: PathBuf,
    launched: Instant,
    timings: Timings,
    tor_version: String,
    ready: bool,
    /// Held while the network exists (dropped last).
    _slot: Option<NetworkSlot>,
}

/// Whether a network exists in this process, and a condition variable to wait for it to go.
static NETWORK_BUSY: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// Environment variable: how long `start` waits for another process's network to go (seconds,
/// default 900).
pub const LOCK_WAIT_ENV: &str = "PRIVNET_LOCK_WAIT";

/// The right to run a network: one per process (mutex) and one per machine (an flock on
/// `$TMPDIR/privnet.lock`, released by the kernel even if the holder is killed). Released on
/// drop.
struct NetworkSlot {
    _file: fs::File,
}

impl NetworkSlot {
    fn acquire() -> Result<NetworkSlot> {
        let (lock, cv) = &NETWORK_BUSY;
        let mut busy = lock.lock().unwrap_or_else(|p| p.into_inner());
        while *busy {
            busy = cv.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        let path = std::env::temp_dir().join("privnet.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(err(&format!("open {}", path.display())))?;
        let wait = std::env::var(LOCK_WAIT_ENV)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(900));
        let mut told = false;
        wait_for("the machine-wide private-network lock", wait, || {
            if netns::try_lock_exclusive(&file).map_err(|e| e.to_string())? {
                Ok(())
            } else {
                if !told {
                    eprintln!(
                        "privnet: another private Tor network runs on this machine; waiting \
                         (up to {wait:?}) for {}",
                        path.display()
                    );
                    told = true;
                }
                Err("held by another process".into())
            }
        })?;
        *busy = true;
        Ok(NetworkSlot { _file: file })
    }
}

impl Drop for NetworkSlot {
    fn drop(&mut self) {
        // Closing the file (after this) releases the flock.
        let (lock, cv) = &NETWORK_BUSY;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = false;
        cv.notify_one();
    }
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

const N_AUTH: usize = 3;
const N_RELAY: usize = 3;

impl PrivNet {
    /// Starts the default network and waits until it is ready (see the module doc).
    pub fn start() -> Result<PrivNet> {
        Self::start_with(Options::default())
    }

    /// Starts a network with `opts`, restarting it from scratch (new dirs, new keys) on failure
    /// up to `opts.attempts` times. The error carries each attempt's diagnosis.
    pub fn start_with(opts: Options) -> Result<PrivNet> {
        preflight()?;
        // One network at a time per process and per machine: a second `start` waits for the
        // first network to be dropped (parallel networks overload a 2-core machine).
        let slot = NetworkSlot::acquire()?;
        let mut failures = Vec::new();
        for attempt in 1..=opts.attempts.max(1) {
            match Self::attempt(&opts, attempt) {
                Ok(mut net) => {
                    net._slot = Some(slot);
                    return Ok(net);
                }
                Err(e) => {
                    eprintln!("privnet: attempt {attempt} failed: {e}");
                    failures.push(format!("attempt {attempt}: {e}"));
                }
            }
        }
        Err(Error(failures.join("\n")))
    }

    fn attempt(opts: &Options, attempt: u32) -> Result<PrivNet> {
        let mut net = Self::launch(opts)?;
        net.timings.attempt = attempt;
        match net.wait_ready(opts) {
            Ok(()) => {
                net.ready = true;
                eprintln!("privnet: ready: {:?}", net.timings);
                Ok(net)
            }
            Err(e) => {
                let diag = net.diagnostics();
                Err(Error(format!("{e}\n{diag}")))
                // `net` drops here: tors stopped, dir removed unless PRIVNET_KEEP_DIRS=1.
            }
        }
    }

    /// Builds the directories, keys and torrcs, and launches every tor (no waiting).
    fn launch(opts: &Options) -> Result<PrivNet> {
        validate(opts)?;
        let tor_version = crate::support::tor::version().map_err(Error)?;
        let root = tempfile::Builder::new()
            .prefix("privnet-")
            .tempdir()
            .map_err(err("create temp dir"))?;
        let root_path = root.path().to_path_buf();
        let netns = NetNs::new().map_err(Error)?;

        // Ports: authorities OR+Dir, relays OR, client SOCKS, one target per service.
        let n_ports = N_AUTH * 2 + N_RELAY + 1 + opts.services.len();
        let mut ports = netns.free_ports(n_ports).map_err(Error)?.into_iter();
        let mut next_port = || ports.next().expect("enough ports");

        let mut net = PrivNet {
            nodes: Vec::new(),
            services: Vec::new(),
            socks_port: 0,
            onion_events: None,
            client_events: None,
            netns: Some(netns),
            root: Some(root),
            root_path: root_path.clone(),
            launched: Instant::now(),
            timings: Timings::default(),
            tor_version,
            ready: false,
            _slot: None,
        };

        // Authorities: keys first (their fingerprints go into everybody's DirAuthority lines).
        let keygen_start = Instant::now();
        write_private(&root_path.join("empty-torrc"), "")?;
        let mut auths = Vec::new();
        for i in 0..N_AUTH {
            let node = new_node(&root_path, &format!("auth{i}"), Kind::Authority)?;
            auths.push(Node {
                or_port: Some(next_port()),
                dir_port: Some(next_port()),
                ..node
            });
        }
        // In parallel: tor-gencert and tor --list-fingerprint take ~2 s each.
        let idents: Vec<Result<(String, String)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = auths
                .iter()
                .map(|node| scope.spawn(|| net.make_authority_keys(node)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("key generation panicked".into()))
                })
                .collect()
        });
        let mut dir_authority_lines = Vec::new();
        for (node, ident) in auths.into_iter().zip(idents) {
            let (v3ident, fpr) = ident?;
            dir_authority_lines.push(format!(
                "DirAuthority {} orport={} no-v2 v3ident={v3ident} 127.0.0.1:{} {fpr}",
                node.name,
                node.or_port.unwrap_or(0),
                node.dir_port.unwrap_or(0),
            ));
            net.nodes.push(node);
        }
        net.timings.keygen = keygen_start.elapsed();

        for i in 0..N_RELAY {
            let name = if i == 0 {
                opts.relay_nickname.clone()
            } else {
                format!("relay{i}")
            };
            let node = new_node(&root_path, &name, Kind::Relay)?;
            net.nodes.push(Node {
                or_port: Some(next_port()),
                ..node
            });
        }
        net.nodes
            .push(new_node(&root_path, "onion", Kind::OnionService)?);
        net.nodes
            .push(new_node(&root_path, "client", Kind::Client)?);
        net.socks_port = next_port();

        let onion_dir = net.nodes[N_AUTH + N_RELAY].dir.clone();
        let hs_parent = onion_dir.join("hs");
        make_private_dir(&hs_parent)?;
        for spec in &opts.services {
            let dir = hs_parent.join(&spec.role);
            if let Some(pubkey) = &spec.authorized_client {
                make_private_dir(&dir)?;
                make_private_dir(&dir.join("authorized_clients"))?;
                write_private(
                    &dir.join("authorized_clients/test.auth"),
                    &format!("{pubkey}\n"),
                )?;
            }
            net.services.push(OnionService {
                role: spec.role.clone(),
                onion: String::new(),
                dir,
                virt_port: spec.virt_port,
                target_port: next_port(),
                client_auth: spec.authorized_client.is_some(),
                extra_torrc: spec.extra_torrc.clone(),
            });
        }
        make_private_dir(&net.client().dir.join("onion_auth"))?;

        // torrcs
        let common = common_torrc(&dir_authority_lines);
        for idx in 0..net.nodes.len() {
            let node = &net.nodes[idx];
            let mut lines = common.clone();
            lines.push(format!("DataDirectory {}", node.dir.display()));
            lines.push(format!("Log notice file {}", node.log_file().display()));
            lines.push(format!("ControlSocket {}", node.control_socket.display()));
            lines.push("CookieAuthentication 1".into());
            lines.push(format!("CookieAuthFile {}", node.cookie_file.display()));
            match node.kind {
                Kind::Authority => {
                    lines.extend(server_torrc(node));
                    lines.extend(
                        [
                            "AuthoritativeDirectory 1",
                            "V3AuthoritativeDirectory 1",
                            "TestingV3AuthInitialVotingInterval 10",
                            "TestingV3AuthInitialVoteDelay 2",
                            "TestingV3AuthInitialDistDelay 2",
                            "V3AuthVotingInterval 10",
                            "V3AuthVoteDelay 2",
                            "V3AuthDistDelay 2",
                        ]
                        .map(String::from),
                    );
                    lines.push(format!("DirPort 127.0.0.1:{}", node.dir_port.unwrap_or(0)));
                    if opts.recommend_running_version {
                        lines.push("VersioningAuthoritativeDirectory 1".into());
                        lines.push(format!("RecommendedVersions {}", net.tor_version));
                    }
                    lines.extend(opts.authority_extra_torrc.iter().cloned());
                }
                Kind::Relay => {
                    lines.extend(server_torrc(node));
                    if idx == N_AUTH {
                        if let Some(max) = &opts.relay_accounting_max {
                            lines.push(format!("AccountingMax {max}"));
                        }
                        lines.extend(opts.relay_extra_torrc.iter().cloned());
                    }
                }
                Kind::OnionService => {
                    lines.push(format!(
                        "Log [rend]info file {}",
                        node.dir.join("rend.log").display()
                    ));
                    lines.push("SocksPort 0".into());
                    for s in &net.services {
                        lines.push(format!("HiddenServiceDir {}", s.dir.display()));
                        lines.push(format!(
                            "HiddenServicePort {} 127.0.0.1:{}",
                            s.virt_port, s.target_port
                        ));
                        lines.extend(s.extra_torrc.iter().cloned());
                    }
                    lines.extend(opts.onion_extra_torrc.iter().cloned());
                }
                Kind::Client => {
                    lines.push(format!(
                        "Log [rend]info file {}",
                        node.dir.join("rend.log").display()
                    ));
                    lines.push(format!(
                        "SocksPort 127.0.0.1:{} ExtendedErrors",
                        net.socks_port
                    ));
                    lines.push(format!(
                        "ClientOnionAuthDir {}",
                        node.dir.join("onion_auth").display()
                    ));
                    lines.extend(opts.client_extra_torrc.iter().cloned());
                }
            }
            lines.push(String::new());
            write_private(&node.torrc, &lines.join("\n"))?;
        }

        net.launched = Instant::now();
        for idx in 0..net.nodes.len() {
            net.spawn_node(idx)?;
        }
        Ok(net)
    }

    /// Generates one authority's v3 keys (tor-gencert) and relay identity (tor
    /// --list-fingerprint); returns (v3ident, relay fingerprint).
    fn make_authority_keys(&self, node: &Node) -> Result<(String, String)> {
        let or_port = node.or_port.unwrap_or(0);
        let dir_port = node.dir_port.unwrap_or(0);
        let keys = node.dir.join("keys");
        make_private_dir(&keys)?;
        let id_dir = self.root_path.join(format!("{}-identity", node.name));
        make_private_dir(&id_dir)?;
        // Inside the namespace too, though it only touches files.
        let mut gencert = self
            .netns()
            .command("tor-gencert")
            .arg("--create-identity-key")
            .args(["--passphrase-fd", "0"])
            .args(["-m", "12"])
            .arg("-a")
            .arg(format!("127.0.0.1:{dir_port}"))
            .arg("-i")
            .arg(id_dir.join("authority_identity_key"))
            .arg("-s")
            .arg(keys.join("authority_signing_key"))
            .arg("-c")
            .arg(keys.join("authority_certificate"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(err("run tor-gencert (package tor)"))?;
        // Empty passphrase: a throwaway test key.
        gencert
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(b"\n")
            .map_err(err("tor-gencert stdin"))?;
        let out = gencert.wait_with_output().map_err(err("tor-gencert"))?;
        if !out.status.success() {
            return Err(Error(format!(
                "tor-gencert failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let cert = fs::read_to_string(keys.join("authority_certificate"))
            .map_err(err("read authority_certificate"))?;
        let v3ident = cert
            .lines()
            .find_map(|l| l.strip_prefix("fingerprint "))
            .map(|s| s.trim().to_string())
            .ok_or_else(|| Error("no fingerprint line in authority_certificate".into()))?;

        let empty = self.root_path.join("empty-torrc");
        let out = self
            .netns()
            .command("tor")
            .args(["--list-fingerprint", "--defaults-torrc", "/dev/null", "-f"])
            .arg(&empty)
            .arg("--DataDirectory")
            .arg(&node.dir)
            .args(["--Nickname", &node.name])
            .args(["--ORPort", &format!("127.0.0.1:{or_port}")])
            .args(["--DisableNetwork", "1", "--Log", "err stderr"])
            .stdin(Stdio::null())
            .output()
            .map_err(err("run tor --list-fingerprint"))?;
        if !out.status.success() {
            return Err(Error(format!(
                "tor --list-fingerprint failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let fpr = node.fingerprint()?;
        Ok((v3ident, fpr))
    }

    fn spawn_node(&mut self, idx: usize) -> Result<()> {
        let netns = self.netns.as_ref().expect("namespace");
        let node = &self.nodes[idx];
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("stdout.log"))
            .map_err(err("open stdout.log"))?;
        let out2 = out.try_clone().map_err(err("dup stdout.log"))?;
        let child = netns
            .command("tor")
            .args(["--defaults-torrc", "/dev/null", "-f"])
            .arg(&node.torrc)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(out2)
            .spawn()
            .map_err(err("spawn tor"))?;
        self.nodes[idx].child = Some(child);
        Ok(())
    }

    /// Polls until ready or the attempt's deadline; records timings.
    fn wait_ready(&mut self, opts: &Options) -> Result<()> {
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
                    && last_hsfetch[i].is_none_or(|t| t.elapsed() >= HSFETCH_RETRY)
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

    // ---- accessors ----

    /// Every node: auth0..2, the 3 relays (the first is the relay under test), onion, client.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn authorities(&self) -> &[Node] {
        &self.nodes[..N_AUTH]
    }

    /// The 3 relays (not authorities); `relays()[0]` is the relay under test.
    pub fn relays(&self) -> &[Node] {
        &self.nodes[N_AUTH..N_AUTH + N_RELAY]
    }

    /// The relay under test: nickname from `Options::relay_nickname`, AccountingMax set, control
    /// socket (`control_socket`, `cookie_file`) and `fingerprint_file()`.
    pub fn relay_under_test(&self) -> &Node {
        &self.nodes[N_AUTH]
    }

    /// The onion-service node (`control_socket`, `cookie_file`).
    pub fn onion_node(&self) -> &Node {
        &self.nodes[N_AUTH + N_RELAY]
    }

    /// The client (SocksPort `socks_port()` inside the namespace; control socket too).
    pub fn client(&self) -> &Node {
        &self.nodes[N_AUTH + N_RELAY + 1]
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The onion services, in `Options::services` order, with their addresses.
    pub fn services(&self) -> &[OnionService] {
        &self.services
    }

    /// The service with this role. Panics if there is none (a test bug).
    pub fn service(&self, role: &str) -> &OnionService {
        self.services
            .iter()
            .find(|s| s.role == role)
            .unwrap_or_else(|| panic!("no onion service with role {role}"))
    }

    /// Every onion address of the network (56 chars, no ".onion"): what must never appear in
    /// the exporter's output.
    pub fn onion_addresses(&self) -> Vec<String> {
        self.services.iter().map(|s| s.onion.clone()).collect()
    }

    /// The client's SOCKS port (127.0.0.1, inside the namespace; ExtendedErrors on).
    pub fn socks_port(&self) -> u16 {
        self.socks_port
    }

    /// The namespace the tors run in.
    pub fn netns(&self) -> &NetNs {
        self.netns.as_ref().expect("namespace")
    }

    /// The network's temp dir.
    pub fn root_dir(&self) -> &Path {
        &self.root_path
    }

    /// `tor --version` of the tors (e.g. "0.4.9.11").
    pub fn tor_version(&self) -> &str {
        &self.tor_version
    }

    pub fn timings(&self) -> &Timings {
        &self.timings
    }

    /// Seconds since the tors were launched.
    pub fn elapsed(&self) -> Duration {
        self.launched.elapsed()
    }

    /// HS_DESC events seen by the onion-service node since launch.
    pub fn onion_events(&self) -> &EventLog {
        self.onion_events.as_ref().expect("event log")
    }

    /// HS_DESC events seen by the client since launch.
    pub fn client_events(&self) -> &EventLog {
        self.client_events.as_ref().expect("event log")
    }

    // ---- doing things inside the namespace ----

    /// Runs `f` on a thread inside the namespace (sockets it creates live there).
    pub fn in_netns<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.netns().run(f).map_err(Error)
    }

    /// A listener on 127.0.0.1:`port` inside the namespace (port 0: any free port).
    /// For tokio: `l.set_nonblocking(true)?; tokio::net::TcpListener::from_std(l)`.
    pub fn bind(&self, port: u16) -> Result<std::net::TcpListener> {
        self.in_netns(move || std::net::TcpListener::bind(("127.0.0.1", port)))?
            .map_err(err(&format!("bind 127.0.0.1:{port} in the namespace")))
    }

    /// A listener on the target port of the service `role` (what its HiddenServicePort
    /// forwards to), inside the namespace.
    pub fn bind_service(&self, role: &str) -> Result<std::net::TcpListener> {
        self.bind(self.service(role).target_port)
    }

    /// A TCP connection from inside the namespace to 127.0.0.1:`port` (timeouts set).
    pub fn connect(&self, port: u16, timeout: Duration) -> Result<std::net::TcpStream> {
        self.in_netns(move || http::connect(SocketAddr::from(([127, 0, 0, 1], port)), timeout))?
            .map_err(err(&format!("connect 127.0.0.1:{port} in the namespace")))
    }

    /// `GET http://127.0.0.1:port/path` from inside the namespace (e.g. the exporter's listener).
    pub fn http_get_local(
        &self,
        port: u16,
        path: &str,
        timeout: Duration,
    ) -> std::result::Result<Response, FetchError> {
        let stream = self
            .connect(port, timeout)
            .map_err(|e| FetchError::Io("connect", std::io::Error::other(e.0)))?;
        http::get_on(stream, &format!("127.0.0.1:{port}"), path, &[])
    }

    /// `GET http://host:port/path` through the client's SOCKS port (tor resolves `host`, e.g.
    /// `<onion56>.onion`). One try; wrap it in `wait_for` to retry.
    pub fn http_get_via_client(
        &self,
        host: &str,
        port: u16,
        path: &str,
        timeout: Duration,
    ) -> std::result::Result<Response, FetchError> {
        let mut stream = self
            .connect(self.socks_port, timeout)
            .map_err(|e| FetchError::Io("connect", std::io::Error::other(e.0)))?;
        socks::socks5_connect(&mut stream, host, port)?;
        http::get_on(stream, host, path, &[])
    }

    /// `GET path` on the onion service `role` (its virtual port) through the client.
    pub fn fetch_onion(
        &self,
        role: &str,
        path: &str,
        timeout: Duration,
    ) -> std::result::Result<Response, FetchError> {
        let s = self.service(role);
        self.http_get_via_client(&s.hostname(), s.virt_port, path, timeout)
    }

    /// Gives the client a v3 client-authorization key: writes `<name>.auth_private` with the
    /// line `<onion56>:descriptor:x25519:<PRIV52>` into its ClientOnionAuthDir and makes it
    /// reload (`SIGNAL RELOAD`). The key is never printed.
    pub fn add_client_auth(&self, name: &str, auth_private_line: &str) -> Result<()> {
        let path = self
            .client()
            .dir
            .join("onion_auth")
            .join(format!("{name}.auth_private"));
        write_private(&path, &format!("{}\n", auth_private_line.trim()))?;
        self.client()
            .control()?
            .command_ok("SIGNAL RELOAD")
            .map_err(err("client SIGNAL RELOAD"))?;
        Ok(())
    }

    /// The flags of a relay in the consensus as the client sees it (`GETINFO ns/id/<fpr>`).
    pub fn consensus_flags(&self, fingerprint: &str) -> Result<Vec<String>> {
        let entry = self.client().getinfo(&format!("ns/id/{fingerprint}"))?;
        entry
            .lines()
            .find_map(|l| l.strip_prefix("s "))
            .map(|s| s.split_whitespace().map(String::from).collect())
            .ok_or_else(|| Error(format!("no flags line for {fingerprint}")))
    }

    /// Nicknames of the routers in the consensus, from authority auth0 (`GETINFO ns/all`).
    pub fn consensus_nicknames(&self) -> Result<Vec<String>> {
        let all = self.authorities()[0].getinfo("ns/all")?;
        Ok(all
            .lines()
            .filter_map(|l| l.strip_prefix("r "))
            .filter_map(|l| l.split_whitespace().next())
            .map(String::from)
            .collect())
    }

    /// Stops one node (SIGTERM, SIGKILL after 10 s) and starts it again with the same torrc and
    /// keys (see `start_node`); returns once it is at bootstrap 100 again, or fails after
    /// `timeout`.
    pub fn restart_node(&mut self, name: &str, timeout: Duration) -> Result<()> {
        self.stop_node(name)?;
        self.start_node(name)?;
        let node = self
            .node(name)
            .ok_or_else(|| Error(format!("no node {name}")))?;
        wait_for(
            &format!("{name} bootstrap 100 after restart"),
            timeout,
            || match node.bootstrap_progress() {
                Ok(100) => Ok(()),
                Ok(p) => Err(format!("progress {p}")),
                Err(e) => Err(e.0),
            },
        )
    }

    /// Stops one node (SIGTERM, SIGKILL after 10 s) and leaves it stopped.
    pub fn stop_node(&mut self, name: &str) -> Result<()> {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.name == name)
            .ok_or_else(|| Error(format!("no node {name}")))?;
        node.stop_begin();
        node.stop_finish(Instant::now() + STOP_GRACE);
        Ok(())
    }

    /// Starts a stopped node again. For the onion node and the client it waits (up to 30 s) for
    /// the control socket and re-attaches the HS_DESC recorder, so `onion_events()` /
    /// `client_events()` go on recording; otherwise it does not wait.
    pub fn start_node(&mut self, name: &str) -> Result<()> {
        let idx = self
            .nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| Error(format!("no node {name}")))?;
        if self.nodes[idx].child.is_some() {
            return Err(Error(format!("{name} is running")));
        }
        self.spawn_node(idx)?;
        let node = &self.nodes[idx];
        let log = match node.kind {
            Kind::OnionService => self.onion_events.as_ref(),
            Kind::Client => self.client_events.as_ref(),
            _ => None,
        };
        if let Some(log) = log {
            let deadline = Instant::now() + Duration::from_secs(30);
            let c = control::connect_until(&node.control_socket, &node.cookie_file, deadline)
                .map_err(Error)?;
            log.attach(c, &["HS_DESC"])?;
        }
        Ok(())
    }

    fn stop_all(&mut self) {
        for n in self.nodes.iter_mut() {
            n.stop_begin();
        }
        let deadline = Instant::now() + STOP_GRACE;
        for n in self.nodes.iter_mut() {
            n.stop_finish(deadline);
        }
    }
}

impl Drop for PrivNet {
    fn drop(&mut self) {
        self.stop_all();
        // Event threads end once their tor has closed the socket.
        self.onion_events.take();
        self.client_events.take();
        self.netns.take();
        let failed = !self.ready || std::thread::panicking();
        let keep = failed && std::env::var(KEEP_ENV).is_ok_and(|v| v == "1");
        if let Some(root) = self.root.take() {
            if keep {
                let path = root.keep();
                eprintln!("privnet: kept {} ({KEEP_ENV}=1)", path.display());
            }
            // Otherwise TempDir's drop removes it.
        }
    }
}

// ---- helpers ----

/// A fresh x25519 key pair for v3 onion client authorization, made with the `openssl` CLI:
/// `(public, private)`, each the raw 32 bytes in upper-case RFC 4648 base32 without padding
/// (52 characters), as tor's `descriptor:x25519:<KEY>` lines want them. Test keys only.
pub fn x25519_keypair() -> Result<(String, String)> {
    let run = |args: &[&str], input: &[u8]| -> Result<Vec<u8>> {
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(err("run openssl"))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(input).map_err(err("openssl stdin"))?;
        drop(stdin);
        let out = child.wait_with_output().map_err(err("openssl"))?;
        if !out.status.success() {
            return Err(Error(format!("openssl {} failed", args[0])));
        }
        Ok(out.stdout)
    };
    let private_der = run(&["genpkey", "-algorithm", "x25519", "-outform", "DER"], b"")?;
    let public_der = run(
        &["pkey", "-inform", "DER", "-pubout", "-outform", "DER"],
        &private_der,
    )?;
    // PKCS#8 / SPKI DER of an X25519 key: the raw key is the last 32 bytes.
    if private_der.len() < 32 || public_der.len() < 32 {
        return Err("unexpected openssl key encoding".into());
    }
    let private = base32(&private_der[private_der.len() - 32..]);
    let public = base32(&public_der[public_der.len() - 32..]);
    Ok((public, private))
}

/// RFC 4648 base32, upper case, no padding.
pub fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in data {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
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

fn preflight() -> Result<()> {
    for (prog, pkg) in [
        ("tor", "tor"),
        ("tor-gencert", "tor"),
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("ip", "iproute2"),
    ] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
            .unwrap_or(false);
        if !found {
            return Err(Error(format!("{prog} not found: apt-get install -y {pkg}")));
        }
    }
    Ok(())
}

fn validate(opts: &Options) -> Result<()> {
    let nick = &opts.relay_nickname;
    if nick.is_empty() || nick.len() > 19 || !nick.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error(format!("bad relay nickname {nick:?}")));
    }
    if opts.services.is_empty() {
        return Err("no onion services".into());
    }
    for s in &opts.services {
        if s.role.is_empty()
            || !s
                .role
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(Error(format!("bad service role {:?}", s.role)));
        }
    }
    Ok(())
}

fn make_private_dir(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(err(&format!("mkdir {}", path.display())))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(err(&format!("create {}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(err(&format!("write {}", path.display())))
}

fn new_node(root: &Path, name: &str, kind: Kind) -> Result<Node> {
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

/// Lines every node shares.
fn common_torrc(dir_authority_lines: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = [
        "TestingTorNetwork 1",
        // Fast, small-network settings (the defaults wait for stability a 1-minute-old
        // network never has).
        "AssumeReachable 1",
        "PathsNeededToBuildCircuits 0.25",
        "TestingDirAuthVoteGuard *",
        "TestingDirAuthVoteHSDir *",
        "V3AuthNIntervalsValid 2",
        "ShutdownWaitLength 0",
        "SafeLogging 1",
        "RunAsDaemon 0",
    ]
    .map(String::from)
    .to_vec();
    lines.push(format!("__OwningControllerProcess {}", std::process::id()));
    lines.extend(dir_authority_lines.iter().cloned());
    lines
}

/// Lines of authorities and relays (server mode on loopback only).
fn server_torrc(node: &Node) -> Vec<String> {
    vec![
        format!("Nickname {}", node.name),
        format!("ContactInfo {}@privnet.invalid", node.name),
        "Address 127.0.0.1".into(),
        format!("ORPort 127.0.0.1:{}", node.or_port.unwrap_or(0)),
        "SocksPort 0".into(),
        "ExitRelay 0".into(),
        "ExitPolicy reject *:*".into(),
    ]
}
