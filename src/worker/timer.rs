//! A per-worker timing wheel for connection timeouts.
//!
//! Each connection keeps its own deadline (in ticks) and sits in at most one slot of the wheel.
//! Moving a deadline later costs nothing: the connection is looked at when its old slot comes
//! due, and put back into the slot of its new deadline if that has not passed. So an event
//! costs O(1), and each connection is looked at about once per timeout (or per wheel turn for
//! timeouts longer than the wheel's span), never with a syscall.

use std::time::{Duration, Instant};

/// Length of one tick: the resolution of every timeout.
pub const TICK: Duration = Duration::from_millis(TICK_MILLIS);
/// [`TICK`] in milliseconds.
const TICK_MILLIS: u64 = 10;
/// Number of slots: one turn of the wheel spans `SLOTS * TICK` = 5.12 s.
const SLOTS: usize = 512;

/// Whole milliseconds in `d`, in u64 arithmetic (`Duration::as_millis` is u128, and this runs on
/// every connection event).
fn millis(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

/// An entry: the connection's slab key, the generation it had when scheduled, and the tick it
/// was scheduled for (a connection whose deadline moved earlier has a newer entry; the old one
/// is recognised as stale by its tick).
pub type Entry = (usize, u32, u64);

/// The wheel.
#[derive(Debug)]
pub struct Wheel {
    /// When tick 0 started.
    epoch: Instant,
    slots: Vec<Vec<Entry>>,
    /// The first tick not yet expired.
    next: u64,
    /// Entries in all slots, so an empty wheel lets the loop sleep without a timeout.
    len: usize,
}

impl Wheel {
    /// An empty wheel starting now.
    pub fn new(now: Instant) -> Wheel {
        Wheel {
            epoch: now,
            slots: vec![Vec::new(); SLOTS],
            next: 0,
            len: 0,
        }
    }

    /// The tick `now` falls in.
    pub fn tick_of(&self, now: Instant) -> u64 {
        millis(now.saturating_duration_since(self.epoch)) / TICK_MILLIS
    }

    /// The tick at which `timeout` from `now` has passed (rounded up, so never early).
    pub fn deadline(&self, now: Instant, timeout: Duration) -> u64 {
        self.tick_of(now) + millis(timeout).div_ceil(TICK_MILLIS) + 1
    }

    /// Put an entry in the slot of `deadline`.
    pub fn schedule(&mut self, entry: Entry, deadline: u64) {
        let deadline = deadline.max(self.next);
        self.slots[(deadline % SLOTS as u64) as usize].push(entry);
        self.len += 1;
    }

    /// Move every entry whose slot has come due by `now` into `due`. The caller checks each
    /// one's real deadline and reschedules those that moved.
    pub fn expire(&mut self, now: Instant, due: &mut Vec<Entry>) {
        let current = self.tick_of(now);
        // After a long stall, one full turn visits every slot.
        let last = current.min(self.next + SLOTS as u64 - 1);
        while self.next <= last {
            let slot = &mut self.slots[(self.next % SLOTS as u64) as usize];
            self.len -= slot.len();
            due.append(slot);
            self.next += 1;
        }
        self.next = self.next.max(current + 1);
    }

    /// How long until the next non-empty slot is due, or `None` if the wheel is empty.
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        if self.len == 0 {
            return None;
        }
        let current = self.tick_of(now);
        let ahead = (0..SLOTS as u64)
            .map(|i| self.next + i)
            .find(|t| !self.slots[(t % SLOTS as u64) as usize].is_empty())
            .unwrap_or(self.next);
        let wait = ahead.saturating_sub(current);
        Some(TICK * wait as u32 + Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_due_at_their_tick_not_before() {
        let t0 = Instant::now();
        let mut wheel = Wheel::new(t0);
        let d = wheel.deadline(t0, Duration::from_millis(50));
        wheel.schedule((7, 1, d), d);
        let mut due = Vec::new();
        wheel.expire(t0 + Duration::from_millis(40), &mut due);
        assert!(due.is_empty());
        assert!(
            wheel.next_timeout(t0 + Duration::from_millis(40)).unwrap()
                <= Duration::from_millis(40)
        );
        wheel.expire(t0 + Duration::from_millis(80), &mut due);
        assert_eq!(due, vec![(7, 1, d)]);
        assert_eq!(wheel.next_timeout(t0), None);
    }

    #[test]
    fn far_deadlines_come_back_each_turn() {
        let t0 = Instant::now();
        let mut wheel = Wheel::new(t0);
        let d = wheel.deadline(t0, Duration::from_secs(60));
        wheel.schedule((1, 0, d), d);
        let mut due = Vec::new();
        wheel.expire(t0 + Duration::from_secs(6), &mut due);
        // Seen once within the first turn, for the caller to reschedule.
        assert_eq!(due, vec![(1, 0, d)]);
    }
}
