//! A tiny SOCKS5 client (RFC 1928, domain-name requests so tor resolves `.onion` names), for
//! fetching through the private network's client tor. Blocking, with the stream's timeouts.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::support::http::{at, FetchError};

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
