//! The onion services a tor configuration has, as the `HiddenServiceDir` folders that
//! `tor --dump-config` prints, so that a change to the torrc can be checked to keep every service
//! tor had before (dropping an `%include` can silently take an admin's services away). Pure.

/// The `HiddenServiceDir` values in `dump`, the output of `tor --dump-config`, in order and
/// each once, normalised by [`normalise`]. Log lines and other options are passed over: tor
/// prints one option a line, its canonical name first, the value unquoted after one space.
pub fn from_dump(dump: &str) -> Vec<String> {
    let mut dirs: Vec<String> = Vec::new();
    for line in dump.lines() {
        if let Some(value) = line.strip_prefix("HiddenServiceDir ") {
            let dir = normalise(value);
            if !dir.is_empty() && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs
}

/// A folder as compared here: surrounding white space and trailing slashes dropped
/// (`/var/lib/tor/x/` and `/var/lib/tor/x` are the same service to tor).
pub fn normalise(dir: &str) -> String {
    let dir = dir.trim();
    match dir.trim_end_matches('/') {
        "" if dir.starts_with('/') => "/".to_owned(),
        d => d.to_owned(),
    }
}

/// A list as `torrc onion-dirs` prints it (one folder a line; blank lines ignored).
pub fn parse_list(text: &str) -> Vec<String> {
    text.lines()
        .map(normalise)
        .filter(|d| !d.is_empty())
        .collect()
}

/// The folders of `before` that `after` no longer has.
pub fn lost(before: &[String], after: &[String]) -> Vec<String> {
    before
        .iter()
        .filter(|d| !after.contains(d))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_folders_from_a_dump_and_skips_log_lines() {
        let dump = "Dec 01 22:18:54.294 [notice] Read configuration file \"/etc/tor/torrc\".\n\
                    DataDirectory /var/lib/tor\n\
                    HiddenServiceDir /var/lib/tor/services/sourcev3/\n\
                    HiddenServicePort 80 127.0.0.1:80\n\
                    HiddenServiceDirGroupReadable 0\n\
                    HiddenServiceDir /var/lib/tor/with space\n\
                    HiddenServiceDir /var/lib/tor/services/sourcev3\n\
                    #HiddenServiceDir /commented\n";
        assert_eq!(
            from_dump(dump),
            ["/var/lib/tor/services/sourcev3", "/var/lib/tor/with space"]
        );
        assert!(from_dump("SocksPort 0\n").is_empty());
    }

    #[test]
    fn normalises_trailing_slashes_only() {
        assert_eq!(normalise(" /a/b// "), "/a/b");
        assert_eq!(normalise("/"), "/");
        assert_eq!(normalise("rel/dir/"), "rel/dir");
        assert_eq!(normalise("/a//b"), "/a//b");
    }

    #[test]
    fn lost_lists_what_the_new_configuration_dropped() {
        let before = parse_list("/var/lib/tor/a/\n\n/var/lib/tor/b\n");
        let after = vec!["/var/lib/tor/a".to_owned(), "/var/lib/tor/c".to_owned()];
        assert_eq!(lost(&before, &after), ["/var/lib/tor/b"]);
        assert!(lost(&after, &after).is_empty());
        assert!(lost(&[], &after).is_empty());
    }
}
