//! Relay state, parsed from the answers tor gives only when it has an ORPort.
//!
//! A SecureDrop server is not a relay, and there these series are absent rather than wrong (a
//! client answers `OR=1 DIR=1` to the reachability keys, and has no fingerprint). The relay's own
//! fingerprint and nickname are public in the consensus; the IP address in its router status
//! entry is never kept.

use std::collections::BTreeMap;

use crate::control::Message;
use crate::source::getinfo::getinfo_values;

/// The relay keys of the second GETINFO (sent only to relays: on a client some would fail the
/// whole batch).
pub const GETINFO_KEYS: &[&str] = &[
    "fingerprint",
    "status/reachability-succeeded/or",
    "status/reachability-succeeded/dir",
    "accounting/enabled",
    "accounting/hibernating",
    "accounting/bytes",
    "accounting/bytes-left",
    "accounting/interval-end",
];

/// The relay options read with GETCONF.
pub const GETCONF_KEYS: &[&str] = &[
    "Nickname",
    "BandwidthRate",
    "BandwidthBurst",
    "RelayBandwidthRate",
    "RelayBandwidthBurst",
    "MaxAdvertisedBandwidth",
    "AccountingMax",
];

pub const HIBERNATION_STATES: &[&str] = &["awake", "soft", "hard"];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accounting {
    pub hibernating: Option<&'static str>,
    /// (read, written)
    pub used: Option<(u64, u64)>,
    pub left: Option<(u64, u64)>,
    pub max: Option<u64>,
    pub interval_end_unix: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RelayStatus {
    pub fingerprint: Option<String>,
    pub nickname: Option<String>,
    /// Consensus flags; empty until the relay is in a consensus.
    pub flags: Vec<String>,
    pub or_reachable: Option<bool>,
    pub dir_reachable: Option<bool>,
    pub effective_rate: Option<u64>,
    pub effective_burst: Option<u64>,
    /// `Some` only when AccountingMax is set.
    pub accounting: Option<Accounting>,
    /// Values that did not parse.
    pub malformed: u64,
}

fn parse_u64(v: Option<&String>, malformed: &mut u64) -> Option<u64> {
    let v = v?;
    let r = v.trim().parse().ok();
    if r.is_none() {
        *malformed += 1;
    }
    r
}

fn parse_pair(v: Option<&String>, malformed: &mut u64) -> Option<(u64, u64)> {
    let v = v?;
    let mut it = v.split_whitespace().map(str::parse::<u64>);
    match (it.next(), it.next()) {
        (Some(Ok(a)), Some(Ok(b))) => Some((a, b)),
        _ => {
            *malformed += 1;
            None
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) to Unix seconds.
pub fn parse_utc(s: &str) -> Option<i64> {
    let (date, time) = s.trim().split_once(' ')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if d.len() != 3 || t.len() != 3 || !(1..=12).contains(&d[1]) || !(1..=31).contains(&d[2]) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2])
}

fn label_safe(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

pub fn parse(info: &Message, conf: &Message) -> RelayStatus {
    let i = getinfo_values(info);
    let c: BTreeMap<String, String> = getinfo_values(conf);
    let mut m = 0u64;
    let mut s = RelayStatus {
        fingerprint: i
            .get("fingerprint")
            .map(|f| f.trim().to_owned())
            .filter(|f| f.len() == 40 && f.bytes().all(|b| b.is_ascii_hexdigit())),
        nickname: Some(
            c.get("Nickname")
                .map(|n| n.trim().to_owned())
                .filter(|n| label_safe(n, 19))
                .unwrap_or_else(|| "Unnamed".into()),
        ),
        ..Default::default()
    };
    let bool01 = |v: Option<&String>, m: &mut u64| match v.map(|x| x.trim()) {
        Some("1") => Some(true),
        Some("0") => Some(false),
        None => None,
        Some(_) => {
            *m += 1;
            None
        }
    };
    s.or_reachable = bool01(i.get("status/reachability-succeeded/or"), &mut m);
    s.dir_reachable = bool01(i.get("status/reachability-succeeded/dir"), &mut m);
    let rate = parse_u64(c.get("BandwidthRate"), &mut m);
    let relay_rate = parse_u64(c.get("RelayBandwidthRate"), &mut m).filter(|r| *r > 0);
    let max_adv = parse_u64(c.get("MaxAdvertisedBandwidth"), &mut m);
    s.effective_rate = [rate, relay_rate, max_adv].into_iter().flatten().min();
    let burst = parse_u64(c.get("BandwidthBurst"), &mut m);
    let relay_burst = parse_u64(c.get("RelayBandwidthBurst"), &mut m).filter(|r| *r > 0);
    s.effective_burst = [burst, relay_burst].into_iter().flatten().min();
    if bool01(i.get("accounting/enabled"), &mut m) == Some(true) {
        let hib = i.get("accounting/hibernating").map(|h| h.trim().to_owned());
        s.accounting = Some(Accounting {
            hibernating: hib
                .as_deref()
                .and_then(|h| HIBERNATION_STATES.iter().copied().find(|x| *x == h)),
            used: parse_pair(i.get("accounting/bytes"), &mut m),
            left: parse_pair(i.get("accounting/bytes-left"), &mut m),
            max: parse_u64(c.get("AccountingMax"), &mut m),
            interval_end_unix: i.get("accounting/interval-end").and_then(|v| parse_utc(v)),
        });
    }
    s.malformed = m;
    s
}

/// The `s` line of a router status entry: the relay's consensus flags.
pub fn parse_flags(ns: &Message) -> Vec<String> {
    let text = ns
        .lines
        .iter()
        .filter_map(|l| l.data.as_deref())
        .collect::<Vec<_>>()
        .join("\n");
    text.lines()
        .find_map(|l| l.strip_prefix("s "))
        .map(|flags| {
            flags
                .split_whitespace()
                .filter(|f| label_safe(f, 32))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> Message {
        crate::control::reply::parse_one(s)
    }

    #[test]
    fn relay_with_accounting() {
        let info = msg(&format!(
            "250-fingerprint={}\r\n250-status/reachability-succeeded/or=1\r\n250-status/reachability-succeeded/dir=0\r\n250-accounting/enabled=1\r\n250-accounting/hibernating=soft\r\n250-accounting/bytes=100 200\r\n250-accounting/bytes-left=300 400\r\n250-accounting/interval-end=2026-12-01 00:00:00\r\n250 OK\r\n",
            "0123456789ABCDEF0123456789ABCDEF01234567"
        ));
        let conf = msg(
            "250-Nickname=relay1\r\n250-BandwidthRate=1073741824\r\n250-BandwidthBurst=1073741824\r\n250-RelayBandwidthRate=5000000\r\n250-RelayBandwidthBurst=0\r\n250-MaxAdvertisedBandwidth=2000000\r\n250 AccountingMax=1000000000\r\n",
        );
        let r = parse(&info, &conf);
        assert_eq!(
            r.fingerprint.as_deref(),
            Some("0123456789ABCDEF0123456789ABCDEF01234567")
        );
        assert_eq!(r.nickname.as_deref(), Some("relay1"));
        assert_eq!((r.or_reachable, r.dir_reachable), (Some(true), Some(false)));
        assert_eq!(
            r.effective_rate,
            Some(2_000_000),
            "min of rate, relay rate and max advertised"
        );
        assert_eq!(
            r.effective_burst,
            Some(1_073_741_824),
            "a zero RelayBandwidthBurst is unset"
        );
        let a = r.accounting.unwrap();
        assert_eq!(a.hibernating, Some("soft"));
        assert_eq!(
            (a.used, a.left, a.max),
            (Some((100, 200)), Some((300, 400)), Some(1_000_000_000))
        );
        assert_eq!(a.interval_end_unix, Some(1_796_083_200));
        assert_eq!(r.malformed, 0);
    }

    #[test]
    fn unset_nickname_and_no_accounting() {
        let info = msg(
            "250-fingerprint=0123456789ABCDEF0123456789ABCDEF01234567\r\n250-accounting/enabled=0\r\n250 OK\r\n",
        );
        let conf = msg("250-Nickname\r\n250 AccountingMax=0\r\n");
        let r = parse(&info, &conf);
        assert_eq!(r.nickname.as_deref(), Some("Unnamed"));
        assert!(r.accounting.is_none());
    }

    #[test]
    fn flags_from_router_status_without_the_address() {
        let ns = msg(
            "250+ns/id/AAAA=\r\nr relay1 ASNFZ4mrze8BI0VniavN7wEjRWc 9aJ3 2026-11-25 08:00:00 192.0.2.1 9001 0\r\ns Fast Running Stable Valid\r\nw Bandwidth=20\r\n.\r\n250 OK\r\n",
        );
        assert_eq!(parse_flags(&ns), ["Fast", "Running", "Stable", "Valid"]);
    }

    #[test]
    fn utc_dates() {
        assert_eq!(parse_utc("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_utc("2000-03-01 12:00:01"), Some(951_912_001));
        assert_eq!(parse_utc("garbage"), None);
    }
}
