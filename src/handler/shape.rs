//! The `shape` handler: a response shaped by the query string (or the route's defaults), as
//! fortio's echo server does, for load tests: `?status=503:20&delay=p50:5ms,p99:80ms&size=1KiB`.
//!
//! It decides the shape (a [`Plan`] drawn from the [`Spec`]) and how it is sent: at once when
//! there is nothing to wait for and the body is small, otherwise as a [`Later`] response that
//! the worker sends when it is due. Every response says what it was given, in the request's own
//! grammar (`X-Cerberus-Shape: status=503&delay=12345us&size=1024`), and its delay as
//! `Server-Timing: shape;dur=12.345`; the route's counters count the same, once it takes effect.

use std::sync::Arc;
use std::time::Duration;

use super::{pattern_at, Handler, Later, LaterBody, Request, Responder};
use crate::config::{Route as RouteConfig, ShapeConfig};
use crate::http::response;
use crate::shape::counters::{Applied, RouteCounters};
use crate::shape::grammar::{Limits, ShapeError, Spec};

/// Largest body sent at once, copied into the output with the head; larger ones are written
/// straight from the shared pattern as the socket takes them.
const INLINE_BODY: u64 = 16 * 1024;

/// A `shape` route.
pub struct Shape {
    /// The shape of a request that asks for nothing (and the base of one that does).
    defaults: Spec,
    /// `defaults` sets nothing: a request's own shape is used as it is, not overlaid.
    plain: bool,
    /// What a request may ask for.
    limits: Limits,
    /// Clients may shape their responses.
    query: bool,
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
        Ok(Shape {
            plain: defaults == Spec::default(),
            defaults,
            limits: ShapeConfig::limits(&config),
            query: config.query,
            status: r.status.unwrap_or(200),
            lines,
            counters,
        })
    }
}

impl Handler for Shape {
    fn handle(&self, req: &Request<'_>, res: &mut Responder<'_>) {
        let asked;
        let spec = match req.head.query().filter(|q| self.query && !q.is_empty()) {
            None => &self.defaults,
            Some(query) => match Spec::parse_query(query.as_bytes(), &self.limits) {
                Ok(own) if self.plain => {
                    asked = own;
                    &asked
                }
                Ok(own) => {
                    asked = self.defaults.overlay(&own);
                    &asked
                }
                Err(e) => return refuse(res, &e),
            },
        };
        let plan = spec.plan(res.rng(spec.seed), &self.limits);
        let status = plan.status.unwrap_or(self.status);
        let drip = spec.drip.as_ref();
        let size = match (plan.size, drip) {
            (Some(size), _) => size,
            // A drip with no size drips a byte a piece.
            (None, Some(drip)) => u64::from(drip.pieces),
            (None, None) => 0,
        };
        let head_only = req.head.method_bytes() == b"HEAD";
        let content = response::framing(status) == response::Framing::Length;
        if plan.close {
            res.close();
        }
        // Counted as a close whatever closes it: this draw, the client, or a drain.
        let applied = Applied {
            status,
            delay_us: plan.delay_us,
            size: if head_only || !content { 0 } else { size },
            close: res.closes(),
            reset: plan.reset,
        };
        let deferred = plan.delay_us > 0 || plan.reset || drip.is_some() || size > INLINE_BODY;
        if !deferred {
            self.counters.count(res.worker(), &applied);
            let body = pattern_at(0, size);
            return res.send_with(
                status,
                |out| self.headers(out, &applied, plan.close, spec),
                body,
            );
        }
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
        later.account = Some((self.counters.clone(), applied));
        res.later(later);
    }
}

impl Shape {
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
