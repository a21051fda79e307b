//! The onion-service state machine: events and fetch results in, [`OnionHealth`] out. Pure: the
//! caller passes the clock and does the I/O (`tasks::onion_events`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::event::{Action, HsDescEvent};
use super::health::{DescriptorHealth, OnionHealth, ServiceHealth};
use super::hs_config::HsConfig;
use super::label::unnamed_label;
use crate::control::OnionAddress;
use crate::source::descriptor::{provenance, Descriptor, DescriptorId, Own, Provenance};

/// tor's v3 descriptor lifetime (`descriptor-lifetime 180` minutes); a service whose last
/// successful upload is older than this is no longer reachable from fresh clients.
pub const DESCRIPTOR_LIFETIME: Duration = Duration::from_secs(180 * 60);
/// How long a self-probe may take before it counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(120);
/// The start-up check: after connecting, the exporter fetches each named service's descriptor
/// back from the network (`HSFETCH`), at most this many times, each given [`CHECK_TIMEOUT`],
/// [`CHECK_RETRY`] apart. Until one returns (or all fail) `published` is absent, not 0.
pub const CHECK_ATTEMPTS: u32 = 3;
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(30);
pub const CHECK_RETRY: Duration = Duration::from_secs(5);
/// The longest `published` stays unknown after the exporter (re)connects to tor.
pub const CHECK_BOUND: Duration = Duration::from_secs(
    CHECK_ATTEMPTS as u64 * CHECK_TIMEOUT.as_secs()
        + (CHECK_ATTEMPTS as u64 - 1) * CHECK_RETRY.as_secs(),
);
/// How often tor's copy of our descriptors is read again (also after every upload).
pub const DESCRIPTOR_REFRESH: Duration = Duration::from_secs(60);
/// How long a fetched descriptor may stay [`Provenance::Undecided`] before `published` says 0:
/// tor re-uploads every 60–120 min (`HS_SERVICE_NEXT_UPLOAD_TIME_MAX`), so a tor that works
/// sends an `UPLOADED` within this, which proves it at once.
pub const UNDECIDED_BOUND: Duration = Duration::from_secs(120 * 60);

/// Onion services without a role name that are tracked at most. tor's events name any address
/// (a flood of HS_DESC events can name thousands): past this, new ones are not tracked, so
/// neither memory nor series nor log lines grow with what a peer sends.
pub const MAX_UNNAMED_SERVICES: usize = 16;

#[derive(Debug, Clone, Default)]
struct ServiceState {
    uploads: BTreeMap<(&'static str, &'static str), u64>,
    last_upload: Option<f64>,
    /// The last time we had proof the descriptor is on the HSDirs: an upload, or our fetch.
    evidence: Option<f64>,
    streak_start: Option<f64>,
    probe: Option<(bool, f64)>,
    check: Check,
    descriptor: Option<Descriptor>,
    /// What the running tor last said it has (see [`Own`]).
    own: Own,
    /// tor had no descriptor for this service after this connection subscribed to events: every
    /// upload of this tor reaches us as an event, so a fetched descriptor without one is another
    /// tor's.
    witnessed: bool,
}

impl ServiceState {
    /// The descriptor this tor made is on the HSDirs (an upload it reported, or our fetch of it).
    fn prove(&mut self, now: f64) {
        let fresh = self
            .evidence
            .is_some_and(|t| now - t < DESCRIPTOR_LIFETIME.as_secs_f64());
        if !fresh {
            self.streak_start = Some(now);
        }
        self.evidence = Some(now);
        self.check = Check::Done;
    }
}

/// The start-up check of one service (see [`CHECK_ATTEMPTS`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum Check {
    /// Not started (a service only seen through events): no proof means not published.
    #[default]
    Idle,
    /// Waiting for `attempts` so far; `in_flight` since when, else the next try is due at `next`.
    Pending {
        attempts: u32,
        in_flight: Option<f64>,
        next: f64,
    },
    /// A fetch brought a descriptor whose maker cannot be told yet (see [`Provenance`]); it is
    /// judged again whenever tor's own descriptor is read, and counts as not published after
    /// [`UNDECIDED_BOUND`].
    Undecided {
        fetched: DescriptorId,
        at: f64,
    },
    Done,
    /// Every attempt failed: no HSDir we asked had the descriptor this tor made.
    Failed,
}

/// Pure state machine over events; the caller passes the clock. No `Debug`: it holds addresses
/// and the label key.
pub struct Tracker {
    key: Vec<u8>,
    /// address → label, for every service known to be ours.
    ours: HashMap<OnionAddress, String>,
    services: BTreeMap<String, ServiceState>,
    configured: Option<u64>,
    /// HiddenServiceDir blocks with `HiddenServicePoWDefensesEnabled 1`, once known.
    pow_configured: Option<u64>,
    /// address → when its self-probe started.
    probes: HashMap<OnionAddress, f64>,
    /// tor uploaded a new descriptor: read tor's copy again.
    descriptors_stale: bool,
    /// Unnamed services tracked so far (at most [`MAX_UNNAMED_SERVICES`]).
    unnamed: usize,
    /// The running tor started no earlier than this (Unix seconds; from `uptime` at connect).
    tor_started: Option<f64>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .field("unnamed", &self.unnamed)
            .finish_non_exhaustive()
    }
}

