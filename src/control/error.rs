//! What can go wrong talking to tor.

use std::path::PathBuf;
use std::time::Duration;

use super::auth::AuthError;
use super::reply::ParseError;

/// What can go wrong talking to tor. Which of these a metric counts them as is the snapshot's
/// business (`snapshot::ErrorKind`), not the protocol's.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot connect to tor's control port at {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("tor's control port did not answer within {0:?}")]
    Timeout(Duration),
    #[error("tor closed the control connection")]
    Closed,
    #[error("control connection I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("tor sent a malformed reply: {0}")]
    Protocol(#[from] ParseError),
    #[error("authentication with tor failed: {0}")]
    Auth(String),
    #[error("cannot read the control cookie file {path}: {source}")]
    Cookie {
        path: PathBuf,
        source: crate::small_file::SmallFileError,
    },
    #[error("cannot read the control password file {path}: {source}")]
    Password {
        path: PathBuf,
        source: crate::small_file::SmallFileError,
    },
    #[error("tor refused {verb}: {status} {text}")]
    Refused {
        verb: &'static str,
        status: u16,
        text: String,
    },
}

impl From<AuthError> for ControlError {
    fn from(e: AuthError) -> Self {
        ControlError::Auth(e.to_string())
    }
}
