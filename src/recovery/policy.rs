//! When to reload or restart tor, from the exporter's judgements. Pure: the report, the state
//! kept between runs, the time and whether dpkg is busy come in; a decision and the new state go
//! out. `run.rs` does the I/O.
//!
//! One *episode* is a stretch of time in which some state that a reload or restart can cure has
//! been alerting (past its hold in the exporter). Within an episode:
//! - after [`Policy::reload_after`] (default 20 min, past every alert's hold, so the admin's
//!   mail went out first): one `reload` (SIGHUP: tor re-reads its configuration, rebuilds its
//!   circuits and uploads its descriptors again, with no downtime);
//! - from [`Policy::restart_after`] (40 min) on: `restart`, at most once per
//!   [`Policy::restart_every`] (1 h), at most [`Policy::max_restarts`] (3) times;
//! - then it gives up, says so once, and leaves tor alone until the episode ends.
//!
//! The episode ends only after no curable state at all (alerting or still held) for
//! [`Policy::settle`] (30 min). So a tor that our restart sends back into bootstrapping, or that
//! flaps, stays in the same episode, with the same counts: the counts cannot reset in a loop.
//! Nothing happens while dpkg runs (an upgrade may be restarting tor itself), and nothing for
//! states a restart cannot cure (an obsolete version).

use std::time::Duration;

use crate::health::{duration, Reported};

/// The states a reload or restart may cure.
pub const CURABLE: &[&str] = &[
    "tor_down",
    "no_circuits",
    "bootstrap_stuck",
    "onion_not_published",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub reload_after: Duration,
    pub restart_after: Duration,
    pub restart_every: Duration,
    pub max_restarts: u32,
    pub settle: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        let m = |n: u64| Duration::from_secs(n * 60);
        Policy {
            reload_after: m(20),
            restart_after: m(40),
            restart_every: m(60),
            max_restarts: 3,
            settle: m(30),
        }
    }
}

/// What the recovery remembers between its runs (a small text file, see [`State::to_text`]).
/// Times are Unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub episode_start: Option<u64>,
    pub reloads: u32,
    pub restarts: u32,
    pub last_action: Option<u64>,
    pub healthy_since: Option<u64>,
    pub gave_up: bool,
    /// Since the state file was made, for `tor_exporter_recovery_actions_total`.
    pub total_reloads: u64,
    pub total_restarts: u64,
}

impl State {
    /// `key value` lines; what [`State::parse`] reads.
    pub fn to_text(&self) -> String {
        let opt = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
        format!(
            "episode_start {}\nreloads {}\nrestarts {}\nlast_action {}\nhealthy_since {}\ngave_up {}\ntotal_reloads {}\ntotal_restarts {}\n",
            opt(self.episode_start),
            self.reloads,
            self.restarts,
            opt(self.last_action),
            opt(self.healthy_since),
            u8::from(self.gave_up),
            self.total_reloads,
            self.total_restarts
        )
    }

