//! Runs the health judge (`crate::health`) on the snapshot every refresh: logs its lines (which
//! OSSEC mails, docs/ossec.md) and puts what it watches into the snapshot for the status page
//! and `STATUS=`.

use std::time::Duration;

use tokio::sync::watch;

use crate::health::{Judge, Line, problems};
use crate::snapshot::Shared;

pub async fn run(every: Duration, shared: Shared, mut shutdown: watch::Receiver<bool>) {
    let mut judge = Judge::new();
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
        if shared.get().health != view {
            shared.update(|s| s.health = view);
        }
    }
}
