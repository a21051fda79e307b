//! The floor for bench/scrape.sh: a bare hyper server that answers `GET /metrics` with a fixed
//! body.
//!
//! Usage: `bench-floor LISTEN_ADDR BODY_FILE CONTENT_TYPE`
//!
//! It runs the same way the exporter does (tokio current_thread runtime, hyper's HTTP/1 server
//! connection through hyper-util's `TokioIo`, TCP_NODELAY, a `Response<String>`, no framework)
//! but does no work per request beyond handing out the same bytes, so the gap between it and the
//! exporter is what the exporter itself costs per scrape. Other paths get 404, other methods than
//! GET and HEAD 405, as from the exporter.

use std::convert::Infallible;
use std::net::SocketAddr;

use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(body_file), Some(content_type), None) =
        (args.next(), args.next(), args.next(), args.next())
    else {
        eprintln!("usage: bench-floor LISTEN_ADDR BODY_FILE CONTENT_TYPE");
        std::process::exit(2);
    };
    let addr: SocketAddr = addr.parse().unwrap_or_else(|e| {
        eprintln!("bench-floor: bad address {addr}: {e}");
        std::process::exit(2);
    });
    if !addr.ip().is_loopback() {
        eprintln!("bench-floor: refusing to listen outside loopback ({addr})");
        std::process::exit(2);
    }
    let body = std::fs::read_to_string(&body_file).unwrap_or_else(|e| {
        eprintln!("bench-floor: cannot read {body_file} as UTF-8 text: {e}");
        std::process::exit(2);
    });
    let content_type = HeaderValue::from_str(&content_type).unwrap_or_else(|e| {
        eprintln!("bench-floor: bad content type {content_type:?}: {e}");
        std::process::exit(2);
    });
    // Leaked once: every connection's service borrows them for the life of the process.
    let body: &'static str = Box::leak(body.into_boxed_str());
    let content_type: &'static HeaderValue = Box::leak(Box::new(content_type));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| {
                eprintln!("bench-floor: cannot listen on {addr}: {e}");
                std::process::exit(1);
            });
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            };
            let _ = stream.set_nodelay(true);
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                std::future::ready(Ok::<_, Infallible>(respond(&req, body, content_type)))
            });
            // The exporter's connection settings that change what a scrape costs: none beyond
            // hyper's defaults (its header-read timeout is off, so is the floor's: no timer).
            let conn = hyper::server::conn::http1::Builder::new()
                .header_read_timeout(None)
                .serve_connection(TokioIo::new(stream), service);
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
}

/// The fixed answer: the body (a copy per request, as the exporter renders a fresh `String` for
/// each) at `/metrics`, 404 elsewhere, 405 for methods other than GET and HEAD.
fn respond<B>(req: &Request<B>, body: &str, content_type: &HeaderValue) -> Response<String> {
    let mut r = Response::new(String::new());
    if req.uri().path() != "/metrics" {
        *r.status_mut() = StatusCode::NOT_FOUND;
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET,HEAD"));
    } else {
        *r.body_mut() = body.to_owned();
        r.headers_mut().insert(CONTENT_TYPE, content_type.clone());
    }
    r
}
