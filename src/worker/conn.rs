//! One client connection: its buffers, where it is in reading requests, and its timer.
//!
//! An idle keep-alive connection owns no heap memory: bytes are read into the worker's buffer
//! and responses are built in the worker's buffer. A connection only takes memory of its own
//! for what must outlive one event: a partial request (and, for a head, where the parser got
//! to), or response bytes the client has not read yet.
//!
//! The write buffer `ctx.wbuf` has one owner: [`Conn::flush`] writes it out and empties it,
//! and every path out of [`Conn::on_event`] and [`Conn::on_timeout`] ends in a flush, so the
//! buffer is empty between events.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::body::{complete_request_at, ChunkedProgress, FoundBody};
use super::ctx::{Ctx, Shared};
use super::dispatch::{check_head, dispatch};
use super::timer::{Slot, Wheel};
use crate::config::Config;
use crate::http::response::{self, ConnectionHeader};
use crate::http::{is_head_request, BodyKind, Expect, ParseError, RequestParser, Status, Version};
use crate::stats::CloseReason;

/// How long a closing connection keeps reading (and discarding) what the client still sends,
/// so that closing does not reset the connection before the client has read our last response.
const LINGER: Duration = Duration::from_secs(2);
/// While draining, how long a connection with nothing in flight may stay open before it is
/// closed. A client sending its next request in this time gets it answered (with
/// `Connection: close`) instead of finding the connection closed under it.
const DRAIN_IDLE_GRACE: Duration = Duration::from_millis(500);

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

impl Waiting {
    /// How long to wait, by `config`. While draining, a connection with nothing in flight gets
    /// only a short grace.
    fn timeout(self, config: &Config, draining: bool, fresh: bool) -> Duration {
        match self {
            Waiting::Head if draining && fresh => DRAIN_IDLE_GRACE.min(config.header_timeout),
            Waiting::Head => config.header_timeout,
            Waiting::Body => config.body_timeout,
            Waiting::Idle if draining => DRAIN_IDLE_GRACE.min(config.keepalive_timeout),
            Waiting::Idle => config.keepalive_timeout,
            Waiting::Write => config.write_timeout,
            Waiting::Linger => LINGER,
        }
    }
}

/// What the worker should do with the connection after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep it.
    Keep,
    /// Close it, counting this reason.
    Close(CloseReason),
}

/// What epoll reported for the connection.
#[derive(Debug, Clone, Copy)]
pub struct Ready {
    /// There is something to read (or the peer closed, or the socket is in error).
    pub readable: bool,
    /// The socket takes writes again.
    pub writable: bool,
    /// The peer shut its side, so a short read does not mean there is nothing more to learn
    /// (the EOF comes after the data, with no further event).
    pub read_closed: bool,
}

/// The worker's buffers a connection borrows during an event.
pub struct Io<'a> {
    /// Where bytes are read.
    pub rbuf: &'a mut [u8],
    /// The worker's parser, for heads that arrive whole.
    pub parser: &'a mut RequestParser,
}

/// Where a connection is in reading requests. Each state says what its data means, so
/// combinations that cannot happen cannot be written either.
#[derive(Debug)]
enum Reading {
    /// Nothing has arrived yet: the header timeout runs from accept.
    Fresh,
    /// Waiting for a request head. `inbuf` holds what has arrived of it (nothing: the
    /// connection is idle between requests), and `resume` where the parser got to in it, so the
    /// next read goes on from there instead of parsing the head again from its start.
    Head { resume: Option<Box<RequestParser>> },
    /// A head is complete and its body is arriving.
    Body {
        /// `100 Continue` was sent for this request.
        continue_sent: bool,
        /// A chunked body's decoder and what it decoded so far.
        chunked: Option<Box<ChunkedProgress>>,
    },
    /// Requests wait in `inbuf` until the client reads what we owe it (over `max_output`).
    Paused,
    /// No more requests will be answered: close once `outbuf` is written. `unread`: bytes
    /// came after the last request answered, so close by lingering, not at once.
    Closing { unread: bool },
    /// Our write side is shut; input is discarded until the client closes.
    Lingering,
}

