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
//!
//! Each file does one job:
//!
//! - `mod.rs`: the [`PrivNet`] handle, its accessors and its drop.
//! - [`error`]: the harness's [`Error`] and [`wait_for`].
//! - [`options`]: what to build ([`Options`], [`ServiceSpec`]) and its validation.
//! - [`node`]: one tor process ([`Node`], [`Kind`]) and an onion service ([`OnionService`]).
//! - [`events`]: the [`EventLog`] of a node's control events.
//! - [`slot`]: one network at a time, per process and per machine.
//! - [`torrc`]: torrc lines and the authorities' keys.
//! - [`keys`]: [`x25519_keypair`] and [`base32`].
//! - [`launch`]: `PrivNet::start`, building the network's files and spawning every tor.
//! - [`ready`]: waiting until the network is ready ([`Timings`]) and diagnostics when it is not.
//! - [`inside`]: doing things inside the namespace (bind, connect, HTTP, client auth, consensus).
//! - [`lifecycle`]: stopping and starting nodes.
//! - [`control`]: a minimal tor control-port client.
//! - [`netns`]: the network namespace with only loopback.
//! - [`socks`]: a tiny SOCKS5 client.
//! - [`static_server`]: a minimal HTTP server for backends.
//! - [`counting_proxy`]: a relay that counts connections and scrapes.
//! - [`ns_process`]: a program inside the namespace, stopped when dropped.

pub mod control;
pub mod counting_proxy;
pub mod netns;
pub mod ns_process;
pub mod socks;
pub mod static_server;

mod error;
mod events;
mod inside;
mod keys;
mod launch;
mod lifecycle;
mod node;
mod options;
mod ready;
mod slot;
mod torrc;

#[allow(unused_imports)]
pub use crate::support::http::{FetchError, Response};
#[allow(unused_imports)]
pub use control::{Control, Reply};
#[allow(unused_imports)]
pub use error::{wait_for, Error, Result};
pub use events::EventLog;
#[allow(unused_imports)]
pub use keys::{base32, x25519_keypair};
#[allow(unused_imports)]
pub use netns::NetNs;
#[allow(unused_imports)]
pub use node::{Kind, Node, OnionService};
#[allow(unused_imports)]
pub use options::{Options, ServiceSpec, TIMEOUT_ENV};
pub use ready::Timings;
#[allow(unused_imports)]
pub use slot::{DEFAULT_SLOTS, LOCK_WAIT_ENV, SLOTS_ENV};
#[allow(unused_imports)]
pub use static_server::StaticServer;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use slot::NetworkSlot;

/// Environment variable: set to 1 to keep the network's temp dir when a start fails or the test
/// panics (its path is printed). Without it the dir is always removed.
pub const KEEP_ENV: &str = "PRIVNET_KEEP_DIRS";

const N_AUTH: usize = 3;
const N_RELAY: usize = 3;

/// A running private Tor network. Drop stops it.
pub struct PrivNet {
    nodes: Vec<Node>,
    services: Vec<OnionService>,
    socks_port: u16,
    onion_events: Option<EventLog>,
    client_events: Option<EventLog>,
    netns: Option<NetNs>,
    root: Option<crate::support::temp_dir::TempDir>,
    root_path: PathBuf,
    launched: Instant,
    timings: Timings,
    tor_version: String,
    ready: bool,
    /// Held while the network exists (dropped last).
    _slot: Option<NetworkSlot>,
}

impl PrivNet {
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
