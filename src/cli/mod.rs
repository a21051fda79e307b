//! The command line: its grammar and help (this file), and what each command does ([`run()`]).
//!
//! Parsed with `lexopt` (one small crate that only splits arguments) against tables in this
//! module, rather than clap and its six crates: the grammar is a dozen fixed subcommands, and a
//! table per subcommand keeps what is parsed and what `--help` says in one place.
//!
//! The commands live here rather than in the binary so that they are library code like the rest
//! (typed errors, unit-testable, under the import layers' check) and `src/main.rs` is only the
//! wiring: [`parse`], help and version, [`run()`], [`error_chain`] and the exit code. One file per
//! group of commands: `run` (the dispatch), `torrc`, `address` (`check-onion-address`,
//! `onion-label`), `keys` (`client-key`), `load` (the configuration as every command loads it;
//! `check-config`, `systemd-generator`), `package` (`setup`), `recover`, `serve`; [`error`] (one error type
//! for them all).
//!
//! Conventions kept from before: `--flag value` and `--flag=value`; configuration flags (the
//! rows of [`flags::CONFIG_FLAGS`]) before the subcommand or after the subcommands that load
//! the configuration (`serve`, `check-config`, `systemd-generator`), the later winning; a usage
//! error exits 2 with the problem and a pointer to `--help`.

mod address;
pub mod error;
pub mod flags;
mod keys;
mod load;
mod package;
mod recover;
mod run;
mod serve;
mod torrc;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use error::{error_chain, CliError};
pub use flags::ConfigFlags;
pub use run::run;

use crate::recovery::run::STATE_FILE;
use crate::setup::{self, confinement};

/// A command line that cannot be run: says what is wrong (never echoing an onion address).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Cmd),
    /// `--help` (or `-h`) for the command line so far: its text.
    Help(String),
    /// `--version` (or `-V`): `securedrop-tor-exporter <version>`.
    Version(String),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Cmd {
    /// Run the exporter (the default).
    Serve {
        flags: ConfigFlags,
    },
    /// Validate the configuration, print it (onion addresses redacted) and exit.
    CheckConfig {
        print: Option<Print>,
        flags: ConfigFlags,
    },
    ClientKey(KeyCmd),
    OnionLabel,
    Torrc(TorrcCmd),
    Setup(SetupCmd),
    Recover(RecoverArgs),
    CheckOnionAddress {
        print: bool,
        file: Option<PathBuf>,
    },
    /// Write the loopback socket's drop-in for `web.listen_address` into systemd's normal
    /// generator folder (systemd's early and late folders are accepted and not used).
    SystemdGenerator {
        normal_dir: PathBuf,
        flags: ConfigFlags,
    },
}

impl Cmd {
    /// A command that answers yes or no by its exit code (0 or 1), so that a failure has to
    /// exit with something else (2): `torrc has-include`, `check-onion-address`. The package's
    /// scripts tell "no" from "could not tell" by it.
    pub fn is_question(&self) -> bool {
        matches!(
            self,
            Cmd::Torrc(TorrcCmd::HasInclude { .. }) | Cmd::CheckOnionAddress { .. }
        )
    }
}

/// The values `check-config --print` gives, so that the package reads each from the binary
/// that owns it instead of parsing TOML in shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Print {
    /// `web.listen_address` as HOST:PORT: where the `.socket` unit must listen.
    ListenAddress,
}

