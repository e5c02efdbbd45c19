//! The metrics thread: `/metrics`, `/healthz` and `/readyz` on a listener of its own.
//!
//! Workers never touch this thread: each one only writes its
//! [`WorkerStats`](crate::stats::WorkerStats) atomics, and a scrape sums them here (see
//! [`StatsCollector`], which also names every metric). So the request path pays nothing for
//! metrics beyond its own relaxed stores. Every counter only grows and has one writer, so a sum
//! read while workers run is a value the counter really passed through, and successive scrapes
//! never go backwards.
//!
//! The listener is a plain blocking `std` socket served one connection at a time: scrapes are
//! rare and small, and a slow client is bounded by [`HEAD_DEADLINE`] and [`WRITE_TIMEOUT`]
//! rather than given a thread. Every response closes its connection.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use prometheus::process_collector::ProcessCollector;
use prometheus::{Encoder, Registry, TextEncoder};

use crate::http::date::DateCache;
use crate::http::response::{self, ConnectionHeader};
use crate::http::{ParseError, RequestParser, Status, MAX_HEAD};
use crate::stats::Observed;

mod collector;

pub use collector::StatsCollector;

/// Time allowed for a whole request head to arrive. A scrape request is a few hundred bytes
/// sent at once; five seconds is generous for that and still frees the only slot from a
/// client that connects and says nothing.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// Time one write may block. A scrape is tens of kilobytes, which fit in the socket buffer of
/// any client that reads at all.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long accepting pauses after an error such as running out of file descriptors, so the
/// loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The Prometheus text exposition format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bind `addr` and serve metrics from a new thread; returns the bound address (useful when
/// `addr` has port 0). Binding happens before this returns, so the caller reports a taken
/// address at start-up, and the error names the address.
pub fn spawn(addr: SocketAddr, observed: Arc<Observed>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot serve metrics on {addr}: {e}")))?;
    let bound = listener.local_addr()?;
    let registry = Registry::new();
    registry
        .register(Box::new(StatsCollector::new(observed.clone())))
        .and_then(|()| registry.register(Box::new(ProcessCollector::for_self())))
        .map_err(|e| io::Error::other(format!("metrics registry: {e}")))?;
    let pages = Pages {
        registry,
        observed,
        date: DateCache::new(),
    };
    std::thread::Builder::new()
        .name("cerberus-metrics".into())
        .spawn(move || pages.serve(listener))?;
    Ok(bound)
}

/// What the metrics thread answers from.
struct Pages {
    /// The worker sums and the process collector, gathered on each scrape.
    registry: Registry,
    /// Readiness, for `/readyz`.
    observed: Arc<Observed>,
    /// The `Date` header value; this thread's own, like each worker's.
    date: DateCache,
}

impl Pages {
    fn serve(mut self, listener: TcpListener) {
        loop {
            match listener.accept() {
                // A client that misbehaves only loses its own response.
                Ok((stream, _)) => drop(self.answer(stream)),
                Err(_) => std::thread::sleep(ACCEPT_BACKOFF),
            }
        }
    }

    /// Read one request head, write one response, close.
    fn answer(&mut self, mut stream: TcpStream) -> io::Result<()> {
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let deadline = Instant::now() + HEAD_DEADLINE;
        let mut buf = vec![0u8; MAX_HEAD];
        let mut len = 0;
        let mut parser = RequestParser::new();
        self.date.update(SystemTime::now());
        let out = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            stream.set_read_timeout(Some(left))?;
            let n = stream.read(&mut buf[len..])?;
            if n == 0 {
                return Ok(());
            }
            len += n;
            match parser.parse(&buf[..len]) {
                Status::Partial if len < buf.len() => continue,
                Status::Partial => break self.error(ParseError::HeadTooLarge.status(), false),
                Status::Error(e) => break self.error(e.status(), false),
                Status::Complete(head, _) => break self.page(head.method(), head.path()),
            }
        };
        stream.write_all(&out)?;
        stream.shutdown(std::net::Shutdown::Write)
    }

    /// The whole response to `method path`.
    fn page(&self, method: &str, path: &str) -> Vec<u8> {
        let head_only = method == "HEAD";
        if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
            return self.error(404, head_only);
        }
        if method != "GET" && !head_only {
            let mut out = Vec::new();
            response::write_status(&mut out, 405, self.date.get());
            response::write_header(&mut out, "Allow", b"GET, HEAD");
            response::write_header(&mut out, "Content-Type", b"text/plain");
            response::write_tail(
                &mut out,
                405,
                b"Method Not Allowed\n",
                ConnectionHeader::Close,
                false,
            );
            return out;
        }
        match path {
            "/metrics" => match self.render() {
                Ok(text) => self.ok(200, CONTENT_TYPE, text.as_bytes(), head_only),
                Err(_) => self.error(500, head_only),
            },
            "/healthz" => self.ok(200, "text/plain", b"ok\n", head_only),
            _ if self.observed.server.ready.load(Relaxed) == 1 => {
                self.ok(200, "text/plain", b"ready\n", head_only)
            }
            _ => self.ok(503, "text/plain", b"not ready\n", head_only),
        }
    }

    /// The exposition text of every registered collector.
    fn render(&self) -> prometheus::Result<String> {
        let mut text = Vec::with_capacity(16 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut text)?;
        String::from_utf8(text).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }

    fn ok(&self, status: u16, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + 200);
        response::write_status(&mut out, status, self.date.get());
        response::write_header(&mut out, "Content-Type", content_type.as_bytes());
        response::write_tail(&mut out, status, body, ConnectionHeader::Close, head_only);
        out
    }

    fn error(&self, status: u16, head_only: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(200);
        let date = self.date.get();
        response::write_error(&mut out, status, date, ConnectionHeader::Close, head_only);
        out
    }
}