/// What the caller should do after an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Notice {
    None,
    /// A service of ours we did not know and that has no role name: log a hint naming its
    /// label (never the address) and re-read the configured count.
    Unnamed(String),
    /// The first unnamed service past [`MAX_UNNAMED_SERVICES`]: log once that others are not
    /// tracked.
    TooManyUnnamed,
}

impl Tracker {
    pub fn new(roles: &[(String, OnionAddress)], key: Vec<u8>) -> Tracker {
        let mut t = Tracker {
            key,
            ours: HashMap::new(),
            services: BTreeMap::new(),
            configured: None,
            pow_configured: None,
            probes: HashMap::new(),
            descriptors_stale: true,
            unnamed: 0,
            tor_started: None,
        };
        for (role, addr) in roles {
            t.ours.insert(addr.clone(), role.clone());
            let s = t.services.entry(role.clone()).or_default();
            s.uploads.insert(("uploaded", "none"), 0);
            s.check = Check::Pending {
                attempts: 0,
                in_flight: None,
                next: f64::NEG_INFINITY,
            };
        }
        t
    }

    pub fn set_configured(&mut self, n: u64) {
        self.configured = Some(n);
    }

    pub fn set_hs_config(&mut self, c: HsConfig) {
        self.configured = Some(c.services);
        self.pow_configured = Some(c.pow_enabled);
    }

    /// After (re)connecting and subscribing to events: events may have been missed, so every
    /// named service is checked again. `own` is what tor said, after subscribing, it has for
    /// each; `tor_started` from its `uptime`.
    ///
    /// A proof from before the reconnect is kept only if tor still shows the very descriptor it
    /// showed then (same signing key): then it is the same tor process and that descriptor is
    /// still valid, so `published` stays 1 through the reconnect. A restarted tor has new
    /// signing keys, and its predecessor's uploads prove nothing about it.
    pub fn begin_checks(
        &mut self,
        now: f64,
        tor_started: Option<f64>,
        own: &[(OnionAddress, Own)],
    ) {
        self.tor_started = tor_started;
        for (addr, label) in &self.ours {
            if label.starts_with("unnamed_") {
                continue;
            }
            let Some(s) = self.services.get_mut(label) else {
                continue;
            };
            let new = own
                .iter()
                .find(|(a, _)| a == addr)
                .map_or(Own::Unknown, |(_, o)| *o);
            let same_tor =
                s.own.signing_key().is_some() && s.own.signing_key() == new.signing_key();
            if !same_tor {
                s.evidence = None;
                s.streak_start = None;
            }
            s.own = new;
            s.witnessed = new == Own::None;
            s.check = Check::Pending {
                attempts: 0,
                in_flight: None,
                next: now,
            };
        }
        self.descriptors_stale = true;
    }

    /// The state of the service at `addr`, when it is one of ours.
    fn named(&self, addr: &OnionAddress) -> Option<&ServiceState> {
        self.ours.get(addr).and_then(|l| self.services.get(l))
    }

    fn named_mut(&mut self, addr: &OnionAddress) -> Option<&mut ServiceState> {
        self.ours.get(addr).and_then(|l| self.services.get_mut(l))
    }

    /// The named service of `addr` waits for a fetch of its descriptor (its start-up check).
    pub fn awaits_content(&self, addr: &OnionAddress) -> bool {
        self.named(addr).is_some_and(|s| {
            matches!(
                s.check,
                Check::Pending {
                    in_flight: Some(_),
                    ..
                }
            )
        })
    }

    /// What tor now says it has for `addr`; an undecided fetch is judged again against it.
    pub fn set_own(&mut self, addr: &OnionAddress, own: Own) {
        let tor_started = self.tor_started;
        let Some(s) = self.named_mut(addr) else {
            return;
        };
        s.own = own;
        if let Check::Undecided { fetched, at } = s.check {
            match provenance(&fetched, &own, tor_started) {
                Provenance::Ours => s.prove(at),
                Provenance::Foreign => s.check = Check::Failed,
                Provenance::Undecided => {}
            }
        }
    }

