//! Relay series (placeholder until the onion-service issue lands).

use prometheus_client::encoding::DescriptorEncoder;

use crate::control::{Connection, ControlError};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RelayStatus {
    /// Values that did not parse.
    pub malformed: u64,
}

pub async fn refresh(_conn: &mut Connection) -> Result<RelayStatus, ControlError> {
    Ok(RelayStatus::default())
}

pub fn encode(_r: &RelayStatus, _enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    Ok(())
}
