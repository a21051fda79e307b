//! Onion-service health that survives exporter restarts, on a private Tor network (loopback
//! only): an exporter started while tor runs (after tor's uploads, so it sees none) must show
//! `published 1` within `CHECK_BOUND` (or, when its fetch brings tor's next descriptor, which
//! tor's control port does not show, by tor's next rotation: [`TIME_PERIOD`]) and never `0`
//! before; the descriptor series must show 3
//! introduction points and PoW for the PoW service, and a closed inner layer for the
//! client-authorized one; nothing anywhere may name an onion address.

mod support;

use std::time::{Duration, Instant};

use securedrop_tor_exporter::control::OnionAddress;
use securedrop_tor_exporter::source::onion::CHECK_BOUND;
use securedrop_tor_exporter::{Config, ControlAddress};
use support::exporter::ExporterThread;
use support::log_capture::LogBuffer;
use support::metrics_text::sample;
use support::poll;
use support::privnet::{self, wait_for, Options, PrivNet, ServiceSpec};

fn published(body: &str, role: &str) -> Option<f64> {
    sample(
        body,
        &format!("tor_onion_service_published{{service=\"{role}\"}}"),
    )
}

const ROLES: [&str; 2] = ["source", "journalist"];

/// A time period of this network (24 votes of 10 s): for half of it a client's fetch brings
/// tor's next descriptor, whose maker the exporter can tell only once tor rotates to it or
/// uploads again (METRICS.md, "Published means this tor's descriptor"); `published` stays
/// absent meanwhile, never 0.
const TIME_PERIOD: Duration = Duration::from_secs(240);

/// Starts an exporter and scrapes every 50 ms until both services read `published 1` and the
/// descriptor series are in, failing on any `published 0`. Returns the last body and, per role,
/// how long after start `published 1` first appeared.
fn start_and_watch(config: &Config) -> (ExporterThread, String, Vec<Duration>) {
    let started = Instant::now();
    // On the host's 127.0.0.1 (the control socket is a unix socket, reachable from outside the
    // network namespace).
    let exporter = ExporterThread::start(config.clone());
    let mut first_one: [Option<Duration>; 2] = [None, None];
    let watched = poll::wait_for(
        "published 1 and the descriptor series",
        CHECK_BOUND + TIME_PERIOD + Duration::from_secs(10),
        Duration::from_millis(50),
        || {
            let body = exporter.get("/metrics");
            for (i, role) in ROLES.iter().enumerate() {
                let p = published(&body, role);
                assert_ne!(
                    p,
                    Some(0.0),
                    "{role} read published 0 {:?} after the exporter started, while tor runs with its descriptor published:\n{body}",
                    started.elapsed()
                );
                if p == Some(1.0) && first_one[i].is_none() {
                    first_one[i] = Some(started.elapsed());
                }
            }
            let descriptors_in = sample(
                &body,
                "tor_onion_service_descriptor_introduction_points{service=\"source\"}",
            )
            .is_some()
                && sample(
                    &body,
                    "tor_onion_service_descriptor_inner_layer_readable{service=\"journalist\"}",
                )
                .is_some();
            if first_one.iter().all(Option::is_some) && descriptors_in {
                Ok(body)
            } else {
                Err(body)
            }
        },
    );
    match watched {
        Ok(body) => (
            exporter,
            body,
            first_one.iter().flatten().copied().collect(),
        ),
        Err(e) => panic!(
            "published 1 / descriptor series not within {CHECK_BOUND:?} + {TIME_PERIOD:?} (+10 s): {first_one:?}\n{}",
            e.last
        ),
    }
}

