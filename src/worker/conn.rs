//! One client connection: its buffers, where it is in a request, and its timer.
//!
//! An idle keep-alive connection owns no heap memory: bytes are read into the worker's buffer
//! and responses are built in the worker's buffer. A connection only takes buffers of its own
//! for what must outlive one event: a partial request, or response bytes the client has not
//! read yet.

use std::io::{self, Read, Write};
use std::time::Instant;

use mio::net::TcpStream;

use super::ctx::Ctx;
use super::dispatch::dispatch;
use crate::http::response::{self, ConnectionHeader};
use crate::http::{BodyKind, Chunk, ChunkedDecoder, Expect, ParseError, RequestParser, Status};
use crate::stats::CloseReason;

/// How long a closing connection keeps reading (and discarding) what the client still sends,
/// so that closing does not reset the connection before the client has read our last response.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// What the connection's timer is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// A request head (from accept, or from its first byte).
    Head,
    /// More of a request body.
    Body,
    /// The next request on a kept-alive connection.
    Idle,
    /// The client to read its responses.
    Write,
    /// The client to close after our final response.
    Linger,
}

/// What the worker should do with the connection after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep it.
    Keep,
    /// Close it, counting this reason.
    Close(CloseReason),
}

/// A chunked body that is still arriving.
#[derive(Debug)]
struct ChunkedProgress {
    decoder: ChunkedDecoder,
    /// The body decoded so far.
    decoded: Vec<u8>,
    /// Bytes of the encoded body (after the head) already decoded.
    offset: usize,
}

/// A client connection.
#[derive(Debug)]
pub struct Conn {
    /// The socket, registered for both read and write readiness once, at accept.
    pub stream: TcpStream,
    /// Received bytes not answered yet: a partial request, or requests held back by
    /// backpressure. Empty (and unallocated) on an idle connection.
    inbuf: Vec<u8>,
    /// Response bytes the socket has not taken yet.
    outbuf: Vec<u8>,
    /// A chunked body in progress.
    chunked: Option<Box<ChunkedProgress>>,
    /// When the first byte of the pending request arrived, for the duration histogram.
    started: Option<Instant>,
    /// Distinguishes this connection from a later one that reuses its slab key.
    pub gen: u32,
    /// The tick at which the timer fires.
    pub deadline: u64,
    /// What the timer is waiting for.
    pub waiting: Waiting,
    /// Registered for writable events too (added the first time a write falls short).
    pub write_interest: bool,
    /// The tick of this connection's live entry in the timer wheel, if it has one.
    pub wheel_tick: Option<u64>,
    /// `100 Continue` was sent for the pending request.
    continue_sent: bool,
    /// The pending request's head is complete; its body is still arriving.
    awaiting_body: bool,
    /// No more requests will be answered; close once `outbuf` is written.
    closing: bool,
    /// Bytes arrived after the last request we will answer.
    unread: bool,
    /// Our write side is shut; we are discarding input until the client closes.
    lingering: bool,
    /// Reading is paused because `outbuf` is over `max_output`.
    paused: bool,
    /// The pending request started before a reload: finish it under the old config.
    pub old_config: bool,
    /// Nothing has been received yet: the header timeout runs from accept.
    fresh: bool,
}

impl Conn {
    /// A new connection, waiting for its first request.
    pub fn new(stream: TcpStream, gen: u32) -> Conn {
        Conn {
            stream,
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            chunked: None,
            started: None,
            gen,
            deadline: 0,
            waiting: Waiting::Head,
            write_interest: false,
            wheel_tick: None,
            continue_sent: false,
            awaiting_body: false,
            closing: false,
            unread: false,
            lingering: false,
            paused: false,
            old_config: false,
            fresh: true,
        }
    }

    /// Response bytes wait for the socket to become writable.
    pub fn has_unsent_output(&self) -> bool {
        !self.outbuf.is_empty()
    }

    /// Nothing has been received on this connection yet.
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// Part of a request has arrived, but not all of it.
    pub fn has_partial_request(&self) -> bool {
        !self.inbuf.is_empty() || self.awaiting_body
    }

