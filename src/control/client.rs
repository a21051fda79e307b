//! The thin tokio shell around the sans-I/O core: a socket, timeouts and the auth handshake.
//!
//! Connecting and every command's whole exchange (write, then the complete reply) have a
//! deadline, because a frozen tor (SIGSTOP, a full disk, a livelocked main loop) must make the
//! exporter report `tor_up 0`, not hang. Waiting for an event has none (an idle tor sends none).
//! Events that arrive while a command waits for its reply are queued, never mistaken for it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use rand_core::{OsRng, RngCore};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout, timeout_at, Instant};
use zeroize::Zeroizing;

use super::address::ControlAddress;
use super::auth::{self, AuthError, Method, PeerTrust};
use super::command::{AuthSecret, Command};
use super::error::ControlError;
use super::reply::{Limits, Message, ParseError, ReplyParser};

/// Events kept while nobody reads them, by count and by bytes; older ones are dropped first.
/// Bytes matter more than the count: a peer may send events of up to 256 KiB each (the reply
/// limit), and 1024 of those would be a quarter of a gigabyte.
const MAX_QUEUED_EVENTS: usize = 1024;
pub const MAX_QUEUED_EVENT_BYTES: usize = 1024 * 1024;

/// How to reach and authenticate to tor.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub address: ControlAddress,
    pub timeout: Duration,
    pub cookie_file: Option<PathBuf>,
    pub password_file: Option<PathBuf>,
    pub limits: Limits,
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// An authenticated control connection.
pub struct Connection {
    stream: Pin<Box<dyn Stream>>,
    parser: ReplyParser,
    events: VecDeque<Message>,
    queued_bytes: usize,
    dropped_events: u64,
    timeout: Duration,
    tor_version: Option<String>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects and authenticates with the strongest method tor offers.
    pub async fn connect(opts: &ConnectOptions) -> Result<Self, ControlError> {
        let t = opts.timeout;
        let address = opts.address.to_string();
        let (stream, trust): (Pin<Box<dyn Stream>>, PeerTrust) = match &opts.address {
            ControlAddress::Unix(path) => {
                let s = timeout(t, tokio::net::UnixStream::connect(path))
                    .await
                    .map_err(|_| ControlError::Timeout(t))?
                    .map_err(|source| ControlError::Connect { address, source })?;
                let trust = unix_peer_trust(&s, path);
                (Box::pin(s), trust)
            }
            ControlAddress::Tcp(socket_addr) => {
                let s = timeout(t, tokio::net::TcpStream::connect(*socket_addr))
                    .await
                    .map_err(|_| ControlError::Timeout(t))?
                    .map_err(|source| ControlError::Connect { address, source })?;
                s.set_nodelay(true)?;
                (Box::pin(s), PeerTrust::Unproven)
            }
        };
        let mut conn = Connection {
            stream,
            parser: ReplyParser::new(opts.limits),
            events: VecDeque::new(),
            queued_bytes: 0,
            dropped_events: 0,
            timeout: t,
            tor_version: None,
        };
        conn.authenticate(opts, trust).await?;
        Ok(conn)
    }

    /// tor's version as PROTOCOLINFO announced it.
    pub fn tor_version(&self) -> Option<&str> {
        self.tor_version.as_deref()
    }

    async fn authenticate(
        &mut self,
        opts: &ConnectOptions,
        trust: PeerTrust,
    ) -> Result<(), ControlError> {
        let info_reply = self.request(&Command::ProtocolInfo).await?;
        let info = auth::parse_protocolinfo(&info_reply)?;
        self.tor_version = info.tor_version.clone();
        let method = auth::choose_method(&info, opts.password_file.is_some(), trust)?;
        let secret = match method {
            Method::Null => AuthSecret::None,
            Method::Password => {
                let path = opts.password_file.clone().unwrap_or_default();
                let raw = crate::small_file::read_secret(&path, MAX_PASSWORD_BYTES).map_err(
                    |source| ControlError::Password {
                        path: path.clone(),
                        source,
                    },
                )?;
                let text = Zeroizing::new(String::from_utf8_lossy(&raw).into_owned());
                AuthSecret::Password(text.trim_end_matches(['\r', '\n']).to_owned())
            }
            Method::SafeCookie => {
                // Our own idea of where the cookie is, never the path the peer names: a peer
                // that is not tor could name a FIFO, a device or another secret file.
                let path = opts
                    .cookie_file
                    .clone()
                    .or_else(|| opts.address.default_cookie_file())
                    .ok_or_else(|| {
                        ControlError::Auth(
                            "over TCP there is no default cookie file: set tor.cookie_file".into(),
                        )
                    })?;
                if info.cookie_file.as_deref().map(Path::new) != Some(path.as_path()) {
                    tracing::debug!(
                        ours = %path.display(),
                        announced = ?info.cookie_file,
                        "tor announces its cookie elsewhere; reading ours (tor.cookie_file)"
                    );
                }
                let cookie = read_cookie(&path)?;
                let mut client_nonce = [0u8; 32];
                OsRng.fill_bytes(&mut client_nonce);
                let reply = self
                    .request(&Command::AuthChallenge { client_nonce })
                    .await?;
                let challenge = auth::parse_authchallenge(&reply)?;
                let hash = auth::safecookie_response(&cookie[..], &client_nonce, &challenge)?;
                AuthSecret::Hex(hash.to_vec())
            }
        };
        let reply = self.request(&Command::Authenticate(secret)).await?;
        if !reply.is_ok() {
            // tor's text here is generic ("Authentication failed: …"), never the secret.
            return Err(ControlError::Auth(format!(
                "{} {}",
                reply.status(),
                reply.end_text()
            )));
        }
        Ok(())
    }

