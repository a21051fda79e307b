//! Waiting for a condition with a deadline: the one way the tests wait for anything (never a
//! bare sleep). One loop for blocking tests, one for async tests; the async one keeps tokio's
//! clock, so it also works in tests that pause time.

use std::fmt;
use std::future::Future;
use std::time::Duration;

/// A wait that ran out: what was awaited, for how long, and the last reason it did not hold.
#[derive(Debug, Clone)]
pub struct TimedOut {
    pub what: String,
    pub timeout: Duration,
    pub last: String,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for {}; last: {}",
            self.timeout, self.what, self.last
        )
    }
}

impl std::error::Error for TimedOut {}

/// Calls `check` every `every` until it returns `Ok`, or fails once `timeout` has passed with
/// `what` and the last `Err`. `check` always runs at least once.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> Result<T, TimedOut> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let last = match check() {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if std::time::Instant::now() >= deadline {
            return Err(timed_out(what, timeout, last));
        }
        std::thread::sleep(every);
    }
}

/// [`wait_for`] for async checks, on tokio's clock.
pub async fn wait_for_async<T, F, Fut>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: F,
) -> Result<T, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(timed_out(what, timeout, last));
        }
        tokio::time::sleep(every).await;
    }
}

/// Polls the async condition `cond` every 10 ms until it holds or `limit` passes; returns
/// whether it held.
pub async fn eventually<F, Fut>(limit: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let check = || {
        let held = cond();
        async move {
            if held.await {
                Ok(())
            } else {
                Err(String::new())
            }
        }
    };
    wait_for_async("a condition", limit, Duration::from_millis(10), check)
        .await
        .is_ok()
}

fn timed_out(what: &str, timeout: Duration, last: String) -> TimedOut {
    TimedOut {
        what: what.to_owned(),
        timeout,
        last,
    }
}
