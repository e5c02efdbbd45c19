//! Reading a `body_file`: a regular file of bounded size, read without ever blocking.
//!
//! The file is read at start, by `--check-config` and at every reload, on the supervisor's
//! thread. A FIFO or a device there would block that thread (a FIFO's `open` waits for a
//! writer), and with it every signal, including SIGTERM. So the file type is checked before
//! opening, the open is non-blocking, and the type is checked again on the open file, in case
//! the path was replaced in between.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Largest `body_file`, in bytes: 64 MiB. The body is kept in memory once per configuration
/// and once more in each worker's cache of its last rendered response, and every response
/// copies it into the connection's output; a static page is far smaller, so a file past this
/// is a mistake (a log, an image of a disk) that would cost memory per worker. It leaves room
/// for the tests' 32 MiB response that overflows every socket buffer.
pub const MAX_BODY_FILE: u64 = 64 * 1024 * 1024;

/// The contents of the `body_file` at `path`. Errors name the file and say what is wrong.
pub fn read_body_file(path: &Path) -> io::Result<Vec<u8>> {
    let named =
        |e: io::Error| io::Error::new(e.kind(), format!("body_file {}: {e}", path.display()));
    let metadata = std::fs::metadata(path).map_err(named)?;
    check_metadata(&metadata).map_err(named)?;
    let file = OpenOptions::new()
        .read(true)
        // No effect on a regular file; stops a FIFO swapped in after the check from blocking.
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(named)?;
    check_metadata(&file.metadata().map_err(named)?).map_err(named)?;
    read_bounded(file).map_err(named)
}

/// Is this a regular file no larger than [`MAX_BODY_FILE`]?
fn check_metadata(metadata: &Metadata) -> io::Result<()> {
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}, not a regular file", kind_of(metadata)),
        ));
    }
    if metadata.len() > MAX_BODY_FILE {
        return Err(too_large(metadata.len()));
    }
    Ok(())
}

/// Read the whole file, but never more than [`MAX_BODY_FILE`] bytes (it may grow after the
/// check).
fn read_bounded(file: File) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    file.take(MAX_BODY_FILE + 1).read_to_end(&mut body)?;
    if body.len() as u64 > MAX_BODY_FILE {
        return Err(too_large(body.len() as u64));
    }
    Ok(body)
}

fn too_large(len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{len} bytes is more than the limit of {MAX_BODY_FILE} bytes (64 MiB)"),
    )
}

/// What a non-regular file is, for the error message.
fn kind_of(metadata: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = metadata.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file_and_refuses_directories_and_devices() {
        let dir = std::env::temp_dir().join(format!("cerberus-body-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("body");
        std::fs::write(&file, b"hello").unwrap();
        assert_eq!(read_body_file(&file).unwrap(), b"hello");
        let e = read_body_file(&dir).unwrap_err().to_string();
        assert!(e.contains("a directory, not a regular file"), "{e}");
        let e = read_body_file(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/dev/zero: a device"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_past_the_limit_is_refused_naming_its_size() {
        let e = too_large(MAX_BODY_FILE + 1).to_string();
        assert!(e.contains("67108865 bytes is more than the limit"), "{e}");
    }
}
