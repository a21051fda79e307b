//! Health judgements: the few states an admin acts on, each entered only after a hold time and
//! left with an "ok", as one stable line of text.
//!
//! Most SecureDrop admins run no Prometheus. What reaches them is OSSEC mail from the Monitor
//! Server, which reads the Application Server's syslog and sees only each line's text. So the
//! exporter itself decides when something is wrong for long enough to tell a person, and says it
//! in a line whose grammar OSSEC's rules can match (docs/ossec.md):
//!
//! ```text
//! tor health: alert <state>[ <role>] for <duration>: <explanation>
//! tor health: ok <state>[ <role>] after <duration>
//! ```
//!
//! The same judgements feed the status page and systemd's `STATUS=`, so there is one owner of
//! "is tor healthy", not a copy per channel. Pure: the snapshot and the time come in as
//! arguments; `tasks::health` does the logging.
//!
//! Hold times are the `for:` of the matching Prometheus alerts (docs/monitoring.md), so both
//! channels speak up at the same moment. They are longer than what routine events take: tor's
//! restart on an upgrade (seconds), a reload, a bootstrap after the nightly reboot (a minute or
//! two; the exporter restarts with the server and judges afresh). A state that clears before its
//! hold says nothing at all, not even "ok". While a state lasts, its alert is repeated every
//! [`REMIND_EVERY`], so a problem that outlives one mail is not forgotten; no more often, so a
//! phone is not flooded.
//!
//! What is left out, and why: clock skew (tor gives the exporter no trustworthy clock to compare
//! with; Prometheus compares scrape time with the exporter's, see the alert rules), relays' own
//! states (SecureDrop servers are clients), traffic (never judged: it would need per-visit
//! resolution).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::snapshot::{HealthItem, Snapshot};

/// A state an admin acts on. The order is the order of the lines and of the status page.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Problem {
    /// The exporter has no answer from tor's control port: tor is down or frozen.
    TorDown,
    /// tor answers but has not finished bootstrapping.
    BootstrapStuck,
    /// tor is bootstrapped but has no circuit.
    NoCircuits,
    /// An onion service (by role name, never its address) has had no descriptor upload within
    /// a descriptor lifetime.
    OnionNotPublished(String),
    /// The network's consensus calls tor's version obsolete, old or unrecommended.
    VersionObsolete,
}

impl Problem {
    /// The state's name in the log grammar.
    pub fn state(&self) -> &'static str {
        match self {
            Problem::TorDown => "tor_down",
            Problem::BootstrapStuck => "bootstrap_stuck",
            Problem::NoCircuits => "no_circuits",
            Problem::OnionNotPublished(_) => "onion_not_published",
            Problem::VersionObsolete => "version_obsolete",
        }
    }

    pub fn role(&self) -> Option<&str> {
        match self {
            Problem::OnionNotPublished(role) => Some(role),
            _ => None,
        }
    }

    /// How long the state must last before it is said (the `for:` of the Prometheus alert).
    pub fn hold(&self) -> Duration {
        let m = |n: u64| Duration::from_secs(n * 60);
        match self {
            Problem::TorDown => m(5),
            Problem::NoCircuits => m(10),
            Problem::BootstrapStuck | Problem::OnionNotPublished(_) => m(15),
            Problem::VersionObsolete => m(60),
        }
    }

    /// `<state>` or `<state> <role>`.
    fn subject(&self) -> String {
        match self.role() {
            Some(role) => format!("{} {role}", self.state()),
            None => self.state().to_owned(),
        }
    }
}

/// A state's alert is said again this often while it lasts.
pub const REMIND_EVERY: Duration = Duration::from_secs(12 * 3600);

/// The versions tor's consensus does not want run (as the Prometheus alert has them).
const UNWANTED_VERSIONS: &[&str] = &["obsolete", "old", "unrecommended"];

