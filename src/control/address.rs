//! The two kinds of address the control protocol deals in: where tor's control port is, and v3
//! onion addresses (which must never reach a log or a label: their `Debug` is redacted).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `unix:/path` or `IP:PORT`. Never a host name: `localhost` resolves to `::1` first on Debian,
/// where any local account can bind a port tor is not using and so pose as tor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ControlAddress {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl ControlAddress {
    /// Where the cookie is when `tor.cookie_file` is not set: beside a unix socket, as Debian's
    /// and the Tor Project's packages put it (`/run/tor/control` → `/run/tor/control.authcookie`).
    /// None over TCP. The path tor announces is never used (see `control::client`).
    pub fn default_cookie_file(&self) -> Option<PathBuf> {
        match self {
            ControlAddress::Unix(p) => {
                let mut s = p.clone().into_os_string();
                s.push(".authcookie");
                Some(PathBuf::from(s))
            }
            ControlAddress::Tcp(_) => None,
        }
    }
}

impl fmt::Display for ControlAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlAddress::Unix(p) => write!(f, "unix:{}", p.display()),
            ControlAddress::Tcp(a) => write!(f, "{a}"),
        }
    }
}

impl TryFrom<String> for ControlAddress {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.starts_with('/') {
                return Ok(ControlAddress::Unix(PathBuf::from(path)));
            }
            return Err("expected unix:/absolute/path".into());
        }
        match s.parse::<SocketAddr>() {
            Ok(a) if a.port() > 0 => Ok(ControlAddress::Tcp(a)),
            _ => Err(
                "expected unix:/absolute/path or IP:PORT (an IP address such as 127.0.0.1:9051, not a host name)"
                    .into(),
            ),
        }
    }
}

impl From<ControlAddress> for String {
    fn from(a: ControlAddress) -> String {
        a.to_string()
    }
}

/// A v3 onion address without `.onion` (56 base32 characters).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OnionAddress(String);

impl std::fmt::Debug for OnionAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnionAddress(<redacted>)")
    }
}

/// Not the shape of a v3 onion address. Never names the text it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("onion address must be 56 characters of [a-z2-7] (v3), optionally followed by .onion")]
pub struct BadOnionAddress;

impl OnionAddress {
    pub fn new(s: &str) -> Result<Self, BadOnionAddress> {
        let s = s.trim();
        let s = s.strip_suffix(".onion").unwrap_or(s);
        if s.len() == ONION_RUN && s.chars().all(is_onion_char) {
            Ok(OnionAddress(s.to_owned()))
        } else {
            Err(BadOnionAddress)
        }
    }

    /// The address itself. Callers must not log or export it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The address of the v3 onion service with this ed25519 public key (rend-spec-v3,
    /// "Encoding onion addresses": base32 of PUBKEY | CHECKSUM | VERSION).
    pub fn from_public_key(public_key: &[u8; 32]) -> OnionAddress {
        let mut raw = Vec::with_capacity(35);
        raw.extend_from_slice(public_key);
        raw.extend_from_slice(&v3_checksum(public_key));
        raw.push(ONION_V3_VERSION);
        OnionAddress(
            data_encoding::BASE32_NOPAD
                .encode(&raw)
                .to_ascii_lowercase(),
        )
    }

    /// Checks the version byte and the checksum that every v3 address carries, so that a
    /// mistyped address (in the configuration, say) is an error rather than a role mapped to
    /// nobody. `new` checks the shape only: tor's own events carry valid addresses, and tests
    /// use made-up ones.
    pub fn check_v3(&self) -> Result<(), OnionChecksumError> {
        let raw = data_encoding::BASE32_NOPAD
            .decode(self.0.to_ascii_uppercase().as_bytes())
            .map_err(|_| OnionChecksumError::Checksum)?;
        let (key, rest) = raw.split_at(32);
        let key: &[u8; 32] = key.try_into().map_err(|_| OnionChecksumError::Checksum)?;
        if rest[2] != ONION_V3_VERSION {
            return Err(OnionChecksumError::Version(rest[2]));
        }
        if rest[..2] != v3_checksum(key) {
            return Err(OnionChecksumError::Checksum);
        }
        Ok(())
    }
}

const ONION_V3_VERSION: u8 = 3;

/// `SHA3-256(".onion checksum" | PUBKEY | VERSION)[..2]`.
fn v3_checksum(public_key: &[u8; 32]) -> [u8; 2] {
    use sha3::{Digest, Sha3_256};
    let mut h = Sha3_256::new();
    h.update(b".onion checksum");
    h.update(public_key);
    h.update([ONION_V3_VERSION]);
    let d = h.finalize();
    [d[0], d[1]]
}

/// Why a well-shaped v3 address is not a real one. Never names the address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OnionChecksumError {
    #[error("its version byte is {0}, not 3")]
    Version(u8),
    #[error("its checksum does not match (a mistyped, missing or swapped character?)")]
    Checksum,
}

/// Why a text is not a v3 onion address. Never names the text: it may be an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("not a v3 onion address (expected 56 characters of a-z2-7, optionally .onion)")]
    Shape,
    #[error("not a v3 onion address: {0}")]
    NotV3(OnionChecksumError),
}

