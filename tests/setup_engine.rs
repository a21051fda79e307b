//! The package's setup (`setup configure` and `setup remove`) against a temp root, with every
//! fault a server can meet at every single change the setup makes: cut off (kill -9, power loss)
//! before change k, the disk full at write k, and tor's account swapping a name in its folders
//! for a symlink to a root-only file or a FIFO before change k; then a second run. tor and
//! systemd are stand-ins here (a torrc reader with tor's rules that matter, a service manager
//! that is not running, or one whose tor publishes the onion service on reload); the container
//! package suite runs the same plan with the real ones.

#[path = "support/temp_dir.rs"]
mod temp_dir;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use securedrop_tor_exporter::setup::configure::{self, Host, Options};
use securedrop_tor_exporter::setup::paths::{self, Root};
use securedrop_tor_exporter::setup::remove;
use securedrop_tor_exporter::setup::system::{Services, TorCheck};
use securedrop_tor_exporter::setup::transaction::{Faults, NoFaults, Op};

const TORRC: &str = "## tor's own torrc\nSocksPort 0\n";
const ONION: &str = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion\n";

/// A root with what tor's package leaves: /etc/tor/torrc, /var/lib/tor (tor's), the accounts.
fn new_root() -> temp_dir::TempDir {
    let t = temp_dir::tempdir().unwrap();
    let r = t.path();
    let (uid, gid) = {
        let m = std::fs::metadata(r).unwrap();
        (m.uid(), m.gid())
    };
    for d in ["etc/tor", "var/lib/tor", "run"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    for d in ["etc", "etc/tor", "var", "var/lib", "var/lib/tor", "run"] {
        std::fs::set_permissions(r.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(r, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        r.join("etc/passwd"),
        format!("root:x:0:0::/root:/bin/sh\ndebian-tor:x:{uid}:{gid}::/var/lib/tor:/bin/false\n"),
    )
    .unwrap();
    std::fs::write(
        r.join("etc/group"),
        format!("root:x:0:\ndebian-tor:x:{gid}:\n"),
    )
    .unwrap();
    std::fs::write(r.join("etc/tor/torrc"), TORRC).unwrap();
    // the onion socket unit's socket, 0600, tor's
    let sock = r.join(securedrop_tor_exporter::setup::ONION_SOCKET.trim_start_matches('/'));
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).unwrap();
    t
}

/// tor's rules that matter here: `%include` of a file, `HiddenServiceDir` before its
/// `HiddenServicePort`, no folder twice; and a line `Reject` it refuses.
struct FakeTor {
    root: PathBuf,
}

impl FakeTor {
    fn lines(&self, file: &Path, out: &mut Vec<String>) -> Result<(), String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        for l in text.lines() {
            let l = l.trim();
            if let Some(p) = l.strip_prefix("%include ") {
                self.lines(&self.root.join(p.trim().trim_start_matches('/')), out)?;
            } else if !l.is_empty() && !l.starts_with('#') {
                out.push(l.to_owned());
            }
        }
        Ok(())
    }
    fn dirs(&self) -> Result<Vec<String>, String> {
        let mut lines = Vec::new();
        self.lines(&self.root.join("etc/tor/torrc"), &mut lines)?;
        let mut dirs: Vec<String> = Vec::new();
        for l in lines {
            if l == "Reject" {
                return Err("[warn] Reject".into());
            }
            if let Some(d) = l.strip_prefix("HiddenServiceDir ") {
                let d = d.trim_end_matches('/').to_owned();
                if dirs.contains(&d) {
                    return Err("[warn] Another hidden service is already configured".into());
                }
                dirs.push(d);
            } else if l.starts_with("HiddenServicePort") && dirs.is_empty() {
                return Err("[warn] HiddenServicePort with no preceding HiddenServiceDir".into());
            }
        }
        Ok(dirs)
    }
}

impl TorCheck for FakeTor {
    fn verify(&mut self) -> Result<(), String> {
        self.dirs().map(drop)
    }
    fn onion_dirs(&mut self) -> Result<Vec<String>, String> {
        self.dirs()
    }
}

/// A service manager. `running: false` is a chroot (nothing is reloaded); `true`: tor is
/// active, and a reload publishes the onion service (writes its hostname), as tor does.
struct FakeServices {
    root: PathBuf,
    running: bool,
    clock: Duration,
    reloads: u32,
}

impl Services for FakeServices {
    fn systemd_running(&mut self) -> bool {
        self.running
    }
    fn is_active(&mut self, _: &str) -> bool {
        true
    }
    fn property(&mut self, unit: &str, name: &str) -> String {
        match (unit, name) {
            (_, "MainPID") => "100".into(),
            (_, "NRestarts") => "0".into(),
            (_, "Listen") => "127.0.0.1:9747 (Stream)".into(),
            _ => String::new(),
        }
    }
    fn forbidden(&mut self, _: &str, _: &str) -> bool {
        false
    }
    fn invoke(&mut self, action: &str, _: &[&str]) {
        if action == "reload" {
            self.reloads += 1;
            let hs = self.root.join(paths::HS_DIR.trim_start_matches('/'));
            if hs.is_dir() {
                let _ = std::fs::write(hs.join("hostname"), ONION);
            }
        }
    }
    fn daemon_reload(&mut self) {}
    fn enable_if_new(&mut self, _: &str) {}
    fn pause(&mut self, d: Duration) {
        self.clock += d;
    }
    fn now(&mut self) -> Duration {
        self.clock
    }
}

struct Outcome {
    ok: bool,
    said: String,
}

fn opts() -> Options {
    Options {
        no_client_key: false,
        hostname_timeout: Duration::from_secs(5),
        listen_address: "127.0.0.1:9747".into(),
        tor_installed: true,
    }
}

fn run(root: &Path, faults: &mut dyn Faults, running: bool, configuring: bool) -> Outcome {
    let r = Root::new(root);
    let mut tor = FakeTor { root: root.into() };
    let mut services = FakeServices {
        root: root.into(),
        running,
        clock: Duration::ZERO,
        reloads: 0,
    };
    let mut said = String::new();
    let mut say = |l: &str| {
        said.push_str(l);
        said.push('\n');
    };
    let host = Host {
        root: &r,
        faults,
        tor: &mut tor,
        services: &mut services,
        say: &mut say,
    };
    let ok = if configuring {
        configure::configure(host, &opts()).is_ok()
    } else {
        remove::remove(host, true).is_ok()
    };
    Outcome { ok, said }
}

fn configure_ok(root: &Path) -> Outcome {
    let o = run(root, &mut NoFaults, true, true);
    assert!(o.ok, "configure failed:\n{}", o.said);
    o
}

/// Every file and folder under the root: kind, mode, owner and (for files) content; the keys,
/// random per run, by their shape.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, String>) {
        let mut names: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let m = p.symlink_metadata().unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let what = if m.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                walk(root, &p, out);
                format!("dir {:o}", m.mode() & 0o7777)
            } else if m.is_file() {
                let text = std::fs::read(&p).unwrap();
                let shown = if rel.ends_with("client.key")
                    || rel.ends_with("label.key")
                    || rel.ends_with(".auth")
                {
                    format!("{} bytes", text.len())
                } else {
                    String::from_utf8_lossy(&text).into_owned()
                };
                format!("file {:o} {shown}", m.mode() & 0o7777)
            } else {
                "other".to_owned()
            };
            out.insert(rel, what);
        }
    }
    walk(root, root, &mut out);
    out
}

