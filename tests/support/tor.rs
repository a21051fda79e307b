//! Which tor the tests run ([`program`], [`gencert_program`]: the one place that decides), a
//! throwaway real tor for one test (`DisableNetwork 1`), and that tor's version.
//!
//! `SDTE_TOR=/path/to/tor` runs every real-tor and private-network test against that tor (its
//! `tor-gencert` is the one beside it); unset, `tor` and `tor-gencert` on PATH (Debian's package).
//! scripts/cargo-tor-0.4.8.sh sets it to the tor of scripts/tor-0.4.8.sh.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::poll;

/// The environment variable naming the tor binary the tests run.
pub const ENV: &str = "SDTE_TOR";

/// The tor the tests run: `$SDTE_TOR`, else `tor` (looked up on PATH).
pub fn program() -> OsString {
    match std::env::var_os(ENV) {
        Some(p) if !p.is_empty() => p,
        _ => "tor".into(),
    }
}

/// The `tor-gencert` of the same tor: beside `$SDTE_TOR` (both come in Debian's package `tor`),
/// else `tor-gencert` on PATH.
pub fn gencert_program() -> OsString {
    let tor = program();
    let path = Path::new(&tor);
    if path.components().count() > 1 {
        path.with_file_name("tor-gencert").into_os_string()
    } else {
        "tor-gencert".into()
    }
}

/// Where `program` (a path, or a name looked up on PATH) is, if it is an executable file.
pub fn locate(program: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let path = Path::new(program);
    if path.components().count() > 1 {
        return runnable(path).then(|| path.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| runnable(p))
}

/// A tor started for one test: `DisableNetwork 1`, its own DataDirectory and control socket,
/// cookie auth, no defaults file. Killed (SIGCONT first, then SIGKILL) and reaped on drop.
pub struct TestTor {
    pub dir: crate::support::temp_dir::TempDir,
    pub child: Option<Child>,
}

impl TestTor {
    pub fn control_socket(&self) -> PathBuf {
        self.dir.path().join("control")
    }

    pub fn start() -> TestTor {
        let dir = crate::support::temp_dir::Builder::new()
            .prefix("sdte-tor-")
            .tempdir()
            .expect("temp dir");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        std::fs::write(dir.path().join("torrc"), "").unwrap();
        let mut t = TestTor { dir, child: None };
        t.spawn();
        t
    }

    /// Starts tor (again) on the same directory and socket; waits for the socket.
    pub fn spawn(&mut self) {
        let d = self.dir.path();
        let data = d.join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let _ = std::fs::remove_file(self.control_socket());
        let child = Command::new(program())
            .args(["--defaults-torrc", "/dev/null", "-f"])
            .arg(d.join("torrc"))
            .args([
                "--DisableNetwork",
                "1",
                "--SocksPort",
                "0",
                "--CookieAuthentication",
                "1",
                "--RunAsDaemon",
                "0",
            ])
            .arg("--DataDirectory")
            .arg(&data)
            .arg("--ControlSocket")
            .arg(self.control_socket())
            // Beside the socket, where the exporter looks by default (as Debian's tor has it).
            .arg("--CookieAuthFile")
            .arg(d.join("control.authcookie"))
            .arg("--Log")
            .arg(format!("notice file {}", d.join("tor.log").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {:?} ({e}): apt-get install tor, or set {ENV} to a tor",
                    program()
                )
            });
        self.child = Some(child);
        let socket = self.control_socket();
        let opened = poll::wait_for(
            "tor's control socket",
            Duration::from_secs(20),
            Duration::from_millis(20),
            || socket.exists().then_some(()).ok_or_else(String::new),
        );
        assert!(
            opened.is_ok(),
            "tor did not open its control socket within 20 s; log: {}",
            self.log()
        );
    }

    pub fn pid(&self) -> i32 {
        self.child
            .as_ref()
            .map(|c| c.id() as i32)
            .expect("tor is running")
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tor.log")).unwrap_or_default()
    }
}

impl Drop for TestTor {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `tor --version`'s version number, e.g. "0.4.9.11", of the tor the tests run.
pub fn version() -> Result<String, String> {
    let out = Command::new(program())
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{:?} --version: {e}", program()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Tor version "))
        .map(|v| v.trim_end_matches('.').trim().to_string())
        .ok_or_else(|| "cannot parse tor --version".to_string())
}
