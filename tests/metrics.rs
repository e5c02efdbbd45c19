//! The metrics listener, over real sockets: `/metrics` counts exactly what clients did,
//! promtool accepts the exposition, a real Prometheus scrapes it, `/healthz` and `/readyz`
//! answer, `--metrics-listen off` listens nowhere, and the example deploy files are valid.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cerberus::http::ParseError;
use common::launch::run;
use common::metrics_helpers::*;
use common::metrics_tools::*;
use common::{roundtrip_until_close, run_bin, tool, Client, Server};

/// Start the server with two workers and `--metrics-listen metrics_listen` (`127.0.0.1:0` or
/// `off`).
fn start(metrics_listen: &str) -> Server {
    Server::builder("")
        .workers(2)
        .metrics_listen(metrics_listen)
        .start()
}

/// The `method` label a request method is counted under.
fn method_label(method: &str) -> &str {
    const NAMED: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
    if NAMED.contains(&method) {
        method
    } else {
        "other"
    }
}

/// `cerberus_requests_total` as a map from (method, code) to count.
fn requests_by_series(e: &Exposition) -> BTreeMap<(String, String), f64> {
    e.all("cerberus_requests_total")
        .map(|s| {
            (
                (s.labels["method"].clone(), s.labels["code"].clone()),
                s.value,
            )
        })
        .collect()
}

#[test]
fn requests_total_counts_exactly_the_requests_sent() {
    let server = start("127.0.0.1:0");
    let mut expected: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut count = |method: &str, status: u16| {
        let key = (method_label(method).to_owned(), status.to_string());
        *expected.entry(key).or_default() += 1.0;
    };
    let mut received = 0;
    let mut c = Client::connect(server.addr());
    let methods = [
        "GET", "HEAD", "POST", "DELETE", "PROPFIND", "OPTIONS", "GET",
    ];
    let sent = 23;
    for i in 0..sent {
        let method = methods[i % methods.len()];
        let request = if method == "POST" {
            format!("POST /p{i} HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        } else {
            format!("{method} /p{i} HTTP/1.1\r\nHost: t\r\n\r\n")
        };
        c.send(&request);
        received += request.len();
        let response = if method == "HEAD" {
            c.read_head_response()
        } else {
            c.read_response()
        };
        count(method, response.status);
    }
    // Rejected requests: the parser never trusted their method, so they count as `other`.
    let rejected = [
        ("GET / HTTP/1.1\nHost: t\r\n\r\n", ParseError::BareLf),
        (
            "FOO / HTTP/1.1\r\nHost: t\r\n\r\n",
            ParseError::UnknownMethod,
        ),
        (
            "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
            ParseError::DuplicateHost,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            ParseError::InvalidHost,
        ),
        (
            "GET * HTTP/1.1\r\nHost: t\r\n\r\n",
            ParseError::AsteriskNotOptions,
        ),
        (
            "CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n",
            ParseError::ConnectNotSupported,
        ),
    ];
    for (raw, _) in rejected {
        count(
            "other",
            roundtrip_until_close(server.addr(), raw.as_bytes()).status,
        );
        received += raw.len();
    }

    let e = scrape(server.metrics());
    let total = (sent + rejected.len()) as f64;
    assert_eq!(e.sum("cerberus_requests_total"), total);
    assert_eq!(requests_by_series(&e), expected);
    assert_eq!(e.sum("cerberus_request_duration_seconds_count"), total);
    assert_eq!(e.sum("cerberus_received_bytes_total"), received as f64);
    // One keep-alive connection, and one per rejected request.
    assert_eq!(
        e.sum("cerberus_connections_accepted_total"),
        (1 + rejected.len()) as f64
    );
    for (_, kind) in rejected {
        let labels = [("kind", kind.as_str())];
        assert_eq!(e.value("cerberus_parse_errors_total", &labels), Some(1.0));
    }
    assert_eq!(e.sum("cerberus_parse_errors_total"), rejected.len() as f64);
    assert_eq!(
        e.all("cerberus_parse_errors_total").count(),
        ParseError::ALL.len()
    );
}

#[test]
fn concurrent_keepalive_requests_add_up_exactly() {
    const CLIENTS: usize = 32;
    const EACH: usize = 200;
    let server = start("127.0.0.1:0");
    let addr = server.addr();
    let barrier = std::sync::Barrier::new(CLIENTS + 1);
    let statuses = std::thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                s.spawn(|| {
                    let mut c = Client::connect(addr);
                    let mut ok = 0;
                    for _ in 0..EACH {
                        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
                        ok += usize::from(c.read_response().status == 200);
                    }
                    // Hold the connection until the open gauges have been checked.
                    barrier.wait();
                    barrier.wait();
                    ok
                })
            })
            .collect();
        barrier.wait();
        let open = scrape(server.metrics());
        assert_eq!(open.sum("cerberus_connections_open"), CLIENTS as f64);
        assert_eq!(open.all("cerberus_connections_open").count(), 2);
        barrier.wait();
        clients
            .into_iter()
            .map(|c| c.join().unwrap())
            .sum::<usize>()
    });
    assert_eq!(statuses, CLIENTS * EACH);

    let total = (CLIENTS * EACH) as f64;
    let closed = ("reason", "client");
    // The server sees the clients' FINs after they return, so closes land a little later.
    let e = scrape_until(server.metrics(), Duration::from_secs(10), |e| {
        e.value("cerberus_connections_closed_total", &[closed]) == Some(CLIENTS as f64)
    });
    assert_eq!(e.sum("cerberus_requests_total"), total);
    assert_eq!(
        e.value(
            "cerberus_requests_total",
            &[("method", "GET"), ("code", "200")]
        ),
        Some(total)
    );
    assert_eq!(e.sum("cerberus_connections_accepted_total"), CLIENTS as f64);
    assert_eq!(
        e.value("cerberus_connections_closed_total", &[closed]),
        Some(CLIENTS as f64)
    );
    assert_eq!(e.sum("cerberus_connections_open"), 0.0);
    assert_histogram_is_consistent(&e, total);
}

