//! The orchestrator: `GET /products/{id}` as one concurrent fan-out.
//!
//! It carries what steps 1 to 3 built, in one place:
//!
//! * one [`Deadline`] for the whole request, set when it arrives, that every
//!   call and every retry spends from (step 2);
//! * per attempt, a timeout of `min(attempt_timeout, time left)`, so a
//!   stalled attempt is abandoned while there is still time to try again,
//!   and no attempt outlives the request (step 2);
//! * bounded retries for retryable failures only, each after a *full-jitter*
//!   backoff drawn from a [`Jitter`] in `0..=min(max_delay, base_delay × 2^n)`,
//!   and no backoff slept when no attempt could follow it (step 2);
//! * a per-upstream semaphore that sheds a call beyond `max_in_flight` at
//!   once with `Overloaded` (step 3's bulkhead);
//! * a concurrent fan-out where a required failure cancels the rest (step 1),
//!   and a partial answer when only the optional reviews fail (ahead of
//!   step 6).
//!
//! What it leaves out, and why, is listed in the crate's documentation
//! (`lib.rs`).
//!
//! This code is correct: it is what your tests describe. When the runner
//! measures your tests, it sets `WORKBOOK_MUTANT`, and then a deliberately
//! broken copy kept elsewhere answers instead (the `if` at the top of
//! [`Orchestrator::get_product`] and of [`Orchestrator::response_body`]).
//! Which bugs that copy carries is the point of the exercise, so it is not
//! here.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::backoff::{FullJitter, Jitter};
use crate::client::UpstreamClient;
use crate::error::{ConfigError, FetchError};
use crate::mutants::{self, Mutant};
use crate::product::{Inventory, Price, ProductResponse, ReviewStats};
use crate::upstream::Upstream;

/// The knobs of the orchestrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// How long one product request may take, all calls and retries included.
    pub budget: Duration,
    /// The longest one attempt may take, even when more of the budget is
    /// left: the point at which a slow attempt is abandoned and tried again.
    pub attempt_timeout: Duration,
    /// Attempts per upstream call, the first one included.
    pub max_attempts: u32,
    /// The backoff before the first retry is drawn from `0..=base_delay`;
    /// each later retry doubles the range.
    pub base_delay: Duration,
    /// The cap on the backoff range, however many retries came before.
    pub max_delay: Duration,
    /// Our calls in flight per upstream; more are shed with `Overloaded`.
    pub max_in_flight: usize,
}

impl Default for Config {
    /// Step 2's numbers: a 200 ms budget (the p99 target), attempts of at
    /// most 70 ms, 3 attempts, backoff ranges of 10, 20, 40, 40, ... ms, and
    /// 32 calls in flight per upstream.
    fn default() -> Self {
        Self {
            budget: Duration::from_millis(200),
            attempt_timeout: Duration::from_millis(70),
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
            max_in_flight: 32,
        }
    }
}

impl Config {
    /// The top of the backoff range before retry number `retry` (0 for the
    /// first retry): `min(max_delay, base_delay × 2^retry)`, saturating
    /// instead of overflowing.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        2u32.checked_pow(retry)
            .and_then(|factor| self.base_delay.checked_mul(factor))
            .map_or(self.max_delay, |delay| delay.min(self.max_delay))
    }

    /// Refuses a configuration that cannot work, naming the first problem.
    fn check(&self) -> Result<(), ConfigError> {
        if self.budget.is_zero() {
            return Err(ConfigError::ZeroBudget);
        }
        if self.attempt_timeout.is_zero() {
            return Err(ConfigError::ZeroAttemptTimeout);
        }
        if self.max_attempts == 0 {
            return Err(ConfigError::NoAttempts);
        }
        if self.base_delay > self.max_delay {
            return Err(ConfigError::BaseAboveCap {
                base: self.base_delay,
                cap: self.max_delay,
            });
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::NoPermits);
        }
        Ok(())
    }
}

