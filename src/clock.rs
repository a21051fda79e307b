//! Wall-clock time as Unix seconds: the timestamps the exporter exports and the onion tracker
//! reasons about. Monotonic durations use `tokio::time`/`Instant` instead.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix seconds; 0 on a clock set before 1970 (never a panic).
pub fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
