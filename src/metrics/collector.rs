//! What a scrape says: [`StatsCollector`] sums every worker's [`WorkerStats`] into Prometheus
//! metric families, named the Prometheus way (`cerberus_` prefix, unit suffixes, `_total` on
//! counters), with help text that `promtool check metrics` accepts.
//!
//! Label sets that are known in advance (close reasons, parse error kinds, JSON results) are
//! always exported, zeros included, so `rate()` works from the first event. Requests by method
//! and code are exported only where non-zero: 8 methods times 500 codes would be 4000 series.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricType::{COUNTER, GAUGE, HISTOGRAM};
use prometheus::proto::{self, MetricFamily, MetricType};

use crate::http::ParseError;
use crate::shape::counters::{
    RouteCounters, Slot, DELAY_BUCKETS_US, FIRST_STATUS as SHAPE_FIRST_STATUS,
    STATUS_SLOTS as SHAPE_STATUS_SLOTS,
};
use crate::stats::{
    CloseReason, Observed, TlsFailure, WorkerStats, DURATION_BUCKETS, FIRST_STATUS, METHODS,
    STATUS_SLOTS,
};

/// One metric family this crate exports: its name, help, type and label names.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
}

impl Family {
    const fn new(
        name: &'static str,
        help: &'static str,
        kind: MetricType,
        labels: &'static [&'static str],
    ) -> Family {
        Family {
            name,
            help,
            kind,
            labels,
        }
    }

    fn desc(&self) -> prometheus::Result<Desc> {
        let labels = self.labels.iter().map(|l| l.to_string()).collect();
        Desc::new(self.name.into(), self.help.into(), labels, HashMap::new())
    }

    fn with(&self, metrics: Vec<proto::Metric>) -> MetricFamily {
        let mut family = MetricFamily::default();
        family.set_name(self.name.into());
        family.set_help(self.help.into());
        family.set_field_type(self.kind);
        family.set_metric(metrics.into());
        family
    }
}

const REQUESTS: Family = Family::new(
    "cerberus_requests_total",
    "HTTP requests answered, by method and status code.",
    COUNTER,
    &["method", "code"],
);
const DURATION: Family = Family::new(
    "cerberus_request_duration_seconds",
    "Time from a request's first byte read to its response queued for writing.",
    HISTOGRAM,
    &[],
);
const ACCEPTED: Family = Family::new(
    "cerberus_connections_accepted_total",
    "TCP connections accepted.",
    COUNTER,
    &[],
);
const OPEN: Family = Family::new(
    "cerberus_connections_open",
    "TCP connections open now, by worker.",
    GAUGE,
    &["worker"],
);
const HANDED_OFF: Family = Family::new(
    "cerberus_connections_handed_off_total",
    "Connections a worker accepted over its fair share and handed to the least loaded worker, \
     by the worker that handed them on.",
    COUNTER,
    &["worker"],
);
const WORKER_REQUESTS: Family = Family::new(
    "cerberus_worker_requests_total",
    "HTTP requests answered, by worker: their rates show how evenly the load is spread.",
    COUNTER,
    &["worker"],
);
const CLOSED: Family = Family::new(
    "cerberus_connections_closed_total",
    "TCP connections closed, by reason.",
    COUNTER,
    &["reason"],
);
const RECEIVED: Family = Family::new(
    "cerberus_received_bytes_total",
    "Bytes read from clients.",
    COUNTER,
    &[],
);
const SENT: Family = Family::new(
    "cerberus_sent_bytes_total",
    "Bytes written to clients.",
    COUNTER,
    &[],
);
const PARSE_ERRORS: Family = Family::new(
    "cerberus_parse_errors_total",
    "Requests rejected by the parser, by kind.",
    COUNTER,
    &["kind"],
);
const JSON: Family = Family::new(
    "cerberus_json_bodies_total",
    "application/json request bodies validated, by result.",
    COUNTER,
    &["result"],
);
const ACCESS_LOG_DROPPED: Family = Family::new(
    "cerberus_access_log_dropped_total",
    "Access-log lines dropped because the log could not keep up (requests were answered).",
    COUNTER,
    &[],
);
const RELOADS: Family = Family::new(
    "cerberus_reloads_total",
    "Configuration reloads attempted, by result.",
    COUNTER,
    &["result"],
);
const LAST_RELOAD: Family = Family::new(
    "cerberus_last_reload_success",
    "1 if the last configuration reload succeeded (or none was attempted), else 0.",
    GAUGE,
    &[],
);
const WORKERS: Family = Family::new("cerberus_workers", "Worker threads running.", GAUGE, &[]);
const BUILD_INFO: Family = Family::new(
    "cerberus_build_info",
    "Always 1; the version label says which build is running.",
    GAUGE,
    &["version"],
);

