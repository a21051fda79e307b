//! Loading and validation: every error names where the bad value came from (file or variable),
//! the key, and what was expected; errors about `onion_services` name the key only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;

use serde::Deserialize;

use super::{
    Config, HealthConfig, LogConfig, OnionConfig, OnionServices, TorConfig, TrafficConfig,
    WebConfig, DEFAULT_CONFIG_DIR, DEFAULT_CONFIG_FILE, ENV_PREFIX,
};
use crate::control::address::{check, AddressError};
use crate::control::OnionAddress;

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The main file; `explicit` means it was named on the command line and must exist.
    pub file: PathBuf,
    pub explicit: bool,
    /// Drop-in directory whose `*.toml` files are merged in name order; missing is fine unless
    /// `dir_explicit` (named on the command line, where a typo would otherwise pass silently).
    pub dir: Option<PathBuf>,
    pub dir_explicit: bool,
    /// Environment variables are read unless this is false (tests).
    pub env: bool,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            file: DEFAULT_CONFIG_FILE.into(),
            explicit: false,
            dir: Some(DEFAULT_CONFIG_DIR.into()),
            dir_explicit: false,
            env: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
    #[error("config file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: crate::small_file::SmallFileError,
    },
    #[error("config directory {0} (--config.dir) does not exist")]
    MissingDir(PathBuf),
    #[error("cannot read config directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// figment's message already names the key, the expected form and the file or variable.
    #[error("invalid configuration: {0}")]
    Figment(String),
    #[error("invalid configuration: key `{key}` ({origin}): expected {expected}")]
    Invalid {
        key: String,
        origin: String,
        expected: String,
    },
}

/// [`Config`] as its sources write it: the onion addresses still text, so that a wrong one is
/// refused by [`onion_services`], which names the key and where it came from (and never the
/// address), rather than by serde in the middle of reading. Its fields are `Config`'s, in the
/// same order (serde lists them in the "unknown key" error); a field missing here fails to
/// compile in [`AsWritten::parse`].
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct AsWritten {
    web: WebConfig,
    tor: TorConfig,
    traffic: TrafficConfig,
    onion: OnionConfig,
    health: HealthConfig,
    log: LogConfig,
    onion_services: BTreeMap<String, String>,
}

impl AsWritten {
    fn parse(self, figment: &Figment) -> Result<Config, ConfigError> {
        validate(&self, figment)?;
        let onion_services = onion_services(&self.onion_services, figment)?;
        let AsWritten {
            web,
            tor,
            traffic,
            onion,
            health,
            log,
            onion_services: _,
        } = self;
        Ok(Config {
            web,
            tor,
            traffic,
            onion,
            health,
            log,
            onion_services,
        })
    }
}

/// Loads and validates the configuration. `overrides` holds the command-line flags.
pub fn load(
    sources: &Sources,
    overrides: Vec<(String, figment::value::Value)>,
) -> Result<Config, ConfigError> {
    let figment = figment(sources, overrides)?;
    let written: AsWritten = figment
        .extract()
        .map_err(|e| ConfigError::Figment(redact_addresses(&describe(e))))?;
    written.parse(&figment).map_err(|e| match e {
        ConfigError::Invalid {
            key,
            origin,
            expected,
        } => ConfigError::Invalid {
            key: redact_addresses(&key),
            origin: redact_addresses(&origin),
            expected: redact_addresses(&expected),
        },
        other => other,
    })
}

