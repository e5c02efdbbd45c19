//! One access-log line, in either format: [`Entry`] says what is known about an answered
//! request, and [`write`] appends its line to a buffer. Pure code, no I/O and no allocation
//! beyond the buffer's growth.
//!
//! # `combined`
//!
//! nginx's default, so that every parser written for it works unchanged:
//!
//! ```text
//! 127.0.0.1 - - [06/Nov/1994:08:49:37 +0000] "GET /a?b HTTP/1.1" 200 21 "-" "curl/8.5.0"
//! ```
//!
//! As nginx does (`escape=default`), `"`, `\` and bytes below 0x20 or above 0x7e are written
//! `\xHH` (so a quote is `\x22`), and a missing value is `-`. The time is UTC (`+0000`): the
//! server keeps no time zone. A request line that did not parse is logged as it arrived (its
//! first line, escaped), and a connection that timed out before sending one is logged as `-`.
//!
//! # `json`
//!
//! One object per line, always these fields in this order:
//!
//! | field | value |
//! |---|---|
//! | `time` | when the request was answered, RFC 3339 UTC to the second (`1994-11-06T08:49:37Z`) |
//! | `remote_addr` | the client's IP address (IPv4-mapped IPv6 addresses as IPv4) |
//! | `method` | e.g. `"GET"`; `null` when the request line did not parse |
//! | `target` | the request target as sent; the raw first line when it did not parse; `null` when nothing arrived |
//! | `version` | `"HTTP/1.1"` or `"HTTP/1.0"`; `null` when the request line did not parse |
//! | `status` | the status code answered |
//! | `body_bytes_sent` | bytes of response body (0 for HEAD), as nginx's `$body_bytes_sent` |
//! | `duration_us` | microseconds from the request's first byte read to its response queued |
//! | `worker` | the worker that answered |
//! | `user_agent` | the `User-Agent` value, or `null` |
//!
//! Strings are valid JSON: `"`, `\` and control characters are escaped, and bytes that are not
//! UTF-8 become U+FFFD.

use std::io::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use crate::config::AccessLogFormat;
use crate::http::date::{DateCache, DATE_LEN};

/// What one line says about one answered request.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The client's address.
    pub peer: IpAddr,
    /// The request, as far as it was understood.
    pub request: Request<'a>,
    /// The status answered.
    pub status: u16,
    /// Bytes of response body.
    pub body_bytes: usize,
    /// From the request's first byte read to its response queued.
    pub duration: Duration,
    /// The worker that answered.
    pub worker: usize,
    /// The `Referer` value (combined only).
    pub referer: Option<&'a [u8]>,
    /// The `User-Agent` value.
    pub user_agent: Option<&'a [u8]>,
}

/// The request a line is about, as far as it was understood.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// A request line that parsed.
    Parsed {
        /// The method.
        method: &'a [u8],
        /// The target as sent.
        target: &'a [u8],
        /// `HTTP/1.1` or `HTTP/1.0`.
        version: &'static str,
    },
    /// The first line of bytes that did not parse, as they arrived.
    Unparsed(&'a [u8]),
    /// Nothing usable arrived (the header timeout fired first).
    Nothing,
}

/// The time of a line, rendered once a second from the worker's `Date` cache (which already
/// reads the clock once a second), in both formats' shapes.
#[derive(Debug, Clone)]
pub struct Stamp {
    /// The second the renderings stand for.
    second: u64,
    /// `06/Nov/1994:08:49:37 +0000`
    local: [u8; 26],
    /// `1994-11-06T08:49:37Z`
    iso: [u8; 20],
}

/// Bytes reserved before a line: a browser's line fits.
const LINE_GUESS: usize = 384;

/// Month names as the `Date` header spells them, in order.
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

impl Stamp {
    /// Renderings of nothing yet: the first [`refresh`](Self::refresh) fills them.
    pub fn new() -> Stamp {
        Stamp {
            second: u64::MAX,
            local: [b'-'; 26],
            iso: [b'-'; 20],
        }
    }

    /// Follow the `Date` cache to its current second.
    #[inline]
    pub fn refresh(&mut self, date: &DateCache) {
        if date.second() != self.second {
            self.second = date.second();
            self.render(date.get());
        }
    }

    /// Rearrange an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into both shapes.
    fn render(&mut self, imf: &[u8; DATE_LEN]) {
        let (day, month, year, time) = (&imf[5..7], &imf[8..11], &imf[12..16], &imf[17..25]);
        let number = MONTHS.iter().position(|m| &m[..] == month).unwrap_or(0) + 1;
        let digits = [b'0' + (number / 10) as u8, b'0' + (number % 10) as u8];
        let mut local = &mut self.local[..];
        let mut iso = &mut self.iso[..];
        // Writing into a slice of exactly the right length cannot fail.
        let _ = local.write_all(&[day, b"/", month, b"/", year, b":", time, b" +0000"].concat());
        let _ = iso.write_all(&[year, b"-", &digits, b"-", day, b"T", time, b"Z"].concat());
    }
}

