//! systemd notify protocol: READY=1 once listening, STATUS= with tor's state, and WATCHDOG=1.
//!
//! The watchdog ping comes from a task on the exporter's own runtime, so it proves the exporter's
//! event loop runs. It never depends on tor: a dead tor is reported as `tor_up 0`, and systemd
//! must not restart a healthy exporter because of it.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::watch;

use crate::snapshot::Shared;

/// Tells systemd we are ready (no-op outside systemd).
pub fn ready() {
    let _ = sd_notify::notify(false, &[NotifyState::Ready]);
}

pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
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
    let mut usec = 0u64;
    let watchdog =
        sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec) / 2);
    let tick = watchdog
        .unwrap_or(Duration::from_secs(5))
        .min(Duration::from_secs(5));
    let mut last_status = String::new();
    loop {
        if watchdog.is_some() {
            let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
        }
        let status = status_line(&shared.get());
        if status != last_status {
            let _ = sd_notify::notify(false, &[NotifyState::Status(&status)]);
            last_status = status;
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = crate::shutdown::stopped(&mut shutdown) => return,
        }
    }
}
