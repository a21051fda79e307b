//! A local account cannot take `/metrics` down: floods of idle, half-sent, slow and non-reading
//! connections on loopback, each with a scraper beside it whose every scrape must answer within
//! 1 s; and the keep-alive that Prometheus needs (a served connection outlives the header
//! timeout) next to the deadlines that stop the floods. All sockets are on 127.0.0.1; every
//! flood is bounded in count and time and ends with its test.
//!
//! The onion service's own door, a unix socket with slots of its own, is measured the same way
//! while the loopback port is flooded; and the kernel's send queues stay within the per-socket
//! cap however many clients pipeline without reading.
//!
//! The timings are on the wall clock: the exporter runs on a thread and runtime of its own and
//! the floods are blocking sockets on the test's thread, so what is timed is real I/O between
//! threads, which a paused tokio clock would not govern.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use securedrop_tor_exporter::http::{
    LOOPBACK_SLOTS, MAX_REQUESTS_PER_CONNECTION, SOCKET_BUFFER_BYTES,
};
use securedrop_tor_exporter::{Config, ControlAddress};
use support::exporter::ExporterThread;
use support::http;
use support::log_capture::LogBuffer;

/// The exporter's log in this test binary (installed once).
fn logs() -> &'static LogBuffer {
    static LOGS: std::sync::OnceLock<LogBuffer> = std::sync::OnceLock::new();
    LOGS.get_or_init(LogBuffer::install)
}

/// One scenario at a time: each test measures its own flood beside its own scraper, and the test
/// harness would otherwise run all five floods at once, each timing the others' load.
static ONE_SCENARIO_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_scenario_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    // A failed (panicked) scenario poisons the lock; the next one may still run.
    ONE_SCENARIO_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The exporter on its own thread and runtime, as in production (one thread); tor is absent,
/// which changes nothing for the HTTP side.
fn exporter(header_read_timeout: Duration, idle_timeout: Duration) -> ExporterThread {
    let mut config = Config::default();
    config.tor.control_address = ControlAddress::Unix("/nonexistent/control".into());
    config.tor.timeout = Duration::from_millis(200);
    config.web.header_read_timeout = header_read_timeout;
    config.web.idle_timeout = idle_timeout;
    ExporterThread::start(config)
}

const REQUEST: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// One scrape on a new connection, as Prometheus makes after its connection was closed.
/// Returns how long it took; panics unless it got the metrics.
fn scrape(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let r = http::get(addr, "/metrics", Duration::from_secs(5)).unwrap();
    assert!(
        r.status == 200 && r.body.contains("tor_exporter_build_info"),
        "{r:?}"
    );
    started.elapsed()
}

/// 30 scrapes one after another while a flood holds its sockets; every one within 1 s.
fn scrapes_stay_fast(addr: SocketAddr, what: &str) {
    let mut times: Vec<Duration> = (0..30).map(|_| scrape(addr)).collect();
    times.sort();
    let worst = *times.last().unwrap();
    eprintln!(
        "{what}: median {:?}, worst {worst:?} over {} scrapes",
        times[times.len() / 2],
        times.len()
    );
    assert!(
        worst < Duration::from_secs(1),
        "{what}: a scrape took {worst:?}"
    );
}

/// Lets this process hold a few thousand sockets (the floods plus the server's side).
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < 4096 {
            lim.rlim_cur = lim.rlim_max.min(4096);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn connect_many(addr: SocketAddr, n: usize, first_bytes: &[u8]) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| {
            let mut s = TcpStream::connect(addr).ok()?;
            if !first_bytes.is_empty() {
                let _ = s.write_all(first_bytes);
            }
            Some(s)
        })
        .collect()
}

#[test]
fn a_thousand_idle_connections_never_delay_a_scrape() {
    let _scenario = one_scenario_at_a_time();
    raise_fd_limit();
    let logged_before = logs().text().len();
    let e = exporter(Duration::from_secs(5), Duration::from_secs(600));
    let flood = connect_many(e.addr(), 1000, b"");
    assert!(flood.len() >= 990, "only {} connections", flood.len());
    scrapes_stay_fast(e.addr(), "1000 idle connections");
    // Hundreds of connections were shed: one line says so (at most one a minute), with no
    // address in it.
    let text = logs().text();
    let shed: Vec<&str> = text[logged_before..]
        .lines()
        .filter(|l| l.contains("connection slots of the loopback port taken"))
        .collect();
    assert_eq!(shed.len(), 1, "{shed:#?}");
    assert!(
        !shed[0].contains("127.0.0.1") && shed[0].contains("the idlest connection was closed"),
        "{}",
        shed[0]
    );
}

