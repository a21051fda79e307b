//! `serve` (the default command): load the configuration, start logging, and run the exporter
//! ([`crate::run`]) on one thread until SIGTERM or SIGINT.

use super::{load, CliError, ConfigFlags};
use crate::{http, logging, Config};

pub(super) fn serve(flags: &ConfigFlags) -> Result<(), CliError> {
    let c = load::load(flags)?;
    logging::init(c.log.level, c.log.target);
    run(c)
}

/// On a current-thread runtime: the exporter runs one thread (what `small_file` guards against
/// blocking, and what `docs/benchmark.md` measured).
fn run(c: Config) -> Result<(), CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    rt.block_on(async move {
        // Bound before anything starts, so that a socket we cannot have fails the start.
        let listeners = http::listeners(&c.web).await?;
        let addr = listeners
            .loopback
            .local_addr()
            .map_err(CliError::LocalAddr)?;
        let onion = listeners.onion.is_some();
        tracing::info!(%addr, onion, control = %c.tor.control_address, "serving /metrics");
        crate::run(listeners, c, shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Completes on the first SIGTERM (systemd's stop) or SIGINT (Ctrl-C in a terminal).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
