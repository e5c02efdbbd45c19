//! The `Date` header value, cached per worker and re-rendered at most once a second.
//!
//! Each worker owns one [`DateCache`] (no sharing, no `unsafe`), the way hyper caches it per
//! thread: rendering an IMF-fixdate costs far more than copying 29 bytes.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

/// The current date, rendered.
#[derive(Debug, Clone)]
pub struct DateCache {
    /// The whole second `rendered` stands for.
    second: u64,
    rendered: [u8; DATE_LEN],
    /// The monotonic time at which the wall clock reaches the next second (as of the last look).
    next_second: Option<Instant>,
}

impl Default for DateCache {
    fn default() -> Self {
        Self::new()
    }
}

impl DateCache {
    /// A cache holding the current time.
    pub fn new() -> DateCache {
        let mut cache = DateCache {
            second: u64::MAX,
            rendered: [b' '; DATE_LEN],
            next_second: None,
        };
        cache.update(SystemTime::now());
        cache
    }

    /// Called with the loop's monotonic time on every turn: reads the wall clock only once the
    /// second it last saw is over, so a busy loop pays one clock read per turn, not two.
    pub fn tick(&mut self, now: Instant) {
        if self.next_second.is_some_and(|next| now < next) {
            return;
        }
        let wall = SystemTime::now();
        self.update(wall);
        let into = wall.duration_since(UNIX_EPOCH).map_or(Duration::ZERO, |d| {
            Duration::from_nanos(u64::from(d.subsec_nanos()))
        });
        self.next_second = Some(now + (Duration::from_secs(1) - into));
    }

    /// Re-render if `now` is in a different second than the cached value.
    pub fn update(&mut self, now: SystemTime) {
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second {
            self.second = second;
            let text = httpdate::fmt_http_date(now);
            if text.len() == DATE_LEN {
                self.rendered.copy_from_slice(text.as_bytes());
            }
        }
    }

    /// The whole second (since the epoch) the rendered date stands for.
    pub fn second(&self) -> u64 {
        self.second
    }

    /// The rendered date.
    pub fn get(&self) -> &[u8; DATE_LEN] {
        &self.rendered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_imf_fixdate_and_changes_each_second() {
        let mut cache = DateCache::new();
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        cache.update(t);
        assert_eq!(cache.get(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        cache.update(t + Duration::from_millis(900));
        assert_eq!(cache.get(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        cache.update(t + Duration::from_secs(1));
        assert_eq!(cache.get(), b"Sun, 06 Nov 1994 08:49:38 GMT");
    }

    #[test]
    fn tick_reads_the_wall_clock_only_once_the_second_is_over() {
        let mut cache = DateCache::new();
        let t0 = Instant::now();
        cache.tick(t0);
        let next = cache.next_second.expect("set by tick");
        assert!(next > t0 && next <= t0 + Duration::from_secs(1));
        // A deliberately wrong date stays until the boundary: no clock read before it.
        cache.rendered = [b'x'; DATE_LEN];
        cache.tick(t0 + (next - t0) / 2);
        assert_eq!(cache.get(), &[b'x'; DATE_LEN]);
        assert_eq!(cache.next_second, Some(next));
        // At the boundary it looks again and schedules the next one.
        cache.second = 0;
        cache.tick(next);
        assert_ne!(cache.get(), &[b'x'; DATE_LEN]);
        assert!(cache.next_second.unwrap() > next);
    }
}