const SHAPE_RESPONSES: Family = Family::new(
    "cerberus_shape_responses_total",
    "Shaped responses sent, by route and status code (counted when the head is written).",
    COUNTER,
    &["route", "code"],
);
const SHAPE_DELAY: Family = Family::new(
    "cerberus_shape_delay_seconds",
    "Delay injected into shaped requests (responses and resets), by route.",
    HISTOGRAM,
    &["route"],
);
const SHAPE_BODY: Family = Family::new(
    "cerberus_shape_body_bytes_total",
    "Body bytes of shaped responses (as their Content-Length or drip total), by route.",
    COUNTER,
    &["route"],
);
const SHAPE_CLOSES: Family = Family::new(
    "cerberus_shape_closes_total",
    "Shaped responses sent with Connection: close, which then closed the connection (asked for \
     with close=, or by the client, or a drain), by route.",
    COUNTER,
    &["route"],
);
const SHAPE_RESETS: Family = Family::new(
    "cerberus_shape_resets_total",
    "Shaped requests answered with a TCP reset instead of a response, by route.",
    COUNTER,
    &["route"],
);

const TLS_HANDSHAKES: Family = Family::new(
    "cerberus_tls_handshakes_total",
    "TLS handshakes done on the HTTPS listener, by protocol version and kind (full or resumed).",
    COUNTER,
    &["version", "kind"],
);
const TLS_FAILURES: Family = Family::new(
    "cerberus_tls_handshake_failures_total",
    "TLS handshakes that failed, by reason.",
    COUNTER,
    &["reason"],
);
const TLS_EXPIRY: Family = Family::new(
    "cerberus_tls_certificate_expiry_timestamp_seconds",
    "When each certificate the HTTPS listener serves expires (its notAfter), in seconds since \
     the Unix epoch, by its first name and file.",
    GAUGE,
    &["name", "file"],
);

/// Every family [`StatsCollector`] exports, for its descriptors.
const FAMILIES: [&Family; 22] = [
    &REQUESTS,
    &DURATION,
    &ACCEPTED,
    &OPEN,
    &CLOSED,
    &RECEIVED,
    &SENT,
    &PARSE_ERRORS,
    &JSON,
    &ACCESS_LOG_DROPPED,
    &RELOADS,
    &LAST_RELOAD,
    &WORKERS,
    &BUILD_INFO,
    &SHAPE_RESPONSES,
    &SHAPE_DELAY,
    &SHAPE_BODY,
    &SHAPE_CLOSES,
    &SHAPE_RESETS,
    &TLS_HANDSHAKES,
    &TLS_FAILURES,
    &TLS_EXPIRY,
];

/// Sums the workers' counters into metric families at scrape time.
pub struct StatsCollector {
    /// The counters being summed.
    observed: Arc<Observed>,
    /// One descriptor per family, so the registry can check names are unique.
    descs: Vec<Desc>,
}

impl StatsCollector {
    /// A collector of these workers' and this server's counters.
    pub fn new(observed: Arc<Observed>) -> StatsCollector {
        let descs = FAMILIES
            .iter()
            .map(|f| f.desc().expect("metric names and help are valid"))
            .collect();
        StatsCollector { observed, descs }
    }

    /// The sum of one counter over all workers (running and retired).
    fn sum(all: &[&WorkerStats], counter: impl Fn(&WorkerStats) -> u64) -> f64 {
        let total = all.iter().fold(0u64, |acc, w| acc.wrapping_add(counter(w)));
        total as f64
    }

