//! `setup configure`: what the package's postinst does, as a plan that reads top to bottom
//! ([`configure`]). The metrics onion service is written into tor's configuration (the client
//! key, the drop-in, the `%include` line), checked the way tor@default will read it, and tor is
//! *reloaded*, never restarted: tor also serves the sources' interface and the admin's SSH.
//!
//! Every change goes through one [`Tx`]: on any error it is rolled back and tor is left as it
//! was; a run cut off (kill -9, power loss) is rolled back by the next. Where tor would reject
//! the configuration with our service in it, everything of ours is taken out ([`undo_ours`]),
//! since tor reloads daily (logrotate) and would exit on it.

use std::time::Duration;

use super::accounts::Accounts;
use super::dir::Kind;
use super::include::{self, Layout};
use super::paths::{self, Root};
use super::system::{Services, TorCheck};
use super::transaction::{Faults, Recovered, Tx, TxError};
use super::{address, onion_dirs, ONION_SOCKET};

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

/// A line tor accepts in `authorized_clients/*.auth` (and the shape of our stored private key):
/// `descriptor:x25519:` and 52 base32 characters, alone (trailing newlines aside).
pub fn is_key_line(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let Some(b32) = text
        .trim_end_matches('\n')
        .strip_prefix("descriptor:x25519:")
    else {
        return false;
    };
    b32.len() == 52
        && b32
            .bytes()
            .all(|c| c.is_ascii_alphabetic() || (b'2'..=b'7').contains(&c))
}

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
    let acc = match Accounts::of(root) {
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
        if self.legacy_interrupted {
            let _ = std::fs::remove_file(self.tx.real(paths::LEGACY_IN_PROGRESS));
            self.legacy_interrupted = false;
        }
        let _ = std::fs::remove_file(self.tx.real(paths::LEGACY_IN_PROGRESS));
        // the 0.1.x socket drop-in's folder, empty once that file went
        if let Some(d) = self.tx.real(LEGACY_SOCKET_DROPIN).parent() {
            let _ = std::fs::remove_dir(d);
        }
    }

    // ---- tor's configuration ------------------------------------------------------------------

    fn torrc_text(&self) -> Option<Vec<u8>> {
        std::fs::read(self.tx.real(paths::TORRC)).ok()
    }

    /// Every onion service tor's configuration held before this run is still in it: "valid" is
    /// not enough (an emptied torrc is valid, and would drop every SecureDrop onion service).
    fn onion_services_kept(&mut self) -> bool {
        let Some(before) = self.hs_before.clone() else {
            return true;
        };
        let after = match self.tor.onion_dirs() {
            Ok(a) => a,
            Err(_) => {
                self.say("tor could not read the new configuration ('securedrop-tor-exporter torrc onion-dirs' failed).");
                return false;
            }
        };
        let lost = onion_dirs::lost(&before, &after);
        if lost.is_empty() {
            return true;
        }
        self.say("the new configuration would drop these onion services of tor's:");
        for d in lost {
            self.say(&format!("    HiddenServiceDir {d}"));
        }
        false
    }

    fn onion_services_kept_quiet(&mut self) -> bool {
        let Some(before) = self.hs_before.clone() else {
            return true;
        };
        self.tor
            .onion_dirs()
            .is_ok_and(|after| onion_dirs::lost(&before, &after).is_empty())
    }

    fn add_include(&mut self) -> Result<(), Failed> {
        let Some(text) = self.torrc_text() else {
            return self.fail(&format!("{} is missing", paths::TORRC));
        };
        if include::has_include(&text) {
            return Ok(());
        }
        let Some(new) = include::with_include(&text) else {
            return Ok(());
        };
        match put_torrc(&mut self.tx, self.say, &new) {
            Ok(changed) => {
                self.changed_tor |= changed;
                Ok(())
            }
            Err(e) => self.fail(&e),
        }
    }

    fn write_dropin(&mut self) -> Result<(), Failed> {
        let text = format!(
            "# Managed by the securedrop-tor-exporter package (rewritten on upgrade, removed with the\n# package): the client-authorized onion service for the exporter's /metrics.\nHiddenServiceDir {}/\nHiddenServicePort 80 {}\n",
            paths::HS_DIR,
            super::onion_target()
        );
        let (a, ag) = (self.acc.admin, self.acc.admin_gid);
        match self.tx.put(paths::DROPIN, text.as_bytes(), a, ag, 0o644) {
            Ok(c) => {
                self.changed_tor |= c;
                Ok(())
            }
            Err(e) => self.tx_fail(e),
        }
    }

    /// Versions up to 0.1.0 kept the drop-in in /etc/tor/torrc.d/ with a marked include of that
    /// folder, which tor's older AppArmor profile cannot read: both go; the onion folder, its
    /// key and clients stay.
    fn migrate_old_layout(&mut self) -> Result<(), Failed> {
        match drop_marked(&mut self.tx, self.say, Layout::Old) {
            Ok(c) => self.changed_tor |= c,
            Err(e) => return self.fail(&e),
        }
        match self.tx.remove(paths::OLD_DROPIN) {
            Ok(c) => self.changed_tor |= c,
            Err(e) => return self.tx_fail(e),
        }
        if let Some(t) = self.torrc_text() {
            let sub = String::from_utf8_lossy(&t).lines().any(|l| {
                let mut w = l.split_whitespace();
                w.next() == Some("%include")
                    && w.next().is_some_and(|p| {
                        p.trim_matches('"').starts_with("/etc/tor/")
                            && p.trim_matches('"')["/etc/tor/".len()..].contains('/')
                    })
            });
            if sub {
                self.say(&format!("WARNING: {} includes files below a subfolder of /etc/tor/, which tor's AppArmor", paths::TORRC));
                self.say("profile lets it read only with tor packaging 0.4.9.8 or later.");
            }
        }
        Ok(())
    }

    fn finish_migration(&mut self) {
        if !self.exists(paths::CREATED_TORRC_D) {
            return;
        }
        let old_d = self.tx.real(paths::OLD_TORRC_D);
        let still = self
            .torrc_text()
            .is_some_and(|t| include::has_marked(&t, Layout::Old));
        if old_d.is_dir() && !still {
            let _ = std::fs::remove_dir(&old_d);
        }
        if !old_d.is_dir() {
            let _ = std::fs::remove_file(self.tx.real(paths::CREATED_TORRC_D));
        }
    }

    // ---- the onion service's folder and clients -----------------------------------------------

    fn auth_ok(&self, abs: &str) -> bool {
        matches!(self.tx.read(abs, 256), Ok(Some(b)) if is_key_line(&b))
    }

    /// Is there an authorized client tor accepts? Malformed ones do not count: tor skips them,
    /// and with none left it would publish the service with no client authorization at all.
    fn has_clients(&self) -> bool {
        self.client_files()
            .iter()
            .any(|n| self.auth_ok(&format!("{}/{n}", paths::CLIENTS_DIR)))
    }

    fn client_files(&self) -> Vec<String> {
        let Ok(d) = self.tx.folder(paths::CLIENTS_DIR) else {
            return Vec::new();
        };
        d.names()
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.ends_with(".auth"))
            .collect()
    }

    fn ensure_hs_dirs(&mut self) -> Result<(), Failed> {
        let (u, g) = (self.acc.tor_uid, self.acc.tor_gid);
        for d in [paths::HS_DIR, paths::CLIENTS_DIR] {
            if let Err(e) = self.tx.make_dir(d, u, g, 0o700) {
                return self.tx_fail(e);
            }
            if let Err(e) = self.tx.folder(d) {
                return self.tx_fail(e);
            }
        }
        Ok(())
    }

    /// Keeps every authorized client. A standalone.auth of ours that tor would not accept (empty
    /// after a full disk, cut short) is written again. With no client tor accepts, a key pair is
    /// made: the public half for tor, the private half root's alone in the state folder.
    fn ensure_client(&mut self) -> Result<Option<Generated>, Failed> {
        self.ensure_hs_dirs()?;
        let standalone = paths::split(paths::STANDALONE_AUTH).1;
        let mut others = false;
        for n in self.client_files() {
            if n == standalone {
                continue;
            }
            let abs = format!("{}/{n}", paths::CLIENTS_DIR);
            if self.auth_ok(&abs) {
                others = true;
            } else {
                self.say(&format!("WARNING: {abs} is not a client key tor accepts (one line 'descriptor:x25519:<key>'): tor skips it."));
            }
        }
        let key_text = self.tx.read(paths::CLIENT_KEY, 256).ok().flatten();
        let key = key_text
            .as_deref()
            .filter(|b| is_key_line(b))
            .and_then(|b| crate::keys::PrivateKey::parse(&String::from_utf8_lossy(b)));
        if self.exists(paths::STANDALONE_AUTH) {
            if self.auth_ok(paths::STANDALONE_AUTH) {
                return Ok(None);
            }
            if key.is_none() && others {
                self.say(&format!(
                    "WARNING: {} is not a client key tor accepts and its private key is gone:",
                    paths::STANDALONE_AUTH
                ));
                self.say("tor skips it. Delete it, or put the client's public key back.");
                return Ok(None);
            }
            self.say(&format!(
                "{} is not a client key tor accepts: writing it again.",
                paths::STANDALONE_AUTH
            ));
        } else if others {
            return Ok(None);
        }
        let (key, generated) = match key {
            // the private half is still here (its .auth was deleted or broken): authorize it again
            Some(k) => (k, Generated::Kept),
            None => {
                let k = crate::keys::PrivateKey::generate();
                let line = k.private_line();
                let mut text = line.as_bytes().to_vec();
                text.push(b'\n');
                let (a, ag) = (self.acc.admin, self.acc.admin_gid);
                let put = self.tx.put(paths::CLIENT_KEY, &text, a, ag, 0o600);
                zeroize::Zeroize::zeroize(&mut text);
                if let Err(e) = put {
                    return self.tx_fail(e);
                }
                (k, Generated::New)
            }
        };
        let public = format!("{}\n", key.auth_line());
        let (u, g) = (self.acc.tor_uid, self.acc.tor_gid);
        if let Err(e) = self
            .tx
            .put(paths::STANDALONE_AUTH, public.as_bytes(), u, g, 0o644)
        {
            return self.tx_fail(e);
        }
        if self
            .tx
            .read(paths::STANDALONE_AUTH, 256)
            .ok()
            .flatten()
            .as_deref()
            != Some(public.as_bytes())
        {
            return self.fail(&format!(
                "{} does not hold the client key after writing it",
                paths::STANDALONE_AUTH
            ));
        }
        self.changed_tor = true;
        Ok(Some(generated))
    }

    /// The secret key behind the exporter's `unnamed_…` labels: 32 random bytes, root's alone
    /// (0600; systemd hands it to the service as a credential). Made once, kept on upgrade (an
    /// older package's 0640 root:debian-tor is tightened), gone on purge.
    fn ensure_label_key(&mut self) -> Result<(), Failed> {
        let (dir, n) = paths::split(paths::LABEL_KEY);
        let d = match self.tx.folder(dir) {
            Ok(d) => d,
            Err(e) => return self.tx_fail(e),
        };
        if let Ok(Some((f, st))) = d.open_file(n) {
            if st.size >= 32 {
                let (a, ag) = (self.acc.admin, self.acc.admin_gid);
                if st.uid == a && st.gid == ag && st.mode == 0o600 {
                    return Ok(());
                }
                use std::os::unix::fs::PermissionsExt as _;
                let tightened = std::os::unix::fs::fchown(&f, Some(a), Some(ag))
                    .and_then(|()| f.set_permissions(std::fs::Permissions::from_mode(0o600)));
                return match tightened {
                    Ok(()) => Ok(()),
                    Err(_) => self.fail(&format!(
                        "cannot make {} readable by root alone.",
                        paths::LABEL_KEY
                    )),
                };
            }
        }
        let mut key = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut key);
        let (a, ag) = (self.acc.admin, self.acc.admin_gid);
        let put = self.tx.put(paths::LABEL_KEY, &key, a, ag, 0o600);
        zeroize::Zeroize::zeroize(&mut key);
        match put {
            Ok(_) => Ok(()),
            Err(e) => self.tx_fail(e),
        }
    }

    // ---- systemd's sockets ----------------------------------------------------------------------

    /// The loopback socket listens where the exporter's configuration says: the package's
    /// systemd generator (`securedrop-tor-exporter systemd-generator`) writes its drop-in in
    /// /run/systemd/generator/ each time systemd loads its units. This step has systemd load
    /// them again and, where the socket listens elsewhere, restarts it (and the exporter, which
    /// requires it) on the new address. A port someone else holds stops the run, with the socket
    /// pinned where it listened before ([`SOCKET_PIN`], in /run: until the next run or boot). The
    /// shell postinst of 0.1.x wrote the address into /etc instead, which would override the
    /// generator: that file goes (when its header says it is the package's).
    fn apply_listen_address(&mut self, opts: &Options) -> Result<(), Failed> {
        if let Ok(Some(text)) = self.tx.read(LEGACY_SOCKET_DROPIN, 4096) {
            if text.starts_with(LEGACY_SOCKET_MARK.as_bytes()) {
                if let Err(e) = self.tx.remove(LEGACY_SOCKET_DROPIN) {
                    return self.tx_fail(e);
                }
            }
        }
        if !self.services.systemd_running() {
            return Ok(());
        }
        // What the socket listens on, read before the reload, after which systemd would show the
        // generator's new address though the socket has not moved yet.
        let listening = self.services.property(SOCKET_UNIT, "Listen");
        let pin = self.tx.real(SOCKET_PIN);
        if pin.exists() {
            let _ = std::fs::remove_file(&pin);
            if let Some(d) = pin.parent() {
                let _ = std::fs::remove_dir(d);
            }
        }
        self.services.daemon_reload();
        if !self.services.is_active(SOCKET_UNIT) {
            return Ok(());
        }
        let want = &opts.listen_address;
        if listening
            .lines()
            .any(|l| l.trim() == format!("{want} (Stream)"))
        {
            return Ok(());
        }
        if self.services.forbidden(SOCKET_UNIT, "restart") {
            self.say(&format!("policy-rc.d forbids restarting {SOCKET_UNIT}: it moves to its new address at its next restart."));
            return Ok(());
        }
        self.services
            .invoke("restart", &[SOCKET_UNIT, SERVICE_UNIT]);
        if self.services.is_active(SOCKET_UNIT) {
            return Ok(());
        }
        self.pin_socket(&listening, want);
        self.fail(&format!(
            "systemd cannot listen on {want} for the exporter (does another process hold it?)."
        ))
    }

    /// The socket could not move to `want`: back on what it listened on, with a drop-in in /run
    /// that masks the generator's, so that it holds the port again and the exporter serves there,
    /// also across daemon-reloads, until the next run or boot.
    fn pin_socket(&mut self, listening: &str, want: &str) {
        let mut text = format!("# Written by the securedrop-tor-exporter package: systemd could not listen on {want}\n# (web.listen_address), so the socket stays where it was until the next\n# 'dpkg-reconfigure securedrop-tor-exporter' or boot.\n[Socket]\nListenStream=\n");
        let mut n = 0;
        for l in listening.lines() {
            if let Some(addr) = l.trim().strip_suffix(" (Stream)") {
                text.push_str(&format!("ListenStream={addr}\n"));
                n += 1;
            }
        }
        if n == 0 {
            return;
        }
        let pin = self.tx.real(SOCKET_PIN);
        let tmp = pin.with_extension("conf.tmp");
        let written = pin
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&tmp, &text))
            .and_then(|()| std::fs::rename(&tmp, &pin));
        if written.is_ok() {
            self.services.daemon_reload();
            self.services
                .invoke("restart", &[SOCKET_UNIT, SERVICE_UNIT]);
        } else {
            let _ = std::fs::remove_file(&tmp);
            self.say(&format!(
                "WARNING: could not put {SOCKET_UNIT} back where it listened."
            ));
        }
    }

    /// Starts a socket unit of the package that is not running (enabling it on a first install,
    /// as debhelper's snippet would next; one the admin disabled stays off). `false` where
    /// policy-rc.d forbids it (chroots, image builds).
    fn start_socket_unit(&mut self, unit: &str) -> bool {
        if self.services.is_active(unit) {
            return true;
        }
        if self.services.forbidden(unit, "start") {
            self.say(&format!(
                "policy-rc.d forbids starting {unit}: the metrics answer once it runs."
            ));
            return false;
        }
        // systemd does not know a unit file dpkg has just unpacked
        self.services.daemon_reload();
        self.services.enable_if_new(unit);
        self.services.invoke("start", &[unit]);
        true
    }

    /// Before tor is pointed at the onion socket it must listen and be the package's: a socket
    /// owned by debian-tor with mode 0600, as the unit makes it (only tor's account and root
    /// can create anything in tor's data folder). A failed socket unit stops the run, with
    /// everything undone, instead of pointing tor nowhere.
    fn ensure_onion_socket(&mut self, opts: &Options) -> Result<(), Failed> {
        if !self.services.systemd_running() || !self.start_socket_unit(ONION_SOCKET_UNIT) {
            return Ok(());
        }
        if !self.services.is_active(ONION_SOCKET_UNIT) {
            return self.fail(&format!("systemd cannot make the onion service's socket {ONION_SOCKET} (see 'journalctl -u {ONION_SOCKET_UNIT}')."));
        }
        let (dir, n) = paths::split(ONION_SOCKET);
        let got = super::dir::Dir::open(&self.tx.real(dir))
            .ok()
            .and_then(|d| d.stat_at(n).ok().flatten());
        let ok = got.is_some_and(|s| {
            s.kind == Kind::Socket
                && s.uid == self.acc.tor_uid
                && s.gid == self.acc.tor_gid
                && s.mode == 0o600
        });
        if !ok {
            let found = got.map_or("missing".to_owned(), |s| {
                format!("{:?} {}:{} {:o}", s.kind, s.uid, s.gid, s.mode).to_lowercase()
            });
            return self.fail(&format!("{ONION_SOCKET} is not the socket systemd made for the exporter (found: {found}): refusing to point the onion service at it."));
        }
        // The service needs its loopback port too (Requires=): on a first install another
        // account may hold it already. Say so now, with everything undone.
        if !self.start_socket_unit(SOCKET_UNIT) {
            return Ok(());
        }
        if !self.services.is_active(SOCKET_UNIT) {
            return self.fail(&format!(
                "systemd cannot listen on {} for the exporter (does another process hold it?).",
                opts.listen_address
            ));
        }
        Ok(())
    }

    // ---- reloading tor ------------------------------------------------------------------------

    fn hostname_ready(&self) -> bool {
        let (dir, n) = paths::split(paths::HOSTNAME);
        self.tx
            .folder(dir)
            .ok()
            .and_then(|d| d.stat_at(n).ok().flatten())
            .is_some_and(|s| s.kind == Kind::File && s.size > 0)
    }

    /// Reload = SIGHUP: tor keeps its process and circuits (a restart would drop the sources').
    /// `systemctl reload` returns once the signal is sent; the hostname appears when tor has
    /// read the new configuration; then the process is watched for a moment, since a
    /// configuration tor cannot read kills it only after the reload.
    fn reload_tor(&mut self, opts: &Options) -> Result<(), Failed> {
        if !self.services.systemd_running() {
            self.say("systemd is not running (chroot or image build): tor reads the onion service when it starts;");
            self.say(&format!(
                "run 'dpkg-reconfigure {}' once it runs to record the onion address.",
                paths::NAME
            ));
            return Ok(());
        }
        if !self.services.is_active(TOR_UNIT) {
            self.say(&format!(
                "{TOR_UNIT} is not running: it reads the onion service when it starts;"
            ));
            self.say(&format!(
                "run 'dpkg-reconfigure {}' afterwards to record the onion address.",
                paths::NAME
            ));
            return Ok(());
        }
        if !self.changed_tor && self.hostname_ready() {
            return Ok(()); // tor already runs this configuration
        }
        if self.services.forbidden(TOR_UNIT, "reload") {
            self.say(
                "policy-rc.d forbids reloading tor: it reads the onion service at its next reload.",
            );
            return Ok(());
        }
        let pid = self.services.property(TOR_UNIT, "MainPID");
        let restarts = self.services.property(TOR_UNIT, "NRestarts");
        self.services.invoke("reload", &[TOR_UNIT]);
        let deadline = self.services.now() + opts.hostname_timeout;
        let mut settle = None;
        loop {
            let changed = self.services.property(TOR_UNIT, "MainPID") != pid
                || self.services.property(TOR_UNIT, "NRestarts") != restarts
                || !self.services.is_active(TOR_UNIT);
            if changed {
                self.say(&format!(
                    "ERROR: tor did not survive the reload (it was process {pid})."
                ));
                let restored = self.restore_previous();
                if self.services.is_active(TOR_UNIT) {
                    self.services.invoke("reload", &[TOR_UNIT]);
                    self.say(&format!("{restored}; tor was asked to reload it."));
                } else {
                    // tor is down already: bring it back on the previous configuration
                    self.services.invoke("reset-failed", &[TOR_UNIT]);
                    self.services.invoke("start", &[TOR_UNIT]);
                    self.say(&format!("{restored}; tor was started again on it."));
                }
                return Err(Failed);
            }
            let now = self.services.now();
            if self.hostname_ready() {
                let s = *settle.get_or_insert(now + Duration::from_secs(2));
                if now >= s {
                    return Ok(());
                }
            } else if now >= deadline {
                // tor accepted and runs the configuration: it stays
                self.commit();
                self.say(&format!("ERROR: tor accepted the configuration, but {}/hostname did not appear within {}s.", paths::HS_DIR, opts.hostname_timeout.as_secs()));
                self.say(&format!(
                    "See 'journalctl -u {TOR_UNIT}', then run 'dpkg --configure -a'."
                ));
                return Err(Failed);
            }
            self.services.pause(Duration::from_millis(100));
        }
    }

    /// The role name the exporter labels its own onion service with: `metrics`, from tor's
    /// hostname file (the address itself is never exported).
    fn write_onion_conf(&mut self) -> Result<(), Failed> {
        if !self.hostname_ready() {
            return Ok(());
        }
        let text = self.tx.read(paths::HOSTNAME, 4096).ok().flatten();
        let onion = match text
            .as_deref()
            .map(|b| address::check(&String::from_utf8_lossy(b)))
        {
            Some(Ok(a)) => a,
            Some(Err(e)) => {
                self.say(&format!("{}: {e}", paths::HOSTNAME));
                return self.fail(&format!(
                    "{} does not hold a v3 onion address (see above).",
                    paths::HOSTNAME
                ));
            }
            None => return self.fail(&format!("cannot read {}", paths::HOSTNAME)),
        };
        let conf = format!(
            "# Written by the securedrop-tor-exporter package from {}:\n# the role name its onion-service metrics are labelled with (the address is never exported).\n[onion_services]\nmetrics = \"{}\"\n",
            paths::HOSTNAME,
            onion.expose()
        );
        let g = self.acc.tor_gid;
        if let Err(e) = self
            .tx
            .put(paths::ONION_CONF, conf.as_bytes(), self.acc.admin, g, 0o640)
        {
            return self.tx_fail(e);
        }
        Ok(())
    }
}

