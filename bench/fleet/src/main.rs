//! The fleet benchmark: one monitoring host's tor and Prometheus scraping N (default 200)
//! client-authorized v3 onion services on the private Tor network (tests/support/privnet/, all on
//! 127.0.0.1 in a network namespace that has only loopback). See docs/benchmark.md, "A fleet
//! through one monitoring host". Run by bench/fleet.sh, which installs and builds what it needs
//! and passes everything in BENCH_FLEET_* variables.
//!
//! What is measured, and why that way:
//! - **time until all targets are up**: from Prometheus' start (its tor already bootstrapped with
//!   every key, but no descriptor fetched yet: a monitoring host coming back from a reboot) until
//!   `count(up{job="securedrop-tor"} == 1)` is N, polled once a second through its HTTP API;
//! - **scrape duration p50/p90/p99/max** from Prometheus' own `scrape_duration_seconds` of every
//!   scrape of every target in a fixed window that starts once all are up;
//! - **the monitoring tor's RSS and CPU seconds** (`/proc/<pid>/status` VmRSS, `/proc/<pid>/stat`
//!   utime+stime) before Prometheus starts, over the ramp-up and over the window, per target;
//!   the same for the hosting tors, Prometheus and the exporters, to see who pays what (they
//!   share the machine: the servers' side is not a fleet's, the monitoring side is);
//! - **failures**: scrapes with `up == 0` in the ramp-up and in the window.
//!
//! Every process it starts, it stops by PID (the harness stops its tors; [`Proc`] the hosting
//! tors, exporters and Prometheus), also when it panics; if the benchmark itself is killed, the
//! kernel sends them SIGTERM (PR_SET_PDEATHSIG). Every wait has a deadline.

mod support;

use std::fmt::Write as _;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::privnet::{wait_for, x25519_keypair, Options, PrivNet, ServiceSpec};
use support::process;

/// The job name the role's template gives the servers (tor_monitoring_job's default).
const JOB: &str = "securedrop-tor";
/// First port of the servers' exporters inside the namespace: above the harness's ports
/// (allocated from 10000 up, one per service) and below the kernel's ephemeral range, so nothing
/// else in the fresh namespace can hold them. Needed before the network starts (they are in the
/// hosting tor's torrc).
const EXPORTER_PORT_BASE: u16 = 20080;
/// Prometheus inside the namespace.
const PROMETHEUS_PORT: u16 = 19090;
/// The monitoring host's own exporter, where the role's template scrapes it.
const SELF_EXPORTER_PORT: u16 = 9747;
/// The services' first HiddenServicePort: the harness gives every service one, to a target port
/// of its own; nothing listens there and nothing connects to it. Port 80 of every service goes
/// to an exporter instead (extra_torrc), as on a server (`HiddenServicePort 80 127.0.0.1:9747`).
const UNUSED_VIRT_PORT: u16 = 9;
/// How often RSS is sampled in the window.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn env_num(name: &str, default: u64) -> u64 {
    let v = env_or(name, &default.to_string());
    v.parse()
        .unwrap_or_else(|_| panic!("{name} must be a whole number, not {v:?}"))
}

/// A Prometheus duration of the role's (`1m`, `30s`, `90s`) in seconds.
fn prom_seconds(d: &str) -> u64 {
    let (num, unit) = d.split_at(d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len()));
    let n: u64 = num
        .parse()
        .unwrap_or_else(|_| panic!("unsupported duration {d:?}"));
    match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => panic!("unsupported duration {d:?} (s, m or h)"),
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

extern "C" {
    fn prctl(option: i32, ...) -> i32;
}
const PR_SET_PDEATHSIG: i32 = 1;

/// A process of the benchmark inside the namespace (nsenter execs it, so the child's PID is the
/// program's), its output in a log; SIGTERM, then SIGKILL after 10 s, when dropped.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(net: &PrivNet, name: &str, program: &str, args: &[String], log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = net.netns().command(program);
        // Killed with the benchmark (Ctrl-C, a kill) before its drops can run: the kernel sends
        // SIGTERM when the thread that started it (main) ends. The tors have
        // __OwningControllerProcess for the same reason.
        // SAFETY: prctl(2) with PR_SET_PDEATHSIG only sets a flag of the new process; it is
        // async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                if prctl(PR_SET_PDEATHSIG, process::SIGTERM as std::ffi::c_ulong) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({program}): {e}"));
        Proc {
            name: name.to_string(),
            child,
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(3000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        format!("--- {} log (tail) ---\n{}", self.name, &text[start..])
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        process::stop(&mut self.child, Duration::from_secs(10));
    }
}

