//! The counters each worker writes: one [`WorkerStats`] per worker, read by the metrics thread.
//! [`Observed`] is where the supervisor (which writes the list of workers and the
//! [`ServerStats`]) and the metrics thread (which reads them) meet.
//!
//! Every counter has exactly one writer, its worker's [`StatsWriter`], so an increment is a
//! relaxed load and a relaxed store, not a locked read-modify-write, and no counter's cache
//! line is written by two cores. The types keep it so: a counter's write methods are private
//! to this module, the only writer is a `StatsWriter`, which can be neither cloned nor shared
//! between threads, and everyone else holds an `Arc<WorkerStats>`, whose counters only read.
//! Each `WorkerStats` is aligned to 128 bytes so two workers' counters never share a line
//! (adjacent-line prefetch pairs 64-byte lines).

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::atomic::{
    AtomicI64, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A counter written by one thread and read by others.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Add `n`: a load and a store, correct only with one writer (see the module doc).
    #[inline]
    fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Add `n` after everything this thread wrote before it: a reader that sees the sum
    /// with [`Counter::get_acquire`] sees those writes too.
    #[inline]
    fn add_release(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Release);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }

    /// The current value, and every write made before the [`Counter::add_release`] that
    /// stored it.
    pub fn get_acquire(&self) -> u64 {
        self.0.load(Acquire)
    }
}

/// A gauge written by one thread and read by others.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Add `n` (may be negative): correct only with one writer (see the module doc).
    #[inline]
    fn add(&self, n: i64) {
        self.0.store(self.0.load(Relaxed) + n, Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// What every field of [`WorkerStats`] is made of: counters and gauges, alone, in arrays or
/// boxed. `absorb` needs `&mut`, so only the one owner of the totals can add into them.
trait Cells {
    /// Add every cell of `other` into the same cell of `self`.
    fn absorb(&mut self, other: &Self);
    /// Every cell's value, in field order.
    #[cfg(test)]
    fn visit(&self, f: &mut dyn FnMut(i64));
    /// Set every cell from `next`, in field order.
    #[cfg(test)]
    fn fill(&mut self, next: &mut dyn FnMut() -> i64);
}

impl Cells for Counter {
    fn absorb(&mut self, other: &Self) {
        let mine = self.0.get_mut();
        *mine = mine.wrapping_add(other.get());
    }
    #[cfg(test)]
    fn visit(&self, f: &mut dyn FnMut(i64)) {
        f(self.get() as i64);
    }
    #[cfg(test)]
    fn fill(&mut self, next: &mut dyn FnMut() -> i64) {
        *self.0.get_mut() = next() as u64;
    }
}

impl Cells for Gauge {
    fn absorb(&mut self, other: &Self) {
        *self.0.get_mut() += other.get();
    }
    #[cfg(test)]
    fn visit(&self, f: &mut dyn FnMut(i64)) {
        f(self.get());
    }
    #[cfg(test)]
    fn fill(&mut self, next: &mut dyn FnMut() -> i64) {
        *self.0.get_mut() = next();
    }
}

impl<T: Cells, const N: usize> Cells for [T; N] {
    fn absorb(&mut self, other: &Self) {
        self.iter_mut().zip(other).for_each(|(a, b)| a.absorb(b));
    }
    #[cfg(test)]
    fn visit(&self, f: &mut dyn FnMut(i64)) {
        self.iter().for_each(|c| c.visit(f));
    }
    #[cfg(test)]
    fn fill(&mut self, next: &mut dyn FnMut() -> i64) {
        self.iter_mut().for_each(|c| c.fill(next));
    }
}

impl<T: Cells> Cells for Box<T> {
    fn absorb(&mut self, other: &Self) {
        (**self).absorb(other);
    }
    #[cfg(test)]
    fn visit(&self, f: &mut dyn FnMut(i64)) {
        (**self).visit(f);
    }
    #[cfg(test)]
    fn fill(&mut self, next: &mut dyn FnMut() -> i64) {
        (**self).fill(next);
    }
}

/// Declares [`WorkerStats`] from one list of fields, and from the same list its `Default`
/// and its [`Cells`] (so `absorb` cannot leave a field out).
macro_rules! worker_stats {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident: $ty:ty = $init:expr, )+
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )+
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $init, )+ }
            }
        }

        impl Cells for $name {
            fn absorb(&mut self, other: &Self) {
                $( self.$field.absorb(&other.$field); )+
            }
            #[cfg(test)]
    fn visit(&self, f: &mut dyn FnMut(i64)) {
                $( self.$field.visit(f); )+
            }
            #[cfg(test)]
            fn fill(&mut self, next: &mut dyn FnMut() -> i64) {
                $( self.$field.fill(next); )+
            }
        }
    };
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
        /// The body arrived slower than `min_body_rate`.
        MinBodyRate => "min_body_rate",
        /// The client read its responses slower than `min_send_rate`.
        MinSendRate => "min_send_rate",
        /// A protocol or I/O error.
        Error => "error",
        /// A `shape` route answered with a reset (`reset=`).
        Reset => "reset",
        /// The server is draining.
        Shutdown => "shutdown",
        /// A TLS handshake did not finish within `tls.handshake_timeout`.
        HandshakeTimeout => "handshake_timeout",
    }
}

