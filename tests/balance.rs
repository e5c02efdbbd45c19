//! Balancing connections across workers (`balance = "load"`): with 16 workers and 64
//! keep-alive connections opened at once, every worker holds its share, trial after trial,
//! where the kernel's `SO_REUSEPORT` hash alone leaves some workers idle; and connections
//! handed from one worker to another while generations change are all served.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::metrics_helpers::{scrape, scrape_until, Exposition};
use common::{Client, Server};

fn start(workers: usize, balance: &str) -> Server {
    Server::builder(&format!("balance = \"{balance}\"\n"))
        .workers(workers)
        .metrics_listen("127.0.0.1:0")
        .start()
}

/// Open `n` keep-alive connections from 8 threads at once, each answered once (so the
/// server has accepted it), and return them still open.
fn open(addr: SocketAddr, n: usize) -> Vec<Client> {
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                (0..n)
                    .filter(|i| i % 8 == t)
                    .map(|_| {
                        let mut c = Client::connect(addr);
                        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
                        assert_eq!(c.read_response().status, 200);
                        c
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

/// Each worker's open connections, once the server counts `n` in all.
fn per_worker(metrics: SocketAddr, n: usize) -> Vec<f64> {
    let total = |e: &Exposition| e.sum("cerberus_connections_open") as usize;
    let e = scrape_until(metrics, Duration::from_secs(10), |e| total(e) == n);
    assert_eq!(
        total(&e),
        n,
        "the server never counted {n} open connections"
    );
    e.all("cerberus_connections_open")
        .map(|s| s.value)
        .collect()
}

/// The busiest worker's connections over the mean, and the least loaded worker's count.
fn skew(counts: &[f64]) -> (f64, f64) {
    let mean = counts.iter().sum::<f64>() / counts.len() as f64;
    let max = counts.iter().cloned().fold(0.0, f64::max);
    let min = counts.iter().cloned().fold(f64::MAX, f64::min);
    (max / mean, min)
}

/// Run `trials` of `n` connections; returns each trial's counts per worker.
fn trials(server: &Server, n: usize, trials: usize) -> Vec<Vec<f64>> {
    (0..trials)
        .map(|_| {
            let clients = open(server.addr(), n);
            let counts = per_worker(server.metrics(), n);
            drop(clients);
            per_worker(server.metrics(), 0);
            counts
        })
        .collect()
}

#[test]
fn sixty_four_connections_over_sixteen_workers_are_spread_evenly_every_time() {
    let server = start(16, "load");
    for counts in trials(&server, 64, 20) {
        let (ratio, min) = skew(&counts);
        assert!(
            ratio <= 1.10 && min >= 1.0,
            "max/mean {ratio:.2}, min {min}: {counts:?}"
        );
    }
    let handed: f64 = scrape(server.metrics()).sum("cerberus_connections_handed_off_total");
    assert!(handed > 0.0, "no connection was handed on");
}

#[test]
fn a_thousand_connections_stay_within_five_percent_of_the_mean() {
    let server = start(16, "load");
    for counts in trials(&server, 1000, 3) {
        let (ratio, _) = skew(&counts);
        assert!(ratio <= 1.05, "max/mean {ratio:.3}: {counts:?}");
    }
}

#[test]
fn the_hash_mode_never_hands_a_connection_on() {
    let server = start(4, "hash");
    trials(&server, 64, 2);
    let handed: f64 = scrape(server.metrics()).sum("cerberus_connections_handed_off_total");
    assert_eq!(handed, 0.0);
}

#[test]
fn connections_handed_on_while_generations_change_are_all_served() {
    let config = |workers: usize| {
        format!(
            "listen = \"127.0.0.1:0\"\nworkers = {workers}\nmetrics_listen = \"off\"\n\
             balance = \"load\"\n"
        )
    };
    let server = Server::builder(&config(2)).flags_from_config().start();
    let addr = server.addr();
    // Keep-alive connections held open keep the shares uneven, so new ones are handed on.
    let held = open(addr, 16);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut served = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = common::roundtrip_until_close(
                    addr,
                    b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                );
                assert_eq!(r.status, 200, "request {served} failed");
                served += 1;
            }
            served
        })
    };
    for i in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        server.reload_with(&config(2 + i % 3));
        server.wait_stderr("cerberus: reloaded", i + 1);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let served = client.join().expect("every request was answered");
    assert!(served > 20, "only {served} requests in 2 s");
    drop(held);
}
