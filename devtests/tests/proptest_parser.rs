//! Property tests of the sans-I/O control-protocol core: the reply parser never panics and never
//! holds more than its [`Limits`], well-formed replies survive any chunking, and the command
//! encoder can only ever produce one line of an allow-listed verb.

#[path = "../../tests/fixtures/read_only_verbs.rs"]
mod spec;

use proptest::prelude::*;
use securedrop_tor_exporter::control::command::{AuthSecret, Command, Keyword};
use securedrop_tor_exporter::control::reply::{
    Limits, Message, ParseError, ReplyLine, ReplyParser,
};
use securedrop_tor_exporter::control::OnionAddress;

// ---------------------------------------------------------------------------------------------
// Helpers

/// Integration tests have no lib.rs beside them for proptest's regression files; failures print
/// the minimal input instead.
fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Splits `input` at the given cut points (taken modulo the length, sorted, deduplicated).
fn chunks<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| if input.is_empty() { 0 } else { c % input.len() })
        .collect();
    points.push(0);
    points.push(input.len());
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| &input[w[0]..w[1]]).collect()
}

/// The bytes a message costs the parser, as the parser counts them: every line with its status
/// prefix and CRLF, data lines included. Never more than `limits.max_message`.
fn message_cost(m: &Message) -> usize {
    m.lines
        .iter()
        .map(|l| 4 + l.text.len() + 2 + l.data.as_ref().map_or(0, String::len))
        .sum()
}

/// What a consumer sees: every message, in order, plus the first error (after which nothing).
#[derive(Debug, PartialEq)]
struct Outcome {
    messages: Vec<Message>,
    error: Option<ParseError>,
}

/// Feeds `input` in the given chunks, draining after each feed, checking the bounds as it goes.
fn feed_checked(limits: Limits, input: &[u8], cuts: &[usize]) -> Result<Outcome, TestCaseError> {
    let mut p = ReplyParser::new(limits);
    let mut messages = Vec::new();
    let mut error = None;
    for chunk in chunks(input, cuts) {
        let r = p.feed(chunk);
        // Messages completed before an error in the same chunk are whole; drain them too.
        while let Some(m) = p.next_message() {
            messages.push(m);
        }
        if let Err(e) = r {
            error = Some(e);
            break;
        }
    }
    if let Some(e) = &error {
        // A failed stream stays failed (no resynchronisation on a broken stream) and yields
        // nothing more, whatever comes after.
        prop_assert_eq!(p.feed(b"250 OK\r\n"), Err(e.clone()));
        prop_assert!(p.next_message().is_none());
        prop_assert!(
            !p.in_message(),
            "a failed parser must have dropped its buffers"
        );
    }
    for m in &messages {
        prop_assert!(!m.lines.is_empty());
        prop_assert!(
            message_cost(m) <= limits.max_message,
            "message of {} bytes passed a limit of {}",
            message_cost(m),
            limits.max_message
        );
        prop_assert!(m.lines.len() <= limits.max_lines);
        let status = m.status();
        prop_assert!(status < 1000);
        for l in &m.lines {
            prop_assert_eq!(l.status, status, "mixed statuses inside one message");
            prop_assert!(!l.text.contains('\n'));
            // `NNN-` + text is one line, its terminator not counted (CRLF or a bare LF alike).
            prop_assert!(
                4 + l.text.len() <= limits.max_line,
                "a {}-byte line passed max_line {}",
                4 + l.text.len(),
                limits.max_line
            );
        }
    }
    Ok(Outcome { messages, error })
}

