//! No routine log line of the exporter holds a word that OSSEC's base rule 1002 mails.
//!
//! SecureDrop's Monitor Server reads the Application Server's syslog with OSSEC, and base rule
//! 1002 mails any line with one of `$BAD_WORDS` ("failed", "error", "denied", …). Only a line's
//! text reaches OSSEC (journald's other fields do not), so the words that matter are the message
//! strings of the `tracing` macros. This test reads every such message in `src/` (so a new one is
//! covered the day it is written) and the health judge's lines (tests/golden/health_lines.txt,
//! which `health`'s own test pins), and refuses any of those words. What the CLI prints when
//! the exporter cannot start at all (`securedrop-tor-exporter: error: …` from `main`) is not
//! routine and is left to OSSEC's rules (docs/ossec.md).

use std::path::Path;

/// OSSEC 3.6.0's `$BAD_WORDS` (etc/rules/syslog_rules.xml), compared case-insensitively (its
/// pcre2 is case-sensitive; this is stricter). When the shared upstream copy is beside the
/// checkout, the test also checks this list against it.
const BAD_WORDS: &[&str] = &[
    "core_dumped",
    "failure",
    "error",
    "attack",
    " bad ",
    "illegal ",
    "denied",
    "refused",
    "unauthorized",
    "fatal",
    "failed",
    "segmentation fault",
    "corrupted",
];

/// Every string literal inside a `tracing::<level>!(…)` call of `source`.
fn log_messages(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for level in ["trace", "debug", "info", "warn", "error"] {
        let opener = format!("tracing::{level}!(");
        let mut rest = source;
        while let Some(i) = rest.find(&opener) {
            rest = &rest[i + opener.len()..];
            let mut depth = 1;
            let mut in_str = false;
            let mut escaped = false;
            // after a `\` line continuation, the next line's indent is not part of the string
            let mut skip_indent = false;
            let mut literal = String::new();
            let mut end = rest.len();
            for (j, c) in rest.char_indices() {
                if in_str {
                    if skip_indent && c.is_whitespace() {
                        continue;
                    }
                    skip_indent = false;
                    if escaped {
                        escaped = false;
                        if c == '\n' {
                            skip_indent = true;
                        } else {
                            literal.push(c);
                        }
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        in_str = false;
                        out.push(std::mem::take(&mut literal));
                    } else {
                        literal.push(c);
                    }
                    continue;
                }
                match c {
                    '"' => in_str = true,
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            rest = &rest[end..];
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn bad_words_in(text: &str) -> Vec<&'static str> {
    let lower = text.to_lowercase();
    BAD_WORDS
        .iter()
        .copied()
        .filter(|w| lower.contains(w))
        .collect()
}

#[test]
fn no_log_message_holds_a_word_ossec_mails() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut checked = 0;
    let mut found = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        for message in log_messages(&source) {
            checked += 1;
            let bad = bad_words_in(&message);
            if !bad.is_empty() {
                found.push(format!("{}: {message:?} has {bad:?}", file.display()));
            }
        }
    }
    assert!(
        checked >= 20,
        "only {checked} log messages found: is the scan broken?"
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_health_lines_hold_no_word_ossec_mails_on_its_own() {
    let golden = include_str!("golden/health_lines.txt");
    assert!(golden.lines().count() >= 10);
    for line in golden.lines() {
        assert!(bad_words_in(line).is_empty(), "{line}");
    }
}

/// The scan finds what it must, or a passing test would mean nothing.
#[test]
fn the_scan_finds_messages_and_words() {
    let src = r#"
        tracing::warn!(error = %e, "tor is unreachable; retrying");
        tracing::info!(
            service = %label,
            "one \
             two {label}"
        );
        tracing::error!("accept failed: {}", x(")"));
    "#;
    assert_eq!(
        log_messages(src),
        [
            "one two {label}",
            "tor is unreachable; retrying",
            "accept failed: {}",
            ")"
        ]
    );
    assert_eq!(bad_words_in("accept failed"), ["failed"]);
    assert_eq!(
        bad_words_in("tor health: alert tor_down for 5m"),
        Vec::<&str>::new()
    );
}

#[test]
fn the_word_list_is_ossecs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        root.join("../shared/upstream/ossec-hids/etc/rules/syslog_rules.xml"),
        Path::new("/work/shared/upstream/ossec-hids/etc/rules/syslog_rules.xml").to_owned(),
    ];
    let Some(text) = candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
    else {
        eprintln!("OSSEC's syslog_rules.xml is not beside the checkout; list not compared");
        return;
    };
    let var = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("<var name=\"BAD_WORDS\">")?
                .strip_suffix("</var>")
        })
        .expect("BAD_WORDS in syslog_rules.xml");
    let theirs: Vec<String> = var.split('|').map(str::to_lowercase).collect();
    assert_eq!(theirs, BAD_WORDS);
}