    /// The socket is readable (or closed, or in error).
    /// `read_closed`: the event said the peer shut its side, so a short read does not mean
    /// there is nothing more to learn (the EOF comes after the data, with no further event).
    pub fn on_readable(
        &mut self,
        rbuf: &mut [u8],
        read_closed: bool,
        parser: &mut RequestParser,
        ctx: &mut Ctx,
    ) -> Next {
        if self.lingering {
            return self.discard(rbuf);
        }
        loop {
            let next = self.read_and_answer(rbuf, read_closed, parser, ctx);
            if next != Next::Keep
                || !self.paused
                || self.outbuf.len() >= ctx.shared.config.max_output
            {
                return next;
            }
            // The socket took all we had: no writable event will come, so carry on with the
            // requests held back, then read again.
            self.paused = false;
            let pending = std::mem::take(&mut self.inbuf);
            self.receive_buffered(pending, parser, ctx);
        }
    }

    /// Read until the socket is drained (or we must stop), answer, and flush.
    fn read_and_answer(
        &mut self,
        rbuf: &mut [u8],
        read_closed: bool,
        parser: &mut RequestParser,
        ctx: &mut Ctx,
    ) -> Next {
        loop {
            if self.closing || self.paused {
                break;
            }
            let n = match self.stream.read(rbuf) {
                Ok(0) => return self.on_eof(ctx),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Next::Close(CloseReason::Error),
            };
            self.fresh = false;
            ctx.stats.bytes_received.add(n as u64);
            self.receive(&rbuf[..n], parser, ctx);
            // A short read drained the socket: edge-triggered epoll reports new data.
            if n < rbuf.len() && !read_closed {
                break;
            }
        }
        self.flush(ctx)
    }

    /// The socket is writable again.
    pub fn on_writable(
        &mut self,
        rbuf: &mut [u8],
        parser: &mut RequestParser,
        ctx: &mut Ctx,
    ) -> Next {
        if self.outbuf.is_empty() {
            return Next::Keep;
        }
        if let Next::Close(reason) = self.flush(ctx) {
            return Next::Close(reason);
        }
        if self.paused && self.outbuf.len() < ctx.shared.config.max_output {
            // Answer what was held back, then read what the socket still holds.
            self.paused = false;
            let pending = std::mem::take(&mut self.inbuf);
            self.started = self.started.or(Some(ctx.now));
            self.receive_buffered(pending, parser, ctx);
            return self.on_readable(rbuf, false, parser, ctx);
        }
        Next::Keep
    }

    /// The timer fired for `self.waiting`.
    pub fn on_timeout(&mut self, ctx: &mut Ctx) -> CloseReason {
        match self.waiting {
            Waiting::Head if self.fresh && ctx.draining => CloseReason::Shutdown,
            Waiting::Head => {
                self.closing = true;
                response::write_error(
                    &mut ctx.wbuf,
                    408,
                    ctx.date.get(),
                    ConnectionHeader::Close,
                    false,
                );
                ctx.stats.request(b"other", 408);
                ctx.stats
                    .record_durations(1, ctx.now - self.started.unwrap_or(ctx.now));
                let _ = self.flush(ctx);
                CloseReason::HeaderTimeout
            }
            Waiting::Body => CloseReason::BodyTimeout,
            Waiting::Idle => CloseReason::KeepaliveTimeout,
            Waiting::Write => CloseReason::WriteTimeout,
            Waiting::Linger => CloseReason::Client,
        }
    }

    /// What the timer should wait for now, and whether its deadline restarts.
    pub fn waiting_for(&self) -> (Waiting, bool) {
        if self.lingering {
            (Waiting::Linger, self.waiting != Waiting::Linger)
        } else if !self.outbuf.is_empty() {
            (Waiting::Write, true)
        } else if self.awaiting_body {
            (Waiting::Body, true)
        } else if !self.inbuf.is_empty() || self.fresh {
            // The head deadline runs from its first byte and is not pushed back by later bytes.
            (Waiting::Head, self.waiting != Waiting::Head)
        } else {
            // Any event on an idle connection is activity (a request was answered).
            (Waiting::Idle, true)
        }
    }

