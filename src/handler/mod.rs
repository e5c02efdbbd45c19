//! Handlers: what answers a request once it has been read whole.
//!
//! [`Handler`] is public so a library user can plug in their own (see `examples/`). The
//! built-ins are chosen per route in the config: `static` (a fixed response), `echo` (the body
//! back) and `inspect` (the request as JSON). [`Router`] picks one per request.

use std::sync::Arc;

use crate::config::{Config, HandlerKind, Route as RouteConfig, StaticResponse};
use crate::http::date::{DateCache, DATE_LEN};
use crate::http::response::{self, ConnectionHeader};
use crate::http::Head;
use crate::shape::counters::Board;
use crate::shape::counters::{Applied, RouteCounters};

pub mod shape;

/// A request whose body has been read (and de-chunked).
pub struct Request<'a> {
    /// The head: method, target, fields.
    pub head: &'a Head<'a>,
    /// The whole body, de-chunked; empty when there is none.
    pub body: &'a [u8],
}

impl Request<'_> {
    /// Is the body declared as JSON (`application/json`, with or without parameters)?
    pub fn is_json(&self) -> bool {
        self.head.content_type().is_some_and(is_json_media_type)
    }
}

/// Is this `Content-Type` value `application/json` (case-insensitive, parameters ignored)?
pub fn is_json_media_type(value: &[u8]) -> bool {
    // What nearly every client sends: two word compares instead of a search and a
    // byte-by-byte case-blind compare.
    if value == b"application/json" {
        return true;
    }
    let media = value.split(|&c| c == b';').next().unwrap_or_default();
    crate::http::trim_ows(media).eq_ignore_ascii_case(b"application/json")
}

/// Where a handler writes its response. The server adds `Server`, `Date`, `Content-Length` and
/// `Connection`, and drops the body of a HEAD response. A status that forbids content (1xx,
/// 204, 205, 304) gets none, whatever body is given, and no `Content-Length` except
/// `Content-Length: 0` on 205 ([`response::framing`]).
///
/// A response can also complete later ([`Responder::later`]): the worker sends it when it is
/// due, in order with the connection's other responses, without a thread waiting for it.
pub struct Responder<'a> {
    /// The output (a handler of this crate may write into it itself, then call `sent`).
    pub(crate) out: &'a mut Vec<u8>,
    /// The `Date` header's value.
    pub(crate) date: &'a DateCache,
    /// The worker's side.
    pub(crate) desk: &'a mut Desk,
    /// The `Connection` header the response gets.
    pub(crate) conn: ConnectionHeader,
    head_only: bool,
    status: Option<u16>,
}

/// The worker's side of answering, which handlers reach through their [`Responder`].
#[derive(Debug, Default)]
pub(crate) struct Desk {
    /// The last static response rendered in full, reused while its date is current.
    pub(crate) rendered: Rendered,
    /// Responses that complete later, deferred during this event, each with the length the
    /// output had when it was deferred: it goes there, after what was answered before it.
    pub(crate) later: Vec<(usize, Later)>,
    /// The worker's random numbers.
    pub(crate) rng: fastrand::Rng,
    /// The connection's own random numbers, seeded by a request (`seed=` of a `shape` route):
    /// the connection keeps them between events, and lends them here during one.
    pub(crate) seeded: Option<Seeded>,
    /// The worker's index in its generation.
    pub(crate) worker: usize,
    /// `shape` routes' specs parsed recently, and heads rendered from them.
    pub(crate) shapes: shape::Cache,
    /// Responses that complete later the connection being served has queued already (during a
    /// read: they count against `max_pending`).
    pub(crate) queued: usize,
}

/// Random numbers seeded by a request, and the seed, so that the next request with the same
/// seed goes on with them rather than starting over.
#[derive(Debug, Clone)]
pub(crate) struct Seeded {
    seed: u64,
    rng: fastrand::Rng,
}

/// The last [`Prepared`] response a worker rendered in full, with the date and `Connection`
/// header it was rendered for: answering the same route again in the same second is then one
/// copy.
#[derive(Debug, Default)]
pub struct Rendered {
    /// (prepared id, date second, connection header, head only) of `bytes`.
    key: Option<(u64, u64, ConnectionHeader, bool)>,
    bytes: Vec<u8>,
}

impl<'a> Responder<'a> {
    pub(crate) fn new(
        out: &'a mut Vec<u8>,
        date: &'a DateCache,
        desk: &'a mut Desk,
        conn: ConnectionHeader,
        head_only: bool,
    ) -> Self {
        Responder {
            out,
            date,
            desk,
            conn,
            head_only,
            status: None,
        }
    }

