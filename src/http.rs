//! The HTTP side: `/metrics`, a landing page, and nothing else.
//!
//! hyper's connection builder is used directly (not `axum::serve`) because it exposes what keeps
//! a slow or idle client from starving scrapes: a header-read timeout, a bounded header buffer,
//! and a cap on open connections.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::metrics::{Format, render};

/// Open connections at most; each idle one is closed after the header-read timeout.
const MAX_CONNECTIONS: usize = 64;
/// hyper's smallest allowed read buffer, which bounds the request head.
const MAX_HEAD_BYTES: usize = 8192;

const LANDING: &str = "<!DOCTYPE html>\n<html><head><title>securedrop-tor-exporter</title></head>\n<body><h1>securedrop-tor-exporter</h1>\n<p><a href=\"/metrics\">Metrics</a></p></body></html>\n";

pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/", get(|| async { Html(LANDING) }))
        .fallback(|| async { (StatusCode::NOT_FOUND, "Not Found\n") })
        .with_state(registry)
}

async fn metrics(State(registry): State<Arc<Registry>>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let body = render(&registry, format);
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

/// Serves until `shutdown` turns true, then gives open connections a moment to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("semaphore is never closed"),
            _ = crate::stopped(&mut shutdown) => break,
        };
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = crate::stopped(&mut shutdown) => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .max_buf_size(MAX_HEAD_BYTES)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
    }
    Ok(())
}