labeled_enum! {
    /// Why a TLS handshake failed.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum TlsFailure {
        /// Plain HTTP sent to the TLS port (answered with a 400 in plain text).
        PlainHttp => "plain_http",
        /// Not done within `tls.handshake_timeout`.
        Timeout => "timeout",
        /// The client closed the connection before the handshake was done.
        Closed => "closed",
        /// The client and the server share no protocol version, cipher suite, group or
        /// application protocol.
        Incompatible => "incompatible",
        /// The client ended the handshake with an alert (it refused our certificate, say).
        Alert => "alert",
        /// Records or messages that break the protocol (garbage, truncated, oversized,
        /// unexpected, or not decrypting).
        Protocol => "protocol",
        /// Anything else.
        Other => "other",
    }
}

/// TLS handshakes done: the slot of a protocol version and kind in `WorkerStats::tls_done`.
#[inline]
pub fn tls_slot(tls13: bool, resumed: bool) -> usize {
    usize::from(tls13) * 2 + usize::from(resumed)
}

worker_stats! {
    /// One worker's counters. Only its [`StatsWriter`] writes them.
    #[derive(Debug)]
    #[repr(align(128))]
    pub struct WorkerStats {
        /// Requests answered, by method slot and status slot.
        pub requests: Box<[[Counter; STATUS_SLOTS]; 8]> =
            Box::new(std::array::from_fn(|_| std::array::from_fn(|_| Counter::default()))),
        /// Request durations: per-bucket (not cumulative) counts; the last slot is `+Inf`.
        pub duration_buckets: [Counter; DURATION_BUCKETS.len() + 1] = Default::default(),
        /// Sum of request durations, in nanoseconds.
        pub duration_sum_nanos: Counter = Counter::default(),
        /// Connections accepted.
        pub accepted: Counter = Counter::default(),
        /// Connections open now.
        pub open: Gauge = Gauge::default(),
        /// Connections this worker handed to a less loaded one: accepted over its fair share,
        /// or moved between requests because it answered well over its team's mean.
        pub handed_off: Counter = Counter::default(),
        /// Connections closed, by [`CloseReason`] slot.
        pub closed: [Counter; CloseReason::ALL.len()] = Default::default(),
        /// Bytes read from clients.
        pub bytes_received: Counter = Counter::default(),
        /// Bytes written to clients.
        pub bytes_sent: Counter = Counter::default(),
        /// Parse errors, by [`ParseError::ALL`](crate::http::ParseError::ALL) slot.
        pub parse_errors: [Counter; crate::http::ParseError::ALL.len()] = Default::default(),
        /// JSON bodies that parsed.
        pub json_parsed: Counter = Counter::default(),
        /// JSON bodies rejected as invalid.
        pub json_rejected: Counter = Counter::default(),
        /// Access-log lines dropped because the log thread's queue was full (the disk, or
        /// whatever reads the log, cannot keep up); serving never waits for the log.
        pub access_log_dropped: Counter = Counter::default(),
        /// TLS handshakes done, by [`tls_slot`]: TLS 1.2 or 1.3, full or resumed.
        pub tls_done: [Counter; 4] = Default::default(),
        /// TLS handshakes failed, by [`TlsFailure`] slot.
        pub tls_failed: [Counter; TlsFailure::ALL.len()] = Default::default(),
        /// Pings answered, so the supervisor can tell the worker's loop is turning (watchdog).
        pub heartbeat: Counter = Counter::default(),
    }
}

