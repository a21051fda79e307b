//! A network namespace with only loopback, holding every tor of the private network.
//!
//! A holder process (`unshare -n`) brings `lo` up and then waits for the test process to exit
//! (`tail --pid`), so it cannot outlive a test that is killed outright. Tors are started inside
//! it with `nsenter -t HOLDER -n`. Sockets the test needs inside the namespace (the onion
//! services' backends, SOCKS connections to the client) are created by a short-lived thread that
//! has joined the namespace with setns(2): a socket stays in the namespace it was created in,
//! whichever thread uses it later. Unix control sockets are files and work from outside.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

extern "C" {
    fn setns(fd: i32, nstype: i32) -> i32;
    fn flock(fd: i32, operation: i32) -> i32;
}

const LOCK_EX: i32 = 2;
const LOCK_NB: i32 = 4;
const EWOULDBLOCK: i32 = 11;

/// Tries to take an exclusive flock(2) on `file` without blocking: `Ok(false)` if another
/// process holds it. Released when the file is closed (or the process dies).
pub fn try_lock_exclusive(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock(2) on a valid, open fd.
    if unsafe { flock(file.as_raw_fd(), LOCK_EX | LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

const CLONE_NEWNET: i32 = 0x4000_0000;
/// The namespace holder.
pub struct NetNs {
    holder: Child,
    ns_path: PathBuf,
}

impl NetNs {
    /// Creates the namespace and brings loopback up. Checks that `lo` is its only interface.
    pub fn new() -> Result<NetNs, String> {
        let me = std::process::id();
        let script = format!(
            "ip link set lo up && echo ready && exec tail --pid={me} -f /dev/null >/dev/null 2>&1"
        );
        let mut holder = Command::new("unshare")
            .args(["-n", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run unshare (util-linux): {e}"))?;
        let stdout = holder.stdout.take().expect("piped stdout");
        let mut line = String::new();
        // Bounded: the read ends at "ready" or when the holder exits (EOF).
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "ready" {
            let _ = holder.kill();
            let out = holder
                .wait_with_output()
                .map(|o| o.stderr)
                .unwrap_or_default();
            return Err(format!(
                "could not create a network namespace with `unshare -n` (root needed): {}",
                String::from_utf8_lossy(&out).trim()
            ));
        }
        let ns = NetNs {
            ns_path: PathBuf::from(format!("/proc/{}/ns/net", holder.id())),
            holder,
        };
        let ifaces = ns.interfaces()?;
        if ifaces != ["lo"] {
            return Err(format!(
                "namespace has interfaces {ifaces:?}, expected only lo"
            ));
        }
        let own = std::fs::read_link("/proc/self/ns/net").map_err(|e| e.to_string())?;
        let theirs = std::fs::read_link(&ns.ns_path).map_err(|e| e.to_string())?;
        if own == theirs {
            return Err("unshare -n did not create a new network namespace".into());
        }
        Ok(ns)
    }

    /// PID of the holder (the target for `nsenter -t`).
    pub fn holder_pid(&self) -> u32 {
        self.holder.id()
    }

    /// Names of the namespace's network interfaces (from /proc/HOLDER/net/dev).
    pub fn interfaces(&self) -> Result<Vec<String>, String> {
        let dev = std::fs::read_to_string(format!("/proc/{}/net/dev", self.holder.id()))
            .map_err(|e| format!("read net/dev of the namespace: {e}"))?;
        Ok(dev
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(|s| s.trim().to_string())
            .collect())
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.holder.id().to_string())
            .arg("-n")
            .arg("--")
            .arg(program);
        cmd
    }

    /// Runs `f` on a fresh thread that has joined the namespace, and returns its result.
    /// Sockets created by `f` belong to the namespace for their whole life.
    pub fn run<T, F>(&self, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let ns_path = self.ns_path.clone();
        std::thread::spawn(move || -> Result<T, String> {
            let file =
                File::open(&ns_path).map_err(|e| format!("open {}: {e}", ns_path.display()))?;
            // SAFETY: setns(2) on a valid fd; it only changes this (short-lived) thread's
            // network namespace.
            if unsafe { setns(file.as_raw_fd(), CLONE_NEWNET) } != 0 {
                return Err(format!("setns: {}", std::io::Error::last_os_error()));
            }
            Ok(f())
        })
        .join()
        .map_err(|_| "thread inside the namespace panicked".to_string())?
    }

    /// Returns `n` distinct loopback ports that are free inside the namespace, from 10000 up:
    /// below the kernel's ephemeral range, so a tor's outgoing connection can never take a port
    /// another tor is about to listen on. The namespace holds nothing but our tors.
    pub fn free_ports(&self, n: usize) -> Result<Vec<u16>, String> {
        self.run(move || -> Vec<u16> {
            let mut held = Vec::new();
            let mut port = 10000u16;
            while held.len() < n && port < 32000 {
                if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                    held.push(l);
                }
                port += 1;
            }
            held.iter()
                .filter_map(|l| l.local_addr().ok().map(|a| a.port()))
                .collect()
        })
        .and_then(|ports| {
            if ports.len() == n {
                Ok(ports)
            } else {
                Err(format!("only {} free ports in the namespace", ports.len()))
            }
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
