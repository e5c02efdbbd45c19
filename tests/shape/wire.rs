//! A client for shaped responses: reads responses framed by `Content-Length` or chunked
//! (a drip), noting when each chunk arrived, and what the server said it applied.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A response as read.
#[derive(Debug)]
pub struct Got {
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When each chunk of a chunked body arrived, its CRLF included (empty for a
    /// `Content-Length` body).
    pub chunk_times: Vec<Instant>,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `X-Cerberus-Shape` as a map (`status`, `delay` in µs, `size`, `close`, `drip`).
    pub fn applied(&self) -> BTreeMap<String, String> {
        let text = self.header("x-cerberus-shape").expect("X-Cerberus-Shape");
        text.split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').expect("key=value");
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    /// The applied delay in microseconds.
    pub fn delay_us(&self) -> u64 {
        let delay = &self.applied()["delay"];
        delay.strip_suffix("us").expect("in us").parse().unwrap()
    }
}

/// A connection.
pub struct Conn {
    pub reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            reader: BufReader::with_capacity(1 << 16, stream),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("send");
    }

    /// `GET target` (keep-alive).
    pub fn get(&mut self, target: &str) {
        self.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    /// Read one response (`head_only`: to a HEAD request).
    pub fn read(&mut self, head_only: bool) -> io::Result<Got> {
        let status_line = self.line()?;
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("a header line");
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        let mut got = Got {
            status,
            headers,
            body: Vec::new(),
            chunk_times: Vec::new(),
        };
        let no_content = head_only || matches!(status, 204 | 304);
        if no_content {
            return Ok(got);
        }
        if got.header("transfer-encoding") == Some("chunked") {
            loop {
                let size_line = self.line()?;
                let size = usize::from_str_radix(&size_line, 16).expect("hex chunk size");
                if size == 0 {
                    assert_eq!(self.line()?, "", "no trailers");
                    break;
                }
                let mut chunk = vec![0; size];
                self.reader.read_exact(&mut chunk)?;
                got.body.extend_from_slice(&chunk);
                assert_eq!(self.line()?, "", "CRLF after chunk data");
                // A chunk has arrived once its CRLF has: a piece must come whole.
                got.chunk_times.push(Instant::now());
            }
        } else {
            let len: usize = got
                .header("content-length")
                .expect("Content-Length")
                .parse()
                .unwrap();
            got.body = vec![0; len];
            self.reader.read_exact(&mut got.body)?;
        }
        Ok(got)
    }

    /// Read one response, panicking on error.
    #[allow(dead_code)] // by `shape.rs`, not the soak
    pub fn response(&mut self) -> Got {
        self.read(false)
            .unwrap_or_else(|e| panic!("reading a response: {e}"))
    }

    /// Does the server close (EOF) or reset the connection next? `Ok(true)`: reset.
    pub fn end(&mut self) -> io::Result<bool> {
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => Ok(false),
            Ok(_) => Err(io::Error::other(
                "more bytes where the connection should end",
            )),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(true),
            Err(e) => Err(e),
        }
    }
}

/// The body bytes a shaped response of `n` bytes carries: a 64-byte line repeated.
#[allow(dead_code)] // by `shape.rs`, not the soak
pub fn pattern(n: usize) -> Vec<u8> {
    let line = b"cerberus shaped body 0123456789 abcdefghijklmnopqrstuvwxyz ....\n";
    (0..n).map(|i| line[i % line.len()]).collect()
}