/// What happened since the timer was last armed: a deadline that measures progress restarts
/// only when there was some.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    /// Response bytes went out (the write deadline measures this, not reads).
    wrote: bool,
    /// A request was answered, so what is pending now is a new request whose head deadline
    /// runs from now.
    answered: bool,
}

/// What a connection needs of its socket. The worker's are `mio` TCP streams; the fuzz
/// harness (`worker::fuzz`) drives the same state machine over a scripted socket.
pub trait Socket: Read + Write {
    /// Shut our write side (the client sees EOF after our last response).
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Socket for TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// A client connection.
#[derive(Debug)]
pub struct Conn<S = TcpStream> {
    /// The socket, registered for read readiness at accept (and write readiness once a
    /// write falls short).
    pub stream: S,
    /// Received bytes not answered yet: a partial request, or requests held back by
    /// backpressure. Empty (and unallocated) on an idle connection.
    inbuf: Vec<u8>,
    /// Response bytes the socket has not taken yet.
    outbuf: Vec<u8>,
    /// Where reading requests is.
    reading: Reading,
    /// When the first byte of the pending request arrived, for the duration histogram.
    started: Option<Instant>,
    /// The connection's place in the worker's timing wheel.
    pub timer: Slot,
    /// What the timer is waiting for.
    waiting: Waiting,
    /// Progress since the timer was last armed.
    progress: Progress,
    /// Registered for writable events too (added the first time a write falls short).
    pub write_interest: bool,
    /// The pending request started before a reload: finish it under the old config.
    pub old_config: bool,
}

impl<S: Socket> Conn<S> {
    /// A new connection, waiting for its first request; `gen` tells it apart from a later one
    /// in the same slab slot.
    pub fn new(stream: S, gen: u32) -> Conn<S> {
        Conn {
            stream,
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            reading: Reading::Fresh,
            started: None,
            timer: Slot::new(gen),
            waiting: Waiting::Head,
            progress: Progress::default(),
            write_interest: false,
            old_config: false,
        }
    }

    /// Response bytes wait for the socket to become writable.
    pub fn has_unsent_output(&self) -> bool {
        !self.outbuf.is_empty()
    }

    /// Part of a request has arrived, but not all of it.
    pub fn has_partial_request(&self) -> bool {
        !self.inbuf.is_empty() || matches!(self.reading, Reading::Body { .. })
    }

    /// Handle what epoll reported: write what is owed, then read and answer.
    pub fn on_event(&mut self, ready: Ready, io: Io<'_>, shared: &Shared, ctx: &mut Ctx) -> Next {
        let max_output = shared.config.max_output;
        let mut read = ready.readable;
        if ready.writable && !self.outbuf.is_empty() {
            if let Next::Close(reason) = self.flush(ctx) {
                return Next::Close(reason);
            }
            // Requests held back were not read from the socket either, and edge-triggered
            // epoll will not report those bytes again: go on with them now.
            read |= self.is_paused() && self.outbuf.len() < max_output;
        }
        if !read {
            return Next::Keep;
        }
        if matches!(self.reading, Reading::Lingering) {
            return self.discard(io.rbuf);
        }
        loop {
            if self.is_paused() && self.outbuf.len() < max_output {
                self.resume(io.parser, shared, ctx);
            }
            let next = self.read_and_answer(io.rbuf, ready.read_closed, io.parser, shared, ctx);
            // The socket took all we had, so no writable event will come: carry on with the
            // requests held back, then read again.
            if next != Next::Keep || !self.is_paused() || self.outbuf.len() >= max_output {
                return next;
            }
        }
    }