#[test]
fn a_thousand_half_sent_requests_never_delay_a_scrape() {
    let _scenario = one_scenario_at_a_time();
    raise_fd_limit();
    let e = exporter(Duration::from_secs(5), Duration::from_secs(600));
    let flood = connect_many(e.addr(), 1000, b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
    assert!(flood.len() >= 990, "only {} connections", flood.len());
    scrapes_stay_fast(e.addr(), "1000 half-sent heads");
}

#[test]
fn pipelining_clients_that_never_read_never_delay_a_scrape() {
    let _scenario = one_scenario_at_a_time();
    raise_fd_limit();
    let e = exporter(Duration::from_secs(5), Duration::from_secs(600));
    // Each asks for 200 responses (some 800 KB) and reads none: more than the socket buffers
    // hold, so the server's writes stall.
    let pipelined = REQUEST.repeat(200);
    let flood = connect_many(e.addr(), 1000, &pipelined);
    assert!(flood.len() >= 990, "only {} connections", flood.len());
    scrapes_stay_fast(e.addr(), "1000 non-reading pipeliners");
}

#[test]
fn slowloris_connections_never_delay_a_scrape_and_are_cut_at_the_header_timeout() {
    let _scenario = one_scenario_at_a_time();
    raise_fd_limit();
    let e = exporter(Duration::from_secs(1), Duration::from_secs(600));
    let mut flood = connect_many(e.addr(), 300, b"GET /metrics HTTP/1.1\r\n");
    // One more header byte every 200 ms from each, for 2 s (twice the header timeout).
    let until = Instant::now() + Duration::from_secs(2);
    let mut rounds = 0;
    while Instant::now() < until && rounds < 10 {
        for s in flood.iter_mut() {
            let _ = s.write_all(b"X");
        }
        scrape(e.addr());
        // Pacing of the slowloris itself (the scenario), not a wait for anything.
        std::thread::sleep(Duration::from_millis(200));
        rounds += 1;
    }
    scrapes_stay_fast(e.addr(), "300 slowloris connections");
    // Past the header timeout, the server has closed them: a read sees EOF or a reset.
    let mut closed = 0;
    for s in flood.iter_mut().take(20) {
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut b = [0u8; 64];
        if matches!(s.read(&mut b), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert_eq!(closed, 20, "slowloris connections left open");
}

/// Prometheus' keep-alive connection survives idling longer than the header timeout; an idle
/// connection that was served is closed at the idle timeout, one that never sent a byte at the
/// header timeout.
#[test]
fn a_served_connection_may_idle_past_the_header_timeout_until_the_idle_timeout() {
    let _scenario = one_scenario_at_a_time();
    let header = Duration::from_secs(1);
    let idle = Duration::from_secs(3);
    let e = exporter(header, idle);

    let mut b = [0u8; 16];
    let silent_started = Instant::now();
    let mut silent = TcpStream::connect(e.addr()).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(matches!(silent.read(&mut b), Ok(0) | Err(_)));
    let waited = silent_started.elapsed();
    assert!(
        waited >= header && waited < header + Duration::from_secs(2),
        "silent connection closed after {waited:?}"
    );

    let mut s = TcpStream::connect(e.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    let mut first = response(&mut s);
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // Idle for twice the header timeout, then ask again on the same connection.
    // The idle time is what is under test here, not a wait for a condition.
    std::thread::sleep(2 * header);
    let asked = Instant::now();
    first = response(&mut s);
    assert!(first.starts_with("HTTP/1.1 200"), "second request: {first}");
    // Then it idles out, at the idle timeout (not before, and not much after).
    assert!(matches!(s.read(&mut b), Ok(0) | Err(_)));
    let idled = asked.elapsed();
    assert!(
        idled >= idle && idled < idle + Duration::from_secs(2),
        "closed after {idled:?}"
    );
}

/// Sends one keep-alive request and reads exactly its response (by Content-Length).
fn response(s: &mut TcpStream) -> String {
    s.write_all(REQUEST).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .expect("content-length");
            if buf.len() >= end + 4 + len {
                return text.into_owned();
            }
        }
    }
}

/// The budget's last response says `Connection: close`, and then the server closes: a client
/// (Prometheus) sends its next scrape on a new connection instead of losing it to the close.
#[test]
fn the_last_response_of_a_connections_budget_says_connection_close() {
    let _scenario = one_scenario_at_a_time();
    let e = exporter(Duration::from_secs(5), Duration::from_secs(600));
    let n = usize::try_from(MAX_REQUESTS_PER_CONNECTION).unwrap();
    let mut s = TcpStream::connect(e.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    // Exactly the budget, pipelined from a second thread (the responses are read meanwhile):
    // nothing is left unread when the server closes, so it ends with a FIN, not a reset.
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&REQUEST.repeat(n)));
    let mut got = Vec::new();
    s.read_to_end(&mut got)
        .expect("the server closes the connection after its budget");
    writer.join().unwrap().unwrap();
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    let heads: Vec<&str> = text
        .split("http/1.1 ")
        .skip(1)
        .map(|r| r.split("\r\n\r\n").next().unwrap())
        .collect();
    assert_eq!(heads.len(), n, "every request of the budget is answered");
    assert!(heads.iter().all(|h| h.starts_with("200 ok")));
    let closing: Vec<usize> = (0..n)
        .filter(|&i| heads[i].contains("\r\nconnection: close"))
        .collect();
    assert_eq!(
        closing,
        [n - 1],
        "only the last response says Connection: close"
    );
}

/// The exporter with both doors: a loopback port and an onion socket in a fresh folder.
fn exporter_with_onion(dir: &Path) -> (ExporterThread, std::path::PathBuf) {
    let mut config = Config::default();
    config.tor.control_address = ControlAddress::Unix("/nonexistent/control".into());
    config.tor.timeout = Duration::from_millis(200);
    let path = dir.join("onion.sock");
    let onion = UnixListener::bind(&path).unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (
        ExporterThread::start_on_both(tcp, Some(onion), config),
        path,
    )
}

/// One scrape through the onion socket, as tor makes it for a scrape through the onion service.
fn scrape_onion(path: &Path) -> Duration {
    let started = Instant::now();
    let mut s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x.onion\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let r = http::parse(&raw).unwrap();
    assert!(
        r.status == 200 && r.body.contains("tor_exporter_build_info"),
        "{r:?}"
    );
    started.elapsed()
}

/// Whatever any local account does on the loopback port, scrapes through the onion socket get a
/// slot at once: all 256 loopback slots are held (and being shed) by idle connections and by
/// pipeliners that never read, and every one of 30 scrapes on the onion socket answers within
/// 1 s; the log names the loopback port for the sheds, never the onion socket.
#[test]
fn a_flood_on_the_loopback_port_never_reaches_the_onion_socket() {
    let _scenario = one_scenario_at_a_time();
    raise_fd_limit();
    let logged_before = logs().text().len();
    let dir = support::temp_dir::tempdir().unwrap();
    let (e, onion) = exporter_with_onion(dir.path());
    let quiet: Vec<Duration> = (0..10).map(|_| scrape_onion(&onion)).collect();
    let idle = connect_many(e.addr(), 600, b"");
    let pipelined = connect_many(e.addr(), 600, &REQUEST.repeat(200));
    assert!(idle.len() + pipelined.len() >= 1180);
    let mut times: Vec<Duration> = (0..30).map(|_| scrape_onion(&onion)).collect();
    times.sort();
    let worst = *times.last().unwrap();
    eprintln!(
        "onion socket beside a 1200-connection loopback flood: median {:?}, worst {worst:?} (quiet: worst {:?})",
        times[times.len() / 2],
        quiet.iter().max().unwrap()
    );
    assert!(worst < Duration::from_secs(1), "a scrape took {worst:?}");
    let text = logs().text();
    let sheds: Vec<&str> = text[logged_before..]
        .lines()
        .filter(|l| l.contains("connection slots of the"))
        .collect();
    assert!(
        sheds.iter().any(|l| l.contains("of the loopback port")),
        "{sheds:#?}"
    );
    assert!(
        !sheds.iter().any(|l| l.contains("onion socket")),
        "{sheds:#?}"
    );
}

/// The exporter's side of its TCP connections as `/proc/net/tcp` lists them: for each socket
/// whose local port is `port`, the bytes in its send queue (`tx_queue`).
fn send_queues(port: u16) -> Vec<usize> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            // state 0A is the listening socket itself
            if local_port != port || f.get(3)? == &"0A" {
                return None;
            }
            let tx = f.get(4)?.split(':').next()?;
            usize::from_str_radix(tx, 16).ok()
        })
        .collect()
}

