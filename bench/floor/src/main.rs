//! The floor for bench/scrape.sh: a bare axum server that answers `GET /metrics` with a fixed body.
//!
//! Usage: `bench-floor LISTEN_ADDR BODY_FILE CONTENT_TYPE`
//!
//! It runs the same way the exporter does (tokio current_thread runtime, axum over hyper's HTTP/1,
//! TCP_NODELAY) but does no work per request beyond handing out the same bytes, so the gap between
//! it and the exporter is what the exporter itself costs per scrape.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::routing::get;
use axum::serve::ListenerExt as _;

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
    let body = Bytes::from(std::fs::read(&body_file).unwrap_or_else(|e| {
        eprintln!("bench-floor: cannot read {body_file}: {e}");
        std::process::exit(2);
    }));
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let body = body.clone();
            let ct = content_type.clone();
            async move { ([(header::CONTENT_TYPE, ct)], body) }
        }),
    );
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
            })
            .tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
        axum::serve(listener, app).await.expect("serve");
    });
}
