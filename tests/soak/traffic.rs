//! The soak's clients: random requests, what each must get back, and a tally of what came back.
//!
//! A connection sends batches of 1 to 8 pipelined requests (each batch in up to three writes,
//! split at random), reads and checks one response per request, and ends in one of four ways:
//! the client just closes it, asks for `Connection: close`, sends a bad request (answered with
//! an error and a close), or closes in the middle of a request (an early close, never answered
//! and never counted).

use std::fmt;
use std::net::SocketAddr;

use crate::common::{Client, Response};

/// A small, seeded generator (splitmix64): runs replay from their seed, with no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What the clients send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Every kind of request, early closes and bad requests.
    Everything,
    /// Only GETs, always 8 deep, each batch in one write, on long-lived connections: every
    /// request of a batch is in the server when it answers the first, so none may go
    /// unanswered at a reload's `Connection: close`.
    PipelinedGets,
}

/// What one request must get back.
struct Expected {
    /// The `method` label it is counted under.
    method: &'static str,
    status: u16,
    /// The body, unless the response is to HEAD.
    body: Option<Vec<u8>>,
    /// The parse error it is counted under, for a bad request.
    parse_error: Option<&'static str>,
    /// Its JSON body is counted as `parsed` (true) or `rejected` (false).
    json: Option<bool>,
    /// The response must close the connection.
    closes: bool,
}

/// The default response's body.
const DEFAULT_BODY: &[u8] = b"Hello from Cerberus!\n";

/// A random body of `0..max` printable bytes.
fn body(rng: &mut Rng, max: u64) -> Vec<u8> {
    let len = rng.below(max);
    (0..len).map(|_| b'a' + rng.below(26) as u8).collect()
}

/// A random request that keeps the connection open unless `close`; returns its bytes.
fn good_request(rng: &mut Rng, close: bool, mix: Mix) -> (Vec<u8>, Expected) {
    let conn = if close { "Connection: close\r\n" } else { "" };
    let kind = if mix == Mix::PipelinedGets {
        0
    } else {
        rng.below(7)
    };
    let mut expected = Expected {
        method: "POST",
        status: 200,
        body: None,
        parse_error: None,
        json: None,
        closes: close,
    };
    let bytes = match kind {
        0 | 1 => {
            expected.method = "GET";
            expected.body = Some(DEFAULT_BODY.to_vec());
            format!("GET /p{} HTTP/1.1\r\nHost: s\r\n{conn}\r\n", rng.below(100)).into_bytes()
        }
        2 => {
            expected.method = "HEAD";
            format!("HEAD / HTTP/1.1\r\nHost: s\r\n{conn}\r\n").into_bytes()
        }
        3 => {
            let b = body(rng, 2000);
            let head = format!(
                "POST /echo HTTP/1.1\r\nHost: s\r\n{conn}Content-Length: {}\r\n\r\n",
                b.len()
            );
            expected.body = Some(b.clone());
            [head.into_bytes(), b].concat()
        }
        4 => {
            let b = body(rng, 2000);
            let head = format!(
                "POST /echo HTTP/1.1\r\nHost: s\r\n{conn}Transfer-Encoding: chunked\r\n\r\n"
            );
            let encoded = chunked(rng, &b);
            expected.body = Some(b);
            [head.into_bytes(), encoded].concat()
        }
        _ => json_request(rng, conn, kind == 5, &mut expected),
    };
    (bytes, expected)
}

/// A POST of a valid or invalid JSON body: echoed, or answered with a JSON 400.
fn json_request(rng: &mut Rng, conn: &str, valid: bool, expected: &mut Expected) -> Vec<u8> {
    let b = if valid {
        format!("{{\"n\": {}, \"s\": [true, null, \"x\"]}}", rng.below(1000))
    } else {
        format!("{{\"n\": {}, \"s\": [true, nul]}}", rng.below(1000))
    };
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: s\r\n{conn}Content-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        b.len()
    );
    expected.status = if valid { 200 } else { 400 };
    // The 400's body is a JSON error; only its status and type are checked.
    expected.body = valid.then(|| b.clone().into_bytes());
    expected.json = Some(valid);
    [head.into_bytes(), b.into_bytes()].concat()
}

