//! At most one log line per cause per period, with a count of what was left out.
//!
//! Some events can come thousands of times a second from any local account (connections shed
//! when every slot is taken, connections refused, accept errors). Each deserves a line, since an
//! admin must be able to see that someone crowds the port, but a line per event would let that
//! account fill the journal and bury everything else (and, through OSSEC, the admin's mailbox).
//! So each cause gets its first line at once and then at most one per period, saying how many
//! were left out since. Pure: time comes in as an argument.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The usual period: once per cause per minute.
pub const EVERY_MINUTE: Duration = Duration::from_secs(60);

pub struct LogLimit<K> {
    every: Duration,
    /// Per cause: when its last line went out, and how many events were left out since.
    causes: HashMap<K, (Instant, u64)>,
}

impl<K: Eq + Hash> LogLimit<K> {
    pub fn new(every: Duration) -> Self {
        LogLimit {
            every,
            causes: HashMap::new(),
        }
    }

    /// One more event of `cause` at `now`: `Some(left_out)` when a line may be written now
    /// (`left_out` events of this cause since the last line), `None` when it is to be left out.
    pub fn event(&mut self, cause: K, now: Instant) -> Option<u64> {
        match self.causes.get_mut(&cause) {
            Some((last, left_out)) if now.duration_since(*last) < self.every => {
                *left_out += 1;
                None
            }
            Some((last, left_out)) => {
                let n = *left_out;
                *last = now;
                *left_out = 0;
                Some(n)
            }
            None => {
                self.causes.insert(cause, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_event_at_once_then_one_line_per_period_per_cause_with_the_count() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut l = LogLimit::new(EVERY_MINUTE);
        assert_eq!(l.event("shed", t0), Some(0));
        // a thousand more within the minute: none written
        for i in 0..1000 {
            assert_eq!(l.event("shed", t0 + Duration::from_millis(i * 50)), None);
        }
        // another cause is not held back by the first
        assert_eq!(l.event("full", t0 + s(1)), Some(0));
        // a minute after the last line: one line, saying how many were left out
        assert_eq!(l.event("shed", t0 + s(60)), Some(1000));
        assert_eq!(l.event("shed", t0 + s(61)), None);
        assert_eq!(l.event("shed", t0 + s(200)), Some(1));
        // a quiet cause starts again at once with nothing left out
        assert_eq!(l.event("full", t0 + s(300)), Some(0));
    }
}
