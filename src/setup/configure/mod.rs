//! `setup configure`: what the package's postinst does, as a plan that reads top to bottom
//! ([`configure`]). The metrics onion service is written into tor's configuration (the client
//! key, the drop-in, the `%include` line), checked the way tor@default will read it, and tor is
//! *reloaded*, never restarted: tor also serves the sources' interface and the admin's SSH.
//!
//! Every change goes through one [`Tx`]: on any error it is rolled back and tor is left as it
//! was; a run cut off (kill -9, power loss) is rolled back by the next. Where tor would reject
//! the configuration with our service in it, everything of ours is taken out ([`undo_ours`]),
//! since tor reloads daily (logrotate) and would exit on it.
//!
//! The steps, by what they touch: [`tor_config`] (the torrc, the drop-in, the old layout, the
//! onion services tor runs), [`clients`] (the client key, `authorized_clients/`, the label key),
//! [`units`] (systemd's sockets, the reload and its watch, the onion address written down).

use std::time::Duration;

mod clients;
mod tor_config;
mod units;

pub use clients::is_key_line;
pub use tor_config::undo_ours;

use super::accounts::Accounts;
use super::paths::{self, Root};
use super::system::{Services, TorCheck};
use super::transaction::{Faults, Recovered, Tx, TxError};

pub const TOR_UNIT: &str = "tor@default.service";
pub const SOCKET_UNIT: &str = "securedrop-tor-exporter.socket";
pub const SERVICE_UNIT: &str = "securedrop-tor-exporter.service";
pub const ONION_SOCKET_UNIT: &str = "securedrop-tor-exporter-onion.socket";
/// What the drop-in holds when our onion service had to be taken out but the torrc still
/// includes it (tor refuses an `%include` of a missing file).
pub const DROPIN_OFF: &str = "# securedrop-tor-exporter: no onion service here (its configuration failed; see 'dpkg --configure -a').\n";
/// The drop-in once the package is removed (purge deletes it); postrm keeps a copy.
pub const DROPIN_REMOVED: &str = "# securedrop-tor-exporter is removed: no onion service here. Purging the package deletes this\n# file and the %include line it added to /etc/tor/torrc (tor refuses an %include of a missing file).\n";
/// Where the shell postinst of 0.1.x moved the loopback socket; the socket generator does now,
/// and a file here would override it.
pub const LEGACY_SOCKET_DROPIN: &str =
    "/etc/systemd/system/securedrop-tor-exporter.socket.d/listen.conf";
const LEGACY_SOCKET_MARK: &str = "# Managed by the securedrop-tor-exporter package";
/// Keeps the loopback socket on its previous address when it cannot move: in /run, so it lasts
/// until the next run or boot; the generator's drop-in's name, which it masks.
pub const SOCKET_PIN: &str =
    "/run/systemd/system/securedrop-tor-exporter.socket.d/50-listen-address.conf";

/// What the caller knows of the system that is not a file of the root.
pub struct Options {
    /// `SECUREDROP_TOR_EXPORTER_NO_CLIENT_KEY=1`: make no client key (as the opt-out file).
    pub no_client_key: bool,
    /// How long to wait for tor's `hostname` after the reload.
    pub hostname_timeout: Duration,
    /// `web.listen_address` of the exporter's configuration (the default where it does not
    /// load), where the loopback socket must listen.
    pub listen_address: String,
    /// Is tor installed (`tor` on PATH)?
    pub tor_installed: bool,
}

/// The parts a run works with.
pub struct Host<'a> {
    pub root: &'a Root,
    pub faults: &'a mut dyn Faults,
    pub tor: &'a mut dyn TorCheck,
    pub services: &'a mut dyn Services,
    /// One line for the admin (the caller prefixes the program's name).
    pub say: &'a mut dyn FnMut(&str),
}

/// The run failed; what happened and what is in place was said.
#[derive(Debug, thiserror::Error)]
#[error("the setup failed (see above)")]
pub struct Failed;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Generated {
    New,
    Kept,
}

struct Run<'h, 'a> {
    tx: Tx<'a>,
    tor: &'h mut dyn TorCheck,
    services: &'h mut dyn Services,
    say: &'h mut dyn FnMut(&str),
    acc: Accounts,
    /// Did this run change a file tor reads?
    changed_tor: bool,
    /// An earlier run of the shell postinst was cut off without a journal.
    legacy_interrupted: bool,
    /// tor rejects the configuration with our onion service in it.
    rejected: bool,
    undo_why: &'static str,
    hs_before: Option<Vec<String>>,
    committed: bool,
}

