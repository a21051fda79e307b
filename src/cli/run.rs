//! Which code runs each parsed command: the one place a new subcommand is wired in.

use std::process::ExitCode;

use super::{address, keys, load, package, recover, serve, torrc, CliError, Cmd};

/// Runs `command` and says how the process should exit. An `Err` has not been printed yet: the
/// binary prints it ([`error_chain`](super::error_chain)) and exits 1, or 2 for a question
/// ([`Cmd::is_question`]). What a command prints itself (a "no" answer's reason, the setup's
/// lines) it prints here and returns its exit code as `Ok`.
pub fn run(command: Cmd) -> Result<ExitCode, CliError> {
    match command {
        Cmd::Serve { flags } => serve::serve(&flags).map(|()| ExitCode::SUCCESS),
        Cmd::CheckConfig { print, flags } => {
            load::check_config(print, &flags).map(|()| ExitCode::SUCCESS)
        }
        Cmd::SystemdGenerator { normal_dir, flags } => {
            load::systemd_generator(&normal_dir, &flags).map(|()| ExitCode::SUCCESS)
        }
        Cmd::ClientKey(k) => keys::client_key(k).map(|()| ExitCode::SUCCESS),
        Cmd::Torrc(t) => torrc::torrc(t),
        Cmd::Setup(s) => Ok(package::package_setup(s)),
        Cmd::CheckOnionAddress { print, file } => address::check_onion_address(print, file),
        Cmd::OnionLabel => address::onion_label().map(|()| ExitCode::SUCCESS),
        Cmd::Recover(a) => recover::recover(a),
    }
}
