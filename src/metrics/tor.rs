//! The exporter's own series and tor's, from a snapshot; relay and onion series are delegated.

use prometheus_client::encoding::DescriptorEncoder;

use super::write::{
    bool_gauge, counter, counter_family, gauge, gauge_family, info, saturating_i64,
};
use crate::policy;
use crate::snapshot::Snapshot;
use crate::source::status::VERSION_STATUSES;

/// Every family, from one snapshot.
pub(crate) fn encode_snapshot(
    s: &Snapshot,
    enc: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    info(
        enc,
        &policy::BUILD,
        vec![("version", env!("CARGO_PKG_VERSION").to_owned())],
    )?;
    // Left out until the first refresh attempt has an answer (see `Snapshot::refreshed`).
    if s.refreshed {
        gauge(enc, &policy::UP, i64::from(s.tor_up))?;
    }
    if let Some(d) = s.refresh_duration {
        gauge(enc, &policy::REFRESH_DURATION, d.as_secs_f64())?;
    }
    if let Some(t) = s.last_success_unix {
        gauge(enc, &policy::LAST_SUCCESS, t)?;
    }
    if let Some(t) = s.started_unix {
        gauge(enc, &policy::PROCESS_START, t)?;
    }
    counter_family(
        enc,
        &policy::CONTROL_ERRORS,
        s.errors.iter().map(|(k, v)| ([("kind", k.as_str())], *v)),
    )?;
    if let Some((reloads, restarts)) = s.recovery_actions {
        counter_family(
            enc,
            &policy::RECOVERY_ACTIONS,
            [
                ([("action", "reload")], reloads),
                ([("action", "restart")], restarts),
            ],
        )?;
    }
    if let Some(st) = s.status.as_ref().filter(|_| s.tor_up) {
        if let Some(v) = &st.version {
            info(enc, &policy::VERSION, vec![("version", v.clone())])?;
        }
        if let Some(current) = st.version_status {
            gauge_family(
                enc,
                &policy::VERSION_STATUS,
                VERSION_STATUSES
                    .iter()
                    .map(|v| ([("status", *v)], i64::from(*v == current))),
            )?;
        }
        if let Some(p) = st.bootstrap_progress {
            gauge(enc, &policy::BOOTSTRAP, i64::from(p))?;
        }
        bool_gauge(enc, &policy::ENOUGH_DIR_INFO, st.enough_dir_info)?;
        bool_gauge(enc, &policy::NETWORK_LIVENESS, st.network_liveness)?;
        bool_gauge(enc, &policy::CIRCUIT_ESTABLISHED, st.circuit_established)?;
        bool_gauge(enc, &policy::DORMANT, st.dormant)?;
        if let Some(u) = st.uptime_seconds {
            gauge(enc, &policy::UPTIME, saturating_i64(u))?;
        }
        if let Some(v) = s.traffic_read_bytes {
            counter(enc, &policy::TRAFFIC_READ, v.get())?;
        }
        if let Some(v) = s.traffic_written_bytes {
            counter(enc, &policy::TRAFFIC_WRITTEN, v.get())?;
        }
        if let Some(r) = &s.relay {
            super::relay::encode(r, enc)?;
        }
    }
    super::onion::encode(&s.onion, enc)?;
    Ok(())
}
