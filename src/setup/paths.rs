//! Where the package's setup reads and writes, as absolute paths of the installed system, and the
//! root they are taken relative to (`/` on a server; a temp folder in the tests, as
//! node_exporter's `--path.rootfs`).

use std::path::{Path, PathBuf};

pub const NAME: &str = "securedrop-tor-exporter";
pub use super::include::DROPIN;
pub use super::TORRC;
/// Where versions up to 0.1.0 kept the drop-in (tor's older AppArmor profile cannot read it).
pub const OLD_TORRC_D: &str = "/etc/tor/torrc.d";
pub const OLD_DROPIN: &str = "/etc/tor/torrc.d/securedrop-tor-exporter.conf";
/// The metrics onion service's folder, and its authorized clients: tor's account owns both.
pub const HS_DIR: &str = "/var/lib/tor/securedrop-tor-exporter";
pub const CLIENTS_DIR: &str = "/var/lib/tor/securedrop-tor-exporter/authorized_clients";
pub const STANDALONE_AUTH: &str =
    "/var/lib/tor/securedrop-tor-exporter/authorized_clients/standalone.auth";
pub const HOSTNAME: &str = "/var/lib/tor/securedrop-tor-exporter/hostname";
/// Root's alone (0700): the client key the package made, and the journal.
pub const STATE_DIR: &str = "/var/lib/securedrop-tor-exporter";
pub const CLIENT_KEY: &str = "/var/lib/securedrop-tor-exporter/client.key";
pub const JOURNAL: &str = "/var/lib/securedrop-tor-exporter/setup-journal";
/// The marker of the shell postinst of earlier versions: present, its run was cut off and left
/// no journal of what it changed.
pub const LEGACY_IN_PROGRESS: &str = "/var/lib/securedrop-tor-exporter/configure-in-progress";
/// Says the package made `OLD_TORRC_D` (so the migration may remove it once empty).
pub const CREATED_TORRC_D: &str = "/var/lib/securedrop-tor-exporter/created-torrc.d";
pub const ETC_DIR: &str = "/etc/securedrop-tor-exporter";
pub const CONF_D: &str = "/etc/securedrop-tor-exporter/config.d";
pub const ONION_CONF: &str = "/etc/securedrop-tor-exporter/config.d/50-metrics-onion.toml";
/// Present: the package makes no client key (a configuration manager brings its clients).
pub const OPT_OUT: &str = "/etc/securedrop-tor-exporter/no-standalone-client-key";
pub const LABEL_KEY: &str = "/etc/securedrop-tor-exporter/label.key";

/// Temp files are `.NAME.securedrop-tor-exporter-tmp.N` beside their final name; never `*.auth`
/// (tor reads those) and never a name another run could hold.
pub const TMP_TAG: &str = "securedrop-tor-exporter-tmp";
/// `.NAME.securedrop-tor-exporter-orig`: the version a run replaced, until it commits.
pub const ORIG_TAG: &str = "securedrop-tor-exporter-orig";

pub fn orig_name(name: &str) -> String {
    format!(".{name}.{ORIG_TAG}")
}

/// The folders where a cut-off run of this or an earlier version may have left temp files and
/// backups, with the names of earlier versions' work files.
pub const LEFTOVER_DIRS: &[&str] = &[
    "/etc/tor",
    OLD_TORRC_D,
    ETC_DIR,
    CONF_D,
    STATE_DIR,
    "/etc/systemd/system/securedrop-tor-exporter.socket.d",
];
pub fn is_leftover(name: &str) -> bool {
    let ours = name.starts_with('.')
        && (name.contains(&format!(".{TMP_TAG}.")) || name.ends_with(&format!(".{ORIG_TAG}")));
    let dpkg_tmp = |base: &str| {
        name.strip_prefix(base)
            .and_then(|r| r.strip_prefix(".dpkg-tmp."))
            .is_some_and(|r| r.len() == 6)
    };
    ours || dpkg_tmp("torrc")
        || dpkg_tmp("securedrop-tor-exporter.torrc")
        || dpkg_tmp("securedrop-tor-exporter.conf")
        || dpkg_tmp("50-metrics-onion.toml")
        || dpkg_tmp("standalone.auth")
        || name == "securedrop-tor-exporter.torrc.dpkg-new"
        || name == "standalone.auth.new"
        || (name.starts_with(".label.key.") && name.len() == ".label.key.".len() + 6)
}

/// The filesystem the setup works on.
#[derive(Debug, Clone)]
pub struct Root(PathBuf);

impl Root {
    pub fn new(p: impl Into<PathBuf>) -> Root {
        Root(p.into())
    }
    pub fn system() -> Root {
        Root("/".into())
    }
    /// `abs` (a path of the installed system) under this root.
    pub fn at(&self, abs: &str) -> PathBuf {
        self.0.join(abs.trim_start_matches('/'))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// `abs` split into its folder and its name.
pub fn split(abs: &str) -> (&str, &str) {
    match abs.rsplit_once('/') {
        Some(("", n)) => ("/", n),
        Some((d, n)) => (d, n),
        None => (".", abs),
    }
}

/// Is `abs` in a folder of tor's account (so its owner is checked to be tor's, not root's)?
pub fn in_tor_dir(abs: &str) -> bool {
    let (d, _) = split(abs);
    d == HS_DIR || d == CLIENTS_DIR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_ours_only() {
        for n in [
            ".torrc.securedrop-tor-exporter-tmp.3",
            ".torrc.securedrop-tor-exporter-orig",
            "torrc.dpkg-tmp.Ab3dE9",
            "standalone.auth.new",
            ".label.key.x1y2z3",
        ] {
            assert!(is_leftover(n), "{n}");
        }
        for n in [
            "torrc",
            "torrc.dpkg-tmp.toolong1",
            ".torrc.swp",
            "a.auth",
            "label.key",
        ] {
            assert!(!is_leftover(n), "{n}");
        }
        assert_eq!(split("/etc/tor/torrc"), ("/etc/tor", "torrc"));
        assert!(in_tor_dir(STANDALONE_AUTH));
        assert!(!in_tor_dir(DROPIN));
    }
}
