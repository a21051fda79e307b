//! The background task that keeps the snapshot fresh: one batched GETINFO per interval.
//!
//! tor serves the sources' interface from the same main loop that answers us, so the load we
//! put on it is fixed by `refresh_interval`, not by how often anyone scrapes. On any failure the
//! connection is dropped, `tor_up` drops to 0 at once, and reconnection backs off exponentially up
//! to `max_backoff` (see [`super::reconnect`]).

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::reconnect::{connect_options, keep_connected, Failures, Session};
use crate::clock::now_unix;
use crate::config::Config;
use crate::control::{Command, Connection, ControlError};
use crate::log_limit::{LogLimit, EVERY_MINUTE};
use crate::snapshot::{ErrorKind, Shared};
use crate::source::relay::{self, RelayStatus};
use crate::source::status::{TorStatus, GETINFO_KEYS};
use crate::source::traffic::Coarsener;

/// Runs until `shutdown` turns true.
pub async fn run(config: Config, shared: Shared, shutdown: watch::Receiver<bool>) {
    let refresher = Refresher {
        interval: config.tor.refresh_interval,
        shared,
        traffic: config.traffic.enabled.then(|| {
            (
                Coarsener::new(config.traffic.quantum_bytes, config.traffic.period),
                Coarsener::new(config.traffic.quantum_bytes, config.traffic.period),
            )
        }),
        failure_lines: LogLimit::new(EVERY_MINUTE),
    };
    keep_connected(
        connect_options(&config),
        config.tor.refresh_interval,
        config.tor.max_backoff,
        refresher,
        shutdown,
    )
    .await;
}

struct Refresher {
    interval: Duration,
    shared: Shared,
    /// (read, written) when `traffic.enabled`; `None`: tor is not even asked for its counters.
    traffic: Option<(Coarsener, Coarsener)>,
    /// While tor stays unreachable, one line per cause (an authentication tor or a squatter
    /// refuses, a refused connection, a timeout …) per minute, with a count: a cause that
    /// appears mid-outage is seen, and a retry every few seconds does not fill the journal.
    failure_lines: LogLimit<ErrorKind>,
}

impl Session for Refresher {
    const PACED: bool = true;

    async fn run(
        &mut self,
        mut conn: Connection,
        failures: &mut Failures,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ControlError> {
        tracing::info!(
            tor_version = conn.tor_version().unwrap_or("unknown"),
            "connected to tor's control port"
        );
        loop {
            self.refresh(&mut conn).await?;
            if failures.recovered() {
                tracing::info!("tor's control port answers again");
            }
            // The period counts from the attempt's start (its connect, for the first one).
            let wait = self.interval.saturating_sub(failures.since_attempt());
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = crate::shutdown::stopped(shutdown) => return Ok(()),
            }
            failures.attempt_started();
        }
    }

    fn failed(&mut self, error: &ControlError, failures: u32, elapsed: Duration) {
        let kind = ErrorKind::of(error);
        self.shared.update(|s| {
            s.refreshed = true;
            s.tor_up = false;
            s.status = None;
            s.relay = None;
            s.refresh_duration = Some(elapsed);
            s.count_error(kind);
        });
        // tokio's clock, so that a test on a paused clock governs it too
        let line = self
            .failure_lines
            .event(kind, tokio::time::Instant::now().into_std());
        // The cause is a field, not in the text: its names ("refused", "auth") would be among the
        // words OSSEC mails (tests/log_words.rs); the health judge's lines are what it mails.
        if failures == 1 {
            tracing::warn!(error = %error, cause = kind.as_str(), "tor is unreachable; reporting tor_up 0 and retrying");
        } else if let Some(more) = line {
            tracing::warn!(
                error = %error,
                cause = kind.as_str(),
                failures,
                "tor is still unreachable, for another cause or a minute on ({more} more like it in the last minute); retrying"
            );
        } else {
            tracing::debug!(error = %error, failures, "tor still unreachable");
        }
    }
}

impl Refresher {
    /// One refresh over `conn`: the batch, the relay batch on relays, one snapshot update.
    async fn refresh(&mut self, conn: &mut Connection) -> Result<(), ControlError> {
        let started = Instant::now();
        let with_traffic = self.traffic.is_some();
        let keys = GETINFO_KEYS
            .iter()
            .copied()
            .filter(|k| with_traffic || !k.starts_with("traffic/"));
        let batch = Command::get_info(keys).expect("static keys are valid");
        let reply = conn.request_ok(&batch).await?;
        let (status, traffic) = TorStatus::from_getinfo(&reply);
        let relay = if status.is_relay {
            Some(query_relay(conn).await?)
        } else {
            None
        };
        let now = Instant::now();
        let (read, written) = match &mut self.traffic {
            Some((r, w)) => (
                traffic.read.map(|v| r.update(v, now)),
                traffic.written.map(|v| w.update(v, now)),
            ),
            None => (None, None),
        };
        let parse_errors =
            status.malformed.len() as u64 + relay.as_ref().map_or(0, |r| r.malformed);
        if parse_errors > 0 {
            tracing::warn!(keys = ?status.malformed, "tor answered values we could not parse; they are left out");
        }
        let elapsed = started.elapsed();
        self.shared.update(|s| {
            s.refreshed = true;
            s.tor_up = true;
            s.status = Some(status);
            s.relay = relay;
            s.traffic_read_bytes = read;
            s.traffic_written_bytes = written;
            s.refresh_duration = Some(elapsed);
            s.last_success_unix = Some(now_unix());
            s.add_errors(ErrorKind::Parse, parse_errors);
        });
        Ok(())
    }
}

/// The relay batch: two more round trips, plus one for the consensus flags once the fingerprint
/// is known.
async fn query_relay(conn: &mut Connection) -> Result<RelayStatus, ControlError> {
    let info = conn
        .request_ok(&Command::get_info(relay::GETINFO_KEYS.iter().copied()).expect("static keys"))
        .await?;
    let conf = conn
        .request_ok(&Command::get_conf(relay::GETCONF_KEYS.iter().copied()).expect("static keys"))
        .await?;
    let mut status = relay::parse(&info, &conf);
    if let Some(fpr) = &status.fingerprint {
        let ns = conn
            .request(&Command::get_info([format!("ns/id/{fpr}")]).expect("hex fingerprint"))
            .await?;
        // Not in a consensus yet is normal for a new relay: no flags, no error.
        if ns.is_ok() {
            status.flags = relay::parse_flags(&ns);
        }
    }
    Ok(status)
}
