//! The `Date` header value, cached per worker and re-rendered at most once a second.
//!
//! Each worker owns one [`DateCache`] (no sharing, no `unsafe`), the way hyper caches it per
//! thread: rendering an IMF-fixdate costs far more than copying 29 bytes.

use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

/// The current date, rendered.
#[derive(Debug, Clone)]
pub struct DateCache {
    /// The whole second `rendered` stands for.
    second: u64,
    rendered: [u8; DATE_LEN],
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
        };
        cache.update(SystemTime::now());
        cache
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
    use std::time::Duration;

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
}
