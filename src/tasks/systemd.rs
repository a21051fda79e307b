//! systemd notify protocol: READY=1 once listening, STATUS= with tor's state, and WATCHDOG=1.
//!
//! The watchdog ping comes from a task on the exporter's own runtime, so it proves the exporter's
//! event loop runs. It never depends on tor: a dead tor is reported as `tor_up 0`, and systemd
//! must not restart a healthy exporter because of it.

use std::time::Duration;

use crate::systemd_protocol::{notify, watchdog_interval};
use tokio::sync::watch;

use crate::snapshot::Shared;

/// Tells systemd we are ready (no-op outside systemd).
pub fn ready() {
    let _ = notify("READY=1");
}

pub fn stopping() {
    let _ = notify("STOPPING=1");
}

/// A human-readable one-liner for `systemctl status`: the health judge's alerts when there are
/// any (the same words as its log lines), else tor's state.
pub fn status_line(s: &crate::snapshot::Snapshot) -> String {
    if let Some(alerts) = crate::health::summary(&s.health, crate::clock::now_unix()) {
        return alerts;
    }
    match (&s.status, s.tor_up) {
        (Some(st), true) => format!(
            "tor up, version {}, bootstrapped {}%",
            st.version.as_deref().unwrap_or("unknown"),
            st.bootstrap_progress
                .map_or("?".to_string(), |p| p.to_string())
        ),
        _ => "tor unreachable (tor_up 0); retrying".into(),
    }
}

/// Pings the watchdog (when systemd asked for one) and keeps STATUS= current.
pub async fn run(shared: Shared, mut shutdown: watch::Receiver<bool>) {
    let watchdog = watchdog_interval().map(|d| d / 2);
    let tick = watchdog
        .unwrap_or(Duration::from_secs(5))
        .min(Duration::from_secs(5));
    let mut last_status = String::new();
    loop {
        if watchdog.is_some() {
            let _ = notify("WATCHDOG=1");
        }
        let status = status_line(&shared.get());
        if status != last_status {
            let _ = notify(&format!("STATUS={}", status.replace('\n', " ")));
            last_status = status;
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = crate::shutdown::stopped(&mut shutdown) => return,
        }
    }
}