/// Buckets are cumulative and non-decreasing, `+Inf` equals `_count`, and both equal `total`.
fn assert_histogram_is_consistent(e: &Exposition, total: f64) {
    let name = "cerberus_request_duration_seconds";
    let mut buckets: Vec<(f64, f64)> = e
        .all(&format!("{name}_bucket"))
        .map(|s| {
            (
                s.labels["le"].replace("+Inf", "inf").parse().unwrap(),
                s.value,
            )
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() > 1, "{buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, total));
    assert_eq!(e.sum(&format!("{name}_count")), total);
    assert!(e.sum(&format!("{name}_sum")) > 0.0);
}

#[test]
fn exposition_passes_promtool_check_metrics() {
    let Some(promtool) = tool("promtool", "prometheus") else {
        return;
    };
    let server = start("127.0.0.1:0");
    // Traffic first, so every family (requests, histogram) has samples to lint.
    let mut c = Client::connect(server.addr());
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    c.read_response();
    roundtrip_until_close(server.addr(), b"GET / HTTP/1.1\nHost: t\r\n\r\n");
    let reply = get(server.metrics(), "/metrics");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = reply.text();
    for family in [
        "cerberus_requests_total",
        "cerberus_request_duration_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{text}"
        );
    }
    assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
    let (ok, out) = run_tool(&promtool, &["check", "metrics"], text.as_bytes());
    assert!(
        ok && out.is_empty(),
        "promtool check metrics:\n{out}\non:\n{text}"
    );
}

#[test]
fn prometheus_scrapes_the_request_count() {
    let Some(prometheus) = tool("prometheus", "prometheus") else {
        return;
    };
    let server = start("127.0.0.1:0");
    let sent = 17;
    let mut c = Client::connect(server.addr());
    for _ in 0..sent {
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        c.read_response();
    }
    let p = Prometheus::start(&prometheus, server.metrics());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    while Instant::now() < deadline {
        last = p.query("sum(cerberus_requests_total)");
        if last == Some(sent as f64) {
            let up = p.query("up{job=\"cerberus\"}");
            assert_eq!(up, Some(1.0));
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "Prometheus said {last:?}, not {sent}, within 30 s; its log:\n{}",
        p.log()
    );
}

#[test]
fn healthz_and_readyz_answer_200() {
    let server = start("127.0.0.1:0");
    for path in ["/healthz", "/readyz"] {
        let reply = get(server.metrics(), path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    }
    assert_eq!(get(server.metrics(), "/readyz").text(), "ready\n");
}

#[test]
fn other_paths_get_404_and_other_methods_405() {
    let server = start("127.0.0.1:0");
    let m = server.metrics();
    assert_eq!(get(m, "/").status, 404);
    assert_eq!(get(m, "/metricsx").status, 404);
    let post = roundtrip_until_close(
        m,
        b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let head = roundtrip_until_close(m, b"HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    // A query string does not change the page.
    assert_eq!(get(m, "/metrics?x=1").status, 200);
    let bare_lf = roundtrip_until_close(m, b"GET / HTTP/1.1\nHost: t\r\n\r\n");
    assert_eq!(bare_lf.status, 400);
}

#[test]
fn a_silent_client_does_not_wedge_the_metrics_listener() {
    let server = start("127.0.0.1:0");
    let silent = std::net::TcpStream::connect(server.metrics()).unwrap();
    let start = Instant::now();
    assert_eq!(get(server.metrics(), "/healthz").status, 200);
    let waited = start.elapsed();
    assert!(waited < Duration::from_secs(8), "waited {waited:?}");
    drop(silent);
}

#[test]
fn metrics_on_listens_on_both_ports() {
    let server = start("127.0.0.1:0");
    let ports = listening_ports(server.pid());
    let want = [server.addr().port(), server.metrics().port()];
    assert_eq!(ports, want.into_iter().collect());
}

#[test]
fn metrics_off_listens_on_the_request_port_only() {
    let server = start("off");
    assert_eq!(server.metrics_addr(), None);
    let ports = listening_ports(server.pid());
    assert_eq!(ports, [server.addr().port()].into_iter().collect());
}

#[test]
fn a_taken_metrics_address_fails_start_up_naming_it() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    // Bounded in time: a binary that hung on the taken address would fail, not hang, the test.
    let (status, _, stderr) = run_bin(&[
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--metrics-listen",
        &addr,
    ]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
}

/// The repository's `deploy/prometheus` directory.
fn deploy_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus"))
}

#[test]
fn example_alert_rules_and_config_pass_promtool() {
    let Some(promtool) = tool("promtool", "prometheus") else {
        return;
    };
    let dir = deploy_dir();
    let checks: [&[&str]; 3] = [
        &["check", "rules", "alerts.yml"],
        &["check", "config", "prometheus.yml"],
        &["test", "rules", "alerts_test.yml"],
    ];
    for args in checks {
        let (status, out, err) = run(Command::new(&promtool).args(args).current_dir(dir), b"");
        assert!(status.success(), "promtool {args:?}:\n{out}{err}");
    }
}
