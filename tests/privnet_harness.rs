//! Self-tests of the private Tor network harness (tests/support/privnet/, docs/privnet.md).
//!
//! One network, several checks in sequence (starting networks in parallel would overload a
//! 2-core machine). Needs root (network namespace), `tor` and `tor-gencert`.

mod support;

use std::time::Duration;

use support::privnet::{self, wait_for, FetchError, Options, PrivNet};

fn netns_of(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("unreadable: {e}"))
}

#[test]
fn private_tor_network_self_test() {
    // The metrics service requires v3 client authorization, as the product's does.
    let (client_pub, client_priv) = privnet::x25519_keypair().unwrap();
    let mut opts = Options::default();
    opts.services[1].authorized_client = Some(format!("descriptor:x25519:{client_pub}"));
    let mut net = PrivNet::start_with(opts).expect("private Tor network did not become ready");
    let t = net.timings().clone();
    eprintln!("privnet timings: {t:?}");

    // --- Containment: every tor runs in the loopback-only namespace, with the required flags.
    let ns = net.netns();
    assert_eq!(ns.interfaces().unwrap(), vec!["lo".to_string()]);
    let holder_ns = netns_of(ns.holder_pid());
    assert_ne!(
        holder_ns,
        netns_of(std::process::id()),
        "holder shares our namespace"
    );
    let me = std::process::id().to_string();
    for node in net.nodes() {
        let pid = node.pid().expect("node running");
        assert_eq!(
            netns_of(pid),
            holder_ns,
            "{} is outside the namespace",
            node.name
        );
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert!(
            args.windows(2)
                .any(|w| w[0] == "--defaults-torrc" && w[1] == "/dev/null"),
            "{}: {args:?}",
            node.name
        );
        let torrc = std::fs::read_to_string(&node.torrc).unwrap();
        assert!(
            torrc
                .lines()
                .any(|l| l == format!("__OwningControllerProcess {me}")),
            "{}: no __OwningControllerProcess",
            node.name
        );
        let auths: Vec<&str> = torrc
            .lines()
            .filter(|l| l.starts_with("DirAuthority "))
            .collect();
        assert_eq!(auths.len(), 3, "{}", node.name);
        for l in auths {
            assert!(l.contains(" 127.0.0.1:"), "{l}");
        }
        let owning = node
            .control()
            .unwrap()
            .command_ok("GETCONF __OwningControllerProcess")
            .unwrap();
        assert!(
            owning
                .lines
                .iter()
                .any(|l| l == &format!("__OwningControllerProcess={me}")),
            "{}: {owning}",
            node.name
        );
    }

    // --- The network formed a consensus listing all 6 routers.
    let nicks = net.consensus_nicknames().unwrap();
    for n in net.authorities().iter().chain(net.relays()) {
        assert!(
            nicks.contains(&n.name),
            "{} not in consensus {nicks:?}",
            n.name
        );
    }

    // --- The onion-service node is bootstrapped with a circuit.
    let onion = net.onion_node();
    assert_eq!(onion.bootstrap_progress().unwrap(), 100);
    assert_eq!(onion.getinfo("status/circuit-established").unwrap(), "1");
    assert_eq!(onion.getinfo("network-liveness").unwrap(), "up");
    // The authorities recommend the running version.
    wait_for(
        "status/version/current = recommended",
        Duration::from_secs(60),
        || match onion.getinfo("status/version/current") {
            Ok(v) if v == "recommended" => Ok(()),
            Ok(v) => Err(v),
            Err(e) => Err(e.0),
        },
    )
    .unwrap();

    // --- HS_DESC UPLOADED for every service; addresses are 56 base32 characters.
    let services = net.services();
    assert_eq!(services.len(), 2);
    for s in services {
        assert_eq!(s.onion.len(), 56);
        assert!(s
            .onion
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7')));
        assert!(
            net.onion_events().hs_desc_count("UPLOADED", &s.onion) > 0,
            "no upload for {}",
            s.role
        );
    }
    assert_ne!(services[0].onion, services[1].onion);

    // --- A fetch through the onion reaches a server the test runs inside the namespace...
    let token = format!("privnet-self-test-{}", std::process::id());
    let server =
        privnet::StaticServer::start(net.bind_service("source").unwrap(), token.clone()).unwrap();
    let resp = wait_for(
        "HTTP through the source onion",
        Duration::from_secs(180),
        || {
            net.fetch_onion("source", "/", Duration::from_secs(90))
                .map_err(|e| e.to_string())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", net.diagnostics()));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, token);
    drop(server);
    eprintln!(
        "privnet: first onion fetch ok at {:?} after launch",
        net.elapsed()
    );

    // ... and fails when nothing listens behind the service (so the check above can fail).
    match net.fetch_onion("source", "/", Duration::from_secs(60)) {
        Err(FetchError::Socks(code)) => eprintln!("no backend: SOCKS reply 0x{code:02X}"),
        Err(e) => eprintln!("no backend: {e}"),
        Ok(r) => panic!("fetch without a backend succeeded: {}", r.status),
    }
    // A malformed onion address fails too.
    assert!(net
        .http_get_via_client("aaaa.onion", 80, "/", Duration::from_secs(30))
        .is_err());

    // --- Client authorization: without the key tor refuses with 0xF4; with it the fetch works.
    let metrics_token = format!("privnet-metrics-{}", std::process::id());
    let server =
        privnet::StaticServer::start(net.bind_service("metrics").unwrap(), metrics_token.clone())
            .unwrap();
    wait_for(
        "SOCKS 0xF4 (client auth missing)",
        Duration::from_secs(180),
        || match net.fetch_onion("metrics", "/", Duration::from_secs(90)) {
            Err(FetchError::Socks(0xF4)) => Ok(()),
            Err(e) => Err(e.to_string()),
            Ok(r) => panic!("fetch without client auth succeeded: {}", r.status),
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", net.diagnostics()));
    let metrics_onion = net.service("metrics").onion.clone();
    let t_auth = std::time::Instant::now();
    net.add_client_auth(
        "metrics",
        &format!("{metrics_onion}:descriptor:x25519:{client_priv}"),
    )
    .unwrap();
    let resp = wait_for(
        "HTTP through the metrics onion with client auth",
        Duration::from_secs(180),
        || {
            net.fetch_onion("metrics", "/", Duration::from_secs(90))
                .map_err(|e| e.to_string())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", net.diagnostics()));
    assert_eq!(resp.body, metrics_token);
    eprintln!(
        "privnet: fetch with client auth ok {:?} after adding the key",
        t_auth.elapsed()
    );
    drop(server);

    // --- The relay under test is in the consensus with Running and Valid, with accounting on.
    let relay = net.relay_under_test();
    assert_eq!(relay.name, "RelayUnderTest");
    let fpr = relay.fingerprint().unwrap();
    let file = std::fs::read_to_string(relay.fingerprint_file()).unwrap();
    assert_eq!(file.trim(), format!("RelayUnderTest {fpr}"));
    assert_eq!(relay.getinfo("fingerprint").unwrap(), fpr);
    let flags = wait_for(
        "relay under test Running+Valid",
        Duration::from_secs(90),
        || {
            let flags = net.consensus_flags(&fpr).map_err(|e| e.0)?;
            if flags.iter().any(|f| f == "Running") && flags.iter().any(|f| f == "Valid") {
                Ok(flags)
            } else {
                Err(format!("flags {flags:?}"))
            }
        },
    )
    .unwrap();
    eprintln!("relay under test flags: {flags:?}");
    assert_eq!(relay.getinfo("accounting/enabled").unwrap(), "1");
    assert_eq!(relay.getinfo("accounting/hibernating").unwrap(), "awake");

    // --- Restarting the onion node: it bootstraps again and uploads again, and the event
    // recorder follows the new process.
    let before = net.onion_events().hs_desc_count("UPLOADED", &metrics_onion);
    let old_pid = net.onion_node().pid();
    net.restart_node("onion", Duration::from_secs(120)).unwrap();
    assert_ne!(net.onion_node().pid(), old_pid);
    wait_for("uploads after restart", Duration::from_secs(120), || {
        let n = net.onion_events().hs_desc_count("UPLOADED", &metrics_onion);
        if n > before {
            Ok(())
        } else {
            Err(format!("{n} uploads"))
        }
    })
    .unwrap();

    // --- Stopping: every tor and the namespace holder are gone after drop.
    let mut pids: Vec<u32> = net.nodes().iter().filter_map(|n| n.pid()).collect();
    pids.push(net.netns().holder_pid());
    let root = net.root_dir().to_path_buf();
    let t_stop = std::time::Instant::now();
    drop(net);
    eprintln!("privnet: stopped in {:?}", t_stop.elapsed());
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} still exists"
        );
    }
    assert!(!root.exists(), "temp dir {} not removed", root.display());
}

#[test]
fn bootstrap_progress_parser() {
    use privnet::control::bootstrap_progress;
    assert_eq!(
        bootstrap_progress("NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY=\"Done\""),
        Some(100)
    );
    assert_eq!(
        bootstrap_progress("WARN BOOTSTRAP PROGRESS=14 TAG=handshake SUMMARY=\"x\""),
        Some(14)
    );
    assert_eq!(bootstrap_progress("NOTICE BOOTSTRAP TAG=done"), None);
}

#[test]
fn wait_for_times_out_with_the_last_reason() {
    let mut n = 0;
    let e = wait_for(
        "never",
        Duration::from_millis(600),
        || -> Result<(), String> {
            n += 1;
            Err(format!("try {n}"))
        },
    )
    .unwrap_err();
    assert!(e.0.contains("never") && e.0.contains("try"), "{e}");
    assert!((2..10).contains(&n), "{n} polls");
    let v = wait_for("soon", Duration::from_secs(5), || {
        n += 1;
        if n > 12 {
            Ok(n)
        } else {
            Err("not yet".into())
        }
    })
    .unwrap();
    assert!(v > 12);
}

#[test]
fn base32_matches_rfc4648() {
    use privnet::base32;
    assert_eq!(base32(b""), "");
    assert_eq!(base32(b"f"), "MY");
    assert_eq!(base32(b"fo"), "MZXQ");
    assert_eq!(base32(b"foo"), "MZXW6");
    assert_eq!(base32(b"foob"), "MZXW6YQ");
    assert_eq!(base32(b"fooba"), "MZXW6YTB");
    assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    assert_eq!(base32(&[0u8; 32]).len(), 52);
}

#[test]
fn privnet_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<PrivNet>();
}

/// Processes whose command line mentions `needle` (e.g. a network's temp dir).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

/// A network that cannot get ready in time is built twice (one restart), then `start` fails
/// with both diagnoses, and nothing of either attempt is left running or on disk.
#[test]
fn failed_start_is_retried_once_and_cleaned_up() {
    let opts = Options {
        ready_timeout: Duration::from_secs(2),
        ..Options::default()
    };
    let err = match PrivNet::start_with(opts) {
        Ok(_) => panic!("a network became ready within 2 s"),
        Err(e) => e.0,
    };
    assert!(
        err.contains("attempt 1:") && err.contains("attempt 2:"),
        "{err}"
    );
    assert!(!err.contains("attempt 3:"), "{err}");
    let roots: Vec<&str> = err
        .lines()
        .filter_map(|l| l.trim().strip_prefix("files in "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(roots.len(), 2, "{err}");
    assert_ne!(
        roots[0], roots[1],
        "the restart reuses the first attempt's dir"
    );
    let kept = std::env::var(privnet::KEEP_ENV).is_ok_and(|v| v == "1");
    for root in roots {
        let left = processes_mentioning(root);
        assert!(left.is_empty(), "left running: {left:?}");
        if kept {
            // Kept for debugging as asked; this test's dirs are of no use, remove them.
            assert!(std::path::Path::new(root).is_dir(), "{root} not kept");
            std::fs::remove_dir_all(root).unwrap();
        } else {
            assert!(!std::path::Path::new(root).exists(), "{root} left on disk");
        }
    }
}

// ---- Not a test of behaviour: a recorder, run by hand (docs/tor-versions.md). ----
//
// What a tor says on the private network to the control commands the exporter sends, for
// comparing tor versions and for fixtures, once per tor:
//
//     RECORD_TOR_REPLIES=/tmp/replies-0.4.9 cargo test --test privnet_harness record_tor_replies -- --ignored
//     SDTE_TOR=$(scripts/tor-0.4.8.sh) RECORD_TOR_REPLIES=/tmp/replies-0.4.8 \
//         cargo test --test privnet_harness record_tor_replies -- --ignored
//     diff -r /tmp/replies-0.4.9 /tmp/replies-0.4.8
//
// It writes the onion node's and the relay's answers to the exporter's GETINFO and GETCONF
// batches, the first lines of the HS_DESC events the onion node and the client saw, and both
// services' own descriptors (`source`: PoW on; `journalist`: client authorization) with their
// addresses: a throwaway network with throwaway keys. Here rather than in a file of its own, whose
// test binary would cost the suite ~17 s of building.

fn record_write(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// A reply as lines of text: its code and each line (a data reply's body after its line).
fn reply_lines(code: u16, lines: &[String]) -> String {
    let mut out = String::new();
    for l in lines {
        out.push_str(&format!("{code} {l}\n"));
    }
    out
}

fn record_ask(control: &mut privnet::Control, command: &str) -> String {
    match control.command(command) {
        Ok(r) => format!(">>> {command}\n{}", reply_lines(r.code, &r.lines)),
        Err(e) => format!(">>> {command}\nerror: {e}\n"),
    }
}

#[test]
#[ignore = "records tor's replies for docs/tor-versions.md: RECORD_TOR_REPLIES=DIR, by hand"]
fn record_tor_replies() {
    let Some(dir) = std::env::var_os("RECORD_TOR_REPLIES").map(std::path::PathBuf::from) else {
        eprintln!("RECORD_TOR_REPLIES is not set: nothing recorded");
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();

    let (client_pub, _) = privnet::x25519_keypair().expect("x25519 key");
    let mut source = privnet::ServiceSpec::new("source");
    source.extra_torrc = vec!["HiddenServicePoWDefensesEnabled 1".into()];
    let mut journalist = privnet::ServiceSpec::new("journalist");
    journalist.authorized_client = Some(format!("descriptor:x25519:{client_pub}"));
    let net = PrivNet::start_with(Options {
        services: vec![source, journalist],
        ..Options::default()
    })
    .expect("private tor network");
    record_write(&dir, "tor-version", &format!("{}\n", net.tor_version()));

    let mut onion = net
        .onion_node()
        .control()
        .expect("onion node's control port");
    let mut out = record_ask(&mut onion, "PROTOCOLINFO 1");
    out.push_str(&record_ask(
        &mut onion,
        &format!(
            "GETINFO {}",
            securedrop_tor_exporter::source::status::GETINFO_KEYS.join(" ")
        ),
    ));
    out.push_str(&record_ask(&mut onion, "GETCONF HiddenServiceOptions"));
    for k in [
        "status/version/recommended",
        "onions/current",
        "onions/detached",
    ] {
        out.push_str(&record_ask(&mut onion, &format!("GETINFO {k}")));
    }
    record_write(&dir, "onion-node.txt", &out);

    for s in net.services() {
        record_write(
            &dir,
            &format!("{}.onion", s.role),
            &format!("{}\n", s.onion),
        );
        let desc = net
            .onion_node()
            .getinfo(&format!("hs/service/desc/id/{}", s.onion))
            .expect("own descriptor");
        record_write(&dir, &format!("{}.desc", s.role), &desc);
    }

    let mut relay_control = net
        .relay_under_test()
        .control()
        .expect("relay's control port");
    let mut out = record_ask(
        &mut relay_control,
        &format!(
            "GETINFO {}",
            securedrop_tor_exporter::source::status::GETINFO_KEYS.join(" ")
        ),
    );
    out.push_str(&record_ask(
        &mut relay_control,
        &format!(
            "GETINFO {}",
            securedrop_tor_exporter::source::relay::GETINFO_KEYS.join(" ")
        ),
    ));
    out.push_str(&record_ask(
        &mut relay_control,
        &format!(
            "GETCONF {}",
            securedrop_tor_exporter::source::relay::GETCONF_KEYS.join(" ")
        ),
    ));
    let fpr = net.relay_under_test().fingerprint().expect("fingerprint");
    out.push_str(&record_ask(
        &mut relay_control,
        &format!("GETINFO ns/id/{fpr}"),
    ));
    record_write(&dir, "relay.txt", &out);

    // The events' first lines (addresses, fingerprints and blinded keys as they are: a
    // throwaway network).
    for (name, log) in [
        ("events-onion-node.txt", net.onion_events()),
        ("events-client.txt", net.client_events()),
    ] {
        let mut text = String::new();
        for (_, line) in log.snapshot() {
            text.push_str(&line);
            text.push('\n');
        }
        record_write(&dir, name, &text);
    }
    eprintln!("recorded into {}", dir.display());
}
