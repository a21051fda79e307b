//! The private-network harness of the integration tests (tests/support/), compiled in place: one
//! harness for the tests and this benchmark, no copy that could drift. Only the parts the
//! harness needs; `crate::support::…` resolves here as it does in a test binary.

// The harness is written for many test binaries; this one uses a part of it.
#![allow(dead_code, unused_imports)]

#[path = "../../../../tests/support/http.rs"]
pub mod http;
#[path = "../../../../tests/support/poll.rs"]
pub mod poll;
#[path = "../../../../tests/support/privnet/mod.rs"]
pub mod privnet;
#[path = "../../../../tests/support/process.rs"]
pub mod process;
#[path = "../../../../tests/support/temp_dir.rs"]
pub mod temp_dir;
#[path = "../../../../tests/support/tor.rs"]
pub mod tor;
