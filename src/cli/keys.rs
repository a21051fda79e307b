//! `client-key generate|show|public`: the onion's client-authorization keys, for an admin
//! setting up a monitoring host by hand.

use super::{CliError, KeyCmd};
use crate::keys;

pub(super) fn client_key(k: KeyCmd) -> Result<(), CliError> {
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
