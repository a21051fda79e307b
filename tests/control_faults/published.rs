//! `published` and a previous tor's descriptor: a descriptor fetched back counts only if the
//! running tor made it.

use super::*;

/// The recorded descriptors of a service restarted on the private network (see
/// src/source/descriptor.rs): the first tor's, fetched back from an HSDir after the restart, and
/// the restarted tor's own.
const RESTART_ONION: &str = include_str!("../fixtures/descriptors/restart.onion");
const RESTART_FETCHED: &str = include_str!("../fixtures/descriptors/restart-fetched.desc");
const RESTART_NEW_OWN: &str = include_str!("../fixtures/descriptors/restart-new-own.desc");

/// A control data block: each line CRLF-terminated and dot-stuffed, then `.`.
fn data_block(text: &str) -> String {
    let mut out = String::new();
    for line in text.trim_end_matches('\n').lines() {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out
}

/// A peer like a restarted tor: its own descriptor is `own`, and every `HSFETCH` of the service
/// brings back `fetched` (REQUESTED, RECEIVED, HS_DESC_CONTENT, as tor 0.4.9 sends them).
fn restarted_tor(own: &'static str, fetched: &'static str) -> FakePeer {
    let onion = RESTART_ONION.trim();
    FakePeer::start(move |req, honest| match req.verb.as_str() {
        "GETINFO" if req.line.contains("hs/service/desc/id/") => Action::Send(
            format!(
                "250+hs/service/desc/id/{onion}=\r\n{}250 OK\r\n",
                data_block(own)
            )
            .into_bytes(),
        ),
        "HSFETCH" => Action::Send(
            format!(
                "250 OK\r\n\
                 650 HS_DESC REQUESTED {onion} NO_AUTH $AAAA~relay1 BLINDED HSDIR_INDEX=00\r\n\
                 650 HS_DESC RECEIVED {onion} NO_AUTH $AAAA~relay1 BLINDED\r\n\
                 650+HS_DESC_CONTENT {onion} BLINDED $AAAA~relay1\r\n{}650 OK\r\n",
                data_block(fetched)
            )
            .into_bytes(),
        ),
        _ => honest,
    })
}

async fn exporter_for_restart(peer: &FakePeer) -> ExporterTask {
    let mut config = Config::default();
    config.tor.control_address = peer.address();
    config.tor.refresh_interval = Duration::from_secs(1);
    config.tor.max_backoff = Duration::from_secs(4);
    config.onion_services.0.insert(
        "source".into(),
        securedrop_tor_exporter::control::OnionAddress::new(RESTART_ONION).unwrap(),
    );
    ExporterTask::start(config).await
}

/// After a restart, the HSDirs still serve the previous tor's descriptor: the start-up fetch
/// finds it every time, and the exporter says 0 (never 1) because the running tor did not make
/// it. Before `published` compared descriptors, the fetch's RECEIVED alone made it 1. On the
/// wall clock: the tracker's retry times are the exporter's Unix time, as in production.
#[tokio::test]
async fn a_previous_tors_descriptor_fetched_back_is_not_published() {
    watch_panics();
    let peer = restarted_tor(RESTART_NEW_OWN, RESTART_FETCHED);
    let exporter = exporter_for_restart(&peer).await;
    let metric = "tor_onion_service_published{service=\"source\"}";
    let (ok, text) = exporter
        .metrics_until(Duration::from_secs(120), |t| {
            let p = sample(t, metric);
            assert_ne!(
                p,
                Some(1.0),
                "published 1 for another tor's descriptor:\n{t}"
            );
            p == Some(0.0)
        })
        .await;
    assert!(
        ok,
        "published never said 0 ({} HSFETCH):\n{text}",
        peer.count("HSFETCH")
    );
    assert_eq!(
        peer.count("HSFETCH"),
        securedrop_tor_exporter::source::onion::CHECK_ATTEMPTS as usize,
        "each attempt fetched the old descriptor again"
    );
    assert!(!text.contains(RESTART_ONION.trim()));
    exporter.stop().await;
    assert_no_panic_on_this_thread();
}

/// The same exchange with the running tor's own descriptor on the HSDirs: 1, so the test above
/// can tell the two apart.
#[tokio::test]
async fn the_running_tors_descriptor_fetched_back_is_published() {
    let peer = restarted_tor(RESTART_NEW_OWN, RESTART_NEW_OWN);
    let exporter = exporter_for_restart(&peer).await;
    let (ok, text) = exporter
        .metrics_until(Duration::from_secs(60), |t| {
            sample(t, "tor_onion_service_published{service=\"source\"}") == Some(1.0)
        })
        .await;
    assert!(ok, "{text}");
    assert_eq!(peer.count("HSFETCH"), 1);
    exporter.stop().await;
}
