//! What the package's maintainer scripts, the Ansible role and the tests need to agree on about
//! tor's configuration, in one place (the binary's `torrc` and `check-onion-address`
//! subcommands): the `%include` line of the drop-in and how to add and remove it
//! ([`include`], pure, and [`edit`], the atomic write), how to check a configuration the way
//! tor@default will read it ([`confinement`], pure, and [`tor`], which runs tor), which onion
//! services a configuration has ([`onion_dirs`], pure), and what a v3 onion address is
//! ([`address`], pure). Also where systemd holds the loopback port: the socket unit's drop-in
//! for `web.listen_address` ([`socket_unit`], pure, and [`socket_generator`], which writes it:
//! the `systemd-generator` subcommand).
//!
//! And the package's setup itself, which its postinst and prerm only call (`setup configure`,
//! `setup remove`): the plans ([`configure`], [`remove`]), read top to bottom; the one way they
//! change files ([`transaction`]: journaled first ([`journal`], pure), written beside, synced,
//! renamed in, undone on error or after a crash), folders opened without following links
//! ([`dir`]), where everything lies relative to a root ([`paths`]) and who owns it
//! ([`accounts`]), and what they ask of tor and systemd ([`system`], traits, so that
//! `tests/setup_engine.rs` runs the plans against a temp root).

pub mod accounts;
pub mod address;
pub mod configure;
pub mod confinement;
pub mod dir;
pub mod edit;
pub mod include;
pub mod journal;
pub mod onion_dirs;
pub mod paths;
pub mod remove;
pub mod socket_generator;
pub mod socket_unit;
pub mod system;
pub mod tor;
pub mod transaction;

/// tor@default's configuration file.
pub const TORRC: &str = "/etc/tor/torrc";

/// The unix socket the metrics onion service points at (`HiddenServicePort 80 unix:…`), which
/// the package's socket unit makes owned by debian-tor with mode 0600. It lies in tor's data
/// folder (0700 debian-tor), which only tor and root can enter, so no other local account can
/// connect to it, bind it first, or crowd it; and tor's AppArmor profile (`system_tor`) lets it
/// use sockets it owns there (`owner /var/lib/tor/** rwk`). A fixed path, not a configuration
/// key: an edited configuration must never move the socket away from where tor points.
pub const ONION_SOCKET: &str = "/var/lib/tor/securedrop-tor-exporter.sock";

/// `ONION_SOCKET` as tor's `HiddenServicePort` target.
pub fn onion_target() -> String {
    format!("unix:{ONION_SOCKET}")
}
