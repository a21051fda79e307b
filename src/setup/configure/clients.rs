//! The steps on the onion service's clients: the folders in tor's data folder, the
//! `authorized_clients/*.auth` tor accepts, the package's own client key, and the label key.

use super::{Failed, Generated, Run};
use crate::setup::paths;

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

impl Run<'_, '_> {
    pub(super) fn auth_ok(&self, abs: &str) -> bool {
        matches!(self.tx.read(abs, 256), Ok(Some(b)) if is_key_line(&b))
    }

    /// Is there an authorized client tor accepts? Malformed ones do not count: tor skips them,
    /// and with none left it would publish the service with no client authorization at all.
    pub(super) fn has_clients(&self) -> bool {
        self.client_files()
            .iter()
            .any(|n| self.auth_ok(&format!("{}/{n}", paths::CLIENTS_DIR)))
    }

    pub(super) fn client_files(&self) -> Vec<String> {
        let Ok(d) = self.tx.folder(paths::CLIENTS_DIR) else {
            return Vec::new();
        };
        d.names()
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.ends_with(".auth"))
            .collect()
    }

    pub(super) fn ensure_hs_dirs(&mut self) -> Result<(), Failed> {
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
    pub(super) fn ensure_client(&mut self) -> Result<Option<Generated>, Failed> {
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
    pub(super) fn ensure_label_key(&mut self) -> Result<(), Failed> {
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
}
