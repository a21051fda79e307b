//! Running tor on a configuration the way tor@default reads it (see [`super::confinement`]):
//! `--verify-config` for the verdict and tor's reasons, `--dump-config` for the onion services
//! it would run. Neither starts tor or reaches the network.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::confinement::{self, Confinement, TorMode};
use super::onion_dirs;

#[derive(Debug, thiserror::Error)]
pub enum TorError {
    #[error("cannot run runuser: {0}")]
    Spawn(#[source] std::io::Error),
    /// tor's `[warn]`/`[err]` lines, indented, one a line.
    #[error("tor --verify-config ({how}) rejected {torrc}:\n{reasons}")]
    Rejected {
        how: &'static str,
        torrc: PathBuf,
        reasons: String,
    },
    #[error(
        "tor --dump-config ({how}) could not read {torrc} (`securedrop-tor-exporter torrc verify` says why)"
    )]
    Dump { how: &'static str, torrc: PathBuf },
    #[error("cannot read the list of onion-service folders {path}: {source}")]
    ReadList {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tor would no longer run the onion service(s) in {dirs}, which it had before")]
    Lost { dirs: String },
}

/// How tor@default is confined on this machine: reads the AppArmor files of sysfs and looks for
/// `aa-exec` on `PATH`.
pub fn detect() -> Confinement {
    let enabled = std::fs::read_to_string(confinement::AA_ENABLED).ok();
    let profiles = std::fs::read_to_string(confinement::AA_PROFILES).ok();
    confinement::decide(enabled.as_deref(), profiles.as_deref(), on_path("aa-exec"))
}

/// Is there an executable `name` in a folder of `PATH` (as `command -v` finds it)? For
/// `aa-exec` here, and for the setup's `tor` and `policy-rc.d`.
pub fn on_path(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(name))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Words for messages: how the check ran.
pub fn how(c: Confinement) -> &'static str {
    match c {
        Confinement::AppArmor => "as debian-tor, in AppArmor profile system_tor",
        _ => "as debian-tor",
    }
}

/// Runs `tor --verify-config` on `torrc`; `Err(Rejected)` carries tor's reasons.
pub fn verify(c: Confinement, torrc: &Path, defaults: &Path) -> Result<(), TorError> {
    let (ok, output) = run(c, TorMode::Verify, torrc, defaults)?;
    if ok {
        return Ok(());
    }
    Err(TorError::Rejected {
        how: how(c),
        torrc: torrc.into(),
        reasons: reasons(&output)
            .iter()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
    })
}

/// The `HiddenServiceDir` folders tor reads from `torrc` (with everything it includes).
pub fn onion_dirs(c: Confinement, torrc: &Path, defaults: &Path) -> Result<Vec<String>, TorError> {
    let (ok, output) = run(c, TorMode::Dump, torrc, defaults)?;
    if !ok {
        return Err(TorError::Dump {
            how: how(c),
            torrc: torrc.into(),
        });
    }
    Ok(onion_dirs::from_dump(&output))
}

/// [`verify`], then: every folder listed in `before` (as `torrc onion-dirs` printed them) is
/// still an onion service of `torrc`.
pub fn verify_keeping(
    c: Confinement,
    torrc: &Path,
    defaults: &Path,
    before: &Path,
) -> Result<(), TorError> {
    let list = std::fs::read_to_string(before).map_err(|source| TorError::ReadList {
        path: before.into(),
        source,
    })?;
    verify(c, torrc, defaults)?;
    let lost = onion_dirs::lost(
        &onion_dirs::parse_list(&list),
        &onion_dirs(c, torrc, defaults)?,
    );
    if lost.is_empty() {
        Ok(())
    } else {
        Err(TorError::Lost {
            dirs: lost.join(", "),
        })
    }
}

/// Runs tor; returns whether it exited 0, and what it printed (stdout, then stderr).
fn run(
    c: Confinement,
    mode: TorMode,
    torrc: &Path,
    defaults: &Path,
) -> Result<(bool, String), TorError> {
    let argv = confinement::tor_argv(c, mode, torrc, defaults);
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(TorError::Spawn)?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

/// What to show of a failed run: tor's `[warn]` and `[err]` lines, or, when it printed none
/// (runuser or aa-exec failed before tor ran), its last ten lines.
pub fn reasons(output: &str) -> Vec<&str> {
    let flagged: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("[warn]") || l.contains("[err]"))
        .collect();
    if !flagged.is_empty() {
        return flagged;
    }
    let rest: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    rest[rest.len().saturating_sub(10)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_the_warnings_or_else_the_tail() {
        let out = "Dec 01 [notice] Tor 0.4.9.11\nDec 01 [warn] HiddenServicePort with no preceding HiddenServiceDir directive\nDec 01 [err] Reading config failed\n";
        assert_eq!(
            reasons(out),
            [
                "Dec 01 [warn] HiddenServicePort with no preceding HiddenServiceDir directive",
                "Dec 01 [err] Reading config failed"
            ]
        );
        assert_eq!(
            reasons("runuser: user debian-tor does not exist\n\n"),
            ["runuser: user debian-tor does not exist"]
        );
        let many: String = (0..30)
            .map(|i| format!("line {i}\n"))
            .collect::<Vec<_>>()
            .concat();
        assert_eq!(reasons(&many).len(), 10);
        assert_eq!(reasons(&many)[9], "line 29");
    }
}
