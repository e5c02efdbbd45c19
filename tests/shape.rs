//! The `shape` handler over real sockets: delays, statuses, sizes, drips, closes and resets as
//! asked in the query string, responses that complete later kept in order in a pipeline,
//! backpressure, 400s that name the argument, the route's counters, and pending responses
//! through a drain and through reloads.

mod common;
#[path = "shape/wire.rs"]
mod wire;

use std::time::{Duration, Instant};

use common::metrics_helpers::{scrape, scrape_until};
use common::Server;
use wire::{pattern, Conn};

/// A prefix route with the handler's defaults.
const ROUTE: &str = "[[route]]\nprefix = \"/shape\"\nhandler = \"shape\"\n";

fn start(extra: &str) -> Server {
    Server::builder(&format!("{extra}\n{ROUTE}"))
        .metrics_listen("127.0.0.1:0")
        .start()
}

#[test]
fn a_delayed_response_comes_after_its_delay_and_says_what_was_applied() {
    let server = start("");
    let mut c = Conn::connect(server.addr());
    let sent = Instant::now();
    c.get("/shape?delay=200ms&status=503&header=X-A:b");
    let got = c.response();
    let took = sent.elapsed();
    assert!(took >= Duration::from_millis(200), "early: {took:?}");
    assert!(took < Duration::from_millis(1500), "late: {took:?}");
    assert_eq!(got.status, 503);
    assert_eq!(
        got.header("x-cerberus-shape"),
        Some("status=503&delay=200000us&size=0")
    );
    assert_eq!(got.header("server-timing"), Some("shape;dur=200.000"));
    assert_eq!(got.header("x-a"), Some("b"));
    assert_eq!(got.header("content-length"), Some("0"));
    // The connection goes on.
    c.get("/shape?status=201");
    assert_eq!(c.response().status, 201);
}

#[test]
fn sizes_are_pattern_bytes_inline_or_streamed_and_head_gets_the_length_only() {
    let server = start("");
    let mut c = Conn::connect(server.addr());
    for size in [
        0usize,
        100,
        16 * 1024,
        16 * 1024 + 1,
        1 << 20,
        3 * (1 << 20) + 7,
    ] {
        c.get(&format!("/shape?size={size}"));
        let got = c.response();
        assert_eq!(got.status, 200);
        assert_eq!(got.body.len(), size);
        assert!(got.body == pattern(size), "body of {size} bytes differs");
        assert_eq!(got.applied()["size"], size.to_string());
    }
    c.get("/shape?size=1KiB:50,2KiB:50&seed=3");
    let n = c.response().body.len();
    assert!(n == 1024 || n == 2048, "{n}");
    c.send(b"HEAD /shape?size=5000 HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = c.read(true).unwrap();
    assert_eq!(head.header("content-length"), Some("5000"));
    assert_eq!(head.applied()["size"], "0", "no body bytes went out");
    c.get("/shape?status=204&size=100");
    let none = c.response();
    assert_eq!((none.status, none.body.len()), (204, 0));
}

#[test]
fn pipelined_responses_stay_in_order_whatever_their_delays() {
    let server = start("");
    let mut c = Conn::connect(server.addr());
    let sent = Instant::now();
    let mut batch = String::new();
    for (n, delay) in [(1, "300ms"), (2, "0ms"), (3, "50ms"), (4, "0ms")] {
        batch.push_str(&format!(
            "GET /shape?delay={delay}&header=X-N:{n}&size=2000 HTTP/1.1\r\nHost: t\r\n\r\n"
        ));
    }
    c.send(batch.as_bytes());
    for n in 1..=4 {
        let got = c.response();
        assert_eq!(got.header("x-n"), Some(n.to_string().as_str()));
        assert_eq!(got.body, pattern(2000));
    }
    let took = sent.elapsed();
    // The third's 50 ms ran while the first's 300 ms did.
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(1200), "{took:?}");
}

