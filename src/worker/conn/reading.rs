//! Reading requests: draining the socket, answering every complete request in what arrived
//! (pipelining), keeping what is incomplete, and holding requests back while the client owes
//! us reads (backpressure). How one request is framed, head and body, is in `framing`.
//!
//! An idle keep-alive connection owns no heap memory: bytes are read into the worker's buffer
//! and answered from there. A connection only takes memory of its own for what must outlive
//! one event: a partial request (and, for a head, where the parser got to), or requests held
//! back.

use std::io::{self, Read};
use std::time::Instant;

use super::super::ctx::{Ctx, Shared};
use super::framing::ChunkedProgress;
use super::timeouts::Stage;
use crate::http::RequestParser;

/// Where a connection is in reading requests. Each state says what its data means, so
/// combinations that cannot happen cannot be written either.
#[derive(Debug)]
pub(super) enum Reading {
    /// Nothing has arrived yet: the header timeout runs from accept.
    Fresh,
    /// Waiting for a request head. `inbuf` holds what has arrived of it (nothing: the
    /// connection is idle between requests), and `partial` the parser that got that far, so
    /// the next read goes on from there instead of parsing the head again from its start.
    Head {
        /// The connection's own parser state for a head that is still incomplete.
        partial: Option<Box<RequestParser>>,
    },
    /// A head is complete and its body is arriving.
    Body {
        /// `100 Continue` was sent for this request.
        continue_sent: bool,
        /// A chunked body's decoder and what it decoded so far.
        chunked: Option<Box<ChunkedProgress>>,
    },
    /// Requests wait in `inbuf` until the client reads what we owe it (over `max_output`).
    Paused,
    /// No more requests will be answered: close once the output is written. `unread`: bytes
    /// came after the last request answered, so close by lingering, not at once.
    Closing {
        /// Bytes came after the last request answered.
        unread: bool,
    },
    /// Our write side is shut; input is discarded until the client closes.
    Lingering,
}

/// How a read loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// The socket is drained, or reading must stop (paused or closing).
    Stopped,
    /// The client closed its side.
    Eof,
    /// The socket failed.
    Failed,
}

/// A connection's reading side.
#[derive(Debug)]
pub struct Reader {
    /// Received bytes not answered yet: a partial request, or requests held back by
    /// backpressure. Empty (and unallocated) on an idle connection.
    pub(super) inbuf: Vec<u8>,
    /// Where reading requests is.
    pub(super) reading: Reading,
    /// When the first byte of the pending request arrived, for the duration histogram.
    started: Option<Instant>,
    /// Requests answered since [`take_answered`](Self::take_answered) was last called.
    answered: u32,
    /// Bytes of a body in progress read since [`take_body_bytes`](Self::take_body_bytes) was
    /// last called, for the body rate.
    body_bytes: u32,
}

impl Reader {
    /// A connection that has received nothing yet.
    pub fn new() -> Reader {
        Reader {
            inbuf: Vec::new(),
            reading: Reading::Fresh,
            started: None,
            answered: 0,
            body_bytes: 0,
        }
    }

    /// A connection between requests, moved here from another worker: nothing pending, and
    /// its next request may come at any time (the keep-alive timeout runs, not the header's).
    pub fn between_requests() -> Reader {
        Reader {
            reading: Reading::Head { partial: None },
            ..Reader::new()
        }
    }

    /// Part of a request has arrived, but not all of it (requests held back count too: they
    /// arrived under the config the connection is served by).
    pub fn has_partial_request(&self) -> bool {
        !self.inbuf.is_empty() || matches!(self.reading, Reading::Body { .. })
    }

    /// Requests are held back until the client reads.
    pub fn is_paused(&self) -> bool {
        matches!(self.reading, Reading::Paused)
    }

    /// Our write side is shut.
    pub fn is_lingering(&self) -> bool {
        matches!(self.reading, Reading::Lingering)
    }

    /// Nothing has arrived since accept.
    pub fn is_fresh(&self) -> bool {
        matches!(self.reading, Reading::Fresh)
    }

    /// `Some(unread)` once no more requests will be answered (see [`Reading::Closing`]).
    pub fn closing(&self) -> Option<bool> {
        match self.reading {
            Reading::Closing { unread } => Some(unread),
            _ => None,
        }
    }

    /// When the pending request's first byte arrived.
    pub fn started(&self) -> Option<Instant> {
        self.started
    }