/// Runs `setup configure`.
pub fn configure(h: Host<'_>, opts: &Options) -> Result<(), Failed> {
    let Host {
        root,
        faults,
        tor,
        services,
        say,
    } = h;
    let acc = match Accounts::of(root).and_then(|a| a.check_runner().map(|()| a)) {
        Ok(a) => a,
        Err(e) => {
            say(&format!("ERROR: {e}"));
            return Err(Failed);
        }
    };
    if !opts.tor_installed {
        say("ERROR: tor is not installed");
        return Err(Failed);
    }
    let mut r = Run {
        tx: Tx::new(root, acc, faults),
        tor,
        services,
        say,
        acc,
        changed_tor: false,
        legacy_interrupted: false,
        rejected: false,
        undo_why: "tor survives its next reload",
        hs_before: None,
        committed: false,
    };
    r.plan(opts)
}

impl Run<'_, '_> {
    fn say(&mut self, line: &str) {
        (self.say)(line)
    }

    fn plan(&mut self, opts: &Options) -> Result<(), Failed> {
        self.prepare()?;
        self.ensure_label_key()?;
        if !self.has_clients() && (self.exists(paths::OPT_OUT) || opts.no_client_key) {
            // An onion service without authorized clients is open to anyone who learns its
            // address: never publish the metrics that way.
            if self.exists(paths::DROPIN) || self.exists(paths::OLD_DROPIN) {
                self.rejected = true;
                self.undo_why =
                    "tor does not publish it without client authorization at its next reload";
                return self.fail(&format!(
                    "{} has no .auth file tor accepts, and key generation is turned off ({}):\nthe metrics onion service would be open to anyone who learns its address. Add a client's .auth\nfile there and run 'dpkg-reconfigure {}'.",
                    paths::CLIENTS_DIR,
                    paths::OPT_OUT,
                    paths::NAME
                ));
            }
            self.say(&format!(
                "no client is authorized in {} and key generation is turned off",
                paths::CLIENTS_DIR
            ));
            self.say(&format!(
                "({}): the metrics onion service is not set up. Add a client's .auth file",
                paths::OPT_OUT
            ));
            self.say(&format!(
                "there and run 'dpkg-reconfigure {}'.",
                paths::NAME
            ));
            self.apply_listen_address(opts)?;
            self.commit();
            return Ok(());
        }
        let generated = self.ensure_client()?;
        self.write_dropin()?;
        self.migrate_old_layout()?;
        self.add_include()?;

        // A configuration tor rejects goes out whole (our part of it); one that would drop onion
        // services of tor's is only rolled back: taking ours out could drop them too.
        if let Err(reasons) = self.tor.verify() {
            self.say(&reasons);
            self.rejected = true;
            return self.fail("tor would not accept this configuration (see above).");
        }
        if !self.onion_services_kept() {
            return self
                .fail("the new configuration would drop onion services tor runs (see above).");
        }
        self.apply_listen_address(opts)?;
        self.ensure_onion_socket(opts)?;
        self.reload_tor(opts)?;
        self.commit();
        self.finish_migration();
        self.write_onion_conf()?;
        self.commit();

        if let Some(g) = generated {
            self.say(match g {
                Generated::New => "made a client key for the metrics onion service. Print its .auth_private line for the",
                Generated::Kept => "authorized the client key in /var/lib/securedrop-tor-exporter/client.key again. Print its .auth_private line for the",
            });
            self.say("monitoring host's ClientOnionAuthDir with:");
            self.say(&format!(
                "  {} client-key show --private-key-file {} --hostname-file {}",
                paths::NAME,
                paths::CLIENT_KEY,
                paths::HOSTNAME
            ));
            self.say(&format!(
                "then delete the private key from this server: rm {}",
                paths::CLIENT_KEY
            ));
        }
        Ok(())
    }

    // ---- the start: folders, what an earlier run left, the state before ------------------------

    fn prepare(&mut self) -> Result<(), Failed> {
        let (admin, admin_gid) = (self.acc.admin, self.acc.admin_gid);
        for (d, mode) in [
            (paths::ETC_DIR, 0o755),
            (paths::CONF_D, 0o755),
            (paths::STATE_DIR, 0o700),
        ] {
            let made = self.tx.make_plain_dir(d, admin, admin_gid, mode);
            if let Err(e) = made {
                return self.fail(&e.to_string());
            }
            if let Err(e) = self.tx.folder(d) {
                return self.fail(&e.to_string());
            }
        }
        for d in [paths::HS_DIR, paths::CLIENTS_DIR] {
            if self.exists(d) {
                if let Err(e) = self.tx.folder(d) {
                    return self.fail(&e.to_string());
                }
            }
        }
        self.legacy_interrupted = self.exists(paths::LEGACY_IN_PROGRESS);
        match self.tx.recover() {
            Ok(Recovered::RolledBack) => self.say(
                "an earlier run was cut off: what it changed is put back before this run starts.",
            ),
            Ok(_) => {}
            Err(e) => {
                self.say(&format!(
                    "ERROR: an earlier run was cut off, and what it changed could not all be put back: {e}"
                ));
                self.legacy_interrupted = true;
            }
        }
        for d in paths::LEFTOVER_DIRS
            .iter()
            .chain([&paths::CLIENTS_DIR, &paths::HS_DIR])
        {
            if let Err(e) = self.tx.clean_leftovers(d) {
                self.say(&format!("WARNING: {e}"));
            }
        }
        // the onion services tor's configuration holds now, before anything changes
        self.hs_before = self.tor.onion_dirs().ok();
        Ok(())
    }

