//! What the `shape` handler applied, counted per route: responses by status, the injected
//! delay's histogram, body bytes, closes and resets. A load test reconciles its own tally with
//! these, so each is counted once, when it takes effect: a delayed response when its head is
//! written, a reset when the connection is reset.
//!
//! A route's counters keep their identity across reloads ([`Board::route`] finds them by the
//! route's label), so a reload never makes a counter go down. Each route has one slot of
//! counters per worker index. Workers of two generations can share an index while the older
//! drains, so these, unlike the per-worker `stats`, are added to with an atomic
//! read-modify-write; a slot is still written by one core at a time nearly always.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Upper bounds of the delay histogram's buckets, in microseconds (`+Inf` is implied). The
/// delay applied is a whole number of microseconds, so a client that reads it from the
/// response's header buckets it exactly as the server did.
pub const DELAY_BUCKETS_US: [u64; 15] = [
    // The first is 0: a response with no delay counts there (`count_at_once`).
    0, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// Lowest status counted: a shaped response's status is 200..=599.
pub const FIRST_STATUS: u16 = 200;
/// Status slots: 200..=599.
pub const STATUS_SLOTS: usize = 400;

/// What one shaped request was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The response's status (of the response a reset replaced, for a reset).
    pub status: u16,
    /// The injected delay, in microseconds.
    pub delay_us: u64,
    /// Body bytes (0 for a HEAD request or a status without content).
    pub size: u64,
    /// Sent with `Connection: close`, which then closes the connection.
    pub close: bool,
    /// Answered with a TCP reset instead of a response.
    pub reset: bool,
}

/// One worker's counters for one route.
#[derive(Debug)]
#[repr(align(128))]
pub struct Slot {
    /// Responses sent, by `status - FIRST_STATUS`.
    pub statuses: [AtomicU64; STATUS_SLOTS],
    /// Delays applied (responses and resets), per bucket (not cumulative); the last is `+Inf`.
    pub delay_buckets: [AtomicU64; DELAY_BUCKETS_US.len() + 1],
    /// Sum of the delays applied, in microseconds.
    pub delay_sum_us: AtomicU64,
    /// Body bytes of the responses sent.
    pub body_bytes: AtomicU64,
    /// Responses sent with `Connection: close`.
    pub closes: AtomicU64,
    /// Requests answered with a reset.
    pub resets: AtomicU64,
}

impl Default for Slot {
    fn default() -> Slot {
        Slot {
            statuses: std::array::from_fn(|_| AtomicU64::new(0)),
            delay_buckets: Default::default(),
            delay_sum_us: AtomicU64::new(0),
            body_bytes: AtomicU64::new(0),
            closes: AtomicU64::new(0),
            resets: AtomicU64::new(0),
        }
    }
}

/// A route's counters: a slot per worker index.
#[derive(Debug)]
pub struct RouteCounters {
    /// The route's label: its path, or its prefix followed by `*`.
    pub label: String,
    slots: Box<[Slot]>,
}

impl RouteCounters {
    fn new(label: String, slots: usize) -> RouteCounters {
        // A power of two, so that a worker finds its slot with a mask, not a division.
        let slots = slots.max(1).next_power_of_two();
        RouteCounters {
            label,
            slots: (0..slots).map(|_| Slot::default()).collect(),
        }
    }

    /// Count what worker `worker` applied to one request.
    #[inline]
    pub fn count(&self, worker: usize, applied: &Applied) {
        let slot = &self.slots[worker & (self.slots.len() - 1)];
        let bucket = DELAY_BUCKETS_US
            .iter()
            .position(|&b| applied.delay_us <= b)
            .unwrap_or(DELAY_BUCKETS_US.len());
        slot.delay_buckets[bucket].fetch_add(1, Relaxed);
        slot.delay_sum_us.fetch_add(applied.delay_us, Relaxed);
        if applied.reset {
            slot.resets.fetch_add(1, Relaxed);
            return;
        }
        let status = usize::from(applied.status.saturating_sub(FIRST_STATUS));
        slot.statuses[status.min(STATUS_SLOTS - 1)].fetch_add(1, Relaxed);
        slot.body_bytes.fetch_add(applied.size, Relaxed);
        if applied.close {
            slot.closes.fetch_add(1, Relaxed);
        }
    }

    /// Count a response sent at once (no delay): [`count`](Self::count) for what it is.
    #[inline]
    pub fn count_at_once(&self, worker: usize, status: u16, size: u64, close: bool) {
        let slot = &self.slots[worker & (self.slots.len() - 1)];
        // No delay: the first bucket, `le="0"`.
        slot.delay_buckets[0].fetch_add(1, Relaxed);
        if let Some(n) = slot
            .statuses
            .get(usize::from(status.wrapping_sub(FIRST_STATUS)))
        {
            n.fetch_add(1, Relaxed);
        }
        if size > 0 {
            slot.body_bytes.fetch_add(size, Relaxed);
        }
        if close {
            slot.closes.fetch_add(1, Relaxed);
        }
    }

    /// The sum over every slot of one counter.
    pub fn sum(&self, counter: impl Fn(&Slot) -> &AtomicU64) -> u64 {
        self.slots
            .iter()
            .fold(0u64, |a, s| a.wrapping_add(counter(s).load(Relaxed)))
    }
}

/// Every shape route's counters the server has had, by label, in the order first seen.
#[derive(Debug, Default)]
pub struct Board {
    routes: Mutex<Vec<Arc<RouteCounters>>>,
}

impl Board {
    /// The counters of the route labelled `label`, made on first use with a slot per worker
    /// index up to `workers`.
    pub fn route(&self, label: &str, workers: usize) -> Arc<RouteCounters> {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = routes.iter().find(|r| r.label == label) {
            return found.clone();
        }
        let made = Arc::new(RouteCounters::new(label.to_owned(), workers));
        routes.push(made.clone());
        made
    }

    /// Every route's counters, in the order first seen.
    pub fn routes(&self) -> Vec<Arc<RouteCounters>> {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_buckets_and_survive_a_second_lookup() {
        let board = Board::default();
        let route = board.route("/shape", 2);
        let applied = Applied {
            status: 503,
            delay_us: 5_000,
            size: 10,
            close: true,
            reset: false,
        };
        route.count(0, &applied);
        route.count(
            3,
            &Applied {
                delay_us: 5_001,
                ..applied
            },
        );
        route.count(
            1,
            &Applied {
                reset: true,
                ..applied
            },
        );
        let again = board.route("/shape", 8);
        assert!(Arc::ptr_eq(&route, &again));
        assert_eq!(again.sum(|s| &s.statuses[303]), 2);
        assert_eq!(again.sum(|s| &s.delay_buckets[4]), 2, "5 ms is <= 5 ms");
        assert_eq!(
            again.sum(|s| &s.delay_buckets[5]),
            1,
            "5.001 ms is over 5 ms"
        );
        assert_eq!(again.sum(|s| &s.body_bytes), 20);
        assert_eq!(again.sum(|s| &s.closes), 2);
        assert_eq!(again.sum(|s| &s.resets), 1);
        assert_eq!(again.sum(|s| &s.delay_sum_us), 15_001);
        assert_eq!(board.routes().len(), 1);
        // At once: the same counters as `count` with no delay.
        route.count_at_once(5, 200, 7, true);
        assert_eq!(again.sum(|s| &s.statuses[0]), 1);
        assert_eq!(again.sum(|s| &s.delay_buckets[0]), 1);
        assert_eq!(again.sum(|s| &s.body_bytes), 27);
        assert_eq!(again.sum(|s| &s.closes), 3);
    }
}
