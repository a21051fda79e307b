//! The `torrc` and `check-onion-address` subcommands as the maintainer scripts and the role call
//! them: against temporary files, and with the real `tor` run as debian-tor for `verify` and
//! `onion-dirs` (`--verify-config` and `--dump-config` only, with `DisableNetwork 1`: tor never
//! starts and never reaches the network).

#[path = "support/temp_dir.rs"]
mod temp_dir;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use securedrop_tor_exporter::control::OnionAddress;
use securedrop_tor_exporter::setup::include::{Layout, INCLUDE_LINE};

#[path = "fixtures/include_lines.rs"]
mod include_lines;
use include_lines::INCLUDE_LINES;

const BIN: &str = env!("CARGO_BIN_EXE_securedrop-tor-exporter");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn run_path(args: &[&str], path: &Path) -> Output {
    Command::new(BIN).args(args).arg(path).output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A folder debian-tor can read (tor runs as debian-tor there), removed when dropped.
struct Dir(temp_dir::TempDir);

impl Dir {
    fn new() -> Dir {
        let d = temp_dir::Builder::new()
            .prefix("setup-cli-")
            .tempdir_in(std::env::temp_dir())
            .unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Dir(d)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    /// The names in the folder, so that a test sees a temporary file left behind.
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `verify` and `onion-dirs` run tor as debian-tor: that takes root and the account.
fn can_run_tor_as_debian_tor() -> bool {
    let ok = is_root()
        && Command::new("id")
            .arg("debian-tor")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        && Command::new("tor")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: needs root, tor and the debian-tor account");
    }
    ok
}

#[test]
fn include_line_is_the_line_has_include_accepts() {
    let o = run(&["torrc", "include-line"]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        format!("{INCLUDE_LINE}\n")
    );
    let d = Dir::new();
    let torrc = d.write("torrc", &format!("SocksPort 0\n{INCLUDE_LINE}\n"));
    assert_eq!(code(&run_path(&["torrc", "has-include"], &torrc)), 0);
}

#[test]
fn has_include_answers_yes_no_or_error() {
    let d = Dir::new();
    let with = d.write(
        "with",
        "RunAsDaemon 1\n%include /etc/tor/securedrop-tor-exporter.torrc # SecureDrop's template\n",
    );
    let without = d.write(
        "without",
        "RunAsDaemon 1\n# %include /etc/tor/securedrop-tor-exporter.torrc\n",
    );
    assert_eq!(code(&run_path(&["torrc", "has-include"], &with)), 0);
    assert_eq!(code(&run_path(&["torrc", "has-include"], &without)), 1);
    let missing = run_path(&["torrc", "has-include"], &d.path().join("nope"));
    assert_eq!(
        code(&missing),
        2,
        "an unreadable torrc is neither yes nor no"
    );
    assert!(
        stderr(&missing).contains("cannot read"),
        "{}",
        stderr(&missing)
    );
    let counted = run_path(&["torrc", "has-include", "--count"], &with);
    assert_eq!(String::from_utf8(counted.stdout).unwrap(), "1\n");
    let counted = run_path(&["torrc", "has-include", "--count"], &without);
    assert_eq!(
        (code(&counted), String::from_utf8(counted.stdout).unwrap()),
        (1, "0\n".into())
    );
}

#[test]
fn add_then_remove_gives_back_the_file_byte_for_byte_with_its_mode_and_owner() {
    let d = Dir::new();
    let before = "# an admin's torrc\nSocksPort 0\nLog notice syslog";
    let torrc = d.write("torrc", before);
    std::fs::set_permissions(&torrc, std::fs::Permissions::from_mode(0o640)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&torrc, Some(4242), Some(4343)).unwrap();
    }
    let owner = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.mode() & 0o7777, m.uid(), m.gid())
    };
    let was = owner(&torrc);

    assert_eq!(code(&run_path(&["torrc", "add-include"], &torrc)), 0);
    let added = std::fs::read_to_string(&torrc).unwrap();
    assert_eq!(
        added,
        format!("{before}\n\n{}\n{INCLUDE_LINE}\n", Layout::Current.mark())
    );
    assert_eq!(owner(&torrc), was);
    assert_eq!(code(&run_path(&["torrc", "has-include"], &torrc)), 0);

    // a second add changes nothing
    assert_eq!(code(&run_path(&["torrc", "add-include"], &torrc)), 0);
    assert_eq!(std::fs::read_to_string(&torrc).unwrap(), added);

    assert_eq!(code(&run_path(&["torrc", "remove-include"], &torrc)), 0);
    assert_eq!(
        std::fs::read_to_string(&torrc).unwrap(),
        format!("{before}\n")
    );
    assert_eq!(owner(&torrc), was);
    assert_eq!(code(&run_path(&["torrc", "has-include"], &torrc)), 1);
    assert_eq!(code(&run_path(&["torrc", "remove-include"], &torrc)), 0);
    assert_eq!(d.names(), ["torrc"], "no temporary file left behind");
}

