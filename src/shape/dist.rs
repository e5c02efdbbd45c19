//! How a value is chosen per request: fixed, from fortio's weighted list, uniform, or
//! log-normal fitted to two percentiles. Values are integers: microseconds, bytes, statuses.

use smallvec::SmallVec;

/// The standard normal's 99th percentile: a log-normal's p99 is `exp(mu + Z99 * sigma)`.
pub const Z99: f64 = 2.326_347_874_040_840_8;

/// How a value is chosen per request.
#[derive(Debug, Clone, PartialEq)]
pub enum Dist {
    /// Always this value.
    Fixed(u64),
    /// fortio's weighted list: (value, percent) pairs; a draw past the sum of the percents
    /// picks none (the caller's default).
    Weighted(SmallVec<[(u64, f64); 4]>),
    /// Uniform over `lo..=hi`.
    Uniform(u64, u64),
    /// Log-normal with this median and 99th percentile (`0 < p50 <= p99`).
    LogNormal {
        /// The median.
        p50: u64,
        /// The 99th percentile.
        p99: u64,
    },
}

impl Dist {
    /// Draw a value; `None` is the weighted list's remainder. A log-normal draw is rounded to
    /// the nearest integer and clamped to `cap`. A fixed value takes no randomness.
    #[inline(always)]
    pub fn sample(&self, rng: &mut fastrand::Rng, cap: u64) -> Option<u64> {
        match self {
            Dist::Fixed(v) => Some(*v),
            Dist::Weighted(entries) => {
                let roll = rng.f64() * 100.0;
                let mut sum = 0.0;
                for &(value, pct) in entries {
                    sum += pct;
                    if roll < sum {
                        return Some(value);
                    }
                }
                None
            }
            Dist::Uniform(lo, hi) => Some(rng.u64(*lo..=*hi)),
            Dist::LogNormal { p50, p99 } => {
                let mu = (*p50 as f64).ln();
                let sigma = ((*p99 as f64).ln() - mu) / Z99;
                let value = (mu + sigma * normal(rng)).exp().round();
                Some(if value >= cap as f64 {
                    cap
                } else {
                    value as u64
                })
            }
        }
    }

    /// The largest value it can give (a log-normal's p99: its tail is clamped to the cap).
    pub fn max(&self) -> u64 {
        match self {
            Dist::Fixed(v) | Dist::Uniform(_, v) | Dist::LogNormal { p99: v, .. } => *v,
            Dist::Weighted(entries) => entries.iter().map(|e| e.0).max().unwrap_or(0),
        }
    }
}

/// A standard normal deviate (Box-Muller, from two uniform draws).
fn normal(rng: &mut fastrand::Rng) -> f64 {
    // 1 - f64() is in (0, 1]: never ln(0).
    let u = 1.0 - rng.f64();
    let v = rng.f64();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use smallvec::smallvec;

    fn draws(dist: &Dist, n: usize, seed: u64) -> Vec<Option<u64>> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n).map(|_| dist.sample(&mut rng, u64::MAX)).collect()
    }

    #[test]
    fn weighted_percentages_hold_within_a_point_over_100000_draws() {
        let dist = Dist::Weighted(smallvec![(503, 20.0), (429, 5.0)]);
        let got = draws(&dist, 100_000, 42);
        let pct = |v: Option<u64>| got.iter().filter(|&&d| d == v).count() as f64 / 1000.0;
        assert!((pct(Some(503)) - 20.0).abs() < 1.0, "{}", pct(Some(503)));
        assert!((pct(Some(429)) - 5.0).abs() < 1.0, "{}", pct(Some(429)));
        assert!((pct(None) - 75.0).abs() < 1.0, "{}", pct(None));
    }

    #[test]
    fn uniform_stays_in_range_with_the_right_mean() {
        let got = draws(&Dist::Uniform(1000, 3000), 100_000, 7);
        assert!(got.iter().all(|d| (1000..=3000).contains(&d.unwrap())));
        let mean = got.iter().map(|d| d.unwrap() as f64).sum::<f64>() / got.len() as f64;
        assert!((mean - 2000.0).abs() < 20.0, "{mean}");
    }

    #[test]
    fn log_normal_has_the_asked_median_and_99th_percentile_within_5_percent() {
        let dist = Dist::LogNormal {
            p50: 5_000,
            p99: 80_000,
        };
        let mut got: Vec<u64> = draws(&dist, 200_000, 3).into_iter().flatten().collect();
        got.sort_unstable();
        let at = |q: f64| got[(q * (got.len() - 1) as f64) as usize] as f64;
        assert!((at(0.5) / 5_000.0 - 1.0).abs() < 0.05, "p50 {}", at(0.5));
        assert!((at(0.99) / 80_000.0 - 1.0).abs() < 0.05, "p99 {}", at(0.99));
    }

    #[test]
    fn the_same_seed_gives_the_same_draws_and_the_cap_holds() {
        let dist = Dist::LogNormal { p50: 10, p99: 1000 };
        assert_eq!(draws(&dist, 100, 9), draws(&dist, 100, 9));
        assert_ne!(draws(&dist, 100, 9), draws(&dist, 100, 10));
        let mut rng = fastrand::Rng::with_seed(1);
        assert!((0..10_000).all(|_| dist.sample(&mut rng, 500).unwrap() <= 500));
    }
}
