//! tor's `HS_DESC` events, parsed without I/O and with the HSDir's identity dropped.

use crate::control::{Message, OnionAddress};

/// The failure reasons tor reports (control-spec, HS_DESC `REASON=`), as fixed label values.
pub const REASONS: &[&str] = &[
    "bad_desc",
    "query_rejected",
    "upload_rejected",
    "not_found",
    "query_no_hsdir",
    "query_rate_limited",
    "unexpected",
    "other",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Upload,
    Uploaded,
    /// An upload failed (service side: AuthType `UNKNOWN`).
    UploadFailed,
    Requested,
    Received,
    /// A fetch failed (client side: any other AuthType).
    FetchFailed,
    Other,
}

/// One `HS_DESC` event, with the HSDir's identity already dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsDescEvent {
    pub action: Action,
    pub address: Option<OnionAddress>,
    pub reason: Option<&'static str>,
}

/// Parses `650 HS_DESC <Action> <Address> <AuthType> <HsDir> … [REASON=…]`. Anything else,
/// or a malformed line, is `None` (and ignored: events never take the exporter down).
pub fn parse_hs_desc(msg: &Message) -> Option<HsDescEvent> {
    if msg.status() != 650 {
        return None;
    }
    let line = msg.lines.first()?.text.as_str();
    let mut words = line.split(' ');
    if words.next()? != "HS_DESC" {
        return None;
    }
    let action_word = words.next()?;
    let address = OnionAddress::new(words.next()?).ok();
    let auth_type = words.next().unwrap_or("");
    let action = match action_word {
        "CREATED" => Action::Created,
        "UPLOAD" => Action::Upload,
        "UPLOADED" => Action::Uploaded,
        "FAILED" if auth_type == "UNKNOWN" => Action::UploadFailed,
        "FAILED" => Action::FetchFailed,
        "REQUESTED" => Action::Requested,
        "RECEIVED" => Action::Received,
        _ => Action::Other,
    };
    let reason = line
        .split(' ')
        .find_map(|w| w.strip_prefix("REASON="))
        .map(|r| {
            let r = r.to_ascii_lowercase();
            REASONS.iter().copied().find(|x| *x == r).unwrap_or("other")
        });
    Some(HsDescEvent {
        action,
        address,
        reason,
    })
}

/// `650+HS_DESC_CONTENT <Address> <BlindedKey> <HsDir>` with the fetched descriptor as its data
/// (empty when the fetch failed): the address and the descriptor text, `None` for the text when
/// empty. Anything else is `None`. The HSDir is dropped.
pub fn parse_hs_desc_content(msg: &Message) -> Option<(OnionAddress, Option<&str>)> {
    if msg.status() != 650 {
        return None;
    }
    let first = msg.lines.first()?;
    let mut words = first.text.split(' ');
    if words.next()? != "HS_DESC_CONTENT" {
        return None;
    }
    let address = OnionAddress::new(words.next()?).ok()?;
    let text = first.data.as_deref().filter(|d| !d.trim().is_empty());
    Some((address, text))
}

