//! The accept loops and their connection tables: each connection watched and ended by the rules
//! of [`super::connection_policy`].
//!
//! Two doors, each with its own slots, so that crowding one never costs the other a connection:
//! the loopback TCP port (the admin's `curl`, local scrapers; any local account can reach it) and
//! the onion's unix socket (only tor can connect: systemd makes it owned by debian-tor, mode
//! 0600, in tor's own 0700 folder). Whatever any account does on the loopback port, tor's
//! connections for the client-authorized onion service never wait for a slot held there.
//!
//! Kernel memory per connection is capped ([`SOCKET_BUFFER_BYTES`]): without a cap, a client that
//! pipelines requests and never reads lets the kernel grow the send queue to `tcp_wmem`'s
//! maximum (megabytes per connection), charged to the unit's `MemoryMax`. A connection ended by
//! a rule (shed, a deadline) is reset, so its unread responses are freed at once instead of
//! lingering in the kernel after close.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{watch, Notify};

use super::connection_policy::{self, ConnState, Limits, Reason};
use super::routes::Routes;
use crate::log_limit::{LogLimit, EVERY_MINUTE};

/// hyper's smallest allowed read buffer, which bounds the request head.
const MAX_HEAD_BYTES: usize = 8192;

/// Slots for open connections on the loopback port. When all are taken a new connection still
/// gets in, and the one that has shown least gives way (see `connection_policy`).
pub const LOOPBACK_SLOTS: usize = 256;
/// Slots on the onion's socket: only tor connects there, one connection per scrape through the
/// onion service (a stream each), so a few cover several Prometheus servers and the admin's curl.
pub const ONION_SLOTS: usize = 16;
/// The send and receive buffer each connection asks the kernel for (`SO_SNDBUF`, `SO_RCVBUF`;
/// Linux doubles it for its bookkeeping). It also turns off the kernel's autotuning of these
/// buffers. Kernel memory per connection is then about four times this plus one packet; a
/// response larger than the buffer is written as the client reads, as before.
/// docs/packaging.md has the worst case under the unit's `MemoryMax=`.
pub const SOCKET_BUFFER_BYTES: usize = 8 * 1024;
/// A response write may wait this long for the client to read.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served on one connection before it is closed (a week of scrapes at 60 s).
pub const MAX_REQUESTS_PER_CONNECTION: u64 = 10_000;
/// Connections shed by the accept loop before it lets their tasks close them.
const SHED_PER_YIELD: usize = 32;
/// How often deadlines are checked.
const SWEEP_EVERY: Duration = Duration::from_millis(100);

/// What an accept loop logs, each at most once a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Cause {
    Accept,
    Refused,
    Shed,
}

/// A door: how it is named in log lines and how many connections it holds.
#[derive(Debug, Clone, Copy)]
struct Door {
    name: &'static str,
    slots: usize,
}

const LOOPBACK: Door = Door {
    name: "loopback port",
    slots: LOOPBACK_SLOTS,
};
const ONION: Door = Door {
    name: "onion socket",
    slots: ONION_SLOTS,
};

/// A listening socket of either kind, seen by the accept loop alike.
trait Incoming: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + AsFd + Unpin + Send + 'static;
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<Self::Stream>>;
    /// TCP_NODELAY where it means something (a scrape's answer goes out at once).
    fn tune(_stream: &Self::Stream) {}
}

impl Incoming for TcpListener {
    type Stream = TcpStream;
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<TcpStream>> {
        TcpListener::poll_accept(self, cx).map_ok(|(s, _)| s)
    }
    fn tune(stream: &TcpStream) {
        let _ = stream.set_nodelay(true);
    }
}

impl Incoming for UnixListener {
    type Stream = UnixStream;
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<UnixStream>> {
        UnixListener::poll_accept(self, cx).map_ok(|(s, _)| s)
    }
}

/// Caps a socket's kernel buffers (see [`SOCKET_BUFFER_BYTES`]). On a listening TCP socket this
/// also sets what its connections start with, before their first byte.
fn cap_buffers(socket: &impl AsFd) {
    let s = socket2::SockRef::from(socket);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
}

/// Every open connection's state and the handle that ends it.
#[derive(Default)]
struct Table {
    next_id: u64,
    conns: HashMap<u64, Entry>,
}

