//! Doing things inside the namespace: running code there, listening and connecting on its
//! loopback, HTTP directly or through the client's SOCKS port, the client's onion-service
//! authorization keys, and what the consensus says.

use std::net::SocketAddr;
use std::time::Duration;

use super::error::{err, Error, Result};
use super::launch::write_private;
use super::{socks, FetchError, PrivNet, Response};
use crate::support::http;

impl PrivNet {
    /// Runs `f` on a thread inside the namespace (sockets it creates live there).
    pub fn in_netns<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.netns().run(f).map_err(Error)
    }

    /// A listener on 127.0.0.1:`port` inside the namespace (port 0: any free port).
    /// For tokio: `l.set_nonblocking(true)?; tokio::net::TcpListener::from_std(l)`.
    pub fn bind(&self, port: u16) -> Result<std::net::TcpListener> {
        self.in_netns(move || std::net::TcpListener::bind(("127.0.0.1", port)))?
            .map_err(err(&format!("bind 127.0.0.1:{port} in the namespace")))
    }

    /// A listener on the target port of the service `role` (what its HiddenServicePort
    /// forwards to), inside the namespace.
    pub fn bind_service(&self, role: &str) -> Result<std::net::TcpListener> {
        self.bind(self.service(role).target_port)
    }

    /// A listener on the unix socket the service `role` forwards to (`ServiceSpec::unix_target`).
    /// A path in the filesystem, which every network namespace shares.
    pub fn bind_service_unix(&self, role: &str) -> Result<std::os::unix::net::UnixListener> {
        let path = self
            .service(role)
            .unix_target
            .clone()
            .ok_or_else(|| Error(format!("service {role} has no unix target")))?;
        std::os::unix::net::UnixListener::bind(&path)
            .map_err(err(&format!("bind {}", path.display())))
    }

    /// A TCP connection from inside the namespace to 127.0.0.1:`port` (timeouts set).
    pub fn connect(&self, port: u16, timeout: Duration) -> Result<std::net::TcpStream> {
        self.in_netns(move || http::connect(SocketAddr::from(([127, 0, 0, 1], port)), timeout))?
            .map_err(err(&format!("connect 127.0.0.1:{port} in the namespace")))
    }

    /// `GET http://127.0.0.1:port/path` from inside the namespace (e.g. the exporter's listener).
    pub fn http_get_local(
        &self,
        port: u16,
        path: &str,
        timeout: Duration,
    ) -> std::result::Result<Response, FetchError> {
        let stream = self
            .connect(port, timeout)
            .map_err(|e| FetchError::Io("connect", std::io::Error::other(e.0)))?;
        http::get_on(stream, &format!("127.0.0.1:{port}"), path, &[])
    }

    /// `GET http://host:port/path` through the client's SOCKS port (tor resolves `host`, e.g.
    /// `<onion56>.onion`). One try; wrap it in `wait_for` to retry.
    pub fn http_get_via_client(
        &self,
        host: &str,
        port: u16,
        path: &str,
        timeout: Duration,
    ) -> std::result::Result<Response, FetchError> {
        let mut stream = self
            .connect(self.socks_port, timeout)
            .map_err(|e| FetchError::Io("connect", std::io::Error::other(e.0)))?;
        socks::socks5_connect(&mut stream, host, port)?;
        http::get_on(stream, host, path, &[])
    }

    /// `GET path` on the onion service `role` (its virtual port) through the client.
    pub fn fetch_onion(
        &self,
        role: &str,
        path: &str,
        timeout: Duration,
    ) -> std::result::Result<Response, FetchError> {
        let s = self.service(role);
        self.http_get_via_client(&s.hostname(), s.virt_port, path, timeout)
    }

    /// Gives the client a v3 client-authorization key: writes `<name>.auth_private` with the
    /// line `<onion56>:descriptor:x25519:<PRIV52>` into its ClientOnionAuthDir and makes it
    /// reload (`SIGNAL RELOAD`). The key is never printed.
    pub fn add_client_auth(&self, name: &str, auth_private_line: &str) -> Result<()> {
        let path = self
            .client()
            .dir
            .join("onion_auth")
            .join(format!("{name}.auth_private"));
        write_private(&path, &format!("{}\n", auth_private_line.trim()))?;
        self.client()
            .control()?
            .command_ok("SIGNAL RELOAD")
            .map_err(err("client SIGNAL RELOAD"))?;
        Ok(())
    }

    /// The flags of a relay in the consensus as the client sees it (`GETINFO ns/id/<fpr>`).
    pub fn consensus_flags(&self, fingerprint: &str) -> Result<Vec<String>> {
        let entry = self.client().getinfo(&format!("ns/id/{fingerprint}"))?;
        entry
            .lines()
            .find_map(|l| l.strip_prefix("s "))
            .map(|s| s.split_whitespace().map(String::from).collect())
            .ok_or_else(|| Error(format!("no flags line for {fingerprint}")))
    }

    /// Nicknames of the routers in the consensus, from authority auth0 (`GETINFO ns/all`).
    pub fn consensus_nicknames(&self) -> Result<Vec<String>> {
        let all = self.authorities()[0].getinfo("ns/all")?;
        Ok(all
            .lines()
            .filter_map(|l| l.strip_prefix("r "))
            .filter_map(|l| l.split_whitespace().next())
            .map(String::from)
            .collect())
    }
}