    /// Reads [`State::to_text`]; `None` if anything is off (the caller starts afresh and says
    /// so: a lost count can at worst allow the bounded actions of one more episode).
    pub fn parse(text: &str) -> Option<State> {
        let mut s = State::default();
        for line in text.lines() {
            let (key, value) = line.split_once(' ')?;
            let opt = |v: &str| -> Option<Option<u64>> {
                if v == "-" {
                    Some(None)
                } else {
                    v.parse().ok().map(Some)
                }
            };
            match key {
                "episode_start" => s.episode_start = opt(value)?,
                "reloads" => s.reloads = value.parse().ok()?,
                "restarts" => s.restarts = value.parse().ok()?,
                "last_action" => s.last_action = opt(value)?,
                "healthy_since" => s.healthy_since = opt(value)?,
                "gave_up" => s.gave_up = value == "1",
                "total_reloads" => s.total_reloads = value.parse().ok()?,
                "total_restarts" => s.total_restarts = value.parse().ok()?,
                _ => return None,
            }
        }
        Some(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Nothing,
    Reload,
    Restart,
    GiveUp,
    /// An episode in which something was done is over.
    Recovered,
}

/// The decision and the line to log with it (the health grammar, so OSSEC mails the actions).
pub fn decide(
    p: &Policy,
    report: &[Reported],
    state: &State,
    now: u64,
    dpkg_busy: bool,
) -> (Decision, State, Option<String>) {
    let mut st = state.clone();
    let curable: Vec<&Reported> = report
        .iter()
        .filter(|r| CURABLE.contains(&r.state.as_str()))
        .collect();
    let alerting: Vec<&&Reported> = curable.iter().filter(|r| r.alerting).collect();
    let Some(start) = st.episode_start else {
        if alerting.is_empty() {
            return (Decision::Nothing, st, None);
        }
        // a new episode, as old as its longest alerting state
        let longest = alerting
            .iter()
            .map(|r| r.lasted.as_secs())
            .max()
            .unwrap_or(0);
        st.episode_start = Some(now.saturating_sub(longest));
        return decide(p, report, &st, now, dpkg_busy);
    };
    let lasted = Duration::from_secs(now.saturating_sub(start));
    if curable.is_empty() {
        let since = *st.healthy_since.get_or_insert(now);
        if now.saturating_sub(since) < p.settle.as_secs() {
            return (Decision::Nothing, st, None);
        }
        let acted = st.reloads + st.restarts > 0;
        st = State {
            total_reloads: st.total_reloads,
            total_restarts: st.total_restarts,
            ..State::default()
        };
        if !acted {
            return (Decision::Nothing, st, None);
        }
        let line = format!("tor health: ok recovery after {}", duration(lasted));
        return (Decision::Recovered, st, Some(line));
    }
    st.healthy_since = None;
    if dpkg_busy || st.gave_up || alerting.is_empty() {
        return (Decision::Nothing, st, None);
    }
    let what = alerting
        .iter()
        .map(|r| match &r.role {
            Some(role) => format!("{} {role}", r.state),
            None => r.state.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let since_action = st.last_action.map(|t| now.saturating_sub(t));
    let acted = st.reloads + st.restarts > 0;
    if !acted && lasted >= p.reload_after {
        st.reloads += 1;
        st.total_reloads += 1;
        st.last_action = Some(now);
        let line = format!(
            "tor health: alert recovery_reload for {}: {what}; reloading tor",
            duration(lasted)
        );
        return (Decision::Reload, st, Some(line));
    }
    let patience = p.restart_after.saturating_sub(p.reload_after).as_secs();
    let restart_due = lasted >= p.restart_after
        && since_action.map_or(true, |s| s >= patience)
        && (st.restarts == 0 || since_action.map_or(true, |s| s >= p.restart_every.as_secs()));
    if !restart_due {
        return (Decision::Nothing, st, None);
    }
    if st.restarts >= p.max_restarts {
        st.gave_up = true;
        let line = format!(
            "tor health: alert recovery_exhausted for {}: {what}; {} restarts did not help, so tor is left as it is until it recovers or an admin looks",
            duration(lasted),
            st.restarts
        );
        return (Decision::GiveUp, st, Some(line));
    }
    st.restarts += 1;
    st.total_restarts += 1;
    st.last_action = Some(now);
    let line = format!(
        "tor health: alert recovery_restart for {}: {what}; restarting tor ({} of at most {})",
        duration(lasted),
        st.restarts,
        p.max_restarts
    );
    (Decision::Restart, st, Some(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(state: &str, lasted_min: u64, alerting: bool) -> Reported {
        Reported {
            state: state.to_owned(),
            role: None,
            lasted: Duration::from_secs(lasted_min * 60),
            alerting,
        }
    }

    /// Runs the policy once a minute for `minutes`, with the report `at(minute)` gives; returns
    /// each minute's decision that was not Nothing, and the lines.
    fn simulate(
        minutes: u64,
        mut at: impl FnMut(u64) -> Vec<Reported>,
    ) -> (Vec<(u64, Decision)>, Vec<String>) {
        let p = Policy::default();
        let mut st = State::default();
        let mut decisions = Vec::new();
        let mut lines = Vec::new();
        for minute in 0..minutes {
            let (d, next, line) = decide(&p, &at(minute), &st, 1_000_000 + minute * 60, false);
            // the state survives a round trip through its file
            st = State::parse(&next.to_text()).unwrap();
            assert_eq!(st, next);
            if d != Decision::Nothing {
                decisions.push((minute, d));
            }
            lines.extend(line);
        }
        (decisions, lines)
    }

    #[test]
    fn a_healthy_tor_is_never_touched() {
        let (d, lines) = simulate(7 * 24 * 60, |_| vec![]);
        assert!(d.is_empty() && lines.is_empty());
        // nor one with only an obsolete version, or states still within their hold
        let (d, _) = simulate(24 * 60, |_| {
            vec![
                item("version_obsolete", 600, true),
                item("no_circuits", 5, false),
            ]
        });
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn a_frozen_tor_is_reloaded_then_restarted_and_the_episode_ends_when_it_is_well() {
        // tor_down alerting from minute 5 (its hold) until the restart at minute 40 cures it;
        // it then bootstraps for 2 minutes (not alerting)
        let (d, lines) = simulate(120, |m| match m {
            0..5 => vec![item("tor_down", m, false)],
            5..41 => vec![item("tor_down", m, true)],
            41..43 => vec![item("bootstrap_stuck", m - 41, false)],
            _ => vec![],
        });
        assert_eq!(
            d,
            [
                (20, Decision::Reload),
                (40, Decision::Restart),
                (73, Decision::Recovered)
            ]
        );
        assert_eq!(
            lines,
            [
                "tor health: alert recovery_reload for 20m: tor_down; reloading tor",
                "tor health: alert recovery_restart for 40m: tor_down; restarting tor (1 of at most 3)",
                "tor health: ok recovery after 1h 13m",
            ]
        );
    }

    #[test]
    fn a_tor_no_restart_can_cure_gets_a_bounded_number_of_attempts_then_one_line() {
        let (d, lines) = simulate(24 * 60, |m| vec![item("no_circuits", m, m >= 10)]);
        assert_eq!(
            d,
            [
                (20, Decision::Reload),
                (40, Decision::Restart),
                (100, Decision::Restart),
                (160, Decision::Restart),
                (220, Decision::GiveUp),
            ]
        );
        assert_eq!(lines.len(), 5);
        assert!(lines[4].starts_with(
            "tor health: alert recovery_exhausted for 3h 40m: no_circuits; 3 restarts did not help"
        ));
    }

    /// After a restart tor bootstraps (held, not alerting) and falls back into the same fault:
    /// the same episode, so the count goes on and the bound holds.
    #[test]
    fn a_flapping_tor_stays_in_one_episode() {
        let (d, _) = simulate(24 * 60, |m| {
            if m % 30 < 3 {
                vec![item("bootstrap_stuck", m % 30, false)]
            } else {
                vec![item("tor_down", m % 30, m % 30 >= 8)]
            }
        });
        let restarts = d.iter().filter(|(_, d)| *d == Decision::Restart).count();
        assert_eq!(restarts, 3, "{d:?}");
        assert_eq!(d.iter().filter(|(_, d)| *d == Decision::GiveUp).count(), 1);
    }

    #[test]
    fn nothing_while_dpkg_runs() {
        let p = Policy::default();
        let report = [item("tor_down", 30, true)];
        let (d, st, line) = decide(&p, &report, &State::default(), 10_000, true);
        assert_eq!((d, line), (Decision::Nothing, None));
        // the episode is known (so the wait after the upgrade is not counted from zero)
        assert_eq!(st.episode_start, Some(10_000 - 30 * 60));
        let (d, _, _) = decide(&p, &report, &st, 10_000, false);
        assert_eq!(d, Decision::Reload);
    }

    #[test]
    fn a_damaged_state_file_is_refused() {
        assert_eq!(State::parse(""), Some(State::default()));
        assert_eq!(State::parse("reloads x\n"), None);
        assert_eq!(State::parse("colour blue\n"), None);
        assert_eq!(State::parse("reloads\n"), None);
    }

    /// The grammar OSSEC's rules match is pinned by tests/golden/recovery_lines.txt beside the
    /// health judge's lines; the OSSEC rule tests (tests/ossec/) read both.
    #[test]
    fn lines_match_the_golden_file() {
        let (_, mut lines) = simulate(120, |m| match m {
            0..5 => vec![item("tor_down", m, false)],
            5..41 => vec![item("tor_down", m, true)],
            _ => vec![],
        });
        let (_, incurable) = simulate(24 * 60, |m| vec![item("no_circuits", m, m >= 10)]);
        lines.extend(incurable.into_iter().skip(2));
        let made: String = lines
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<Vec<_>>()
            .concat();
        assert_eq!(made, include_str!("../../tests/golden/recovery_lines.txt"));
    }
}
