//! A client that asks for large bodies and throws them away unread, for the server's throughput
//! on one core (`benches/shape.py`, scenarios `sizesink` and `sizefilesink`).
//!
//! wrk copies every byte it receives into user space, which on loopback costs about what the
//! server's copy into the socket does: with the two on one core each, the figure is as much the
//! client's as the server's. This client reads only the framing (the head, chunk-size lines);
//! the body bytes are dropped in the kernel with `recv(MSG_TRUNC)`, which TCP serves without a
//! copy, so the server's core is what runs out first.
//!
//! ```text
//! body_sink ADDR PATH CONNS SECS
//! ```
//! Each of `CONNS` keep-alive connections sends one `GET PATH` at a time, for `SECS` seconds,
//! over one `mio` loop. It prints one line of JSON: responses, body bytes, errors (a status
//! other than 200, a framing it cannot read, a connection closed), and this client's own CPU
//! seconds, to show it was not the bottleneck.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Where a connection is in its current response.
#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    /// Waiting for the status line and headers.
    Head,
    /// A chunk-size line is next.
    ChunkSize,
    /// `left` body bytes to drop, then the chunk's CRLF (`chunked`) or the end.
    Body { left: u64, chunked: bool },
    /// A chunk's closing CRLF.
    ChunkEnd,
    /// The empty line after the last chunk (trailers are not expected).
    LastLine,
}

/// One connection.
struct Conn {
    stream: TcpStream,
    state: State,
    /// Framing bytes read and not yet used (and maybe some body bytes after them).
    buf: Vec<u8>,
}

/// What a connection got from its socket this time.
enum Step {
    /// A response ended: its body bytes.
    Done(u64),
    /// Needs more bytes.
    Wait,
}

#[derive(Debug)]
struct Broken(&'static str);

fn find(buf: &[u8], what: &[u8]) -> Option<usize> {
    buf.windows(what.len()).position(|w| w == what)
}

/// The framing of a response head: `Some(len)` for a Content-Length, `None` for chunked.
fn head(head: &[u8]) -> Result<Option<u64>, Broken> {
    let text = std::str::from_utf8(head).map_err(|_| Broken("head not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if status.split(' ').nth(1) != Some("200") {
        return Err(Broken("status not 200"));
    }
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse().map_err(|_| Broken("bad Content-Length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    match (chunked, length) {
        (true, _) => Ok(None),
        (false, Some(n)) => Ok(Some(n)),
        (false, None) => Err(Broken("no framing")),
    }
}

/// Drop up to `n` bytes queued on the socket without copying them: how many went, 0 at EOF.
fn discard(stream: &TcpStream, n: u64) -> io::Result<usize> {
    let n = n.min(1 << 30) as usize;
    // SAFETY: with MSG_TRUNC, TCP consumes the bytes without writing to the buffer, so a null
    // pointer is never dereferenced (the length only bounds how many are dropped).
    let got = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            std::ptr::null_mut(),
            n,
            libc::MSG_TRUNC | libc::MSG_DONTWAIT,
        )
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(got as usize)
}

impl Conn {
    /// Move on as far as the bytes at hand allow.
    fn step(&mut self, body: &mut u64) -> Result<Step, Broken> {
        loop {
            match self.state {
                State::Head => {
                    let Some(end) = find(&self.buf, b"\r\n\r\n") else {
                        return Ok(Step::Wait);
                    };
                    let framing = head(&self.buf[..end])?;
                    self.buf.drain(..end + 4);
                    self.state = match framing {
                        Some(0) => return Ok(Step::Done(0)),
                        Some(left) => State::Body {
                            left,
                            chunked: false,
                        },
                        None => State::ChunkSize,
                    };
                }
                State::ChunkSize => {
                    let Some(end) = find(&self.buf, b"\r\n") else {
                        return Ok(Step::Wait);
                    };
                    let line = std::str::from_utf8(&self.buf[..end]).unwrap_or("?");
                    let hex = line.split(';').next().unwrap_or_default().trim();
                    let size =
                        u64::from_str_radix(hex, 16).map_err(|_| Broken("bad chunk size"))?;
                    self.buf.drain(..end + 2);
                    self.state = if size == 0 {
                        State::LastLine
                    } else {
                        State::Body {
                            left: size,
                            chunked: true,
                        }
                    };
                }
                State::Body { left, chunked } => {
                    let here = (self.buf.len() as u64).min(left);
                    self.buf.drain(..here as usize);
                    *body += here;
                    let left = left - here;
                    if left > 0 {
                        self.state = State::Body { left, chunked };
                        let n = match discard(&self.stream, left) {
                            Ok(0) => return Err(Broken("closed mid-body")),
                            Ok(n) => n as u64,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                return Ok(Step::Wait)
                            }
                            Err(_) => return Err(Broken("recv failed")),
                        };
                        *body += n;
                        self.state = State::Body {
                            left: left - n,
                            chunked,
                        };
                        continue;
                    }
                    if !chunked {
                        self.state = State::Head;
                        return Ok(Step::Done(*body));
                    }
                    self.state = State::ChunkEnd;
                }
                State::ChunkEnd | State::LastLine => {
                    if self.buf.len() < 2 {
                        return Ok(Step::Wait);
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err(Broken("no CRLF after a chunk"));
                    }
                    self.buf.drain(..2);
                    if self.state == State::LastLine {
                        self.state = State::Head;
                        return Ok(Step::Done(*body));
                    }
                    self.state = State::ChunkSize;
                }
            }
        }
    }

    /// Read framing bytes (a little at a time: they may run into the body).
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 512];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }
}

