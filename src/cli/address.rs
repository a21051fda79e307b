//! The two commands that read one onion address: `check-onion-address` (is a hostname file a
//! v3 address) and `onion-label` (the `unnamed_…` label the exporter gives it).

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::CliError;
use crate::control::OnionAddress;
use crate::{label_key, setup, small_file, source};

/// `check-onion-address [FILE]`: exit 0 if the file (or standard input) holds a v3 address,
/// printed with `--print`; 1 with the reason if not.
pub(super) fn check_onion_address(
    print: bool,
    file: Option<PathBuf>,
) -> Result<ExitCode, CliError> {
    // At most 4 KiB (a hostname file holds 63 bytes), a regular file opened without blocking:
    // the postinst runs this on a file in a folder debian-tor owns, where a symlink to /dev/zero
    // or a FIFO must fail at once rather than fill memory or hang dpkg.
    let mut text = String::new();
    let from = match &file {
        Some(f) => {
            small_file::open_regular(f, 4096)
                .and_then(|h| Ok(h.take(4096).read_to_string(&mut text)?))
                .map_err(|source| CliError::ReadSmall {
                    what: f.display().to_string(),
                    source,
                })?;
            f.display().to_string()
        }
        None => {
            std::io::stdin()
                .take(4096)
                .read_to_string(&mut text)
                .map_err(|source| CliError::Read {
                    what: "standard input".to_owned(),
                    source,
                })?;
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

/// `onion-label`: the label of the address on standard input, keyed by this machine's label key.
pub(super) fn onion_label() -> Result<(), CliError> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(CliError::StandardInput)?;
    let addr = OnionAddress::new(&line).map_err(CliError::OnionLabel)?;
    println!(
        "{}",
        source::onion::unnamed_label(&label_key::load().0, &addr)
    );
    Ok(())
}
