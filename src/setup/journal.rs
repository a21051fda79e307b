//! The setup's journal, as text: what a run changed, one line a change, written (and synced)
//! before the change itself, so that after a crash the next run knows what to put back.
//!
//! Pure: [`Entry::line`] and [`parse`]. The file is appended to by `transaction`.
//!
//! A line is written before its change, so a line without its change is harmless to undo (a
//! missing backup is skipped, a missing file is not removed twice), and a line cut short by the
//! crash (the last one) stands for a change that never happened: [`parse`] drops it.

/// One change of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// The run started (Unix seconds).
    Begin(u64),
    /// The file at this absolute path was replaced (with content of this digest, [`digest`]) or
    /// removed ([`GONE`]); the version before is kept as a hard link beside it
    /// ([`crate::setup::paths::orig_name`]) until the run commits. Undone only while the file is
    /// still what the run made of it: an admin's edit after a crash is never thrown away.
    Replaced(String, String),
    /// The file at this path did not exist and was written with content of this digest: undone
    /// by removing it, while it still holds that.
    Created(String, String),
    /// The folder at this path did not exist: undone by removing it if empty.
    MadeDir(String),
    /// The run committed: what it wrote stays; a crash after this only leaves backups to delete.
    Commit,
}

impl Entry {
    pub fn line(&self) -> String {
        match self {
            Entry::Begin(t) => format!("begin {t}\n"),
            Entry::Replaced(p, d) => format!("replaced {d} {p}\n"),
            Entry::Created(p, d) => format!("created {d} {p}\n"),
            Entry::MadeDir(p) => format!("made-dir {p}\n"),
            Entry::Commit => "commit\n".to_owned(),
        }
    }
}

/// The digest of a file that a run removed.
pub const GONE: &str = "-";

/// The digest a journal line gives a file's content: SHA-256, in lower-case hex.
pub fn digest(content: &[u8]) -> String {
    use sha2::Digest as _;
    data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(content))
}

/// The entries of a journal's text. A line that does not end in a newline (cut short) or does
/// not parse is dropped: only the last can be, and its change was never made.
pub fn parse(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for line in text.split_inclusive('\n') {
        let Some(line) = line.strip_suffix('\n') else {
            break;
        };
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let path_ok = rest.starts_with('/') && !rest.contains('\0');
        let (dig, dpath) = rest.split_once(' ').unwrap_or(("", ""));
        let digest_ok = dpath.starts_with('/')
            && (dig == GONE || (dig.len() == 64 && dig.bytes().all(|c| c.is_ascii_hexdigit())));
        let e = match word {
            "begin" => rest.parse().ok().map(Entry::Begin),
            "replaced" if digest_ok => Some(Entry::Replaced(dpath.to_owned(), dig.to_owned())),
            "created" if digest_ok => Some(Entry::Created(dpath.to_owned(), dig.to_owned())),
            "made-dir" if path_ok => Some(Entry::MadeDir(rest.to_owned())),
            "commit" if rest.is_empty() => Some(Entry::Commit),
            _ => None,
        };
        if let Some(e) = e {
            out.push(e);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_a_torn_last_line_is_dropped() {
        let all = [
            Entry::Begin(17),
            Entry::MadeDir("/var/lib/tor/x".into()),
            Entry::Replaced("/etc/tor/torrc".into(), digest(b"x")),
            Entry::Replaced("/etc/tor/old".into(), GONE.into()),
            Entry::Created("/etc/tor/a b.torrc".into(), digest(b"")),
            Entry::Commit,
        ];
        let text: String = all.iter().map(Entry::line).collect();
        assert_eq!(parse(&text), all);
        for cut in 0..text.len() {
            let got = parse(&text[..cut]);
            assert!(all.starts_with(&got), "{cut}: {got:?}");
        }
        assert_eq!(
            parse("replaced - etc/relative\nreplaced /etc/tor/torrc\ncommit x\n"),
            []
        );
    }
}
