//! x25519 client-authorization keys for v3 onion services, in tor's file formats.
//!
//! Server side `<name>.auth`: `descriptor:x25519:<PUB>`; client side `<name>.auth_private`:
//! `<onion56>:descriptor:x25519:<PRIV>`; both keys raw 32 bytes in upper-case base32 without
//! padding (52 characters). The private key never reaches a log or an error message.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use data_encoding::BASE32_NOPAD;
use rand_core::OsRng;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::control::OnionAddress;
use crate::small_file::{read_secret, SmallFileError};

/// The most either file may hold: a key line is 70 bytes, a hostname 63. The cap (and the
/// regular-file check of [`read_secret`]) keeps a FIFO or `/dev/zero` put in their place from
/// blocking or filling memory: `client-key show` is run by root on files under folders that
/// debian-tor owns.
const KEY_FILE_CAP: u64 = 4096;

const PREFIX: &str = "descriptor:x25519:";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0} already exists; refusing to overwrite a key (delete it first if you mean to)")]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: SmallFileError,
    },
    #[error(
        "{0} does not hold an x25519 key (expected `descriptor:x25519:` and 52 base32 characters)"
    )]
    BadKey(PathBuf),
    #[error("{0} does not hold a v3 onion hostname (expected 56 characters of a-z2-7 and .onion)")]
    BadHostname(PathBuf),
}

/// A client private key. Debug output is redacted.
pub struct PrivateKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl PrivateKey {
    pub fn generate() -> Self {
        PrivateKey(Zeroizing::new(
            StaticSecret::random_from_rng(OsRng).to_bytes(),
        ))
    }

    pub fn from_bytes(b: [u8; 32]) -> Self {
        PrivateKey(Zeroizing::new(b))
    }

    /// `descriptor:x25519:<PUB>`, the line for `authorized_clients/<name>.auth`.
    pub fn auth_line(&self) -> String {
        let public = PublicKey::from(&StaticSecret::from(*self.0));
        format!("{PREFIX}{}", BASE32_NOPAD.encode(public.as_bytes()))
    }

    /// `descriptor:x25519:<PRIV>`, how we store the private half on disk.
    pub(crate) fn private_line(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{PREFIX}{}", BASE32_NOPAD.encode(&self.0[..])))
    }

    /// `<onion56>:descriptor:x25519:<PRIV>`, the client's `*.auth_private` line.
    pub fn auth_private_line(&self, onion: &OnionAddress) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{}:{}",
            onion.expose(),
            self.private_line().as_str()
        ))
    }

    /// Accepts `descriptor:x25519:<PRIV>` or the bare base32 key.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        let b32 = t.strip_prefix(PREFIX).unwrap_or(t);
        if b32.len() != 52 {
            return None;
        }
        let bytes = Zeroizing::new(BASE32_NOPAD.decode(b32.as_bytes()).ok()?);
        let arr: [u8; 32] = bytes.as_slice().try_into().ok()?;
        Some(PrivateKey(Zeroizing::new(arr)))
    }

    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let bytes = read_secret(path, KEY_FILE_CAP).map_err(|source| KeyError::Read {
            path: path.into(),
            source,
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| KeyError::BadKey(path.into()))?;
        Self::parse(text).ok_or_else(|| KeyError::BadKey(path.into()))
    }
}

fn write_new(path: &Path, content: &str, mode: u32) -> Result<(), KeyError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists(path.into())
            } else {
                KeyError::Write {
                    path: path.into(),
                    source,
                }
            }
        })?;
    // Explicit mode: the umask must not make the .auth file unreadable for tor.
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        .and_then(|_| f.write_all(content.as_bytes()))
        .and_then(|_| f.write_all(b"\n"))
        .and_then(|_| f.sync_all())
        .map_err(|source| KeyError::Write {
            path: path.into(),
            source,
        })
}

