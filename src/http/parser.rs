//! The request-head parser: bytes in, [`Status`] out. No I/O and no allocation.
//!
//! The parser works line by line. A complete line is validated byte by byte and its meaning
//! (framing, `Connection`, `Host`, `Expect`) is applied at once, so an invalid prefix is reported
//! as an error as soon as it is seen, not when the head ends. An incomplete line is validated as
//! far as it goes, and the parser remembers where it starts: the next call, with more bytes,
//! resumes there. Parsing the input whole or split anywhere gives the same result.
//!
//! The target may be origin-form (`/path`), absolute-form (`http://host/path`, whose authority
//! stands in for `Host`) or, with OPTIONS only, asterisk-form (`*`); CONNECT is refused, since
//! only a proxy serves it. `HTTP/1.x` with x above 1 is HTTP/1.1 (RFC 9112 §2.3).
//!
//! Incomplete data is not considered invalid: it is [`Status::Partial`]. Data past a limit is
//! never looked at.

use super::error::ParseError;
use super::field::{field_line, FieldLine};
use super::head::{Expect, Head, Parsed, Span, Version, MAX_HEAD, MAX_HEADERS};
use super::scan::{target_end, token_end, trim_ows};
use super::target;

/// Longest request line we accept, CRLF included; beyond it the answer is 414.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
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
    /// What the lines parsed so far said; a complete [`Head`] reads it.
    parsed: Parsed,
    /// The `Transfer-Encoding` codings seen so far.
    codings: Codings,
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
            parsed: Parsed::new(),
            codings: Codings::default(),
        }
    }

    /// Forget any partial head; the next call starts a new request.
    pub fn reset(&mut self) {
        self.pos = 0;
        self.phase = Phase::RequestLine;
        self.parsed.clear();
        self.codings = Codings::default();
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
                Status::Complete(Head::new(buf, &self.parsed), consumed)
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
        self.parsed.method = Span::new(start, m_end);

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
        self.parsed.target = Span::new(t_start, t_end);
        let t = &b[t_start..t_end];
        // memchr's set-up costs more than a plain loop over a short path.
        let q = if t.len() < 32 {
            t.iter().position(|&c| c == b'?')
        } else {
            memchr::memchr(b'?', t)
        };
        self.parsed.query = q.map(|q| (t_start + q) as u16);
        self.parsed.path = Span::new(t_start, q.map_or(t_end, |q| t_start + q));
        if t[0] != b'/' {
            self.non_origin(&b[start..m_end], t_start, t)?;
        }

        let v = t_end + 1;
        let version = match version(&b[v..])? {
            Some(version) => version,
            None if too_long(b) => return Err(ParseError::RequestLineTooLong),
            None => return Ok(None),
        };
        self.parsed.version = version;
        match (b.get(v + 8), b.get(v + 9)) {
            (Some(b'\r'), Some(b'\n')) => Ok(Some(v + 10)),
            (Some(b'\r'), Some(_)) => Err(ParseError::BareCr),
            (Some(b'\r'), None) | (None, _) if too_long(b) => Err(ParseError::RequestLineTooLong),
            (Some(b'\r'), None) | (None, _) => Ok(None),
            (Some(b'\n'), _) => Err(ParseError::BareLf),
            (Some(_), _) => Err(ParseError::InvalidVersion),
        }
    }

    /// A target that is not origin-form: asterisk-form or absolute-form, else an error.
    #[cold]
    fn non_origin(&mut self, method: &[u8], t_start: usize, t: &[u8]) -> Result<(), ParseError> {
        if let Some(a) = target::non_origin(method, t)? {
            let path = t_start + a.path_start;
            self.parsed.authority = Some(Span::new(t_start + a.authority_start, path));
            self.parsed.path.start = path as u16;
            if self.parsed.path.start == self.parsed.path.end {
                // The `/` of `HTTP/`, after the SP that ends the target (see `Parsed::path`).
                let slash = t_start + t.len() + 5;
                self.parsed.path = Span::new(slash, slash + 1);
            }
        }
        Ok(())
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
            // A client may send tunnel bytes right after its CONNECT (RFC 9110 §9.3.6): refuse
            // before the target, and close, so that none is read as a request.
            Some(b' ') if &b[start..m_end] == b"CONNECT" => Err(ParseError::ConnectNotSupported),
            Some(b' ') if m_end > start && is_known_method(&b[start..m_end]) => Ok(Some(m_end)),
            Some(b' ') if m_end > start => Err(ParseError::UnknownMethod),
            Some(_) => Err(ParseError::InvalidMethod),
        }
    }

    /// Parse one field line at `self.pos`, or the empty line that ends the head.
    fn field_line(&mut self, b: &[u8]) -> Result<Line, ParseError> {
        let start = self.pos;
        let (name_end, value_start, value_end, next) = match field_line(b, start)? {
            FieldLine::Partial => return Ok(Line::Partial),
            FieldLine::End(end) => return Ok(Line::End(end)),
            FieldLine::Field {
                name_end,
                value_start,
                value_end,
                next,
            } => (name_end, value_start, value_end, next),
        };
        if self.parsed.count == MAX_HEADERS {
            return Err(ParseError::TooManyHeaders);
        }
        let value_span = Span::new(value_start, value_end);
        self.parsed.fields[self.parsed.count] = (Span::new(start, name_end), value_span);
        self.parsed.count += 1;
        self.apply(&b[start..name_end], &b[value_start..value_end], value_span)?;
        Ok(Line::More(next))
    }

    /// Record what a field means for framing and connection handling.
    fn apply(&mut self, name: &[u8], value: &[u8], span: Span) -> Result<(), ParseError> {
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => self.host(value, span)?,
            6 if name.eq_ignore_ascii_case(b"expect") => {
                self.parsed.expect = if value.eq_ignore_ascii_case(b"100-continue") {
                    Expect::Continue
                } else {
                    Expect::Other
                };
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in value.split(|&c| c == b',').map(trim_ows) {
                    if token.eq_ignore_ascii_case(b"close") {
                        self.parsed.conn_close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        self.parsed.conn_keep_alive = true;
                    }
                }
            }
            12 if name.eq_ignore_ascii_case(b"content-type") => {
                self.parsed.content_type = Some(span)
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => self.content_length(value)?,
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                self.transfer_encoding(value)?
            }
            _ => {}
        }
        Ok(())
    }

    /// One `Host` field: a second, or an invalid value, is 400 on any version (RFC 9112 §3.2).
    fn host(&mut self, value: &[u8], span: Span) -> Result<(), ParseError> {
        if self.parsed.host.is_some() {
            return Err(ParseError::DuplicateHost);
        }
        if !target::is_valid_host(value) {
            return Err(ParseError::InvalidHost);
        }
        self.parsed.host = Some(span);
        Ok(())
    }

    fn content_length(&mut self, value: &[u8]) -> Result<(), ParseError> {
        if self.parsed.transfer_encoding {
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
        match self.parsed.content_length {
            Some(previous) if previous != n => Err(ParseError::ConflictingContentLength),
            _ => {
                self.parsed.content_length = Some(n);
                Ok(())
            }
        }
    }

    fn transfer_encoding(&mut self, value: &[u8]) -> Result<(), ParseError> {
        if self.parsed.content_length.is_some() {
            return Err(ParseError::TransferEncodingWithContentLength);
        }
        self.parsed.transfer_encoding = true;
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
        if self.parsed.transfer_encoding {
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
        (b'1', b'0') => Ok(Some(Version::Http10)),
        // A higher minor version is understood as the highest we speak (RFC 9112 §2.3).
        (b'1', _) => Ok(Some(Version::Http11)),
        _ => Err(ParseError::UnsupportedVersion),
    }
}

/// Does the request at the start of `buf` (as passed to [`RequestParser::parse`]) use HEAD,
/// whatever else is wrong with it? Leading empty lines are skipped, as the parser skips them.
/// A server rejecting a request uses it to send no content to a HEAD (RFC 9110 §9.3.2): the
/// client would read that content as the start of another response.
pub fn is_head_request(mut buf: &[u8]) -> bool {
    while let Some(rest) = buf.strip_prefix(b"\r\n") {
        buf = rest;
    }
    buf.starts_with(b"HEAD ")
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

#[cfg(test)]
mod tests;