#[derive(Debug, PartialEq, Eq)]
pub enum KeyCmd {
    Generate {
        auth_file: PathBuf,
        private_key_file: PathBuf,
    },
    Show {
        private_key_file: PathBuf,
        hostname_file: PathBuf,
    },
    Public {
        private_key_file: PathBuf,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub enum TorrcCmd {
    OnionTarget {
        path: bool,
    },
    IncludeLine {
        marked: bool,
        old_layout: bool,
    },
    HasInclude {
        count: bool,
        others: bool,
        ours: bool,
        old_layout: bool,
        torrc: PathBuf,
    },
    AddInclude {
        print: bool,
        torrc: PathBuf,
    },
    RemoveInclude {
        old_layout: bool,
        print: bool,
        torrc: PathBuf,
    },
    OnionDirs {
        tor: TorFlags,
    },
    Verify {
        keep_onion_dirs: Option<PathBuf>,
        tor: TorFlags,
    },
}

/// The package's setup work (its maintainer scripts call these).
#[derive(Debug, PartialEq, Eq)]
pub enum SetupCmd {
    Configure { root: PathBuf },
    Remove { root: PathBuf },
}

#[derive(Debug, PartialEq, Eq)]
pub struct TorFlags {
    pub defaults_torrc: PathBuf,
    pub torrc: PathBuf,
}

#[derive(Debug, PartialEq, Eq)]
pub struct RecoverArgs {
    pub exporter: Option<SocketAddr>,
    pub state_file: PathBuf,
    pub unit: String,
    pub systemctl: PathBuf,
    pub reload_after: Duration,
    pub restart_after: Duration,
    pub restart_every: Duration,
    pub max_restarts: u32,
    pub settle: Duration,
}

/// One option of a subcommand: `--name VALUE` (or a switch when `value` is empty).
struct Opt {
    name: &'static str,
    value: &'static str,
    help: &'static str,
}

const fn opt(name: &'static str, value: &'static str, help: &'static str) -> Opt {
    Opt { name, value, help }
}

/// One positional argument: its name, its help, and whether it must be given (required ones
/// come first).
struct Positional {
    name: &'static str,
    help: &'static str,
    required: bool,
}

const fn optional(name: &'static str, help: &'static str) -> Positional {
    Positional {
        name,
        help,
        required: false,
    }
}

/// One subcommand: its path (`torrc verify`), what it does, its options, its positional
/// arguments, and whether it takes the configuration flags.
struct Spec {
    path: &'static str,
    about: &'static str,
    opts: &'static [Opt],
    positionals: &'static [Positional],
    config_flags: bool,
}

const ABOUT: &str = "Privacy-preserving Prometheus exporter for tor on SecureDrop servers";

const TORRC_ARG: Positional = optional(
    "TORRC",
    "tor's main configuration file [default: /etc/tor/torrc]",
);

const SPECS: &[Spec] = &[
    Spec {
        path: "serve",
        about: "Run the exporter (the default)",
        opts: &[],
        positionals: &[],
        config_flags: true,
    },
    Spec {
        path: "check-config",
        about: "Validate the configuration, print it (onion addresses redacted) and exit",
        opts: &[opt("print", "WHAT", "Print only this one effective value, for the maintainer scripts and the role [possible values: listen-address]")],
        positionals: &[],
        config_flags: true,
    },
    Spec {
        path: "client-key",
        about: "Manage x25519 client-authorization keys for the metrics onion service",
        opts: &[],
        positionals: &[],
        config_flags: false,
    },
    Spec {
        path: "client-key generate",
        about: "Make a new pair: the public `.auth` line (0644) and the private key (0600). Never overwrites",
        opts: &[
            opt("auth-file", "PATH", "Where the public `.auth` line goes"),
            opt("private-key-file", "PATH", "Where the private key goes"),
        ],
        positionals: &[],
        config_flags: false,
    },
    Spec {
        path: "client-key show",
        about: "Print the `*.auth_private` line for the admin's tor: `<onion56>:descriptor:x25519:<key>`",
        opts: &[
            opt("private-key-file", "PATH", "The private key"),
            opt("hostname-file", "PATH", "The onion service's `hostname` file"),
        ],
        positionals: &[],
        config_flags: false,
    },
    Spec {
        path: "client-key public",
        about: "Print the public `.auth` line that matches a private key",
        opts: &[opt("private-key-file", "PATH", "The private key")],
        positionals: &[],
        config_flags: false,
    },
    Spec {
        path: "onion-label",
        about: "Print the `unnamed_…` label this machine gives an onion service with no role name (reads the address from standard input, so it stays out of shell history and ps)",
        opts: &[],
        positionals: &[],
        config_flags: false,
    },
    Spec {
        path: "torrc",
        about: "Edit and check tor's configuration the way the package and the Ansible role do",
        opts: &[],
        positionals: &[],
        config_flags: false,
    },
    Spec {
        path: "setup",
        about: "The package's setup of the metrics onion service, as its maintainer scripts run it (root only)",
        opts: &[],
        positionals: &[],
        config_flags: false,
    },
    Spec {
        path: "setup configure",
        about: "Write the client-authorized onion service into tor's configuration, check it as tor will read it and reload tor (postinst); every change is journaled and undone on any error or after a crash",
        opts: &[opt("root", "PATH", "The root of the system to set up [default: /]")],
        positionals: &[],
        config_flags: false,
    },
    Spec {
        path: "setup remove",
        about: "Take the metrics onion service out of tor's configuration and reload tor (prerm); undone if tor would not accept the rest",
        opts: &[opt("root", "PATH", "The root of the system to set up [default: /]")],
        positionals: &[],
        config_flags: false,
    },
    Spec {
        path: "torrc onion-target",
        about: "Print where the metrics onion service's HiddenServicePort points: `unix:` and the socket the package's onion socket unit holds (a fixed path, whatever the configuration says)",
        opts: &[opt("path", "", "Print the socket's path alone")],
        positionals: &[],
        config_flags: false,
    },
    Spec {
        path: "torrc include-line",
        about: "Print the line that makes tor read the package's drop-in",
        opts: &[
            opt("marked", "", "Print the package's mark on the line before it, as add-include appends them"),
            opt("old-layout", "", "Print the marked include of /etc/tor/torrc.d/ that versions up to 0.1.0 added (with --marked)"),
        ],
        positionals: &[],
        config_flags: false,
    },
    Spec {
        path: "torrc has-include",
        about: "Exit 0 if TORRC makes tor read the drop-in (by anyone's line), else 1",
        opts: &[
            opt("count", "", "Print how many lines include the drop-in"),
            opt("others", "", "Leave out the package's own marked include (what purge takes out)"),
            opt("ours", "", "Ask only about the package's own marked include (what remove-include takes out)"),
            opt("old-layout", "", "Ask about the package's own marked include of /etc/tor/torrc.d/ (versions up to 0.1.0)"),
        ],
        positionals: &[TORRC_ARG],
        config_flags: false,
    },
    Spec {
        path: "torrc add-include",
        about: "Append the package's marked include line unless TORRC includes the drop-in already",
        opts: &[opt("print", "", "Print TORRC as it would be instead of writing it (the package's maintainer scripts write it themselves, with their rollback)")],
        positionals: &[TORRC_ARG],
        config_flags: false,
    },
    Spec {
        path: "torrc remove-include",
        about: "Remove the include line the package added (only its marked line)",
        opts: &[
            opt("old-layout", "", "Remove the marked include of /etc/tor/torrc.d/ of versions up to 0.1.0 instead"),
            opt("print", "", "Print TORRC as it would be instead of writing it"),
        ],
        positionals: &[TORRC_ARG],
        config_flags: false,
    },
    Spec {
        path: "torrc onion-dirs",
        about: "Print the HiddenServiceDir folders tor reads from TORRC, one a line",
        opts: &[opt("defaults-torrc", "FILE", "tor's defaults file [default: /usr/share/tor/tor-service-defaults-torrc]")],
        positionals: &[TORRC_ARG],
        config_flags: false,
    },
    Spec {
        path: "torrc verify",
        about: "Check TORRC with `tor --verify-config` as tor@default will read it on reload",
        opts: &[
            opt("keep-onion-dirs", "FILE", "Also fail unless every folder listed in FILE (`torrc onion-dirs` output, taken before the change) is still an onion service"),
            opt("defaults-torrc", "FILE", "tor's defaults file [default: /usr/share/tor/tor-service-defaults-torrc]"),
        ],
        positionals: &[TORRC_ARG],
        config_flags: false,
    },
    Spec {
        path: "recover",
        about: "Reload or restart tor when the exporter has judged it unhealthy for long enough (run once a minute by securedrop-tor-recover.timer, off unless turned on; see docs/recovery.md)",
        opts: &[
            opt("exporter", "HOST:PORT", "The exporter whose /health to read [default: web.listen_address of its configuration]"),
            opt("state-file", "PATH", "Where the counts are kept between runs [default: /var/lib/securedrop-tor-exporter-recover/state]"),
            opt("unit", "UNIT", "The unit to reload or restart [default: tor@default]"),
            opt("systemctl", "PATH", "[default: systemctl]"),
            opt("reload-after", "DURATION", "Reload once a curable state has lasted this long (past its alert's hold) [default: 20m]"),
            opt("restart-after", "DURATION", "Restart from then on [default: 40m]"),
            opt("restart-every", "DURATION", "At most one restart per this long [default: 1h]"),
            opt("max-restarts", "N", "Restarts per episode before giving up (and saying so once) [default: 3]"),
            opt("settle", "DURATION", "An episode ends after this long with nothing curable [default: 30m]"),
        ],
        positionals: &[],
        config_flags: false,
    },
    Spec {
        path: "check-onion-address",
        about: "Exit 0 if FILE (or standard input) holds a v3 onion address, as tor writes its hostname file (`.onion` optional; version and checksum checked), else say why and exit 1",
        opts: &[opt("print", "", "Print the address without `.onion` when it is valid")],
        positionals: &[optional("FILE", "A file such as the onion service's `hostname` [default: standard input]")],
        config_flags: false,
    },
    Spec {
        path: "systemd-generator",
        about: "Put securedrop-tor-exporter.socket on web.listen_address: a drop-in in NORMAL_DIR when it is not the default, nothing otherwise or when the configuration does not load (said on standard error; exit 0). systemd runs it at boot and on every daemon-reload as securedrop-tor-exporter-socket-generator, see systemd.generator(7)",
        opts: &[],
        positionals: &[
            Positional {
                name: "NORMAL_DIR",
                help: "The generator folder the drop-in goes to (systemd passes /run/systemd/generator)",
                required: true,
            },
            optional("EARLY_DIR", "Passed by systemd, not used"),
            optional("LATE_DIR", "Passed by systemd, not used"),
        ],
        config_flags: true,
    },
];

const BIN: &str = "securedrop-tor-exporter";

fn spec(path: &str) -> &'static Spec {
    SPECS
        .iter()
        .find(|s| s.path == path)
        .expect("every path parsed has a spec")
}

/// Subcommands directly under `path` ("" for the top level).
fn children(path: &str) -> impl Iterator<Item = &'static Spec> + '_ {
    SPECS.iter().filter(move |s| match s.path.rsplit_once(' ') {
        Some((parent, _)) => parent == path,
        None => path.is_empty(),
    })
}

fn last_word(path: &str) -> &str {
    path.rsplit(' ').next().unwrap_or(path)
}

/// A positional argument as usage shows it: `<NAME>` when required, `[NAME]` when not.
fn shown(a: &Positional) -> String {
    if a.required {
        format!("<{}>", a.name)
    } else {
        format!("[{}]", a.name)
    }
}

/// The help text of `path` ("" for the top level).
pub fn help(path: &str) -> String {
    let mut out = String::new();
    let (about, opts, positionals, config_flags) = if path.is_empty() {
        (ABOUT, &[][..], &[][..], true)
    } else {
        let s = spec(path);
        (s.about, s.opts, s.positionals, s.config_flags)
    };
    let subs: Vec<&Spec> = children(path).collect();
    let _ = writeln!(out, "{about}\n");
    let full = if path.is_empty() {
        BIN.to_owned()
    } else {
        format!("{BIN} {path}")
    };
    let mut usage = format!("Usage: {full} [OPTIONS]");
    for a in positionals {
        let _ = write!(usage, " {}", shown(a));
    }
    if !subs.is_empty() {
        usage.push_str(if path.is_empty() {
            " [COMMAND]"
        } else {
            " <COMMAND>"
        });
    }
    let _ = writeln!(out, "{usage}");
    if !subs.is_empty() {
        let _ = writeln!(out, "\nCommands:");
        for s in &subs {
            let _ = writeln!(out, "  {:<22} {}", last_word(s.path), s.about);
        }
    }
    if !positionals.is_empty() {
        let _ = writeln!(out, "\nArguments:");
        for a in positionals {
            let _ = writeln!(out, "  {}  {}", shown(a), a.help);
        }
    }
    let _ = writeln!(out, "\nOptions:");
    let line = |out: &mut String, name: &str, value: &str, text: &str| {
        let left = if value.is_empty() {
            format!("--{name}")
        } else {
            format!("--{name} <{value}>")
        };
        let _ = writeln!(out, "  {left:<40} {text}");
    };
    for o in opts {
        line(&mut out, o.name, o.value, o.help);
    }
    if config_flags {
        for (name, value, text) in flags::SOURCE_FLAGS {
            line(&mut out, name, value, text);
        }
        for f in flags::CONFIG_FLAGS {
            line(&mut out, f.flag, f.value_name, f.help);
        }
    }
    line(&mut out, "help", "", "Print help (also -h)");
    if path.is_empty() {
        line(&mut out, "version", "", "Print version (also -V)");
    }
    out
}

/// Reads the arguments after the program name.
pub fn parse<I>(args: I) -> Result<Parsed, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut p = lexopt::Parser::from_args(args);
    let mut top = ConfigFlags::default();
    // Configuration flags may come first; then the subcommand, if any.
    let first = loop {
        match next(&mut p)? {
            None => return Ok(Parsed::Run(Cmd::Serve { flags: top })),
            Some(lexopt::Arg::Long("help")) | Some(lexopt::Arg::Short('h')) => {
                return Ok(Parsed::Help(help("")))
            }
            Some(lexopt::Arg::Long("version")) | Some(lexopt::Arg::Short('V')) => {
                return Ok(Parsed::Version(format!(
                    "{BIN} {}",
                    env!("CARGO_PKG_VERSION")
                )))
            }
            Some(lexopt::Arg::Long(name)) => {
                let name = name.to_owned();
                if !top.take(&name, || value(&mut p, &name))? {
                    return Err(unknown(&format!("--{name}"), ""));
                }
            }
            Some(lexopt::Arg::Short(c)) => return Err(unknown(&format!("-{c}"), "")),
            Some(lexopt::Arg::Value(v)) => break text(v, "a subcommand")?,
        }
    };
    // Subcommands of subcommands (`torrc verify`, `client-key show`).
    let mut path = first;
    if !SPECS.iter().any(|s| s.path == path) {
        return Err(UsageError(format!(
            "unrecognized subcommand '{path}'; expected one of: {}",
            children("").map(|s| s.path).collect::<Vec<_>>().join(", ")
        )));
    }
    while children(&path).next().is_some() {
        match next(&mut p)? {
            Some(lexopt::Arg::Value(v)) => {
                let word = text(v, "a subcommand")?;
                let candidate = format!("{path} {word}");
                if !SPECS.iter().any(|s| s.path == candidate) {
                    return Err(UsageError(format!(
                        "unrecognized subcommand '{word}' of '{path}'; expected one of: {}",
                        children(&path)
                            .map(|s| last_word(s.path))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                path = candidate;
            }
            Some(lexopt::Arg::Long("help")) | Some(lexopt::Arg::Short('h')) => {
                return Ok(Parsed::Help(help(&path)))
            }
            _ => {
                return Err(UsageError(format!(
                    "'{BIN} {path}' requires a subcommand: {}",
                    children(&path)
                        .map(|s| last_word(s.path))
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        }
    }
    let s = spec(&path);
    if !s.config_flags && !top.is_empty() {
        return Err(UsageError(
            "configuration flags belong to `serve`, `check-config` and `systemd-generator`, not to this subcommand"
                .into(),
        ));
    }
    // The subcommand's own options, its positional arguments and (serve, check-config,
    // systemd-generator) the configuration flags.
    let mut got = Got::default();
    let mut later = ConfigFlags::default();
    while let Some(arg) = next(&mut p)? {
        match arg {
            lexopt::Arg::Long("help") | lexopt::Arg::Short('h') => {
                return Ok(Parsed::Help(help(&path)))
            }
            lexopt::Arg::Long(name) => {
                let name = name.to_owned();
                if let Some(o) = s.opts.iter().find(|o| o.name == name) {
                    let v = if o.value.is_empty() {
                        String::new()
                    } else {
                        value(&mut p, &name)?
                    };
                    if got.opts.iter().any(|(n, _)| *n == o.name) {
                        return Err(UsageError(format!(
                            "the argument '--{name}' cannot be used multiple times"
                        )));
                    }
                    got.opts.push((o.name, v));
                } else if !(s.config_flags && later.take(&name, || value(&mut p, &name))?) {
                    return Err(unknown(&format!("--{name}"), &path));
                }
            }
            lexopt::Arg::Short(c) => return Err(unknown(&format!("-{c}"), &path)),
            lexopt::Arg::Value(v) => match s.positionals {
                [] => {
                    return Err(UsageError(format!(
                        "unexpected argument '{}' for '{path}'",
                        v.to_string_lossy()
                    )))
                }
                [one] if got.positionals.len() == 1 => {
                    return Err(UsageError(format!(
                        "'{path}' takes one {}, not more",
                        one.name
                    )))
                }
                all if got.positionals.len() == all.len() => {
                    return Err(UsageError(format!(
                        "'{path}' takes at most {} arguments",
                        all.len()
                    )))
                }
                _ => got.positionals.push(PathBuf::from(v)),
            },
        }
    }
    if let Some(missing) = s
        .positionals
        .iter()
        .skip(got.positionals.len())
        .find(|a| a.required)
    {
        return Err(UsageError(format!(
            "the following required argument was not provided: {} (for '{path}')",
            missing.name
        )));
    }
    build(&path, got, top.then(later)).map(Parsed::Run)
}

/// What a subcommand's command line held.
#[derive(Default)]
struct Got {
    opts: Vec<(&'static str, String)>,
    positionals: Vec<PathBuf>,
}

impl Got {
    fn has(&self, name: &str) -> bool {
        self.opts.iter().any(|(n, _)| *n == name)
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.opts
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
    fn path(&self, name: &str) -> Option<PathBuf> {
        self.get(name).map(PathBuf::from)
    }
    fn required(&self, name: &str, path: &str) -> Result<PathBuf, UsageError> {
        self.path(name).ok_or_else(|| {
            UsageError(format!(
                "the following required argument was not provided: --{name} (for '{path}')"
            ))
        })
    }
    /// The first positional argument, taken.
    fn first(&mut self) -> Option<PathBuf> {
        (!self.positionals.is_empty()).then(|| self.positionals.remove(0))
    }
    fn torrc(&mut self) -> PathBuf {
        self.first().unwrap_or_else(|| PathBuf::from(setup::TORRC))
    }
    fn duration(&self, name: &str, default: &str) -> Result<Duration, UsageError> {
        let v = self.get(name).unwrap_or(default);
        crate::duration_text::parse(v)
            .map_err(|e| UsageError(format!("invalid value '{v}' for '--{name}': {e}")))
    }
    /// Fails if two options that exclude each other are both given.
    fn conflict(&self, a: &str, b: &str) -> Result<(), UsageError> {
        if self.has(a) && self.has(b) {
            return Err(UsageError(format!(
                "the argument '--{a}' cannot be used with '--{b}'"
            )));
        }
        Ok(())
    }
}

fn build(path: &str, mut g: Got, flags: ConfigFlags) -> Result<Cmd, UsageError> {
    let tor_flags = |g: &mut Got| TorFlags {
        defaults_torrc: g
            .path("defaults-torrc")
            .unwrap_or_else(|| PathBuf::from(confinement::TOR_DEFAULTS)),
        torrc: g.torrc(),
    };
    Ok(match path {
        "serve" => Cmd::Serve { flags },
        "check-config" => Cmd::CheckConfig {
            print: match g.get("print") {
                None => None,
                Some("listen-address") => Some(Print::ListenAddress),
                Some(other) => {
                    return Err(UsageError(format!(
                        "invalid value '{other}' for '--print <WHAT>'; possible values: listen-address"
                    )))
                }
            },
            flags,
        },
        "client-key generate" => Cmd::ClientKey(KeyCmd::Generate {
            auth_file: g.required("auth-file", path)?,
            private_key_file: g.required("private-key-file", path)?,
        }),
        "client-key show" => Cmd::ClientKey(KeyCmd::Show {
            private_key_file: g.required("private-key-file", path)?,
            hostname_file: g.required("hostname-file", path)?,
        }),
        "client-key public" => Cmd::ClientKey(KeyCmd::Public {
            private_key_file: g.required("private-key-file", path)?,
        }),
        "onion-label" => Cmd::OnionLabel,
        "setup configure" => Cmd::Setup(SetupCmd::Configure {
            root: g.path("root").unwrap_or_else(|| "/".into()),
        }),
        "setup remove" => Cmd::Setup(SetupCmd::Remove {
            root: g.path("root").unwrap_or_else(|| "/".into()),
        }),
        "torrc onion-target" => Cmd::Torrc(TorrcCmd::OnionTarget { path: g.has("path") }),
        "torrc include-line" => {
            if g.has("old-layout") && !g.has("marked") {
                return Err(UsageError(
                    "the argument '--old-layout' requires '--marked'".into(),
                ));
            }
            Cmd::Torrc(TorrcCmd::IncludeLine {
                marked: g.has("marked"),
                old_layout: g.has("old-layout"),
            })
        }
        "torrc has-include" => {
            g.conflict("count", "old-layout")?;
            g.conflict("others", "ours")?;
            g.conflict("others", "old-layout")?;
            g.conflict("ours", "count")?;
            g.conflict("ours", "old-layout")?;
            Cmd::Torrc(TorrcCmd::HasInclude {
                count: g.has("count"),
                others: g.has("others"),
                ours: g.has("ours"),
                old_layout: g.has("old-layout"),
                torrc: g.torrc(),
            })
        }
        "torrc add-include" => Cmd::Torrc(TorrcCmd::AddInclude {
            print: g.has("print"),
            torrc: g.torrc(),
        }),
        "torrc remove-include" => Cmd::Torrc(TorrcCmd::RemoveInclude {
            old_layout: g.has("old-layout"),
            print: g.has("print"),
            torrc: g.torrc(),
        }),
        "torrc onion-dirs" => Cmd::Torrc(TorrcCmd::OnionDirs {
            tor: tor_flags(&mut g),
        }),
        "torrc verify" => Cmd::Torrc(TorrcCmd::Verify {
            keep_onion_dirs: g.path("keep-onion-dirs"),
            tor: tor_flags(&mut g),
        }),
        "recover" => Cmd::Recover(RecoverArgs {
            exporter: match g.get("exporter") {
                None => None,
                Some(v) => Some(v.parse().map_err(|_| {
                    UsageError(format!(
                        "invalid value '{v}' for '--exporter <HOST:PORT>': expected an IP address and port"
                    ))
                })?),
            },
            state_file: g.path("state-file").unwrap_or_else(|| STATE_FILE.into()),
            unit: g.get("unit").unwrap_or("tor@default").to_owned(),
            systemctl: g.path("systemctl").unwrap_or_else(|| "systemctl".into()),
            reload_after: g.duration("reload-after", "20m")?,
            restart_after: g.duration("restart-after", "40m")?,
            restart_every: g.duration("restart-every", "1h")?,
            max_restarts: {
                let v = g.get("max-restarts").unwrap_or("3");
                v.parse().map_err(|_| {
                    UsageError(format!(
                        "invalid value '{v}' for '--max-restarts <N>': expected a whole number"
                    ))
                })?
            },
            settle: g.duration("settle", "30m")?,
        }),
        "check-onion-address" => Cmd::CheckOnionAddress {
            print: g.has("print"),
            file: g.first(),
        },
        "systemd-generator" => Cmd::SystemdGenerator {
            normal_dir: g.first().expect("required, checked while parsing"),
            flags,
        },
        other => unreachable!("subcommand {other} without a builder"),
    })
}

fn next(p: &mut lexopt::Parser) -> Result<Option<lexopt::Arg<'_>>, UsageError> {
    p.next().map_err(|e| UsageError(e.to_string()))
}

fn value(p: &mut lexopt::Parser, name: &str) -> Result<String, UsageError> {
    let v = p.value().map_err(|_| {
        UsageError(format!(
            "a value is required for '--{name}' but none was supplied"
        ))
    })?;
    text(v, &format!("the value of --{name}"))
}

fn text(v: OsString, what: &str) -> Result<String, UsageError> {
    v.into_string()
        .map_err(|_| UsageError(format!("{what} is not valid UTF-8")))
}

fn unknown(arg: &str, path: &str) -> UsageError {
    let place = if path.is_empty() {
        String::new()
    } else {
        format!(" for '{path}'")
    };
    UsageError(format!("unexpected argument '{arg}' found{place}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Cmd {
        match parse(args.iter().copied()).unwrap() {
            Parsed::Run(c) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        parse(args.iter().copied()).unwrap_err().to_string()
    }

    #[test]
    fn no_subcommand_serves_with_the_flags_given() {
        let Cmd::Serve { flags } = run(&["--tor.timeout", "3s", "--web.allow-non-loopback"]) else {
            panic!()
        };
        assert_eq!(flags.values.len(), 2);
        assert_eq!(
            run(&[]),
            Cmd::Serve {
                flags: ConfigFlags::default()
            }
        );
    }

    #[test]
    fn flags_before_and_after_the_subcommand_the_later_wins() {
        let Cmd::CheckConfig { flags, print } = run(&[
            "--config",
            "/a.toml",
            "check-config",
            "--config=/b.toml",
            "--print",
            "listen-address",
        ]) else {
            panic!()
        };
        assert_eq!(flags.config, Some(PathBuf::from("/b.toml")));
        assert_eq!(print, Some(Print::ListenAddress));
    }

    #[test]
    fn nested_subcommands_options_and_defaults() {
        assert_eq!(
            run(&[
                "torrc",
                "verify",
                "--keep-onion-dirs",
                "/tmp/l",
                "/etc/tor/x"
            ]),
            Cmd::Torrc(TorrcCmd::Verify {
                keep_onion_dirs: Some("/tmp/l".into()),
                tor: TorFlags {
                    defaults_torrc: confinement::TOR_DEFAULTS.into(),
                    torrc: "/etc/tor/x".into()
                }
            })
        );
        assert_eq!(
            run(&["torrc", "has-include"]),
            Cmd::Torrc(TorrcCmd::HasInclude {
                count: false,
                others: false,
                ours: false,
                old_layout: false,
                torrc: setup::TORRC.into()
            })
        );
        let Cmd::Recover(r) = run(&["recover", "--settle", "1h 5m", "--max-restarts", "5"]) else {
            panic!()
        };
        assert_eq!(r.settle, Duration::from_secs(3_900));
        assert_eq!(r.reload_after, Duration::from_secs(1_200));
        assert_eq!(r.max_restarts, 5);
        assert_eq!(r.unit, "tor@default");
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        assert!(err(&["--nope"]).contains("'--nope'"));
        assert!(err(&["frobnicate"]).contains("unrecognized subcommand 'frobnicate'"));
        assert!(err(&["torrc"]).contains("requires a subcommand"));
        assert!(err(&["torrc", "has-include", "--ours", "--count"]).contains("cannot be used with"));
        assert!(err(&["torrc", "include-line", "--old-layout"]).contains("requires '--marked'"));
        assert!(err(&["client-key", "show", "--private-key-file", "k"]).contains("--hostname-file"));
        assert!(err(&["--tor.timeout", "3s", "client-key", "public"]).contains("belong to `serve`"));
        assert!(err(&["client-key", "public", "--tor.timeout", "3s"]).contains("'--tor.timeout'"));
        assert!(err(&["recover", "--settle", "soon"]).contains("'--settle'"));
        assert!(err(&["check-config", "--print", "all"]).contains("possible values"));
        assert!(err(&["check-config", "--config"]).contains("a value is required"));
    }

    #[test]
    fn help_lists_what_each_level_takes() {
        let Parsed::Help(top) = parse(["--help"]).unwrap() else {
            panic!()
        };
        for want in [
            "--web.listen-address",
            "--config",
            "check-config",
            "client-key",
            "torrc",
        ] {
            assert!(top.contains(want), "{want}");
        }
        let Parsed::Help(show) = parse(["client-key", "show", "--help"]).unwrap() else {
            panic!()
        };
        assert!(show.contains("--hostname-file") && !show.contains("--tor.timeout"));
        let Parsed::Help(torrc) = parse(["torrc", "-h"]).unwrap() else {
            panic!()
        };
        assert!(torrc.contains("verify") && torrc.contains("onion-dirs"));
        assert!(
            matches!(parse(["-V"]).unwrap(), Parsed::Version(v) if v.ends_with(env!("CARGO_PKG_VERSION")))
        );
    }

    #[test]
    fn systemd_generator_takes_systemds_three_folders_and_the_configuration_flags() {
        assert_eq!(
            run(&["systemd-generator", "/run/g", "/run/e", "/run/l"]),
            Cmd::SystemdGenerator {
                normal_dir: "/run/g".into(),
                flags: ConfigFlags::default()
            }
        );
        let Cmd::SystemdGenerator { normal_dir, flags } = run(&[
            "--config.dir",
            "/d",
            "systemd-generator",
            "/g",
            "--config",
            "/c.toml",
        ]) else {
            panic!()
        };
        assert_eq!(normal_dir, PathBuf::from("/g"));
        assert_eq!(flags.config_dir, Some(PathBuf::from("/d")));
        assert_eq!(flags.config, Some(PathBuf::from("/c.toml")));
        assert!(err(&["systemd-generator"]).contains("NORMAL_DIR"));
        assert!(err(&["systemd-generator", "a", "b", "c", "d"]).contains("at most 3"));
        let Parsed::Help(h) = parse(["systemd-generator", "--help"]).unwrap() else {
            panic!()
        };
        assert!(
            h.contains("[OPTIONS] <NORMAL_DIR> [EARLY_DIR] [LATE_DIR]\n"),
            "{h}"
        );
        assert!(h.contains("--config.dir"), "{h}");
        // One positional argument: help and errors as before.
        let Parsed::Help(h) = parse(["torrc", "verify", "--help"]).unwrap() else {
            panic!()
        };
        assert!(h.contains("[OPTIONS] [TORRC]\n") && h.contains("\nArguments:\n  [TORRC]  tor's"));
        assert!(err(&["torrc", "verify", "a", "b"]).contains("takes one TORRC, not more"));
    }

    #[test]
    fn every_spec_has_a_builder_or_children() {
        for s in SPECS {
            if children(s.path).next().is_none() {
                let mut args: Vec<&str> = s.path.split(' ').collect();
                let required: Vec<String> = match s.path {
                    "client-key generate" => {
                        vec!["--auth-file=a".into(), "--private-key-file=b".into()]
                    }
                    "client-key show" => {
                        vec!["--private-key-file=a".into(), "--hostname-file=b".into()]
                    }
                    "client-key public" => vec!["--private-key-file=a".into()],
                    "systemd-generator" => vec!["/run/systemd/generator".into()],
                    _ => vec![],
                };
                args.extend(required.iter().map(String::as_str));
                run(&args);
            }
        }
    }
}
