//! The steps on tor's configuration: the `%include` line in the torrc (edited only as a regular
//! file), the drop-in, the move from the old layout, the onion services tor runs before and
//! after, and taking everything of ours out ([`undo_ours`]).

use super::{Failed, Run, DROPIN_OFF};
use crate::setup::include::{self, Layout};
use crate::setup::onion_dirs;
use crate::setup::paths;
use crate::setup::transaction::Tx;

impl Run<'_, '_> {
    pub(super) fn torrc_text(&self) -> Option<Vec<u8>> {
        std::fs::read(self.tx.real(paths::TORRC)).ok()
    }

    /// Every onion service tor's configuration held before this run is still in it: "valid" is
    /// not enough (an emptied torrc is valid, and would drop every SecureDrop onion service).
    pub(super) fn onion_services_kept(&mut self) -> bool {
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

    pub(super) fn onion_services_kept_quiet(&mut self) -> bool {
        let Some(before) = self.hs_before.clone() else {
            return true;
        };
        self.tor
            .onion_dirs()
            .is_ok_and(|after| onion_dirs::lost(&before, &after).is_empty())
    }

    pub(super) fn add_include(&mut self) -> Result<(), Failed> {
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

    pub(super) fn write_dropin(&mut self) -> Result<(), Failed> {
        let text = format!(
            "# Managed by the securedrop-tor-exporter package (rewritten on upgrade, removed with the\n# package): the client-authorized onion service for the exporter's /metrics.\nHiddenServiceDir {}/\nHiddenServicePort 80 {}\n",
            paths::HS_DIR,
            crate::setup::onion_target()
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
    pub(super) fn migrate_old_layout(&mut self) -> Result<(), Failed> {
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

    pub(super) fn finish_migration(&mut self) {
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
