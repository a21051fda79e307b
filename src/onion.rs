//! Onion-service health from tor's own `HS_DESC` events, labelled by role name.
//!
//! "Can sources reach my onion services?" is answered by whether tor managed to publish each
//! service's descriptor to the HSDirs, which tor reports as events on a second, long-lived control
//! connection. Only service-side events for our own services are kept: client-side events for
//! other addresses (anything this tor fetched as a client) are ignored, because they would be a
//! browsing log. Series carry a role name from the configuration, never an address; a service
//! nobody named gets a short keyed hash (see [`unnamed_label`]).
//!
//! Events only tell what happens while we listen, and tor re-uploads only every 1–2 hours. So
//! after each connect the listener also asks the network: it fetches each named service's own
//! descriptor back (`HSFETCH`, the [`CHECK_ATTEMPTS`] start-up check), and until that answers,
//! `published` is unknown (absent), never a false 0. It also reads tor's own copy of each
//! descriptor (`GETINFO hs/service/desc/id/…`, opened by [`crate::descriptor`]) for the
//! introduction points and proof-of-work state. The [`Tracker`] is the pure state machine; the
//! I/O is in [`run`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use hmac::{Hmac, Mac};
use prometheus_client::encoding::DescriptorEncoder;
use sha2::Sha256;
use tokio::sync::watch;

use crate::config::Config;
use crate::control::{Command, Connection, ControlError, Message, OnionAddress};
use crate::descriptor::{self, Descriptor, DescriptorError};
use crate::metrics::{counter_family, gauge, gauge_family};
use crate::policy;
use crate::refresher::{backoff, connect_options, now_unix};
use crate::snapshot::Shared;

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

/// The failure reasons tor reports (control-spec, HS_DESC `REASON=`), as fixed label values.
pub const REASONS: &[&str] = &[
    "bad_desc",
    "query_rejected",
    "upload_rejected",
    "not_found",
    "query_no_hsdir",
    "query_rate_limited",
    "unexpected",
    "other",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Upload,
    Uploaded,
    /// An upload failed (service side: AuthType `UNKNOWN`).
    UploadFailed,
    Requested,
    Received,
    /// A fetch failed (client side: any other AuthType).
    FetchFailed,
    Other,
}

/// One `HS_DESC` event, with the HSDir's identity already dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsDescEvent {
    pub action: Action,
    pub address: Option<OnionAddress>,
    pub reason: Option<&'static str>,
}

/// Parses `650 HS_DESC <Action> <Address> <AuthType> <HsDir> … [REASON=…]`. Anything else,
/// or a malformed line, is `None` (and ignored: events never take the exporter down).
pub fn parse_hs_desc(msg: &Message) -> Option<HsDescEvent> {
    if msg.status() != 650 {
        return None;
    }
    let line = msg.lines.first()?.text.as_str();
    let mut words = line.split(' ');
    if words.next()? != "HS_DESC" {
        return None;
    }
    let action_word = words.next()?;
    let address = OnionAddress::new(words.next()?).ok();
    let auth_type = words.next().unwrap_or("");
    let action = match action_word {
        "CREATED" => Action::Created,
        "UPLOAD" => Action::Upload,
        "UPLOADED" => Action::Uploaded,
        "FAILED" if auth_type == "UNKNOWN" => Action::UploadFailed,
        "FAILED" => Action::FetchFailed,
        "REQUESTED" => Action::Requested,
        "RECEIVED" => Action::Received,
        _ => Action::Other,
    };
    let reason = line
        .split(' ')
        .find_map(|w| w.strip_prefix("REASON="))
        .map(|r| {
            let r = r.to_ascii_lowercase();
            REASONS.iter().copied().find(|x| *x == r).unwrap_or("other")
        });
    Some(HsDescEvent {
        action,
        address,
        reason,
    })
}

