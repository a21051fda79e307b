//! securedrop-tor-exporter: a privacy-preserving Prometheus exporter for the tor daemons of
//! SecureDrop servers.
//!
//! A background refresher asks tor's control port for everything in one batched `GETINFO` per
//! interval and publishes a [`snapshot::Snapshot`]; `/metrics` only encodes the last snapshot, so
//! scrapes never reach tor. A second control connection listens to `HS_DESC` events for onion
//! service health. Series that would reveal when or how often sources connect are never exported
//! (see `docs/privacy.md`).
//!
//! # Layout
//! Layers, lowest first; a module imports only from layers below it (`scripts/imports.py
//! --check`, run by `tests/module_layers.rs`, refuses anything else):
//! - [`small_file`] (reading cookie, password and config files without blocking or bloating),
//!   [`clock`] (Unix time), [`systemd_protocol`] (`sd_notify` and socket passing),
//!   [`duration_text`] (`20m`, `1h 30m` and UTC times as people write
//!   them), [`shutdown`] (the stop signal), [`log_limit`] (one log line per cause per minute, for
//!   what any local account can make happen thousands of times a second).
//! - [`control`]: tor's control protocol, importing nothing else of the crate: the sans-I/O
//!   reply parser ([`control::reply`]), the allow-listed command encoder ([`control::command`]),
//!   addresses and the one test of a v3 onion address ([`control::address`]), authentication
//!   maths ([`control::auth`]), errors ([`control::error`]) and the tokio client
//!   ([`control::client`]).
//! - [`config`] (types; loading and validation in `config/load.rs`), [`keys`] (x25519
//!   client-authorization keys in tor's file formats), [`label_key`] (the secret key behind
//!   `unnamed_…` labels), [`logging`] (journald or stderr), [`setup`] (what the package, the
//!   role and the tests share about tor's configuration: the drop-in's `%include`, checking a
//!   torrc as tor@default reads it, v3 addresses; the `torrc` and `check-onion-address` commands;
//!   the socket unit's drop-in for `web.listen_address`, the `systemd-generator` command; and
//!   the package's setup, `setup configure|remove`: one journaled transaction that its postinst
//!   and prerm only call).
//! - [`source`]: pure parsing and state, no I/O: [`source::status`] (the batched GETINFO,
//!   without traffic), [`source::traffic`] (raw counters and the coarsener), [`source::relay`],
//!   [`source::descriptor`] (our own v3 descriptors), [`source::onion`] (HS_DESC events,
//!   labels, the tracker state machine and what it reports).
//! - [`snapshot`]: what scrapes read, and the error kinds they count.
//! - [`policy`]: every family that may be exported, with its privacy class; [`health`]: the
//!   health judgements (states an admin acts on, after a hold time) and their log lines, which
//!   OSSEC mails.
//! - [`metrics`] (encoders per concern over one set of writing helpers; OpenMetrics and
//!   classic text), [`page`] (the status page at `/`, plain HTML) and [`recovery`] (the opt-in
//!   `recover` command: when to reload or restart tor, from the judgements at `/health`).
//! - [`http`] (routes, the accept loop, [`http::listen`]: the sockets systemd passed or our
//!   own bind of `web.listen_address`, and [`http::connection_policy`]: pure deadlines and whom
//!   to shed when full) and [`tasks`] (the refresher, the onion-event listener and the
//!   systemd notifier; both control connections kept by [`tasks::reconnect`]).
//! - This root: [`run`], which starts the tasks and serves.
//! - [`cli`], on top of everything, the root's [`run`] included: the command line's grammar and
//!   help, with every configuration key as a flag ([`cli::flags`]); [`cli::run()`], which runs
//!   each command (one file per group: `torrc`, `address`, `keys`, `load`, `package`,
//!   `recover`, `serve`); and [`cli::CliError`], what they fail with. `src/main.rs` only wires
//!   them: parse, help and version, [`cli::run()`], [`cli::error_chain`] and the exit code.

pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod duration_text;
pub mod health;
pub mod http;
pub mod keys;
pub mod label_key;
pub mod log_limit;
pub mod logging;
pub mod metrics;
pub mod page;
pub mod policy;
pub mod recovery;
pub mod setup;
pub mod shutdown;
pub mod small_file;
pub mod snapshot;
pub mod source;
pub mod systemd_protocol;
pub mod tasks;

/// Throwaway folders for unit tests; one copy, shared with the integration tests.
#[cfg(test)]
#[path = "../tests/support/temp_dir.rs"]
pub(crate) mod temp_dir;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

use http::connection_policy;
use tasks::{health_judge, onion_events, refresher, systemd};

pub use config::Config;
pub use config::ControlAddress;
pub use http::Listeners;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("HTTP server failed: {0}")]
    Http(#[from] std::io::Error),
    /// A background task ended while serving, which only a bug (a panic) does. Serving a
    /// snapshot nobody refreshes would show a stale `tor_up 1`, so the exporter stops instead and
    /// systemd restarts it.
    #[error("a background task {0}; stopping so that the service manager restarts the exporter")]
    TaskDied(&'static str),
}

/// Serves `/metrics` on `listeners` and keeps the snapshot fresh until `shutdown` completes.
/// The caller gets the listeners ([`http::listeners`]: systemd's sockets or a bind of
/// `web.listen_address`), so that tests can bind port 0 and `main` can report a failure before
/// anything starts.
pub async fn run(
    listeners: impl Into<Listeners>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let listeners = listeners.into();
    let shared = snapshot::Shared::default();
    shared.update(|s| s.started_unix = Some(clock::now_unix()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(refresher::run(
        config.clone(),
        shared.clone(),
        stop_rx.clone(),
    ));
    tasks.spawn(onion_events::run(
        config.clone(),
        shared.clone(),
        stop_rx.clone(),
    ));
    tasks.spawn(health_judge::run(
        config.tor.refresh_interval,
        config.health.hold_divisor,
        shared.clone(),
        stop_rx.clone(),
    ));
    tasks.spawn(systemd::run(shared.clone(), stop_rx.clone()));
    let registry = Arc::new(metrics::registry(shared.clone()));
    let app = http::router(registry, shared.clone());
    let on_shutdown = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = on_shutdown.send(true);
    });
    // The first answer must be the truth: let the first refresh attempt finish before serving
    // and before telling systemd we are ready, but never wait longer than tor.timeout (a frozen
    // tor must not hold the exporter; until the attempt ends `tor_up` is left out).
    let _ = tokio::time::timeout(config.tor.timeout, shared.first_refresh()).await;
    systemd::ready();
    let limits = connection_policy::Limits {
        header_read_timeout: config.web.header_read_timeout,
        idle_timeout: config.web.idle_timeout,
        write_stall_timeout: http::WRITE_STALL_TIMEOUT,
        max_requests: http::MAX_REQUESTS_PER_CONNECTION,
    };
    let serve = http::serve(
        listeners.loopback,
        listeners.onion,
        app,
        limits,
        stop_rx.clone(),
    );
    tokio::pin!(serve);
    let outcome = tokio::select! {
        served = &mut serve => served.map_err(RunError::from),
        Some(joined) = tasks.join_next() => {
            let stopping = *stop_rx.borrow();
            if !stopping {
                let what = match joined {
                    Err(e) if e.is_panic() => "panicked",
                    _ => "ended",
                };
                tracing::error!("a background task {what}; stopping so that systemd restarts the exporter");
                let _ = stop_tx.send(true);
                let _ = (&mut serve).await;
                Err(RunError::TaskDied(what))
            } else {
                (&mut serve).await.map_err(RunError::from)
            }
        }
    };
    systemd::stopping();
    while tasks.join_next().await.is_some() {}
    outcome
}
