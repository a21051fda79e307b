//! The facts the maintainer scripts share with the binary. postinst and prerm run while the
//! binary is installed and ask it (`torrc …`); postrm runs at purge, when it is gone, and keeps
//! copies: the include marks and lines, the rule for "this line includes the drop-in", and the
//! edit that takes the marked include out. Each copy is run here (bash, grep, awk, as postrm
//! runs them) and compared with the binary's definition on the same input.

#[path = "support/temp_dir.rs"]
mod temp_dir;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use securedrop_tor_exporter::setup::include::{includes_dropin, without_marked, Layout};

#[path = "fixtures/include_lines.rs"]
mod include_lines;
use include_lines::INCLUDE_LINES;

fn script(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("debian")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Runs `body` in bash after postrm's variable assignments (its lines from `NAME=` to the line
/// before `STUB=`), with `input` on standard input; returns (exit code, standard output).
fn with_postrm_vars(body: &str, args: &[&str], input: &[u8]) -> (i32, Vec<u8>) {
    let postrm = script("postrm");
    let start = postrm.find("\nNAME=").expect("postrm sets NAME") + 1;
    let end = postrm.find("\nSTUB=").expect("postrm sets STUB") + 1;
    let prog = format!("{}\n{body}", &postrm[start..end]);
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&prog)
        .arg("bash")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("bash");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), out.stdout)
}

/// A shell function of postrm, as written there (`NAME() {` to the next `}` at line start).
fn postrm_function(name: &str) -> String {
    let postrm = script("postrm");
    let start = postrm
        .find(&format!("\n{name}() {{\n"))
        .unwrap_or_else(|| panic!("postrm defines {name}"))
        + 1;
    let end = start + postrm[start..].find("\n}\n").expect("function ends") + 3;
    postrm[start..end].to_owned()
}

#[test]
fn postrms_onion_socket_is_the_binarys() {
    let (code, out) = with_postrm_vars(r#"printf '%s\n' "$ONION_SOCKET""#, &[], b"");
    assert_eq!(code, 0);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("{}\n", securedrop_tor_exporter::setup::ONION_SOCKET)
    );
}

#[test]
fn postrms_marks_and_lines_are_the_binarys() {
    let (code, out) = with_postrm_vars(
        r#"printf '%s\n' "$INCLUDE_MARK" "$INCLUDE_LINE" "$OLD_INCLUDE_MARK" "$OLD_INCLUDE_LINE""#,
        &[],
        b"",
    );
    assert_eq!(code, 0);
    let want = [
        Layout::Current.mark(),
        Layout::Current.line(),
        Layout::Old.mark(),
        Layout::Old.line(),
    ]
    .map(|l| format!("{l}\n"))
    .concat();
    assert_eq!(String::from_utf8(out).unwrap(), want);
}

#[test]
fn postrms_include_rule_agrees_with_the_binarys_on_every_line() {
    let mut seen = [false, false];
    for &line in INCLUDE_LINES {
        let (code, _) = with_postrm_vars(
            r#"grep -Eq "$INCLUDE_RE""#,
            &[],
            format!("{line}\n").as_bytes(),
        );
        assert!(code == 0 || code == 1, "grep failed on {line:?}: {code}");
        let binary = includes_dropin(line.as_bytes());
        assert_eq!(
            code == 0,
            binary,
            "postrm and the binary disagree on {line:?}"
        );
        seen[usize::from(binary)] = true;
    }
    assert_eq!(seen, [true, true], "the fixture has lines of both kinds");
}

#[test]
fn postrms_removal_of_the_marked_include_is_the_binarys() {
    let cur = Layout::Current;
    let old = Layout::Old;
    let torrcs = [
        format!("SocksPort 0\n\n{}\n{}\n", cur.mark(), cur.line()),
        format!("{}\n{}\nSocksPort 0\n", cur.mark(), cur.line()),
        format!(
            "A 1\n\n{}\n{}\nB 2\n\n{}\n{}\n",
            old.mark(),
            old.line(),
            cur.mark(),
            cur.line()
        ),
        // a mark without its line, and an unmarked include: both stay
        format!("{}\nSocksPort 0\n{}\n", cur.mark(), cur.line()),
        format!("{}\n{} # by hand\n", cur.mark(), cur.line()),
        "SocksPort 0\n".to_owned(),
    ];
    let f = postrm_function("drop_marked_from");
    for layout in [cur, old] {
        for torrc in &torrcs {
            let dir = temp_dir::tempdir().unwrap();
            let file = dir.path().join("torrc");
            std::fs::write(&file, torrc).unwrap();
            let (code, out) = with_postrm_vars(
                &format!("{f}\ndrop_marked_from \"$1\" \"$2\" \"$3\""),
                &[layout.mark(), layout.line(), file.to_str().unwrap()],
                b"",
            );
            assert_eq!(code, 0);
            let want = without_marked(torrc.as_bytes(), layout).unwrap_or(torrc.clone().into());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(want).unwrap(),
                "{layout:?} on {torrc:?}"
            );
        }
    }
}

/// postinst and prerm leave the work to the binary: neither runs tor on the configuration
/// itself nor spells out the include line, its mark or the AppArmor decision.
#[test]
fn postinst_and_prerm_hold_no_copy_of_the_binarys_facts() {
    let copies = [
        "--verify-config",
        "--dump-config",
        "aa-exec",
        "/sys/kernel/security/apparmor",
        "/sys/module/apparmor",
        "%include /etc/tor",
        "Added by the securedrop-tor-exporter package",
        "a-z2-7]{56}",
    ];
    for name in ["postinst", "prerm"] {
        let text = script(name);
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            for copy in copies {
                assert!(
                    !line.contains(copy),
                    "debian/{name} holds its own copy ({copy:?}): {line}"
                );
            }
        }
        let call = if name == "postinst" {
            "securedrop-tor-exporter setup configure"
        } else {
            "\"$EXPORTER\" setup remove"
        };
        assert!(
            text.contains(call),
            "debian/{name} leaves the work to the binary"
        );
    }
}

/// The loopback socket's default address has one owner, the configuration's default
/// `web.listen_address`: the socket unit listens there when the generator writes no drop-in (the
/// setup then compares with the same default, in Rust).
#[test]
fn the_socket_units_default_address_is_the_binarys() {
    let want = securedrop_tor_exporter::setup::socket_unit::default_address().to_string();
    let unit = script("securedrop-tor-exporter.socket");
    let listen: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("ListenStream="))
        .collect();
    assert_eq!(listen, [want.as_str()]);
}

/// postrm's comment for the drop-in that stays (purge, the torrc still including it) is the
/// one `setup remove` writes.
#[test]
fn postrms_removed_stub_is_the_binarys() {
    let postrm = script("postrm");
    let stub = securedrop_tor_exporter::setup::configure::DROPIN_REMOVED.trim_end();
    assert!(
        postrm.contains(&format!("STUB=\"{stub}\"")),
        "postrm's STUB differs from the binary's:\n{stub}"
    );
}
