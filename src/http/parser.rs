//! The request-head parser: bytes in, [`Status`] out. No I/O and no allocation.
//!
//! The parser works line by line. A complete line is validated byte by byte and its meaning
//! (framing, `Connection`, `Host`, `Expect`) is applied at once, so an invalid prefix is reported
//! as an error as soon as it is seen, not when the head ends. An incomplete line is validated as
//! far as it goes, and the parser remembers where it starts: the next call, with more bytes,
//! resumes there. Parsing the input whole or split anywhere gives the same result.
//!
//! Incomplete data is not considered invalid: it is [`Status::Partial`]. Data past a limit is
//! never looked at.

use super::error::ParseError;
use super::scan::{is_ows, target_end, token_end, trim_ows, value_end};

/// Longest request line we accept, CRLF included; beyond it the answer is 414.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Largest head (leading empty lines, request line, fields and the final CRLF); beyond it, 431.
/// Small enough that every offset fits in a `u16`.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header fields in one head; beyond it, 431. Browsers send 10 to 20.
pub const MAX_HEADERS: usize = 100;

/// The HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
}

impl Version {
    /// The version as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// How the request body is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: neither `Content-Length` nor `Transfer-Encoding`, or `Content-Length: 0`.
    None,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked`; decode with [`ChunkedDecoder`](super::ChunkedDecoder).
    Chunked,
}

/// What the `Expect` header asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No `Expect` header.
    None,
    /// `Expect: 100-continue`.
    Continue,
    /// Some other expectation, which a server answers with 417.
    Other,
}

/// The result of one call to [`RequestParser::parse`].
#[derive(Debug)]
pub enum Status<'a> {
    /// A whole head, and how many bytes of the buffer it used (the body starts there).
    Complete(Head<'a>, usize),
    /// Valid so far; call again with more bytes.
    Partial,
    /// The request is invalid; [`ParseError::status`] says how to answer.
    Error(ParseError),
}

/// A byte range of the buffer. `u16` is enough because nothing past [`MAX_HEAD`] is parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Span {
    start: u16,
    end: u16,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u16,
            end: end as u16,
        }
    }

    fn of(self, buf: &[u8]) -> &[u8] {
        &buf[self.start as usize..self.end as usize]
    }
}

/// Where the parser is within a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the request line (possibly among leading empty lines).
    RequestLine,
    /// Among the header fields.
    Fields,
    /// A head was returned; the next call starts a new request.
    Done,
}

/// What the `Transfer-Encoding` fields said so far.
#[derive(Debug, Clone, Copy, Default)]
struct Codings {
    /// A `Transfer-Encoding` field was seen.
    present: bool,
    /// `chunked` was seen (and so must be the last coding).
    chunked: bool,
    /// The last coding seen was `chunked`.
    last_chunked: bool,
    /// A coding other than `chunked` was seen: we decode none of them.
    other: bool,
}

/// An incremental HTTP/1.1 request-head parser.
///
/// Call [`parse`](Self::parse) with every byte received so far, starting at the first byte of the
/// request. After [`Status::Complete`], the next call starts a new request: pass the buffer from
/// the `consumed` offset on. The parser is about 450 bytes; a server keeps one per worker, or one
/// per connection only while a head is arriving.
#[derive(Debug, Clone)]
pub struct RequestParser {
    /// Start of the first line not yet parsed; the next call resumes there.
    pos: usize,
    phase: Phase,
    method: Span,
    target: Span,
    /// Offset of the `?` in the target, if any.
    query: Option<u16>,
    version: Version,
    /// Name and value spans of each field, in received order; the first `count` are valid.
    fields: [(Span, Span); MAX_HEADERS],
    count: usize,
    content_length: Option<u64>,
    codings: Codings,
    conn_close: bool,
    conn_keep_alive: bool,
    hosts: u8,
    expect: Expect,
    content_type: Option<Span>,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestParser {
    /// A parser waiting for the first byte of a request.
    pub fn new() -> RequestParser {
        RequestParser {
            pos: 0,
            phase: Phase::RequestLine,
            method: Span::default(),
            target: Span::default(),
            query: None,
            version: Version::Http11,
            fields: [(Span::default(), Span::default()); MAX_HEADERS],
            count: 0,
            content_length: None,
            codings: Codings::default(),
            conn_close: false,
            conn_keep_alive: false,
            hosts: 0,
            expect: Expect::None,
            content_type: None,
        }
    }

    /// Forget any partial head; the next call starts a new request.
    pub fn reset(&mut self) {
        // The field array is overwritten as fields arrive; only `count` needs clearing.
        self.pos = 0;
        self.phase = Phase::RequestLine;
        self.query = None;
        self.count = 0;
        self.content_length = None;
        self.codings = Codings::default();
        self.conn_close = false;
        self.conn_keep_alive = false;
        self.hosts = 0;
        self.expect = Expect::None;
        self.content_type = None;
    }

    /// Parse the bytes received so far. `buf` must start where the request starts, and hold at
    /// least the bytes passed to the previous call (if that call returned `Partial`).
    pub fn parse<'a>(&'a mut self, buf: &'a [u8]) -> Status<'a> {
        if self.phase == Phase::Done {
            self.reset();
        }
        // Never look past the head limit.
        let b = &buf[..buf.len().min(MAX_HEAD)];
        match self.advance(b) {
            Ok(Some(consumed)) => {
                self.phase = Phase::Done;
                Status::Complete(Head { buf, p: self }, consumed)
            }
            Ok(None) if buf.len() >= MAX_HEAD => Status::Error(ParseError::HeadTooLarge),
            Ok(None) => Status::Partial,
            Err(e) => Status::Error(e),
        }
    }

    /// Parse lines from `self.pos`. `Ok(Some(end))` is a complete head ending at `end`.
    fn advance(&mut self, b: &[u8]) -> Result<Option<usize>, ParseError> {
        if self.phase == Phase::RequestLine {
            match self.request_line(b)? {
                Some(next) => {
                    self.pos = next;
                    self.phase = Phase::Fields;
                }
                None => return Ok(None),
            }
        }
        loop {
            match self.field_line(b)? {
                Line::More(next) => self.pos = next,
                Line::End(end) => {
                    self.finish()?;
                    return Ok(Some(end));
                }
                Line::Partial => return Ok(None),
            }
        }
    }

    /// Skip leading empty lines (RFC 9112 §2.2), then parse `method SP target SP version CRLF`.
    fn request_line(&mut self, b: &[u8]) -> Result<Option<usize>, ParseError> {
        let mut i = self.pos;
        loop {
            match b.get(i) {
                Some(b'\r') => match b.get(i + 1) {
                    Some(b'\n') => i += 2,
                    Some(_) => return Err(ParseError::BareCr),
                    None => return Ok(None),
                },
                Some(b'\n') => return Err(ParseError::BareLf),
                Some(_) => break,
                None => {
                    self.pos = i;
                    return Ok(None);
                }
            }
        }
        self.pos = i;
        let start = i;
        let line_limit = (start + MAX_REQUEST_LINE).min(b.len());
        let b = &b[..line_limit];
        let too_long = |b: &[u8]| b.len() == start + MAX_REQUEST_LINE;

        let m_end = match self.method_end(b, start)? {
            Some(end) => end,
            None if too_long(b) => return Err(ParseError::RequestLineTooLong),
            None => return Ok(None),
        };
        self.method = Span::new(start, m_end);

        let t_start = m_end + 1;
        let t_end = target_end(b, t_start);
        match b.get(t_end) {
            None if too_long(b) => return Err(ParseError::RequestLineTooLong),
            None => return Ok(None),
            Some(b' ') if t_end > t_start => {}
            // `GET /` + CRLF is an HTTP/0.9 request: no version, which we do not serve.
            Some(b'\r' | b'\n') if t_end > t_start => return Err(ParseError::InvalidVersion),
            Some(_) => return Err(ParseError::InvalidTarget),
        }
        self.target = Span::new(t_start, t_end);
        let t = &b[t_start..t_end];
        // memchr's set-up costs more than a plain loop over a short path.
        let q = if t.len() < 32 {
            t.iter().position(|&c| c == b'?')
        } else {
            memchr::memchr(b'?', t)
        };
        self.query = q.map(|q| (t_start + q) as u16);

        let v = t_end + 1;
        let version = match version(&b[v..])? {
            Some(version) => version,
            None if too_long(b) => return Err(ParseError::RequestLineTooLong),
            None => return Ok(None),
        };
        self.version = version;
        match (b.get(v + 8), b.get(v + 9)) {
            (Some(b'\r'), Some(b'\n')) => Ok(Some(v + 10)),
            (Some(b'\r'), Some(_)) => Err(ParseError::BareCr),
            (Some(b'\r'), None) | (None, _) if too_long(b) => Err(ParseError::RequestLineTooLong),
            (Some(b'\r'), None) | (None, _) => Ok(None),
            (Some(b'\n'), _) => Err(ParseError::BareLf),
            (Some(_), _) => Err(ParseError::InvalidVersion),
        }
    }

    /// The end of the method starting at `start` (a known method followed by SP), or `None`
    /// if the buffer ends first. The two commonest methods skip the scan and the table.
    #[inline]
    fn method_end(&self, b: &[u8], start: usize) -> Result<Option<usize>, ParseError> {
        let rest = &b[start..];
        if rest.starts_with(b"GET ") {
            return Ok(Some(start + 3));
        }
        if rest.starts_with(b"POST ") {
            return Ok(Some(start + 4));
        }
        let m_end = token_end(b, start);
        match b.get(m_end) {
            None => Ok(None),
            Some(b' ') if m_end > start && is_known_method(&b[start..m_end]) => Ok(Some(m_end)),
            Some(b' ') if m_end > start => Err(ParseError::UnknownMethod),
            Some(_) => Err(ParseError::InvalidMethod),
        }
    }

    /// Parse one field line at `self.pos`, or the empty line that ends the head.
    fn field_line(&mut self, b: &[u8]) -> Result<Line, ParseError> {
        let start = self.pos;
        match b.get(start) {
            None => return Ok(Line::Partial),
            Some(b'\r') => {
                return match b.get(start + 1) {
                    Some(b'\n') => Ok(Line::End(start + 2)),
                    Some(_) => Err(ParseError::BareCr),
                    None => Ok(Line::Partial),
                }
            }
            Some(b'\n') => return Err(ParseError::BareLf),
            Some(b' ' | b'\t') => return Err(ParseError::ObsFold),
            Some(_) => {}
        }
        let n_end = token_end(b, start);
        match b.get(n_end) {
            None => return Ok(Line::Partial),
            Some(b':') if n_end > start => {}
            Some(b' ' | b'\t') if n_end > start => return Err(ParseError::WhitespaceBeforeColon),
            Some(_) => return Err(ParseError::InvalidHeaderName),
        }
        let mut v = n_end + 1;
        while b.get(v).is_some_and(|&c| is_ows(c)) {
            v += 1;
        }
        let v_end = value_end(b, v);
        match (b.get(v_end), b.get(v_end + 1)) {
            (None, _) | (Some(b'\r'), None) => return Ok(Line::Partial),
            (Some(b'\r'), Some(b'\n')) => {}
            (Some(b'\r'), Some(_)) => return Err(ParseError::BareCr),
            (Some(b'\n'), _) => return Err(ParseError::BareLf),
            (Some(_), _) => return Err(ParseError::InvalidHeaderValue),
        }
        if self.count == MAX_HEADERS {
            return Err(ParseError::TooManyHeaders);
        }
        let value = trim_ows(&b[v..v_end]);
        let value_span = Span::new(v, v + value.len());
        let name_span = Span::new(start, n_end);
        self.fields[self.count] = (name_span, value_span);
        self.count += 1;
        self.apply(&b[start..n_end], value, value_span)?;
        Ok(Line::More(v_end + 2))
    }

    /// Record what a field means for framing and connection handling.
    fn apply(&mut self, name: &[u8], value: &[u8], span: Span) -> Result<(), ParseError> {
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => self.hosts = self.hosts.saturating_add(1),
            6 if name.eq_ignore_ascii_case(b"expect") => {
                self.expect = if value.eq_ignore_ascii_case(b"100-continue") {
                    Expect::Continue
                } else {
                    Expect::Other
                };
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in value.split(|&c| c == b',').map(trim_ows) {
                    if token.eq_ignore_ascii_case(b"close") {
                        self.conn_close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        self.conn_keep_alive = true;
                    }
                }
            }
            12 if name.eq_ignore_ascii_case(b"content-type") => self.content_type = Some(span),
            14 if name.eq_ignore_ascii_case(b"content-length") => self.content_length(value)?,
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                self.transfer_encoding(value)?
            }
            _ => {}
        }
        Ok(())
    }

    fn content_length(&mut self, value: &[u8]) -> Result<(), ParseError> {
        if self.codings.present {
            return Err(ParseError::TransferEncodingWithContentLength);
        }
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::InvalidContentLength);
        }
        let mut n: u64 = 0;
        for &d in value {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or(ParseError::ContentLengthOverflow)?;
        }
        match self.content_length {
            Some(previous) if previous != n => Err(ParseError::ConflictingContentLength),
            _ => {
                self.content_length = Some(n);
                Ok(())
            }
        }
    }

    fn transfer_encoding(&mut self, value: &[u8]) -> Result<(), ParseError> {
        if self.content_length.is_some() {
            return Err(ParseError::TransferEncodingWithContentLength);
        }
        self.codings.present = true;
        // Empty list elements are allowed and ignored (RFC 9110 §5.6.1).
        for coding in value
            .split(|&c| c == b',')
            .map(trim_ows)
            .filter(|c| !c.is_empty())
        {
            if self.codings.chunked {
                // Whatever follows `chunked` means it is not last, and it cannot come again.
                return Err(if coding.eq_ignore_ascii_case(b"chunked") {
                    ParseError::DuplicateChunked
                } else {
                    ParseError::ChunkedNotLast
                });
            }
            if coding.eq_ignore_ascii_case(b"chunked") {
                self.codings.chunked = true;
                self.codings.last_chunked = true;
            } else {
                self.codings.other = true;
                self.codings.last_chunked = false;
            }
        }
        Ok(())
    }

    /// Checks that need the whole head.
    fn finish(&mut self) -> Result<(), ParseError> {
        if self.codings.present {
            if !self.codings.last_chunked {
                return Err(ParseError::ChunkedNotLast);
            }
            if self.codings.other {
                return Err(ParseError::UnsupportedTransferCoding);
            }
        }
        Ok(())
    }
}

/// The outcome of parsing one field line.
enum Line {
    /// A field; the next line starts here.
    More(usize),
    /// The empty line; the head ends here.
    End(usize),
    /// The line is not complete yet.
    Partial,
}

/// Parse `HTTP/x.y` at the start of `v`; `Ok(None)` if too few bytes have arrived to tell.
#[inline]
fn version(v: &[u8]) -> Result<Option<Version>, ParseError> {
    // The common case in one comparison.
    match v.get(..8) {
        Some(b"HTTP/1.1") => return Ok(Some(Version::Http11)),
        Some(b"HTTP/1.0") => return Ok(Some(Version::Http10)),
        _ => {}
    }
    const PATTERN: &[u8; 8] = b"HTTP/x.y";
    for (i, &c) in v.iter().take(8).enumerate() {
        let ok = match PATTERN[i] {
            b'x' | b'y' => c.is_ascii_digit(),
            p => c == p,
        };
        if !ok {
            return Err(ParseError::InvalidVersion);
        }
    }
    if v.len() < 8 {
        return Ok(None);
    }
    match (v[5], v[7]) {
        (b'1', b'1') => Ok(Some(Version::Http11)),
        (b'1', b'0') => Ok(Some(Version::Http10)),
        _ => Err(ParseError::UnsupportedVersion),
    }
}

/// Methods registered for HTTP (RFC 9110 and the IANA method registry, as llhttp knows them).
/// Any other token gets 501 (RFC 9110 §9.1).
fn is_known_method(m: &[u8]) -> bool {
    matches!(
        m,
        b"GET"
            | b"HEAD"
            | b"POST"
            | b"PUT"
            | b"DELETE"
            | b"OPTIONS"
            | b"PATCH"
            | b"CONNECT"
            | b"TRACE"
            | b"COPY"
            | b"LOCK"
            | b"MKCOL"
            | b"MOVE"
            | b"PROPFIND"
            | b"PROPPATCH"
            | b"SEARCH"
            | b"UNLOCK"
            | b"BIND"
            | b"REBIND"
            | b"UNBIND"
            | b"ACL"
            | b"REPORT"
            | b"MKACTIVITY"
            | b"CHECKOUT"
            | b"MERGE"
            | b"M-SEARCH"
            | b"NOTIFY"
            | b"SUBSCRIBE"
            | b"UNSUBSCRIBE"
            | b"PURGE"
            | b"MKCALENDAR"
            | b"LINK"
            | b"UNLINK"
            | b"SOURCE"
            | b"QUERY"
    )
}

/// A parsed request head. It borrows the receive buffer; nothing is copied.
#[derive(Clone, Copy)]
pub struct Head<'a> {
    buf: &'a [u8],
    p: &'a RequestParser,
}

/// One header field as received. The value has surrounding whitespace removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field name, with its original case.
    pub name: &'a [u8],
    /// The field value, without leading or trailing SP/HTAB.
    pub value: &'a [u8],
}

impl<'a> Head<'a> {
    /// The method, e.g. `GET`.
    pub fn method(&self) -> &'a str {
        ascii(self.p.method.of(self.buf))
    }

    /// The method as bytes (validated: token characters only).
    pub fn method_bytes(&self) -> &'a [u8] {
        self.p.method.of(self.buf)
    }

    /// The path as bytes (validated: visible ASCII only).
    pub fn path_bytes(&self) -> &'a [u8] {
        let t = self.p.target;
        let end = self.p.query.map_or(t.end, |q| q);
        &self.buf[t.start as usize..end as usize]
    }

    /// The whole request target, e.g. `/search?q=x`.
    pub fn target(&self) -> &'a str {
        ascii(self.p.target.of(self.buf))
    }

    /// The target up to (not including) the first `?`.
    pub fn path(&self) -> &'a str {
        ascii(self.path_bytes())
    }

    /// The target after the first `?`, if there is one.
    pub fn query(&self) -> Option<&'a str> {
        let q = self.p.query? as usize;
        Some(ascii(&self.buf[q + 1..self.p.target.end as usize]))
    }

    /// HTTP/1.0 or HTTP/1.1.
    pub fn version(&self) -> Version {
        self.p.version
    }

    /// The fields in the order they were received.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = Field<'a>> + 'a {
        let buf = self.buf;
        self.p.fields[..self.p.count]
            .iter()
            .map(move |(n, v)| Field {
                name: n.of(buf),
                value: v.of(buf),
            })
    }

    /// How many fields the head has.
    pub fn field_count(&self) -> usize {
        self.p.count
    }

    /// The value of the first field called `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&'a [u8]> {
        self.fields()
            .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| f.value)
    }

    /// The `Content-Type` value, if any.
    pub fn content_type(&self) -> Option<&'a [u8]> {
        self.p.content_type.map(|s| s.of(self.buf))
    }

    /// How the body is framed.
    pub fn body(&self) -> BodyKind {
        if self.p.codings.present {
            BodyKind::Chunked
        } else {
            match self.p.content_length {
                None | Some(0) => BodyKind::None,
                Some(n) => BodyKind::Length(n),
            }
        }
    }

    /// Should the connection stay open after this request (RFC 9112 §9.3)?
    pub fn keep_alive(&self) -> bool {
        let p = self.p;
        match p.version {
            // A 1.0 message with Transfer-Encoding has faulty framing: close after it (§6.1).
            Version::Http10 => p.conn_keep_alive && !p.conn_close && !p.codings.present,
            Version::Http11 => !p.conn_close,
        }
    }

    /// What the `Expect` header asked for.
    pub fn expect(&self) -> Expect {
        self.p.expect
    }

    /// How many `Host` fields there were; HTTP/1.1 requires exactly one.
    pub fn host_count(&self) -> usize {
        usize::from(self.p.hosts)
    }
}

