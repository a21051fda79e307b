//! A child process inside the private network's namespace (Prometheus, Alertmanager, a
//! benchmark server), its output in a log file, stopped when dropped.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use super::PrivNet;
use crate::support::process;

/// The process; SIGTERM, then SIGKILL after 10 s, when dropped.
pub struct NsProcess {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl NsProcess {
    /// Starts `program args` in the namespace, stdout and stderr to `log`.
    pub fn spawn(
        net: &PrivNet,
        name: &'static str,
        program: &str,
        args: &[String],
        log: PathBuf,
    ) -> NsProcess {
        let out = std::fs::File::create(&log).unwrap();
        let child = net
            .netns()
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({program}): {e}"));
        NsProcess { name, child, log }
    }

    /// The last 3000 bytes of its log, headed by its name, for a failure message.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(3000);
        format!("--- {} log (tail) ---\n{}", self.name, &text[start..])
    }
}

impl Drop for NsProcess {
    fn drop(&mut self) {
        // nsenter passes SIGTERM on to the program and exits with it.
        process::stop(&mut self.child, Duration::from_secs(10));
    }
}
