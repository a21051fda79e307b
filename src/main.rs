//! Command line: parse flags, load the configuration, start logging, run the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use figment::value::Value;
use securedrop_tor_exporter::config::{self, Sources};
use securedrop_tor_exporter::keys;
use securedrop_tor_exporter::setup::{self, confinement, include};

#[derive(Parser, Debug)]
#[command(name = "securedrop-tor-exporter", version, about = "Privacy-preserving Prometheus exporter for tor on SecureDrop servers", long_about = None)]
struct Cli {
    /// The flags of `serve`, for running with no subcommand.
    #[command(flatten)]
    flags: Flags,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the exporter (the default).
    Serve {
        #[command(flatten)]
        flags: Flags,
    },
    /// Validate the configuration, print it (onion addresses redacted) and exit.
    CheckConfig {
        /// Print only this one effective value, for the maintainer scripts and the role.
        #[arg(long, value_enum, value_name = "WHAT")]
        print: Option<Print>,
        #[command(flatten)]
        flags: Flags,
    },
    /// Manage x25519 client-authorization keys for the metrics onion service.
    #[command(subcommand)]
    ClientKey(KeyCmd),
    /// Print the `unnamed_…` label this machine gives an onion service with no role name
    /// (reads the address from standard input, so it stays out of shell history and ps).
    OnionLabel,
    /// Edit and check tor's configuration the way the package and the Ansible role do.
    #[command(subcommand)]
    Torrc(TorrcCmd),
    /// Reload or restart tor when the exporter has judged it unhealthy for long enough (run once
    /// a minute by securedrop-tor-recover.timer, off unless turned on; see docs/recovery.md).
    Recover(RecoverArgs),
    /// Exit 0 if FILE (or standard input) holds a v3 onion address, as tor writes its hostname
    /// file (`.onion` optional; version and checksum checked), else say why and exit 1.
    CheckOnionAddress {
        /// Print the address without `.onion` when it is valid.
        #[arg(long)]
        print: bool,
        /// A file such as the onion service's `hostname` [default: standard input].
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct RecoverArgs {
    /// The exporter whose /health to read [default: web.listen_address of its configuration].
    #[arg(long, value_name = "HOST:PORT")]
    exporter: Option<std::net::SocketAddr>,
    /// Where the counts are kept between runs.
    #[arg(long, value_name = "PATH", default_value = securedrop_tor_exporter::recovery::run::STATE_FILE)]
    state_file: PathBuf,
    /// The unit to reload or restart.
    #[arg(long, default_value = "tor@default")]
    unit: String,
    #[arg(long, value_name = "PATH", default_value = "systemctl")]
    systemctl: PathBuf,
    /// Reload once a curable state has lasted this long (past its alert's hold).
    #[arg(long, value_name = "DURATION", default_value = "20m", value_parser = securedrop_tor_exporter::duration_text::parse)]
    reload_after: Duration,
    /// Restart from then on.
    #[arg(long, value_name = "DURATION", default_value = "40m", value_parser = securedrop_tor_exporter::duration_text::parse)]
    restart_after: Duration,
    /// At most one restart per this long.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = securedrop_tor_exporter::duration_text::parse)]
    restart_every: Duration,
    /// Restarts per episode before giving up (and saying so once).
    #[arg(long, value_name = "N", default_value_t = 3)]
    max_restarts: u32,
    /// An episode ends after this long with nothing curable.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = securedrop_tor_exporter::duration_text::parse)]
    settle: Duration,
}

#[derive(Subcommand, Debug)]
enum TorrcCmd {
    /// Print where the metrics onion service's HiddenServicePort points: `unix:` and the socket
    /// the package's onion socket unit holds (a fixed path, whatever the configuration says).
    OnionTarget {
        /// Print the socket's path alone.
        #[arg(long)]
        path: bool,
    },
    /// Print the line that makes tor read the package's drop-in.
    IncludeLine {
        /// Print the package's mark on the line before it, as add-include appends them.
        #[arg(long)]
        marked: bool,
        /// Print the marked include of /etc/tor/torrc.d/ that versions up to 0.1.0 added.
        #[arg(long, requires = "marked")]
        old_layout: bool,
    },
    /// Exit 0 if TORRC makes tor read the drop-in (by anyone's line), else 1.
    HasInclude {
        /// Print how many lines include the drop-in.
        #[arg(long, conflicts_with = "old_layout")]
        count: bool,
        /// Leave out the package's own marked include (what purge takes out).
        #[arg(long, conflicts_with_all = ["ours", "old_layout"])]
        others: bool,
        /// Ask only about the package's own marked include (what remove-include takes out).
        #[arg(long, conflicts_with_all = ["count", "old_layout"])]
        ours: bool,
        /// Ask about the package's own marked include of /etc/tor/torrc.d/ (versions up to 0.1.0).
        #[arg(long)]
        old_layout: bool,
        #[arg(value_name = "TORRC", default_value = setup::TORRC)]
        torrc: PathBuf,
    },
    /// Append the package's marked include line unless TORRC includes the drop-in already.
    AddInclude {
        /// Print TORRC as it would be instead of writing it (the package's maintainer scripts
        /// write it themselves, with their rollback).
        #[arg(long)]
        print: bool,
        #[arg(value_name = "TORRC", default_value = setup::TORRC)]
        torrc: PathBuf,
    },
    /// Remove the include line the package added (only its marked line).
    RemoveInclude {
        /// Remove the marked include of /etc/tor/torrc.d/ of versions up to 0.1.0 instead.
        #[arg(long)]
        old_layout: bool,
        /// Print TORRC as it would be instead of writing it.
        #[arg(long)]
        print: bool,
        #[arg(value_name = "TORRC", default_value = setup::TORRC)]
        torrc: PathBuf,
    },
    /// Print the HiddenServiceDir folders tor reads from TORRC, one a line.
    OnionDirs {
        #[command(flatten)]
        tor: TorFlags,
    },
    /// Check TORRC with `tor --verify-config` as tor@default will read it on reload.
    Verify {
        /// Also fail unless every folder listed in FILE (`torrc onion-dirs` output, taken before
        /// the change) is still an onion service.
        #[arg(long, value_name = "FILE")]
        keep_onion_dirs: Option<PathBuf>,
        #[command(flatten)]
        tor: TorFlags,
    },
}

#[derive(Args, Debug)]
struct TorFlags {
    /// tor's defaults file.
    #[arg(long, value_name = "FILE", default_value = confinement::TOR_DEFAULTS)]
    defaults_torrc: PathBuf,
    #[arg(value_name = "TORRC", default_value = setup::TORRC)]
    torrc: PathBuf,
}

/// The values `check-config --print` gives, so that the package reads each from the binary
/// that owns it instead of parsing TOML in shell.
#[derive(ValueEnum, Clone, Copy, Debug)]
enum Print {
    /// `web.listen_address` as HOST:PORT: where the `.socket` unit must listen.
    ListenAddress,
}

#[derive(Subcommand, Debug)]
enum KeyCmd {
    /// Make a new pair: the public `.auth` line (0644) and the private key (0600). Never overwrites.
    Generate {
        #[arg(long, value_name = "PATH")]
        auth_file: PathBuf,
        #[arg(long, value_name = "PATH")]
        private_key_file: PathBuf,
    },
    /// Print the `*.auth_private` line for the admin's tor: `<onion56>:descriptor:x25519:<key>`.
    Show {
        #[arg(long, value_name = "PATH")]
        private_key_file: PathBuf,
        /// The onion service's `hostname` file.
        #[arg(long, value_name = "PATH")]
        hostname_file: PathBuf,
    },
    /// Print the public `.auth` line that matches a private key.
    Public {
        #[arg(long, value_name = "PATH")]
        private_key_file: PathBuf,
    },
}

/// Every configuration key as a flag, named in the Prometheus exporters' dotted style.
/// Environment variables (`SECUREDROP_TOR_EXPORTER_<SECTION>__<KEY>`) are read by the config loader.
/// Only `serve` and `check-config` take them (so `client-key --help` shows its own flags only);
/// before the subcommand they are accepted too, and flags after it win.
#[derive(Args, Debug, Default, PartialEq)]
struct Flags {
    /// Configuration file; when given it must exist.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Drop-in directory merged after the file, in name order; when given it must exist
    /// [default: /etc/securedrop-tor-exporter/config.d].
    #[arg(long = "config.dir", value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Address to serve /metrics on [default: 127.0.0.1:9747].
    #[arg(long = "web.listen-address", value_name = "HOST:PORT")]
    web_listen_address: Option<String>,
    /// Allow a listen address outside loopback.
    #[arg(long = "web.allow-non-loopback")]
    web_allow_non_loopback: bool,
    /// Time a client may take to send its request head [default: 5s].
    #[arg(long = "web.header-read-timeout", value_name = "DURATION")]
    web_header_read_timeout: Option<String>,
    /// How long a served connection may idle before its next request [default: 10m].
    #[arg(long = "web.idle-timeout", value_name = "DURATION")]
    web_idle_timeout: Option<String>,
    /// tor's control port, a unix socket or an IP address (no host names) [default: unix:/run/tor/control].
    #[arg(long = "tor.control-address", value_name = "unix:/PATH|IP:PORT")]
    tor_control_address: Option<String>,
    /// Cookie file [default: beside the unix socket, e.g. /run/tor/control.authcookie].
    #[arg(long = "tor.cookie-file", value_name = "PATH")]
    tor_cookie_file: Option<String>,
    /// File holding the control password (HASHEDPASSWORD auth).
    #[arg(long = "tor.password-file", value_name = "PATH")]
    tor_password_file: Option<String>,
    /// How often to ask tor [default: 5s].
    #[arg(long = "tor.refresh-interval", value_name = "DURATION")]
    tor_refresh_interval: Option<String>,
    /// Deadline for connecting to tor and for each command's whole exchange [default: 2s].
    #[arg(long = "tor.timeout", value_name = "DURATION")]
    tor_timeout: Option<String>,
    /// Longest wait between reconnection attempts [default: 30s].
    #[arg(long = "tor.max-backoff", value_name = "DURATION")]
    tor_max_backoff: Option<String>,
    /// Export tor's traffic counters, coarsened (off by default: see docs/privacy.md).
    #[arg(long = "traffic.enabled")]
    traffic_enabled: bool,
    /// Traffic counters move in multiples of this [default: 16777216].
    #[arg(long = "traffic.quantum-bytes", value_name = "BYTES")]
    traffic_quantum_bytes: Option<u64>,
    /// Traffic counters move at most once per this period [default: 1h].
    #[arg(long = "traffic.period", value_name = "DURATION")]
    traffic_period: Option<String>,
    /// HSFETCH our own descriptors this often; 0 is off [default: 0s].
    #[arg(long = "onion.self-probe-interval", value_name = "DURATION")]
    onion_self_probe_interval: Option<String>,
    /// Name an onion service: ROLE=ADDRESS (repeatable; prefer the config file: flags show in ps).
    #[arg(long = "onion-service", value_name = "ROLE=ADDRESS")]
    onion_service: Vec<String>,
    /// error, warn, info, debug or trace [default: info].
    #[arg(long = "log.level", value_name = "LEVEL")]
    log_level: Option<String>,
    /// auto, journald or stderr [default: auto].
    #[arg(long = "log.target", value_name = "TARGET")]
    log_target: Option<String>,
}

impl Flags {
    /// `self` (flags before the subcommand) overridden by `later` (flags after it).
    fn then(self, later: Flags) -> Flags {
        Flags {
            config: later.config.or(self.config),
            config_dir: later.config_dir.or(self.config_dir),
            web_listen_address: later.web_listen_address.or(self.web_listen_address),
            web_allow_non_loopback: later.web_allow_non_loopback || self.web_allow_non_loopback,
            web_header_read_timeout: later
                .web_header_read_timeout
                .or(self.web_header_read_timeout),
            web_idle_timeout: later.web_idle_timeout.or(self.web_idle_timeout),
            tor_control_address: later.tor_control_address.or(self.tor_control_address),
            tor_cookie_file: later.tor_cookie_file.or(self.tor_cookie_file),
            tor_password_file: later.tor_password_file.or(self.tor_password_file),
            tor_refresh_interval: later.tor_refresh_interval.or(self.tor_refresh_interval),
            tor_timeout: later.tor_timeout.or(self.tor_timeout),
            tor_max_backoff: later.tor_max_backoff.or(self.tor_max_backoff),
            traffic_enabled: later.traffic_enabled || self.traffic_enabled,
            traffic_quantum_bytes: later.traffic_quantum_bytes.or(self.traffic_quantum_bytes),
            traffic_period: later.traffic_period.or(self.traffic_period),
            onion_self_probe_interval: later
                .onion_self_probe_interval
                .or(self.onion_self_probe_interval),
            onion_service: [self.onion_service, later.onion_service].concat(),
            log_level: later.log_level.or(self.log_level),
            log_target: later.log_target.or(self.log_target),
        }
    }

    fn overrides(&self) -> anyhow::Result<Vec<(String, Value)>> {
        let mut o: Vec<(String, Value)> = Vec::new();
        let mut s = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                o.push((k.into(), Value::from(v.clone())));
            }
        };
        s("web.listen_address", &self.web_listen_address);
        s("web.header_read_timeout", &self.web_header_read_timeout);
        s("web.idle_timeout", &self.web_idle_timeout);
        s("tor.control_address", &self.tor_control_address);
        s("tor.cookie_file", &self.tor_cookie_file);
        s("tor.password_file", &self.tor_password_file);
        s("tor.refresh_interval", &self.tor_refresh_interval);
        s("tor.timeout", &self.tor_timeout);
        s("tor.max_backoff", &self.tor_max_backoff);
        s("traffic.period", &self.traffic_period);
        s("onion.self_probe_interval", &self.onion_self_probe_interval);
        s("log.level", &self.log_level);
        s("log.target", &self.log_target);
        if self.web_allow_non_loopback {
            o.push(("web.allow_non_loopback".into(), Value::from(true)));
        }
        if self.traffic_enabled {
            o.push(("traffic.enabled".into(), Value::from(true)));
        }
        if let Some(q) = self.traffic_quantum_bytes {
            o.push(("traffic.quantum_bytes".into(), Value::from(q)));
        }
        for pair in &self.onion_service {
            let (role, addr) = pair
                .split_once('=')
                .context("--onion-service: expected ROLE=ADDRESS")?;
            o.push((
                format!("onion_services.{role}"),
                Value::from(addr.to_owned()),
            ));
        }
        Ok(o)
    }