fn cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid rusage for the call to fill.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: body_sink ADDR PATH CONNS SECS");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse().expect("ADDR");
    let request = format!("GET {} HTTP/1.1\r\nHost: sink\r\n\r\n", args[2]);
    let conns: usize = args[3].parse().expect("CONNS");
    let secs: f64 = args[4].parse().expect("SECS");

    let mut poll = Poll::new()?;
    let mut all = Vec::with_capacity(conns);
    for i in 0..conns {
        let mut stream = TcpStream::from_std(std::net::TcpStream::connect(addr)?);
        stream.set_nodelay(true)?;
        poll.registry()
            .register(&mut stream, Token(i), Interest::READABLE)?;
        stream.write_all(request.as_bytes())?;
        all.push(Some(Conn {
            stream,
            state: State::Head,
            buf: Vec::new(),
        }));
    }

    let cpu_before = cpu_seconds();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut events = Events::with_capacity(1024);
    let (mut responses, mut bytes, mut errors) = (0u64, 0u64, 0u64);
    let mut body = vec![0u64; conns];
    while Instant::now() < end && all.iter().any(Option::is_some) {
        poll.poll(&mut events, Some(Duration::from_millis(100)))?;
        for event in events.iter() {
            let i = event.token().0;
            let Some(conn) = all[i].as_mut() else {
                continue;
            };
            let broken = loop {
                match conn.step(&mut body[i]) {
                    Ok(Step::Done(n)) => {
                        responses += 1;
                        bytes += n;
                        body[i] = 0;
                        if Instant::now() >= end {
                            break None;
                        }
                        if conn.stream.write_all(request.as_bytes()).is_err() {
                            break Some(Broken("write failed"));
                        }
                    }
                    Ok(Step::Wait) => {
                        if matches!(conn.state, State::Body { .. }) {
                            // `discard` met an empty socket: wait for the next event.
                            break None;
                        }
                        match conn.fill() {
                            Ok(0) => break Some(Broken("closed")),
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
                            Err(_) => break Some(Broken("read failed")),
                        }
                    }
                    Err(b) => break Some(b),
                }
            };
            if let Some(Broken(why)) = broken {
                eprintln!("body_sink: connection {i}: {why}");
                errors += 1;
                all[i] = None;
            }
        }
    }
    let took = start.elapsed().as_secs_f64();
    println!(
        "{{\"responses\":{responses},\"rps\":{:.0},\"body_bytes\":{bytes},\"errors\":{errors},\
         \"seconds\":{took:.2},\"client_cpu_seconds\":{:.2}}}",
        responses as f64 / took,
        cpu_seconds() - cpu_before
    );
    Ok(())
}
