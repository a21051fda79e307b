//! The commands the exporter may send to tor, and their wire encoding.
//!
//! The exporter only ever reads from tor. This enum is the allow-list: it has no variant for
//! SETCONF, SIGNAL, ADD_ONION or any other command that changes tor, and [`Command::encode`] is the
//! only way bytes reach the control socket (the client's writer takes a `&Command`, never a
//! string). Arguments are validated so that a key containing a space or CRLF cannot smuggle a
//! second command onto the line.

use std::fmt::Write as _;

use super::address::OnionAddress;

/// A read-only control command.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    /// `PROTOCOLINFO 1`: which authentication methods tor offers.
    ProtocolInfo,
    /// `AUTHCHALLENGE SAFECOOKIE <client nonce>`.
    AuthChallenge { client_nonce: [u8; 32] },
    /// `AUTHENTICATE` with nothing, a hex secret (cookie or SAFECOOKIE client hash) or a password.
    Authenticate(AuthSecret),
    /// `GETINFO key…`: one round trip for many keys.
    GetInfo(Vec<Keyword>),
    /// `GETCONF key…`.
    GetConf(Vec<Keyword>),
    /// `SETEVENTS name…`: subscribes this connection only; changes nothing in tor's config.
    SetEvents(Vec<Keyword>),
    /// `HSFETCH <onion56>`: asks tor to fetch a descriptor, as any client could.
    HsFetch(OnionAddress),
}

/// A secret sent with AUTHENTICATE. Its Debug output never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthSecret {
    None,
    Hex(Vec<u8>),
    Password(String),
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets or onion addresses.
        f.write_str(self.verb())
    }
}

/// A GETINFO/GETCONF key or event name: `[A-Za-z0-9/._-]`, 1..=128 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Keyword(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentError {
    #[error("control keyword must be 1..=128 characters of [A-Za-z0-9/._-]")]
    BadKeyword,
    #[error("{0} needs at least one argument")]
    Empty(&'static str),
}

impl Keyword {
    pub fn new(s: impl Into<String>) -> Result<Self, ArgumentError> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'));
        if ok {
            Ok(Keyword(s))
        } else {
            Err(ArgumentError::BadKeyword)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Every verb [`Command`] can produce. Used by tests and documentation.
pub const ALLOWED_VERBS: &[&str] = &[
    "PROTOCOLINFO",
    "AUTHCHALLENGE",
    "AUTHENTICATE",
    "GETINFO",
    "GETCONF",
    "SETEVENTS",
    "HSFETCH",
];

fn keywords<I, S>(items: I) -> Result<Vec<Keyword>, ArgumentError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Keyword::new).collect()
}

impl Command {
    pub fn get_info<I: IntoIterator<Item = S>, S: Into<String>>(
        keys: I,
    ) -> Result<Self, ArgumentError> {
        let keys = keywords(keys)?;
        if keys.is_empty() {
            return Err(ArgumentError::Empty("GETINFO"));
        }
        Ok(Command::GetInfo(keys))
    }

    pub fn get_conf<I: IntoIterator<Item = S>, S: Into<String>>(
        keys: I,
    ) -> Result<Self, ArgumentError> {
        let keys = keywords(keys)?;
        if keys.is_empty() {
            return Err(ArgumentError::Empty("GETCONF"));
        }
        Ok(Command::GetConf(keys))
    }

    /// An empty list is allowed: it unsubscribes from every event.
    pub fn set_events<I: IntoIterator<Item = S>, S: Into<String>>(
        names: I,
    ) -> Result<Self, ArgumentError> {
        Ok(Command::SetEvents(keywords(names)?))
    }

    /// The command's first word on the wire.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::ProtocolInfo => "PROTOCOLINFO",
            Command::AuthChallenge { .. } => "AUTHCHALLENGE",
            Command::Authenticate(_) => "AUTHENTICATE",
            Command::GetInfo(_) => "GETINFO",
            Command::GetConf(_) => "GETCONF",
            Command::SetEvents(_) => "SETEVENTS",
            Command::HsFetch(_) => "HSFETCH",
        }
    }

    /// The exact bytes to write, CRLF included. One line, always.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = String::from(self.verb());
        match self {
            Command::ProtocolInfo => s.push_str(" 1"),
            Command::AuthChallenge { client_nonce } => {
                s.push_str(" SAFECOOKIE ");
                s.push_str(&data_encoding::HEXUPPER.encode(client_nonce));
            }
            Command::Authenticate(AuthSecret::None) => {}
            Command::Authenticate(AuthSecret::Hex(bytes)) => {
                s.push(' ');
                s.push_str(&data_encoding::HEXUPPER.encode(bytes));
            }
            Command::Authenticate(AuthSecret::Password(p)) => {
                s.push(' ');
                push_quoted(&mut s, p);
            }
            Command::GetInfo(keys) | Command::GetConf(keys) | Command::SetEvents(keys) => {
                for k in keys {
                    s.push(' ');
                    s.push_str(k.as_str());
                }
            }
            Command::HsFetch(addr) => {
                s.push(' ');
                s.push_str(addr.expose());
            }
        }
        s.push_str("\r\n");
        s.into_bytes()
    }
}

