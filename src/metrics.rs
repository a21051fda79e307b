//! Turns a [`Snapshot`] into the exposition text, with `prometheus-client` doing the encoding.
//!
//! A collector reads the shared snapshot at scrape time (collect-on-scrape): no per-metric state
//! to keep in sync, and a scrape never waits on tor. Names follow Prometheus conventions (`_total`
//! counters, base units in the name, `_info` for info metrics); METRICS.md lists every series.

use std::fmt::Write as _;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, EncodeMetric,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::policy::{self, Family, Kind};
use crate::snapshot::{Shared, Snapshot};
use crate::status::VERSION_STATUSES;

/// The two exposition formats, picked by the `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    /// The classic Prometheus text format 0.0.4.
    Text,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// OpenMetrics when the client prefers it (Prometheus does), else classic text (curl, browsers).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut om = 0.0f32;
        let mut text = 0.0f32;
        for part in accept.split(',') {
            let mut params = part.split(';').map(str::trim);
            let media = params.next().unwrap_or("").to_ascii_lowercase();
            let q = params
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => om = om.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if om > 0.0 && om >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// Reads the shared snapshot on every scrape.
#[derive(Debug)]
struct SnapshotCollector {
    shared: Shared,
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_snapshot(&self.shared.get(), &mut enc)
    }
}

/// The registry the HTTP handler encodes, built once at start.
pub fn registry(shared: Shared) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(SnapshotCollector { shared }));
    r
}

/// Encodes the registry in the requested format.
pub fn render(registry: &Registry, format: Format) -> String {
    let mut om = String::with_capacity(4096);
    if prometheus_client::encoding::text::encode(&mut om, registry).is_err() {
        // Writing to a String cannot fail; keep a valid (empty) exposition if it ever does.
        om = "# EOF\n".into();
    }
    match format {
        Format::OpenMetrics => om,
        Format::Text => openmetrics_to_text(&om),
    }
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

pub(crate) fn flag(
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

fn encode_snapshot(s: &Snapshot, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
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
        s.errors.iter().map(|(k, v)| ([("kind", *k)], *v)),
    )?;
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
        flag(enc, &policy::ENOUGH_DIR_INFO, st.enough_dir_info)?;
        flag(enc, &policy::NETWORK_LIVENESS, st.network_liveness)?;
        flag(enc, &policy::CIRCUIT_ESTABLISHED, st.circuit_established)?;
        flag(enc, &policy::DORMANT, st.dormant)?;
        if let Some(u) = st.uptime_seconds {
            gauge(enc, &policy::UPTIME, i64::try_from(u).unwrap_or(i64::MAX))?;
        }
        if let Some(v) = s.traffic_read_bytes {
            counter(enc, &policy::TRAFFIC_READ, v)?;
        }
        if let Some(v) = s.traffic_written_bytes {
            counter(enc, &policy::TRAFFIC_WRITTEN, v)?;
        }
        if let Some(r) = &s.relay {
            crate::relay::encode(r, enc)?;
        }
    }
    crate::onion::encode(&s.onion, enc)?;
    Ok(())
}

/// Rewrites prometheus-client's OpenMetrics text into the classic text format: counters and info
/// metrics take their sample names as family names, `# UNIT` and `# EOF` go.
pub fn openmetrics_to_text(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    let mut help: Option<(&str, &str)> = None;
    for line in om.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, text));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (family, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gauge" => (name.to_owned(), "gauge"),
                "histogram" => (name.to_owned(), "histogram"),
                "summary" => (name.to_owned(), "summary"),
                "stateset" => (name.to_owned(), "gauge"),
                _ => (name.to_owned(), "untyped"),
            };
            if let Some((h, text)) = help.take() {
                if h == name {
                    let _ = writeln!(out, "# HELP {family} {text}");
                }
            }
            let _ = writeln!(out, "# TYPE {family} {kind}");
        } else if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        let prom = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(Format::negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(
            Format::negotiate(Some("text/plain;q=0.9, application/openmetrics-text;q=0.1")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
    }

    #[test]
    fn classic_conversion() {
        let om = "# HELP a_bytes Bytes.\n# TYPE a_bytes counter\n# UNIT a_bytes bytes\na_bytes_total 3\n# HELP b Info.\n# TYPE b info\nb_info{v=\"1\"} 1\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(om),
            "# HELP a_bytes_total Bytes.\n# TYPE a_bytes_total counter\na_bytes_total 3\n# HELP b_info Info.\n# TYPE b_info gauge\nb_info{v=\"1\"} 1\n"
        );
    }
}
