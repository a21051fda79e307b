//! Torrc generation: the lines every node shares, those of servers, and the authorities' keys
//! (whose fingerprints go into every `DirAuthority` line).

use std::fs;
use std::io::Write;
use std::process::Stdio;

use super::error::{err, Error, Result};
use super::launch::make_private_dir;
use super::node::Node;
use super::PrivNet;

impl PrivNet {
    /// Generates one authority's v3 keys (tor-gencert) and relay identity (tor
    /// --list-fingerprint); returns (v3ident, relay fingerprint).
    pub(super) fn make_authority_keys(&self, node: &Node) -> Result<(String, String)> {
        let or_port = node.or_port.unwrap_or(0);
        let dir_port = node.dir_port.unwrap_or(0);
        let keys = node.dir.join("keys");
        make_private_dir(&keys)?;
        let id_dir = self.root_path.join(format!("{}-identity", node.name));
        make_private_dir(&id_dir)?;
        // Inside the namespace too, though it only touches files.
        let mut gencert = self
            .netns()
            .command(crate::support::tor::gencert_program())
            .arg("--create-identity-key")
            .args(["--passphrase-fd", "0"])
            .args(["-m", "12"])
            .arg("-a")
            .arg(format!("127.0.0.1:{dir_port}"))
            .arg("-i")
            .arg(id_dir.join("authority_identity_key"))
            .arg("-s")
            .arg(keys.join("authority_signing_key"))
            .arg("-c")
            .arg(keys.join("authority_certificate"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(err("run tor-gencert (package tor)"))?;
        // Empty passphrase: a throwaway test key.
        gencert
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(b"\n")
            .map_err(err("tor-gencert stdin"))?;
        let out = gencert.wait_with_output().map_err(err("tor-gencert"))?;
        if !out.status.success() {
            return Err(Error(format!(
                "tor-gencert failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let cert = fs::read_to_string(keys.join("authority_certificate"))
            .map_err(err("read authority_certificate"))?;
        let v3ident = cert
            .lines()
            .find_map(|l| l.strip_prefix("fingerprint "))
            .map(|s| s.trim().to_string())
            .ok_or_else(|| Error("no fingerprint line in authority_certificate".into()))?;

        let empty = self.root_path.join("empty-torrc");
        let out = self
            .netns()
            .command(crate::support::tor::program())
            .args(["--list-fingerprint", "--defaults-torrc", "/dev/null", "-f"])
            .arg(&empty)
            .arg("--DataDirectory")
            .arg(&node.dir)
            .args(["--Nickname", &node.name])
            .args(["--ORPort", &format!("127.0.0.1:{or_port}")])
            .args(["--DisableNetwork", "1", "--Log", "err stderr"])
            .stdin(Stdio::null())
            .output()
            .map_err(err("run tor --list-fingerprint"))?;
        if !out.status.success() {
            return Err(Error(format!(
                "tor --list-fingerprint failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let fpr = node.fingerprint()?;
        Ok((v3ident, fpr))
    }
}

/// Lines every node shares.
pub(super) fn common_torrc(dir_authority_lines: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = [
        "TestingTorNetwork 1",
        // Fast, small-network settings (the defaults wait for stability a 1-minute-old
        // network never has).
        "AssumeReachable 1",
        "PathsNeededToBuildCircuits 0.25",
        "TestingDirAuthVoteGuard *",
        "TestingDirAuthVoteHSDir *",
        "V3AuthNIntervalsValid 2",
        "ShutdownWaitLength 0",
        "SafeLogging 1",
        "RunAsDaemon 0",
    ]
    .map(String::from)
    .to_vec();
    lines.push(format!("__OwningControllerProcess {}", std::process::id()));
    lines.extend(dir_authority_lines.iter().cloned());
    lines
}

/// Lines of authorities and relays (server mode on loopback only).
pub(super) fn server_torrc(node: &Node) -> Vec<String> {
    vec![
        format!("Nickname {}", node.name),
        format!("ContactInfo {}@privnet.invalid", node.name),
        "Address 127.0.0.1".into(),
        format!("ORPort 127.0.0.1:{}", node.or_port.unwrap_or(0)),
        "SocksPort 0".into(),
        "ExitRelay 0".into(),
        "ExitPolicy reject *:*".into(),
    ]
}