#[test]
fn a_full_queue_of_pending_responses_holds_reading_back_and_loses_nothing() {
    let server = start("max_pending = 2");
    let mut c = Conn::connect(server.addr());
    let mut batch = String::new();
    for n in 0..40 {
        batch.push_str(&format!(
            "GET /shape?delay=20ms&header=X-N:{n} HTTP/1.1\r\nHost: t\r\n\r\n"
        ));
    }
    let sent = Instant::now();
    c.send(batch.as_bytes());
    for n in 0..40 {
        assert_eq!(c.response().header("x-n"), Some(n.to_string().as_str()));
    }
    // Two at a time: a request is read (and its 20 ms start) only once there is room, so the
    // forty take about 400 ms; read all at once they would take 20.
    let took = sent.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "{took:?}: the bound held nothing back"
    );
}

#[test]
fn a_drip_arrives_in_pieces_at_its_interval_even_to_a_slow_reader() {
    let server = start("");
    let mut c = Conn::connect(server.addr());
    let sent = Instant::now();
    c.get("/shape?drip=5x100ms&size=50");
    let got = c.response();
    assert_eq!(got.header("transfer-encoding"), Some("chunked"));
    assert_eq!(got.body, pattern(50));
    assert_eq!(got.chunk_times.len(), 5);
    // Each piece whole at its time: the gaps are the interval (the last piece does not wait
    // for the last chunk).
    for pair in got.chunk_times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(90), "{gap:?}");
    }
    assert!(sent.elapsed() < Duration::from_secs(2));
    assert_eq!(got.applied()["drip"], "5x100000us");
    // A drip without a size drips a byte a piece; one of size 0 still ends.
    c.get("/shape?drip=3x10ms");
    assert_eq!(c.response().body, pattern(3));
    c.get("/shape?drip=2x10ms&size=0");
    let empty = c.response();
    assert_eq!((empty.body.len(), empty.chunk_times.len()), (0, 0));
    // A reader that sleeps through a drip of 4 MiB pieces still gets every byte, in order.
    c.get("/shape?drip=4x20ms&size=16MiB");
    c.get("/shape?status=202");
    std::thread::sleep(Duration::from_millis(500));
    let big = c.response();
    assert!(big.body == pattern(16 << 20), "the dripped body differs");
    assert_eq!(c.response().status, 202);
}

#[test]
fn close_ends_the_connection_after_the_response_and_reset_resets_it() {
    let server = start("");
    let mut c = Conn::connect(server.addr());
    c.get("/shape?close=100&delay=10ms");
    let got = c.response();
    assert_eq!(got.header("connection"), Some("close"));
    assert_eq!(got.applied()["close"], "100");
    assert!(!c.end().unwrap(), "closed in order, not reset");

    let mut c = Conn::connect(server.addr());
    c.get("/shape?status=201");
    assert_eq!(c.response().status, 201);
    let sent = Instant::now();
    c.get("/shape?reset=100&delay=100ms");
    assert!(c.end().unwrap(), "reset");
    assert!(sent.elapsed() >= Duration::from_millis(100));
    // The shape counters are counted when the reset is decided, the close once the socket is
    // gone: a scrape may fall between, so wait for both.
    let metrics = scrape_until(server.metrics(), Duration::from_secs(5), |e| {
        e.sum("cerberus_shape_resets_total") == 1.0
            && e.value("cerberus_connections_closed_total", &[("reason", "reset")]) == Some(1.0)
    });
    assert_eq!(metrics.sum("cerberus_shape_resets_total"), 1.0);
    assert_eq!(metrics.sum("cerberus_shape_closes_total"), 1.0);
    assert_eq!(
        metrics.value("cerberus_connections_closed_total", &[("reason", "reset")]),
        Some(1.0)
    );
}

