//! How tor@default reads its files, and so how to check a configuration the way it will: as
//! debian-tor, with the unit's defaults file, and inside AppArmor's `system_tor` profile where
//! that profile confines it. A file tor cannot read there kills it on reload, and
//! `tor --verify-config` run outside the profile cannot see that. Pure: the decision is a
//! function of what the caller read from sysfs and `PATH`, and the command line a function of
//! the decision.

use std::ffi::OsString;
use std::path::Path;

/// AppArmor's switch in the kernel: `Y` when it is enabled.
pub const AA_ENABLED: &str = "/sys/module/apparmor/parameters/enabled";
/// The loaded profiles, one a line: `name (mode)`.
pub const AA_PROFILES: &str = "/sys/kernel/security/apparmor/profiles";
/// The profile tor@default runs in (`AppArmorProfile=-system_tor` in Debian's unit).
pub const PROFILE: &str = "system_tor";
/// The account tor@default switches to (`User debian-tor` in its defaults file).
pub const TOR_USER: &str = "debian-tor";
/// tor@default's defaults file (`--defaults-torrc` in its unit).
pub const TOR_DEFAULTS: &str = "/usr/share/tor/tor-service-defaults-torrc";

/// How tor@default is confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confinement {
    /// AppArmor is enabled and `system_tor` is loaded: check inside it, with `aa-exec`.
    AppArmor,
    /// As [`Confinement::AppArmor`], but `aa-exec` (package apparmor) is missing: the check runs
    /// outside the profile and cannot see what the profile denies; callers warn.
    AppArmorWithoutAaExec,
    /// No AppArmor, or no `system_tor` profile: tor reads as debian-tor, nothing more.
    Unconfined,
}

/// The decision, from the content of [`AA_ENABLED`] and [`AA_PROFILES`] (`None` where they
/// could not be read) and whether `aa-exec` is on `PATH`.
///
/// Enabled means the file says `Y` (trailing newlines aside); loaded means a line starts with
/// `system_tor ` (in any mode: complain mode logs what enforce would deny). SecureDrop's own
/// `/usr/sbin/tor` profile or a profile merely named like it does not count.
pub fn decide(aa_enabled: Option<&str>, aa_profiles: Option<&str>, aa_exec: bool) -> Confinement {
    let enabled = aa_enabled.is_some_and(|s| s.trim_end_matches('\n') == "Y");
    let loaded = aa_profiles.is_some_and(|p| {
        p.lines()
            .any(|l| l.strip_prefix(PROFILE).is_some_and(|r| r.starts_with(' ')))
    });
    match (enabled && loaded, aa_exec) {
        (false, _) => Confinement::Unconfined,
        (true, true) => Confinement::AppArmor,
        (true, false) => Confinement::AppArmorWithoutAaExec,
    }
}

/// What tor is asked to do with the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TorMode {
    /// `--verify-config`: accept or reject, with tor's reasons on its log.
    Verify,
    /// `--dump-config full`: print the options as tor reads them (quiet about errors).
    Dump,
}

/// The command line that runs tor on `torrc` the way tor@default reads it: as debian-tor
/// (`runuser`), inside `system_tor` for [`Confinement::AppArmor`], with `defaults` as the
/// defaults file. `--User ""` lifts the defaults file's `User debian-tor`, which tor run as
/// debian-tor refuses; `--RunAsDaemon 0` keeps it in the foreground.
pub fn tor_argv(c: Confinement, mode: TorMode, torrc: &Path, defaults: &Path) -> Vec<OsString> {
    let mut argv: Vec<OsString> = ["runuser", "-u", TOR_USER, "--"]
        .into_iter()
        .map(OsString::from)
        .collect();
    if c == Confinement::AppArmor {
        argv.extend(["aa-exec", "-p", PROFILE, "--"].map(OsString::from));
    }
    argv.push("tor".into());
    match mode {
        TorMode::Verify => argv.push("--verify-config".into()),
        TorMode::Dump => argv.extend(["--dump-config", "full"].map(OsString::from)),
    }
    argv.push("--defaults-torrc".into());
    argv.push(defaults.into());
    argv.push("-f".into());
    argv.push(torrc.into());
    argv.extend(["--RunAsDaemon", "0", "--User", ""].map(OsString::from));
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOADED: &str =
        "unconfined_thing (enforce)\nsystem_tor (enforce)\n/usr/sbin/tor (enforce)\n";

    #[test]
    fn the_decision_of_the_maintainer_scripts() {
        use Confinement::*;
        // (decision, case, enabled file, profiles file, aa-exec on PATH)
        type Case = (
            Confinement,
            &'static str,
            Option<&'static str>,
            Option<&'static str>,
            bool,
        );
        let cases: &[Case] = &[
            (
                AppArmor,
                "enabled, system_tor loaded",
                Some("Y\n"),
                Some(LOADED),
                true,
            ),
            (
                AppArmor,
                "loaded in complain mode",
                Some("Y"),
                Some("system_tor (complain)\n"),
                true,
            ),
            (
                AppArmorWithoutAaExec,
                "loaded, no aa-exec",
                Some("Y\n"),
                Some(LOADED),
                false,
            ),
            (
                Unconfined,
                "only SecureDrop's /usr/sbin/tor profile",
                Some("Y\n"),
                Some("/usr/sbin/tor (enforce)\n"),
                true,
            ),
            (
                Unconfined,
                "a profile merely named like it",
                Some("Y\n"),
                Some("system_tor_other (enforce)\n"),
                true,
            ),
            (
                Unconfined,
                "a profile name ending in it",
                Some("Y\n"),
                Some("x_system_tor (enforce)\n"),
                true,
            ),
            (
                Unconfined,
                "AppArmor disabled (N)",
                Some("N\n"),
                Some(LOADED),
                true,
            ),
            (
                Unconfined,
                "enabled file with more than Y",
                Some(" Y\n"),
                Some(LOADED),
                true,
            ),
            (Unconfined, "no AppArmor in the kernel", None, None, true),
            (Unconfined, "profiles unreadable", Some("Y\n"), None, true),
            (Unconfined, "no AppArmor, no aa-exec", None, None, false),
        ];
        for (want, what, enabled, profiles, aa_exec) in cases {
            assert_eq!(decide(*enabled, *profiles, *aa_exec), *want, "{what}");
        }
    }

    fn words(argv: Vec<OsString>) -> String {
        argv.iter()
            .map(|a| a.to_str().unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn what_runs_for_each_decision() {
        let (torrc, defaults) = (Path::new("/etc/tor/torrc"), Path::new(TOR_DEFAULTS));
        let base = "tor --verify-config --defaults-torrc /usr/share/tor/tor-service-defaults-torrc -f /etc/tor/torrc --RunAsDaemon 0 --User ";
        assert_eq!(
            words(tor_argv(
                Confinement::AppArmor,
                TorMode::Verify,
                torrc,
                defaults
            )),
            format!("runuser -u debian-tor -- aa-exec -p system_tor -- {base}")
        );
        for c in [Confinement::Unconfined, Confinement::AppArmorWithoutAaExec] {
            assert_eq!(
                words(tor_argv(c, TorMode::Verify, torrc, defaults)),
                format!("runuser -u debian-tor -- {base}")
            );
        }
        let dump = tor_argv(Confinement::Unconfined, TorMode::Dump, torrc, defaults);
        assert_eq!(dump.last().unwrap(), "", "--User takes an empty value");
        assert!(words(dump).contains(" tor --dump-config full --defaults-torrc "));
    }
}
