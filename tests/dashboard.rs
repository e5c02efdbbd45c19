//! The Grafana dashboard (`deploy/grafana/cerberus.json`) and the alert rules
//! (`deploy/prometheus/alerts.yml`) against a real Prometheus that scraped a loaded Cerberus:
//! every PromQL expression in them must return a non-empty result.
//!
//! The load is made so that every alert really fires: over 5% 5xx (a route answering 503),
//! over 25% 4xx (a route answering 404, and malformed requests), over one parse error a
//! second, a failed reload; and at the end the server is killed so `up == 0` holds too. It
//! comes in two rounds a few scrapes apart, because a series first seen after the load has no
//! increase for `rate()` to see. Without Prometheus the test skips, and fails under `CI=true`.

mod common;
#[path = "tls/support.rs"]
mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::metrics_tools::Prometheus;
use common::{roundtrip, tool, Client, Server};
use serde::Deserialize;
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Routes that answer 404 and 503, so the ratio alerts have something to see.
const CONFIG: &str = r#"

[[route]]
path = "/missing"
status = 404
body = "no\n"

[[route]]
path = "/fail"
status = 503
body = "down\n"

[[route]]
prefix = "/shape"
handler = "shape"
"#;

/// A request the parser rejects (whitespace before the colon): a 400 and a parse error.
const MALFORMED: &str = "GET / HTTP/1.1\r\nHost : t\r\n\r\n";

/// Every expression of the dashboard's panels, with Grafana's variables given the values a
/// user would pick: the `cerberus` job, every instance, a 1-minute rate window. The
/// variables' own `label_values(SELECTOR, label)` queries contribute their selector.
fn dashboard_exprs() -> Vec<String> {
    let path = Path::new(ROOT).join("deploy/grafana/cerberus.json");
    let text = std::fs::read_to_string(&path).expect("read deploy/grafana/cerberus.json");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if let Some(q) = var["query"]["query"].as_str() {
            let inner = q.strip_prefix("label_values(").expect("label_values query");
            exprs.push(
                inner
                    .rsplit_once(',')
                    .expect("SELECTOR, label")
                    .0
                    .to_owned(),
            );
        }
    }
    exprs
        .into_iter()
        .map(|e| {
            e.replace("$job", "cerberus")
                .replace("$instance", ".+")
                .replace("$__rate_interval", "1m")
        })
        .collect()
}

/// The panels the dashboard must have, by words in their titles.
const PANELS: [&str; 17] = [
    "Requests/s by code",
    "p50 / p90 / p99",
    "connections per worker",
    "closes by reason",
    "Parse errors by kind",
    "TLS handshakes/s",
    "TLS handshake failures",
    "Certificate expiry",
    "Reloads",
    "CPU",
    "memory",
    "File descriptors",
    "Busiest worker / mean",
    "Shaped responses/s",
    "Injected delay",
    "Shaped closes and resets",
    "Shaped body bytes",
];

/// Alerts on a state this test cannot make: one worker far busier than the others while the
/// server balances them. promtool's unit tests (deploy/prometheus/alerts_test.yml) fire them,
/// and the dashboard's "Busiest worker / mean" panel, checked here, is their ratio.
const FIRED_BY_PROMTOOL_ONLY: [&str; 1] = ["CerberusWorkerImbalance"];

/// Every alert rule's (name, expression).
fn alert_exprs() -> Vec<(String, String)> {
    let path = Path::new(ROOT).join("deploy/prometheus/alerts.yml");
    let text = std::fs::read_to_string(&path).expect("read deploy/prometheus/alerts.yml");
    let rules = Value::deserialize(serde_norway::Deserializer::from_str(&text)).expect("YAML");
    let mut exprs = Vec::new();
    for group in rules["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let name = rule["alert"].as_str().expect("alert rules only");
            let expr = rule["expr"].as_str().expect("expr");
            exprs.push((name.to_owned(), expr.trim().to_owned()));
        }
    }
    exprs
}

/// Send `count` requests on one keep-alive connection.
fn requests(addr: SocketAddr, path: &str, count: usize) {
    let mut c = Client::connect(addr);
    let text = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
    for _ in 0..count {
        c.send(text.as_bytes());
        c.read_response();
    }
}

/// Full and resumed handshakes on the HTTPS listener, and one failure (plain HTTP).
fn handshakes(https: SocketAddr, ca: &support::Ca, n: usize) {
    let config = ca.client(None);
    for _ in 0..n {
        let mut c = support::Https::connect(https, "localhost", &config).unwrap();
        assert_eq!(c.get("/").unwrap().status, 200);
    }
    let mut plain = Client::connect(https);
    plain.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(plain.read_response().status, 400);
}

