//! Answering a request: the checks that need the whole head (Host, Expect), made as soon as
//! the head is complete and before any body is read ([`check_head`]); then, once the request
//! is complete, JSON validation, routing, the handler, and counting the result ([`dispatch`]).

use super::access;
use super::ctx::{Ctx, Shared};
use crate::config::JsonMode;
use crate::handler::{Request, Responder, Routed};
use crate::http::response::{self, ConnectionHeader};
use crate::http::{Expect, Head, Version};
use crate::json;

/// The methods the server answers, for `OPTIONS *`.
const SERVER_METHODS: &[u8] = b"GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS";

/// Check what the head alone decides. A head that fails is answered at once, with
/// `Connection: close`, and its body is never waited for; returns whether the head passed.
pub fn check_head(head: &Head<'_>, shared: &Shared, ctx: &mut Ctx) -> bool {
    let method = head.method_bytes();
    let head_only = method == b"HEAD";
    let status = if head.version() == Version::Http11 && head.host_count() != 1 {
        400
    } else if head.expect() == Expect::Other {
        417
    } else {
        return true;
    };
    let (from, date) = (ctx.wbuf.len(), ctx.date.get());
    response::write_error(
        &mut ctx.wbuf,
        status,
        date,
        ConnectionHeader::Close,
        head_only,
    );
    ctx.stats.request(method, status);
    access::answered(head, status, from, &shared.config, ctx);
    false
}

/// Route and answer a complete request by `shared`, count it and log it; returns whether the
/// connection stays open. `more`: another complete request follows in what has been received.
/// While draining, only the last one received is answered with `Connection: close`, so none
/// already here is lost.
pub fn dispatch(head: &Head<'_>, body: &[u8], more: bool, shared: &Shared, ctx: &mut Ctx) -> bool {
    let keep = head.keep_alive() && (!ctx.draining || more);
    let from = ctx.wbuf.len();
    let (status, keep) = respond(head, body, keep, shared, ctx);
    ctx.stats.request(head.method_bytes(), status);
    access::answered(head, status, from, &shared.config, ctx);
    keep
}

/// Answer a complete request into `ctx.wbuf` (or defer it, `ctx.desk.later`); returns the
/// status sent and whether the connection stays open (the handler may close it). Inlined: it is
/// `dispatch`'s body, split out only so that every way of answering reaches one count and
/// one log line.
#[inline(always)]
fn respond(
    head: &Head<'_>,
    body: &[u8],
    keep: bool,
    shared: &Shared,
    ctx: &mut Ctx,
) -> (u16, bool) {
    let method = head.method_bytes();
    let head_only = method == b"HEAD";
    let conn = match (keep, head.version()) {
        (false, _) => ConnectionHeader::Close,
        (true, Version::Http10) => ConnectionHeader::KeepAlive,
        (true, Version::Http11) => ConnectionHeader::None,
    };
    let req = Request { head, body };
    if shared.config.json == JsonMode::Validate && req.is_json() {
        if let Err(e) = check_json(body) {
            ctx.stats.json(false);
            let doc = serde_json::json!({"error": e.message, "line": e.line, "column": e.column});
            let text = doc.to_string();
            let mut res = Responder::new(&mut ctx.wbuf, &ctx.date, &mut ctx.desk, conn, head_only);
            res.send(
                400,
                &[("Content-Type", b"application/json")],
                text.as_bytes(),
            );
            return (400, keep);
        }
        ctx.stats.json(true);
    }
    let mut res = Responder::new(&mut ctx.wbuf, &ctx.date, &mut ctx.desk, conn, head_only);
    // The method first: a cheaper test that nearly every request fails at once.
    if method == b"OPTIONS" && head.is_asterisk() {
        // `OPTIONS *` (the parser allows `*` with nothing else) asks about the server as a
        // whole, not a resource (RFC 9110 §9.3.7): what it can do, and no content.
        res.send(200, &[("Allow", SERVER_METHODS)], b"");
        return (200, keep);
    }
    match shared.router.route(method, head.path_bytes()) {
        Routed::Handler(handler) => handler.handle(&req, &mut res),
        Routed::MethodNotAllowed(allow) => {
            let reason = b"Method Not Allowed\n";
            res.send(
                405,
                &[("Allow", allow.as_bytes()), ("Content-Type", b"text/plain")],
                reason,
            );
        }
    }
    // The handler may have closed it; `conn` says `Close` exactly when `keep` was false.
    let keep = !res.closes();
    match res.status() {
        Some(status) => (status, keep),
        None => {
            response::write_error(&mut ctx.wbuf, 500, ctx.date.get(), conn, head_only);
            (500, keep)
        }
    }
}