/// The folders the setup makes once and keeps (not rolled back), taken out for comparisons with
/// the tree before a run.
fn without_package_dirs(mut t: BTreeMap<String, String>) -> BTreeMap<String, String> {
    for d in [paths::ETC_DIR, paths::CONF_D, paths::STATE_DIR] {
        t.remove(d.trim_start_matches('/'));
    }
    t
}

/// Counts the changes of a run, and can cut it off, fill the disk, or act as tor's account.
struct Injector {
    n: usize,
    at: Option<usize>,
    what: Fault,
    dead: Rc<RefCell<bool>>,
    fired: bool,
    secret: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Fault {
    Crash,
    DiskFull,
    Symlink,
    Fifo,
}

impl Injector {
    fn new(at: Option<usize>, what: Fault, secret: PathBuf) -> Injector {
        Injector {
            n: 0,
            at,
            what,
            dead: Rc::new(RefCell::new(false)),
            fired: false,
            secret,
        }
    }
}

/// A path tor's account can change: its onion folder and anything in it.
fn in_tor_folder(p: &Path) -> bool {
    let p = p.to_string_lossy();
    p.contains("/var/lib/tor/securedrop-tor-exporter/")
        || p.ends_with("/var/lib/tor/securedrop-tor-exporter")
}

impl Faults for Injector {
    fn before(&mut self, op: Op, path: &Path) -> io::Result<()> {
        if *self.dead.borrow() {
            return Err(io::Error::other("the process is gone"));
        }
        let k = self.n;
        self.n += 1;
        if Some(k) != self.at {
            return Ok(());
        }
        self.fired = true;
        match self.what {
            Fault::Crash => {
                *self.dead.borrow_mut() = true;
                Err(io::Error::other("the process is gone"))
            }
            Fault::DiskFull => {
                if matches!(op, Op::Create | Op::Write | Op::Journal | Op::MakeDir) {
                    Err(io::Error::from_raw_os_error(28))
                } else {
                    Ok(())
                }
            }
            Fault::Symlink | Fault::Fifo => {
                if in_tor_folder(path) && op != Op::Journal {
                    let _ = std::fs::remove_file(path);
                    if self.what == Fault::Symlink {
                        std::os::unix::fs::symlink(&self.secret, path).unwrap();
                    } else {
                        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
                        // SAFETY: a valid path string.
                        unsafe { libc_mkfifo(c.as_ptr(), 0o600) };
                    }
                } else {
                    self.fired = false;
                }
                Ok(())
            }
        }
    }
}

extern "C" {
    #[link_name = "mkfifo"]
    fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

fn changes_of_a_clean_run(prepare: impl Fn(&Path)) -> usize {
    let t = new_root();
    prepare(t.path());
    let mut count = Injector::new(None, Fault::Crash, PathBuf::new());
    let o = run(t.path(), &mut count, true, true);
    assert!(o.ok, "{}", o.said);
    count.n
}

fn leftovers(root: &Path) -> Vec<String> {
    tree(root)
        .keys()
        .filter(|k| {
            let n = k.rsplit('/').next().unwrap();
            paths::is_leftover(n) || n == "setup-journal"
        })
        .cloned()
        .collect()
}

#[test]
fn a_first_install_writes_the_onion_service_and_a_second_run_changes_nothing() {
    let t = new_root();
    let o = configure_ok(t.path());
    assert!(o.said.contains("made a client key"), "{}", o.said);
    let r = t.path();
    let torrc = std::fs::read_to_string(r.join("etc/tor/torrc")).unwrap();
    assert!(
        torrc.starts_with(TORRC)
            && torrc.contains("%include /etc/tor/securedrop-tor-exporter.torrc")
    );
    let dropin = std::fs::read_to_string(r.join("etc/tor/securedrop-tor-exporter.torrc")).unwrap();
    assert!(dropin.contains("HiddenServiceDir /var/lib/tor/securedrop-tor-exporter/\nHiddenServicePort 80 unix:/var/lib/tor/securedrop-tor-exporter.sock\n"));
    let key =
        std::fs::read_to_string(r.join("var/lib/securedrop-tor-exporter/client.key")).unwrap();
    let auth = std::fs::read_to_string(
        r.join("var/lib/tor/securedrop-tor-exporter/authorized_clients/standalone.auth"),
    )
    .unwrap();
    let public = securedrop_tor_exporter::keys::PrivateKey::parse(&key)
        .unwrap()
        .auth_line();
    assert_eq!(auth, format!("{public}\n"));
    let conf = std::fs::read_to_string(
        r.join("etc/securedrop-tor-exporter/config.d/50-metrics-onion.toml"),
    )
    .unwrap();
    assert!(
        conf.contains(&format!(
            "metrics = \"{}\"",
            ONION.trim().trim_end_matches(".onion")
        )),
        "{conf}"
    );
    assert_eq!(leftovers(r), Vec::<String>::new());
    let before = tree(r);
    let o = configure_ok(r);
    assert!(!o.said.contains("client key"), "{}", o.said);
    assert_eq!(tree(r), before, "a second run changes nothing");
}

/// Cut off before change k, for every k of a run, then `dpkg --configure -a`: the second run
/// ends as a clean install does, with nothing left over.
#[test]
fn a_run_cut_off_before_any_change_is_finished_by_the_next() {
    let n = changes_of_a_clean_run(|_| {});
    assert!(n > 15, "a first install makes {n} changes");
    eprintln!("a first install makes {n} changes: cut off before each");
    let clean = {
        let t = new_root();
        configure_ok(t.path());
        tree(t.path())
    };
    for k in 0..n {
        let t = new_root();
        let mut cut = Injector::new(Some(k), Fault::Crash, PathBuf::new());
        let _ = run(t.path(), &mut cut, true, true);
        assert!(cut.fired, "step {k}");
        let o = configure_ok(t.path());
        assert_eq!(
            tree(t.path()),
            clean,
            "cut off before change {k}, then run again:\n{}",
            o.said
        );
    }
}

/// Cut off before change k, then a configuration tor rejects: everything of ours is out and
/// tor's torrc is as it was.
#[test]
fn a_cut_off_run_then_a_configuration_tor_rejects_leaves_nothing_of_ours() {
    let n = changes_of_a_clean_run(|_| {});
    for k in 0..n {
        let t = new_root();
        let mut cut = Injector::new(Some(k), Fault::Crash, PathBuf::new());
        let _ = run(t.path(), &mut cut, true, true);
        // tor's torrc gets a service in our folder: with our drop-in tor refuses it
        let torrc = format!("{TORRC}HiddenServiceDir /var/lib/tor/securedrop-tor-exporter/\nHiddenServicePort 80 127.0.0.1:9999\n");
        std::fs::write(t.path().join("etc/tor/torrc"), &torrc).unwrap();
        let o = run(t.path(), &mut NoFaults, true, true);
        assert!(!o.ok, "{k}: {}", o.said);
        assert!(
            o.said
                .contains("the metrics onion service is out of tor's configuration"),
            "{k}: {}",
            o.said
        );
        assert_eq!(
            std::fs::read_to_string(t.path().join("etc/tor/torrc")).unwrap(),
            torrc,
            "{k}"
        );
        assert!(
            !t.path()
                .join("etc/tor/securedrop-tor-exporter.torrc")
                .exists(),
            "{k}"
        );
        assert_eq!(leftovers(t.path()), Vec::<String>::new(), "{k}");
    }
}

/// The disk full at each write of a first install and of an upgrade that changes the drop-in:
/// the run fails saying so, and every file is as before, byte for byte.
#[test]
fn a_full_disk_at_any_write_leaves_every_file_as_it_was() {
    let edit_dropin = |r: &Path| {
        let t = new_root();
        let _ = t;
        configure_ok(r);
        std::fs::write(r.join("etc/tor/securedrop-tor-exporter.torrc"), "# an older drop-in\nHiddenServiceDir /var/lib/tor/securedrop-tor-exporter/\nHiddenServicePort 80 127.0.0.1:9747\n").unwrap();
    };
    for (what, prepare) in [
        ("first install", &(|_: &Path| {}) as &dyn Fn(&Path)),
        ("upgrade", &edit_dropin),
    ] {
        let n = changes_of_a_clean_run(prepare);
        let mut failed = 0;
        for k in 0..n {
            let t = new_root();
            prepare(t.path());
            let before = without_package_dirs(tree(t.path()));
            let mut full = Injector::new(Some(k), Fault::DiskFull, PathBuf::new());
            let o = run(t.path(), &mut full, true, true);
            if o.ok {
                continue; // change k was a rename or a removal: no space needed
            }
            failed += 1;
            assert!(o.said.contains("disk full?"), "{what} {k}: {}", o.said);
            if o.said.contains("tor already runs the new configuration") {
                // after tor's reload (the onion address written down): nothing to undo
                assert!(!o.said.contains("back in place"));
                configure_ok(t.path());
                continue;
            }
            assert!(
                o.said
                    .contains("the previous tor configuration is back in place"),
                "{what} {k}: {}",
                o.said
            );
            assert_eq!(
                without_package_dirs(tree(t.path())),
                before,
                "{what}: full at change {k}:\n{}",
                o.said
            );
            configure_ok(t.path());
        }
        assert!(failed >= 3, "{what}: {failed} writes");
        eprintln!("{what}: {n} changes, the disk full at {failed} of them");
    }
}

/// tor's account swaps the name of change k in its folders for a symlink to a root-only file, or
/// for a FIFO: the file is never written or read through, no run hangs, and once the account
/// stops, a run repairs everything.
/// A named way to prepare the root before the run under test.
type Case<'a> = (&'a str, &'a dyn Fn(&Path));

#[test]
fn links_and_fifos_planted_in_tors_folders_lead_nowhere() {
    // a first install, and a run that must write standalone.auth again (emptied: a full disk
    // once), keeping the broken one as its backup in tor's folder
    let broken_auth = |r: &Path| {
        configure_ok(r);
        std::fs::write(
            r.join("var/lib/tor/securedrop-tor-exporter/authorized_clients/standalone.auth"),
            "",
        )
        .unwrap();
    };
    let cases: [Case; 2] = [("first install", &|_| {}), ("repair", &broken_auth)];
    for ((case, prepare), what) in cases
        .iter()
        .flat_map(|c| [(*c, Fault::Symlink), (*c, Fault::Fifo)])
    {
        let n = changes_of_a_clean_run(prepare);
        let mut fired = 0;
        for k in 0..n {
            let t = new_root();
            prepare(t.path());
            let secret = t.path().join("secret");
            std::fs::write(&secret, "root only\n").unwrap();
            std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
            let mut swap = Injector::new(Some(k), what, secret.clone());
            let o = run(t.path(), &mut swap, true, true);
            fired += usize::from(swap.fired);
            assert_eq!(
                std::fs::read_to_string(&secret).unwrap(),
                "root only\n",
                "{what:?} {k}: {}",
                o.said
            );
            assert_eq!(std::fs::metadata(&secret).unwrap().mode() & 0o777, 0o600);
            // the account's own leftovers: a planted link at a name of ours is taken out by it
            let o = run(t.path(), &mut NoFaults, true, true);
            if !o.ok {
                // a planted link where the account may keep files (its .auth names) is refused
                // by name, not followed; taking it away lets the run finish
                for d in [
                    "var/lib/tor/securedrop-tor-exporter",
                    "var/lib/tor/securedrop-tor-exporter/authorized_clients",
                ] {
                    let d = t.path().join(d);
                    if d.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
                        std::fs::remove_file(&d).unwrap();
                        continue;
                    }
                    for e in std::fs::read_dir(&d).into_iter().flatten() {
                        let p = e.unwrap().path();
                        let m = p.symlink_metadata().unwrap();
                        if !m.is_file() && !m.is_dir() {
                            std::fs::remove_file(p).unwrap();
                        }
                    }
                }
                configure_ok(t.path());
            }
            let auth = t
                .path()
                .join("var/lib/tor/securedrop-tor-exporter/authorized_clients/standalone.auth");
            assert!(auth.symlink_metadata().unwrap().is_file(), "{what:?} {k}");
            assert_eq!(std::fs::read_to_string(&secret).unwrap(), "root only\n");
        }
        assert!(fired >= 3, "{case} {what:?}: {fired} swaps");
        eprintln!("{case}, {what:?}: planted before {fired} of {n} changes");
    }
}

#[test]
fn remove_leaves_a_comment_and_puts_it_back_where_tor_needs_the_service() {
    let t = new_root();
    let r = t.path();
    configure_ok(r);
    let dropin = r.join("etc/tor/securedrop-tor-exporter.torrc");
    let o = run(r, &mut NoFaults, true, false);
    assert!(o.ok, "{}", o.said);
    assert_eq!(
        std::fs::read_to_string(&dropin).unwrap(),
        configure::DROPIN_REMOVED
    );
    // again: nothing to do
    assert!(run(r, &mut NoFaults, true, false).ok);
    // a torrc whose HiddenServicePort needs the drop-in's HiddenServiceDir before it
    configure_ok(r);
    let with = std::fs::read_to_string(&dropin).unwrap();
    std::fs::write(
        r.join("etc/tor/torrc"),
        format!(
            "{}HiddenServicePort 81 127.0.0.1:1\n",
            std::fs::read_to_string(r.join("etc/tor/torrc")).unwrap()
        ),
    )
    .unwrap();
    let o = run(r, &mut NoFaults, true, false);
    assert!(!o.ok);
    assert!(
        o.said.contains("it is back in place, tor was not reloaded"),
        "{}",
        o.said
    );
    assert_eq!(std::fs::read_to_string(&dropin).unwrap(), with);
    assert_eq!(leftovers(r), Vec::<String>::new());
}

#[test]
fn a_run_of_the_shell_postinst_cut_off_means_ours_goes_out_if_tor_rejects() {
    let t = new_root();
    let r = t.path();
    configure_ok(r);
    std::fs::write(
        r.join("var/lib/securedrop-tor-exporter/configure-in-progress"),
        "postinst run\n",
    )
    .unwrap();
    std::fs::write(
        r.join("etc/tor/torrc"),
        format!(
            "{}Reject\n",
            std::fs::read_to_string(r.join("etc/tor/torrc")).unwrap()
        ),
    )
    .unwrap();
    let o = run(r, &mut NoFaults, true, true);
    assert!(!o.ok);
    assert!(
        o.said.contains("taking the metrics onion service out"),
        "{}",
        o.said
    );
    let torrc = std::fs::read_to_string(r.join("etc/tor/torrc")).unwrap();
    assert!(
        !torrc.contains("%include /etc/tor/securedrop-tor-exporter.torrc"),
        "{torrc}"
    );
    assert!(!r
        .join("var/lib/securedrop-tor-exporter/configure-in-progress")
        .exists());
}

#[test]
fn a_symlinked_onion_folder_is_refused_by_name_and_not_followed() {
    let t = new_root();
    let r = t.path();
    configure_ok(r);
    let clients = r.join("var/lib/tor/securedrop-tor-exporter/authorized_clients");
    let elsewhere = r.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::rename(&clients, r.join("clients.real")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &clients).unwrap();
    let before = tree(r);
    let o = run(r, &mut NoFaults, true, true);
    assert!(!o.ok);
    assert!(
        o.said
            .contains("/var/lib/tor/securedrop-tor-exporter/authorized_clients is a symbolic link"),
        "{}",
        o.said
    );
    assert_eq!(
        tree(r),
        before,
        "nothing written, the link's folder untouched"
    );
}

/// Only the owner of the root folder (root, on a server) may run the setup: anyone else would
/// fail halfway. Checked where the test runs as root (CI), with a root folder of `nobody`'s.
#[test]
fn the_setup_refuses_to_run_as_another_account_than_the_roots_owner() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        eprintln!("skipped: needs root to give the root folder to another account");
        return;
    }
    let t = new_root();
    let before = tree(t.path());
    std::os::unix::fs::chown(t.path(), Some(65534), Some(65534)).unwrap();
    for configuring in [true, false] {
        let o = run(t.path(), &mut NoFaults, true, configuring);
        assert!(!o.ok);
        assert!(o.said.contains("the setup must run as root"), "{}", o.said);
    }
    assert_eq!(tree(t.path()), before, "nothing written");
    std::os::unix::fs::chown(t.path(), Some(0), Some(0)).unwrap();
}
