//! Authentication faults: what the client does when tor (or a peer posing as tor) will not prove
//! itself or will not let it in.

use super::*;

#[tokio::test]
async fn authentication_refused_with_515() {
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "AUTHENTICATE" => Action::SendClose(
            b"515 Authentication failed: Safe cookie response did not match expected value.\r\n"
                .to_vec(),
        ),
        _ => honest,
    });
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    assert!(matches!(err, ControlError::Auth(_)), "{err:?}");
    assert_eq!(ErrorKind::of(&err).as_str(), "auth");
    let msg = err.to_string();
    assert!(msg.contains("515"), "{msg}");
    // The error names neither the cookie nor what was derived from it.
    let auth_line = peer
        .received()
        .into_iter()
        .find(|r| r.verb == "AUTHENTICATE")
        .unwrap();
    let sent_secret = auth_line.line.split(' ').nth(1).unwrap().to_owned();
    assert!(!msg.contains(&sent_secret));
    assert!(!msg
        .to_uppercase()
        .contains(&data_encoding::HEXUPPER.encode(&peer.cookie())));
}

#[tokio::test]
async fn safecookie_with_a_wrong_server_hash_is_refused_before_authenticating() {
    // A process squatting on the socket path does not know the cookie, so its server hash is
    // wrong. The client must notice and reveal nothing derived from the cookie.
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "AUTHCHALLENGE" => Action::Send(
            format!(
                "250 AUTHCHALLENGE SERVERHASH={} SERVERNONCE={}\r\n",
                "AB".repeat(32),
                "CD".repeat(32)
            )
            .into_bytes(),
        ),
        _ => honest,
    });
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    assert!(matches!(err, ControlError::Auth(_)), "{err:?}");
    assert!(err.to_string().contains("server hash"), "{err}");
    assert_eq!(
        peer.count("AUTHENTICATE"),
        0,
        "the client sent AUTHENTICATE after a bad server hash"
    );
}

#[tokio::test]
async fn safecookie_hash_from_another_cookie_is_refused() {
    // A correctly formed hash, computed with the wrong cookie (e.g. a stale cookie file).
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "AUTHCHALLENGE" => {
            let client_nonce = data_encoding::HEXLOWER_PERMISSIVE
                .decode(req.line.split(' ').nth(2).unwrap().as_bytes())
                .unwrap();
            let server_nonce = [7u8; 32];
            let hash = fake_peer::hmac256(
                b"Tor safe cookie authentication server-to-controller hash",
                &[&[0u8; 32], &client_nonce, &server_nonce],
            );
            Action::Send(
                format!(
                    "250 AUTHCHALLENGE SERVERHASH={} SERVERNONCE={}\r\n",
                    data_encoding::HEXUPPER.encode(&hash),
                    data_encoding::HEXUPPER.encode(&server_nonce)
                )
                .into_bytes(),
            )
        }
        _ => honest,
    });
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    assert!(matches!(err, ControlError::Auth(_)), "{err:?}");
    assert_eq!(peer.count("AUTHENTICATE"), 0);
}

#[tokio::test]
async fn no_usable_authentication_method() {
    let peer = FakePeer::offering("METHODS=HASHEDPASSWORD");
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    assert_eq!(ErrorKind::of(&err).as_str(), "auth", "{err:?}");
    assert_eq!(
        peer.count("AUTHENTICATE"),
        0,
        "no guessing without a password"
    );
}

#[tokio::test]
async fn cookie_file_of_the_wrong_length_is_refused() {
    let peer = FakePeer::honest();
    let short = peer.dir().join("short_cookie");
    std::fs::write(&short, [1u8; 31]).unwrap();
    let mut opts = peer.options(T);
    opts.cookie_file = Some(short);
    let err = within(Connection::connect(&opts)).await.unwrap_err();
    assert_eq!(ErrorKind::of(&err).as_str(), "auth", "{err:?}");
    assert_eq!(peer.count("AUTHENTICATE"), 0);
}

/// A squatter that offers only plain COOKIE (to be handed the cookie itself) gets nothing.
#[tokio::test]
async fn a_cookie_only_peer_is_refused_and_never_gets_the_cookie() {
    let peer = FakePeer::offering("METHODS=COOKIE COOKIEFILE=\"/run/tor/control.authcookie\"");
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    assert_eq!(ErrorKind::of(&err).as_str(), "auth", "{err:?}");
    assert!(err.to_string().contains("SAFECOOKIE"), "{err}");
    assert_eq!(peer.count("AUTHENTICATE"), 0);
    assert!(
        !peer.received().iter().any(|r| r
            .line
            .contains(&data_encoding::HEXLOWER.encode(&peer.cookie()))),
        "the cookie went out"
    );
}

