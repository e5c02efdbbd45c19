//! Shared helpers for the integration tests: start the real `cerberus` binary on loopback,
//! talk raw HTTP/1.1 to it over TCP, and compare responses byte for byte.
//!
//! - [`Server`] starts the binary with a temporary config, waits (bounded) for its
//!   `listening on ...` line, and kills it when dropped. It can send signals and wait for exit.
//! - [`Client`] writes raw bytes and reads whole responses ([`Response`]) framed by
//!   `Content-Length`, keeping any pipelined bytes that follow for the next read.
//! - [`normalize_date`] replaces the `Date` value (after checking it is an IMF-fixdate) with
//!   [`DATE`], so a response can be compared with a literal.
//!
//! Every socket read has a timeout, so a server that hangs fails a test instead of hanging it.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod launch;

use launch::Launched;

/// The path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_cerberus");

/// What [`normalize_date`] puts in place of the `Date` value.
pub const DATE: &str = "<DATE>";

/// How long a test waits for the server to say it is listening. A debug build on a busy
/// 2-core CI machine can take a while to start its workers.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Default read timeout of a [`Client`]: long enough for a loaded CI machine, short enough
/// that a hung server fails the test quickly.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory under the system temp dir.
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "cerberus-test-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// Write a file in the directory and return its path.
    pub fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for TempDir {
    fn default() -> Self {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How to start a server: see [`Server::builder`].
pub struct Builder {
    config: String,
    workers: usize,
    listen: String,
    args: Vec<String>,
    nofile: Option<u64>,
    /// Leave `--workers` and `--metrics-listen` off the command line (see [`Builder::reloadable`]).
    config_only: bool,
    dir: TempDir,
}

impl Builder {
    /// Take `workers` and `metrics_listen` from the config file instead of flags, so that
    /// [`Server::reload_with`] can change them (flags override the file at every reload). The
    /// config must then set both (`metrics_listen = "127.0.0.1:0"` or `"off"`).
    pub fn reloadable(mut self) -> Builder {
        self.config_only = true;
        self
    }

    /// Worker threads (`--workers`); 1 unless set.
    pub fn workers(mut self, n: usize) -> Builder {
        self.workers = n;
        self
    }

    /// The `--listen` address; `127.0.0.1:0` unless set.
    pub fn listen(mut self, addr: &str) -> Builder {
        self.listen = addr.to_owned();
        self
    }

    /// Extra command-line arguments.
    pub fn arg(mut self, arg: &str) -> Builder {
        self.args.push(arg.to_owned());
        self
    }

    /// Start the server with this open-file limit (soft and hard), via util-linux `prlimit`.
    pub fn nofile(mut self, limit: u64) -> Builder {
        self.nofile = Some(limit);
        self
    }

    /// Write a file into the server's temporary directory; the config can name it as
    /// `$DIR/<name>` (for `body_file`).
    pub fn file(self, name: &str, contents: &[u8]) -> Builder {
        self.dir.write(name, contents);
        self
    }

    /// Start the server and wait until it is listening.
    pub fn start(self) -> Server {
        let config = write_config(&self.dir, &self.config);
        let mut cmd = match self.nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.arg("--listen").arg(&self.listen);
        if !self.config_only {
            cmd.arg("--workers")
                .arg(self.workers.to_string())
                .arg("--metrics-listen")
                .arg("off");
        }
        cmd.arg("--config").arg(&config).args(&self.args);
        let process = Launched::spawn(&mut cmd);
        let Some(bound) = process.wait_for(READY_TIMEOUT, parse_ready_line) else {
            panic!(
                "cerberus did not become ready within {READY_TIMEOUT:?}; stderr:\n{}",
                process.stderr()
            );
        };
        Server {
            process,
            bound,
            _dir: self.dir,
        }
    }
}

/// Write the config file the way [`Builder::start`] does: `pin = false` in front (pinning only
/// slows a shared 2-core CI machine down; tests never need it) and `$DIR` replaced.
fn write_config(dir: &TempDir, config: &str) -> PathBuf {
    let path = dir.path().display().to_string();
    let text = format!("pin = false\n{}", config.replace("$DIR", &path));
    dir.write("cerberus.toml", text.as_bytes())
}

/// The address in `cerberus: listening on ADDR with N workers (...)`.
fn parse_ready_line(line: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix("cerberus: listening on ")?;
    rest.split(' ').next()?.parse().ok()
}

/// A running `cerberus` process. Killed (SIGKILL) and reaped when dropped.
pub struct Server {
    /// The process and its stderr.
    process: Launched,
    /// The address from the ready line.
    bound: SocketAddr,
    /// Holds the config file (and any body files) until the server is gone.
    _dir: TempDir,
}

impl Server {
    /// A server with this config (TOML; `pin = false` is added in front, and `$DIR` is replaced
    /// by the server's temporary directory).
    pub fn builder(config: &str) -> Builder {
        Builder {
            config: config.to_owned(),
            workers: 1,
            listen: "127.0.0.1:0".to_owned(),
            args: Vec::new(),
            nofile: None,
            config_only: false,
            dir: TempDir::new(),
        }
    }

    /// Start a one-worker server with this config.
    pub fn start(config: &str) -> Server {
        Server::builder(config).start()
    }

    /// The address the server said it listens on.
    pub fn bound(&self) -> SocketAddr {
        self.bound
    }

    /// An address to connect to: the bound one, with a wildcard IP replaced by loopback.
    pub fn addr(&self) -> SocketAddr {
        let mut addr = self.bound();
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                Ipv4Addr::LOCALHOST.into()
            } else {
                Ipv6Addr::LOCALHOST.into()
            });
        }
        addr
    }

    /// A new client connection to the server.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr())
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// Send a signal to the server (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.process.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) takes plain integers and touches no memory of ours; `pid` is our own
        // child, which is not reaped until `wait_exit` or drop, so it cannot be a reused pid.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {signal}): {}",
            io::Error::last_os_error()
        );
    }

    /// Wait up to `timeout` for the process to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.process.stderr()
    }

    /// Rewrite the config file (as [`Server::builder`] takes it) and send SIGHUP.
    pub fn reload_with(&self, config: &str) {
        write_config(&self._dir, config);
        self.signal(libc::SIGHUP);
    }

    /// The metrics address from the start-up line (`...; metrics on ADDR`), if metrics are on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.stderr()
            .lines()
            .find(|l| l.starts_with("cerberus: listening on "))?
            .rsplit_once("; metrics on ")?
            .1
            .parse()
            .ok()
    }

    /// Resident set size in KiB (`VmRSS` of `/proc/PID/status`).
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// Peak resident set size since the process started, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// A `kB` field of `/proc/PID/status`, named with its colon.
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        let line = status
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_else(|| panic!("no {field} line"));
        line.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bad {field} value"))
    }

    /// CPU time used so far (user + system), in clock ticks (`/proc/PID/stat`).
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("read /proc/PID/stat");
        // The command name is in parentheses and may contain spaces; fields follow the last ')'.
        let after = &stat[stat.rfind(')').expect("comm field") + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 after the comm.
        let utime: u64 = fields[11].parse().expect("utime");
        let stime: u64 = fields[12].parse().expect("stime");
        utime + stime
    }

    /// Open file descriptors of the server process.
    pub fn open_fds(&self) -> usize {
        self.open_fds_below(usize::MAX)
    }

    /// Open file descriptors of the server process numbered below `limit` (descriptors
    /// inherited from the test's environment can sit above an `RLIMIT_NOFILE`).
    pub fn open_fds_below(&self, limit: usize) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<usize>().ok())
                    .filter(|&fd| fd < limit)
                    .count()
            })
            .unwrap_or(0)
    }
}