/// The instant a request must be answered by, shared by all its calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// `budget` from now (on tokio's clock, so paused time applies).
    pub fn after(budget: Duration) -> Self {
        Self {
            at: Instant::now() + budget,
        }
    }

    /// The instant itself.
    pub fn at(self) -> Instant {
        self.at
    }

    /// Time left, zero once passed.
    pub fn remaining(self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

/// Answers product requests by fanning out to the three upstreams.
pub struct Orchestrator<C> {
    pub(crate) client: Arc<C>,
    pub(crate) config: Config,
    /// Where each backoff's random part comes from.
    pub(crate) jitter: Arc<dyn Jitter>,
    /// One semaphore per upstream, indexed by [`Upstream::index`].
    pub(crate) permits: [Arc<Semaphore>; 3],
    /// Set only during a mutation run; `None` is this correct code.
    pub(crate) mutant: Option<Mutant>,
}

impl<C: UpstreamClient> Orchestrator<C> {
    /// An orchestrator over `client`, checking `config`. Its backoffs are
    /// random ([`FullJitter::from_entropy`]);
    /// [`with_jitter`](Self::with_jitter) replaces that.
    ///
    /// # Errors
    /// A [`ConfigError`] for a configuration that cannot work, or for a
    /// `WORKBOOK_MUTANT` the runner did not set.
    pub fn new(client: C, config: Config) -> Result<Self, ConfigError> {
        config.check()?;
        let mutant = Mutant::from_env()?;
        Ok(Self {
            client: Arc::new(client),
            config,
            jitter: Arc::new(FullJitter::from_entropy()),
            permits: std::array::from_fn(|_| Arc::new(Semaphore::new(config.max_in_flight))),
            mutant,
        })
    }

    /// The same orchestrator, drawing its backoffs from `jitter`: a seeded
    /// [`FullJitter`], or a closure such as `|ceiling| ceiling` that makes
    /// every backoff a known length on a paused clock.
    pub fn with_jitter(mut self, jitter: impl Jitter) -> Self {
        self.jitter = Arc::new(jitter);
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> Config {
        self.config
    }

    /// The product page for `product_id`, within the configured budget.
    ///
    /// # Errors
    /// The first failure of a *required* upstream (inventory or pricing).
    /// A reviews failure is not an error: the answer lists it in `degraded`.
    pub async fn get_product(&self, product_id: u64) -> Result<ProductResponse, FetchError> {
        if let Some(mutant) = self.mutant {
            // A mutation run: the broken copy answers (spoilers in `mutants.rs`).
            return mutants::get_product(self, mutant, product_id).await;
        }
        let deadline = Deadline::after(self.config.budget);
        let inventory = self.fetch::<Inventory>(Upstream::Inventory, product_id, deadline);
        let price = self.fetch::<Price>(Upstream::Pricing, product_id, deadline);
        let reviews = self.fetch::<ReviewStats>(Upstream::Reviews, product_id, deadline);

        // ANCHOR: fan_out
        // All three in flight at once; a required failure returns early and
        // drops (cancels) the others. Reviews never short-circuit: their
        // `Result` is a value here, not an early return.
        let (inventory, price, reviews) =
            tokio::try_join!(inventory, price, async { Ok(reviews.await) })?;
        // ANCHOR_END: fan_out

        let mut degraded = Vec::new();
        let reviews = match reviews {
            Ok(reviews) => Some(reviews),
            Err(_) => {
                degraded.push(Upstream::Reviews);
                None
            }
        };
        Ok(ProductResponse {
            request_id: uuid::Uuid::new_v4().to_string(),
            id: product_id,
            inventory,
            price,
            reviews,
            degraded,
        })
    }

    /// The JSON body the service sends for `response`: the contract.
    pub fn response_body(&self, response: &ProductResponse) -> Value {
        if let Some(mutant) = self.mutant {
            // A mutation run: the broken copy answers (spoilers in `mutants.rs`).
            return mutants::response_body(mutant, response);
        }
        serde_json::to_value(response).expect("a ProductResponse always serializes")
    }

    /// One upstream call with its permit, retries and the shared deadline.
    fn fetch<T: DeserializeOwned>(
        &self,
        upstream: Upstream,
        product_id: u64,
        deadline: Deadline,
    ) -> impl Future<Output = Result<T, FetchError>> + Send + use<T, C> {
        let call = Call {
            client: Arc::clone(&self.client),
            permits: Arc::clone(&self.permits[upstream.index()]),
            config: self.config,
            jitter: Arc::clone(&self.jitter),
            upstream,
            product_id,
            deadline,
        };
        call.run::<T>()
    }
}

impl<C: fmt::Debug> fmt::Debug for Orchestrator<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The jitter source may be a closure, which has no `Debug`.
        f.debug_struct("Orchestrator")
            .field("client", &self.client)
            .field("config", &self.config)
            .field("permits", &self.permits)
            .finish_non_exhaustive()
    }
}

/// Everything one upstream call needs, owned, so the three calls of a
/// request borrow nothing from each other.
struct Call<C> {
    client: Arc<C>,
    permits: Arc<Semaphore>,
    config: Config,
    jitter: Arc<dyn Jitter>,
    upstream: Upstream,
    product_id: u64,
    deadline: Deadline,
}

impl<C: UpstreamClient> Call<C> {
    // ANCHOR: call
    async fn run<T: DeserializeOwned>(self) -> Result<T, FetchError> {
        let upstream = self.upstream;
        // Shed rather than queue: waiting for a permit would spend the budget.
        // The permit is held, by name, until this call has its answer.
        let _permit = Arc::clone(&self.permits)
            .try_acquire_owned()
            .map_err(|_| FetchError::Overloaded { upstream })?;
        let body = self.with_retries().await?;
        serde_json::from_value(body).map_err(|source| FetchError::Decode { upstream, source })
    }

    async fn with_retries(&self) -> Result<Value, FetchError> {
        // `retry` counts the retries made so far: 0 during the first attempt.
        let mut retry: u32 = 0;
        loop {
            let error = match self.attempt().await {
                Ok(body) => return Ok(body),
                Err(error) => error,
            };
            if !error.is_retryable() || retry + 1 >= self.config.max_attempts {
                return Err(error);
            }
            let delay = self.backoff(retry);
            // After this sleep no attempt could start before the deadline:
            // return the real error now instead of a timeout later.
            if delay >= self.deadline.remaining() {
                return Err(error);
            }
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }
    // ANCHOR_END: call

    // ANCHOR: attempt
    /// One attempt, cut off at `min(attempt_timeout, time left)`.
    async fn attempt(&self) -> Result<Value, FetchError> {
        let remaining = self.deadline.remaining();
        if remaining.is_zero() {
            // An expired deadline sends nothing.
            return Err(FetchError::Timeout {
                upstream: self.upstream,
            });
        }
        let limit = self.config.attempt_timeout.min(remaining);
        tokio::time::timeout(limit, self.client.get(self.upstream, self.product_id))
            .await
            .unwrap_or(Err(FetchError::Timeout {
                upstream: self.upstream,
            }))
    }

    /// How long to wait before retry number `retry`: full jitter below the
    /// doubling, capped ceiling.
    fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.config.backoff_ceiling(retry);
        self.jitter.pick(ceiling).min(ceiling)
    }
    // ANCHOR_END: attempt
}
