//! The HTTP side: `/metrics`, a landing page, and nothing else ([`routes`]), served by
//! [`server`] on the sockets [`listen`] gets (systemd's, or its own bind).
//!
//! hyper's connection builder is used directly (not `axum::serve`) so that each connection can
//! be watched and ended by the rules of [`connection_policy`]: a header deadline, a long
//! keep-alive for connections that behave, a write-stall deadline, a request budget, and a fixed
//! number of slots in which a newcomer always gets in. Any local account can reach the loopback
//! port, so none of these may let one account starve a local scrape; tor's connections for the
//! onion service come through their own unix socket and slots, which no other account can reach.

pub mod connection_policy;
pub mod listen;
pub mod routes;
pub mod server;

pub use listen::{listeners, ListenError, Listeners};
pub use routes::router;
pub use server::{
    serve, LOOPBACK_SLOTS, MAX_REQUESTS_PER_CONNECTION, ONION_SLOTS, SOCKET_BUFFER_BYTES,
    WRITE_STALL_TIMEOUT,
};
