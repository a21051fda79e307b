//! Reads our own onion services' v3 descriptors (rend-spec-v3), without I/O.
//!
//! tor hands the exporter each service's current descriptor (`GETINFO hs/service/desc/id/…`).
//! Its two encrypted layers are opened with keys derived from the onion address alone, exactly as
//! any client would: the outer ("superencrypted") layer always, the inner one only when the
//! service has no client authorization (then the inner layer's keys also need a descriptor
//! cookie that only authorized clients can recover). What the inner layer holds is what every
//! client of the service sees anyway: the introduction points and, with proof-of-work defences on,
//! the `pow-params` line with the effort tor currently suggests. Nothing here counts visits.
//!
//! The cryptography is RustCrypto's (`sha3` for SHA3-256 and SHAKE256, `aes` + `ctr` for
//! AES-256-CTR); the MAC is compared in constant time (`subtle`). Nothing is hand-rolled.

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use sha3::digest::{ExtendableOutput, Update, XofReader};
use sha3::{Digest, Sha3_256, Shake256};
use subtle::ConstantTimeEq;

use crate::control::OnionAddress;

type Aes256Ctr = ctr::Ctr128BE<Aes256>;

const SALT_LEN: usize = 16;
const MAC_LEN: usize = 32;
const KEY_LEN: usize = 32;
const IV_LEN: usize = 16;
/// tor refuses descriptors above 50 KB (`HS_DESC_MAX_LEN`); so do we, before decoding.
const MAX_DESCRIPTOR_LEN: usize = 50_000;

/// Why a descriptor could not be read. Never names the address or quotes the descriptor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescriptorError {
    #[error("descriptor is larger than {MAX_DESCRIPTOR_LEN} bytes")]
    TooLarge,
    #[error("descriptor has no valid `{0}`")]
    Missing(&'static str),
    #[error("descriptor's `{0}` block is not valid base64")]
    Base64(&'static str),
    #[error("descriptor's signing-key certificate is malformed")]
    Certificate,
    #[error("descriptor's {0} layer is too short")]
    Short(&'static str),
    /// The outer layer's MAC did not match: the descriptor is not this address's (or is corrupt).
    #[error("descriptor's outer layer does not decrypt with this address's keys")]
    OuterMac,
    #[error("descriptor's {0} layer is not text")]
    NotText(&'static str),
}

/// The suggested effort from a `pow-params v1` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowParams {
    pub suggested_effort: u32,
}

/// What the inner layer says, when it can be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerLayer {
    pub introduction_points: u32,
    /// `Some` when the descriptor carries `pow-params v1` (tor adds it only with
    /// `HiddenServicePoWDefensesEnabled 1`).
    pub pow: Option<PowParams>,
}

/// What we learn from one of our own descriptors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Descriptor {
    /// The inner layer opened with the address's keys alone.
    Open(InnerLayer),
    /// The outer layer opened but the inner one did not: the service uses client authorization,
    /// and without a client's key nobody (we included) can read its introduction points.
    Closed,
}

/// Opens `text` (a descriptor as tor encodes it) for the service at `address`.
pub fn inspect(text: &str, address: &OnionAddress) -> Result<Descriptor, DescriptorError> {
    if text.len() > MAX_DESCRIPTOR_LEN {
        return Err(DescriptorError::TooLarge);
    }
    let revision: u64 = keyword_arg(text, "revision-counter")
        .and_then(|v| v.parse().ok())
        .ok_or(DescriptorError::Missing("revision-counter"))?;
    let cert = armored(text, "descriptor-signing-key-cert", "ED25519 CERT")?;
    let blinded = blinded_key_from_cert(&cert)?;
    let identity = identity_key(address);
    let subcredential = subcredential(&identity, &blinded);

    let outer = armored(text, "superencrypted", "MESSAGE")?;
    let first = decrypt_layer(
        &outer,
        &blinded,
        &subcredential,
        revision,
        b"hsdir-superencrypted-data",
    )
    .ok_or(DescriptorError::Short("outer"))?
    .ok_or(DescriptorError::OuterMac)?;
    let first =
        std::str::from_utf8(trim_nul(&first)).map_err(|_| DescriptorError::NotText("outer"))?;

    let inner = armored(first, "encrypted", "MESSAGE")?;
    // Without client authorization the inner layer's secret is the blinded key alone; with it,
    // the blinded key and a descriptor cookie we do not have. A MAC mismatch here, after the
    // outer layer opened with the same derivation, can only mean the latter.
    let Some(second) = decrypt_layer(
        &inner,
        &blinded,
        &subcredential,
        revision,
        b"hsdir-encrypted-data",
    )
    .ok_or(DescriptorError::Short("inner"))?
    else {
        return Ok(Descriptor::Closed);
    };
    let second =
        std::str::from_utf8(trim_nul(&second)).map_err(|_| DescriptorError::NotText("inner"))?;
    Ok(Descriptor::Open(parse_inner(second)))
}