#[test]
fn add_include_leaves_a_torrc_that_includes_the_dropin_otherwise() {
    let d = Dir::new();
    let text = "  %include \"/etc/tor/securedrop-tor-exporter.torrc\"  # by hand\n";
    let torrc = d.write("torrc", text);
    assert_eq!(code(&run_path(&["torrc", "add-include"], &torrc)), 0);
    assert_eq!(std::fs::read_to_string(&torrc).unwrap(), text);
    // and remove-include never takes a line it did not add
    assert_eq!(code(&run_path(&["torrc", "remove-include"], &torrc)), 0);
    assert_eq!(std::fs::read_to_string(&torrc).unwrap(), text);
}

#[test]
fn remove_include_old_layout_takes_only_the_old_marked_line() {
    let d = Dir::new();
    let old = Layout::Old;
    let torrc = d.write(
        "torrc",
        &format!("SocksPort 0\n\n{}\n{}\n", old.mark(), old.line()),
    );
    assert_eq!(
        code(&run_path(&["torrc", "has-include", "--old-layout"], &torrc)),
        0
    );
    assert_eq!(code(&run_path(&["torrc", "remove-include"], &torrc)), 0);
    assert_eq!(
        code(&run_path(&["torrc", "has-include", "--old-layout"], &torrc)),
        0
    );
    assert_eq!(
        code(&run_path(
            &["torrc", "remove-include", "--old-layout"],
            &torrc
        )),
        0
    );
    assert_eq!(std::fs::read_to_string(&torrc).unwrap(), "SocksPort 0\n");
    assert_eq!(
        code(&run_path(&["torrc", "has-include", "--old-layout"], &torrc)),
        1
    );
}

#[test]
fn a_symlinked_torrc_is_edited_at_its_target_and_stays_a_link() {
    let d = Dir::new();
    std::fs::create_dir(d.path().join("real")).unwrap();
    let target = d.write("real/torrc", "SocksPort 0\n");
    let link = d.path().join("torrc");
    std::os::unix::fs::symlink("real/torrc", &link).unwrap();
    assert_eq!(code(&run_path(&["torrc", "add-include"], &link)), 0);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(&target)
        .unwrap()
        .ends_with(&format!("{INCLUDE_LINE}\n")));
    assert_eq!(d.names(), ["real", "torrc"]);
    let mut in_real: Vec<_> = std::fs::read_dir(d.path().join("real")).unwrap().collect();
    assert_eq!(
        in_real.len(),
        1,
        "the temporary file went beside the target and is gone"
    );
    assert_eq!(in_real.pop().unwrap().unwrap().file_name(), "torrc");
}

