//! The binary as an admin meets it: config errors, check-config, client keys, systemd notify,
//! clean shutdown.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_securedrop-tor-exporter");

fn exporter() -> Command {
    let mut c = Command::new(BIN);
    // Keep the machine's own configuration and environment out of the tests.
    c.args(["--config.dir", "/nonexistent"]);
    c.env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID");
    c
}

fn config_file(content: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(content.as_bytes()).unwrap();
    f
}

fn check(args: &[&str]) -> (bool, String) {
    let out = exporter().args(args).arg("check-config").output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn missing_config_file_is_an_error_naming_it() {
    let (ok, err) = check(&["--config", "/nonexistent/config.toml"]);
    assert!(!ok);
    assert!(
        err.contains("/nonexistent/config.toml") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn unknown_key_bad_value_and_non_loopback_are_errors_naming_file_key_and_expectation() {
    // (file content, what the message must name besides the file)
    let cases = [
        (
            "[tor]\nrefresh_intervall = \"5s\"\n",
            ["refresh_intervall", "expected"],
        ),
        (
            "[traffic]\nquantum_bytes = \"lots\"\n",
            ["traffic.quantum_bytes", "u64"],
        ),
        (
            "[web]\nlisten_address = \"0.0.0.0:9747\"\n",
            ["web.listen_address", "loopback"],
        ),
    ];
    for (content, wanted) in cases {
        let f = config_file(content);
        let path = f.path().display().to_string();
        let (ok, err) = check(&["--config", &path]);
        assert!(!ok && err.contains(&path), "{err}");
        for w in wanted {
            assert!(err.contains(w), "{w} missing in: {err}");
        }
    }

    let (ok, err) = check(&["--web.listen-address", "192.0.2.1:9747"]);
    assert!(
        !ok && err.contains("web.listen_address") && err.contains("command-line flag"),
        "{err}"
    );
}

#[test]
fn env_vars_are_read_and_named_in_errors() {
    let out = exporter()
        .env("SECUREDROP_TOR_EXPORTER_TOR__TIMEOUT", "forever")
        .arg("check-config")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("tor.timeout")
            && err.contains("SECUREDROP_TOR_EXPORTER_"),
        "{err}"
    );
    let out = exporter()
        .env("SECUREDROP_TOR_EXPORTER_TOR__TIMEOUT", "750ms")
        .arg("check-config")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("timeout = \"750ms\""));
}

#[test]
fn check_config_redacts_onion_addresses() {
    let addr = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx";
    let f = config_file(&format!("[onion_services]\nsource = \"{addr}\"\n"));
    let out = exporter()
        .args(["--config", &f.path().display().to_string(), "check-config"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(addr), "{all}");
    assert!(all.contains("source = \"<redacted>\""), "{all}");
}

#[test]
fn serve_with_bad_config_exits_before_listening() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let f = config_file("[tor]\nbogus = 1\n");
    let out = exporter()
        .args([
            "--config",
            &f.path().display().to_string(),
            "--web.listen-address",
            &format!("127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing may listen"
    );
}

#[test]
fn help_and_version() {
    let out = exporter().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--web.listen-address",
        "--tor.control-address",
        "--config",
        "--log.level",
        "check-config",
        "client-key",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    let out = exporter().arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("securedrop-tor-exporter {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn client_key_generate_show_public() {
    let d = tempfile::tempdir().unwrap();
    let auth = d.path().join("admin.auth");
    let key = d.path().join("admin.key");
    let host = d.path().join("hostname");
    let addr = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx";
    std::fs::write(&host, format!("{addr}.onion\n")).unwrap();
    let gen_out = exporter()
        .args(["client-key", "generate", "--auth-file"])
        .arg(&auth)
        .arg("--private-key-file")
        .arg(&key)
        .output()
        .unwrap();
    assert!(gen_out.status.success());
    let private = std::fs::read_to_string(&key).unwrap();
    let private_b32 = private.trim().strip_prefix("descriptor:x25519:").unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&gen_out.stdout),
        String::from_utf8_lossy(&gen_out.stderr)
    );
    assert!(
        !printed.contains(private_b32),
        "generate must not print the private key"
    );

    let show = exporter()
        .args(["client-key", "show", "--private-key-file"])
        .arg(&key)
        .arg("--hostname-file")
        .arg(&host)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&show.stdout).trim(),
        format!("{addr}:descriptor:x25519:{private_b32}")
    );

    let public = exporter()
        .args(["client-key", "public", "--private-key-file"])
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&public.stdout).trim(),
        std::fs::read_to_string(&auth).unwrap().trim()
    );

    let again = exporter()
        .args(["client-key", "generate", "--auth-file"])
        .arg(&auth)
        .arg("--private-key-file")
        .arg(&key)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), private);
}

/// READY=1 once listening, WATCHDOG=1 pings, STATUS=, and exit 0 on SIGTERM.
#[test]
fn systemd_notify_watchdog_and_clean_sigterm() {
    let d = tempfile::tempdir().unwrap();
    let sock_path = d.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // systemd sets WATCHDOG_PID to the service's PID; `exec` keeps the shell's PID for the exporter.
    let mut child = Command::new("sh")
        .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" \"$@\"", BIN])
        .args(["--config.dir", "/nonexistent"])
        .args([
            "--web.listen-address",
            "127.0.0.1:0",
            "--tor.control-address",
            "unix:/nonexistent/control",
            "--log.target",
            "stderr",
        ])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline
        && !(seen.contains("READY=1")
            && seen.matches("WATCHDOG=1").count() >= 2
            && seen.contains("STATUS="))
    {
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            seen.push('\n');
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut status = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = match status {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("exporter did not stop within 10 s of SIGTERM");
        }
    };
    assert!(seen.contains("READY=1"), "{seen}");
    assert!(seen.matches("WATCHDOG=1").count() >= 2, "{seen}");
    assert!(seen.contains("STATUS=tor unreachable"), "{seen}");
    assert!(status.success(), "exit status {status:?}");
}