impl Default for Stamp {
    fn default() -> Self {
        Self::new()
    }
}

/// Append the line for `entry` (ending in a newline) in `format`, timed by `stamp`.
pub fn write(
    out: &mut Vec<u8>,
    format: AccessLogFormat,
    entry: &Entry<'_>,
    stamp: &Stamp,
    peer: &mut PeerText,
) {
    // One capacity check for a typical line, instead of a growth at every piece.
    out.reserve(LINE_GUESS);
    let peer = peer.get(entry.peer);
    match format {
        AccessLogFormat::Combined => combined(out, entry, stamp, peer),
        AccessLogFormat::Json => json(out, entry, stamp, peer),
    }
}

/// The last client address rendered, kept because a keep-alive connection's requests (and a
/// busy client's connections) repeat it.
#[derive(Debug, Clone, Default)]
pub struct PeerText {
    /// The address `text` renders.
    ip: Option<IpAddr>,
    /// Its rendering, as nginx's `$remote_addr` shows it.
    text: Vec<u8>,
}

impl PeerText {
    /// `ip`, rendered.
    #[inline]
    fn get(&mut self, ip: IpAddr) -> &[u8] {
        if self.ip != Some(ip) {
            self.ip = Some(ip);
            self.text.clear();
            write_ip(&mut self.text, ip);
        }
        &self.text
    }
}

fn combined(out: &mut Vec<u8>, e: &Entry<'_>, stamp: &Stamp, peer: &[u8]) {
    out.extend_from_slice(peer);
    out.extend_from_slice(b" - - [");
    out.extend_from_slice(&stamp.local);
    out.extend_from_slice(b"] \"");
    match e.request {
        Request::Parsed {
            method,
            target,
            version,
        } => {
            // A method is token characters, none of which is ever escaped.
            out.extend_from_slice(method);
            out.push(b' ');
            escape_visible(out, target, b"\\x22", b"\\x5C");
            out.push(b' ');
            out.extend_from_slice(version.as_bytes());
        }
        Request::Unparsed(line) => escape_nginx(out, line),
        Request::Nothing => out.push(b'-'),
    }
    out.extend_from_slice(b"\" ");
    out.extend_from_slice(itoa::Buffer::new().format(e.status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(itoa::Buffer::new().format(e.body_bytes).as_bytes());
    out.extend_from_slice(b" \"");
    escape_nginx(out, e.referer.unwrap_or(b"-"));
    out.extend_from_slice(b"\" \"");
    escape_nginx(out, e.user_agent.unwrap_or(b"-"));
    out.extend_from_slice(b"\"\n");
}

fn json(out: &mut Vec<u8>, e: &Entry<'_>, stamp: &Stamp, peer: &[u8]) {
    out.extend_from_slice(b"{\"time\":\"");
    out.extend_from_slice(&stamp.iso);
    out.extend_from_slice(b"\",\"remote_addr\":\"");
    out.extend_from_slice(peer);
    match e.request {
        Request::Parsed {
            method,
            target,
            version,
        } => {
            // Token characters and a fixed version need no escaping; a target is visible
            // ASCII, where only `"` and `\` do.
            out.extend_from_slice(b"\",\"method\":\"");
            out.extend_from_slice(method);
            out.extend_from_slice(b"\",\"target\":\"");
            escape_visible(out, target, b"\\\"", b"\\\\");
            out.extend_from_slice(b"\",\"version\":\"");
            out.extend_from_slice(version.as_bytes());
            out.push(b'"');
        }
        Request::Unparsed(line) => {
            out.extend_from_slice(b"\",\"method\":null,\"target\":");
            json_string(out, Some(line));
            out.extend_from_slice(b",\"version\":null");
        }
        Request::Nothing => {
            out.extend_from_slice(b"\",\"method\":null,\"target\":null,\"version\":null")
        }
    }
    out.extend_from_slice(b",\"status\":");
    out.extend_from_slice(itoa::Buffer::new().format(e.status).as_bytes());
    out.extend_from_slice(b",\"body_bytes_sent\":");
    out.extend_from_slice(itoa::Buffer::new().format(e.body_bytes).as_bytes());
    out.extend_from_slice(b",\"duration_us\":");
    let micros = u64::try_from(e.duration.as_micros()).unwrap_or(u64::MAX);
    out.extend_from_slice(itoa::Buffer::new().format(micros).as_bytes());
    out.extend_from_slice(b",\"worker\":");
    out.extend_from_slice(itoa::Buffer::new().format(e.worker).as_bytes());
    out.extend_from_slice(b",\"user_agent\":");
    json_string(out, e.user_agent);
    out.extend_from_slice(b"}\n");
}

/// Append visible ASCII (a parsed target), where only `"` and `\` need escaping: as `quote`
/// and `backslash`.
fn escape_visible(out: &mut Vec<u8>, mut value: &[u8], quote: &[u8], backslash: &[u8]) {
    // Targets are short: a plain scan beats setting up memchr2.
    while let Some(i) = value.iter().position(|&b| b == b'"' || b == b'\\') {
        out.extend_from_slice(&value[..i]);
        out.extend_from_slice(if value[i] == b'"' { quote } else { backslash });
        value = &value[i + 1..];
    }
    out.extend_from_slice(value);
}

/// The address as nginx's `$remote_addr` shows it.
fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            let mut digits = itoa::Buffer::new();
            out.extend_from_slice(digits.format(a).as_bytes());
            for octet in [b, c, d] {
                out.push(b'.');
                out.extend_from_slice(digits.format(octet).as_bytes());
            }
        }
        // Writing into a Vec cannot fail.
        IpAddr::V6(v6) => drop(write!(out, "{v6}")),
    }
}

