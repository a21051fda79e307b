//! The whole exporter through `run()` against a faulty peer: `/metrics` always answers, and
//! nothing but allow-listed verbs ever reaches the peer.

use super::*;

/// The exporter on the test's runtime, asking `peer` every `refresh`, each request bounded by
/// `timeout`.
async fn exporter(peer: &FakePeer, refresh: Duration, timeout: Duration) -> ExporterTask {
    let mut config = Config::default();
    config.tor.control_address = peer.address();
    config.tor.refresh_interval = refresh;
    config.tor.timeout = timeout;
    config.tor.max_backoff = refresh * 4;
    ExporterTask::start(config).await
}

/// Traffic counters are off unless configured: tor is not even asked for them, and no
/// `tor_traffic_*` series appears. With `traffic.enabled` they are asked for and exported
/// (coarsened, see source::traffic).
#[tokio::test]
async fn traffic_counters_are_neither_asked_nor_exported_unless_enabled() {
    let peer = FakePeer::honest();
    let off = exporter(&peer, Duration::from_millis(50), T).await;
    let text = off.metrics().await;
    assert_eq!(sample(&text, "tor_up"), Some(1.0), "{text}");
    assert!(!text.contains("tor_traffic_"), "{text}");
    // the counters not asked for are not "missing" either
    assert_eq!(
        sample(&text, "tor_exporter_control_errors_total{kind=\"parse\"}"),
        Some(0.0),
        "{text}"
    );
    off.stop().await;
    let getinfos: Vec<String> = peer
        .received()
        .into_iter()
        .filter(|r| r.verb == "GETINFO")
        .map(|r| r.line)
        .collect();
    assert!(!getinfos.is_empty());
    assert!(
        getinfos.iter().all(|l| !l.contains("traffic/")),
        "{getinfos:?}"
    );

    let peer = FakePeer::honest();
    let mut config = Config::default();
    config.tor.control_address = peer.address();
    config.traffic.enabled = true;
    let on = ExporterTask::start(config).await;
    let text = on.metrics().await;
    assert!(text.contains("tor_traffic_read_bytes_total"), "{text}");
    assert!(peer
        .received()
        .iter()
        .any(|r| r.line.contains("traffic/read")));
    on.stop().await;
}

#[tokio::test]
async fn only_allow_listed_verbs_ever_reach_the_peer_over_a_whole_session() {
    watch_panics();
    let peer = FakePeer::honest();
    let exporter = exporter(&peer, Duration::from_millis(50), T).await;
    let p = &peer;
    assert!(
        eventually(
            Duration::from_secs(3),
            || async move { p.count("GETINFO") >= 5 }
        )
        .await,
        "refresher made {} GETINFO requests",
        peer.count("GETINFO")
    );
    let text = exporter.metrics().await;
    assert_eq!(sample(&text, "tor_up"), Some(1.0), "{text}");
    exporter.stop().await;
    assert_no_panic_on_this_thread();

    let received = peer.received();
    for r in &received {
        assert!(
            spec::READ_ONLY_VERBS.contains(&r.verb.as_str()),
            "the exporter sent {:?} (connection {})",
            r.verb,
            r.conn
        );
        if !r.authenticated {
            assert!(
                ["PROTOCOLINFO", "AUTHCHALLENGE", "AUTHENTICATE"].contains(&r.verb.as_str()),
                "{} before authenticating",
                r.verb
            );
        }
        if r.verb == "GETINFO" {
            for key in r.line.split(' ').skip(1) {
                assert!(GETINFO_KEYS.contains(&key), "unexpected key {key}");
            }
        }
    }
    for verb in ["PROTOCOLINFO", "AUTHCHALLENGE", "AUTHENTICATE", "GETINFO"] {
        assert!(received.iter().any(|r| r.verb == verb), "{verb} never sent");
    }
    // One handshake per connection, not per refresh.
    assert_eq!(peer.count("PROTOCOLINFO"), peer.connections());
    assert!(
        peer.connections() <= 2,
        "{} connections",
        peer.connections()
    );
}

