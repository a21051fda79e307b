//! The binary as an admin meets it: config errors, check-config, client keys, systemd notify,
//! clean shutdown.

mod support;

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{http, poll, process};

const BIN: &str = env!("CARGO_BIN_EXE_securedrop-tor-exporter");

/// An empty drop-in folder, so the machine's own /etc/securedrop-tor-exporter/config.d stays out.
fn empty_config_dir() -> String {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-empty-config.d");
    std::fs::create_dir_all(&d).unwrap();
    d.display().to_string()
}

fn exporter() -> Command {
    let mut c = Command::new(BIN);
    // Keep the machine's own configuration and environment out of the tests.
    c.args(["--config.dir", &empty_config_dir()]);
    c.env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID");
    c
}

/// The binary for `client-key`, which takes no configuration flags.
fn key_tool() -> Command {
    Command::new(BIN)
}

fn config_file(content: &str) -> support::temp_dir::NamedTempFile {
    let mut f = support::temp_dir::Builder::new()
        .suffix(".toml")
        .tempfile()
        .unwrap();
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
    let addr = securedrop_tor_exporter::control::OnionAddress::from_public_key(&[5; 32]);
    let addr = addr.expose();
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

/// No config error repeats an onion address, wherever the admin put it: the role mapping written
/// the wrong way round (address as key), an address as `log.level`, or either through an
/// environment variable (whose name then holds the address in upper case).
#[test]
fn config_errors_never_repeat_an_address_wherever_it_stands() {
    let addr = securedrop_tor_exporter::control::OnionAddress::from_public_key(&[6; 32]);
    let addr = addr.expose().to_owned();
    let upper = addr.to_ascii_uppercase();
    let wrong_way = config_file(&format!(
        "[onion_services]\n\"{addr}.onion\" = \"source\"\n"
    ));
    let level = config_file(&format!("[log]\nlevel = \"{addr}\"\n"));
    let cases: Vec<(&str, Command)> = vec![
        ("mapping the wrong way round", {
            let mut c = exporter();
            c.args(["--config", &wrong_way.path().display().to_string()]);
            c
        }),
        ("an address as log.level", {
            let mut c = exporter();
            c.args(["--config", &level.path().display().to_string()]);
            c
        }),
        ("the wrong way round, from the environment", {
            let mut c = exporter();
            c.env(
                format!("SECUREDROP_TOR_EXPORTER_ONION_SERVICES__{upper}"),
                "source",
            );
            c
        }),
        ("an address as log.level, from the environment", {
            let mut c = exporter();
            c.env("SECUREDROP_TOR_EXPORTER_LOG__LEVEL", &addr);
            c
        }),
    ];
    for (what, mut c) in cases {
        let out = c.arg("check-config").output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{what}: accepted: {all}");
        assert!(
            !all.to_ascii_lowercase().contains(&addr),
            "{what}: the address is in the error: {all}"
        );
        assert!(
            all.contains("<onion address>") || all.contains("role name"),
            "{what}: {all}"
        );
    }
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
    let d = support::temp_dir::tempdir().unwrap();
    let auth = d.path().join("admin.auth");
    let key = d.path().join("admin.key");
    let host = d.path().join("hostname");
    let addr = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx";
    std::fs::write(&host, format!("{addr}.onion\n")).unwrap();
    let gen_out = key_tool()
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

    let show = key_tool()
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

    let public = key_tool()
        .args(["client-key", "public", "--private-key-file"])
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&public.stdout).trim(),
        std::fs::read_to_string(&auth).unwrap().trim()
    );

    let again = key_tool()
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
    let d = support::temp_dir::tempdir().unwrap();
    let sock_path = d.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // systemd sets WATCHDOG_PID to the service's PID; `exec` keeps the shell's PID for the exporter.
    let mut child = Command::new("sh")
        .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" \"$@\"", BIN])
        .args(["--config.dir", &empty_config_dir()])
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
        .stderr(std::fs::File::create(d.path().join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    // The socket's 200 ms read timeout paces the loop.
    let _ = poll::wait_for(
        "notifications",
        Duration::from_secs(10),
        Duration::ZERO,
        || {
            if let Ok(n) = sock.recv(&mut buf) {
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                seen.push('\n');
            }
            let all = seen.contains("READY=1")
                && seen.matches("WATCHDOG=1").count() >= 2
                && seen.contains("STATUS=");
            all.then_some(()).ok_or_else(String::new)
        },
    );
    let _ = process::send_signal(child.id(), process::SIGTERM);
    let status = match process::wait_exit(&mut child, Duration::from_secs(10)) {
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
    // Logs written to a file (or the journal) carry no colour codes.
    let log = std::fs::read_to_string(d.path().join("stderr.log")).unwrap();
    assert!(log.contains("tor is unreachable"), "{log}");
    assert!(!log.contains('\x1b'), "colour codes in a log file: {log:?}");
}

/// The messages a newcomer meets first, pinned word for word: each names the file, variable or
/// flag, the key and what was expected, with no nested backticks and no cause said twice.
#[test]
fn first_hour_messages_are_pinned() {
    let dir = support::temp_dir::tempdir().unwrap();
    let file = |name: &str, content: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    };
    let real = securedrop_tor_exporter::control::OnionAddress::from_public_key(&[9; 32])
        .expose()
        .to_owned();
    let mut typo = real.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let unknown = file("unknown.toml", "[tor]\ncontrl_address = \"x\"\n");
    let level = file("level.toml", "[log]\nlevel = \"loud\"\n");
    let onion = file(
        "onion.toml",
        &format!("[onion_services]\nsource = \"{typo}\"\n"),
    );
    let missing_hostname = dir.path().join("no-hostname").display().to_string();
    let key = dir.path().join("admin.key").display().to_string();
    let auth = dir.path().join("admin.auth").display().to_string();
    let out = key_tool()
        .args(["client-key", "generate", "--auth-file", &auth])
        .args(["--private-key-file", &key])
        .output()
        .unwrap();
    assert!(out.status.success());
    let e = "securedrop-tor-exporter: error: ";
    /// (arguments, an environment variable to set, the whole message)
    type Case<'a> = (Vec<&'a str>, Option<(&'a str, &'a str)>, String);
    let cases: Vec<Case> = vec![
        (
            vec!["check-config", "--config", &unknown],
            None,
            format!(
                "{e}invalid configuration: key `tor.contrl_address`: unknown key `contrl_address`; expected one of the keys of [tor]: control_address, cookie_file, password_file, refresh_interval, timeout, max_backoff (in {unknown})"
            ),
        ),
        (
            vec!["check-config"],
            Some(("SECUREDROP_TOR_EXPORTER_TOR__TIMEOUT", "forever")),
            format!(
                "{e}invalid configuration: key `tor.timeout`: invalid value string \"forever\", expected a duration (from environment variable SECUREDROP_TOR_EXPORTER_TOR__TIMEOUT)"
            ),
        ),
        (
            vec!["check-config", "--web.listen-address", "localhost:9747"],
            None,
            format!(
                "{e}invalid configuration: key `web.listen_address`: invalid socket address syntax; expected IP:PORT, e.g. 127.0.0.1:9747 or [::1]:9747 (an IP address, not a host name) (from command-line flag)"
            ),
        ),
        (
            vec!["check-config", "--config", &level],
            None,
            format!(
                "{e}invalid configuration: key `log.level`: `loud` is not one of: error, warn, info, debug, trace (in {level})"
            ),
        ),
        (
            vec!["check-config", "--config", &onion],
            None,
            format!(
                "{e}invalid configuration: key `onion_services.source` (in {onion}): expected a v3 onion address for role `source`, but its checksum does not match (a mistyped, missing or swapped character?)"
            ),
        ),
        (
            vec!["check-config", "--config.dir", "/nonexistent/config.d"],
            None,
            format!("{e}config directory /nonexistent/config.d (--config.dir) does not exist"),
        ),
        (
            vec![
                "client-key",
                "show",
                "--private-key-file",
                &key,
                "--hostname-file",
                &missing_hostname,
            ],
            None,
            format!("{e}cannot read {missing_hostname}: No such file or directory (os error 2)"),
        ),
    ];
    for (args, env, want) in cases {
        // No helper here: the --config.dir case must not get the helper's folder.
        let mut c = Command::new(BIN);
        if args[0] == "check-config" && !args.contains(&"--config.dir") {
            c.args(["--config.dir", &empty_config_dir()]);
        }
        c.args(&args).env_remove("NOTIFY_SOCKET");
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert_eq!(err.trim_end(), want, "{args:?}");
        assert!(!err.contains(&real) && !err.contains(&typo), "{err}");
    }
}