impl WorkerStats {
    /// Add every counter of `other` (a worker that exited) into these totals, which nobody
    /// else writes (`&mut`).
    pub fn absorb(&mut self, other: &WorkerStats) {
        Cells::absorb(self, other);
    }

    /// Total requests over all methods and statuses.
    pub fn requests_total(&self) -> u64 {
        self.requests
            .iter()
            .flat_map(|row| row.iter())
            .map(Counter::get)
            .sum()
    }
}

/// The one writer of a worker's counters. It can be neither cloned nor shared between threads
/// (it is `Send`, not `Sync`): the worker owns it, and the supervisor and the metrics thread
/// hold the read-only `Arc<WorkerStats>` from [`StatsWriter::view`].
#[derive(Debug)]
pub struct StatsWriter {
    stats: Arc<WorkerStats>,
    /// Not `Sync`: a `&StatsWriter` cannot reach another thread either.
    _one_thread: PhantomData<Cell<()>>,
}

impl StatsWriter {
    /// Fresh counters and their only writer.
    pub fn new() -> StatsWriter {
        StatsWriter {
            stats: Arc::new(WorkerStats::default()),
            _one_thread: PhantomData,
        }
    }

    /// A read-only view of the counters, for the supervisor and the metrics thread.
    pub fn view(&self) -> Arc<WorkerStats> {
        self.stats.clone()
    }

    /// Count one accepted connection, now open.
    #[inline]
    pub fn opened(&self) {
        self.stats.accepted.add(1);
        self.stats.open.add(1);
    }

    /// Count one connection handed to another worker at accept.
    pub fn handed_off(&self) {
        self.stats.handed_off.add(1);
    }

    /// Count one open connection leaving for another worker, before it is sent: once the
    /// other worker has it, it may count it in, and close it, at any moment.
    pub fn moved_out(&self) {
        self.stats.open.add(-1);
    }

    /// Count one open connection moved here from another worker.
    pub fn moved_in(&self) {
        self.stats.open.add(1);
    }

    /// Count one closed connection. It leaves the open gauge first, and the close is
    /// published after it: a scrape reads the closes first (acquiring), so it never sees a
    /// connection both closed and open.
    #[inline]
    pub fn closed(&self, reason: CloseReason) {
        self.stats.open.add(-1);
        self.stats.closed[reason as usize].add_release(1);
    }

    /// Count a TLS handshake done.
    pub fn tls_done(&self, tls13: bool, resumed: bool) {
        self.stats.tls_done[tls_slot(tls13, resumed)].add(1);
    }

    /// Count a TLS handshake failed.
    pub fn tls_failed(&self, why: TlsFailure) {
        self.stats.tls_failed[why as usize].add(1);
    }

    /// Count bytes read from a client.
    #[inline]
    pub fn received(&self, n: usize) {
        self.stats.bytes_received.add(n as u64);
    }