/// The event on one raw line, for tests of what consumes events.
#[cfg(test)]
pub(crate) fn event_from_line(line: &str) -> HsDescEvent {
    let mut p = crate::control::ReplyParser::default();
    p.feed(format!("{line}\r\n").as_bytes()).unwrap();
    parse_hs_desc(&p.next_message().unwrap()).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ReplyParser;

    const A: &str = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx";

    fn ev(line: &str) -> HsDescEvent {
        event_from_line(line)
    }

    #[test]
    fn real_event_lines() {
        let e = ev(&format!(
            "650 HS_DESC CREATED {A} UNKNOWN UNKNOWN hJ7bXXhbgcqmoi0DGZb2uNVsRsvbaQpv3x0i6GJBVOE"
        ));
        assert_eq!(e.action, Action::Created);
        let e = ev(&format!(
            "650 HS_DESC UPLOAD {A} UNKNOWN $3A1FBD5E7C4D6A8F2B0E9C1D3F5A7B9C0E2D4F6A~relay1 hJ7bXXhbgcqmoi0DGZb2uNVsRsvbaQpv3x0i6GJBVOE HSDIR_INDEX=9A1F"
        ));
        assert_eq!(e.action, Action::Upload);
        assert_eq!(e.address.as_ref().map(|a| a.expose()), Some(A));
        let e = ev(&format!(
            "650 HS_DESC UPLOADED {A} UNKNOWN $3A1FBD5E7C4D6A8F2B0E9C1D3F5A7B9C0E2D4F6A~relay2"
        ));
        assert_eq!(e.action, Action::Uploaded);
        let e = ev(&format!(
            "650 HS_DESC FAILED {A} UNKNOWN $3A1F~relay3 REASON=UPLOAD_REJECTED"
        ));
        assert_eq!(
            (e.action, e.reason),
            (Action::UploadFailed, Some("upload_rejected"))
        );
        let e = ev(&format!(
            "650 HS_DESC FAILED {A} NO_AUTH $3A1F~relay3 hJ7b REASON=NOT_FOUND"
        ));
        assert_eq!(
            (e.action, e.reason),
            (Action::FetchFailed, Some("not_found"))
        );
        let e = ev(&format!(
            "650 HS_DESC FAILED {A} UNKNOWN $3A1F~r REASON=SOMETHING_NEW"
        ));
        assert_eq!(e.reason, Some("other"));
        let e = ev(&format!(
            "650 HS_DESC RECEIVED {A} NO_AUTH $3A1F~relay3 hJ7b"
        ));
        assert_eq!(e.action, Action::Received);
    }

    /// Lines tor 0.4.8.14 (bookworm-backports) sent on the private test network, the service's
    /// and a client's, for the `source` service of tests/fixtures/descriptors/tor-0.4.8/
    /// (recorded by tests/privnet_tor_replies.rs): the same forms as 0.4.9.11's, with the
    /// service side's AuthType `UNKNOWN` that tells an upload failure from a fetch failure.
    #[test]
    fn tor_0_4_8s_event_lines() {
        const O: &str = "p6rfagntig4542ejn6hsumtm2dze3375t3vyehuz3tpns2pmppoqorqd";
        for (line, action) in [
            ("CREATED {O} UNKNOWN UNKNOWN Q83rdSZhmiUFc80xbeXJxrvYZ529e5xBEIx6uvoBiL8", Action::Created),
            ("UPLOAD {O} UNKNOWN $E453F05D7F92CCA5EB1EC215637B89044C87A756~auth0 Q83rdSZhmiUFc80xbeXJxrvYZ529e5xBEIx6uvoBiL8 HSDIR_INDEX=F6B87F45B3AA4CEDC36D56BAD8760A0A59E53967CCEB8E00FE28D35557ADC281", Action::Upload),
            ("UPLOADED {O} UNKNOWN $4FE279624FC2F95FF7BDC12B48D95D1A0AF89C86~relay2", Action::Uploaded),
            ("REQUESTED {O} NO_AUTH $4FE279624FC2F95FF7BDC12B48D95D1A0AF89C86~relay2 UL312j6no1uTnvf6lgAvopIW5GC2PL7BW4DG3pA49x4 HSDIR_INDEX=264667628524B02B5D5A186472A0E7B53404EA316E7224E81DB2F6C897574E4B", Action::Requested),
            ("RECEIVED {O} NO_AUTH $4FE279624FC2F95FF7BDC12B48D95D1A0AF89C86~relay2 UL312j6no1uTnvf6lgAvopIW5GC2PL7BW4DG3pA49x4", Action::Received),
        ] {
            let line = format!("650 HS_DESC {}", line.replace("{O}", O));
            let e = ev(&line);
            assert_eq!(e.action, action, "{line}");
            assert_eq!(e.address.as_ref().map(|a| a.expose()), Some(O), "{line}");
        }
    }

    #[test]
    fn other_events_and_garbage_are_ignored() {
        let mut p = ReplyParser::default();
        p.feed(b"650 CIRC 1 BUILT\r\n650 HS_DESC\r\n250 OK\r\n")
            .unwrap();
        assert!(parse_hs_desc(&p.next_message().unwrap()).is_none());
        assert!(parse_hs_desc(&p.next_message().unwrap()).is_none());
        assert!(parse_hs_desc(&p.next_message().unwrap()).is_none());
    }
}