#[test]
fn client_key_help_lists_only_its_own_flags() {
    let help = |args: &[&str]| {
        let out = Command::new(BIN).args(args).arg("--help").output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for sub in [
        &["client-key"][..],
        &["client-key", "show"],
        &["client-key", "generate"],
        &["onion-label"],
    ] {
        let h = help(sub);
        assert!(
            !h.contains("--tor.timeout") && !h.contains("--config"),
            "{sub:?}:\n{h}"
        );
    }
    assert!(help(&["client-key", "show"]).contains("--hostname-file"));
    for sub in [&[][..], &["serve"], &["check-config"]] {
        assert!(help(sub).contains("--tor.timeout"), "{sub:?}");
    }
    // Flags before the subcommand still count, and those after it win.
    let out = exporter()
        .args([
            "--tor.timeout",
            "3s",
            "check-config",
            "--tor.refresh-interval",
            "7s",
        ])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("timeout = \"3s\"") && shown.contains("refresh_interval = \"7s\""),
        "{shown}"
    );
}

/// Socket activation (what the package's `.socket` unit does): the exporter serves on the
/// socket it is handed, also when `web.listen_address` names another address (the package points
/// the onion service at the socket; a changed address waits for `dpkg-reconfigure`), and then
/// warns naming both. Uses systemd's own `systemd-socket-activate`; skipped without it.
#[test]
fn serves_on_the_socket_systemd_passes_and_warns_when_the_config_names_another() {
    let Some(activate) = socket_activate() else {
        eprintln!("skipped: systemd-socket-activate is not installed");
        return;
    };
    let free_port = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // Serves one GET /metrics on SOCKET_PORT with web.listen_address on LISTEN_PORT; the body
    // and the exporter's log.
    let scrape = |socket_port: u16, listen_port: u16| {
        let mut child = Command::new(&activate)
            .args(["-l", &format!("127.0.0.1:{socket_port}"), BIN, "serve"])
            .args(["--config.dir", &empty_config_dir()])
            .args(["--web.listen-address", &format!("127.0.0.1:{listen_port}")])
            .args(["--tor.control-address", "unix:/nonexistent/control"])
            .args(["--log.target", "stderr"])
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // systemd-socket-activate binds at once and starts the program at the first connection.
        let s = poll::wait_for(
            "a connection",
            Duration::from_secs(10),
            Duration::from_millis(20),
            || std::net::TcpStream::connect(("127.0.0.1", socket_port)).map_err(|e| e.to_string()),
        )
        .unwrap_or_else(|e| panic!("cannot connect: {}", e.last));
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let r = http::get_on(s, "x", "/metrics", &[]);
        let _ = process::stop(&mut child, Duration::from_secs(10));
        let mut log = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
        let r = r.unwrap_or_else(|e| panic!("no answer: {e}\n{log}"));
        (r, log)
    };
    let served = |r: &http::Response, log: &str| {
        assert!(
            r.status == 200 && r.body.contains("tor_exporter_build_info"),
            "{r:?}\n{log}"
        );
    };

    let port = free_port();
    let (r, log) = scrape(port, port);
    served(&r, &log);
    assert!(log.contains("socket activation"), "{log}");
    assert!(!log.contains("systemd passed"), "{log}");

    let (socket_port, listen_port) = (free_port(), free_port());
    let (r, log) = scrape(socket_port, listen_port);
    served(&r, &log);
    assert!(
        log.contains(&format!(
            "systemd passed a socket on 127.0.0.1:{socket_port}, but web.listen_address is 127.0.0.1:{listen_port}: serving on 127.0.0.1:{socket_port}"
        )) && log.contains("WARN")
            && log.contains("dpkg-reconfigure securedrop-tor-exporter"),
        "{log}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", listen_port)).is_err(),
        "the exporter must not also bind web.listen_address"
    );
}

