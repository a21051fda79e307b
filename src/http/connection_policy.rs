//! Which HTTP connections may stay, and which go: per-connection deadlines and the choice of a
//! connection to shed when every slot is taken. Pure: time comes in as an argument, so the rules
//! are tested exactly; `http` does the I/O.
//!
//! The scrape through the onion service arrives from 127.0.0.1 like every local account's
//! connection, so no address tells friend from foe. What tells them apart is behaviour:
//! - A connection that has not sent a whole request head within `header_read_timeout` of
//!   arriving (or of the first byte of its next request) is cut: slowloris and idle sockets.
//! - A connection that has completed a request may idle for `idle_timeout` (well over a scrape
//!   interval), so Prometheus keeps one TCP connection (one Tor stream) across scrapes.
//! - A response write that makes no progress for `write_stall_timeout` ends the connection: a
//!   client that pipelines requests and never reads cannot hold a slot.
//! - After `max_requests` the connection is closed once idle: a budget, so no single connection
//!   is served forever. The last response says so (`Connection: close`), so that the client
//!   does not send another request on it.
//! - When every slot is taken, a new connection is never turned away: the one that has shown
//!   least is shed instead (write-stalled first, then those that never completed a request, then
//!   the longest idle), so a scrape always gets in, however many sockets others hold.

use std::time::{Duration, Instant};

/// The limits, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_stall_timeout: Duration,
    pub max_requests: u64,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted; no byte of a request yet, and none completed.
    Fresh,
    /// Bytes of a request head have arrived, the head is not complete.
    Head,
    /// A request is being handled.
    Serving,
    /// Between requests, after at least one.
    Idle,
}

/// Why a connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    SlowHead,
    IdleTooLong,
    WriteStalled,
    Budget,
    Shed,
}

/// What one connection has done, as far as the rules care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnState {
    phase: Phase,
    /// When the current phase began.
    since: Instant,
    /// Requests handled so far.
    served: u64,
    /// A write has been waiting for the client to read since then.
    write_blocked_since: Option<Instant>,
}

