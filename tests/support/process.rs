//! Child processes a test starts: signals by PID, waiting for an exit with a deadline, stopping
//! (SIGTERM, then SIGKILL), and running a command that must succeed.

use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use crate::support::poll;

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;
pub const SIGHUP: i32 = 1;
pub const SIGSTOP: i32 = 19;
pub const SIGCONT: i32 = 18;

/// Sends a signal to one process by PID.
pub fn send_signal(pid: u32, sig: i32) -> std::io::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| std::io::Error::other("pid out of range"))?;
    // SAFETY: kill(2) takes plain integers and has no memory-safety preconditions.
    if unsafe { kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Waits up to `timeout` for `child` to exit; its status once it has (reaped), else `None`.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    poll::wait_for("exit", timeout, Duration::from_millis(20), || {
        match child.try_wait() {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err("running".into()),
            Err(e) => Err(e.to_string()),
        }
    })
    .ok()
}

/// SIGTERM, up to `grace` to exit, then SIGKILL; always reaps. The status if it exited by itself.
pub fn stop(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    let _ = send_signal(child.id(), SIGTERM);
    let status = wait_exit(child, grace);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// Runs `cmd` to its end; its stdout, or a panic naming `what` with its stderr.
pub fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Panics unless every one of `tools` is a command on `PATH` (or a path to an executable),
/// naming the missing one and `hint` (the script that installs it).
pub fn require_commands(tools: &[&str], hint: &str) {
    for tool in tools {
        let found = Command::new("sh")
            .args(["-c", "command -v \"$1\"", "sh", tool])
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "{tool} is missing ({hint})");
    }
}
