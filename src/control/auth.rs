//! Authentication maths and PROTOCOLINFO/AUTHCHALLENGE parsing, without I/O.
//!
//! SAFECOOKIE is preferred over COOKIE because it proves *tor* knows the cookie before we reveal
//! anything derived from it: a process squatting on the socket path learns nothing. The server
//! hash is compared in constant time (`subtle`) so timing reveals nothing about it either.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::reply::Message;

const SERVER_KEY: &[u8] = b"Tor safe cookie authentication server-to-controller hash";
const CLIENT_KEY: &[u8] = b"Tor safe cookie authentication controller-to-server hash";

/// What PROTOCOLINFO told us.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtocolInfo {
    pub methods: Vec<String>,
    pub cookie_file: Option<String>,
    pub tor_version: Option<String>,
}

/// How we will authenticate, chosen from what tor offers and what we have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Null,
    SafeCookie,
    Password,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed {0} reply from tor")]
    Malformed(&'static str),
    #[error("tor offers no authentication method we can use (offered: {0})")]
    NoUsableMethod(String),
    #[error("tor's SAFECOOKIE server hash did not verify: the peer does not know the cookie")]
    ServerHashMismatch,
    #[error("cookie file must hold exactly 32 bytes, found {0}")]
    BadCookieLength(usize),
    #[error(
        "tor offers COOKIE but not SAFECOOKIE; plain COOKIE would hand the cookie to whoever answers, so it is refused (every tor since 0.2.3.13 offers SAFECOOKIE: is this really tor?)"
    )]
    CookieWithoutSafeCookie,
    #[error(
        "refusing to send the control password: HASHEDPASSWORD cannot prove who answers, so it is only used over a unix control socket whose peer runs as the socket folder's owner (use cookie authentication, or a unix ControlSocket)"
    )]
    PasswordToUnprovenPeer,
    #[error(
        "refusing a control peer that asks for no authentication over TCP: any local account can bind that port while tor is down, and a peer that proves nothing could forge tor's whole state (give tor cookie authentication, or use a unix ControlSocket)"
    )]
    NullFromUnprovenPeer,
}

/// Splits a reply line into `KEY=value` pairs, honouring control-spec quoted strings.
fn key_values(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ' ' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some('r') => value.push('\r'),
                            Some('t') => value.push('\t'),
                            Some(o) => value.push(o),
                            None => break,
                        },
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ' ' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        out.push((key, value));
    }
    out
}

pub fn parse_protocolinfo(reply: &Message) -> Result<ProtocolInfo, AuthError> {
    if !reply.is_ok() {
        return Err(AuthError::Malformed("PROTOCOLINFO"));
    }
    let mut info = ProtocolInfo::default();
    let mut saw_auth = false;
    for line in &reply.lines {
        if let Some(rest) = line.text.strip_prefix("AUTH ") {
            saw_auth = true;
            for (k, v) in key_values(rest) {
                match k.as_str() {
                    "METHODS" => info.methods = v.split(',').map(str::to_owned).collect(),
                    "COOKIEFILE" => info.cookie_file = Some(v),
                    _ => {}
                }
            }
        } else if let Some(rest) = line.text.strip_prefix("VERSION ") {
            for (k, v) in key_values(rest) {
                if k == "Tor" {
                    info.tor_version = Some(v);
                }
            }
        }
    }
    if saw_auth {
        Ok(info)
    } else {
        Err(AuthError::Malformed("PROTOCOLINFO"))
    }
}

/// Whether the peer on the other end of the socket may be given a password: HASHEDPASSWORD
/// proves nothing about the peer, so the password goes to whoever answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerTrust {
    /// A unix socket whose peer runs as the owner of the socket's folder (or root): only that
    /// account (tor's) could have made the socket.
    OwnerOfSocketFolder,
    /// TCP (any local account can bind the port while tor is down), or a unix peer of another uid.
    Unproven,
}

