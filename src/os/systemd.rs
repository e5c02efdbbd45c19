//! systemd integration without libsystemd: readiness notifications, the watchdog, and socket
//! activation. The notify protocol is one datagram per message to `$NOTIFY_SOCKET`.

use std::net::TcpListener;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where notifications go, if systemd asked for them.
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// A notifier for `$NOTIFY_SOCKET`, or `None` when not run by systemd with `Type=notify`.
    pub fn from_env() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let bytes = path.as_encoded_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name).ok()?,
            None => SocketAddr::from_pathname(std::path::Path::new(&path)).ok()?,
        };
        let socket = UnixDatagram::unbound().ok()?;
        Some(Notifier { socket, addr })
    }

    /// Send one notification, e.g. `READY=1`. Failures are ignored: systemd may be gone.
    pub fn send(&self, message: &str) {
        let _ = self.socket.send_to_addr(message.as_bytes(), &self.addr);
    }
}

/// `MONOTONIC_USEC=` value for `RELOADING=1` (CLOCK_MONOTONIC, in microseconds).
pub fn monotonic_usec() -> u64 {
    crate::os::sys::monotonic().as_micros() as u64
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, if it is set for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// The listening sockets socket activation passed, by what they serve.
#[derive(Debug, Default)]
pub struct Inherited {
    /// Plain HTTP: every socket not named `https`.
    pub plain: Vec<TcpListener>,
    /// HTTPS: the sockets named `https` (`FileDescriptorName=https` in the `.socket` unit).
    pub https: Vec<TcpListener>,
}

/// Take the listening sockets passed by socket activation (`LISTEN_FDS`, `LISTEN_PID`,
/// `LISTEN_FDNAMES`), if any, and remove the variables so that nothing takes them again
/// (child processes included).
///
/// # Safety
///
/// Call it at most once, from `main`, before any other thread starts: the variables are read
/// and removed while no other thread can read the environment, and descriptors 3 and up that
/// `LISTEN_FDS` names for this process must not be owned by anything else in it (a service
/// manager passed them, and nothing has taken them yet). The returned listeners own them.
pub unsafe fn take_inherited_listeners() -> std::io::Result<Inherited> {
    let pid = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok());
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    let mut inherited = Inherited::default();
    match (pid, count) {
        (Some(pid), Some(count)) if pid == std::process::id() && count > 0 => {
            let mut names = names.split(':');
            for fd in 3..3 + count {
                // SAFETY: LISTEN_PID names this process, so the service manager passed us
                // descriptors 3..3+LISTEN_FDS, and our caller vouches that nothing else owns
                // them; each is taken once, here, and the variables are removed above so
                // nothing later takes them again.
                let listener = unsafe { crate::os::sys::take_listener(fd) }?;
                match names.next() {
                    Some("https") => inherited.https.push(listener),
                    _ => inherited.plain.push(listener),
                }
            }
            Ok(inherited)
        }
        _ => Ok(inherited),
    }
}
