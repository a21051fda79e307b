//! Logs go to journald when it is there (the service case), else to stderr for humans.
//!
//! Nothing logged may contain the cookie, a password, a key or an onion address: the types that
//! hold them ([`crate::control::OnionAddress`], `AuthSecret`) print redacted.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogLevel, LogTarget};

fn journal_present() -> bool {
    std::path::Path::new("/run/systemd/journal/socket").exists()
        && std::env::var_os("JOURNAL_STREAM").is_some()
}

/// Installs the global subscriber. `RUST_LOG`, when set and valid, refines the level: a list of
/// `target=level` directives (`Targets`' grammar: no regular expressions, so the crate needs no
/// regex engine for a filter that only ever names this crate).
pub fn init(level: LogLevel, target: LogTarget) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| default_filter(level));
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
                // No colour codes: they need an extra crate and would end up in files and mail.
                .with_ansi(false)
                .with_target(false),
        )
        .try_init();
}

/// This crate at the configured level, everything else at `warn`.
fn default_filter(level: LogLevel) -> Targets {
    Targets::new()
        .with_target("securedrop_tor_exporter", tracing_level(level))
        .with_default(tracing::Level::WARN)
}

fn tracing_level(level: LogLevel) -> tracing::Level {
    match level {
        LogLevel::Error => tracing::Level::ERROR,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Trace => tracing::Level::TRACE,
    }
}