    /// The descriptor a start-up fetch of `addr` brought back (`HS_DESC_CONTENT`), or `None`
    /// when it was empty or unreadable. Only one the running tor made proves `published`;
    /// another tor's counts as a failed attempt (another HSDir may have ours).
    pub fn on_content(&mut self, addr: &OnionAddress, fetched: Option<DescriptorId>, now: f64) {
        let tor_started = self.tor_started;
        let Some(s) = self.named_mut(addr) else {
            return;
        };
        if !matches!(
            s.check,
            Check::Pending {
                in_flight: Some(_),
                ..
            }
        ) {
            return;
        }
        let verdict = match fetched {
            None => Provenance::Foreign,
            Some(_) if s.witnessed => Provenance::Foreign,
            Some(f) => provenance(&f, &s.own, tor_started),
        };
        match (verdict, fetched) {
            (Provenance::Ours, _) => s.prove(now),
            (Provenance::Undecided, Some(fetched)) => {
                s.check = Check::Undecided { fetched, at: now }
            }
            _ => self.check_failed(addr, now),
        }
    }

    /// Start-up fetches due now; each is marked in flight.
    pub fn due_checks(&mut self, now: f64) -> Vec<OnionAddress> {
        let mut due = Vec::new();
        for addr in self.probe_targets() {
            let Some(s) = self.named_mut(&addr) else {
                continue;
            };
            if let Check::Pending {
                attempts,
                in_flight: None,
                next,
            } = s.check
            {
                if now >= next {
                    s.check = Check::Pending {
                        attempts: attempts + 1,
                        in_flight: Some(now),
                        next,
                    };
                    due.push(addr);
                }
            }
        }
        due
    }

    /// A start-up fetch of `addr` found nothing (tor refused it, an HSDir said no, or it timed out).
    pub fn check_failed(&mut self, addr: &OnionAddress, now: f64) {
        let Some(s) = self.named_mut(addr) else {
            return;
        };
        if let Check::Pending {
            attempts,
            in_flight: Some(_),
            ..
        } = s.check
        {
            s.check = if attempts >= CHECK_ATTEMPTS {
                Check::Failed
            } else {
                Check::Pending {
                    attempts,
                    in_flight: None,
                    next: now + CHECK_RETRY.as_secs_f64(),
                }
            };
        }
    }

    /// True once after tor uploaded a new descriptor or we reconnected.
    pub fn take_descriptors_stale(&mut self) -> bool {
        std::mem::take(&mut self.descriptors_stale)
    }

    /// What tor's copy of the descriptor of `addr` says (`None`: tor has none yet).
    pub fn set_descriptor(&mut self, addr: &OnionAddress, d: Option<Descriptor>) {
        if let Some(s) = self.named_mut(addr) {
            s.descriptor = d;
        }
    }

    /// Addresses to self-probe: the named ones (unnamed ones are not ours to probe by choice).
    pub fn probe_targets(&self) -> Vec<OnionAddress> {
        let mut v: Vec<_> = self
            .ours
            .iter()
            .filter(|(_, label)| !label.starts_with("unnamed_"))
            .map(|(a, _)| a.clone())
            .collect();
        v.sort_by(|a, b| a.expose().cmp(b.expose()));
        v
    }

    pub fn probe_started(&mut self, addr: &OnionAddress, now: f64) {
        self.probes.insert(addr.clone(), now);
    }

    /// Service-side events adopt their address as ours; client-side ones count only for
    /// addresses already ours and with a probe in flight.
    pub fn on_event(&mut self, ev: &HsDescEvent, now: f64) -> Notice {
        let Some(addr) = &ev.address else {
            return Notice::None;
        };
        let service_side = matches!(
            ev.action,
            Action::Created | Action::Upload | Action::Uploaded | Action::UploadFailed
        );
        let mut notice = Notice::None;
        if service_side && !self.ours.contains_key(addr) {
            if self.unnamed >= MAX_UNNAMED_SERVICES {
                let first = self.unnamed == MAX_UNNAMED_SERVICES;
                self.unnamed = MAX_UNNAMED_SERVICES + 1;
                return if first {
                    Notice::TooManyUnnamed
                } else {
                    Notice::None
                };
            }
            self.unnamed += 1;
            let label = unnamed_label(&self.key, addr);
            self.ours.insert(addr.clone(), label.clone());
            self.services
                .entry(label.clone())
                .or_default()
                .uploads
                .insert(("uploaded", "none"), 0);
            notice = Notice::Unnamed(label);
        }
        let Some(label) = self.ours.get(addr).cloned() else {
            return Notice::None;
        };
        let s = self.services.entry(label).or_default();
        match ev.action {
            Action::Uploaded => {
                *s.uploads.entry(("uploaded", "none")).or_insert(0) += 1;
                s.last_upload = Some(now);
                s.prove(now);
                self.descriptors_stale = true;
            }
            Action::UploadFailed => {
                *s.uploads
                    .entry(("failed", ev.reason.unwrap_or("other")))
                    .or_insert(0) += 1;
            }
            // A self-probe got a descriptor back. For the start-up check, whose descriptor
            // it is only `HS_DESC_CONTENT` tells (`on_content`).
            Action::Received if self.probes.remove(addr).is_some() => {
                s.probe = Some((true, now));
            }
            Action::FetchFailed => self.check_failed(addr, now),
            _ => {}
        }
        notice
    }