    /// Send a response. Only the first call counts.
    pub fn send(&mut self, status: u16, headers: &[(&str, &[u8])], body: &[u8]) {
        if self.status.is_some() {
            return;
        }
        self.status = Some(status);
        response::write_status(self.out, status, self.date.get());
        for (name, value) in headers {
            response::write_header(self.out, name, value);
        }
        response::write_tail(self.out, status, body, self.conn, self.head_only);
    }

    /// Send a response whose header lines (each `Name: value` CRLF, besides the server's own)
    /// `headers` writes into the output, with no copy in between. Only the first call counts.
    pub fn send_with(&mut self, status: u16, headers: impl FnOnce(&mut Vec<u8>), body: &[u8]) {
        if self.status.is_some() {
            return;
        }
        self.status = Some(status);
        response::write_status(self.out, status, self.date.get());
        headers(self.out);
        response::write_tail(self.out, status, body, self.conn, self.head_only);
    }

    /// Send a response rendered ahead of time. Only the first call counts.
    pub fn send_prepared(&mut self, prepared: &Prepared) {
        if self.status.is_some() {
            return;
        }
        self.status = Some(prepared.status);
        let key = (prepared.id, self.date.second(), self.conn, self.head_only);
        let rendered = &mut self.desk.rendered;
        if rendered.key != Some(key) {
            let bytes = &mut rendered.bytes;
            bytes.clear();
            bytes.extend_from_slice(&prepared.status_line);
            bytes.extend_from_slice(self.date.get());
            bytes.extend_from_slice(&prepared.headers);
            response::write_connection(bytes, self.conn);
            bytes.extend_from_slice(b"\r\n");
            if !self.head_only {
                bytes.extend_from_slice(&prepared.body);
            }
            rendered.key = Some(key);
        }
        self.out.extend_from_slice(&rendered.bytes);
    }

    /// Send a response that completes later: its head when it is due, then its body (at once,
    /// or in pieces over time). The connection's responses stay in order: those of requests
    /// after this one wait for it. Only the first call (of this or `send`) counts.
    pub fn later(&mut self, mut later: Later) {
        if self.status.is_some() {
            return;
        }
        if later.reset {
            // No more requests are read: the connection ends with the reset.
            self.conn = ConnectionHeader::Close;
        }
        self.status = Some(if later.reset {
            RESET_STATUS
        } else {
            later.status
        });
        later.conn = self.conn;
        later.head_only = self.head_only;
        self.desk.later.push((self.out.len(), later));
    }

    /// Close the connection after this response (it is sent with `Connection: close`). Call
    /// it before sending.
    pub fn close(&mut self) {
        self.conn = ConnectionHeader::Close;
    }

    /// The connection closes after this response.
    pub fn closes(&self) -> bool {
        self.conn == ConnectionHeader::Close
    }

    /// Random numbers: the worker's, or with a `seed`, the connection's own, seeded by it the
    /// first time (and again when the seed changes), so that a client that sends the same seed
    /// on every request of a connection gets the same draws every time.
    pub fn rng(&mut self, seed: Option<u64>) -> &mut fastrand::Rng {
        match seed {
            None => &mut self.desk.rng,
            Some(seed) => seeded(&mut self.desk.seeded, seed),
        }
    }

    /// A response with `status` was written into the output directly.
    pub(crate) fn sent(&mut self, status: u16) {
        self.status = Some(status);
    }

    /// The status sent, if any ([`RESET_STATUS`] for a reset).
    pub fn status(&self) -> Option<u16> {
        self.status
    }
}

/// The connection's random numbers for `seed`: seeded by it the first time, and again when
/// the seed changes.
pub(crate) fn seeded(seeded: &mut Option<Seeded>, seed: u64) -> &mut fastrand::Rng {
    if seeded.as_ref().is_none_or(|s| s.seed != seed) {
        *seeded = Some(Seeded {
            seed,
            rng: fastrand::Rng::with_seed(seed),
        });
    }
    &mut seeded.as_mut().expect("seeded just above").rng
}

/// The status a request answered by a reset is counted and logged with (nginx's "no
/// response" code): there is no response.
pub const RESET_STATUS: u16 = 444;

