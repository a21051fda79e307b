//! `recover`: one round of the opt-in recovery (`recovery::run`), as the timer runs it.

use std::process::ExitCode;
use std::time::Duration;

use super::{load, CliError, ConfigFlags, RecoverArgs, UsageError};
use crate::recovery::{run, Policy};

pub(super) fn recover(a: RecoverArgs) -> Result<ExitCode, CliError> {
    if a.reload_after > a.restart_after {
        return Err(UsageError(
            "--reload-after must not be longer than --restart-after".to_owned(),
        )
        .into());
    }
    let exporter = match a.exporter {
        Some(addr) => addr,
        None => load::load(&ConfigFlags::default())?.web.listen_address,
    };
    let options = run::Options {
        exporter,
        state_file: a.state_file,
        unit: a.unit,
        systemctl: a.systemctl,
        policy: Policy {
            reload_after: a.reload_after,
            restart_after: a.restart_after,
            restart_every: a.restart_every,
            max_restarts: a.max_restarts,
            settle: a.settle,
        },
        timeout: Duration::from_secs(5),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Standard error: under systemd it goes to the journal as this program's lines, and on to
    // syslog and OSSEC, which mails the `tor health: alert recovery_…` ones.
    match run::run_once(&options, now, &mut |line| eprintln!("{line}")) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        // No judgement, no action; and no failed unit either, whose systemd lines OSSEC's rule
        // 1002 would mail every minute for as long as the exporter is stopped.
        Err(e @ run::RecoverError::Exporter { .. }) => {
            eprintln!("recover: nothing done: {e}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e.into()),
    }
}
