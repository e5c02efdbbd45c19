//! Logging that cannot flood. An error that repeats for as long as a condition lasts (out of
//! file descriptors: every accept fails) would otherwise write a line each time, and the log
//! becomes a second problem. [`Throttle`] lets one line through per interval and counts the
//! ones it held back, so the next line that goes out says how many it stands for.
//!
//! A throttle is plain state, owned by whoever logs (each worker has its own, like its date
//! cache): nothing crosses threads, so with N workers out of descriptors the log gets at most N
//! lines per interval.

use std::fmt;
use std::time::{Duration, Instant};

/// The default interval between two lines about the same error: often enough that an operator
/// watching the log sees the condition is still on, rarely enough that it cannot fill a disk.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// One line per interval for a repeated error, with a count of the ones not logged.
#[derive(Debug)]
pub struct Throttle {
    /// The shortest time between two lines.
    interval: Duration,
    /// When the last line went out; `None` before the first, which always goes out.
    last: Option<Instant>,
    /// Errors noted since the last line that did not get one.
    held: u64,
}

impl Default for Throttle {
    /// A throttle with the default [`INTERVAL`].
    fn default() -> Throttle {
        Throttle::new(INTERVAL)
    }
}

impl Throttle {
    /// At most one line per `interval`.
    pub const fn new(interval: Duration) -> Throttle {
        Throttle {
            interval,
            last: None,
            held: 0,
        }
    }

    /// The error happened again, at `now`. `Some`: log a line now, ending with the returned
    /// [`Held`] (which says how many errors since the last line were not logged); `None`: stay
    /// quiet, the error is counted for the next line. Held errors are reported only by a next
    /// line, so a burst that ends leaves its count untold; it was a repeat of a line logged.
    pub fn note(&mut self, now: Instant) -> Option<Held> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.interval => {
                self.held += 1;
                None
            }
            last => {
                let held = Held {
                    count: std::mem::take(&mut self.held),
                    over: last.map_or(Duration::ZERO, |l| now.saturating_duration_since(l)),
                };
                self.last = Some(now);
                Some(held)
            }
        }
    }
}

/// The errors a line stands for besides its own. Displays as nothing when there were none,
/// else as ` (37 more in the last 1.002s)`, to be put at the end of the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Errors not logged since the last line.
    pub count: u64,
    /// Time since the last line.
    pub over: Duration,
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 0 {
            return Ok(());
        }
        // Milliseconds are precision enough for a log line.
        let over = Duration::from_millis(self.over.as_millis().try_into().unwrap_or(u64::MAX));
        write!(f, " ({} more in the last {over:?})", self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_first_error_is_logged_and_repeats_within_the_interval_are_counted() {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(1000 * MS);
        let first = throttle.note(t0).expect("the first error is logged");
        assert_eq!(first.count, 0);
        assert_eq!(first.to_string(), "");
        // Every 100 ms for a second: all held.
        for i in 1..10 {
            assert_eq!(throttle.note(t0 + i * 100 * MS), None, "at {i}00 ms");
        }
        let next = throttle
            .note(t0 + 1002 * MS)
            .expect("a line after the interval");
        assert_eq!(next.count, 9);
        assert_eq!(next.over, 1002 * MS);
        assert_eq!(next.to_string(), " (9 more in the last 1.002s)");
    }

    #[test]
    fn the_interval_runs_from_the_last_line_and_the_count_restarts() {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(1000 * MS);
        throttle.note(t0).unwrap();
        assert_eq!(throttle.note(t0 + 500 * MS), None);
        assert_eq!(throttle.note(t0 + 1000 * MS).unwrap().count, 1);
        // The next line is due a whole interval after that one, not after the first.
        assert_eq!(throttle.note(t0 + 1500 * MS), None);
        assert_eq!(throttle.note(t0 + 1999 * MS), None);
        assert_eq!(throttle.note(t0 + 2000 * MS).unwrap().count, 2);
        // A lone error long after: logged at once, standing for nothing else.
        let late = throttle.note(t0 + 60_000 * MS).unwrap();
        assert_eq!((late.count, late.to_string()), (0, String::new()));
    }

    #[test]
    fn a_clock_that_goes_back_holds_instead_of_panicking() {
        let t0 = Instant::now() + 10_000 * MS;
        let mut throttle = Throttle::default();
        throttle.note(t0).unwrap();
        assert_eq!(throttle.note(t0 - 5000 * MS), None);
    }
}
