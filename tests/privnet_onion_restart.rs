//! `published` means the running tor's descriptor, on a private Tor network (loopback only).
//!
//! The onion node's tor publishes, the exporter says `published 1`; then that tor is restarted
//! with `PublishHidServDescriptors 0`, so the new process builds descriptors (new signing keys)
//! but uploads none, while the HSDirs still serve the old process's descriptor for hours. The
//! exporter must never say 1 for the new tor then, and must say 0 while the old descriptor is
//! still fetchable (checked from the client: its `HS_DESC_CONTENT` is not the new tor's). Once
//! uploads are allowed again (`SETCONF PublishHidServDescriptors=1` from the test's own control
//! connection; the exporter only reads), it says 1. No onion address in any log line or series.
//!
//! `RECORD_DESCRIPTORS=DIR` writes the descriptors seen (old tor's own, new tor's own, the one
//! the client fetched) to DIR, for the fixtures of `src/source/descriptor.rs`.

mod support;

use std::time::{Duration, Instant};

use securedrop_tor_exporter::source::descriptor::{descriptor_id, DescriptorId};
use securedrop_tor_exporter::{Config, ControlAddress};
use support::exporter::ExporterThread;
use support::log_capture::LogBuffer;
use support::metrics_text::sample;
use support::poll;
use support::privnet::{Options, PrivNet, ServiceSpec};

const ROLE: &str = "source";

fn published(body: &str) -> Option<f64> {
    sample(
        body,
        &format!("tor_onion_service_published{{service=\"{ROLE}\"}}"),
    )
}

/// tor's own current descriptor for the service (`GETINFO hs/service/desc/id/…`), once built.
fn own_descriptor(net: &PrivNet, onion: &str) -> Result<String, String> {
    let mut c = net.onion_node().control().map_err(|e| e.0)?;
    c.getinfo(&format!("hs/service/desc/id/{onion}"))
        .map(|d| d.trim_start_matches('\n').to_string())
        .map_err(|e| e.to_string())
}

/// What a client gets for the service now: `HSFETCH` from the client node, the descriptor of
/// its `HS_DESC_CONTENT` event (`Err` when the fetch found none).
fn client_fetch(net: &PrivNet, onion: &str, timeout: Duration) -> Result<String, String> {
    let mut c = net.client().control().map_err(|e| e.0)?;
    c.setevents(&["HS_DESC_CONTENT"])
        .map_err(|e| e.to_string())?;
    c.command_ok(&format!("HSFETCH {onion}"))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let Some(ev) = c
            .next_event(Duration::from_secs(1))
            .map_err(|e| e.to_string())?
        else {
            continue;
        };
        let Some(first) = ev.lines.first() else {
            continue;
        };
        let Some((head, body)) = first.split_once('\n') else {
            continue; // empty content: this HSDir had none; tor tries another
        };
        if head.starts_with("HS_DESC_CONTENT ") && head.contains(onion) && !body.is_empty() {
            return Ok(body.to_string());
        }
    }
    Err("no descriptor fetched".into())
}

fn id(text: &str) -> DescriptorId {
    descriptor_id(text).expect("a descriptor tor made")
}

fn record(name: &str, text: &str) {
    if let Ok(dir) = std::env::var("RECORD_DESCRIPTORS") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(std::path::Path::new(&dir).join(name), text).unwrap();
    }
}

