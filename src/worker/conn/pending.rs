//! Responses that complete later ([`Later`]), owned by their connection. A handler that defers
//! a response leaves it in `ctx.desk.later`, with where it goes among the bytes answered in the
//! same event; [`Pending::stage`] queues both, in order, and [`Conn::pump`] writes the queue
//! out as its items come due: bytes answered at once wait behind a response deferred before
//! them, so pipelined responses stay in order.
//!
//! Nothing here waits: a response not yet due asks the worker for an alarm at its instant
//! ([`Pending::ask`]), and the connection is woken then. Bodies are not stored: they are
//! slices of one shared pattern, written straight from it ([`pattern_at`](crate::handler::pattern_at)), so a 64 MiB body
//! costs no memory, and a drip's pieces are written the same way, each once the one before it
//! went out (backpressure holds the rest) and its time came.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::super::ctx::Ctx;
use super::{Conn, Next, Socket};
use crate::handler::{Later, LaterBody, Seeded};
use crate::stats::CloseReason;

/// A connection's queue of responses that are not fully written yet, and its seeded random
/// numbers between events.
#[derive(Debug, Default)]
pub struct Pending {
    items: VecDeque<Item>,
    /// Bytes held in `Item::Bytes`: responses answered at once, waiting their turn.
    held: usize,
    /// The connection's random numbers, seeded by a request's `seed=`, lent to the handlers
    /// during each event.
    pub seeded: Option<Seeded>,
    /// An alarm wanted, not yet asked of the worker.
    ask: Option<Instant>,
    /// The alarm the worker was last asked for (until it fires).
    asked: Option<Instant>,
}

/// One step of the queue.
#[derive(Debug)]
enum Item {
    /// Responses answered at once, behind a deferred one.
    Bytes(Vec<u8>),
    /// A deferred response and the instant it is due.
    Due(Instant, Box<Later>),
    /// The rest of a pattern body: where in the body, bytes left, what follows it in the same
    /// write (a drip piece's CRLF, so that each piece arrives whole, and after the last piece
    /// the last chunk), and whether it goes by `sendfile` (then with no tail).
    Body {
        at: u64,
        left: u64,
        tail: &'static [u8],
        sendfile: bool,
    },
    /// A body sent in pieces.
    Drip(Box<Drip>),
    /// Reset the connection, once what is before it is written.
    Reset,
}

impl Item {
    /// This step, taken at `now`, writes what is unsent before it in its own `writev`.
    fn writes_unsent(&self, now: Instant) -> bool {
        match self {
            Item::Body { sendfile, .. } => !sendfile,
            Item::Drip(drip) => drip.piece < drip.pieces && drip.next <= now,
            _ => false,
        }
    }
}

/// A dripping body.
#[derive(Debug)]
struct Drip {
    /// When the next piece is due.
    next: Instant,
    /// Time between pieces.
    interval: Duration,
    /// Pieces sent.
    piece: u32,
    /// Pieces in all.
    pieces: u32,
    /// Body bytes in all.
    size: u64,
}

impl Drip {
    /// Where the next piece starts and ends in the body.
    fn bounds(&self) -> (u64, u64) {
        let (n, size) = (u128::from(self.pieces), u128::from(self.size));
        let at = |piece: u32| (size * u128::from(piece) / n) as u64;
        (at(self.piece), at(self.piece + 1))
    }
}