/// Picks the strongest method tor offers for which we hold the secret.
///
/// Plain COOKIE is never used: it hands the cookie itself to whoever answers, so a process that
/// took over the control address while tor was down would get full control of tor. SAFECOOKIE
/// (every tor since 0.2.3.13) proves the peer knows the cookie before anything derived from it
/// is sent. A password is only sent to a peer of [`PeerTrust::OwnerOfSocketFolder`].
///
/// NULL (no authentication) is taken only from such a peer too: over TCP a squatter that offers
/// NULL proves nothing, and everything it then answers (tor up, bootstrapped, circuits) would be
/// believed and exported through the onion. SAFECOOKIE, when offered beside NULL, proves the peer.
pub fn choose_method(
    info: &ProtocolInfo,
    have_password: bool,
    trust: PeerTrust,
) -> Result<Method, AuthError> {
    let offered = |m: &str| info.methods.iter().any(|x| x == m);
    if offered("NULL") && trust == PeerTrust::OwnerOfSocketFolder {
        Ok(Method::Null)
    } else if offered("SAFECOOKIE") {
        Ok(Method::SafeCookie)
    } else if offered("HASHEDPASSWORD") && have_password {
        if trust == PeerTrust::OwnerOfSocketFolder {
            Ok(Method::Password)
        } else {
            Err(AuthError::PasswordToUnprovenPeer)
        }
    } else if offered("NULL") {
        Err(AuthError::NullFromUnprovenPeer)
    } else if offered("COOKIE") {
        Err(AuthError::CookieWithoutSafeCookie)
    } else {
        Err(AuthError::NoUsableMethod(info.methods.join(",")))
    }
}

/// The server's answer to AUTHCHALLENGE.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    pub server_hash: [u8; 32],
    pub server_nonce: [u8; 32],
}

pub fn parse_authchallenge(reply: &Message) -> Result<Challenge, AuthError> {
    let bad = AuthError::Malformed("AUTHCHALLENGE");
    if !reply.is_ok() {
        return Err(bad);
    }
    let text = reply
        .end_text()
        .strip_prefix("AUTHCHALLENGE ")
        .ok_or(bad.clone())?;
    let mut hash = None;
    let mut nonce = None;
    for (k, v) in key_values(text) {
        // tor sends upper case; either case is valid base16.
        let Some(buf) = data_encoding::HEXLOWER_PERMISSIVE
            .decode(v.as_bytes())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        else {
            continue;
        };
        match k.as_str() {
            "SERVERHASH" => hash = Some(buf),
            "SERVERNONCE" => nonce = Some(buf),
            _ => {}
        }
    }
    match (hash, nonce) {
        (Some(server_hash), Some(server_nonce)) => Ok(Challenge {
            server_hash,
            server_nonce,
        }),
        _ => Err(bad),
    }
}

fn safecookie_hmac(
    key: &[u8],
    cookie: &[u8],
    client_nonce: &[u8; 32],
    server_nonce: &[u8; 32],
) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(cookie);
    mac.update(client_nonce);
    mac.update(server_nonce);
    mac.finalize().into_bytes().into()
}