impl ConnState {
    pub fn new(now: Instant) -> Self {
        ConnState {
            phase: Phase::Fresh,
            since: now,
            served: 0,
            write_blocked_since: None,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Request bytes arrived. Between requests this starts the head deadline.
    pub fn on_read(&mut self, now: Instant) {
        if self.phase == Phase::Idle {
            self.phase = Phase::Head;
            self.since = now;
        } else if self.phase == Phase::Fresh {
            // The head deadline runs from the accept, not from the first byte.
            self.phase = Phase::Head;
        }
    }

    /// A whole request head was parsed and handed to the handler.
    pub fn on_request(&mut self, now: Instant) {
        self.phase = Phase::Serving;
        self.since = now;
        self.served += 1;
    }

    /// Whether the request being handled is the last this connection gets: its response then
    /// says `Connection: close`, so the client opens a new connection for the next one instead
    /// of sending it on a connection the budget is about to close.
    pub fn budget_spent(&self, limits: &Limits) -> bool {
        self.served >= limits.max_requests
    }

    /// The handler returned; the response is being written.
    pub fn on_handled(&mut self, now: Instant) {
        self.phase = Phase::Idle;
        self.since = now;
    }

    /// A write either went through (`blocked` false) or had to wait for the client.
    pub fn on_write(&mut self, now: Instant, blocked: bool) {
        if blocked {
            self.write_blocked_since.get_or_insert(now);
        } else {
            self.write_blocked_since = None;
        }
    }

    /// Whether this connection has outlived a rule at `now`, and which.
    pub fn expired(&self, now: Instant, limits: &Limits) -> Option<Reason> {
        let past = |since: Instant, limit: Duration| now.saturating_duration_since(since) >= limit;
        if let Some(t) = self.write_blocked_since {
            if past(t, limits.write_stall_timeout) {
                return Some(Reason::WriteStalled);
            }
        }
        match self.phase {
            Phase::Fresh | Phase::Head if past(self.since, limits.header_read_timeout) => {
                Some(Reason::SlowHead)
            }
            Phase::Idle if self.served >= limits.max_requests => Some(Reason::Budget),
            Phase::Idle if past(self.since, limits.idle_timeout) => Some(Reason::IdleTooLong),
            _ => None,
        }
    }

    /// The order in which connections are shed when full: lower first; `None` is never shed
    /// (a request being handled right now finishes quickly).
    fn shed_rank(&self) -> Option<(u8, Instant)> {
        if let Some(t) = self.write_blocked_since {
            return Some((0, t));
        }
        match self.phase {
            Phase::Fresh | Phase::Head => Some((1, self.since)),
            Phase::Idle => Some((2, self.since)),
            Phase::Serving => None,
        }
    }
}

/// The connection to shed to make room: write-stalled first, then those that never completed a
/// request head (oldest first), then the longest idle.
pub fn shed<'a, K: Copy + 'a>(conns: impl IntoIterator<Item = (K, &'a ConnState)>) -> Option<K> {
    conns
        .into_iter()
        .filter_map(|(k, c)| c.shed_rank().map(|r| (r, k)))
        .min_by_key(|(r, _)| *r)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        header_read_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(600),
        write_stall_timeout: Duration::from_secs(10),
        max_requests: 3,
    };

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_fresh_or_half_sent_connection_has_the_header_timeout_from_accept() {
        let t0 = Instant::now();
        let mut c = ConnState::new(t0);
        assert_eq!(c.expired(t0 + s(4), &LIMITS), None);
        assert_eq!(c.expired(t0 + s(5), &LIMITS), Some(Reason::SlowHead));
        // Dripping bytes does not restart the clock.
        c.on_read(t0 + s(3));
        c.on_read(t0 + s(4));
        assert_eq!(c.expired(t0 + s(5), &LIMITS), Some(Reason::SlowHead));
    }

    #[test]
    fn a_connection_that_was_served_may_idle_far_longer_than_a_scrape_interval() {
        let t0 = Instant::now();
        let mut c = ConnState::new(t0);
        c.on_read(t0);
        c.on_request(t0);
        c.on_handled(t0);
        assert_eq!(c.expired(t0 + s(599), &LIMITS), None);
        assert_eq!(c.expired(t0 + s(600), &LIMITS), Some(Reason::IdleTooLong));
        // The next request's head has the header timeout from its first byte.
        c.on_read(t0 + s(120));
        assert_eq!(c.phase(), Phase::Head);
        assert_eq!(c.expired(t0 + s(124), &LIMITS), None);
        assert_eq!(c.expired(t0 + s(125), &LIMITS), Some(Reason::SlowHead));
    }

    #[test]
    fn a_stalled_write_ends_the_connection_and_progress_resets_it() {
        let t0 = Instant::now();
        let mut c = ConnState::new(t0);
        c.on_request(t0);
        c.on_handled(t0);
        c.on_write(t0 + s(1), true);
        c.on_write(t0 + s(5), true);
        assert_eq!(c.expired(t0 + s(10), &LIMITS), None);
        assert_eq!(c.expired(t0 + s(11), &LIMITS), Some(Reason::WriteStalled));
        c.on_write(t0 + s(11), false);
        assert_eq!(c.expired(t0 + s(11), &LIMITS), None);
    }

    #[test]
    fn the_request_budget_closes_an_idle_connection() {
        let t0 = Instant::now();
        let mut c = ConnState::new(t0);
        for n in 1..=3 {
            c.on_request(t0);
            assert_eq!(c.expired(t0, &LIMITS), None, "never while serving");
            assert_eq!(
                c.budget_spent(&LIMITS),
                n == 3,
                "request {n}: the last one is told"
            );
            c.on_handled(t0);
        }
        assert_eq!(c.expired(t0, &LIMITS), Some(Reason::Budget));
    }

    #[test]
    fn shedding_takes_the_stalled_then_the_silent_then_the_longest_idle_never_the_busy() {
        let t0 = Instant::now();
        let mut serving = ConnState::new(t0);
        serving.on_request(t0);
        let mut idle_old = ConnState::new(t0);
        idle_old.on_request(t0);
        idle_old.on_handled(t0 + s(1));
        let mut idle_new = idle_old.clone();
        idle_new.on_handled(t0 + s(2));
        let silent = ConnState::new(t0 + s(3));
        let mut stalled = idle_new.clone();
        stalled.on_write(t0 + s(4), true);

        let all = [
            (1, &serving),
            (2, &idle_new),
            (3, &idle_old),
            (4, &silent),
            (5, &stalled),
        ];
        assert_eq!(shed(all), Some(5));
        assert_eq!(shed(all[..4].iter().copied()), Some(4));
        assert_eq!(shed(all[..3].iter().copied()), Some(3));
        assert_eq!(shed([(1, &serving)]), None);
    }
}