impl Pending {
    /// Queue what an event answered: the bytes in `wbuf` and the responses deferred in
    /// `later` (each at its offset in `wbuf`), in order. Empties both.
    ///
    /// A delay runs from `now`; a response with none is due at `turn`, the loop turn's start,
    /// against which what is due is judged this turn (so it goes at once, not at an alarm).
    pub fn stage(
        &mut self,
        wbuf: &mut Vec<u8>,
        later: &mut Vec<(usize, Later)>,
        now: Instant,
        turn: Instant,
    ) {
        let mut from = 0;
        for (at, response) in later.drain(..) {
            self.push_bytes(&wbuf[from..at]);
            let due = match response.delay.is_zero() {
                true => turn,
                false => now.checked_add(response.delay).unwrap_or(now),
            };
            self.items.push_back(Item::Due(due, Box::new(response)));
            from = at;
        }
        self.push_bytes(&wbuf[from..]);
        wbuf.clear();
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.held += bytes.len();
            self.items.push_back(Item::Bytes(bytes.to_vec()));
        }
    }

    /// Nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes held back behind a deferred response.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Queued steps: responses not fully written, and runs of bytes between them.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// A body is being written (the socket did not take all of it).
    pub fn writing_body(&self) -> bool {
        matches!(self.items.front(), Some(Item::Body { .. }))
    }

    /// Want a wake-up at `at` (asked of the worker once).
    fn ask(&mut self, at: Instant) {
        if self.asked != Some(at) {
            self.ask = Some(at);
        }
    }

    /// A new alarm is wanted.
    pub fn wants_alarm(&self) -> bool {
        self.ask.is_some()
    }

    /// The alarm to ask the worker for, if a new one is wanted.
    pub fn take_ask(&mut self) -> Option<Instant> {
        let at = self.ask.take()?;
        self.asked = Some(at);
        Some(at)
    }

    /// The alarm the worker was asked for fired.
    pub fn woken(&mut self) {
        self.asked = None;
    }
}

impl<S: Socket> Conn<S> {
    /// Queue what this event answered, then write what is due.
    pub(super) fn flush_pending(&mut self, ctx: &mut Ctx) -> Next {
        let pending = self.pending.get_or_insert_with(Box::default);
        // Delays run from now, not from the turn's start: the turn may have begun well before
        // this request was read, and a response must never come early.
        let now = if ctx.desk.later.is_empty() {
            ctx.now
        } else {
            Instant::now()
        };
        pending.stage(&mut ctx.wbuf, &mut ctx.desk.later, now, ctx.now);
        self.pump(ctx)
    }

    /// Write the queue in order until the socket is full, the next step is not due, or the
    /// queue is empty (then it goes, unless it keeps seeded random numbers).
    pub(super) fn pump(&mut self, ctx: &mut Ctx) -> Next {
        loop {
            // What is unsent goes first, except ahead of a body written by `writev` (or a drip
            // piece due now, which becomes one): the body's own write carries it, so a head
            // and its body do not leave as two segments.
            let now = ctx.now;
            let carried = self.pending.as_ref().and_then(|p| p.items.front());
            if !carried.is_some_and(|item| item.writes_unsent(now)) {
                if self
                    .writer
                    .flush_with(&mut self.stream, 0, 0, &[], ctx)
                    .is_err()
                {
                    return Next::Close(CloseReason::Error);
                }
                if !self.writer.is_empty() {
                    return Next::Keep;
                }
            }
            let Some(pending) = self.pending.as_mut() else {
                return Next::Keep;
            };
            let Some(front) = pending.items.front_mut() else {
                if pending.seeded.is_none() {
                    self.pending = None;
                }
                return Next::Keep;
            };
            match front {
                Item::Bytes(bytes) => {
                    let bytes = std::mem::take(bytes);
                    pending.held -= bytes.len();
                    pending.items.pop_front();
                    self.writer.adopt(bytes);
                }
                Item::Due(at, _) if *at > ctx.now => {
                    let at = *at;
                    pending.ask(at);
                    return Next::Keep;
                }
                Item::Due(..) => {
                    let Some(Item::Due(at, later)) = pending.items.pop_front() else {
                        unreachable!("the front is a due response");
                    };
                    self.start_response(at, &later, ctx);
                }
                Item::Body {
                    at,
                    left,
                    tail,
                    sendfile,
                } => {
                    let by_file = match sendfile {
                        true => self.writer.send_body(&mut self.stream, *at, *left, ctx),
                        false => None,
                    };
                    let sent = match by_file {
                        Some(sent) => sent,
                        None => self
                            .writer
                            .flush_with(&mut self.stream, *at, *left, tail, ctx),
                    };
                    match sent {
                        Ok(n) => {
                            *at += n;
                            *left -= n;
                            if *left > 0 {
                                // The socket is full.
                                return Next::Keep;
                            }
                            pending.items.pop_front();
                        }
                        Err(_) => return Next::Close(CloseReason::Error),
                    }
                }
                Item::Drip(drip) if drip.piece == drip.pieces => {
                    self.writer.staging().extend_from_slice(b"0\r\n\r\n");
                    pending.items.pop_front();
                }
                Item::Drip(drip) if drip.next > ctx.now => {
                    let next = drip.next;
                    pending.ask(next);
                    return Next::Keep;
                }
                Item::Drip(drip) => {
                    // The piece's chunk line now; its data, like a body's, straight from the
                    // pattern.
                    let (from, to) = drip.bounds();
                    drip.piece += 1;
                    drip.next += drip.interval;
                    if to > from {
                        let out = self.writer.staging();
                        out.extend_from_slice(hex_digits(to - from, &mut [0; 16]));
                        out.extend_from_slice(b"\r\n");
                        // The last piece carries the last chunk.
                        let tail: &[u8] = if drip.piece == drip.pieces {
                            pending.items.pop_front();
                            b"\r\n0\r\n\r\n"
                        } else {
                            b"\r\n"
                        };
                        let data = Item::Body {
                            at: from,
                            left: to - from,
                            tail,
                            sendfile: false,
                        };
                        pending.items.push_front(data);
                    }
                }
                Item::Reset => {
                    self.stream.reset();
                    return Next::Close(CloseReason::Reset);
                }
            }
        }
    }

