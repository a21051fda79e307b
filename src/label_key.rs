//! The secret key behind the `unnamed_<8 hex>` labels of onion services nobody named.
//!
//! A keyed hash hides which address a label stands for only while its key is secret. The
//! machine id is readable by every local account, so it is not used: the package makes a random
//! key at install (`/etc/securedrop-tor-exporter/label.key`, 0600 root), systemd hands it to the
//! service as a credential (`LoadCredential=label-key:…`, readable by the service alone, which
//! runs as a dynamic user), and `onion-label`, run by root, reads the file itself. Without
//! either, a random key for this process keeps labels private, at the price of new labels after
//! each restart.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Where the package keeps the key.
pub const KEY_FILE: &str = "/etc/securedrop-tor-exporter/label.key";
/// The credential's name in the unit (`LoadCredential=label-key:/etc/…/label.key`).
pub const CREDENTIAL: &str = "label-key";
/// A key shorter than this is refused (the package writes 32 bytes).
const MIN_KEY_BYTES: usize = 16;

/// Where the key came from, for one log line at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Credential(PathBuf),
    File(PathBuf),
    /// Neither was there (or readable): a random key for this process.
    Random,
}

/// The key, from the systemd credential, else the package's file, else random.
pub fn load() -> (Zeroizing<Vec<u8>>, Source) {
    let credential =
        std::env::var_os("CREDENTIALS_DIRECTORY").map(|d| Path::new(&d).join(CREDENTIAL));
    load_from(credential.as_deref(), Path::new(KEY_FILE))
}

/// [`load`] with the places given (tests).
pub fn load_from(credential: Option<&Path>, file: &Path) -> (Zeroizing<Vec<u8>>, Source) {
    if let Some(c) = credential {
        if let Some(k) = read(c) {
            return (k, Source::Credential(c.to_owned()));
        }
    }
    if let Some(k) = read(file) {
        return (k, Source::File(file.to_owned()));
    }
    let mut k = Zeroizing::new(vec![0u8; 32]);
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut k);
    (k, Source::Random)
}

fn read(path: &Path) -> Option<Zeroizing<Vec<u8>>> {
    crate::small_file::read_secret(path, 4096)
        .ok()
        .filter(|k| k.len() >= MIN_KEY_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_first_then_file_then_random() {
        let d = crate::temp_dir::tempdir().unwrap();
        let cred = d.path().join("label-key");
        let file = d.path().join("label.key");
        std::fs::write(&cred, [1u8; 32]).unwrap();
        std::fs::write(&file, [2u8; 32]).unwrap();
        let (k, s) = load_from(Some(&cred), &file);
        assert_eq!(
            (&k[..], s),
            (&[1u8; 32][..], Source::Credential(cred.clone()))
        );
        let (k, s) = load_from(None, &file);
        assert_eq!((&k[..], s), (&[2u8; 32][..], Source::File(file.clone())));
        std::fs::remove_file(&file).unwrap();
        let (a, s) = load_from(None, &file);
        assert_eq!(s, Source::Random);
        let (b, _) = load_from(None, &file);
        assert_ne!(&a[..], &b[..], "a random key per process, not a fixed one");
    }

    #[test]
    fn a_short_key_is_not_used() {
        let d = crate::temp_dir::tempdir().unwrap();
        let file = d.path().join("label.key");
        std::fs::write(&file, b"short").unwrap();
        assert_eq!(load_from(None, &file).1, Source::Random);
    }
}
