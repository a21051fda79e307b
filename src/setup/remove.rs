//! `setup remove`: what the package's prerm does on `remove`. The metrics onion service goes out
//! of tor's configuration and tor is reloaded (never restarted). The drop-in stays with only a
//! comment (the torrc still includes it, and tor refuses an `%include` of a missing file); the
//! service's keys and clients stay until purge. If tor would not accept its configuration
//! without our drop-in, the drop-in goes back, tor is left alone and the removal stops with an
//! error: tor keeps serving.

use super::accounts::Accounts;
use super::configure::{Failed, Host, DROPIN_REMOVED, TOR_UNIT};
use super::paths;
use super::transaction::Tx;

pub fn remove(h: Host<'_>, tor_installed: bool) -> Result<(), Failed> {
    let Host {
        root,
        faults,
        tor,
        services,
        say,
    } = h;
    let acc = Accounts::of(root).unwrap_or_else(|_| Accounts::admin_only(root));
    if let Err(e) = acc.check_runner() {
        say(&format!("ERROR: {e}"));
        return Err(Failed);
    }
    let mut tx = Tx::new(root, acc, faults);
    if let Err(e) = tx.recover() {
        say(&format!(
            "WARNING: an earlier run was cut off and could not all be put back: {e}"
        ));
    }
    for abs in [paths::DROPIN, paths::OLD_DROPIN] {
        let text = match std::fs::read(tx.real(abs)) {
            Ok(t) => t,
            Err(_) => continue,
        };
        if text == DROPIN_REMOVED.as_bytes() {
            continue;
        }
        let changed = if abs == paths::DROPIN {
            tx.put(
                abs,
                DROPIN_REMOVED.as_bytes(),
                acc.admin,
                acc.admin_gid,
                0o644,
            )
        } else {
            tx.remove(abs)
        };
        if let Err(e) = changed {
            say(&format!("ERROR: {e}: the onion service stays."));
            let _ = tx.rollback();
            return Err(Failed);
        }
        let torrc = tx.real(paths::TORRC);
        if torrc.is_file() && tor_installed {
            if let Err(reasons) = tor.verify() {
                say(&reasons);
                if let Err(e) = tx.rollback() {
                    say(&format!("ERROR: could not put {abs} back: {e}"));
                }
                say(&format!("ERROR: tor would not accept its configuration without the onion service of {abs};"));
                say("it is back in place, tor was not reloaded. Fix tor's configuration, then remove again.");
                return Err(Failed);
            }
        }
        if let Err(e) = tx.commit() {
            say(&format!("WARNING: {e}"));
        }
        if services.systemd_running() && services.is_active(TOR_UNIT) {
            let pid = services.property(TOR_UNIT, "MainPID");
            let restarts = services.property(TOR_UNIT, "NRestarts");
            services.invoke("reload", &[TOR_UNIT]);
            if services.property(TOR_UNIT, "MainPID") != pid
                || services.property(TOR_UNIT, "NRestarts") != restarts
            {
                say(
                    "WARNING: tor was restarted while reloading without the metrics onion service;",
                );
                say(&format!("see 'journalctl -u {TOR_UNIT}'."));
            }
        }
    }
    Ok(())
}
