//! The accept loop and the connection table: each connection watched and ended by the rules of
//! [`super::connection_policy`].

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use super::connection_policy::{self, ConnState, Limits, Reason};
use crate::log_limit::{EVERY_MINUTE, LogLimit};

/// hyper's smallest allowed read buffer, which bounds the request head.
const MAX_HEAD_BYTES: usize = 8192;

/// Slots for open connections. When all are taken a new connection still gets in, and the one
/// that has shown least gives way (see `connection_policy`).
const MAX_CONNECTIONS: usize = 256;
/// A response write may wait this long for the client to read.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served on one connection before it is closed (a week of scrapes at 60 s).
pub const MAX_REQUESTS_PER_CONNECTION: u64 = 10_000;
/// Connections shed by the accept loop before it lets their tasks close them.
const SHED_PER_YIELD: usize = 32;
/// How often deadlines are checked.
const SWEEP_EVERY: Duration = Duration::from_millis(100);

/// What the accept loop logs, each at most once a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Cause {
    Accept,
    Refused,
    Shed,
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
    fn admit(&self, now: Instant) -> Option<(u64, Arc<Notify>, bool)> {
        let mut t = self.lock();
        let live = t.conns.values().filter(|e| e.ending.is_none()).count();
        let mut shed_one = false;
        if live >= MAX_CONNECTIONS {
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
                None if total >= 2 * MAX_CONNECTIONS => return None,
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
struct Tracked {
    io: TcpStream,
    id: u64,
    conns: Connections,
}

impl AsyncRead for Tracked {
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

impl Tracked {
    fn note_write<T>(&self, r: &Poll<T>) {
        let blocked = r.is_pending();
        self.conns
            .update(self.id, |c| c.on_write(Instant::now(), blocked));
    }
}

impl AsyncWrite for Tracked {
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

/// Serves until `shutdown` turns true, then gives open connections a moment to finish.
///
/// hyper's own header-read timeout is off: it also runs while a keep-alive connection idles, and
/// would close Prometheus' connection between scrapes. `connection_policy` keeps the two apart.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
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
    // Any local account can make these happen thousands of times a second: one line per cause
    // per minute, with the count, and never the peer's address (there is nothing to tell about
    // loopback peers but a port number). Worded without "failed"/"error", which OSSEC's base
    // rules mail: crowding is worth a look in the journal, not a mail per minute.
    let mut log_limit = LogLimit::new(EVERY_MINUTE);
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    if let Some(more) = log_limit.event(Cause::Accept, Instant::now()) {
                        // The errno, not the OS's text: that says "os error N", and only the
                        // message reaches OSSEC (see above).
                        let errno = e.raw_os_error().unwrap_or(0);
                        tracing::warn!(
                            kind = ?e.kind(),
                            "could not accept a connection (errno {errno}); {more} more like it in the last minute"
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = crate::shutdown::stopped(&mut shutdown) => break,
        };
        let Some((id, kill, shed_one)) = conns.admit(Instant::now()) else {
            if let Some(more) = log_limit.event(Cause::Refused, Instant::now()) {
                tracing::warn!(
                    "every connection slot is busy serving a request: a new connection was closed unserved ({more} more in the last minute); a local process may be crowding the port"
                );
            }
            continue;
        };
        if shed_one {
            if let Some(more) = log_limit.event(Cause::Shed, Instant::now()) {
                tracing::warn!(
                    "all {MAX_CONNECTIONS} connection slots taken: the idlest connection was closed to make room ({more} more in the last minute); a local process may be crowding the port"
                );
            }
        }
        let _ = stream.set_nodelay(true);
        let io = Tracked {
            io: stream,
            id,
            conns: conns.clone(),
        };
        let service = {
            let conns = conns.clone();
            let app = app.clone();
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let last = conns.update(id, |c| {
                    c.on_request(Instant::now());
                    c.budget_spent(&limits)
                });
                let mut app = app.clone();
                let conns = conns.clone();
                async move {
                    // Back of the queue before each request: a client that pipelines hundreds
                    // of requests is otherwise answered many at a time per poll of its task
                    // (up to tokio's budget), and 200 such clients keep the accept loop, and
                    // so a new scrape's connection, waiting behind tens of thousands of
                    // responses on the one runtime thread.
                    tokio::task::yield_now().await;
                    let mut response = tower::Service::call(&mut app, req).await;
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
                _ = kill.notified() => {}
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
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
    }
    sweeper.abort();
    Ok(())
}