    /// Every non-zero (method, code) pair.
    fn requests(all: &[&WorkerStats]) -> Vec<proto::Metric> {
        let mut metrics = Vec::new();
        for (m, method) in METHODS.iter().enumerate() {
            for slot in 0..STATUS_SLOTS {
                let n = Self::sum(all, |w| w.requests[m][slot].get());
                if n > 0.0 {
                    let code = (FIRST_STATUS + slot as u16).to_string();
                    metrics.push(sample(&[("method", method), ("code", &code)], COUNTER, n));
                }
            }
        }
        metrics
    }

    /// The duration histogram, merged over workers, with cumulative buckets.
    fn duration(all: &[&WorkerStats]) -> proto::Metric {
        let mut counts = [0u64; DURATION_BUCKETS.len() + 1];
        for w in all {
            for (count, bucket) in counts.iter_mut().zip(&w.duration_buckets) {
                *count = count.wrapping_add(bucket.get());
            }
        }
        let sum = Self::sum(all, |w| w.duration_sum_nanos.get()) / 1e9;
        histogram(&DURATION_BUCKETS, &counts, sum)
    }
}

impl Collector for StatsCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.observed.with_totals(|all| self.families(all))
    }
}

impl StatsCollector {
    /// Every family, from these counters (retired workers' first, then running ones').
    fn families(&self, all: &[&WorkerStats]) -> Vec<MetricFamily> {
        let workers = self.observed.live();
        let server = &self.observed.server;
        let counter = |labels: &[(&str, &str)], n: f64| sample(labels, COUNTER, n);
        let gauge = |labels: &[(&str, &str)], n: f64| sample(labels, GAUGE, n);
        let ids: Vec<String> = (0..workers.len()).map(|id| id.to_string()).collect();
        let per_worker = |f: &dyn Fn(&WorkerStats) -> f64, counter_kind: bool| {
            let kind = if counter_kind { COUNTER } else { GAUGE };
            workers
                .iter()
                .zip(&ids)
                .map(|(w, id)| sample(&[("worker", id)], kind, f(w)))
                .collect::<Vec<_>>()
        };
        // Closes before the open gauges: a close is published after its gauge went down
        // (`StatsWriter::closed`), so no connection is counted both closed and open.
        let closed: Vec<_> = CloseReason::ALL
            .iter()
            .map(|&r| {
                counter(
                    &[("reason", r.as_str())],
                    Self::sum(all, |w| w.closed[r as usize].get_acquire()),
                )
            })
            .collect();
        let open = per_worker(&|w| w.open.get() as f64, false);
        let handed_off = per_worker(&|w| w.handed_off.get() as f64, true);
        let worker_requests = per_worker(&|w| w.requests_total() as f64, true);
        let parse_errors = ParseError::ALL.iter().map(|&e| {
            counter(
                &[("kind", e.as_str())],
                Self::sum(all, |w| w.parse_errors[e as usize].get()),
            )
        });
        let load = |value: &std::sync::atomic::AtomicU64| value.load(Relaxed) as f64;
        let mut families = vec![
            REQUESTS.with(Self::requests(all)),
            DURATION.with(vec![Self::duration(all)]),
            ACCEPTED.with(vec![counter(&[], Self::sum(all, |w| w.accepted.get()))]),
            OPEN.with(open),
            HANDED_OFF.with(handed_off),
            WORKER_REQUESTS.with(worker_requests),
            CLOSED.with(closed),
            RECEIVED.with(vec![counter(
                &[],
                Self::sum(all, |w| w.bytes_received.get()),
            )]),
            SENT.with(vec![counter(&[], Self::sum(all, |w| w.bytes_sent.get()))]),
            PARSE_ERRORS.with(parse_errors.collect()),
            JSON.with(vec![
                counter(
                    &[("result", "parsed")],
                    Self::sum(all, |w| w.json_parsed.get()),
                ),
                counter(
                    &[("result", "rejected")],
                    Self::sum(all, |w| w.json_rejected.get()),
                ),
            ]),
            ACCESS_LOG_DROPPED.with(vec![counter(
                &[],
                Self::sum(all, |w| w.access_log_dropped.get()),
            )]),
            RELOADS.with(vec![
                counter(&[("result", "success")], load(&server.reloads_ok)),
                counter(&[("result", "failure")], load(&server.reloads_failed)),
            ]),
            LAST_RELOAD.with(vec![gauge(&[], server.last_reload_ok.load(Relaxed) as f64)]),
            WORKERS.with(vec![gauge(&[], server.workers.load(Relaxed) as f64)]),
            BUILD_INFO.with(vec![gauge(&[("version", env!("CARGO_PKG_VERSION"))], 1.0)]),
        ];
        families.extend(Self::shapes(&self.observed.shapes.routes()));
        families.extend(self.tls(all));
        families
    }

