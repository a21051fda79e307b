//! The last thing the refresher learned, shared with the HTTP side.
//!
//! Scrapes only read this: however many scrapers there are, tor sees one round trip per refresh.
//! Writers replace the whole `Arc`, so a scrape never sees half an update.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::control::ControlError;
use crate::onion::OnionHealth;
use crate::relay::RelayStatus;
use crate::status::TorStatus;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The refresher has finished its first attempt. Until then tor's state is unknown and
    /// `tor_up` is left out of `/metrics`: a `tor_up 0` from a scrape that came a few hundred
    /// milliseconds after a restart would record an outage that never happened.
    pub refreshed: bool,
    /// The last refresh succeeded.
    pub tor_up: bool,
    /// What tor said in the last successful refresh; `None` while tor is down.
    pub status: Option<TorStatus>,
    /// Coarsened byte counters (see `traffic`).
    pub traffic_read_bytes: Option<u64>,
    pub traffic_written_bytes: Option<u64>,
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
    /// Control-connection errors since start, by kind.
    pub errors: BTreeMap<&'static str, u64>,
}

impl Snapshot {
    pub fn new() -> Self {
        let mut s = Snapshot::default();
        for k in ControlError::KINDS {
            s.errors.insert(k, 0);
        }
        s
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
        Shared::new(Snapshot::new())
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
