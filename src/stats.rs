//! The counters each worker writes: one [`WorkerStats`] per worker, read by the metrics thread.
//! [`Observed`] is where the supervisor (which writes the list of workers and the
//! [`ServerStats`]) and the metrics thread (which reads them) meet.
//!
//! Every counter has exactly one writer (its worker), so an increment is a relaxed load and a
//! relaxed store, not a locked read-modify-write, and no counter's cache line is written by two
//! cores. The metrics thread only loads. Each `WorkerStats` is aligned to 128 bytes so two
//! workers' counters never share a line (adjacent-line prefetch pairs 64-byte lines).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A counter written by one thread and read by others.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Add `n`. Only the owning worker may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Add one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A gauge written by one thread and read by others.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Add `n` (may be negative). Only the owning worker may call this.
    #[inline]
    pub fn add(&self, n: i64) {
        self.0.store(self.0.load(Relaxed) + n, Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// Method label values, in slot order; anything else counts as `other`.
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
];

/// The slot of a method in [`METHODS`].
#[inline]
pub fn method_slot(method: &[u8]) -> usize {
    match method {
        b"GET" => 0,
        b"HEAD" => 1,
        b"POST" => 2,
        b"PUT" => 3,
        b"DELETE" => 4,
        b"PATCH" => 5,
        b"OPTIONS" => 6,
        _ => 7,
    }
}

/// Lowest status code counted; statuses are stored at `status - FIRST_STATUS`.
pub const FIRST_STATUS: u16 = 100;
/// Number of status slots: 100..=599.
pub const STATUS_SLOTS: usize = 500;

/// Upper bounds of the request-duration histogram buckets, in seconds (`+Inf` is implied).
pub const DURATION_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

labeled_enum! {
    /// Why a connection was closed.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum CloseReason {
        /// The client closed it, or asked us to (`Connection: close`, HTTP/1.0).
        Client => "client",
        /// Idle past `keepalive_timeout`.
        KeepaliveTimeout => "keepalive_timeout",
        /// The head did not arrive within `header_timeout`.
        HeaderTimeout => "header_timeout",
        /// The body stalled past `body_timeout`.
        BodyTimeout => "body_timeout",
        /// The client did not read its responses within `write_timeout`.
        WriteTimeout => "write_timeout",
        /// A protocol or I/O error.
        Error => "error",
        /// The server is draining.
        Shutdown => "shutdown",
    }
}

/// One worker's counters.
#[derive(Debug)]
#[repr(align(128))]
pub struct WorkerStats {
    /// Requests answered, by method slot and status slot.
    pub requests: Box<[[Counter; STATUS_SLOTS]; 8]>,
    /// Request durations: per-bucket (not cumulative) counts; the last slot is `+Inf`.
    pub duration_buckets: [Counter; DURATION_BUCKETS.len() + 1],
    /// Sum of request durations, in nanoseconds.
    pub duration_sum_nanos: Counter,
    /// Connections accepted.
    pub accepted: Counter,
    /// Connections open now.
    pub open: Gauge,
    /// Connections closed, by [`CloseReason`] slot.
    pub closed: [Counter; CloseReason::ALL.len()],
    /// Bytes read from clients.
    pub bytes_received: Counter,
    /// Bytes written to clients.
    pub bytes_sent: Counter,
    /// Parse errors, by [`ParseError::ALL`](crate::http::ParseError::ALL) slot.
    pub parse_errors: [Counter; crate::http::ParseError::ALL.len()],
    /// JSON bodies that parsed.
    pub json_parsed: Counter,
    /// JSON bodies rejected as invalid.
    pub json_rejected: Counter,
    /// Pings answered, so the supervisor can tell the worker's loop is turning (watchdog).
    pub heartbeat: Counter,
}

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            requests: Box::new(std::array::from_fn(|_| {
                std::array::from_fn(|_| Counter::default())
            })),
            duration_buckets: Default::default(),
            duration_sum_nanos: Counter::default(),
            accepted: Counter::default(),
            open: Gauge::default(),
            closed: Default::default(),
            bytes_received: Counter::default(),
            bytes_sent: Counter::default(),
            parse_errors: Default::default(),
            json_parsed: Counter::default(),
            json_rejected: Counter::default(),
            heartbeat: Counter::default(),
        }
    }
}

impl WorkerStats {
    /// Count one answered request.
    #[inline]
    pub fn request(&self, method: &[u8], status: u16) {
        let slot = usize::from(status.saturating_sub(FIRST_STATUS)).min(STATUS_SLOTS - 1);
        self.requests[method_slot(method)][slot].inc();
    }

    /// Record the durations of `count` requests that each took `took` (requests answered in
    /// one batch share their first byte's read and their response's queueing).
    #[inline]
    pub fn record_durations(&self, count: u64, took: Duration) {
        let secs = took.as_secs_f64();
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(DURATION_BUCKETS.len());
        self.duration_buckets[bucket].add(count);
        self.duration_sum_nanos.add(took.as_nanos() as u64 * count);
    }

    /// Count one closed connection.
    #[inline]
    pub fn closed(&self, reason: CloseReason) {
        self.closed[reason as usize].inc();
        self.open.add(-1);
    }

    /// Count one parse error.
    #[inline]
    pub fn parse_error(&self, e: crate::http::ParseError) {
        self.parse_errors[e as usize].inc();
    }