/// The one test of "this is a v3 onion address", for the configuration, the package, the role
/// and the tests: the shape (56 characters of a-z2-7 in `text`, one line as tor writes a
/// `hostname` file, surrounding white space and a `.onion` suffix allowed), then the version
/// byte and the checksum every v3 address carries. Here, below both `config` and `setup`, so
/// that neither has a test of its own.
pub fn check(text: &str) -> Result<OnionAddress, AddressError> {
    let addr = OnionAddress::new(text).map_err(|_| AddressError::Shape)?;
    addr.check_v3().map_err(AddressError::NotV3)?;
    Ok(addr)
}

/// Is `b` one of the base32 characters a v3 onion address is made of?
fn is_onion_char(c: char) -> bool {
    c.is_ascii_lowercase() || ('2'..='7').contains(&c)
}

/// The shortest run of [`is_onion_char`] that is treated as an address (a v3 address has 56).
const ONION_RUN: usize = 56;

/// True if `s` contains something shaped like a v3 onion address (56 or more of [a-z2-7] in a
/// row): the one test of "might this text name a service", used on logs, errors and exports.
pub fn contains_onion_address(s: &str) -> bool {
    let mut run = 0usize;
    for c in s.chars() {
        run = if is_onion_char(c) { run + 1 } else { 0 };
        if run >= ONION_RUN {
            return true;
        }
    }
    false
}

/// `s` with every onion-address-shaped run (as in [`contains_onion_address`]) replaced by
/// `<onion>`: for text that comes from tor (error replies can echo their argument) on its way
/// into a log or an error.
pub fn redact_onion_addresses(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    for c in s.chars().chain(std::iter::once('\0')) {
        if is_onion_char(c) {
            run.push(c);
            continue;
        }
        if run.len() >= ONION_RUN {
            out.push_str("<onion>");
        } else {
            out.push_str(&run);
        }
        run.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Tor Project's public onion address (torproject.org's v3 onion), a real-world vector.
    const TORPROJECT: &str = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid";

    #[test]
    fn v3_checksum_accepts_real_addresses_and_refuses_typos() {
        let a = OnionAddress::new(TORPROJECT).unwrap();
        assert_eq!(a.check_v3(), Ok(()));
        // Every single-character change is caught (checksum or version).
        for i in 0..56 {
            let mut b = TORPROJECT.as_bytes().to_vec();
            b[i] = if b[i] == b'a' { b'b' } else { b'a' };
            let typo = OnionAddress::new(std::str::from_utf8(&b).unwrap()).unwrap();
            assert!(typo.check_v3().is_err(), "position {i}");
        }
        let made_up = OnionAddress::new(&"a".repeat(56)).unwrap();
        assert!(made_up.check_v3().is_err());
    }

    #[test]
    fn an_address_made_from_a_key_round_trips() {
        let a = OnionAddress::from_public_key(&[7u8; 32]);
        assert_eq!(a.expose().len(), 56);
        assert_eq!(OnionAddress::new(a.expose()).unwrap().check_v3(), Ok(()));
    }

    #[test]
    fn check_accepts_tor_hostname_files_and_bare_addresses() {
        let real = OnionAddress::from_public_key(&[7; 32]);
        let a = real.expose();
        for text in [
            a.to_owned(),
            format!("{a}.onion\n"),
            format!("  {a}.onion  \n"),
        ] {
            assert_eq!(check(&text).unwrap().expose(), a, "{text:?}");
        }
    }

    #[test]
    fn check_rejects_shapes_versions_and_checksums() {
        let real = OnionAddress::from_public_key(&[7; 32]);
        let a = real.expose();
        let upper = a.to_ascii_uppercase();
        let two_lines = format!("{a}.onion\n{a}.onion\n");
        let short = &a[..55];
        for text in ["", short, &upper, &two_lines, &format!("{a}.onion.onion")] {
            assert_eq!(check(text).unwrap_err(), AddressError::Shape, "{text:?}");
        }
        // one character changed: right shape, wrong checksum
        let mut typo = a.to_owned().into_bytes();
        typo[3] = if typo[3] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        assert!(matches!(check(&typo), Err(AddressError::NotV3(_))));
        // the version character (the last one) is not 'd'
        let v = format!("{}a", &a[..55]);
        assert!(matches!(check(&v), Err(AddressError::NotV3(_))));
        let msg = check(&typo).unwrap_err().to_string();
        assert!(
            !msg.contains(&typo),
            "the message must not repeat the address: {msg}"
        );
    }

    #[test]
    fn redaction() {
        let a = "a".repeat(56);
        assert_eq!(
            redact_onion_addresses(&format!("513 Invalid argument \"{a}\"")),
            "513 Invalid argument \"<onion>\""
        );
        assert_eq!(
            redact_onion_addresses("552 Unrecognized key \"x\""),
            "552 Unrecognized key \"x\""
        );
        assert_eq!(
            redact_onion_addresses(&format!("{a}.onion and more")),
            "<onion>.onion and more"
        );
    }

    #[test]
    fn onion_pattern() {
        assert!(contains_onion_address(&format!("x{}y", "a".repeat(56))));
        assert!(!contains_onion_address(&"a".repeat(55)));
        assert!(!contains_onion_address(
            "tor_onion_service_descriptor_last_upload_timestamp_seconds"
        ));
    }
}
