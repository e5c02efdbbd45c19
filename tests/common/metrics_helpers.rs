//! Helpers for `tests/metrics.rs`: fetch pages from the metrics listener and parse the
//! Prometheus text exposition ([`Exposition`]: samples by name and labels).
//!
//! The server itself is started with [`crate::common::Server`] (`metrics_listen`); the outside
//! tools (promtool, Prometheus, `/proc`) are in `metrics_tools.rs`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{roundtrip_until_close, Response};

/// One `GET path` with `Connection: close`; the response is read until the server closes.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    roundtrip_until_close(addr, request.as_bytes())
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
