//! The `%include` line that makes tor read the package's drop-in, and the marked copy of it the
//! package adds to the torrc: what it is, how to find it, how to add and take it out again. Pure:
//! bytes in, bytes out, so that the package, the role and the tests share one definition.
//!
//! The text is handled as bytes and written back byte for byte except for the lines added or
//! dropped: a torrc need not be UTF-8, and an admin's comments stay as they are.

/// The package's drop-in: a top-level file of /etc/tor/, which tor's AppArmor profile lets it
/// read with every tor packaging (`/etc/tor/* r` up to 0.4.9.7, `/etc/tor/** r` since).
pub const DROPIN: &str = "/etc/tor/securedrop-tor-exporter.torrc";

/// Which of the package's marked includes: the current one, or the one versions up to 0.1.0
/// added for `/etc/tor/torrc.d/` (only ever removed now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Current,
    /// Up to 0.1.0: the drop-in in `/etc/tor/torrc.d/`, which older tor profiles cannot read.
    Old,
}

impl Layout {
    /// The comment the package writes on the line before its include, so that it removes only
    /// the line it added and never an admin's own.
    pub fn mark(self) -> &'static str {
        match self {
            Layout::Current => {
                "# Added by the securedrop-tor-exporter package (removed on purge): its onion service"
            }
            Layout::Old => {
                "# Added by the securedrop-tor-exporter package (removed on purge): read /etc/tor/torrc.d/"
            }
        }
    }

    /// The include line itself, exactly as the package writes it.
    pub fn line(self) -> &'static str {
        match self {
            Layout::Current => INCLUDE_LINE,
            Layout::Old => "%include /etc/tor/torrc.d/*.conf",
        }
    }
}

/// The line the package adds, and the one SecureDrop's template and the role write.
pub const INCLUDE_LINE: &str = "%include /etc/tor/securedrop-tor-exporter.torrc";

/// Does tor read this torrc line as an `%include` of [`DROPIN`]?
///
/// As tor parses it (tor 0.4.9): leading white space is skipped, the keyword `%include` is
/// case-sensitive and followed by white space, the value may be in double quotes, and a `#`
/// outside quotes starts a comment. Whoever wrote the line counts (the package, the role,
/// SecureDrop's template, an admin): tor refuses a drop-in read twice, so any of them is enough.
/// A path spelled differently (`/etc/tor//…`, through a symlink) is not recognised.
pub fn includes_dropin(line: &[u8]) -> bool {
    let Ok(line) = std::str::from_utf8(line) else {
        return false;
    };
    let rest = line.trim_start_matches(is_space);
    let Some(rest) = rest.strip_prefix("%include") else {
        return false;
    };
    if !rest.starts_with(is_space) {
        return false;
    }
    let value = rest.trim_start_matches(is_space);
    let (path, after) = if let Some(quoted) = value.strip_prefix('"') {
        let Some((path, after)) = quoted.split_once('"') else {
            return false;
        };
        (path, after.trim_start_matches(is_space))
    } else {
        let path = value.split('#').next().unwrap_or_default();
        (path.trim_end_matches(is_space), "")
    };
    path == DROPIN && (after.is_empty() || after.starts_with('#'))
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\x0b' | '\x0c')
}

/// How many lines of `torrc` include the drop-in ([`includes_dropin`]).
pub fn count_includes(torrc: &[u8]) -> usize {
    lines(torrc).filter(|l| includes_dropin(l)).count()
}

/// How many lines include the drop-in besides the package's own marked include (the line
/// [`without_marked`] would take out): what keeps tor reading it once the package is purged.
pub fn count_other_includes(torrc: &[u8]) -> usize {
    let all: Vec<&[u8]> = lines(torrc).collect();
    let mark = Layout::Current.mark().as_bytes();
    (0..all.len())
        .filter(|&i| includes_dropin(all[i]))
        .filter(|&i| !(i > 0 && all[i - 1] == mark && all[i] == INCLUDE_LINE.as_bytes()))
        .count()
}

/// Does `torrc` make tor read the drop-in? The one definition of "our include is present".
pub fn has_include(torrc: &[u8]) -> bool {
    count_includes(torrc) > 0
}

