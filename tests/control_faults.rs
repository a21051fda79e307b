//! Fault tests of the control client and of the whole exporter against a fake tor control peer
//! (tests/support/fake_peer.rs): refused authentication, error replies, EOF mid-reply, silence,
//! garbage, endless lines, events before replies, a peer that cannot prove it knows the cookie —
//! and, over a whole `run()` session, that nothing but allow-listed verbs ever reaches the peer.
//!
//! Normal operation is tested against a real tor (tests/real_tor.rs, tests/privnet_*.rs); this
//! peer only produces what a real tor will not produce on demand. No sleeps for synchronisation:
//! conditions are polled with deadlines.
//!
//! Tests that assert on time or race a timeout run on a paused tokio clock (`start_paused`):
//! the peer, the client and the exporter are tasks of the test's own runtime, so the clock moves
//! only when all of them wait, straight to the next timer; the times they assert are exact, not
//! what a loaded machine allows. Tests that time blocking system calls or a bound on work done
//! (the FIFO cookie, the endless line) stay on the wall clock.

#[path = "fixtures/read_only_verbs.rs"]
mod spec;
mod support;

use std::path::PathBuf;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use securedrop_tor_exporter::Config;
use securedrop_tor_exporter::control::reply::ParseError;
use securedrop_tor_exporter::control::{Command, ConnectOptions, Connection, ControlError, Limits};
use securedrop_tor_exporter::snapshot::ErrorKind;
use securedrop_tor_exporter::source::status::GETINFO_KEYS;
use support::exporter::ExporterTask;
use support::fake_peer::{self, Action, FakePeer};
use support::metrics_text::sample;
use support::poll::eventually;

const T: Duration = Duration::from_millis(400);

fn batch() -> Command {
    Command::get_info(GETINFO_KEYS.iter().copied()).unwrap()
}

/// Names of threads that panicked. `#[tokio::test]` runs a current-thread runtime on the test's
/// own thread, so a panic in any task the test (or `run()`) spawned is recorded under the test's
/// name — even where a JoinSet would swallow it.
static PANICKED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = std::thread::current().name().unwrap_or("?").to_owned();
            PANICKED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(name);
            previous(info);
        }));
    });
}

fn assert_no_panic_on_this_thread() {
    let me = std::thread::current().name().unwrap_or("?").to_owned();
    let panicked = PANICKED.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        !panicked.contains(&me),
        "a task of this test panicked (see stderr)"
    );
}

/// Awaits a client call, failing the test (instead of hanging it) if it takes over 5 s: a client
/// without its timeouts must fail here, not stall the suite.
async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("the client call did not finish within 5 s")
}

async fn connected(peer: &FakePeer) -> Connection {
    within(Connection::connect(&peer.options(T)))
        .await
        .expect("honest handshake")
}

// ---------------------------------------------------------------------------------------------
// The honest peer, as a baseline: every fault test below differs from it in one way.

#[tokio::test]
async fn baseline_honest_peer_answers_the_batch() {
    let peer = FakePeer::honest();
    let mut conn = connected(&peer).await;
    assert_eq!(conn.tor_version(), Some(fake_peer::FAKE_TOR_VERSION));
    let reply = within(conn.request_ok(&batch())).await.unwrap();
    assert_eq!(reply.lines.len(), GETINFO_KEYS.len() + 1);
    let verbs: Vec<String> = peer.received().into_iter().map(|r| r.verb).collect();
    assert_eq!(
        verbs,
        ["PROTOCOLINFO", "AUTHCHALLENGE", "AUTHENTICATE", "GETINFO"],
        "SAFECOOKIE is preferred when offered"
    );
}

// ---------------------------------------------------------------------------------------------
// Authentication faults

