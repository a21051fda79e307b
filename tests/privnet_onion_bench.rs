//! Benchmark, not a test of behaviour: Prometheus' `scrape_duration_seconds` through the
//! client-authorized metrics onion for the exporter (port 80) and for a bare server (bench/floor)
//! serving the same bytes on port 81 of the same onion (or, BENCH_ONION_LAYOUT=second, behind a
//! second client-authorized onion service of the same onion node), side by side in one run, and
//! the TCP connections the exporter accepted over the run. On the private Tor network harness
//! (loopback only). See docs/benchmark.md ("Through the onion").
//!
//! Run by `bench/onion.sh`, which installs Debian's prometheus, builds the release exporter and the
//! floor and passes their paths in BENCH_EXPORTER_BIN / BENCH_FLOOR_BIN:
//! `cargo test --test privnet_onion_bench -- --ignored --nocapture`. About 3 minutes.
//!
//! Environment: BENCH_ONION_SCRAPES (timed scrapes per job, default 20, at least 10),
//! BENCH_ONION_INTERVAL (Prometheus' scrape interval in seconds, default 3), BENCH_ONION_LAYOUT
//! (`same`, default, or `second`).

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::http;
use support::privnet::counting_proxy::CountingProxy;
use support::privnet::ns_process::NsProcess;
use support::privnet::{wait_for, Options, PrivNet, ServiceSpec};
use support::process::{require_commands, run_ok};

const PYTHON: &str = "/usr/bin/python3";
/// What Prometheus 2.42 (Debian 12) sends, so the floor serves the body Prometheus gets.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
     application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// The exporter's median scrape duration may be at most this many times the floor's.
const RATIO_TARGET: f64 = 1.1;
/// Scrapes to discard per job after the first successful one (circuit set-up, first refresh).
const WARMUP: usize = 2;
/// The floor's port behind the exporter's onion (layout "same"): above the harness's ports
/// (allocated from 10000 up) and below the ephemeral range, so nothing else in the fresh
/// namespace can hold it.
const SAME_FLOOR_PORT: u16 = 20081;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
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