/// Bytes nginx escapes in a logged value: control characters, `"`, `\`, DEL and non-ASCII.
const fn nginx_escapes() -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b < 0x20 || b == b'"' as usize || b == b'\\' as usize || b > 0x7e;
        b += 1;
    }
    table
}
const NGINX_ESCAPES: [bool; 256] = nginx_escapes();

/// Bytes a JSON string cannot hold as they are (controls, `"`, `\`) or that need a UTF-8
/// check (non-ASCII); DEL is escaped too, so a line never holds a control character.
const fn json_escapes() -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b < 0x20 || b == b'"' as usize || b == b'\\' as usize || b >= 0x7f;
        b += 1;
    }
    table
}
const JSON_ESCAPES: [bool; 256] = json_escapes();

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Append `value` escaped as nginx escapes it (`\xHH`). Runs of plain bytes are copied whole.
fn escape_nginx(out: &mut Vec<u8>, mut value: &[u8]) {
    while let Some(i) = value.iter().position(|&b| NGINX_ESCAPES[usize::from(b)]) {
        out.extend_from_slice(&value[..i]);
        let b = value[i];
        out.extend_from_slice(&[
            b'\\',
            b'x',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 15)],
        ]);
        value = &value[i + 1..];
    }
    out.extend_from_slice(value);
}

/// Append `value` as a JSON string, or `null`.
fn json_string(out: &mut Vec<u8>, value: Option<&[u8]>) {
    let Some(mut value) = value else {
        out.extend_from_slice(b"null");
        return;
    };
    out.push(b'"');
    while let Some(i) = value.iter().position(|&b| JSON_ESCAPES[usize::from(b)]) {
        out.extend_from_slice(&value[..i]);
        let b = value[i];
        let used = match b {
            b'"' => push(out, b"\\\""),
            b'\\' => push(out, b"\\\\"),
            b'\n' => push(out, b"\\n"),
            b'\r' => push(out, b"\\r"),
            b'\t' => push(out, b"\\t"),
            0..=0x7f => push(
                out,
                &[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 15)],
                ],
            ),
            _ => utf8_run(out, &value[i..]),
        };
        value = &value[i + used..];
    }
    out.extend_from_slice(value);
    out.push(b'"');
}

/// Append `bytes` and say one input byte was used.
fn push(out: &mut Vec<u8>, bytes: &[u8]) -> usize {
    out.extend_from_slice(bytes);
    1
}