/// The torrc is edited only as a regular file. A symlink is refused, not followed: its target
/// may sit in a folder others can write, and replacing it would turn the admin's link into a
/// file. `Err` is the message.
fn torrc_editable(tx: &Tx<'_>, say: &mut dyn FnMut(&str)) -> Result<(), String> {
    let p = tx.real(paths::TORRC);
    match p.symlink_metadata() {
        Ok(m) if m.file_type().is_symlink() => {
            say(&format!(
                "{} is a symbolic link: not editing it. Add this line to the file it points to",
                paths::TORRC
            ));
            say("(readable by debian-tor), then run 'dpkg --configure -a':");
            say(&format!("  {}", include::INCLUDE_LINE));
            Err(format!("{} is a symbolic link.", paths::TORRC))
        }
        Ok(m) if m.is_file() => Ok(()),
        _ => Err(format!(
            "{} is missing or not a regular file.",
            paths::TORRC
        )),
    }
}

/// The torrc's new content, its mode and owner kept. Returns whether it changed.
fn put_torrc(tx: &mut Tx<'_>, say: &mut dyn FnMut(&str), text: &[u8]) -> Result<bool, String> {
    torrc_editable(tx, say)?;
    use std::os::unix::fs::MetadataExt as _;
    let m = tx
        .real(paths::TORRC)
        .symlink_metadata()
        .map_err(|e| format!("cannot read {}: {e}", paths::TORRC))?;
    tx.put(paths::TORRC, text, m.uid(), m.gid(), m.mode() & 0o7777)
        .map_err(|e| e.to_string())
}

