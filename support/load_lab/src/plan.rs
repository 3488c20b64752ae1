//! What to run: the shape of the load ([`Load`]) and how long to run it ([`Plan`]).
//!
//! The two kinds of load answer different questions, and a lab usually wants both:
//!
//! - A **closed loop** asks "how fast can this server go with N clients?". Each client waits
//!   for an answer before it sends again, so a slow server slows the clients down with it.
//! - An **open loop** asks "what latency do users see at this arrival rate?". Requests arrive
//!   on a timetable whether or not the server keeps up, as real users do.

use std::fmt;
use std::time::Duration;

/// The shape of the load a [`Plan`] applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// `concurrency` workers, each sending its next request as soon as the previous answers.
    Closed {
        /// How many requests are in flight at once (the workers never wait between requests).
        concurrency: usize,
    },
    /// A fixed arrival rate; each request's latency is measured from its *intended* send time,
    /// so a stalled server cannot hide its tail (coordinated omission; Gil Tene, wrk2).
    Open {
        /// Requests per second, spread evenly: request `i` is due at `start + i / rate`.
        rate_per_sec: f64,
        /// A safety valve for the load generator: when this many requests are already in
        /// flight, a due request is not sent and is counted as the error kind
        /// [`DROPPED`](crate::measure::DROPPED) instead.
        max_outstanding: usize,
    },
}

impl Load {
    /// The number to put on a plot's x axis: the concurrency of a closed loop, the rate of an
    /// open loop.
    pub fn level(&self) -> f64 {
        match *self {
            // A usize this large would not fit in memory as tasks anyway, so the cast is exact
            // for every concurrency a lab can run.
            Load::Closed { concurrency } => concurrency as f64,
            Load::Open { rate_per_sec, .. } => rate_per_sec,
        }
    }
}

impl fmt::Display for Load {
    /// `c=500` for a closed loop, `500 req/s` for an open loop.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Load::Closed { concurrency } => write!(f, "c={concurrency}"),
            // `{}` on an f64 prints `500` for 500.0 and `2.5` for 2.5: no noise digits.
            Load::Open { rate_per_sec, .. } => write!(f, "{rate_per_sec} req/s"),
        }
    }
}

/// One run: a load, applied for a warm-up (results discarded) and then a measured window.
///
/// Warm-up matters more than it looks: the first requests open connections, grow pools and
/// fault in memory, and on a 2-core machine a cold connection pool costs more than the work.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The load to apply.
    pub load: Load,
    /// How long to run before measuring; nothing sent during the warm-up is counted.
    ///
    /// Give a closed loop at high concurrency at least 2 s: its workers all connect at once,
    /// and a listen backlog of 128 (tokio's default) drops some of 500 simultaneous connection
    /// attempts, which the kernel retries about a second later.
    pub warmup: Duration,
    /// The measured window: every request *sent* inside it is counted.
    pub measure: Duration,
}

impl Plan {
    /// Warm-up plus the measured window: the planned length of the run, for a progress bar.
    ///
    /// A run can last a little longer: after the window closes, the requests already sent are
    /// given up to [`DRAIN_LIMIT`](crate::driver::DRAIN_LIMIT) to answer.
    pub fn total(&self) -> Duration {
        self.warmup + self.measure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_load_displays_its_concurrency() {
        let load = Load::Closed { concurrency: 500 };

        assert_eq!(load.to_string(), "c=500");
    }

    #[test]
    fn an_open_load_displays_its_rate_without_noise_digits() {
        let whole = Load::Open {
            rate_per_sec: 500.0,
            max_outstanding: 10,
        };
        let fraction = Load::Open {
            rate_per_sec: 2.5,
            max_outstanding: 10,
        };

        assert_eq!(whole.to_string(), "500 req/s");
        assert_eq!(fraction.to_string(), "2.5 req/s");
    }

    #[test]
    fn the_level_of_a_load_is_its_concurrency_or_its_rate() {
        assert_eq!(Load::Closed { concurrency: 50 }.level(), 50.0);
        assert_eq!(
            Load::Open {
                rate_per_sec: 1200.0,
                max_outstanding: 1
            }
            .level(),
            1200.0
        );
    }

    #[test]
    fn a_plan_lasts_its_warm_up_plus_its_window() {
        let plan = Plan {
            load: Load::Closed { concurrency: 1 },
            warmup: Duration::from_secs(2),
            measure: Duration::from_secs(10),
        };

        assert_eq!(plan.total(), Duration::from_secs(12));
    }
}
