//! Command line: parse flags, load the configuration, start logging, run the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use securedrop_tor_exporter::cli::{
    self, Cmd, ConfigFlags, KeyCmd, Parsed, Print, RecoverArgs, SetupCmd, TorrcCmd,
};
use securedrop_tor_exporter::config;
use securedrop_tor_exporter::keys;
use securedrop_tor_exporter::setup::{self, confinement, include};

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(c)) => c,
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version(v)) => {
            println!("{v}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("securedrop-tor-exporter: error: {e}\n\nFor more information, try '--help'.");
            return ExitCode::from(2);
        }
    };
    // A question answered "no" exits 1, so an error there must say something else.
    let question = matches!(
        command,
        Cmd::Torrc(TorrcCmd::HasInclude { .. }) | Cmd::CheckOnionAddress { .. }
    );
    match real_main(command) {
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

fn real_main(command: Cmd) -> anyhow::Result<ExitCode> {
    match command {
        Cmd::ClientKey(k) => client_key(k).map(|()| ExitCode::SUCCESS),
        Cmd::Torrc(t) => torrc(t),
        Cmd::Setup(s) => Ok(package_setup(s)),
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
        Cmd::SystemdGenerator { normal_dir, flags } => {
            // Loaded as `serve` loads it; any failure is a reason, said and survived.
            let listen = flags
                .overrides()
                .map_err(anyhow::Error::from)
                .and_then(|o| Ok(config::load(&flags.sources(), o)?.web.listen_address))
                .map_err(|e| error_chain(&e));
            setup::socket_generator::run(&normal_dir, listen)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Serve { flags } => {
            let c = config::load(&flags.sources(), flags.overrides()?)?;
            securedrop_tor_exporter::logging::init(c.log.level, c.log.target);
            serve(c).map(|()| ExitCode::SUCCESS)
        }
    }
}

/// `setup configure|remove`: the package's maintainer scripts' work (see `setup::configure`).
/// Every line goes to standard error, which dpkg shows the admin; exit 1 after a failure.
fn package_setup(s: SetupCmd) -> ExitCode {
    use securedrop_tor_exporter::setup::configure::{self, Host, Options};
    use securedrop_tor_exporter::setup::{paths::Root, remove, system, transaction};
    let (root, configuring) = match s {
        SetupCmd::Configure { root } => (root, true),
        SetupCmd::Remove { root } => (root, false),
    };
    let root = Root::new(root);
    let mut tor = system::RealTor::new(&root.at(setup::TORRC));
    let mut say = |line: &str| eprintln!("securedrop-tor-exporter: {line}");
    if let Some(w) = tor.warning() {
        say(w);
    }
    let mut services = system::RealServices::new(root.path() == std::path::Path::new("/"));
    let mut faults = transaction::NoFaults;
    let tor_installed = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("tor").is_file()));
    let host = Host {
        root: &root,
        faults: &mut faults,
        tor: &mut tor,
        services: &mut services,
        say: &mut say,
    };
    let done = if configuring {
        // A configuration that does not load counts as the default address (the exporter
        // itself refuses to start on it, and says why).
        let listen_address = {
            let f = ConfigFlags::default();
            f.overrides()
                .ok()
                .and_then(|o| config::load(&f.sources(), o).ok())
                .map(|c| c.web.listen_address.to_string())
                .unwrap_or_else(|| setup::socket_unit::default_address().to_string())
        };
        let timeout = std::env::var("SECUREDROP_TOR_EXPORTER_HOSTNAME_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30);
        let opts = Options {
            no_client_key: std::env::var("SECUREDROP_TOR_EXPORTER_NO_CLIENT_KEY").as_deref()
                == Ok("1"),
            hostname_timeout: Duration::from_secs(timeout),
            listen_address,
            tor_installed,
        };
        configure::configure(host, &opts)
    } else {
        remove::remove(host, tor_installed)
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
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
            let f = ConfigFlags::default();
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
        let listeners = securedrop_tor_exporter::http::listeners(&c.web).await?;
        let addr = listeners.loopback.local_addr()?;
        let onion = listeners.onion.is_some();
        tracing::info!(%addr, onion, control = %c.tor.control_address, "serving /metrics");
        securedrop_tor_exporter::run(listeners, c, shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
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