    /// The TLS families: none while no `[tls]` listener serves (no certificates), so a plain
    /// server's scrape does not grow.
    fn tls(&self, all: &[&WorkerStats]) -> Vec<MetricFamily> {
        let certificates = self
            .observed
            .certificates
            .read()
            .map(|c| c.clone())
            .unwrap_or_default();
        if certificates.is_empty() {
            return Vec::new();
        }
        let mut done = Vec::new();
        for (version, tls13) in [("1.2", false), ("1.3", true)] {
            for (kind, resumed) in [("full", false), ("resumed", true)] {
                let slot = crate::stats::tls_slot(tls13, resumed);
                done.push(sample(
                    &[("version", version), ("kind", kind)],
                    COUNTER,
                    Self::sum(all, |w| w.tls_done[slot].get()),
                ));
            }
        }
        let failed = TlsFailure::ALL.iter().map(|&f| {
            sample(
                &[("reason", f.as_str())],
                COUNTER,
                Self::sum(all, |w| w.tls_failed[f as usize].get()),
            )
        });
        let expiry = certificates.iter().map(|c| {
            let file = c.file.display().to_string();
            sample(
                &[("name", &c.name), ("file", &file)],
                GAUGE,
                c.not_after as f64,
            )
        });
        vec![
            TLS_HANDSHAKES.with(done),
            TLS_FAILURES.with(failed.collect()),
            TLS_EXPIRY.with(expiry.collect()),
        ]
    }

    /// The `shape` routes' families (none while no config has a shape route).
    fn shapes(routes: &[Arc<RouteCounters>]) -> Vec<MetricFamily> {
        if routes.is_empty() {
            return Vec::new();
        }
        let (mut responses, mut delays, mut body, mut closes, mut resets) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for route in routes {
            let label = route.label.as_str();
            for slot in 0..SHAPE_STATUS_SLOTS {
                let n = route.sum(|s| &s.statuses[slot]);
                if n > 0 {
                    let code = (SHAPE_FIRST_STATUS + slot as u16).to_string();
                    let labels = [("route", label), ("code", code.as_str())];
                    responses.push(sample(&labels, COUNTER, n as f64));
                }
            }
            let counts: Vec<u64> = (0..=DELAY_BUCKETS_US.len())
                .map(|b| route.sum(|s| &s.delay_buckets[b]))
                .collect();
            let sum = route.sum(|s| &s.delay_sum_us) as f64 / 1e6;
            let bounds = DELAY_BUCKETS_US.map(|us| us as f64 / 1e6);
            let mut m = histogram(&bounds, &counts, sum);
            m.set_label(labels(&[("route", label)]).into());
            delays.push(m);
            let one = |f: &dyn Fn(&Slot) -> &std::sync::atomic::AtomicU64| {
                sample(&[("route", label)], COUNTER, route.sum(f) as f64)
            };
            body.push(one(&|s| &s.body_bytes));
            closes.push(one(&|s| &s.closes));
            resets.push(one(&|s| &s.resets));
        }
        vec![
            SHAPE_RESPONSES.with(responses),
            SHAPE_DELAY.with(delays),
            SHAPE_BODY.with(body),
            SHAPE_CLOSES.with(closes),
            SHAPE_RESETS.with(resets),
        ]
    }
}

/// A histogram sample from per-bucket (not cumulative) `counts`, one per bound plus `+Inf`.
fn histogram(bounds: &[f64], counts: &[u64], sum: f64) -> proto::Metric {
    let mut cumulative = 0u64;
    let buckets: Vec<proto::Bucket> = bounds
        .iter()
        .zip(counts)
        .map(|(&bound, &count)| {
            cumulative = cumulative.wrapping_add(count);
            let mut b = proto::Bucket::default();
            b.set_upper_bound(bound);
            b.set_cumulative_count(cumulative);
            b
        })
        .collect();
    // The encoder adds `le="+Inf"` with the sample count, which includes the last slot.
    let mut h = proto::Histogram::default();
    h.set_bucket(buckets.into());
    h.set_sample_count(counts.iter().fold(0u64, |a, c| a.wrapping_add(*c)));
    h.set_sample_sum(sum);
    let mut m = proto::Metric::default();
    m.set_histogram(h);
    m
}