#[test]
fn a_restarted_tor_that_uploads_nothing_is_not_published() {
    let logs = LogBuffer::install();
    let mut net = PrivNet::start_with(Options {
        services: vec![ServiceSpec::new(ROLE)],
        ..Options::default()
    })
    .expect("private tor network");
    let onion = net.service(ROLE).onion.clone();
    record("restart.onion", &onion);

    let node = net.onion_node();
    let mut c = Config::default();
    c.tor.control_address = ControlAddress::Unix(node.control_socket.clone());
    c.tor.cookie_file = Some(node.cookie_file.clone());
    c.tor.refresh_interval = Duration::from_millis(500);
    c.tor.max_backoff = Duration::from_secs(1);
    c.onion_services.0.insert(
        ROLE.into(),
        securedrop_tor_exporter::control::OnionAddress::new(&onion).unwrap(),
    );
    let exporter = ExporterThread::start(c);

    // The first tor published (the harness waited for its upload): 1, within a time period
    // (4 min on this network) at worst, when the fetch is for the period tor does not show yet.
    let t0 = Instant::now();
    poll::wait_for(
        "published 1 for the first tor",
        Duration::from_secs(300),
        Duration::from_millis(200),
        || match published(&exporter.get("/metrics")) {
            Some(1.0) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .unwrap_or_else(|e| panic!("{:?}\n{}", e.last, exporter.get("/metrics")));
    eprintln!("first tor: published 1 after {:?}", t0.elapsed());
    let old_own = own_descriptor(&net, &onion).expect("the first tor's descriptor");
    record("restart-old-own.desc", &old_own);

    // --- Restart it with uploads blocked.
    let uploads_before = net.onion_events().hs_desc_count("UPLOAD", &onion);
    net.stop_node("onion").unwrap();
    let torrc = net.onion_node().torrc.clone();
    let mut text = std::fs::read_to_string(&torrc).unwrap();
    text.push_str("\nPublishHidServDescriptors 0\n");
    std::fs::write(&torrc, text).unwrap();
    let restarted = Instant::now();
    net.start_node("onion").unwrap();

    // The new tor builds its own descriptor (new signing keys) ...
    let new_own = poll::wait_for(
        "the new tor's own descriptor",
        Duration::from_secs(120),
        Duration::from_millis(200),
        || own_descriptor(&net, &onion),
    )
    .unwrap_or_else(|e| panic!("{:?}", e.last));
    record("restart-new-own.desc", &new_own);
    assert_ne!(
        id(&old_own).signing_key,
        id(&new_own).signing_key,
        "a restarted tor signs with new keys"
    );

    // ... and the exporter never says 1 for it, and says 0 once it has checked.
    let mut seen = Vec::new();
    let zero = poll::wait_for(
        "published 0 for the tor that uploads nothing",
        Duration::from_secs(300),
        Duration::from_millis(200),
        || {
            let body = exporter.get("/metrics");
            let p = published(&body);
            assert_ne!(
                p,
                Some(1.0),
                "published 1 {:?} after the restart, for a tor that uploaded nothing",
                restarted.elapsed()
            );
            if seen.last() != Some(&p) {
                seen.push(p);
            }
            if p == Some(0.0) {
                Ok(())
            } else {
                Err(format!("{p:?}"))
            }
        },
    );
    zero.unwrap_or_else(|e| panic!("{:?}; values seen {seen:?}", e.last));
    let took_zero = restarted.elapsed();
    eprintln!("restarted tor: published 0 after {took_zero:?} (values seen: {seen:?})");

    // The old descriptor is still what clients get: the exporter's 0 is about this tor, not an
    // empty network. Meanwhile the exporter keeps saying 0.
    let fetched = poll::wait_for(
        "a client fetches the old descriptor",
        Duration::from_secs(60),
        Duration::from_millis(500),
        || {
            assert_eq!(published(&exporter.get("/metrics")), Some(0.0));
            client_fetch(&net, &onion, Duration::from_secs(20))
        },
    )
    .unwrap_or_else(|e| panic!("{:?}", e.last));
    record("restart-fetched.desc", &fetched);
    let f = id(&fetched);
    assert_ne!(
        f.signing_key,
        id(&new_own).signing_key,
        "the fetched descriptor is not the new tor's"
    );
    assert_eq!(
        published(&exporter.get("/metrics")),
        Some(0.0),
        "still 0 while the old descriptor is fetchable"
    );
    let uploads_blocked = net.onion_events().hs_desc_count("UPLOAD", &onion) - uploads_before;
    assert_eq!(
        uploads_blocked, 0,
        "PublishHidServDescriptors 0 let {uploads_blocked} uploads through"
    );
    eprintln!(
        "old descriptor fetched by the client {:?} after the restart; new tor's uploads: 0",
        restarted.elapsed()
    );

    // --- Uploads allowed again: 1. tor does not upload at once (measured: with
    // `PublishHidServDescriptors 0` it goes through each upload without sending it and schedules
    // the next one 60–120 min later), but a new descriptor is uploaded as soon as it is built:
    // at the next descriptor rotation, one time period (4 min on this network) at most.
    let mut ctl = net.onion_node().control().expect("control");
    ctl.command_ok("SETCONF PublishHidServDescriptors=1")
        .expect("SETCONF");
    let allowed = Instant::now();
    poll::wait_for(
        "published 1 once uploads are allowed",
        Duration::from_secs(300),
        Duration::from_millis(200),
        || match published(&exporter.get("/metrics")) {
            Some(1.0) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .unwrap_or_else(|e| panic!("{:?}\n{}", e.last, net.diagnostics()));
    let uploaded = net.onion_events().hs_desc_count("UPLOADED", &onion);
    eprintln!(
        "uploads allowed: published 1 after {:?} ({uploaded} UPLOADED events in all)",
        allowed.elapsed()
    );

    let log = logs.text();
    assert!(log.contains("listening for onion-service descriptor events"));
    assert!(
        log.contains(&format!(
            "onion service {ROLE}: its descriptor is not published"
        )),
        "{log}"
    );
    let body = exporter.get("/metrics");
    for (what, text) in [("the log", &log), ("/metrics", &body)] {
        assert!(!text.contains(&onion), "{what} contains the onion address");
    }
    drop(exporter);
    drop(net);
}
