//! A `timerfd`: a timer the kernel reports through epoll, with nanosecond resolution. The
//! worker's loop can only sleep in whole milliseconds (`epoll_wait`'s timeout), too coarse for
//! responses delayed by a few milliseconds; this wakes it at the instant one is due.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A monotonic-clock timer whose expiry makes its descriptor readable.
#[derive(Debug)]
pub struct TimerFd {
    fd: OwnedFd,
}

impl TimerFd {
    /// A disarmed, non-blocking timer on CLOCK_MONOTONIC (the clock `Instant` reads).
    pub fn new() -> io::Result<TimerFd> {
        let flags = libc::TFD_NONBLOCK | libc::TFD_CLOEXEC;
        // SAFETY: timerfd_create takes no pointers; a negative result is an error, checked.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created by timerfd_create and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(TimerFd { fd })
    }

    /// Fire once, `after` from now (a zero `after` fires at once: the kernel would read zero as
    /// "disarm"). Replaces any earlier setting, and clears an expiry not yet read.
    pub fn set(&self, after: Duration) -> io::Result<()> {
        let after = after.max(Duration::from_nanos(1));
        self.settime(libc::timespec {
            tv_sec: after.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: after.subsec_nanos() as libc::c_long,
        })
    }

    fn settime(&self, value: libc::timespec) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // SAFETY: `spec` is a valid itimerspec that outlives the call; the old value is not
        // asked for (null), and the fd is a timerfd we own.
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl AsRawFd for TimerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Let this thread's timers (epoll's and timerfd's) fire within `slack` of when they are due,
/// instead of the default 50 µs, which a response delayed by a few milliseconds would show.
pub fn set_timer_slack(slack: Duration) -> io::Result<()> {
    let nanos = slack.as_nanos().clamp(1, libc::c_ulong::MAX as u128) as libc::c_ulong;
    // SAFETY: PR_SET_TIMERSLACK takes its value as an integer argument, no pointers.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, nanos, 0, 0, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Wait until `fd` is readable, up to `ms` milliseconds.
    fn wait_readable(fd: &TimerFd, ms: i32) -> bool {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid pollfd, for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        rc == 1
    }

    #[test]
    fn it_fires_after_the_time_set_and_a_new_setting_replaces_the_old() {
        set_timer_slack(Duration::from_nanos(1)).unwrap();
        let timer = TimerFd::new().unwrap();
        let start = Instant::now();
        timer.set(Duration::from_millis(3)).unwrap();
        assert!(wait_readable(&timer, 1000));
        assert!(start.elapsed() >= Duration::from_millis(3));
        // Set again: the expiry not read is cleared, and the new instant is far.
        timer.set(Duration::from_secs(5)).unwrap();
        assert!(!wait_readable(&timer, 200), "the old expiry was kept");
    }
}