    /// Answer no more requests; close once the output is written (`unread`: by lingering).
    pub fn close(&mut self, unread: bool) {
        self.reading = Reading::Closing { unread };
        self.inbuf = Vec::new();
    }

    /// Our write side is shut: discard input until the client closes.
    pub fn linger(&mut self) {
        self.reading = Reading::Lingering;
    }

    /// Bytes of a body in progress read since the last call.
    pub fn take_body_bytes(&mut self) -> u32 {
        std::mem::take(&mut self.body_bytes)
    }

    /// Requests answered since the last call (a pending head's deadline then restarts).
    pub fn take_answered(&mut self) -> u32 {
        std::mem::take(&mut self.answered)
    }

    /// Where the connection is, for its timer.
    pub fn stage(&self) -> Stage {
        match self.reading {
            Reading::Lingering => Stage::Lingering,
            Reading::Body { .. } => Stage::Body,
            Reading::Fresh => Stage::Fresh,
            _ if !self.inbuf.is_empty() => Stage::Head,
            _ => Stage::Idle,
        }
    }

    /// Read until the socket is drained (or reading must stop), answering what arrives into
    /// `ctx.wbuf`. `owed`: response bytes the client has not read yet.
    #[allow(clippy::too_many_arguments)]
    pub fn read_and_answer(
        &mut self,
        stream: &mut impl Read,
        rbuf: &mut [u8],
        read_closed: bool,
        parser: &mut RequestParser,
        owed: usize,
        shared: &Shared,
        ctx: &mut Ctx,
    ) -> ReadEnd {
        while !matches!(self.reading, Reading::Closing { .. } | Reading::Paused) {
            let n = match stream.read(rbuf) {
                Ok(0) => return ReadEnd::Eof,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return ReadEnd::Failed,
            };
            match self.reading {
                Reading::Fresh => self.reading = Reading::Head { partial: None },
                Reading::Body { .. } => {
                    self.body_bytes = self.body_bytes.saturating_add(n as u32);
                }
                _ => {}
            }
            ctx.stats.received(n);
            self.receive(&rbuf[..n], parser, owed, shared, ctx);
            // A short read drained the socket: edge-triggered epoll reports new data.
            if n < rbuf.len() && !read_closed {
                break;
            }
        }
        ReadEnd::Stopped
    }

    /// Answer the requests held back by backpressure, now that the client has read enough.
    pub fn resume(
        &mut self,
        parser: &mut RequestParser,
        owed: usize,
        shared: &Shared,
        ctx: &mut Ctx,
    ) {
        self.reading = Reading::Head { partial: None };
        let pending = std::mem::take(&mut self.inbuf);
        self.started = self.started.or(Some(ctx.now));
        self.receive_buffered(pending, parser, owed, shared, ctx);
    }

    /// Handle newly read bytes.
    // Called for plain and HTTPS connections alike; inline in each.
    #[inline(always)]
    fn receive(
        &mut self,
        data: &[u8],
        parser: &mut RequestParser,
        owed: usize,
        shared: &Shared,
        ctx: &mut Ctx,
    ) {
        if self.inbuf.is_empty() {
            self.started = self.started.or(Some(ctx.now));
            let used = self.answer(data, parser, owed, shared, ctx);
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
            self.receive_buffered(pending, parser, owed, shared, ctx);
        }
    }

    /// Answer from a buffer the connection owns, keeping what is left of it.
    fn receive_buffered(
        &mut self,
        mut pending: Vec<u8>,
        parser: &mut RequestParser,
        owed: usize,
        shared: &Shared,
        ctx: &mut Ctx,
    ) {
        let used = self.answer(&pending, parser, owed, shared, ctx);
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

    /// Answer every complete request at the start of `data`; returns the bytes used.
    fn answer(
        &mut self,
        data: &[u8],
        parser: &mut RequestParser,
        owed: usize,
        shared: &Shared,
        ctx: &mut Ctx,
    ) -> usize {
        let mut used = 0;
        let mut answered = 0u64;
        let start = self.started.unwrap_or(ctx.now);
        while used < data.len() && !matches!(self.reading, Reading::Closing { .. }) {
            // Responses that complete later count against their own bound.
            let later = ctx.desk.later.len();
            if owed + ctx.wbuf.len() >= shared.config.max_output
                || (later > 0 && later + ctx.desk.queued >= shared.config.max_pending)
            {
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
            self.answered = self.answered.saturating_add(answered as u32);
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
}
