//! The steps with systemd: the loopback socket where the generator puts it, the onion socket
//! checked before tor points at it, tor's reload and its watch, and the onion address written
//! down for the exporter's labels.

use std::time::Duration;

use super::{
    Failed, Options, Run, LEGACY_SOCKET_DROPIN, LEGACY_SOCKET_MARK, ONION_SOCKET_UNIT,
    SERVICE_UNIT, SOCKET_PIN, SOCKET_UNIT, TOR_UNIT,
};
use crate::setup::dir::Kind;
use crate::setup::{address, paths, ONION_SOCKET};

impl Run<'_, '_> {
    /// The loopback socket listens where the exporter's configuration says: the package's
    /// systemd generator (`securedrop-tor-exporter systemd-generator`) writes its drop-in in
    /// /run/systemd/generator/ each time systemd loads its units. This step has systemd load
    /// them again and, where the socket listens elsewhere, restarts it (and the exporter, which
    /// requires it) on the new address. A port someone else holds stops the run, with the socket
    /// pinned where it listened before ([`SOCKET_PIN`], in /run: until the next run or boot). The
    /// shell postinst of 0.1.x wrote the address into /etc instead, which would override the
    /// generator: that file goes (when its header says it is the package's).
    pub(super) fn apply_listen_address(&mut self, opts: &Options) -> Result<(), Failed> {
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
    pub(super) fn pin_socket(&mut self, listening: &str, want: &str) {
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
    pub(super) fn start_socket_unit(&mut self, unit: &str) -> bool {
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
    pub(super) fn ensure_onion_socket(&mut self, opts: &Options) -> Result<(), Failed> {
        if !self.services.systemd_running() || !self.start_socket_unit(ONION_SOCKET_UNIT) {
            return Ok(());
        }
        if !self.services.is_active(ONION_SOCKET_UNIT) {
            return self.fail(&format!("systemd cannot make the onion service's socket {ONION_SOCKET} (see 'journalctl -u {ONION_SOCKET_UNIT}')."));
        }
        let (dir, n) = paths::split(ONION_SOCKET);
        let got = crate::setup::dir::Dir::open(&self.tx.real(dir))
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

    pub(super) fn hostname_ready(&self) -> bool {
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
    pub(super) fn reload_tor(&mut self, opts: &Options) -> Result<(), Failed> {
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
    pub(super) fn write_onion_conf(&mut self) -> Result<(), Failed> {
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