#[tokio::test]
async fn a_garbage_peer_gives_tor_up_0_and_protocol_errors_without_a_panic() {
    watch_panics();
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "GETINFO" => Action::Send(b"\x00\x01garbage\xff\r\n".to_vec()),
        _ => honest,
    });
    let exporter = exporter(&peer, Duration::from_millis(50), T).await;
    let (got, last) = exporter
        .metrics_until(Duration::from_secs(4), |last| {
            sample(last, "tor_exporter_control_errors_total{kind=\"protocol\"}")
                .is_some_and(|v| v >= 2.0)
        })
        .await;
    assert!(got, "no protocol errors counted:\n{last}");
    assert_eq!(sample(&last, "tor_up"), Some(0.0), "{last}");
    assert!(
        !last.contains("tor_version_info"),
        "no tor series while tor is down"
    );
    // It reconnected after each failure instead of giving up or reusing a broken stream (the
    // onion-service listener has a connection of its own, so count those that sent GETINFO).
    let getinfo_conns: Vec<usize> = peer
        .received()
        .iter()
        .filter(|r| r.verb == "GETINFO")
        .map(|r| r.conn)
        .collect();
    let mut distinct = getinfo_conns.clone();
    distinct.dedup();
    assert!(
        distinct.len() >= 2,
        "GETINFO on connections {getinfo_conns:?}"
    );
    assert_eq!(
        distinct, getinfo_conns,
        "GETINFO sent again on a connection whose stream broke"
    );
    // The landing page and 404 still work.
    assert_eq!(exporter.get("/", &[]).await.status, 200);
    assert_eq!(exporter.get("/nope", &[]).await.status, 404);
    exporter.stop().await;
    assert_no_panic_on_this_thread();
}

/// Answers the first two GETINFOs with `bad`, then behaves: the refresher must count protocol
/// errors, survive, and come back to `tor_up 1` without a restart. Returns the last scrape.
async fn recovers_after_two_bad_answers(bad: &'static [u8]) -> String {
    watch_panics();
    let getinfos = std::sync::atomic::AtomicUsize::new(0);
    let peer = FakePeer::start(move |req, honest| match req.verb.as_str() {
        "GETINFO" if getinfos.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 => {
            Action::Send(bad.to_vec())
        }
        _ => honest,
    });
    let exporter = exporter(&peer, Duration::from_millis(50), T).await;
    let (got, last) = exporter
        .metrics_until(Duration::from_secs(4), |last| {
            sample(last, "tor_up") == Some(1.0)
        })
        .await;
    assert!(got, "tor_up never came back:\n{last}");
    assert!(
        sample(
            &last,
            "tor_exporter_control_errors_total{kind=\"protocol\"}"
        )
        .is_some_and(|v| v >= 2.0),
        "{last}"
    );
    exporter.stop().await;
    assert_no_panic_on_this_thread();
    last
}

#[tokio::test]
async fn a_multibyte_char_after_the_status_is_a_protocol_error_not_a_panic() {
    // Found by the fuzzer.
    recovers_after_two_bad_answers("250é\r\n".as_bytes()).await;
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_never_delays_a_scrape() {
    watch_panics();
    // The first GETINFO is answered (tor_up 1), every later one hangs.
    let getinfos = std::sync::atomic::AtomicUsize::new(0);
    let peer = FakePeer::start(move |req, honest| match req.verb.as_str() {
        "GETINFO" if getinfos.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 1 => {
            Action::Hang
        }
        _ => honest,
    });
    let timeout = Duration::from_millis(800);
    let exporter = exporter(&peer, Duration::from_millis(50), timeout).await;
    // Wait until the refresher is stuck waiting for the second GETINFO's answer.
    assert!(
        eventually(Duration::from_secs(2), || async {
            peer.count("GETINFO") >= 2
        })
        .await
    );
    // Scrapes answer at once meanwhile, from the last snapshot.
    for _ in 0..5 {
        let started = tokio::time::Instant::now();
        let text = exporter.metrics().await;
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "scrape took {:?}",
            started.elapsed()
        );
        assert_eq!(sample(&text, "tor_up"), Some(1.0), "{text}");
    }
    // After the timeout the failure is counted as one.
    let (got, last) = exporter
        .metrics_until(Duration::from_secs(3), |last| {
            sample(last, "tor_exporter_control_errors_total{kind=\"timeout\"}")
                .is_some_and(|v| v >= 1.0)
        })
        .await;
    assert!(got, "no timeout counted:\n{last}");
    assert_eq!(sample(&last, "tor_up"), Some(0.0), "{last}");
    exporter.stop().await;
    assert_no_panic_on_this_thread();
}

/// The first scrape after a start tells the truth: no `tor_up 0` for a tor that is up.
#[tokio::test]
async fn the_first_scrape_after_start_already_shows_tor_up_1() {
    let peer = FakePeer::honest();
    // One refresh a minute: only the first attempt can have set tor_up.
    let exporter = exporter(&peer, Duration::from_secs(60), T).await;
    let text = exporter.metrics().await;
    assert_eq!(sample(&text, "tor_up"), Some(1.0), "{text}");
    exporter.stop().await;
}