fn socket_activate() -> Option<String> {
    [
        "/usr/bin/systemd-socket-activate",
        "/lib/systemd/systemd-socket-activate",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .map(str::to_owned)
}

/// A passed socket outside loopback is refused as `web.listen_address` would be, unless
/// `web.allow_non_loopback` allows it. The wildcard socket is bound in a network namespace of the
/// test's own (`unshare -n`, only `lo`); skipped where that cannot be made (not root, no `ip`).
#[test]
fn refuses_a_passed_socket_outside_loopback_unless_allowed() {
    let Some(activate) = socket_activate() else {
        eprintln!("skipped: systemd-socket-activate is not installed");
        return;
    };
    if !Command::new("unshare")
        .args(["-n", "ip", "link", "set", "lo", "up"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("skipped: cannot make a network namespace (unshare -n, ip)");
        return;
    }
    // In the namespace: the socket on 0.0.0.0:9747, one connection (bounded retries while
    // systemd-socket-activate binds) to start the exporter, then the exporter's own exit status
    // (`timeout` ends one that keeps serving).
    let script = r#"ip link set lo up || exit 90
timeout 5 "$0" -l 0.0.0.0:9747 "$@" &
pid=$!
for _ in $(seq 200); do
    if (exec 3<>/dev/tcp/127.0.0.1/9747) 2>/dev/null; then break; fi
    sleep 0.05
done
wait "$pid""#;
    let run = |extra: &[&str]| {
        let out = Command::new("timeout")
            .args([
                "20", "unshare", "-n", "bash", "-c", script, &activate, BIN, "serve",
            ])
            .args(["--config.dir", &empty_config_dir()])
            .args(["--tor.control-address", "unix:/nonexistent/control"])
            .args(["--log.target", "stderr"])
            .args(extra)
            .env_remove("NOTIFY_SOCKET")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, log) = run(&[]);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("systemd passed a socket on 0.0.0.0:9747, outside loopback"),
        "{log}"
    );
    // Allowed: it serves there until `timeout` stops it (124), warning that the configured
    // address (the default) is another.
    let (code, log) = run(&["--web.allow-non-loopback"]);
    assert_eq!(code, Some(124), "{log}");
    assert!(log.contains("using the socket systemd holds"), "{log}");
    assert!(
        log.contains("on 0.0.0.0:9747, but web.listen_address is 127.0.0.1:9747"),
        "{log}"
    );
}

/// `check-config --print listen-address`: the one value the package asks for, alone on standard
/// output; and `torrc onion-target`, where tor's HiddenServicePort points, which no
/// configuration moves.
#[test]
fn check_config_prints_listen_address_and_the_onion_target_stays() {
    let print = |listen: Option<&str>| {
        let mut c = exporter();
        c.arg("check-config").args(["--print", "listen-address"]);
        if let Some(l) = listen {
            c.args(["--web.listen-address", l, "--web.allow-non-loopback"]);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(out.stderr.is_empty(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    for (listen, socket) in [
        (None, "127.0.0.1:9747"),
        (Some("127.0.0.1:9748"), "127.0.0.1:9748"),
        (Some("[::]:9750"), "[::]:9750"),
        (Some("192.0.2.7:9751"), "192.0.2.7:9751"),
    ] {
        assert_eq!(print(listen), format!("{socket}\n"), "{listen:?}");
    }
    // A configuration that does not load prints nothing and fails.
    let out = exporter()
        .args(["check-config", "--print", "listen-address"])
        .args(["--web.listen-address", "0.0.0.0:9747"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "{out:?}");
    // The onion target: a fixed path, asked without any configuration.
    let target = |path: bool| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_securedrop-tor-exporter"));
        c.env_clear().args(["torrc", "onion-target"]);
        if path {
            c.arg("--path");
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        target(false),
        "unix:/var/lib/tor/securedrop-tor-exporter.sock\n"
    );
    assert_eq!(target(true), "/var/lib/tor/securedrop-tor-exporter.sock\n");
}

/// Every subcommand `--help` lists, and each of their own subcommands, has its entry in the man
/// page (the package suite checks the flags).
#[test]
fn the_man_page_documents_every_subcommand() {
    let man = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/debian/securedrop-tor-exporter.1"
    ))
    .unwrap()
    .replace("\\-", "-");
    let commands = |args: &[&str]| -> Vec<String> {
        let out = Command::new(BIN).args(args).arg("--help").output().unwrap();
        let help = String::from_utf8(out.stdout).unwrap();
        help.split("\nCommands:\n")
            .nth(1)
            .map(|rest| {
                rest.lines()
                    .take_while(|l| l.starts_with("  "))
                    .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let top = commands(&[]);
    assert!(top.contains(&"systemd-generator".to_owned()), "{top:?}");
    for sub in &top {
        let nested = commands(&[sub]);
        if nested.is_empty() {
            assert!(
                man.contains(&format!(".B {sub}")) || man.contains(&format!("\"{sub} ")),
                "the man page has no entry for {sub}"
            );
        }
        for n in nested {
            assert!(
                man.contains(&format!("{sub} {n}")),
                "the man page has no entry for {sub} {n}"
            );
        }
    }
}
