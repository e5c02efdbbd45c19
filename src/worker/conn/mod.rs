//! One client connection, and everything that describes it: the config it is served under,
//! where it is in reading requests (its parser state included), the responses it still owes,
//! what its timer waits for, and how it is registered with the worker's poll.
//!
//! The worker drives a connection through three calls, [`Conn::on_event`],
//! [`Conn::on_timeout`] and [`Conn::on_drain`], and applies the [`Outcome`] they return: close
//! it, change its registration, move its deadline. The worker never writes a connection's
//! state itself.
//!
//! The rooms: `reading` (draining the socket, pipelining, backpressure), `framing` (one
//! request's head and body), `writing` (output the socket has not taken, and lingering),
//! `pending` (responses that complete later, in order with the others), and `timeouts` (what
//! the one timer waits for, by the connection's config).
//!
//! The write buffer `ctx.wbuf` has one owner: [`Conn::flush`] writes it out and empties it,
//! and every path out of [`Conn::on_event`] and [`Conn::on_timeout`] ends in a flush, so the
//! buffer is empty between events.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::access;
use super::ctx::{Ctx, Shared};
use crate::config::AccessLog;
use crate::http::response::{self, ConnectionHeader};
use crate::http::RequestParser;
use crate::stats::CloseReason;
use pending::Pending;
use reading::{ReadEnd, Reader};
use timeouts::{Progress, Rates, Stage, Timeouts, Waiting};
use writing::Writer;

mod framing;
mod pending;
mod reading;
mod timeouts;
mod writing;

/// Whether a connection stays open after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep it.
    Keep,
    /// Close it, counting this reason.
    Close(CloseReason),
}

/// How the connection asks to be registered with the worker's poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Register {
    /// Its first registration.
    New(Interest),
    /// A change of the registered interest.
    Change(Interest),
}

/// What the worker applies after it called the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Close it, counting this reason.
    Close(CloseReason),
    /// Keep it.
    Keep {
        /// Register it, or change its interest.
        register: Option<Register>,
        /// Move its deadline to this long from now.
        timeout: Option<Duration>,
        /// Wake it at [`Conn::wake_at`] ([`Conn::on_wake`]): a response it owes will be due.
        wake: bool,
    },
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

/// What a connection needs of its socket. The worker's are `mio` TCP streams; the fuzz
/// harness (`worker::fuzz`) drives the same state machine over a scripted socket.
pub trait Socket: Read + Write {
    /// Shut our write side (the client sees EOF after our last response).
    fn shutdown_write(&self) -> io::Result<()>;

    /// Make closing it reset the connection (a TCP RST) instead of ending it in order.
    fn reset(&self);

    /// Send `count` bytes of `file` from `offset` without copying them through user space;
    /// `Unsupported` where the socket cannot (then bodies are written).
    fn send_file(&mut self, file: &std::fs::File, offset: u64, count: usize) -> io::Result<usize> {
        let _ = (file, offset, count);
        Err(io::ErrorKind::Unsupported.into())
    }

    /// A TLS handshake is going on: nothing can be read or written yet, and the deadline is
    /// the handshake's.
    #[inline]
    fn handshaking(&self) -> bool {
        false
    }

    /// Bytes taken by a write are still held by the socket's own layer (TLS records the TCP
    /// socket did not take): output is owed even with nothing in the connection's buffers.
    #[inline]
    fn unsent(&self) -> bool {
        false
    }

    /// Send what [`unsent`](Self::unsent) holds; `WouldBlock` is not an error.
    fn push(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }

    fn reset(&self) {
        // SO_LINGER with a zero timeout: close() sends RST and drops what is unsent.
        let _ = socket2::SockRef::from(self).set_linger(Some(Duration::ZERO));
    }

    fn send_file(&mut self, file: &std::fs::File, offset: u64, count: usize) -> io::Result<usize> {
        crate::os::memfd::send_file(self, file, offset, count)
    }
}

/// A client connection.
pub struct Conn<S = TcpStream> {
    /// The socket.
    stream: S,
    /// The config and routes this connection is served under: the ones in force when the
    /// first byte of its current request arrived. It moves to the newest only between
    /// requests ([`Conn::adopt`]), however many reloads come while a request is partial.
    shared: Arc<Shared>,
    /// Reading and answering requests.
    reader: Reader,
    /// Responses the socket has not taken yet.
    writer: Writer,
    /// Responses that complete later, and what waits behind them; `None` on a connection that
    /// has none (and no seeded random numbers), which is nearly every one.
    pending: Option<Box<Pending>>,
    /// What the timer waits for.
    timeouts: Timeouts,
    /// The minimum body and send rates' current window.
    rates: Rates,
    /// The interest registered with the worker's poll (`None` before the first).
    registered: Option<Interest>,
    /// Requests answered since the worker last asked ([`Conn::take_served`]): how busy the
    /// connection is, when the worker looks for one to move to a less loaded worker.
    served: u32,
    /// The client's address, for the access log: an IPv4 address as IPv4-mapped IPv6, so that
    /// it is 16 plain bytes with no tag. It costs a connection exactly those 16 bytes (112 to
    /// 128 in a release build).
    peer: Ipv6Addr,
}

