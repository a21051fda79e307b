//! The threat table of docs/privacy.md ("Traffic: what coarse counters still show"), computed with
//! the exporter's own coarsening (`source::traffic::Coarsener`), and checked to be the table the
//! page shows, so that the page cannot drift from the code.
//!
//! The model. tor's read counter on the server grows with a constant background (tor's own
//! directory and circuit traffic) and, for a while, with a source's upload. The exporter calls the
//! coarsener once per `tor.refresh_interval`, as the refresher does. The observer holds the
//! exported series and knows the background exactly (the worst case for us): what they can learn
//! is the difference between the series with the upload and the same series without it. Each
//! quantum and period is run over many phases (where tor's counter sits within a quantum when the
//! upload starts, and where the upload starts within a period), and the table gives the range.
//!
//! Regenerate the table after a change: `cargo test --test traffic_threat_table -- --nocapture`
//! prints it; paste it between the markers in docs/privacy.md.

use std::time::{Duration, Instant};

use securedrop_tor_exporter::config::{TorConfig, TrafficConfig};
use securedrop_tor_exporter::source::traffic::Coarsener;

const MIB: u64 = 1024 * 1024;
const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// tor's own traffic on an idle onion-service host, as the model's background: about 2 MiB an
/// hour (48 MiB a day: consensus and descriptor fetches, descriptor uploads, circuit building).
const BACKGROUND_BYTES_PER_HOUR: u64 = 2 * MIB;

/// tor counts cells on the wire: a RELAY_DATA cell carries at most 498 bytes of a stream in 514
/// bytes (link protocol 4 and later), so an upload of n bytes moves the read counter by about
/// n * 514 / 498 (TLS framing adds a little more, left out: it only makes uploads larger).
fn on_the_wire(payload: u64) -> u64 {
    payload * 514 / 498
}

/// A source's upload through the onion service: its size and how long it takes (about 250 kB/s).
#[derive(Clone, Copy)]
struct Upload {
    bytes: u64,
    seconds: u64,
}

const DOCUMENT: Upload = Upload {
    bytes: 100_000_000,
    seconds: 400,
};
const MESSAGE: Upload = Upload {
    bytes: 1_000_000,
    seconds: 4,
};

/// What one run shows the observer, at the first exported step after the upload has ended.
#[derive(Clone, Copy, Debug)]
struct Seen {
    /// Quanta by which the series with the upload stands above the series without it then.
    extra_quanta: u64,
    /// Exported steps, up to then, at which the difference grew.
    steps: u32,
    /// From the upload's start to the first exported step that differs (None: none did).
    first_seen_after: Option<u64>,
}

/// One run: the coarsener fed every `refresh` seconds, with and without the upload, from a
/// counter at `start_counter` when the exporter starts; the upload begins `upload_start` seconds
/// after the exporter's first reading. The exported steps (the moments the coarsener may move)
/// are found with the same coarsener fed a counter that grows by a quantum every second, so
/// that it moves at every step: the schedule is the exporter's own rule, not a copy of it.
fn run(
    quantum: u64,
    period: u64,
    refresh: u64,
    start_counter: u64,
    upload_start: u64,
    upload: Upload,
) -> Seen {
    let t0 = Instant::now();
    let mut with = Coarsener::new(quantum, Duration::from_secs(period));
    let mut without = Coarsener::new(quantum, Duration::from_secs(period));
    let mut clock = Coarsener::new(quantum, Duration::from_secs(period));
    let upload_rate = on_the_wire(upload.bytes) as f64 / upload.seconds as f64;
    let upload_end = upload_start + upload.seconds;
    let mut seen = Seen {
        extra_quanta: 0,
        steps: 0,
        first_seen_after: None,
    };
    let mut last_step = None;
    let mut last_difference = 0;
    let mut t = 0;
    loop {
        let now = t0 + Duration::from_secs(t);
        let step = clock.update(quantum * (t + 1), now).get();
        let background = start_counter + BACKGROUND_BYTES_PER_HOUR * t / HOUR;
        let uploaded = if t <= upload_start {
            0
        } else if t >= upload_end {
            on_the_wire(upload.bytes)
        } else {
            ((t - upload_start) as f64 * upload_rate) as u64
        };
        let difference =
            with.update(background + uploaded, now).get() - without.update(background, now).get();
        if last_step != Some(step) {
            // an exported step
            last_step = Some(step);
            if difference > last_difference {
                seen.steps += 1;
                if seen.first_seen_after.is_none() {
                    seen.first_seen_after = Some(t - upload_start);
                }
            }
            last_difference = difference;
            if t >= upload_end {
                seen.extra_quanta = difference / quantum;
                return seen;
            }
        }
        t += refresh;
    }
}

