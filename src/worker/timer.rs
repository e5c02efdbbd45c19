//! A per-worker timing wheel for connection timeouts, and each connection's [`Slot`] in it.
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

/// An entry: the connection's slab key, its slot's generation, and the tick it was scheduled
/// for (a connection whose deadline moved earlier has a newer entry; the old one is recognised
/// as stale by its tick).
pub type Entry = (usize, u32, u64);

/// A connection's timer: its deadline, and the one entry of the wheel that stands for it.
/// Only the wheel changes it ([`Wheel::arm`], [`Wheel::fired`]).
#[derive(Debug)]
pub struct Slot {
    /// Tells this connection apart from a later one that reuses its slab key.
    gen: u32,
    /// The tick at which the timer fires.
    deadline: u64,
    /// The tick of the live entry in the wheel, if there is one.
    scheduled: Option<u64>,
}

impl Slot {
    /// A timer not armed yet, for the connection of generation `gen`.
    pub fn new(gen: u32) -> Slot {
        Slot {
            gen,
            deadline: 0,
            scheduled: None,
        }
    }
}

/// The wheel.
#[derive(Debug)]
pub struct Wheel {
    /// When tick 0 started.
    epoch: Instant,
    slots: Vec<Vec<Entry>>,
    /// The first tick not yet expired.
    next: u64,
    /// One bit per slot, set while the slot holds entries: the next slot due is found in a
    /// few word operations (the event loop asks once per turn), not by walking up to
    /// [`SLOTS`] empty slots; and an empty wheel lets the loop sleep without a timeout.
    occupied: [u64; SLOTS / 64],
    /// The last `now` a deadline was computed from, and its tick. The event loop arms every
    /// timer of a turn with the turn's start, and subtracting two `Instant`s is a good part
    /// of an arm.
    last: (Instant, u64),
}

impl Wheel {
    /// An empty wheel starting now.
    pub fn new(now: Instant) -> Wheel {
        Wheel {
            epoch: now,
            slots: vec![Vec::new(); SLOTS],
            next: 0,
            occupied: [0; SLOTS / 64],
            last: (now, 0),
        }
    }

    /// Set `slot` (of the connection at slab `key`) to fire `timeout` after `now`. A later
    /// deadline costs nothing: it is found when the current entry comes due. An earlier one
    /// needs an entry of its own (the old one then goes stale).
    pub fn arm(&mut self, slot: &mut Slot, key: usize, now: Instant, timeout: Duration) {
        slot.deadline = self.deadline(now, timeout);
        if slot.scheduled.is_none_or(|t| t > slot.deadline) {
            slot.scheduled = Some(slot.deadline);
            self.schedule((key, slot.gen, slot.deadline), slot.deadline);
        }
    }

    /// Has `slot` fired, by `entry` (taken from the wheel by [`expire`](Self::expire), in the
    /// tick `now_tick`)? A stale entry is ignored, and one whose deadline moved later is put
    /// back in the wheel.
    pub fn fired(&mut self, slot: &mut Slot, entry: Entry, now_tick: u64) -> bool {
        let (key, gen, tick) = entry;
        if slot.gen != gen || slot.scheduled != Some(tick) {
            return false;
        }
        if slot.deadline > now_tick {
            slot.scheduled = Some(slot.deadline);
            self.schedule((key, gen, slot.deadline), slot.deadline);
            return false;
        }
        slot.scheduled = None;
        true
    }

    /// The tick `now` falls in.
    pub fn tick_of(&self, now: Instant) -> u64 {
        millis(now.saturating_duration_since(self.epoch)) / TICK_MILLIS
    }

    /// The tick at which `timeout` from `now` has passed (rounded up, so never early).
    fn deadline(&mut self, now: Instant, timeout: Duration) -> u64 {
        if self.last.0 != now {
            self.last = (now, self.tick_of(now));
        }
        self.last.1 + millis(timeout).div_ceil(TICK_MILLIS) + 1
    }

    /// Put an entry in the slot of `deadline`.
    fn schedule(&mut self, entry: Entry, deadline: u64) {
        let deadline = deadline.max(self.next);
        let i = (deadline % SLOTS as u64) as usize;
        self.slots[i].push(entry);
        self.occupied[i / 64] |= 1 << (i % 64);
    }

