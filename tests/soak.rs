//! Soak with exact accounting: randomized clients mix methods, bodies (by
//! `Content-Length` and chunked), valid and invalid JSON, pipelining depth, early closes and bad
//! requests, while SIGHUP switches the worker count between 1 and 2. Every response is checked
//! against the request it answers; at the end `/metrics` must count exactly what the clients
//! counted: requests by method and code, parse errors by kind, and JSON bodies by result.
//!
//! `SOAK_SEED` replays a run (the seed is printed); `SOAK_SECS` changes the 60 s length for a
//! local run. Every reload sent must have happened (the server logs each new generation), and
//! no request may be lost at a reload's `Connection: close`: requests pipelined after it are
//! sent again on a new connection, as a client may, and must then be answered; a shorter test
//! sends each batch in one write, so that every request is in the server before the close, and
//! asserts that none needed sending again.

mod common;
#[path = "soak/traffic.rs"]
mod traffic;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::metrics_helpers::{scrape, Exposition};
use common::Server;
use traffic::{Mix, Rng, Tally};

/// Client threads, each running one connection at a time.
const CLIENTS: u64 = 8;

/// The config: `workers` is what the reloads change; metrics on an ephemeral port.
fn config(workers: usize) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\nworkers = {workers}\nmetrics_listen = \"127.0.0.1:0\"\n\
         [[route]]\npath = \"/echo\"\nhandler = \"echo\"\n"
    )
}

/// The seed: `SOAK_SEED` if set, else from the clock.
fn seed() -> u64 {
    std::env::var("SOAK_SEED").map_or_else(
        |_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        },
        |s| s.parse().expect("SOAK_SEED is a number"),
    )
}

/// Run `CLIENTS` client threads for `length` while the worker count switches every
/// `reload_every`. Returns the server (still running) and what the clients counted.
fn soak(length: Duration, mix: Mix, reload_every: Duration) -> (Server, Tally) {
    let server = Server::builder(&config(1)).flags_from_config().start();
    let addr = server.addr();
    let seed = seed();
    eprintln!("soak: seed {seed} (SOAK_SEED={seed} replays it), {length:?}, {mix:?}");
    let stop = AtomicBool::new(false);
    let mut reloads = 0;
    let tally = std::thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let stop = &stop;
                s.spawn(move || {
                    let mut rng = Rng::new(seed ^ (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                    let mut tally = Tally::default();
                    while !stop.load(Ordering::Relaxed) {
                        traffic::run_connection(addr, &mut rng, mix, &mut tally);
                    }
                    tally
                })
            })
            .collect();
        let start = Instant::now();
        while start.elapsed() < length {
            std::thread::sleep(reload_every);
            reloads += 1;
            server.reload_with(&config(1 + reloads % 2));
        }
        stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for c in clients {
            total.absorb(c.join().unwrap());
        }
        total
    });
    // Each reload changes the worker count: each must have started a new generation.
    assert!(reloads > 0, "no reload in {length:?}");
    server.wait_stderr("cerberus: reloaded: new generation", reloads);
    eprintln!("soak: {reloads} reloads, each logged as a new generation");
    eprintln!("soak: {tally}");
    (server, tally)
}

/// `/metrics` counts exactly what the clients counted.
fn assert_accounting(server: &Server, tally: &Tally) {
    let metrics = server.metrics_addr().expect("metrics are on");
    let e = scrape(metrics);
    let by_series = |name: &str, a: &str, b: &str| -> BTreeMap<(String, String), u64> {
        e.all(name)
            .filter(|s| s.value > 0.0)
            .map(|s| {
                let key = (s.labels[a].clone(), s.labels[b].clone());
                (key, s.value as u64)
            })
            .collect()
    };
    let requests = by_series("cerberus_requests_total", "method", "code");
    assert_eq!(
        requests, tally.by_series,
        "cerberus_requests_total vs the clients"
    );
    let parse_errors = by_one_label(&e, "cerberus_parse_errors_total", "kind");
    assert_eq!(
        parse_errors, tally.parse_errors,
        "cerberus_parse_errors_total"
    );
    let json = by_one_label(&e, "cerberus_json_bodies_total", "result");
    let expected: BTreeMap<String, u64> = [
        ("parsed".to_owned(), tally.json_parsed),
        ("rejected".to_owned(), tally.json_rejected),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .collect();
    assert_eq!(json, expected, "cerberus_json_bodies_total");
}

/// The non-zero samples of `name`, keyed by one label.
fn by_one_label(e: &Exposition, name: &str, label: &str) -> BTreeMap<String, u64> {
    e.all(name)
        .filter(|s| s.value > 0.0)
        .map(|s| (s.labels[label].clone(), s.value as u64))
        .collect()
}

#[test]
fn soak_with_reloads_every_response_is_right_and_metrics_count_exactly() {
    let secs = std::env::var("SOAK_SECS").map_or(60, |s| s.parse().expect("SOAK_SECS"));
    let (server, tally) = soak(
        Duration::from_secs(secs),
        Mix::Everything,
        Duration::from_millis(500),
    );
    assert!(
        tally.errors.is_empty(),
        "{} wrong or missing responses, first: {:?}",
        tally.errors.len(),
        &tally.errors[..tally.errors.len().min(5)]
    );
    assert!(tally.answered > 1_000, "only {} responses", tally.answered);
    assert!(tally.bad > 0 && tally.json_rejected > 0 && tally.early_closes > 0);
    assert_accounting(&server, &tally);
    assert_eq!(
        tally.lost_after_close, 0,
        "requests still unanswered after a reload's close, sent again on new connections"
    );
}

#[test]
fn no_pipelined_request_is_lost_when_the_worker_count_changes() {
    let (server, tally) = soak(
        Duration::from_secs(10),
        Mix::PipelinedGets,
        Duration::from_millis(200),
    );
    assert!(tally.errors.is_empty(), "{:?}", tally.errors);
    assert_accounting(&server, &tally);
    assert_eq!(
        tally.lost_after_close, 0,
        "requests received by the server but never answered"
    );
    assert_eq!(tally.retried_after_close, 0);
}
