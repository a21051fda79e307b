//! Support shared by every integration test in tests/: each file here does one job.
//!
//! - [`poll`]: waiting for a condition with a deadline (the only way the tests wait).
//! - [`http`]: a minimal HTTP GET, blocking and async.
//! - [`metrics_text`]: reading sample values out of exposition text.
//! - [`exporter`]: the exporter's `run()` on a thread of its own or as a task.
//! - [`process`]: signals, exits with a deadline, commands that must succeed.
//! - [`log_capture`]: the exporter's log in memory.
//! - [`tor`]: which tor the tests run (`SDTE_TOR`, else `tor` on PATH), and a throwaway real
//!   tor with `DisableNetwork 1`.
//! - [`fake_peer`]: a scriptable fake tor control peer, for fault tests.
//! - [`privnet`]: a private Tor network on loopback (docs/privnet.md).
//! - [`temp_dir`]: throwaway folders and files, removed on drop.
//!
//! A test file uses it with `mod support;`.

// Every test binary compiles all of this and uses only its own part: the rest is not dead
// code, only unused by that binary.
#![allow(dead_code)]

pub mod exporter;
pub mod fake_peer;
pub mod http;
pub mod log_capture;
pub mod metrics_text;
pub mod poll;
pub mod privnet;
pub mod process;
pub mod temp_dir;
pub mod tor;
