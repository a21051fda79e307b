//! End-to-end against a real tor (Debian's `tor`, or `$SDTE_TOR`: tests/support/tor.rs;
//! `DisableNetwork 1`): up, killed, restarted, frozen and thawed, with the exporter running
//! throughout.
//!
//! On the wall clock: what is timed is a separate tor process, which a paused tokio clock
//! would not govern.

mod support;

use std::time::{Duration, Instant};

use securedrop_tor_exporter::{Config, ControlAddress};
use support::exporter::ExporterTask;
use support::metrics_text::sample;
use support::poll::eventually;
use support::tor::{self, TestTor};

const INTERVAL: Duration = Duration::from_millis(1000);

async fn start_exporter(control: &std::path::Path) -> ExporterTask {
    let mut config = Config::default();
    config.tor.control_address = ControlAddress::Unix(control.to_owned());
    config.tor.refresh_interval = INTERVAL;
    config.tor.timeout = Duration::from_millis(400);
    config.tor.max_backoff = INTERVAL;
    ExporterTask::start(config).await
}

/// One scrape; asserts it answered 200 quickly and returns `tor_up`.
async fn tor_up(exp: &ExporterTask) -> Option<f64> {
    let t = Instant::now();
    let r = exp.get("/metrics", &[]).await;
    let took = t.elapsed();
    assert_eq!(r.status, 200);
    assert!(
        took < Duration::from_millis(500),
        "a scrape took {took:?}: scrapes must never wait on tor"
    );
    sample(&r.body, "tor_up")
}

#[tokio::test]
async fn real_tor_up_killed_restarted_frozen_thawed() {
    let mut tor = TestTor::start();
    let exp = start_exporter(&tor.control_socket()).await;

    assert!(
        eventually(Duration::from_secs(15), || async {
            tor_up(&exp).await == Some(1.0)
        })
        .await,
        "tor_up never became 1; tor log:\n{}",
        tor.log()
    );
    let body = exp.get("/metrics", &[]).await.body;
    let version = tor::version().expect("tor --version");
    assert!(
        body.contains(&format!("tor_version_info{{version=\"{version}\"}} 1")),
        "tor {version} not shown:\n{body}"
    );
    for series in [
        "tor_bootstrap_progress_percent",
        "tor_network_liveness",
        "tor_circuit_established",
        "tor_dormant",
        "tor_uptime_seconds",
    ] {
        assert!(sample(&body, series).is_some(), "{series} missing:\n{body}");
    }
    assert_eq!(
        sample(&body, "tor_network_liveness"),
        Some(0.0),
        "DisableNetwork 1 means the network is down"
    );

    // SIGKILL: tor_up 0 within two refresh intervals, /metrics answering 200 fast all along.
    tor.kill();
    let killed = Instant::now();
    assert!(
        eventually(2 * INTERVAL, || async { tor_up(&exp).await == Some(0.0) }).await,
        "tor_up still 1 two intervals after SIGKILL"
    );
    eprintln!("tor_up 0 after SIGKILL in {:?}", killed.elapsed());
    let body = exp.get("/metrics", &[]).await.body;
    assert!(
        !body.contains("tor_version_info"),
        "tor's own series must go when it is down:\n{body}"
    );
    assert!(
        body.contains("tor_exporter_build_info"),
        "the exporter's own series stay:\n{body}"
    );

    // Start tor again: back to 1 without restarting the exporter.
    tor.spawn();
    assert!(
        eventually(Duration::from_secs(15), || async {
            tor_up(&exp).await == Some(1.0)
        })
        .await,
        "no recovery after restart"
    );

    // SIGSTOP: a frozen tor counts as down; SIGCONT brings it back.
    tor.signal("STOP");
    let frozen = Instant::now();
    assert!(
        eventually(2 * INTERVAL, || async { tor_up(&exp).await == Some(0.0) }).await,
        "tor_up still 1 two intervals after SIGSTOP"
    );
    eprintln!("tor_up 0 after SIGSTOP in {:?}", frozen.elapsed());
    let body = exp.get("/metrics", &[]).await.body;
    let timeouts = sample(&body, "tor_exporter_control_errors_total{kind=\"timeout\"}").unwrap();
    assert!(timeouts >= 1.0, "a frozen tor shows as a timeout:\n{body}");
    tor.signal("CONT");
    assert!(
        eventually(Duration::from_secs(15), || async {
            tor_up(&exp).await == Some(1.0)
        })
        .await,
        "no recovery after SIGCONT"
    );

    exp.stop().await;
    drop(tor);
}

#[tokio::test]
async fn no_tor_at_all_still_serves() {
    let dir = support::temp_dir::tempdir().unwrap();
    let exp = start_exporter(&dir.path().join("no-such-socket")).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            tor_up(&exp).await == Some(0.0)
        })
        .await
    );
    let r = exp.get("/metrics", &[]).await;
    assert!(r
        .body
        .contains("tor_exporter_control_errors_total{kind=\"connect\"}"));
    exp.stop().await;
}

#[tokio::test]
async fn http_surface() {
    let dir = support::temp_dir::tempdir().unwrap();
    let exp = start_exporter(&dir.path().join("no-such-socket")).await;
    let root = exp.get("/", &[]).await;
    assert_eq!(root.status, 200);
    assert!(root.body.contains("href=\"/metrics\""));
    assert_eq!(exp.get("/nope", &[]).await.status, 404);
    let accept =
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    let om = exp.get("/metrics", &[("Accept", accept)]).await;
    assert!(
        om.header("content-type").is_some_and(|v| v
            .to_ascii_lowercase()
            .starts_with("application/openmetrics-text")),
        "{:?}",
        om.headers
    );
    assert!(om.body.ends_with("# EOF\n"));
    let text = exp.get("/metrics", &[]).await;
    assert!(
        text.header("content-type").is_some_and(|v| v
            .to_ascii_lowercase()
            .starts_with("text/plain; version=0.0.4")),
        "{:?}",
        text.headers
    );
    assert!(!text.body.contains("# EOF"));

    // 405 for other methods on known paths.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(exp.addr).await.unwrap();
    s.write_all(
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 405"), "{out}");

    // An oversized request head is refused, not buffered without bound.
    let mut s = tokio::net::TcpStream::connect(exp.addr).await.unwrap();
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = s.write_all(big.as_bytes()).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("connection closed");
    let out = String::from_utf8_lossy(&out);
    assert!(out.is_empty() || out.starts_with("HTTP/1.1 431"), "{out}");

    // A client that sends half a head and stalls is cut off by the header-read timeout,
    // and scrapes keep working meanwhile.
    let mut idle = tokio::net::TcpStream::connect(exp.addr).await.unwrap();
    idle.write_all(b"GET /metrics HTTP/1.1\r\nHost:")
        .await
        .unwrap();
    assert_eq!(exp.get("/metrics", &[]).await.status, 200);
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(15), idle.read_to_end(&mut out)).await;
    assert!(r.is_ok(), "a stalled client was not cut off within 15 s");
    exp.stop().await;
}
