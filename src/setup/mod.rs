//! What the package's maintainer scripts, the Ansible role and the tests need to agree on about
//! tor's configuration, in one place (the binary's `torrc` and `check-onion-address`
//! subcommands): the `%include` line of the drop-in and how to add and remove it
//! ([`include`], pure, and [`edit`], the atomic write), how to check a configuration the way
//! tor@default will read it ([`confinement`], pure, and [`tor`], which runs tor), which onion
//! services a configuration has ([`onion_dirs`], pure), and what a v3 onion address is
//! ([`address`], pure).

pub mod address;
pub mod confinement;
pub mod edit;
pub mod include;
pub mod onion_dirs;
pub mod tor;

/// tor@default's configuration file.
pub const TORRC: &str = "/etc/tor/torrc";
