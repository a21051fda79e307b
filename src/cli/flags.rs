//! Every configuration key as a command-line flag, in one table.
//!
//! The flags are one more configuration source, the last and strongest (after the file, the
//! drop-ins and the environment). Each row names the key it sets, so there is no hand-written
//! bridge from flags to keys where a forgotten key would parse and then be ignored; a test checks
//! that every key of [`Config`](crate::config::Config) has a row, and that each row's flag changes
//! its key.

use std::path::PathBuf;

use figment::value::Value;

use super::UsageError;
use crate::config::{self, Sources};

/// What a flag's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A switch: present means `true`.
    Switch,
    /// Text handed to the configuration loader, which checks it like the same key in a file.
    Text,
    /// A whole number.
    Count,
    /// `ROLE=ADDRESS`, repeatable: one entry of the `onion_services` table.
    OnionService,
}

/// One flag: `--<flag>` sets `<key>`.
#[derive(Debug)]
pub struct ConfigFlag {
    pub flag: &'static str,
    pub key: &'static str,
    pub kind: Kind,
    /// The value's placeholder in help (`HOST:PORT`); empty for switches.
    pub value_name: &'static str,
    pub help: &'static str,
    /// A valid value different from the default, for the test that every flag takes effect.
    pub example: &'static str,
}

const fn flag(
    flag: &'static str,
    key: &'static str,
    kind: Kind,
    value_name: &'static str,
    help: &'static str,
    example: &'static str,
) -> ConfigFlag {
    ConfigFlag {
        flag,
        key,
        kind,
        value_name,
        help,
        example,
    }
}

/// The configuration keys as flags, in the order of the configuration's sections.
pub const CONFIG_FLAGS: &[ConfigFlag] = &[
    flag("web.listen-address", "web.listen_address", Kind::Text, "HOST:PORT",
        "Address to serve /metrics on [default: 127.0.0.1:9747]", "127.0.0.1:9748"),
    flag("web.allow-non-loopback", "web.allow_non_loopback", Kind::Switch, "",
        "Allow a listen address outside loopback", "true"),
    flag("web.header-read-timeout", "web.header_read_timeout", Kind::Text, "DURATION",
        "Time a client may take to send its request head [default: 5s]", "7s"),
    flag("web.idle-timeout", "web.idle_timeout", Kind::Text, "DURATION",
        "How long a served connection may idle before its next request [default: 10m]", "11m"),
    flag("tor.control-address", "tor.control_address", Kind::Text, "unix:/PATH|IP:PORT",
        "tor's control port, a unix socket or an IP address (no host names) [default: unix:/run/tor/control]",
        "127.0.0.1:9051"),
    flag("tor.cookie-file", "tor.cookie_file", Kind::Text, "PATH",
        "Cookie file [default: beside the unix socket, e.g. /run/tor/control.authcookie]",
        "/run/tor/other.authcookie"),
    flag("tor.password-file", "tor.password_file", Kind::Text, "PATH",
        "File holding the control password (HASHEDPASSWORD auth)", "/etc/tor/control.pass"),
    flag("tor.refresh-interval", "tor.refresh_interval", Kind::Text, "DURATION",
        "How often to ask tor [default: 5s]", "6s"),
    flag("tor.timeout", "tor.timeout", Kind::Text, "DURATION",
        "Deadline for connecting to tor and for each command's whole exchange [default: 2s]", "3s"),
    flag("tor.max-backoff", "tor.max_backoff", Kind::Text, "DURATION",
        "Longest wait between reconnection attempts [default: 30s]", "31s"),
    flag("traffic.enabled", "traffic.enabled", Kind::Switch, "",
        "Export tor's traffic counters, coarsened (off by default: see docs/privacy.md)", "true"),
    flag("traffic.quantum-bytes", "traffic.quantum_bytes", Kind::Count, "BYTES",
        "Traffic counters move in multiples of this [default: 16777216]", "1048576"),
    flag("traffic.period", "traffic.period", Kind::Text, "DURATION",
        "Traffic counters move at most once per this period [default: 1h]", "2h"),
    flag("onion.self-probe-interval", "onion.self_probe_interval", Kind::Text, "DURATION",
        "HSFETCH our own descriptors this often; 0 is off [default: 0s]", "10m"),
    flag("health.hold-divisor", "health.hold_divisor", Kind::Count, "N",
        "Every hold time divided by this, for time-scaled tests only; leave it at 1 on a server [default: 1]",
        "60"),
    flag("onion-service", "onion_services", Kind::OnionService, "ROLE=ADDRESS",
        "Name an onion service (repeatable; prefer the config file: flags show in ps)",
        "source=2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid"),
    flag("log.level", "log.level", Kind::Text, "LEVEL",
        "error, warn, info, debug or trace [default: info]", "debug"),
    flag("log.target", "log.target", Kind::Text, "TARGET",
        "auto, journald or stderr [default: auto]", "stderr"),
];