/// `n` shaped requests, each on its own connection (`Connection: close`, which the shape
/// metrics count as a close), with delays, sizes, a status mix and resets.
fn shaped(addr: SocketAddr, n: usize) {
    for seed in 0..n {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let request = format!(
            "GET /shape?delay=1ms..3ms&size=100..200&status=503:30&reset=20&seed={seed} HTTP/1.1\r\n\
             Host: t\r\nConnection: close\r\n\r\n"
        );
        s.write_all(request.as_bytes()).unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
}

/// Requests of every kind: `n` per unit (200s, 404s, 503s, malformed, shaped).
fn load(addr: SocketAddr, n: usize) {
    shaped(addr, n);
    requests(addr, "/", 3 * n);
    requests(addr, "/missing", 2 * n);
    requests(addr, "/fail", n);
    for _ in 0..3 * n {
        assert_eq!(roundtrip(addr, MALFORMED.as_bytes()).status, 400);
    }
}

/// Does `expr` return at least one series? (`count` of nothing is nothing.)
fn non_empty(p: &Prometheus, expr: &str) -> bool {
    p.query(&format!("count({expr})")).is_some_and(|n| n > 0.0)
}

/// Poll until every expression returns something, or `timeout` passes; returns the empty ones.
fn still_empty<'a>(p: &Prometheus, exprs: &'a [String], timeout: Duration) -> Vec<&'a str> {
    let deadline = Instant::now() + timeout;
    loop {
        let empty: Vec<&str> = exprs
            .iter()
            .map(String::as_str)
            .filter(|e| !non_empty(p, e))
            .collect();
        if empty.is_empty() || Instant::now() > deadline {
            return empty;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn every_dashboard_and_alert_expression_returns_data() {
    let Some(prometheus) = tool("prometheus", "prometheus") else {
        return;
    };
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join("deploy/grafana/cerberus.json")).unwrap(),
    )
    .unwrap();
    let titles: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    for want in PANELS {
        assert!(
            titles.iter().any(|t| t.contains(want)),
            "no {want} panel in {titles:?}"
        );
    }

    // HTTPS too, with a certificate 10 days from expiry, so the expiry alert fires.
    let ca = support::Ca::new();
    let leaf = ca.leaf(&["localhost"], support::Key::EcdsaP256, 10);
    let tls = support::tls_table("server", "");
    let server = Server::builder(&format!("{CONFIG}\n{tls}"))
        .file("server.pem", leaf.cert.as_bytes())
        .file("server.key", leaf.key.as_bytes())
        .workers(2)
        .metrics_listen("127.0.0.1:0")
        .start();
    let (addr, metrics) = (server.addr(), server.metrics());
    let p = Prometheus::start(&prometheus, metrics);
    let up = "up{job=\"cerberus\"} == 1".to_owned();
    assert!(
        still_empty(&p, std::slice::from_ref(&up), Duration::from_secs(30)).is_empty(),
        "Prometheus never scraped Cerberus:\n{}",
        p.log()
    );

    // Round one makes every series exist; round two, scrapes later, is what rate() sees.
    load(addr, 5);
    handshakes(server.https(), &ca, 3);
    std::thread::sleep(Duration::from_millis(2500));
    load(addr, 200);
    handshakes(server.https(), &ca, 20);
    server.reload_with("workers = \"many\"\n");
    server.wait_stderr("reload failed", 1);

    let (down, firing): (Vec<_>, Vec<_>) = alert_exprs()
        .into_iter()
        .filter(|(name, _)| !FIRED_BY_PROMTOOL_ONLY.contains(&name.as_str()))
        .partition(|(_, e)| e.contains("up{"));
    let mut exprs = dashboard_exprs();
    exprs.extend(firing.into_iter().map(|(_, e)| e));
    let empty = still_empty(&p, &exprs, Duration::from_secs(20));
    assert!(empty.is_empty(), "no data for:\n{}", empty.join("\n---\n"));

    // CerberusDown: the target goes away.
    drop(server);
    let down: Vec<String> = down.into_iter().map(|(_, e)| e).collect();
    assert!(!down.is_empty(), "an alert on up == 0");
    let empty = still_empty(&p, &down, Duration::from_secs(20));
    assert!(empty.is_empty(), "no data for:\n{}", empty.join("\n---\n"));
}