/// A response that completes later ([`Responder::later`]).
#[derive(Debug)]
pub struct Later {
    /// How long after the request it is due.
    pub delay: std::time::Duration,
    /// Its status.
    pub status: u16,
    /// Header lines besides the server's own, each `Name: value` CRLF.
    pub headers: Vec<u8>,
    /// Its body.
    pub body: LaterBody,
    /// Reset the connection (a TCP RST) instead of sending it.
    pub reset: bool,
    /// What to count when it takes effect (a `shape` route's counters).
    pub account: Option<(Arc<RouteCounters>, Applied)>,
    /// Send the body with `sendfile` from a memory file rather than `writev`.
    pub sendfile: bool,
    /// Its `Connection` header, by the request (set by [`Responder::later`]).
    pub(crate) conn: ConnectionHeader,
    /// A HEAD request's: the head alone (set by [`Responder::later`]).
    pub(crate) head_only: bool,
}

/// The body of a [`Later`] response, generated from one shared pattern rather than stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaterBody {
    /// This many bytes, with `Content-Length`.
    Pattern(u64),
    /// This many bytes in `pieces` chunks (chunked encoding), `interval` apart; the head and
    /// the first piece go when the response is due.
    Drip {
        /// Bytes in all.
        size: u64,
        /// Chunks.
        pieces: u32,
        /// Time between two chunks.
        interval: std::time::Duration,
    },
}

impl Later {
    /// A response with this status, due after `delay`, with no body.
    pub fn new(status: u16, delay: std::time::Duration) -> Later {
        Later {
            delay,
            status,
            headers: Vec::new(),
            body: LaterBody::Pattern(0),
            reset: false,
            account: None,
            sendfile: false,
            conn: ConnectionHeader::None,
            head_only: false,
        }
    }

    /// It closes its connection.
    pub fn closes(&self) -> bool {
        self.conn == ConnectionHeader::Close
    }

    /// The response carries a body: it is not to a HEAD request, and its status allows one.
    pub fn has_body(&self) -> bool {
        !self.head_only && response::framing(self.status) == response::Framing::Length
    }

    /// The body bytes that follow the head: none for HEAD, or where the status forbids content.
    pub fn body_len(&self) -> u64 {
        match self.body {
            _ if !self.has_body() => 0,
            LaterBody::Pattern(n) | LaterBody::Drip { size: n, .. } => n,
        }
    }

    /// Append its head, with `date` (the time it is sent, not the time it was asked for) and
    /// `Connection: close` if `close` (the server is draining, or the handler asked).
    pub fn write_head(&self, out: &mut Vec<u8>, date: &[u8; DATE_LEN], close: bool) {
        response::write_status(out, self.status, date);
        out.extend_from_slice(&self.headers);
        match (self.body, response::framing(self.status)) {
            (_, response::Framing::None) => {}
            (_, response::Framing::Empty) => response::write_length(out, 0),
            (LaterBody::Pattern(n), _) => response::write_length(out, n as usize),
            (LaterBody::Drip { .. }, _) => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        }
        let conn = if close {
            ConnectionHeader::Close
        } else {
            self.conn
        };
        response::write_connection(out, conn);
        out.extend_from_slice(b"\r\n");
    }
}

/// Body bytes: a 64-byte line of text repeated, so any stretch of a body is a slice of it.
pub static PATTERN: [u8; PATTERN_LEN] = pattern();
/// Length of [`PATTERN`]: a whole number of its lines, and large enough for one write.
pub const PATTERN_LEN: usize = 64 * 1024;

const fn pattern() -> [u8; PATTERN_LEN] {
    let line = b"cerberus shaped body 0123456789 abcdefghijklmnopqrstuvwxyz ....\n";
    let mut out = [0u8; PATTERN_LEN];
    let mut i = 0;
    while i < PATTERN_LEN {
        out[i] = line[i % line.len()];
        i += 1;
    }
    out
}

/// The pattern repeated to a megabyte in an anonymous memory file, for `sendfile`: made once,
/// on first use; `None` if the system has no `memfd` (bodies are then written with `writev`).
pub(crate) fn body_file() -> Option<&'static std::fs::File> {
    static FILE: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();
    FILE.get_or_init(|| crate::os::memfd::pattern_file(&PATTERN, BODY_FILE_LEN / PATTERN_LEN).ok())
        .as_ref()
}

/// Length of [`body_file`]: a megabyte, whole copies of [`PATTERN`].
pub(crate) const BODY_FILE_LEN: usize = 16 * PATTERN_LEN;

