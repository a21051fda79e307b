//! Who owns what: the administrator (root on a server) and tor's account (`debian-tor`), read
//! from the root's own `/etc/passwd` and `/etc/group` (system accounts live there, never in a
//! directory service), so that the tests can name other ids in a temp root.

use super::paths::Root;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accounts {
    /// The only account that may change the folders the setup writes in as the administrator:
    /// the owner of the root folder (root on a server; the test's own account in a temp root).
    pub admin: u32,
    pub admin_gid: u32,
    pub tor_uid: u32,
    pub tor_gid: u32,
}

pub const TOR_ACCOUNT: &str = super::confinement::TOR_USER;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("the {TOR_ACCOUNT} group is missing (is tor installed?)")]
    NoGroup,
    #[error("the {TOR_ACCOUNT} account is missing (is tor installed?)")]
    NoUser,
    /// The setup changes root's files and chowns files to tor's account.
    #[error("the setup must run as root (the owner of the root folder)")]
    NotAdmin,
}

/// The third field (the id) of the line of `name` in a `passwd` or `group` text.
pub fn id_of(text: &str, name: &str) -> Option<u32> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            (f.next()? == name).then_some(())?;
            f.nth(1)?.parse().ok()
        })
        .next()
}

impl Accounts {
    /// The administrator and `debian-tor` as the root's files name them.
    pub fn of(root: &Root) -> Result<Accounts, AccountsError> {
        let read = |p: &str| std::fs::read_to_string(root.at(p)).unwrap_or_default();
        let tor_gid = id_of(&read("/etc/group"), TOR_ACCOUNT).ok_or(AccountsError::NoGroup)?;
        let tor_uid = id_of(&read("/etc/passwd"), TOR_ACCOUNT).ok_or(AccountsError::NoUser)?;
        Ok(Accounts {
            tor_uid,
            tor_gid,
            ..Accounts::admin_only(root)
        })
    }

    /// The administrator alone, where tor's account is gone (tor purged before this package):
    /// removing the package then writes only root's files.
    pub fn admin_only(root: &Root) -> Accounts {
        use std::os::unix::fs::MetadataExt as _;
        let (admin, admin_gid) =
            std::fs::metadata(root.path()).map_or((0, 0), |m| (m.uid(), m.gid()));
        Accounts {
            admin,
            admin_gid,
            tor_uid: admin,
            tor_gid: admin_gid,
        }
    }

    /// The setup runs as the administrator, who owns the root folder: root for `/`, the test's
    /// own account for a temp root. Anyone else could neither write root's folders nor hand
    /// files to tor's account, and would fail halfway.
    pub fn check_runner(&self) -> Result<(), AccountsError> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if euid == self.admin {
            Ok(())
        } else {
            Err(AccountsError::NotAdmin)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_from_the_account_files() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\ndebian-tor:x:101:104::/var/lib/tor:/bin/false\n";
        assert_eq!(id_of(passwd, "debian-tor"), Some(101));
        assert_eq!(id_of(passwd, "debian"), None);
        assert_eq!(id_of("debian-tor:x:104:\n", "debian-tor"), Some(104));
        assert_eq!(id_of("debian-tor:x:notanumber:\n", "debian-tor"), None);
    }
}