    /// The timer fired for what the connection was waiting for.
    pub fn on_timeout(&mut self, ctx: &mut Ctx) -> CloseReason {
        let fresh = matches!(self.reading, Reading::Fresh);
        match self.waiting {
            Waiting::Head if fresh && ctx.draining => CloseReason::Shutdown,
            Waiting::Head => {
                self.reading = Reading::Closing { unread: false };
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
            Waiting::Idle if ctx.draining => CloseReason::Shutdown,
            Waiting::Idle => CloseReason::KeepaliveTimeout,
            Waiting::Write => CloseReason::WriteTimeout,
            Waiting::Linger => CloseReason::Client,
        }
    }

    /// Point the timer at what the connection now waits for, by `config`: one call per
    /// event. `force` re-arms even if nothing changed (at accept, and when a drain starts and
    /// timeouts shorten); a lingering connection keeps its deadline, already a short one.
    pub fn arm_timer(
        &mut self,
        wheel: &mut Wheel,
        key: usize,
        now: Instant,
        config: &Config,
        draining: bool,
        force: bool,
    ) {
        let (waiting, restart) = self.waiting_for();
        self.progress = Progress::default();
        let same = waiting == self.waiting;
        if same && (waiting == Waiting::Linger || (!force && !restart)) {
            return;
        }
        self.waiting = waiting;
        let fresh = matches!(self.reading, Reading::Fresh);
        let timeout = waiting.timeout(config, draining, fresh);
        wheel.arm(&mut self.timer, key, now, timeout);
    }

    /// What the timer should wait for now, and whether its deadline restarts (a change of
    /// what it waits for always restarts it).
    fn waiting_for(&self) -> (Waiting, bool) {
        match self.reading {
            Reading::Lingering => (Waiting::Linger, false),
            // Only bytes the client took count as progress: reading from a client that does
            // not read its responses must not keep its connection open.
            _ if !self.outbuf.is_empty() => (Waiting::Write, self.progress.wrote),
            Reading::Body { .. } => (Waiting::Body, true),
            // The head deadline runs from the first byte of the request still incomplete (or
            // from accept) and is not pushed back by later bytes of the same request.
            Reading::Fresh => (Waiting::Head, false),
            _ if !self.inbuf.is_empty() => (Waiting::Head, self.progress.answered),
            // Any event on an idle connection is activity (a request was answered).
            _ => (Waiting::Idle, true),
        }
    }

    fn is_paused(&self) -> bool {
        matches!(self.reading, Reading::Paused)
    }

    /// Answer the requests held back by backpressure, now that the client has read enough.
    fn resume(&mut self, parser: &mut RequestParser, shared: &Shared, ctx: &mut Ctx) {
        self.reading = Reading::Head { resume: None };
        let pending = std::mem::take(&mut self.inbuf);
        self.started = self.started.or(Some(ctx.now));
        self.receive_buffered(pending, parser, shared, ctx);
    }

    /// Read until the socket is drained (or we must stop), answer, and flush.
    fn read_and_answer(
        &mut self,
        rbuf: &mut [u8],
        read_closed: bool,
        parser: &mut RequestParser,
        shared: &Shared,
        ctx: &mut Ctx,
    ) -> Next {
        while !matches!(self.reading, Reading::Closing { .. } | Reading::Paused) {
            let n = match self.stream.read(rbuf) {
                Ok(0) => return self.on_eof(ctx),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    // Whatever was answered before the error goes out if the socket takes it.
                    let _ = self.flush(ctx);
                    return Next::Close(CloseReason::Error);
                }
            };
            if matches!(self.reading, Reading::Fresh) {
                self.reading = Reading::Head { resume: None };
            }
            ctx.stats.bytes_received.add(n as u64);
            self.receive(&rbuf[..n], parser, shared, ctx);
            // A short read drained the socket: edge-triggered epoll reports new data.
            if n < rbuf.len() && !read_closed {
                break;
            }
        }
        self.flush(ctx)
    }

