//! `setup configure|remove`: the package's maintainer scripts' work (see `setup::configure`),
//! wired to this machine: the real tor and systemd, the environment's knobs, and standard error.

use std::process::ExitCode;
use std::time::Duration;

use super::SetupCmd;
use crate::config;
use crate::setup::configure::{self, Host, Options};
use crate::setup::{self, paths::Root, remove, system, transaction};

/// Every line goes to standard error, which dpkg shows the admin; exit 1 after a failure (the
/// setup has said why, so there is no error left to print).
pub(super) fn package_setup(s: SetupCmd) -> ExitCode {
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
    let tor_installed = setup::tor::on_path("tor");
    let host = Host {
        root: &root,
        faults: &mut faults,
        tor: &mut tor,
        services: &mut services,
        say: &mut say,
    };
    let done = if configuring {
        // The files alone, as the service (its unit sets no environment) and the socket
        // generator (systemd runs it with none) read them: dpkg's environment may hold the
        // setup's own SECUREDROP_TOR_EXPORTER_* knobs below, which the loader would take for
        // configuration keys. A configuration that does not load counts as the default address
        // (the exporter itself refuses to start on it, and says why).
        // Read under the root being set up.
        let sources = config::Sources {
            file: root.at(config::DEFAULT_CONFIG_FILE),
            dir: Some(root.at(config::DEFAULT_CONFIG_DIR)),
            env: false,
            ..config::Sources::default()
        };
        let listen_address = config::load(&sources, Vec::new())
            .ok()
            .map(|c| c.web.listen_address.to_string())
            .unwrap_or_else(|| setup::socket_unit::default_address().to_string());
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
