//! Fault tests of the control client and of the whole exporter against a fake tor control peer
//! (tests/support/fake_peer.rs): refused authentication, error replies, EOF mid-reply, silence,
//! garbage, endless lines, events before replies, a peer that cannot prove it knows the cookie —
//! and, over a whole `run()` session, that nothing but allow-listed verbs ever reaches the peer.
//!
//! One file per subject: `auth.rs` (authentication faults), `replies.rs` (reply faults after a
//! successful handshake), `whole_exporter.rs` (the whole exporter through `run()`, and the
//! allow-list of verbs), `published.rs` (`published` and a previous tor's descriptor); the
//! baseline and the helpers they share are here.
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

#[path = "../fixtures/read_only_verbs.rs"]
mod spec;
#[path = "../support/mod.rs"]
mod support;

mod auth;
mod published;
mod replies;
mod whole_exporter;

use std::path::PathBuf;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use securedrop_tor_exporter::control::reply::ParseError;
use securedrop_tor_exporter::control::{Command, ConnectOptions, Connection, ControlError, Limits};
use securedrop_tor_exporter::snapshot::ErrorKind;
use securedrop_tor_exporter::source::status::GETINFO_KEYS;
use securedrop_tor_exporter::Config;
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
