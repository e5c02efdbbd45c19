//! Where the worker meets the access log: every answered request, whatever answered it (the
//! handler, a check of the head, a parse error, the header timeout), gets its one line here,
//! next to where it is counted.
//!
//! With the log off each call is one inlined comparison; the line is built out of line.

use std::time::Instant;

use super::ctx::Ctx;
use crate::access_log::{Entry, Request};
use crate::config::{AccessLog, Config};
use crate::http::Head;

/// Longest request line logged for bytes that did not parse: enough for any real request
/// line, and a client sending garbage cannot make one line huge.
const MAX_UNPARSED: usize = 1024;

/// Log a request whose head parsed, answered with `status`; its response is `ctx.wbuf[from..]`.
#[inline]
pub fn answered(head: &Head<'_>, status: u16, from: usize, config: &Config, ctx: &mut Ctx) {
    if !matches!(config.access_log, AccessLog::Off) {
        answered_line(head, status, from, config, ctx);
    }
}

/// Log a request rejected as it was parsed (`data` starts with what arrived of it).
#[inline]
pub fn rejected(data: &[u8], status: u16, from: usize, config: &Config, ctx: &mut Ctx) {
    if !matches!(config.access_log, AccessLog::Off) {
        let first = &data[..data.len().min(MAX_UNPARSED)];
        let line = match memchr::memchr2(b'\r', b'\n', first) {
            Some(end) => &first[..end],
            None => first,
        };
        let request = match line.is_empty() {
            true => Request::Nothing,
            false => Request::Unparsed(line),
        };
        record(request, None, None, status, from, config, ctx);
    }
}

/// Log a request that timed out before its head arrived (answered 408).
#[inline]
pub fn timed_out(from: usize, config: &Config, ctx: &mut Ctx) {
    if !matches!(config.access_log, AccessLog::Off) {
        record(Request::Nothing, None, None, 408, from, config, ctx);
    }
}

#[inline(never)]
fn answered_line(head: &Head<'_>, status: u16, from: usize, config: &Config, ctx: &mut Ctx) {
    // One pass over the fields for both values; the length test skips most names.
    let (mut referer, mut user_agent) = (None, None);
    for field in head.fields() {
        match field.name.len() {
            7 if referer.is_none() && field.name.eq_ignore_ascii_case(b"referer") => {
                referer = Some(field.value)
            }
            10 if user_agent.is_none() && field.name.eq_ignore_ascii_case(b"user-agent") => {
                user_agent = Some(field.value)
            }
            _ => {}
        }
    }
    let request = Request::Parsed {
        method: head.method_bytes(),
        target: head.target().as_bytes(),
        version: head.version().as_str(),
    };
    record(request, referer, user_agent, status, from, config, ctx);
}

#[inline(never)]
fn record(
    request: Request<'_>,
    referer: Option<&[u8]>,
    user_agent: Option<&[u8]>,
    status: u16,
    from: usize,
    config: &Config,
    ctx: &mut Ctx,
) {
    let entry = Entry {
        peer: ctx.peer,
        request,
        status,
        body_bytes: match ctx.desk.later.last() {
            // Deferred: nothing is written yet, but its length is known.
            Some((at, later)) if *at == from && ctx.wbuf.len() == from => later.body_len() as usize,
            _ => ctx.log.body_len(&ctx.wbuf[from.min(ctx.wbuf.len())..]),
        },
        duration: Instant::now().saturating_duration_since(ctx.request_start),
        worker: 0,
        referer,
        user_agent,
    };
    ctx.log
        .record(entry, config, &ctx.date, ctx.now, &ctx.stats);
}
