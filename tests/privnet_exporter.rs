//! The exporter on a private Tor network (loopback only): onion-service health labelled by role,
//! /metrics fetched through the client-authorized onion service with a key made by our own code,
//! the self-probe, traffic coarsening, relay series, and no onion address in any output or log.

mod support;

use std::time::{Duration, Instant};

use securedrop_tor_exporter::control::OnionAddress;
use securedrop_tor_exporter::keys::PrivateKey;
use securedrop_tor_exporter::{Config, ControlAddress};
use support::exporter::ExporterThread;
use support::log_capture::LogBuffer;
use support::metrics_text::sample;
use support::privnet::{self, wait_for, Options, PrivNet, ServiceSpec};

fn config(node: &privnet::Node) -> Config {
    let mut c = Config::default();
    c.tor.control_address = ControlAddress::Unix(node.control_socket.clone());
    c.tor.cookie_file = Some(node.cookie_file.clone());
    c.tor.refresh_interval = Duration::from_millis(500);
    c.tor.timeout = Duration::from_secs(2);
    c.tor.max_backoff = Duration::from_secs(1);
    c
}

fn scrape(net: &PrivNet, port: u16) -> String {
    match net.http_get_local(port, "/metrics", Duration::from_secs(5)) {
        Ok(r) if r.status == 200 => r.body,
        Ok(r) => panic!("/metrics answered {}", r.status),
        Err(e) => panic!("/metrics: {e:?}"),
    }
}

