//! Configuration: defaults → config.toml → config.d/*.toml → environment → command-line flags.
//!
//! This file holds the types and their defaults; [`load`] (in `load.rs`) merges the sources and
//! checks everything before the exporter binds a socket or talks to tor. Values of
//! `onion_services` are addresses, parsed once by `load` into [`OnionAddress`]es, which must
//! never be printed: their `Debug` is redacted, and so is their serialisation.

mod load;

pub use load::{env_var_name, load, ConfigError, Sources};

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::control::ControlAddress;
use crate::control::OnionAddress;

pub const DEFAULT_CONFIG_FILE: &str = "/etc/securedrop-tor-exporter/config.toml";
pub const DEFAULT_CONFIG_DIR: &str = "/etc/securedrop-tor-exporter/config.d";
pub const ENV_PREFIX: &str = "SECUREDROP_TOR_EXPORTER_";
/// Not 9099 (atx tor_exporter) or 9035 (tor's MetricsPort convention): see README.
pub const DEFAULT_PORT: u16 = 9747;

/// Only `load` makes one from text (no `Deserialize`): it reads the sources into a form with the
/// addresses still text, says which key is wrong and where it came from, then parses them.
/// `Serialize` is for the defaults and for `check-config`, with every address redacted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Config {
    pub web: WebConfig,
    pub tor: TorConfig,
    pub traffic: TrafficConfig,
    pub onion: OnionConfig,
    pub health: HealthConfig,
    pub log: LogConfig,
    /// Role name → onion address. See docs/interfaces.md.
    pub onion_services: OnionServices,
}

/// Role name → onion address, each address checked (v3, checksum) when the configuration was
/// loaded. Its Debug output shows the roles only; serialised, every address is `<redacted>`,
/// so no path through serde (such as `check-config`'s output) can print one.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OnionServices(pub BTreeMap<String, OnionAddress>);

impl fmt::Debug for OnionServices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Serialize for OnionServices {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.keys().map(|role| (role, REDACTED)))
    }
}

/// What an onion address is shown as.
const REDACTED: &str = "<redacted>";

impl std::ops::Deref for OnionServices {
    type Target = BTreeMap<String, OnionAddress>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    pub listen_address: SocketAddr,
    pub allow_non_loopback: bool,
    /// How long a client may take to send its request head.
    #[serde(with = "crate::duration_text::serde_text")]
    pub header_read_timeout: Duration,
    /// How long a connection that completed a request may idle before the next one: longer
    /// than any scrape interval, so Prometheus keeps one connection (one Tor stream).
    #[serde(with = "crate::duration_text::serde_text")]
    pub idle_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TorConfig {
    pub control_address: ControlAddress,
    pub cookie_file: Option<PathBuf>,
    pub password_file: Option<PathBuf>,
    #[serde(with = "crate::duration_text::serde_text")]
    pub refresh_interval: Duration,
    /// Deadline for connecting and for each command's whole exchange (the request and all of
    /// its reply); waiting for an event has none.
    #[serde(with = "crate::duration_text::serde_text")]
    pub timeout: Duration,
    /// Longest wait between reconnection attempts.
    #[serde(with = "crate::duration_text::serde_text")]
    pub max_backoff: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrafficConfig {
    /// Export tor's traffic counters at all (coarsened). Off by default: on a server where
    /// sources connect, even coarse counters keep a record of submission times and sizes on the
    /// monitoring host (docs/privacy.md, "Traffic").
    pub enabled: bool,
    pub quantum_bytes: u64,
    #[serde(with = "crate::duration_text::serde_text")]
    pub period: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnionConfig {
    /// How often to HSFETCH our own descriptors; 0 turns the self-probe off (the default).
    #[serde(with = "crate::duration_text::serde_text")]
    pub self_probe_interval: Duration,
}

/// The health judgements (`crate::health`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Every hold time (and the 12-hour reminder) divided by this. For time-scaled tests only:
    /// leave it at 1 on a server, where the holds match the Prometheus alerts' `for:`.
    pub hold_divisor: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig { hold_divisor: 1 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub level: LogLevel,
    pub target: LogTarget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    /// journald when the journal socket exists, else stderr.
    Auto,
    Journald,
    Stderr,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen_address: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            allow_non_loopback: false,
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(600),
        }
    }
}

impl Default for TorConfig {
    fn default() -> Self {
        TorConfig {
            control_address: ControlAddress::Unix(PathBuf::from("/run/tor/control")),
            cookie_file: None,
            password_file: None,
            refresh_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl Default for TrafficConfig {
    fn default() -> Self {
        TrafficConfig {
            enabled: false,
            quantum_bytes: 16 * 1024 * 1024,
            period: Duration::from_secs(3600),
        }
    }
}

impl Default for OnionConfig {
    fn default() -> Self {
        OnionConfig {
            self_probe_interval: Duration::ZERO,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: LogLevel::Info,
            target: LogTarget::Auto,
        }
    }
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl Config {
    /// The onion services, role and address, in role order.
    pub fn onion_roles(&self) -> Vec<(String, OnionAddress)> {
        self.onion_services
            .iter()
            .map(|(role, a)| (role.clone(), a.clone()))
            .collect()
    }

    /// The configuration as TOML, with onion addresses replaced by a placeholder (as
    /// [`OnionServices`] always serialises).
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot show the configuration: {e}\n"))
    }
}
