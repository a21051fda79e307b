//! The crate's imports only point down its layers, with no circle: `scripts/imports.py --check`
//! on src/, and on a small tree with an upward import and a circle, which it must refuse.

#[path = "support/temp_dir.rs"]
mod temp_dir;

use std::path::Path;
use std::process::Command;

fn check(src: &Path) -> std::process::Output {
    Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/imports.py"))
        .args(["--check", "--src"])
        .arg(src)
        .output()
        .expect("python3 runs scripts/imports.py")
}

#[test]
fn the_crate_imports_only_downward_without_a_circle() {
    let out = check(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("all downward, no circle"), "{stderr}");
}

#[test]
fn an_upward_import_and_a_circle_are_refused() {
    let dir = temp_dir::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir(src.join("control")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod control;\npub mod snapshot;\n").unwrap();
    std::fs::write(
        src.join("control/mod.rs"),
        "use crate::snapshot::Snapshot;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("snapshot.rs"),
        "use crate::control::ControlError;\n",
    )
    .unwrap();
    let out = check(src);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("control (layer 1) imports snapshot"),
        "{stderr}"
    );
    assert!(
        stderr.contains("circle: control -> snapshot -> control"),
        "{stderr}"
    );
}