/// Why a JSON body was rejected, and where (1-based, as serde_json counts).
#[derive(Debug, PartialEq)]
struct JsonError {
    message: String,
    line: usize,
    column: usize,
}

/// Validate a JSON body: UTF-8 text that follows the JSON grammar (RFC 8259). Like the grammar,
/// it accepts what a typed parse may still refuse: numbers beyond f64, unpaired `\u` surrogate
/// escapes, and deep nesting.
///
/// [`json::is_valid`] decides, in about a third of serde_json's instructions. serde_json, whose
/// verdict it must match, only runs on an invalid body, to say why and where. Its fastest path
/// (`IgnoredAny`) skips over strings without checking that they are UTF-8, so the bytes are
/// checked first.
fn check_json(body: &[u8]) -> Result<(), JsonError> {
    if json::is_valid(body) {
        return Ok(());
    }
    let from_serde = |e: serde_json::Error| JsonError {
        message: e.to_string(),
        line: e.line(),
        column: e.column(),
    };
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str::<serde::de::IgnoredAny>(text)
            .map(drop)
            .map_err(from_serde),
        Err(bad) => {
            // Parsing into a `Value` does check strings, and reports the first problem
            // (a syntax error may come before the bad byte).
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(body) {
                return Err(from_serde(e));
            }
            // Unreachable by the JSON grammar (a non-ASCII byte outside a string is a syntax
            // error), but a rejection must never depend on that.
            let (line, column) = line_column(body, bad.valid_up_to());
            Err(JsonError {
                message: format!("invalid UTF-8 at line {line} column {column}"),
                line,
                column,
            })
        }
    }
}

/// The 1-based line and column of `bytes[offset]`, counting bytes as serde_json does.
fn line_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    (line, offset - line_start + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::tests::json_ish;

    #[test]
    fn line_column_counts_from_one() {
        let text = b"ab\ncd\n\nx";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 1), (1, 2));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 4), (2, 2));
        assert_eq!(line_column(text, 7), (4, 1));
    }

    #[test]
    fn json_must_be_utf8_even_inside_strings() {
        assert_eq!(check_json(br#"{"a": ["b", 1.5, null]}"#), Ok(()));
        assert_eq!(
            check_json("{\"caf\u{e9}\": \"\u{1F600}\"}".as_bytes()),
            Ok(())
        );
        for bad in [
            &b"{\"a\": \"\xff\"}"[..],
            b"{\"\xc3\": 1}",
            b"[\"\xed\xa0\x80\"]",
        ] {
            let e = check_json(bad).unwrap_err();
            assert_eq!(
                (e.line, e.column),
                (1, bad.iter().position(|&b| b >= 0x80).unwrap() + 1)
            );
            assert!(e.message.contains("invalid unicode code point"), "{e:?}");
        }
        let e = check_json(b"{\n  \"a\": \xff}").unwrap_err();
        assert_eq!((e.line, e.column), (2, 8), "{e:?}");
    }

    /// Does `body` parse into a `Value`? What the JSON grammar allows but a `Value` cannot
    /// hold (a number beyond f64 like `1E400`, an unpaired `\\ud800` escape, nesting past 128)
    /// is valid to `check_json`, so such cases are skipped rather than compared.
    fn value_parses(body: &[u8]) -> Result<bool, proptest::test_runner::TestCaseError> {
        const GRAMMATICAL: [&str; 4] = [
            "number out of range",
            "lone leading surrogate in hex escape",
            "unexpected end of hex escape",
            "recursion limit exceeded",
        ];
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(_) => Ok(true),
            Err(e) if GRAMMATICAL.iter().any(|m| e.to_string().starts_with(m)) => Err(
                proptest::test_runner::TestCaseError::reject("valid JSON a Value cannot hold"),
            ),
            Err(_) => Ok(false),
        }
    }

    proptest::proptest! {
        #[test]
        fn check_json_agrees_with_parsing_into_a_value(body in json_ish()) {
            proptest::prop_assert_eq!(check_json(&body).is_ok(), value_parses(&body)?);
        }

        #[test]
        fn valid_json_with_one_byte_changed_is_judged_like_a_value_parse(
            doc in proptest::collection::vec(("[a-z\u{e9}]{0,6}", proptest::num::i32::ANY), 0..6),
            at in proptest::prelude::any::<proptest::sample::Index>(),
            byte in proptest::prelude::any::<u8>(),
        ) {
            let mut body = serde_json::to_vec(&doc).unwrap();
            proptest::prop_assert_eq!(check_json(&body), Ok(()));
            let i = at.index(body.len());
            body[i] = byte;
            proptest::prop_assert_eq!(check_json(&body).is_ok(), value_parses(&body)?);
        }
    }
}
