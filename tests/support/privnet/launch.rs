//! Launching: `PrivNet::start`/`start_with` (attempts), building the directories, keys and
//! torrcs, spawning every tor, the preflight check of the programs it needs, and private
//! (0700/0600) dirs and files.

use std::fs;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use super::error::{err, Error, Result};
use super::netns::NetNs;
use super::node::{new_node, Kind, Node, OnionService};
use super::options::{validate, Options};
use super::ready::Timings;
use super::slot::NetworkSlot;
use super::torrc::{common_torrc, server_torrc};
use super::{PrivNet, N_AUTH, N_RELAY};

impl PrivNet {
    /// Starts the default network and waits until it is ready (see the module doc).
    pub fn start() -> Result<PrivNet> {
        Self::start_with(Options::default())
    }

    /// Starts a network with `opts`, restarting it from scratch (new dirs, new keys) on failure
    /// up to `opts.attempts` times. The error carries each attempt's diagnosis.
    pub fn start_with(opts: Options) -> Result<PrivNet> {
        preflight()?;
        // One network at a time per process, two per machine (slot.rs says why): a further
        // `start` waits for a network to be dropped.
        let slot = NetworkSlot::acquire()?;
        let mut failures = Vec::new();
        for attempt in 1..=opts.attempts.max(1) {
            match Self::attempt(&opts, attempt) {
                Ok(mut net) => {
                    net._slot = Some(slot);
                    return Ok(net);
                }
                Err(e) => {
                    eprintln!("privnet: attempt {attempt} failed: {e}");
                    failures.push(format!("attempt {attempt}: {e}"));
                }
            }
        }
        Err(Error(failures.join("\n")))
    }

    fn attempt(opts: &Options, attempt: u32) -> Result<PrivNet> {
        let mut net = Self::launch(opts)?;
        net.timings.attempt = attempt;
        match net.wait_ready(opts) {
            Ok(()) => {
                net.ready = true;
                eprintln!("privnet: ready: {:?}", net.timings);
                Ok(net)
            }
            Err(e) => {
                let diag = net.diagnostics();
                Err(Error(format!("{e}\n{diag}")))
                // `net` drops here: tors stopped, dir removed unless PRIVNET_KEEP_DIRS=1.
            }
        }
    }

