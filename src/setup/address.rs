//! What a v3 onion address is, for the `check-onion-address` command, the package, the role and
//! the tests: [`check`] (the shape, then the version byte and the checksum every v3 address
//! carries). Pure. It lives in [`crate::control::address`], below both this module and
//! `config`, which parses `onion_services` with the same test.

pub use crate::control::address::{check, AddressError};
