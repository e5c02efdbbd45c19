//! A parsed request head: what the parser found, as borrowed slices of the receive buffer.

use super::parser::{BodyKind, Expect, RequestParser, Version};

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
    pub(super) fn new(buf: &'a [u8], p: &'a RequestParser) -> Head<'a> {
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