    /// Probes that found nothing within [`PROBE_TIMEOUT`] count as failed.
    pub fn expire_probes(&mut self, now: f64) {
        let expired: Vec<OnionAddress> = self
            .probes
            .iter()
            .filter(|(_, t)| now - **t >= PROBE_TIMEOUT.as_secs_f64())
            .map(|(a, _)| a.clone())
            .collect();
        for a in expired {
            self.probes.remove(&a);
            if let Some(label) = self.ours.get(&a) {
                self.services.entry(label.clone()).or_default().probe = Some((false, now));
            }
        }
        let timed_out: Vec<OnionAddress> = self
            .ours
            .iter()
            .filter(|(_, l)| {
                self.services.get(*l).is_some_and(|s| {
                    matches!(s.check, Check::Pending { in_flight: Some(t), .. }
                        if now - t >= CHECK_TIMEOUT.as_secs_f64())
                })
            })
            .map(|(a, _)| a.clone())
            .collect();
        for a in timed_out {
            self.check_failed(&a, now);
        }
        for s in self.services.values_mut() {
            if matches!(s.check, Check::Undecided { at, .. } if now - at >= UNDECIDED_BOUND.as_secs_f64())
            {
                s.check = Check::Failed;
            }
        }
    }

    /// After a reconnect, in-flight probes are void (their events went to the old connection).
    pub fn reset_in_flight(&mut self) {
        self.probes.clear();
    }

    pub fn health(&self, now: f64) -> OnionHealth {
        let services = self
            .services
            .iter()
            .map(|(label, s)| {
                let proven = s
                    .evidence
                    .is_some_and(|t| now - t < DESCRIPTOR_LIFETIME.as_secs_f64());
                let published = if proven {
                    Some(true)
                } else if matches!(s.check, Check::Pending { .. } | Check::Undecided { .. }) {
                    None
                } else {
                    Some(false)
                };
                (
                    label.clone(),
                    ServiceHealth {
                        uploads: s.uploads.clone(),
                        last_upload_unix: s.last_upload,
                        published,
                        published_since_unix: s.streak_start.filter(|_| proven),
                        probe: s.probe,
                        descriptor: s.descriptor.as_ref().map(|d| self.descriptor_health(d)),
                    },
                )
            })
            .collect();
        OnionHealth {
            configured: self.configured,
            services,
        }
    }
}

