//! Coarsening of tor's byte counters.
//!
//! Fine-grained traffic is an access log: a rise of a few hundred KiB at 14:02 says a source
//! loaded the page at 14:02. So the exported counters move only in whole quanta (default 16 MiB)
//! and at most once per period (default 1 h). Pure: the caller passes the clock.
//!
//! Held by types, not by convention: tor's counters are parsed into [`RawTraffic`], which the
//! snapshot cannot hold; the snapshot holds [`CoarseBytes`], which only a [`Coarsener`] makes.

use std::time::{Duration, Instant};

/// tor's own byte counters (`traffic/read`, `traffic/written`), as fine as tor keeps them. Never
/// published: only a [`Coarsener`] turns them into something the snapshot holds.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct RawTraffic {
    pub read: Option<u64>,
    pub written: Option<u64>,
}

impl std::fmt::Debug for RawTraffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not even in a debug log: a log line every refresh would be the fine-grained record.
        f.write_str("RawTraffic(<not shown>)")
    }
}

/// A byte count that has been through a [`Coarsener`]: a whole number of quanta, moved at most
/// once per period. The only traffic figure the snapshot can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoarseBytes(u64);

impl CoarseBytes {
    pub fn get(self) -> u64 {
        self.0
    }
}

#[derive(Debug, Clone)]
pub struct Coarsener {
    quantum: u64,
    period: Duration,
    published: Option<(u64, Instant)>,
}

impl Coarsener {
    pub fn new(quantum: u64, period: Duration) -> Self {
        Coarsener {
            quantum: quantum.max(1),
            period,
            published: None,
        }
    }

    /// Takes tor's raw counter and returns what may be exported now.
    pub fn update(&mut self, raw: u64, now: Instant) -> CoarseBytes {
        CoarseBytes(self.step(raw, now))
    }

    fn step(&mut self, raw: u64, now: Instant) -> u64 {
        let floor = raw - raw % self.quantum;
        match self.published {
            Some((value, at)) if now.duration_since(at) < self.period && raw >= value => value,
            _ => {
                // First value, a period has passed, or tor restarted (raw fell: a counter reset).
                self.published = Some((floor, now));
                floor
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_only_by_whole_quanta_and_once_per_period() {
        let t0 = Instant::now();
        let mut c = Coarsener::new(1000, Duration::from_secs(3600));
        assert_eq!(c.step(2500, t0), 2000);
        // Within the period nothing moves, however much tor counted.
        assert_eq!(c.step(9999, t0 + Duration::from_secs(3599)), 2000);
        // After the period it jumps to the current floor.
        assert_eq!(c.step(9999, t0 + Duration::from_secs(3600)), 9000);
        assert_eq!(c.step(10_001, t0 + Duration::from_secs(3601)), 9000);
        let mut prev = 0;
        for i in 0..100u64 {
            let v = c.step(i * 777, t0 + Duration::from_secs(7200 + i * 60));
            assert_eq!(v % 1000, 0);
            assert!(v >= prev || i == 0);
            prev = v;
        }
    }

    #[test]
    fn a_restart_resets_at_once() {
        let t0 = Instant::now();
        let mut c = Coarsener::new(100, Duration::from_secs(3600));
        assert_eq!(c.step(550, t0), 500);
        assert_eq!(c.step(20, t0 + Duration::from_secs(1)), 0);
        assert_eq!(c.update(30, t0 + Duration::from_secs(2)).get(), 0);
    }
}