#[test]
fn exporter_on_a_private_tor_network() {
    let logs = LogBuffer::install();

    // The metrics service authorizes one client, with a key made by our own code.
    let admin = PrivateKey::generate();
    let mut metrics_spec = ServiceSpec::new("metrics");
    metrics_spec.authorized_client = Some(admin.auth_line());
    // As the package's drop-in has it: the onion forwards to the exporter's own unix socket.
    metrics_spec.unix_target = true;
    let opts = Options {
        services: vec![ServiceSpec::new("source"), metrics_spec],
        ..Options::default()
    };
    let mut net = PrivNet::start_with(opts).expect("private tor network");
    let addresses = net.onion_addresses();
    assert_eq!(addresses.len(), 2);

    // --- The exporter on the onion-service node: its loopback port and the metrics service's
    // unix socket.
    let mut c = config(net.onion_node());
    for s in net.services() {
        c.onion_services
            .0
            .insert(s.role.clone(), OnionAddress::new(&s.onion).unwrap());
    }
    c.traffic.enabled = true;
    c.traffic.quantum_bytes = 4096;
    c.traffic.period = Duration::from_secs(3);
    c.onion.self_probe_interval = Duration::from_secs(5);
    let listener = net.bind(0).expect("bind a loopback port in the namespace");
    let onion_socket = net
        .bind_service_unix("metrics")
        .expect("bind the metrics service's unix socket");
    let exporter = ExporterThread::start_on_both(listener, Some(onion_socket), c);
    let port = exporter.port();
    wait_for("tor_up 1", Duration::from_secs(30), || {
        let b = scrape(&net, port);
        if sample(&b, "tor_up") == Some(1.0) {
            Ok(())
        } else {
            Err(b)
        }
    })
    .unwrap();

    // The first uploads happened before the exporter came; restarting the onion node makes tor
    // upload again, and makes the exporter reconnect both its connections.
    net.restart_node("onion", Duration::from_secs(120))
        .expect("onion node restarts");

    let mut body = String::new();
    wait_for("healthy onion services in /metrics", Duration::from_secs(180), || {
        body = scrape(&net, port);
        let mut missing = Vec::new();
        for (series, want) in [
            ("tor_up", 1.0),
            ("tor_circuit_established", 1.0),
            ("tor_bootstrap_progress_percent", 100.0),
            ("tor_network_liveness", 1.0),
            ("tor_onion_service_published{service=\"source\"}", 1.0),
            ("tor_onion_service_published{service=\"metrics\"}", 1.0),
        ] {
            if sample(&body, series) != Some(want) {
                missing.push(series);
            }
        }
        for role in ["source", "metrics"] {
            let s = format!("tor_onion_service_descriptor_uploads_total{{service=\"{role}\",result=\"uploaded\",reason=\"none\"}}");
            if sample(&body, &s).unwrap_or(0.0) < 1.0 {
                missing.push("uploads");
            }
        }
        if missing.is_empty() { Ok(()) } else { Err(format!("{missing:?}")) }
    })
    .unwrap_or_else(|e| panic!("{e:?}\n{body}\n{}", net.diagnostics()));
    assert_eq!(
        sample(&body, "tor_onion_services_configured"),
        Some(2.0),
        "{body}"
    );
    assert!(
        body.contains("tor_version_status{status=\"recommended\"} 1"),
        "{body}"
    );
    assert!(
        !body.contains("tor_relay_"),
        "a client shows no relay series:\n{body}"
    );

    // --- /metrics through the client-authorized onion service.
    let onion = OnionAddress::new(&net.service("metrics").onion).unwrap();
    let without_key = net.fetch_onion("metrics", "/metrics", Duration::from_secs(60));
    assert!(
        without_key.is_err(),
        "the metrics onion answered a client without the key"
    );
    net.add_client_auth("admin", &admin.auth_private_line(&onion))
        .expect("client key");
    let mut via_onion = String::new();
    wait_for(
        "/metrics through the onion with the client key",
        Duration::from_secs(120),
        || match net.fetch_onion("metrics", "/metrics", Duration::from_secs(60)) {
            Ok(r) if r.status == 200 => {
                via_onion = r.body;
                Ok(())
            }
            Ok(r) => Err(format!("status {}", r.status)),
            Err(e) => Err(format!("{e:?}")),
        },
    )
    .unwrap_or_else(|e| panic!("{e:?}\n{}", net.diagnostics()));
    assert_eq!(sample(&via_onion, "tor_up"), Some(1.0), "{via_onion}");

    // --- Self-probe: HSFETCH of our own descriptors, as an outside client would find them.
    wait_for(
        "self-probe of the source service",
        Duration::from_secs(180),
        || {
            let b = scrape(&net, port);
            match sample(
                &b,
                "tor_onion_service_self_probe_success{service=\"source\"}",
            ) {
                Some(1.0) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .unwrap();

    // --- Traffic: only whole quanta, and no two changes closer than the period (3 s). Another
    // thread keeps traffic flowing through the onion while this one scrapes every 100 ms.
    let mut changes = Vec::new();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (done, net_ref) = (&done, &net);
        scope.spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = net_ref.fetch_onion("source", "/", Duration::from_secs(5));
            }
        });
        let mut last: Option<f64> = None;
        let until = Instant::now() + Duration::from_secs(14);
        while Instant::now() < until {
            let b = scrape(&net, port);
            let v = sample(&b, "tor_traffic_read_bytes_total").expect("traffic counter");
            assert_eq!(
                v % 4096.0,
                0.0,
                "traffic counter {v} is not a whole number of quanta"
            );
            if last.is_some_and(|p| p != v) {
                changes.push(Instant::now());
            }
            last = Some(v);
            std::thread::sleep(Duration::from_millis(100));
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    assert!(
        changes.len() >= 2,
        "with traffic flowing the counter should move every period; moved {} times",
        changes.len()
    );
    for w in changes.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(2500),
            "traffic counter moved twice within {gap:?} (period 3 s)"
        );
    }

    // --- The opt-in recovery leaves a healthy tor alone: a second exporter on the same tor with
    // its holds 600 times shorter (tor_down's 5 minutes: 0.5 s), and `recover` run every 0.5 s
    // for 20 s with its durations scaled alike (a reload after 2 s, restarts from 4 s), so
    // these 20 s stand for over 3 hours of a healthy tor; `systemctl` is a script that writes
    // down what it is asked. It must be asked nothing.
    healthy_tor_is_never_touched_by_recovery(&net);

    // --- Nothing anywhere names an onion address.
    let final_body = scrape(&net, port);
    let om = net
        .http_get_local(port, "/metrics", Duration::from_secs(5))
        .unwrap()
        .body;
    drop(exporter);
    let log = logs.text();
    assert!(
        log.contains("listening for onion-service descriptor events"),
        "the log capture works:\n{log}"
    );
    for a in &addresses {
        for (what, text) in [
            ("/metrics", &final_body),
            ("/metrics (openmetrics)", &om),
            ("via onion", &via_onion),
            ("the log", &log),
        ] {
            assert!(
                !text.contains(a.as_str()),
                "{what} contains an onion address"
            );
        }
    }

    // --- The relay under test: its series appear, with plausible values.
    let relay = net.relay_under_test();
    let fingerprint = relay.fingerprint().expect("relay fingerprint");
    let relay_exporter = ExporterThread::start(config(relay));
    let mut rbody = String::new();
    wait_for("relay series", Duration::from_secs(120), || {
        rbody = relay_exporter.get("/metrics");
        let ok = rbody.contains(&format!(
            "tor_relay_info{{fingerprint=\"{fingerprint}\",nickname=\"RelayUnderTest\"}} 1"
        )) && rbody.contains("tor_relay_flag{flag=\"Running\"} 1")
            && rbody.contains("tor_relay_flag{flag=\"Valid\"} 1");
        if ok {
            Ok(())
        } else {
            Err("not yet".into())
        }
    })
    .unwrap_or_else(|e| panic!("{e:?}\n{rbody}"));
    assert!(rbody.contains("tor_accounting_enabled 1"), "{rbody}");
    assert!(
        rbody.contains("tor_accounting_max_bytes 1073741824"),
        "{rbody}"
    );
    assert!(
        rbody.contains("tor_accounting_hibernating_state{state=\"awake\"} 1"),
        "{rbody}"
    );
    assert!(
        rbody.contains("tor_accounting_used_bytes{direction=\"read\"}"),
        "{rbody}"
    );
    assert!(rbody.contains("tor_relay_effective_rate_bytes"), "{rbody}");
    assert!(
        rbody.contains("tor_relay_reachable{port=\"or\"}"),
        "{rbody}"
    );
    drop(relay_exporter);
    drop(net);
}

