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
//! The code is correct unless `WORKBOOK_MUTANT` selects a [`Mutant`]: each
//! `if self.mutant == Some(...)` below is one planted bug. They are marked so
//! you can read what each one breaks; your tests should not need to know.

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
use crate::mutant::Mutant;
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
    client: Arc<C>,
    config: Config,
    /// Where each backoff's random part comes from.
    jitter: Arc<dyn Jitter>,
    /// One semaphore per upstream, indexed by [`Upstream::index`].
    permits: [Arc<Semaphore>; 3],
    mutant: Option<Mutant>,
}

impl<C: UpstreamClient> Orchestrator<C> {
    /// An orchestrator over `client`, checking `config` and reading
    /// `WORKBOOK_MUTANT` (see [`Mutant`]). Its backoffs are random
    /// ([`FullJitter::from_entropy`]); [`with_jitter`](Self::with_jitter)
    /// replaces that.
    ///
    /// # Errors
    /// A [`ConfigError`] for a configuration that cannot work, or an unknown
    /// mutant name.
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
        let deadline = Deadline::after(self.config.budget);
        let inventory = self.fetch::<Inventory>(Upstream::Inventory, product_id, deadline);
        let price = self.fetch::<Price>(Upstream::Pricing, product_id, deadline);
        let reviews = self.fetch::<ReviewStats>(Upstream::Reviews, product_id, deadline);

        // ANCHOR: fan_out
        let (inventory, price, reviews) = if self.mutant == Some(Mutant::SequentialFanOut) {
            // MUTANT sequential_fan_out: each call starts after the last ends.
            let inventory = inventory.await?;
            let price = price.await?;
            (inventory, price, reviews.await)
        } else {
            // All three in flight at once; a required failure returns early
            // and drops (cancels) the others. Reviews never short-circuit.
            tokio::try_join!(inventory, price, async { Ok(reviews.await) })?
        };
        // ANCHOR_END: fan_out

        let mut degraded = Vec::new();
        let reviews = match reviews {
            Ok(reviews) => Some(reviews),
            // MUTANT fails_whole_request: an optional section fails it all.
            Err(error) if self.mutant == Some(Mutant::FailsWholeRequest) => return Err(error),
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
        let mut body = serde_json::to_value(response).expect("a ProductResponse always serializes");
        if self.mutant == Some(Mutant::RenamesJsonField) {
            // MUTANT renames_json_field: a "harmless" rename breaks clients.
            if let Some(object) = body.as_object_mut()
                && let Some(price) = object.remove("price")
            {
                object.insert("pricing".to_string(), price);
            }
        }
        body
    }

    /// One upstream call with its permit, retries and the shared deadline,
    /// as a `'static` future (so the detached mutant can spawn it).
    fn fetch<T: DeserializeOwned + Send + 'static>(
        &self,
        upstream: Upstream,
        product_id: u64,
        deadline: Deadline,
    ) -> impl Future<Output = Result<T, FetchError>> + Send + 'static {
        let call = Call {
            client: Arc::clone(&self.client),
            permits: Arc::clone(&self.permits[upstream.index()]),
            config: self.config,
            jitter: Arc::clone(&self.jitter),
            mutant: self.mutant,
            upstream,
            product_id,
            deadline,
        };
        let detached = self.mutant == Some(Mutant::SwallowsCancellation);
        async move {
            if detached {
                // MUTANT swallows_cancellation: a spawned task is not
                // cancelled when the request that awaits it is dropped.
                tokio::spawn(call.run::<T>())
                    .await
                    .unwrap_or_else(|join_error| std::panic::resume_unwind(join_error.into_panic()))
            } else {
                call.run::<T>().await
            }
        }
    }
}

impl<C: fmt::Debug> fmt::Debug for Orchestrator<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The jitter source may be a closure, which has no `Debug`.
        f.debug_struct("Orchestrator")
            .field("client", &self.client)
            .field("config", &self.config)
            .field("permits", &self.permits)
            .field("mutant", &self.mutant)
            .finish_non_exhaustive()
    }
}

/// Everything one upstream call needs, owned.
struct Call<C> {
    client: Arc<C>,
    permits: Arc<Semaphore>,
    config: Config,
    jitter: Arc<dyn Jitter>,
    mutant: Option<Mutant>,
    upstream: Upstream,
    product_id: u64,
    deadline: Deadline,
}

impl<C: UpstreamClient> Call<C> {
    // ANCHOR: call
    async fn run<T: DeserializeOwned>(self) -> Result<T, FetchError> {
        let upstream = self.upstream;
        // Shed rather than queue: waiting for a permit would spend the budget.
        let permit = Arc::clone(&self.permits)
            .try_acquire_owned()
            .map_err(|_| FetchError::Overloaded { upstream })?;
        let result = self.with_retries().await;
        if self.mutant == Some(Mutant::LeaksPermit) {
            // MUTANT leaks_permit: the permit is never returned.
            std::mem::forget(permit);
        }
        let body = result?;
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
            if !self.is_retryable(&error) || retry + 1 >= self.config.max_attempts {
                return Err(error);
            }
            let delay = self.backoff(retry);
            // After this sleep no attempt could start before the deadline:
            // return the real error now instead of a timeout later.
            let no_attempt_fits_after = delay >= self.deadline.remaining();
            // MUTANT sleeps_past_deadline: sleeps anyway, past the deadline.
            if no_attempt_fits_after && self.mutant != Some(Mutant::SleepsPastDeadline) {
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
        let limit = match self.mutant {
            // MUTANT no_attempt_timeout: an attempt may use all the time left.
            Some(Mutant::NoAttemptTimeout) => remaining,
            // MUTANT ignores_deadline: a fresh attempt_timeout per attempt,
            // whatever is left of the request's deadline.
            Some(Mutant::IgnoresDeadline) => self.config.attempt_timeout,
            _ => self.config.attempt_timeout.min(remaining),
        };
        tokio::time::timeout(limit, self.client.get(self.upstream, self.product_id))
            .await
            .unwrap_or(Err(FetchError::Timeout {
                upstream: self.upstream,
            }))
    }

    /// How long to wait before retry number `retry`: full jitter below the
    /// doubling, capped ceiling.
    fn backoff(&self, retry: u32) -> Duration {
        let ceiling = match self.mutant {
            // MUTANT backoff_never_grows: the range never doubles.
            Some(Mutant::BackoffNeverGrows) => self.config.base_delay,
            _ => self.config.backoff_ceiling(retry),
        };
        if self.mutant == Some(Mutant::BackoffWithoutJitter) {
            // MUTANT backoff_without_jitter: every client waits the same
            // ceiling, so their retries arrive together.
            return ceiling;
        }
        self.jitter.pick(ceiling).min(ceiling)
    }
    // ANCHOR_END: attempt

    fn is_retryable(&self, error: &FetchError) -> bool {
        if self.mutant == Some(Mutant::RetriesClientErrors)
            && matches!(error, FetchError::Status { status, .. } if (400..500).contains(status))
        {
            // MUTANT retries_client_errors: a 4xx is retried like a 5xx.
            return true;
        }
        error.is_retryable()
    }
}
