//! The one reconnect loop both control connections use (the refresher's and the onion-event
//! listener's): connect, hand the connection to a `Session`, and after a failure wait
//! interval·2^(n-1) up to `max_backoff` before trying again.
//!
//! One loop, so backoff, failure counting and "log the first failure, not every retry" are the
//! same for both, and a fix to one is a fix to both.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::config::Config;
use crate::control::{ConnectOptions, Connection, ControlError, Limits};

/// How to reach tor, from the configuration (the same for both connections).
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

/// Consecutive failures of one connection, as a session sees them, and when its current
/// attempt began.
#[derive(Debug)]
pub struct Failures {
    count: u32,
    attempt: Instant,
}

impl Failures {
    /// A paced session (see `Session::PACED`) calls this as each attempt (a refresh) begins.
    pub fn attempt_started(&mut self) {
        self.attempt = Instant::now();
    }

    /// How long the current attempt has taken so far (from its connect, for the first).
    pub fn since_attempt(&self) -> Duration {
        self.attempt.elapsed()
    }

    /// The connection works (a refresh succeeded, the subscription holds): the next failure
    /// is the first again. True if it was failing until now.
    pub fn recovered(&mut self) -> bool {
        std::mem::take(&mut self.count) > 0
    }
}

/// What a task does with a control connection.
pub(crate) trait Session {
    /// The session works in periods (the refresher: one refresh per interval), so the wait
    /// after a failure counts from the start of the failed attempt, keeping the period. An
    /// unpaced session (the event listener) waits the whole backoff after a failure.
    const PACED: bool;

    /// Uses `conn` until it fails (`Err`) or the exporter stops (`Ok`). Calls
    /// [`Failures::recovered`] once the connection has proven itself.
    async fn run(
        &mut self,
        conn: Connection,
        failures: &mut Failures,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ControlError>;

    /// After a failed connect or a lost connection; `failures` is already counted (1 for the
    /// first in a row), and `elapsed` is how long the failed attempt took.
    fn failed(&mut self, error: &ControlError, failures: u32, elapsed: Duration);
}

/// Keeps `session` connected until `shutdown` turns true.
pub(crate) async fn keep_connected<S: Session>(
    opts: ConnectOptions,
    interval: Duration,
    max_backoff: Duration,
    mut session: S,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failures = Failures {
        count: 0,
        attempt: Instant::now(),
    };
    loop {
        failures.attempt_started();
        let result = match Connection::connect(&opts).await {
            Ok(conn) => session.run(conn, &mut failures, &mut shutdown).await,
            Err(e) => Err(e),
        };
        let Err(e) = result else { return };
        failures.count = failures.count.saturating_add(1);
        let elapsed = failures.attempt.elapsed();
        session.failed(&e, failures.count, elapsed);
        let full = backoff(interval, max_backoff, failures.count);
        let wait = if S::PACED {
            full.saturating_sub(elapsed)
        } else {
            full
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = crate::shutdown::stopped(&mut shutdown) => return,
        }
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

    /// A session whose connects all fail (nothing listens), recording when each failure was
    /// reported, on tokio's paused clock so the waits are exact.
    struct Failing {
        at: std::sync::Arc<std::sync::Mutex<Vec<(u32, tokio::time::Instant)>>>,
    }

    impl Session for Failing {
        const PACED: bool = false;

        async fn run(
            &mut self,
            _conn: Connection,
            _failures: &mut Failures,
            _shutdown: &mut watch::Receiver<bool>,
        ) -> Result<(), ControlError> {
            unreachable!("nothing listens, so no connection is ever made")
        }

        fn failed(&mut self, _error: &ControlError, failures: u32, _elapsed: Duration) {
            self.at
                .lock()
                .unwrap()
                .push((failures, tokio::time::Instant::now()));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failed_connects_are_retried_on_the_backoff_schedule_until_shutdown() {
        let dir = crate::temp_dir::tempdir().unwrap();
        let mut config = Config::default();
        config.tor.control_address =
            crate::control::ControlAddress::Unix(dir.path().join("nothing-listens"));
        let at = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop_tx, stop_rx) = watch::channel(false);
        let start = tokio::time::Instant::now();
        let task = tokio::spawn(keep_connected(
            connect_options(&config),
            Duration::from_secs(5),
            Duration::from_secs(30),
            Failing { at: at.clone() },
            stop_rx,
        ));
        // 0, +5, +10, +20, +30, +30 s: the schedule of `backoff`, failures counted from 1.
        tokio::time::sleep(Duration::from_secs(96)).await;
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        let seen: Vec<(u32, u64)> = at
            .lock()
            .unwrap()
            .iter()
            .map(|(n, t)| (*n, t.duration_since(start).as_secs()))
            .collect();
        assert_eq!(
            seen,
            vec![(1, 0), (2, 5), (3, 15), (4, 35), (5, 65), (6, 95)],
            "failure count and seconds since start"
        );
    }
}
