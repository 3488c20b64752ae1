//! How the fast fake behaves, and the plan that makes for one request.
//!
//! A [`Behaviour`] is a description ("50 ms, 1 % failures"). For each request
//! the handler turns it into a [`ResponsePlan`] ("wait 47 ms, then answer 503")
//! by rolling the dice *once, up front*. Keeping the dice out of the handler
//! makes the odds testable with a seeded RNG, and means no RNG is held across
//! an `.await` (the thread-local one is not `Send`).

use std::time::Duration;

use rand::Rng;

use super::latency::Latency;

/// What the fast fake does with each request.
///
/// Build one from [`Behaviour::default`] (instant, always healthy) or
/// [`Behaviour::fixed`], then chain: `Behaviour::fixed(ms(50)).failing(0.01, 503)`.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// How long to wait before answering.
    pub latency: Latency,
    /// The share of requests, from 0.0 to 1.0, answered with
    /// `failure_status` (after the latency, like a real server that fails
    /// late). Values outside 0..=1 act as "never" or "always".
    pub failure_rate: f64,
    /// The status of a failed answer. Default `503 Service Unavailable`. An
    /// invalid code is sent as `500`.
    pub failure_status: u16,
    /// Never answer: the request stays in flight until its client gives up.
    /// Overrides everything else (only an id that is not a number still gets
    /// its immediate `404`).
    pub hang: bool,
    /// Answer `200` with a body that is not JSON (after the latency). A
    /// request picked to fail still fails.
    pub garbage: bool,
    /// Slow down under overload: `None` (the default) keeps the latency the
    /// same however many requests are in flight. See [`Degradation`].
    pub degradation: Option<Degradation>,
    /// How long after the status line and headers the body follows. Zero
    /// (the default) sends them together. Any other value sends the head
    /// when the latency is over and the body this much later, the way a
    /// server streaming a large or slowly computed answer does: a client
    /// that treats "the headers arrived" as "the call is over" is then
    /// visibly wrong. The request counts as in flight until its body is sent.
    pub body_delay: Duration,
}

/// How an overloaded upstream slows down: past `knee` requests in flight,
/// every further request in flight adds `per_request` to each answer's delay.
///
/// With `knee` 50 and `per_request` 1 ms, a request that arrives while 80
/// others are in flight (81 counting itself) waits its sampled latency plus
/// 31 ms. Real services behave like this once they are saturated: requests
/// queue for threads and connections, locks are contended, caches thrash, the
/// garbage collector runs more often. The extra work per request means the
/// server answers *fewer* requests per second the more it is given (retrograde
/// throughput), which is what makes capping the load a win, not only a
/// reshuffle of the same queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Degradation {
    /// How many requests in flight the upstream serves at full speed.
    pub knee: u64,
    /// The delay each request in flight beyond the knee adds.
    pub per_request: std::time::Duration,
}

impl Degradation {
    /// The extra delay for a request that sees `in_flight` requests in
    /// flight, itself included.
    pub fn extra_delay(&self, in_flight: u64) -> std::time::Duration {
        let beyond_knee = in_flight.saturating_sub(self.knee);
        // Saturate instead of overflowing: a delay of u32::MAX requests'
        // worth is already "never".
        self.per_request
            .saturating_mul(u32::try_from(beyond_knee).unwrap_or(u32::MAX))
    }
}

impl Default for Behaviour {
    /// Answers at once, always healthy.
    fn default() -> Self {
        Self {
            latency: Latency::Fixed(Duration::ZERO),
            failure_rate: 0.0,
            failure_status: 503,
            hang: false,
            garbage: false,
            degradation: None,
            body_delay: Duration::ZERO,
        }
    }
}

impl Behaviour {
    /// Healthy, answering after exactly `latency`.
    pub fn fixed(latency: Duration) -> Self {
        Self::default().with_latency(Latency::Fixed(latency))
    }

    /// The same behaviour with another latency distribution.
    pub fn with_latency(self, latency: Latency) -> Self {
        Self { latency, ..self }
    }

    /// The same behaviour, but a share `rate` (0.0 to 1.0) of requests is
    /// answered with `status`.
    pub fn failing(self, rate: f64, status: u16) -> Self {
        Self {
            failure_rate: rate,
            failure_status: status,
            ..self
        }
    }

    /// The same behaviour, but no request is ever answered.
    pub fn hanging(self) -> Self {
        Self { hang: true, ..self }
    }

    /// The same behaviour, but successful answers carry a non-JSON body.
    pub fn garbage(self) -> Self {
        Self {
            garbage: true,
            ..self
        }
    }

    /// The same behaviour, but slowing down once more than `knee` requests
    /// are in flight: each one beyond the knee adds `per_request` to every
    /// answer's delay (see [`Degradation`]).
    pub fn degrading_past(self, knee: u64, per_request: Duration) -> Self {
        Self {
            degradation: Some(Degradation { knee, per_request }),
            ..self
        }
    }

