//! What each scraper gets from `/metrics`, by its exact `Accept` header: Prometheus 3.x (which
//! asks for OpenMetrics 1.0.0 with `escaping=allow-utf-8` first, and refuses a response without
//! a valid Content-Type), Prometheus 2.x, a protobuf-first Prometheus (native histograms on; we
//! serve no protobuf, so its next choice), and curl with no header at all.

mod support;

use securedrop_tor_exporter::{Config, ControlAddress};
use support::exporter::ExporterTask;
use support::fake_peer::FakePeer;

/// Prometheus 3.x's default scrape protocols, as it sends them.
const PROMETHEUS_3: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
/// Prometheus 3.x with native histograms, which puts protobuf first.
const PROMETHEUS_3_PROTOBUF: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
/// Prometheus 2.42 (Debian 12).
const PROMETHEUS_2: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// Prometheus 3.x told to scrape the classic text format only (`scrape_protocols`).
const PROMETHEUS_3_TEXT_ONLY: &str =
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.2,text/plain;version=0.0.4;q=0.1";

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[tokio::test]
async fn each_scraper_gets_a_format_it_asked_for_with_a_valid_content_type() {
    let peer = FakePeer::honest();
    let mut c = Config::default();
    c.tor.control_address = ControlAddress::Unix(peer.socket().to_owned());
    let exporter = ExporterTask::start(c).await;
    for (who, accept, want) in [
        ("Prometheus 3.x", Some(PROMETHEUS_3), OPENMETRICS),
        (
            "Prometheus 3.x, protobuf first",
            Some(PROMETHEUS_3_PROTOBUF),
            OPENMETRICS,
        ),
        ("Prometheus 2.42", Some(PROMETHEUS_2), OPENMETRICS),
        (
            "Prometheus 3.x, text only",
            Some(PROMETHEUS_3_TEXT_ONLY),
            TEXT,
        ),
        ("curl without Accept", None, TEXT),
    ] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let r = exporter.get("/metrics", &headers).await;
        assert_eq!(r.status, 200, "{who}");
        assert_eq!(r.header("content-type"), Some(want), "{who}");
        let openmetrics = want == OPENMETRICS;
        assert_eq!(
            r.body.ends_with("# EOF\n"),
            openmetrics,
            "{who}:\n{}",
            r.body
        );
        assert!(r.body.contains("tor_up 1"), "{who}:\n{}", r.body);
    }
    exporter.stop().await;
}
