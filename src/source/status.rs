//! What one batched GETINFO tells us about tor, parsed without I/O.
//!
//! Each value is parsed on its own: a malformed one becomes `None` plus an entry in
//! `malformed` (counted as a `parse` error), never a panic and never a failed refresh.
//! Raw lines that could name relays (the bootstrap line's HOSTADDR/HOSTID) are never kept.

use crate::control::Message;
use crate::source::getinfo::getinfo_values;
use crate::source::traffic::RawTraffic;

/// The keys of the one GETINFO sent per refresh. All exist on every tor ≥ 0.3.5 and answer on
/// clients and relays alike; a key that can fail (e.g. `fingerprint` on a client) would fail the
/// whole batch, so relay keys go in a second batch sent only to relays.
pub const GETINFO_KEYS: &[&str] = &[
    "version",
    "status/version/current",
    "status/bootstrap-phase",
    "status/enough-dir-info",
    "network-liveness",
    "status/circuit-established",
    "dormant",
    "uptime",
    "traffic/read",
    "traffic/written",
    "net/listeners/or",
];

/// tor's own view of its version (`status/version/current`), as a label-safe value.
pub const VERSION_STATUSES: &[&str] = &[
    "new",
    "new_in_series",
    "none_recommended",
    "obsolete",
    "old",
    "recommended",
    "unknown",
    "unrecommended",
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TorStatus {
    pub version: Option<String>,
    pub version_status: Option<&'static str>,
    pub bootstrap_progress: Option<u8>,
    pub enough_dir_info: Option<bool>,
    pub network_liveness: Option<bool>,
    pub circuit_established: Option<bool>,
    pub dormant: Option<bool>,
    pub uptime_seconds: Option<u64>,
    /// tor has an ORPort listener: it is a relay (or bridge).
    pub is_relay: bool,
    /// Keys whose values did not parse.
    pub malformed: Vec<&'static str>,
}

fn parse_bool01(v: &str) -> Option<bool> {
    match v.trim() {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

/// The PROGRESS number of a `status/bootstrap-phase` line, and nothing else of it.
pub fn bootstrap_progress(v: &str) -> Option<u8> {
    let progress = v.split(' ').find_map(|w| w.strip_prefix("PROGRESS="))?;
    let n: u8 = progress.parse().ok()?;
    (n <= 100).then_some(n)
}

/// tor's version without any `(git-…)` suffix; only characters safe in a label.
pub fn version(v: &str) -> Option<String> {
    let first = v.split_whitespace().next()?;
    let ok = !first.is_empty()
        && first.len() <= 32
        && first
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
    ok.then(|| first.to_owned())
}

pub fn version_status(v: &str) -> Option<&'static str> {
    let canon = v.trim().replace(' ', "_");
    VERSION_STATUSES.iter().copied().find(|s| *s == canon)
}

impl TorStatus {
    /// tor's state, and its raw traffic counters apart (see [`RawTraffic`]: they must go through
    /// a coarsener before anything else sees them).
    pub fn from_getinfo(reply: &Message) -> (TorStatus, RawTraffic) {
        let values = getinfo_values(reply);
        let mut s = TorStatus::default();
        let get = |key: &'static str, malformed: &mut Vec<&'static str>| -> Option<String> {
            let v = values.get(key).cloned();
            if v.is_none() {
                malformed.push(key);
            }
            v
        };
        let mut bad = Vec::new();
        macro_rules! field {
            ($key:literal, $parse:expr) => {{
                match get($key, &mut bad) {
                    Some(v) => {
                        let parsed = $parse(v.as_str());
                        if parsed.is_none() {
                            bad.push($key);
                        }
                        parsed
                    }
                    None => None,
                }
            }};
        }
        s.version = field!("version", version);
        s.version_status = field!("status/version/current", version_status);
        s.bootstrap_progress = field!("status/bootstrap-phase", bootstrap_progress);
        s.enough_dir_info = field!("status/enough-dir-info", parse_bool01);
        s.network_liveness = field!("network-liveness", |v: &str| match v.trim() {
            "up" => Some(true),
            "down" => Some(false),
            _ => None,
        });
        s.circuit_established = field!("status/circuit-established", parse_bool01);
        s.dormant = field!("dormant", parse_bool01);
        s.uptime_seconds = field!("uptime", |v: &str| v.trim().parse::<u64>().ok());
        // Asked for only when `traffic.enabled` (the refresher leaves the keys out otherwise): an
        // absent counter is not an error, a present one that does not parse is.
        let mut counter = |key: &'static str| {
            let v = values.get(key)?;
            let parsed = v.trim().parse::<u64>().ok();
            if parsed.is_none() {
                bad.push(key);
            }
            parsed
        };
        let traffic = RawTraffic {
            read: counter("traffic/read"),
            written: counter("traffic/written"),
        };
        s.is_relay = values
            .get("net/listeners/or")
            .is_some_and(|v| !v.trim().is_empty());
        s.malformed = bad;
        (s, traffic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(s: &str) -> Message {
        crate::control::reply::parse_one(s)
    }

    /// What tor 0.4.9.11 answered for a DisableNetwork client (see shared/tor-facts.md).
    const REAL: &str = "250-version=0.4.9.11\r\n250-status/version/current=unknown\r\n250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY=\"Starting\"\r\n250-status/enough-dir-info=0\r\n250-network-liveness=down\r\n250-status/circuit-established=0\r\n250-dormant=0\r\n250-uptime=51\r\n250-traffic/read=44718\r\n250-traffic/written=11666\r\n250-net/listeners/or=\r\n250 OK\r\n";

    #[test]
    fn parses_a_real_answer() {
        let (s, traffic) = TorStatus::from_getinfo(&reply(REAL));
        assert_eq!(s.version.as_deref(), Some("0.4.9.11"));
        assert_eq!(s.version_status, Some("unknown"));
        assert_eq!(s.bootstrap_progress, Some(0));
        assert_eq!(s.network_liveness, Some(false));
        assert_eq!(s.uptime_seconds, Some(51));
        assert_eq!(traffic.read, Some(44718));
        assert!(!s.is_relay);
        assert!(s.malformed.is_empty(), "{:?}", s.malformed);
    }

    /// What tor 0.4.8.14 (bookworm-backports) answered on the private test network, an onion
    /// node bootstrapped and its version recommended (tests/privnet_tor_replies.rs; the same
    /// keys and forms as 0.4.9.11's: docs/tor-versions.md).
    const REAL_048: &str = "250-version=0.4.8.14\r\n250-status/version/current=recommended\r\n250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY=\"Done\"\r\n250-status/enough-dir-info=1\r\n250-network-liveness=up\r\n250-status/circuit-established=1\r\n250-dormant=0\r\n250-uptime=75\r\n250-traffic/read=807677\r\n250-traffic/written=3291608\r\n250-net/listeners/or=\r\n250 OK\r\n";

    #[test]
    fn parses_tor_0_4_8s_answer() {
        let (s, traffic) = TorStatus::from_getinfo(&reply(REAL_048));
        assert_eq!(s.version.as_deref(), Some("0.4.8.14"));
        assert_eq!(s.version_status, Some("recommended"));
        assert_eq!(s.bootstrap_progress, Some(100));
        assert_eq!(s.network_liveness, Some(true));
        assert_eq!(s.circuit_established, Some(true));
        assert_eq!(s.uptime_seconds, Some(75));
        assert_eq!(traffic.written, Some(3291608));
        assert!(!s.is_relay);
        assert!(s.malformed.is_empty(), "{:?}", s.malformed);
    }

    #[test]
    fn stuck_bootstrap_keeps_only_the_number() {
        let v = "WARN BOOTSTRAP PROGRESS=14 TAG=handshake SUMMARY=\"Handshaking\" WARNING=\"x\" REASON=NOROUTE COUNT=3 RECOMMENDATION=warn HOSTID=\"$ABCD~relay\" HOSTADDR=\"192.0.2.7:443\"";
        assert_eq!(bootstrap_progress(v), Some(14));
        assert_eq!(
            bootstrap_progress("NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY=\"Done\""),
            Some(100)
        );
        assert_eq!(bootstrap_progress("PROGRESS=101"), None);
        assert_eq!(bootstrap_progress("garbage"), None);
    }

    #[test]
    fn version_statuses() {
        assert_eq!(version_status("none recommended"), Some("none_recommended"));
        assert_eq!(version_status("new in series"), Some("new_in_series"));
        assert_eq!(version_status("recommended"), Some("recommended"));
        assert_eq!(version_status("weird"), None);
        assert_eq!(version("0.4.8.10 (git-1234)").as_deref(), Some("0.4.8.10"));
        assert_eq!(version("0.4\"}evil"), None);
    }

    #[test]
    fn malformed_values_are_counted_not_fatal() {
        let (s, _) = TorStatus::from_getinfo(&reply(
            "250-version=0.4.9.11\r\n250-uptime=soon\r\n250-dormant=2\r\n250 OK\r\n",
        ));
        assert_eq!(s.version.as_deref(), Some("0.4.9.11"));
        assert_eq!(s.uptime_seconds, None);
        assert!(s.malformed.contains(&"uptime") && s.malformed.contains(&"dormant"));
        assert!(
            s.malformed.contains(&"network-liveness"),
            "missing keys count as malformed"
        );
        // except the traffic counters, asked for only when enabled
        assert!(!s.malformed.contains(&"traffic/read"));
    }

    #[test]
    fn relay_is_detected_from_or_listeners() {
        let (s, _) = TorStatus::from_getinfo(&reply(
            "250-net/listeners/or=\"0.0.0.0:9001\"\r\n250 OK\r\n",
        ));
        assert!(s.is_relay);
    }

    /// Without the traffic keys (not asked for: `traffic.enabled` is off) nothing is malformed
    /// and there are no counters; a counter that is there but does not parse still is.
    #[test]
    fn traffic_keys_are_optional_but_checked_when_present() {
        let without = REAL
            .replace("250-traffic/read=44718\r\n", "")
            .replace("250-traffic/written=11666\r\n", "");
        let (s, traffic) = TorStatus::from_getinfo(&reply(&without));
        assert!(s.malformed.is_empty(), "{:?}", s.malformed);
        assert_eq!((traffic.read, traffic.written), (None, None));
        let bad = REAL.replace("traffic/read=44718", "traffic/read=lots");
        let (s, _) = TorStatus::from_getinfo(&reply(&bad));
        assert_eq!(s.malformed, ["traffic/read"]);
    }
}