/// Which descriptor this is, from its plaintext part alone (no key needed): enough to tell
/// whether a descriptor fetched back from the network is the one the running tor made.
///
/// A tor process generates a fresh descriptor-signing key for every descriptor it builds (one
/// per time period, at start-up and at each rotation) and keeps it while it re-uploads that
/// descriptor; a restarted tor, even with the same onion keys, signs with new ones. So two
/// descriptors for the same time period (the same blinded key) come from the same tor exactly
/// when their signing keys are equal. The revision counter cannot tell: every tor of a service
/// derives it from the clock with the same key. No `Debug` of the keys: the blinded key is
/// linkable to the address.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DescriptorId {
    /// The time period's blinded key (the certificate's `signed-with-ed25519-key`).
    pub blinded_key: [u8; 32],
    /// The descriptor-signing key the certificate certifies.
    pub signing_key: [u8; 32],
    /// The certificate's expiry, in hours since the epoch (cert-spec: `CEIL((now + lifetime) /
    /// 3600)`). tor issues it for [`CERT_LIFETIME_HOURS`] each time it re-signs the descriptor
    /// before an upload.
    pub cert_expires_hour: u32,
}

impl std::fmt::Debug for DescriptorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DescriptorId")
            .field("cert_expires_hour", &self.cert_expires_hour)
            .finish_non_exhaustive()
    }
}

/// tor's `HS_DESC_CERT_LIFETIME` (54 h): the signing-key certificate's validity from its issue.
pub const CERT_LIFETIME_HOURS: u32 = 54;

impl DescriptorId {
    /// The earliest Unix time the certificate can have been issued: its expiry hour is the
    /// issue time plus 54 h, rounded up to a whole hour.
    pub fn issued_after(&self) -> f64 {
        (f64::from(self.cert_expires_hour) - 1.0 - f64::from(CERT_LIFETIME_HOURS)) * 3600.0
    }
}

/// Reads the [`DescriptorId`] of `text` (a descriptor as tor encodes it or an HSDir serves it).
pub fn descriptor_id(text: &str) -> Result<DescriptorId, DescriptorError> {
    if text.len() > MAX_DESCRIPTOR_LEN {
        return Err(DescriptorError::TooLarge);
    }
    let cert = armored(text, "descriptor-signing-key-cert", "ED25519 CERT")?;
    let blinded_key = blinded_key_from_cert(&cert)?;
    // cert-spec: VERSION (1) | CERT_TYPE (1) | EXPIRATION_DATE (4) | CERT_KEY_TYPE (1) |
    // CERTIFIED_KEY (32) | N_EXTENSIONS (1) | ...; type 08 certifies a descriptor-signing key.
    if cert[1] != 8 {
        return Err(DescriptorError::Certificate);
    }
    let cert_expires_hour = u32::from_be_bytes([cert[2], cert[3], cert[4], cert[5]]);
    let mut signing_key = [0u8; 32];
    signing_key.copy_from_slice(&cert[7..39]);
    Ok(DescriptorId {
        blinded_key,
        signing_key,
        cert_expires_hour,
    })
}

/// What the running tor has for a service, as its control port said (`GETINFO
/// hs/service/desc/id/…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Own {
    /// Not asked yet, or the answer could not be read.
    #[default]
    Unknown,
    /// tor has built no descriptor for it (`551 Not found in cache`): it cannot have uploaded one.
    None,
    /// tor's current descriptor.
    Current(DescriptorId),
}