    /// A deferred response is due (at `at`): write its head and queue its body (or reset).
    fn start_response(&mut self, at: Instant, later: &Later, ctx: &mut Ctx) {
        let pending = self.pending.as_mut().expect("called with a queue");
        // While draining, the last response owed closes the connection.
        let last = pending.items.is_empty() && !self.reader.has_partial_request();
        let close = later.closes() || (ctx.draining && last);
        if let Some((counters, applied)) = &later.account {
            let mut applied = *applied;
            applied.close = close && !later.reset;
            counters.count(ctx.desk.worker, &applied);
        }
        if later.reset {
            pending.items.push_front(Item::Reset);
            return;
        }
        if close && self.reader.closing().is_none() {
            self.reader.close(false);
        }
        later.write_head(self.writer.staging(), ctx.date.get(), close);
        let len = later.body_len();
        let body = match later.body {
            LaterBody::Pattern(_) if len > 0 => Item::Body {
                at: 0,
                left: len,
                tail: b"",
                sendfile: later.sendfile,
            },
            // Even an empty drip has its pieces' time, and its last chunk.
            LaterBody::Drip {
                pieces, interval, ..
            } if later.has_body() => Item::Drip(Box::new(Drip {
                next: at,
                interval,
                piece: 0,
                pieces: pieces.max(1),
                size: len,
            })),
            _ => return,
        };
        pending.items.push_front(body);
    }
}

/// `n` in lowercase hexadecimal, written into the end of `buf`.
fn hex_digits(mut n: u64, buf: &mut [u8; 16]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drips_pieces_split_its_body_evenly_and_cover_it() {
        let mut drip = Drip {
            next: Instant::now(),
            interval: Duration::from_millis(1),
            piece: 0,
            pieces: 3,
            size: 10,
        };
        let mut pieces = Vec::new();
        while drip.piece < drip.pieces {
            pieces.push(drip.bounds());
            drip.piece += 1;
        }
        assert_eq!(pieces, [(0, 3), (3, 6), (6, 10)]);
    }

    #[test]
    fn hex_is_lowercase_and_has_no_leading_zeros() {
        let mut buf = [0u8; 16];
        assert_eq!(hex_digits(0, &mut buf), b"0");
        assert_eq!(hex_digits(255, &mut buf), b"ff");
        assert_eq!(hex_digits(0x10000, &mut buf), b"10000");
        assert_eq!(hex_digits(u64::MAX, &mut buf), b"ffffffffffffffff");
    }
}