/// A control-spec QuotedString: backslash-escapes `"`, `\` and control characters.
fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_variant() -> Vec<Command> {
        vec![
            Command::ProtocolInfo,
            Command::AuthChallenge {
                client_nonce: [0xab; 32],
            },
            Command::Authenticate(AuthSecret::None),
            Command::Authenticate(AuthSecret::Hex(vec![1, 2, 255])),
            Command::Authenticate(AuthSecret::Password("p\"a\\s\r\ns".into())),
            Command::get_info(["version", "traffic/read"]).unwrap(),
            Command::get_conf(["HiddenServiceOptions"]).unwrap(),
            Command::set_events(["HS_DESC"]).unwrap(),
            Command::set_events(Vec::<String>::new()).unwrap(),
            Command::HsFetch(OnionAddress::new(&"a".repeat(56)).unwrap()),
        ]
    }

    #[test]
    fn every_encoded_command_is_one_line_of_an_allowed_verb() {
        for cmd in every_variant() {
            let wire = String::from_utf8(cmd.encode()).unwrap();
            assert!(wire.ends_with("\r\n"), "{wire:?}");
            let body = &wire[..wire.len() - 2];
            assert!(
                !body.contains('\r') && !body.contains('\n'),
                "{wire:?} has an embedded line break"
            );
            let verb = body.split(' ').next().unwrap();
            assert!(ALLOWED_VERBS.contains(&verb), "{verb} is not allowed");
        }
    }

    #[test]
    fn encodings_match_the_control_spec() {
        assert_eq!(Command::ProtocolInfo.encode(), b"PROTOCOLINFO 1\r\n");
        assert_eq!(
            Command::get_info(["version", "uptime"]).unwrap().encode(),
            b"GETINFO version uptime\r\n"
        );
        assert_eq!(
            Command::Authenticate(AuthSecret::None).encode(),
            b"AUTHENTICATE\r\n"
        );
        assert_eq!(
            Command::Authenticate(AuthSecret::Hex(vec![0xde, 0xad])).encode(),
            b"AUTHENTICATE DEAD\r\n"
        );
        assert_eq!(
            Command::Authenticate(AuthSecret::Password("a\"b\\c\nd".into())).encode(),
            b"AUTHENTICATE \"a\\\"b\\\\c\\nd\"\r\n"
        );
        assert_eq!(
            Command::AuthChallenge {
                client_nonce: [0; 32]
            }
            .encode(),
            format!("AUTHCHALLENGE SAFECOOKIE {}\r\n", "00".repeat(32)).into_bytes()
        );
        assert_eq!(
            Command::set_events(["HS_DESC"]).unwrap().encode(),
            b"SETEVENTS HS_DESC\r\n"
        );
    }

    #[test]
    fn injection_through_arguments_is_refused() {
        for bad in [
            "version\r\nSIGNAL SHUTDOWN",
            "a b",
            "",
            "x\0",
            "ünïcode",
            &"a".repeat(129),
        ] {
            assert_eq!(Keyword::new(bad), Err(ArgumentError::BadKeyword), "{bad:?}");
        }
        assert!(Command::get_info(Vec::<String>::new()).is_err());
        assert!(OnionAddress::new(&format!("{}\r\nSIGNAL HALT", "a".repeat(56))).is_err());
        assert!(OnionAddress::new(&"A".repeat(56)).is_err());
        assert!(OnionAddress::new(&"a".repeat(55)).is_err());
        assert!(OnionAddress::new(&format!("{}.onion", "b".repeat(56))).is_ok());
    }

    #[test]
    fn debug_output_hides_secrets_and_addresses() {
        let pw = Command::Authenticate(AuthSecret::Password("hunter2".into()));
        assert_eq!(format!("{pw:?}"), "AUTHENTICATE");
        let addr = "c".repeat(56);
        let f = Command::HsFetch(OnionAddress::new(&addr).unwrap());
        assert!(!format!("{f:?}").contains(&addr));
    }
}