struct Entry {
    state: ConnState,
    kill: Arc<Notify>,
    /// Set once it has been told to go (it is then neither counted nor shed again).
    ending: Option<Reason>,
}

#[derive(Clone, Default)]
struct Connections(Arc<Mutex<Table>>);

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update<T: Default>(&self, id: u64, f: impl FnOnce(&mut ConnState) -> T) -> T {
        match self.lock().conns.get_mut(&id) {
            Some(e) => f(&mut e.state),
            None => T::default(),
        }
    }

    /// Registers a new connection, shedding another if every slot is taken. None: no room
    /// even so (every slot busy handling a request, twice over), and the new one is dropped.
    fn admit(&self, now: Instant, slots: usize) -> Option<(u64, Arc<Notify>, bool)> {
        let mut t = self.lock();
        let live = t.conns.values().filter(|e| e.ending.is_none()).count();
        let mut shed_one = false;
        if live >= slots {
            let victim = connection_policy::shed(
                t.conns
                    .iter()
                    .filter(|(_, e)| e.ending.is_none())
                    .map(|(k, e)| (*k, &e.state)),
            );
            let total = t.conns.len();
            match victim.and_then(|v| t.conns.get_mut(&v)) {
                Some(e) => {
                    e.ending = Some(Reason::Shed);
                    e.kill.notify_one();
                    shed_one = true;
                }
                None if total >= 2 * slots => return None,
                None => {}
            }
        }
        let id = t.next_id;
        t.next_id += 1;
        let kill = Arc::new(Notify::new());
        t.conns.insert(
            id,
            Entry {
                state: ConnState::new(now),
                kill: kill.clone(),
                ending: None,
            },
        );
        Some((id, kill, shed_one))
    }

    /// Ends every connection that has outlived a rule.
    fn sweep(&self, now: Instant, limits: &Limits) {
        for e in self.lock().conns.values_mut() {
            if e.ending.is_none() {
                if let Some(r) = e.state.expired(now, limits) {
                    e.ending = Some(r);
                    e.kill.notify_one();
                }
            }
        }
    }

    fn remove(&self, id: u64) {
        self.lock().conns.remove(&id);
    }
}

/// Removes a connection's entry however its task ends.
struct Registered {
    conns: Connections,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.conns.remove(self.id);
    }
}

/// The socket, reporting reads and stalled writes to the connection's state.
struct Tracked<S: AsFd> {
    io: S,
    id: u64,
    conns: Connections,
    /// Set when a rule ends the connection: it is then reset on close (`SO_LINGER` 0), which
    /// frees its queued, unread responses at once. A connection that ends normally closes
    /// normally, so its last response is not cut off.
    reset: Arc<AtomicBool>,
}

impl<S: AsFd> Drop for Tracked<S> {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed) {
            let _ = socket2::SockRef::from(&self.io).set_linger(Some(Duration::ZERO));
        }
    }
}

impl<S: AsyncRead + AsFd + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conns.update(self.id, |c| c.on_read(Instant::now()));
        }
        r
    }
}

impl<S: AsFd> Tracked<S> {
    fn note_write<T>(&self, r: &Poll<T>) {
        let blocked = r.is_pending();
        self.conns
            .update(self.id, |c| c.on_write(Instant::now(), blocked));
    }
}

