//! The monitoring side end to end on the private Tor network (loopback only): a real Prometheus
//! scrapes the exporter through the client-authorized metrics onion service via a client tor,
//! with the rules of monitoring/rules/ and the configuration rendered from
//! monitoring/prometheus/prometheus.yml.j2; a real Alertmanager with the sample routes sends to a
//! webhook on loopback. See docs/monitoring.md ("End-to-end test").
//!
//! It goes through two outages: the server's tor (its alert pages, then resolves), and the
//! monitoring host's own tor (only "our tor is broken" pages; the server alerts are held back),
//! including that one's recovery: no server alert may reach any receiver while the servers come
//! back, nor after (`e2e.py recovery`). `E2E_DROP_KEEP_FIRING_FOR=1` (by hand only) runs it with
//! the monitoring-host alert's `keep_firing_for` removed from the scaled rules, to see that leg
//! fail.
//!
//! Run by `monitoring/test.sh` (which installs Debian's prometheus and prometheus-alertmanager):
//! `cargo test --test privnet_monitoring -- --ignored`. `PROMETHEUS=PATH[,PATH...]` names the
//! Prometheus server binaries, `prometheus` on `PATH` by default; monitoring/test.sh runs Debian
//! 12's and Prometheus 3's (from `monitoring/prometheus3.sh prometheus`) side by side on the one
//! private network, each with its own Alertmanager, webhook, folder and ports (a [`Stack`]), each
//! checked on its own through the same outages at the same time.
//!
//! Time is scaled: Prometheus, Alertmanager and the rules run from copies of the shipped files
//! with every duration divided by [`SCALE`] (the rules' `for:`, the scrape and evaluation
//! intervals, Alertmanager's group waits and intervals), made and checked by `e2e.py scaled`: the
//! copies differ from the shipped files in those durations only, so every expression, label,
//! route and inhibition under test is the shipped one, and the scaled rules still keep the order
//! the inhibition needs. The real durations are pinned by the promtool tests of
//! monitoring/tests/ (`check_rules.py mutants` moves each `for:` by one evaluation interval).

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use securedrop_tor_exporter::{Config, ControlAddress};
use support::exporter::ExporterThread;
use support::privnet::counting_proxy::CountingProxy;
use support::privnet::ns_process::NsProcess;
use support::privnet::{self, wait_for, Options, PrivNet, ServiceSpec};
use support::process::{require_commands, run_ok};

const EXPORTER: &str = env!("CARGO_BIN_EXE_securedrop-tor-exporter");
const PYTHON: &str = "/usr/bin/python3";
/// Every duration of the Prometheus configuration, the Alertmanager configuration and the rules
/// is divided by this in the test: SecureDropTorExporterUnreachable's 5 m becomes 30 s,
/// SecureDropTorMonitoringHostTorBroken's 2 m 12 s, the evaluation interval 3 s. Not more: the
/// order the inhibition needs has a margin of a few seconds at this scale (`e2e.py scaled`
/// checks it), and the private network's own delays (an exporter refresh, a tor restart) do not
/// shrink with it.
const SCALE: u32 = 10;
/// The servers' scrape interval and timeout as the test configures them (the template's defaults
/// are 1m and 30s): 3 s once scaled, well inside the exporter's idle keep-alive, so one
/// connection can carry every scrape.
const SCRAPE_INTERVAL: &str = "30s";
/// What may come on top of the pieces of a scaled delay that the test adds up from the scaled
/// files (a scrape interval, two evaluations, a group_wait): a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(30);
/// From the onion node's restart to the resolved notification: tor bootstraps and publishes
/// again, the client refetches the descriptor, a scrape succeeds, the rule is evaluated, and
/// Alertmanager sends the resolved group after its group_interval. A deadline, not a wait.
const RESOLVE_BOUND: Duration = Duration::from_secs(300);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn config(node: &privnet::Node) -> Config {
    let mut c = Config::default();
    c.tor.control_address = ControlAddress::Unix(node.control_socket.clone());
    c.tor.cookie_file = Some(node.cookie_file.clone());
    c.tor.refresh_interval = Duration::from_secs(1);
    c.tor.max_backoff = Duration::from_secs(2);
    c
}

