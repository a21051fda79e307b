//! The HTTP side: `/metrics`, a landing page, and nothing else ([`routes`]), served by
//! [`server`].
//!
//! hyper's connection builder is used directly (not `axum::serve`) so that each connection can
//! be watched and ended by the rules of [`connection_policy`]: a header deadline, a long
//! keep-alive for connections that behave, a write-stall deadline, a request budget, and a fixed
//! number of slots in which a newcomer always gets in. Any local account can reach the port, and
//! tor's connections for the onion service come from 127.0.0.1 too, so none of these may let
//! one account starve the scrape.

pub mod connection_policy;
pub mod routes;
pub mod server;

pub use routes::router;
pub use server::{MAX_REQUESTS_PER_CONNECTION, WRITE_STALL_TIMEOUT, serve};
