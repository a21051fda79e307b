//! Onion-service health (placeholder until the onion-service issue lands).

use prometheus_client::encoding::DescriptorEncoder;
use tokio::sync::watch;

use crate::config::Config;
use crate::snapshot::Shared;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OnionHealth {}

pub fn encode(_h: &OnionHealth, _enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    Ok(())
}

pub async fn run(_config: Config, _shared: Shared, mut shutdown: watch::Receiver<bool>) {
    crate::stopped(&mut shutdown).await;
}