#[test]
fn bad_arguments_get_400_with_json_naming_the_argument() {
    let server = start("");
    let mut c = Conn::connect(server.addr());
    // 10,000-element lists are refused by the grammar's own tests; a request line holds 900
    // elements (the 8 KiB line limit answers 414 before any handler sees more).
    let long_list = vec!["1ms:0.01"; 900].join(",");
    let cases = [
        ("nope=1", "nope"),
        ("delay=5", "delay"),
        ("delay=-5ms", "delay"),
        ("delay=5xs", "delay"),
        ("delay=11s", "delay"),
        ("delay=99999999999999999999s", "delay"),
        ("delay=1e400ms", "delay"),
        ("status=503:60,500:60", "status"),
        ("status=99", "status"),
        ("status=abc", "status"),
        ("size=65MiB", "size"),
        ("size=10..5", "size"),
        ("close=101", "close"),
        ("reset=-1", "reset"),
        ("drip=0x10ms", "drip"),
        ("drip=100000x1ms", "drip"),
        ("header=Content-Length:5", "header"),
        ("header=X-A", "header"),
        ("seed=-1", "seed"),
        ("delay=1ms&delay=2ms", "delay"),
        ("delay=%", "delay"),
    ];
    for (query, arg) in cases {
        c.get(&format!("/shape?{query}"));
        let got = c.response();
        assert_eq!(got.status, 400, "{query}");
        let doc: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(doc["argument"], arg, "{query}: {doc}");
        assert!(!doc["error"].as_str().unwrap().is_empty(), "{query}");
    }
    c.get(&format!("/shape?delay={long_list}"));
    let got = c.response();
    assert_eq!(got.status, 400);
    let doc: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(doc["argument"], "delay");
}