#[test]
fn refuses_to_edit_what_is_not_a_regular_file() {
    let d = Dir::new();
    let fifo = d.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let folder = d.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    let to_dev = d.path().join("null-link");
    std::os::unix::fs::symlink("/dev/null", &to_dev).unwrap();
    for (what, p) in [
        ("fifo", &fifo),
        ("folder", &folder),
        ("link to /dev/null", &to_dev),
    ] {
        for cmd in [
            &["torrc", "add-include"][..],
            &["torrc", "remove-include"],
            &["torrc", "add-include", "--print"],
            &["torrc", "remove-include", "--print"],
        ] {
            let o = run_path(cmd, p);
            assert_eq!(code(&o), 1, "{cmd:?} {what}");
            assert!(
                stderr(&o).contains("not a regular file"),
                "{cmd:?} {what}: {}",
                stderr(&o)
            );
        }
    }
    let missing = run_path(&["torrc", "add-include"], &d.path().join("nope"));
    assert_eq!(code(&missing), 1);
    assert!(
        !d.path().join("nope").exists(),
        "add-include never creates a torrc"
    );
    assert_eq!(d.names(), ["fifo", "folder", "null-link"]);
}

/// On a full file system the write fails, the torrc stays as it was and no temporary file is
/// left: the edit runs in a private mount namespace on a 16 KiB tmpfs.
#[test]
fn a_full_disk_leaves_the_torrc_as_it_was() {
    if !is_root() {
        eprintln!("skipped: needs root (mount namespace)");
        return;
    }
    let d = Dir::new();
    let script = format!(
        r#"set -e
mount -t tmpfs -o size=16k setup-cli {dir}
head -c 10000 /dev/zero | tr '\0' '#' >{dir}/torrc
before=$(sha256sum <{dir}/torrc)
if {bin} torrc add-include {dir}/torrc 2>{dir}/err; then echo "add-include succeeded"; exit 1; fi
grep -q 'cannot write .*No space left on device' {dir}/err || {{ cat {dir}/err; exit 1; }}
test "$(sha256sum <{dir}/torrc)" = "$before" || {{ echo "torrc changed"; exit 1; }}
test "$(ls -A {dir})" = "$(printf 'err\ntorrc')" || {{ ls -A {dir}; exit 1; }}
"#,
        dir = d.path().display(),
        bin = BIN
    );
    let o = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
}

/// A defaults file like tor@default's (with its `User debian-tor`, which `verify` must lift),
/// but with nothing of the machine's tor and no network.
fn tor_files(d: &Dir) -> PathBuf {
    d.write(
        "defaults",
        &format!(
            "DataDirectory {}/data\nDisableNetwork 1\nSocksPort 0\nRunAsDaemon 1\nUser debian-tor\n",
            d.path().display()
        ),
    )
}

fn tor_run(args: &[&str], defaults: &Path, torrc: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--defaults-torrc")
        .arg(defaults)
        .arg(torrc)
        .output()
        .unwrap()
}