#[tokio::test]
async fn authentication_refused_with_515() {
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "AUTHENTICATE" => Action::SendClose(
            b"515 Authentication failed: Safe cookie response did not match expected value.\r\n"
                .to_vec(),
        ),
        _ => honest,
    });
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    assert!(matches!(err, ControlError::Auth(_)), "{err:?}");
    assert_eq!(ErrorKind::of(&err).as_str(), "auth");
    let msg = err.to_string();
    assert!(msg.contains("515"), "{msg}");
    // The error names neither the cookie nor what was derived from it.
    let auth_line = peer
        .received()
        .into_iter()
        .find(|r| r.verb == "AUTHENTICATE")
        .unwrap();
    let sent_secret = auth_line.line.split(' ').nth(1).unwrap().to_owned();
    assert!(!msg.contains(&sent_secret));
    assert!(
        !msg.to_uppercase()
            .contains(&hex::encode_upper(peer.cookie()))
    );
}

#[tokio::test]
async fn safecookie_with_a_wrong_server_hash_is_refused_before_authenticating() {
    // A process squatting on the socket path does not know the cookie, so its server hash is
    // wrong. The client must notice and reveal nothing derived from the cookie.
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "AUTHCHALLENGE" => Action::Send(
            format!(
                "250 AUTHCHALLENGE SERVERHASH={} SERVERNONCE={}\r\n",
                "AB".repeat(32),
                "CD".repeat(32)
            )
            .into_bytes(),
        ),
        _ => honest,
    });
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    assert!(matches!(err, ControlError::Auth(_)), "{err:?}");
    assert!(err.to_string().contains("server hash"), "{err}");
    assert_eq!(
        peer.count("AUTHENTICATE"),
        0,
        "the client sent AUTHENTICATE after a bad server hash"
    );
}

#[tokio::test]
async fn safecookie_hash_from_another_cookie_is_refused() {
    // A correctly formed hash, computed with the wrong cookie (e.g. a stale cookie file).
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "AUTHCHALLENGE" => {
            let client_nonce = hex::decode(req.line.split(' ').nth(2).unwrap()).unwrap();
            let server_nonce = [7u8; 32];
            let hash = fake_peer::hmac256(
                b"Tor safe cookie authentication server-to-controller hash",
                &[&[0u8; 32], &client_nonce, &server_nonce],
            );
            Action::Send(
                format!(
                    "250 AUTHCHALLENGE SERVERHASH={} SERVERNONCE={}\r\n",
                    hex::encode_upper(hash),
                    hex::encode_upper(server_nonce)
                )
                .into_bytes(),
            )
        }
        _ => honest,
    });
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    assert!(matches!(err, ControlError::Auth(_)), "{err:?}");
    assert_eq!(peer.count("AUTHENTICATE"), 0);
}

#[tokio::test]
async fn no_usable_authentication_method() {
    let peer = FakePeer::offering("METHODS=HASHEDPASSWORD");
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    assert_eq!(ErrorKind::of(&err).as_str(), "auth", "{err:?}");
    assert_eq!(
        peer.count("AUTHENTICATE"),
        0,
        "no guessing without a password"
    );
}

#[tokio::test]
async fn cookie_file_of_the_wrong_length_is_refused() {
    let peer = FakePeer::honest();
    let short = peer.dir().join("short_cookie");
    std::fs::write(&short, [1u8; 31]).unwrap();
    let mut opts = peer.options(T);
    opts.cookie_file = Some(short);
    let err = within(Connection::connect(&opts)).await.unwrap_err();
    assert_eq!(ErrorKind::of(&err).as_str(), "auth", "{err:?}");
    assert_eq!(peer.count("AUTHENTICATE"), 0);
}

/// A squatter that offers only plain COOKIE (to be handed the cookie itself) gets nothing.
#[tokio::test]
async fn a_cookie_only_peer_is_refused_and_never_gets_the_cookie() {
    let peer = FakePeer::offering("METHODS=COOKIE COOKIEFILE=\"/run/tor/control.authcookie\"");
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    assert_eq!(ErrorKind::of(&err).as_str(), "auth", "{err:?}");
    assert!(err.to_string().contains("SAFECOOKIE"), "{err}");
    assert_eq!(peer.count("AUTHENTICATE"), 0);
    assert!(
        !peer
            .received()
            .iter()
            .any(|r| r.line.contains(&hex::encode(peer.cookie()))),
        "the cookie went out"
    );
}

