//! Turns a [`Snapshot`](crate::snapshot::Snapshot) into the exposition text, with `prometheus-client` doing the encoding.
//!
//! A collector reads the shared snapshot at scrape time (collect-on-scrape): no per-metric state
//! to keep in sync, and a scrape never waits on tor. Names follow Prometheus conventions (`_total`
//! counters, base units in the name, `_info` for info metrics); METRICS.md lists every series.

mod format;
mod onion;
mod relay;
mod text;
mod tor;
mod write;

pub use format::Format;
pub use text::openmetrics_to_text;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;

use crate::snapshot::Shared;

/// Reads the shared snapshot on every scrape.
#[derive(Debug)]
struct SnapshotCollector {
    shared: Shared,
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        tor::encode_snapshot(&self.shared.get(), &mut enc)
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
