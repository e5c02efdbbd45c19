//! Helpers for `tests/metrics.rs`: start the real binary with its metrics listener, talk HTTP
//! to both ports, parse the Prometheus text exposition, and run promtool and Prometheus.
//!
//! - [`Cerberus`] starts the binary (through `launch.rs`) (`--workers 2`, both listeners on `127.0.0.1:0`, pinning
//!   off), waits (bounded) for the start-up line, parses both addresses from it, and kills the
//!   process when dropped.
//! - [`KeepAlive`] sends requests on one connection and reads each response by its framing.
//! - [`Exposition`] is a parsed scrape: samples by name and labels.
//!
//! The outside tools (promtool, Prometheus, `/proc`) are in `metrics_tools.rs`.
//!
//! Every socket has timeouts and every wait is bounded, so a hung server fails a test instead
//! of hanging it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::launch::Launched;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_cerberus");
/// How long start-up may take: a debug build on a busy 2-core machine is slow to start.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Socket timeout for every test client: long for a loaded machine, short enough to fail fast.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory under the system temp dir.
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "cerberus-metrics-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `cerberus`. Killed and reaped when dropped.
pub struct Cerberus {
    /// The process and its stderr.
    process: Launched,
    /// The request listener, from the start-up line.
    pub listen: SocketAddr,
    /// The metrics listener, from the start-up line; `None` when it said `metrics off`.
    pub metrics: Option<SocketAddr>,
    /// Holds the config file.
    _dir: TempDir,
}

impl Cerberus {
    /// Start with two workers and `--metrics-listen metrics_listen` (`127.0.0.1:0` or `off`).
    pub fn start(metrics_listen: &str) -> Cerberus {
        let dir = TempDir::new();
        // Pinning only slows a shared 2-core machine down; no test here needs it.
        let config = dir.path().join("cerberus.toml");
        std::fs::write(&config, "pin = false\n").expect("write config");
        let mut cmd = Command::new(BIN);
        cmd.args(["--listen", "127.0.0.1:0", "--workers", "2"])
            .args(["--metrics-listen", metrics_listen])
            .arg("--config")
            .arg(&config);
        let process = Launched::spawn(&mut cmd);
        let Some((listen, metrics)) = process.wait_for(READY_TIMEOUT, parse_start_line) else {
            panic!(
                "no start-up line within {READY_TIMEOUT:?}; stderr:\n{}",
                process.stderr()
            );
        };
        Cerberus {
            process,
            listen,
            metrics,
            _dir: dir,
        }
    }

    /// The metrics address; panics if metrics are off.
    pub fn metrics(&self) -> SocketAddr {
        self.metrics.expect("metrics are on")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.process.stderr()
    }
}

/// `cerberus: listening on ADDR with N workers (...); metrics on ADDR` (or `metrics off`).
pub fn parse_start_line(line: &str) -> Option<(SocketAddr, Option<SocketAddr>)> {
    let rest = line.strip_prefix("cerberus: listening on ")?;
    let listen = rest.split(' ').next()?.parse().ok()?;
    if line.ends_with("; metrics off") {
        return Some((listen, None));
    }
    let metrics = line.rsplit_once("; metrics on ")?.1.parse().ok()?;
    Some((listen, Some(metrics)))
}

/// A response: status, headers (names lower-cased) and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }
}

/// The status and headers of a raw response (body left empty), and where its body starts.
pub fn parse_head(raw: &[u8]) -> Option<(Reply, usize)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&raw[..end]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    Some((reply, end))
}

/// One `GET path` with `Connection: close`; the response is read until EOF.
pub fn get(addr: SocketAddr, path: &str) -> Reply {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"),
    )
}

/// Send raw request text on a new connection and read the response until EOF.
pub fn request(addr: SocketAddr, text: &str) -> Reply {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(text.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("read from {addr}: {e}"));
    let (mut reply, end) = parse_head(&raw)
        .unwrap_or_else(|| panic!("bad response: {:?}", String::from_utf8_lossy(&raw)));
    reply.body = raw[end..].to_vec();
    reply
}

/// A keep-alive connection that reads each response by its `Content-Length`.
pub struct KeepAlive {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl KeepAlive {
    /// Connect to `addr`.
    pub fn connect(addr: SocketAddr) -> KeepAlive {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        KeepAlive {
            stream,
            buf: Vec::new(),
        }
    }

    /// Send raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Read one response; `head_only` for the answer to HEAD. Returns its status.
    pub fn read_status(&mut self, head_only: bool) -> u16 {
        loop {
            if let Some((reply, end)) = parse_head(&self.buf) {
                let length: usize = reply
                    .header("content-length")
                    .map_or(0, |v| v.parse().expect("Content-Length"));
                let total = end + if head_only { 0 } else { length };
                if self.buf.len() >= total {
                    self.buf.drain(..total);
                    return reply.status;
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("EOF; have {:?}", String::from_utf8_lossy(&self.buf)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read: {e}"),
            }
        }
    }
}

/// One sample of a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed text exposition (format 0.0.4).
#[derive(Debug)]
pub struct Exposition {
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Parse exposition text; panics on a line that is not a comment or a sample.
    pub fn parse(text: &str) -> Exposition {
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| parse_sample(l).unwrap_or_else(|| panic!("bad sample line {l:?}")))
            .collect();
        Exposition { samples }
    }

    /// Every sample called `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The sum of every sample called `name`.
    pub fn sum(&self, name: &str) -> f64 {
        self.all(name).map(|s| s.value).sum()
    }

    /// The sample called `name` with exactly these labels.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.all(name).find(|s| s.labels == want).map(|s| s.value)
    }
}

/// `name{label="value",...} value [timestamp]`, with `\\`, `\"` and `\n` escapes in values.
fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        loop {
            rest = rest.trim_start_matches(',');
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (label, after) = rest.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.insert(label.to_owned(), value);
            rest = &after[end + 1..];
        }
    }
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Fetch and parse `/metrics`.
pub fn scrape(metrics: SocketAddr) -> Exposition {
    let reply = get(metrics, "/metrics");
    assert_eq!(reply.status, 200, "{}", reply.text());
    Exposition::parse(&reply.text())
}

/// Poll `check` on fresh scrapes until it returns true or `timeout` passes; returns the last
/// scrape. For counters updated after the client already saw its response (e.g. closes).
pub fn scrape_until(
    metrics: SocketAddr,
    timeout: Duration,
    check: impl Fn(&Exposition) -> bool,
) -> Exposition {
    let deadline = Instant::now() + timeout;
    loop {
        let e = scrape(metrics);
        if check(&e) || Instant::now() >= deadline {
            return e;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