/// One Prometheus server under test, with its own Alertmanager, webhook, folder and ports.
struct Stack {
    /// "prometheus 2.42.0", printed before each of its lines (e2e.py's E2E_LABEL).
    label: String,
    hook_out: PathBuf,
    prom_url: String,
    am_url: String,
    /// Its scaled copies of the rules.
    rules: Vec<String>,
    /// What `e2e.py scaled` printed for its copies.
    durations: HashMap<String, Duration>,
    /// Prometheus, Alertmanager, the webhook: stopped when the stack is dropped.
    procs: [NsProcess; 3],
}

/// Starts monitoring/e2e.py inside the namespace (its check lines headed by LABEL).
fn e2e_spawn<S: AsRef<std::ffi::OsStr>>(
    net: &PrivNet,
    onions: &Path,
    label: &str,
    args: &[S],
) -> std::process::Child {
    net.netns()
        .command(PYTHON)
        .arg(repo().join("monitoring/e2e.py"))
        .args(args)
        .env("E2E_ONIONS", onions)
        .env("E2E_LABEL", label)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run monitoring/e2e.py")
}

/// Waits for an e2e.py started by [`e2e_spawn`]; returns (success, output), printed too.
fn e2e_finish<S: AsRef<str>>(
    label: &str,
    args: &[S],
    child: std::process::Child,
) -> (bool, String) {
    let out = child
        .wait_with_output()
        .expect("wait for monitoring/e2e.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("[{label}] e2e.py {}:\n{text}", args[0].as_ref());
    (out.status.success(), text)
}

/// Runs monitoring/e2e.py inside the namespace; returns (success, output).
fn e2e(net: &PrivNet, onions: &Path, label: &str, args: &[&str]) -> (bool, String) {
    e2e_finish(label, args, e2e_spawn(net, onions, label, args))
}

/// The "= KEY... MILLISECONDS" lines of `e2e.py scaled`, by KEY ("for SecureDropTorDown",
/// "evaluation_interval", "scrape_interval securedrop-tor", "group_wait securedrop-admin-page").
fn scaled_durations(out: &str) -> HashMap<String, Duration> {
    out.lines()
        .filter_map(|l| l.strip_prefix("= "))
        .filter_map(|l| {
            let (key, ms) = l.rsplit_once(' ')?;
            Some((key.to_string(), Duration::from_millis(ms.parse().ok()?)))
        })
        .collect()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
#[ignore = "run by monitoring/test.sh, which installs Debian's prometheus and prometheus-alertmanager"]
fn prometheus_and_alertmanager_through_the_metrics_onion() {
    let prometheus: Vec<String> = std::env::var("PROMETHEUS")
        .unwrap_or_else(|_| "prometheus".into())
        .split(',')
        .map(String::from)
        .collect();
    let mut needed: Vec<&str> = prometheus.iter().map(String::as_str).collect();
    needed.extend(["prometheus-alertmanager", PYTHON]);
    require_commands(&needed, "monitoring/test.sh installs it");
    let versions: Vec<String> = prometheus
        .iter()
        .map(|p| {
            let v = run_ok(Command::new(p).arg("--version"), "prometheus --version");
            let first = v.lines().next().unwrap_or_default().to_string();
            eprintln!("prometheus: {first}");
            first
                .split_whitespace()
                .nth(2)
                .unwrap_or("?")
                .split('+')
                .next()
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    let tmp = support::temp_dir::tempdir().unwrap();
    let t = tmp.path();

    // The admin's client key, made with the package's own subcommand; a second one is the wrong key.
    for name in ["admin", "wrong"] {
        run_ok(
            Command::new(EXPORTER).args([
                "client-key",
                "generate",
                "--auth-file",
                t.join(format!("{name}.auth")).to_str().unwrap(),
                "--private-key-file",
                t.join(format!("{name}.key")).to_str().unwrap(),
            ]),
            "client-key generate",
        );
    }
    let mut metrics = ServiceSpec::new("metrics");
    metrics.authorized_client = Some(
        std::fs::read_to_string(t.join("admin.auth"))
            .unwrap()
            .trim()
            .to_string(),
    );
    let opts = Options {
        services: vec![ServiceSpec::new("source"), metrics],
        ..Options::default()
    };
    let mut net = PrivNet::start_with(opts).expect("private tor network");
    let onions = t.join("onions");
    std::fs::write(&onions, net.onion_addresses().join("\n")).unwrap();
    let auth_private = |key: &str| {
        run_ok(
            Command::new(EXPORTER).args([
                "client-key",
                "show",
                "--private-key-file",
                t.join(key).to_str().unwrap(),
                "--hostname-file",
                net.service("metrics")
                    .dir
                    .join("hostname")
                    .to_str()
                    .unwrap(),
            ]),
            "client-key show",
        )
    };
    let (admin_line, wrong_line) = (auth_private("admin.key"), auth_private("wrong.key"));

    // --- The server: the exporter on the onion node, behind the metrics service's target port.
    let mut c = config(net.onion_node());
    for s in net.services() {
        c.onion_services.0.insert(
            s.role.clone(),
            securedrop_tor_exporter::control::OnionAddress::new(&s.onion).unwrap(),
        );
    }
    // The dashboard's coarse traffic row must return data too; the counters are off by default.
    c.traffic.enabled = true;
    let server_exporter = ExporterThread::start_on(net.bind(0).unwrap(), c);
    let proxy = CountingProxy::start(
        &net,
        net.bind_service("metrics").unwrap(),
        server_exporter.port(),
    );
    // --- The monitoring host: an exporter for its own tor client, on loopback.
    let monitor_exporter = ExporterThread::start_on(net.bind(0).unwrap(), config(net.client()));

    // The first uploads happened before the exporter came: a restart makes tor upload again.
    net.restart_node("onion", Duration::from_secs(120))
        .expect("onion node restarts");

    // --- A client with no key, then with a wrong key, gets nothing; with the admin's key, /metrics.
    let fetch = |net: &PrivNet| net.fetch_onion("metrics", "/metrics", Duration::from_secs(30));
    assert!(
        fetch(&net).is_err(),
        "the metrics onion answered a client without a key"
    );
    net.add_client_auth("admin", &wrong_line).unwrap();
    assert!(
        fetch(&net).is_err(),
        "the metrics onion answered a client with a wrong key"
    );
    // The admin's key, and a fresh client process (a monitoring host's tor starts with its keys):
    // in one run, the client that had just tried the wrong key then stalled for 120 s on the
    // rendezvous with the right one ("pending-join circ ... with intro ack. Stalling").
    net.add_client_auth("admin", &admin_line).unwrap();
    net.restart_node("client", Duration::from_secs(120))
        .expect("client restarts");
    wait_for(
        "/metrics through the onion with the admin's key",
        Duration::from_secs(120),
        || match fetch(&net) {
            Ok(r) if r.status == 200 => Ok(()),
            Ok(r) => Err(format!("status {}", r.status)),
            Err(e) => Err(format!("{e:?}")),
        },
    )
    .unwrap_or_else(|e| panic!("{e:?}\n{}", net.diagnostics()));

    let shipped_rules: Vec<String> = [
        "securedrop-tor.rules.yml",
        "securedrop-tor-blackbox.rules.yml",
    ]
    .iter()
    .map(|f| {
        repo()
            .join("monitoring/rules")
            .join(f)
            .display()
            .to_string()
    })
    .collect();

    // --- One stack per Prometheus server (PROMETHEUS, comma-separated; Debian 12's 2.42 and
    // Prometheus 3's in monitoring/test.sh): its own Alertmanager with the sample routes, every
    // receiver a webhook of its own on loopback, and its own folder and ports. Every stack sees
    // the same outages at the same time and is checked on its own, with the same deadlines.
    let ports = net.netns().free_ports(3 * prometheus.len()).unwrap();
    let mut stacks = Vec::new();
    for (i, binary) in prometheus.iter().enumerate() {
        let (hook_port, am_port, prom_port) = (ports[3 * i], ports[3 * i + 1], ports[3 * i + 2]);
        let label = format!("prometheus {}", versions[i]);
        let dir = t.join(format!("stack{i}"));
        std::fs::create_dir(&dir).unwrap();
        let hook_out = dir.join("webhook.jsonl");
        let hook = NsProcess::spawn(
            &net,
            "webhook",
            PYTHON,
            &[
                repo().join("monitoring/e2e.py").display().to_string(),
                "webhook".into(),
                hook_port.to_string(),
                hook_out.display().to_string(),
            ],
            dir.join("webhook.log"),
        );
        let am_conf = dir.join("alertmanager.yml");
        let (ok, out) = e2e(
            &net,
            &onions,
            &label,
            &[
                "am-config",
                &format!("http://127.0.0.1:{hook_port}"),
                am_conf.to_str().unwrap(),
            ],
        );
        assert!(ok, "{out}");

        // --- Prometheus, configured the way the monitoring role does: the template, rendered.
        let scaled = dir.join("scaled");
        let vars = dir.join("vars.yml");
        std::fs::write(
            &vars,
            format!(
                "tor_monitoring_servers:\n  - {{name: app, onion: {}}}\n\
                 tor_monitoring_proxy_url: socks5://127.0.0.1:{}\n\
                 tor_monitoring_scrape_interval: {SCRAPE_INTERVAL}\n\
                 tor_monitoring_scrape_timeout: {SCRAPE_INTERVAL}\n\
                 tor_monitoring_self_exporter: 127.0.0.1:{}\n\
                 tor_monitoring_self_instance: monitor\n\
                 tor_monitoring_alertmanager: 127.0.0.1:{am_port}\n\
                 tor_monitoring_rules_dir: {}\n",
                net.service("metrics").onion,
                net.socks_port(),
                monitor_exporter.port(),
                scaled.join("rules").display(),
            ),
        )
        .unwrap();
        let prom_conf = dir.join("prometheus.yml");
        let rendered = run_ok(
            Command::new(PYTHON)
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .arg(repo().join("monitoring/render.py"))
                .arg(repo().join("monitoring/prometheus/prometheus.yml.j2"))
                .arg(&vars),
            "render prometheus.yml.j2",
        );
        std::fs::write(&prom_conf, rendered).unwrap();

        // --- Time scaled: copies of both configurations and of the shipped rules with every
        // duration divided by SCALE, checked to differ from them in nothing else.
        let refresh = format!(
            "{}ms",
            config(net.client()).tor.refresh_interval.as_millis()
        );
        let mut args = vec![
            "scaled".to_string(),
            SCALE.to_string(),
            refresh,
            scaled.display().to_string(),
            prom_conf.display().to_string(),
            am_conf.display().to_string(),
        ];
        args.extend(shipped_rules.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out) = e2e(&net, &onions, &label, &args);
        assert!(ok, "{out}");
        let durations = scaled_durations(&out);
        let rules: Vec<String> = shipped_rules
            .iter()
            .map(|r| {
                scaled
                    .join("rules")
                    .join(Path::new(r).file_name().unwrap())
                    .display()
                    .to_string()
            })
            .collect();
        let am = NsProcess::spawn(
            &net,
            "alertmanager",
            "prometheus-alertmanager",
            &[
                format!(
                    "--config.file={}",
                    scaled.join("alertmanager.yml").display()
                ),
                format!("--storage.path={}", dir.join("am").display()),
                format!("--web.listen-address=127.0.0.1:{am_port}"),
                "--cluster.listen-address=".into(),
            ],
            dir.join("alertmanager.log"),
        );
        let prom = NsProcess::spawn(
            &net,
            "prometheus",
            binary,
            &[
                format!("--config.file={}", scaled.join("prometheus.yml").display()),
                format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
                format!("--web.listen-address=127.0.0.1:{prom_port}"),
            ],
            dir.join("prometheus.log"),
        );
        stacks.push(Stack {
            label,
            hook_out,
            prom_url: format!("http://127.0.0.1:{prom_port}"),
            am_url: format!("http://127.0.0.1:{am_port}"),
            rules,
            durations,
            procs: [prom, am, hook],
        });
    }
    let before_prometheus = proxy.counts();
    // The scaled files are the same for every stack (only the ports differ): the bounds are
    // taken from the first, and checked equal for the others.
    for s in &stacks[1..] {
        assert_eq!(
            s.durations, stacks[0].durations,
            "the stacks' scaled durations differ"
        );
    }
    let durations = stacks[0].durations.clone();
    let d = |key: &str| {
        *durations
            .get(key)
            .unwrap_or_else(|| panic!("e2e.py scaled printed no {key}"))
    };
    let unreachable_for = d("for SecureDropTorExporterUnreachable");
    let monitor_broken_for = d("for SecureDropTorMonitoringHostTorBroken");
    let scrape_interval = d("scrape_interval securedrop-tor");
    // On top of a `for:` before the webhook has the alert: the first failed scrape, an
    // evaluation to go pending and one to fire, Alertmanager's group_wait for critical alerts.
    let alert_extra = scrape_interval
        + 2 * d("evaluation_interval")
        + d("group_wait securedrop-admin-page")
        + SLACK;
    let diag = |net: &mut PrivNet| {
        let logs: Vec<String> = stacks
            .iter()
            .flat_map(|s| s.procs.iter().map(|p| p.log_tail()))
            .collect();
        format!("{}\n{}", logs.join("\n"), net.diagnostics())
    };
    // e2e.py with these arguments, for every stack at once (each with its own arguments), must
    // pass; else the logs of Prometheus, Alertmanager and the network say why.
    let check = |net: &mut PrivNet, args: &dyn Fn(&Stack) -> Vec<String>| {
        let runs: Vec<_> = stacks
            .iter()
            .map(|s| {
                let a = args(s);
                (s, a.clone(), e2e_spawn(&*net, &onions, &s.label, &a))
            })
            .collect();
        let mut failed = Vec::new();
        for (s, a, child) in runs {
            let (ok, out) = e2e_finish(&s.label, &a, child);
            if !ok {
                failed.push(format!("[{}] {out}", s.label));
            }
        }
        assert!(failed.is_empty(), "{}\n{}", failed.join("\n"), diag(net));
    };
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    // Every stack's webhook receives NAME for WHO in STATE within BOUND of SINCE (Unix time), and
    // not before AT_LEAST after it.
    let alert = |net: &mut PrivNet,
                 name: &str,
                 who: &str,
                 state: &str,
                 since: f64,
                 at_least: Duration,
                 bound: Duration| {
        check(net, &|s: &Stack| {
            strings(&[
                "alert",
                s.hook_out.to_str().unwrap(),
                name,
                who,
                state,
                &bound.as_secs().to_string(),
                &since.to_string(),
                &at_least.as_secs_f64().to_string(),
            ])
        });
    };

    // --- Healthy: series, dashboard queries with data, rules evaluated, no onion address.
    let dash = repo()
        .join("monitoring/grafana/securedrop-tor.json")
        .display()
        .to_string();
    check(&mut net, &|s: &Stack| {
        let mut a = strings(&["healthy", &s.prom_url, &dash]);
        a.extend(s.rules.iter().cloned());
        a
    });

    // --- Connections: over at least 10 scrapes through the onion by every Prometheus (each
    // counted in its own database), not one new TCP connection.
    let (c0, s0) = proxy.counts();
    let since = unix_now();
    let n = stacks.len();
    wait_for(
        "10 more scrapes through the onion by every Prometheus",
        Duration::from_secs(120),
        || {
            let s = proxy.counts().1 - s0;
            if s >= 10 * n {
                Ok(())
            } else {
                Err(format!("{s} scrapes"))
            }
        },
    )
    .unwrap();
    check(&mut net, &|s: &Stack| {
        strings(&[
            "scrapes",
            &s.prom_url,
            "securedrop-tor",
            &since.to_string(),
            "10",
        ])
    });
    let (c1, s1) = proxy.counts();
    eprintln!(
        "connections: {n} Prometheus opened {} for their {} scrapes so far; {} new over the last {} scrapes",
        c1 - before_prometheus.0,
        s1 - before_prometheus.1,
        c1 - c0,
        s1 - s0
    );
    assert_eq!(
        c1 - c0,
        0,
        "Prometheus opened {} new connection(s) over {} scrapes at a {scrape_interval:?} interval",
        c1 - c0,
        s1 - s0
    );

    // --- The server's tor stops: the alert reaches the webhook with the role name, no address,
    // not before its for:.
    let since = unix_now();
    net.stop_node("onion").unwrap();
    let bound = unreachable_for + alert_extra;
    alert(
        &mut net,
        "SecureDropTorExporterUnreachable",
        "app",
        "firing",
        since,
        unreachable_for,
        bound,
    );

    // --- It starts again: resolved.
    let since = unix_now();
    net.start_node("onion").unwrap();
    alert(
        &mut net,
        "SecureDropTorExporterUnreachable",
        "app",
        "resolved",
        since,
        Duration::ZERO,
        RESOLVE_BOUND,
    );

    // The monitoring host's own tor stayed fine all along: it never paged.
    for s in &stacks {
        let all = std::fs::read_to_string(&s.hook_out).unwrap();
        assert!(
            !all.contains("SecureDropTorMonitoringHostTorBroken"),
            "[{}] the monitoring host's tor was paged about:\n{all}",
            s.label
        );
        for a in net.onion_addresses() {
            assert!(!all.contains(&a), "a notification names an onion address");
        }
    }

    // --- The monitoring host's own tor stops: every server goes `up == 0` at once. The page is
    // "our tor is broken", fired at least one evaluation before the per-server alert (12 s
    // against 30 s once scaled), so that Alertmanager already has it when the server alert
    // comes, holds that one back, and the only new notification is the one page.
    let since = unix_now();
    net.stop_node("client").unwrap();
    let bound = monitor_broken_for + alert_extra;
    alert(
        &mut net,
        "SecureDropTorMonitoringHostTorBroken",
        "monitor",
        "firing",
        since,
        monitor_broken_for,
        bound,
    );
    let bound = unreachable_for + alert_extra;
    check(&mut net, &|s: &Stack| {
        strings(&[
            "order",
            &s.prom_url,
            &since.to_string(),
            "SecureDropTorMonitoringHostTorBroken",
            "monitor",
            "SecureDropTorExporterUnreachable",
            "app",
            &bound.as_secs().to_string(),
        ])
    });
    check(&mut net, &|s: &Stack| {
        strings(&[
            "inhibited",
            &s.am_url,
            "SecureDropTorExporterUnreachable",
            "app",
            "SecureDropTorMonitoringHostTorBroken",
            &SLACK.as_secs().to_string(),
        ])
    });
    // Which alerts reached a receiver (the Watchdog's own left out), in which order: nothing
    // but these three.
    check(&mut net, &|s: &Stack| {
        strings(&[
            "notifications",
            s.hook_out.to_str().unwrap(),
            "SecureDropTorExporterUnreachable:app:firing",
            "SecureDropTorExporterUnreachable:app:resolved",
            "SecureDropTorMonitoringHostTorBroken:monitor:firing",
        ])
    });

    // --- The monitoring host's tor works again. Every server alert it held back resolves at
    // the next good scrape through it; the monitoring-host alert keeps firing (keep_firing_for)
    // past that, so its inhibition outlasts them and none of them pages as the outage ends.
    // Watched until its resolved notification and one page-route group_interval (Alertmanager
    // flushes a group at most that long after an inhibition ends) and the slack have gone by.
    let since = unix_now();
    let restarted = Instant::now();
    net.start_node("client").unwrap();
    let quiet = d("group_interval securedrop-admin-page") + d("evaluation_interval") + SLACK;
    let bound = RESOLVE_BOUND + quiet;
    check(&mut net, &|s: &Stack| {
        strings(&[
            "recovery",
            &s.prom_url,
            &s.am_url,
            s.hook_out.to_str().unwrap(),
            &since.to_string(),
            "SecureDropTorMonitoringHostTorBroken",
            "monitor",
            &quiet.as_secs().to_string(),
            &bound.as_secs().to_string(),
        ])
    });
    eprintln!(
        "recovery watched for {:?} (quiet {quiet:?} after the monitoring-host alert resolved)",
        restarted.elapsed()
    );
    check(&mut net, &|s: &Stack| {
        strings(&[
            "notifications",
            s.hook_out.to_str().unwrap(),
            "SecureDropTorExporterUnreachable:app:firing",
            "SecureDropTorExporterUnreachable:app:resolved",
            "SecureDropTorMonitoringHostTorBroken:monitor:firing",
            "SecureDropTorMonitoringHostTorBroken:monitor:resolved",
        ])
    });
    for s in &stacks {
        let all = std::fs::read_to_string(&s.hook_out).unwrap();
        for a in net.onion_addresses() {
            assert!(!all.contains(&a), "a notification names an onion address");
        }
    }

    drop(stacks);
    drop(proxy);
    drop(monitor_exporter);
    drop(server_exporter);
    drop(net);
}
