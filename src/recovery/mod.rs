//! Opt-in recovery of a tor that stays unhealthy: `securedrop-tor-exporter recover`, run once a
//! minute by `securedrop-tor-recover.timer` (off unless the admin turns it on).
//!
//! The exporter stays read-only (its control-command allow-list does not change): recovery is a
//! separate, short-lived process that reads the exporter's judgements (`GET /health` on
//! loopback, see [`crate::health::report`]), decides with [`policy`] and acts through systemd
//! (`systemctl reload|restart tor@default`), so tor is restarted the way an admin would, with
//! its unit's sandbox and ordering. Every action is logged as a `tor health:` line, so OSSEC
//! mails it, and counted in its state file, which the exporter exports.

pub mod policy;
pub mod run;

pub use policy::{decide, Decision, Policy, State};