    /// Count bytes written to a client.
    #[inline]
    pub fn sent(&self, n: usize) {
        self.stats.bytes_sent.add(n as u64);
    }

    /// Count one answered request.
    #[inline]
    pub fn request(&self, method: &[u8], status: u16) {
        let slot = usize::from(status.saturating_sub(FIRST_STATUS)).min(STATUS_SLOTS - 1);
        self.stats.requests[method_slot(method)][slot].add(1);
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
        self.stats.duration_buckets[bucket].add(count);
        self.stats
            .duration_sum_nanos
            .add(took.as_nanos() as u64 * count);
    }

    /// Count one parse error.
    #[inline]
    pub fn parse_error(&self, e: crate::http::ParseError) {
        self.stats.parse_errors[e as usize].add(1);
    }

    /// Count one JSON body validated: `valid` or rejected.
    #[inline]
    pub fn json(&self, valid: bool) {
        match valid {
            true => self.stats.json_parsed.add(1),
            false => self.stats.json_rejected.add(1),
        }
    }

    /// Count access-log lines dropped.
    #[inline]
    pub fn access_log_dropped(&self, lines: u64) {
        self.stats.access_log_dropped.add(lines);
    }

    /// Count one ping answered.
    pub fn heartbeat(&self) {
        self.stats.heartbeat.add(1);
    }
}

impl Default for StatsWriter {
    fn default() -> Self {
        Self::new()
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
    /// Counters of running workers (of every generation still draining), and those of the
    /// workers that exited, summed, so totals never go down. One lock: a worker moves from
    /// one to the other in one step.
    workers: RwLock<Workers>,
    /// Process-wide state.
    pub server: Arc<ServerStats>,
    /// The `shape` routes' counters.
    pub shapes: Arc<crate::shape::counters::Board>,
    /// The certificates the HTTPS listener serves now (set at start and by each reload).
    pub certificates: RwLock<Vec<crate::tls::Served>>,
}

impl Observed {
    /// Nothing observed yet.
    pub fn new() -> Observed {
        let server = Arc::new(ServerStats::default());
        // No reload has failed yet: scrapes before the workers are up must not say otherwise.
        server.last_reload_ok.store(1, Relaxed);
        Observed {
            workers: RwLock::new(Workers::default()),
            server,
            shapes: Arc::default(),
            certificates: RwLock::default(),
        }
    }

    /// The counters of the running workers, in start order.
    pub fn live(&self) -> Vec<Arc<WorkerStats>> {
        self.workers
            .read()
            .map(|w| w.live.clone())
            .unwrap_or_default()
    }

    /// Call `f` with every counter set to sum for totals. Retirement cannot happen meanwhile,
    /// so nothing is counted twice or missed.
    pub fn with_totals<R>(&self, f: impl FnOnce(&[&WorkerStats]) -> R) -> R {
        let workers = self.workers.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<&WorkerStats> = Vec::with_capacity(workers.live.len() + 1);
        all.push(&workers.retired);
        all.extend(workers.live.iter().map(|s| s.as_ref()));
        f(&all)
    }

    /// Start observing these workers.
    pub fn add(&self, stats: &[Arc<WorkerStats>]) {
        self.workers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .live
            .extend(stats.iter().cloned());
    }