/// The samples `(unix time, value)` of the first series in a Prometheus range-vector answer
/// (`"values":[[t,"v"],...]`); empty if there is none.
fn range_samples(json: &str) -> Vec<(f64, f64)> {
    let Some(start) = json.find("\"values\":[") else {
        return Vec::new();
    };
    let rest = &json[start + "\"values\":[".len()..];
    let end = rest.find("]]").map(|e| e + 1).unwrap_or(0);
    rest[..end]
        .split(']')
        .filter_map(|pair| {
            let pair = pair.trim_start_matches(',').trim_start_matches('[');
            let (t, v) = pair.split_once(',')?;
            Some((t.parse().ok()?, v.trim_matches('"').parse().ok()?))
        })
        .collect()
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[test]
#[ignore = "a benchmark: run by bench/onion.sh, which installs prometheus and builds the release binaries"]
fn scrape_duration_through_the_onion_exporter_vs_floor() {
    let exporter_bin = env_or(
        "BENCH_EXPORTER_BIN",
        &repo()
            .join("target/release/securedrop-tor-exporter")
            .display()
            .to_string(),
    );
    let floor_bin = env_or(
        "BENCH_FLOOR_BIN",
        &repo()
            .join("target/bench-floor/release/bench-floor")
            .display()
            .to_string(),
    );
    let scrapes: usize = env_or("BENCH_ONION_SCRAPES", "20").parse().unwrap();
    let interval: u64 = env_or("BENCH_ONION_INTERVAL", "3").parse().unwrap();
    assert!(scrapes >= 10, "BENCH_ONION_SCRAPES must be at least 10");
    require_commands(
        &[
            exporter_bin.as_str(),
            floor_bin.as_str(),
            "prometheus",
            PYTHON,
        ],
        "bench/onion.sh installs and builds everything",
    );
    let tmp = support::temp_dir::tempdir().unwrap();
    let t = tmp.path();

    // One client key (the package's own subcommand), authorized on both onion services.
    run_ok(
        Command::new(&exporter_bin).args([
            "client-key",
            "generate",
            "--auth-file",
            t.join("admin.auth").to_str().unwrap(),
            "--private-key-file",
            t.join("admin.key").to_str().unwrap(),
        ]),
        "client-key generate",
    );
    let auth = std::fs::read_to_string(t.join("admin.auth"))
        .unwrap()
        .trim()
        .to_string();
    // "same": the floor is port 81 of the exporter's onion service (one descriptor, one
    // rendezvous circuit carries both jobs' streams); "second": it has its own onion service on
    // the same onion node (its own circuits).
    let same = match env_or("BENCH_ONION_LAYOUT", "same").as_str() {
        "same" => true,
        "second" => false,
        other => panic!("BENCH_ONION_LAYOUT must be same or second, not {other}"),
    };
    let roles: &[&str] = if same {
        &["metrics"]
    } else {
        &["metrics", "floor"]
    };
    let services: Vec<ServiceSpec> = roles
        .iter()
        .map(|role| {
            let mut s = ServiceSpec::new(role);
            s.authorized_client = Some(auth.clone());
            if same {
                s.extra_torrc = vec![format!("HiddenServicePort 81 127.0.0.1:{SAME_FLOOR_PORT}")];
            }
            s
        })
        .collect();
    let opts = Options {
        services,
        ..Options::default()
    };
    let mut net = PrivNet::start_with(opts).expect("private tor network");
    for role in roles {
        let line = run_ok(
            Command::new(&exporter_bin).args([
                "client-key",
                "show",
                "--private-key-file",
                t.join("admin.key").to_str().unwrap(),
                "--hostname-file",
                net.service(role).dir.join("hostname").to_str().unwrap(),
            ]),
            "client-key show",
        );
        net.add_client_auth(role, &line).unwrap();
    }
    // A monitoring host's tor starts with its keys (see tests/privnet_monitoring.rs).
    net.restart_node("client", Duration::from_secs(120))
        .expect("client restarts");

    // --- The servers on the onion node: the release exporter, and the floor with its bytes.
    // The services' target ports first, so that free_ports cannot hand one of them out.
    let exp_listener = net.bind_service("metrics").unwrap();
    let floor_listener = if same {
        net.bind(SAME_FLOOR_PORT).unwrap()
    } else {
        net.bind_service("floor").unwrap()
    };
    // Where each job's target is: (onion service, virtual port).
    let (exp_at, floor_at) = if same {
        (("metrics", 80), ("metrics", 81))
    } else {
        (("metrics", 80), ("floor", 80))
    };
    let ports = net.netns().free_ports(3).unwrap();
    let (exp_port, floor_port, prom_port) = (ports[0], ports[1], ports[2]);
    let onion = net.onion_node();
    let empty = t.join("empty-config.d");
    std::fs::create_dir(&empty).unwrap();
    // Flags only: an empty config file (the exporter refuses /dev/null) and an empty drop-in folder.
    let empty_file = t.join("empty.toml");
    std::fs::write(&empty_file, "").unwrap();
    let exporter = NsProcess::spawn(
        &net,
        "exporter",
        &exporter_bin,
        &[
            "--config".into(),
            empty_file.display().to_string(),
            "--config.dir".into(),
            empty.display().to_string(),
            "--tor.control-address".into(),
            format!("unix:{}", onion.control_socket.display()),
            "--tor.cookie-file".into(),
            onion.cookie_file.display().to_string(),
            "--web.listen-address".into(),
            format!("127.0.0.1:{exp_port}"),
            "--log.target".into(),
            "stderr".into(),
        ],
        t.join("exporter.log"),
    );
    let body = wait_for(
        "the exporter's /metrics with tor_up 1",
        Duration::from_secs(60),
        || {
            let stream = net
                .connect(exp_port, Duration::from_secs(5))
                .map_err(|e| e.0)?;
            let r = http::get_on(
                stream,
                &format!("127.0.0.1:{exp_port}"),
                "/metrics",
                &[("Accept", PROMETHEUS_ACCEPT)],
            )
            .map_err(|e| format!("{e:?}"))?;
            if r.status == 200 && r.body.lines().any(|l| l.starts_with("tor_up 1")) {
                Ok(r)
            } else {
                Err(format!("status {}", r.status))
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e:?}\n{}", exporter.log_tail()));
    let content_type = body.header("content-type").unwrap().to_string();
    std::fs::write(t.join("body"), &body.body).unwrap();
    let floor = NsProcess::spawn(
        &net,
        "floor",
        &floor_bin,
        &[
            format!("127.0.0.1:{floor_port}"),
            t.join("body").display().to_string(),
            content_type.clone(),
        ],
        t.join("floor.log"),
    );
    wait_for("the floor", Duration::from_secs(30), || {
        net.http_get_local(floor_port, "/metrics", Duration::from_secs(5))
            .map_err(|e| format!("{e:?}"))
            .and_then(|r| {
                (r.body == body.body)
                    .then_some(())
                    .ok_or("other bytes".to_string())
            })
    })
    .unwrap_or_else(|e| panic!("{e:?}\n{}", floor.log_tail()));
    let exp_proxy = CountingProxy::start(&net, exp_listener, exp_port);
    let floor_proxy = CountingProxy::start(&net, floor_listener, floor_port);

    // Both onions answer the client (this also builds the rendezvous circuits).
    for (role, port) in [exp_at, floor_at] {
        let host = net.service(role).hostname();
        wait_for(
            "/metrics through the onion",
            Duration::from_secs(180),
            || match net.http_get_via_client(&host, port, "/metrics", Duration::from_secs(30)) {
                Ok(r) if r.status == 200 => Ok(()),
                Ok(r) => Err(format!("status {}", r.status)),
                Err(e) => Err(format!("{e:?}")),
            },
        )
        .unwrap_or_else(|e| panic!("{role}: {e:?}\n{}", net.diagnostics()));
    }

    // --- Prometheus: two jobs, the same interval, timeout and proxy; `instance` is a name.
    let prom_conf = t.join("prometheus.yml");
    let socks = net.socks_port();
    let job = |name: &str, (role, port): (&str, u16)| {
        format!(
            "  - job_name: {name}\n    proxy_url: socks5://127.0.0.1:{socks}\n    static_configs:\n      \
             - targets: ['{}:{port}']\n        labels:\n          instance: {name}\n",
            net.service(role).hostname()
        )
    };
    std::fs::write(
        &prom_conf,
        format!(
            "global:\n  scrape_interval: {interval}s\n  scrape_timeout: {interval}s\nscrape_configs:\n{}{}",
            job("exporter", exp_at),
            job("floor", floor_at)
        ),
    )
    .unwrap();
    let before = (exp_proxy.counts(), floor_proxy.counts());
    let prom = NsProcess::spawn(
        &net,
        "prometheus",
        "prometheus",
        &[
            format!("--config.file={}", prom_conf.display()),
            format!("--storage.tsdb.path={}", t.join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        t.join("prometheus.log"),
    );
    let query = |q: &str| -> Result<String, String> {
        let r = net
            .http_get_local(
                prom_port,
                &format!("/api/v1/query?query={}", url_encode(q)),
                Duration::from_secs(10),
            )
            .map_err(|e| format!("{e:?}"))?;
        if r.status == 200 {
            Ok(r.body)
        } else {
            Err(format!("status {}: {}", r.status, r.body))
        }
    };
    let samples = |metric: &str, job: &str| -> Result<Vec<(f64, f64)>, String> {
        query(&format!("{metric}{{job=\"{job}\"}}[1h]")).map(|b| range_samples(&b))
    };
    // Every scrape up == 1, and at least WARMUP + `scrapes` of them, for both jobs.
    let want = WARMUP + scrapes;
    let deadline = Duration::from_secs(interval * (want as u64) * 3 + 120);
    let (exp_d, floor_d) = wait_for(
        "the scrapes of both jobs",
        deadline,
        || -> Result<(Vec<f64>, Vec<f64>), String> {
            let mut out = Vec::new();
            for job in ["exporter", "floor"] {
                let up = samples("up", job)?;
                let first = up.iter().position(|&(_, v)| v == 1.0);
                let Some(first) = first else {
                    return Err(format!("{job}: no successful scrape yet"));
                };
                let good = &up[first..];
                if let Some((ts, _)) = good.iter().find(|&&(_, v)| v != 1.0) {
                    return Err(format!(
                        "{job}: a failed scrape at {ts} after the first success"
                    ));
                }
                if good.len() < want {
                    return Err(format!("{job}: {} of {want} scrapes", good.len()));
                }
                let since = good[WARMUP].0;
                let d: Vec<f64> = samples("scrape_duration_seconds", job)?
                    .into_iter()
                    .filter(|&(ts, _)| ts >= since)
                    .map(|(_, v)| v)
                    .take(scrapes)
                    .collect();
                if d.len() < scrapes {
                    return Err(format!("{job}: {} durations", d.len()));
                }
                out.push(d);
            }
            let floor = out.pop().unwrap();
            Ok((out.pop().unwrap(), floor))
        },
    )
    .unwrap_or_else(|e| panic!("{e:?}\n{}\n{}", prom.log_tail(), net.diagnostics()));
    let after = (exp_proxy.counts(), floor_proxy.counts());
    drop(prom);

    // --- Figures.
    let stats = |d: &[f64]| {
        let mut s = d.to_vec();
        s.sort_by(f64::total_cmp);
        (s[0], pct(&s, 50.0), pct(&s, 90.0), s[s.len() - 1])
    };
    let (e, f) = (stats(&exp_d), stats(&floor_d));
    let ms = |x: f64| format!("{:.2}", x * 1000.0);
    println!(
        "\nthrough the onion ({}): {scrapes} scrapes per job after {WARMUP} warm-up, interval {interval}s, \
         body {} B ({content_type}), {}",
        if same {
            "floor on port 81 of the exporter's onion"
        } else {
            "floor behind a second onion of the same node"
        },
        body.body.len(),
        net.tor_version()
    );
    println!("scrape_duration_seconds (ms)   min      median   p90      max");
    for (name, s) in [("exporter", e), ("floor", f)] {
        println!(
            "{name:<30} {:<8} {:<8} {:<8} {:<8}",
            ms(s.0),
            ms(s.1),
            ms(s.2),
            ms(s.3)
        );
    }
    let ratio = e.1 / f.1;
    let ratio90 = e.2 / f.2;
    let exp_conns = after.0 .0 - before.0 .0;
    let exp_scrapes = after.0 .1 - before.0 .1;
    let floor_conns = after.1 .0 - before.1 .0;
    let floor_scrapes = after.1 .1 - before.1 .1;
    println!(
        "durations exporter (ms): {:?}",
        exp_d.iter().map(|x| ms(*x)).collect::<Vec<_>>()
    );
    println!(
        "durations floor (ms):    {:?}",
        floor_d.iter().map(|x| ms(*x)).collect::<Vec<_>>()
    );
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    let ratio_ok = ratio <= RATIO_TARGET;
    let conns_ok = exp_conns == 1 && exp_scrapes >= 10;
    println!(
        "exporter median / floor median = {ratio:.3} (p90: {ratio90:.3}), target <= {RATIO_TARGET}: {}",
        verdict(ratio_ok)
    );
    println!(
        "TCP connections the exporter accepted from the onion over Prometheus' {exp_scrapes} scrapes: \
         {exp_conns}, target 1: {} (floor: {floor_conns} over {floor_scrapes})",
        verdict(conns_ok)
    );
    println!(
        "BENCH_ONION_JSON {{\"exporter_ms\":[{:.3},{:.3},{:.3},{:.3}],\"floor_ms\":[{:.3},{:.3},{:.3},{:.3}],\
         \"ratio_median\":{ratio:.3},\"ratio_p90\":{ratio90:.3},\"exporter_connections\":{exp_conns},\
         \"exporter_scrapes\":{exp_scrapes},\"floor_connections\":{floor_conns},\"floor_scrapes\":{floor_scrapes}}}",
        e.0 * 1e3,
        e.1 * 1e3,
        e.2 * 1e3,
        e.3 * 1e3,
        f.0 * 1e3,
        f.1 * 1e3,
        f.2 * 1e3,
        f.3 * 1e3
    );
    drop(exp_proxy);
    drop(floor_proxy);
    drop(floor);
    drop(exporter);
    drop(net);
    assert!(
        conns_ok,
        "the exporter accepted {exp_conns} connections over {exp_scrapes} scrapes"
    );
    assert!(
        ratio_ok,
        "the exporter's median is {ratio:.3} x the floor's"
    );
}
