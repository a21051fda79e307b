//! The onion-service listener: its own control connection, subscribed to `HS_DESC`, feeding the
//! pure [`Tracker`] and asking the network about our descriptors (see `source::onion`).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;

use super::reconnect::{connect_options, keep_connected, Failures, Session};
use crate::clock::now_unix;
use crate::config::Config;
use crate::control::{Command, Connection, ControlError, OnionAddress};
use crate::snapshot::{ErrorKind, Shared};
use crate::source::descriptor::{self, Descriptor, DescriptorError, Own};
use crate::source::getinfo::getinfo_values;
use crate::source::onion::{
    hs_config, parse_hs_desc, parse_hs_desc_content, HsConfig, Notice, Tracker, DESCRIPTOR_REFRESH,
    MAX_UNNAMED_SERVICES,
};

/// tor's copy of our descriptor for `addr`: which descriptor it is ([`Own`]) and what it says,
/// opened as far as the address allows (`None`: tor has not built one yet, or cannot say).
async fn own_descriptor(
    conn: &mut Connection,
    addr: &OnionAddress,
) -> Result<(Own, Option<Result<Descriptor, DescriptorError>>), ControlError> {
    let key = format!("hs/service/desc/id/{}", addr.expose());
    let cmd = Command::get_info([key.clone()]).expect("an onion address is a valid keyword");
    let reply = conn.request(&cmd).await?;
    if !reply.is_ok() {
        // `551 Not found in cache`: no descriptor built. Anything else: we cannot tell.
        let own = if reply.status() == 551 && reply.end_text().contains("Not found") {
            Own::None
        } else {
            Own::Unknown
        };
        return Ok((own, None));
    }
    let values = getinfo_values(&reply);
    let Some(text) = values.get(&key) else {
        return Ok((Own::Unknown, None));
    };
    let own = descriptor::descriptor_id(text).map_or(Own::Unknown, Own::Current);
    Ok((own, Some(descriptor::inspect(text, addr))))
}

/// When the running tor started, at the latest (`GETINFO uptime`, which a clock jump can
/// restart but never moves earlier than the process's start).
async fn tor_started(conn: &mut Connection) -> Result<Option<f64>, ControlError> {
    let reply = conn
        .request(&Command::get_info(["uptime"]).expect("static key"))
        .await?;
    if !reply.is_ok() {
        return Ok(None);
    }
    Ok(getinfo_values(&reply)
        .get("uptime")
        .and_then(|u| u.trim().parse::<u64>().ok())
        .map(|u| now_unix() - u as f64))
}

/// The event listener: its own control connection, kept by the same reconnect loop as the
/// refresher's.
pub async fn run(config: Config, shared: Shared, shutdown: watch::Receiver<bool>) {
    let (key, source) = crate::label_key::load();
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
    let listener = Listener {
        tracker: Tracker::new(&config.onion_roles(), key.to_vec()),
        shared,
        tick: config.tor.refresh_interval,
        probe_every: config.onion.self_probe_interval,
    };
    keep_connected(
        connect_options(&config),
        config.tor.refresh_interval,
        config.tor.max_backoff,
        listener,
        shutdown,
    )
    .await;
}

struct Listener {
    tracker: Tracker,
    shared: Shared,
    tick: Duration,
    probe_every: Duration,
}

impl Session for Listener {
    const PACED: bool = false;

