//! What the snapshot carries about onion services: by label, never by address.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceHealth {
    /// (result, reason) → count; result is `uploaded` or `failed`, reason `none` on success.
    pub uploads: BTreeMap<(&'static str, &'static str), u64>,
    pub last_upload_unix: Option<f64>,
    /// `None` while the exporter cannot know yet (the start-up check is running).
    pub published: Option<bool>,
    /// Since when this exporter has seen the descriptor published without a gap (an upload it
    /// saw, or its start-up fetch): a lower bound, for the status page.
    pub published_since_unix: Option<f64>,
    /// (success, unix time) of the last completed self-probe.
    pub probe: Option<(bool, f64)>,
    /// What tor's current descriptor for the service says; `None` until tor has built one.
    pub descriptor: Option<DescriptorHealth>,
}

/// What the service's own descriptor says, as far as the address alone opens it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DescriptorHealth {
    /// False for a client-authorized service: its inner layer needs a client's key.
    pub inner_readable: bool,
    /// Introduction points in the descriptor; `None` when the inner layer is closed.
    pub introduction_points: Option<u32>,
    /// PoW defences on: from `pow-params` in the inner layer, or, when that is closed, from
    /// `GETCONF HiddenServiceOptions` if it is the same for every service; else `None`.
    pub pow_enabled: Option<bool>,
    /// The suggested effort of `pow-params v1`; `None` without PoW or with the inner layer closed.
    pub pow_suggested_effort: Option<u32>,
}

/// What /metrics shows about onion services.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OnionHealth {
    /// HiddenServiceDir lines in tor's configuration, once known.
    pub configured: Option<u64>,
    pub services: BTreeMap<String, ServiceHealth>,
}
