//! A scriptable fake tor control peer on a unix socket, for fault tests only.
//!
//! It speaks just enough of the control protocol to get a client through PROTOCOLINFO,
//! AUTHCHALLENGE (SAFECOOKIE, with the real server hash), AUTHENTICATE and GETINFO, like tor. A
//! test's script sees every request together with the honest answer and may replace it with a
//! fault: a refusal, garbage, an endless line, silence, a close mid-reply. Every line the peer
//! receives is recorded, on every connection. Real tor behaviour is tested against a real tor
//! elsewhere; this peer exists to produce what a real tor will not produce on demand.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use securedrop_tor_exporter::control::{ConnectOptions, Limits};
use securedrop_tor_exporter::ControlAddress;

const SERVER_KEY: &[u8] = b"Tor safe cookie authentication server-to-controller hash";
const CLIENT_KEY: &[u8] = b"Tor safe cookie authentication controller-to-server hash";

/// The version the fake peer claims to be.
pub const FAKE_TOR_VERSION: &str = "0.4.9.11";

/// Longest line the peer accepts from the client (the client's lines are short).
const MAX_REQUEST_LINE: u64 = 64 * 1024;

/// Most bytes an endless line sends before giving up (the client should hang up long before).
pub const ENDLESS_CAP: usize = 64 * 1024 * 1024;

/// What the peer does in answer to one request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes and keep the connection open.
    Send(Vec<u8>),
    /// Write these bytes, then close the connection.
    SendClose(Vec<u8>),
    /// Never answer this or anything later on this connection (but keep it open and keep
    /// recording what arrives).
    Hang,
    /// Write these bytes one at a time, pausing this long after each (a peer that is slow but
    /// never silent for a whole read timeout).
    Drip(Vec<u8>, Duration),
    /// Write these bytes, then an endless line (no LF) until the client hangs up or
    /// [`ENDLESS_CAP`] bytes went out.
    Endless(Vec<u8>),
}

impl Action {
    /// The bytes of a `Send`/`SendClose`, for scripts that wrap the honest answer.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Action::Send(b) | Action::SendClose(b) | Action::Endless(b) | Action::Drip(b, _) => {
                b.clone()
            }
            Action::Hang => Vec::new(),
        }
    }
}

/// One line the peer received.
#[derive(Debug, Clone)]
pub struct Request {
    /// 0-based connection number, in accept order.
    pub conn: usize,
    /// The line without CRLF.
    pub line: String,
    /// The first word.
    pub verb: String,
    /// How many earlier lines on this connection had the same verb.
    pub nth: usize,
    /// The connection has authenticated successfully.
    pub authenticated: bool,
}

type Script = dyn Fn(&Request, Action) -> Action + Send + Sync;

struct Shared {
    cookie: [u8; 32],
    cookie_path: PathBuf,
    script: Box<Script>,
    received: Mutex<Vec<Request>>,
    connections: AtomicUsize,
    closed: AtomicUsize,
    endless_sent: AtomicUsize,
}

/// A fake tor listening on `<tempdir>/control`, with its cookie beside it at
/// `<tempdir>/control.authcookie` (where the exporter looks by default, as on Debian).
pub struct FakePeer {
    dir: crate::support::temp_dir::TempDir,
    socket: PathBuf,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        // Dropping the accept task drops its JoinSet, which aborts every connection task.
        self.accept.abort();
    }
}

impl FakePeer {
    /// A peer that answers like tor.
    pub fn honest() -> FakePeer {
        FakePeer::start(|_, honest| honest)
    }

    /// An honest peer whose PROTOCOLINFO offers `auth` instead (what follows `250-AUTH `, e.g.
    /// `METHODS=HASHEDPASSWORD`), as a tor configured otherwise or a squatter would.
    pub fn offering(auth: &str) -> FakePeer {
        let answer = format!(
            "250-PROTOCOLINFO 1\r\n250-AUTH {auth}\r\n250-VERSION Tor=\"{FAKE_TOR_VERSION}\"\r\n250 OK\r\n"
        )
        .into_bytes();
        FakePeer::start(move |req, honest| match req.verb.as_str() {
            "PROTOCOLINFO" => Action::Send(answer.clone()),
            _ => honest,
        })
    }