#[test]
fn verify_accepts_a_good_torrc_and_prints_tors_reasons_for_a_bad_one() {
    if !can_run_tor_as_debian_tor() {
        return;
    }
    let d = Dir::new();
    let defaults = tor_files(&d);
    let dropin = d.write(
        "dropin.torrc",
        &format!(
            "HiddenServiceDir {}/hs/\nHiddenServicePort 80 127.0.0.1:9747\n",
            d.path().display()
        ),
    );
    let good = d.write("good", &format!("%include {}\n", dropin.display()));
    let o = tor_run(&["torrc", "verify"], &defaults, &good);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(o.stdout, b"", "quiet when all is well");

    let bad = d.write("bad", "HiddenServicePort 80 127.0.0.1:9747\n");
    let o = tor_run(&["torrc", "verify"], &defaults, &bad);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains("tor --verify-config (as debian-tor) rejected"),
        "{err}"
    );
    assert!(
        err.lines().any(|l| l.starts_with("    ")
            && l.contains("[warn] HiddenServicePort with no preceding HiddenServiceDir")),
        "{err}"
    );
    assert!(!err.contains("[notice]"), "only warnings and errors: {err}");

    // a file debian-tor cannot read, as after a root-only edit
    std::fs::set_permissions(&dropin, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = tor_run(&["torrc", "verify"], &defaults, &good);
    assert_eq!(
        code(&o),
        1,
        "tor as debian-tor cannot read a 0600 root file"
    );
    assert!(
        stderr(&o).contains("Error reading included configuration file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn verify_with_the_units_own_defaults_file() {
    let defaults = Path::new("/usr/share/tor/tor-service-defaults-torrc");
    if !can_run_tor_as_debian_tor() || !defaults.exists() {
        return;
    }
    let d = Dir::new();
    // DisableNetwork 1 even though verify never starts tor
    let torrc = d.write("torrc", "DisableNetwork 1\n");
    let o = run_path(&["torrc", "verify"], &torrc);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn onion_dirs_lists_every_service_and_verify_keeps_them() {
    if !can_run_tor_as_debian_tor() {
        return;
    }
    let d = Dir::new();
    let defaults = tor_files(&d);
    let p = d.path().display().to_string();
    let other = d.write(
        "other.conf",
        &format!("HiddenServiceDir {p}/admin/\nHiddenServicePort 22 127.0.0.1:22\n"),
    );
    let both = d.write(
        "both",
        &format!(
            "HiddenServiceDir {p}/source\nHiddenServicePort 80 127.0.0.1:80\n%include {}\n",
            other.display()
        ),
    );
    let o = tor_run(&["torrc", "onion-dirs"], &defaults, &both);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let listed = String::from_utf8(o.stdout).unwrap();
    assert_eq!(listed, format!("{p}/source\n{p}/admin\n"));
    let list = d.write("before", &listed);

    let o = Command::new(BIN)
        .args(["torrc", "verify", "--keep-onion-dirs"])
        .arg(&list)
        .arg("--defaults-torrc")
        .arg(&defaults)
        .arg(&both)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // the include of the admin's file is gone: valid for tor, but a service is lost
    let fewer = d.write(
        "fewer",
        &format!("HiddenServiceDir {p}/source/\nHiddenServicePort 80 127.0.0.1:80\n"),
    );
    let o = Command::new(BIN)
        .args(["torrc", "verify", "--keep-onion-dirs"])
        .arg(&list)
        .arg("--defaults-torrc")
        .arg(&defaults)
        .arg(&fewer)
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("onion service(s) in {p}/admin,")),
        "{err}"
    );
    assert!(!err.contains(&format!("{p}/source")), "{err}");

    let broken = d.write("broken", "HiddenServicePort 80 127.0.0.1:80\n");
    let o = tor_run(&["torrc", "onion-dirs"], &defaults, &broken);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("torrc verify"), "{}", stderr(&o));
}

fn check_address(args: &[&str], stdin: &str) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(BIN)
        .arg("check-onion-address")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn check_onion_address_from_a_hostname_file_or_stdin() {
    let addr = OnionAddress::from_public_key(&[42; 32]);
    let a = addr.expose().to_owned();
    let d = Dir::new();
    let hostname = d.write("hostname", &format!("{a}.onion\n"));
    let o = run_path(&["check-onion-address"], &hostname);
    assert_eq!((code(&o), o.stdout.len()), (0, 0));
    let o = run_path(&["check-onion-address", "--print"], &hostname);
    assert_eq!(String::from_utf8(o.stdout).unwrap(), format!("{a}\n"));
    assert_eq!(code(&check_address(&[], &a)), 0);

    // the shape the old regexes accepted, but a wrong checksum
    let typo = format!("{}{}", if a.starts_with('a') { "b" } else { "a" }, &a[1..]);
    for bad in [typo.as_str(), &a[..55], "", &format!("{a}\n{a}\n")] {
        let o = check_address(&[], bad);
        assert_eq!(code(&o), 1, "{bad:?}");
        let err = stderr(&o);
        assert!(
            err.contains("standard input: not a v3 onion address"),
            "{err}"
        );
        assert!(
            bad.is_empty() || !err.contains(bad),
            "never repeats the input: {err}"
        );
    }
    let o = run_path(&["check-onion-address"], &d.path().join("nope"));
    assert_eq!(code(&o), 2, "an unreadable file is neither yes nor no");
}