/// The cookie path the peer names is never opened: here it names a FIFO, which would block the
/// exporter's only thread; the exporter reads the cookie beside the socket instead.
#[tokio::test]
async fn the_cookie_path_tor_names_is_not_trusted() {
    let fifo_dir = crate::support::temp_dir::tempdir().unwrap();
    let fifo = fifo_dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let announced = fifo.display().to_string();
    let peer = FakePeer::offering(&format!("METHODS=SAFECOOKIE COOKIEFILE=\"{announced}\""));
    within(Connection::connect(&peer.options(T)))
        .await
        .expect("authenticated with the cookie beside the socket");
}

/// A FIFO or a device as cookie or password file is refused at once, never read. On the wall
/// clock: "at once" is about blocking system calls, which a paused tokio clock does not see.
#[tokio::test]
async fn fifo_cookie_and_dev_zero_password_are_refused_without_blocking() {
    let peer = FakePeer::honest();
    let fifo = peer.dir().join("cookie-fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let mut opts = peer.options(T);
    opts.cookie_file = Some(fifo);
    let started = Instant::now();
    let err = within(Connection::connect(&opts)).await.unwrap_err();
    assert!(started.elapsed() < T, "took {:?}", started.elapsed());
    assert!(err.to_string().contains("not a regular file"), "{err}");

    let password_peer = FakePeer::offering("METHODS=HASHEDPASSWORD");
    let mut opts = password_peer.options(T);
    opts.password_file = Some("/dev/zero".into());
    let err = within(Connection::connect(&opts)).await.unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert_eq!(password_peer.count("AUTHENTICATE"), 0);
}

/// A squatter on a TCP control address that answers PROTOCOLINFO with `auth` (what follows
/// `250-AUTH `) and records every line it is sent until the client goes quiet for 2 s.
fn tcp_squatter(
    auth: &'static str,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<String>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
    let squatter = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let (r, mut w) = s.into_split();
        let mut lines = BufReader::new(r).lines();
        let mut got = Vec::new();
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_secs(2), lines.next_line()).await
        {
            if line.starts_with("PROTOCOLINFO") {
                let answer = format!("250-PROTOCOLINFO 1\r\n250-AUTH {auth}\r\n250 OK\r\n");
                w.write_all(answer.as_bytes()).await.unwrap();
            } else {
                // Anything else gets tor's "yes": a believing client would go on to GETINFO.
                w.write_all(b"250 OK\r\n").await.unwrap();
            }
            got.push(line);
        }
        got
    });
    (addr, squatter)
}

fn tcp_options(addr: std::net::SocketAddr, password_file: Option<PathBuf>) -> ConnectOptions {
    ConnectOptions {
        address: securedrop_tor_exporter::ControlAddress::Tcp(addr),
        timeout: T,
        cookie_file: None,
        password_file,
        limits: Limits::default(),
    }
}

/// Over TCP anyone may have bound the port: the password is never sent there.
#[tokio::test]
async fn a_password_is_never_sent_over_tcp() {
    let (addr, squatter) = tcp_squatter("METHODS=HASHEDPASSWORD");
    let dir = crate::support::temp_dir::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "hunter2\n").unwrap();
    let err = within(Connection::connect(&tcp_options(addr, Some(password))))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("refusing to send the control password"),
        "{err}"
    );
    let got = squatter.await.unwrap();
    assert!(
        got.iter()
            .all(|l| !l.contains("hunter2") && !l.starts_with("AUTHENTICATE")),
        "{got:?}"
    );
}

/// Over TCP a squatter that asks for no authentication proves nothing: believed, it could say
/// tor is up and bootstrapped while tor is down. The client refuses it before asking anything.
#[tokio::test]
async fn a_null_auth_peer_over_tcp_is_refused_and_asked_nothing() {
    let (addr, squatter) = tcp_squatter("METHODS=NULL");
    let err = within(Connection::connect(&tcp_options(addr, None)))
        .await
        .unwrap_err();
    assert_eq!(ErrorKind::of(&err).as_str(), "auth", "{err:?}");
    assert!(
        err.to_string()
            .contains("asks for no authentication over TCP"),
        "{err}"
    );
    let got = squatter.await.unwrap();
    assert!(
        got.iter().all(|l| l.starts_with("PROTOCOLINFO")),
        "the client went past PROTOCOLINFO: {got:?}"
    );
}
