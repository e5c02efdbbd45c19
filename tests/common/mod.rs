//! Shared helpers for the integration tests: start the real `cerberus` binary on loopback,
//! talk raw HTTP/1.1 to it over TCP, and compare responses byte for byte. Every test file that
//! starts the server includes this module with `mod common;`.
//!
//! - [`Server`] starts the binary with a temporary config, waits (bounded) for its
//!   `listening on ...` line, and kills it when dropped. It can reload, send signals and wait
//!   for exit; [`run_bin`] runs the binary to completion ([`server`]).
//! - [`Client`] writes raw bytes and reads whole responses ([`Response`]) framed by
//!   `Content-Length`, keeping any pipelined bytes that follow for the next read ([`client`]).
//! - [`launch`] starts any process with its stderr drained, or runs one to completion, always
//!   bounded in time.
//! - [`normalize_date`] replaces the `Date` value (after checking it is an IMF-fixdate) with
//!   [`DATE`], so a response can be compared with a literal.
//! - [`tool`] finds an outside tool; [`skip`] is how every check without its tool says so
//!   (`SKIPPED: ...` on the terminal), and fails instead when `CI=true`.
//! - [`metrics_helpers`] parses the Prometheus exposition; [`metrics_tools`] runs promtool and
//!   a real Prometheus.
//!
//! Every socket read and every wait has a timeout, so a server that hangs fails a test instead
//! of hanging it.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

pub mod client;
pub mod launch;
pub mod metrics_helpers;
pub mod metrics_tools;
pub mod server;

use std::io::Write;
use std::path::PathBuf;

// The helpers by their short names (`common::Server`); each test file uses a few of them.
#[allow(unused_imports)]
pub use client::{find, roundtrip, roundtrip_to_eof, roundtrip_until_close};
#[allow(unused_imports)]
pub use client::{Client, Response, READ_TIMEOUT};
#[allow(unused_imports)]
pub use server::{run_bin, Builder, Server, TempDir, BIN};

/// What [`normalize_date`] puts in place of the `Date` value.
pub const DATE: &str = "<DATE>";

/// A check cannot run because `what` is missing; `how` says how to get it. With `CI=true`
/// this panics: CI installs every tool (`.ci/run`), and a skipped check there would hide a
/// regression. Elsewhere it prints `SKIPPED: <what> (<how>)` and the caller returns. The line
/// is written to stderr directly, not with `eprintln!`, which the test harness captures (and
/// hides) for a test that passes: a local run shows what did not run.
pub fn skip(what: &str, how: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} is missing and CI=true: {how}");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what} ({how})");
}

/// The path of the outside tool `name` on `PATH`, which Debian's `package` installs; when it
/// is missing, [`skip`] says so (or fails under `CI=true`) and this returns `None`.
pub fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        skip(
            name,
            &format!("apt-get install {package}; .ci/run installs it"),
        );
    }
    found
}

/// The bytes as text, with the value of every `Date` header replaced by [`DATE`]. Panics if a
/// `Date` value is not an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn normalize_date(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw).into_owned();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("\r\nDate: ") {
        let start = i + "\r\nDate: ".len();
        out.push_str(&rest[..start]);
        let end = rest[start..].find("\r\n").map_or(rest.len(), |e| start + e);
        let value = &rest[start..end];
        assert!(
            is_imf_fixdate(value),
            "Date {value:?} is not an IMF-fixdate"
        );
        out.push_str(DATE);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Does `s` look like `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7)?
pub fn is_imf_fixdate(s: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 29
        && DAYS.contains(&&s[0..3])
        && &s[3..5] == ", "
        && digits(5..7)
        && b[7] == b' '
        && MONTHS.contains(&&s[8..11])
        && b[11] == b' '
        && digits(12..16)
        && b[16] == b' '
        && digits(17..19)
        && b[19] == b':'
        && digits(20..22)
        && b[22] == b':'
        && digits(23..25)
        && &s[25..] == " GMT"
}

/// The exact bytes (Date normalised) of the server's error response for `status`.
pub fn error_response(status: u16, reason: &str) -> String {
    format!(
        "HTTP/1.1 {status} {reason}\r\nServer: cerberus\r\nDate: {DATE}\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reason}\n",
        reason.len() + 1
    )
}

/// The exact bytes (Date normalised) of the default response, with this `Connection` line
/// (e.g. `""`, `"Connection: close\r\n"`).
pub fn default_response(connection: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nServer: cerberus\r\nDate: {DATE}\r\nContent-Type: text/plain\r\n\
         Content-Length: 21\r\n{connection}\r\nHello from Cerberus!\n"
    )
}

/// Is IPv6 loopback usable on this machine?
pub fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}