/// `body` as chunks of random sizes, sometimes with an extension or a trailer.
fn chunked(rng: &mut Rng, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let n = (1 + rng.below(700) as usize).min(rest.len());
        let ext = if rng.chance(20) { ";ext=1" } else { "" };
        out.extend_from_slice(format!("{n:x}{ext}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    let trailer = if rng.chance(20) {
        "X-Trailer: t\r\n"
    } else {
        ""
    };
    out.extend_from_slice(format!("0\r\n{trailer}\r\n").as_bytes());
    out
}

/// A request the parser rejects: answered with an error, then the connection closes.
fn bad_request(rng: &mut Rng) -> (Vec<u8>, Expected) {
    let (bytes, status, kind): (&str, u16, &str) = match rng.below(3) {
        0 => ("GET / HTTP/1.1\nHost: s\r\n\r\n", 400, "bare_lf"),
        1 => (
            "POST /echo HTTP/1.1\r\nHost: s\r\nContent-Length: 1x\r\n\r\n",
            400,
            "invalid_content_length",
        ),
        _ => ("BREW / HTTP/1.1\r\nHost: s\r\n\r\n", 501, "unknown_method"),
    };
    let expected = Expected {
        method: "other",
        status,
        body: None,
        parse_error: Some(kind),
        json: None,
        closes: true,
    };
    (bytes.as_bytes().to_vec(), expected)
}

/// What the clients counted.
#[derive(Debug, Default)]
pub struct Tally {
    /// Responses by (method label, status code), as `cerberus_requests_total` counts them.
    pub by_series: std::collections::BTreeMap<(String, String), u64>,
    /// Bad requests answered, by parse-error kind.
    pub parse_errors: std::collections::BTreeMap<String, u64>,
    pub json_parsed: u64,
    pub json_rejected: u64,
    /// Responses received and checked.
    pub answered: u64,
    pub bad: u64,
    pub early_closes: u64,
    pub connections: u64,
    /// Requests sent in the same batch after one the server answered with an unasked-for
    /// `Connection: close` (a reload) that never got an answer. With [`Mix::PipelinedGets`]
    /// (one write per batch) they were all in the server, so any is a loss. With
    /// [`Mix::Everything`] a batch may be split over writes and the server may not have had
    /// them, so the client sends them again on a new connection, as RFC 9112 §9.3.1 lets it
    /// (they are idempotent or were never processed); only those still unanswered after
    /// that count here.
    pub lost_after_close: u64,
    /// Requests sent again on a new connection after an unasked-for `Connection: close`.
    pub retried_after_close: u64,
    /// Wrong responses, and connections that ended without answering what they were sent.
    pub errors: Vec<String>,
}

impl Tally {
    /// Add another client's tally to this one.
    pub fn absorb(&mut self, other: Tally) {
        for (k, v) in other.by_series {
            *self.by_series.entry(k).or_default() += v;
        }
        for (k, v) in other.parse_errors {
            *self.parse_errors.entry(k).or_default() += v;
        }
        self.json_parsed += other.json_parsed;
        self.json_rejected += other.json_rejected;
        self.answered += other.answered;
        self.bad += other.bad;
        self.early_closes += other.early_closes;
        self.connections += other.connections;
        self.lost_after_close += other.lost_after_close;
        self.retried_after_close += other.retried_after_close;
        self.errors.extend(other.errors);
    }

    fn count(&mut self, expected: &Expected) {
        let key = (expected.method.to_owned(), expected.status.to_string());
        *self.by_series.entry(key).or_default() += 1;
        if let Some(kind) = expected.parse_error {
            *self.parse_errors.entry(kind.to_owned()).or_default() += 1;
            self.bad += 1;
        }
        match expected.json {
            Some(true) => self.json_parsed += 1,
            Some(false) => self.json_rejected += 1,
            None => {}
        }
        self.answered += 1;
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} responses on {} connections ({} bad requests, {} JSON parsed, {} rejected, \
             {} early closes), {} sent again and {} lost after a reload's close, {} errors; \
             by series {:?}",
            self.answered,
            self.connections,
            self.bad,
            self.json_parsed,
            self.json_rejected,
            self.early_closes,
            self.retried_after_close,
            self.lost_after_close,
            self.errors.len(),
            self.by_series
        )
    }
}

/// Is `res` the right answer to a request expecting `expected`?
fn check(res: &Response, expected: &Expected) -> Result<(), String> {
    let wrong = || format!("expected {}: got {}", expected.status, res.normalized());
    if res.status != expected.status {
        return Err(wrong());
    }
    if let Some(body) = &expected.body {
        if res.body != *body {
            return Err(wrong());
        }
    } else if expected.json == Some(false) && res.header("Content-Type") != Some("application/json")
    {
        return Err(wrong());
    }
    if expected.closes && res.header("Connection") != Some("close") {
        return Err(format!("no Connection: close: {}", res.normalized()));
    }
    Ok(())
}

/// How a connection ends.
#[derive(Clone, Copy, PartialEq)]
enum End {
    Open,
    Close,
    Bad,
    Early,
}

/// One connection: batches until it ends. Everything it saw goes into `tally`.
pub fn run_connection(addr: SocketAddr, rng: &mut Rng, mix: Mix, tally: &mut Tally) {
    let mut c = Client::connect(addr);
    tally.connections += 1;
    let batches = 1 + rng.below(if mix == Mix::PipelinedGets { 200 } else { 20 });
    for i in 0..batches {
        let end = if i + 1 < batches || mix == Mix::PipelinedGets {
            End::Open
        } else {
            [End::Open, End::Close, End::Bad, End::Early][rng.below(4) as usize]
        };
        if !run_batch(addr, &mut c, rng, mix, end, tally) || end != End::Open {
            return;
        }
    }
}

