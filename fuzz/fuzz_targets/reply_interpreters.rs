//! Parses arbitrary bytes into control messages and runs every pure interpreter of a reply on
//! them: PROTOCOLINFO, AUTHCHALLENGE, the method choice, SAFECOOKIE maths, the GETINFO batch and
//! the onion-service event parser. None may panic, whatever a peer sends, and every value that
//! becomes a label stays within its fixed set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use securedrop_tor_exporter::control::auth;
use securedrop_tor_exporter::control::reply::ReplyParser;
use securedrop_tor_exporter::source::onion;
use securedrop_tor_exporter::source::status::{TorStatus, VERSION_STATUSES};

fuzz_target!(|input: &[u8]| {
    let mut p = ReplyParser::default();
    let _ = p.feed(input);
    while let Some(m) = p.next_message() {
        if let Ok(info) = auth::parse_protocolinfo(&m) {
            for trust in [
                auth::PeerTrust::OwnerOfSocketFolder,
                auth::PeerTrust::Unproven,
            ] {
                let _ = auth::choose_method(&info, true, trust);
                let _ = auth::choose_method(&info, false, trust);
            }
        }
        if let Ok(ch) = auth::parse_authchallenge(&m) {
            let _ = auth::safecookie_response(&[0x5a; 32], &[0xa5; 32], &ch);
            assert!(auth::safecookie_response(&[1; 31], &[0; 32], &ch).is_err());
        }
        let (status, _traffic) = TorStatus::from_getinfo(&m);
        if let Some(p) = status.bootstrap_progress {
            assert!(p <= 100);
        }
        if let Some(v) = status.version_status {
            assert!(VERSION_STATUSES.contains(&v));
        }
        if let Some(ev) = onion::parse_hs_desc(&m) {
            if let Some(r) = ev.reason {
                assert!(onion::REASONS.contains(&r));
            }
        }
        let hs = onion::hs_config(&m);
        assert!(hs.pow_enabled <= hs.services);
        if let Some(v) = &status.version {
            assert!(
                v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            );
        }
    }
});
