//! Probes of field syntax and line endings (bare LF, bare CR, obs-fold, NUL, control bytes),
//! of limits, of `Expect`, of heads that are invalid before their body arrives, and of
//! pipelining.
//!
//! Among them: a head that is already invalid is answered at once, without waiting for its
//! body; an HTTP/1.0 client never gets `100 Continue`.

use super::probe::{close, either, open, Probe};

#[rustfmt::skip]
pub const PROBES: &[Probe] = &[
    // Line endings and field syntax.
    close("all_bare_lf", b"GET / HTTP/1.1\nHost: x\n\n", "400"),
    close("field_bare_lf", b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", "400"),
    close("end_of_head_bare_lf", b"GET / HTTP/1.1\r\nHost: x\r\n\n", "400"),
    close("end_of_head_lf_cr_lf", b"GET / HTTP/1.1\r\nHost: x\n\r\n", "400"),
    close("field_bare_cr_inside", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", "400"),
    close("field_cr_cr_lf", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\r\n\r\n", "400"),
    close("end_of_head_bare_cr", b"GET / HTTP/1.1\r\nHost: x\r\n\r\r\n", "400"),
    close("obs_fold", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", "400"),
    close("obs_fold_tab", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n\tb\r\n\r\n", "400"),
    close("space_before_first_field", b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", "400"),
    close("whitespace_only_line", b"GET / HTTP/1.1\r\nHost: x\r\n \r\n\r\n", "400"),
    close("field_nul_in_value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n", "400"),
    close("field_nul_in_name", b"GET / HTTP/1.1\r\nHost: x\r\nX\0Y: a\r\n\r\n", "400"),
    close("field_del_in_value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n\r\n", "400"),
    close("field_escape_in_value", b"GET / HTTP/1.1\r\nHost: x\r\nX: \x1b[31m\r\n\r\n", "400"),
    close("field_no_colon", b"GET / HTTP/1.1\r\nHost: x\r\nX y\r\n\r\n", "400"),
    close("field_empty_name", b"GET / HTTP/1.1\r\nHost: x\r\n: y\r\n\r\n", "400"),
    close("field_name_with_space", b"GET / HTTP/1.1\r\nHost: x\r\nX Y: z\r\n\r\n", "400"),
    close("field_name_non_ascii", b"GET / HTTP/1.1\r\nHost: x\r\nX\xc9: z\r\n\r\n", "400"),
    close("field_name_separator", b"GET / HTTP/1.1\r\nHost: x\r\nX(Y): z\r\n\r\n", "400"),
    open("field_value_obs_text", b"GET / HTTP/1.1\r\nHost: x\r\nX: caf\xc3\xa9 \xff\r\n\r\n", "200"),
    open("field_value_tab_inside", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\tb\r\n\r\n", "200"),
    open("field_value_empty", b"GET / HTTP/1.1\r\nHost: x\r\nX:\r\n\r\n", "200"),
    open("field_colon_in_value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a:b: c\r\n\r\n", "200"),
    // Limits (README: 16 KiB and 100 fields per head).
    close("too_many_fields", TOO_MANY_FIELDS, "431"),
    close("head_too_large", HUGE_FIELD, "431"),
    // Expect.
    // RFC 9110 §10.1.1: an unknown expectation MAY get 417, or be ignored.
    either("expect_unknown", b"GET / HTTP/1.1\r\nHost: x\r\nExpect: bogus\r\n\r\n", "200|417"),
    open("expect_100_waits", b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", "100 200").then(b"hello"),
    open("expect_100_case_insensitive", b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n", "100 200").then(b"hello"),
    open("expect_100_chunked", b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n", "100 200").then(b"5\r\nhello\r\n0\r\n\r\n"),
    // A body that is too large is refused before the client sends it: no 100 first.
    close("expect_100_past_max_body", b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2000000\r\n\r\n", "413"),
    // RFC 9110 §10.1.1: a 1.0 client never gets 100 (ignore the expectation).
    close("expect_100_http10", b"POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", "200").then(b"hello"),
    open("expect_100_http10_keep_alive", b"POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", "200").then(b"hello"),
    // A head that is invalid already is answered at once, before any body.
    close("no_host_with_length", b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", "400"),
    close("no_host_with_chunked", b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "400"),
    close("two_hosts_with_length", b"POST /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 5\r\n\r\n", "400"),
    close("expect_unknown_with_length", b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: bogus\r\nContent-Length: 5\r\n\r\n", "417"),
    close("length_past_max_body_no_body", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", "413"),
    // Pipelining: each request framed alone; nothing after an error or a close is answered.
    open("pipeline_two_gets", b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n", "200 403"),
    open("pipeline_post_then_get", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: x\r\n\r\n", "200 200"),
    open("pipeline_chunked_then_get", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", "200 200"),
    close("pipeline_good_then_bad", b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/9.9\r\nHost: x\r\n\r\n", "200 505"),
    close("pipeline_bad_then_smuggled", b"GET / HTTP/1.1\r\nHost: x\r\nX: \0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
    close("pipeline_close_then_smuggled", b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", "200"),
    close("pipeline_http10_then_smuggled", b"GET / HTTP/1.0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", "200"),
    close("pipeline_413_then_smuggled", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", "413"),
];

/// A head with 101 fields: one past the limit.
const TOO_MANY_FIELDS: &[u8] = &repeat_field::<{ 18 + 101 * 6 + 2 }>(101, b"X: 1\r\n");

/// A head with one 17,000-byte field: past the 16 KiB head limit.
const HUGE_FIELD: &[u8] = &repeat_field::<{ 18 + 17000 + 2 }>(17000, b"a");

/// `GET / HTTP/1.1` CRLF, then `piece` `count` times, then CRLF, in `N` bytes.
const fn repeat_field<const N: usize>(count: usize, piece: &[u8]) -> [u8; N] {
    let start = b"GET / HTTP/1.1\r\nX:";
    let mut out = [0u8; N];
    let mut i = 0;
    while i < start.len() {
        out[i] = start[i];
        i += 1;
    }
    let mut n = 0;
    while n < count {
        let mut j = 0;
        while j < piece.len() {
            out[i] = piece[j];
            i += 1;
            j += 1;
        }
        n += 1;
    }
    out[i] = b'\r';
    out[i + 1] = b'\n';
    out
}
