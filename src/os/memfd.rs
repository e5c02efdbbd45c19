//! A body file: the shared pattern in an anonymous memory file (`memfd`), which `sendfile`
//! sends to a socket without copying it through user space.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd};

/// An anonymous file holding `copies` of `pattern` one after the other.
pub fn pattern_file(pattern: &[u8], copies: usize) -> io::Result<File> {
    // SAFETY: the name is a NUL-terminated string that outlives the call; the flags are
    // valid; a negative result is an error, checked.
    let fd = unsafe { libc::memfd_create(c"cerberus-body".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and nothing else owns it.
    let mut file = unsafe { File::from_raw_fd(fd) };
    for _ in 0..copies {
        file.write_all(pattern)?;
    }
    Ok(file)
}

/// Send up to `count` bytes of `file` from `offset` to `socket` (`sendfile`, non-blocking
/// when the socket is); returns the bytes sent.
pub fn send_file(
    socket: &impl AsRawFd,
    file: &File,
    offset: u64,
    count: usize,
) -> io::Result<usize> {
    let mut off = libc::off_t::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: both descriptors are open for the duration of the call (borrowed), and `off`
    // is a valid, writable off_t.
    let n = unsafe { libc::sendfile(socket.as_raw_fd(), file.as_raw_fd(), &mut off, count) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_file_holds_the_copies_and_sendfile_sends_from_the_offset() {
        let file = pattern_file(b"abcd", 3).unwrap();
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(send_file(&b, &file, 2, 6).unwrap(), 6);
        drop(b);
        let mut got = String::new();
        a.read_to_string(&mut got).unwrap();
        assert_eq!(got, "cdabcd");
    }
}
