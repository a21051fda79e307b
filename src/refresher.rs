//! The background task that keeps the snapshot fresh: one batched GETINFO per interval.
//!
//! tor serves the sources' interface from the same main loop that answers us, so the load we
//! put on it is fixed by `refresh_interval`, not by how often anyone scrapes. On any failure the
//! connection is dropped, `tor_up` drops to 0 at once, and reconnection backs off exponentially up
//! to `max_backoff`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::config::Config;
use crate::control::{Command, ConnectOptions, Connection, ControlError, Limits};
use crate::relay;
use crate::snapshot::Shared;
use crate::status::{GETINFO_KEYS, TorStatus};
use crate::traffic::Coarsener;

pub fn connect_options(config: &Config) -> ConnectOptions {
    ConnectOptions {
        address: config.tor.control_address.clone(),
        timeout: config.tor.timeout,
        cookie_file: config.tor.cookie_file.clone(),
        password_file: config.tor.password_file.clone(),
        limits: Limits::default(),
    }
}

/// Delay before reconnect attempt `failures` (1-based): interval·2^(n-1), capped.
pub fn backoff(interval: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1).min(16))
        .unwrap_or(u32::MAX);
    interval.saturating_mul(factor).min(max.max(interval))
}

pub(crate) fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

struct Refresher {
    opts: ConnectOptions,
    interval: Duration,
    max_backoff: Duration,
    shared: Shared,
    read: Coarsener,
    written: Coarsener,
    conn: Option<Connection>,
    failures: u32,
}

/// Runs until `shutdown` turns true.
pub async fn run(config: Config, shared: Shared, mut shutdown: watch::Receiver<bool>) {
    let mut r = Refresher {
        opts: connect_options(&config),
        interval: config.tor.refresh_interval,
        max_backoff: config.tor.max_backoff,
        shared,
        read: Coarsener::new(config.traffic.quantum_bytes, config.traffic.period),
        written: Coarsener::new(config.traffic.quantum_bytes, config.traffic.period),
        conn: None,
        failures: 0,
    };
    loop {
        let started = Instant::now();
        let delay = match r.refresh().await {
            Ok(()) => {
                if r.failures > 0 {
                    tracing::info!("tor's control port answers again");
                }
                r.failures = 0;
                r.interval
            }
            Err(e) => {
                r.conn = None;
                r.failures = r.failures.saturating_add(1);
                let kind = e.kind();
                let elapsed = started.elapsed();
                r.shared.update(|s| {
                    s.refreshed = true;
                    s.tor_up = false;
                    s.status = None;
                    s.relay = None;
                    s.refresh_duration = Some(elapsed);
                    *s.errors.entry(kind).or_insert(0) += 1;
                });
                if r.failures == 1 {
                    tracing::warn!(error = %e, "tor is unreachable; reporting tor_up 0 and retrying");
                } else {
                    tracing::debug!(error = %e, failures = r.failures, "tor still unreachable");
                }
                backoff(r.interval, r.max_backoff, r.failures)
            }
        };
        let wait = delay.saturating_sub(started.elapsed());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = crate::stopped(&mut shutdown) => return,
        }
    }
}

impl Refresher {
    async fn refresh(&mut self) -> Result<(), ControlError> {
        let started = Instant::now();
        if self.conn.is_none() {
            let c = Connection::connect(&self.opts).await?;
            tracing::info!(
                tor_version = c.tor_version().unwrap_or("unknown"),
                "connected to tor's control port"
            );
            self.conn = Some(c);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(ControlError::Closed);
        };
        let batch = Command::get_info(GETINFO_KEYS.iter().copied()).expect("static keys are valid");
        let reply = conn.request_ok(&batch).await?;
        let status = TorStatus::from_getinfo(&reply);
        let relay = if status.is_relay {
            Some(relay::refresh(conn).await?)
        } else {
            None
        };
        let now = Instant::now();
        let read = status.traffic_read_bytes.map(|v| self.read.update(v, now));
        let written = status
            .traffic_written_bytes
            .map(|v| self.written.update(v, now));
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
            *s.errors.entry("parse").or_insert(0) += parse_errors;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let i = Duration::from_secs(5);
        let m = Duration::from_secs(30);
        assert_eq!(backoff(i, m, 1), Duration::from_secs(5));
        assert_eq!(backoff(i, m, 2), Duration::from_secs(10));
        assert_eq!(backoff(i, m, 3), Duration::from_secs(20));
        assert_eq!(backoff(i, m, 4), Duration::from_secs(30));
        assert_eq!(backoff(i, m, 400), Duration::from_secs(30));
        // A cap below the interval never makes us poll faster than the interval.
        assert_eq!(backoff(i, Duration::from_secs(1), 3), i);
    }
}