impl<S: AsyncWrite + AsFd + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.note_write(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.note_write(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.note_write(&r);
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Serves until `shutdown` turns true, then gives open connections a moment to finish: on the
/// loopback port and, when given, on the onion's unix socket, each with its own slots.
///
/// hyper's own header-read timeout is off: it also runs while a keep-alive connection idles, and
/// would close Prometheus' connection between scrapes. `connection_policy` keeps the two apart.
pub async fn serve(
    loopback: TcpListener,
    onion: Option<UnixListener>,
    app: Routes,
    limits: Limits,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    cap_buffers(&loopback);
    let graceful = Arc::new(GracefulShutdown::new());
    let onion_door = onion.map(|l| {
        tokio::spawn(accept_loop(
            l,
            ONION,
            app.clone(),
            limits,
            graceful.clone(),
            shutdown.clone(),
        ))
    });
    accept_loop(loopback, LOOPBACK, app, limits, graceful.clone(), shutdown).await;
    if let Some(door) = onion_door {
        let _ = door.await;
    }
    // Both loops have ended and dropped their handles' clones: take the one left.
    let graceful = Arc::into_inner(graceful).expect("accept loops have ended");
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
    }
    Ok(())
}

/// Accepts on one door until `shutdown`, each connection served under its rules.
async fn accept_loop<L: Incoming>(
    listener: L,
    door: Door,
    app: Routes,
    limits: Limits,
    graceful: Arc<GracefulShutdown>,
    mut shutdown: watch::Receiver<bool>,
) {
    let conns = Connections::default();
    let sweeper = {
        let conns = conns.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                conns.sweep(Instant::now(), &limits);
            }
        })
    };
    let mut shed_since_yield = 0;
    // Any local account can make these happen thousands of times a second on the loopback port:
    // one line per cause per minute, with the count, and never the peer's address (there is
    // nothing to tell about loopback peers but a port number). Worded without "failed"/"error",
    // which OSSEC's base rules mail: crowding is worth a look in the journal, not a mail per
    // minute.
    let mut log_limit = LogLimit::new(EVERY_MINUTE);
    let name = door.name;
    let slots = door.slots;
    loop {
        let stream = tokio::select! {
            r = std::future::poll_fn(|cx| listener.poll_accept(cx)) => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    if let Some(more) = log_limit.event(Cause::Accept, Instant::now()) {
                        // The errno, not the OS's text: that says "os error N", and only the
                        // message reaches OSSEC (see above).
                        let errno = e.raw_os_error().unwrap_or(0);
                        tracing::warn!(
                            kind = ?e.kind(),
                            "could not accept a connection on the {name} (errno {errno}); {more} more like it in the last minute"
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = crate::shutdown::stopped(&mut shutdown) => break,
        };
        let Some((id, kill, shed_one)) = conns.admit(Instant::now(), slots) else {
            if let Some(more) = log_limit.event(Cause::Refused, Instant::now()) {
                tracing::warn!(
                    "every connection slot of the {name} is busy serving a request: a new connection was closed unserved ({more} more in the last minute); a local process may be crowding it"
                );
            }
            continue;
        };
        if shed_one {
            if let Some(more) = log_limit.event(Cause::Shed, Instant::now()) {
                tracing::warn!(
                    "all {slots} connection slots of the {name} taken: the idlest connection was closed to make room ({more} more in the last minute); a local process may be crowding it"
                );
            }
        }
        L::tune(&stream);
        cap_buffers(&stream);
        let reset = Arc::new(AtomicBool::new(false));
        let io = Tracked {
            io: stream,
            id,
            conns: conns.clone(),
            reset: reset.clone(),
        };
        let service = {
            let conns = conns.clone();
            let app = app.clone();
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let last = conns.update(id, |c| {
                    c.on_request(Instant::now());
                    c.budget_spent(&limits)
                });
                let app = app.clone();
                let conns = conns.clone();
                async move {
                    // Back of the queue before each request: a client that pipelines hundreds
                    // of requests is otherwise answered many at a time per poll of its task
                    // (up to tokio's budget), and 200 such clients keep the accept loop, and
                    // so a new scrape's connection, waiting behind tens of thousands of
                    // responses on the one runtime thread.
                    tokio::task::yield_now().await;
                    let mut response = Ok::<_, std::convert::Infallible>(app.respond(&req));
                    conns.update(id, |c| c.on_handled(Instant::now()));
                    if last {
                        // hyper closes the connection once this response is written
                        if let Ok(r) = &mut response {
                            r.headers_mut().insert(
                                hyper::header::CONNECTION,
                                hyper::header::HeaderValue::from_static("close"),
                            );
                        }
                    }
                    response
                }
            })
        };
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_buf_size(MAX_HEAD_BYTES)
            .serve_connection(TokioIo::new(io), service);
        let conn = graceful.watch(conn);
        let registered = Registered {
            conns: conns.clone(),
            id,
        };
        tokio::spawn(async move {
            let _registered = registered;
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => reset.store(true, Ordering::Relaxed),
            }
        });
        if shed_one {
            shed_since_yield += 1;
            if shed_since_yield == SHED_PER_YIELD {
                // Let the shed connections' tasks run and close their sockets, so a burst of
                // connections cannot pile up file descriptors; not after every one, or a
                // backlog of connections (a scrape's among them) would be accepted one per
                // round of every other connection's turn.
                shed_since_yield = 0;
                tokio::task::yield_now().await;
            }
        }
    }
    drop(listener);
    sweeper.abort();
}
