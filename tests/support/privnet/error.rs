//! The harness's error type (`Error`, `Result`) and `wait_for`, the way it waits for anything.

use std::fmt;
use std::time::Duration;

use crate::support::poll;

pub(super) const POLL: Duration = Duration::from_millis(250);

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

pub(super) fn err<E: fmt::Display>(context: &str) -> impl FnOnce(E) -> Error + '_ {
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