/// Label pairs.
fn labels(pairs: &[(&str, &str)]) -> Vec<proto::LabelPair> {
    pairs
        .iter()
        .map(|(name, value)| {
            let mut pair = proto::LabelPair::default();
            pair.set_name((*name).into());
            pair.set_value((*value).into());
            pair
        })
        .collect()
}

/// One counter or gauge sample with these labels.
fn sample(pairs: &[(&str, &str)], kind: MetricType, value: f64) -> proto::Metric {
    let pairs = labels(pairs);
    let mut m = proto::Metric::default();
    m.set_label(pairs.into());
    if kind == COUNTER {
        let mut c = proto::Counter::default();
        c.set_value(value);
        m.set_counter(c);
    } else {
        let mut g = proto::Gauge::default();
        g.set_value(value);
        m.set_gauge(g);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::StatsWriter;
    use prometheus::{Encoder, Registry, TextEncoder};
    use std::time::Duration;

    /// The exposition of two workers' counters, without the process metrics.
    fn render(observed: Observed) -> String {
        let registry = Registry::new();
        let collector = StatsCollector::new(Arc::new(observed));
        registry.register(Box::new(collector)).unwrap();
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut text)
            .unwrap();
        String::from_utf8(text).unwrap()
    }

    fn two_workers() -> (Observed, [StatsWriter; 2]) {
        let observed = Observed::new();
        let workers = [StatsWriter::new(), StatsWriter::new()];
        observed.add(&[workers[0].view(), workers[1].view()]);
        (observed, workers)
    }

    #[test]
    fn sums_workers_and_skips_zero_request_series() {
        let (observed, [a, b]) = two_workers();
        a.request(b"GET", 200);
        b.request(b"GET", 200);
        b.request(b"BREW", 404);
        (0..3).for_each(|_| a.opened());
        b.opened();
        b.closed(CloseReason::HeaderTimeout);
        a.access_log_dropped(2);
        b.access_log_dropped(5);
        observed.server.reloads_failed.store(2, Relaxed);
        let text = render(observed);
        let requests: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("cerberus_requests_total"))
            .collect();
        assert_eq!(
            requests,
            [
                r#"cerberus_requests_total{method="GET",code="200"} 2"#,
                r#"cerberus_requests_total{method="other",code="404"} 1"#,
            ]
        );
        for line in [
            r#"cerberus_connections_open{worker="0"} 3"#,
            r#"cerberus_connections_open{worker="1"} 0"#,
            r#"cerberus_connections_accepted_total 4"#,
            r#"cerberus_connections_closed_total{reason="header_timeout"} 1"#,
            r#"cerberus_connections_closed_total{reason="shutdown"} 0"#,
            r#"cerberus_reloads_total{result="failure"} 2"#,
            "cerberus_access_log_dropped_total 7",
            r#"cerberus_build_info{version=""#,
            "# TYPE cerberus_request_duration_seconds histogram",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn histogram_buckets_are_cumulative_across_workers() {
        let (observed, [a, b]) = two_workers();
        a.record_durations(2, Duration::from_micros(50));
        b.record_durations(1, Duration::from_millis(3));
        b.record_durations(1, Duration::from_secs(60));
        let text = render(observed);
        let name = "cerberus_request_duration_seconds";
        for line in [
            format!("{name}_bucket{{le=\"0.0001\"}} 2"),
            format!("{name}_bucket{{le=\"0.0025\"}} 2"),
            format!("{name}_bucket{{le=\"0.005\"}} 3"),
            format!("{name}_bucket{{le=\"5\"}} 3"),
            format!("{name}_bucket{{le=\"+Inf\"}} 4"),
            format!("{name}_sum 60.0031"),
            format!("{name}_count 4"),
        ] {
            assert!(
                text.contains(&format!("{line}\n")),
                "no {line:?} in\n{text}"
            );
        }
    }
}