/// Send one batch and check its responses; false when the connection is over.
fn run_batch(
    addr: SocketAddr,
    c: &mut Client,
    rng: &mut Rng,
    mix: Mix,
    end: End,
    tally: &mut Tally,
) -> bool {
    let depth = if mix == Mix::PipelinedGets {
        8
    } else {
        1 + rng.below(8)
    };
    let mut bytes = Vec::new();
    let mut requests = Vec::new();
    for j in 0..depth {
        let last = j + 1 == depth;
        let (b, e) = match end {
            End::Bad if last => bad_request(rng),
            _ => good_request(rng, last && end == End::Close, mix),
        };
        bytes.extend_from_slice(&b);
        requests.push((b, e));
    }
    if end == End::Early {
        // Part of one more request: the server must neither answer nor count it.
        let (b, _) = good_request(rng, false, mix);
        bytes.extend_from_slice(&b[..1 + rng.below(b.len() as u64 - 1) as usize]);
    }
    // A loss at a reload's close is certain only if the whole batch is in the server when it
    // answers the first request: PipelinedGets sends each batch in one write.
    let pieces = if mix == Mix::PipelinedGets {
        0
    } else {
        rng.below(3)
    };
    if let Err(e) = send_in_pieces(c, rng, &bytes, pieces) {
        // A reload may close the connection while the batch is still being written: the
        // answers up to its `Connection: close` are there to read, and the rest is unanswered.
        match read_batch(c, &requests, tally) {
            Ok(Some(k)) if mix == Mix::Everything => retry(addr, &requests[k..], tally),
            _ => tally.errors.push(format!("send: {e}")),
        }
        return false;
    }
    let unanswered = match read_batch(c, &requests, tally) {
        Ok(None) => {
            if end == End::Early {
                tally.early_closes += 1;
            }
            return true;
        }
        Ok(Some(k)) => &requests[k..],
        Err(()) => return false,
    };
    if mix == Mix::PipelinedGets {
        tally.lost_after_close += unanswered.len() as u64;
    } else {
        retry(addr, unanswered, tally);
    }
    false
}

/// Read and check the responses to `requests`. `Ok(Some(k))`: request `k - 1`'s answer came
/// with an unasked-for `Connection: close` (a reload), so the connection is over and the
/// requests from `k` on are unanswered; `Err`: a wrong response.
fn read_batch(
    c: &mut Client,
    requests: &[(Vec<u8>, Expected)],
    tally: &mut Tally,
) -> Result<Option<usize>, ()> {
    let depth = requests.len();
    for (k, (_, e)) in requests.iter().enumerate() {
        let res = match c.try_read_response(e.method == "HEAD") {
            Ok(res) => res,
            Err(err) => {
                tally.errors.push(format!("response {k} of {depth}: {err}"));
                return Err(());
            }
        };
        if let Err(err) = check(&res, e) {
            tally.errors.push(format!("response {k} of {depth}: {err}"));
            return Err(());
        }
        tally.count(e);
        if res.header("Connection") == Some("close") && !e.closes {
            return Ok(Some(k + 1));
        }
    }
    Ok(None)
}

/// Send `requests` again, in one write, on new connections, until every one is answered (a
/// reload may close a connection again); what is still unanswered after a few tries is lost.
fn retry(addr: SocketAddr, mut requests: &[(Vec<u8>, Expected)], tally: &mut Tally) {
    for _ in 0..10 {
        if requests.is_empty() {
            return;
        }
        tally.retried_after_close += requests.len() as u64;
        let mut c = Client::connect(addr);
        tally.connections += 1;
        let bytes: Vec<u8> = requests.iter().flat_map(|(b, _)| b.clone()).collect();
        if let Err(e) = c.try_send(&bytes) {
            tally.errors.push(format!("send again: {e}"));
            return;
        }
        match read_batch(&mut c, requests, tally) {
            Ok(None) | Err(()) => return,
            Ok(Some(k)) => requests = &requests[k..],
        }
    }
    tally.lost_after_close += requests.len() as u64;
}

/// Write `bytes` in `splits + 1` writes, split at random points.
fn send_in_pieces(c: &mut Client, rng: &mut Rng, bytes: &[u8], splits: u64) -> std::io::Result<()> {
    let mut rest = bytes;
    for _ in 0..splits {
        let at = rng.below(rest.len() as u64) as usize;
        c.try_send(&rest[..at])?;
        rest = &rest[at..];
    }
    c.try_send(rest)
}