    /// The linger time, for the worker's timer.
    pub fn linger() -> std::time::Duration {
        LINGER
    }

    fn on_eof(&mut self, ctx: &mut Ctx) -> Next {
        if !self.outbuf.is_empty() || !ctx.wbuf.is_empty() {
            // The client half-closed after sending requests: answer them, then close.
            self.closing = true;
            self.inbuf.clear();
            return match self.flush(ctx) {
                Next::Keep if self.outbuf.is_empty() => Next::Close(CloseReason::Client),
                next => next,
            };
        }
        Next::Close(CloseReason::Client)
    }

    /// Read and drop input while lingering; close at EOF.
    fn discard(&mut self, rbuf: &mut [u8]) -> Next {
        loop {
            match self.stream.read(rbuf) {
                Ok(0) => return Next::Close(CloseReason::Client),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close(CloseReason::Error),
            }
        }
    }

    /// Handle newly read bytes.
    fn receive(&mut self, data: &[u8], parser: &mut RequestParser, ctx: &mut Ctx) {
        if self.inbuf.is_empty() {
            self.started = self.started.or(Some(ctx.now));
            let used = self.answer(data, parser, ctx);
            if used < data.len() && !self.closing {
                self.inbuf.extend_from_slice(&data[used..]);
            }
        } else {
            let mut pending = std::mem::take(&mut self.inbuf);
            pending.extend_from_slice(data);
            self.receive_buffered(pending, parser, ctx);
        }
    }

    /// Answer from a buffer the connection owns, keeping what is left of it.
    fn receive_buffered(
        &mut self,
        mut pending: Vec<u8>,
        parser: &mut RequestParser,
        ctx: &mut Ctx,
    ) {
        let used = self.answer(&pending, parser, ctx);
        if self.closing || used == pending.len() {
            // Dropping the allocation keeps idle connections free of heap memory.
            self.inbuf = Vec::new();
        } else {
            pending.drain(..used);
            self.inbuf = pending;
        }
    }

    /// Answer every complete request at the start of `data`; returns the bytes used.
    fn answer(&mut self, data: &[u8], parser: &mut RequestParser, ctx: &mut Ctx) -> usize {
        let mut used = 0;
        let mut answered = 0u64;
        let start = self.started.unwrap_or(ctx.now);
        while used < data.len() && !self.closing {
            if self.outbuf.len() + ctx.wbuf.len() >= ctx.shared.config.max_output {
                self.paused = true;
                break;
            }
            match self.one(&data[used..], parser, ctx) {
                Some(n) => {
                    used += n;
                    answered += 1;
                }
                None => break,
            }
        }
        if answered > 0 {
            ctx.stats.record_durations(answered, Instant::now() - start);
            self.started = if used < data.len() {
                Some(ctx.now)
            } else {
                None
            };
        }
        if self.closing && used < data.len() {
            self.unread = true;
        }
        used
    }

    /// Answer one request at the start of `data`, if it is complete. Returns its length.
    /// On a protocol error, queues the error response, sets `closing`, and returns `Some`.
    fn one(&mut self, data: &[u8], parser: &mut RequestParser, ctx: &mut Ctx) -> Option<usize> {
        // The parser is the worker's: it must not carry anything over from another
        // connection, or from this one's last (partial or rejected) attempt.
        parser.reset();
        let (head, head_len) = match parser.parse(data) {
            Status::Partial => return None,
            Status::Error(e) => return Some(self.reject(e, data.len(), ctx)),
            Status::Complete(head, n) => (head, n),
        };
        let (body_end, body) = match self.body(data, head_len, head.body(), ctx) {
            Ok(Some(found)) => found,
            Ok(None) => {
                self.awaiting_body = true;
                if head.expect() == Expect::Continue
                    && !self.continue_sent
                    && data.len() == head_len
                {
                    ctx.wbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    self.continue_sent = true;
                }
                return None;
            }
            Err(e) => return Some(self.reject(e, data.len(), ctx)),
        };
        self.continue_sent = false;
        self.awaiting_body = false;
        let keep = match body {
            None => dispatch(&head, &data[head_len..body_end], ctx),
            Some(owned) => {
                let keep = dispatch(&head, &owned, ctx);
                ctx.recycle(owned);
                keep
            }
        };
        if !keep {
            self.closing = true;
        }
        Some(body_end)
    }

