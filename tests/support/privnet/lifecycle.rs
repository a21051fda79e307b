//! Stopping and starting nodes of a running network: one node (`stop_node`, `start_node`,
//! `restart_node`) or all of them (on drop).

use std::time::{Duration, Instant};

use super::control;
use super::error::{wait_for, Error, Result};
use super::node::Kind;
use super::PrivNet;

const STOP_GRACE: Duration = Duration::from_secs(10);

impl PrivNet {
    /// Stops one node (SIGTERM, SIGKILL after 10 s) and starts it again with the same torrc and
    /// keys (see `start_node`); returns once it is at bootstrap 100 again, or fails after
    /// `timeout`.
    pub fn restart_node(&mut self, name: &str, timeout: Duration) -> Result<()> {
        self.stop_node(name)?;
        self.start_node(name)?;
        let node = self
            .node(name)
            .ok_or_else(|| Error(format!("no node {name}")))?;
        wait_for(
            &format!("{name} bootstrap 100 after restart"),
            timeout,
            || match node.bootstrap_progress() {
                Ok(100) => Ok(()),
                Ok(p) => Err(format!("progress {p}")),
                Err(e) => Err(e.0),
            },
        )
    }

    /// Stops one node (SIGTERM, SIGKILL after 10 s) and leaves it stopped.
    pub fn stop_node(&mut self, name: &str) -> Result<()> {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.name == name)
            .ok_or_else(|| Error(format!("no node {name}")))?;
        node.stop_begin();
        node.stop_finish(Instant::now() + STOP_GRACE);
        Ok(())
    }

    /// Starts a stopped node again. For the onion node and the client it waits (up to 30 s) for
    /// the control socket and re-attaches the HS_DESC recorder, so `onion_events()` /
    /// `client_events()` go on recording; otherwise it does not wait.
    pub fn start_node(&mut self, name: &str) -> Result<()> {
        let idx = self
            .nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| Error(format!("no node {name}")))?;
        if self.nodes[idx].child.is_some() {
            return Err(Error(format!("{name} is running")));
        }
        self.spawn_node(idx)?;
        let node = &self.nodes[idx];
        let log = match node.kind {
            Kind::OnionService => self.onion_events.as_ref(),
            Kind::Client => self.client_events.as_ref(),
            _ => None,
        };
        if let Some(log) = log {
            let deadline = Instant::now() + Duration::from_secs(30);
            let c = control::connect_until(&node.control_socket, &node.cookie_file, deadline)
                .map_err(Error)?;
            log.attach(c, &["HS_DESC"])?;
        }
        Ok(())
    }

    pub(super) fn stop_all(&mut self) {
        for n in self.nodes.iter_mut() {
            n.stop_begin();
        }
        let deadline = Instant::now() + STOP_GRACE;
        for n in self.nodes.iter_mut() {
            n.stop_finish(deadline);
        }
    }
}
