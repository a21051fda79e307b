//! The last thing the refresher learned, shared with the HTTP side.
//!
//! Scrapes only read this: however many scrapers there are, tor sees one round trip per refresh.
//! Writers replace the whole `Arc`, so a scrape never sees half an update.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::control::ControlError;
use crate::source::onion::OnionHealth;
use crate::source::relay::RelayStatus;
use crate::source::status::TorStatus;
use crate::source::traffic::CoarseBytes;

#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The refresher has finished its first attempt. Until then tor's state is unknown and
    /// `tor_up` is left out of `/metrics`: a `tor_up 0` from a scrape that came a few hundred
    /// milliseconds after a restart would record an outage that never happened.
    pub refreshed: bool,
    /// The last refresh succeeded.
    pub tor_up: bool,
    /// What tor said in the last successful refresh; `None` while tor is down.
    pub status: Option<TorStatus>,
    /// Byte counters, coarsened (see `source::traffic`: raw counters cannot be put here).
    pub traffic_read_bytes: Option<CoarseBytes>,
    pub traffic_written_bytes: Option<CoarseBytes>,
    /// Relay series; `None` on a client (a SecureDrop server).
    pub relay: Option<RelayStatus>,
    /// Per-role onion-service health from HS_DESC events.
    pub onion: OnionHealth,
    /// How long the last refresh took.
    pub refresh_duration: Option<Duration>,
    /// Unix time of the last successful refresh.
    pub last_success_unix: Option<f64>,
    /// Unix time the exporter started serving (`process_start_time_seconds`, the name every
    /// Prometheus client uses, so restart alerts work as they do for other exporters).
    pub started_unix: Option<f64>,
    /// Control-connection errors since start, by kind; every kind is there from the start, so
    /// every series exists (at 0) before the first error.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// The health judgements (`health`): what is wrong now, for the status page and `STATUS=`.
    pub health: Vec<HealthItem>,
    /// (reloads, restarts) of tor by the opt-in recovery, from its state file; `None` where it
    /// never ran.
    pub recovery_actions: Option<(u64, u64)>,
}

/// One state the health judge is watching (see `health`): held until its hold time has passed,
/// then alerting.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthItem {
    /// The state's name in the log grammar (`tor_down`, `onion_not_published`, …).
    pub state: &'static str,
    /// The onion service's role name, for the states about one service.
    pub role: Option<String>,
    /// Since when it has lasted (Unix time).
    pub since_unix: f64,
    /// Past its hold time: said in the log, shown as an alert.
    pub alerting: bool,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            refreshed: false,
            tor_up: false,
            status: None,
            traffic_read_bytes: None,
            traffic_written_bytes: None,
            relay: None,
            onion: OnionHealth::default(),
            refresh_duration: None,
            last_success_unix: None,
            started_unix: None,
            errors: ErrorKind::ALL.iter().map(|k| (*k, 0)).collect(),
            health: Vec::new(),
            recovery_actions: None,
        }
    }
}

impl Snapshot {
    /// Counts one error of `kind`.
    pub fn count_error(&mut self, kind: ErrorKind) {
        self.add_errors(kind, 1);
    }

    pub fn add_errors(&mut self, kind: ErrorKind, n: u64) {
        let c = self.errors.entry(kind).or_insert(0);
        *c = c.saturating_add(n);
    }
}

/// The `kind` label of `tor_exporter_control_errors_total`: a small fixed set, so that the
/// series are known in advance and an error's text (which may quote tor) never becomes a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    Auth,
    Connect,
    Connection,
    /// A value in a good reply that we could not read (counted, never fatal).
    Parse,
    Protocol,
    Refused,
    Timeout,
}

impl ErrorKind {
    /// In label order, as the exposition lists them.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Auth,
        ErrorKind::Connect,
        ErrorKind::Connection,
        ErrorKind::Parse,
        ErrorKind::Protocol,
        ErrorKind::Refused,
        ErrorKind::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Auth => "auth",
            ErrorKind::Connect => "connect",
            ErrorKind::Connection => "connection",
            ErrorKind::Parse => "parse",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Refused => "refused",
            ErrorKind::Timeout => "timeout",
        }
    }

    /// The kind a failed control exchange is counted as.
    pub fn of(e: &ControlError) -> ErrorKind {
        match e {
            ControlError::Connect { .. } => ErrorKind::Connect,
            ControlError::Timeout(_) => ErrorKind::Timeout,
            ControlError::Closed | ControlError::Io(_) => ErrorKind::Connection,
            ControlError::Protocol(_) => ErrorKind::Protocol,
            ControlError::Auth(_) | ControlError::Cookie { .. } | ControlError::Password { .. } => {
                ErrorKind::Auth
            }
            ControlError::Refused { .. } => ErrorKind::Refused,
        }
    }
}

/// The shared cell. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shared {
    cell: Arc<RwLock<Arc<Snapshot>>>,
    /// Turns true with the first snapshot that has `refreshed` set, so `run` can wait for it.
    refreshed: Arc<watch::Sender<bool>>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new(Snapshot::default())
    }
}

impl Shared {
    pub fn new(s: Snapshot) -> Self {
        let (tx, _) = watch::channel(s.refreshed);
        Shared {
            cell: Arc::new(RwLock::new(Arc::new(s))),
            refreshed: Arc::new(tx),
        }
    }

    pub fn get(&self) -> Arc<Snapshot> {
        // A poisoned lock only means a writer panicked mid-replace; the Arc inside is whole.
        self.cell.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies `f` to a copy of the current snapshot and publishes the result.
    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        let refreshed = {
            let mut guard = self.cell.write().unwrap_or_else(|e| e.into_inner());
            let mut next = (**guard).clone();
            f(&mut next);
            let refreshed = next.refreshed;
            *guard = Arc::new(next);
            refreshed
        };
        if refreshed {
            self.refreshed
                .send_if_modified(|seen| !std::mem::replace(seen, true));
        }
    }

    /// Resolves once the refresher has finished its first attempt, successful or not.
    pub async fn first_refresh(&self) {
        let mut rx = self.refreshed.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }
}