    fn exists(&self, abs: &str) -> bool {
        let p = self.tx.real(abs);
        p.symlink_metadata().is_ok()
    }

    // ---- failing ------------------------------------------------------------------------------

    fn fail<T>(&mut self, msg: &str) -> Result<T, Failed> {
        for line in msg.lines().enumerate() {
            let l = if line.0 == 0 {
                format!("ERROR: {}", line.1)
            } else {
                line.1.to_owned()
            };
            self.say(&l);
        }
        if self.committed {
            self.say("tor already runs the new configuration (it was verified and reloaded); nothing was undone.");
            return Err(Failed);
        }
        let restored = self.restore_previous();
        self.say(&format!("{restored}; tor was not reloaded or restarted."));
        Err(Failed)
    }

    fn tx_fail<T>(&mut self, e: TxError) -> Result<T, Failed> {
        self.fail(&e.to_string())
    }

    /// Undoes this run; where tor rejected the configuration with our service, or after a cut-off
    /// run of the shell postinst, also takes everything of ours out of tor's configuration.
    /// Returns what is now in place, truthfully.
    fn restore_previous(&mut self) -> String {
        let rolled = match self.tx.rollback() {
            Ok(()) => true,
            Err(e) => {
                self.say(&format!("rollback step failed: {e}"));
                false
            }
        };
        if self.legacy_interrupted || self.rejected {
            if self.rejected {
                let why = self.undo_why;
                self.say(&format!(
                    "taking the metrics onion service out of tor's configuration, so that {why}."
                ));
            } else {
                self.say("an earlier run of this script was interrupted, so what it left in tor's configuration");
                self.say("is not known to be good: taking the metrics onion service out of it.");
            }
            let mut restored = if undo_ours(&mut self.tx, self.say) {
                self.legacy_interrupted = false;
                format!(
                    "the metrics onion service is out of tor's configuration (the %include line in {}, {})",
                    paths::TORRC,
                    paths::DROPIN
                )
            } else {
                "not all of the metrics onion service could be taken out of tor's configuration (see above)".to_owned()
            };
            if self.tor.verify().is_err() {
                restored.push_str(
                    "; tor would still reject its configuration: fix it before tor's next reload",
                );
            } else if !self.onion_services_kept_quiet() {
                restored
                    .push_str("; tor's configuration lacks onion services it had before: check it");
            } else {
                restored.push_str("; tor accepts its configuration as it is now");
            }
            restored
        } else if rolled {
            "the previous tor configuration is back in place".to_owned()
        } else {
            "not every file could be put back (see above): check tor's configuration before its next reload".to_owned()
        }
    }

    /// tor runs (or will run at its next start) what this run wrote: nothing is undone any more.
    fn commit(&mut self) {
        if let Err(e) = self.tx.commit() {
            self.say(&format!("WARNING: {e}"));
        }
        self.committed = true;
        // what tor runs now is known to be good: the 0.1.x marker has nothing left to say
        let _ = std::fs::remove_file(self.tx.real(paths::LEGACY_IN_PROGRESS));
        self.legacy_interrupted = false;
        // the 0.1.x socket drop-in's folder, empty once that file went
        if let Some(d) = self.tx.real(LEGACY_SOCKET_DROPIN).parent() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lines_are_what_tor_accepts() {
        let good = format!("descriptor:x25519:{}", "A".repeat(52));
        assert!(is_key_line(good.as_bytes()));
        assert!(is_key_line(format!("{good}\n").as_bytes()));
        assert!(!is_key_line(format!("{good}\nx").as_bytes()));
        assert!(!is_key_line(b"descriptor:x25519:TOOSHORT"));
        assert!(!is_key_line(b""));
        assert!(!is_key_line(
            format!("descriptor:x25519:{}", "1".repeat(52)).as_bytes()
        ));
    }
}
