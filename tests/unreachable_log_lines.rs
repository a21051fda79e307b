//! While tor stays unreachable the exporter retries every few seconds; the journal gets the first
//! failure at once and then at most one line per cause per minute, with a count of the retries
//! left out (the rest go to the debug level). So an authentication that tor, or a squatter on a
//! TCP control address, keeps refusing is seen, without a line every few seconds. On a paused
//! tokio clock, so the minutes are exact and take no time.

mod support;

use std::time::Duration;

use securedrop_tor_exporter::{Config, ControlAddress};
use support::exporter::ExporterTask;
use support::log_capture::LogBuffer;

#[tokio::test(start_paused = true)]
async fn an_unreachable_tor_is_logged_at_once_then_once_a_minute() {
    let logs = LogBuffer::install();
    let dir = support::temp_dir::tempdir().unwrap();
    let mut c = Config::default();
    // Nothing listens there: every connect fails the same way.
    c.tor.control_address = ControlAddress::Unix(dir.path().join("control"));
    c.tor.refresh_interval = Duration::from_secs(1);
    c.tor.max_backoff = Duration::from_secs(2);
    c.tor.timeout = Duration::from_millis(200);
    let e = ExporterTask::start(c).await;
    // The scenario's length (150 s of retries every 2 s), on the paused clock: not a wait for
    // anything.
    tokio::time::sleep(Duration::from_secs(150)).await;
    e.stop().await;
    let text = logs.text();
    let count = |what: &str| text.lines().filter(|l| l.contains(what)).count();
    assert_eq!(count("tor is unreachable; reporting tor_up 0"), 1, "{text}");
    // at 60 s and at 120 s, each with the count of what it left out
    let later: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("tor is still unreachable, for another cause or a minute on"))
        .collect();
    assert_eq!(later.len(), 2, "{later:#?}");
    assert!(
        later
            .iter()
            .all(|l| l.contains("more like it in the last minute")),
        "{later:#?}"
    );
    // the retries went on meanwhile, at the debug level
    assert!(count("tor still unreachable") > 50, "{text}");
}