    /// The same behaviour, but every answer's body follows its headers by
    /// `delay` (see [`body_delay`](Self::body_delay)).
    pub fn sending_body_after(self, delay: Duration) -> Self {
        Self {
            body_delay: delay,
            ..self
        }
    }

    /// Rolls the dice for one request that arrives while `in_flight`
    /// requests (itself included) are in flight.
    pub(crate) fn plan(&self, rng: &mut impl Rng, in_flight: u64) -> ResponsePlan {
        if self.hang {
            return ResponsePlan::Hang;
        }
        let overload = self.degradation.map_or(Duration::ZERO, |degradation| {
            degradation.extra_delay(in_flight)
        });
        let delay = self.latency.sample(rng).saturating_add(overload);
        let answer = if rng.random::<f64>() < self.failure_rate {
            Answer::Failure(self.failure_status)
        } else if self.garbage {
            Answer::Garbage
        } else {
            Answer::Product
        };
        ResponsePlan::Answer { delay, answer }
    }
}

/// What the handler will do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponsePlan {
    /// Wait forever.
    Hang,
    /// Wait `delay`, then send `answer`.
    Answer { delay: Duration, answer: Answer },
}

/// The answer sent once the delay is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// `200` and the service's body for the product.
    Product,
    /// This status, with a short plain-text body.
    Failure(u16),
    /// `200`, `content-type: application/json`, and a body that is not JSON.
    Garbage,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn answers(behaviour: &Behaviour, count: usize) -> Vec<Answer> {
        let mut rng = StdRng::seed_from_u64(11);
        (0..count)
            .map(|_| match behaviour.plan(&mut rng, 1) {
                ResponsePlan::Answer { answer, .. } => answer,
                ResponsePlan::Hang => panic!("this behaviour does not hang"),
            })
            .collect()
    }

    #[test]
    fn the_default_answers_the_product_at_once() {
        let mut rng = StdRng::seed_from_u64(1);

        let plan = Behaviour::default().plan(&mut rng, 1);

        assert_eq!(
            plan,
            ResponsePlan::Answer {
                delay: Duration::ZERO,
                answer: Answer::Product
            }
        );
    }

    #[test]
    fn failures_happen_at_about_the_failure_rate() {
        let behaviour = Behaviour::default().failing(0.3, 500);

        let failures = answers(&behaviour, 10_000)
            .into_iter()
            .filter(|answer| *answer == Answer::Failure(500))
            .count();

        // Expected 3000, standard deviation about 46: 2700..3300 is over six.
        assert!(
            (2_700..3_300).contains(&failures),
            "{failures} failures in 10000"
        );
    }

    #[test]
    fn garbage_replaces_only_the_successful_answers() {
        let behaviour = Behaviour::default().failing(0.5, 503).garbage();

        let all = answers(&behaviour, 1_000);

        assert!(all.contains(&Answer::Failure(503)));
        assert!(all.contains(&Answer::Garbage));
        assert!(!all.contains(&Answer::Product));
    }

    #[test]
    fn hanging_overrides_everything_else() {
        let behaviour = Behaviour::fixed(Duration::from_millis(5))
            .failing(1.0, 503)
            .hanging();

        let plan = behaviour.plan(&mut StdRng::seed_from_u64(3), 1);

        assert_eq!(plan, ResponsePlan::Hang);
    }

    #[test]
    fn a_degrading_upstream_keeps_its_latency_up_to_the_knee() {
        let behaviour = Behaviour::fixed(Duration::from_millis(20))
            .degrading_past(50, Duration::from_millis(1));
        let mut rng = StdRng::seed_from_u64(5);

        let delays: Vec<Duration> = [1, 25, 50]
            .into_iter()
            .map(|in_flight| match behaviour.plan(&mut rng, in_flight) {
                ResponsePlan::Answer { delay, .. } => delay,
                ResponsePlan::Hang => panic!("this behaviour does not hang"),
            })
            .collect();

        assert_eq!(delays, [Duration::from_millis(20); 3]);
    }

    #[test]
    fn past_the_knee_each_request_in_flight_adds_its_delay() {
        let behaviour = Behaviour::fixed(Duration::from_millis(20))
            .degrading_past(50, Duration::from_millis(1));
        let mut rng = StdRng::seed_from_u64(5);

        let delays: Vec<Duration> = [51, 80, 500]
            .into_iter()
            .map(|in_flight| match behaviour.plan(&mut rng, in_flight) {
                ResponsePlan::Answer { delay, .. } => delay,
                ResponsePlan::Hang => panic!("this behaviour does not hang"),
            })
            .collect();

        assert_eq!(
            delays,
            [21, 50, 470].map(Duration::from_millis),
            "20 ms plus 1 ms per request in flight beyond 50"
        );
    }
}