    /// One connection's life: subscribe, check our descriptors, then follow events. The
    /// failure count restarts once subscribed.
    async fn run(
        &mut self,
        mut conn: Connection,
        failures: &mut Failures,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ControlError> {
        self.tracker.set_hs_config(read_hs_config(&mut conn).await?);
        // HS_DESC_CONTENT: the descriptor each of our fetches brings back, to tell ours from a
        // previous tor's.
        conn.request_ok(
            &Command::set_events(["HS_DESC", "HS_DESC_CONTENT"]).expect("static event names"),
        )
        .await?;
        failures.recovered();
        tracing::info!("listening for onion-service descriptor events");
        // Events may have been missed (an exporter started while tor runs sees no upload until tor's
        // next one, 1–2 h away): ask the network whether our descriptors are there. What tor has
        // of its own is read after subscribing, so that a descriptor it builds later is
        // uploaded under our eyes.
        let targets = self.tracker.probe_targets();
        let started = if targets.is_empty() {
            None
        } else {
            tor_started(&mut conn).await?
        };
        let mut own = Vec::new();
        for addr in targets {
            let (o, d) = own_descriptor(&mut conn, &addr).await?;
            own.push((addr.clone(), o));
            let d = self.descriptor_or_warn(d);
            self.tracker.set_descriptor(&addr, d);
        }
        self.tracker.begin_checks(now_unix(), started, &own);
        let mut told = BTreeMap::new();
        publish(&self.shared, &self.tracker, now_unix(), &mut told);
        let mut ticker = tokio::time::interval(self.tick);
        let mut next_descriptors = tokio::time::Instant::now();
        // The first probe waits a little (the service may still be publishing), never longer than
        // the probe interval itself.
        let mut next_probe = (!self.probe_every.is_zero())
            .then(|| tokio::time::Instant::now() + self.probe_every.min(Duration::from_secs(30)));
        loop {
            tokio::select! {
                ev = conn.next_event() => {
                    let msg = ev?;
                    if let Some((addr, text)) = parse_hs_desc_content(&msg) {
                        // Only our own pending checks: descriptors of other addresses (anything
                        // this tor fetched as a client) are dropped unread.
                        if self.tracker.awaits_content(&addr) {
                            let fetched = text.and_then(|t| descriptor::descriptor_id(t).ok());
                            // Compare with what tor has right now, not a minute ago.
                            let (o, d) = own_descriptor(&mut conn, &addr).await?;
                            self.tracker.set_own(&addr, o);
                            let d = self.descriptor_or_warn(d);
                            self.tracker.set_descriptor(&addr, d);
                            self.tracker.on_content(&addr, fetched, now_unix());
                            publish(&self.shared, &self.tracker, now_unix(), &mut told);
                        }
                    } else if let Some(ev) = parse_hs_desc(&msg) {
                        let notice = self.tracker.on_event(&ev, now_unix());
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
                            self.tracker.set_hs_config(read_hs_config(&mut conn).await?);
                        }
                        publish(&self.shared, &self.tracker, now_unix(), &mut told);
                    }
                }
                _ = ticker.tick() => {
                    let now = now_unix();
                    self.tracker.expire_probes(now);
                    for addr in self.tracker.due_checks(now) {
                        let reply = conn.request(&Command::HsFetch(addr.clone())).await?;
                        if !reply.is_ok() {
                            self.tracker.check_failed(&addr, now);
                        }
                    }
                    let stale = self.tracker.take_descriptors_stale();
                    if stale || tokio::time::Instant::now() >= next_descriptors {
                        self.refresh_descriptors(&mut conn).await?;
                        next_descriptors = tokio::time::Instant::now() + DESCRIPTOR_REFRESH;
                    }
                    if next_probe.is_some_and(|t| tokio::time::Instant::now() >= t) {
                        for addr in self.tracker.probe_targets() {
                            conn.request_ok(&Command::HsFetch(addr.clone())).await?;
                            self.tracker.probe_started(&addr, now);
                        }
                        next_probe = Some(tokio::time::Instant::now() + self.probe_every);
                    }
                    publish(&self.shared, &self.tracker, now, &mut told);
                }
                _ = crate::shutdown::stopped(shutdown) => return Ok(()),
            }
        }
    }

    fn failed(&mut self, error: &ControlError, failures: u32, _elapsed: Duration) {
        self.tracker.reset_in_flight();
        if failures == 1 {
            tracing::warn!(error = %error, "onion-service event connection lost; retrying");
        }
        let kind = ErrorKind::of(error);
        let health = self.tracker.health(now_unix());
        self.shared.update(|s| {
            s.count_error(kind);
            s.onion = health;
        });
    }
}

/// What tor's configuration says about our onion services (`GETCONF HiddenServiceOptions`).
async fn read_hs_config(conn: &mut Connection) -> Result<HsConfig, ControlError> {
    let reply = conn
        .request_ok(&Command::get_conf(["HiddenServiceOptions"]).expect("static key"))
        .await?;
    Ok(hs_config(&reply))
}

impl Listener {
    /// Reads tor's copy of every named service's descriptor into the tracker.
    async fn refresh_descriptors(&mut self, conn: &mut Connection) -> Result<(), ControlError> {
        for addr in self.tracker.probe_targets() {
            let (o, d) = own_descriptor(conn, &addr).await?;
            self.tracker.set_own(&addr, o);
            let d = self.descriptor_or_warn(d);
            self.tracker.set_descriptor(&addr, d);
        }
        Ok(())
    }

    fn descriptor_or_warn(
        &self,
        d: Option<Result<Descriptor, DescriptorError>>,
    ) -> Option<Descriptor> {
        match d {
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                // The error never names the address; the role is in the tracker only.
                tracing::warn!(error = %e, "cannot read an onion service's own descriptor; its intro-point and PoW series are left out");
                self.shared.update(|s| s.count_error(ErrorKind::Parse));
                None
            }
            None => None,
        }
    }
}

/// Publishes the tracker's view, and logs (by role name) when a service's `published` becomes
/// known or changes, so the journal says why an alert fired or cleared.
fn publish(shared: &Shared, tracker: &Tracker, now: f64, told: &mut BTreeMap<String, bool>) {
    let health = tracker.health(now);
    for (label, s) in &health.services {
        let Some(p) = s.published else { continue };
        if told.insert(label.clone(), p) != Some(p) {
            if p {
                // The role name in the text too: only the text reaches syslog and OSSEC.
                tracing::info!(service = %label, "onion service {label}: its descriptor is published");
            } else {
                tracing::warn!(
                    service = %label,
                    "onion service {label}: its descriptor is not published (no upload seen within its lifetime, and our own fetches did not find it)"
                );
            }
        }
    }
    shared.update(|s| s.onion = health);
}