impl std::fmt::Debug for Head<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("version", &self.version())
            .field("fields", &self.field_count())
            .field("body", &self.body())
            .finish()
    }
}

/// The parser has checked every byte of these spans is visible ASCII.
fn ascii(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(input: &[u8]) -> Result<Option<usize>, ParseError> {
        match RequestParser::new().parse(input) {
            Status::Complete(_, n) => Ok(Some(n)),
            Status::Partial => Ok(None),
            Status::Error(e) => Err(e),
        }
    }

    #[test]
    fn parses_a_simple_get() {
        let mut p = RequestParser::new();
        let input = b"GET /a/b?x=1&y HTTP/1.1\r\nHost: example.com\r\nX-Empty:\r\nX-Pad: \t v \t\r\n\r\nrest";
        let Status::Complete(head, n) = p.parse(input) else {
            panic!("not complete")
        };
        assert_eq!(&input[n..], b"rest");
        assert_eq!(head.method(), "GET");
        assert_eq!(head.target(), "/a/b?x=1&y");
        assert_eq!(head.path(), "/a/b");
        assert_eq!(head.query(), Some("x=1&y"));
        assert_eq!(head.version(), Version::Http11);
        let fields: Vec<_> = head.fields().map(|f| (f.name, f.value)).collect();
        assert_eq!(
            fields,
            vec![
                (&b"Host"[..], &b"example.com"[..]),
                (b"X-Empty", b""),
                (b"X-Pad", b"v")
            ]
        );
        assert_eq!(head.host_count(), 1);
        assert!(head.keep_alive());
        assert_eq!(head.body(), BodyKind::None);
    }

    #[test]
    fn every_split_gives_the_same_result() {
        let input =
            b"\r\nPOST /x HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello";
        for split in 0..input.len() - 5 {
            let mut p = RequestParser::new();
            assert!(
                matches!(p.parse(&input[..split]), Status::Partial),
                "split {split}"
            );
            let Status::Complete(head, n) = p.parse(input) else {
                panic!("split {split}")
            };
            assert_eq!(n, input.len() - 5);
            assert_eq!(head.body(), BodyKind::Length(5));
            assert!(head.keep_alive());
            assert_eq!(head.version(), Version::Http10);
        }
    }

    #[test]
    fn rejects_each_rule_with_its_own_kind() {
        use ParseError::*;
        let cases: &[(&[u8], ParseError)] = &[
            (b"G(T / HTTP/1.1\r\n\r\n", InvalidMethod),
            (b"FOO / HTTP/1.1\r\n\r\n", UnknownMethod),
            (b"GET /a#b HTTP/1.1\r\n\r\n", InvalidTarget),
            (b"GET /\x7f HTTP/1.1\r\n\r\n", InvalidTarget),
            (b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", InvalidTarget),
            (b"GET  / HTTP/1.1\r\n\r\n", InvalidTarget),
            (b"GET / HTTP/2.0\r\n\r\n", UnsupportedVersion),
            (b"GET / HTTP/1.x\r\n\r\n", InvalidVersion),
            (b"GET / FTP/1.1\r\n\r\n", InvalidVersion),
            (b"GET /\r\n\r\n", InvalidVersion),
            (b"GET / HTTP/1.1\nHost: a\r\n\r\n", BareLf),
            (b"GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", InvalidHeaderName),
            (b"GET / HTTP/1.1\r\n: a\r\n\r\n", InvalidHeaderName),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", WhitespaceBeforeColon),
            (b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", ObsFold),
            (b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", BareCr),
            (b"GET / HTTP/1.1\r\nA: b\nc\r\n\r\n", BareLf),
            (b"GET / HTTP/1.1\r\nA: b\x01c\r\n\r\n", InvalidHeaderValue),
            (b"GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", InvalidHeaderValue),
            (
                b"GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
                InvalidContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: \r\n\r\n",
                InvalidContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
                ContentLengthOverflow,
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n",
                ConflictingContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n",
                TransferEncodingWithContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n",
                TransferEncodingWithContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                ChunkedNotLast,
            ),
            (
                b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n",
                ChunkedNotLast,
            ),
            (
                b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                UnsupportedTransferCoding,
            ),
            (
                b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                DuplicateChunked,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                verdict(input),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn enforces_limits_without_reading_past_them() {
        let mut line = b"GET /".to_vec();
        line.resize(MAX_REQUEST_LINE + 1, b'a');
        assert_eq!(verdict(&line), Err(ParseError::RequestLineTooLong));
        line.truncate(MAX_REQUEST_LINE - 20);
        line.extend_from_slice(b" HTTP/1.1\r\n");
        assert_eq!(verdict(&line), Ok(None));

        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        assert_eq!(verdict(&many), Err(ParseError::TooManyHeaders));

        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        while big.len() < MAX_HEAD {
            big.extend_from_slice(format!("X-Pad: {}\r\n", "p".repeat(400)).as_bytes());
        }
        assert_eq!(verdict(&big), Err(ParseError::HeadTooLarge));
    }

    #[test]
    fn connection_semantics() {
        let keep = |input: &[u8]| match RequestParser::new().parse(input) {
            Status::Complete(head, _) => head.keep_alive(),
            other => panic!("{other:?}"),
        };
        assert!(keep(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!keep(b"GET / HTTP/1.1\r\nConnection: foo, CLOSE\r\n\r\n"));
        assert!(!keep(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(keep(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        let mut p = RequestParser::new();
        let Status::Complete(head, _) = p.parse(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nHost: a\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n") else {
            panic!()
        };
        assert_eq!(head.expect(), Expect::Continue);
        assert_eq!(head.host_count(), 2);
        assert_eq!(head.body(), BodyKind::Chunked);
    }
}