impl Tracker {
    fn descriptor_health(&self, d: &Descriptor) -> DescriptorHealth {
        match d {
            Descriptor::Open(inner) => DescriptorHealth {
                inner_readable: true,
                introduction_points: Some(inner.introduction_points),
                pow_enabled: Some(inner.pow.is_some()),
                pow_suggested_effort: inner.pow.map(|p| p.suggested_effort),
            },
            Descriptor::Closed => DescriptorHealth {
                inner_readable: false,
                introduction_points: None,
                // tor's per-service options cannot be matched to an address (the
                // HiddenServiceDir is not ours to read), so only "none" or "all" is certain.
                pow_enabled: match (self.pow_configured, self.configured) {
                    (Some(0), _) => Some(false),
                    (Some(p), Some(c)) if p == c => Some(true),
                    _ => None,
                },
                pow_suggested_effort: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::onion::event::event_from_line as ev;

    const A: &str = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx";
    const B: &str = "zyxwvutsrqponmlkjihgfedcba765432zyxwvutsrqponmlkjihgfedc";

    #[test]
    fn uploads_are_counted_per_role_and_published_decays() {
        let roles = vec![("source".to_owned(), OnionAddress::new(A).unwrap())];
        let mut t = Tracker::new(&roles, b"key".to_vec());
        let h = t.health(1000.0);
        assert_eq!(
            h.services["source"].published, None,
            "before any event or check: unknown, so absent (never a false 0)"
        );
        assert_eq!(h.services["source"].uploads[&("uploaded", "none")], 0);
        t.on_event(
            &ev(&format!("650 HS_DESC UPLOAD {A} UNKNOWN $F~r x")),
            1000.0,
        );
        t.on_event(
            &ev(&format!("650 HS_DESC UPLOADED {A} UNKNOWN $F~r")),
            1000.0,
        );
        t.on_event(
            &ev(&format!("650 HS_DESC UPLOADED {A} UNKNOWN $E~q")),
            1001.0,
        );
        t.on_event(
            &ev(&format!(
                "650 HS_DESC FAILED {A} UNKNOWN $D~p REASON=UPLOAD_REJECTED"
            )),
            1001.0,
        );
        let h = t.health(1002.0);
        let s = &h.services["source"];
        assert_eq!(s.uploads[&("uploaded", "none")], 2);
        assert_eq!(s.uploads[&("failed", "upload_rejected")], 1);
        assert_eq!(s.published, Some(true));
        assert_eq!(s.published_since_unix, Some(1000.0));
        assert_eq!(s.last_upload_unix, Some(1001.0));
        // No further uploads (e.g. events missed while disconnected): published goes to 0
        // once the descriptor has expired, instead of sticking at 1.
        let later = 1001.0 + DESCRIPTOR_LIFETIME.as_secs_f64();
        assert_eq!(t.health(later).services["source"].published, Some(false));
        t.on_event(
            &ev(&format!("650 HS_DESC UPLOADED {A} UNKNOWN $F~r")),
            later,
        );
        let h = t.health(later);
        assert_eq!(h.services["source"].published, Some(true));
        assert_eq!(
            h.services["source"].published_since_unix,
            Some(later),
            "a new streak after a gap"
        );
    }

    #[test]
    fn unnamed_services_are_capped_and_the_overflow_is_said_once() {
        let mut t = Tracker::new(&[], b"k".to_vec());
        // Distinct well-formed addresses: i in base 32, then padding.
        let addr = |i: usize| {
            let b32 = b"abcdefghijklmnopqrstuvwxyz234567";
            let head: String = (0..4).map(|k| b32[(i >> (5 * k)) & 31] as char).collect();
            format!("{head}{}", "d".repeat(52))
        };
        let mut notices = Vec::new();
        for i in 0..(MAX_UNNAMED_SERVICES + 50) {
            let line = format!("650 HS_DESC UPLOAD {} UNKNOWN $F~r", addr(i));
            notices.push(t.on_event(&ev(&line), 1000.0));
        }
        let unnamed = notices
            .iter()
            .filter(|n| matches!(n, Notice::Unnamed(_)))
            .count();
        let overflow = notices
            .iter()
            .filter(|n| **n == Notice::TooManyUnnamed)
            .count();
        assert_eq!(unnamed, MAX_UNNAMED_SERVICES);
        assert_eq!(overflow, 1, "the overflow is logged once, not per event");
        assert_eq!(t.health(1000.0).services.len(), MAX_UNNAMED_SERVICES);
        assert!(t.ours.len() <= MAX_UNNAMED_SERVICES);
        assert!(
            !format!("{t:?}").contains(&"d".repeat(52)),
            "Debug shows no address"
        );
    }

    #[test]
    fn unnamed_services_get_a_keyed_hash_and_client_events_for_others_are_ignored() {
        let mut t = Tracker::new(&[], b"machine-key".to_vec());
        let n = t.on_event(&ev(&format!("650 HS_DESC UPLOADED {B} UNKNOWN $F~r")), 5.0);
        let label = unnamed_label(b"machine-key", &OnionAddress::new(B).unwrap());
        assert_eq!(n, Notice::Unnamed(label.clone()));
        assert!(label.starts_with("unnamed_") && label.len() == "unnamed_".len() + 8);
        assert_ne!(
            label,
            unnamed_label(b"other-key", &OnionAddress::new(B).unwrap()),
            "the label depends on the key"
        );
        // A client-side fetch of some other onion leaves no trace.
        t.on_event(
            &ev(&format!("650 HS_DESC RECEIVED {A} NO_AUTH $F~r x")),
            6.0,
        );
        t.on_event(
            &ev(&format!(
                "650 HS_DESC FAILED {A} NO_AUTH $F~r x REASON=NOT_FOUND"
            )),
            6.0,
        );
        let h = t.health(7.0);
        assert_eq!(h.services.keys().collect::<Vec<_>>(), vec![&label]);
        let text = format!("{h:?}");
        assert!(!text.contains(A) && !text.contains(B));
    }

    #[test]
    fn self_probe_success_and_timeout() {
        let a = OnionAddress::new(A).unwrap();
        let mut t = Tracker::new(&[("metrics".to_owned(), a.clone())], b"k".to_vec());
        assert_eq!(t.probe_targets(), vec![a.clone()]);
        t.probe_started(&a, 100.0);
        t.on_event(
            &ev(&format!("650 HS_DESC RECEIVED {A} NO_AUTH $F~r x")),
            101.0,
        );
        assert_eq!(
            t.health(102.0).services["metrics"].probe,
            Some((true, 101.0))
        );
        t.probe_started(&a, 200.0);
        t.on_event(
            &ev(&format!(
                "650 HS_DESC FAILED {A} NO_AUTH $F~r x REASON=NOT_FOUND"
            )),
            201.0,
        );
        t.expire_probes(250.0);
        assert_eq!(
            t.health(250.0).services["metrics"].probe,
            Some((true, 101.0)),
            "not yet timed out"
        );
        t.expire_probes(200.0 + PROBE_TIMEOUT.as_secs_f64());
        assert_eq!(
            t.health(400.0).services["metrics"].probe.map(|p| p.0),
            Some(false)
        );
    }

    #[test]
    fn a_restarted_exporter_learns_published_from_its_own_fetch() {
        let a = OnionAddress::new(A).unwrap();
        let b = OnionAddress::new(B).unwrap();
        let mut t = Tracker::new(
            &[
                ("source".to_owned(), a.clone()),
                ("ssh".to_owned(), b.clone()),
            ],
            b"k".to_vec(),
        );
        let (ida, idb) = (id(1, 10), id(2, 20));
        let own = [
            (a.clone(), Own::Current(ida)),
            (b.clone(), Own::Current(idb)),
        ];
        t.begin_checks(100.0, None, &own);
        let mut due = t.due_checks(100.0);
        due.sort_by(|x, y| x.expose().cmp(y.expose()));
        assert_eq!(due, vec![a.clone(), b.clone()]);
        assert!(
            t.due_checks(101.0).is_empty(),
            "one fetch in flight at a time"
        );
        let h = t.health(101.0);
        assert_eq!(
            h.services["source"].published, None,
            "not known yet: absent"
        );
        t.on_event(
            &ev(&format!("650 HS_DESC RECEIVED {A} NO_AUTH $F~r x")),
            102.0,
        );
        assert_eq!(
            t.health(102.0).services["source"].published,
            None,
            "RECEIVED alone does not say whose descriptor came back"
        );
        assert!(t.awaits_content(&a));
        t.on_content(&a, Some(ida), 102.0);
        let h = t.health(102.0);
        assert_eq!(h.services["source"].published, Some(true));
        assert_eq!(h.services["source"].published_since_unix, Some(102.0));
        assert_eq!(h.services["ssh"].published, None);
        // ssh: an HSDir says no, a retry times out, the third is refused by tor: known, 0.
        t.on_event(
            &ev(&format!(
                "650 HS_DESC FAILED {B} NO_AUTH $F~r x REASON=NOT_FOUND"
            )),
            103.0,
        );
        assert_eq!(t.health(103.0).services["ssh"].published, None);
        assert!(t.due_checks(104.0).is_empty(), "retry waits CHECK_RETRY");
        let retry = 103.0 + CHECK_RETRY.as_secs_f64();
        assert_eq!(t.due_checks(retry), vec![b.clone()]);
        t.expire_probes(retry + CHECK_TIMEOUT.as_secs_f64());
        let third = retry + CHECK_TIMEOUT.as_secs_f64() + CHECK_RETRY.as_secs_f64();
        assert_eq!(t.due_checks(third), vec![b.clone()]);
        assert_eq!(t.health(third).services["ssh"].published, None);
        t.check_failed(&b, third);
        assert_eq!(t.health(third).services["ssh"].published, Some(false));
        assert!(third - 100.0 <= CHECK_BOUND.as_secs_f64());
        // A late RECEIVED (no fetch in flight) proves nothing; an upload does.
        t.on_event(
            &ev(&format!("650 HS_DESC RECEIVED {B} NO_AUTH $F~r x")),
            third + 1.0,
        );
        assert_eq!(t.health(third + 1.0).services["ssh"].published, Some(false));
        t.on_event(
            &ev(&format!("650 HS_DESC UPLOADED {B} UNKNOWN $F~r")),
            third + 2.0,
        );
        assert_eq!(t.health(third + 2.0).services["ssh"].published, Some(true));
        // A reconnect to the same tor (it shows the same descriptors) checks again but keeps a
        // still-valid proof: never a 0 in between.
        t.begin_checks(third + 3.0, None, &own);
        assert_eq!(
            t.health(third + 3.0).services["source"].published,
            Some(true)
        );
        assert_eq!(t.health(third + 3.0).services["ssh"].published, Some(true));
    }

    #[test]
    fn descriptor_series_say_what_is_known() {
        use crate::source::descriptor::{InnerLayer, PowParams};
        let a = OnionAddress::new(A).unwrap();
        let b = OnionAddress::new(B).unwrap();
        let mut t = Tracker::new(
            &[
                ("source".to_owned(), a.clone()),
                ("journalist".to_owned(), b.clone()),
            ],
            b"k".to_vec(),
        );
        assert!(t.health(1.0).services["source"].descriptor.is_none());
        t.set_descriptor(
            &a,
            Some(Descriptor::Open(InnerLayer {
                introduction_points: 3,
                pow: Some(PowParams {
                    suggested_effort: 42,
                }),
            })),
        );
        t.set_descriptor(&b, Some(Descriptor::Closed));
        let h = t.health(1.0);
        let s = h.services["source"].descriptor.unwrap();
        assert_eq!(
            (
                s.inner_readable,
                s.introduction_points,
                s.pow_enabled,
                s.pow_suggested_effort
            ),
            (true, Some(3), Some(true), Some(42))
        );
        let j = h.services["journalist"].descriptor.unwrap();
        assert_eq!(
            (j.inner_readable, j.introduction_points, j.pow_enabled),
            (false, None, None),
            "closed and configuration unknown: no guess"
        );
        for (pow, want) in [(0, Some(false)), (1, None), (2, Some(true))] {
            t.set_hs_config(HsConfig {
                services: 2,
                pow_enabled: pow,
            });
            assert_eq!(
                t.health(1.0).services["journalist"]
                    .descriptor
                    .unwrap()
                    .pow_enabled,
                want,
                "{pow} of 2 services with PoW"
            );
        }
    }

    /// A descriptor identity: blinded key `period`, signing key `tor`, certificate expiry `hour`.
    fn id_at(period: u8, tor: u8, hour: u32) -> DescriptorId {
        DescriptorId {
            blinded_key: [period; 32],
            signing_key: [tor; 32],
            cert_expires_hour: hour,
        }
    }

    fn id(period: u8, tor: u8) -> DescriptorId {
        id_at(period, tor, 500_000)
    }

    fn one_service() -> (OnionAddress, Tracker) {
        let a = OnionAddress::new(A).unwrap();
        let t = Tracker::new(&[("source".to_owned(), a.clone())], b"k".to_vec());
        (a, t)
    }

    /// Starts the check of `a` and sends its fetch.
    fn fetch(t: &mut Tracker, a: &OnionAddress, now: f64) {
        assert_eq!(t.due_checks(now), vec![a.clone()]);
    }

    fn published(t: &Tracker, now: f64) -> Option<bool> {
        t.health(now).services["source"].published
    }

    #[test]
    fn a_previous_tors_descriptor_on_the_network_is_not_published() {
        let (a, mut t) = one_service();
        let (old, new) = (id(1, 0xA0), id(1, 0xB0));
        // The new tor shows its own descriptor for the same time period; the HSDirs return the
        // old tor's, with another signing key: every attempt, then 0.
        t.begin_checks(100.0, Some(90.0), &[(a.clone(), Own::Current(new))]);
        let mut now = 100.0;
        for attempt in 1..=CHECK_ATTEMPTS {
            fetch(&mut t, &a, now);
            t.on_content(&a, Some(old), now + 1.0);
            let want = (attempt == CHECK_ATTEMPTS).then_some(false);
            assert_eq!(published(&t, now + 1.0), want, "attempt {attempt}");
            now += 1.0 + CHECK_RETRY.as_secs_f64();
        }
        assert_eq!(published(&t, now), Some(false));
        // Once this tor uploads, it is.
        t.on_event(&ev(&format!("650 HS_DESC UPLOADED {A} UNKNOWN $F~r")), now);
        assert_eq!(published(&t, now), Some(true));
    }

    #[test]
    fn this_tors_descriptor_on_the_network_is_published() {
        let (a, mut t) = one_service();
        let mine = id(1, 0xB0);
        t.begin_checks(100.0, Some(90.0), &[(a.clone(), Own::Current(mine))]);
        fetch(&mut t, &a, 100.0);
        t.on_content(&a, Some(mine), 101.0);
        assert_eq!(published(&t, 101.0), Some(true));
        assert_eq!(
            t.health(101.0).services["source"].published_since_unix,
            Some(101.0)
        );
    }

    #[test]
    fn a_tor_without_a_descriptor_of_its_own_has_published_nothing() {
        let (a, mut t) = one_service();
        // Subscribed, then tor said "551 Not found": whatever the HSDirs hold is another tor's,
        // even after tor builds its own (its uploads would come as events).
        t.begin_checks(100.0, Some(99.0), &[(a.clone(), Own::None)]);
        fetch(&mut t, &a, 100.0);
        t.set_own(&a, Own::Current(id(2, 0xB0)));
        t.on_content(&a, Some(id(2, 0xB0)), 101.0);
        assert_eq!(
            published(&t, 101.0),
            None,
            "a failed attempt, retried: not yet known"
        );
        t.on_event(
            &ev(&format!("650 HS_DESC UPLOADED {A} UNKNOWN $F~r")),
            102.0,
        );
        assert_eq!(published(&t, 102.0), Some(true));
    }

    #[test]
    fn a_fetch_for_the_other_time_period_waits_for_tors_rotation() {
        let (a, mut t) = one_service();
        // Tor started at hour 100 000 (Unix seconds); its current descriptor is for period 1,
        // the HSDirs hand out period 2's, certified (to the hour) before tor started.
        let start = 100_000.0 * 3600.0 + 600.0;
        let hour = |h: u32| h + 54;
        let fetched = id_at(2, 0xA0, hour(100_000) + 1);
        assert!(fetched.issued_after() < start);
        t.begin_checks(
            start + 60.0,
            Some(start),
            &[(a.clone(), Own::Current(id(1, 0xB0)))],
        );
        fetch(&mut t, &a, start + 60.0);
        t.on_content(&a, Some(fetched), start + 61.0);
        assert_eq!(published(&t, start + 61.0), None, "undecided: absent");
        assert!(
            t.due_checks(start + 100.0).is_empty(),
            "no refetch meanwhile"
        );
        // tor rotates: its current descriptor is now period 2's, with another signing key.
        t.set_own(&a, Own::Current(id_at(2, 0xB1, hour(100_000) + 1)));
        assert_eq!(published(&t, start + 200.0), Some(false));

        // The same, but the fetched one is tor's own next descriptor: ours after the rotation.
        let (a, mut t) = one_service();
        let next = id_at(2, 0xB1, hour(100_000) + 1);
        t.begin_checks(
            start + 60.0,
            Some(start),
            &[(a.clone(), Own::Current(id(1, 0xB0)))],
        );
        fetch(&mut t, &a, start + 60.0);
        t.on_content(&a, Some(next), start + 61.0);
        assert_eq!(published(&t, start + 61.0), None);
        t.set_own(&a, Own::Current(next));
        assert_eq!(published(&t, start + 62.0), Some(true));
        assert_eq!(
            t.health(start + 62.0).services["source"].published_since_unix,
            Some(start + 61.0),
            "proven as of the fetch"
        );

        // A next descriptor certified in a later hour than tor's start is ours at once.
        let (a, mut t) = one_service();
        t.begin_checks(
            start + 4000.0,
            Some(start),
            &[(a.clone(), Own::Current(id(1, 0xB0)))],
        );
        fetch(&mut t, &a, start + 4000.0);
        t.on_content(&a, Some(id_at(2, 0xB1, hour(100_001) + 1)), start + 4001.0);
        assert_eq!(published(&t, start + 4001.0), Some(true));

        // Undecided for longer than tor's longest re-upload interval without an upload: 0.
        let (a, mut t) = one_service();
        t.begin_checks(
            start + 60.0,
            Some(start),
            &[(a.clone(), Own::Current(id(1, 0xB0)))],
        );
        fetch(&mut t, &a, start + 60.0);
        t.on_content(&a, Some(fetched), start + 61.0);
        t.expire_probes(start + 61.0 + UNDECIDED_BOUND.as_secs_f64() - 1.0);
        assert_eq!(
            published(&t, start + 61.0 + UNDECIDED_BOUND.as_secs_f64() - 1.0),
            None
        );
        t.expire_probes(start + 61.0 + UNDECIDED_BOUND.as_secs_f64());
        assert_eq!(
            published(&t, start + 61.0 + UNDECIDED_BOUND.as_secs_f64()),
            Some(false)
        );
    }

    #[test]
    fn a_restarted_tor_loses_its_predecessors_proof() {
        let (a, mut t) = one_service();
        let old = id(1, 0xA0);
        t.begin_checks(100.0, Some(90.0), &[(a.clone(), Own::Current(old))]);
        t.on_event(
            &ev(&format!("650 HS_DESC UPLOADED {A} UNKNOWN $F~r")),
            101.0,
        );
        assert_eq!(published(&t, 101.0), Some(true));
        // tor restarts (the connection drops); the new one shows new signing keys. The old
        // upload (valid for hours on the HSDirs) proves nothing about it: unknown until checked.
        t.begin_checks(
            200.0,
            Some(195.0),
            &[(a.clone(), Own::Current(id(1, 0xB0)))],
        );
        assert_eq!(published(&t, 200.0), None);
        fetch(&mut t, &a, 200.0);
        t.on_content(&a, Some(old), 201.0);
        // Same if it has no descriptor yet when we connect.
        let (a, mut t) = one_service();
        t.begin_checks(100.0, Some(90.0), &[(a.clone(), Own::Current(old))]);
        t.on_event(
            &ev(&format!("650 HS_DESC UPLOADED {A} UNKNOWN $F~r")),
            101.0,
        );
        t.begin_checks(200.0, Some(199.0), &[(a.clone(), Own::None)]);
        assert_eq!(published(&t, 200.0), None);
        // And when tor's answer could not be read, nothing carries over either.
        let (a, mut t) = one_service();
        t.begin_checks(100.0, Some(90.0), &[(a.clone(), Own::Current(old))]);
        t.on_event(
            &ev(&format!("650 HS_DESC UPLOADED {A} UNKNOWN $F~r")),
            101.0,
        );
        t.begin_checks(200.0, None, &[(a.clone(), Own::Unknown)]);
        assert_eq!(published(&t, 200.0), None);
    }

    #[test]
    fn debug_output_never_shows_an_address_or_the_key() {
        let a = OnionAddress::new(A).unwrap();
        let mut t = Tracker::new(&[("source".to_owned(), a)], b"secret-label-key".to_vec());
        let e = ev(&format!("650 HS_DESC UPLOADED {B} UNKNOWN $AAAA~relay"));
        t.on_event(&e, 1.0);
        for shown in [format!("{t:?}"), format!("{e:?}")] {
            assert!(!shown.contains(A) && !shown.contains(B), "{shown}");
            assert!(!shown.contains("secret-label-key"), "{shown}");
            assert!(
                !crate::control::address::contains_onion_address(&shown),
                "{shown}"
            );
        }
    }
}