/// Bytes that look like the protocol often enough to reach deep parser states, mixed with noise.
fn protocolish_bytes(max_tokens: usize) -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..8),
        2 => Just(b"\r\n".to_vec()),
        1 => Just(b"\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        2 => Just(b"250-".to_vec()),
        2 => Just(b"250 ".to_vec()),
        2 => Just(b"250+".to_vec()),
        1 => Just(b"650 ".to_vec()),
        1 => Just(b"650-".to_vec()),
        1 => Just(b"552 ".to_vec()),
        2 => Just(b".\r\n".to_vec()),
        1 => Just(b"..".to_vec()),
        1 => Just(b"version=0.4.9.11".to_vec()),
        1 => Just("ü€".as_bytes().to_vec()),
        // Bare status digits, so that any byte (including a multi-byte character) can follow
        // where the separator belongs.
        1 => Just(b"250".to_vec()),
        1 => Just(b"650".to_vec()),
        1 => Just("é".as_bytes().to_vec()),
        1 => Just("Ӯ".as_bytes().to_vec()),
        1 => Just(vec![0xff, 0xfe]),
    ];
    proptest::collection::vec(token, 0..max_tokens).prop_map(|t| t.concat())
}

fn small_limits() -> impl Strategy<Value = Limits> {
    (1usize..96, 1usize..512, 1usize..16).prop_map(|(max_line, max_message, max_lines)| Limits {
        max_line,
        max_message,
        max_lines,
    })
}

// ---------------------------------------------------------------------------------------------
// Arbitrary input: no panic, bounded output, chunking-independent.

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_within_default_limits(
        input in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        feed_checked(Limits::default(), &input, &cuts)?;
    }

    #[test]
    fn protocolish_bytes_never_panic_and_stay_within_small_limits(
        input in protocolish_bytes(200),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
        limits in small_limits(),
    ) {
        feed_checked(limits, &input, &cuts)?;
    }

    /// Where the chunk boundaries fall never changes what comes out, or which error.
    #[test]
    fn chunking_never_changes_the_outcome(
        input in protocolish_bytes(120),
        cuts in proptest::collection::vec(any::<usize>(), 0..32),
    ) {
        let whole = feed_checked(Limits::default(), &input, &[])?;
        let split = feed_checked(Limits::default(), &input, &cuts)?;
        prop_assert_eq!(&split, &whole);
        // Byte by byte too.
        let every: Vec<usize> = (0..input.len()).collect();
        let bytewise = feed_checked(Limits::default(), &input, &every)?;
        prop_assert_eq!(bytewise, whole);
    }

    /// An endless line is refused as soon as it cannot fit, instead of growing the buffer.
    #[test]
    fn endless_line_is_refused_not_buffered(
        prefix in proptest::collection::vec("[a-z=]{0,20}", 0..4),
        junk in proptest::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 1..64),
        max_line in 1usize..200,
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let limits = Limits { max_line, ..Limits::default() };
        let mut p = ReplyParser::new(limits);
        // Some complete, valid lines first (each within the limit), so the endless line does not
        // necessarily start at offset 0.
        for text in &prefix {
            let line = format!("250-{text}\r\n");
            if line.len() - 2 <= max_line {
                p.feed(line.as_bytes()).unwrap();
            }
        }
        // Then an unterminated line, fed until well past the limit.
        let total = max_line * 3 + 8;
        let stream: Vec<u8> = junk.iter().copied().cycle().take(total).collect();
        let mut fed = 0usize;
        let mut refused_at = None;
        for chunk in chunks(&stream, &cuts) {
            let r = p.feed(chunk);
            fed += chunk.len();
            match r {
                Ok(()) => prop_assert!(
                    fed <= max_line + 2,
                    "{fed} bytes of one line buffered with max_line {max_line}"
                ),
                Err(e) => {
                    prop_assert_eq!(e, ParseError::LineTooLong(max_line));
                    refused_at = Some(fed);
                    break;
                }
            }
        }
        let refused_at = refused_at.expect("an endless line must be refused");
        // Never refused while the line could still be a legal one.
        prop_assert!(refused_at > max_line, "refused a line of {refused_at} ≤ {max_line} bytes");
    }

    /// A reply that never ends (valid mid lines, or a data block with no terminating `.`) is
    /// refused before it costs more than one message plus one line.
    #[test]
    fn endless_reply_is_refused_not_buffered(
        text in "[a-z0-9=]{0,40}",
        data_block in any::<bool>(),
        limits in small_limits(),
    ) {
        let limits = Limits { max_line: limits.max_line.max(48), ..limits };
        let mut p = ReplyParser::new(limits);
        let mut fed = 0usize;
        let opener = if data_block { "250+x=\r\n".to_string() } else { String::new() };
        let line = if data_block { format!("{text}\r\n") } else { format!("250-{text}\r\n") };
        let mut result = p.feed(opener.as_bytes());
        fed += opener.len();
        let budget = limits.max_message + limits.max_line + 2;
        while result.is_ok() && fed <= budget + line.len() {
            result = p.feed(line.as_bytes());
            fed += line.len();
        }
        let err = result.expect_err("an endless reply must be refused");
        prop_assert!(fed <= budget + line.len(), "{fed} bytes accepted, budget {budget}");
        prop_assert!(
            matches!(err, ParseError::MessageTooLarge(_) | ParseError::TooManyLines(_)),
            "unexpected error {err:?}"
        );
        prop_assert!(p.next_message().is_none());
    }
}

