//! Soak of the load-test target with exact accounting: client threads send randomized shaped
//! requests (status mixes, uniform, weighted and log-normal delays, sizes, drips, closes and
//! resets) for about 60 s while SIGHUP reloads the server, in place and with a new worker
//! count. Each client tallies what it saw, by status, delay bucket (from the delay each
//! response says it was given), body bytes, closes and resets; at the end the route's counters
//! must equal the tally exactly.
//!
//! A reset is told apart from a connection a drain closed under a client by sending every
//! request that may be reset on a fresh connection; any other request that finds its
//! connection closed before any byte of its response is sent again on a new one, as a client
//! would (the server never read it). `SHAPE_SOAK_SECS` changes the length for a local run.

mod common;
#[path = "shape/wire.rs"]
mod wire;

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::metrics_helpers::scrape;
use common::Server;
use wire::Conn;

const CLIENTS: u64 = 8;
/// The delay histogram's bounds, in microseconds (the server's `DELAY_BUCKETS_US`).
const BOUNDS_US: [u64; 15] = [
    0, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// The request shapes, and whether a request may be reset (then its delay, fixed, in µs).
const SHAPES: [(&str, Option<u64>); 7] = [
    ("status=503:20,429:5&delay=0ms..3ms&size=0..2000", None),
    ("delay=p50:1ms,p99:6ms&size=100:50,20000:10", None),
    ("status=500:30&close=20&size=1KiB", None),
    ("reset=30&delay=1ms&status=502:50&size=10", Some(1_000)),
    ("drip=3x1ms&size=0..300&status=206:50", None),
    ("delay=2ms:50,4ms:50&size=40KiB:10", None),
    ("status=404&size=0", None),
];

fn config(workers: usize) -> String {
    format!("workers = {workers}\n[[route]]\nprefix = \"/s\"\nhandler = \"shape\"\n")
}

/// What one client saw.
#[derive(Debug, Default, Clone, PartialEq)]
struct Tally {
    statuses: BTreeMap<u16, u64>,
    /// Per bucket (not cumulative), the last is `+Inf`.
    buckets: Vec<u64>,
    delay_us: u64,
    body: u64,
    closes: u64,
    resets: u64,
    /// Requests sent again after a drain closed their connection first.
    resent: u64,
}

impl Tally {
    fn delay(&mut self, us: u64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; BOUNDS_US.len() + 1];
        }
        let b = BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BOUNDS_US.len());
        self.buckets[b] += 1;
        self.delay_us += us;
    }

    fn add(&mut self, other: &Tally) {
        for (s, n) in &other.statuses {
            *self.statuses.entry(*s).or_default() += n;
        }
        for (i, n) in other.buckets.iter().enumerate() {
            if self.buckets.is_empty() {
                self.buckets = vec![0; BOUNDS_US.len() + 1];
            }
            self.buckets[i] += n;
        }
        self.delay_us += other.delay_us;
        self.body += other.body;
        self.closes += other.closes;
        self.resets += other.resets;
        self.resent += other.resent;
    }
}

/// xorshift64*, seeded per client.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// One client: requests until `stop`, one at a time.
fn client(addr: std::net::SocketAddr, seed: u64, stop: &AtomicBool) -> Tally {
    let mut rng = Rng(seed | 1);
    let mut tally = Tally::default();
    let mut conn: Option<Conn> = None;
    while !stop.load(Ordering::Relaxed) {
        let (shape, reset_delay) = SHAPES[rng.below(SHAPES.len() as u64) as usize];
        let target = format!("/s?{shape}");
        if let Some(delay) = reset_delay {
            // A fresh connection: no drain can have closed it before the request arrived.
            let mut fresh = Conn::connect(addr);
            fresh.get(&target);
            match fresh.read(false) {
                Ok(got) => {
                    see(&mut tally, &got);
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    tally.resets += 1;
                    tally.delay(delay);
                }
                Err(e) => panic!("{target}: {e}"),
            }
            continue;
        }
        loop {
            let c = conn.get_or_insert_with(|| Conn::connect(addr));
            c.get(&target);
            match c.read(false) {
                Ok(got) => {
                    let closes = see(&mut tally, &got);
                    if closes {
                        assert!(!c.end().unwrap(), "a close after Connection: close");
                        conn = None;
                    }
                    break;
                }
                // Closed under us before the server read the request: send it again.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    tally.resent += 1;
                    conn = None;
                }
                Err(e) => panic!("{target}: {e}"),
            }
        }
    }
    tally
}