/// CPU seconds (user + system) and VmRSS (KiB) of one process.
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    cpu_s: f64,
    rss_kib: u64,
}

fn usage(pid: u32, ticks: f64) -> Usage {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5), i.e. 12th and 13th after the name.
    let cpu = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Usage {
        cpu_s: (cpu(11) + cpu(12)) / ticks,
        rss_kib,
    }
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Every sample value of every series in a Prometheus range-vector answer
/// (`"values":[[t,"v"],...]` once per series).
fn all_range_values(json: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut rest = json;
    while let Some(start) = rest.find("\"values\":[") {
        rest = &rest[start + "\"values\":[".len()..];
        let end = rest.find("]]").map(|e| e + 1).unwrap_or(0);
        out.extend(rest[..end].split(']').filter_map(|pair| {
            let pair = pair.trim_start_matches(',').trim_start_matches('[');
            let (_, v) = pair.split_once(',')?;
            v.trim_matches('"').parse::<f64>().ok()
        }));
        rest = &rest[end..];
    }
    out
}

/// The value of a one-element instant vector or a scalar (`"value":[t,"v"]`); None if empty.
fn instant_value(json: &str) -> Option<f64> {
    let start = json.find("\"value\":[")? + "\"value\":[".len();
    let rest = &json[start..];
    let (_, v) = rest[..rest.find(']')?].split_once(',')?;
    v.trim_matches('"').parse().ok()
}