/// Verifies tor's server hash (constant time) and returns the client hash to send.
pub fn safecookie_response(
    cookie: &[u8],
    client_nonce: &[u8; 32],
    challenge: &Challenge,
) -> Result<[u8; 32], AuthError> {
    if cookie.len() != 32 {
        return Err(AuthError::BadCookieLength(cookie.len()));
    }
    let expected = safecookie_hmac(SERVER_KEY, cookie, client_nonce, &challenge.server_nonce);
    if !bool::from(expected.ct_eq(&challenge.server_hash)) {
        return Err(AuthError::ServerHashMismatch);
    }
    Ok(safecookie_hmac(
        CLIENT_KEY,
        cookie,
        client_nonce,
        &challenge.server_nonce,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> Message {
        crate::control::reply::parse_one(s)
    }

    #[test]
    fn protocolinfo_as_tor_answers_it() {
        let m = msg(
            "250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE=\"/var/lib/tor/control_auth_cookie\"\r\n250-VERSION Tor=\"0.4.9.11\"\r\n250 OK\r\n",
        );
        let info = parse_protocolinfo(&m).unwrap();
        assert_eq!(info.methods, ["COOKIE", "SAFECOOKIE"]);
        assert_eq!(
            info.cookie_file.as_deref(),
            Some("/var/lib/tor/control_auth_cookie")
        );
        assert_eq!(info.tor_version.as_deref(), Some("0.4.9.11"));
        assert_eq!(
            choose_method(&info, false, PeerTrust::Unproven),
            Ok(Method::SafeCookie)
        );
    }

    #[test]
    fn quoted_cookie_path_with_escapes() {
        let m = msg(
            "250-AUTH METHODS=HASHEDPASSWORD,COOKIE COOKIEFILE=\"/a \\\"b\\\\c\"\r\n250 OK\r\n",
        );
        let info = parse_protocolinfo(&m).unwrap();
        assert_eq!(info.cookie_file.as_deref(), Some("/a \"b\\c"));
        // Only plain COOKIE on offer: refused, never a fallback.
        assert_eq!(
            choose_method(&info, false, PeerTrust::OwnerOfSocketFolder),
            Err(AuthError::CookieWithoutSafeCookie)
        );
    }

    #[test]
    fn method_choice() {
        let info = |m: &[&str]| ProtocolInfo {
            methods: m.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let owner = PeerTrust::OwnerOfSocketFolder;
        let unproven = PeerTrust::Unproven;
        assert_eq!(
            choose_method(&info(&["NULL"]), false, owner),
            Ok(Method::Null)
        );
        // Over TCP (or from another uid) NULL proves nothing: refused, unless SAFECOOKIE can
        // prove the peer instead.
        assert_eq!(
            choose_method(&info(&["NULL"]), false, unproven),
            Err(AuthError::NullFromUnprovenPeer)
        );
        assert_eq!(
            choose_method(&info(&["NULL", "SAFECOOKIE"]), false, unproven),
            Ok(Method::SafeCookie)
        );
        assert_eq!(
            choose_method(&info(&["NULL", "SAFECOOKIE"]), false, owner),
            Ok(Method::Null)
        );
        assert_eq!(
            choose_method(&info(&["HASHEDPASSWORD"]), true, owner),
            Ok(Method::Password)
        );
        assert_eq!(
            choose_method(&info(&["HASHEDPASSWORD"]), true, unproven),
            Err(AuthError::PasswordToUnprovenPeer)
        );
        assert!(matches!(
            choose_method(&info(&["HASHEDPASSWORD"]), false, owner),
            Err(AuthError::NoUsableMethod(_))
        ));
        assert_eq!(
            choose_method(&info(&["COOKIE"]), false, owner),
            Err(AuthError::CookieWithoutSafeCookie)
        );
        assert_eq!(
            choose_method(&info(&["COOKIE", "SAFECOOKIE"]), true, owner),
            Ok(Method::SafeCookie)
        );
    }

    /// Vector computed independently with Python's hmac module:
    /// cookie = bytes(range(32)), client nonce = 32 × 0x11, server nonce = 32 × 0x22.
    #[test]
    fn safecookie_known_vector() {
        let cookie: Vec<u8> = (0u8..32).collect();
        let cn = [0x11u8; 32];
        let sn = [0x22u8; 32];
        let server_hash = safecookie_hmac(SERVER_KEY, &cookie, &cn, &sn);
        let client_hash = safecookie_hmac(CLIENT_KEY, &cookie, &cn, &sn);
        assert_eq!(
            data_encoding::HEXLOWER.encode(&server_hash),
            SERVER_HASH_VECTOR
        );
        assert_eq!(
            data_encoding::HEXLOWER.encode(&client_hash),
            CLIENT_HASH_VECTOR
        );
        let ch = Challenge {
            server_hash,
            server_nonce: sn,
        };
        assert_eq!(safecookie_response(&cookie, &cn, &ch), Ok(client_hash));
    }

    const SERVER_HASH_VECTOR: &str =
        "2aecbf4d284befddbbacc3817b41959eda061ac7e156db0c734cb28aa5e903ed";
    const CLIENT_HASH_VECTOR: &str =
        "eea571786a3fd103b6aa1ffa46249c4c850c509d0c84c550ed9e41477511d2ba";

    #[test]
    fn safecookie_rejects_wrong_server_hash_and_bad_cookie() {
        let cookie = [7u8; 32];
        let ch = Challenge {
            server_hash: [0; 32],
            server_nonce: [1; 32],
        };
        assert_eq!(
            safecookie_response(&cookie, &[2; 32], &ch),
            Err(AuthError::ServerHashMismatch)
        );
        assert_eq!(
            safecookie_response(&[1; 31], &[2; 32], &ch),
            Err(AuthError::BadCookieLength(31))
        );
    }

    #[test]
    fn authchallenge_reply() {
        let m = msg(&format!(
            "250 AUTHCHALLENGE SERVERHASH={} SERVERNONCE={}\r\n",
            "AB".repeat(32),
            "cd".repeat(32)
        ));
        let c = parse_authchallenge(&m).unwrap();
        assert_eq!(c.server_hash, [0xab; 32]);
        assert_eq!(c.server_nonce, [0xcd; 32]);
        assert!(parse_authchallenge(&msg("250 AUTHCHALLENGE SERVERHASH=00\r\n")).is_err());
        assert!(parse_authchallenge(&msg("513 Invalid base16 client nonce\r\n")).is_err());
    }
}