/// Takes out the package's marked include of `layout`: only that marked line, never an admin's.
fn drop_marked(tx: &mut Tx<'_>, say: &mut dyn FnMut(&str), layout: Layout) -> Result<bool, String> {
    let Ok(text) = std::fs::read(tx.real(paths::TORRC)) else {
        return Ok(false);
    };
    if !include::has_marked(&text, layout) {
        return Ok(false);
    }
    let Some(new) = include::without_marked(&text, layout) else {
        return Ok(false);
    };
    put_torrc(tx, say, &new)
}

/// Takes everything of ours out of tor's configuration, whichever run wrote it: our marked
/// include lines (both layouts) and the old drop-in go; the drop-in goes too, or holds only a
/// comment where another line still includes it. Final (committed, not rolled back). Returns
/// whether all of it could be taken out (each failure is said).
pub fn undo_ours(tx: &mut Tx<'_>, say: &mut dyn FnMut(&str)) -> bool {
    let mut ok = true;
    let mut report = |r: Result<bool, String>, say: &mut dyn FnMut(&str)| {
        if let Err(e) = r {
            say(&format!("ERROR: {e}"));
            ok = false;
        }
    };
    let r = drop_marked(tx, say, Layout::Current);
    report(r, say);
    let r = tx.remove(paths::OLD_DROPIN).map_err(|e| e.to_string());
    report(r, say);
    let old_confs = std::fs::read_dir(tx.real(paths::OLD_TORRC_D))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(".conf"))
        })
        .unwrap_or(false);
    if !old_confs {
        let r = drop_marked(tx, say, Layout::Old);
        report(r, say);
    }
    let included = std::fs::read(tx.real(paths::TORRC)).is_ok_and(|t| include::has_include(&t));
    let r = if included {
        {
            let a = tx.accounts();
            tx.put(
                paths::DROPIN,
                DROPIN_OFF.as_bytes(),
                a.admin,
                a.admin_gid,
                0o644,
            )
        }
    } else {
        tx.remove(paths::DROPIN)
    }
    .map_err(|e| e.to_string());
    report(r, say);
    if let Err(e) = tx.commit() {
        say(&format!("WARNING: {e}"));
    }
    if ok {
        let _ = std::fs::remove_file(tx.real(paths::LEGACY_IN_PROGRESS));
    }
    ok
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