/// What is wrong now, each with the words that explain it. Nothing while the exporter has not
/// asked tor yet; only [`Problem::TorDown`] while tor does not answer (whatever else was known
/// is stale); no circuit judgement while bootstrapping (it is part of bootstrapping).
pub fn problems(s: &Snapshot) -> BTreeMap<Problem, String> {
    let mut out = BTreeMap::new();
    if !s.refreshed {
        return out;
    }
    let Some(status) = s.status.as_ref().filter(|_| s.tor_up) else {
        out.insert(
            Problem::TorDown,
            "tor's control port has not answered".to_owned(),
        );
        return out;
    };
    match status.bootstrap_progress {
        Some(p) if p < 100 => {
            out.insert(Problem::BootstrapStuck, format!("tor is at {p}% bootstrap"));
        }
        Some(_) if status.circuit_established == Some(false) => {
            out.insert(
                Problem::NoCircuits,
                "tor has built no circuit, so its onion services cannot be reached".to_owned(),
            );
        }
        _ => {}
    }
    if let Some(v) = status
        .version_status
        .filter(|v| UNWANTED_VERSIONS.contains(v))
    {
        out.insert(
            Problem::VersionObsolete,
            format!(
                "tor {} is {v} in the network's consensus; check that automatic updates run",
                status.version.as_deref().unwrap_or("(version unknown)")
            ),
        );
    }
    for (role, service) in &s.onion.services {
        if service.published == Some(false) {
            out.insert(
                Problem::OnionNotPublished(role.clone()),
                "no descriptor of this onion service reached the network in the last 3h".to_owned(),
            );
        }
    }
    out
}

/// One line to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Alert {
        problem: Problem,
        lasted: Duration,
        why: String,
    },
    Ok {
        problem: Problem,
        lasted: Duration,
    },
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Line::Alert {
                problem,
                lasted,
                why,
            } => write!(
                f,
                "tor health: alert {} for {}: {why}",
                problem.subject(),
                duration(*lasted)
            ),
            Line::Ok { problem, lasted } => write!(
                f,
                "tor health: ok {} after {}",
                problem.subject(),
                duration(*lasted)
            ),
        }
    }
}