/// Makes a pair: the public `.auth` line (0644: tor reads it as debian-tor) and the private key
/// (0600). Refuses to overwrite either file.
pub fn generate_files(auth_file: &Path, private_file: &Path) -> Result<(), KeyError> {
    for p in [auth_file, private_file] {
        if p.exists() {
            return Err(KeyError::Exists(p.into()));
        }
    }
    let key = PrivateKey::generate();
    write_new(private_file, &key.private_line(), 0o600)?;
    if let Err(e) = write_new(auth_file, &key.auth_line(), 0o644) {
        let _ = std::fs::remove_file(private_file);
        return Err(e);
    }
    Ok(())
}

/// Reads tor's `hostname` file.
pub fn read_hostname(path: &Path) -> Result<OnionAddress, KeyError> {
    let bytes = read_secret(path, KEY_FILE_CAP).map_err(|source| KeyError::Read {
        path: path.into(),
        source,
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| KeyError::BadHostname(path.into()))?;
    OnionAddress::new(text.trim()).map_err(|_| KeyError::BadHostname(path.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7748 §6.1, Alice's key pair.
    #[test]
    fn rfc7748_vector_in_tor_format() {
        let sk: [u8; 32] = data_encoding::HEXLOWER
            .decode(b"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
            .unwrap()
            .try_into()
            .unwrap();
        let pk = data_encoding::HEXLOWER
            .decode(b"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
            .unwrap();
        let key = PrivateKey::from_bytes(sk);
        assert_eq!(
            key.auth_line(),
            format!("descriptor:x25519:{}", BASE32_NOPAD.encode(&pk))
        );
        let line = key.auth_line();
        let b32 = line.strip_prefix(PREFIX).unwrap();
        assert_eq!(b32.len(), 52);
        assert!(b32
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
    }

    #[test]
    fn private_round_trip_and_auth_private_line() {
        let k = PrivateKey::generate();
        let back = PrivateKey::parse(&k.private_line()).unwrap();
        assert_eq!(back.auth_line(), k.auth_line());
        let bare = k.private_line().strip_prefix(PREFIX).unwrap().to_owned();
        assert_eq!(PrivateKey::parse(&bare).unwrap().auth_line(), k.auth_line());
        let onion = OnionAddress::new(&"a".repeat(56)).unwrap();
        let l = k.auth_private_line(&onion);
        assert!(l.starts_with(&format!("{}:descriptor:x25519:", "a".repeat(56))));
        assert_eq!(l.len(), 56 + 1 + PREFIX.len() + 52);
        assert!(PrivateKey::parse("descriptor:x25519:short").is_none());
        assert_eq!(format!("{k:?}"), "PrivateKey(<redacted>)");
    }

    #[test]
    fn files_have_modes_and_are_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let d = crate::temp_dir::tempdir().unwrap();
        let (a, p) = (d.path().join("admin.auth"), d.path().join("admin.key"));
        generate_files(&a, &p).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(&a).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let auth = std::fs::read_to_string(&a).unwrap();
        assert_eq!(PrivateKey::read(&p).unwrap().auth_line(), auth.trim());
        let before = std::fs::read(&p).unwrap();
        assert!(matches!(generate_files(&a, &p), Err(KeyError::Exists(_))));
        assert_eq!(std::fs::read(&p).unwrap(), before);
    }

    /// A FIFO or `/dev/zero` in place of the hostname or key file is refused at once, never read
    /// (root runs `client-key show` on files in folders debian-tor can write).
    #[test]
    fn fifo_and_device_in_place_of_hostname_or_key_are_refused_at_once() {
        let d = crate::temp_dir::tempdir().unwrap();
        let fifo = d.path().join("hostname");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let started = std::time::Instant::now();
        for path in [fifo.as_path(), Path::new("/dev/zero")] {
            let err = read_hostname(path).unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
            let err = PrivateKey::read(path).unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let big = d.path().join("big");
        std::fs::write(&big, vec![b'a'; 5000]).unwrap();
        let err = read_hostname(&big).unwrap_err();
        assert!(err.to_string().contains("larger than 4096 bytes"), "{err}");
    }
}
