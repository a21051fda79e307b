//! Where the exporter listens: the sockets systemd holds for it (socket activation), told apart
//! by their kind, or else its own bind of `web.listen_address`.
//!
//! Here, beside the server that takes these sockets, and not in [`crate::systemd_protocol`]:
//! which descriptors systemd passed is protocol (that module, in the lowest layer), but what
//! each is for and whether it may be served is decided against the configuration
//! (`web.listen_address`, `web.allow_non_loopback`), which sits in a layer above it.
//!
//! With the package's `.socket` units, systemd keeps the port bound while the exporter restarts
//! or is down, so no other local account can bind it in between.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd as _, OwnedFd};

use tokio::net::{TcpListener, UnixListener};

use crate::config::WebConfig;
use crate::systemd_protocol;

/// Where the exporter serves: the loopback port, and the unix socket that the client-authorized
/// onion service points at (the package's socket unit passes it; without it, only loopback).
///
/// Two sockets because they have different clients: any local account can reach a loopback
/// port, while the onion's socket is reachable by tor alone (see [`crate::setup::ONION_SOCKET`]),
/// so nothing done to the port can crowd or impersonate the onion path.
#[derive(Debug)]
pub struct Listeners {
    pub loopback: TcpListener,
    pub onion: Option<UnixListener>,
}

impl From<TcpListener> for Listeners {
    fn from(loopback: TcpListener) -> Listeners {
        Listeners {
            loopback,
            onion: None,
        }
    }
}

