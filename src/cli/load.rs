//! The configuration as every command loads it, and the two commands that only load it:
//! `check-config` and `systemd-generator`.

use std::path::Path;

use super::{error_chain, CliError, ConfigFlags, Print};
use crate::config::{self, Config};
use crate::setup;

/// The configuration from its usual sources with `flags` on top: the flags are the last and
/// strongest source (see [`super::flags`]).
pub(super) fn load(flags: &ConfigFlags) -> Result<Config, CliError> {
    Ok(config::load(&flags.sources(), flags.overrides()?)?)
}

/// `check-config`: the configuration as loaded, onion addresses redacted, and that it is valid;
/// or one value the package needs (`--print`).
pub(super) fn check_config(print: Option<Print>, flags: &ConfigFlags) -> Result<(), CliError> {
    let c = load(flags)?;
    match print {
        None => {
            print!("{}", c.to_redacted_toml());
            eprintln!("configuration is valid");
        }
        Some(Print::ListenAddress) => println!("{}", c.web.listen_address),
    }
    Ok(())
}

/// `systemd-generator`: the loopback socket's drop-in for `web.listen_address`.
pub(super) fn systemd_generator(normal_dir: &Path, flags: &ConfigFlags) -> Result<(), CliError> {
    // Loaded as `serve` loads it; any failure is a reason, said and survived.
    let listen = load(flags)
        .map(|c| c.web.listen_address)
        .map_err(|e| error_chain(&e));
    setup::socket_generator::run(normal_dir, listen)?;
    Ok(())
}