/// Every run of one quantum and period: counter phases within a quantum times start phases within
/// a period.
fn runs(quantum: u64, period: u64, refresh: u64, upload: Upload) -> Vec<Seen> {
    const COUNTER_PHASES: u64 = 128;
    const START_PHASES: u64 = 3;
    let mut all = Vec::new();
    for c in 0..COUNTER_PHASES {
        for s in 0..START_PHASES {
            // Start after the first publication, a period in, so that the coarsener is steady.
            let upload_start = period + period * s / START_PHASES + refresh / 2;
            all.push(run(
                quantum,
                period,
                refresh,
                quantum * c / COUNTER_PHASES,
                upload_start,
                upload,
            ));
        }
    }
    all
}

fn duration_text(seconds: u64) -> String {
    if seconds % DAY == 0 {
        format!("{} d", seconds / DAY)
    } else if seconds % HOUR == 0 {
        format!("{} h", seconds / HOUR)
    } else if seconds >= 90 * MINUTE {
        format!("{} h", (seconds + HOUR / 2) / HOUR)
    } else if seconds >= MINUTE {
        format!("{} min", (seconds + MINUTE / 2) / MINUTE)
    } else {
        format!("{} s", seconds)
    }
}

fn range<T: Ord + Copy + std::fmt::Display>(values: impl Iterator<Item = T>) -> String {
    let values: Vec<T> = values.collect();
    let low = *values.iter().min().expect("runs");
    let high = *values.iter().max().expect("runs");
    if low == high {
        format!("{}", low)
    } else {
        format!("{}–{}", low, high)
    }
}

struct Row {
    quantum: u64,
    period: u64,
    document: Vec<Seen>,
    message: Vec<Seen>,
}

impl Row {
    fn new(quantum: u64, period: u64, refresh: u64) -> Row {
        Row {
            quantum,
            period,
            document: runs(quantum, period, refresh, DOCUMENT),
            message: runs(quantum, period, refresh, MESSAGE),
        }
    }

    /// The share of runs in which the 1 MB message moved the series at all, in percent.
    fn message_seen_percent(&self) -> u64 {
        let seen = self.message.iter().filter(|s| s.extra_quanta > 0).count() as u64;
        (seen * 100 + self.message.len() as u64 / 2) / self.message.len() as u64
    }

    fn markdown(&self, default: bool) -> String {
        let latest = self
            .document
            .iter()
            .map(|s| s.first_seen_after.expect("a 100 MB upload always shows"));
        let low = self
            .document
            .iter()
            .map(|s| s.extra_quanta)
            .min()
            .expect("runs")
            * self.quantum;
        let high = self
            .document
            .iter()
            .map(|s| s.extra_quanta)
            .max()
            .expect("runs")
            * self.quantum;
        format!(
            "| {} MiB | {}{} | {} ({}–{} MiB) | {} | ≤ {} | {} % |",
            self.quantum / MIB,
            duration_text(self.period),
            if default { " (default)" } else { "" },
            range(self.document.iter().map(|s| s.extra_quanta)),
            low / MIB,
            high / MIB,
            range(self.document.iter().map(|s| s.steps)),
            duration_text(latest.max().expect("runs")),
            self.message_seen_percent(),
        )
    }
}