/// At a non-ASCII byte: append the valid UTF-8 sequence that starts here, or U+FFFD for an
/// invalid one (as `String::from_utf8_lossy` would); returns the bytes used.
fn utf8_run(out: &mut Vec<u8>, rest: &[u8]) -> usize {
    let chunk = rest.utf8_chunks().next();
    match chunk.as_ref().and_then(|c| c.valid().chars().next()) {
        Some(c) => {
            let mut bytes = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut bytes).as_bytes());
            c.len_utf8()
        }
        None => {
            out.extend_from_slice("\u{FFFD}".as_bytes());
            chunk.map_or(1, |c| c.invalid().len().max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::{SystemTime, UNIX_EPOCH};

    /// 1994-11-06T08:49:37Z, the RFC 9110 example date.
    fn stamp() -> Stamp {
        let mut date = DateCache::new();
        date.update(UNIX_EPOCH + Duration::from_secs(784_111_777));
        let mut stamp = Stamp::new();
        stamp.refresh(&date);
        stamp
    }

    fn entry(request: Request<'static>) -> Entry<'static> {
        Entry {
            peer: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 17)),
            request,
            status: 200,
            body_bytes: 21,
            duration: Duration::from_micros(1234),
            worker: 3,
            referer: None,
            user_agent: Some(b"curl/8.5.0"),
        }
    }

    const GET: Request<'static> = Request::Parsed {
        method: b"GET",
        target: b"/a?b=1",
        version: "HTTP/1.1",
    };

    fn line(format: AccessLogFormat, e: &Entry<'_>) -> String {
        let mut out = Vec::new();
        write(&mut out, format, e, &stamp(), &mut PeerText::default());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn combined_is_nginx_byte_for_byte() {
        assert_eq!(
            line(AccessLogFormat::Combined, &entry(GET)),
            "192.0.2.17 - - [06/Nov/1994:08:49:37 +0000] \"GET /a?b=1 HTTP/1.1\" 200 21 \"-\" \
             \"curl/8.5.0\"\n"
        );
        let mut e = entry(Request::Nothing);
        (e.status, e.body_bytes, e.user_agent) = (408, 0, None);
        e.peer = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(
            line(AccessLogFormat::Combined, &e),
            "::1 - - [06/Nov/1994:08:49:37 +0000] \"-\" 408 0 \"-\" \"-\"\n"
        );
    }

    #[test]
    fn combined_escapes_as_nginx_does() {
        let mut e = entry(Request::Unparsed(b"\x16\x03\x01 \"q\"\\\x7f\xc3\xa9"));
        e.referer = Some(b"http://r/?a=\"b\"");
        e.status = 400;
        let text = line(AccessLogFormat::Combined, &e);
        assert!(
            text.contains(
                "\"\\x16\\x03\\x01 \\x22q\\x22\\x5C\\x7F\\xC3\\xA9\" 400 21 \"http://r/?a=\\x22b\\x22\""
            ),
            "{text}"
        );
        assert_eq!(text.matches('\n').count(), 1);
    }

    #[test]
    fn json_has_the_documented_fields_in_order() {
        let text = line(AccessLogFormat::Json, &entry(GET));
        assert_eq!(
            text,
            "{\"time\":\"1994-11-06T08:49:37Z\",\"remote_addr\":\"192.0.2.17\",\"method\":\"GET\",\
             \"target\":\"/a?b=1\",\"version\":\"HTTP/1.1\",\"status\":200,\"body_bytes_sent\":21,\
             \"duration_us\":1234,\"worker\":3,\"user_agent\":\"curl/8.5.0\"}\n"
        );
        let mut e = entry(Request::Nothing);
        e.user_agent = None;
        e.peer = "::ffff:10.1.2.3".parse().unwrap();
        let v: serde_json::Value = serde_json::from_str(&line(AccessLogFormat::Json, &e)).unwrap();
        assert_eq!(v["remote_addr"], "10.1.2.3");
        for null in ["method", "target", "version", "user_agent"] {
            assert!(v[null].is_null(), "{null} in {v}");
        }
    }

    #[test]
    fn json_strings_are_valid_json_whatever_the_bytes() {
        let raw: &[u8] = b"a\"b\\c\n\r\t\x01\x7f caf\xc3\xa9 \xff\xfe end \xe2\x82";
        let mut e = entry(Request::Unparsed(raw));
        e.user_agent = Some(raw);
        let text = line(AccessLogFormat::Json, &e);
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let expected = String::from_utf8_lossy(raw).into_owned();
        assert_eq!(v["target"], expected.as_str());
        assert_eq!(v["user_agent"], expected.as_str());
        assert!(v["method"].is_null() && v["version"].is_null());
    }

    #[test]
    fn the_stamp_follows_the_date_cache_every_second() {
        let mut date = DateCache::new();
        let mut stamp = Stamp::new();
        for (secs, local, iso) in [
            (0, "01/Jan/1970:00:00:00 +0000", "1970-01-01T00:00:00Z"),
            (
                951_782_400,
                "29/Feb/2000:00:00:00 +0000",
                "2000-02-29T00:00:00Z",
            ),
            (
                1_735_689_599,
                "31/Dec/2024:23:59:59 +0000",
                "2024-12-31T23:59:59Z",
            ),
        ] {
            date.update(UNIX_EPOCH + Duration::from_secs(secs));
            stamp.refresh(&date);
            assert_eq!(std::str::from_utf8(&stamp.local).unwrap(), local);
            assert_eq!(std::str::from_utf8(&stamp.iso).unwrap(), iso);
        }
        // And the real clock renders in the same shapes.
        date.update(SystemTime::now());
        stamp.refresh(&date);
        assert_eq!(
            (stamp.iso[4], stamp.iso[10], stamp.iso[19]),
            (b'-', b'T', b'Z')
        );
    }
}
