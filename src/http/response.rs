//! Writing responses: status lines, the headers every response carries, and framing.
//!
//! Every response has `Content-Length` (we never send a body of unknown length), `Server` and
//! `Date`. `Connection: close` is added whenever the connection will close after it.

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

/// Append `Content-Length`, the `Connection` header, the blank line, and the body unless
/// `head_only` (a HEAD request gets the length of the body it did not get).
pub fn write_tail(out: &mut Vec<u8>, body: &[u8], conn: ConnectionHeader, head_only: bool) {
    write_length(out, body.len());
    write_connection(out, conn);
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(body);
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

    #[test]
    fn error_response_bytes() {
        let mut out = Vec::new();
        write_error(
            &mut out,
            431,
            b"Sun, 06 Nov 1994 08:49:37 GMT",
            ConnectionHeader::Close,
            false,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 431 Request Header Fields Too Large\r\nServer: cerberus\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain\r\nContent-Length: 32\r\nConnection: close\r\n\r\n\
             Request Header Fields Too Large\n"
        );
    }
}
