//! The `shape` handler: a response shaped by the query string (or the route's defaults), as
//! fortio's echo server does, for load tests: `?status=503:20&delay=p50:5ms,p99:80ms&size=1KiB`.
//!
//! It decides the shape (a [`Plan`] drawn from the [`Spec`]) and how it is sent: at once when
//! there is nothing to wait for and the body is small, otherwise as a [`Later`] response that
//! the worker sends when it is due. Every response says what it was given, in the request's own
//! grammar (`X-Cerberus-Shape: status=503&delay=12345us&size=1024`), and its delay as
//! `Server-Timing: shape;dur=12.345`; the route's counters count the same, once it takes effect.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use super::{pattern_at, Desk, Handler, Later, LaterBody, Request, Responder};
use crate::config::{Route as RouteConfig, ShapeConfig};
use crate::http::response::{self, ConnectionHeader};
use crate::shape::counters::{Applied, RouteCounters};
use crate::shape::grammar::{Limits, Plan, ShapeError, Spec};

/// Largest body sent at once, copied into the output with the head; larger ones are written
/// straight from the shared pattern as the socket takes them.
const INLINE_BODY: u64 = 16 * 1024;

/// A `shape` route.
pub struct Shape {
    /// Tells this route's entries in a worker's [`Cache`] apart from another's (a reload
    /// builds new routes: their entries are never confused with the old ones').
    id: u64,
    /// The shape of a request that asks for nothing (and the base of one that does).
    defaults: Spec,
    /// `defaults` sets nothing: a request's own shape is used as it is, not overlaid.
    plain: bool,
    /// What a request may ask for.
    limits: Limits,
    /// Clients may shape their responses.
    query: bool,
    /// Bodies that complete later go by `sendfile`.
    sendfile: bool,
    /// The status of responses the status list leaves over.
    status: u16,
    /// `Content-Type` and the route's own headers, rendered as lines.
    lines: Vec<u8>,
    /// The route's counters.
    counters: Arc<RouteCounters>,
}

impl Shape {
    /// The handler of route `r`, counting into `counters`.
    pub fn from_config(r: &RouteConfig, counters: Arc<RouteCounters>) -> std::io::Result<Shape> {
        let config = r.shape.clone().unwrap_or_default();
        let defaults = config
            .spec()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let mut lines = Vec::new();
        let content_type = r.content_type.as_deref().unwrap_or("text/plain");
        response::write_header(&mut lines, "Content-Type", content_type.as_bytes());
        for (name, value) in &r.headers {
            response::write_header(&mut lines, name, value.as_bytes());
        }
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Ok(Shape {
            id: NEXT_ID.fetch_add(1, Relaxed),
            plain: defaults == Spec::default(),
            defaults,
            limits: ShapeConfig::limits(&config),
            query: config.query,
            sendfile: config.sendfile,
            status: r.status.unwrap_or(200),
            lines,
            counters,
        })
    }
}

impl Handler for Shape {
    fn handle(&self, req: &Request<'_>, res: &mut Responder<'_>) {
        let query = match req.head.query_bytes() {
            Some(q) if self.query => q,
            _ => b"",
        };
        let head_only = req.head.method_bytes() == b"HEAD";
        let (out, date, conn) = (&mut *res.out, res.date, res.conn);
        let Desk {
            shapes,
            rng,
            seeded,
            worker,
            ..
        } = &mut *res.desk;
        let entry = match shapes.find(self.id, query) {
            Some(i) => i,
            None => match self.spec_for(query) {
                Ok(spec) => shapes.insert(self.id, query, spec),
                Err(e) => return refuse(res, &e),
            },
        };
        let entry = &mut shapes.entries[entry];
        let spec = &entry.spec;
        let rng = match spec.seed {
            None => rng,
            Some(seed) => super::seeded(seeded, seed),
        };
        let plan = spec.plan(rng, &self.limits);
        let status = plan.status.unwrap_or(self.status);
        let worker = *worker;
        if plan.delay_us == 0 && !plan.reset && spec.drip.is_none() {
            let size = plan.size.unwrap_or(0);
            if size <= INLINE_BODY {
                // At once. The head is rendered once per key and second: a load test asks for
                // the same few shapes.
                let conn = if plan.close {
                    ConnectionHeader::Close
                } else {
                    conn
                };
                let content = response::framing(status) == response::Framing::Length;
                let body = if head_only || !content { 0 } else { size };
                let key = head_key(status, size, plan.close, conn, head_only);
                let head = entry.heads.get(key, date.second(), |head| {
                    let applied = Applied {
                        status,
                        delay_us: 0,
                        size: body,
                        close: plan.close,
                        reset: false,
                    };
                    response::write_status(head, status, date.get());
                    self.headers(head, &applied, plan.close, spec);
                    // The length a GET would get, HEAD included (the body is not in the head).
                    response::write_framing(head, status, pattern_at(0, size));
                    response::write_connection(head, conn);
                    head.extend_from_slice(b"\r\n");
                });
                out.extend_from_slice(head);
                if body > 0 {
                    out.extend_from_slice(pattern_at(0, body));
                }
                // Counted as a close whatever closes it: this draw, the client, or a drain.
                let closes = conn == ConnectionHeader::Close;
                self.counters.count_at_once(worker, status, body, closes);
                if plan.close {
                    res.close();
                }
                return res.sent(status);
            }
        }
        let later = self.later(spec, &plan, status, head_only, conn);
        if plan.close {
            res.close();
        }
        res.later(later);
    }
}

