//! The I/O loops: the [`refresher`] and the [`onion_events`] listener, each on its own control
//! connection kept by the one [`reconnect`] loop, the [`health_judge`] (logs the health lines),
//! and the [`systemd`] notifier. They write the snapshot; nothing else does.

pub mod health_judge;
pub mod onion_events;
pub mod reconnect;
pub mod refresher;
pub mod systemd;