/// Run the binary to completion with these arguments (no server expected to stay up).
/// Returns the exit status and stderr. Killed after 15 s.
pub fn run_bin(args: &[&str]) -> (ExitStatus, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cerberus");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cerberus {args:?} did not exit within 15 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (
        status,
        out_thread.join().unwrap(),
        err_thread.join().unwrap(),
    )
}

/// A parsed response, with the exact bytes it came in.
#[derive(Debug, Clone)]
pub struct Response {
    /// Every byte of the response: head and body.
    pub raw: Vec<u8>,
    /// The status code.
    pub status: u16,
    /// Header fields in the order received.
    pub headers: Vec<(String, String)>,
    /// The body (by `Content-Length`; empty for 1xx and HEAD responses).
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
        let head = String::from_utf8(self.buf[..head_end].to_vec()).expect("ASCII head");
        let mut lines = head.trim_end_matches("\r\n").split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("bad header {l:?}"));
                (n.to_owned(), v.to_owned())
            })
            .collect();
        let len: usize = if head_only || (100..200).contains(&status) {
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

/// The bytes as text, with the value of every `Date` header replaced by [`DATE`]. Panics if a
/// `Date` value is not an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn normalize_date(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw).into_owned();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("\r\nDate: ") {
        let start = i + "\r\nDate: ".len();
        out.push_str(&rest[..start]);
        let end = rest[start..].find("\r\n").map_or(rest.len(), |e| start + e);
        let value = &rest[start..end];
        assert!(
            is_imf_fixdate(value),
            "Date {value:?} is not an IMF-fixdate"
        );
        out.push_str(DATE);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Does `s` look like `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7)?
pub fn is_imf_fixdate(s: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 29
        && DAYS.contains(&&s[0..3])
        && &s[3..5] == ", "
        && digits(5..7)
        && b[7] == b' '
        && MONTHS.contains(&&s[8..11])
        && b[11] == b' '
        && digits(12..16)
        && b[16] == b' '
        && digits(17..19)
        && b[19] == b':'
        && digits(20..22)
        && b[22] == b':'
        && digits(23..25)
        && &s[25..] == " GMT"
}

/// The exact bytes (Date normalised) of the server's error response for `status`.
pub fn error_response(status: u16, reason: &str) -> String {
    format!(
        "HTTP/1.1 {status} {reason}\r\nServer: cerberus\r\nDate: {DATE}\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reason}\n",
        reason.len() + 1
    )
}

/// The exact bytes (Date normalised) of the default response, with this `Connection` line
/// (e.g. `""`, `"Connection: close\r\n"`).
pub fn default_response(connection: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nServer: cerberus\r\nDate: {DATE}\r\nContent-Type: text/plain\r\n\
         Content-Length: 21\r\n{connection}\r\nHello from Cerberus!\n"
    )
}

/// Is IPv6 loopback usable on this machine?
pub fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}
