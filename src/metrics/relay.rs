//! Relay-only series (a SecureDrop server is never a relay; these exist for other users).

use prometheus_client::encoding::DescriptorEncoder;

use super::write::{bool_gauge, gauge, gauge_family, info, saturating_i64};
use crate::policy;
use crate::source::relay::{RelayStatus, HIBERNATION_STATES};

pub fn encode(r: &RelayStatus, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    if let Some(fpr) = &r.fingerprint {
        info(
            enc,
            &policy::RELAY,
            vec![
                ("fingerprint", fpr.clone()),
                ("nickname", r.nickname.clone().unwrap_or_default()),
            ],
        )?;
    }
    gauge_family(
        enc,
        &policy::RELAY_FLAG,
        r.flags.iter().map(|f| ([("flag", f.as_str())], 1i64)),
    )?;
    gauge_family(
        enc,
        &policy::RELAY_REACHABLE,
        [("or", r.or_reachable), ("dir", r.dir_reachable)]
            .into_iter()
            .filter_map(|(p, v)| v.map(|v| ([("port", p)], i64::from(v)))),
    )?;
    if let Some(v) = r.effective_rate {
        gauge(enc, &policy::RELAY_EFFECTIVE_RATE, saturating_i64(v))?;
    }
    if let Some(v) = r.effective_burst {
        gauge(enc, &policy::RELAY_EFFECTIVE_BURST, saturating_i64(v))?;
    }
    bool_gauge(
        enc,
        &policy::ACCOUNTING_ENABLED,
        Some(r.accounting.is_some()),
    )?;
    if let Some(a) = &r.accounting {
        if let Some(h) = a.hibernating {
            gauge_family(
                enc,
                &policy::ACCOUNTING_HIBERNATING,
                HIBERNATION_STATES
                    .iter()
                    .map(|s| ([("state", *s)], i64::from(*s == h))),
            )?;
        }
        let pair = |p: Option<(u64, u64)>| {
            p.into_iter().flat_map(|(r, w)| {
                [
                    ([("direction", "read")], saturating_i64(r)),
                    ([("direction", "written")], saturating_i64(w)),
                ]
            })
        };
        gauge_family(enc, &policy::ACCOUNTING_USED, pair(a.used))?;
        gauge_family(enc, &policy::ACCOUNTING_LEFT, pair(a.left))?;
        if let Some(m) = a.max {
            gauge(enc, &policy::ACCOUNTING_MAX, saturating_i64(m))?;
        }
        if let Some(t) = a.interval_end_unix {
            gauge(enc, &policy::ACCOUNTING_END, t)?;
        }
    }
    Ok(())
}
