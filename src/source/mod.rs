//! Pure parsing and state, no I/O: what tor's answers and events mean. The tasks feed these
//! with what they read; the snapshot holds what they produce.

pub mod descriptor;
pub mod getinfo;
pub mod onion;
pub mod relay;
pub mod status;
pub mod traffic;
