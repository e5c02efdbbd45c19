//! One probe of the smuggling and framing table: the exact bytes, the statuses expected in
//! order, and whether the connection must close afterwards; and how a probe is run.
//!
//! The rule every probe checks: either its 4xx/5xx and a closed connection, or exactly one
//! framing. After the expected responses, a probe that must close has to see EOF with no byte
//! more; a probe that must stay open sends a canary request (`GET /canary`, answered 203) and
//! the very next response must be the canary's. So a body read as a request shows up as an
//! extra response (a request for `/smuggled` is answered 202, which no probe expects), and a
//! body left unread shows up as a mangled canary.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use crate::common::{Client, Response};

/// The server's configuration for the probes.
pub const CONFIG: &str = r#"
[[route]]
prefix = "/admin"
status = 403
body = "forbidden\n"
[[route]]
path = "/canary"
status = 203
body = "canary\n"
[[route]]
path = "/smuggled"
status = 202
body = "smuggled\n"
[[route]]
path = "/no-content"
status = 204
body = ""
[[route]]
path = "/not-modified"
status = 304
body = ""
[[route]]
path = "/inspect"
handler = "inspect"
[[route]]
method = "POST"
path = "/echo"
handler = "echo"
"#;

/// The canary request a probe that must stay open sends after its own bytes.
const CANARY: &[u8] = b"GET /canary HTTP/1.1\r\nHost: canary\r\n\r\n";
/// The canary's status (see [`CONFIG`]).
const CANARY_STATUS: u16 = 203;
/// How long a probe waits for each response, or for the connection to close. The server
/// answers at once; only a probe that fails waits this long.
const WAIT: Duration = Duration::from_secs(5);
/// The pause before a probe's second part (see [`Probe::then`]).
const PAUSE: Duration = Duration::from_millis(500);

/// What must happen to the connection after the expected responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// It stays open, framed exactly where the canary starts.
    Open,
    /// The server closes it.
    Close,
    /// Where the RFC allows either answer: closed after a 4xx/5xx, open after a 2xx.
    ByStatus,
}

/// Look at the first response beyond its status; `Err` says what is wrong.
pub type Check = fn(&Response) -> Result<(), String>;

/// One probe.
#[derive(Clone, Copy)]
pub struct Probe {
    /// A unique name.
    pub name: &'static str,
    /// The bytes sent, in one write.
    pub bytes: &'static [u8],
    /// More bytes, sent [`PAUSE`] later (to see what the server says before they arrive).
    pub then: Option<&'static [u8]>,
    /// The statuses of the responses in order, space-separated; `|` separates statuses the RFC
    /// allows alike (`"200 400"`: two responses; `"200|400"`: one, either).
    pub expect: &'static str,
    /// What happens to the connection afterwards.
    pub after: After,
    /// A further check of the first response.
    pub check: Option<Check>,
}

/// A probe whose connection must stay open.
pub const fn open(name: &'static str, bytes: &'static [u8], expect: &'static str) -> Probe {
    probe(name, bytes, expect, After::Open)
}

/// A probe whose connection must be closed by the server.
pub const fn close(name: &'static str, bytes: &'static [u8], expect: &'static str) -> Probe {
    probe(name, bytes, expect, After::Close)
}

/// A probe where either a 2xx (stay open) or a 4xx/5xx (close) is right.
pub const fn either(name: &'static str, bytes: &'static [u8], expect: &'static str) -> Probe {
    probe(name, bytes, expect, After::ByStatus)
}

const fn probe(
    name: &'static str,
    bytes: &'static [u8],
    expect: &'static str,
    after: After,
) -> Probe {
    Probe {
        name,
        bytes,
        then: None,
        expect,
        after,
        check: None,
    }
}

impl Probe {
    /// Send `bytes` after a pause.
    pub const fn then(mut self, bytes: &'static [u8]) -> Probe {
        self.then = Some(bytes);
        self
    }

    /// Check the first response further.
    pub const fn check(mut self, check: Check) -> Probe {
        self.check = Some(check);
        self
    }

    /// Run the probe on a new connection to `addr`; `Err` says how the server broke the rule.
    pub fn run(&self, addr: SocketAddr) -> Result<(), String> {
        let mut c = Client::connect(addr);
        c.set_read_timeout(WAIT);
        // The server may close (even reset) before taking every byte; what it answered is
        // what counts.
        let _ = c.try_send(self.bytes);
        if let Some(then) = self.then {
            std::thread::sleep(PAUSE);
            let _ = c.try_send(then);
        }
        let mut got = Vec::new();
        for (i, allowed) in self.expect.split(' ').enumerate() {
            let head_only = i == 0 && self.bytes.starts_with(b"HEAD ");
            let res = c
                .try_read_response(head_only)
                .map_err(|e| format!("after {got:?}, expected {allowed}: {}", brief(&e)))?;
            got.push(res.status);
            if !allowed.split('|').any(|s| s == res.status.to_string()) {
                return Err(format!("got {got:?}, expected {}", self.expect));
            }
            if let (0, Some(check)) = (i, self.check) {
                check(&res).map_err(|e| format!("response {}: {e}", res.status))?;
            }
        }
        let closes = match self.after {
            After::Open => false,
            After::Close => true,
            After::ByStatus => got.last().is_some_and(|&s| s >= 400),
        };
        if closes {
            expect_closed(&mut c, &got)
        } else {
            expect_canary(&mut c, &got)
        }
    }
}

/// After `got`, the server must close with nothing more.
fn expect_closed(c: &mut Client, got: &[u16]) -> Result<(), String> {
    match c.try_read_response(false) {
        Ok(res) => Err(format!("after {got:?}, an extra response {}", res.status)),
        // `EOF inside a response head: ""`: closed with no byte more.
        Err(e) if e.kind() == ErrorKind::UnexpectedEof && e.to_string().ends_with("\"\"") => Ok(()),
        // A reset closes too: the server may close with unread bytes of the probe queued.
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(()),
        Err(e) => Err(format!("after {got:?}, expected a close: {}", brief(&e))),
    }
}

/// After `got`, the connection must still be open and framed at the canary.
fn expect_canary(c: &mut Client, got: &[u16]) -> Result<(), String> {
    if let Err(e) = c.try_send(CANARY) {
        return Err(format!("after {got:?}, the canary could not be sent: {e}"));
    }
    match c.try_read_response(false) {
        Ok(res) if res.status == CANARY_STATUS => Ok(()),
        Ok(res) => Err(format!(
            "after {got:?}, the canary got {} (a body read as a request, or misframed)",
            res.status
        )),
        Err(e) => Err(format!("after {got:?}, no canary response: {}", brief(&e))),
    }
}

/// An I/O error as a short phrase: a timeout says so.
fn brief(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => format!("nothing within {WAIT:?}"),
        _ => {
            let text = e.to_string();
            text.chars().take(160).collect()
        }
    }
}