    /// Sends one allowed command and returns its reply. Events seen meanwhile are queued.
    /// A non-2xx reply is returned as a message (the caller decides); only I/O and parse
    /// failures are errors, after which the connection must be dropped.
    ///
    /// `tor.timeout` bounds the whole exchange, not each read: a peer that drips one byte at a
    /// time must not hold a refresh (and a stale `tor_up 1`) for longer than the timeout.
    pub async fn request(&mut self, cmd: &Command) -> Result<Message, ControlError> {
        let deadline = Instant::now() + self.timeout;
        let bytes = cmd.encode();
        timeout_at(deadline, self.stream.write_all(&bytes))
            .await
            .map_err(|_| ControlError::Timeout(self.timeout))??;
        loop {
            let msg = self.read_message_with(Some(deadline)).await?;
            if msg.is_event() {
                self.queue_event(msg);
            } else {
                return Ok(msg);
            }
        }
    }

    /// Like [`request`](Self::request) but a non-2xx reply is an error.
    pub async fn request_ok(&mut self, cmd: &Command) -> Result<Message, ControlError> {
        let reply = self.request(cmd).await?;
        if reply.is_ok() {
            Ok(reply)
        } else {
            Err(ControlError::Refused {
                verb: cmd.verb(),
                status: reply.status(),
                // tor echoes some arguments in errors; an onion address must not reach a log.
                text: super::address::redact_onion_addresses(reply.end_text()),
            })
        }
    }

    /// The next asynchronous event; waits without a deadline (an idle tor sends none), but
    /// returns an error at once when tor closes the connection.
    pub async fn next_event(&mut self) -> Result<Message, ControlError> {
        if let Some(e) = self.events.pop_front() {
            self.queued_bytes -= message_bytes(&e);
            return Ok(e);
        }
        let msg = self.read_message_with(None).await?;
        if msg.is_event() {
            Ok(msg)
        } else {
            // A reply nobody asked for means we lost track of the stream.
            Err(ControlError::Protocol(ParseError::BadLine))
        }
    }

    /// Events dropped because the queue was full (a peer flooding events).
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    fn queue_event(&mut self, msg: Message) {
        let size = message_bytes(&msg);
        if size > MAX_QUEUED_EVENT_BYTES {
            self.dropped_events += 1;
            return;
        }
        while self.events.len() >= MAX_QUEUED_EVENTS
            || self.queued_bytes + size > MAX_QUEUED_EVENT_BYTES
        {
            let Some(old) = self.events.pop_front() else {
                break;
            };
            self.queued_bytes -= message_bytes(&old);
            self.dropped_events += 1;
        }
        self.queued_bytes += size;
        self.events.push_back(msg);
    }

    /// Bytes held by queued events (for tests of the bound).
    pub fn queued_event_bytes(&self) -> usize {
        self.queued_bytes
    }

    async fn read_message_with(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Message, ControlError> {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(m) = self.parser.next_message() {
                return Ok(m);
            }
            let n = match deadline {
                Some(d) => timeout_at(d, self.stream.read(&mut buf))
                    .await
                    .map_err(|_| ControlError::Timeout(self.timeout))??,
                None => self.stream.read(&mut buf).await?,
            };
            if n == 0 {
                return Err(ControlError::Closed);
            }
            self.parser.feed(&buf[..n])?;
        }
    }
}

/// What a queued message costs: its text and data (the allocation overhead is per line and
/// small next to the 16 KiB line limit).
fn message_bytes(m: &Message) -> usize {
    m.lines
        .iter()
        .map(|l| l.text.len() + l.data.as_ref().map_or(0, String::len) + 32)
        .sum()
}

/// Longest password file read.
const MAX_PASSWORD_BYTES: u64 = 1024;

/// Reads tor's 32-byte cookie. Read inline rather than with `tokio::fs`: 32 bytes of a local
/// file cost less than the blocking-pool threads `tokio::fs` would start (and keep for 10 s) at
/// every reconnect, and `small_file` makes sure the read cannot block.
fn read_cookie(path: &Path) -> Result<Zeroizing<Vec<u8>>, ControlError> {
    let buf = crate::small_file::read_secret(path, 64).map_err(|source| ControlError::Cookie {
        path: path.to_owned(),
        source,
    })?;
    if buf.len() != 32 {
        return Err(AuthError::BadCookieLength(buf.len()).into());
    }
    Ok(buf)
}

/// A unix peer is trusted with a password only when it runs as the owner of the socket's folder
/// (or as root): nobody else could have created the socket there.
fn unix_peer_trust(s: &tokio::net::UnixStream, path: &Path) -> PeerTrust {
    use std::os::unix::fs::MetadataExt;
    let owner = path
        .parent()
        .and_then(|dir| std::fs::symlink_metadata(dir).ok())
        .map(|md| md.uid());
    match (s.peer_cred().ok().map(|c| c.uid()), owner) {
        (Some(0), _) => PeerTrust::OwnerOfSocketFolder,
        (Some(peer), Some(owner)) if peer == owner => PeerTrust::OwnerOfSocketFolder,
        _ => PeerTrust::Unproven,
    }
}
