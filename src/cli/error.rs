//! What can go wrong in a command, as one type, and how it is said on standard error.
//!
//! Each variant wraps the error of the layer that failed. Those errors already say what failed
//! and where (`config file X: …`, `cannot listen on …`), so most variants add nothing to the
//! message (`transparent`); the binary prints [`error_chain`] of the whole, which is the text
//! users, the package's scripts and the tests have read since the handlers lived in `main.rs`.
//! No variant holds an onion address or a key: the layers below never put one in an error, and
//! the ones built here name files and flags only.

use std::error::Error;
use std::io;

use super::UsageError;
use crate::config::ConfigError;
use crate::control::address::BadOnionAddress;
use crate::http::ListenError;
use crate::keys::KeyError;
use crate::recovery::run::RecoverError;
use crate::setup::edit::EditError;
use crate::setup::socket_generator::GeneratorError;
use crate::setup::tor::TorError;
use crate::small_file::SmallFileError;

/// Why a command failed. The binary exits 1 on it, or 2 for a question command
/// ([`Cmd::is_question`](super::Cmd::is_question)), whose 1 means "no".
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A configuration flag whose value the loader cannot take, or flags that contradict each
    /// other; found when the command runs rather than when the line is parsed, so it exits 1
    /// like any other failure of the command.
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Changing the torrc in place (`torrc add-include|remove-include`).
    #[error(transparent)]
    Edit(#[from] EditError),
    /// Running tor to check its configuration (`torrc verify|onion-dirs`).
    #[error(transparent)]
    Tor(#[from] TorError),
    /// Reading or writing client-authorization keys (`client-key`).
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Recover(#[from] RecoverError),
    #[error(transparent)]
    Generator(#[from] GeneratorError),
    /// Nothing to serve on (`serve`): systemd's sockets or our own bind.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// Serving stopped on an error (`serve`).
    #[error(transparent)]
    Serve(#[from] crate::RunError),
    /// `onion-label`'s standard input is not a v3 address (the message never repeats the text).
    #[error("standard input: {0}")]
    OnionLabel(BadOnionAddress),
    /// A file the command reads (a torrc), or standard input: `what` names it.
    #[error("cannot read {what}")]
    Read {
        what: String,
        #[source]
        source: io::Error,
    },
    /// A hostname file read as a small regular file, so that a FIFO or `/dev/zero` fails at
    /// once (`check-onion-address FILE`).
    #[error("cannot read {what}")]
    ReadSmall {
        what: String,
        #[source]
        source: SmallFileError,
    },
    /// Writing a command's output (`torrc … --print`), where a closed pipe must fail the
    /// command rather than leave half a torrc unnoticed.
    #[error("cannot write to {what}")]
    Write {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// Reading `onion-label`'s standard input; said as the I/O error alone, as it always was.
    #[error(transparent)]
    StandardInput(io::Error),
    /// Building the runtime `serve` runs on.
    #[error(transparent)]
    Runtime(io::Error),
    /// Asking the loopback listener for its address, for the `serving /metrics` line.
    #[error(transparent)]
    LocalAddr(io::Error),
}

/// The error and its causes, each said once: an error whose own message already ends with its
/// cause's text (`cannot read X: No such file…`) is not followed by that cause again.
///
/// Walks [`Error::source`], so a `transparent` variant of [`CliError`] adds no line of its own.
pub fn error_chain(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_said_is_not_said_again() {
        let e = CliError::Read {
            what: "/etc/tor/torrc".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert_eq!(
            error_chain(&e),
            "cannot read /etc/tor/torrc: entity not found"
        );
        let e = CliError::ReadSmall {
            what: "hostname".into(),
            source: SmallFileError::Io(io::Error::from(io::ErrorKind::NotFound)),
        };
        assert_eq!(error_chain(&e), "cannot read hostname: entity not found");
    }

    #[test]
    fn a_transparent_variant_says_its_error_alone() {
        let e = CliError::from(UsageError("--x: bad".into()));
        assert_eq!(error_chain(&e), "--x: bad");
        let e = CliError::StandardInput(io::Error::other("stream did not contain valid UTF-8"));
        assert_eq!(error_chain(&e), "stream did not contain valid UTF-8");
    }
}
