//! Writing responses: status lines, the headers every response carries, and framing.
//!
//! Every response has `Server` and `Date`, and `Content-Length` unless its status forbids
//! content ([`framing`]); we never send a body of unknown length. `Connection: close` is added
//! whenever the connection will close after it.

use super::date::DATE_LEN;

/// The product token sent in `Server`.
pub const SERVER: &str = "cerberus";

/// What the `Connection` header of a response says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionHeader {
    /// Nothing: HTTP/1.1 keeps the connection by default.
    None,
    /// `Connection: keep-alive`, for an HTTP/1.0 client that asked for it.
    KeepAlive,
    /// `Connection: close`: the server closes after this response.
    Close,
}

/// The reason phrase for a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Append `HTTP/1.1 <status> <reason>`, `Server` and `Date` lines.
pub fn write_status(out: &mut Vec<u8>, status: u16, date: &[u8; DATE_LEN]) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(SERVER.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n");
}

/// Append one header line.
pub fn write_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// How a response is framed, by its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` and the body (for HEAD, the length alone).
    Length,
    /// No content, announced as `Content-Length: 0`: 205 Reset Content (RFC 9110 §15.3.6).
    Empty,
    /// No content and no `Content-Length`: 1xx, 204 and 304. Such a response ends at its blank
    /// line whatever its headers say (RFC 9112 §6.3), so a body sent after it would be read as
    /// the next response; 1xx and 204 must not carry the header (RFC 9110 §8.6), and a 304's
    /// would have to be the length of a 200 response we do not have.
    None,
}

/// The [`Framing`] of a response with this status.
pub fn framing(status: u16) -> Framing {
    match status {
        100..=199 | 204 | 304 => Framing::None,
        205 => Framing::Empty,
        _ => Framing::Length,
    }
}

/// Append the framing of a `status` response (see [`framing`]), the `Connection` header, the
/// blank line, and the body unless `head_only` (a HEAD request gets the length of the body it
/// did not get) or the status forbids content (then `body` is dropped).
pub fn write_tail(
    out: &mut Vec<u8>,
    status: u16,
    body: &[u8],
    conn: ConnectionHeader,
    head_only: bool,
) {
    let body = write_framing(out, status, body);
    write_connection(out, conn);
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(body);
    }
}

/// Append the `Content-Length` line a `status` response has, if any (see [`framing`]), and
/// return the part of `body` it may carry: all of it, or nothing.
pub fn write_framing<'b>(out: &mut Vec<u8>, status: u16, body: &'b [u8]) -> &'b [u8] {
    match framing(status) {
        Framing::Length => {
            write_length(out, body.len());
            body
        }
        Framing::Empty => {
            write_length(out, 0);
            &[]
        }
        Framing::None => &[],
    }
}

/// Append the `Content-Length` line.
pub fn write_length(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Append the `Connection` line, if any.
pub fn write_connection(out: &mut Vec<u8>, conn: ConnectionHeader) {
    match conn {
        ConnectionHeader::None => {}
        ConnectionHeader::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        ConnectionHeader::Close => out.extend_from_slice(b"Connection: close\r\n"),
    }
}

/// Append a whole short error response (`text/plain`, body = reason phrase + newline).
pub fn write_error(
    out: &mut Vec<u8>,
    status: u16,
    date: &[u8; DATE_LEN],
    conn: ConnectionHeader,
    head_only: bool,
) {
    write_status(out, status, date);
    out.extend_from_slice(b"Content-Type: text/plain\r\n");
    let reason = reason(status);
    write_length(out, reason.len() + 1);
    write_connection(out, conn);
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(reason.as_bytes());
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8; DATE_LEN] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    /// The tail a `status` response with a 4-byte body gets.
    fn tail(status: u16, head_only: bool) -> String {
        let mut out = Vec::new();
        write_tail(&mut out, status, b"oops", ConnectionHeader::None, head_only);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn statuses_without_content_get_no_body_and_no_length() {
        for status in [100, 101, 103, 199, 204, 304] {
            assert_eq!(tail(status, false), "\r\n", "{status}");
            assert_eq!(tail(status, true), "\r\n", "{status} to HEAD");
        }
    }

    #[test]
    fn reset_content_says_its_length_is_zero() {
        assert_eq!(tail(205, false), "Content-Length: 0\r\n\r\n");
        assert_eq!(tail(205, true), "Content-Length: 0\r\n\r\n");
    }

    #[test]
    fn other_statuses_get_the_length_and_head_gets_only_the_length() {
        for status in [200, 201, 203, 206, 303, 404, 500] {
            assert_eq!(
                tail(status, false),
                "Content-Length: 4\r\n\r\noops",
                "{status}"
            );
            assert_eq!(tail(status, true), "Content-Length: 4\r\n\r\n", "{status}");
        }
    }

    #[test]
    fn error_response_bytes() {
        let mut out = Vec::new();
        write_error(&mut out, 431, DATE, ConnectionHeader::Close, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 431 Request Header Fields Too Large\r\nServer: cerberus\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain\r\nContent-Length: 32\r\nConnection: close\r\n\r\n\
             Request Header Fields Too Large\n"
        );
    }
}