impl<S: Socket> Conn<S> {
    /// A new connection from `peer`, waiting for its first request, served under `shared`
    /// until then.
    pub fn new(stream: S, shared: Arc<Shared>, peer: IpAddr) -> Conn<S> {
        Conn {
            stream,
            shared,
            reader: Reader::new(),
            writer: Writer::default(),
            pending: None,
            timeouts: Timeouts::new(),
            rates: Rates::default(),
            registered: None,
            served: 0,
            peer: match peer {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            },
        }
    }

    /// A connection moved here from another worker between requests (see
    /// [`Conn::is_movable`]).
    pub fn moved(stream: S, shared: Arc<Shared>, peer: IpAddr) -> Conn<S> {
        Conn {
            reader: Reader::between_requests(),
            ..Conn::new(stream, shared, peer)
        }
    }

    /// Between requests with nothing owed and nothing held: all there is of it is its socket,
    /// which another worker can serve from here on.
    pub fn is_movable(&self) -> bool {
        self.reader.stage() == Stage::Idle
            && self.writer.is_empty()
            && self.pending.is_none()
            && self.reader.closing().is_none()
            && !self.reader.is_paused()
    }

    /// Requests answered since the last call.
    pub fn take_served(&mut self) -> u32 {
        std::mem::take(&mut self.served)
    }