/// Why the exporter has nothing to listen on. Each message says what systemd passed or which
/// address could not be bound, so the journal line alone tells the admin what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("reading LISTEN_FDS")]
    ListenFds(#[source] std::io::Error),
    #[error("systemd passed a descriptor that is not a socket")]
    NotASocket(#[source] std::io::Error),
    #[error("the socket systemd passed is neither TCP nor unix")]
    NeitherTcpNorUnix(#[source] std::io::Error),
    #[error("systemd passed two unix sockets; expected one (the onion's)")]
    TwoUnix,
    #[error("systemd passed two TCP sockets; expected one (the loopback port)")]
    TwoTcp,
    #[error(
        "systemd passed a socket on {0}, outside loopback; set web.allow_non_loopback = true to serve there"
    )]
    OutsideLoopback(SocketAddr),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Making a socket non-blocking or handing it to the runtime failed (not seen in practice).
    #[error("cannot set up the listening socket")]
    Setup(#[source] std::io::Error),
}

/// The sockets to serve on: those systemd passed (told apart by kind), and a bind of
/// `web.listen_address` when it passed no TCP socket (run by hand, or the onion's socket
/// alone). Reads and clears `LISTEN_FDS`, so call it once, before any other thread starts, and
/// inside the runtime that will serve.
pub async fn listeners(web: &WebConfig) -> Result<Listeners, ListenError> {
    let fds = systemd_protocol::listen_fds().map_err(ListenError::ListenFds)?;
    let owned = fds
        .into_iter()
        // SAFETY: systemd passed these descriptors to us alone (LISTEN_PID is ours, and
        // `listen_fds` removed the variables so nothing else takes them again); each is owned
        // here and nowhere else.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    listeners_from(owned, web).await
}

/// [`listeners`] on descriptors already owned: the decisions, without the process environment.
async fn listeners_from(passed: Vec<OwnedFd>, web: &WebConfig) -> Result<Listeners, ListenError> {
    let passed = sort_passed(passed, web)?;
    let loopback = match passed.loopback {
        Some(l) => TcpListener::from_std(l).map_err(ListenError::Setup)?,
        None => {
            let addr = web.listen_address;
            TcpListener::bind(addr)
                .await
                .map_err(|source| ListenError::Bind { addr, source })?
        }
    };
    let onion = passed
        .onion
        .map(UnixListener::from_std)
        .transpose()
        .map_err(ListenError::Setup)?;
    Ok(Listeners { loopback, onion })
}

/// The listening sockets systemd passed (none, when run by hand), made non-blocking for tokio.
#[derive(Debug, Default)]
struct Passed {
    loopback: Option<std::net::TcpListener>,
    onion: Option<std::os::unix::net::UnixListener>,
}

/// Tells the passed descriptors apart by their kind: at most one TCP socket (the loopback port)
/// and at most one unix socket (the onion's); anything else is refused.
///
/// The package keeps the TCP socket on `web.listen_address` (its systemd generator, applied by
/// `setup configure`): when the configuration says otherwise (edited, not yet applied with
/// `dpkg-reconfigure`), the exporter still serves on the passed socket and warns, naming both.
/// Refusing would take the metrics down and, through systemd's start limits, could fail the
/// socket unit. A TCP socket outside loopback is refused unless `web.allow_non_loopback` allows
/// it, as for `web.listen_address`.
fn sort_passed(fds: Vec<OwnedFd>, web: &WebConfig) -> Result<Passed, ListenError> {
    let mut passed = Passed::default();
    for fd in fds {
        let kind = socket2::SockRef::from(&fd)
            .domain()
            .map_err(ListenError::NotASocket)?;
        if kind == socket2::Domain::UNIX {
            if passed.onion.is_some() {
                return Err(ListenError::TwoUnix);
            }
            let l = std::os::unix::net::UnixListener::from(fd);
            l.set_nonblocking(true).map_err(ListenError::Setup)?;
            tracing::info!("serving the onion service on the unix socket systemd holds");
            passed.onion = Some(l);
            continue;
        }
        if passed.loopback.is_some() {
            return Err(ListenError::TwoTcp);
        }
        let listener = std::net::TcpListener::from(fd);
        let local = listener
            .local_addr()
            .map_err(ListenError::NeitherTcpNorUnix)?;
        if !web.allow_non_loopback && !local.ip().is_loopback() {
            return Err(ListenError::OutsideLoopback(local));
        }
        let configured = web.listen_address;
        if local != configured {
            tracing::warn!(
                "systemd passed a socket on {local}, but web.listen_address is {configured}: serving on {local}; run `dpkg-reconfigure securedrop-tor-exporter` to move the socket to {configured}"
            );
        }
        listener.set_nonblocking(true).map_err(ListenError::Setup)?;
        tracing::info!(%local, "using the socket systemd holds (socket activation)");
        passed.loopback = Some(listener);
    }
    Ok(passed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;

    fn web(listen: &str) -> WebConfig {
        WebConfig {
            listen_address: listen.parse().unwrap(),
            ..WebConfig::default()
        }
    }

    fn tcp(addr: &str) -> std::net::TcpListener {
        std::net::TcpListener::bind(addr).unwrap()
    }

    /// A listening unix socket in its own folder (kept alive by the returned guard).
    fn unix() -> (crate::temp_dir::TempDir, std::os::unix::net::UnixListener) {
        let dir = crate::temp_dir::tempdir().unwrap();
        let l = std::os::unix::net::UnixListener::bind(dir.path().join("s")).unwrap();
        (dir, l)
    }

    #[test]
    fn nothing_passed_is_nothing_sorted() {
        let p = sort_passed(Vec::new(), &web("127.0.0.1:9747")).unwrap();
        assert!(p.loopback.is_none() && p.onion.is_none());
    }

    #[test]
    fn one_tcp_socket_is_the_loopback_port_made_non_blocking() {
        let l = tcp("127.0.0.1:0");
        let at = l.local_addr().unwrap();
        let p = sort_passed(vec![l.into()], &web(&at.to_string())).unwrap();
        let loopback = p.loopback.expect("the TCP socket");
        assert_eq!(loopback.local_addr().unwrap(), at);
        assert!(p.onion.is_none());
        // Non-blocking, as tokio needs: with nobody connecting, accept returns at once.
        assert_eq!(loopback.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    }

    #[test]
    fn tcp_and_unix_are_told_apart_in_either_order() {
        let (_d1, u1) = unix();
        let (_d2, u2) = unix();
        let t1 = tcp("127.0.0.1:0");
        let t2 = tcp("127.0.0.1:0");
        let (a1, a2) = (t1.local_addr().unwrap(), t2.local_addr().unwrap());
        for (list, at) in [
            (vec![t1.into(), u1.into()], a1),
            (vec![u2.into(), t2.into()], a2),
        ] {
            let p = sort_passed(list, &web(&at.to_string())).unwrap();
            assert_eq!(p.loopback.unwrap().local_addr().unwrap(), at);
            let onion = p.onion.expect("the unix socket");
            assert_eq!(onion.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
        }
    }

    #[test]
    fn a_unix_socket_alone_is_the_onions() {
        let (_d, u) = unix();
        let p = sort_passed(vec![u.into()], &web("127.0.0.1:9747")).unwrap();
        assert!(p.onion.is_some() && p.loopback.is_none());
    }

    #[test]
    fn two_of_a_kind_are_refused() {
        let w = web("127.0.0.1:9747");
        let (_d1, u1) = unix();
        let (_d2, u2) = unix();
        let e = sort_passed(vec![u1.into(), u2.into()], &w).unwrap_err();
        assert!(matches!(e, ListenError::TwoUnix), "{e}");
        let e = sort_passed(
            vec![tcp("127.0.0.1:0").into(), tcp("127.0.0.1:0").into()],
            &w,
        )
        .unwrap_err();
        assert!(matches!(e, ListenError::TwoTcp), "{e}");
    }

    #[test]
    fn a_descriptor_that_is_not_a_socket_is_refused() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let e = sort_passed(vec![file.into()], &web("127.0.0.1:9747")).unwrap_err();
        assert!(matches!(e, ListenError::NotASocket(_)), "{e}");
        assert_eq!(
            e.to_string(),
            "systemd passed a descriptor that is not a socket"
        );
    }

    /// Bound (not listening, so nothing can connect) on the wildcard address, which is not
    /// loopback: refused as `web.listen_address` would be, unless allowed.
    #[test]
    fn a_socket_outside_loopback_needs_allow_non_loopback() {
        let wildcard = || {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.bind(&"0.0.0.0:0".parse::<SocketAddr>().unwrap().into())
                .unwrap();
            OwnedFd::from(s)
        };
        let mut w = web("127.0.0.1:9747");
        let e = sort_passed(vec![wildcard()], &w).unwrap_err();
        assert!(
            matches!(e, ListenError::OutsideLoopback(a) if a.ip().is_unspecified()),
            "{e}"
        );
        assert!(
            e.to_string().contains("web.allow_non_loopback = true"),
            "{e}"
        );
        w.allow_non_loopback = true;
        let p = sort_passed(vec![wildcard()], &w).unwrap();
        assert!(p.loopback.is_some());
    }

    /// The configuration names another port than the socket systemd holds (edited, not yet
    /// applied): the passed socket is served all the same.
    #[test]
    fn a_passed_socket_elsewhere_than_configured_is_still_served() {
        let l = tcp("127.0.0.1:0");
        let at = l.local_addr().unwrap();
        let other = tcp("127.0.0.1:0").local_addr().unwrap();
        let p = sort_passed(vec![l.into()], &web(&other.to_string())).unwrap();
        assert_eq!(p.loopback.unwrap().local_addr().unwrap(), at);
    }

    #[tokio::test]
    async fn without_a_passed_tcp_socket_the_configured_address_is_bound() {
        let l = listeners_from(Vec::new(), &web("127.0.0.1:0"))
            .await
            .unwrap();
        assert!(l.loopback.local_addr().unwrap().ip().is_loopback());
        assert!(l.onion.is_none());
        // The onion's socket alone: served, and the port bound by the exporter itself.
        let (_d, u) = unix();
        let l = listeners_from(vec![u.into()], &web("127.0.0.1:0"))
            .await
            .unwrap();
        assert!(l.onion.is_some());
        assert!(l.loopback.local_addr().unwrap().ip().is_loopback());
    }

    #[tokio::test]
    async fn a_passed_tcp_socket_means_no_bind_of_its_own() {
        let held = tcp("127.0.0.1:0");
        let configured = held.local_addr().unwrap();
        let l = tcp("127.0.0.1:0");
        let at = l.local_addr().unwrap();
        // Binding `configured` would fail (`held` has it): the passed socket is used instead.
        let got = listeners_from(vec![l.into()], &web(&configured.to_string()))
            .await
            .unwrap();
        assert_eq!(got.loopback.local_addr().unwrap(), at);
    }

    #[tokio::test]
    async fn a_failed_bind_names_the_address() {
        let held = tcp("127.0.0.1:0");
        let addr = held.local_addr().unwrap();
        let e = listeners_from(Vec::new(), &web(&addr.to_string()))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, ListenError::Bind { addr: a, source } if *a == addr && source.kind() == ErrorKind::AddrInUse),
            "{e}"
        );
        assert_eq!(e.to_string(), format!("cannot listen on {addr}"));
    }
}
