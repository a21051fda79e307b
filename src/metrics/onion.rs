//! Onion-service series, by label.

use prometheus_client::encoding::DescriptorEncoder;

use super::write::{counter_family, gauge, gauge_family, saturating_i64};
use crate::policy;
use crate::source::onion::{DescriptorHealth, OnionHealth};

pub fn encode(h: &OnionHealth, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    if let Some(n) = h.configured {
        gauge(enc, &policy::ONION_SERVICES_CONFIGURED, saturating_i64(n))?;
    }
    counter_family(
        enc,
        &policy::ONION_UPLOADS,
        h.services.iter().flat_map(|(label, s)| {
            s.uploads.iter().map(move |((result, reason), n)| {
                (
                    [
                        ("service", label.as_str()),
                        ("result", *result),
                        ("reason", *reason),
                    ],
                    *n,
                )
            })
        }),
    )?;
    gauge_family(
        enc,
        &policy::ONION_LAST_UPLOAD,
        h.services
            .iter()
            .filter_map(|(l, s)| s.last_upload_unix.map(|t| ([("service", l.as_str())], t))),
    )?;
    gauge_family(
        enc,
        &policy::ONION_PUBLISHED,
        h.services.iter().filter_map(|(l, s)| {
            s.published
                .map(|p| ([("service", l.as_str())], i64::from(p)))
        }),
    )?;
    let desc = |f: fn(&DescriptorHealth) -> Option<i64>| {
        h.services.iter().filter_map(move |(l, s)| {
            s.descriptor
                .as_ref()
                .and_then(f)
                .map(|v| ([("service", l.as_str())], v))
        })
    };
    gauge_family(
        enc,
        &policy::ONION_INNER_READABLE,
        desc(|d| Some(i64::from(d.inner_readable))),
    )?;
    gauge_family(
        enc,
        &policy::ONION_INTRO_POINTS,
        desc(|d| d.introduction_points.map(i64::from)),
    )?;
    gauge_family(
        enc,
        &policy::ONION_POW_ENABLED,
        desc(|d| d.pow_enabled.map(i64::from)),
    )?;
    gauge_family(
        enc,
        &policy::ONION_POW_EFFORT,
        desc(|d| d.pow_suggested_effort.map(i64::from)),
    )?;
    gauge_family(
        enc,
        &policy::ONION_PROBE_SUCCESS,
        h.services.iter().filter_map(|(l, s)| {
            s.probe
                .map(|(ok, _)| ([("service", l.as_str())], i64::from(ok)))
        }),
    )?;
    gauge_family(
        enc,
        &policy::ONION_PROBE_TIME,
        h.services
            .iter()
            .filter_map(|(l, s)| s.probe.map(|(_, t)| ([("service", l.as_str())], t))),
    )?;
    Ok(())
}