    /// A peer whose answers pass through `script(request, honest_answer)`.
    pub fn start(script: impl Fn(&Request, Action) -> Action + Send + Sync + 'static) -> FakePeer {
        let dir = crate::support::temp_dir::tempdir().expect("temp dir");
        let socket = dir.path().join("control");
        let cookie_path = dir.path().join("control.authcookie");
        let mut cookie = [0u8; 32];
        OsRng.fill_bytes(&mut cookie);
        std::fs::write(&cookie_path, cookie).expect("write cookie");
        let listener = UnixListener::bind(&socket).expect("bind fake control socket");
        let shared = Arc::new(Shared {
            cookie,
            cookie_path,
            script: Box::new(script),
            received: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            endless_sent: AtomicUsize::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        FakePeer {
            dir,
            socket,
            shared,
            accept,
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn cookie(&self) -> [u8; 32] {
        self.shared.cookie
    }

    pub fn address(&self) -> ControlAddress {
        ControlAddress::Unix(self.socket.clone())
    }

    /// Options for `Connection::connect` with the given timeout and default limits.
    pub fn options(&self, timeout: Duration) -> ConnectOptions {
        ConnectOptions {
            address: self.address(),
            timeout,
            cookie_file: None,
            password_file: None,
            limits: Limits::default(),
        }
    }

    /// Every line received so far, on every connection, in arrival order.
    pub fn received(&self) -> Vec<Request> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Lines received with this verb.
    pub fn count(&self, verb: &str) -> usize {
        self.received().iter().filter(|r| r.verb == verb).count()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Connections the peer has finished with (client hung up, write failed, or script closed).
    pub fn closed(&self) -> usize {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Bytes of endless lines written so far.
    pub fn endless_sent(&self) -> usize {
        self.shared.endless_sent.load(Ordering::SeqCst)
    }
}

async fn accept_loop(listener: UnixListener, shared: Arc<Shared>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { return };
                let n = shared.connections.fetch_add(1, Ordering::SeqCst);
                conns.spawn(serve(stream, n, shared.clone()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

#[derive(Default)]
struct ConnState {
    authenticated: bool,
    /// The client hash SAFECOOKIE expects after our AUTHCHALLENGE answer.
    expected_client_hash: Option<[u8; 32]>,
    hanging: bool,
    verbs: Vec<String>,
}

async fn serve(stream: UnixStream, conn: usize, shared: Arc<Shared>) {
    serve_lines(stream, conn, &shared).await;
    shared.closed.fetch_add(1, Ordering::SeqCst);
}

async fn serve_lines(stream: UnixStream, conn: usize, shared: &Shared) {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut st = ConnState::default();
    loop {
        let mut raw = Vec::new();
        match (&mut rd)
            .take(MAX_REQUEST_LINE)
            .read_until(b'\n', &mut raw)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if raw.last() != Some(&b'\n') {
            return; // EOF mid-line or an over-long line: hang up, as tor would.
        }
        let line = String::from_utf8_lossy(&raw)
            .trim_end_matches(['\r', '\n'])
            .to_owned();
        let verb = line.split(' ').next().unwrap_or("").to_owned();
        let nth = st.verbs.iter().filter(|v| **v == verb).count();
        st.verbs.push(verb.clone());
        let req = Request {
            conn,
            line,
            verb,
            nth,
            authenticated: st.authenticated,
        };
        shared.received.lock().unwrap().push(req.clone());
        if st.hanging {
            continue;
        }
        let honest = honest_answer(&mut st, shared, &req);
        match (shared.script)(&req, honest) {
            Action::Send(b) => {
                if wr.write_all(&b).await.is_err() {
                    return;
                }
            }
            Action::SendClose(b) => {
                let _ = wr.write_all(&b).await;
                let _ = wr.shutdown().await;
                return;
            }
            Action::Hang => st.hanging = true,
            Action::Drip(b, pause) => {
                for byte in b {
                    if wr.write_all(&[byte]).await.is_err() {
                        return;
                    }
                    // Pacing is the fault being simulated here, not synchronisation.
                    tokio::time::sleep(pause).await;
                }
            }
            Action::Endless(prefix) => {
                endless(&mut wr, &prefix, shared).await;
                return;
            }
        }
    }
}

async fn endless(wr: &mut OwnedWriteHalf, prefix: &[u8], shared: &Shared) {
    if wr.write_all(prefix).await.is_err() {
        return;
    }
    let block = [b'A'; 16 * 1024];
    while shared.endless_sent.load(Ordering::SeqCst) < ENDLESS_CAP {
        if wr.write_all(&block).await.is_err() {
            return;
        }
        shared.endless_sent.fetch_add(block.len(), Ordering::SeqCst);
    }
}

pub fn hmac256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The values the peer answers GETINFO with: a DisableNetwork client, as tor reports one.
pub fn getinfo_value(key: &str) -> Option<&'static str> {
    Some(match key {
        "version" => FAKE_TOR_VERSION,
        "status/version/current" => "recommended",
        "status/bootstrap-phase" => "NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY=\"Done\"",
        "status/enough-dir-info" => "1",
        "network-liveness" => "up",
        "status/circuit-established" => "1",
        "dormant" => "0",
        "uptime" => "4242",
        "traffic/read" => "123456789",
        "traffic/written" => "98765432",
        "net/listeners/or" => "",
        _ => return None,
    })
}

/// A whole honest GETINFO answer for the exporter's batch, e.g. to wrap in a script.
pub fn getinfo_reply(keys: &[&str]) -> Vec<u8> {
    let mut out = String::new();
    for k in keys {
        match getinfo_value(k) {
            Some(v) => out.push_str(&format!("250-{k}={v}\r\n")),
            None => return format!("552 Unrecognized key \"{k}\"\r\n").into_bytes(),
        }
    }
    out.push_str("250 OK\r\n");
    out.into_bytes()
}

fn honest_answer(st: &mut ConnState, shared: &Shared, req: &Request) -> Action {
    let args: Vec<&str> = req.line.split(' ').skip(1).collect();
    let send = |s: String| Action::Send(s.into_bytes());
    match req.verb.as_str() {
        "PROTOCOLINFO" => send(format!(
            "250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE=\"{}\"\r\n250-VERSION Tor=\"{FAKE_TOR_VERSION}\"\r\n250 OK\r\n",
            shared.cookie_path.display()
        )),
        "AUTHCHALLENGE" => {
            let mut client_nonce = [0u8; 32];
            let ok = args.len() == 2
                && args[0] == "SAFECOOKIE"
                && data_encoding::HEXLOWER_PERMISSIVE
                    .decode(args[1].as_bytes())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .map(|b| client_nonce = b)
                    .is_some();
            if !ok {
                return send("513 Invalid base16 client nonce\r\n".into());
            }
            let mut server_nonce = [0u8; 32];
            OsRng.fill_bytes(&mut server_nonce);
            let parts: [&[u8]; 3] = [&shared.cookie, &client_nonce, &server_nonce];
            let server_hash = hmac256(SERVER_KEY, &parts);
            st.expected_client_hash = Some(hmac256(CLIENT_KEY, &parts));
            send(format!(
                "250 AUTHCHALLENGE SERVERHASH={} SERVERNONCE={}\r\n",
                data_encoding::HEXUPPER.encode(&server_hash),
                data_encoding::HEXUPPER.encode(&server_nonce)
            ))
        }
        "AUTHENTICATE" => {
            let given = args
                .first()
                .and_then(|a| data_encoding::HEXLOWER_PERMISSIVE.decode(a.as_bytes()).ok());
            let ok = match (given, st.expected_client_hash.take()) {
                (Some(g), Some(expected)) => g == expected,
                (Some(g), None) => g == shared.cookie,
                (None, _) => false,
            };
            if ok {
                st.authenticated = true;
                send("250 OK\r\n".into())
            } else {
                Action::SendClose(
                    b"515 Authentication failed: Safe cookie response did not match expected value.\r\n"
                        .to_vec(),
                )
            }
        }
        _ if !st.authenticated => Action::SendClose(b"514 Authentication required.\r\n".to_vec()),
        "GETINFO" => Action::Send(getinfo_reply(&args)),
        "GETCONF" => {
            let mut out = String::new();
            for (i, k) in args.iter().enumerate() {
                let sep = if i + 1 == args.len() { ' ' } else { '-' };
                out.push_str(&format!("250{sep}{k}\r\n"));
            }
            send(out)
        }
        "SETEVENTS" | "HSFETCH" => send("250 OK\r\n".into()),
        other => send(format!("510 Unrecognized command \"{other}\"\r\n")),
    }
}