impl Own {
    pub fn signing_key(&self) -> Option<[u8; 32]> {
        match self {
            Own::Current(id) => Some(id.signing_key),
            _ => None,
        }
    }
}

/// Whether a descriptor fetched back from the network was made by the running tor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    Ours,
    /// Another tor's: a previous process of this service (its descriptor stays on the HSDirs
    /// for up to 3 h after it stopped uploading), never proof that this one is published.
    Foreign,
    /// Cannot be told yet: it is for another time period than the descriptor tor shows.
    Undecided,
}

/// Compares `fetched` with what the running tor has (`own`), tor having started no earlier
/// than `tor_started` (Unix seconds, from its `uptime`; `None` when unknown).
///
/// tor shows only its current descriptor, and for half of each day (on the public network,
/// from the new time period at 12:00 UTC to the next shared random value at 00:00) clients,
/// and so our fetch, get its *next* one, with another blinded key. Such a descriptor is ours
/// only if its certificate was issued after this tor started; an earlier issue time (to the
/// hour) proves nothing either way, since `uptime` can restart after a clock jump, so it stays
/// undecided until tor rotates its descriptors and shows that one.
pub fn provenance(fetched: &DescriptorId, own: &Own, tor_started: Option<f64>) -> Provenance {
    match own {
        Own::None => Provenance::Foreign,
        Own::Current(o) if o.blinded_key == fetched.blinded_key => {
            if o.signing_key == fetched.signing_key {
                Provenance::Ours
            } else {
                Provenance::Foreign
            }
        }
        _ => match tor_started {
            Some(start) if fetched.issued_after() >= start => Provenance::Ours,
            _ => Provenance::Undecided,
        },
    }
}

/// Counts `introduction-point` entries and reads `pow-params v1 <seed> <effort> <expiry>`.
pub fn parse_inner(text: &str) -> InnerLayer {
    let mut introduction_points = 0u32;
    let mut pow = None;
    for line in text.lines() {
        let mut words = line.split(' ');
        match words.next() {
            Some("introduction-point") => {
                introduction_points = introduction_points.saturating_add(1)
            }
            Some("pow-params") if words.next() == Some("v1") => {
                let effort = words.nth(1).and_then(|e| e.parse().ok());
                if let Some(suggested_effort) = effort {
                    pow = Some(PowParams { suggested_effort });
                }
            }
            _ => {}
        }
    }
    InnerLayer {
        introduction_points,
        pow,
    }
}

fn trim_nul(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    &b[..end]
}

/// The argument of the first line `keyword <arg>` at the start of a line.
fn keyword_arg<'a>(text: &'a str, keyword: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(keyword)?.strip_prefix(' '))
        .map(str::trim)
}

/// The base64 body of the `-----BEGIN <label>-----` block that follows the line `keyword`.
fn armored(text: &str, keyword: &'static str, label: &str) -> Result<Vec<u8>, DescriptorError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut lines = text.lines().skip_while(|l| l.trim_end() != keyword);
    lines.next().ok_or(DescriptorError::Missing(keyword))?;
    if lines.next().map(str::trim_end) != Some(begin.as_str()) {
        return Err(DescriptorError::Missing(keyword));
    }
    let mut b64 = String::new();
    for l in lines.by_ref() {
        if l.trim_end() == end {
            return decode_base64(&b64).ok_or(DescriptorError::Base64(keyword));
        }
        b64.push_str(l.trim());
    }
    Err(DescriptorError::Missing(keyword))
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut padded = s.trim_end_matches('=').to_owned();
    while padded.len() % 4 != 0 {
        padded.push('=');
    }
    data_encoding::BASE64.decode(padded.as_bytes()).ok()
}

/// The blinded public key: the `signed-with-ed25519-key` extension (type 04) of the descriptor
/// signing key's certificate (cert-spec: version 1, type 08).
fn blinded_key_from_cert(cert: &[u8]) -> Result<[u8; 32], DescriptorError> {
    let bad = DescriptorError::Certificate;
    if cert.len() < 40 || cert[0] != 1 {
        return Err(bad);
    }
    let n_ext = cert[39];
    let mut pos = 40usize;
    for _ in 0..n_ext {
        let head = cert.get(pos..pos + 4).ok_or(bad.clone())?;
        let len = usize::from(u16::from_be_bytes([head[0], head[1]]));
        let data = cert.get(pos + 4..pos + 4 + len).ok_or(bad.clone())?;
        if head[2] == 4 {
            return data.try_into().map_err(|_| bad);
        }
        pos += 4 + len;
    }
    Err(bad)
}