/// `5m`, `1h 3m`, `1d 2h`: minutes below an hour, then the two largest units, rounded down
/// (a hold is a whole number of minutes, and a phone screen is small).
pub fn duration(d: Duration) -> String {
    let minutes = d.as_secs() / 60;
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours, mins) {
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// Since when each current state has lasted, and when its alert was last said.
#[derive(Debug, Clone, Copy)]
struct Observed {
    since: Instant,
    said: Option<Instant>,
}

/// The memory behind the judgements: a state is judged on how long it has lasted.
#[derive(Debug)]
pub struct Judge {
    observed: BTreeMap<Problem, Observed>,
    /// Holds and reminders are divided by this (`health.hold_divisor`; 1 but in tests).
    divisor: u32,
}

impl Default for Judge {
    fn default() -> Self {
        Judge::new()
    }
}

impl Judge {
    pub fn new() -> Self {
        Judge::with_divisor(1)
    }

    /// A judge whose holds and reminders are `divisor` times shorter (time-scaled tests).
    pub fn with_divisor(divisor: u32) -> Self {
        Judge {
            observed: BTreeMap::new(),
            divisor: divisor.max(1),
        }
    }

    /// Takes what is wrong at `now` and returns the lines to log: an alert when a state has
    /// lasted its hold (and again every [`REMIND_EVERY`]), an ok when an alerted state is gone.
    pub fn observe(&mut self, now: Instant, current: &BTreeMap<Problem, String>) -> Vec<Line> {
        let mut lines = Vec::new();
        let gone: Vec<Problem> = self
            .observed
            .keys()
            .filter(|p| !current.contains_key(*p))
            .cloned()
            .collect();
        for problem in gone {
            let o = self.observed.remove(&problem).expect("listed above");
            if o.said.is_some() {
                lines.push(Line::Ok {
                    lasted: now.saturating_duration_since(o.since),
                    problem,
                });
            }
        }
        for (problem, why) in current {
            let o = self.observed.entry(problem.clone()).or_insert(Observed {
                since: now,
                said: None,
            });
            let lasted = now.saturating_duration_since(o.since);
            let due = match o.said {
                None => lasted >= problem.hold() / self.divisor,
                Some(said) => now.saturating_duration_since(said) >= REMIND_EVERY / self.divisor,
            };
            if due {
                o.said = Some(now);
                lines.push(Line::Alert {
                    problem: problem.clone(),
                    lasted,
                    why: why.clone(),
                });
            }
        }
        lines
    }

    /// The current states, for the status page and `STATUS=`: each with how long it has lasted
    /// and whether it has been said (past its hold).
    pub fn view(&self, now: Instant, now_unix: f64) -> Vec<HealthItem> {
        self.observed
            .iter()
            .map(|(problem, o)| {
                let lasted = now.saturating_duration_since(o.since);
                HealthItem {
                    state: problem.state(),
                    role: problem.role().map(str::to_owned),
                    since_unix: now_unix - lasted.as_secs_f64(),
                    alerting: o.said.is_some(),
                }
            })
            .collect()
    }
}

/// The one-line summary of the judgements: what `STATUS=` says and the status page heads with.
/// `None` when nothing is alerting.
pub fn summary(items: &[HealthItem], now_unix: f64) -> Option<String> {
    let mut out = String::new();
    for item in items.iter().filter(|i| i.alerting) {
        if !out.is_empty() {
            out.push_str("; ");
        }
        let lasted = Duration::from_secs_f64((now_unix - item.since_unix).max(0.0));
        let _ = write!(out, "{}", item.state);
        if let Some(role) = &item.role {
            let _ = write!(out, " {role}");
        }
        let _ = write!(out, " for {}", duration(lasted));
    }
    (!out.is_empty()).then(|| format!("tor health: alert {out}"))
}

/// The judgements as text for `GET /health` (what `securedrop-tor-exporter recover` acts on):
/// one line per watched state, `<state> <role or -> <seconds it has lasted> <1 alerting | 0 held>`,
/// after one comment line. No address, no secret: the same facts as the status page.
pub fn report(items: &[HealthItem], now_unix: f64) -> String {
    let mut out = String::from("# state role lasted_seconds alerting\n");
    for i in items {
        let lasted = (now_unix - i.since_unix).max(0.0) as u64;
        let _ = writeln!(
            out,
            "{} {} {lasted} {}",
            i.state,
            i.role.as_deref().unwrap_or("-"),
            u8::from(i.alerting)
        );
    }
    out
}

/// One line of [`report`], read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    pub state: String,
    pub role: Option<String>,
    pub lasted: Duration,
    pub alerting: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of the health report is not `<state> <role|-> <seconds> <0|1>`")]
pub struct ReportError {
    pub line: usize,
}

/// Reads [`report`]'s text. Strict: a line that does not parse is an error, not skipped (the
/// reader acts on tor; it must not act on a half-understood report).
pub fn parse_report(text: &str) -> Result<Vec<Reported>, ReportError> {
    let known = [
        Problem::TorDown.state(),
        Problem::BootstrapStuck.state(),
        Problem::NoCircuits.state(),
        Problem::OnionNotPublished(String::new()).state(),
        Problem::VersionObsolete.state(),
    ];
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let bad = || ReportError { line: n + 1 };
        let f: Vec<&str> = line.split(' ').collect();
        let [state, role, lasted, alerting] = f[..] else {
            return Err(bad());
        };
        let state = known.iter().find(|k| **k == state).ok_or_else(bad)?;
        let role_ok = |r: &str| {
            (1..=32).contains(&r.len())
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        };
        let role = match role {
            "-" => None,
            r if role_ok(r) => Some(r.to_owned()),
            _ => return Err(bad()),
        };
        let lasted = Duration::from_secs(lasted.parse().map_err(|_| bad())?);
        let alerting = match alerting {
            "1" => true,
            "0" => false,
            _ => return Err(bad()),
        };
        out.push(Reported {
            state: (*state).to_owned(),
            role,
            lasted,
            alerting,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::onion::ServiceHealth;
    use crate::source::status::TorStatus;

    fn up(f: impl FnOnce(&mut TorStatus)) -> Snapshot {
        let mut status = TorStatus {
            version: Some("0.4.9.11".into()),
            version_status: Some("recommended"),
            bootstrap_progress: Some(100),
            circuit_established: Some(true),
            ..TorStatus::default()
        };
        f(&mut status);
        Snapshot {
            refreshed: true,
            tor_up: true,
            status: Some(status),
            ..Snapshot::default()
        }
    }

    fn down() -> Snapshot {
        Snapshot {
            refreshed: true,
            ..Snapshot::default()
        }
    }

    fn states(s: &Snapshot) -> Vec<String> {
        problems(s).keys().map(Problem::subject).collect()
    }

    #[test]
    fn what_counts_as_a_problem() {
        assert!(states(&Snapshot::default()).is_empty(), "not asked yet");
        assert!(states(&up(|_| {})).is_empty());
        assert_eq!(states(&down()), ["tor_down"]);
        assert_eq!(
            states(&up(|s| s.bootstrap_progress = Some(45))),
            ["bootstrap_stuck"]
        );
        // no circuit while bootstrapping is part of bootstrapping
        assert_eq!(
            states(&up(|s| {
                s.bootstrap_progress = Some(45);
                s.circuit_established = Some(false)
            })),
            ["bootstrap_stuck"]
        );
        assert_eq!(
            states(&up(|s| s.circuit_established = Some(false))),
            ["no_circuits"]
        );
        for v in ["obsolete", "old", "unrecommended"] {
            assert_eq!(
                states(&up(|s| s.version_status = Some(v))),
                ["version_obsolete"]
            );
        }
        for v in ["recommended", "new", "new in series", "unknown"] {
            assert!(
                states(&up(|s| s.version_status = Some(v))).is_empty(),
                "{v}"
            );
        }
        let mut s = up(|_| {});
        for (role, published) in [
            ("source", Some(false)),
            ("journalist", Some(true)),
            ("ssh", None),
        ] {
            s.onion.services.insert(
                role.into(),
                ServiceHealth {
                    published,
                    ..ServiceHealth::default()
                },
            );
        }
        assert_eq!(
            states(&s),
            ["onion_not_published source"],
            "unknown is not unpublished"
        );
    }

    fn at(t0: Instant, minutes: u64) -> Instant {
        t0 + Duration::from_secs(minutes * 60)
    }

    fn said(lines: &[Line]) -> Vec<String> {
        lines.iter().map(Line::to_string).collect()
    }

    #[test]
    fn a_state_is_said_after_its_hold_then_every_12_hours_and_ok_when_gone() {
        let t0 = Instant::now();
        let mut j = Judge::new();
        let bad = problems(&down());
        let good = problems(&up(|_| {}));
        assert!(j.observe(at(t0, 0), &bad).is_empty());
        assert!(j.observe(at(t0, 4), &bad).is_empty(), "within the hold");
        assert_eq!(
            said(&j.observe(at(t0, 5), &bad)),
            ["tor health: alert tor_down for 5m: tor's control port has not answered"]
        );
        assert!(j.observe(at(t0, 6), &bad).is_empty(), "said once");
        assert!(j.observe(at(t0, 5 + 12 * 60 - 1), &bad).is_empty());
        assert_eq!(
            said(&j.observe(at(t0, 5 + 12 * 60), &bad)),
            ["tor health: alert tor_down for 12h 5m: tor's control port has not answered"]
        );
        assert_eq!(
            said(&j.observe(at(t0, 13 * 60), &good)),
            ["tor health: ok tor_down after 13h"]
        );
        assert!(j.observe(at(t0, 13 * 60 + 1), &good).is_empty());
    }

    /// A restart, a reload, the nightly reboot's bootstrap: shorter than the hold, so nothing
    /// is said, not even "ok"; and a new episode starts its hold afresh.
    #[test]
    fn a_blip_says_nothing_and_each_episode_holds_afresh() {
        let t0 = Instant::now();
        let mut j = Judge::new();
        let bad = problems(&down());
        let good = problems(&up(|_| {}));
        assert!(j.observe(at(t0, 0), &bad).is_empty());
        assert!(
            j.observe(at(t0, 4), &good).is_empty(),
            "no ok for what was never said"
        );
        assert!(
            j.observe(at(t0, 5), &bad).is_empty(),
            "the hold starts again"
        );
        assert!(j.observe(at(t0, 9), &bad).is_empty());
        assert_eq!(j.observe(at(t0, 10), &bad).len(), 1);
    }

    #[test]
    fn view_and_summary_show_what_is_held_and_what_is_said() {
        let t0 = Instant::now();
        let mut j = Judge::new();
        let mut s = up(|s| s.circuit_established = Some(false));
        s.onion.services.insert(
            "source".into(),
            ServiceHealth {
                published: Some(false),
                ..ServiceHealth::default()
            },
        );
        let p = problems(&s);
        j.observe(at(t0, 0), &p);
        j.observe(at(t0, 10), &p);
        let view = j.view(at(t0, 12), 100_000.0);
        assert_eq!(view.len(), 2);
        assert_eq!(
            (view[0].state, view[0].alerting, view[0].since_unix),
            ("no_circuits", true, 100_000.0 - 720.0)
        );
        assert_eq!(
            (view[1].state, view[1].role.as_deref(), view[1].alerting),
            ("onion_not_published", Some("source"), false)
        );
        assert_eq!(
            summary(&view, 100_000.0).as_deref(),
            Some("tor health: alert no_circuits for 12m")
        );
        assert_eq!(summary(&[], 0.0), None);
    }

    #[test]
    fn durations_read_well_on_a_phone() {
        let m = |n: u64| Duration::from_secs(n * 60);
        assert_eq!(duration(Duration::from_secs(59)), "0m");
        assert_eq!(duration(m(5)), "5m");
        assert_eq!(duration(m(60)), "1h");
        assert_eq!(duration(m(63)), "1h 3m");
        assert_eq!(duration(m(24 * 60)), "1d");
        assert_eq!(duration(m(26 * 60 + 59)), "1d 2h");
    }

    /// The grammar OSSEC's rules match (docs/ossec.md) is pinned by tests/golden/health_lines.txt,
    /// which the OSSEC rule tests (tests/ossec/) read as their input: every kind of line the
    /// judge can write, made here the way the exporter makes them.
    #[test]
    fn lines_match_the_golden_file() {
        let t0 = Instant::now();
        let mut lines = Vec::new();
        let mut run = |bad: &Snapshot, good: &Snapshot, alert_at: u64, ok_at: u64| {
            let mut j = Judge::new();
            j.observe(at(t0, 0), &problems(bad));
            lines.extend(j.observe(at(t0, alert_at), &problems(bad)));
            lines.extend(j.observe(at(t0, ok_at), &problems(good)));
        };
        let good = up(|_| {});
        run(&down(), &good, 5, 7);
        run(&up(|s| s.bootstrap_progress = Some(45)), &good, 15, 16);
        run(&up(|s| s.circuit_established = Some(false)), &good, 10, 63);
        let mut unpublished = up(|_| {});
        unpublished.onion.services.insert(
            "source".into(),
            ServiceHealth {
                published: Some(false),
                ..ServiceHealth::default()
            },
        );
        run(&unpublished, &good, 15, 160);
        let obsolete = up(|s| {
            s.version = Some("0.4.8.9".into());
            s.version_status = Some("obsolete");
        });
        run(&obsolete, &good, 60, 26 * 60);
        let mut j = Judge::new();
        j.observe(at(t0, 0), &problems(&down()));
        j.observe(at(t0, 5), &problems(&down()));
        lines.extend(j.observe(at(t0, 5 + 12 * 60), &problems(&down())));
        let made: String = lines
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<Vec<_>>()
            .concat();
        let golden = include_str!("../tests/golden/health_lines.txt");
        assert_eq!(made, golden);
    }

    #[test]
    fn the_report_reads_back_and_refuses_what_it_does_not_understand() {
        let items = vec![
            HealthItem {
                state: "tor_down",
                role: None,
                since_unix: 1000.0,
                alerting: true,
            },
            HealthItem {
                state: "onion_not_published",
                role: Some("source".into()),
                since_unix: 1250.5,
                alerting: false,
            },
        ];
        let text = report(&items, 1300.0);
        assert_eq!(
            text,
            "# state role lasted_seconds alerting\ntor_down - 300 1\nonion_not_published source 49 0\n"
        );
        let back = parse_report(&text).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(
            back[1],
            Reported {
                state: "onion_not_published".into(),
                role: Some("source".into()),
                lasted: Duration::from_secs(49),
                alerting: false,
            }
        );
        assert_eq!(parse_report("# nothing\n").unwrap(), vec![]);
        for bad in [
            "tor_down - 300",
            "tor_sad - 300 1",
            "tor_down - -1 1",
            "tor_down - 300 yes",
            "tor_down SOURCE 300 1",
            "<html>",
        ] {
            assert_eq!(parse_report(bad), Err(ReportError { line: 1 }), "{bad}");
        }
    }
}
