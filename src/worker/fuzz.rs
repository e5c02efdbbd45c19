//! A harness that drives one connection's state machine over a scripted socket, for the fuzz
//! target `fuzz/fuzz_targets/connection.rs` and the property test `tests/connection_props.rs`.
//! Not part of the API (the crate re-exports it hidden, as `cerberus::fuzzing`).
//!
//! The script decides how the request bytes arrive (in what pieces) and how much the socket
//! takes on each write; the oracle is that none of it may change what the client receives.
//! The same bytes delivered whole, to a socket that takes everything, must produce the same
//! responses byte for byte (`Date` values aside), and the worker's write buffer must be
//! empty after every event.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::conn::{Conn, Io, Outcome, Ready, Socket};
use super::ctx::{Ctx, Shared};
use crate::config::Config;
use crate::handler::Router;
use crate::http::RequestParser;
use crate::stats::StatsWriter;

/// The config the harness serves by: an echo route (so bodies reach the output), `inspect`,
/// the static default, and a small `max_output` so that backpressure happens.
const CONFIG: &str = r#"
max_output = 2048
max_body = 65536
[[route]]
path = "/echo"
handler = "echo"
[[route]]
path = "/inspect"
handler = "inspect"
"#;

/// A socket whose input arrives as the script says and whose writes are limited by a budget.
#[derive(Debug, Default)]
struct ScriptedSocket {
    /// Bytes the client has sent that the server has not read.
    input: VecDeque<u8>,
    /// The client has shut its side: reads end with EOF once `input` is empty.
    eof: bool,
    /// Bytes the socket takes before it reports `WouldBlock`.
    budget: usize,
    /// Everything the server wrote.
    output: Vec<u8>,
}

impl Read for ScriptedSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(self.input.len());
        for (slot, byte) in buf.iter_mut().zip(self.input.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Write for ScriptedSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.budget == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.budget);
        self.budget -= n;
        self.output.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for ScriptedSocket {
    fn shutdown_write(&self) -> io::Result<()> {
        Ok(())
    }

    fn reset(&self) {}
}

/// The config and routes, built once: parsing TOML for every run would dominate a fuzzer's
/// time.
fn shared() -> Arc<Shared> {
    static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let config: Config = toml::from_str(CONFIG).expect("the harness config parses");
            let router = Router::from_config(&config).expect("the harness routes build");
            Arc::new(Shared {
                config,
                router,
                tls: None,
            })
        })
        .clone()
}

/// One connection and the worker state it borrows.
struct Harness {
    conn: Conn<ScriptedSocket>,
    ctx: Ctx,
    rbuf: Vec<u8>,
    parser: RequestParser,
    closed: bool,
}

impl Harness {
    fn new(read_buf: usize) -> Harness {
        let stats = StatsWriter::new();
        Harness {
            conn: Conn::new(
                ScriptedSocket::default(),
                shared(),
                std::net::Ipv4Addr::LOCALHOST.into(),
            ),
            ctx: Ctx::new(0, shared(), stats, Instant::now(), 4096),
            rbuf: vec![0; read_buf],
            parser: RequestParser::new(),
            closed: false,
        }
    }

    /// Deliver an event, as the worker would; checks the write buffer's invariant.
    fn event(&mut self, readable: bool, writable: bool) {
        if self.closed {
            return;
        }
        let ready = Ready {
            readable,
            writable,
            read_closed: self.socket().eof,
        };
        let io = Io {
            rbuf: &mut self.rbuf,
            parser: &mut self.parser,
        };
        self.ctx.now = Instant::now();
        let outcome = self.conn.on_event(ready, io, &mut self.ctx);
        assert!(self.ctx.wbuf.is_empty(), "an event left staged bytes");
        self.closed = matches!(outcome, Outcome::Close(_));
    }

    fn socket(&mut self) -> &mut ScriptedSocket {
        self.conn.socket_mut()
    }

    /// Let the client read everything owed and close its side; the connection then ends.
    fn finish(&mut self) {
        self.socket().eof = true;
        // Each round the socket takes everything: what is owed drains, held-back requests
        // are answered, and the EOF is read. A few rounds always suffice; more is a hang.
        for _ in 0..64 {
            if self.closed {
                return;
            }
            self.socket().budget = usize::MAX;
            self.event(true, true);
        }
        panic!("the connection never finished");
    }
}

/// Run `script` (see the module doc) over `requests`; panics if the oracle fails.
///
/// The script is read a byte at a time: an even byte delivers the next `byte / 2 + 1` bytes
/// of `requests` and reports the socket readable; an odd one gives the socket `byte * 8`
/// bytes of room and reports it writable. Whatever the script leaves undelivered arrives at
/// the end, before the client reads everything and closes.
pub fn run(script: &[u8], requests: &[u8]) {
    let expected = whole(requests);
    let mut h = Harness::new(64);
    let mut sent = 0;
    for &op in script {
        if op % 2 == 0 {
            let n = (usize::from(op) / 2 + 1).min(requests.len() - sent);
            h.socket().input.extend(&requests[sent..sent + n]);
            sent += n;
            h.event(true, false);
        } else {
            h.socket().budget = usize::from(op) * 8;
            h.event(false, true);
        }
    }
    h.socket().input.extend(&requests[sent..]);
    h.finish();
    assert_same_responses(&expected, &h.socket().output);
}

/// Panics unless `whole` and `pieces` are the same responses, `Date` values and interim
/// `100 Continue` responses aside.
pub fn assert_same_responses(whole: &[u8], pieces: &[u8]) {
    let (whole, pieces) = (without_dates(whole), without_dates(pieces));
    assert!(
        whole == pieces,
        "responses depend on how the bytes arrived:\nwhole: {:?}\npieces: {:?}",
        String::from_utf8_lossy(&whole),
        String::from_utf8_lossy(&pieces)
    );
}

/// The responses to `requests` delivered at once to a socket that takes everything.
fn whole(requests: &[u8]) -> Vec<u8> {
    let mut h = Harness::new(64 * 1024);
    h.socket().input.extend(requests);
    h.socket().budget = usize::MAX;
    h.event(true, true);
    h.finish();
    std::mem::take(&mut h.socket().output)
}

/// `bytes` with every `Date:` header value blanked (the two runs may straddle a second) and
/// without interim `100 Continue` responses, which are sent only when a head arrives before
/// its body: the one thing the order of arrival may rightly change.
fn without_dates(bytes: &[u8]) -> Vec<u8> {
    const DATE: &[u8] = b"\r\nDate: ";
    const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut kept = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = rest.windows(CONTINUE.len()).position(|w| w == CONTINUE) {
        kept.extend_from_slice(&rest[..at]);
        rest = &rest[at + CONTINUE.len()..];
    }
    kept.extend_from_slice(rest);
    let mut out = Vec::with_capacity(kept.len());
    let mut rest = &kept[..];
    while let Some(at) = rest.windows(DATE.len()).position(|w| w == DATE) {
        let value = at + DATE.len();
        out.extend_from_slice(&rest[..value]);
        let end = rest[value..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(rest.len(), |e| value + e);
        rest = &rest[end..];
    }
    out.extend_from_slice(rest);
    out
}
