//! A TCP relay in front of a server inside the private network's namespace that counts the
//! connections accepted from an onion service (one per stream tor opens; each becomes exactly
//! one connection to the server) and the `GET /metrics` request lines that pass.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::PrivNet;

/// The relay; stops accepting when dropped.
pub struct CountingProxy {
    accepted: Arc<AtomicUsize>,
    scrapes: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CountingProxy {
    /// Relays from `listener` to 127.0.0.1:`upstream`. `listener` and the thread live in the
    /// namespace (threads inherit their creator's).
    pub fn start(net: &PrivNet, listener: TcpListener, upstream: u16) -> CountingProxy {
        let accepted = Arc::new(AtomicUsize::new(0));
        let scrapes = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s, st) = (accepted.clone(), scrapes.clone(), stop.clone());
        let thread = net
            .in_netns(move || {
                std::thread::spawn(move || {
                    listener.set_nonblocking(true).unwrap();
                    while !st.load(Ordering::Relaxed) {
                        match listener.accept() {
                            Ok((client, _)) => {
                                a.fetch_add(1, Ordering::Relaxed);
                                let s = s.clone();
                                std::thread::spawn(move || relay(client, upstream, &s));
                            }
                            // Nothing to accept: look at the stop flag again shortly.
                            Err(_) => std::thread::sleep(Duration::from_millis(20)),
                        }
                    }
                })
            })
            .expect("proxy thread in the namespace");
        CountingProxy {
            accepted,
            scrapes,
            stop,
            thread: Some(thread),
        }
    }

    /// (connections accepted, scrapes passed) so far.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.accepted.load(Ordering::Relaxed),
            self.scrapes.load(Ordering::Relaxed),
        )
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Copies both ways until either side closes, counting `GET /metrics` in what the client sends.
/// No Nagle delay on either side, so the relay adds as little as it can to a timed scrape.
fn relay(client: TcpStream, upstream: u16, scrapes: &AtomicUsize) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_nodelay(true);
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let _ = server.set_nodelay(true);
    let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let back = std::thread::spawn(move || {
        let (mut s_in, mut c_out) = (server, client);
        let _ = std::io::copy(&mut s_in, &mut c_out);
        let _ = c_out.shutdown(std::net::Shutdown::Both);
    });
    let mut buf = [0u8; 8192];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        match c_in.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if s_out.write_all(&buf[..n]).is_err() {
                    break;
                }
                tail.extend_from_slice(&buf[..n]);
                let needle = b"GET /metrics";
                let found = tail.windows(needle.len()).filter(|w| w == needle).count();
                scrapes.fetch_add(found, Ordering::Relaxed);
                let keep = tail.len().min(needle.len() - 1);
                tail.drain(..tail.len() - keep);
            }
        }
    }
    let _ = s_out.shutdown(std::net::Shutdown::Both);
    let _ = back.join();
}
