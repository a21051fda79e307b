//! Runs the health judge (`crate::health`) on the snapshot every refresh: logs its lines (which
//! OSSEC mails, docs/ossec.md) and puts what it watches into the snapshot for the status page
//! and `STATUS=`, with the opt-in recovery's action counts from its state file.

use std::path::Path;
use std::time::Duration;

use tokio::sync::watch;

use crate::health::{problems, Judge, Line};
use crate::recovery::run::STATE_FILE;
use crate::recovery::State;
use crate::snapshot::Shared;

pub async fn run(
    every: Duration,
    hold_divisor: u32,
    shared: Shared,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut judge = Judge::with_divisor(hold_divisor);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = crate::shutdown::stopped(&mut shutdown) => return,
        }
        // tokio's clock (the same as std's in production) so tests can run the holds on a
        // paused clock.
        let now = tokio::time::Instant::now().into_std();
        let current = problems(&shared.get());
        for line in judge.observe(now, &current) {
            match line {
                Line::Alert { .. } => tracing::warn!("{line}"),
                Line::Ok { .. } => tracing::info!("{line}"),
            }
        }
        let view = judge.view(now, crate::clock::now_unix());
        let actions = recovery_actions(Path::new(STATE_FILE));
        let current = shared.get();
        if current.health != view || current.recovery_actions != actions {
            shared.update(|s| {
                s.health = view;
                s.recovery_actions = actions;
            });
        }
    }
}

/// (reloads, restarts) from the recovery's state file; `None` where it never ran. Read as the
/// other small files are (a regular file, bounded, without blocking).
fn recovery_actions(path: &Path) -> Option<(u64, u64)> {
    let bytes = crate::small_file::read_secret(path, 4096).ok()?;
    let state = State::parse(std::str::from_utf8(&bytes).ok()?)?;
    Some((state.total_reloads, state.total_restarts))
}
