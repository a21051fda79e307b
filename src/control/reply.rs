//! Sans-I/O parser for tor's control-port replies and asynchronous events.
//!
//! Bytes go in with [`ReplyParser::feed`]; complete [`Message`]s come out of
//! [`ReplyParser::next_message`]. No sockets, no clocks: the same code runs under the tokio shell,
//! the property tests and the fuzzer. Every buffer is bounded so a hostile or broken peer (an
//! endless line, a reply that never ends) costs at most [`Limits`] bytes, never unbounded memory.
//! After an error the stream cannot be resynchronised (a reply boundary is unknowable), so the
//! parser stays failed and the caller drops the connection.

use std::collections::VecDeque;

/// Bounds on what a peer can make us hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest line, CRLF excluded. tor's longest single lines (descriptor data) are < 1 KiB.
    pub max_line: usize,
    /// Largest whole message (all lines and data). A v3 descriptor is ≈ 14 KB.
    pub max_message: usize,
    /// Most lines in one message.
    pub max_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 16 * 1024,
            max_message: 256 * 1024,
            max_lines: 4096,
        }
    }
}

/// One line of a reply: `250-key=value`, `250 OK`, or a `250+key=` line with its data block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    pub status: u16,
    /// The text after the status code and separator.
    pub text: String,
    /// For `+` lines, the dot-unstuffed data lines joined with `\n`.
    pub data: Option<String>,
}

/// A complete reply or event: one or more lines, the last one ending with `NNN `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub lines: Vec<ReplyLine>,
}

impl Message {
    /// The status of the final line, which is the status of the whole message.
    pub fn status(&self) -> u16 {
        self.lines.last().map_or(0, |l| l.status)
    }

    /// 2xx: the command succeeded.
    pub fn is_ok(&self) -> bool {
        (200..300).contains(&self.status())
    }

    /// 6xx: an asynchronous event, never the answer to a command.
    pub fn is_event(&self) -> bool {
        (600..700).contains(&self.status())
    }

    /// The final line's text, e.g. `OK` or `Unrecognized key "x"`.
    pub fn end_text(&self) -> &str {
        self.lines.last().map_or("", |l| l.text.as_str())
    }
}

/// Why the byte stream is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("control line longer than {0} bytes")]
    LineTooLong(usize),
    #[error("control reply larger than {0} bytes")]
    MessageTooLarge(usize),
    #[error("control reply with more than {0} lines")]
    TooManyLines(usize),
    #[error("malformed control line (expected a 3-digit status and one of '-', ' ', '+')")]
    BadLine,
    #[error("control line is not valid UTF-8")]
    NotUtf8,
    #[error("status code changed within one reply ({0} then {1})")]
    MixedStatus(u16, u16),
}

#[derive(Debug, Default)]
struct Pending {
    lines: Vec<ReplyLine>,
    size: usize,
    /// Collecting a `+` data block for the last line.
    data: Option<String>,
}

/// Incremental parser; see the module doc.
#[derive(Debug)]
pub struct ReplyParser {
    limits: Limits,
    buf: Vec<u8>,
    pending: Pending,
    ready: VecDeque<Message>,
    failed: Option<ParseError>,
}

impl Default for ReplyParser {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl ReplyParser {
    pub fn new(limits: Limits) -> Self {
        ReplyParser {
            limits,
            buf: Vec::new(),
            pending: Pending::default(),
            ready: VecDeque::new(),
            failed: None,
        }
    }

