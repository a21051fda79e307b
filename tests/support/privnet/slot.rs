//! `NetworkSlot`: one private network at a time, per process and per machine.

use std::fs;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::error::{err, wait_for, Result};
use super::netns;

/// Whether a network exists in this process, and a condition variable to wait for it to go.
static NETWORK_BUSY: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// Environment variable: how long `start` waits for another process's network to go (seconds,
/// default 900).
pub const LOCK_WAIT_ENV: &str = "PRIVNET_LOCK_WAIT";

/// Environment variable: how many private networks may run on the machine at once (default
/// [`DEFAULT_SLOTS`]).
pub const SLOTS_ENV: &str = "PRIVNET_SLOTS";

/// Two networks at once: the test command's suites run side by side (scripts/test.sh's lanes),
/// and the cargo suite's networks and the monitoring suite's end-to-end runs would otherwise
/// queue one behind the other for a quarter of an hour. A network is ~0.7 GB and mostly idle once
/// bootstrapped; more than two on 2 cores slows each one's bootstrap past its readiness deadline.
pub const DEFAULT_SLOTS: usize = 2;

/// The right to run a network: one per process (mutex) and one of [`SLOTS_ENV`] per machine (an
/// flock on `$TMPDIR/privnet.lock` or `$TMPDIR/privnet.lock.N`, released by the kernel even if the
/// holder is killed). Released on drop.
pub(super) struct NetworkSlot {
    _file: fs::File,
}

impl NetworkSlot {
    pub(super) fn acquire() -> Result<NetworkSlot> {
        let (lock, cv) = &NETWORK_BUSY;
        let mut busy = lock.lock().unwrap_or_else(|p| p.into_inner());
        while *busy {
            busy = cv.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        let slots = std::env::var(SLOTS_ENV)
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_SLOTS);
        // Slot 0 keeps the name of the days of one slot, so an older checkout's tests still
        // count against it.
        let mut files = Vec::with_capacity(slots);
        for i in 0..slots {
            let name = if i == 0 {
                "privnet.lock".to_owned()
            } else {
                format!("privnet.lock.{i}")
            };
            let path = std::env::temp_dir().join(name);
            let file = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(err(&format!("open {}", path.display())))?;
            files.push(file);
        }
        let wait = std::env::var(LOCK_WAIT_ENV)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(900));
        let mut told = false;
        let mut taken = None;
        wait_for("a machine-wide private-network slot", wait, || {
            for (i, file) in files.iter().enumerate() {
                if netns::try_lock_exclusive(file).map_err(|e| e.to_string())? {
                    taken = Some(i);
                    return Ok(());
                }
            }
            if !told {
                eprintln!(
                    "privnet: {slots} other private Tor network(s) run on this machine; waiting \
                     (up to {wait:?}) for one to end ({SLOTS_ENV}={slots})"
                );
                told = true;
            }
            Err("every slot held by another process".into())
        })?;
        let file =
            files.swap_remove(taken.expect("wait_for returned Ok only once a slot is taken"));
        *busy = true;
        Ok(NetworkSlot { _file: file })
    }
}

impl Drop for NetworkSlot {
    fn drop(&mut self) {
        // Closing the file (after this) releases the flock.
        let (lock, cv) = &NETWORK_BUSY;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = false;
        cv.notify_one();
    }
}
