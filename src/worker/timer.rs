//! A per-worker timing wheel for connection timeouts. A connection decides how long it waits
//! (its `timeouts`); the wheel keeps, by the connection's slab key, when that is and its entry.
//!
//! Each connection has one deadline (in ticks) and sits in at most one slot of the wheel.
//! Moving a deadline later costs nothing: the connection is looked at when its old slot comes
//! due, and put back into the slot of its new deadline if that has not passed. So an event
//! costs O(1), and each connection is looked at about once per timeout (or per wheel turn for
//! timeouts longer than the wheel's span), never with a syscall.

use std::time::{Duration, Instant};

/// Length of one tick: the resolution of every timeout.
pub const TICK: Duration = Duration::from_millis(TICK_MILLIS);
/// [`TICK`] in milliseconds.
pub const TICK_MILLIS: u64 = 10;
/// Number of slots: one turn of the wheel spans `SLOTS * TICK` = 5.12 s.
const SLOTS: usize = 512;

/// Whole milliseconds in `d`, in u64 arithmetic (`Duration::as_millis` is u128, and this runs on
/// every connection event).
fn millis(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

/// An entry: the connection's slab key, its timer's generation, and the tick it was scheduled
/// for (a connection whose deadline moved earlier has a newer entry; the old one is recognised
/// as stale by its tick).
pub type Entry = (usize, u32, u64);

/// A connection's timer: its deadline, and the one entry of the wheel that stands for it.
#[derive(Debug, Clone, Default)]
struct Timer {
    /// Tells this connection apart from an earlier or later one with the same slab key: it
    /// changes when the key's connection closes ([`Wheel::cancel`]).
    gen: u32,
    /// The tick at which the timer fires.
    deadline: u64,
    /// The tick of the live entry in the wheel, if there is one.
    scheduled: Option<u64>,
}

/// The wheel.
#[derive(Debug)]
pub struct Wheel {
    /// When tick 0 started.
    epoch: Instant,
    slots: Vec<Vec<Entry>>,
    /// Each connection's timer, by slab key.
    timers: Vec<Timer>,
    /// The first tick not yet expired.
    next: u64,
    /// One bit per slot, set while the slot holds entries: the next slot due is found in a
    /// few word operations (the event loop asks once per turn), not by walking up to
    /// [`SLOTS`] empty slots; and an empty wheel lets the loop sleep without a timeout.
    occupied: [u64; SLOTS / 64],
    /// The tick last computed, and the instants it starts and ends at. A loop turn usually
    /// falls in the same 10 ms tick as the one before: two comparisons of instants then find
    /// it, where subtracting them (std's `sub_timespec`) costs more than the rest of an arm.
    last: (u64, Instant, Instant),
}

impl Wheel {
    /// An empty wheel starting now.
    pub fn new(now: Instant) -> Wheel {
        Wheel {
            epoch: now,
            slots: vec![Vec::new(); SLOTS],
            timers: Vec::new(),
            next: 0,
            occupied: [0; SLOTS / 64],
            last: (0, now, now + TICK),
        }
    }

    /// Set the timer of the connection at slab `key` to fire `timeout` after `now`. A later
    /// deadline costs nothing: it is found when the current entry comes due. An earlier one
    /// needs an entry of its own (the old one then goes stale).
    // The HTTPS side calls it too; kept inline in the plain path, where it was the only caller.
    #[inline(always)]
    pub fn arm(&mut self, key: usize, now: Instant, timeout: Duration) {
        let deadline = self.deadline(now, timeout);
        if key >= self.timers.len() {
            self.grow(key);
        }
        let timer = &mut self.timers[key];
        timer.deadline = deadline;
        if timer.scheduled.is_none_or(|t| t > deadline) {
            timer.scheduled = Some(deadline);
            let gen = timer.gen;
            self.schedule((key, gen, deadline), deadline);
        }
    }

    /// Room for the timer of `key` (a slab key past any seen before).
    #[cold]
    fn grow(&mut self, key: usize) {
        self.timers.resize(key + 1, Timer::default());
    }

    /// The connection at `key` closed: its entries go stale, and the next connection with
    /// that key starts with no timer.
    pub fn cancel(&mut self, key: usize) {
        if let Some(timer) = self.timers.get_mut(key) {
            timer.gen = timer.gen.wrapping_add(1);
            timer.scheduled = None;
        }
    }

    /// Has the timer of `entry`'s connection fired (the entry taken from the wheel by
    /// [`expire`](Self::expire), in the tick `now_tick`)? A stale entry is ignored, and one
    /// whose deadline moved later is put back in the wheel.
    pub fn fired(&mut self, entry: Entry, now_tick: u64) -> bool {
        let (key, gen, tick) = entry;
        let Some(timer) = self.timers.get_mut(key) else {
            return false;
        };
        if timer.gen != gen || timer.scheduled != Some(tick) {
            return false;
        }
        if timer.deadline > now_tick {
            let deadline = timer.deadline;
            timer.scheduled = Some(deadline);
            self.schedule((key, gen, deadline), deadline);
            return false;
        }
        timer.scheduled = None;
        true
    }

    /// The tick `now` falls in.
    // The HTTPS side calls it too; kept inline in the plain path, where it was the only caller.
    #[inline(always)]
    pub fn tick_of(&mut self, now: Instant) -> u64 {
        let (tick, start, end) = self.last;
        if start <= now && now < end {
            return tick;
        }
        self.compute_tick(now)
    }

    /// [`tick_of`](Self::tick_of) for an instant outside the last tick.
    #[cold]
    fn compute_tick(&mut self, now: Instant) -> u64 {
        let tick = millis(now.saturating_duration_since(self.epoch)) / TICK_MILLIS;
        let start = self.epoch + Duration::from_millis(tick.saturating_mul(TICK_MILLIS));
        self.last = (tick, start, start + TICK);
        tick
    }

    /// The tick at which `timeout` from `now` has passed (rounded up, so never early).
    fn deadline(&mut self, now: Instant, timeout: Duration) -> u64 {
        self.tick_of(now) + millis(timeout).div_ceil(TICK_MILLIS) + 1
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
    // The HTTPS side calls it too; kept inline in the plain path, where it was the only caller.
    #[inline(always)]
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
    // The HTTPS side calls it too; kept inline in the plain path, where it was the only caller.
    #[inline(always)]
    pub fn next_timeout(&mut self, now: Instant) -> Option<Duration> {
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
    fn a_timer_fires_once_at_its_latest_deadline_and_ignores_stale_entries() {
        let t0 = Instant::now();
        let mut wheel = Wheel::new(t0);
        wheel.arm(9, t0, Duration::from_millis(50));
        // Pushed later: no new entry; the old one is rescheduled when it comes due.
        wheel.arm(9, t0 + Duration::from_millis(20), Duration::from_millis(50));
        let mut due = Vec::new();
        wheel.expire(t0 + Duration::from_millis(65), &mut due);
        assert_eq!(due.len(), 1);
        let now_tick = wheel.tick_of(t0 + Duration::from_millis(65));
        assert!(!wheel.fired(due[0], now_tick));
        due.clear();
        wheel.expire(t0 + Duration::from_millis(90), &mut due);
        let now_tick = wheel.tick_of(t0 + Duration::from_millis(90));
        assert_eq!(due.len(), 1);
        assert!(wheel.fired(due[0], now_tick));
        // Fired once: the same entry again is stale.
        assert!(!wheel.fired(due[0], now_tick));
    }

    #[test]
    fn a_closed_connections_entry_does_not_fire_for_the_next_one_with_its_key() {
        let t0 = Instant::now();
        let mut wheel = Wheel::new(t0);
        wheel.arm(4, t0, Duration::from_millis(20));
        wheel.cancel(4);
        // The next connection with key 4 waits longer.
        wheel.arm(4, t0, Duration::from_millis(200));
        let mut due = Vec::new();
        let at = t0 + Duration::from_millis(50);
        wheel.expire(at, &mut due);
        assert_eq!(due.len(), 1);
        let tick = wheel.tick_of(at);
        assert!(!wheel.fired(due[0], tick));
        due.clear();
        let at = t0 + Duration::from_millis(250);
        wheel.expire(at, &mut due);
        assert_eq!(due.len(), 1);
        let tick = wheel.tick_of(at);
        assert!(wheel.fired(due[0], tick));
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
    fn the_tick_of_an_instant_is_the_same_found_fast_or_computed() {
        let t0 = Instant::now();
        let mut wheel = Wheel::new(t0);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut micros = 0u64;
        for i in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Mostly forward by a few hundred microseconds, sometimes back, sometimes far.
            micros = match i % 50 {
                0 => micros.saturating_sub(seed % 30_000),
                1 => micros + seed % 10_000_000,
                _ => micros + seed % 700,
            };
            let now = t0 + Duration::from_micros(micros);
            assert_eq!(
                wheel.tick_of(now),
                micros / 1000 / TICK_MILLIS,
                "at {micros} us"
            );
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
