//! What the server answers: `/metrics` (format by `Accept`), the status page at `/`, the health
//! judgements as text at `/health` (what `recover` reads), 404 else. All read the last snapshot
//! only; a request never reaches tor.
//!
//! Three fixed paths, all `GET` (and `HEAD`), need no router: a `match` on the path is the whole
//! of it, so the crate serves them over hyper directly rather than pull in a web framework (and
//! its dozen crates) for it.

use std::sync::Arc;

use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::registry::Registry;

use crate::metrics::{render, Format};
use crate::snapshot::Shared;

/// The status page may only show itself: no script runs, nothing is loaded from anywhere (its one
/// style sheet is inline), no page may frame it, and it is never cached.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The routes and what they read; cheap to clone (one per connection).
#[derive(Clone)]
pub struct Routes {
    registry: Arc<Registry>,
    shared: Shared,
}

pub fn router(registry: Arc<Registry>, shared: Shared) -> Routes {
    Routes { registry, shared }
}

impl Routes {
    /// The answer to one request. Only the method, path and `Accept` are read; the body never.
    pub fn respond<B>(&self, req: &Request<B>) -> Response<String> {
        let known = matches!(req.uri().path(), "/" | "/metrics" | "/health");
        if known && req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed\n".into(),
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
            return r;
        }
        let mut r = match req.uri().path() {
            "/metrics" => self.metrics(req),
            "/health" => self.health(),
            "/" => self.status_page(),
            _ => reply(StatusCode::NOT_FOUND, "Not Found\n".into()),
        };
        if req.method() == Method::HEAD {
            // hyper sends the headers (Content-Length included) and no body for HEAD.
            let len = r.body().len();
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        r
    }

    /// `/`: the status page, rendered from the last snapshot (a request never reaches tor).
    fn status_page(&self) -> Response<String> {
        let body = crate::page::render(
            &self.shared.get(),
            crate::clock::now_unix(),
            env!("CARGO_PKG_VERSION"),
        );
        with_headers(
            reply(StatusCode::OK, body),
            &[
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
                (header::CACHE_CONTROL, "no-store"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
        )
    }

    /// `/health`: [`crate::health::report`] of the last snapshot.
    fn health(&self) -> Response<String> {
        let body = crate::health::report(&self.shared.get().health, crate::clock::now_unix());
        with_headers(
            reply(StatusCode::OK, body),
            &[
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
        )
    }

    fn metrics<B>(&self, req: &Request<B>) -> Response<String> {
        let format = Format::negotiate(
            req.headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        );
        let body = render(&self.registry, format);
        with_headers(
            reply(StatusCode::OK, body),
            &[(header::CONTENT_TYPE, format.content_type())],
        )
    }
}

fn reply(status: StatusCode, body: String) -> Response<String> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    if status != StatusCode::OK {
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    r
}

fn with_headers(
    mut r: Response<String>,
    headers: &[(header::HeaderName, &'static str)],
) -> Response<String> {
    for (name, value) in headers {
        r.headers_mut()
            .insert(name.clone(), HeaderValue::from_static(value));
    }
    r
}