const QUANTA_MIB: [u64; 4] = [1, 4, 16, 64];
const PERIODS: [u64; 3] = [5 * MINUTE, HOUR, DAY];

fn table(rows: &[Row], defaults: &TrafficConfig) -> String {
    let mut out = String::from(
        "| quantum | period | 100 MB upload: extra quanta (bytes) | over how many steps | first seen after | 1 MB message moves the series in |\n\
         |---|---|---|---|---|---|\n",
    );
    for row in rows {
        let default =
            row.quantum == defaults.quantum_bytes && row.period == defaults.period.as_secs();
        out.push_str(&row.markdown(default));
        out.push('\n');
    }
    out
}

fn all_rows(refresh: u64) -> Vec<Row> {
    let mut rows = Vec::new();
    for q in QUANTA_MIB {
        for p in PERIODS {
            rows.push(Row::new(q * MIB, p, refresh));
        }
    }
    rows
}

const BEGIN: &str = "<!-- traffic_threat_table.rs: begin -->\n";
const END: &str = "<!-- traffic_threat_table.rs: end -->";

#[test]
fn the_table_in_the_privacy_page_is_the_coarseners() {
    let defaults = TrafficConfig::default();
    let refresh = TorConfig::default().refresh_interval.as_secs();
    assert!(refresh > 0);
    let rows = all_rows(refresh);
    let expected = table(&rows, &defaults);
    println!("{}", expected);

    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/privacy.md"))
        .expect("docs/privacy.md");
    let start = page
        .find(BEGIN)
        .expect("docs/privacy.md has the begin marker")
        + BEGIN.len();
    let end = page[start..]
        .find(END)
        .expect("docs/privacy.md has the end marker")
        + start;
    assert_eq!(
        &page[start..end],
        expected,
        "docs/privacy.md's threat table differs from what the coarsener gives (printed above)"
    );
}

/// What the page says in words, checked on the figures: the default shows a 100 MB upload as 6 or
/// 7 quanta within one hour's step; no setting hides it; only the daily period blurs its hour.
#[test]
fn a_large_upload_always_shows_and_its_size_to_one_quantum() {
    let refresh = TorConfig::default().refresh_interval.as_secs();
    let defaults = TrafficConfig::default();
    let default = Row::new(defaults.quantum_bytes, defaults.period.as_secs(), refresh);
    for seen in &default.document {
        assert!((6..=7).contains(&seen.extra_quanta), "{:?}", seen);
        assert!(
            seen.first_seen_after.expect("shows") <= HOUR + DOCUMENT.seconds + refresh,
            "{:?}",
            seen
        );
    }
    for row in all_rows(refresh) {
        let size = on_the_wire(DOCUMENT.bytes);
        for seen in &row.document {
            // the size, to within one quantum either way, in every setting
            let shown = seen.extra_quanta * row.quantum;
            assert!(
                shown < size + row.quantum && size < shown + row.quantum,
                "{:?}",
                seen
            );
            assert!(seen.first_seen_after.is_some());
        }
    }
}

/// The coarsener is what the exporter runs: the difference it shows only ever moves in whole
/// quanta and at most once per period.
#[test]
fn the_model_moves_in_whole_quanta_once_per_period() {
    let quantum = 16 * MIB;
    let period = HOUR;
    let t0 = Instant::now();
    let mut c = Coarsener::new(quantum, Duration::from_secs(period));
    let mut last = (0, 0);
    let mut t = 0;
    while t < 5 * HOUR {
        let v = c
            .update(
                on_the_wire(DOCUMENT.bytes) * t / HOUR,
                t0 + Duration::from_secs(t),
            )
            .get();
        assert_eq!(v % quantum, 0);
        if v != last.0 {
            assert!(t - last.1 >= period, "moved after {} s", t - last.1);
            last = (v, t);
        }
        t += 5;
    }
}
