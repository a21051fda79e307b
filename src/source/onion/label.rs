//! Labels for onion services nobody gave a role name.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::control::OnionAddress;

/// `unnamed_<8 hex>`: HMAC-SHA256 of the address under a secret key (see [`crate::label_key`]).
/// Stable across restarts, but without the key nobody can check a guessed address against it.
pub fn unnamed_label(key: &[u8], address: &OnionAddress) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(address.expose().as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("unnamed_{}", data_encoding::HEXLOWER.encode(&digest[..4]))
}