    /// Builds the directories, keys and torrcs, and launches every tor (no waiting).
    fn launch(opts: &Options) -> Result<PrivNet> {
        validate(opts)?;
        let tor_version = crate::support::tor::version().map_err(Error)?;
        let root = crate::support::temp_dir::Builder::new()
            .prefix("privnet-")
            .tempdir()
            .map_err(err("create temp dir"))?;
        let root_path = root.path().to_path_buf();
        let netns = NetNs::new().map_err(Error)?;

        // Ports: authorities OR+Dir, relays OR, client SOCKS, one target per service.
        let n_ports = N_AUTH * 2 + N_RELAY + 1 + opts.services.len();
        let mut ports = netns.free_ports(n_ports).map_err(Error)?.into_iter();
        let mut next_port = || ports.next().expect("enough ports");

        let mut net = PrivNet {
            nodes: Vec::new(),
            services: Vec::new(),
            socks_port: 0,
            onion_events: None,
            client_events: None,
            netns: Some(netns),
            root: Some(root),
            root_path: root_path.clone(),
            launched: Instant::now(),
            timings: Timings::default(),
            tor_version,
            ready: false,
            _slot: None,
        };

        // Authorities: keys first (their fingerprints go into everybody's DirAuthority lines).
        let keygen_start = Instant::now();
        write_private(&root_path.join("empty-torrc"), "")?;
        let mut auths = Vec::new();
        for i in 0..N_AUTH {
            let node = new_node(&root_path, &format!("auth{i}"), Kind::Authority)?;
            auths.push(Node {
                or_port: Some(next_port()),
                dir_port: Some(next_port()),
                ..node
            });
        }
        // In parallel: tor-gencert and tor --list-fingerprint take ~2 s each.
        let idents: Vec<Result<(String, String)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = auths
                .iter()
                .map(|node| scope.spawn(|| net.make_authority_keys(node)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("key generation panicked".into()))
                })
                .collect()
        });
        let mut dir_authority_lines = Vec::new();
        for (node, ident) in auths.into_iter().zip(idents) {
            let (v3ident, fpr) = ident?;
            dir_authority_lines.push(format!(
                "DirAuthority {} orport={} no-v2 v3ident={v3ident} 127.0.0.1:{} {fpr}",
                node.name,
                node.or_port.unwrap_or(0),
                node.dir_port.unwrap_or(0),
            ));
            net.nodes.push(node);
        }
        net.timings.keygen = keygen_start.elapsed();

        for i in 0..N_RELAY {
            let name = if i == 0 {
                opts.relay_nickname.clone()
            } else {
                format!("relay{i}")
            };
            let node = new_node(&root_path, &name, Kind::Relay)?;
            net.nodes.push(Node {
                or_port: Some(next_port()),
                ..node
            });
        }
        net.nodes
            .push(new_node(&root_path, "onion", Kind::OnionService)?);
        net.nodes
            .push(new_node(&root_path, "client", Kind::Client)?);
        net.socks_port = next_port();

        let onion_dir = net.nodes[N_AUTH + N_RELAY].dir.clone();
        let hs_parent = onion_dir.join("hs");
        make_private_dir(&hs_parent)?;
        for spec in &opts.services {
            let dir = hs_parent.join(&spec.role);
            if let Some(pubkey) = &spec.authorized_client {
                make_private_dir(&dir)?;
                make_private_dir(&dir.join("authorized_clients"))?;
                write_private(
                    &dir.join("authorized_clients/test.auth"),
                    &format!("{pubkey}\n"),
                )?;
            }
            net.services.push(OnionService {
                role: spec.role.clone(),
                onion: String::new(),
                dir,
                virt_port: spec.virt_port,
                target_port: next_port(),
                unix_target: spec
                    .unix_target
                    .then(|| hs_parent.join(format!("{}.sock", spec.role))),
                client_auth: spec.authorized_client.is_some(),
                extra_torrc: spec.extra_torrc.clone(),
            });
        }
        make_private_dir(&net.client().dir.join("onion_auth"))?;

        // torrcs
        let common = common_torrc(&dir_authority_lines);
        for idx in 0..net.nodes.len() {
            let node = &net.nodes[idx];
            let mut lines = common.clone();
            lines.push(format!("DataDirectory {}", node.dir.display()));
            lines.push(format!("Log notice file {}", node.log_file().display()));
            lines.push(format!("ControlSocket {}", node.control_socket.display()));
            lines.push("CookieAuthentication 1".into());
            lines.push(format!("CookieAuthFile {}", node.cookie_file.display()));
            match node.kind {
                Kind::Authority => {
                    lines.extend(server_torrc(node));
                    lines.extend(
                        [
                            "AuthoritativeDirectory 1",
                            "V3AuthoritativeDirectory 1",
                            "TestingV3AuthInitialVotingInterval 10",
                            "TestingV3AuthInitialVoteDelay 2",
                            "TestingV3AuthInitialDistDelay 2",
                            "V3AuthVotingInterval 10",
                            "V3AuthVoteDelay 2",
                            "V3AuthDistDelay 2",
                        ]
                        .map(String::from),
                    );
                    lines.push(format!("DirPort 127.0.0.1:{}", node.dir_port.unwrap_or(0)));
                    if opts.recommend_running_version {
                        lines.push("VersioningAuthoritativeDirectory 1".into());
                        lines.push(format!("RecommendedVersions {}", net.tor_version));
                    }
                    lines.extend(opts.authority_extra_torrc.iter().cloned());
                }
                Kind::Relay => {
                    lines.extend(server_torrc(node));
                    if idx == N_AUTH {
                        if let Some(max) = &opts.relay_accounting_max {
                            lines.push(format!("AccountingMax {max}"));
                        }
                        lines.extend(opts.relay_extra_torrc.iter().cloned());
                    }
                }
                Kind::OnionService => {
                    lines.push(format!(
                        "Log [rend]info file {}",
                        node.dir.join("rend.log").display()
                    ));
                    lines.push("SocksPort 0".into());
                    for s in &net.services {
                        lines.push(format!("HiddenServiceDir {}", s.dir.display()));
                        lines.push(match &s.unix_target {
                            Some(path) => {
                                format!("HiddenServicePort {} unix:{}", s.virt_port, path.display())
                            }
                            None => format!(
                                "HiddenServicePort {} 127.0.0.1:{}",
                                s.virt_port, s.target_port
                            ),
                        });
                        lines.extend(s.extra_torrc.iter().cloned());
                    }
                    lines.extend(opts.onion_extra_torrc.iter().cloned());
                }
                Kind::Client => {
                    lines.push(format!(
                        "Log [rend]info file {}",
                        node.dir.join("rend.log").display()
                    ));
                    lines.push(format!(
                        "SocksPort 127.0.0.1:{} ExtendedErrors",
                        net.socks_port
                    ));
                    lines.push(format!(
                        "ClientOnionAuthDir {}",
                        node.dir.join("onion_auth").display()
                    ));
                    lines.extend(opts.client_extra_torrc.iter().cloned());
                }
            }
            lines.push(String::new());
            write_private(&node.torrc, &lines.join("\n"))?;
        }

        net.launched = Instant::now();
        for idx in 0..net.nodes.len() {
            net.spawn_node(idx)?;
        }
        Ok(net)
    }

    pub(super) fn spawn_node(&mut self, idx: usize) -> Result<()> {
        let netns = self.netns.as_ref().expect("namespace");
        let node = &self.nodes[idx];
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("stdout.log"))
            .map_err(err("open stdout.log"))?;
        let out2 = out.try_clone().map_err(err("dup stdout.log"))?;
        let child = netns
            .command(crate::support::tor::program())
            .args(["--defaults-torrc", "/dev/null", "-f"])
            .arg(&node.torrc)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(out2)
            .spawn()
            .map_err(err("spawn tor"))?;
        self.nodes[idx].child = Some(child);
        Ok(())
    }
}

fn preflight() -> Result<()> {
    use crate::support::tor;
    let from_env = std::env::var_os(tor::ENV).is_some();
    for (prog, pkg) in [
        (tor::program(), "tor"),
        (tor::gencert_program(), "tor"),
        ("unshare".into(), "util-linux"),
        ("nsenter".into(), "util-linux"),
        ("ip".into(), "iproute2"),
    ] {
        if tor::locate(&prog).is_none() {
            let hint = if from_env && pkg == "tor" {
                format!(" (from {}={:?})", tor::ENV, tor::program())
            } else {
                format!(": apt-get install -y {pkg}")
            };
            return Err(Error(format!("{prog:?} not found{hint}")));
        }
    }
    Ok(())
}

pub(super) fn make_private_dir(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(err(&format!("mkdir {}", path.display())))
}

pub(super) fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(err(&format!("create {}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(err(&format!("write {}", path.display())))
}
