//! systemd's two small protocols with a service, spoken directly: notifications (one datagram
//! of `KEY=VALUE` lines to `$NOTIFY_SOCKET`, `sd_notify(3)`) and socket passing
//! (`$LISTEN_PID`/`$LISTEN_FDS`, descriptors from 3 on, `sd_listen_fds(3)`).
//!
//! Both are a few environment variables and one `sendto`; writing them here keeps a crate (and
//! its audit) out of the dependency tree. Outside systemd (no variables) everything is a no-op.

use std::os::fd::RawFd;
use std::time::Duration;

/// Sends `state` (`READY=1`, `STATUS=…`, `WATCHDOG=1`, `STOPPING=1`) to the service manager, if
/// there is one. Errors are the caller's to ignore: a lost notification is not worth failing.
pub fn notify(state: &str) -> std::io::Result<()> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(path) => notify_to(&path, state),
        None => Ok(()),
    }
}

fn notify_to(path: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        // An abstract socket (systemd's own manager uses one in containers).
        use std::os::linux::net::SocketAddrExt as _;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        socket.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}

/// How often systemd wants `WATCHDOG=1` (`WatchdogSec=`), when it wants it from this process.
pub fn watchdog_interval() -> Option<Duration> {
    watchdog_from(
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::process::id(),
    )
}

/// `WATCHDOG_PID` (when set, must be `me`) and `WATCHDOG_USEC` (positive) to the interval.
fn watchdog_from(pid: Option<&str>, usec: Option<&str>, me: u32) -> Option<Duration> {
    if pid.is_some_and(|p| p.parse::<u32>().ok() != Some(me)) {
        return None;
    }
    let usec: u64 = usec?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// The descriptors systemd passed to this process (none when run by hand or for another
/// process), marked close-on-exec; the variables are removed so that nothing takes them twice.
/// Call it before any other thread starts (it edits the environment).
pub fn listen_fds() -> std::io::Result<Vec<RawFd>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    let fds = passed(pid.as_deref(), count.as_deref(), std::process::id())?;
    for &fd in &fds {
        // SAFETY: fcntl on a descriptor number only reads or sets its flags; a number that is
        // not open fails with EBADF, which is returned.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(fds)
}

/// The descriptor numbers `LISTEN_PID`/`LISTEN_FDS` give `me`: none unless the PID is ours.
fn passed(pid: Option<&str>, count: Option<&str>, me: u32) -> std::io::Result<Vec<RawFd>> {
    if pid.and_then(|p| p.parse::<u32>().ok()) != Some(me) {
        return Ok(Vec::new());
    }
    let Some(count) = count else {
        return Ok(Vec::new());
    };
    match count.parse::<RawFd>() {
        Ok(n) if (0..=1024).contains(&n) => Ok((LISTEN_FDS_START..LISTEN_FDS_START + n).collect()),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("LISTEN_FDS={count}: expected a number from 0 to 1024"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_sends_one_datagram() {
        let dir = crate::temp_dir::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        notify_to(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        assert!(notify_to(dir.path().join("none").as_os_str(), "READY=1").is_err());
    }

    #[test]
    fn watchdog_only_for_this_process_and_when_positive() {
        let s30 = Some(Duration::from_secs(30));
        assert_eq!(watchdog_from(None, Some("30000000"), 7), s30);
        assert_eq!(watchdog_from(Some("7"), Some("30000000"), 7), s30);
        assert_eq!(watchdog_from(Some("8"), Some("30000000"), 7), None);
        assert_eq!(watchdog_from(None, Some("0"), 7), None);
        assert_eq!(watchdog_from(None, Some("soon"), 7), None);
        assert_eq!(watchdog_from(None, None, 7), None);
    }

    #[test]
    fn passed_descriptors_only_for_this_process() {
        assert_eq!(passed(Some("7"), Some("2"), 7).unwrap(), vec![3, 4]);
        assert_eq!(
            passed(Some("8"), Some("2"), 7).unwrap(),
            Vec::<RawFd>::new()
        );
        assert_eq!(passed(None, Some("2"), 7).unwrap(), Vec::<RawFd>::new());
        assert_eq!(passed(Some("7"), None, 7).unwrap(), Vec::<RawFd>::new());
        assert!(passed(Some("7"), Some("-1"), 7).is_err());
        assert!(passed(Some("7"), Some("many"), 7).is_err());
    }
}
