//! The privacy policy, in code: every metric family the exporter can emit, with its class.
//!
//! The encoders in [`crate::metrics`] can only emit a family
//! declared here (they take a `&'static Family`), so adding a series means adding it here, with a
//! class and a reason. `docs/privacy.md` explains the classes; METRICS.md is checked against this
//! list by a test.

/// How a series may be exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Reveals nothing about when or how often sources connect.
    Safe,
    /// Exported only after coarsening (quantum and period, see `traffic`).
    Coarse,
    /// Only on a relay (ORPort set); absent on a SecureDrop server.
    Relay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Info,
}

/// One metric family.
#[derive(Debug)]
pub struct Family {
    /// The family name; counters get `_total` and info metrics `_info` on their samples.
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub class: Class,
    /// Label names; no label ever carries an onion address, an IP or a relay identity except
    /// the relay's own fingerprint/nickname on a relay.
    pub labels: &'static [&'static str],
}

impl Family {
    /// The name of the samples in the exposition.
    pub fn sample_name(&self) -> String {
        match self.kind {
            Kind::Counter => format!("{}_total", self.name),
            Kind::Info => format!("{}_info", self.name),
            Kind::Gauge => self.name.to_owned(),
        }
    }
}

/// Declares every family once: a `static` for each (what the encoders take) and, from the same
/// list, [`FAMILIES`] in exposition order, so a family cannot be declared and left out of it.
macro_rules! families {
    ($($id:ident, $name:literal, $kind:ident, $class:ident, [$($l:literal),*], $help:literal;)*) => {
        $(
            pub static $id: Family = Family {
                name: $name,
                help: $help,
                kind: Kind::$kind,
                class: Class::$class,
                labels: &[$($l),*],
            };
        )*

        /// Every family, in exposition order.
        pub static FAMILIES: &[&Family] = &[$(&$id),*];
    };
}

families! {
    // Exporter health.
    UP, "tor_up", Gauge, Safe, [],
        "1 if the last refresh from tor's control port succeeded, else 0";
    BUILD, "tor_exporter_build", Info, Safe, ["version"],
        "Build of securedrop-tor-exporter; always 1";
    REFRESH_DURATION, "tor_exporter_refresh_duration_seconds", Gauge, Safe, [],
        "How long the last refresh from tor took";
    LAST_SUCCESS, "tor_exporter_last_refresh_success_timestamp_seconds", Gauge, Safe, [],
        "Unix time of the last successful refresh";
    PROCESS_START, "process_start_time_seconds", Gauge, Safe, [],
        "Start time of the exporter process since the Unix epoch in seconds";
    CONTROL_ERRORS, "tor_exporter_control_errors", Counter, Safe, ["kind"],
        "Errors talking to tor's control port, by kind";
    RECOVERY_ACTIONS, "tor_exporter_recovery_actions", Counter, Safe, ["action"],
        "Reloads and restarts of tor by the opt-in securedrop-tor-recover (absent when it never ran)";

    // tor itself.
    VERSION, "tor_version", Info, Safe, ["version"], "tor's version; always 1";
    VERSION_STATUS, "tor_version_status", Gauge, Safe, ["status"],
        "tor's verdict on its own version from the consensus: 1 for the current state";
    BOOTSTRAP, "tor_bootstrap_progress_percent", Gauge, Safe, [], "Bootstrap progress, 0 to 100";
    ENOUGH_DIR_INFO, "tor_dir_info_sufficient", Gauge, Safe, [],
        "1 if tor has enough directory info to build circuits";
    NETWORK_LIVENESS, "tor_network_liveness", Gauge, Safe, [], "1 if tor thinks the network is up";
    CIRCUIT_ESTABLISHED, "tor_circuit_established", Gauge, Safe, [],
        "1 if tor has built a circuit recently";
    DORMANT, "tor_dormant", Gauge, Safe, [], "1 if tor is dormant";
    UPTIME, "tor_uptime_seconds", Gauge, Safe, [], "Seconds since tor started";
    TRAFFIC_READ, "tor_traffic_read_bytes", Counter, Coarse, [],
        "Bytes tor has read, rounded down to traffic.quantum_bytes and updated at most once per traffic.period";
    TRAFFIC_WRITTEN, "tor_traffic_written_bytes", Counter, Coarse, [],
        "Bytes tor has written, rounded down to traffic.quantum_bytes and updated at most once per traffic.period";

    // Onion services, labelled by role name.
    ONION_SERVICES_CONFIGURED, "tor_onion_services_configured", Gauge, Safe, [],
        "Onion services in tor's configuration (HiddenServiceDir lines)";
    ONION_UPLOADS, "tor_onion_service_descriptor_uploads", Counter, Safe, ["service", "result", "reason"],
        "Descriptor uploads to HSDirs since the exporter started, by result and failure reason";
    ONION_LAST_UPLOAD, "tor_onion_service_descriptor_last_upload_timestamp_seconds", Gauge, Safe, ["service"],
        "Unix time of the last successful descriptor upload";
    ONION_PUBLISHED, "tor_onion_service_published", Gauge, Safe, ["service"],
        "1 if the descriptor is on the HSDirs: an upload succeeded, or our own fetch got it back, within the descriptor lifetime; absent until known";
    ONION_INNER_READABLE, "tor_onion_service_descriptor_inner_layer_readable", Gauge, Safe, ["service"],
        "1 if the descriptor's inner layer opens with the address alone, 0 if it needs a client key (client authorization)";
    ONION_INTRO_POINTS, "tor_onion_service_descriptor_introduction_points", Gauge, Safe, ["service"],
        "Introduction points in tor's current descriptor; absent when the inner layer is closed";
    ONION_POW_ENABLED, "tor_onion_service_pow_enabled", Gauge, Safe, ["service"],
        "1 if proof-of-work defences are on for the service";
    ONION_POW_EFFORT, "tor_onion_service_pow_suggested_effort", Gauge, Safe, ["service"],
        "The effort tor suggests to clients in its descriptor (0 unless the service is flooded)";
    ONION_PROBE_SUCCESS, "tor_onion_service_self_probe_success", Gauge, Safe, ["service"],
        "1 if the last self-probe fetched our descriptor from the network";
    ONION_PROBE_TIME, "tor_onion_service_self_probe_timestamp_seconds", Gauge, Safe, ["service"],
        "Unix time of the last completed self-probe";

    // Relays only.
    RELAY, "tor_relay", Info, Relay, ["fingerprint", "nickname"], "The relay's identity; always 1";
    RELAY_FLAG, "tor_relay_flag", Gauge, Relay, ["flag"], "1 for each consensus flag the relay has";
    RELAY_REACHABLE, "tor_relay_reachable", Gauge, Relay, ["port"],
        "1 if tor's self-test found the ORPort or DirPort reachable";
    RELAY_EFFECTIVE_RATE, "tor_relay_effective_rate_bytes", Gauge, Relay, [],
        "Effective bandwidth rate in bytes per second, as tor computes it";
    RELAY_EFFECTIVE_BURST, "tor_relay_effective_burst_bytes", Gauge, Relay, [],
        "Effective bandwidth burst in bytes, as tor computes it";
    ACCOUNTING_ENABLED, "tor_accounting_enabled", Gauge, Relay, [], "1 if AccountingMax is set";
    ACCOUNTING_HIBERNATING, "tor_accounting_hibernating_state", Gauge, Relay, ["state"],
        "1 for the current hibernation state (awake, soft, hard)";
    ACCOUNTING_USED, "tor_accounting_used_bytes", Gauge, Relay, ["direction"],
        "Bytes used in the current accounting period";
    ACCOUNTING_LEFT, "tor_accounting_left_bytes", Gauge, Relay, ["direction"],
        "Bytes left in the current accounting period";
    ACCOUNTING_MAX, "tor_accounting_max_bytes", Gauge, Relay, [], "AccountingMax, bytes per period";
    ACCOUNTING_END, "tor_accounting_interval_end_timestamp_seconds", Gauge, Relay, [],
        "Unix time the accounting period ends";
}