    /// Add every counter of `other` (a worker that exited) into these. Only the owner of
    /// `self` (the supervisor, for the retired totals) may call this.
    pub fn absorb(&self, other: &WorkerStats) {
        for (mine, theirs) in self.requests.iter().zip(other.requests.iter()) {
            for (a, b) in mine.iter().zip(theirs.iter()) {
                a.add(b.get());
            }
        }
        let pairs = [
            (&self.duration_sum_nanos, &other.duration_sum_nanos),
            (&self.accepted, &other.accepted),
            (&self.bytes_received, &other.bytes_received),
            (&self.bytes_sent, &other.bytes_sent),
            (&self.json_parsed, &other.json_parsed),
            (&self.json_rejected, &other.json_rejected),
        ];
        let arrays = self.duration_buckets.iter().zip(&other.duration_buckets);
        let arrays = arrays.chain(self.closed.iter().zip(&other.closed));
        let arrays = arrays.chain(self.parse_errors.iter().zip(&other.parse_errors));
        for (a, b) in pairs.into_iter().chain(arrays) {
            a.add(b.get());
        }
    }

    /// Total requests over all methods and statuses.
    #[cfg(test)]
    pub fn requests_total(&self) -> u64 {
        self.requests
            .iter()
            .flat_map(|row| row.iter())
            .map(Counter::get)
            .sum()
    }
}

/// Process-wide lifecycle facts, written by the supervisor.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Reloads attempted, by outcome.
    pub reloads_ok: AtomicU64,
    /// Reloads rejected (bad config).
    pub reloads_failed: AtomicU64,
    /// 1 if the last reload succeeded (or none happened), else 0.
    pub last_reload_ok: AtomicI64,
    /// Workers running.
    pub workers: AtomicI64,
    /// 1 once every worker listens; 0 before, and again while draining.
    pub ready: AtomicI64,
}

/// What a running server shares with the metrics thread.
pub struct Observed {
    /// Counters of running workers (of every generation still draining).
    live: RwLock<Vec<Arc<WorkerStats>>>,
    /// Counters of workers that exited, summed, so totals never go down.
    retired: WorkerStats,
    /// Process-wide state.
    pub server: Arc<ServerStats>,
}

impl Observed {
    /// Nothing observed yet.
    pub fn new() -> Observed {
        let server = Arc::new(ServerStats::default());
        // No reload has failed yet: scrapes before the workers are up must not say otherwise.
        server.last_reload_ok.store(1, Relaxed);
        Observed {
            live: RwLock::new(Vec::new()),
            retired: WorkerStats::default(),
            server,
        }
    }

    /// The counters of the running workers, in start order.
    pub fn live(&self) -> Vec<Arc<WorkerStats>> {
        self.live.read().map(|l| l.clone()).unwrap_or_default()
    }

    /// Call `f` with every counter set to sum for totals. Retirement cannot happen meanwhile,
    /// so nothing is counted twice or missed.
    pub fn with_totals<R>(&self, f: impl FnOnce(&[&WorkerStats]) -> R) -> R {
        let live = self.live.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<&WorkerStats> = Vec::with_capacity(live.len() + 1);
        all.push(&self.retired);
        all.extend(live.iter().map(|s| s.as_ref()));
        f(&all)
    }

    /// Start observing these workers.
    pub fn add(&self, stats: &[Arc<WorkerStats>]) {
        self.live
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(stats.iter().cloned());
    }

    /// Fold exited workers' counters into `retired` and stop listing them, in one step.
    pub fn retire(&self, stats: &[Arc<WorkerStats>]) {
        let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
        for s in stats {
            self.retired.absorb(s);
        }
        live.retain(|l| !stats.iter().any(|s| Arc::ptr_eq(s, l)));
    }
}

impl Default for Observed {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::ParseError;

    #[test]
    fn counts_land_in_their_slots() {
        let s = WorkerStats::default();
        s.request(b"GET", 200);
        s.request(b"BREW", 599);
        s.request(b"POST", 413);
        s.record_durations(1, Duration::from_micros(50));
        s.record_durations(1, Duration::from_secs(100));
        s.record_durations(2, Duration::from_millis(2));
        assert_eq!(s.requests[0][100].get(), 1);
        assert_eq!(s.requests[7][499].get(), 1);
        assert_eq!(s.requests[2][313].get(), 1);
        assert_eq!(s.requests_total(), 3);
        assert_eq!(s.duration_buckets[0].get(), 1);
        assert_eq!(s.duration_buckets[DURATION_BUCKETS.len()].get(), 1);
        assert_eq!(s.duration_buckets[4].get(), 2);
        s.parse_error(ParseError::BareLf);
        assert_eq!(
            s.parse_errors[ParseError::ALL
                .iter()
                .position(|e| *e == ParseError::BareLf)
                .unwrap()]
            .get(),
            1
        );
    }

    #[test]
    fn absorb_adds_every_counter() {
        let (a, b) = (WorkerStats::default(), WorkerStats::default());
        b.request(b"PUT", 201);
        b.record_durations(3, Duration::from_millis(1));
        b.closed(CloseReason::Shutdown);
        b.bytes_sent.add(10);
        a.bytes_sent.add(5);
        a.absorb(&b);
        assert_eq!(a.requests_total(), 1);
        assert_eq!(a.duration_buckets.iter().map(Counter::get).sum::<u64>(), 3);
        assert_eq!(a.closed[CloseReason::Shutdown as usize].get(), 1);
        assert_eq!(a.bytes_sent.get(), 15);
    }

    #[test]
    fn method_slots_follow_the_label_list() {
        for (i, m) in METHODS.iter().enumerate().take(7) {
            assert_eq!(method_slot(m.as_bytes()), i);
        }
        assert_eq!(method_slot(b"PURGE"), 7);
    }

    #[test]
    fn error_kinds_are_in_slot_order() {
        for (i, e) in ParseError::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i);
        }
        for (i, r) in CloseReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }
}