/// The cookie path the peer names is never opened: here it names a FIFO, which would block the
/// exporter's only thread; the exporter reads the cookie beside the socket instead.
#[tokio::test]
async fn the_cookie_path_tor_names_is_not_trusted() {
    let fifo_dir = tempfile::tempdir().unwrap();
    let fifo = fifo_dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let announced = fifo.display().to_string();
    let peer = FakePeer::offering(&format!("METHODS=SAFECOOKIE COOKIEFILE=\"{announced}\""));
    within(Connection::connect(&peer.options(T)))
        .await
        .expect("authenticated with the cookie beside the socket");
}

/// A FIFO or a device as cookie or password file is refused at once, never read. On the wall
/// clock: "at once" is about blocking system calls, which a paused tokio clock does not see.
#[tokio::test]
async fn fifo_cookie_and_dev_zero_password_are_refused_without_blocking() {
    let peer = FakePeer::honest();
    let fifo = peer.dir().join("cookie-fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let mut opts = peer.options(T);
    opts.cookie_file = Some(fifo);
    let started = Instant::now();
    let err = within(Connection::connect(&opts)).await.unwrap_err();
    assert!(started.elapsed() < T, "took {:?}", started.elapsed());
    assert!(err.to_string().contains("not a regular file"), "{err}");

    let password_peer = FakePeer::offering("METHODS=HASHEDPASSWORD");
    let mut opts = password_peer.options(T);
    opts.password_file = Some("/dev/zero".into());
    let err = within(Connection::connect(&opts)).await.unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert_eq!(password_peer.count("AUTHENTICATE"), 0);
}

/// A squatter on a TCP control address that answers PROTOCOLINFO with `auth` (what follows
/// `250-AUTH `) and records every line it is sent until the client goes quiet for 2 s.
fn tcp_squatter(
    auth: &'static str,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<String>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
    let squatter = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let (r, mut w) = s.into_split();
        let mut lines = BufReader::new(r).lines();
        let mut got = Vec::new();
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_secs(2), lines.next_line()).await
        {
            if line.starts_with("PROTOCOLINFO") {
                let answer = format!("250-PROTOCOLINFO 1\r\n250-AUTH {auth}\r\n250 OK\r\n");
                w.write_all(answer.as_bytes()).await.unwrap();
            } else {
                // Anything else gets tor's "yes": a believing client would go on to GETINFO.
                w.write_all(b"250 OK\r\n").await.unwrap();
            }
            got.push(line);
        }
        got
    });
    (addr, squatter)
}

fn tcp_options(addr: std::net::SocketAddr, password_file: Option<PathBuf>) -> ConnectOptions {
    ConnectOptions {
        address: securedrop_tor_exporter::ControlAddress::Tcp(addr),
        timeout: T,
        cookie_file: None,
        password_file,
        limits: Limits::default(),
    }
}

/// Over TCP anyone may have bound the port: the password is never sent there.
#[tokio::test]
async fn a_password_is_never_sent_over_tcp() {
    let (addr, squatter) = tcp_squatter("METHODS=HASHEDPASSWORD");
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "hunter2\n").unwrap();
    let err = within(Connection::connect(&tcp_options(addr, Some(password))))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("refusing to send the control password"),
        "{err}"
    );
    let got = squatter.await.unwrap();
    assert!(
        got.iter()
            .all(|l| !l.contains("hunter2") && !l.starts_with("AUTHENTICATE")),
        "{got:?}"
    );
}