#[tokio::test]
async fn the_first_scrape_after_start_shows_tor_up_0_when_nothing_listens() {
    let dir = crate::support::temp_dir::tempdir().unwrap();
    let mut config = Config::default();
    config.tor.control_address =
        securedrop_tor_exporter::ControlAddress::Unix(dir.path().join("no-such-socket"));
    config.tor.refresh_interval = Duration::from_secs(60);
    let exporter = ExporterTask::start(config).await;
    let text = exporter.metrics().await;
    assert_eq!(sample(&text, "tor_up"), Some(0.0), "{text}");
    exporter.stop().await;
}

async fn status_page(e: &ExporterTask) -> String {
    e.get("/", &[]).await.body
}

/// The health judge on the exporter as it runs: a tor that never answers is watched, said to be
/// down once the 5-minute hold has passed (on the status page, in the words of the log line OSSEC
/// mails), and not before. On a paused clock: the hold passes in virtual time.
#[tokio::test(start_paused = true)]
async fn a_tor_that_stays_down_is_judged_down_after_its_hold_and_not_before() {
    let dir = crate::support::temp_dir::tempdir().unwrap();
    let mut config = Config::default();
    config.tor.control_address =
        securedrop_tor_exporter::ControlAddress::Unix(dir.path().join("no-such-socket"));
    config.tor.refresh_interval = Duration::from_secs(5);
    let exporter = ExporterTask::start(config).await;
    let started = tokio::time::Instant::now();
    assert!(
        eventually(Duration::from_secs(60), || async {
            status_page(&exporter)
                .await
                .contains("Watching, not yet alerting: tor_down for")
        })
        .await,
        "never watched"
    );
    assert!(!status_page(&exporter).await.contains("tor health: alert"));
    assert!(
        eventually(Duration::from_secs(10 * 60), || async {
            status_page(&exporter)
                .await
                .contains("tor health: alert tor_down for 5m")
        })
        .await,
        "not judged down: {}",
        status_page(&exporter).await
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(5 * 60) && waited < Duration::from_secs(6 * 60),
        "judged down after {waited:?}"
    );
    exporter.stop().await;
}

/// A tor that is slow to answer cannot hold the exporter for longer than `tor.timeout`; until
/// the first attempt ends, `tor_up` is left out rather than guessed.
#[tokio::test(start_paused = true)]
async fn a_slow_first_refresh_delays_serving_by_at_most_the_timeout_and_leaves_tor_up_out() {
    // PROTOCOLINFO's answer drips for at least 0.3 s (a byte at a time; each pause may take
    // longer on a loaded machine, so the drip is kept well inside the timeout) and GETINFO never
    // comes back: the first attempt ends (a timeout) 1.8 s or more after start, after serving
    // began at 1.5 s.
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "PROTOCOLINFO" => {
            let bytes = honest.bytes();
            let pause = Duration::from_millis(300) / bytes.len().max(1) as u32;
            Action::Drip(bytes, pause)
        }
        "GETINFO" => Action::Hang,
        _ => honest,
    });
    let timeout = Duration::from_millis(1500);
    let started = tokio::time::Instant::now();
    let exporter = exporter(&peer, Duration::from_secs(60), timeout).await;
    let text = exporter.metrics().await;
    let first = started.elapsed();
    assert!(
        first < timeout + Duration::from_millis(300),
        "first answer after {first:?}"
    );
    assert_eq!(sample(&text, "tor_up"), None, "{text}");
    assert!(text.contains("tor_exporter_build_info"), "{text}");
    let (got, last) = exporter
        .metrics_until(Duration::from_secs(6), |t| sample(t, "tor_up").is_some())
        .await;
    assert!(got, "tor_up never appeared:\n{last}");
    assert_eq!(sample(&last, "tor_up"), Some(0.0), "{last}");
    exporter.stop().await;
}

#[tokio::test]
async fn tor_up_returns_after_faults_stop() {
    let last = recovers_after_two_bad_answers(b"garbage\r\n").await;
    assert_eq!(
        sample(
            &last,
            &format!(
                "tor_version_info{{version=\"{}\"}}",
                fake_peer::FAKE_TOR_VERSION
            )
        ),
        Some(1.0),
        "{last}"
    );
}