    /// Move every entry whose slot has come due by `now` into `due`. The caller checks each
    /// one's real deadline and reschedules those that moved.
    pub fn expire(&mut self, now: Instant, due: &mut Vec<Entry>) {
        let current = self.tick_of(now);
        // After a long stall, one full turn visits every slot.
        let last = current.min(self.next + SLOTS as u64 - 1);
        while self.next <= last {
            let i = (self.next % SLOTS as u64) as usize;
            due.append(&mut self.slots[i]);
            self.occupied[i / 64] &= !(1 << (i % 64));
            self.next += 1;
        }
        self.next = self.next.max(current + 1);
    }

    /// How long until the next non-empty slot is due, or `None` if the wheel is empty.
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        let ahead = self.next + self.first_occupied()? as u64;
        let wait = ahead.saturating_sub(self.tick_of(now));
        Some(TICK * wait as u32 + Duration::from_millis(1))
    }

    /// How many slots after `next`'s the first one holding entries is, going round once.
    fn first_occupied(&self) -> Option<usize> {
        let words = self.occupied.len();
        let start = (self.next % SLOTS as u64) as usize;
        let (word, bit) = (start / 64, start % 64);
        let here = self.occupied[word] & (!0 << bit);
        if here != 0 {
            return Some(word * 64 + here.trailing_zeros() as usize - start);
        }
        // The other words, then `start`'s own again: only its bits below `bit` can be set.
        (1..=words).find_map(|i| {
            let w = (word + i) % words;
            let bits = self.occupied[w];
            (bits != 0).then(|| (w * 64 + bits.trailing_zeros() as usize + SLOTS - start) % SLOTS)
        })
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
    fn a_slot_fires_once_at_its_latest_deadline_and_ignores_stale_entries() {
        let t0 = Instant::now();
        let mut wheel = Wheel::new(t0);
        let mut slot = Slot::new(3);
        wheel.arm(&mut slot, 9, t0, Duration::from_millis(50));
        // Pushed later: no new entry; the old one is rescheduled when it comes due.
        wheel.arm(
            &mut slot,
            9,
            t0 + Duration::from_millis(20),
            Duration::from_millis(50),
        );
        let mut due = Vec::new();
        wheel.expire(t0 + Duration::from_millis(65), &mut due);
        assert_eq!(due.len(), 1);
        let now_tick = wheel.tick_of(t0 + Duration::from_millis(65));
        assert!(!wheel.fired(&mut slot, due[0], now_tick));
        due.clear();
        wheel.expire(t0 + Duration::from_millis(90), &mut due);
        let now_tick = wheel.tick_of(t0 + Duration::from_millis(90));
        assert_eq!(due.len(), 1);
        // Another connection in the same slab slot (another generation) is not fired by it.
        assert!(!wheel.fired(&mut Slot::new(4), due[0], now_tick));
        assert!(wheel.fired(&mut slot, due[0], now_tick));
        // Fired once: the same entry again is stale.
        assert!(!wheel.fired(&mut slot, due[0], now_tick));
    }

    #[test]
    fn a_deadline_runs_from_the_now_it_is_given_whatever_came_before() {
        let t0 = Instant::now();
        let mut wheel = Wheel::new(t0);
        for ms in [0, 0, 15, 15, 7, 1_000, 1_000, 3, 5_120, 0] {
            let now = t0 + Duration::from_millis(ms);
            for timeout in [Duration::from_millis(1), Duration::from_secs(10)] {
                let want = wheel.tick_of(now) + millis(timeout).div_ceil(TICK_MILLIS) + 1;
                assert_eq!(wheel.deadline(now, timeout), want, "{ms} ms, {timeout:?}");
            }
        }
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

    /// `first_occupied` against a walk over the slots, for sets of entries anywhere on the
    /// wheel (across its words and wrapping round) and the wheel at many positions.
    #[test]
    fn the_next_slot_due_is_the_first_occupied_one_going_round() {
        let t0 = Instant::now();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..2_000 {
            let mut wheel = Wheel::new(t0);
            wheel.next = rand(3 * SLOTS as u64);
            for _ in 0..rand(4) {
                let d = wheel.next + rand(SLOTS as u64);
                wheel.schedule((0, 0, d), d);
            }
            let walk = (0..SLOTS).find(|i| {
                !wheel.slots[((wheel.next + *i as u64) % SLOTS as u64) as usize].is_empty()
            });
            assert_eq!(wheel.first_occupied(), walk, "next {}", wheel.next);
            // Expiring everything empties it, bits included.
            let mut due = Vec::new();
            let end = t0 + TICK * (wheel.next + SLOTS as u64) as u32;
            wheel.expire(end, &mut due);
            assert_eq!(wheel.first_occupied(), None);
            assert_eq!(wheel.next_timeout(end), None);
        }
    }
}