// ---------------------------------------------------------------------------------------------
// Round trip: well-formed replies parse back to what was sent, whatever the chunking.

#[derive(Debug, Clone)]
enum GenLine {
    Mid(String),
    /// `NNN+text` followed by data lines (before dot-stuffing).
    Data(String, Vec<String>),
}

#[derive(Debug, Clone)]
struct GenMessage {
    status: u16,
    lines: Vec<GenLine>,
    end: String,
}

impl GenMessage {
    fn encode(&self, out: &mut Vec<u8>) {
        for l in &self.lines {
            match l {
                GenLine::Mid(t) => {
                    out.extend_from_slice(format!("{}-{t}\r\n", self.status).as_bytes())
                }
                GenLine::Data(t, data) => {
                    out.extend_from_slice(format!("{}+{t}\r\n", self.status).as_bytes());
                    for d in data {
                        if d.starts_with('.') {
                            out.push(b'.');
                        }
                        out.extend_from_slice(d.as_bytes());
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(b".\r\n");
                }
            }
        }
        out.extend_from_slice(format!("{} {}\r\n", self.status, self.end).as_bytes());
    }

    fn expected(&self) -> Message {
        let mut lines: Vec<ReplyLine> = self
            .lines
            .iter()
            .map(|l| match l {
                GenLine::Mid(t) => ReplyLine {
                    status: self.status,
                    text: t.clone(),
                    data: None,
                },
                GenLine::Data(t, d) => ReplyLine {
                    status: self.status,
                    text: t.clone(),
                    data: Some(d.join("\n")),
                },
            })
            .collect();
        lines.push(ReplyLine {
            status: self.status,
            text: self.end.clone(),
            data: None,
        });
        Message { lines }
    }
}

/// Line text: anything but CR and LF, including non-ASCII and leading dots.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[^\r\n]{0,40}",
        2 => "[a-z/-]{1,20}=[A-Za-z0-9 .\"]{0,30}",
        1 => "\\.{1,3}[^\r\n]{0,5}",
    ]
}

/// Data lines, including `.`, `..`, lines starting with dots and empty lines.
fn data_lines() -> impl Strategy<Value = Vec<String>> {
    let line = prop_oneof![
        3 => "[^\r\n]{0,40}",
        1 => Just(String::new()),
        1 => Just(".".to_string()),
        1 => Just("..".to_string()),
        1 => "\\.[^\r\n]{0,10}",
    ];
    proptest::collection::vec(line, 0..8)
}

fn message() -> impl Strategy<Value = GenMessage> {
    let gen_line = prop_oneof![
        3 => text().prop_map(GenLine::Mid),
        1 => (text(), data_lines()).prop_map(|(t, d)| GenLine::Data(t, d)),
    ];
    (
        prop_oneof![3 => Just(250u16), 2 => 200u16..600, 2 => 600u16..700],
        proptest::collection::vec(gen_line, 0..6),
        text(),
    )
        .prop_map(|(status, lines, end)| GenMessage { status, lines, end })
}

