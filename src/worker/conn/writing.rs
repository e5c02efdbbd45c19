//! Writing responses and lingering. A connection's responses are built in the worker's
//! buffer (`ctx.wbuf`) and written at the end of each event; what the socket does not take
//! waits in the connection's own [`Writer`] until it is writable again. A connection whose
//! client sent more than was read shuts its write side and discards input until the client
//! closes ([`discard`]), so the close does not reset the connection before the client has read
//! our last response.

use std::io::{self, IoSlice, Read, Write};

use super::super::ctx::Ctx;
use super::Next;
use crate::handler::{pattern_at, BODY_FILE_LEN};
use crate::stats::CloseReason;

/// Response bytes the socket has not taken yet.
#[derive(Debug, Default)]
pub struct Writer {
    /// Unsent bytes; empty (and unallocated) once everything went out.
    outbuf: Vec<u8>,
    /// Bytes that went out since [`take_written`](Self::take_written) was last called.
    written: u32,
}

impl Writer {
    /// Bytes the client has not read yet.
    pub fn owed(&self) -> usize {
        self.outbuf.len()
    }

    /// Nothing is owed.
    pub fn is_empty(&self) -> bool {
        self.outbuf.is_empty()
    }

    /// Bytes that went out since the last call (the write deadline restarts only when some
    /// did, and the send rate counts them).
    pub fn take_written(&mut self) -> u32 {
        std::mem::take(&mut self.written)
    }

    /// Write `ctx.wbuf` (after any older unsent bytes) and empty it; keep what the socket does
    /// not take.
    pub fn flush(&mut self, stream: &mut impl Write, ctx: &mut Ctx) -> io::Result<()> {
        let result = if self.outbuf.is_empty() {
            let r = write_some(stream, &ctx.wbuf);
            if let Ok(n) = r {
                self.outbuf.extend_from_slice(&ctx.wbuf[n..]);
            }
            r
        } else {
            self.outbuf.extend_from_slice(&ctx.wbuf);
            let r = write_some(stream, &self.outbuf);
            if let Ok(n) = r {
                self.outbuf.drain(..n);
                if self.outbuf.is_empty() {
                    self.outbuf = Vec::new();
                }
            }
            r
        };
        ctx.wbuf.clear();
        let n = result?;
        self.written = self.written.saturating_add(n.min(u32::MAX as usize) as u32);
        ctx.stats.sent(n);
        Ok(())
    }
}

impl Writer {
    /// Where a response that completes later is rendered: after what is still unsent.
    pub fn staging(&mut self) -> &mut Vec<u8> {
        &mut self.outbuf
    }

    /// Queue `bytes` after what is unsent (taking the allocation when nothing is).
    pub fn adopt(&mut self, bytes: Vec<u8>) {
        if self.outbuf.is_empty() {
            self.outbuf = bytes;
        } else {
            self.outbuf.extend_from_slice(&bytes);
        }
    }

    /// Write what is unsent, then as much of the pattern body from `at` (`left` bytes of it:
    /// the shared pattern, never copied, as several slices of one `writev`) as the socket
    /// takes, then `tail` once the body is all gone; returns the body bytes written. What is
    /// unsent before the body stays; so does what is unsent of the tail once the body went
    /// (the caller sees the body done and moves on); the rest of the body is the caller's to
    /// offer again. One `writev` carries all three, so a head, its body and a chunk's CRLF
    /// leave in as few segments as their length allows.
    pub fn flush_with(
        &mut self,
        stream: &mut impl Write,
        at: u64,
        left: u64,
        tail: &[u8],
        ctx: &mut Ctx,
    ) -> io::Result<u64> {
        let (mut out, mut more, mut tail_out) = (0usize, 0u64, 0usize);
        while out < self.outbuf.len() || more < left || tail_out < tail.len() {
            let mut bufs = [IoSlice::new(&[]); BODY_SLICES + 2];
            bufs[0] = IoSlice::new(&self.outbuf[out..]);
            let (mut n, mut from) = (1, at + more);
            let end = at + left;
            while n < BODY_SLICES + 1 && from < end {
                let slice = pattern_at(from, end - from);
                bufs[n] = IoSlice::new(slice);
                from += slice.len() as u64;
                n += 1;
            }
            let body = (from - at - more) as usize;
            let tail_now = if from == end { &tail[tail_out..] } else { &[] };
            if !tail_now.is_empty() {
                bufs[n] = IoSlice::new(tail_now);
                n += 1;
            }
            let head = self.outbuf.len() - out;
            let wanted = head + body + tail_now.len();
            match stream.write_vectored(&bufs[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    let from_out = written.min(head);
                    let from_body = (written - from_out).min(body);
                    out += from_out;
                    more += from_body as u64;
                    tail_out += written - from_out - from_body;
                    if written < wanted {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if out == self.outbuf.len() {
            self.outbuf = Vec::new();
        } else {
            self.outbuf.drain(..out);
        }
        if more == left {
            self.outbuf.extend_from_slice(&tail[tail_out..]);
        }
        let n = out + more as usize + tail_out;
        self.written = self.written.saturating_add(n.min(u32::MAX as usize) as u32);
        ctx.stats.sent(n);
        Ok(more)
    }
}

impl Writer {
    /// Send the pattern body from `at` (`left` bytes of it) from the body file with
    /// `sendfile`, once nothing else is unsent; returns the body bytes sent, or `None` where
    /// it cannot (no body file, bytes unsent before it, or a socket without `sendfile`).
    pub fn send_body<S: super::Socket>(
        &mut self,
        stream: &mut S,
        at: u64,
        left: u64,
        ctx: &mut Ctx,
    ) -> Option<io::Result<u64>> {
        let file = crate::handler::body_file()?;
        if !self.outbuf.is_empty() {
            return None;
        }
        let mut sent = 0u64;
        let result = loop {
            if sent == left {
                break Ok(());
            }
            let offset = (at + sent) % BODY_FILE_LEN as u64;
            let count = (left - sent).min(BODY_FILE_LEN as u64 - offset) as usize;
            match stream.send_file(file, offset, count) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    sent += n as u64;
                    if n < count {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::Unsupported && sent == 0 => return None,
                Err(e) => break Err(e),
            }
        };
        let n = sent.min(u64::from(u32::MAX)) as u32;
        self.written = self.written.saturating_add(n);
        ctx.stats.sent(sent as usize);
        Some(result.map(|()| sent))
    }
}

/// Slices of the pattern one `writev` offers: 8 of 64 KiB, half a megabyte, so that a large
/// body goes in few calls. Not a whole megabyte: under BBR pacing inside TCP (no `fq`), a flow
/// whose 1 MiB responses each went in one call was paced at ~40 Gbit/s, against 300-500 when
/// they went in two, which cost 25% more CPU per byte (benches/README.md, `size=1MiB`).
const BODY_SLICES: usize = 8;

/// Write as much of `buf` as the socket takes without blocking.
fn write_some(stream: &mut impl Write, buf: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < buf.len() {
        match stream.write(&buf[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                written += n;
                // A short write means the socket buffer is full: wait for writability.
                if written < buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// Read and drop input while lingering; close at EOF.
pub fn discard(stream: &mut impl Read, rbuf: &mut [u8]) -> Next {
    loop {
        match stream.read(rbuf) {
            Ok(0) => return Next::Close(CloseReason::Client),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Next::Close(CloseReason::Error),
        }
    }
}