    /// Fold exited workers' counters into `retired` and stop listing them, in one step.
    pub fn retire(&self, stats: &[Arc<WorkerStats>]) {
        let mut workers = self.workers.write().unwrap_or_else(|e| e.into_inner());
        for s in stats {
            workers.retired.absorb(s);
        }
        workers
            .live
            .retain(|l| !stats.iter().any(|s| Arc::ptr_eq(s, l)));
    }
}

/// The workers' counters, running and retired.
#[derive(Debug, Default)]
struct Workers {
    live: Vec<Arc<WorkerStats>>,
    retired: WorkerStats,
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
        let w = StatsWriter::new();
        let s = w.view();
        w.request(b"GET", 200);
        w.request(b"BREW", 599);
        w.request(b"POST", 413);
        w.record_durations(1, Duration::from_micros(50));
        w.record_durations(1, Duration::from_secs(100));
        w.record_durations(2, Duration::from_millis(2));
        assert_eq!(s.requests[0][100].get(), 1);
        assert_eq!(s.requests[7][499].get(), 1);
        assert_eq!(s.requests[2][313].get(), 1);
        assert_eq!(s.requests_total(), 3);
        assert_eq!(s.duration_buckets[0].get(), 1);
        assert_eq!(s.duration_buckets[DURATION_BUCKETS.len()].get(), 1);
        assert_eq!(s.duration_buckets[4].get(), 2);
        w.parse_error(ParseError::BareLf);
        assert_eq!(
            s.parse_errors[ParseError::ALL
                .iter()
                .position(|e| *e == ParseError::BareLf)
                .unwrap()]
            .get(),
            1
        );
    }

    /// Every cell's value, in field order.
    fn values(s: &WorkerStats) -> Vec<i64> {
        let mut out = Vec::new();
        s.visit(&mut |v| out.push(v));
        out
    }

    #[test]
    fn absorb_adds_every_cell_of_every_field() {
        let (mut a, mut b) = (WorkerStats::default(), WorkerStats::default());
        let mut n = 0;
        a.fill(&mut || {
            n += 1;
            n
        });
        b.fill(&mut || {
            n += 1;
            n * 1_000
        });
        let (before, theirs) = (values(&a), values(&b));
        // Every cell of every field is visited, and each holds a value of its own.
        let cells = 8 * STATUS_SLOTS
            + DURATION_BUCKETS.len()
            + 1
            + CloseReason::ALL.len()
            + crate::http::ParseError::ALL.len()
            + 4
            + TlsFailure::ALL.len()
            + 10;
        assert_eq!(before.len(), cells);
        a.absorb(&b);
        let sums: Vec<i64> = before.iter().zip(&theirs).map(|(x, y)| x + y).collect();
        assert_eq!(values(&a), sums);
    }

    /// Compiles only while `StatsWriter` is neither `Sync` nor `Clone`: with either, the
    /// `_` below could be inferred two ways, and the build fails as ambiguous.
    #[test]
    fn the_writer_can_be_neither_shared_nor_cloned() {
        trait AmbiguousIfSync<A> {
            fn check() {}
        }
        impl<T: ?Sized> AmbiguousIfSync<()> for T {}
        impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}
        trait AmbiguousIfClone<A> {
            fn check() {}
        }
        impl<T: ?Sized> AmbiguousIfClone<()> for T {}
        impl<T: Clone> AmbiguousIfClone<u8> for T {}
        <StatsWriter as AmbiguousIfSync<_>>::check();
        <StatsWriter as AmbiguousIfClone<_>>::check();
        // The view is what other threads hold.
        fn shared<T: Send + Sync>(_: &T) {}
        shared(&StatsWriter::new().view());
    }

    #[test]
    fn the_writer_counts_what_the_view_reads() {
        let w = StatsWriter::new();
        let view = w.view();
        w.opened();
        w.opened();
        w.closed(CloseReason::Shutdown);
        w.received(7);
        w.sent(10);
        w.json(true);
        w.json(false);
        w.heartbeat();
        w.access_log_dropped(3);
        assert_eq!(view.access_log_dropped.get(), 3);
        assert_eq!((view.accepted.get(), view.open.get()), (2, 1));
        assert_eq!(view.closed[CloseReason::Shutdown as usize].get(), 1);
        assert_eq!((view.bytes_received.get(), view.bytes_sent.get()), (7, 10));
        assert_eq!((view.json_parsed.get(), view.json_rejected.get()), (1, 1));
        assert_eq!(view.heartbeat.get(), 1);
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
