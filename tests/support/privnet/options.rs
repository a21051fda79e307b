//! What to build: `Options` (with its defaults), `ServiceSpec`, and their validation.

use std::time::Duration;

use super::error::{Error, Result};

/// Environment variable: readiness deadline per attempt, in seconds (default 180).
pub const TIMEOUT_ENV: &str = "PRIVNET_READY_TIMEOUT";

/// One onion service of the onion-service node.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Role name, also the HiddenServiceDir's name (e.g. "source", "metrics").
    pub role: String,
    /// The virtual port (HiddenServicePort VIRT 127.0.0.1:TARGET). Default 80.
    pub virt_port: u16,
    /// If set, a `descriptor:x25519:<PUB52>` line written to `authorized_clients/test.auth`
    /// before tor starts (v3 client authorization).
    pub authorized_client: Option<String>,
    /// Extra torrc lines for this service, written right after its `HiddenServicePort` (per-service
    /// options such as `HiddenServicePoWDefensesEnabled 1`).
    pub extra_torrc: Vec<String>,
    /// Forward to a unix socket (`HiddenServicePort VIRT unix:PATH`, as the package's drop-in
    /// does) instead of a loopback port: bind it with `PrivNet::bind_service_unix`.
    pub unix_target: bool,
}

impl ServiceSpec {
    pub fn new(role: &str) -> ServiceSpec {
        ServiceSpec {
            role: role.to_string(),
            virt_port: 80,
            authorized_client: None,
            extra_torrc: Vec::new(),
            unix_target: false,
        }
    }
}

/// What to build. `Options::default()` is what `PrivNet::start()` uses.
#[derive(Debug, Clone)]
pub struct Options {
    /// Onion services of the onion-service node. Default: "source" and "metrics".
    pub services: Vec<ServiceSpec>,
    /// Nickname of the relay under test (1–19 letters/digits). Default "RelayUnderTest".
    pub relay_nickname: String,
    /// `AccountingMax` of the relay under test; `None` leaves accounting off.
    /// Default `Some("1 GBytes")`.
    pub relay_accounting_max: Option<String>,
    /// Extra torrc lines for the relay under test (e.g. "RelayBandwidthRate 1 MBytes").
    pub relay_extra_torrc: Vec<String>,
    /// Extra torrc lines for the onion-service node.
    pub onion_extra_torrc: Vec<String>,
    /// Extra torrc lines for the client.
    pub client_extra_torrc: Vec<String>,
    /// Extra torrc lines for every authority.
    pub authority_extra_torrc: Vec<String>,
    /// Authorities recommend the running tor version (`VersioningAuthoritativeDirectory 1`,
    /// `RecommendedVersions <v>`), so `status/version/current` becomes `recommended`. Default true.
    pub recommend_running_version: bool,
    /// Readiness deadline of one attempt. Default 180 s (or $PRIVNET_READY_TIMEOUT).
    pub ready_timeout: Duration,
    /// How many times to build the network before giving up. Default 2 (one restart).
    pub attempts: u32,
}

impl Default for Options {
    fn default() -> Self {
        let ready_timeout = std::env::var(TIMEOUT_ENV)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(180));
        Options {
            services: vec![ServiceSpec::new("source"), ServiceSpec::new("metrics")],
            relay_nickname: "RelayUnderTest".into(),
            relay_accounting_max: Some("1 GBytes".into()),
            relay_extra_torrc: Vec::new(),
            onion_extra_torrc: Vec::new(),
            client_extra_torrc: Vec::new(),
            authority_extra_torrc: Vec::new(),
            recommend_running_version: true,
            ready_timeout,
            attempts: 2,
        }
    }
}

pub(super) fn validate(opts: &Options) -> Result<()> {
    let nick = &opts.relay_nickname;
    if nick.is_empty() || nick.len() > 19 || !nick.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error(format!("bad relay nickname {nick:?}")));
    }
    if opts.services.is_empty() {
        return Err("no onion services".into());
    }
    for s in &opts.services {
        if s.role.is_empty()
            || !s
                .role
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(Error(format!("bad service role {:?}", s.role)));
        }
    }
    Ok(())
}