#[test]
fn onion_health_across_exporter_restarts() {
    let logs = LogBuffer::install();

    let (client_pub, _) = privnet::x25519_keypair().expect("x25519 key");
    let mut source = ServiceSpec::new("source");
    source.extra_torrc = vec!["HiddenServicePoWDefensesEnabled 1".into()];
    let mut journalist = ServiceSpec::new("journalist");
    journalist.authorized_client = Some(format!("descriptor:x25519:{client_pub}"));
    let net = PrivNet::start_with(Options {
        services: vec![source, journalist],
        ..Options::default()
    })
    .expect("private tor network");
    let addresses = net.onion_addresses();

    let node = net.onion_node();
    let mut c = Config::default();
    c.tor.control_address = ControlAddress::Unix(node.control_socket.clone());
    c.tor.cookie_file = Some(node.cookie_file.clone());
    c.tor.refresh_interval = Duration::from_millis(500);
    c.tor.max_backoff = Duration::from_secs(1);
    for s in net.services() {
        c.onion_services
            .0
            .insert(s.role.clone(), OnionAddress::new(&s.onion).unwrap());
    }
    // A valid address that nobody publishes (the ed25519 base point as its key): the check
    // must be able to say 0, or its 1s would prove nothing.
    let mut key = [0x66u8; 32];
    key[0] = 0x58;
    let ghost = OnionAddress::from_public_key(&key);
    c.onion_services.0.insert("ghost".into(), ghost.clone());

    // tor uploaded before any exporter existed (the harness waits for it): the exporter can
    // only learn "published" by asking. Then a second exporter, as after a package upgrade.
    let mut times = Vec::new();
    let mut bodies = Vec::new();
    let mut pages = Vec::new();
    for round in 0..2 {
        let started = Instant::now();
        let (exporter, body, t) = start_and_watch(&c);
        eprintln!("exporter start {round}: published 1 after {t:?} (source, journalist)");
        times.push(t);
        let mut last = String::new();
        wait_for(
            "published 0 for the unpublished address",
            CHECK_BOUND,
            || {
                last = exporter.get("/metrics");
                match published(&last, "ghost") {
                    Some(0.0) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .unwrap_or_else(|e| panic!("{e:?}\n{last}"));
        eprintln!(
            "exporter start {round}: the unpublished address read 0 after {:?}",
            started.elapsed()
        );
        let page = exporter.get("/");
        for want in [
            ">source<",
            ">journalist<",
            "on, suggested effort 0",
            "not readable (client authorization)",
        ] {
            assert!(page.contains(want), "the status page lacks {want}:\n{page}");
        }
        pages.push(page);
        bodies.push(body);
        drop(exporter);
    }
    for body in &bodies {
        let v = |s: &str| sample(body, s);
        assert_eq!(
            v("tor_onion_service_descriptor_introduction_points{service=\"source\"}"),
            Some(3.0),
            "{body}"
        );
        assert_eq!(
            v("tor_onion_service_descriptor_inner_layer_readable{service=\"source\"}"),
            Some(1.0)
        );
        assert_eq!(
            v("tor_onion_service_pow_enabled{service=\"source\"}"),
            Some(1.0)
        );
        assert_eq!(
            v("tor_onion_service_pow_suggested_effort{service=\"source\"}"),
            Some(0.0),
            "idle: effort 0"
        );
        assert_eq!(
            v("tor_onion_service_descriptor_inner_layer_readable{service=\"journalist\"}"),
            Some(0.0),
            "client auth: the inner layer stays closed\n{body}"
        );
        for absent in [
            "tor_onion_service_descriptor_introduction_points{service=\"journalist\"}",
            "tor_onion_service_pow_suggested_effort{service=\"journalist\"}",
            // One of two services has PoW: which one tor's configuration does not say.
            "tor_onion_service_pow_enabled{service=\"journalist\"}",
        ] {
            assert_eq!(
                v(absent),
                None,
                "{absent} must be absent, not guessed:\n{body}"
            );
        }
        assert_eq!(
            v("tor_exporter_control_errors_total{kind=\"parse\"}"),
            Some(0.0),
            "{body}"
        );
    }

    let log = logs.text();
    assert!(
        log.contains("listening for onion-service descriptor events"),
        "the log capture works"
    );
    let logged = |what: &str, role: &str| {
        log.lines().any(|l| {
            // the role in the text itself (only the text reaches syslog and OSSEC)
            l.contains(&format!("onion service {role}: its {what}"))
                && l.contains(&format!("service={role}"))
        })
    };
    for role in ROLES {
        assert!(
            logged("descriptor is published", role),
            "no log line says {role} is published:\n{log}"
        );
    }
    assert!(logged("descriptor is not published", "ghost"), "{log}");
    for a in addresses
        .iter()
        .chain(std::iter::once(&ghost.expose().to_owned()))
    {
        for (what, text) in bodies
            .iter()
            .map(|b| ("/metrics", b))
            .chain(pages.iter().map(|p| ("/", p)))
            .chain(std::iter::once(("the log", &log)))
        {
            assert!(
                !text.contains(a.as_str()),
                "{what} contains an onion address"
            );
        }
    }
    eprintln!(
        "published-1 delays: {times:?}; bound {CHECK_BOUND:?} (+ {TIME_PERIOD:?} when undecided)"
    );
    drop(net);
}