    /// The socket and the client's address, to move the connection to another worker.
    pub fn into_parts(self) -> (S, IpAddr) {
        let peer = match self.peer.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(self.peer),
        };
        (self.stream, peer)
    }

    /// The first registration and the header deadline, which runs from accept.
    pub fn start(&mut self, ctx: &Ctx) -> Outcome {
        self.outcome(Next::Keep, ctx, false)
    }

    /// Handle what epoll reported: write what is owed, then read and answer.
    pub fn on_event(&mut self, ready: Ready, io: Io<'_>, ctx: &mut Ctx) -> Outcome {
        self.introduce(ctx);
        if let Some(pending) = &mut self.pending {
            ctx.desk.seeded = pending.seeded.take();
        }
        let next = self.event(ready, io, ctx);
        if ctx.desk.seeded.is_some() {
            self.pending.get_or_insert_with(Box::default).seeded = ctx.desk.seeded.take();
        }
        self.outcome(next, ctx, false)
    }

    /// When to wake it, once an [`Outcome`] said so.
    pub fn wake_at(&mut self) -> Option<Instant> {
        self.pending.as_mut()?.take_ask()
    }

    /// The alarm it asked for went off: write what is due, and go on reading if responses
    /// owed held reading back.
    pub fn on_wake(&mut self, io: Io<'_>, ctx: &mut Ctx) -> Outcome {
        if let Some(pending) = &mut self.pending {
            pending.woken();
        }
        let ready = Ready {
            readable: false,
            writable: true,
            read_closed: false,
        };
        self.on_event(ready, io, ctx)
    }

    /// A drain started: timeouts shorten, so the deadline is computed again.
    pub fn on_drain(&mut self, ctx: &Ctx) -> Outcome {
        self.outcome(Next::Keep, ctx, true)
    }

    /// Between requests, move to `newest` (a reload happened). A request in progress stays
    /// under the config it started with.
    pub fn adopt(&mut self, newest: &Arc<Shared>) {
        if !Arc::ptr_eq(&self.shared, newest) && !self.reader.has_partial_request() {
            self.shared = newest.clone();
        }
    }

    /// The timer fired for what the connection was waiting for.
    pub fn on_timeout(&mut self, ctx: &mut Ctx) -> CloseReason {
        let fresh = self.reader.is_fresh();
        match self.timeouts.waiting() {
            Waiting::Head if fresh && ctx.draining => CloseReason::Shutdown,
            Waiting::Head => {
                self.introduce(ctx);
                self.reader.close(false);
                let (from, date) = (ctx.wbuf.len(), ctx.date.get());
                response::write_error(&mut ctx.wbuf, 408, date, ConnectionHeader::Close, false);
                ctx.stats.request(b"other", 408);
                access::timed_out(from, &self.shared.config, ctx);
                let started = self.reader.started().unwrap_or(ctx.now);
                ctx.stats.record_durations(1, ctx.now - started);
                let _ = self.flush(ctx);
                CloseReason::HeaderTimeout
            }
            Waiting::Body => CloseReason::BodyTimeout,
            Waiting::Idle if ctx.draining => CloseReason::Shutdown,
            Waiting::Idle => CloseReason::KeepaliveTimeout,
            Waiting::Write | Waiting::Respond => CloseReason::WriteTimeout,
            Waiting::Handshake => CloseReason::HandshakeTimeout,
            Waiting::Linger => CloseReason::Client,
        }
    }

    /// Tell `ctx` who is being served, and since when, for the access log (only when it is
    /// on: with it off, nothing reads them).
    #[inline]
    fn introduce(&self, ctx: &mut Ctx) {
        if !matches!(self.shared.config.access_log, AccessLog::Off) {
            // Logged as IPv4 again (`to_canonical` when rendered).
            ctx.peer = IpAddr::V6(self.peer);
            ctx.request_start = self.reader.started().unwrap_or(ctx.now);
        }
    }

    /// The socket, for the fuzz harness's scripted one.
    pub(super) fn socket_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    fn event(&mut self, ready: Ready, io: Io<'_>, ctx: &mut Ctx) -> Next {
        self.adopt(&ctx.newest);
        let mut read = ready.readable;
        if ready.writable && self.owes() {
            if let Next::Close(reason) = self.flush(ctx) {
                return Next::Close(reason);
            }
            // Requests held back were not read from the socket either, and edge-triggered
            // epoll will not report those bytes again: go on with them now.
            read |= self.reader.is_paused() && !self.backlog_full();
        }
        if !read {
            return Next::Keep;
        }
        if self.reader.is_lingering() {
            return writing::discard(&mut self.stream, io.rbuf);
        }
        loop {
            if self.reader.is_paused() && !self.backlog_full() {
                let owed = self.owed(ctx);
                self.reader.resume(io.parser, owed, &self.shared, ctx);
            }
            let next = self.read_and_answer(io.rbuf, ready.read_closed, io.parser, ctx);
            // The socket took all we had, so no writable event will come: carry on with the
            // requests held back, then read again.
            if next != Next::Keep || !self.reader.is_paused() || self.backlog_full() {
                return next;
            }
        }
    }

    /// Response bytes the client is owed: what the socket did not take, and what waits behind
    /// responses that complete later. Those count against `max_pending`: how many the
    /// connection has queued goes in `ctx.desk.queued`, for the read about to start.
    #[inline]
    fn owed(&self, ctx: &mut Ctx) -> usize {
        let (held, queued) = self
            .pending
            .as_ref()
            .map_or((0, 0), |p| (p.held(), p.len()));
        ctx.desk.queued = queued;
        self.writer.owed() + held
    }

    /// Is what the client is owed at either bound (`max_output` bytes, `max_pending`
    /// responses that complete later)?
    fn backlog_full(&self) -> bool {
        let config = &self.shared.config;
        match &self.pending {
            None => self.writer.owed() >= config.max_output,
            Some(pending) => {
                self.writer.owed() + pending.held() >= config.max_output
                    || pending.len() >= config.max_pending
            }
        }
    }

    /// Something is owed: unsent bytes, or a queue of responses.
    fn owes(&self) -> bool {
        !self.writer.is_empty()
            || self.stream.unsent()
            || self.pending.as_ref().is_some_and(|p| !p.is_empty())
    }

    /// Read until the socket is drained (or we must stop), answer, and flush.
    fn read_and_answer(
        &mut self,
        rbuf: &mut [u8],
        read_closed: bool,
        parser: &mut RequestParser,
        ctx: &mut Ctx,
    ) -> Next {
        let owed = self.owed(ctx);
        let (stream, shared) = (&mut self.stream, &*self.shared);
        match self
            .reader
            .read_and_answer(stream, rbuf, read_closed, parser, owed, shared, ctx)
        {
            ReadEnd::Stopped => self.flush(ctx),
            ReadEnd::Eof => self.on_eof(ctx),
            ReadEnd::Failed => {
                // Whatever was answered before the error goes out if the socket takes it.
                let _ = self.flush(ctx);
                Next::Close(CloseReason::Error)
            }
        }
    }

    fn on_eof(&mut self, ctx: &mut Ctx) -> Next {
        if self.owes() || !ctx.wbuf.is_empty() || !ctx.desk.later.is_empty() {
            // The client half-closed after sending requests: answer them, then close.
            self.reader.close(false);
            return match self.flush(ctx) {
                Next::Keep if !self.owes() => Next::Close(CloseReason::Client),
                next => next,
            };
        }
        Next::Close(CloseReason::Client)
    }

    /// Write `ctx.wbuf` (after any older unsent bytes) and empty it; once the last response
    /// of a closing connection is out, close or linger.
    #[inline]
    fn flush(&mut self, ctx: &mut Ctx) -> Next {
        if self.stream.unsent() && self.stream.push().is_err() {
            return Next::Close(CloseReason::Error);
        }
        if !ctx.desk.later.is_empty() || self.pending.is_some() {
            return self.flush_queue(ctx);
        }
        if self.writer.flush(&mut self.stream, ctx).is_err() {
            return Next::Close(CloseReason::Error);
        }
        match self.reader.closing() {
            Some(unread) if self.writer.is_empty() && !self.stream.unsent() => self.finish(unread),
            _ => Next::Keep,
        }
    }

    /// [`flush`](Self::flush) with responses that complete later in play.
    #[inline(never)]
    fn flush_queue(&mut self, ctx: &mut Ctx) -> Next {
        if let Next::Close(reason) = self.flush_pending(ctx) {
            return Next::Close(reason);
        }
        match self.reader.closing() {
            Some(unread) if !self.owes() => self.finish(unread),
            _ => Next::Keep,
        }
    }

    /// The last response is out: close now, or linger if the client sent more than we read.
    fn finish(&mut self, unread: bool) -> Next {
        if !unread {
            return Next::Close(CloseReason::Client);
        }
        let _ = self.stream.shutdown_write();
        self.reader.linger();
        Next::Keep
    }

    /// What the worker applies: the close, or the registration and deadline now wanted.
    fn outcome(&mut self, next: Next, ctx: &Ctx, force: bool) -> Outcome {
        if let Next::Close(reason) = next {
            return Outcome::Close(reason);
        }
        let answered = self.reader.take_answered();
        self.served = self.served.saturating_add(answered);
        let written = self.writer.take_written();
        let moved = (self.reader.take_body_bytes(), written);
        // The socket did not take all it was given: unsent bytes, or a body cut short.
        let mut owes_output = !self.writer.is_empty() || self.stream.unsent();
        let mut stage = self.reader.stage();
        if self.stream.handshaking() {
            stage = Stage::Handshake;
        }
        let mut wake = false;
        if let Some(pending) = &mut self.pending {
            owes_output |= pending.writing_body();
            wake = pending.wants_alarm();
            // Waiting for its own responses, not for the client.
            if !pending.is_empty() && (stage == Stage::Idle || self.reader.is_paused()) {
                stage = Stage::Responding;
            }
        }
        if let Some(slow) =
            self.rates
                .judge(stage, owes_output, moved, ctx.tick, &self.shared.config)
        {
            return Outcome::Close(slow);
        }
        let progress = Progress {
            wrote: written > 0,
            answered: answered > 0,
        };
        let timeout = self.timeouts.rearm(
            stage,
            owes_output,
            progress,
            &self.shared.config,
            ctx.draining,
            force,
        );
        Outcome::Keep {
            register: self.register(owes_output),
            timeout,
            wake,
        }
    }

    /// Read interest always; write interest once a write has fallen short, and from then on
    /// (a new socket is writable at once, so asking at accept would cost an extra event, and
    /// dropping it again would cost a syscall each time).
    fn register(&mut self, blocked: bool) -> Option<Register> {
        let wanted = match self.registered {
            Some(interest) if interest.is_writable() => interest,
            _ if blocked => Interest::READABLE | Interest::WRITABLE,
            _ => Interest::READABLE,
        };
        match self.registered.replace(wanted) {
            None => Some(Register::New(wanted)),
            Some(old) if old != wanted => Some(Register::Change(wanted)),
            Some(_) => None,
        }
    }
}

/// The worker registers the connection itself: it stands for its socket.
impl<S: Socket + mio::event::Source> mio::event::Source for Conn<S> {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.stream.register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.stream.reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.stream.deregister(registry)
    }
}

#[cfg(test)]
mod tests {
    /// Memory per idle connection is a headline figure, so the connection has a budget: 152
    /// bytes in a release build (112 before the client's address, 16 bytes with no padding,
    /// the minimum rates' window, 12 and its padding, and the pointer to responses that
    /// complete later, 8); debug builds add mio's 8-byte selector id to the socket, 168.
    #[test]
    fn a_connection_stays_within_its_memory_budget() {
        let limit = if cfg!(debug_assertions) { 168 } else { 152 };
        let size = std::mem::size_of::<super::Conn>();
        assert!(size <= limit, "{size} bytes");
    }
}
