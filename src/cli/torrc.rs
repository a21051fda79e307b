//! `torrc …`: the package's and the role's questions about tor's configuration and its edits
//! (the `%include` of our drop-in, the onion folders, a check of the whole as tor reads it).

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use super::{CliError, TorrcCmd};
use crate::setup::{self, confinement, edit, include, tor};

pub(super) fn torrc(t: TorrcCmd) -> Result<ExitCode, CliError> {
    let layout = |old| {
        if old {
            include::Layout::Old
        } else {
            include::Layout::Current
        }
    };
    match t {
        TorrcCmd::OnionTarget { path } => {
            if path {
                println!("{}", setup::ONION_SOCKET);
            } else {
                println!("{}", setup::onion_target());
            }
        }
        TorrcCmd::IncludeLine { marked, old_layout } => {
            let l = layout(old_layout);
            if marked {
                println!("{}", l.mark());
            }
            println!("{}", l.line());
        }
        TorrcCmd::HasInclude {
            count,
            others,
            ours,
            old_layout,
            torrc,
        } => {
            let text = std::fs::read(&torrc).map_err(|source| CliError::Read {
                what: torrc.display().to_string(),
                source,
            })?;
            if ours || old_layout {
                return Ok(answer(include::has_marked(&text, layout(old_layout))));
            }
            let n = if others {
                include::count_other_includes(&text)
            } else {
                include::count_includes(&text)
            };
            if count {
                println!("{n}");
            }
            return Ok(answer(n > 0));
        }
        TorrcCmd::AddInclude { print, torrc } => {
            if print {
                print_changed(&torrc, include::with_include)?;
            } else {
                edit::edit(&torrc, include::with_include)?;
            }
        }
        TorrcCmd::RemoveInclude {
            old_layout,
            print,
            torrc,
        } => {
            let change = |text: &[u8]| include::without_marked(text, layout(old_layout));
            if print {
                print_changed(&torrc, change)?;
            } else {
                edit::edit(&torrc, change)?;
            }
        }
        TorrcCmd::OnionDirs { tor: f } => {
            for dir in tor::onion_dirs(detected(), &f.torrc, &f.defaults_torrc)? {
                println!("{dir}");
            }
        }
        TorrcCmd::Verify {
            keep_onion_dirs,
            tor: f,
        } => {
            let c = detected();
            match keep_onion_dirs {
                Some(list) => tor::verify_keeping(c, &f.torrc, &f.defaults_torrc, &list)?,
                None => tor::verify(c, &f.torrc, &f.defaults_torrc)?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit 0 for yes, 1 for no.
fn answer(yes: bool) -> ExitCode {
    if yes {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Writes `torrc` as `change` would leave it to standard output, byte for byte (unchanged where
/// `change` has nothing to do).
fn print_changed(
    torrc: &Path,
    change: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) -> Result<(), CliError> {
    let out = edit::preview(torrc, change)?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .map_err(|source| CliError::Write {
            what: "standard output",
            source,
        })
}

/// How tor@default is confined here, with the warning the admin needs when the check cannot
/// run inside its profile.
fn detected() -> confinement::Confinement {
    let c = tor::detect();
    if c == confinement::Confinement::AppArmorWithoutAaExec {
        eprintln!(
            "securedrop-tor-exporter: WARNING: AppArmor confines tor (system_tor), but aa-exec is missing (package apparmor): checking tor's configuration outside the profile."
        );
    }
    c
}
