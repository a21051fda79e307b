//! The status page at `/`: the snapshot, for a person, as plain server-rendered HTML.
//!
//! Meant to be read in Tor Browser (on Tails, at the safest security level) through the
//! client-authorized metrics onion: no JavaScript, no external assets, no web fonts, one small
//! inline style sheet, readable without it. It shows only what `/metrics` exports (the same
//! snapshot, encoded for eyes), never an address or a secret; "published since" is the start of
//! the current run of `tor_onion_service_published 1`, which Prometheus could compute too.
//! Rendering is pure (snapshot and clock in, text out) so a golden file can pin it.

use std::fmt::Write as _;

use crate::snapshot::Snapshot;
use crate::source::onion::ServiceHealth;

const STYLE: &str = "\
body{font-family:sans-serif;margin:0 auto;max-width:64rem;padding:1rem;line-height:1.4;color:#111;background:#fff}\n\
h1{font-size:1.4rem;margin:0 0 .5rem}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}\n\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ccc;vertical-align:top}\n\
th{font-weight:600}.ok{color:#064;font-weight:600}.bad{color:#a00;font-weight:600}.unknown{color:#555;font-style:italic}\n\
.summary{padding:.6rem .8rem;border:2px solid;margin:.5rem 0 1rem}.summary.ok{border-color:#064}.summary.bad{border-color:#a00}\n\
.services td:first-child{font-weight:600}small{color:#444}\n\
@media (max-width:40rem){.services thead{display:none}.services tr{display:block;border-bottom:2px solid #999;padding:.3rem 0}\n\
.services td{display:block;border:0;padding:.1rem .3rem}.services td::before{content:attr(data-label) \": \";font-weight:600}}";

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2026-12-01 19:20:05 UTC`.
fn utc(unix: f64) -> String {
    if !unix.is_finite() || unix < 0.0 {
        return "unknown".into();
    }
    crate::duration_text::rfc3339_seconds(unix as u64)
        .replace('T', " ")
        .replace('Z', " UTC")
}

/// `3 h 20 min`, `45 s`: coarse on purpose, for people.
fn ago(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} days", s / 86_400),
    }
}

fn yes_no(v: Option<bool>, yes: &str, no: &str) -> String {
    match v {
        Some(true) => format!("<span class=\"ok\">{yes}</span>"),
        Some(false) => format!("<span class=\"bad\">{no}</span>"),
        None => "<span class=\"unknown\">unknown</span>".into(),
    }
}

fn row(out: &mut String, k: &str, v: &str) {
    let _ = writeln!(out, "<tr><th scope=\"row\">{k}</th><td>{v}</td></tr>");
}

fn service_row(out: &mut String, role: &str, s: &ServiceHealth, now: f64) {
    let published = match s.published {
        Some(true) => "<span class=\"ok\">yes</span>".to_owned(),
        Some(false) => "<span class=\"bad\">no</span>".to_owned(),
        None => "<span class=\"unknown\">checking…</span>".to_owned(),
    };
    let since = s.published_since_unix.map_or("–".into(), |t| {
        format!("{}<br><small>{} ago</small>", utc(t), ago(now - t))
    });
    let last = s.last_upload_unix.map_or("none seen".into(), |t| {
        format!("{}<br><small>{} ago</small>", utc(t), ago(now - t))
    });
    let (intro, pow) = match &s.descriptor {
        None => (
            "<span class=\"unknown\">no descriptor yet</span>".to_owned(),
            "<span class=\"unknown\">unknown</span>".to_owned(),
        ),
        Some(d) => {
            let intro = match d.introduction_points {
                Some(n) if n > 0 => format!("<span class=\"ok\">{n}</span>"),
                Some(n) => format!("<span class=\"bad\">{n}</span>"),
                None => "<span class=\"unknown\">not readable (client authorization)</span>".into(),
            };
            let pow = match (d.pow_enabled, d.pow_suggested_effort) {
                (Some(true), Some(e)) => format!("on, suggested effort {e}"),
                (Some(true), None) => "on".into(),
                (Some(false), _) => "off".into(),
                (None, _) => "<span class=\"unknown\">unknown</span>".into(),
            };
            (intro, pow)
        }
    };
    let _ = writeln!(
        out,
        "<tr><td data-label=\"Service\">{}</td><td data-label=\"Published\">{published}</td>\
<td data-label=\"Published since\">{since}</td><td data-label=\"Last upload\">{last}</td>\
<td data-label=\"Intro points\">{intro}</td><td data-label=\"Proof of work\">{pow}</td></tr>",
        esc(role)
    );
}

/// The whole page. `now` is the Unix time to show ages against; `exporter_version` the exporter's.
pub fn render(s: &Snapshot, now: f64, exporter_version: &str) -> String {
    let status = s.status.as_ref().filter(|_| s.tor_up);
    let bootstrap = status.and_then(|t| t.bootstrap_progress);
    let circuits = status.and_then(|t| t.circuit_established);
    let unpublished: Vec<&str> = s
        .onion
        .services
        .iter()
        .filter(|(_, h)| h.published == Some(false))
        .map(|(l, _)| l.as_str())
        .collect();
    let healthy = s.tor_up && bootstrap == Some(100) && circuits == Some(true);
    let (class, summary) = if !s.refreshed {
        ("unknown", "Starting: no answer from tor yet.".to_owned())
    } else if !s.tor_up {
        (
            "bad",
            "tor is not answering on its control port.".to_owned(),
        )
    } else if !healthy {
        (
            "bad",
            "tor is up but not fully connected to the Tor network.".to_owned(),
        )
    } else if !unpublished.is_empty() {
        (
            "bad",
            format!(
                "tor is connected, but these onion services are not published: {}.",
                esc(&unpublished.join(", "))
            ),
        )
    } else {
        (
            "ok",
            "tor is connected and every onion service known to be checked is published.".to_owned(),
        )
    };

    let mut out = String::with_capacity(8192);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<meta name=\"referrer\" content=\"no-referrer\">\n");
    out.push_str("<title>tor status · securedrop-tor-exporter</title>\n");
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    out.push_str("<h1>tor status</h1>\n");
    let _ = writeln!(
        out,
        "<p class=\"summary {class}\">{summary}</p>\n<p><small>As of {} (reload the page to refresh).</small></p>",
        utc(now)
    );
    // The health judge's view (the same words as its log lines, which OSSEC mails): what has
    // lasted its hold time, and what is being watched until then.
    if let Some(alerts) = crate::health::summary(&s.health, now) {
        let _ = writeln!(
            out,
            "<p class=\"summary bad\">{} <small>(also in the server's log, which OSSEC mails)</small></p>",
            esc(&alerts)
        );
    }
    let watching: Vec<String> = s
        .health
        .iter()
        .filter(|i| !i.alerting)
        .map(|i| {
            let lasted = std::time::Duration::from_secs_f64((now - i.since_unix).max(0.0));
            let role = i
                .role
                .as_deref()
                .map(|r| format!(" {r}"))
                .unwrap_or_default();
            format!("{}{role} for {}", i.state, crate::health::duration(lasted))
        })
        .collect();
    if !watching.is_empty() {
        let _ = writeln!(
            out,
            "<p><small>Watching, not yet alerting: {}.</small></p>",
            esc(&watching.join("; "))
        );
    }

    out.push_str("<h2>tor</h2>\n<table>\n");
    row(
        &mut out,
        "Control port",
        &if !s.refreshed {
            "<span class=\"unknown\">not asked yet</span>".into()
        } else {
            yes_no(Some(s.tor_up), "answering", "not answering")
        },
    );
    row(
        &mut out,
        "Bootstrap",
        &match bootstrap {
            Some(100) => "<span class=\"ok\">100 %</span>".into(),
            Some(p) => format!("<span class=\"bad\">{p} %</span>"),
            None => "<span class=\"unknown\">unknown</span>".into(),
        },
    );
    row(
        &mut out,
        "Circuits",
        &yes_no(circuits, "established", "none established"),
    );
    row(
        &mut out,
        "Network",
        &yes_no(status.and_then(|t| t.network_liveness), "up", "down"),
    );
    row(
        &mut out,
        "Directory information",
        &yes_no(
            status.and_then(|t| t.enough_dir_info),
            "sufficient",
            "insufficient",
        ),
    );
    row(
        &mut out,
        "Dormant",
        match status.and_then(|t| t.dormant) {
            Some(true) => "<span class=\"bad\">yes</span>",
            Some(false) => "no",
            None => "<span class=\"unknown\">unknown</span>",
        },
    );
    let version = status.and_then(|t| t.version.as_deref());
    let vstatus = status.and_then(|t| t.version_status);
    row(
        &mut out,
        "Version",
        &match (version, vstatus) {
            (Some(v), Some(st)) => {
                let class = match st {
                    "recommended" | "new" | "new_in_series" | "none_recommended" => "ok",
                    "unknown" => "unknown",
                    _ => "bad",
                };
                format!(
                    "{} <span class=\"{class}\">({})</span>",
                    esc(v),
                    esc(&st.replace('_', " "))
                )
            }
            (Some(v), None) => esc(v),
            _ => "<span class=\"unknown\">unknown</span>".into(),
        },
    );
    row(
        &mut out,
        "Running for",
        &status
            .and_then(|t| t.uptime_seconds)
            .map_or("<span class=\"unknown\">unknown</span>".into(), |u| {
                ago(u as f64)
            }),
    );
    out.push_str("</table>\n");

    out.push_str("<h2>Onion services</h2>\n");
    if s.onion.services.is_empty() {
        out.push_str("<p>None seen yet. Name them under <code>[onion_services]</code> in the configuration.</p>\n");
    } else {
        if let Some(n) = s.onion.configured {
            let _ = writeln!(out, "<p>{n} configured in tor.</p>");
        }
        out.push_str("<table class=\"services\">\n<thead><tr><th>Service</th><th>Published</th><th>Published since</th><th>Last upload</th><th>Intro points</th><th>Proof of work</th></tr></thead>\n<tbody>\n");
        for (role, h) in &s.onion.services {
            service_row(&mut out, role, h, now);
        }
        out.push_str("</tbody>\n</table>\n");
        out.push_str("<p><small>“Checking…”: the exporter is fetching the descriptor back from the network after it started; it knows within 100 s. “Published since” counts from when this exporter first saw it published.</small></p>\n");
    }

    out.push_str("<h2>Exporter</h2>\n<table>\n");
    row(&mut out, "Version", &esc(exporter_version));
    row(
        &mut out,
        "Last successful refresh",
        &s.last_success_unix
            .map_or("<span class=\"bad\">none yet</span>".into(), |t| {
                format!("{} <small>({} ago)</small>", utc(t), ago(now - t))
            }),
    );
    out.push_str("</table>\n");
    out.push_str(
        "<p><a href=\"/metrics\">Metrics</a> (Prometheus text format)</p>\n</body>\n</html>\n",
    );
    out
}