/// Kernel memory per connection is capped: 600 clients each pipeline 200 requests (some 800 KB
/// of responses) and never read. Without the cap the kernel grows each send queue towards
/// `tcp_wmem`'s maximum (megabytes per connection, all charged to the unit's `MemoryMax`);
/// with it, every send queue the exporter holds stays within the doubled buffer it asked for,
/// and the sum within the slots' worth, at every look over 5 s (a bound held, not a wait).
#[test]
fn send_queues_of_clients_that_never_read_stay_within_the_cap() {
    let _scenario = one_scenario_at_a_time();
    raise_fd_limit();
    let e = exporter(Duration::from_secs(5), Duration::from_secs(600));
    let flood = connect_many(e.addr(), 600, &REQUEST.repeat(200));
    assert!(flood.len() >= 590, "only {} connections", flood.len());
    let per_socket = 2 * SOCKET_BUFFER_BYTES;
    // Loopback's packets are up to 64 KiB: the kernel may queue one more past the limit.
    let slack = 64 * 1024;
    let until = Instant::now() + Duration::from_secs(5);
    let mut looks = 0;
    let (mut most, mut worst_total) = (0, 0);
    while Instant::now() < until && looks < 100 {
        let q = send_queues(e.port());
        most = most.max(q.iter().copied().max().unwrap_or(0));
        worst_total = worst_total.max(q.iter().sum::<usize>());
        assert!(
            most <= per_socket + slack,
            "a send queue holds {most} bytes (cap {per_socket})"
        );
        assert!(
            worst_total <= 2 * LOOPBACK_SLOTS * (per_socket + slack),
            "send queues hold {worst_total} bytes in all"
        );
        looks += 1;
        // The interval between two looks at the bound, not a wait for a condition.
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        most > 0,
        "the flood never filled a send queue: the check saw nothing"
    );
    eprintln!(
        "600 non-reading pipeliners: largest send queue {most} bytes, largest total {worst_total} bytes over {looks} looks"
    );
    scrapes_stay_fast(e.addr(), "600 non-reading pipeliners, capped buffers");
}