fn round_trip(msgs: &[GenMessage], cuts: &[usize]) -> Result<(), TestCaseError> {
    let mut wire = Vec::new();
    for m in msgs {
        m.encode(&mut wire);
    }
    let expected: Vec<Message> = msgs.iter().map(GenMessage::expected).collect();
    let out = feed_checked(Limits::default(), &wire, cuts)?;
    prop_assert_eq!(out.error, None);
    prop_assert_eq!(&out.messages, &expected);
    for (m, g) in out.messages.iter().zip(msgs) {
        prop_assert_eq!(m.is_event(), (600..700).contains(&g.status));
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(512))]

    /// Replies and events (mid lines, data blocks with dot-stuffing), back to back, split anywhere.
    #[test]
    fn well_formed_replies_round_trip(
        msgs in proptest::collection::vec(message(), 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..24),
    ) {
        round_trip(&msgs, &cuts)?;
    }
}

/// Regression: the parser once dropped empty lines at the start of a data block (found by the
/// round-trip property).
#[test]
fn data_block_starting_with_a_blank_line() {
    let mut p = ReplyParser::default();
    p.feed(b"250+x=\r\n\r\nsecond\r\n.\r\n250 OK\r\n").unwrap();
    let m = p.next_message().unwrap();
    assert_eq!(m.lines[0].data.as_deref(), Some("\nsecond"));
}

/// Found by the fuzzer: a multi-byte character right after the status code is garbage, not a
/// panic (slicing the text at byte 4 would split the character).
#[test]
fn status_followed_by_a_multibyte_char() {
    for input in ["250é\r\n", "650Ӯ OK\r\n", "250-a\r\n250€\r\n"] {
        let mut p = ReplyParser::default();
        assert_eq!(
            p.feed(input.as_bytes()),
            Err(ParseError::BadLine),
            "{input:?}"
        );
    }
}

/// The line limit counts the line without its terminator, whichever terminator the peer uses.
#[test]
fn lf_only_line_limit() {
    let limits = Limits {
        max_line: 8,
        ..Limits::default()
    };
    // 8 bytes: fine with either terminator.
    let mut p = ReplyParser::new(limits);
    p.feed(b"250 abcd\n").unwrap();
    let mut p = ReplyParser::new(limits);
    p.feed(b"250 abcd\r\n").unwrap();
    // 9 bytes: refused with CRLF …
    let mut p = ReplyParser::new(limits);
    assert_eq!(p.feed(b"250 abcde\r\n"), Err(ParseError::LineTooLong(8)));
    // … and must be refused with a bare LF too.
    let mut p = ReplyParser::new(limits);
    assert_eq!(p.feed(b"250 abcde\n"), Err(ParseError::LineTooLong(8)));
}

// ---------------------------------------------------------------------------------------------
// Commands: keywords cannot carry whitespace, every command is one line of an allowed verb.

/// Decodes one control-spec QuotedString at the start of `s`; returns it and the rest.
fn unquote(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 2..])),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    '0'..='7' => {
                        let (_, b) = chars.next()?;
                        let (_, c) = chars.next()?;
                        let v = u32::from_str_radix(&format!("{e}{b}{c}"), 8).ok()?;
                        out.push(char::from_u32(v)?);
                    }
                    other => out.push(other),
                }
            }
            '\r' | '\n' => return None,
            c => out.push(c),
        }
    }
    None
}

fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>(),
        2 => "[A-Za-z0-9/._ \t\r\n\0-]{0,140}",
        1 => "[A-Za-z0-9/._-]{1,130}",
        1 => "[A-Za-z0-9/._-]{0,10}(\r\n|\n|\r| |\t)[A-Z ]{0,20}",
    ]
}

