//! The exporter's `run()` in the test process, two ways: on its own thread and current-thread
//! runtime, as in production, for blocking tests ([`ExporterThread`]); or as a task on the
//! test's own runtime ([`ExporterTask`]), so that a panic in any of its tasks is recorded under
//! the test's thread and a paused tokio clock governs it too. Both serve on 127.0.0.1.

use std::net::SocketAddr;
use std::time::Duration;

use securedrop_tor_exporter::{run, Config, RunError};

use crate::support::http::{self, Response};
use crate::support::poll;

/// How long a stopped exporter may take to return from `run()`.
const STOP_WITHIN: Duration = Duration::from_secs(5);

/// `run()` on its own thread; stopped and joined when dropped.
pub struct ExporterThread {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ExporterThread {
    /// On a fresh port of the host's 127.0.0.1.
    pub fn start(config: Config) -> ExporterThread {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        ExporterThread::start_on(listener, config)
    }

    /// On a listener the test bound (e.g. inside the private network's namespace).
    pub fn start_on(listener: std::net::TcpListener, config: Config) -> ExporterThread {
        ExporterThread::start_on_both(listener, None, config)
    }

    /// On a loopback listener and, when given, a unix listener for the onion service (as the
    /// package's socket unit passes both).
    pub fn start_on_both(
        listener: std::net::TcpListener,
        onion: Option<std::os::unix::net::UnixListener>,
        config: Config,
    ) -> ExporterThread {
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        if let Some(o) = &onion {
            o.set_nonblocking(true).unwrap();
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listeners = securedrop_tor_exporter::Listeners {
                    loopback: tokio::net::TcpListener::from_std(listener).unwrap(),
                    onion: onion.map(|o| tokio::net::UnixListener::from_std(o).unwrap()),
                };
                run(listeners, config, async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
            });
        });
        ExporterThread {
            addr,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The body of `GET path` from the host; panics unless it answered 200 within 5 s.
    pub fn get(&self, path: &str) -> String {
        let r = http::get(self.addr, path, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.body
    }
}

impl Drop for ExporterThread {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `run()` as a task on the test's runtime. Stop it with [`ExporterTask::stop`], which checks
/// that `run()` returned `Ok`.
pub struct ExporterTask {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), RunError>>,
}

impl ExporterTask {
    pub async fn start(config: Config) -> ExporterTask {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(listener, config, async {
            let _ = rx.await;
        }));
        ExporterTask {
            addr,
            stop: Some(tx),
            task,
        }
    }

    /// `GET path` with extra request headers.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        http::get_async(self.addr, path, headers)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// The body of `GET /metrics`; panics unless it answered 200.
    pub async fn metrics(&self) -> String {
        let r = self.get("/metrics", &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }

    /// Scrapes every 10 ms until `pred` holds on the text or `limit` passes; whether it held,
    /// and the last text.
    pub async fn metrics_until(
        &self,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> (bool, String) {
        let pred = &pred;
        let check = move || async move {
            let text = self.metrics().await;
            if pred(&text) {
                Ok(text)
            } else {
                Err(text)
            }
        };
        match poll::wait_for_async("metrics", limit, Duration::from_millis(10), check).await {
            Ok(text) => (true, text),
            Err(e) => (false, e.last),
        }
    }

    /// Asks `run()` to stop; panics unless it returned `Ok` within 5 s.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let r = tokio::time::timeout(STOP_WITHIN, &mut self.task)
            .await
            .expect("run() returns after shutdown")
            .expect("run() did not panic");
        r.expect("run() returned an error");
    }
}