fn healthy_tor_is_never_touched_by_recovery(net: &PrivNet) {
    let mut c = config(net.onion_node());
    c.health.hold_divisor = 600;
    let listener = net.bind(0).expect("bind in the namespace");
    let scaled = ExporterThread::start_on(listener, c);
    let port = scaled.port();
    wait_for(
        "tor_up 1 on the scaled exporter",
        Duration::from_secs(30),
        || {
            let b = scrape(net, port);
            if sample(&b, "tor_up") == Some(1.0) {
                Ok(())
            } else {
                Err(b)
            }
        },
    )
    .unwrap();
    let dir = support::temp_dir::tempdir().unwrap();
    let calls = dir.path().join("calls");
    let systemctl = dir.path().join("systemctl");
    std::fs::write(
        &systemctl,
        format!("#!/bin/sh\necho \"$*\" >>'{}'\n", calls.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &systemctl,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let state = dir.path().join("state");
    let started = Instant::now();
    let mut runs = 0;
    while started.elapsed() < Duration::from_secs(20) {
        let (systemctl, state) = (systemctl.clone(), state.clone());
        let out = net
            .in_netns(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_securedrop-tor-exporter"))
                    .args(["recover", "--exporter", &format!("127.0.0.1:{port}")])
                    .arg("--state-file")
                    .arg(state)
                    .arg("--systemctl")
                    .arg(systemctl)
                    .args(["--reload-after", "2s", "--restart-after", "4s"])
                    .args(["--restart-every", "6s", "--settle", "3s"])
                    .output()
            })
            .unwrap()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        runs += 1;
        // the timer's period, scaled: pacing, not waiting for a condition
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(runs >= 20, "only {runs} runs");
    assert!(
        !calls.exists(),
        "recovery acted on a healthy tor: {}",
        std::fs::read_to_string(&calls).unwrap_or_default()
    );
}