    fn sources(&self) -> Sources {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A question answered "no" exits 1, so an error there must say something else.
    let question = matches!(
        cli.command,
        Some(Cmd::Torrc(TorrcCmd::HasInclude { .. }) | Cmd::CheckOnionAddress { .. })
    );
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("securedrop-tor-exporter: error: {}", error_chain(&e));
            if question {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The error and its causes, each said once: an error whose own message already ends with its
/// cause's text (`cannot read X: No such file…`) is not followed by that cause again.
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    let top = cli.flags;
    let command = cli.command.unwrap_or(Cmd::Serve {
        flags: Flags::default(),
    });
    let takes_flags = matches!(command, Cmd::Serve { .. } | Cmd::CheckConfig { .. });
    if !takes_flags && top != Flags::default() {
        anyhow::bail!(
            "configuration flags belong to `serve` and `check-config`, not to this subcommand"
        );
    }
    match command {
        Cmd::ClientKey(k) => client_key(k).map(|()| ExitCode::SUCCESS),
        Cmd::Torrc(t) => torrc(t),
        Cmd::CheckOnionAddress { print, file } => check_onion_address(print, file),
        Cmd::Recover(a) => recover(a),
        Cmd::OnionLabel => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let addr = securedrop_tor_exporter::control::OnionAddress::new(&line)
                .map_err(|e| anyhow::anyhow!("standard input: {e}"))?;
            println!(
                "{}",
                securedrop_tor_exporter::source::onion::unnamed_label(
                    &securedrop_tor_exporter::label_key::load().0,
                    &addr
                )
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::CheckConfig { print, flags } => {
            let flags = top.then(flags);
            let c = config::load(&flags.sources(), flags.overrides()?)?;
            match print {
                None => {
                    print!("{}", c.to_redacted_toml());
                    eprintln!("configuration is valid");
                }
                Some(Print::ListenAddress) => println!("{}", c.web.listen_address),
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Serve { flags } => {
            let flags = top.then(flags);
            let c = config::load(&flags.sources(), flags.overrides()?)?;
            securedrop_tor_exporter::logging::init(c.log.level, c.log.target);
            serve(c).map(|()| ExitCode::SUCCESS)
        }
    }
}

fn recover(a: RecoverArgs) -> anyhow::Result<ExitCode> {
    use securedrop_tor_exporter::recovery::{run, Policy};
    if a.reload_after > a.restart_after {
        anyhow::bail!("--reload-after must not be longer than --restart-after");
    }
    let exporter = match a.exporter {
        Some(addr) => addr,
        None => {
            let f = Flags::default();
            config::load(&f.sources(), f.overrides()?)?
                .web
                .listen_address
        }
    };
    let options = run::Options {
        exporter,
        state_file: a.state_file,
        unit: a.unit,
        systemctl: a.systemctl,
        policy: Policy {
            reload_after: a.reload_after,
            restart_after: a.restart_after,
            restart_every: a.restart_every,
            max_restarts: a.max_restarts,
            settle: a.settle,
        },
        timeout: Duration::from_secs(5),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Standard error: under systemd it goes to the journal as this program's lines, and on to
    // syslog and OSSEC, which mails the `tor health: alert recovery_…` ones.
    match run::run_once(&options, now, &mut |line| eprintln!("{line}")) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        // No judgement, no action; and no failed unit either, whose systemd lines OSSEC's rule
        // 1002 would mail every minute for as long as the exporter is stopped.
        Err(e @ run::RecoverError::Exporter { .. }) => {
            eprintln!("recover: nothing done: {e}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e.into()),
    }
}

fn serve(c: securedrop_tor_exporter::Config) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let passed = sockets_from_systemd(&c.web)?;
        let loopback = match passed.loopback {
            Some(l) => tokio::net::TcpListener::from_std(l)?,
            None => {
                let addr = c.web.listen_address;
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?
            }
        };
        let onion = passed
            .onion
            .map(tokio::net::UnixListener::from_std)
            .transpose()?;
        let addr = loopback.local_addr()?;
        tracing::info!(%addr, onion = onion.is_some(), control = %c.tor.control_address, "serving /metrics");
        let listeners = securedrop_tor_exporter::Listeners { loopback, onion };
        securedrop_tor_exporter::run(listeners, c, shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// The listening sockets systemd passed (socket activation): none, when run by hand.
#[derive(Default)]
struct Passed {
    loopback: Option<std::net::TcpListener>,
    onion: Option<std::os::unix::net::UnixListener>,
}

/// The listening sockets systemd holds for us (socket activation), told apart by their kind: at
/// most one TCP socket (the loopback port) and at most one unix socket (the onion's).
///
/// With the package's `.socket` unit, systemd keeps the port bound while the exporter restarts
/// or is down, so no other local account can bind it in between. The package keeps the TCP
/// socket on `web.listen_address` (postinst, from `check-config --print`): when the
/// configuration says otherwise (edited, not yet applied with `dpkg-reconfigure`), the exporter
/// still serves on the passed socket and warns, naming both. Refusing would take the metrics
/// down and, through systemd's start limits, could fail the socket unit. A TCP socket outside
/// loopback is refused unless `web.allow_non_loopback` allows it, as for `web.listen_address`.
fn sockets_from_systemd(web: &config::WebConfig) -> anyhow::Result<Passed> {
    use std::os::fd::{FromRawFd as _, OwnedFd};
    let mut passed = Passed::default();
    for fd in sd_notify::listen_fds().context("reading LISTEN_FDS")? {
        // SAFETY: systemd passed this descriptor to us alone (LISTEN_PID is ours, and
        // `listen_fds` unset the variables so nothing else takes it again); it is owned here
        // and nowhere else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let kind = socket2::SockRef::from(&fd)
            .domain()
            .context("systemd passed a descriptor that is not a socket")?;
        if kind == socket2::Domain::UNIX {
            anyhow::ensure!(
                passed.onion.is_none(),
                "systemd passed two unix sockets; expected one (the onion's)"
            );
            let l = std::os::unix::net::UnixListener::from(fd);
            l.set_nonblocking(true)?;
            tracing::info!("serving the onion service on the unix socket systemd holds");
            passed.onion = Some(l);
            continue;
        }
        anyhow::ensure!(
            passed.loopback.is_none(),
            "systemd passed two TCP sockets; expected one (the loopback port)"
        );
        let listener = std::net::TcpListener::from(fd);
        let local = listener
            .local_addr()
            .context("the socket systemd passed is neither TCP nor unix")?;
        if !web.allow_non_loopback && !local.ip().is_loopback() {
            anyhow::bail!(
                "systemd passed a socket on {local}, outside loopback; set web.allow_non_loopback = true to serve there"
            );
        }
        let configured = web.listen_address;
        if local != configured {
            tracing::warn!(
                "systemd passed a socket on {local}, but web.listen_address is {configured}: serving on {local}; run `dpkg-reconfigure securedrop-tor-exporter` to move the socket to {configured}"
            );
        }
        listener.set_nonblocking(true)?;
        tracing::info!(%local, "using the socket systemd holds (socket activation)");
        passed.loopback = Some(listener);
    }
    Ok(passed)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Exit 0 for yes, 1 for no.
fn answer(yes: bool) -> ExitCode {
    if yes {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn torrc(t: TorrcCmd) -> anyhow::Result<ExitCode> {
    use setup::{edit, tor};
    let layout = |old| {
        if old {
            include::Layout::Old
        } else {
            include::Layout::Current
        }
    };
    match t {
        TorrcCmd::OnionTarget { path } => {
            if path {
                println!("{}", setup::ONION_SOCKET);
            } else {
                println!("{}", setup::onion_target());
            }
        }
        TorrcCmd::IncludeLine { marked, old_layout } => {
            let l = layout(old_layout);
            if marked {
                println!("{}", l.mark());
            }
            println!("{}", l.line());
        }
        TorrcCmd::HasInclude {
            count,
            others,
            ours,
            old_layout,
            torrc,
        } => {
            let text = std::fs::read(&torrc)
                .with_context(|| format!("cannot read {}", torrc.display()))?;
            if ours || old_layout {
                return Ok(answer(include::has_marked(&text, layout(old_layout))));
            }
            let n = if others {
                include::count_other_includes(&text)
            } else {
                include::count_includes(&text)
            };
            if count {
                println!("{n}");
            }
            return Ok(answer(n > 0));
        }
        TorrcCmd::AddInclude { print, torrc } => {
            if print {
                print_changed(&torrc, include::with_include)?;
            } else {
                edit::edit(&torrc, include::with_include)?;
            }
        }
        TorrcCmd::RemoveInclude {
            old_layout,
            print,
            torrc,
        } => {
            let change = |text: &[u8]| include::without_marked(text, layout(old_layout));
            if print {
                print_changed(&torrc, change)?;
            } else {
                edit::edit(&torrc, change)?;
            }
        }
        TorrcCmd::OnionDirs { tor: f } => {
            for dir in tor::onion_dirs(detected(), &f.torrc, &f.defaults_torrc)? {
                println!("{dir}");
            }
        }
        TorrcCmd::Verify {
            keep_onion_dirs,
            tor: f,
        } => {
            let c = detected();
            match keep_onion_dirs {
                Some(list) => tor::verify_keeping(c, &f.torrc, &f.defaults_torrc, &list)?,
                None => tor::verify(c, &f.torrc, &f.defaults_torrc)?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `torrc` as `change` would leave it to standard output, byte for byte (unchanged where
/// `change` has nothing to do).
fn print_changed(
    torrc: &std::path::Path,
    change: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let out = setup::edit::preview(torrc, change)?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .context("cannot write to standard output")
}

/// How tor@default is confined here, with the warning the admin needs when the check cannot
/// run inside its profile.
fn detected() -> confinement::Confinement {
    let c = setup::tor::detect();
    if c == confinement::Confinement::AppArmorWithoutAaExec {
        eprintln!(
            "securedrop-tor-exporter: WARNING: AppArmor confines tor (system_tor), but aa-exec is missing (package apparmor): checking tor's configuration outside the profile."
        );
    }
    c
}

fn check_onion_address(print: bool, file: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    use std::io::Read as _;
    // At most 4 KiB (a hostname file holds 63 bytes), a regular file opened without blocking:
    // the postinst runs this on a file in a folder debian-tor owns, where a symlink to /dev/zero
    // or a FIFO must fail at once rather than fill memory or hang dpkg.
    let mut text = String::new();
    let from = match &file {
        Some(f) => {
            securedrop_tor_exporter::small_file::open_regular(f, 4096)
                .map_err(anyhow::Error::from)
                .and_then(|h| Ok(h.take(4096).read_to_string(&mut text)?))
                .with_context(|| format!("cannot read {}", f.display()))?;
            f.display().to_string()
        }
        None => {
            std::io::stdin()
                .take(4096)
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            "standard input".to_owned()
        }
    };
    match setup::address::check(&text) {
        Ok(addr) => {
            if print {
                println!("{}", addr.expose());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("securedrop-tor-exporter: {from}: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn client_key(k: KeyCmd) -> anyhow::Result<()> {
    match k {
        KeyCmd::Generate {
            auth_file,
            private_key_file,
        } => {
            keys::generate_files(&auth_file, &private_key_file)?;
            eprintln!(
                "wrote {} (public) and {} (private, 0600)",
                auth_file.display(),
                private_key_file.display()
            );
        }
        KeyCmd::Show {
            private_key_file,
            hostname_file,
        } => {
            let key = keys::PrivateKey::read(&private_key_file)?;
            let onion = keys::read_hostname(&hostname_file)?;
            println!("{}", key.auth_private_line(&onion).as_str());
        }
        KeyCmd::Public { private_key_file } => {
            println!("{}", keys::PrivateKey::read(&private_key_file)?.auth_line());
        }
    }
    Ok(())
}