/// An error message with every onion address in it replaced, wherever the address stood: as a
/// value (a `log.level` set to one), as a key (the role mapping written the wrong way round,
/// `"<address>" = "source"`) or in an environment variable's name, where it is upper case.
/// Any run of 40 or more base32 letters (a v3 address has 56; one with a typo is still mostly
/// an address) counts: no key, variable or file name of the exporter is that long.
fn redact_addresses(text: &str) -> String {
    let is_b32 = |c: char| c.is_ascii_alphabetic() || ('2'..='7').contains(&c);
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 40 {
            out.push_str("<onion address>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_b32(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn figment(
    sources: &Sources,
    overrides: Vec<(String, figment::value::Value)>,
) -> Result<Figment, ConfigError> {
    let mut f = Figment::from(Serialized::defaults(Config::default()));
    if sources.explicit {
        if !sources.file.exists() {
            return Err(ConfigError::Missing(sources.file.clone()));
        }
        check_readable(&sources.file)?;
        f = f.merge(Toml::file_exact(&sources.file));
    } else if sources.file.exists() {
        check_readable(&sources.file)?;
        f = f.merge(Toml::file_exact(&sources.file));
    }
    if let Some(dir) = &sources.dir {
        if sources.dir_explicit && !dir.is_dir() {
            return Err(ConfigError::MissingDir(dir.clone()));
        }
        for file in dropins(dir)? {
            check_readable(&file)?;
            f = f.merge(Toml::file_exact(file));
        }
    }
    if sources.env {
        f = f.merge(Env::prefixed(ENV_PREFIX).split("__"));
    }
    Ok(f.merge(Flags(overrides)))
}

/// Command-line flags as a figment provider, so errors say "command-line flag".
struct Flags(Vec<(String, figment::value::Value)>);

impl figment::Provider for Flags {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("command-line flag")
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let mut dict = figment::value::Dict::new();
        for (key, value) in &self.0 {
            let nested = figment::util::nest(key, value.clone());
            if let figment::value::Value::Dict(_, d) = nested {
                dict = merge_dicts(dict, d);
            }
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

fn merge_dicts(mut a: figment::value::Dict, b: figment::value::Dict) -> figment::value::Dict {
    use figment::value::Value;
    for (k, v) in b {
        let merged = match (a.remove(&k), v) {
            (Some(Value::Dict(_, x)), Value::Dict(tag, y)) => Value::Dict(tag, merge_dicts(x, y)),
            (_, v) => v,
        };
        a.insert(k, merged);
    }
    a
}

/// Largest configuration file read (a real one is a few hundred bytes).
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// A FIFO or device as a config file would block or bloat the exporter before it could say why
/// (figment reads with plain `read`): refuse anything but a regular file of sane size first.
fn check_readable(path: &Path) -> Result<(), ConfigError> {
    crate::small_file::open_regular(path, MAX_CONFIG_BYTES)
        .map(drop)
        .map_err(|source| ConfigError::Unreadable {
            path: std::path::absolute(path).unwrap_or(path.to_owned()),
            source,
        })
}

fn dropins(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ConfigError::Dir {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        // Not only regular files: a FIFO named *.toml must be refused by `check_readable`, not
        // skipped without a word.
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && !p.is_dir())
        .collect();
    files.sort();
    Ok(files)
}

/// Where a value came from: the file's full path (figment would print it relative to the
/// working directory, which names no file an admin can find), the environment variable by its
/// full name, or the provider's name.
fn where_from(md: &figment::Metadata, path: &[String]) -> String {
    match &md.source {
        Some(figment::Source::File(file)) => {
            format!(
                "in {}",
                std::path::absolute(file).unwrap_or(file.clone()).display()
            )
        }
        Some(other) => format!("in {other}"),
        None if md.name.contains("environment variable") && !path.is_empty() => {
            format!("from environment variable {}", env_var_name(path))
        }
        None => format!("from {}", md.name),
    }
}

/// The environment variable that sets a key: `tor.timeout` → `SECUREDROP_TOR_EXPORTER_TOR__TIMEOUT`.
pub fn env_var_name(path: &[String]) -> String {
    format!("{ENV_PREFIX}{}", path.join("__").to_ascii_uppercase())
}

/// What was expected, in words, for the kinds whose figment/serde wording nests backticks
/// (``expected `one of `a`, `b```) or gives no hint of the form.
fn expectation(kind: &figment::error::Kind, path: &[String]) -> String {
    use figment::error::Kind;
    let list = |names: &[&str]| names.join(", ");
    match kind {
        Kind::UnknownField(found, expected) => {
            let section = match path.len() {
                0 | 1 => "the top level".to_owned(),
                n => format!("[{}]", path[..n - 1].join(".")),
            };
            format!(
                "unknown key `{found}`; expected one of the keys of {section}: {}",
                list(expected)
            )
        }
        Kind::UnknownVariant(found, expected) => {
            format!("`{found}` is not one of: {}", list(expected))
        }
        // TOML syntax errors quote the offending line, which may hold an onion address: keep the
        // position and the reason, drop the quoted source.
        Kind::Message(m) if m.starts_with("TOML parse error") => m
            .lines()
            .filter(|l| {
                let t = l.trim_start();
                !t.is_empty()
                    && !t
                        .trim_start_matches(|c: char| c.is_ascii_digit())
                        .trim_start()
                        .starts_with('|')
            })
            .collect::<Vec<_>>()
            .join(": "),
        Kind::Message(m) if path.join(".") == "web.listen_address" => format!(
            "{m}; expected IP:PORT, e.g. 127.0.0.1:9747 or [::1]:9747 (an IP address, not a host name)"
        ),
        other => other.to_string(),
    }
}

/// Figment errors, one per line, each with its key and origin.
fn describe(err: figment::Error) -> String {
    err.into_iter()
        .map(|e| {
            let mut s = expectation(&e.kind, &e.path);
            if !e.path.is_empty() {
                s = format!("key `{}`: {s}", e.path.join("."));
            }
            if let Some(md) = &e.metadata {
                s.push_str(&format!(" ({})", where_from(md, &e.path)));
            }
            s
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn origin(figment: &Figment, key: &str) -> String {
    let path: Vec<String> = key.split('.').map(str::to_owned).collect();
    figment
        .find_metadata(key)
        .map_or_else(|| "from defaults".into(), |md| where_from(md, &path))
}

fn invalid(figment: &Figment, key: &str, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        origin: origin(figment, key),
        expected: expected.to_owned(),
    }
}

/// Every key but `onion_services`, which [`onion_services`] checks after these.
fn validate(c: &AsWritten, figment: &Figment) -> Result<(), ConfigError> {
    let invalid = |key: &str, expected: &str| invalid(figment, key, expected);
    if !c.web.allow_non_loopback && !c.web.listen_address.ip().is_loopback() {
        return Err(invalid(
            "web.listen_address",
            "a loopback address (127.0.0.0/8 or ::1): the metrics are reached through the client-authorized onion service; set web.allow_non_loopback = true to override",
        ));
    }
    if c.web.header_read_timeout < Duration::from_millis(100) {
        return Err(invalid("web.header_read_timeout", "at least 100ms"));
    }
    if c.web.idle_timeout < c.web.header_read_timeout {
        return Err(invalid(
            "web.idle_timeout",
            "at least web.header_read_timeout (and well over the scrape interval)",
        ));
    }
    if c.tor.refresh_interval < Duration::from_millis(100) {
        return Err(invalid("tor.refresh_interval", "at least 100ms"));
    }
    if c.tor.timeout.is_zero() {
        return Err(invalid("tor.timeout", "a duration above 0"));
    }
    if c.tor.max_backoff < Duration::from_millis(100) {
        return Err(invalid("tor.max_backoff", "at least 100ms"));
    }
    if c.traffic.quantum_bytes == 0 {
        return Err(invalid(
            "traffic.quantum_bytes",
            "a number of bytes above 0",
        ));
    }
    if !c.onion.self_probe_interval.is_zero()
        && c.onion.self_probe_interval < Duration::from_secs(60)
    {
        return Err(invalid(
            "onion.self_probe_interval",
            "0 (off) or at least 60s",
        ));
    }
    if c.health.hold_divisor == 0 {
        return Err(invalid(
            "health.hold_divisor",
            "a whole number of at least 1 (1 on a server; larger only in time-scaled tests)",
        ));
    }
    Ok(())
}

/// `onion_services` parsed, once: each role a name of ours, each address a v3 one
/// ([`check`]), no address named twice. Errors name the key `onion_services.ROLE`, never the
/// address.
fn onion_services(
    written: &BTreeMap<String, String>,
    figment: &Figment,
) -> Result<OnionServices, ConfigError> {
    let invalid = |key: &str, expected: &str| invalid(figment, key, expected);
    let mut parsed = BTreeMap::new();
    for (role, address) in written {
        let key = format!("onion_services.{role}");
        if role.is_empty()
            || role.len() > 32
            || !role
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            let hint = if OnionAddress::new(role).is_ok() {
                " (this key is an onion address: the mapping is role = \"address\", e.g. source = \"….onion\")"
            } else {
                ""
            };
            return Err(invalid(
                &key,
                &format!("a role name of 1-32 characters [a-z0-9_-]{hint}"),
            ));
        }
        // The value is an address: say what is wrong without repeating it.
        match check(address) {
            Ok(a) => {
                parsed.insert(role.clone(), a);
            }
            Err(AddressError::Shape) => {
                return Err(invalid(
                    &key,
                    &format!(
                        "a v3 onion address for role `{role}` (56 characters of a-z and 2-7, optionally with .onion)"
                    ),
                ));
            }
            Err(AddressError::NotV3(e)) => {
                return Err(invalid(
                    &key,
                    &format!("a v3 onion address for role `{role}`, but {e}"),
                ));
            }
        }
    }
    let mut seen = std::collections::HashMap::new();
    for (role, address) in &parsed {
        if let Some(other) = seen.insert(address, role) {
            return Err(invalid(
                &format!("onion_services.{role}"),
                &format!("an address not already named `{other}`"),
            ));
        }
    }
    Ok(OnionServices(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ControlAddress;
    use std::io::Write;

    fn sources(file: &Path) -> Sources {
        Sources {
            file: file.to_owned(),
            explicit: true,
            dir: None,
            dir_explicit: false,
            env: false,
        }
    }

    fn write(content: &str) -> crate::temp_dir::NamedTempFile {
        let mut f = crate::temp_dir::Builder::new()
            .suffix(".toml")
            .tempfile()
            .unwrap();
        f.write_all(content.as_bytes()).unwrap();
        f
    }

    fn no_overrides() -> Vec<(String, figment::value::Value)> {
        Vec::new()
    }

    #[test]
    fn defaults_need_no_file() {
        let s = Sources {
            file: "/nonexistent/config.toml".into(),
            explicit: false,
            dir: None,
            dir_explicit: false,
            env: false,
        };
        let c = load(&s, no_overrides()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.web.listen_address.to_string(), "127.0.0.1:9747");
    }

    #[test]
    fn explicit_missing_file_is_an_error_naming_it() {
        let s = sources(Path::new("/nonexistent/x.toml"));
        let e = load(&s, no_overrides()).unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/x.toml") && e.contains("does not exist"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let f = write("[web]\nlisten_adress = \"127.0.0.1:1\"\n");
        let e = load(&sources(f.path()), no_overrides())
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen_adress"), "{e}");
        assert!(e.contains(&f.path().display().to_string()), "{e}");
        assert!(e.contains("expected"), "{e}");
    }

    #[test]
    fn bad_value_names_file_key_and_expectation() {
        let f = write("[tor]\nrefresh_interval = \"soon\"\n");
        let e = load(&sources(f.path()), no_overrides())
            .unwrap_err()
            .to_string();
        assert!(e.contains("tor.refresh_interval"), "{e}");
        assert!(e.contains(&f.path().display().to_string()), "{e}");
    }

    #[test]
    fn non_loopback_listen_is_refused_unless_allowed() {
        let f = write("[web]\nlisten_address = \"0.0.0.0:9747\"\n");
        let e = load(&sources(f.path()), no_overrides())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("web.listen_address")
                && e.contains("loopback")
                && e.contains(&f.path().display().to_string()),
            "{e}"
        );
        let f = write("[web]\nlisten_address = \"0.0.0.0:9747\"\nallow_non_loopback = true\n");
        assert!(load(&sources(f.path()), no_overrides()).is_ok());
        let f = write("[web]\nlisten_address = \"[::1]:9747\"\n");
        assert!(load(&sources(f.path()), no_overrides()).is_ok());
    }

    #[test]
    fn control_address_forms() {
        let f = write("[tor]\ncontrol_address = \"127.0.0.1:9051\"\n");
        let c = load(&sources(f.path()), no_overrides()).unwrap();
        assert_eq!(
            c.tor.control_address,
            ControlAddress::Tcp("127.0.0.1:9051".parse().unwrap())
        );
        let f = write("[tor]\ncontrol_address = \"unix:relative\"\n");
        let e = load(&sources(f.path()), no_overrides())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tor.control_address") && e.contains("unix:/absolute/path"),
            "{e}"
        );
    }

    #[test]
    fn bad_onion_address_error_does_not_repeat_it() {
        let secret = format!("{}1", "x".repeat(55));
        let f = write(&format!("[onion_services]\nsource = \"{secret}\"\n"));
        let e = load(&sources(f.path()), no_overrides())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("onion_services.source") && e.contains(&f.path().display().to_string()),
            "{e}"
        );
        assert!(!e.contains(&secret), "{e}");
        let real = valid_address(1);
        let ok = write(&format!("[onion_services]\nsource = \"{real}\"\n"));
        let c = load(&sources(ok.path()), no_overrides()).unwrap();
        assert!(
            !format!("{c:?}").contains(&real),
            "Debug must not show addresses"
        );
    }

    /// A well-formed v3 address (right checksum and version) for key bytes `n`.
    fn valid_address(n: u8) -> String {
        OnionAddress::from_public_key(&[n; 32]).expose().to_owned()
    }

    #[test]
    fn a_mistyped_onion_address_names_the_role_and_never_the_address() {
        let real = valid_address(2);
        let mut typo = real.clone().into_bytes();
        typo[10] = if typo[10] == b'q' { b'r' } else { b'q' };
        let typo = String::from_utf8(typo).unwrap();
        let f = write(&format!(
            "[onion_services]\njournalist = \"{typo}.onion\"\n"
        ));
        let e = load(&sources(f.path()), no_overrides())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("onion_services.journalist")
                && e.contains("role `journalist`")
                && e.contains("checksum does not match"),
            "{e}"
        );
        assert!(!e.contains(&typo) && !e.contains(&real), "{e}");
    }

    /// Parsed once, here: the configuration holds the address itself (no `.onion`, no white
    /// space), so one address written two ways is seen as one, and refused under a second role.
    #[test]
    fn onion_addresses_are_parsed_at_load_and_named_once() {
        let a = valid_address(7);
        let f = write(&format!("[onion_services]\nsource = \" {a}.onion \"\n"));
        let c = load(&sources(f.path()), no_overrides()).unwrap();
        assert_eq!(c.onion_services["source"], OnionAddress::new(&a).unwrap());
        let f = write(&format!(
            "[onion_services]\njournalist = \"{a}\"\nsource = \"{a}.onion\"\n"
        ));
        let e = load(&sources(f.path()), no_overrides())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("onion_services.source") && e.contains("not already named `journalist`"),
            "{e}"
        );
        assert!(!e.contains(&a), "{e}");
    }

    /// The other keys are checked before `onion_services`, as when the addresses were checked
    /// with them: the first error reported stays the same.
    #[test]
    fn other_keys_are_judged_before_the_addresses() {
        let f =
            write("[web]\nlisten_address = \"0.0.0.0:9747\"\n[onion_services]\nsource = \"x\"\n");
        let e = load(&sources(f.path()), no_overrides())
            .unwrap_err()
            .to_string();
        assert!(e.contains("web.listen_address"), "{e}");
    }

    #[test]
    fn dropins_merge_in_name_order_and_redaction_hides_addresses() {
        let dir = crate::temp_dir::tempdir().unwrap();
        let a = valid_address(3);
        let b = valid_address(4);
        std::fs::write(
            dir.path().join("40-sd.toml"),
            format!("[onion_services]\nsource = \"{a}\"\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("50-metrics.toml"),
            format!("[onion_services]\nmetrics = \"{b}.onion\"\n"),
        )
        .unwrap();
        std::fs::write(dir.path().join("README"), "not toml").unwrap();
        let s = Sources {
            file: "/nonexistent".into(),
            explicit: false,
            dir: Some(dir.path().into()),
            dir_explicit: false,
            env: false,
        };
        let c = load(&s, no_overrides()).unwrap();
        assert_eq!(c.onion_roles().len(), 2);
        let shown = c.to_redacted_toml();
        assert!(!shown.contains(&a) && !shown.contains(&b), "{shown}");
        assert!(shown.contains("metrics = \"<redacted>\""));
    }

    #[test]
    fn host_names_are_refused_as_control_address() {
        for bad in ["localhost:9051", "tor.example:9051", "127.0.0.1:0"] {
            let f = write(&format!("[tor]\ncontrol_address = \"{bad}\"\n"));
            let e = load(&sources(f.path()), no_overrides())
                .unwrap_err()
                .to_string();
            assert!(e.contains("not a host name"), "{bad}: {e}");
        }
        let f = write("[tor]\ncontrol_address = \"[::1]:9051\"\n");
        assert!(load(&sources(f.path()), no_overrides()).is_ok());
    }

    #[test]
    fn toml_syntax_errors_do_not_quote_the_line() {
        let secret = valid_address(6);
        let f = write(&format!("[onion_services]\nsource = \"{secret}\n"));
        let e = load(&sources(f.path()), no_overrides())
            .unwrap_err()
            .to_string();
        assert!(e.contains("TOML parse error at line 2"), "{e}");
        assert!(!e.contains(&secret[..20]), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn a_fifo_config_file_is_refused_at_once() {
        let d = crate::temp_dir::tempdir().unwrap();
        let fifo = d.path().join("config.toml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let e = load(&sources(&fifo), no_overrides())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        // Also in the drop-in folder, where it used to be skipped.
        let s = Sources {
            file: "/nonexistent".into(),
            explicit: false,
            dir: Some(d.path().into()),
            dir_explicit: true,
            env: false,
        };
        let e = load(&s, no_overrides()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn overrides_beat_files() {
        let f = write("[tor]\nrefresh_interval = \"10s\"\n");
        let o = vec![
            ("tor.refresh_interval".to_string(), "7s".into()),
            ("tor.timeout".to_string(), "1s".into()),
        ];
        let c = load(&sources(f.path()), o).unwrap();
        assert_eq!(c.tor.refresh_interval, Duration::from_secs(7));
        assert_eq!(c.tor.timeout, Duration::from_secs(1));
        let bad = vec![("tor.timeout".to_string(), "never".into())];
        let e = load(&sources(f.path()), bad).unwrap_err().to_string();
        assert!(
            e.contains("tor.timeout") && e.contains("command-line flag"),
            "{e}"
        );
    }
}
