//! `EventLog`: the control events a node sends, recorded from a thread with the time since launch.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::control::Control;
use super::error::{err, Result};

/// An event recorder: a control connection subscribed to some events, appending every event's
/// first line (with the time since launch) to a shared list until tor closes the connection.
pub struct EventLog {
    events: Arc<Mutex<Vec<(Duration, String)>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    t0: Instant,
}

impl EventLog {
    pub(super) fn new(t0: Instant) -> EventLog {
        EventLog {
            events: Arc::new(Mutex::new(Vec::new())),
            threads: Mutex::new(Vec::new()),
            t0,
        }
    }

    /// Subscribes `control` to `events` and records them (from a thread) until tor closes it.
    pub(super) fn attach(&self, mut control: Control, events: &[&str]) -> Result<()> {
        control.setevents(events).map_err(err("SETEVENTS"))?;
        let store = self.events.clone();
        let t0 = self.t0;
        let thread = std::thread::spawn(move || {
            loop {
                match control.next_event(Duration::from_secs(1)) {
                    Ok(Some(ev)) => {
                        let line = ev.lines.first().cloned().unwrap_or_default();
                        let mut s = store.lock().unwrap_or_else(|p| p.into_inner());
                        if s.len() < 100_000 {
                            s.push((t0.elapsed(), line));
                        }
                    }
                    Ok(None) => {}
                    Err(_) => break, // tor closed the connection (stopped)
                }
            }
        });
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(thread);
        Ok(())
    }

    /// All events so far: (time since launch, first line, e.g. "HS_DESC UPLOADED <onion> …").
    pub fn snapshot(&self) -> Vec<(Duration, String)> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Number of `HS_DESC <action> <onion> …` events so far.
    pub fn hs_desc_count(&self, action: &str, onion: &str) -> usize {
        self.first_hs_desc_times(action, onion).len()
    }

    pub(super) fn first_hs_desc_times(&self, action: &str, onion: &str) -> Vec<Duration> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, l)| {
                let mut w = l.split_whitespace();
                w.next() == Some("HS_DESC") && w.next() == Some(action) && w.next() == Some(onion)
            })
            .map(|(t, _)| *t)
            .collect()
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        // A thread ends within ~1 s of tor closing the socket; tors are stopped before this.
        let threads = std::mem::take(self.threads.get_mut().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}
