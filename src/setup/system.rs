//! What the setup asks of the rest of the system besides files: tor's verdict on its
//! configuration ([`TorCheck`]) and the service manager ([`Services`]). Traits, so that the
//! transaction tests drive the setup against a temp root with stand-ins; on a server,
//! [`RealTor`] runs tor as `torrc verify` does and [`RealServices`] runs `systemctl`,
//! `deb-systemd-invoke` and `policy-rc.d` as debhelper's own snippets do.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::confinement::{self, Confinement};
use super::tor;

pub trait TorCheck {
    /// tor's verdict on the configuration as tor@default would read it at its next reload: `Err`
    /// with tor's reasons.
    fn verify(&mut self) -> Result<(), String>;
    /// The onion-service folders that configuration holds (`Err` where tor cannot read it).
    fn onion_dirs(&mut self) -> Result<Vec<String>, String>;
}

/// tor itself, run as debian-tor (inside AppArmor's `system_tor` where that applies).
pub struct RealTor {
    torrc: PathBuf,
    defaults: PathBuf,
    confinement: Confinement,
}

impl RealTor {
    pub fn new(torrc: &Path) -> RealTor {
        RealTor {
            torrc: torrc.into(),
            defaults: confinement::TOR_DEFAULTS.into(),
            confinement: tor::detect(),
        }
    }
    /// Where AppArmor confines tor but aa-exec is missing: the warning the admin needs.
    pub fn warning(&self) -> Option<&'static str> {
        (self.confinement == Confinement::AppArmorWithoutAaExec).then_some(
            "WARNING: AppArmor confines tor (system_tor), but aa-exec is missing (package apparmor): checking tor's configuration outside the profile.",
        )
    }
}

impl TorCheck for RealTor {
    fn verify(&mut self) -> Result<(), String> {
        tor::verify(self.confinement, &self.torrc, &self.defaults).map_err(|e| e.to_string())
    }
    fn onion_dirs(&mut self) -> Result<Vec<String>, String> {
        tor::onion_dirs(self.confinement, &self.torrc, &self.defaults).map_err(|e| e.to_string())
    }
}

/// The service manager, as a maintainer script may use it.
pub trait Services {
    /// Is systemd running (not a chroot or an image build)?
    fn systemd_running(&mut self) -> bool;
    fn is_active(&mut self, unit: &str) -> bool;
    /// A property of the unit (`MainPID`, `NRestarts`, `Listen`), empty where unknown.
    fn property(&mut self, unit: &str, name: &str) -> String;
    /// Does `policy-rc.d` forbid `action` on `unit` (exit 101)?
    fn forbidden(&mut self, unit: &str, action: &str) -> bool;
    /// `deb-systemd-invoke ACTION UNITS…` (its failure shows in the unit's state, checked after).
    fn invoke(&mut self, action: &str, units: &[&str]);
    fn daemon_reload(&mut self);
    /// Enables (and unmasks) `unit` unless the admin's choice for it is on record.
    fn enable_if_new(&mut self, unit: &str);
    /// Waits a moment between two looks at a unit.
    fn pause(&mut self, d: Duration);
    /// Seconds since some fixed point, for deadlines.
    fn now(&mut self) -> Duration;
}

pub struct RealServices {
    start: std::time::Instant,
    /// Off for another root than `/` (`setup --root`): this machine's systemd and tor are not
    /// that root's, so the setup acts as in a chroot and never reloads them.
    enabled: bool,
}

impl RealServices {
    pub fn new(enabled: bool) -> RealServices {
        RealServices {
            start: std::time::Instant::now(),
            enabled,
        }
    }
}

fn quiet(cmd: &mut Command) -> Option<std::process::ExitStatus> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
}

impl Services for RealServices {
    fn systemd_running(&mut self) -> bool {
        self.enabled && Path::new("/run/systemd/system").is_dir()
    }
    fn is_active(&mut self, unit: &str) -> bool {
        quiet(Command::new("systemctl").args(["is-active", "--quiet", unit]))
            .is_some_and(|s| s.success())
    }
    fn property(&mut self, unit: &str, name: &str) -> String {
        Command::new("systemctl")
            .args(["show", "-p", name, "--value", unit])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    }
    fn forbidden(&mut self, unit: &str, action: &str) -> bool {
        tor::on_path("policy-rc.d")
            && quiet(Command::new("policy-rc.d").args([unit, action]))
                .is_some_and(|s| s.code() == Some(101))
    }
    fn invoke(&mut self, action: &str, units: &[&str]) {
        quiet(Command::new("deb-systemd-invoke").arg(action).args(units));
    }
    fn daemon_reload(&mut self) {
        quiet(Command::new("systemctl").arg("daemon-reload"));
    }
    fn enable_if_new(&mut self, unit: &str) {
        let known = quiet(Command::new("deb-systemd-helper").args(["debian-installed", unit]))
            .is_some_and(|s| s.success());
        if !known {
            quiet(Command::new("deb-systemd-helper").args(["unmask", unit]));
            quiet(Command::new("deb-systemd-helper").args(["enable", unit]));
        }
    }
    fn pause(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
    fn now(&mut self) -> Duration {
        self.start.elapsed()
    }
}