/// Waits (10 s at most) until `pid` runs `program`: nsenter execs it, so the PID measured is the
/// program's own, but only once the exec has happened.
fn is_program(pid: u32, program: &str) {
    support::poll::wait_for(
        "the exec",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || match comm(pid) {
            c if c == program => Ok(()),
            c => Err(format!("pid {pid} runs {c:?}, not {program}")),
        },
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
}

fn main() {
    let repo = PathBuf::from(env_or(
        "BENCH_FLEET_REPO",
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .display()
            .to_string(),
    ));
    let exporter_bin = env_or(
        "BENCH_EXPORTER_BIN",
        &repo
            .join("target/release/securedrop-tor-exporter")
            .display()
            .to_string(),
    );
    let n = env_num("BENCH_FLEET_TARGETS", 200) as usize;
    let per_exporter = env_num("BENCH_FLEET_PER_EXPORTER", 100) as usize;
    let interval = env_or("BENCH_FLEET_INTERVAL", "1m");
    let timeout = env_or("BENCH_FLEET_TIMEOUT", "30s");
    let interval_s = prom_seconds(&interval);
    let window_s = env_num("BENCH_FLEET_WINDOW", 5 * interval_s);
    assert!(
        (1..=2000).contains(&n),
        "BENCH_FLEET_TARGETS must be 1..=2000 (the exporters' ports start at {EXPORTER_PORT_BASE})"
    );
    assert!(
        (1..=250).contains(&per_exporter),
        "BENCH_FLEET_PER_EXPORTER must be 1..=250 (an exporter has 256 connection slots)"
    );
    assert!(
        window_s >= interval_s,
        "BENCH_FLEET_WINDOW must be at least one scrape interval ({interval_s} s)"
    );
    let n_exporters = n.div_ceil(per_exporter);
    let ticks: f64 = String::from_utf8(
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .expect("getconf")
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .expect("CLK_TCK");

    println!(
        "fleet: {n} targets, {n_exporters} exporter(s) ({per_exporter} targets each at most), \
         scrape_interval {interval}, scrape_timeout {timeout}, window {window_s} s; load {}",
        loadavg()
    );

    let tmp = support::temp_dir::Builder::new()
        .prefix("bench-fleet-")
        .tempdir()
        .unwrap();
    let t = tmp.path();

    // --- One client key per server, as each SecureDrop instance's server makes its own.
    let keys_started = Instant::now();
    let keys: Vec<(String, String)> = (0..n)
        .map(|_| x25519_keypair().expect("x25519 key pair (openssl)"))
        .collect();
    let keys_s = keys_started.elapsed().as_secs_f64();

    // --- The servers' side: N client-authorized onion services, port 80 of each to one of the
    // exporters. The harness's onion node declares the first; the others are hosted by tors
    // started here, one per exporter ("host<e>", each with up to BENCH_FLEET_PER_EXPORTER
    // HiddenServiceDirs and its exporter watching it), on the same private network. (With all
    // 200 declared on the harness's onion node, its readiness, which waits for an HS_DESC
    // UPLOADED event per declared service, recorded 1 of 200 and then none, while tor's log
    // showed the uploads; so the benchmark checks readiness itself, below, by fetching every
    // service through the network.)
    let role = |i: usize| format!("srv{i:04}");
    let group = |i: usize| i / per_exporter;
    let exporter_port = |i: usize| EXPORTER_PORT_BASE + group(i) as u16;
    let mut first = ServiceSpec::new(&role(0));
    first.virt_port = UNUSED_VIRT_PORT;
    first.authorized_client = Some(format!("descriptor:x25519:{}", keys[0].0));
    first.extra_torrc = vec![format!(
        "HiddenServicePort 80 127.0.0.1:{}",
        exporter_port(0)
    )];
    let private_dir = |dir: &Path| {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    };
    let host_dirs: Vec<PathBuf> = (0..n_exporters)
        .map(|e| t.join(format!("host{e}")))
        .collect();
    let mut host_services: Vec<Vec<String>> = vec![Vec::new(); n_exporters];
    let mut hs_dirs = vec![PathBuf::new()];
    for (i, (public, _)) in keys.iter().enumerate().skip(1) {
        let dir = host_dirs[group(i)].join("hs").join(role(i));
        private_dir(&host_dirs[group(i)]);
        private_dir(&host_dirs[group(i)].join("hs"));
        private_dir(&dir.join("authorized_clients"));
        private_dir(&dir);
        let auth = dir.join("authorized_clients/monitor.auth");
        std::fs::write(&auth, format!("descriptor:x25519:{public}\n")).unwrap();
        std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).unwrap();
        host_services[group(i)].push(format!("HiddenServiceDir {}", dir.display()));
        host_services[group(i)].push(format!(
            "HiddenServicePort 80 127.0.0.1:{}",
            exporter_port(i)
        ));
        hs_dirs.push(dir);
    }
    let opts = Options {
        services: vec![first],
        ..Options::default()
    };
    let net_started = Instant::now();
    let mut net = PrivNet::start_with(opts).expect("private tor network");
    // The harness's own figure: from launching the tors to ready, without the wait for the
    // machine-wide private-network lock that `net_started` includes.
    let net_s = net.timings().ready.as_secs_f64();
    println!(
        "network ready {net_s:.1} s after launch ({:.1} s with the wait for the machine's \
         private-network lock; keys {keys_s:.1} s); tor {}",
        net_started.elapsed().as_secs_f64(),
        net.tor_version()
    );

    // --- The hosting tors: the onion node's torrc (the network's shared lines, its
    // DirAuthority lines, __OwningControllerProcess) with their own folder, control socket and
    // services.
    let own = [
        "DataDirectory",
        "Log",
        "ControlSocket",
        "CookieAuthentication",
        "CookieAuthFile",
        "HiddenServiceDir",
        "HiddenServicePort",
    ];
    let base: Vec<String> = std::fs::read_to_string(&net.onion_node().torrc)
        .unwrap()
        .lines()
        .filter(|l| !own.contains(&l.split_whitespace().next().unwrap_or("")))
        .map(String::from)
        .collect();
    let mut hosts: Vec<(Proc, PathBuf, PathBuf)> = Vec::new(); // (tor, control socket, cookie)
    for (e, dir) in host_dirs.iter().enumerate() {
        private_dir(dir);
        let data = dir.join("data");
        private_dir(&data);
        let (control, cookie) = (dir.join("control"), dir.join("control_auth_cookie"));
        let mut lines = base.clone();
        lines.extend([
            format!("DataDirectory {}", data.display()),
            format!("Log notice file {}", dir.join("notice.log").display()),
            format!("ControlSocket {}", control.display()),
            "CookieAuthentication 1".into(),
            format!("CookieAuthFile {}", cookie.display()),
        ]);
        lines.extend(host_services[e].iter().cloned());
        let torrc = dir.join("torrc");
        std::fs::write(&torrc, lines.join("\n") + "\n").unwrap();
        let tor = Proc::spawn(
            &net,
            &format!("host{e}"),
            "tor",
            &[
                "--defaults-torrc".into(),
                "/dev/null".into(),
                "-f".into(),
                torrc.display().to_string(),
            ],
            dir.join("stdout.log"),
        );
        hosts.push((tor, control, cookie));
    }
    for (tor, control, cookie) in &hosts {
        is_program(tor.pid(), "tor");
        wait_for(
            "a hosting tor at bootstrap 100",
            Duration::from_secs(180),
            || {
                let mut c =
                    support::privnet::Control::connect(control, cookie, Duration::from_secs(10))
                        .map_err(|e| e.to_string())?;
                let phase = c
                    .getinfo("status/bootstrap-phase")
                    .map_err(|e| e.to_string())?;
                if phase.contains("PROGRESS=100") {
                    Ok(())
                } else {
                    Err("bootstrapping".to_string())
                }
            },
        )
        .unwrap_or_else(|e| panic!("{e:?}\n{}", tor.log_tail()));
    }
    let hosts_s = net_started.elapsed().as_secs_f64();
    // tor writes `hostname` ~0.3 s after start.
    let onions: Vec<String> = (0..n)
        .map(|i| {
            if i == 0 {
                return net.service(&role(0)).onion.clone();
            }
            let h = wait_for("a hostname file", Duration::from_secs(30), || {
                std::fs::read_to_string(hs_dirs[i].join("hostname")).map_err(|e| e.to_string())
            })
            .unwrap();
            let onion = h.trim().trim_end_matches(".onion").to_string();
            assert_eq!(onion.len(), 56, "a v3 address in {}'s hostname", role(i));
            onion
        })
        .collect();
    println!(
        "{} hosting tor(s) bootstrapped {hosts_s:.1} s after the network's start was asked for",
        hosts.len()
    );

    // --- The exporters: the release binary, flags only, each against its hosting tor.
    let empty_dir = t.join("empty-config.d");
    std::fs::create_dir(&empty_dir).unwrap();
    let empty_file = t.join("empty.toml");
    std::fs::write(&empty_file, "").unwrap();
    let exporter_args = |control: &Path, cookie: &Path, port: u16| -> Vec<String> {
        vec![
            "--config".into(),
            empty_file.display().to_string(),
            "--config.dir".into(),
            empty_dir.display().to_string(),
            "--tor.control-address".into(),
            format!("unix:{}", control.display()),
            "--tor.cookie-file".into(),
            cookie.display().to_string(),
            "--web.listen-address".into(),
            format!("127.0.0.1:{port}"),
            "--log.target".into(),
            "stderr".into(),
        ]
    };
    let exporters: Vec<Proc> = hosts
        .iter()
        .enumerate()
        .map(|(e, (_, control, cookie))| {
            let port = EXPORTER_PORT_BASE + e as u16;
            Proc::spawn(
                &net,
                &format!("exporter{e}"),
                &exporter_bin,
                &exporter_args(control, cookie, port),
                t.join(format!("exporter{e}.log")),
            )
        })
        .collect();

    // --- The monitoring host's tor gets every key (as the role installs them) ...
    let auth_dir = net.client().dir.join("onion_auth");
    for (i, (_, private)) in keys.iter().enumerate() {
        let path = auth_dir.join(format!("{}-metrics.auth_private", role(i)));
        std::fs::write(
            &path,
            format!("{}:descriptor:x25519:{private}\n", onions[i]),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    net.client()
        .control()
        .and_then(|mut c| {
            c.command_ok("SIGNAL RELOAD")
                .map_err(|e| support::privnet::Error(e.to_string()))
        })
        .expect("the monitoring tor reloads its keys");
    // ... and every service must answer through the network (descriptor published, introduction
    // and rendezvous work, exporter behind it) before anything is measured: 8 fetches at a time,
    // each retried with 60 s per try (docs/privnet.md) until a common deadline.
    let fetch_started = Instant::now();
    let fetch_deadline = Duration::from_secs(env_num("BENCH_FLEET_PUBLISH_DEADLINE", 900));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> =
            (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        let mut failed = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if i >= n {
                                return failed;
                            }
                            let host = format!("{}.onion", onions[i]);
                            let left = fetch_deadline.saturating_sub(fetch_started.elapsed());
                            let r = wait_for("the service through the network", left, || match net
                                .http_get_via_client(&host, 80, "/metrics", Duration::from_secs(60))
                            {
                                Ok(r) if r.status == 200 => Ok(()),
                                Ok(r) => Err(format!("status {}", r.status)),
                                Err(e) => Err(format!("{e:?}")),
                            });
                            if let Err(e) = r {
                                // The error names the service's role and tor's SOCKS error only.
                                failed.push(format!("{}: {}", role(i), e.0));
                            }
                        }
                    })
                })
                .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {n} services never answered through the network: {}\n{}",
        failures.len(),
        failures[..failures.len().min(5)].join("; "),
        net.diagnostics()
    );
    println!(
        "every service answered through the network {:.1} s after the keys were loaded",
        fetch_started.elapsed().as_secs_f64()
    );
    // Then the monitoring tor restarts, as after a reboot of the monitoring host: every key, no
    // descriptor and no circuit yet. That is where Prometheus starts.
    net.restart_node("client", Duration::from_secs(180))
        .expect("the monitoring tor restarts with every key");
    let mon_pid = net.client().pid().expect("monitoring tor's pid");
    let host_pids: Vec<u32> = hosts.iter().map(|(p, _, _)| p.pid()).collect();
    is_program(mon_pid, "tor");

    // The monitoring host's own exporter, against its tor, where the template scrapes it.
    let mon = net.client();
    let self_exporter = Proc::spawn(
        &net,
        "self-exporter",
        &exporter_bin,
        &exporter_args(&mon.control_socket, &mon.cookie_file, SELF_EXPORTER_PORT),
        t.join("self-exporter.log"),
    );
    // The PIDs measured below are the exporters' own (comm is cut at 15 characters).
    for p in exporters.iter().chain(std::iter::once(&self_exporter)) {
        is_program(p.pid(), "securedrop-tor-");
    }
    let mut body_bytes = Vec::new();
    for (port, p) in (0..n_exporters)
        .map(|e| EXPORTER_PORT_BASE + e as u16)
        .zip(exporters.iter())
        .chain(std::iter::once((SELF_EXPORTER_PORT, &self_exporter)))
    {
        let len = wait_for("an exporter with tor_up 1", Duration::from_secs(60), || {
            let r = net
                .http_get_local(port, "/metrics", Duration::from_secs(5))
                .map_err(|e| format!("{e:?}"))?;
            if r.status == 200 && r.body.lines().any(|l| l.starts_with("tor_up 1")) {
                Ok(r.body.len())
            } else {
                Err(format!("status {}", r.status))
            }
        })
        .unwrap_or_else(|e| panic!("{e:?}\n{}", p.log_tail()));
        body_bytes.push(len);
    }
    println!(
        "exporters up; /metrics body (text format, loopback): {} B per server exporter, {} B the monitoring host's",
        body_bytes[0], body_bytes[n_exporters]
    );

    // --- Prometheus with the shipped template, rendered as the role renders it.
    let servers: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{{\"name\": \"{}\", \"onion\": \"{}\"}}",
                role(i),
                onions[i]
            )
        })
        .collect();
    let vars = format!(
        "{{\"tor_monitoring_servers\": [{}], \"tor_monitoring_job\": \"{JOB}\", \
         \"tor_monitoring_proxy_url\": \"socks5://127.0.0.1:{}\", \
         \"tor_monitoring_scrape_interval\": \"{interval}\", \"tor_monitoring_scrape_timeout\": \"{timeout}\", \
         \"tor_monitoring_self_exporter\": \"127.0.0.1:{SELF_EXPORTER_PORT}\", \
         \"tor_monitoring_self_instance\": \"monitor\", \"tor_monitoring_alertmanager\": \"127.0.0.1:9093\", \
         \"tor_monitoring_rules_dir\": \"{}\", \"tor_monitoring_site\": \"bench\"}}",
        servers.join(", "),
        net.socks_port(),
        repo.join("monitoring/rules").display()
    );
    let vars_file = t.join("vars.json");
    std::fs::write(&vars_file, vars).unwrap();
    let conf = process::run_ok(
        Command::new("python3")
            .arg(repo.join("monitoring/render.py"))
            .arg(repo.join("monitoring/prometheus/prometheus.yml.j2"))
            .arg(&vars_file),
        "render monitoring/prometheus/prometheus.yml.j2",
    );
    let prom_conf = t.join("prometheus.yml");
    std::fs::write(&prom_conf, &conf).unwrap();
    process::run_ok(
        Command::new("promtool")
            .args(["check", "config"])
            .arg(&prom_conf),
        "promtool check config",
    );
    let jobs_targets = conf.matches(".onion:80").count();
    assert_eq!(
        jobs_targets, n,
        "the rendered configuration has every target"
    );

    let mon_before = usage(mon_pid, ticks);
    let host_cpu = || -> f64 { host_pids.iter().map(|&p| usage(p, ticks).cpu_s).sum() };
    let host_before = host_cpu();
    let load_start = loadavg();
    let prom_start_unix = unix_now();
    let started = Instant::now();
    let prom = Proc::spawn(
        &net,
        "prometheus",
        "prometheus",
        &[
            format!("--config.file={}", prom_conf.display()),
            format!("--storage.tsdb.path={}", t.join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"),
        ],
        t.join("prometheus.log"),
    );
    is_program(prom.pid(), "prometheus");
    let query_at = |q: &str, at: Option<f64>| -> Result<String, String> {
        let mut path = format!("/api/v1/query?query={}", url_encode(q));
        if let Some(at) = at {
            let _ = write!(path, "&time={at:.3}");
        }
        let r = net
            .http_get_local(PROMETHEUS_PORT, &path, Duration::from_secs(20))
            .map_err(|e| format!("{e:?}"))?;
        if r.status == 200 {
            Ok(r.body)
        } else {
            Err(format!("status {}: {}", r.status, r.body))
        }
    };

    // --- Ramp-up: how many targets are up, once a second, until all are.
    let up_deadline =
        Duration::from_secs(env_num("BENCH_FLEET_UP_DEADLINE", 10 * interval_s + 300));
    let mut first_at: Vec<(usize, f64)> = Vec::new(); // (count reached, seconds)
    let marks = [1, n.div_ceil(2), (n * 9).div_ceil(10), n];
    let all_up = support::poll::wait_for(
        "every target up == 1",
        up_deadline,
        Duration::from_secs(1),
        || {
            let body = query_at(&format!("count(up{{job=\"{JOB}\"}} == 1)"), None)?;
            let up = instant_value(&body).unwrap_or(0.0) as usize;
            let now = started.elapsed().as_secs_f64();
            for m in marks {
                if up >= m && !first_at.iter().any(|&(c, _)| c == m) {
                    first_at.push((m, now));
                }
            }
            if up >= n {
                Ok(now)
            } else {
                Err(format!("{up} of {n} up"))
            }
        },
    );
    let all_up_s = match all_up {
        Ok(s) => s,
        Err(e) => {
            println!(
                "FAIL: not every target came up: {e}\n{}\n{}",
                prom.log_tail(),
                net.diagnostics()
            );
            std::process::exit(1);
        }
    };
    let mon_up = usage(mon_pid, ticks);
    let host_up = host_cpu();
    let ramp_end_unix = unix_now();
    let ramp_s = ramp_end_unix - prom_start_unix;
    let ramp_failures = query_at(
        &format!(
            "sum(count_over_time(up{{job=\"{JOB}\"}}[{0}s])) - sum(sum_over_time(up{{job=\"{JOB}\"}}[{0}s]))",
            ramp_s.ceil() as u64 + 1
        ),
        Some(ramp_end_unix),
    )
    .ok()
    .and_then(|b| instant_value(&b))
    .unwrap_or(f64::NAN);
    let marks_text: Vec<String> = first_at
        .iter()
        .map(|(c, s)| format!("{c} up at {s:.1} s"))
        .collect();
    println!(
        "all {n} targets up {all_up_s:.1} s after Prometheus started ({}); failed scrapes before: {ramp_failures}",
        marks_text.join(", ")
    );

    // --- The window: fixed length, RSS sampled every SAMPLE_EVERY (a sampling period, not a
    // wait for anything), CPU from the difference of its ends.
    let load_window = loadavg();
    let w_start_unix = unix_now();
    let w_started = Instant::now();
    let pids: Vec<(String, u32)> = [
        ("monitoring tor".to_string(), mon_pid),
        ("prometheus".to_string(), prom.pid()),
        ("monitoring exporter".to_string(), self_exporter.pid()),
    ]
    .into_iter()
    .chain(
        exporters
            .iter()
            .enumerate()
            .map(|(e, p)| (format!("exporter{e}"), p.pid())),
    )
    .chain(
        host_pids
            .iter()
            .enumerate()
            .map(|(e, &p)| (format!("hosting tor {e}"), p)),
    )
    .collect();
    let w_before: Vec<Usage> = pids.iter().map(|&(_, p)| usage(p, ticks)).collect();
    let mut rss_max: Vec<u64> = w_before.iter().map(|u| u.rss_kib).collect();
    let window = Duration::from_secs(window_s);
    while w_started.elapsed() < window {
        std::thread::sleep(SAMPLE_EVERY.min(window.saturating_sub(w_started.elapsed())));
        for (i, &(_, p)) in pids.iter().enumerate() {
            rss_max[i] = rss_max[i].max(usage(p, ticks).rss_kib);
        }
    }
    let w_after: Vec<Usage> = pids.iter().map(|&(_, p)| usage(p, ticks)).collect();
    let w_end_unix = unix_now();
    let w_len = w_end_unix - w_start_unix;
    let load_end = loadavg();
    // Circuits of the monitoring tor by purpose (counts only; paths are never printed).
    let circuits = net.client().getinfo("circuit-status").unwrap_or_default();
    let count_purpose = |p: &str| {
        circuits
            .lines()
            .filter(|l| l.contains(" BUILT ") && l.contains(&format!("PURPOSE={p}")))
            .count()
    };
    let rend_circuits = count_purpose("HS_CLIENT_REND");
    let all_circuits = circuits.lines().filter(|l| l.contains(" BUILT ")).count();

    // Every scrape of every target whose timestamp falls in the window.
    let range = format!("{}s", w_len.floor() as u64);
    let durations_body = query_at(
        &format!("scrape_duration_seconds{{job=\"{JOB}\"}}[{range}]"),
        Some(w_end_unix),
    )
    .unwrap_or_else(|e| panic!("scrape durations: {e}\n{}", prom.log_tail()));
    let mut d = all_range_values(&durations_body);
    d.sort_by(f64::total_cmp);
    let up_body = query_at(&format!("up{{job=\"{JOB}\"}}[{range}]"), Some(w_end_unix))
        .unwrap_or_else(|e| panic!("up: {e}"));
    let ups = all_range_values(&up_body);
    let w_failures = ups.iter().filter(|&&v| v != 1.0).count();
    let still_up = query_at(&format!("count(up{{job=\"{JOB}\"}} == 1)"), None)
        .ok()
        .and_then(|b| instant_value(&b))
        .unwrap_or(0.0);
    drop(prom);
    drop(self_exporter);
    drop(exporters);

    // --- Figures.
    assert!(!d.is_empty(), "no scrape durations in the window");
    let ms = |x: f64| x * 1000.0;
    let (d_min, d50, d90, d99, d_max) = (
        d[0],
        pct(&d, 50.0),
        pct(&d, 90.0),
        pct(&d, 99.0),
        d[d.len() - 1],
    );
    println!(
        "window {w_len:.0} s: {} scrapes ({} per target), {w_failures} failed; up at the end {still_up} of {n}",
        ups.len(),
        ups.len() as f64 / n as f64
    );
    println!(
        "scrape_duration_seconds (ms): min {:.1}  p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        ms(d_min),
        ms(d50),
        ms(d90),
        ms(d99),
        ms(d_max)
    );
    println!("process              CPU s in window  CPU % of a core  RSS start/max/end (MiB)");
    for (i, (name, _)) in pids.iter().enumerate() {
        let cpu = w_after[i].cpu_s - w_before[i].cpu_s;
        println!(
            "{name:<20} {cpu:>15.2}  {:>15.2}  {:.1} / {:.1} / {:.1}",
            100.0 * cpu / w_len,
            w_before[i].rss_kib as f64 / 1024.0,
            rss_max[i] as f64 / 1024.0,
            w_after[i].rss_kib as f64 / 1024.0
        );
    }
    let mon_cpu_w = w_after[0].cpu_s - w_before[0].cpu_s;
    let scrapes_per_target = w_len / interval_s as f64;
    let cpu_per_target_scrape = mon_cpu_w / ups.len().max(1) as f64;
    let rss_per_target_kib = (w_after[0].rss_kib as f64 - mon_before.rss_kib as f64) / n as f64;
    let ramp_cpu = mon_up.cpu_s - mon_before.cpu_s;
    let host_ramp_cpu = host_up - host_before;
    println!(
        "monitoring tor: RSS {:.1} MiB before Prometheus (keys loaded), {:.1} MiB at the window's end: \
         {rss_per_target_kib:.0} KiB per target",
        mon_before.rss_kib as f64 / 1024.0,
        w_after[0].rss_kib as f64 / 1024.0
    );
    println!(
        "monitoring tor: CPU {ramp_cpu:.2} s over the ramp-up ({:.0} ms per target); {mon_cpu_w:.2} s over the window: \
         {:.1} ms per scrape, {:.1} ms per target per minute; hosting tors {host_ramp_cpu:.2} s over the ramp-up",
        1000.0 * ramp_cpu / n as f64,
        1000.0 * cpu_per_target_scrape,
        1000.0 * mon_cpu_w / n as f64 / (w_len / 60.0),
    );
    println!(
        "monitoring tor's built circuits at the end: {all_circuits} ({rend_circuits} HS_CLIENT_REND)"
    );
    println!(
        "load average: at Prometheus' start {load_start}; window start {load_window}; end {load_end}"
    );
    let json = format!(
        "{{\"targets\":{n},\"exporters\":{n_exporters},\"interval_s\":{interval_s},\"window_s\":{w_len:.0},\
             \"network_ready_s\":{net_s:.1},\"all_up_s\":{all_up_s:.1},\"ramp_failures\":{ramp_failures},\
             \"scrapes\":{},\"failures\":{w_failures},\"scrapes_per_target\":{scrapes_per_target:.2},\
             \"duration_ms\":{{\"min\":{:.2},\"p50\":{:.2},\"p90\":{:.2},\"p99\":{:.2},\"max\":{:.2}}},\
             \"mon_tor\":{{\"rss_before_kib\":{},\"rss_end_kib\":{},\"rss_max_kib\":{},\"cpu_ramp_s\":{ramp_cpu:.2},\
             \"cpu_window_s\":{mon_cpu_w:.2},\"rss_per_target_kib\":{rss_per_target_kib:.1}}},\
             \"host_tor_cpu_window_s\":{:.2},\"prometheus_cpu_window_s\":{:.2},\"circuits\":{all_circuits},\
             \"rend_circuits\":{rend_circuits},\"load\":[\"{load_start}\",\"{load_window}\",\"{load_end}\"]}}",
        ups.len(),
        ms(d_min),
        ms(d50),
        ms(d90),
        ms(d99),
        ms(d_max),
        mon_before.rss_kib,
        w_after[0].rss_kib,
        rss_max[0],
        pids.iter()
            .enumerate()
            .filter(|(_, (name, _))| name.starts_with("hosting tor"))
            .map(|(i, _)| w_after[i].cpu_s - w_before[i].cpu_s)
            .sum::<f64>(),
        w_after[1].cpu_s - w_before[1].cpu_s,
    );
    println!("BENCH_FLEET_JSON {json}");
    drop(net);
    if w_failures > 0 || (still_up as usize) < n {
        println!("note: {w_failures} failed scrapes in the window");
    }
}