/// The flags that say where the configuration is, not what it holds.
pub const SOURCE_FLAGS: &[(&str, &str, &str)] = &[
    ("config", "PATH", "Configuration file; when given it must exist"),
    (
        "config.dir",
        "DIR",
        "Drop-in directory merged after the file, in name order; when given it must exist [default: /etc/securedrop-tor-exporter/config.d]",
    ),
];

/// The configuration flags given, in order (a later one wins, as in a file read after another).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConfigFlags {
    pub config: Option<PathBuf>,
    pub config_dir: Option<PathBuf>,
    /// (row of [`CONFIG_FLAGS`], value as given; "true" for a switch).
    pub values: Vec<(usize, String)>,
}

impl ConfigFlags {
    pub fn is_empty(&self) -> bool {
        *self == ConfigFlags::default()
    }

    /// `self` (flags before the subcommand) followed by `later` (after it), which wins.
    pub fn then(mut self, later: ConfigFlags) -> ConfigFlags {
        self.config = later.config.or(self.config);
        self.config_dir = later.config_dir.or(self.config_dir);
        self.values.extend(later.values);
        self
    }

    /// Takes `--<name>` if it is a configuration flag; `value` is asked for only when it needs one.
    pub(super) fn take(
        &mut self,
        name: &str,
        value: impl FnOnce() -> Result<String, UsageError>,
    ) -> Result<bool, UsageError> {
        match name {
            "config" => self.config = Some(value()?.into()),
            "config.dir" => self.config_dir = Some(value()?.into()),
            _ => match CONFIG_FLAGS.iter().position(|f| f.flag == name) {
                Some(i) if CONFIG_FLAGS[i].kind == Kind::Switch => {
                    self.values.push((i, "true".into()))
                }
                Some(i) => self.values.push((i, value()?)),
                None => return Ok(false),
            },
        }
        Ok(true)
    }

    /// The flags as configuration values for the loader, each under its key.
    pub fn overrides(&self) -> Result<Vec<(String, Value)>, UsageError> {
        let mut out = Vec::new();
        for (i, text) in &self.values {
            let f = &CONFIG_FLAGS[*i];
            match f.kind {
                Kind::Switch => out.push((f.key.to_owned(), Value::from(true))),
                Kind::Text => out.push((f.key.to_owned(), Value::from(text.clone()))),
                Kind::Count => {
                    let n: u64 = text.parse().map_err(|_| {
                        UsageError(format!(
                            "--{}: expected a whole number ({}), got `{text}`",
                            f.flag, f.value_name
                        ))
                    })?;
                    out.push((f.key.to_owned(), Value::from(n)));
                }
                Kind::OnionService => {
                    // No echo of the value: it holds an onion address.
                    let (role, addr) = text.split_once('=').ok_or_else(|| {
                        UsageError(format!("--{}: expected ROLE=ADDRESS", f.flag))
                    })?;
                    out.push((format!("{}.{role}", f.key), Value::from(addr.to_owned())));
                }
            }
        }
        Ok(out)
    }