/// What an immediate shaped response's head depends on besides its spec and the date, in one
/// word: its status, its size (at most [`INLINE_BODY`]), whether the draw closes the
/// connection (`close=100` in `X-Cerberus-Shape`), its `Connection` header, and HEAD.
#[inline(always)]
fn head_key(
    status: u16,
    size: u64,
    injected_close: bool,
    conn: ConnectionHeader,
    head_only: bool,
) -> u64 {
    let conn = match conn {
        ConnectionHeader::None => 0,
        ConnectionHeader::KeepAlive => 1,
        ConnectionHeader::Close => 2,
    };
    size | u64::from(status) << 32
        | u64::from(injected_close) << 48
        | conn << 49
        | u64::from(head_only) << 51
}

/// Specs a worker parsed recently, by route and query string, with the heads of immediate
/// responses rendered from them: a load test sends the same few query strings over and over,
/// and parsing one costs several times what answering it from here does.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    entries: Vec<Entry>,
    /// The entry replaced next once the cache is full.
    next: usize,
    /// The entry found last: looked at first.
    last: usize,
}

/// Entries a worker keeps.
const CACHED_SPECS: usize = 16;
/// Heads kept per spec.
const CACHED_HEADS: usize = 8;

/// One route and query string's spec.
#[derive(Debug)]
struct Entry {
    route: u64,
    query: Box<[u8]>,
    spec: Spec,
    heads: Heads,
}

/// Heads rendered from one spec, by [`head_key`], in the `Date` second they carry.
#[derive(Debug, Default)]
struct Heads {
    list: Vec<(u64, Vec<u8>)>,
    /// The `Date` second of every head in `list`.
    second: u64,
    /// The head found last: looked at first.
    last: usize,
    /// The head replaced next once the list is full.
    next: usize,
}

impl Cache {
    /// The entry of `route`'s `query`.
    #[inline]
    fn find(&mut self, route: u64, query: &[u8]) -> Option<usize> {
        let is = |e: &Entry| e.route == route && super::same_bytes(&e.query, query);
        if self.entries.get(self.last).is_some_and(is) {
            return Some(self.last);
        }
        let found = self.entries.iter().position(is)?;
        self.last = found;
        Some(found)
    }

    /// Keep `spec` for `route`'s `query`; returns its entry.
    #[cold]
    fn insert(&mut self, route: u64, query: &[u8], spec: Spec) -> usize {
        let entry = Entry {
            route,
            query: query.into(),
            spec,
            heads: Heads::default(),
        };
        if self.entries.len() < CACHED_SPECS {
            self.entries.push(entry);
            return self.entries.len() - 1;
        }
        let i = self.next;
        self.next = (i + 1) % CACHED_SPECS;
        self.entries[i] = entry;
        i
    }
}