/// The bytes of a pattern body from `at`, at most `len` of them (less where the pattern wraps).
pub fn pattern_at(at: u64, len: u64) -> &'static [u8] {
    let start = (at % PATTERN_LEN as u64) as usize;
    let n = len.min((PATTERN_LEN - start) as u64) as usize;
    &PATTERN[start..start + n]
}

/// A response whose bytes are rendered once, at start or reload, and copied per request.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Unique per rendering (never reused, unlike an address), to key [`Rendered`].
    id: u64,
    status: u16,
    /// `HTTP/1.1 200 OK` CRLF `Server: cerberus` CRLF `Date: ` (the date follows).
    status_line: Vec<u8>,
    /// CRLF after the date, then the configured headers and `Content-Length`.
    headers: Vec<u8>,
    body: Vec<u8>,
}

impl Prepared {
    /// Render a response with these headers (besides the server's own) and body. The body is
    /// dropped, and `Content-Length` left out, where the status forbids them (as in
    /// [`Responder::send`]).
    pub fn new(status: u16, headers: &[(&str, &str)], mut body: Vec<u8>) -> Prepared {
        let mut status_line = Vec::new();
        response::write_status(&mut status_line, status, &[b'-'; DATE_LEN]);
        status_line.truncate(status_line.len() - DATE_LEN - 2);
        let mut rendered = b"\r\n".to_vec();
        for (name, value) in headers {
            response::write_header(&mut rendered, name, value.as_bytes());
        }
        let allowed = response::write_framing(&mut rendered, status, &body).len();
        body.truncate(allowed);
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Prepared {
            id,
            status,
            status_line,
            headers: rendered,
            body,
        }
    }
}

/// Answers requests. Implement it to serve your own responses from Cerberus.
pub trait Handler: Send + Sync {
    /// Answer `req` through `res`. If nothing is sent, the client gets 500.
    fn handle(&self, req: &Request<'_>, res: &mut Responder<'_>);
}

/// The `static` handler: a fixed response.
#[derive(Debug, Clone)]
pub struct Static(pub Prepared);

impl Static {
    /// Build from the config, reading `body_file` if set.
    pub fn from_config(r: &StaticResponse) -> std::io::Result<Static> {
        let body = match &r.body_file {
            Some(path) => crate::config::read_body_file(path)?,
            None => r.body.clone().into_bytes(),
        };
        let mut headers: Vec<(&str, &str)> = vec![("Content-Type", &r.content_type)];
        headers.extend(r.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Ok(Static(Prepared::new(r.status, &headers, body)))
    }
}

impl Handler for Static {
    fn handle(&self, _req: &Request<'_>, res: &mut Responder<'_>) {
        res.send_prepared(&self.0);
    }
}

/// The `echo` handler: 200 with the request body, and its `Content-Type` if it had one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

impl Handler for Echo {
    fn handle(&self, req: &Request<'_>, res: &mut Responder<'_>) {
        match req.head.content_type() {
            Some(ct) => res.send(200, &[("Content-Type", ct)], req.body),
            None => res.send(200, &[], req.body),
        }
    }
}

/// The `inspect` handler: 200 with a JSON description of the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inspect;

impl Handler for Inspect {
    fn handle(&self, req: &Request<'_>, res: &mut Responder<'_>) {
        let head = req.head;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let headers: Vec<[String; 2]> = head
            .fields()
            .map(|f| [text(f.name), text(f.value)])
            .collect();
        let json = if req.is_json() {
            serde_json::from_slice::<serde_json::Value>(req.body).unwrap_or(serde_json::Value::Null)
        } else {
            serde_json::Value::Null
        };
        let doc = serde_json::json!({
            "method": head.method(),
            "target": head.target(),
            "path": head.path(),
            "query": head.query(),
            "host": head.host(),
            "version": head.version().as_str(),
            "headers": headers,
            "body": text(req.body),
            "json": json,
        });
        let body = serde_json::to_vec(&doc).unwrap_or_default();
        res.send(200, &[("Content-Type", b"application/json")], &body);
    }
}

/// How a route matches the path.
#[derive(Debug, Clone)]
enum PathMatch {
    Exact(String),
    Prefix(String),
}

/// One route: an optional method, a path match, and its handler.
#[derive(Clone)]
pub struct Route {
    method: Option<String>,
    path: PathMatch,
    handler: Arc<dyn Handler>,
}

impl Route {
    /// A route for this exact path (any method unless `method` is set).
    pub fn exact(method: Option<&str>, path: &str, handler: Arc<dyn Handler>) -> Route {
        Route {
            method: method.map(str::to_owned),
            path: PathMatch::Exact(path.to_owned()),
            handler,
        }
    }