fn keyword() -> impl Strategy<Value = Keyword> {
    "[A-Za-z0-9/._-]{1,128}"
        .prop_map(|s| Keyword::new(s).expect("generated from the keyword alphabet"))
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::ProtocolInfo),
        any::<[u8; 32]>().prop_map(|client_nonce| Command::AuthChallenge { client_nonce }),
        Just(Command::Authenticate(AuthSecret::None)),
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| Command::Authenticate(AuthSecret::Hex(b))),
        any_string().prop_map(|p| Command::Authenticate(AuthSecret::Password(p))),
        proptest::collection::vec(keyword(), 1..8).prop_map(Command::GetInfo),
        proptest::collection::vec(keyword(), 1..8).prop_map(Command::GetConf),
        proptest::collection::vec(keyword(), 0..8).prop_map(Command::SetEvents),
        "[a-z2-7]{56}".prop_map(|a| Command::HsFetch(OnionAddress::new(&a).unwrap())),
        // Through the validating constructors, from arbitrary strings: only valid ones survive
        // (an invalid one falls back to a plain PROTOCOLINFO rather than being rejected).
        proptest::collection::vec(any_string(), 0..4)
            .prop_map(|k| Command::get_info(k).unwrap_or(Command::ProtocolInfo)),
        proptest::collection::vec(any_string(), 0..4)
            .prop_map(|k| Command::set_events(k).unwrap_or(Command::ProtocolInfo)),
        prop_oneof![
            any_string(),
            "[ \t]?[a-z2-7]{56}(\\.onion)?[ \r\n]?",
            "[a-z2-7A-Z01]{55,57}"
        ]
        .prop_map(|a| OnionAddress::new(&a).map_or(Command::ProtocolInfo, Command::HsFetch)),
    ]
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn keywords_never_carry_whitespace_or_line_breaks(s in any_string()) {
        match Keyword::new(s.clone()) {
            Err(_) => {}
            Ok(k) => {
                let k = k.as_str();
                prop_assert_eq!(k, s.as_str());
                prop_assert!(!k.is_empty() && k.len() <= 128);
                prop_assert!(!k.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"'));
                prop_assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b)));
            }
        }
    }

    #[test]
    fn onion_addresses_are_exactly_56_base32_chars(s in any_string()) {
        if let Ok(a) = OnionAddress::new(&s) {
            let a = a.expose();
            prop_assert_eq!(a.len(), 56);
            prop_assert!(a.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
        }
    }

    #[test]
    fn every_command_is_one_line_of_an_allowed_verb(cmd in command()) {
        let wire = String::from_utf8(cmd.encode()).expect("commands are UTF-8");
        prop_assert!(wire.ends_with("\r\n"));
        let body = &wire[..wire.len() - 2];
        prop_assert!(!body.contains('\r') && !body.contains('\n'), "embedded line break in {:?}", cmd);
        prop_assert!(!body.contains('\0'));
        let mut words = body.splitn(2, ' ');
        let verb = words.next().unwrap();
        prop_assert!(spec::READ_ONLY_VERBS.contains(&verb), "verb {verb} is not read-only by the spec");
        prop_assert_eq!(verb, cmd.verb());
        let rest = words.next().unwrap_or("");
        match &cmd {
            Command::GetInfo(keys) | Command::GetConf(keys) | Command::SetEvents(keys) => {
                let sent: Vec<&str> = if rest.is_empty() { vec![] } else { rest.split(' ').collect() };
                let want: Vec<&str> = keys.iter().map(Keyword::as_str).collect();
                prop_assert_eq!(sent, want);
            }
            Command::Authenticate(AuthSecret::Password(p)) => {
                let (decoded, tail) = unquote(rest).expect("a password is one QuotedString");
                prop_assert_eq!(&decoded, p);
                prop_assert_eq!(tail, "");
            }
            Command::Authenticate(AuthSecret::Hex(b)) => {
                prop_assert!(rest.is_empty() == b.is_empty());
                prop_assert_eq!(data_encoding::HEXLOWER_PERMISSIVE.decode(rest.as_bytes()).unwrap(), b.clone());
            }
            Command::Authenticate(AuthSecret::None) => prop_assert_eq!(rest, ""),
            Command::ProtocolInfo => prop_assert_eq!(rest, "1"),
            Command::AuthChallenge { client_nonce } => {
                prop_assert_eq!(rest.to_string(), format!("SAFECOOKIE {}", data_encoding::HEXUPPER.encode(client_nonce)));
            }
            Command::HsFetch(a) => prop_assert_eq!(rest, a.expose()),
        }
    }
}