#[test]
fn a_route_can_pin_its_shape_and_set_its_own_caps() {
    let config = r#"
[[route]]
path = "/pinned"
handler = "shape"
status = 202
[route.shape]
delay = "20ms"
size = "10"
header = ["X-Pinned:yes"]
query = false
[[route]]
path = "/capped"
handler = "shape"
[route.shape]
max_delay = "50ms"
max_size = 100
[[route]]
path = "/file"
handler = "shape"
[route.shape]
sendfile = true
"#;
    let server = Server::start(config);
    let mut c = Conn::connect(server.addr());
    c.get("/pinned?delay=2s&status=500");
    let got = c.response();
    assert_eq!((got.status, got.body.len()), (202, 10));
    assert_eq!(got.delay_us(), 20_000);
    assert_eq!(got.header("x-pinned"), Some("yes"));
    c.get("/capped?delay=60ms");
    assert_eq!(c.response().status, 400);
    c.get("/capped?size=101");
    assert_eq!(c.response().status, 400);
    c.get("/capped?delay=50ms&size=100");
    assert_eq!(c.response().status, 200);
    // Bodies by sendfile from the memory file are the same bytes, across its end.
    for size in [100_000usize, (1 << 20) + 3, 5 * (1 << 20) + 17] {
        c.get(&format!("/file?size={size}&header=X-N:{size}"));
        let got = c.response();
        assert_eq!(got.header("x-n"), Some(size.to_string().as_str()));
        assert!(
            got.body == pattern(size),
            "the {size}-byte body sent from the file differs"
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_draws_on_every_connection() {
    let server = start("");
    let draws = |seed: u64| -> Vec<(u16, u64, usize)> {
        let mut c = Conn::connect(server.addr());
        (0..30)
            .map(|_| {
                c.get(&format!(
                    "/shape?seed={seed}&status=500:50&delay=0ms..2ms&size=0..100"
                ));
                let got = c.response();
                (got.status, got.delay_us(), got.body.len())
            })
            .collect()
    };
    let (a, b, other) = (draws(7), draws(7), draws(8));
    assert_eq!(a, b);
    assert_ne!(a, other);
    assert!(a.iter().any(|d| d.0 == 500) && a.iter().any(|d| d.0 == 200));
}

#[test]
fn the_counters_say_exactly_what_was_applied() {
    let server = start("");
    let mut c = Conn::connect(server.addr());
    let mut want_bytes = 0;
    for (query, status, delay_bucket) in [
        ("status=503&delay=3ms&size=10", 503, "0.005"),
        ("status=503&size=20", 503, "0"),
        ("delay=30ms&size=1MiB", 200, "0.05"),
        ("status=429&drip=2x1ms&size=5", 429, "0.0005"),
    ] {
        c.get(&format!("/shape?{query}"));
        let got = c.response();
        assert_eq!(got.status, status);
        want_bytes += got.body.len();
        let _ = delay_bucket;
    }
    let e = scrape(server.metrics());
    let by_code = |code: &str| {
        e.value(
            "cerberus_shape_responses_total",
            &[("route", "/shape*"), ("code", code)],
        )
    };
    assert_eq!(by_code("503"), Some(2.0));
    assert_eq!(by_code("200"), Some(1.0));
    assert_eq!(by_code("429"), Some(1.0));
    assert_eq!(e.sum("cerberus_shape_body_bytes_total"), want_bytes as f64);
    let bucket = |le: &str| {
        e.value(
            "cerberus_shape_delay_seconds_bucket",
            &[("route", "/shape*"), ("le", le)],
        )
    };
    assert_eq!(bucket("0"), Some(2.0), "two without delay");
    assert_eq!(bucket("0.005"), Some(3.0), "3 ms is under 5 ms");
    assert_eq!(bucket("0.05"), Some(4.0));
    assert_eq!(bucket("+Inf"), Some(4.0));
    let sum = e.sum("cerberus_shape_delay_seconds_sum");
    assert!((sum - 0.033).abs() < 1e-9, "{sum}");
}

#[test]
fn sigterm_waits_for_pending_responses_which_close_their_connections() {
    let mut server = start("drain_timeout = \"10s\"");
    let mut conns: Vec<Conn> = (0..10).map(|_| Conn::connect(server.addr())).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        c.get(&format!("/shape?delay=1s&header=X-N:{i}"));
    }
    // Let the server read them all before the drain starts.
    std::thread::sleep(Duration::from_millis(200));
    server.signal(libc::SIGTERM);
    for (i, c) in conns.iter_mut().enumerate() {
        let got = c.response();
        assert_eq!(got.header("x-n"), Some(i.to_string().as_str()));
        assert_eq!(got.header("connection"), Some("close"));
        assert!(!c.end().unwrap());
    }
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
}

#[test]
fn reloads_that_keep_or_change_the_workers_lose_no_delayed_request() {
    let config = |workers: usize| format!("workers = {workers}\n{ROUTE}");
    let server = Server::builder(&config(2)).start();
    let mut conns: Vec<Conn> = (0..30).map(|_| Conn::connect(server.addr())).collect();
    for round in 0..3 {
        for (i, c) in conns.iter_mut().enumerate() {
            c.get(&format!("/shape?delay=400ms&header=X-N:{round}-{i}"));
        }
        std::thread::sleep(Duration::from_millis(100));
        // In place, then a new generation with another worker count.
        server.reload_with(&config(if round == 1 { 1 } else { 2 }));
        server.wait_stderr("cerberus: reloaded", round + 1);
        for (i, c) in conns.iter_mut().enumerate() {
            let got = c.response();
            assert_eq!(got.status, 200);
            assert_eq!(got.header("x-n"), Some(format!("{round}-{i}").as_str()));
            if got.header("connection") == Some("close") {
                // The old generation drained: the next request goes on a new connection.
                assert!(!c.end().unwrap());
                *c = Conn::connect(server.addr());
            }
        }
    }
}

#[test]
fn a_client_that_stops_reading_a_drip_meets_the_write_timeout_and_holds_no_body_in_memory() {
    let server = start("write_timeout = \"1s\"\nmin_send_rate = \"off\"");
    let before = server.rss_kib();
    // Two 32 MiB drips that the client never reads: the kernel takes a little, the rest is
    // never rendered, and the write deadline ends the connection.
    let mut stalled: Vec<Conn> = (0..2).map(|_| Conn::connect(server.addr())).collect();
    for c in &mut stalled {
        c.reader.get_ref().set_nonblocking(false).unwrap();
        c.get("/shape?drip=4x100ms&size=32MiB");
    }
    std::thread::sleep(Duration::from_millis(800));
    let held = server.rss_kib().saturating_sub(before);
    assert!(
        held < 8 * 1024,
        "{held} KiB held for 64 MiB of unread drips"
    );
    let metrics = scrape_until(server.metrics(), Duration::from_secs(10), |e| {
        e.value(
            "cerberus_connections_closed_total",
            &[("reason", "write_timeout")],
        ) == Some(2.0)
    });
    assert_eq!(
        metrics.value(
            "cerberus_connections_closed_total",
            &[("reason", "write_timeout")]
        ),
        Some(2.0)
    );
    // Others are served meanwhile and after.
    let mut c = Conn::connect(server.addr());
    c.get("/shape?size=10");
    assert_eq!(c.response().body, pattern(10));
}
