//! What the server answers: `/metrics` (format by `Accept`), the status page at `/`, the health
//! judgements as text at `/health` (what `recover` reads), 404 else. All read the last snapshot
//! only; a request never reaches tor.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::metrics::{Format, render};
use crate::snapshot::Shared;

/// The status page may only show itself: no script runs, nothing is loaded from anywhere (its one
/// style sheet is inline), no page may frame it, and it is never cached.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn router(registry: Arc<Registry>, shared: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route(
            "/health",
            get({
                let shared = shared.clone();
                move || health(shared.clone())
            }),
        )
        .route("/", get(move || status_page(shared.clone())))
        .fallback(|| async { (StatusCode::NOT_FOUND, "Not Found\n") })
        .with_state(registry)
}

/// `/`: the status page, rendered from the last snapshot (a request never reaches tor).
async fn status_page(shared: Shared) -> Response {
    let body = crate::page::render(
        &shared.get(),
        crate::clock::now_unix(),
        env!("CARGO_PKG_VERSION"),
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(body),
    )
        .into_response()
}

/// `/health`: [`crate::health::report`] of the last snapshot.
async fn health(shared: Shared) -> Response {
    let body = crate::health::report(&shared.get().health, crate::clock::now_unix());
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn metrics(State(registry): State<Arc<Registry>>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let body = render(&registry, format);
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}
