//! Latency distributions, and how one response delay is drawn from them.
//!
//! Real services are not "50 ms": most answers are quick, a few are much
//! slower, and those few decide a fan-out's p99 (three upstreams with a 1 %
//! slow tail each make about 3 % of fan-outs slow). The shapes here cover the
//! cases the labs need: a constant, a flat spread, a long right tail
//! (log-normal), and rare stalls on top of any of them.

use std::time::Duration;

use rand::Rng;

/// How long the fake waits before it answers a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Latency {
    /// Always exactly this long.
    Fixed(Duration),
    /// Anywhere between `min` and `max` (inclusive), every value equally
    /// likely. If `min > max` the two are swapped.
    Uniform {
        /// The shortest delay.
        min: Duration,
        /// The longest delay.
        max: Duration,
    },
    /// Log-normal: half the delays are below `median`, and the tail to the
    /// right grows with `sigma` (the standard deviation of the delay's
    /// logarithm). `sigma` 0.5 puts p99 at about 3.2 × the median; 1.0 at
    /// about 10 ×.
    LogNormal {
        /// The 50th percentile.
        median: Duration,
        /// The spread of `ln(delay)`; 0 makes every delay the median.
        sigma: f64,
    },
    /// `base` latency, except that with `probability` a response stalls for
    /// `stall` instead: the rare garbage-collection pause or lost packet that
    /// hedged requests are meant to hide.
    WithStalls {
        /// The latency of the requests that do not stall.
        base: Box<Latency>,
        /// The share of requests that stall, from 0.0 to 1.0.
        probability: f64,
        /// How long a stalled request waits.
        stall: Duration,
    },
}

impl Latency {
    /// Draws one delay.
    ///
    /// Pass a fast RNG (`rand::rng()`) when serving, and a seeded one in tests
    /// so the draws are repeatable. Never panics: a `probability` outside
    /// 0..=1 acts as "never" or "always", and a log-normal draw too large for a
    /// [`Duration`] is capped at [`Duration::MAX`].
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        match self {
            Latency::Fixed(delay) => *delay,
            Latency::Uniform { min, max } => {
                let (low, high) = if min <= max { (min, max) } else { (max, min) };
                rng.random_range(*low..=*high)
            }
            Latency::LogNormal { median, sigma } => {
                let factor = (sigma * standard_normal(rng)).exp();
                Duration::try_from_secs_f64(median.as_secs_f64() * factor).unwrap_or(Duration::MAX)
            }
            Latency::WithStalls {
                base,
                probability,
                stall,
            } => {
                // `random::<f64>()` is in [0, 1): a probability of 0 never
                // stalls and 1 always does. (`random_bool` would panic outside
                // 0..=1.)
                if rng.random::<f64>() < *probability {
                    *stall
                } else {
                    base.sample(rng)
                }
            }
        }
    }
}

/// One draw from the standard normal distribution (mean 0, deviation 1), by
/// the Box–Muller transform: two independent uniforms in, one normal out.
///
/// Written out rather than pulling in `rand_distr` for a single distribution.
fn standard_normal(rng: &mut impl Rng) -> f64 {
    // `1.0 - random()` is in (0, 1]: the logarithm below must never see 0.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn sorted_samples(latency: &Latency, count: usize) -> Vec<Duration> {
        let mut rng = StdRng::seed_from_u64(7);
        let mut samples: Vec<Duration> = (0..count).map(|_| latency.sample(&mut rng)).collect();
        samples.sort();
        samples
    }

    #[test]
    fn fixed_latency_is_always_the_same() {
        let samples = sorted_samples(&Latency::Fixed(ms(50)), 100);

        assert!(samples.iter().all(|&delay| delay == ms(50)));
    }

    #[test]
    fn uniform_latency_stays_within_its_bounds_and_spreads_across_them() {
        let latency = Latency::Uniform {
            min: ms(20),
            max: ms(80),
        };

        let samples = sorted_samples(&latency, 10_000);

        assert!(samples[0] >= ms(20), "smallest sample {:?}", samples[0]);
        assert!(
            samples[9_999] <= ms(80),
            "largest sample {:?}",
            samples[9_999]
        );
        // Spread: the extremes come close to both bounds.
        assert!(samples[0] < ms(25) && samples[9_999] > ms(75));
    }

    #[test]
    fn uniform_latency_with_swapped_bounds_does_not_panic() {
        let latency = Latency::Uniform {
            min: ms(80),
            max: ms(20),
        };

        let samples = sorted_samples(&latency, 1_000);

        assert!(samples[0] >= ms(20) && samples[999] <= ms(80));
    }

    #[test]
    fn lognormal_latency_has_its_median_in_the_middle_and_a_long_right_tail() {
        let latency = Latency::LogNormal {
            median: ms(20),
            sigma: 0.5,
        };

        let samples = sorted_samples(&latency, 20_000);
        let median = samples[10_000];
        let p99 = samples[19_800];

        // Expected: median 20 ms, p99 = 20 ms * e^(2.326 * 0.5) = about 64 ms.
        // The bounds are wide: this checks the shape, not the fourth digit.
        assert!(median > ms(18) && median < ms(22), "median {median:?}");
        assert!(p99 > ms(50) && p99 < ms(80), "p99 {p99:?}");
    }

    #[test]
    fn stalls_appear_at_about_their_probability() {
        let latency = Latency::WithStalls {
            base: Box::new(Latency::Fixed(ms(20))),
            probability: 0.02,
            stall: Duration::from_secs(1),
        };

        let samples = sorted_samples(&latency, 20_000);
        let stalls = samples
            .iter()
            .filter(|&&delay| delay == Duration::from_secs(1))
            .count();

        // Expected 400; the standard deviation is about 20, so 300..500 is
        // five deviations either way.
        assert!((300..500).contains(&stalls), "{stalls} stalls in 20000");
    }

    #[test]
    fn a_stall_probability_of_zero_never_stalls() {
        let latency = Latency::WithStalls {
            base: Box::new(Latency::Fixed(ms(20))),
            probability: 0.0,
            stall: Duration::from_secs(1),
        };

        let samples = sorted_samples(&latency, 10_000);

        assert_eq!(samples[9_999], ms(20));
    }
}
