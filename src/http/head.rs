//! A parsed request head: what the parser found, as borrowed slices of the receive buffer,
//! and the types that describe it. The parser fills a [`Parsed`]; a [`Head`] reads it.

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

/// A byte range of the buffer. `u16` is enough because nothing past [`MAX_HEAD`] is parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: u16,
    pub(super) end: u16,
}

impl Span {
    pub(super) fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u16,
            end: end as u16,
        }
    }

    pub(super) fn of(self, buf: &[u8]) -> &[u8] {
        &buf[self.start as usize..self.end as usize]
    }
}

/// What the parser learned about one head: spans of the buffer and what the fields mean for
/// framing and the connection. The parser fills it line by line; [`Head`] reads it.
#[derive(Debug, Clone)]
pub(super) struct Parsed {
    pub(super) method: Span,
    pub(super) target: Span,
    /// The path: the target up to the query in origin-form (and asterisk-form), what follows
    /// the authority in absolute-form. An empty path means `/` (RFC 9110 §4.2.3): rather than
    /// test for it on every request, the span then covers a `/` that every complete request
    /// line has, the one in its version (`HTTP/1.1`).
    pub(super) path: Span,
    /// The authority of an absolute-form target, which stands in for `Host` (RFC 9112 §3.2.2).
    pub(super) authority: Option<Span>,
    /// Offset of the `?` in the target, if any.
    pub(super) query: Option<u16>,
    pub(super) version: Version,
    /// Name and value spans of each field, in received order; the first `count` are valid.
    pub(super) fields: [(Span, Span); MAX_HEADERS],
    pub(super) count: usize,
    pub(super) content_length: Option<u64>,
    /// A `Transfer-Encoding` field was seen (the parser has checked it ends in `chunked`).
    pub(super) transfer_encoding: bool,
    pub(super) conn_close: bool,
    pub(super) conn_keep_alive: bool,
    /// The `Host` value (checked to be `uri-host [ ":" port ]`). There is at most one: the
    /// parser rejects a second.
    pub(super) host: Option<Span>,
    pub(super) expect: Expect,
    pub(super) content_type: Option<Span>,
}

impl Parsed {
    /// Nothing parsed yet.
    pub(super) fn new() -> Parsed {
        Parsed {
            method: Span::default(),
            target: Span::default(),
            path: Span::default(),
            authority: None,
            query: None,
            version: Version::Http11,
            fields: [(Span::default(), Span::default()); MAX_HEADERS],
            count: 0,
            content_length: None,
            transfer_encoding: false,
            conn_close: false,
            conn_keep_alive: false,
            host: None,
            expect: Expect::None,
            content_type: None,
        }
    }

    /// Forget the last head. The field array is overwritten as fields arrive; only `count`
    /// needs clearing, and the request line's spans are always set before they are read.
    pub(super) fn clear(&mut self) {
        self.authority = None;
        self.query = None;
        self.count = 0;
        self.content_length = None;
        self.transfer_encoding = false;
        self.conn_close = false;
        self.conn_keep_alive = false;
        self.host = None;
        self.expect = Expect::None;
        self.content_type = None;
    }
}

/// A parsed request head. It borrows the receive buffer; nothing is copied.
#[derive(Clone, Copy)]
pub struct Head<'a> {
    buf: &'a [u8],
    p: &'a Parsed,
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
    pub(super) fn new(buf: &'a [u8], p: &'a Parsed) -> Head<'a> {
        Head { buf, p }
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &'a str {
        ascii(self.p.method.of(self.buf))
    }

    /// The method as bytes (validated: token characters only).
    pub fn method_bytes(&self) -> &'a [u8] {
        self.p.method.of(self.buf)
    }

    /// The path as bytes (validated: visible ASCII only). For an absolute-form target it is
    /// the URI's path: `/a` of `http://x/a?q`, and `/` when the URI has none (RFC 9110 §4.2.3).
    pub fn path_bytes(&self) -> &'a [u8] {
        self.p.path.of(self.buf)
    }

    /// The whole request target, e.g. `/search?q=x` or `http://x/search?q=x`.
    pub fn target(&self) -> &'a str {
        ascii(self.p.target.of(self.buf))
    }

    /// Is the target `*` (asterisk-form, which the parser allows only with OPTIONS)?
    pub fn is_asterisk(&self) -> bool {
        self.p.target.of(self.buf) == b"*"
    }

    /// The path: the target up to (not including) the first `?`, without the scheme and
    /// authority of an absolute-form target. See [`path_bytes`](Self::path_bytes).
    pub fn path(&self) -> &'a str {
        ascii(self.path_bytes())
    }

    /// The target after the first `?`, if there is one.
    pub fn query(&self) -> Option<&'a str> {
        let q = self.p.query? as usize;
        Some(ascii(&self.buf[q + 1..self.p.target.end as usize]))
    }

    /// [`query`](Self::query) as the bytes received (the parser allows only visible ASCII in a
    /// target), without the UTF-8 check a `str` costs.
    pub fn query_bytes(&self) -> Option<&'a [u8]> {
        let q = self.p.query? as usize;
        Some(&self.buf[q + 1..self.p.target.end as usize])
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
        if self.p.transfer_encoding {
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
            Version::Http10 => p.conn_keep_alive && !p.conn_close && !p.transfer_encoding,
            Version::Http11 => !p.conn_close,
        }
    }

    /// What the `Expect` header asked for.
    pub fn expect(&self) -> Expect {
        self.p.expect
    }

    /// How many `Host` fields there were (0 or 1: the parser rejects a second); HTTP/1.1
    /// requires one, even with an absolute-form target.
    pub fn host_count(&self) -> usize {
        usize::from(self.p.host.is_some())
    }

    /// The host (and port) the request is for: the authority of an absolute-form target, which
    /// a server uses instead of the `Host` field (RFC 9112 §3.2.2), else the `Host` value.
    /// Validated as `uri-host [ ":" port ]`; `Some("")` for an empty `Host`.
    pub fn host(&self) -> Option<&'a str> {
        self.p
            .authority
            .or(self.p.host)
            .map(|s| ascii(s.of(self.buf)))
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
