//! Shared helpers for integration tests: a throwaway real tor, an HTTP GET, waiting with deadlines.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Polls `cond` every 50 ms until it holds or `deadline` passes; returns whether it held.
pub async fn wait_until<F, Fut>(deadline: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

/// A minimal HTTP/1.1 GET (Connection: close), so tests need no HTTP client crate.
pub async fn http_get(
    addr: std::net::SocketAddr,
    path: &str,
    accept: Option<&str>,
) -> std::io::Result<Response> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(a) = accept {
        req.push_str(&format!("Accept: {a}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(Response {
        status,
        headers: head.to_owned(),
        body: body.to_owned(),
    })
}

/// The value of an unlabelled sample line `name value`.
pub fn sample(body: &str, name: &str) -> Option<String> {
    body.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|r| r.strip_prefix(' '))
            .map(str::to_owned)
    })
}

/// A tor started for one test: `DisableNetwork 1`, its own DataDirectory and control socket,
/// cookie auth, no defaults file. Killed (SIGCONT first, then SIGKILL) and reaped on drop.
pub struct TestTor {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
}

impl TestTor {
    pub fn control_socket(&self) -> PathBuf {
        self.dir.path().join("control")
    }

    pub fn start() -> TestTor {
        let dir = tempfile::Builder::new()
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
        let child = Command::new("tor")
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
            .expect("tor must be installed (apt-get install tor)");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(20);
        while !self.control_socket().exists() {
            assert!(
                Instant::now() < end,
                "tor did not open its control socket within 20 s; log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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

/// `tor --version`'s version number, e.g. "0.4.9.11".
pub fn tor_version() -> String {
    let out = Command::new("tor")
        .arg("--version")
        .output()
        .expect("tor --version");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(2)
        .unwrap_or("")
        .trim_end_matches('.')
        .to_owned()
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
