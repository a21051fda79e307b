//! The exporter's one stop signal: a `watch` flag every task and the server select on.

use tokio::sync::watch;

/// Resolves once the shutdown flag is set (or its sender is gone). Returns nothing, so no
/// non-`Send` borrow of the channel is held across an await.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