/// `unnamed_<8 hex>`: HMAC-SHA256 of the address under a secret key (see [`crate::label_key`]).
/// Stable across restarts, but without the key nobody can check a guessed address against it.
pub fn unnamed_label(key: &[u8], address: &OnionAddress) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(address.expose().as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("unnamed_{}", hex::encode(&digest[..4]))
}

/// The key for [`unnamed_label`], and where it came from (see [`crate::label_key`]).
pub fn label_key() -> (Vec<u8>, crate::label_key::Source) {
    let (k, source) = crate::label_key::load();
    (k.to_vec(), source)
}

/// Onion services without a role name that are tracked at most. tor's events name any address
/// (a flood of HS_DESC events can name thousands): past this, new ones are not tracked, so
/// neither memory nor series nor log lines grow with what a peer sends.
pub const MAX_UNNAMED_SERVICES: usize = 16;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceHealth {
    /// (result, reason) → count; result is `uploaded` or `failed`, reason `none` on success.
    pub uploads: BTreeMap<(&'static str, &'static str), u64>,
    pub last_upload_unix: Option<f64>,
    /// `None` while the exporter cannot know yet (the start-up check is running).
    pub published: Option<bool>,
    /// Since when this exporter has seen the descriptor published without a gap (an upload it
    /// saw, or its start-up fetch): a lower bound, for the status page.
    pub published_since_unix: Option<f64>,
    /// (success, unix time) of the last completed self-probe.
    pub probe: Option<(bool, f64)>,
    /// What tor's current descriptor for the service says; `None` until tor has built one.
    pub descriptor: Option<DescriptorHealth>,
}

/// What the service's own descriptor says, as far as the address alone opens it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DescriptorHealth {
    /// False for a client-authorized service: its inner layer needs a client's key.
    pub inner_readable: bool,
    /// Introduction points in the descriptor; `None` when the inner layer is closed.
    pub introduction_points: Option<u32>,
    /// PoW defences on: from `pow-params` in the inner layer, or, when that is closed, from
    /// `GETCONF HiddenServiceOptions` if it is the same for every service; else `None`.
    pub pow_enabled: Option<bool>,
    /// The suggested effort of `pow-params v1`; `None` without PoW or with the inner layer closed.
    pub pow_suggested_effort: Option<u32>,
}

/// What /metrics shows about onion services.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OnionHealth {
    /// HiddenServiceDir lines in tor's configuration, once known.
    pub configured: Option<u64>,
    pub services: BTreeMap<String, ServiceHealth>,
}

impl OnionHealth {
    /// A fixed example for golden-file tests.
    pub fn golden_example() -> OnionHealth {
        let mut services = BTreeMap::new();
        let mut source = ServiceHealth {
            last_upload_unix: Some(1_764_000_000.0),
            published: Some(true),
            published_since_unix: Some(1_763_990_000.0),
            descriptor: Some(DescriptorHealth {
                inner_readable: true,
                introduction_points: Some(3),
                pow_enabled: Some(true),
                pow_suggested_effort: Some(0),
            }),
            ..Default::default()
        };
        source.uploads.insert(("uploaded", "none"), 24);
        source.uploads.insert(("failed", "upload_rejected"), 1);
        services.insert("source".to_owned(), source);
        let mut metrics = ServiceHealth {
            published: Some(false),
            probe: Some((false, 1_764_000_100.0)),
            descriptor: Some(DescriptorHealth {
                inner_readable: false,
                introduction_points: None,
                pow_enabled: Some(false),
                pow_suggested_effort: None,
            }),
            ..Default::default()
        };
        metrics.uploads.insert(("uploaded", "none"), 0);
        services.insert("metrics".to_owned(), metrics);
        OnionHealth {
            configured: Some(2),
            services,
        }
    }
}

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
}

impl ServiceState {
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
    Done,
    /// Every attempt failed: no HSDir we asked had the descriptor.
    Failed,
}

