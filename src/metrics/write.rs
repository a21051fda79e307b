//! The writing helpers every encoder uses: one family at a time, checked against its
//! declaration in [`crate::policy`] (kind, labels), so an encoder cannot write a family it did not
//! declare the way it declared it.

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, EncodeMetric,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;

use crate::policy::{Family, Kind};

/// A count as a gauge value: prometheus-client's integer gauges are `i64`; a `u64` past
/// `i64::MAX` (no tor counts that high) shows as `i64::MAX` rather than wrapping negative.
pub(crate) fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn metric_type(f: &Family) -> MetricType {
    match f.kind {
        Kind::Gauge => MetricType::Gauge,
        Kind::Counter => MetricType::Counter,
        Kind::Info => MetricType::Info,
    }
}

/// `V` is i64 for counts and 0/1 states (printed `1`, not `1.0`), f64 for seconds.
pub(crate) fn gauge<V>(
    enc: &mut DescriptorEncoder,
    f: &'static Family,
    v: V,
) -> Result<(), std::fmt::Error>
where
    V: EncodeGaugeValue + std::fmt::Debug + Send + Sync,
{
    debug_assert!(f.kind == Kind::Gauge && f.labels.is_empty(), "{}", f.name);
    ConstGauge::new(v).encode(enc.encode_descriptor(f.name, f.help, None, metric_type(f))?)
}

/// A 0/1 gauge for a known state, nothing for an unknown one.
pub(crate) fn bool_gauge(
    enc: &mut DescriptorEncoder,
    f: &'static Family,
    v: Option<bool>,
) -> Result<(), std::fmt::Error> {
    match v {
        Some(b) => gauge(enc, f, i64::from(b)),
        None => Ok(()),
    }
}

pub(crate) fn counter(
    enc: &mut DescriptorEncoder,
    f: &'static Family,
    v: u64,
) -> Result<(), std::fmt::Error> {
    debug_assert!(f.kind == Kind::Counter && f.labels.is_empty(), "{}", f.name);
    ConstCounter::new(v).encode(enc.encode_descriptor(f.name, f.help, None, metric_type(f))?)
}

/// One family with labelled series; nothing is written when there are no series.
fn labelled<L: EncodeLabelSet, M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    f: &'static Family,
    series: impl IntoIterator<Item = (L, M)>,
) -> Result<(), std::fmt::Error> {
    let mut series = series.into_iter().peekable();
    if series.peek().is_none() {
        return Ok(());
    }
    let mut me = enc.encode_descriptor(f.name, f.help, None, metric_type(f))?;
    for (labels, metric) in series {
        metric.encode(me.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Labelled gauges; `V` as in [`gauge`].
pub(crate) fn gauge_family<L, V>(
    enc: &mut DescriptorEncoder,
    f: &'static Family,
    series: impl IntoIterator<Item = (L, V)>,
) -> Result<(), std::fmt::Error>
where
    L: EncodeLabelSet,
    V: EncodeGaugeValue + std::fmt::Debug + Send + Sync,
{
    debug_assert!(f.kind == Kind::Gauge, "{}", f.name);
    labelled(
        enc,
        f,
        series.into_iter().map(|(l, v)| (l, ConstGauge::new(v))),
    )
}

pub(crate) fn counter_family<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    f: &'static Family,
    series: impl IntoIterator<Item = (L, u64)>,
) -> Result<(), std::fmt::Error> {
    debug_assert!(f.kind == Kind::Counter, "{}", f.name);
    labelled(
        enc,
        f,
        series.into_iter().map(|(l, v)| (l, ConstCounter::new(v))),
    )
}

pub(crate) fn info(
    enc: &mut DescriptorEncoder,
    f: &'static Family,
    labels: Vec<(&str, String)>,
) -> Result<(), std::fmt::Error> {
    debug_assert!(f.kind == Kind::Info, "{}", f.name);
    Info::new(labels).encode(enc.encode_descriptor(f.name, f.help, None, metric_type(f))?)
}
