//! A minimal synchronous tor control-port client for the test harness.
//!
//! Deliberately independent of the exporter's own control client (src/control/), so a bug there
//! cannot hide behind the harness. Unix socket only, COOKIE authentication, blocking reads with a
//! timeout. It may send any command (the read-only allow-list is the exporter's rule, not the
//! harness's). The cookie is never printed.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::poll;

/// Upper bound on one reply line, so a confused peer cannot make the harness eat memory.
const MAX_LINE: usize = 1 << 20;
/// Upper bound on the lines of one reply.
const MAX_REPLY_LINES: usize = 100_000;

/// One complete reply (or asynchronous event) from tor.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code of the final line, e.g. 250, 552, 650.
    pub code: u16,
    /// The text of each line after the `XYZ-`/`XYZ `/`XYZ+` prefix; the body of a data reply
    /// (`XYZ+key=` … `.`) is appended to its line, joined with `\n`, dot-unstuffed.
    pub lines: Vec<String>,
}

impl Reply {
    pub fn is_ok(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.lines.join(" | "))
    }
}

/// A control connection that has authenticated.
pub struct Control {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// Asynchronous events read while waiting for a command's reply.
    pending_events: VecDeque<Reply>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Control {
    /// Connects to a control socket and authenticates with the cookie file (COOKIE method).
    /// `timeout` applies to every read and write.
    pub fn connect(socket: &Path, cookie_file: &Path, timeout: Duration) -> io::Result<Control> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let writer = stream.try_clone()?;
        let mut control = Control {
            reader: BufReader::new(stream),
            writer,
            pending_events: VecDeque::new(),
        };
        let cookie = std::fs::read(cookie_file)?;
        if cookie.len() != 32 {
            return Err(invalid(format!(
                "cookie file {} has {} bytes, expected 32",
                cookie_file.display(),
                cookie.len()
            )));
        }
        let mut hex = String::with_capacity(64);
        for b in &cookie {
            hex.push_str(&format!("{b:02X}"));
        }
        // Write directly rather than through `command`, so the cookie can never end up in an
        // error message that quotes the command.
        control
            .writer
            .write_all(format!("AUTHENTICATE {hex}\r\n").as_bytes())?;
        let reply = control.read_reply_skipping_events()?;
        if reply.code != 250 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("AUTHENTICATE refused: {}", reply.code),
            ));
        }
        Ok(control)
    }

    /// Sends one command line (without CRLF) and returns its reply. Events that arrive
    /// meanwhile are queued for `next_event`.
    pub fn command(&mut self, line: &str) -> io::Result<Reply> {
        if line.contains('\r') || line.contains('\n') {
            return Err(invalid("command contains a line break".into()));
        }
        self.writer.write_all(format!("{line}\r\n").as_bytes())?;
        self.read_reply_skipping_events()
    }

    /// Sends a command and fails unless tor answers 2xx.
    pub fn command_ok(&mut self, line: &str) -> io::Result<Reply> {
        let reply = self.command(line)?;
        if reply.is_ok() {
            Ok(reply)
        } else {
            let verb = line.split_whitespace().next().unwrap_or("");
            Err(io::Error::other(format!("{verb}: {reply}")))
        }
    }

    /// `GETINFO key` → the value (the text after `key=`; a data reply's body joined with `\n`).
    pub fn getinfo(&mut self, key: &str) -> io::Result<String> {
        let reply = self.command_ok(&format!("GETINFO {key}"))?;
        let prefix = format!("{key}=");
        for line in &reply.lines {
            if let Some(v) = line.strip_prefix(&prefix) {
                return Ok(v.to_string());
            }
        }
        Err(invalid(format!("GETINFO {key}: no value in reply {reply}")))
    }

    /// Subscribes to the given events (replacing any earlier subscription).
    pub fn setevents(&mut self, events: &[&str]) -> io::Result<()> {
        self.command_ok(&format!("SETEVENTS {}", events.join(" ")))
            .map(|_| ())
    }

    /// Waits up to `timeout` for the next asynchronous event. `Ok(None)` on timeout;
    /// an error (e.g. `UnexpectedEof`) when the connection is gone.
    pub fn next_event(&mut self, timeout: Duration) -> io::Result<Option<Reply>> {
        if let Some(ev) = self.pending_events.pop_front() {
            return Ok(Some(ev));
        }
        // The short timeout only governs the wait for an event's first byte: `fill_buf` takes
        // nothing out of the reader, so a timeout loses nothing. Once a byte is there the whole
        // reply is read under the connection's own timeout; a timeout in the middle of a line
        // would drop the part already read and leave the next read mid-reply.
        if self.reader.buffer().is_empty() {
            let old = self.reader.get_ref().read_timeout()?;
            self.reader.get_ref().set_read_timeout(Some(timeout))?;
            let waited = self.reader.fill_buf().map(|b| b.is_empty());
            self.reader.get_ref().set_read_timeout(old)?;
            match waited {
                Ok(false) => {}
                Ok(true) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "control connection closed",
                    ));
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        let result = self.read_reply().map(Some);
        match result {
            Ok(Some(r)) if r.code / 100 != 6 => Err(invalid(format!(
                "unexpected synchronous reply while waiting for events: {r}"
            ))),
            other => other,
        }
    }

    fn read_reply_skipping_events(&mut self) -> io::Result<Reply> {
        loop {
            let reply = self.read_reply()?;
            if reply.code / 100 == 6 {
                if self.pending_events.len() < MAX_REPLY_LINES {
                    self.pending_events.push_back(reply);
                }
                continue;
            }
            return Ok(reply);
        }
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut buf = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_LINE as u64 + 2)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "control connection closed",
            ));
        }
        if buf.last() != Some(&b'\n') {
            return Err(invalid("control line too long or truncated".into()));
        }
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        String::from_utf8(buf).map_err(|_| invalid("control line is not UTF-8".into()))
    }

    /// Reads one whole reply (mid lines, data lines, end line).
    fn read_reply(&mut self) -> io::Result<Reply> {
        let mut lines = Vec::new();
        loop {
            if lines.len() > MAX_REPLY_LINES {
                return Err(invalid("control reply too long".into()));
            }
            let line = self.read_line()?;
            if line.len() < 4 || !line.as_bytes()[..3].iter().all(u8::is_ascii_digit) {
                return Err(invalid(format!("malformed control line {line:?}")));
            }
            let code: u16 = line[..3].parse().map_err(|_| invalid("bad code".into()))?;
            let sep = line.as_bytes()[3];
            let rest = line[4..].to_string();
            match sep {
                b'-' => lines.push(rest),
                b' ' => {
                    lines.push(rest);
                    return Ok(Reply { code, lines });
                }
                b'+' => {
                    let mut text = rest;
                    let mut body_lines = 0usize;
                    loop {
                        let data = self.read_line()?;
                        if data == "." {
                            break;
                        }
                        body_lines += 1;
                        if body_lines > MAX_REPLY_LINES {
                            return Err(invalid("control data reply too long".into()));
                        }
                        text.push('\n');
                        text.push_str(data.strip_prefix('.').unwrap_or(&data));
                    }
                    lines.push(text);
                }
                _ => return Err(invalid(format!("malformed control line {line:?}"))),
            }
        }
    }
}

/// Connects, retrying until `deadline` while the socket or cookie does not exist yet or tor
/// refuses (it creates the socket a moment before it accepts).
pub fn connect_until(
    socket: &Path,
    cookie_file: &Path,
    deadline: Instant,
) -> Result<Control, String> {
    let timeout = deadline.saturating_duration_since(Instant::now());
    poll::wait_for(
        "the control socket",
        timeout,
        Duration::from_millis(100),
        || {
            Control::connect(socket, cookie_file, Duration::from_secs(10))
                .map_err(|e| e.to_string())
        },
    )
    .map_err(|e| {
        format!(
            "could not connect to control socket {}: {}",
            socket.display(),
            e.last
        )
    })
}

/// Extracts `PROGRESS=N` from a `status/bootstrap-phase` value.
pub fn bootstrap_progress(phase: &str) -> Option<u8> {
    phase
        .split_whitespace()
        .find_map(|w| w.strip_prefix("PROGRESS="))
        .and_then(|n| n.parse().ok())
}
