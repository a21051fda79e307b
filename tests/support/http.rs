//! A minimal HTTP/1.1 GET client (`Connection: close`), blocking and async, so the tests need no
//! HTTP client crate. Bounded in size, and in time by the caller's timeout.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Largest response the client accepts.
const MAX_RESPONSE: u64 = 16 << 20;
/// How long an async GET may take in all (loopback servers answer in milliseconds).
const ASYNC_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a GET failed.
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

/// Maps an I/O error to [`FetchError::Io`] at `stage`.
pub fn at(stage: &'static str) -> impl FnOnce(io::Error) -> FetchError {
    move |e| FetchError::Io(stage, e)
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header lines as (lower-case name, value).
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
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

/// A TCP connection to `addr` with connect, read and write timeouts.
pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// `GET path` on `addr`, every step bounded by `timeout`.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, FetchError> {
    let stream = connect(addr, timeout).map_err(at("connect"))?;
    get_on(stream, &addr.to_string(), path, &[])
}

/// Sends `GET path` on a connected stream (e.g. through SOCKS) and reads the whole response.
pub fn get_on(
    mut stream: TcpStream,
    host: &str,
    path: &str,
    extra_headers: &[(&str, &str)],
) -> Result<Response, FetchError> {
    stream
        .write_all(request(host, path, extra_headers).as_bytes())
        .map_err(at("http request"))?;
    let mut raw = Vec::new();
    (&mut stream)
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .map_err(at("http response"))?;
    parse(&raw)
}

/// `GET path` on `addr` from async code, within 5 s.
pub async fn get_async(
    addr: SocketAddr,
    path: &str,
    extra_headers: &[(&str, &str)],
) -> Result<Response, FetchError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = request(&addr.to_string(), path, extra_headers);
    let io = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(at("connect"))?;
        s.write_all(req.as_bytes())
            .await
            .map_err(at("http request"))?;
        let mut raw = Vec::new();
        s.take(MAX_RESPONSE)
            .read_to_end(&mut raw)
            .await
            .map_err(at("http response"))?;
        Ok(raw)
    };
    let raw = tokio::time::timeout(ASYNC_TIMEOUT, io)
        .await
        .map_err(|_| {
            FetchError::Io(
                "http response",
                io::Error::new(io::ErrorKind::TimedOut, "HTTP GET timed out"),
            )
        })??;
    parse(&raw)
}

fn request(host: &str, path: &str, extra_headers: &[(&str, &str)]) -> String {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (n, v) in extra_headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req
}

/// Parses a whole response as read up to the server's close.
pub fn parse(raw: &[u8]) -> Result<Response, FetchError> {
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
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut response = Response {
        status,
        headers,
        body: String::new(),
    };
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    response.body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok(response)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}
