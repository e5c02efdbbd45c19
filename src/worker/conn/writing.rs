//! Writing responses and lingering. A connection's responses are built in the worker's
//! buffer (`ctx.wbuf`) and written at the end of each event; what the socket does not take
//! waits in the connection's own [`Writer`] until it is writable again. A connection whose
//! client sent more than was read shuts its write side and discards input until the client
//! closes ([`discard`]), so the close does not reset the connection before the client has read
//! our last response.

use std::io::{self, IoSlice, Read, Write};

use super::super::ctx::Ctx;
use super::Next;
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

    /// Write what is unsent, then as much of `extra` (a body straight from the shared
    /// pattern, never copied) as the socket takes, in one `writev`; returns the bytes of `extra`
    /// written. What is unsent stays; the rest of `extra` is the caller's to offer again.
    pub fn flush_with(
        &mut self,
        stream: &mut impl Write,
        extra: &[u8],
        ctx: &mut Ctx,
    ) -> io::Result<usize> {
        let (mut out, mut more) = (0, 0);
        while out < self.outbuf.len() || more < extra.len() {
            let bufs = [
                IoSlice::new(&self.outbuf[out..]),
                IoSlice::new(&extra[more..]),
            ];
            let wanted = self.outbuf.len() - out + extra.len() - more;
            match stream.write_vectored(&bufs) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    let from_out = n.min(self.outbuf.len() - out);
                    out += from_out;
                    more += n - from_out;
                    if n < wanted {
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
        let n = out + more;
        self.written = self.written.saturating_add(n.min(u32::MAX as usize) as u32);
        ctx.stats.sent(n);
        Ok(more)
    }
}

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