impl Heads {
    /// The head for `key`, rendered by `render` if it is not kept.
    #[inline(always)]
    fn get(&mut self, key: u64, second: u64, render: impl FnOnce(&mut Vec<u8>)) -> &[u8] {
        if self.second != second {
            self.second = second;
            self.list.clear();
        }
        if self.list.get(self.last).is_some_and(|(k, _)| *k == key) {
            return &self.list[self.last].1;
        }
        if let Some(i) = self.list.iter().position(|(k, _)| *k == key) {
            self.last = i;
            return &self.list[i].1;
        }
        let mut head = Vec::new();
        render(&mut head);
        let i = if self.list.len() < CACHED_HEADS {
            self.list.push((key, head));
            self.list.len() - 1
        } else {
            let i = self.next;
            self.next = (i + 1) % CACHED_HEADS;
            self.list[i] = (key, head);
            i
        };
        &self.list[i].1
    }
}

impl Shape {
    /// The spec of a request with this query string: the route's defaults with what it asks.
    #[cold]
    fn spec_for(&self, query: &[u8]) -> Result<Spec, ShapeError> {
        if query.is_empty() {
            return Ok(self.defaults.clone());
        }
        let own = Spec::parse_query(query, &self.limits)?;
        Ok(if self.plain {
            own
        } else {
            self.defaults.overlay(&own)
        })
    }
}

impl Shape {
    /// The response that answers later: after a delay, in a drip, with a body too large to
    /// copy, or by a reset.
    #[inline(never)]
    fn later(
        &self,
        spec: &Spec,
        plan: &Plan,
        status: u16,
        head_only: bool,
        conn: ConnectionHeader,
    ) -> Later {
        let drip = spec.drip;
        let size = match (plan.size, drip) {
            (Some(size), _) => size,
            // A drip with no size drips a byte a piece.
            (None, Some(drip)) => u64::from(drip.pieces),
            (None, None) => 0,
        };
        let content = response::framing(status) == response::Framing::Length;
        let conn = if plan.close {
            ConnectionHeader::Close
        } else {
            conn
        };
        let applied = Applied {
            status,
            delay_us: plan.delay_us,
            size: if head_only || !content { 0 } else { size },
            close: conn == ConnectionHeader::Close,
            reset: plan.reset,
        };
        let mut later = Later::new(status, Duration::from_micros(plan.delay_us));
        self.headers(&mut later.headers, &applied, plan.close, spec);
        later.body = match drip {
            Some(drip) => LaterBody::Drip {
                size,
                pieces: drip.pieces,
                interval: Duration::from_micros(drip.interval_us),
            },
            None => LaterBody::Pattern(size),
        };
        later.reset = plan.reset;
        later.sendfile = self.sendfile;
        later.account = Some((self.counters.clone(), applied));
        later
    }

    /// The response's header lines: the route's, what was applied (`closes`: this draw closes
    /// the connection), and the request's own.
    fn headers(&self, out: &mut Vec<u8>, applied: &Applied, closes: bool, spec: &Spec) {
        out.extend_from_slice(&self.lines);
        let mut digits = itoa::Buffer::new();
        out.extend_from_slice(b"Server-Timing: shape;dur=");
        out.extend_from_slice(digits.format(applied.delay_us / 1000).as_bytes());
        let frac = applied.delay_us % 1000;
        out.extend_from_slice(&[
            b'.',
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ]);
        out.extend_from_slice(b"\r\nX-Cerberus-Shape: status=");
        out.extend_from_slice(digits.format(applied.status).as_bytes());
        out.extend_from_slice(b"&delay=");
        out.extend_from_slice(digits.format(applied.delay_us).as_bytes());
        out.extend_from_slice(b"us&size=");
        out.extend_from_slice(digits.format(applied.size).as_bytes());
        if closes {
            out.extend_from_slice(b"&close=100");
        }
        if let Some(drip) = &spec.drip {
            out.extend_from_slice(b"&drip=");
            out.extend_from_slice(digits.format(drip.pieces).as_bytes());
            out.push(b'x');
            out.extend_from_slice(digits.format(drip.interval_us).as_bytes());
            out.extend_from_slice(b"us");
        }
        out.extend_from_slice(b"\r\n");
        for (name, value) in &spec.headers {
            response::write_header(out, name, value.as_bytes());
        }
    }
}

/// 400 with a JSON body that names the argument and says why.
#[cold]
fn refuse(res: &mut Responder<'_>, e: &ShapeError) {
    let doc = serde_json::json!({"error": e.why, "argument": e.arg});
    let body = doc.to_string();
    res.send(
        400,
        &[("Content-Type", b"application/json")],
        body.as_bytes(),
    );
}
