//! A raw HTTP/1.1 client for the tests: [`Client`] writes bytes exactly as given and reads
//! whole responses ([`Response`]) framed by `Content-Length`, keeping any pipelined bytes that
//! follow for the next read. Every read has a timeout, so a server that hangs fails a test
//! instead of hanging it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::normalize_date;

/// Default read timeout of a [`Client`]: long enough for a loaded CI machine, short enough
/// that a hung server fails the test quickly.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed response, with the exact bytes it came in.
#[derive(Debug, Clone)]
pub struct Response {
    /// Every byte of the response: head and body.
    pub raw: Vec<u8>,
    /// The status code.
    pub status: u16,
    /// Header fields in the order received.
    pub headers: Vec<(String, String)>,
    /// The body (by `Content-Length`; empty for HEAD, 1xx, 204 and 304 responses).
    pub body: Vec<u8>,
}

impl Response {
    /// The value of the first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The raw bytes as text, with the `Date` value normalised.
    pub fn normalized(&self) -> String {
        normalize_date(&self.raw)
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }
}

/// A raw TCP client: writes bytes as given and reads responses.
pub struct Client {
    /// The connection.
    pub stream: TcpStream,
    /// Bytes read but not yet returned (the start of the next pipelined response).
    buf: Vec<u8>,
}

impl Client {
    /// Connect, with [`READ_TIMEOUT`] on reads.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Change the read timeout.
    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }

    /// Write all these bytes.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).expect("write");
    }

    /// Write, returning the error instead of panicking (for a server that may have closed).
    pub fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        self.stream.write_all(bytes.as_ref())
    }

    /// Read more bytes into the buffer; `Ok(0)` at EOF.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Read exactly `n` bytes.
    pub fn read_exact_bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            match self.fill() {
                Ok(0) => panic!(
                    "EOF after {} of {n} bytes: {:?}",
                    self.buf.len(),
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(_) => {}
                Err(e) => panic!("read: {e}; have {:?}", String::from_utf8_lossy(&self.buf)),
            }
        }
        self.buf.drain(..n).collect()
    }

    /// Read one whole response; `head_only` for the answer to a HEAD request.
    pub fn try_read_response(&mut self, head_only: bool) -> io::Result<Response> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "EOF inside a response head: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ),
                ));
            }
        };
        let (status, headers) = parse_head(&self.buf[..head_end]);
        // RFC 9112 §6.3: a response to HEAD, and a 1xx, 204 or 304 response, has no content.
        let no_content = (100..200).contains(&status) || status == 204 || status == 304;
        let len: usize = if head_only || no_content {
            0
        } else {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.parse().expect("numeric Content-Length"))
                .expect("every response has Content-Length")
        };
        while self.buf.len() < head_end + len {
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "EOF inside a response body",
                ));
            }
        }
        let raw: Vec<u8> = self.buf.drain(..head_end + len).collect();
        let body = raw[head_end..].to_vec();
        Ok(Response {
            raw,
            status,
            headers,
            body,
        })
    }

    /// Read one whole response, panicking on EOF or timeout.
    pub fn read_response(&mut self) -> Response {
        self.try_read_response(false)
            .unwrap_or_else(|e| panic!("reading a response: {e}"))
    }

    /// Read the response to a HEAD request (no body).
    pub fn read_head_response(&mut self) -> Response {
        self.try_read_response(true)
            .unwrap_or_else(|e| panic!("reading a HEAD response: {e}"))
    }

    /// Read everything until the server closes (EOF), panicking on timeout or reset.
    pub fn read_to_eof(&mut self) -> Vec<u8> {
        loop {
            match self.fill() {
                Ok(0) => return std::mem::take(&mut self.buf),
                Ok(_) => {}
                Err(e) => panic!(
                    "reading to EOF: {e}; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// Wait (up to `timeout`) for the server to close; returns how long that took.
    /// Panics if data arrives or the server keeps the connection open.
    pub fn expect_eof_within(&mut self, timeout: Duration) -> Duration {
        let start = Instant::now();
        self.set_read_timeout(timeout);
        let result = self.fill();
        self.set_read_timeout(READ_TIMEOUT);
        match result {
            Ok(0) if self.buf.is_empty() => start.elapsed(),
            Ok(_) => panic!(
                "expected EOF, got bytes {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            // A reset also means closed, but the server should close gracefully.
            Err(e) => panic!("expected EOF within {timeout:?}, got {e}"),
        }
    }

    /// Assert that nothing arrives and the connection stays open for `wait`.
    pub fn expect_open_for(&mut self, wait: Duration) {
        self.set_read_timeout(wait);
        let result = self.fill();
        self.set_read_timeout(READ_TIMEOUT);
        match result {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Ok(0) => panic!("server closed the connection"),
            Ok(_) => panic!("unexpected bytes {:?}", String::from_utf8_lossy(&self.buf)),
            Err(e) => panic!("connection failed: {e}"),
        }
    }
}

/// Send one request on a new connection and read its response.
pub fn roundtrip(addr: SocketAddr, request: &[u8]) -> Response {
    let mut c = Client::connect(addr);
    c.send(request);
    c.read_response()
}

/// Send one request on a new connection and read until the server closes; the response's body
/// is every byte after its head, whatever its framing says (e.g. checks that a HEAD response
/// has none).
pub fn roundtrip_until_close(addr: SocketAddr, request: &[u8]) -> Response {
    let mut c = Client::connect(addr);
    c.send(request);
    let raw = c.read_to_eof();
    let head_end = find(&raw, b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(&raw)))
        + 4;
    let (status, headers) = parse_head(&raw[..head_end]);
    let body = raw[head_end..].to_vec();
    Response {
        raw,
        status,
        headers,
        body,
    }
}

/// The status and header fields of a whole response head (through its empty line). Panics
/// unless the status line is `HTTP/1.1 NNN ...` and every field line is `Name: value`.
fn parse_head(head: &[u8]) -> (u16, Vec<(String, String)>) {
    let head = std::str::from_utf8(head).expect("ASCII head");
    let mut lines = head.trim_end_matches("\r\n").split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .map(|l| {
            let (n, v) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("bad header {l:?}"));
            (n.to_owned(), v.to_owned())
        })
        .collect();
    (status, headers)
}

/// Send one request on a new connection and read everything until the server closes.
pub fn roundtrip_to_eof(addr: SocketAddr, request: &[u8]) -> String {
    let mut c = Client::connect(addr);
    c.send(request);
    normalize_date(&c.read_to_eof())
}

/// The index of the first `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