/// Does `torrc` hold the package's marked include of `layout` (the mark, then the line)?
pub fn has_marked(torrc: &[u8], layout: Layout) -> bool {
    let all: Vec<&[u8]> = lines(torrc).collect();
    all.windows(2)
        .any(|w| w[0] == layout.mark().as_bytes() && w[1] == layout.line().as_bytes())
}

/// `torrc` with the package's marked include appended, or `None` if it already includes the
/// drop-in (by anyone's line). The last line keeps its text if it had no newline; a blank line
/// separates the addition from what was there.
pub fn with_include(torrc: &[u8]) -> Option<Vec<u8>> {
    if has_include(torrc) {
        return None;
    }
    let mut out = torrc.to_vec();
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    for line in ["", Layout::Current.mark(), Layout::Current.line()] {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    Some(out)
}

/// `torrc` without the package's marked includes of `layout` (each mark with the include line
/// right after it, and the blank line [`with_include`] put before them), or `None` if it has
/// none. Every other line stays, an unmarked include of the drop-in too.
pub fn without_marked(torrc: &[u8], layout: Layout) -> Option<Vec<u8>> {
    let all: Vec<&[u8]> = lines(torrc).collect();
    let mut drop = vec![false; all.len()];
    let mut found = false;
    for i in 0..all.len().saturating_sub(1) {
        if all[i] == layout.mark().as_bytes() && all[i + 1] == layout.line().as_bytes() {
            found = true;
            drop[i] = true;
            drop[i + 1] = true;
            if i > 0 && all[i - 1].is_empty() {
                drop[i - 1] = true;
            }
        }
    }
    if !found {
        return None;
    }
    let mut out = Vec::with_capacity(torrc.len());
    for (line, _) in all.iter().zip(&drop).filter(|(_, d)| !**d) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    if !torrc.ends_with(b"\n") && out.ends_with(b"\n") && !drop.last().copied().unwrap_or(false) {
        out.pop();
    }
    Some(out)
}

/// The lines of `text` without their newlines; a final newline does not start another line.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let empty = text.is_empty();
    body.split(|b| *b == b'\n').filter(move |_| !empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_tor_reads_as_the_include() {
        for line in [
            "%include /etc/tor/securedrop-tor-exporter.torrc",
            "  %include   /etc/tor/securedrop-tor-exporter.torrc  ",
            "\t%include\t/etc/tor/securedrop-tor-exporter.torrc\r",
            "%include /etc/tor/securedrop-tor-exporter.torrc # SecureDrop's template",
            "%include /etc/tor/securedrop-tor-exporter.torrc#x",
            "%include \"/etc/tor/securedrop-tor-exporter.torrc\"",
            "%include \"/etc/tor/securedrop-tor-exporter.torrc\" # quoted",
        ] {
            assert!(includes_dropin(line.as_bytes()), "{line:?}");
        }
    }

    #[test]
    fn lines_that_are_not_the_include() {
        for line in [
            "",
            "# %include /etc/tor/securedrop-tor-exporter.torrc",
            "%INCLUDE /etc/tor/securedrop-tor-exporter.torrc",
            "%include/etc/tor/securedrop-tor-exporter.torrc",
            "%include /etc/tor/securedrop-tor-exporter.torrc.bak",
            "%include /etc/tor/securedrop-tor-exporter.torrc /etc/tor/other",
            "%include /etc/tor/*.torrc",
            "%include /etc/tor/torrc.d/*.conf",
            "%include \"/etc/tor/securedrop-tor-exporter.torrc",
            "%include \"/etc/tor/securedrop-tor-exporter.torrc\" trailing",
            "x%include /etc/tor/securedrop-tor-exporter.torrc",
        ] {
            assert!(!includes_dropin(line.as_bytes()), "{line:?}");
        }
        assert!(!includes_dropin(
            b"%include /etc/tor/securedrop-tor-exporter.torrc\xff"
        ));
    }

    #[test]
    fn add_appends_the_marked_line_once_and_keeps_an_unterminated_last_line() {
        let added = with_include(b"SocksPort 0").unwrap();
        assert_eq!(
            String::from_utf8(added.clone()).unwrap(),
            format!(
                "SocksPort 0\n\n{}\n{INCLUDE_LINE}\n",
                Layout::Current.mark()
            )
        );
        assert!(has_include(&added) && has_marked(&added, Layout::Current));
        assert_eq!(with_include(&added), None);
        assert_eq!(
            with_include(b"").unwrap(),
            format!("\n{}\n{INCLUDE_LINE}\n", Layout::Current.mark()).into_bytes()
        );
    }

    #[test]
    fn add_leaves_a_torrc_that_includes_the_dropin_otherwise() {
        assert_eq!(
            with_include(b"RunAsDaemon 1\n%include /etc/tor/securedrop-tor-exporter.torrc # SD\n"),
            None
        );
    }

    #[test]
    fn remove_undoes_add_byte_for_byte() {
        for before in [
            &b"SocksPort 0\n"[..],
            b"SocksPort 0",
            b"",
            b"a\n\n\nb\n",
            b"latin-1 \xe9\n",
        ] {
            let added = with_include(before).unwrap();
            let removed = without_marked(&added, Layout::Current).unwrap();
            let expect: &[u8] = if before.is_empty() || before.ends_with(b"\n") {
                before
            } else {
                &[before, b"\n"].concat()
            };
            assert_eq!(removed, expect, "{:?}", String::from_utf8_lossy(before));
            assert!(!has_marked(&removed, Layout::Current));
        }
    }

    #[test]
    fn remove_takes_only_marked_includes_of_its_layout() {
        let old = Layout::Old;
        let torrc = format!(
            "A 1\n\n{}\n{}\nB 2\n%include /etc/tor/securedrop-tor-exporter.torrc\n{}\n%include /elsewhere\n",
            old.mark(),
            old.line(),
            Layout::Current.mark()
        );
        let out = String::from_utf8(without_marked(torrc.as_bytes(), old).unwrap()).unwrap();
        assert_eq!(
            out,
            format!(
                "A 1\nB 2\n%include /etc/tor/securedrop-tor-exporter.torrc\n{}\n%include /elsewhere\n",
                Layout::Current.mark()
            )
        );
        // the current mark is not followed by its line: nothing of the current layout to remove
        assert_eq!(without_marked(out.as_bytes(), Layout::Current), None);
        assert!(has_include(out.as_bytes()));
        assert!(!has_marked(out.as_bytes(), Layout::Current));
    }

    #[test]
    fn remove_keeps_no_final_newline_when_the_file_had_none() {
        let torrc = format!("\n{}\n{INCLUDE_LINE}\nTail 1", Layout::Current.mark());
        assert_eq!(
            without_marked(torrc.as_bytes(), Layout::Current).unwrap(),
            b"Tail 1"
        );
        let torrc = format!("Head 1\n\n{}\n{INCLUDE_LINE}", Layout::Current.mark());
        assert_eq!(
            without_marked(torrc.as_bytes(), Layout::Current).unwrap(),
            b"Head 1\n"
        );
    }

    #[test]
    fn counts_every_include_whoever_wrote_it() {
        let torrc = format!(
            "%include {DROPIN}\n# BEGIN role\n%include {DROPIN}\n# END role\n{}\n{INCLUDE_LINE}\n",
            Layout::Current.mark()
        );
        assert_eq!(count_includes(torrc.as_bytes()), 3);
        assert_eq!(count_other_includes(torrc.as_bytes()), 2);
        let marked_only = with_include(b"SocksPort 0\n").unwrap();
        assert_eq!(
            (
                count_includes(&marked_only),
                count_other_includes(&marked_only)
            ),
            (1, 0)
        );
        // the marked line's text with something else before it is someone else's line
        let unmarked = format!("# mine\n{INCLUDE_LINE}\n");
        assert_eq!(count_other_includes(unmarked.as_bytes()), 1);
        assert_eq!(count_includes(b""), 0);
        assert!(!has_include(b"%include /etc/tor/torrc.d/*.conf\n"));
    }
}