    fn on_eof(&mut self, ctx: &mut Ctx) -> Next {
        if !self.outbuf.is_empty() || !ctx.wbuf.is_empty() {
            // The client half-closed after sending requests: answer them, then close.
            self.reading = Reading::Closing { unread: false };
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
    fn receive(&mut self, data: &[u8], parser: &mut RequestParser, shared: &Shared, ctx: &mut Ctx) {
        if self.inbuf.is_empty() {
            self.started = self.started.or(Some(ctx.now));
            let used = self.answer(data, parser, shared, ctx);
            if used < data.len() && !matches!(self.reading, Reading::Closing { .. }) {
                let rest = &data[used..];
                match self.decoded_framing() {
                    Some((start, end)) => {
                        self.inbuf.extend_from_slice(&rest[..start]);
                        self.inbuf.extend_from_slice(&rest[end..]);
                    }
                    None => self.inbuf.extend_from_slice(rest),
                }
            }
        } else {
            let mut pending = std::mem::take(&mut self.inbuf);
            pending.extend_from_slice(data);
            self.receive_buffered(pending, parser, shared, ctx);
        }
    }

    /// Answer from a buffer the connection owns, keeping what is left of it.
    fn receive_buffered(
        &mut self,
        mut pending: Vec<u8>,
        parser: &mut RequestParser,
        shared: &Shared,
        ctx: &mut Ctx,
    ) {
        let used = self.answer(&pending, parser, shared, ctx);
        if matches!(self.reading, Reading::Closing { .. }) || used == pending.len() {
            // Dropping the allocation keeps idle connections free of heap memory.
            self.inbuf = Vec::new();
        } else {
            pending.drain(..used);
            if let Some((start, end)) = self.decoded_framing() {
                pending.drain(start..end);
            }
            self.inbuf = pending;
        }
    }

    /// The chunked-body bytes already decoded, as a range of the pending request, if any:
    /// the caller drops them from what it keeps.
    fn decoded_framing(&mut self) -> Option<(usize, usize)> {
        match &mut self.reading {
            Reading::Body {
                chunked: Some(progress),
                ..
            } => progress.take_decoded_range(),
            _ => None,
        }
    }

    /// Answer every complete request at the start of `data`; returns the bytes used.
    fn answer(
        &mut self,
        data: &[u8],
        parser: &mut RequestParser,
        shared: &Shared,
        ctx: &mut Ctx,
    ) -> usize {
        let mut used = 0;
        let mut answered = 0u64;
        let start = self.started.unwrap_or(ctx.now);
        while used < data.len() && !matches!(self.reading, Reading::Closing { .. }) {
            if self.outbuf.len() + ctx.wbuf.len() >= shared.config.max_output {
                self.reading = Reading::Paused;
                break;
            }
            match self.one(&data[used..], parser, shared, ctx) {
                Some(n) => {
                    used += n;
                    answered += 1;
                }
                None => break,
            }
        }
        if answered > 0 {
            self.progress.answered = true;
            ctx.stats.record_durations(answered, Instant::now() - start);
            self.started = if used < data.len() {
                Some(ctx.now)
            } else {
                None
            };
        }
        if used < data.len() {
            if let Reading::Closing { unread } = &mut self.reading {
                *unread = true;
            }
        }
        used
    }

    /// Answer one request at the start of `data`, if it is complete. Returns its length.
    /// On a protocol error, queues the error response, starts closing, and returns `Some`.
    fn one(
        &mut self,
        data: &[u8],
        parser: &mut RequestParser,
        shared: &Shared,
        ctx: &mut Ctx,
    ) -> Option<usize> {
        // The worker's parser carries nothing over from another connection: it starts afresh,
        // or from where this connection's partial head left off.
        let saved = match &mut self.reading {
            Reading::Head { resume } => resume.take(),
            _ => None,
        };
        match saved.as_deref() {
            Some(state) => parser.clone_from(state),
            None => parser.reset(),
        }
        let (head, head_len) = match parser.parse(data) {
            Status::Partial => {
                let mut state = saved.unwrap_or_else(|| Box::new(RequestParser::new()));
                (*state).clone_from(parser);
                self.reading = Reading::Head {
                    resume: Some(state),
                };
                return None;
            }
            Status::Error(e) => return Some(self.reject(e, data, ctx)),
            Status::Complete(head, n) => (head, n),
        };
        if !check_head(&head, ctx) {
            // Answered already; whatever follows (its body, perhaps) is not read.
            self.reading = Reading::Closing {
                unread: data.len() > head_len,
            };
            return Some(data.len());
        }
        let (body_end, body) = match self.body(data, head_len, head.body(), shared, ctx) {
            Ok(Some(found)) => found,
            Ok(None) => {
                // HTTP/1.0 clients do not know 100 Continue: the expectation is ignored
                // (RFC 9110 §10.1.1).
                let wants_continue =
                    head.expect() == Expect::Continue && head.version() == Version::Http11;
                if let Reading::Body { continue_sent, .. } = &mut self.reading {
                    if wants_continue && !*continue_sent && data.len() == head_len {
                        ctx.wbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        *continue_sent = true;
                    }
                }
                return None;
            }
            Err(e) => return Some(self.reject(e, data, ctx)),
        };
        self.reading = Reading::Head { resume: None };
        // Only while draining does it matter whether another request is already here.
        let more = ctx.draining && complete_request_at(&data[body_end..], shared.config.max_body);
        let keep = match body {
            None => dispatch(&head, &data[head_len..body_end], more, shared, ctx),
            Some(owned) => {
                let keep = dispatch(&head, &owned, more, shared, ctx);
                ctx.recycle(owned);
                keep
            }
        };
        if !keep {
            self.reading = Reading::Closing { unread: false };
        }
        Some(body_end)
    }

    /// Find the body of the request whose head is `data[..head_len]`. `Ok(None)`: not all
    /// here yet, and the connection is left reading the body.
    fn body(
        &mut self,
        data: &[u8],
        head_len: usize,
        kind: BodyKind,
        shared: &Shared,
        ctx: &mut Ctx,
    ) -> Result<Option<FoundBody>, ParseError> {
        let max = shared.config.max_body;
        let end = match kind {
            BodyKind::None => return Ok(Some((head_len, None))),
            BodyKind::Length(n) if n > max => return Err(ParseError::BodyTooLarge),
            BodyKind::Length(n) => head_len + n as usize,
            BodyKind::Chunked => return self.chunked_body(data, head_len, max, ctx),
        };
        if data.len() >= end {
            return Ok(Some((end, None)));
        }
        if !matches!(self.reading, Reading::Body { .. }) {
            self.reading = Reading::Body {
                continue_sent: false,
                chunked: None,
            };
        }
        Ok(None)
    }

    /// Decode as much of a chunked body as has arrived, going on from the last call.
    fn chunked_body(
        &mut self,
        data: &[u8],
        head_len: usize,
        max: u64,
        ctx: &mut Ctx,
    ) -> Result<Option<FoundBody>, ParseError> {
        let (continue_sent, progress) = match &mut self.reading {
            Reading::Body {
                continue_sent,
                chunked,
            } => (*continue_sent, chunked.take()),
            _ => (false, None),
        };
        let mut progress = progress
            .unwrap_or_else(|| Box::new(ChunkedProgress::new(max, head_len, ctx.scratch())));
        match progress.decode(data)? {
            Some(end) => Ok(Some((end, Some(progress.into_body())))),
            None => {
                self.reading = Reading::Body {
                    continue_sent,
                    chunked: Some(progress),
                };
                Ok(None)
            }
        }
    }

    /// Queue the error response for `e` and stop answering on this connection.
    fn reject(&mut self, e: ParseError, data: &[u8], ctx: &mut Ctx) -> usize {
        ctx.stats.parse_error(e);
        // Its duration is recorded by `answer`, like any answered request.
        ctx.stats.request(b"other", e.status());
        response::write_error(
            &mut ctx.wbuf,
            e.status(),
            ctx.date.get(),
            ConnectionHeader::Close,
            is_head_request(data),
        );
        self.reading = Reading::Closing { unread: true };
        data.len()
    }

    /// Write `ctx.wbuf` (after any older unsent bytes) and empty it; keep what the socket
    /// does not take.
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
                self.progress.wrote |= n > 0;
                ctx.stats.bytes_sent.add(n as u64);
                match self.reading {
                    Reading::Closing { unread } if self.outbuf.is_empty() => self.finish(unread),
                    _ => Next::Keep,
                }
            }
        }
    }

    /// The last response is out: close now, or linger if the client sent more than we read.
    fn finish(&mut self, unread: bool) -> Next {
        if !unread {
            return Next::Close(CloseReason::Client);
        }
        let _ = self.stream.shutdown_write();
        self.reading = Reading::Lingering;
        Next::Keep
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
