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

/// The right to run a network: one per process (mutex) and one per machine (an flock on
/// `$TMPDIR/privnet.lock`, released by the kernel even if the holder is killed). Released on
/// drop.
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
        let path = std::env::temp_dir().join("privnet.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(err(&format!("open {}", path.display())))?;
        let wait = std::env::var(LOCK_WAIT_ENV)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(900));
        let mut told = false;
        wait_for("the machine-wide private-network lock", wait, || {
            if netns::try_lock_exclusive(&file).map_err(|e| e.to_string())? {
                Ok(())
            } else {
                if !told {
                    eprintln!(
                        "privnet: another private Tor network runs on this machine; waiting \
                         (up to {wait:?}) for {}",
                        path.display()
                    );
                    told = true;
                }
                Err("held by another process".into())
            }
        })?;
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
