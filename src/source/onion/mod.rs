//! Onion-service health from tor's own `HS_DESC` events, labelled by role name.
//!
//! "Can sources reach my onion services?" is answered by whether tor managed to publish each
//! service's descriptor to the HSDirs, which tor reports as events on a second, long-lived control
//! connection. Only service-side events for our own services are kept: client-side events for
//! other addresses (anything this tor fetched as a client) are ignored, because they would be a
//! browsing log. Series carry a role name from the configuration, never an address; a service
//! nobody named gets a short keyed hash (see [`unnamed_label`]).
//!
//! Events only tell what happens while we listen, and tor re-uploads only every 1–2 hours. So
//! after each connect the listener also asks the network: it fetches each named service's own
//! descriptor back (`HSFETCH`, the [`CHECK_ATTEMPTS`] start-up check), and until that answers,
//! `published` is unknown (absent), never a false 0. What comes back counts only if the running
//! tor made it (`HS_DESC_CONTENT` compared with tor's own descriptor,
//! [`crate::source::descriptor::provenance`]): after a restart the HSDirs still serve the
//! previous tor's descriptor for up to 3 h, and that says nothing about whether this tor can
//! upload. It also reads tor's own copy of each
//! descriptor (`GETINFO hs/service/desc/id/…`, opened by [`crate::source::descriptor`]) for the
//! introduction points and proof-of-work state. The [`Tracker`] is the pure state machine; the
//! I/O is in `tasks::onion_events`.

pub mod event;
pub mod health;
pub mod hs_config;
pub mod label;
pub mod tracker;

pub use event::{parse_hs_desc, parse_hs_desc_content, Action, HsDescEvent, REASONS};
pub use health::{DescriptorHealth, OnionHealth, ServiceHealth};
pub use hs_config::{hs_config, HsConfig};
pub use label::unnamed_label;
pub use tracker::{
    Notice, Tracker, CHECK_ATTEMPTS, CHECK_BOUND, CHECK_RETRY, CHECK_TIMEOUT, DESCRIPTOR_LIFETIME,
    DESCRIPTOR_REFRESH, MAX_UNNAMED_SERVICES, PROBE_TIMEOUT, UNDECIDED_BOUND,
};
