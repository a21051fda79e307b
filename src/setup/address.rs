//! The one test of "this is a v3 onion address" for the package, the role and the tests: the
//! shape (56 characters of a-z2-7, `.onion` optional), then the version byte and the checksum
//! every v3 address carries. Pure.

use crate::control::OnionAddress;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The message never repeats the input: it may be an address.
    #[error("not a v3 onion address (expected 56 characters of a-z2-7, optionally .onion)")]
    Shape,
    #[error("not a v3 onion address: {0}")]
    NotV3(String),
}

/// The address in `text` (one line, as tor writes a `hostname` file; surrounding white space
/// and a `.onion` suffix allowed), if it is a valid v3 onion address.
pub fn check(text: &str) -> Result<OnionAddress, AddressError> {
    let addr = OnionAddress::new(text).map_err(|_| AddressError::Shape)?;
    addr.check_v3()
        .map_err(|e| AddressError::NotV3(e.to_string()))?;
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_tor_hostname_files_and_bare_addresses() {
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
    fn rejects_shapes_versions_and_checksums() {
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
}