/// Count a response; returns whether it closes its connection.
fn see(tally: &mut Tally, got: &wire::Got) -> bool {
    *tally.statuses.entry(got.status).or_default() += 1;
    tally.delay(got.delay_us());
    tally.body += got.body.len() as u64;
    let closes = got.header("connection") == Some("close");
    if closes {
        tally.closes += 1;
    }
    closes
}

#[test]
fn the_route_counters_equal_what_the_clients_saw_through_reloads() {
    let secs: u64 = std::env::var("SHAPE_SOAK_SECS").map_or(60, |s| s.parse().unwrap());
    let server = Server::builder(&config(2))
        .metrics_listen("127.0.0.1:0")
        .start();
    let addr = server.addr();
    let stop = AtomicBool::new(false);
    let total = std::thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let stop = &stop;
                s.spawn(move || client(addr, 0x9e37_79b9 * (i + 1), stop))
            })
            .collect();
        let end = Instant::now() + Duration::from_secs(secs);
        let mut reloads = 0;
        while Instant::now() + Duration::from_secs(5) < end {
            std::thread::sleep(Duration::from_secs(4));
            reloads += 1;
            // In place, then a new generation with one worker, then back to two.
            let workers = if reloads % 3 == 2 { 1 } else { 2 };
            server.reload_with(&config(workers));
            server.wait_stderr("cerberus: reloaded", reloads);
        }
        std::thread::sleep(end.saturating_duration_since(Instant::now()));
        stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for c in clients {
            total.add(&c.join().expect("a client failed"));
        }
        eprintln!("shape soak: {reloads} reloads, {total:?}");
        assert!(reloads >= 2 || secs < 10, "{reloads} reloads");
        total
    });
    let responses: u64 = total.statuses.values().sum();
    assert!(responses > 1000 || secs < 10, "{responses} responses");
    assert!(total.resets > 10 || secs < 10, "{} resets", total.resets);
    let e = scrape(server.metrics());
    let route = ("route", "/s*");
    let mut served = BTreeMap::new();
    for sample in e.all("cerberus_shape_responses_total") {
        let code: u16 = sample.labels["code"].parse().unwrap();
        served.insert(code, sample.value as u64);
    }
    assert_eq!(served, total.statuses, "responses by status");
    let value = |name: &str| e.value(name, &[route]).unwrap_or(0.0) as u64;
    assert_eq!(value("cerberus_shape_resets_total"), total.resets, "resets");
    assert_eq!(value("cerberus_shape_closes_total"), total.closes, "closes");
    assert_eq!(
        value("cerberus_shape_body_bytes_total"),
        total.body,
        "body bytes"
    );
    let mut cumulative = 0;
    for (i, bound) in BOUNDS_US.iter().enumerate() {
        cumulative += total.buckets[i];
        let le = (*bound as f64 / 1e6).to_string();
        let got = e.value("cerberus_shape_delay_seconds_bucket", &[route, ("le", &le)]);
        assert_eq!(got, Some(cumulative as f64), "delay bucket le={le}");
    }
    let sum = e
        .value("cerberus_shape_delay_seconds_sum", &[route])
        .unwrap();
    assert!(
        (sum - total.delay_us as f64 / 1e6).abs() < 1e-6,
        "delay sum {sum}"
    );
}