    /// Adds bytes read from the peer. Parsing happens here, so memory stays bounded whatever is fed.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), ParseError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let (head, tail) = rest.split_at(i + 1);
                    rest = tail;
                    if self.buf.len() + head.len() > self.limits.max_line + 2 {
                        return self.fail(ParseError::LineTooLong(self.limits.max_line));
                    }
                    self.buf.extend_from_slice(head);
                    let mut line = std::mem::take(&mut self.buf);
                    line.pop(); // \n
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    // The limit is on the line itself, whichever terminator the peer used.
                    if line.len() > self.limits.max_line {
                        return self.fail(ParseError::LineTooLong(self.limits.max_line));
                    }
                    if let Err(e) = self.take_line(&line) {
                        return self.fail(e);
                    }
                }
                None => {
                    if self.buf.len() + rest.len() > self.limits.max_line + 1 {
                        return self.fail(ParseError::LineTooLong(self.limits.max_line));
                    }
                    self.buf.extend_from_slice(rest);
                    rest = &[];
                }
            }
        }
        Ok(())
    }

    /// The next complete message, in arrival order.
    pub fn next_message(&mut self) -> Option<Message> {
        self.ready.pop_front()
    }

    /// True while bytes of an unfinished message are held (EOF now means a truncated reply).
    pub fn in_message(&self) -> bool {
        !self.buf.is_empty() || !self.pending.lines.is_empty()
    }

    fn fail(&mut self, e: ParseError) -> Result<(), ParseError> {
        self.buf = Vec::new();
        self.pending = Pending::default();
        self.failed = Some(e.clone());
        Err(e)
    }

    fn take_line(&mut self, raw: &[u8]) -> Result<(), ParseError> {
        let line = std::str::from_utf8(raw).map_err(|_| ParseError::NotUtf8)?;
        self.pending.size += line.len() + 2;
        if self.pending.size > self.limits.max_message {
            return Err(ParseError::MessageTooLarge(self.limits.max_message));
        }
        if let Some(data) = self.pending.data.as_mut() {
            if line == "." {
                let mut data = self.pending.data.take().unwrap_or_default();
                // Every data line was stored with a '\n' after it; the block has none at its end.
                data.pop();
                if let Some(last) = self.pending.lines.last_mut() {
                    last.data = Some(data);
                }
            } else {
                let unstuffed = line.strip_prefix('.').unwrap_or(line);
                data.push_str(unstuffed);
                data.push('\n');
            }
            return Ok(());
        }
        let b = line.as_bytes();
        if b.len() < 4 || !b[..3].iter().all(u8::is_ascii_digit) {
            return Err(ParseError::BadLine);
        }
        let status =
            u16::from(b[0] - b'0') * 100 + u16::from(b[1] - b'0') * 10 + u16::from(b[2] - b'0');
        if let Some(first) = self.pending.lines.first() {
            if first.status != status {
                return Err(ParseError::MixedStatus(first.status, status));
            }
        }
        if self.pending.lines.len() >= self.limits.max_lines {
            return Err(ParseError::TooManyLines(self.limits.max_lines));
        }
        // Checked before slicing: after an ASCII separator, byte 4 is a char boundary.
        if !matches!(b[3], b'-' | b'+' | b' ') {
            return Err(ParseError::BadLine);
        }
        let text = line[4..].to_owned();
        match b[3] {
            b'-' => self.pending.lines.push(ReplyLine {
                status,
                text,
                data: None,
            }),
            b'+' => {
                self.pending.lines.push(ReplyLine {
                    status,
                    text,
                    data: None,
                });
                self.pending.data = Some(String::new());
            }
            b' ' => {
                self.pending.lines.push(ReplyLine {
                    status,
                    text,
                    data: None,
                });
                let done = std::mem::take(&mut self.pending);
                self.ready.push_back(Message { lines: done.lines });
            }
            _ => return Err(ParseError::BadLine),
        }
        Ok(())
    }
}

