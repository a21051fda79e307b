//! A tiny SOCKS5 client (RFC 1928, domain-name requests so tor resolves `.onion` names) and an
//! HTTP/1.0 GET on top of it, plus a minimal HTTP server for self-tests. Blocking, with timeouts.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Largest response body the client accepts.
const MAX_RESPONSE: u64 = 16 << 20;

/// Why a fetch failed.
#[derive(Debug)]
pub enum FetchError {
    /// I/O error (includes timeouts) at a stage: "connect", "socks greeting", "socks connect",
    /// "http request", "http response".
    Io(&'static str, io::Error),
    /// The SOCKS server refused the CONNECT with this reply code (tor's ExtendedErrors:
    /// 0xF0 descriptor not found, 0xF2 intro failed, 0xF3 rendezvous failed, 0xF4 client auth
    /// missing, 0xF5 wrong client auth, 0xF6 bad address, 0xF7 intro timed out).
    Socks(u8),
    /// The bytes that came back are not an HTTP response.
    BadResponse(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Io(stage, e) => write!(f, "I/O error at {stage}: {e}"),
            FetchError::Socks(code) => write!(f, "SOCKS5 reply 0x{code:02X}"),
            FetchError::BadResponse(m) => write!(f, "bad HTTP response: {m}"),
        }
    }
}

impl std::error::Error for FetchError {}

fn at(stage: &'static str) -> impl FnOnce(io::Error) -> FetchError {
    move |e| FetchError::Io(stage, e)
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header lines as (lower-case name, value).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Opens a SOCKS5 CONNECT to `host:port` through the proxy on `stream` (already connected).
pub fn socks5_connect(stream: &mut TcpStream, host: &str, port: u16) -> Result<(), FetchError> {
    let mut choice = [0u8; 2];
    if host.len() > 255 {
        return Err(FetchError::BadResponse("host name too long".into()));
    }
    let greeting = at("socks greeting");
    stream
        .write_all(&[5, 1, 0])
        .and_then(|()| stream.read_exact(&mut choice))
        .map_err(greeting)?;
    if choice != [5, 0] {
        return Err(FetchError::BadResponse(format!(
            "SOCKS server chose method {choice:?}"
        )));
    }
    let mut req = vec![5, 1, 0, 3, host.len() as u8];
    req.extend_from_slice(host.as_bytes());
    req.extend_from_slice(&port.to_be_bytes());
    let mut head = [0u8; 4];
    stream
        .write_all(&req)
        .and_then(|()| stream.read_exact(&mut head))
        .map_err(at("socks connect"))?;
    if head[0] != 5 {
        return Err(FetchError::BadResponse("not a SOCKS5 reply".into()));
    }
    if head[1] != 0 {
        return Err(FetchError::Socks(head[1]));
    }
    let addr_len = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut l = [0u8; 1];
            stream.read_exact(&mut l).map_err(at("socks connect"))?;
            usize::from(l[0])
        }
        t => return Err(FetchError::BadResponse(format!("SOCKS address type {t}"))),
    };
    let mut rest = vec![0u8; addr_len + 2];
    stream.read_exact(&mut rest).map_err(at("socks connect"))?;
    Ok(())
}

/// Sends `GET path` (HTTP/1.0, `Connection: close`) on a connected stream and reads the
/// whole response.
pub fn http_get_on(
    mut stream: TcpStream,
    host: &str,
    path: &str,
    extra_headers: &[(&str, &str)],
) -> Result<Response, FetchError> {
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n");
    for (n, v) in extra_headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .map_err(at("http request"))?;
    let mut raw = Vec::new();
    (&mut stream)
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .map_err(at("http response"))?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<Response, FetchError> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| FetchError::BadResponse(format!("{} bytes, no header end", raw.len())))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|_| status_line.starts_with("HTTP/"))
        .ok_or_else(|| FetchError::BadResponse("no status line".into()))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.to_string(),
    })
}

/// Connects to a SOCKS port on loopback with timeouts. Call it inside the namespace.
pub fn connect_loopback(port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// A minimal HTTP server answering every request with 200 and a fixed body, on a listener the
/// caller bound (e.g. inside the namespace). Stops when dropped.
pub struct StaticServer {
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl StaticServer {
    pub fn start(listener: TcpListener, body: String) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        // Non-blocking accept, so the loop can notice `stop` (a listener in another network
        // namespace cannot easily be woken by connecting to it).
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let mut conn = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    Err(_) => continue,
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
                // Read the request head (bounded), then answer.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while buf.len() < 16 * 1024 && !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}",
                    body.len(),
                    body
                );
                let _ = conn.write_all(resp.as_bytes());
            }
        });
        Ok(StaticServer {
            stop,
            addr,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