/// Pure state machine over events; the caller passes the clock. No `Debug`: it holds addresses
/// and the label key.
pub struct Tracker {
    key: Vec<u8>,
    /// address → label, for every service known to be ours.
    ours: HashMap<String, String>,
    services: BTreeMap<String, ServiceState>,
    configured: Option<u64>,
    /// HiddenServiceDir blocks with `HiddenServicePoWDefensesEnabled 1`, once known.
    pow_configured: Option<u64>,
    /// address → when its self-probe started.
    probes: HashMap<String, f64>,
    /// tor uploaded a new descriptor: read tor's copy again.
    descriptors_stale: bool,
    /// Unnamed services tracked so far (at most [`MAX_UNNAMED_SERVICES`]).
    unnamed: usize,
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
        };
        for (role, addr) in roles {
            t.ours.insert(addr.expose().to_owned(), role.clone());
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

    /// After (re)connecting: events may have been missed, so every named service is checked
    /// again. A descriptor already proven published stays so meanwhile (it is still valid).
    pub fn begin_checks(&mut self, now: f64) {
        for label in self.ours.values() {
            if label.starts_with("unnamed_") {
                continue;
            }
            if let Some(s) = self.services.get_mut(label) {
                s.check = Check::Pending {
                    attempts: 0,
                    in_flight: None,
                    next: now,
                };
            }
        }
        self.descriptors_stale = true;
    }

    /// Start-up fetches due now; each is marked in flight.
    pub fn due_checks(&mut self, now: f64) -> Vec<OnionAddress> {
        let mut due = Vec::new();
        for addr in self.probe_targets() {
            let Some(s) = self
                .ours
                .get(addr.expose())
                .and_then(|l| self.services.get_mut(l))
            else {
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
        let Some(s) = self
            .ours
            .get(addr.expose())
            .and_then(|l| self.services.get_mut(l))
        else {
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
        if let Some(s) = self
            .ours
            .get(addr.expose())
            .and_then(|l| self.services.get_mut(l))
        {
            s.descriptor = d;
        }
    }

    /// Addresses to self-probe: the named ones (unnamed ones are not ours to probe by choice).
    pub fn probe_targets(&self) -> Vec<OnionAddress> {
        let mut v: Vec<_> = self
            .ours
            .iter()
            .filter(|(_, label)| !label.starts_with("unnamed_"))
            .filter_map(|(a, _)| OnionAddress::new(a).ok())
            .collect();
        v.sort_by(|a, b| a.expose().cmp(b.expose()));
        v
    }

    pub fn probe_started(&mut self, addr: &OnionAddress, now: f64) {
        self.probes.insert(addr.expose().to_owned(), now);
    }

    /// Service-side events adopt their address as ours; client-side ones count only for
    /// addresses already ours and with a probe in flight.
    pub fn on_event(&mut self, ev: &HsDescEvent, now: f64) -> Notice {
        let Some(addr) = &ev.address else {
            return Notice::None;
        };
        let a = addr.expose();
        let service_side = matches!(
            ev.action,
            Action::Created | Action::Upload | Action::Uploaded | Action::UploadFailed
        );
        let mut notice = Notice::None;
        if service_side && !self.ours.contains_key(a) {
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
            self.ours.insert(a.to_owned(), label.clone());
            self.services
                .entry(label.clone())
                .or_default()
                .uploads
                .insert(("uploaded", "none"), 0);
            notice = Notice::Unnamed(label);
        }
        let Some(label) = self.ours.get(a).cloned() else {
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
            Action::Received => {
                if self.probes.remove(a).is_some() {
                    s.probe = Some((true, now));
                }
                // Our own fetch got the descriptor back from an HSDir: it is published.
                if matches!(
                    s.check,
                    Check::Pending {
                        in_flight: Some(_),
                        ..
                    }
                ) {
                    s.prove(now);
                }
            }
            Action::FetchFailed => self.check_failed(addr, now),
            _ => {}
        }
        notice
    }

    /// Probes that found nothing within [`PROBE_TIMEOUT`] count as failed.
    pub fn expire_probes(&mut self, now: f64) {
        let expired: Vec<String> = self
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
            .filter_map(|(a, _)| OnionAddress::new(a).ok())
            .collect();
        for a in timed_out {
            self.check_failed(&a, now);
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
                } else if matches!(s.check, Check::Pending { .. }) {
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

pub fn encode(h: &OnionHealth, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    if let Some(n) = h.configured {
        gauge(
            enc,
            &policy::ONION_SERVICES_CONFIGURED,
            i64::try_from(n).unwrap_or(i64::MAX),
        )?;
    }
    counter_family(
        enc,
        &policy::ONION_UPLOADS,
        h.services.iter().flat_map(|(label, s)| {
            s.uploads.iter().map(move |((result, reason), n)| {
                (
                    [
                        ("service", label.as_str()),
                        ("result", *result),
                        ("reason", *reason),
                    ],
                    *n,
                )
            })
        }),
    )?;
    gauge_family(
        enc,
        &policy::ONION_LAST_UPLOAD,
        h.services
            .iter()
            .filter_map(|(l, s)| s.last_upload_unix.map(|t| ([("service", l.as_str())], t))),
    )?;
    gauge_family(
        enc,
        &policy::ONION_PUBLISHED,
        h.services.iter().filter_map(|(l, s)| {
            s.published
                .map(|p| ([("service", l.as_str())], i64::from(p)))
        }),
    )?;
    let desc = |f: fn(&DescriptorHealth) -> Option<i64>| {
        h.services.iter().filter_map(move |(l, s)| {
            s.descriptor
                .as_ref()
                .and_then(f)
                .map(|v| ([("service", l.as_str())], v))
        })
    };
    gauge_family(
        enc,
        &policy::ONION_INNER_READABLE,
        desc(|d| Some(i64::from(d.inner_readable))),
    )?;
    gauge_family(
        enc,
        &policy::ONION_INTRO_POINTS,
        desc(|d| d.introduction_points.map(i64::from)),
    )?;
    gauge_family(
        enc,
        &policy::ONION_POW_ENABLED,
        desc(|d| d.pow_enabled.map(i64::from)),
    )?;
    gauge_family(
        enc,
        &policy::ONION_POW_EFFORT,
        desc(|d| d.pow_suggested_effort.map(i64::from)),
    )?;
    gauge_family(
        enc,
        &policy::ONION_PROBE_SUCCESS,
        h.services.iter().filter_map(|(l, s)| {
            s.probe
                .map(|(ok, _)| ([("service", l.as_str())], i64::from(ok)))
        }),
    )?;
    gauge_family(
        enc,
        &policy::ONION_PROBE_TIME,
        h.services
            .iter()
            .filter_map(|(l, s)| s.probe.map(|(_, t)| ([("service", l.as_str())], t))),
    )?;
    Ok(())
}

/// Counts `HiddenServiceDir` lines in a `GETCONF HiddenServiceOptions` reply.
pub fn count_configured(reply: &Message) -> u64 {
    hs_config(reply).services
}

/// What `GETCONF HiddenServiceOptions` says about all onion services together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HsConfig {
    /// `HiddenServiceDir` blocks.
    pub services: u64,
    /// Blocks with `HiddenServicePoWDefensesEnabled=1`.
    pub pow_enabled: u64,
}

/// tor lists each service's options after its `HiddenServiceDir` line; the directory paths
/// themselves are never kept.
pub fn hs_config(reply: &Message) -> HsConfig {
    let mut c = HsConfig::default();
    for l in &reply.lines {
        if l.text.starts_with("HiddenServiceDir=") {
            c.services += 1;
        } else if l.text == "HiddenServicePoWDefensesEnabled=1" && c.services > 0 {
            c.pow_enabled += 1;
        }
    }
    c
}

/// tor's copy of our descriptor for `addr`, opened as far as the address allows. `Ok(None)`:
/// tor has not built one yet (`551`), or cannot say.
async fn own_descriptor(
    conn: &mut Connection,
    addr: &OnionAddress,
) -> Result<Option<Result<Descriptor, DescriptorError>>, ControlError> {
    let key = format!("hs/service/desc/id/{}", addr.expose());
    let cmd = Command::get_info([key.clone()]).expect("an onion address is a valid keyword");
    let reply = conn.request(&cmd).await?;
    if !reply.is_ok() {
        return Ok(None);
    }
    let values = crate::status::getinfo_values(&reply);
    Ok(values.get(&key).map(|text| descriptor::inspect(text, addr)))
}

/// The event listener: its own control connection, reconnecting like the refresher.
pub async fn run(config: Config, shared: Shared, mut shutdown: watch::Receiver<bool>) {
    let opts = connect_options(&config);
    let tick = config.tor.refresh_interval;
    let probe_every = config.onion.self_probe_interval;
    let (key, source) = label_key();
    match &source {
        // Only matters once a service without a role name shows up; not worth alarming anyone.
        crate::label_key::Source::Random => tracing::debug!(
            "no label key ({}); labels of unnamed onion services change at each restart",
            crate::label_key::KEY_FILE
        ),
        crate::label_key::Source::Credential(p) | crate::label_key::Source::File(p) => {
            tracing::info!("label key for unnamed onion services from {}", p.display())
        }
    }
    let mut tracker = Tracker::new(&config.onion_roles(), key);
    let mut failures = 0u32;
    loop {
        let result = listen(
            &opts,
            &mut tracker,
            &shared,
            tick,
            probe_every,
            &mut shutdown,
            &mut failures,
        )
        .await;
        tracker.reset_in_flight();
        match result {
            Ok(()) => return,
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures == 1 {
                    tracing::warn!(error = %e, "onion-service event connection lost; retrying");
                }
                shared.update(|s| *s.errors.entry(e.kind()).or_insert(0) += 1);
            }
        }
        shared.update(|s| s.onion = tracker.health(now_unix()));
        tokio::select! {
            _ = tokio::time::sleep(backoff(tick, config.tor.max_backoff, failures)) => {}
            _ = crate::stopped(&mut shutdown) => return,
        }
    }
}

async fn configured_count(conn: &mut Connection) -> Result<HsConfig, ControlError> {
    let reply = conn
        .request_ok(&Command::get_conf(["HiddenServiceOptions"]).expect("static key"))
        .await?;
    Ok(hs_config(&reply))
}

/// Reads tor's copy of every named service's descriptor into the tracker.
async fn refresh_descriptors(
    conn: &mut Connection,
    tracker: &mut Tracker,
    shared: &Shared,
) -> Result<(), ControlError> {
    for addr in tracker.probe_targets() {
        let d = match own_descriptor(conn, &addr).await? {
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                // The error never names the address; the role is in the tracker only.
                tracing::warn!(error = %e, "cannot read an onion service's own descriptor; its intro-point and PoW series are left out");
                shared.update(|s| *s.errors.entry("parse").or_insert(0) += 1);
                None
            }
            None => None,
        };
        tracker.set_descriptor(&addr, d);
    }
    Ok(())
}

/// Publishes the tracker's view, and logs (by role name) when a service's `published` becomes
/// known or changes, so the journal says why an alert fired or cleared.
fn publish(shared: &Shared, tracker: &Tracker, now: f64, told: &mut BTreeMap<String, bool>) {
    let health = tracker.health(now);
    for (label, s) in &health.services {
        let Some(p) = s.published else { continue };
        if told.insert(label.clone(), p) != Some(p) {
            if p {
                tracing::info!(service = %label, "onion service descriptor is published");
            } else {
                tracing::warn!(
                    service = %label,
                    "onion service descriptor is not published: no upload seen within its lifetime and our own fetches did not find it"
                );
            }
        }
    }
    shared.update(|s| s.onion = health);
}

/// One connection's life. Returns Ok(()) only on shutdown. `failures` (consecutive failed
/// connections, for backoff and for logging only the first) restarts at 0 once subscribed.
async fn listen(
    opts: &crate::control::ConnectOptions,
    tracker: &mut Tracker,
    shared: &Shared,
    tick: Duration,
    probe_every: Duration,
    shutdown: &mut watch::Receiver<bool>,
    failures: &mut u32,
) -> Result<(), ControlError> {
    let mut conn = Connection::connect(opts).await?;
    tracker.set_hs_config(configured_count(&mut conn).await?);
    conn.request_ok(&Command::set_events(["HS_DESC"]).expect("static event name"))
        .await?;
    *failures = 0;
    tracing::info!("listening for onion-service descriptor events");
    // Events may have been missed (an exporter started while tor runs sees no upload until tor's
    // next one, 1–2 h away): ask the network whether our descriptors are there.
    tracker.begin_checks(now_unix());
    let mut told = BTreeMap::new();
    publish(shared, tracker, now_unix(), &mut told);
    let mut ticker = tokio::time::interval(tick);
    let mut next_descriptors = tokio::time::Instant::now();
    // The first probe waits a little (the service may still be publishing), never longer than
    // the probe interval itself.
    let mut next_probe = (!probe_every.is_zero())
        .then(|| tokio::time::Instant::now() + probe_every.min(Duration::from_secs(30)));
    loop {
        tokio::select! {
            ev = conn.next_event() => {
                let msg = ev?;
                if let Some(ev) = parse_hs_desc(&msg) {
                    let notice = tracker.on_event(&ev, now_unix());
                    if notice == Notice::TooManyUnnamed {
                        tracing::warn!(
                            limit = MAX_UNNAMED_SERVICES,
                            "more onion services without a role name than tracked; the others are left out"
                        );
                    }
                    if let Notice::Unnamed(label) = notice {
                        tracing::info!(
                            service = %label,
                            "an onion service has no role name; name it under [onion_services] in the configuration \
                             (`echo ADDRESS | securedrop-tor-exporter onion-label` prints an address's label)"
                        );
                        tracker.set_hs_config(configured_count(&mut conn).await?);
                    }
                    publish(shared, tracker, now_unix(), &mut told);
                }
            }
            _ = ticker.tick() => {
                let now = now_unix();
                tracker.expire_probes(now);
                for addr in tracker.due_checks(now) {
                    let reply = conn.request(&Command::HsFetch(addr.clone())).await?;
                    if !reply.is_ok() {
                        tracker.check_failed(&addr, now);
                    }
                }
                let stale = tracker.take_descriptors_stale();
                if stale || tokio::time::Instant::now() >= next_descriptors {
                    refresh_descriptors(&mut conn, tracker, shared).await?;
                    next_descriptors = tokio::time::Instant::now() + DESCRIPTOR_REFRESH;
                }
                if next_probe.is_some_and(|t| tokio::time::Instant::now() >= t) {
                    for addr in tracker.probe_targets() {
                        conn.request_ok(&Command::HsFetch(addr.clone())).await?;
                        tracker.probe_started(&addr, now);
                    }
                    next_probe = Some(tokio::time::Instant::now() + probe_every);
                }
                publish(shared, tracker, now, &mut told);
            }
            _ = crate::stopped(shutdown) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ReplyParser;

    const A: &str = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx";
    const B: &str = "zyxwvutsrqponmlkjihgfedcba765432zyxwvutsrqponmlkjihgfedc";

    fn ev(line: &str) -> HsDescEvent {
        let mut p = ReplyParser::default();
        p.feed(format!("{line}\r\n").as_bytes()).unwrap();
        parse_hs_desc(&p.next_message().unwrap()).unwrap()
    }

    #[test]
    fn real_event_lines() {
        let e = ev(&format!(
            "650 HS_DESC CREATED {A} UNKNOWN UNKNOWN hJ7bXXhbgcqmoi0DGZb2uNVsRsvbaQpv3x0i6GJBVOE"
        ));
        assert_eq!(e.action, Action::Created);
        let e = ev(&format!(
            "650 HS_DESC UPLOAD {A} UNKNOWN $3A1FBD5E7C4D6A8F2B0E9C1D3F5A7B9C0E2D4F6A~relay1 hJ7bXXhbgcqmoi0DGZb2uNVsRsvbaQpv3x0i6GJBVOE HSDIR_INDEX=9A1F"
        ));
        assert_eq!(e.action, Action::Upload);
        assert_eq!(e.address.as_ref().map(|a| a.expose()), Some(A));
        let e = ev(&format!(
            "650 HS_DESC UPLOADED {A} UNKNOWN $3A1FBD5E7C4D6A8F2B0E9C1D3F5A7B9C0E2D4F6A~relay2"
        ));
        assert_eq!(e.action, Action::Uploaded);
        let e = ev(&format!(
            "650 HS_DESC FAILED {A} UNKNOWN $3A1F~relay3 REASON=UPLOAD_REJECTED"
        ));
        assert_eq!(
            (e.action, e.reason),
            (Action::UploadFailed, Some("upload_rejected"))
        );
        let e = ev(&format!(
            "650 HS_DESC FAILED {A} NO_AUTH $3A1F~relay3 hJ7b REASON=NOT_FOUND"
        ));
        assert_eq!(
            (e.action, e.reason),
            (Action::FetchFailed, Some("not_found"))
        );
        let e = ev(&format!(
            "650 HS_DESC FAILED {A} UNKNOWN $3A1F~r REASON=SOMETHING_NEW"
        ));
        assert_eq!(e.reason, Some("other"));
        let e = ev(&format!(
            "650 HS_DESC RECEIVED {A} NO_AUTH $3A1F~relay3 hJ7b"
        ));
        assert_eq!(e.action, Action::Received);
    }

    #[test]
    fn other_events_and_garbage_are_ignored() {
        let mut p = ReplyParser::default();
        p.feed(b"650 CIRC 1 BUILT\r\n650 HS_DESC\r\n250 OK\r\n")
            .unwrap();
        assert!(parse_hs_desc(&p.next_message().unwrap()).is_none());
        assert!(parse_hs_desc(&p.next_message().unwrap()).is_none());
        assert!(parse_hs_desc(&p.next_message().unwrap()).is_none());
    }

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
        t.begin_checks(100.0);
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
        // A reconnect checks again but keeps a still-valid proof: never a 0 in between.
        t.begin_checks(third + 3.0);
        assert_eq!(
            t.health(third + 3.0).services["source"].published,
            Some(true)
        );
        assert_eq!(t.health(third + 3.0).services["ssh"].published, Some(true));
    }

    #[test]
    fn descriptor_series_say_what_is_known() {
        use crate::descriptor::{InnerLayer, PowParams};
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

    #[test]
    fn pow_lines_in_getconf() {
        let mut p = ReplyParser::default();
        p.feed(b"250-HiddenServiceDir=/x/source\r\n250-HiddenServicePort=80 127.0.0.1:10010\r\n250-HiddenServicePoWDefensesEnabled=1\r\n250-HiddenServiceDir=/x/journalist\r\n250 HiddenServicePort=80 127.0.0.1:10011\r\n").unwrap();
        assert_eq!(
            hs_config(&p.next_message().unwrap()),
            HsConfig {
                services: 2,
                pow_enabled: 1
            }
        );
    }

    #[test]
    fn configured_count_from_getconf() {
        let mut p = ReplyParser::default();
        p.feed(b"250-HiddenServiceDir=/var/lib/tor/services/source\r\n250-HiddenServicePort=80 127.0.0.1:80\r\n250-HiddenServiceDir=/var/lib/tor/services/ssh\r\n250 HiddenServicePort=22 127.0.0.1:22\r\n").unwrap();
        assert_eq!(count_configured(&p.next_message().unwrap()), 2);
        let mut p = ReplyParser::default();
        p.feed(b"250 HiddenServiceOptions\r\n").unwrap();
        assert_eq!(count_configured(&p.next_message().unwrap()), 0);
    }
}
