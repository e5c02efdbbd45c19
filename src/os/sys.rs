//! System calls that std and socket2 do not wrap, each behind a safe function except where
//! the caller must vouch for ownership: taking file descriptors systemd passed us, reading
//! CLOCK_MONOTONIC (std's `Instant` uses it but does not expose its value), and the one socket
//! option socket2 does not cover (TCP_DEFER_ACCEPT), and sending a signal. The only other
//! `unsafe` code is the scanners' SSE2 steps, beside this in `os::simd`.

use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

/// Take ownership of a listening socket inherited at `fd`.
///
/// # Safety
///
/// `fd` must be a descriptor that the service manager handed to this process (`LISTEN_FDS`
/// starting at 3, checked against `LISTEN_PID`) and that nothing else owns, and each one may
/// be taken at most once: the returned listener closes it when dropped.
pub unsafe fn take_listener(fd: RawFd) -> std::io::Result<TcpListener> {
    let kind = socket2::SockRef::from(&BorrowedCheck(fd)).r#type()?;
    if kind != socket2::Type::STREAM {
        return Err(std::io::Error::other(format!(
            "passed fd {fd} is not a stream socket"
        )));
    }
    // SAFETY: `fd` is open (the getsockopt above succeeded on it), and the caller guarantees
    // it is ours to own and taken only once, so no other owner will close it.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Lets `SockRef` look at a raw fd without taking ownership of it.
struct BorrowedCheck(RawFd);

impl std::os::fd::AsFd for BorrowedCheck {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: the fd stays open for the lifetime of this borrow: it belongs to the process
        // (inherited from the service manager) and nothing closes it while we inspect it.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.0) }
    }
}

/// The current CLOCK_MONOTONIC time, as systemd's `MONOTONIC_USEC` expects.
pub fn monotonic() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Send `signal` to the process `pid`. Pids 0 and 1 are refused: 0 would signal our own
/// process group, and 1 is the init system.
pub fn kill(pid: u32, signal: libc::c_int) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|&p| p > 1)
        .ok_or_else(|| std::io::Error::other(format!("{pid} is not a process to signal")))?;
    // SAFETY: kill takes two integers and touches no memory of this process.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Set TCP_DEFER_ACCEPT on a listening socket: accept a connection once data arrives, or
/// after `secs` seconds of silence (the kernel rounds up to a SYN-ACK retransmission); 0 turns
/// it off.
pub fn set_defer_accept(listener: &TcpListener, secs: u32) -> std::io::Result<()> {
    set_tcp_option(listener, libc::TCP_DEFER_ACCEPT, secs)
}

/// Set TCP_NOTSENT_LOWAT on a socket (a listener passes it to the sockets it accepts): a
/// write takes no more once `bytes` are queued in the kernel and not yet sent.
pub fn set_notsent_lowat(socket: &impl AsRawFd, bytes: u32) -> std::io::Result<()> {
    set_tcp_option(socket, libc::TCP_NOTSENT_LOWAT, bytes)
}

/// The current TCP_NOTSENT_LOWAT of a socket.
#[cfg(test)]
pub fn notsent_lowat(socket: &impl AsRawFd) -> std::io::Result<u32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the fd is an open socket for this call; `value` and `len` are valid and
    // writable, and `len` says how many bytes `value` has room for.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(value as u32)
}

/// Set an integer TCP option on a socket.
fn set_tcp_option(socket: &impl AsRawFd, option: libc::c_int, value: u32) -> std::io::Result<()> {
    let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
    // SAFETY: the fd is a socket owned by `socket` and open for this call; `value` is a c_int
    // that lives across the call, and the length passed is its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defer_accept_is_set_on_tcp_listeners_and_refused_elsewhere() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        set_defer_accept(&listener, 1).unwrap();
        set_defer_accept(&listener, 0).unwrap();
        // A datagram socket has no TCP options: the error comes back instead of being lost.
        let udp = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        let not_tcp: TcpListener = udp.into();
        assert!(set_defer_accept(&not_tcp, 1).is_err());
    }
}