fn identity_key(address: &OnionAddress) -> [u8; 32] {
    let raw = data_encoding::BASE32_NOPAD
        .decode(address.expose().to_ascii_uppercase().as_bytes())
        .unwrap_or_default();
    let mut k = [0u8; 32];
    if raw.len() >= 32 {
        k.copy_from_slice(&raw[..32]);
    }
    k
}

/// `N_hs_subcred = SHA3-256("subcredential" | SHA3-256("credential" | A) | blinded key)`.
fn subcredential(identity: &[u8; 32], blinded: &[u8; 32]) -> [u8; 32] {
    let credential = Sha3_256::new()
        .chain_update(b"credential")
        .chain_update(identity)
        .finalize();
    Sha3_256::new()
        .chain_update(b"subcredential")
        .chain_update(credential)
        .chain_update(blinded)
        .finalize()
        .into()
}

/// Decrypts `SALT | ENCRYPTED | MAC` of one layer. `None`: too short; `Some(None)`: the MAC
/// does not match these keys.
fn decrypt_layer(
    blob: &[u8],
    secret: &[u8; 32],
    subcredential: &[u8; 32],
    revision: u64,
    constant: &[u8],
) -> Option<Option<Vec<u8>>> {
    if blob.len() < SALT_LEN + MAC_LEN {
        return None;
    }
    let (salt, rest) = blob.split_at(SALT_LEN);
    let (encrypted, mac) = rest.split_at(rest.len() - MAC_LEN);
    let mut keys = [0u8; KEY_LEN + IV_LEN + KEY_LEN];
    let mut xof = Shake256::default();
    xof.update(secret);
    xof.update(subcredential);
    xof.update(&revision.to_be_bytes());
    xof.update(salt);
    xof.update(constant);
    xof.finalize_xof().read(&mut keys);
    let (key, rest) = keys.split_at(KEY_LEN);
    let (iv, mac_key) = rest.split_at(IV_LEN);
    let expected = Sha3_256::new()
        .chain_update((mac_key.len() as u64).to_be_bytes())
        .chain_update(mac_key)
        .chain_update((salt.len() as u64).to_be_bytes())
        .chain_update(salt)
        .chain_update(encrypted)
        .finalize();
    if !bool::from(expected.as_slice().ct_eq(mac)) {
        return Some(None);
    }
    let mut plain = encrypted.to_vec();
    let mut cipher = Aes256Ctr::new(key.into(), iv.into());
    cipher.apply_keystream(&mut plain);
    Some(Some(plain))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Descriptors that a real tor 0.4.9.11 built on the private test network (throwaway keys):
    // "source" with HiddenServicePoWDefensesEnabled 1, "journalist" with client authorization.
    const SOURCE: &str = include_str!("../../tests/fixtures/descriptors/source.desc");
    const SOURCE_ONION: &str = include_str!("../../tests/fixtures/descriptors/source.onion");
    const JOURNALIST: &str = include_str!("../../tests/fixtures/descriptors/journalist.desc");
    const JOURNALIST_ONION: &str =
        include_str!("../../tests/fixtures/descriptors/journalist.onion");

    fn addr(s: &str) -> OnionAddress {
        OnionAddress::new(s).unwrap()
    }

    #[test]
    fn opens_a_pow_service_descriptor() {
        let d = inspect(SOURCE, &addr(SOURCE_ONION)).unwrap();
        let Descriptor::Open(inner) = d else {
            panic!("{d:?}")
        };
        assert_eq!(inner.introduction_points, 3, "tor's default");
        assert_eq!(
            inner.pow,
            Some(PowParams {
                suggested_effort: 0
            }),
            "idle"
        );
    }

    #[test]
    fn a_client_authorized_inner_layer_stays_closed() {
        assert_eq!(
            inspect(JOURNALIST, &addr(JOURNALIST_ONION)),
            Ok(Descriptor::Closed)
        );
    }

    #[test]
    fn the_wrong_address_or_a_damaged_descriptor_is_an_error_not_a_guess() {
        assert_eq!(
            inspect(SOURCE, &addr(JOURNALIST_ONION)),
            Err(DescriptorError::OuterMac)
        );
        let damaged = SOURCE.replacen("revision-counter ", "revision-counter 1", 1);
        assert_eq!(
            inspect(&damaged, &addr(SOURCE_ONION)),
            Err(DescriptorError::OuterMac)
        );
        assert_eq!(
            inspect("hs-descriptor 3\n", &addr(SOURCE_ONION)),
            Err(DescriptorError::Missing("revision-counter"))
        );
        let truncated = &SOURCE[..SOURCE.find("superencrypted").unwrap() + 40];
        assert!(inspect(truncated, &addr(SOURCE_ONION)).is_err());
        assert_eq!(
            inspect(&"x".repeat(60_000), &addr(SOURCE_ONION)),
            Err(DescriptorError::TooLarge)
        );
    }

    /// Damaged descriptors (flipped bytes, truncations) are errors or answers, never panics.
    #[test]
    fn damage_never_panics() {
        let a = addr(SOURCE_ONION);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut b = SOURCE.as_bytes().to_vec();
            let at = (x as usize) % b.len();
            let pool = b"A/+=\n- 0z";
            b[at] = pool[(x >> 32) as usize % pool.len()];
            if let Ok(t) = std::str::from_utf8(&b) {
                let _ = inspect(t, &a);
            }
        }
        for cut in (0..SOURCE.len()).step_by(499) {
            let _ = inspect(&SOURCE[..cut], &a);
        }
    }

    // The same two services built by tor 0.4.8.14 (Debian's bookworm-backports, what SecureDrop
    // servers may still run) on the private test network; recorded by
    // tests/privnet_tor_replies.rs (docs/tor-versions.md). Same layers and lines as 0.4.9's.
    const SOURCE_048: &str = include_str!("../../tests/fixtures/descriptors/tor-0.4.8/source.desc");
    const SOURCE_048_ONION: &str =
        include_str!("../../tests/fixtures/descriptors/tor-0.4.8/source.onion");
    const JOURNALIST_048: &str =
        include_str!("../../tests/fixtures/descriptors/tor-0.4.8/journalist.desc");
    const JOURNALIST_048_ONION: &str =
        include_str!("../../tests/fixtures/descriptors/tor-0.4.8/journalist.onion");

    #[test]
    fn tor_0_4_8_descriptors_read_as_0_4_9_ones() {
        let source = addr(SOURCE_048_ONION.trim());
        assert_eq!(
            inspect(SOURCE_048, &source),
            Ok(Descriptor::Open(InnerLayer {
                introduction_points: 3,
                pow: Some(PowParams {
                    suggested_effort: 0
                }),
            }))
        );
        assert_eq!(
            inspect(JOURNALIST_048, &addr(JOURNALIST_048_ONION.trim())),
            Ok(Descriptor::Closed)
        );
        assert_eq!(
            inspect(SOURCE_048, &addr(JOURNALIST_048_ONION.trim())),
            Err(DescriptorError::OuterMac)
        );
        let (source_id, journalist_id) = (
            descriptor_id(SOURCE_048).unwrap(),
            descriptor_id(JOURNALIST_048).unwrap(),
        );
        assert_ne!(source_id.blinded_key, journalist_id.blinded_key);
        // Recorded on 2026-12-07, as the 0.4.9 fixtures were.
        let day = source_id.issued_after() / 86_400.0;
        assert!((day - 20_794.0).abs() < 2.0, "{source_id:?}");
    }

    // A service restarted on the private test network (tor 0.4.9.11, throwaway keys): the first
    // tor's own descriptor (GETINFO hs/service/desc/id), the one a client fetched back from
    // an HSDir after the restart (HS_DESC_CONTENT), and the restarted tor's own, which it never
    // uploaded (PublishHidServDescriptors 0). Recorded by tests/privnet_onion_restart.rs.
    const OLD_OWN: &str = include_str!("../../tests/fixtures/descriptors/restart-old-own.desc");
    const FETCHED: &str = include_str!("../../tests/fixtures/descriptors/restart-fetched.desc");
    const NEW_OWN: &str = include_str!("../../tests/fixtures/descriptors/restart-new-own.desc");

    #[test]
    fn a_fetched_descriptor_is_told_by_its_signing_key() {
        let (old, fetched, new) = (
            descriptor_id(OLD_OWN).unwrap(),
            descriptor_id(FETCHED).unwrap(),
            descriptor_id(NEW_OWN).unwrap(),
        );
        assert_eq!(
            fetched.blinded_key, new.blinded_key,
            "recorded within one time period"
        );
        assert_ne!(fetched.signing_key, new.signing_key, "a new tor, new keys");
        assert_eq!(fetched.signing_key, old.signing_key);
        assert_eq!(
            provenance(&fetched, &Own::Current(old), None),
            Provenance::Ours,
            "what the first tor would have said"
        );
        assert_eq!(
            provenance(&fetched, &Own::Current(new), None),
            Provenance::Foreign,
            "the restarted tor did not make it"
        );
        // Even a start time long before the certificate does not override the key comparison.
        assert_eq!(
            provenance(&fetched, &Own::Current(new), Some(0.0)),
            Provenance::Foreign
        );
        assert_eq!(
            provenance(&fetched, &Own::None, Some(0.0)),
            Provenance::Foreign,
            "tor has built none: it uploaded none"
        );
    }

    #[test]
    fn another_periods_descriptor_is_ours_only_if_certified_after_tor_started() {
        let fetched = descriptor_id(FETCHED).unwrap();
        // tor showing a descriptor for another blinded key (here another service's, which is
        // as different as the next period's).
        let other = descriptor_id(SOURCE).unwrap();
        assert_ne!(other.blinded_key, fetched.blinded_key);
        let issued = fetched.issued_after();
        assert_eq!(
            provenance(&fetched, &Own::Current(other), Some(issued)),
            Provenance::Ours
        );
        assert_eq!(
            provenance(&fetched, &Own::Current(other), Some(issued + 1.0)),
            Provenance::Undecided,
            "issued in the hour tor started: cannot tell"
        );
        assert_eq!(
            provenance(&fetched, &Own::Current(other), None),
            Provenance::Undecided
        );
        assert_eq!(
            provenance(&fetched, &Own::Unknown, Some(issued)),
            Provenance::Ours
        );
        assert_eq!(
            provenance(&fetched, &Own::Unknown, None),
            Provenance::Undecided
        );
    }

    #[test]
    fn the_certificate_gives_the_issue_hour() {
        let id = descriptor_id(FETCHED).unwrap();
        // Recorded on 2026-12-07: issued within the hour before expiry minus 54 h.
        let day = |s: f64| s / 86_400.0;
        assert!((day(id.issued_after()) - 20_794.0).abs() < 2.0, "{id:?}");
        // The client-authorized service's plaintext part reads the same way.
        assert!(descriptor_id(JOURNALIST).is_ok());
        assert!(format!("{id:?}").contains("cert_expires_hour"));
        assert!(!format!("{id:?}").contains("blinded"), "no key in Debug");
        assert_eq!(
            descriptor_id("hs-descriptor 3\n"),
            Err(DescriptorError::Missing("descriptor-signing-key-cert"))
        );
        let damaged = FETCHED.replacen("AQgAB", "AQkAB", 1);
        assert_eq!(
            descriptor_id(&damaged),
            Err(DescriptorError::Certificate),
            "not a signing-key certificate (type 09)"
        );
    }

    #[test]
    fn inner_layer_lines() {
        let i = parse_inner(
            "create2-formats 2\npow-params v1 c2VlZA== 120 2026-12-01T20:00:00\nintroduction-point AwA\nintroduction-point AwB\n",
        );
        assert_eq!(i.introduction_points, 2);
        assert_eq!(
            i.pow,
            Some(PowParams {
                suggested_effort: 120
            })
        );
        assert_eq!(parse_inner("pow-params v2 x 5 y\n").pow, None);
    }
}