/// Over TCP a squatter that asks for no authentication proves nothing: believed, it could say
/// tor is up and bootstrapped while tor is down. The client refuses it before asking anything.
#[tokio::test]
async fn a_null_auth_peer_over_tcp_is_refused_and_asked_nothing() {
    let (addr, squatter) = tcp_squatter("METHODS=NULL");
    let err = within(Connection::connect(&tcp_options(addr, None)))
        .await
        .unwrap_err();
    assert_eq!(ErrorKind::of(&err).as_str(), "auth", "{err:?}");
    assert!(
        err.to_string()
            .contains("asks for no authentication over TCP"),
        "{err}"
    );
    let got = squatter.await.unwrap();
    assert!(
        got.iter().all(|l| l.starts_with("PROTOCOLINFO")),
        "the client went past PROTOCOLINFO: {got:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Reply faults after a successful handshake

#[tokio::test]
async fn error_replies_to_getinfo_are_refusals_and_keep_the_stream_in_step() {
    let peer = FakePeer::start(|req, honest| match (req.verb.as_str(), req.nth) {
        ("GETINFO", 0) => Action::Send(b"552 Unrecognized key \"version\"\r\n".to_vec()),
        ("GETINFO", 1) => Action::Send(b"551 Internal error\r\n".to_vec()),
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    for want in [552, 551] {
        let err = within(conn.request_ok(&batch())).await.unwrap_err();
        match &err {
            ControlError::Refused { verb, status, .. } => {
                assert_eq!((*verb, *status), ("GETINFO", want));
            }
            other => panic!("expected Refused, got {other:?}"),
        }
        assert_eq!(ErrorKind::of(&err).as_str(), "refused");
    }
    // The same connection still pairs the next reply with the next request.
    let reply = within(conn.request_ok(&batch())).await.unwrap();
    assert!(reply.lines[0].text.starts_with("version="));
}

#[tokio::test]
async fn eof_in_the_middle_of_a_reply() {
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "GETINFO" => {
            let whole = honest.bytes();
            Action::SendClose(whole[..whole.len() / 2].to_vec())
        }
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    let err = within(conn.request(&batch())).await.unwrap_err();
    assert!(matches!(err, ControlError::Closed), "{err:?}");
    assert_eq!(ErrorKind::of(&err).as_str(), "connection");
}

#[tokio::test]
async fn eof_in_the_middle_of_a_data_block() {
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "GETINFO" => Action::SendClose(b"250+config-text=\r\nSocksPort 0\r\n".to_vec()),
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    let err = within(conn.request(&batch())).await.unwrap_err();
    assert!(matches!(err, ControlError::Closed), "{err:?}");
}

#[tokio::test]
async fn eof_during_the_handshake() {
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "PROTOCOLINFO" => Action::SendClose(b"250-PROTOCOLINFO 1\r\n".to_vec()),
        _ => honest,
    });
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    assert!(matches!(err, ControlError::Closed), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_never_answers_times_out_within_the_timeout() {
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "GETINFO" => Action::Hang,
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    let started = tokio::time::Instant::now();
    let err = within(conn.request(&batch())).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ControlError::Timeout(t) if t == T), "{err:?}");
    assert_eq!(ErrorKind::of(&err).as_str(), "timeout");
    assert!(took >= T, "gave up early: {took:?}");
    assert!(took < T + Duration::from_millis(500), "took {took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_never_answers_the_handshake_times_out() {
    let peer = FakePeer::start(|_, _| Action::Hang);
    let started = tokio::time::Instant::now();
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ControlError::Timeout(_)), "{err:?}");
    assert!(took < T + Duration::from_millis(500), "took {took:?}");
    assert_eq!(peer.count("PROTOCOLINFO"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_mid_reply_times_out() {
    // Half a reply, then silence: a tor frozen (SIGSTOP) while writing.
    let peer = FakePeer::start(|req, honest| match (req.verb.as_str(), req.nth) {
        ("GETINFO", 0) => Action::Send(b"250-version=0.4.9.11\r\n250-upti".to_vec()),
        ("GETINFO", _) => Action::Hang,
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    let started = tokio::time::Instant::now();
    let err = within(conn.request(&batch())).await.unwrap_err();
    assert!(matches!(err, ControlError::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < T + Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_drips_bytes_is_cut_off_by_the_timeout() {
    // One byte every T/4: no single read waits T, but the ≈400-byte reply would take ≈40 s.
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "GETINFO" => Action::Drip(honest.bytes(), T / 4),
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    let started = tokio::time::Instant::now();
    let err = within(conn.request(&batch())).await.unwrap_err();
    assert!(matches!(err, ControlError::Timeout(_)), "{err:?}");
    assert!(
        started.elapsed() < T + Duration::from_millis(500),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_peer_that_hangs_up_at_once() {
    let peer = FakePeer::start(|_, _| Action::SendClose(Vec::new()));
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    assert_eq!(ErrorKind::of(&err).as_str(), "connection", "{err:?}");
}

#[tokio::test]
async fn no_socket_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = FakePeer::honest().options(T);
    opts.address = securedrop_tor_exporter::ControlAddress::Unix(dir.path().join("absent"));
    let err = within(Connection::connect(&opts)).await.unwrap_err();
    assert_eq!(ErrorKind::of(&err).as_str(), "connect", "{err:?}");
}

#[tokio::test]
async fn garbage_instead_of_a_reply() {
    let cases: &[&[u8]] = &[
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n",
        b"250 \xff\xfe\r\n",
        b"250-a=1\r\n251 OK\r\n",
        b"25\r\n",
        b"250*OK\r\n",
    ];
    for (i, garbage) in cases.iter().enumerate() {
        let g = garbage.to_vec();
        let peer = FakePeer::start(move |req, honest| match req.verb.as_str() {
            "GETINFO" => Action::Send(g.clone()),
            _ => honest,
        });
        let mut conn = connected(&peer).await;
        let err = within(conn.request(&batch())).await.unwrap_err();
        assert!(
            matches!(err, ControlError::Protocol(_)),
            "case {i}: {err:?}"
        );
        assert_eq!(ErrorKind::of(&err).as_str(), "protocol");
        // A broken stream stays broken; the connection must be dropped, not reused.
        let again = within(conn.request(&batch())).await.unwrap_err();
        assert!(
            matches!(again, ControlError::Protocol(_)),
            "case {i} reused: {again:?}"
        );
    }
}

#[tokio::test]
async fn garbage_instead_of_the_handshake() {
    let peer = FakePeer::start(|_, _| Action::Send(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()));
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ControlError::Protocol(ParseError::BadLine)),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_endless_line_is_a_protocol_error_with_bounded_reads() {
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "GETINFO" => Action::Endless(b"250-version=".to_vec()),
        _ => honest,
    });
    let limits = Limits {
        max_line: 4096,
        ..Limits::default()
    };
    let mut opts = peer.options(T);
    opts.limits = limits;
    let mut conn = within(Connection::connect(&opts)).await.unwrap();
    let started = Instant::now();
    let err = within(conn.request(&batch())).await.unwrap_err();
    assert!(
        matches!(err, ControlError::Protocol(ParseError::LineTooLong(4096))),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(conn);
    // Once the client hung up, the peer's writes fail: it got nowhere near the cap, so the client
    // stopped reading early rather than draining the stream into memory.
    let p = &peer;
    assert!(
        eventually(Duration::from_secs(2), || async move { p.closed() >= 1 }).await,
        "the peer's endless write never failed"
    );
    assert!(
        peer.endless_sent() < fake_peer::ENDLESS_CAP / 4,
        "peer wrote {} bytes",
        peer.endless_sent()
    );
}

#[tokio::test]
async fn an_endless_reply_is_a_protocol_error() {
    // Valid lines, but the reply never ends.
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "GETINFO" => {
            let mut b = Vec::new();
            for i in 0..10_000 {
                b.extend_from_slice(format!("250-key{i}=value\r\n").as_bytes());
            }
            Action::Send(b)
        }
        _ => honest,
    });
    let mut opts = peer.options(T);
    opts.limits = Limits {
        max_message: 16 * 1024,
        max_lines: 100_000,
        ..Limits::default()
    };
    let mut conn = within(Connection::connect(&opts)).await.unwrap();
    let err = within(conn.request(&batch())).await.unwrap_err();
    assert!(
        matches!(
            err,
            ControlError::Protocol(ParseError::MessageTooLarge(16384))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn events_before_a_reply_are_queued_not_taken_for_the_reply() {
    let peer = FakePeer::start(|req, honest| match (req.verb.as_str(), req.nth) {
        ("GETINFO", 0) => {
            // A one-line event, a multi-line event and a data event, then the reply, and an
            // event right behind it in the same write.
            let mut b = b"650 STATUS_CLIENT NOTICE CIRCUIT_ESTABLISHED\r\n\
                650-NS\r\n650+NS\r\nr x y\r\n.\r\n650 OK\r\n\
                650 HS_DESC REQUESTED x NO_AUTH $AAAA~relay 0\r\n"
                .to_vec();
            b.extend_from_slice(&honest.bytes());
            b.extend_from_slice(b"650 STATUS_GENERAL NOTICE CLOCK_JUMPED TIME=1\r\n");
            Action::Send(b)
        }
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    let reply = within(conn.request_ok(&batch())).await.unwrap();
    assert_eq!(reply.status(), 250);
    assert_eq!(
        reply.lines[0].text,
        format!("version={}", fake_peer::FAKE_TOR_VERSION)
    );
    assert_eq!(reply.lines.len(), GETINFO_KEYS.len() + 1);
    // The trailing event sits in the parser; the next request must skip it too.
    let second = within(conn.request_ok(&batch())).await.unwrap();
    assert_eq!(second.lines.len(), GETINFO_KEYS.len() + 1);
    // All four events come out in order, without touching the socket.
    let mut texts = Vec::new();
    for _ in 0..4 {
        let ev = tokio::time::timeout(Duration::from_millis(200), conn.next_event())
            .await
            .expect("queued events are returned at once")
            .unwrap();
        assert!(ev.is_event());
        texts.push(ev.lines[0].text.clone());
    }
    assert_eq!(
        texts,
        [
            "STATUS_CLIENT NOTICE CIRCUIT_ESTABLISHED",
            "NS",
            "HS_DESC REQUESTED x NO_AUTH $AAAA~relay 0",
            "STATUS_GENERAL NOTICE CLOCK_JUMPED TIME=1",
        ]
    );
    assert_eq!(conn.dropped_events(), 0);
}

#[tokio::test]
async fn an_event_flood_is_bounded() {
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "GETINFO" => {
            let mut b = b"650 STATUS_CLIENT NOTICE X\r\n".repeat(3000);
            b.extend_from_slice(&honest.bytes());
            Action::Send(b)
        }
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    within(conn.request_ok(&batch())).await.unwrap();
    assert!(
        conn.dropped_events() >= 3000 - 1024,
        "{}",
        conn.dropped_events()
    );
}

/// Large events are bounded by bytes, not only by count: 40 events of 200 KiB would be 8 MB.
#[tokio::test(start_paused = true)]
async fn a_flood_of_large_events_is_bounded_in_bytes() {
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "GETINFO" => {
            let mut one = b"650-STATUS_CLIENT NOTICE X\r\n".to_vec();
            for _ in 0..200 {
                one.extend_from_slice(b"650-");
                one.extend_from_slice(&[b'x'; 1020]);
                one.extend_from_slice(b"\r\n");
            }
            one.extend_from_slice(b"650 END\r\n");
            let mut b = one.repeat(40);
            b.extend_from_slice(&honest.bytes());
            Action::Send(b)
        }
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    within(conn.request_ok(&batch())).await.unwrap();
    assert!(
        conn.queued_event_bytes()
            <= securedrop_tor_exporter::control::client::MAX_QUEUED_EVENT_BYTES,
        "{}",
        conn.queued_event_bytes()
    );
    assert!(conn.dropped_events() >= 30, "{}", conn.dropped_events());
}

// ---------------------------------------------------------------------------------------------
// The whole exporter, through `run()`

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
    assert!(
        peer.received()
            .iter()
            .any(|r| r.line.contains("traffic/read"))
    );
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
    let dir = tempfile::tempdir().unwrap();
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
    let dir = tempfile::tempdir().unwrap();
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

// `published` and a previous tor's descriptor

/// The recorded descriptors of a service restarted on the private network (see
/// src/source/descriptor.rs): the first tor's, fetched back from an HSDir after the restart, and
/// the restarted tor's own.
const RESTART_ONION: &str = include_str!("fixtures/descriptors/restart.onion");
const RESTART_FETCHED: &str = include_str!("fixtures/descriptors/restart-fetched.desc");
const RESTART_NEW_OWN: &str = include_str!("fixtures/descriptors/restart-new-own.desc");

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
    config
        .onion_services
        .0
        .insert("source".into(), RESTART_ONION.trim().into());
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