    /// Find the body of the request whose head is `data[..head_len]`. `Ok(None)`: not all here.
    fn body(
        &mut self,
        data: &[u8],
        head_len: usize,
        kind: BodyKind,
        ctx: &mut Ctx,
    ) -> Result<Option<FoundBody>, ParseError> {
        let max = ctx.shared.config.max_body;
        match kind {
            BodyKind::None => Ok(Some((head_len, None))),
            BodyKind::Length(n) if n > max => Err(ParseError::BodyTooLarge),
            BodyKind::Length(n) => {
                let end = head_len + n as usize;
                Ok((data.len() >= end).then_some((end, None)))
            }
            BodyKind::Chunked => {
                let mut progress = self.chunked.take().unwrap_or_else(|| {
                    Box::new(ChunkedProgress {
                        decoder: ChunkedDecoder::new(max),
                        decoded: ctx.scratch(),
                        offset: 0,
                    })
                });
                let encoded = &data[head_len..];
                loop {
                    let (used, chunk) = progress.decoder.decode(&encoded[progress.offset..])?;
                    progress.offset += used;
                    match chunk {
                        Chunk::Data(d) => progress.decoded.extend_from_slice(d),
                        Chunk::Trailer(..) => {}
                        Chunk::End => {
                            let end = head_len + progress.offset;
                            return Ok(Some((end, Some(progress.decoded))));
                        }
                        Chunk::NeedMore if used == 0 => {
                            self.chunked = Some(progress);
                            return Ok(None);
                        }
                        Chunk::NeedMore => {}
                    }
                }
            }
        }
    }

    /// Queue the error response for `e` and stop answering on this connection.
    fn reject(&mut self, e: ParseError, len: usize, ctx: &mut Ctx) -> usize {
        ctx.stats.parse_error(e);
        // Its duration is recorded by `answer`, like any answered request.
        ctx.stats.request(b"other", e.status());
        response::write_error(
            &mut ctx.wbuf,
            e.status(),
            ctx.date.get(),
            ConnectionHeader::Close,
            false,
        );
        self.chunked = None;
        self.closing = true;
        self.unread = true;
        len
    }

    /// Write `ctx.wbuf` (after any older unsent bytes); keep what the socket does not take.
    fn flush(&mut self, ctx: &mut Ctx) -> Next {
        let result = if self.outbuf.is_empty() {
            let r = write_some(&mut self.stream, &ctx.wbuf);
            if let Ok(n) = r {
                self.outbuf.extend_from_slice(&ctx.wbuf[n..]);
            }
            r
        } else {
            self.outbuf.extend_from_slice(&ctx.wbuf);
            let r = write_some(&mut self.stream, &self.outbuf);
            if let Ok(n) = r {
                self.outbuf.drain(..n);
                if self.outbuf.is_empty() {
                    self.outbuf = Vec::new();
                }
            }
            r
        };
        ctx.wbuf.clear();
        match result {
            Err(_) => Next::Close(CloseReason::Error),
            Ok(n) => {
                ctx.stats.bytes_sent.add(n as u64);
                if self.closing && self.outbuf.is_empty() {
                    self.finish()
                } else {
                    Next::Keep
                }
            }
        }
    }

    /// The last response is out: close now, or linger if the client sent more than we read.
    fn finish(&mut self) -> Next {
        if !self.unread || self.lingering {
            return Next::Close(CloseReason::Client);
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        self.lingering = true;
        Next::Keep
    }
}

/// A complete body: where the request ends, and the de-chunked body if it was chunked (a
/// Content-Length body is the bytes just before the end).
type FoundBody = (usize, Option<Vec<u8>>);

/// Write as much of `buf` as the socket takes without blocking.
fn write_some(stream: &mut TcpStream, buf: &[u8]) -> io::Result<usize> {
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