#[test]
fn configuration_flags_are_refused_before_these_subcommands() {
    let o = run(&["--log.level", "debug", "torrc", "include-line"]);
    // A usage error, found while parsing: exit 2 like every other one.
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("configuration flags belong to"),
        "{}",
        stderr(&o)
    );
}

/// The include lines `has-include` accepts and refuses are the ones tor itself reads as an
/// include, or not: each line, with the drop-in's path swapped for a temporary file holding an
/// onion service, is given to the real tor (`--dump-config`, no network), which must list that
/// service exactly when `includes_dropin` says yes.
#[test]
fn tor_agrees_with_the_include_lines_has_include_accepts() {
    use securedrop_tor_exporter::setup::include::{includes_dropin, DROPIN};
    if !can_run_tor_as_debian_tor() {
        return;
    }
    let d = Dir::new();
    let defaults = tor_files(&d);
    let stand_in = d.write(
        "stand-in.torrc",
        &format!(
            "HiddenServiceDir {}/hs\nHiddenServicePort 80 127.0.0.1:9\n",
            d.path().display()
        ),
    );
    let stand_in = stand_in.to_str().unwrap();
    assert_eq!(stand_in.len(), stand_in.trim().len());
    for &line in INCLUDE_LINES {
        let ours = includes_dropin(line.as_bytes());
        let torrc = d.write("torrc", &format!("{}\n", line.replace(DROPIN, stand_in)));
        let o = tor_run(&["torrc", "onion-dirs"], &defaults, &torrc);
        let listed = String::from_utf8_lossy(&o.stdout).into_owned();
        let tor_reads_it = code(&o) == 0 && listed.contains("/hs");
        assert_eq!(ours, tor_reads_it, "{line:?}: {listed} {}", stderr(&o));
    }
}

#[test]
fn has_include_others_leaves_out_the_packages_own_line() {
    let d = Dir::new();
    let torrc = d.write("torrc", "SocksPort 0\n");
    assert_eq!(code(&run_path(&["torrc", "add-include"], &torrc)), 0);
    let o = run_path(&["torrc", "has-include", "--others", "--count"], &torrc);
    assert_eq!(
        (code(&o), String::from_utf8(o.stdout).unwrap()),
        (1, "0\n".into())
    );
    std::fs::write(&torrc, format!("{INCLUDE_LINE} # SecureDrop's template\n")).unwrap();
    assert_eq!(
        code(&run_path(&["torrc", "has-include", "--others"], &torrc)),
        0
    );
}

#[test]
fn has_include_ours_asks_only_about_the_packages_marked_line() {
    let d = Dir::new();
    let torrc = d.write("torrc", &format!("{INCLUDE_LINE}\n"));
    assert_eq!(
        code(&run_path(&["torrc", "has-include", "--ours"], &torrc)),
        1
    );
    std::fs::write(&torrc, "SocksPort 0\n").unwrap();
    assert_eq!(code(&run_path(&["torrc", "add-include"], &torrc)), 0);
    assert_eq!(
        code(&run_path(&["torrc", "has-include", "--ours"], &torrc)),
        0
    );
    assert_eq!(
        code(&run_path(&["torrc", "has-include", "--old-layout"], &torrc)),
        1
    );
    assert_eq!(code(&run_path(&["torrc", "remove-include"], &torrc)), 0);
    assert_eq!(
        code(&run_path(&["torrc", "has-include", "--ours"], &torrc)),
        1
    );
}