    /// A route for paths starting with `prefix`.
    pub fn prefix(method: Option<&str>, prefix: &str, handler: Arc<dyn Handler>) -> Route {
        Route {
            method: method.map(str::to_owned),
            path: PathMatch::Prefix(prefix.to_owned()),
            handler,
        }
    }

    fn matches_path(&self, path: &[u8]) -> bool {
        match &self.path {
            PathMatch::Exact(p) => same_bytes(p.as_bytes(), path),
            PathMatch::Prefix(p) => path
                .get(..p.len())
                .is_some_and(|h| same_bytes(h, p.as_bytes())),
        }
    }

    fn matches_method(&self, method: &[u8]) -> bool {
        match &self.method {
            None => true,
            // A route for GET serves HEAD too (RFC 9110 §9.3.2).
            Some(m) => m.as_bytes() == method || (m == "GET" && method == b"HEAD"),
        }
    }
}

/// `a == b`, without a call to `memcmp` for strings of up to 16 bytes (route prefixes, the
/// query strings a load test repeats), which cost less compared in place.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| {
        let mut w = [0; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_ne_bytes(w)
    };
    match n {
        0..=8 => a.iter().zip(b).all(|(x, y)| x == y),
        // Two words, overlapping unless the length is 16, cover every byte.
        9..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

/// What the router decided.
pub enum Routed<'r> {
    /// Use this handler.
    Handler(&'r dyn Handler),
    /// The path matched but not the method: 405 with this `Allow` value.
    MethodNotAllowed(String),
}

/// Picks a handler per request: the first matching route, else the default response.
#[derive(Clone)]
pub struct Router {
    routes: Vec<Route>,
    default: Arc<dyn Handler>,
}

impl Router {
    /// A router with these routes and this fallback.
    pub fn new(routes: Vec<Route>, default: Arc<dyn Handler>) -> Router {
        Router { routes, default }
    }

    /// Build the routes a config describes.
    pub fn from_config(config: &Config) -> std::io::Result<Router> {
        Router::counted(config, &Board::default(), 1)
    }

    /// Build the routes a config describes, with `shape` routes counting into `board` (with a
    /// slot per worker up to `workers`).
    pub(crate) fn counted(
        config: &Config,
        board: &Board,
        workers: usize,
    ) -> std::io::Result<Router> {
        let default: Arc<dyn Handler> = Arc::new(Static::from_config(&config.default_response)?);
        let routes = config
            .routes
            .iter()
            .map(|r| route_from_config(r, board, workers))
            .collect::<std::io::Result<_>>()?;
        Ok(Router { routes, default })
    }

    /// Add a route after the existing ones.
    pub fn push(&mut self, route: Route) {
        self.routes.push(route);
    }

    /// The handler for this method and path.
    pub fn route(&self, method: &[u8], path: &[u8]) -> Routed<'_> {
        let mut allow: Vec<&str> = Vec::new();
        for route in &self.routes {
            if !route.matches_path(path) {
                continue;
            }
            if route.matches_method(method) {
                return Routed::Handler(route.handler.as_ref());
            }
            if let Some(m) = &route.method {
                if !allow.contains(&m.as_str()) {
                    allow.push(m);
                }
                if m == "GET" && !allow.contains(&"HEAD") {
                    allow.push("HEAD");
                }
            }
        }
        if allow.is_empty() {
            Routed::Handler(self.default.as_ref())
        } else {
            Routed::MethodNotAllowed(allow.join(", "))
        }
    }
}

fn route_from_config(r: &RouteConfig, board: &Board, workers: usize) -> std::io::Result<Route> {
    let handler: Arc<dyn Handler> = match r.handler {
        HandlerKind::Shape => {
            let label = match (&r.path, &r.prefix) {
                (Some(path), _) => path.clone(),
                (None, Some(prefix)) => format!("{prefix}*"),
                (None, None) => unreachable!("validated: a route has a path or a prefix"),
            };
            Arc::new(shape::Shape::from_config(r, board.route(&label, workers))?)
        }
        HandlerKind::Echo => Arc::new(Echo),
        HandlerKind::Inspect => Arc::new(Inspect),
        HandlerKind::Static => {
            let defaults = StaticResponse::default();
            Arc::new(Static::from_config(&StaticResponse {
                status: r.status.unwrap_or(200),
                content_type: r.content_type.clone().unwrap_or(defaults.content_type),
                body: r.body.clone().unwrap_or_default(),
                body_file: r.body_file.clone(),
                headers: r.headers.clone(),
            })?)
        }
    };
    let method = r.method.as_deref();
    Ok(match (&r.path, &r.prefix) {
        (Some(path), _) => Route::exact(method, path, handler),
        (None, Some(prefix)) => Route::prefix(method, prefix, handler),
        (None, None) => unreachable!("validated: a route has a path or a prefix"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_is_equality_at_every_length_and_position() {
        for n in 0..40usize {
            let a: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37)).collect();
            assert!(same_bytes(&a, &a.clone()), "{n} bytes equal");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same_bytes(&a, &b), "{n} bytes, byte {at} differs");
            }
            assert!(!same_bytes(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
    }

    /// What follows the `Date` line when a handler sends `status` with `body` through
    /// [`Responder::send`], and when a static route does through [`Prepared`].
    fn sent(status: u16, body: &[u8], head_only: bool) -> (String, String) {
        let date = DateCache::new();
        let after_date = |out: &[u8]| {
            let text = String::from_utf8(out.to_vec()).unwrap();
            let date_line = text.find("\r\nDate: ").unwrap() + 2;
            let end = date_line + text[date_line..].find("\r\n").unwrap() + 2;
            text[end..].to_owned()
        };
        let (mut out, mut desk) = (Vec::new(), Desk::default());
        let conn = ConnectionHeader::None;
        let mut res = Responder::new(&mut out, &date, &mut desk, conn, head_only);
        res.send(status, &[("X-A", b"1")], body);
        let handler = after_date(&out);
        let prepared = Prepared::new(status, &[("X-A", "1")], body.to_vec());
        let (mut out, mut desk) = (Vec::new(), Desk::default());
        let mut res = Responder::new(&mut out, &date, &mut desk, conn, head_only);
        res.send_prepared(&prepared);
        (handler, after_date(&out))
    }

    #[test]
    fn responses_that_forbid_content_get_neither_body_nor_length() {
        for status in [100, 101, 204, 304] {
            for head_only in [false, true] {
                let (handler, prepared) = sent(status, b"oops", head_only);
                assert_eq!(handler, "X-A: 1\r\n\r\n", "{status} head_only={head_only}");
                assert_eq!(prepared, handler, "{status} head_only={head_only}");
            }
        }
        let (handler, prepared) = sent(205, b"oops", false);
        assert_eq!(handler, "X-A: 1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(prepared, handler);
    }

    #[test]
    fn head_gets_the_length_without_the_body() {
        let (handler, prepared) = sent(200, b"body", false);
        assert_eq!(handler, "X-A: 1\r\nContent-Length: 4\r\n\r\nbody");
        assert_eq!(prepared, handler);
        let (handler, prepared) = sent(200, b"body", true);
        assert_eq!(handler, "X-A: 1\r\nContent-Length: 4\r\n\r\n");
        assert_eq!(prepared, handler);
    }

    #[test]
    fn json_media_type_ignores_case_and_parameters() {
        assert!(is_json_media_type(b"application/json"));
        assert!(is_json_media_type(b"Application/JSON; charset=utf-8"));
        assert!(is_json_media_type(b"APPLICATION/JSON"));
        assert!(is_json_media_type(b"application/json ;charset=utf-8"));
        assert!(!is_json_media_type(b"application/jsonx"));
        assert!(!is_json_media_type(b"application/js"));
        assert!(!is_json_media_type(b"text/plain"));
    }

    #[test]
    fn router_first_match_wins_and_405_lists_allowed_methods() {
        let a: Arc<dyn Handler> = Arc::new(Echo);
        let router = Router::new(
            vec![
                Route::exact(Some("POST"), "/x", a.clone()),
                Route::exact(Some("GET"), "/x", a.clone()),
                Route::prefix(None, "/p/", a),
            ],
            Arc::new(Inspect),
        );
        assert!(matches!(router.route(b"HEAD", b"/x"), Routed::Handler(_)));
        match router.route(b"PUT", b"/x") {
            Routed::MethodNotAllowed(allow) => assert_eq!(allow, "POST, GET, HEAD"),
            Routed::Handler(_) => panic!("PUT /x should be 405"),
        }
        assert!(matches!(
            router.route(b"DELETE", b"/p/q"),
            Routed::Handler(_)
        ));
        assert!(matches!(
            router.route(b"PUT", b"/other"),
            Routed::Handler(_)
        ));
    }
}
