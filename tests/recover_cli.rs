//! `securedrop-tor-exporter recover` as the timer runs it: against a running exporter's
//! `/health`, with the time scaled down (the exporter's holds by `health.hold_divisor`, the
//! recovery's by its flags) and `systemctl` replaced by a script that writes down what it was
//! asked (the package suite runs the real systemctl on a real tor, tests/package/recovery.sh).
//! A tor that never answers gets one reload, the bounded restarts and one line saying it gave
//! up, then nothing; a healthy tor gets nothing at all.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use securedrop_tor_exporter::{Config, ControlAddress};
use support::exporter::ExporterTask;
use support::fake_peer::FakePeer;

const BIN: &str = env!("CARGO_BIN_EXE_securedrop-tor-exporter");

/// A systemctl that appends its arguments to `calls` and succeeds.
fn recording_systemctl(dir: &Path) -> std::path::PathBuf {
    let script = dir.join("systemctl");
    let calls = dir.join("calls");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$*\" >>'{}'\n", calls.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

fn calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// One run of `recover`, scaled: reload after 1 s, restart after 2 s, restarts 1 s apart, at
/// most 2, an episode over after 1 s with nothing curable. Returns its standard error.
fn recover_once(exporter: std::net::SocketAddr, dir: &Path) -> String {
    let out = Command::new(BIN)
        .args(["recover", "--exporter", &exporter.to_string()])
        .arg("--state-file")
        .arg(dir.join("state"))
        .arg("--systemctl")
        .arg(dir.join("systemctl"))
        .args([
            "--reload-after",
            "1s",
            "--restart-after",
            "2s",
            "--restart-every",
            "1s",
            "--max-restarts",
            "2",
            "--settle",
            "1s",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "recover: {stderr}");
    stderr
}

/// Runs `recover` every 200 ms (the timer's minute, scaled) for `span`, in a blocking thread.
async fn recover_for(
    exporter: std::net::SocketAddr,
    dir: std::path::PathBuf,
    span: Duration,
) -> String {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut said = String::new();
        while started.elapsed() < span {
            said.push_str(&recover_once(exporter, &dir));
            // the timer's period, scaled: pacing, not waiting for a condition
            std::thread::sleep(Duration::from_millis(200));
        }
        said
    })
    .await
    .unwrap()
}

fn config(control: ControlAddress) -> Config {
    let mut c = Config::default();
    c.tor.control_address = control;
    c.tor.refresh_interval = Duration::from_millis(100);
    c.tor.timeout = Duration::from_millis(500);
    // tor_down's 5-minute hold becomes 0.5 s
    c.health.hold_divisor = 600;
    c
}

#[tokio::test]
async fn a_tor_that_never_answers_gets_one_reload_two_restarts_and_one_line_saying_so() {
    let dir = support::temp_dir::tempdir().unwrap();
    recording_systemctl(dir.path());
    let exporter = ExporterTask::start(config(ControlAddress::Unix(
        dir.path().join("no-such-control-socket"),
    )))
    .await;
    let said = recover_for(exporter.addr, dir.path().to_owned(), Duration::from_secs(8)).await;
    assert_eq!(
        calls(dir.path()),
        [
            "reload tor@default",
            "restart tor@default",
            "restart tor@default"
        ],
        "{said}"
    );
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 4, "{said}");
    assert!(
        lines[0].starts_with("tor health: alert recovery_reload for "),
        "{said}"
    );
    assert!(lines[1].contains("recovery_restart") && lines[1].ends_with("(1 of at most 2)"));
    assert!(lines[2].ends_with("(2 of at most 2)"), "{said}");
    assert!(
        lines[3].starts_with("tor health: alert recovery_exhausted for ")
            && lines[3].contains("tor_down; 2 restarts did not help"),
        "{said}"
    );
    exporter.stop().await;
}

#[tokio::test]
async fn a_healthy_tor_is_never_touched() {
    let dir = support::temp_dir::tempdir().unwrap();
    recording_systemctl(dir.path());
    let peer = FakePeer::honest();
    let exporter =
        ExporterTask::start(config(ControlAddress::Unix(peer.socket().to_owned()))).await;
    let said = recover_for(exporter.addr, dir.path().to_owned(), Duration::from_secs(4)).await;
    assert!(calls(dir.path()).is_empty(), "{:?}", calls(dir.path()));
    assert_eq!(said, "");
    exporter.stop().await;
}

/// No exporter answering: nothing done (the recovery acts only on the exporter's judgement,
/// never on a guess), and no failed unit either.
#[test]
fn without_an_exporter_it_does_nothing_and_says_why() {
    let dir = support::temp_dir::tempdir().unwrap();
    recording_systemctl(dir.path());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let out = Command::new(BIN)
        .args(["recover", "--exporter", &addr.to_string()])
        .arg("--state-file")
        .arg(dir.path().join("state"))
        .arg("--systemctl")
        .arg(dir.path().join("systemctl"))
        .output()
        .unwrap();
    // a success (no failed unit for systemd to log every minute), saying why nothing was done
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("recover: nothing done: cannot read the exporter's judgements"),
        "{err}"
    );
    assert!(calls(dir.path()).is_empty());
}
