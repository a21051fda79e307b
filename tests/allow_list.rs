//! The allow-list of control commands, checked against an independent expectation (the control
//! spec's own classification, in tests/fixtures/read_only_verbs.rs), not against itself.

use securedrop_tor_exporter::control::command::{AuthSecret, Command, ALLOWED_VERBS};
use securedrop_tor_exporter::control::OnionAddress;

#[path = "fixtures/read_only_verbs.rs"]
mod spec;

/// One command of every variant. The `match` has no wildcard: a new variant does not compile
/// until it is added here, and so until its verb is checked against the spec below.
fn one_of_each() -> Vec<Command> {
    let all = vec![
        Command::ProtocolInfo,
        Command::AuthChallenge {
            client_nonce: [7; 32],
        },
        Command::Authenticate(AuthSecret::None),
        Command::Authenticate(AuthSecret::Hex(vec![0xab; 32])),
        Command::Authenticate(AuthSecret::Password("secret".into())),
        Command::get_info(["version"]).unwrap(),
        Command::get_conf(["HiddenServiceOptions"]).unwrap(),
        Command::set_events(["HS_DESC"]).unwrap(),
        Command::HsFetch(OnionAddress::new(&"a".repeat(56)).unwrap()),
    ];
    for c in &all {
        match c {
            Command::ProtocolInfo
            | Command::AuthChallenge { .. }
            | Command::Authenticate(_)
            | Command::GetInfo(_)
            | Command::GetConf(_)
            | Command::SetEvents(_)
            | Command::HsFetch(_) => {}
        }
    }
    all
}

fn verb_on_the_wire(c: &Command) -> String {
    let wire = String::from_utf8(c.encode()).unwrap();
    wire.split([' ', '\r']).next().unwrap().to_owned()
}

#[test]
fn every_command_the_encoder_can_write_is_read_only_by_the_spec() {
    for c in one_of_each() {
        let verb = verb_on_the_wire(&c);
        assert!(
            spec::READ_ONLY_VERBS.contains(&verb.as_str()),
            "the encoder writes {verb}, which the control spec does not list as read-only"
        );
        assert!(!spec::STATE_CHANGING_VERBS.contains(&verb.as_str()));
    }
}

#[test]
fn the_encoders_own_list_is_within_the_spec_read_only_verbs() {
    for verb in ALLOWED_VERBS {
        assert!(
            spec::READ_ONLY_VERBS.contains(verb),
            "ALLOWED_VERBS has {verb}, which changes tor"
        );
    }
    // And the two lists of the spec do not overlap (a typo in one would hide a verb).
    for verb in spec::READ_ONLY_VERBS {
        assert!(!spec::STATE_CHANGING_VERBS.contains(verb), "{verb}");
    }
}
