//! The whole /metrics text for a fixed snapshot, in both formats, and the status page at `/`,
//! against files in tests/golden/.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff.

use std::time::Duration;

use securedrop_tor_exporter::metrics::{registry, render, Format};
use securedrop_tor_exporter::snapshot::ErrorKind;
use securedrop_tor_exporter::snapshot::{Shared, Snapshot};

#[path = "fixtures/examples.rs"]
mod examples;

fn fixed() -> Snapshot {
    let mut s = Snapshot {
        refreshed: true,
        tor_up: true,
        status: Some(examples::tor_status()),
        // 123_456_789 and 98_765_432 bytes through the 16 MiB coarsener: 117_440_512, 83_886_080.
        traffic_read_bytes: Some(examples::coarse(123_456_789)),
        traffic_written_bytes: Some(examples::coarse(98_765_432)),
        refresh_duration: Some(Duration::from_micros(250)),
        last_success_unix: Some(1_764_000_000.5),
        started_unix: Some(1_763_990_000.0),
        onion: examples::onion_health(),
        ..Default::default()
    };
    s.add_errors(ErrorKind::Timeout, 2);
    s
}

fn check(name: &str, format: Format) {
    let r = registry(Shared::new(fixed()));
    compare(
        name,
        render(&r, format).replace(env!("CARGO_PKG_VERSION"), "VERSION"),
    );
}

/// The snapshot's time plus a minute: what the status page shows ages against.
pub const PAGE_NOW: f64 = 1_764_000_060.0;

fn compare(name: &str, got: String) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(
        got,
        want,
        "{} differs; if intended, regenerate with UPDATE_GOLDEN=1",
        path.display()
    );
}

#[test]
fn golden_status_page() {
    let got = securedrop_tor_exporter::page::render(&fixed(), PAGE_NOW, "VERSION");
    compare("status.html", got);
}

/// The health judge's view on the page: what alerts (with the words of its log line) and what is
/// being watched until its hold time has passed.
#[test]
fn status_page_shows_the_health_judgements() {
    use securedrop_tor_exporter::snapshot::HealthItem;
    let mut s = fixed();
    s.health = vec![
        HealthItem {
            state: "no_circuits",
            role: None,
            since_unix: PAGE_NOW - 12.0 * 60.0,
            alerting: true,
        },
        HealthItem {
            state: "onion_not_published",
            role: Some("source".into()),
            since_unix: PAGE_NOW - 3.0 * 60.0,
            alerting: false,
        },
    ];
    let page = securedrop_tor_exporter::page::render(&s, PAGE_NOW, "VERSION");
    assert!(
        page.contains("<p class=\"summary bad\">tor health: alert no_circuits for 12m <small>"),
        "{page}"
    );
    assert!(
        page.contains("Watching, not yet alerting: onion_not_published source for 3m."),
        "{page}"
    );
    // and nothing of it while the judge watches nothing
    let plain = securedrop_tor_exporter::page::render(&fixed(), PAGE_NOW, "VERSION");
    assert!(!plain.contains("tor health") && !plain.contains("Watching"));
}

#[test]
fn golden_openmetrics() {
    check("metrics.openmetrics.txt", Format::OpenMetrics);
}

#[test]
fn golden_classic_text() {
    check("metrics.prometheus.txt", Format::Text);
}
