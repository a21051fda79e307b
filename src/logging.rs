//! Logs go to journald when it is there (the service case), else to stderr for humans.
//!
//! Nothing logged may contain the cookie, a password, a key or an onion address: the types that
//! hold them ([`crate::control::OnionAddress`], `AuthSecret`) print redacted.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogLevel, LogTarget};

fn journal_present() -> bool {
    std::path::Path::new("/run/systemd/journal/socket").exists()
        && std::env::var_os("JOURNAL_STREAM").is_some()
}

/// Installs the global subscriber. `RUST_LOG`, when set, refines the level.
pub fn init(level: LogLevel, target: LogTarget) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("securedrop_tor_exporter={},warn", level.as_str()))
    });
    let use_journal = match target {
        LogTarget::Journald => true,
        LogTarget::Stderr => false,
        LogTarget::Auto => journal_present(),
    };
    if use_journal {
        if let Ok(layer) = tracing_journald::layer() {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(layer.with_syslog_identifier("securedrop-tor-exporter".into()))
                .try_init();
            return;
        }
    }
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour codes only for a person at a terminal, never into a file or the journal.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false),
        )
        .try_init();
}
