//! The last thing the refresher learned, shared with the HTTP side.
//!
//! Scrapes only read this: however many scrapers there are, tor sees one round trip per refresh.
//! Writers replace the whole `Arc`, so a scrape never sees half an update.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::control::ControlError;
use crate::onion::OnionHealth;
use crate::relay::RelayStatus;
use crate::status::TorStatus;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
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
pub struct Shared(Arc<RwLock<Arc<Snapshot>>>);

impl Default for Shared {
    fn default() -> Self {
        Shared(Arc::new(RwLock::new(Arc::new(Snapshot::new()))))
    }
}

impl Shared {
    pub fn new(s: Snapshot) -> Self {
        Shared(Arc::new(RwLock::new(Arc::new(s))))
    }

    pub fn get(&self) -> Arc<Snapshot> {
        // A poisoned lock only means a writer panicked mid-replace; the Arc inside is whole.
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies `f` to a copy of the current snapshot and publishes the result.
    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        let mut guard = self.0.write().unwrap_or_else(|e| e.into_inner());
        let mut next = (**guard).clone();
        f(&mut next);
        *guard = Arc::new(next);
    }
}