/// The first message in `s` (unit tests of the modules that read replies).
#[cfg(test)]
pub(crate) fn parse_one(s: &str) -> Message {
    let mut p = ReplyParser::default();
    p.feed(s.as_bytes()).expect("well-formed test input");
    p.next_message().expect("a complete message")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Message>, ParseError> {
        let mut p = ReplyParser::default();
        p.feed(input)?;
        Ok(std::iter::from_fn(|| p.next_message()).collect())
    }

    #[test]
    fn single_line_ok() {
        let m = parse_all(b"250 OK\r\n").unwrap();
        assert_eq!(m.len(), 1);
        assert!(m[0].is_ok());
        assert_eq!(m[0].end_text(), "OK");
    }

    #[test]
    fn protocolinfo_reply_from_control_spec() {
        let m = parse_all(
            b"250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE=\"/run/tor/control.authcookie\"\r\n250-VERSION Tor=\"0.4.9.11\"\r\n250 OK\r\n",
        )
        .unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].lines.len(), 4);
        assert_eq!(
            m[0].lines[1].text,
            "AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE=\"/run/tor/control.authcookie\""
        );
    }

    #[test]
    fn data_reply_is_dot_unstuffed() {
        let m = parse_all(
            b"250+hs/service/desc/id/x=\r\nhs-descriptor 3\r\n..starts with dot\r\n.\r\n250 OK\r\n",
        )
        .unwrap();
        assert_eq!(
            m[0].lines[0].data.as_deref(),
            Some("hs-descriptor 3\n.starts with dot")
        );
        assert_eq!(m[0].lines[1].text, "OK");
    }

    #[test]
    fn event_between_replies_is_its_own_message() {
        let m =
            parse_all(b"650 HS_DESC UPLOAD x UNKNOWN $A~b\r\n250-version=0.4.9.11\r\n250 OK\r\n")
                .unwrap();
        assert_eq!(m.len(), 2);
        assert!(m[0].is_event());
        assert!(m[1].is_ok());
    }

    #[test]
    fn bytes_split_anywhere_give_the_same_messages() {
        let input =
            b"250-version=0.4.9.11\r\n250+x=\r\na\r\n.\r\n250 OK\r\n650 STATUS_CLIENT NOTICE X\r\n";
        let whole = parse_all(input).unwrap();
        for split in 0..input.len() {
            let mut p = ReplyParser::default();
            p.feed(&input[..split]).unwrap();
            p.feed(&input[split..]).unwrap();
            let got: Vec<_> = std::iter::from_fn(|| p.next_message()).collect();
            assert_eq!(got, whole, "split at {split}");
        }
    }

    #[test]
    fn error_reply() {
        let m = parse_all(b"552 Unrecognized key \"nope\"\r\n").unwrap();
        assert_eq!(m[0].status(), 552);
        assert!(!m[0].is_ok());
    }

    #[test]
    fn endless_line_is_refused_with_bounded_memory() {
        let mut p = ReplyParser::new(Limits {
            max_line: 64,
            ..Limits::default()
        });
        let mut err = None;
        for _ in 0..100 {
            if let Err(e) = p.feed(&[b'a'; 10]) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(ParseError::LineTooLong(64)));
        // Stays failed: a broken stream cannot be resynchronised.
        assert!(p.feed(b"250 OK\r\n").is_err());
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(parse_all(b"hello\r\n"), Err(ParseError::BadLine));
        assert_eq!(parse_all(b"25x OK\r\n"), Err(ParseError::BadLine));
        assert_eq!(parse_all(b"250*OK\r\n"), Err(ParseError::BadLine));
        assert_eq!(
            parse_all(b"250-a\r\n251 OK\r\n"),
            Err(ParseError::MixedStatus(250, 251))
        );
        assert_eq!(parse_all(b"250 \xff\r\n"), Err(ParseError::NotUtf8));
    }

    #[test]
    fn too_large_message_is_refused() {
        let mut p = ReplyParser::new(Limits {
            max_message: 100,
            ..Limits::default()
        });
        let mut r = Ok(());
        for _ in 0..20 {
            r = p.feed(b"250-0123456789\r\n");
            if r.is_err() {
                break;
            }
        }
        assert_eq!(r, Err(ParseError::MessageTooLarge(100)));
    }

    #[test]
    fn in_message_tracks_truncation() {
        let mut p = ReplyParser::default();
        p.feed(b"250-a=1\r\n").unwrap();
        assert!(p.in_message());
        p.feed(b"250 OK\r\n").unwrap();
        assert!(!p.in_message());
    }
}