#[test]
fn check_onion_address_refuses_what_is_not_a_small_regular_file_at_once() {
    // a hostname file swapped for a link to an endless file, for a FIFO nobody writes, or for a
    // file too large: an error (exit 2, not the "no" of 1), at once, not a hang
    let d = Dir::new();
    let link = d.path().join("hostname");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let fifo = d.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let started = std::time::Instant::now();
    for path in [&link, &fifo] {
        let o = run_path(&["check-onion-address"], path);
        assert_eq!(code(&o), 2, "{}", stderr(&o));
        assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let big = d.path().join("big");
    std::fs::write(&big, vec![b'a'; 5000]).unwrap();
    let o = run_path(&["check-onion-address"], &big);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("larger than 4096 bytes"),
        "{}",
        stderr(&o)
    );
}

/// `--print` is how the maintainer scripts get the new text (they write it themselves, with their
/// rollback): the same bytes the in-place edit writes, on standard output, the file untouched.
#[test]
fn print_gives_the_edits_text_and_leaves_the_file_alone() {
    let d = Dir::new();
    let old = Layout::Old;
    // no final newline: the printed text must keep the last line as it is
    let before = format!(
        "SocksPort 0\n\n{}\n{}\nLog notice syslog",
        old.mark(),
        old.line()
    );
    let torrc = d.write("torrc", &before);
    let print = |args: &[&str]| {
        let o = run_path(args, &torrc);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        assert_eq!(
            std::fs::read_to_string(&torrc).unwrap(),
            before,
            "{args:?} wrote"
        );
        String::from_utf8(o.stdout).unwrap()
    };
    let added = print(&["torrc", "add-include", "--print"]);
    let dropped_old = print(&["torrc", "remove-include", "--old-layout", "--print"]);
    // nothing to take out: the text as it is
    assert_eq!(print(&["torrc", "remove-include", "--print"]), before);

    assert_eq!(code(&run_path(&["torrc", "add-include"], &torrc)), 0);
    assert_eq!(std::fs::read_to_string(&torrc).unwrap(), added);
    std::fs::write(&torrc, &before).unwrap();
    assert_eq!(
        code(&run_path(
            &["torrc", "remove-include", "--old-layout"],
            &torrc
        )),
        0
    );
    assert_eq!(std::fs::read_to_string(&torrc).unwrap(), dropped_old);
    assert!(
        dropped_old.ends_with("Log notice syslog"),
        "{dropped_old:?}"
    );
    assert_eq!(d.names(), ["torrc"], "no temporary file left behind");
}

/// `include-line --marked` is what add-include appends (after a blank line), and with
/// `--old-layout` what remove-include --old-layout takes out: the package's tests build their
/// torrcs from it.
#[test]
fn include_line_marked_is_what_add_include_appends_and_remove_include_takes() {
    let marked = |args: &[&str]| {
        let o = run(args);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let current = marked(&["torrc", "include-line", "--marked"]);
    let old = marked(&["torrc", "include-line", "--marked", "--old-layout"]);
    assert_ne!(current, old);
    let d = Dir::new();
    let torrc = d.write("torrc", "SocksPort 0\n");
    assert_eq!(code(&run_path(&["torrc", "add-include"], &torrc)), 0);
    assert_eq!(
        std::fs::read_to_string(&torrc).unwrap(),
        format!("SocksPort 0\n\n{current}")
    );
    std::fs::write(&torrc, format!("SocksPort 0\n\n{old}")).unwrap();
    assert_eq!(
        code(&run_path(
            &["torrc", "remove-include", "--old-layout"],
            &torrc
        )),
        0
    );
    assert_eq!(std::fs::read_to_string(&torrc).unwrap(), "SocksPort 0\n");
    // --old-layout alone is not a question include-line answers
    assert_eq!(code(&run(&["torrc", "include-line", "--old-layout"])), 2);
}