    /// Where the configuration is read from.
    pub fn sources(&self) -> Sources {
        Sources {
            file: self
                .config
                .clone()
                .unwrap_or_else(|| config::DEFAULT_CONFIG_FILE.into()),
            explicit: self.config.is_some(),
            dir: Some(
                self.config_dir
                    .clone()
                    .unwrap_or_else(|| config::DEFAULT_CONFIG_DIR.into()),
            ),
            dir_explicit: self.config_dir.is_some(),
            env: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// Every leaf key of the configuration, dotted (`web.listen_address`); tables by name.
    fn keys(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) if key != "onion_services" => keys(&key, t, out),
                _ => out.push(key),
            }
        }
    }

    fn no_files() -> Sources {
        Sources {
            file: "/nonexistent/securedrop-tor-exporter-test.toml".into(),
            explicit: false,
            dir: None,
            dir_explicit: false,
            env: false,
        }
    }

    #[test]
    fn every_configuration_key_has_a_flag() {
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        let mut all = Vec::new();
        keys("", &defaults, &mut all);
        // `onion_services` is empty by default, so it is not serialised: it is a key all the same.
        all.push("onion_services".into());
        for key in &all {
            assert!(
                CONFIG_FLAGS.iter().any(|f| f.key == key),
                "configuration key {key} has no flag in CONFIG_FLAGS"
            );
        }
        // The other way round (a flag whose key does not exist) is `every_flag_takes_effect`:
        // the loader refuses an unknown key.
    }

    #[test]
    fn every_flag_takes_effect() {
        let default = crate::config::load(&no_files(), Vec::new()).unwrap();
        for (i, f) in CONFIG_FLAGS.iter().enumerate() {
            let flags = ConfigFlags {
                values: vec![(i, f.example.to_owned())],
                ..ConfigFlags::default()
            };
            let mut overrides = flags.overrides().unwrap();
            if f.key == "traffic.quantum_bytes" || f.key == "traffic.period" {
                // Only checked with the counters on.
                overrides.push(("traffic.enabled".into(), Value::from(true)));
            }
            let loaded = crate::config::load(&no_files(), overrides)
                .unwrap_or_else(|e| panic!("--{} {}: {e}", f.flag, f.example));
            let changed = toml::Table::try_from(&loaded).unwrap();
            let before = toml::Table::try_from(&default).unwrap();
            let get = |t: &toml::Table| {
                f.key
                    .split('.')
                    .try_fold(toml::Value::Table(t.clone()), |v, k| v.get(k).cloned())
            };
            assert_ne!(
                get(&changed),
                get(&before),
                "--{} {} left {} unchanged",
                f.flag,
                f.example,
                f.key
            );
        }
    }

    #[test]
    fn a_later_flag_wins() {
        let mut a = ConfigFlags::default();
        a.take("tor.timeout", || Ok("3s".into())).unwrap();
        let mut b = ConfigFlags::default();
        b.take("tor.timeout", || Ok("4s".into())).unwrap();
        let c = crate::config::load(&no_files(), a.then(b).overrides().unwrap()).unwrap();
        assert_eq!(c.tor.timeout, std::time::Duration::from_secs(4));
    }

    #[test]
    fn bad_values_name_the_flag_not_the_value() {
        let mut f = ConfigFlags::default();
        f.take("onion-service", || Ok("nokeyhere".into())).unwrap();
        let e = f.overrides().unwrap_err().to_string();
        assert_eq!(e, "--onion-service: expected ROLE=ADDRESS");
        let mut f = ConfigFlags::default();
        f.take("traffic.quantum-bytes", || Ok("lots".into()))
            .unwrap();
        assert!(f
            .overrides()
            .unwrap_err()
            .to_string()
            .contains("whole number"));
    }
}