/// What is never exported, whatever the configuration: name fragments of series that count
/// visits or locate the server. The test over all emitted series checks none matches.
pub const NEVER: &[(&str, &str)] = &[
    (
        "tor_hs_",
        "tor's MetricsPort onion-service families count introductions, rendezvous, bytes and circuit build times per service: visits",
    ),
    // The number of introduction *points* in our own descriptor is exported (it changes only
    // on rotation); counts of introductions are not.
    (
        "intro_",
        "tor's introduction counters (intro_num, intro_req, intro_established…) are one per client connection attempt",
    ),
    (
        "introductions",
        "introduction counts are one per client connection attempt",
    ),
    (
        "pow_effort_paid",
        "the effort each visitor paid (HS_POW on CIRC events) is one per visit",
    ),
    (
        "hs_pow",
        "HS_POW on CIRC events is the effort each visitor paid: one per visit",
    ),
    ("rend", "rendezvous counts are one per client connection"),
    ("circuit_count", "circuit counts move with every client"),
    ("circuits_total", "circuit counts move with every client"),
    ("stream", "stream counts move with every request"),
    (
        "guard",
        "the guard list is a stable identifier of this server's path into the network",
    ),
    ("orconn", "connection lists name relays and addresses"),
    (
        "address",
        "tor's idea of our public address locates the server",
    ),
];

/// The family for a sample name, if any.
pub fn family_of_sample(sample: &str) -> Option<&'static Family> {
    FAMILIES.iter().copied().find(|f| f.sample_name() == sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let mut seen = std::collections::BTreeSet::new();
        for f in FAMILIES {
            assert!(seen.insert(f.name), "{} declared twice", f.name);
            // tor_*, and the one standard process metric every Prometheus client exports.
            assert!(
                f.name.starts_with("tor_") || f.name == "process_start_time_seconds",
                "{}",
                f.name
            );
            assert!(
                f.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                f.name
            );
            assert!(
                !f.name.ends_with("_total") && !f.name.ends_with("_info"),
                "{}: suffix comes from the kind",
                f.name
            );
            if f.kind == Kind::Counter {
                assert!(
                    !f.name.ends_with("_seconds") || f.name.contains("duration"),
                    "{}",
                    f.name
                );
            }
            assert!(
                !f.help.ends_with('.'),
                "{}: help texts carry no trailing period",
                f.name
            );
            for n in NEVER {
                assert!(
                    !f.name.contains(n.0),
                    "{} matches never-exported pattern {}",
                    f.name,
                    n.0
                );
            }
        }
    }

    #[test]
    fn traffic_is_coarse_and_nothing_else_counts_bytes_on_a_client() {
        for f in FAMILIES {
            if f.name.contains("traffic") {
                assert_eq!(f.class, Class::Coarse, "{}", f.name);
            }
            if f.class == Class::Safe {
                assert!(
                    !f.name.ends_with("_bytes"),
                    "{}: byte series must be coarse or relay-only",
                    f.name
                );
            }
        }
    }
}
