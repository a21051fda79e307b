//! What tor's `GETCONF HiddenServiceOptions` says about our onion services together.

use crate::control::Message;

/// What `GETCONF HiddenServiceOptions` says about all onion services together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HsConfig {
    /// `HiddenServiceDir` blocks.
    pub services: u64,
    /// Blocks with `HiddenServicePoWDefensesEnabled=1`.
    pub pow_enabled: u64,
}

/// tor lists each service's options after its `HiddenServiceDir` line; the directory paths
/// themselves are never kept.
pub fn hs_config(reply: &Message) -> HsConfig {
    let mut c = HsConfig::default();
    for l in &reply.lines {
        if l.text.starts_with("HiddenServiceDir=") {
            c.services += 1;
        } else if l.text == "HiddenServicePoWDefensesEnabled=1" && c.services > 0 {
            c.pow_enabled += 1;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ReplyParser;

    #[test]
    fn pow_lines_in_getconf() {
        let mut p = ReplyParser::default();
        p.feed(b"250-HiddenServiceDir=/x/source\r\n250-HiddenServicePort=80 127.0.0.1:10010\r\n250-HiddenServicePoWDefensesEnabled=1\r\n250-HiddenServiceDir=/x/journalist\r\n250 HiddenServicePort=80 127.0.0.1:10011\r\n").unwrap();
        assert_eq!(
            hs_config(&p.next_message().unwrap()),
            HsConfig {
                services: 2,
                pow_enabled: 1
            }
        );
    }

    #[test]
    fn configured_count_from_getconf() {
        let mut p = ReplyParser::default();
        p.feed(b"250-HiddenServiceDir=/var/lib/tor/services/source\r\n250-HiddenServicePort=80 127.0.0.1:80\r\n250-HiddenServiceDir=/var/lib/tor/services/ssh\r\n250 HiddenServicePort=22 127.0.0.1:22\r\n").unwrap();
        assert_eq!(hs_config(&p.next_message().unwrap()).services, 2);
        let mut p = ReplyParser::default();
        p.feed(b"250 HiddenServiceOptions\r\n").unwrap();
        assert_eq!(hs_config(&p.next_message().unwrap()).services, 0);
    }
}
