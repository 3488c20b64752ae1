//! The orchestrator: `GET /products/{id}` as one concurrent fan-out.
//!
//! Everything the earlier steps built, in one place: a shared [`Deadline`]
//! for the whole request, a per-upstream semaphore that sheds calls beyond
//! `max_in_flight`, bounded retries for retryable failures only, a
//! concurrent fan-out where a required failure cancels the rest, and a
//! partial answer when only the optional reviews fail.
//!
//! The code is correct unless `WORKBOOK_MUTANT` selects a [`Mutant`]: each
//! `if self.mutant == Some(...)` below is one planted bug. They are marked so
//! you can read what each one breaks; your tests should not need to know.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;

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
    /// Attempts per upstream call, the first one included.
    pub max_attempts: u32,
    /// The pause before each retry.
    pub retry_delay: Duration,
    /// Our calls in flight per upstream; more are shed with `Overloaded`.
    pub max_in_flight: usize,
}

impl Default for Config {
    /// 200 ms budget (the p99 target), 3 attempts 20 ms apart, 32 in flight.
    fn default() -> Self {
        Self {
            budget: Duration::from_millis(200),
            max_attempts: 3,
            retry_delay: Duration::from_millis(20),
            max_in_flight: 32,
        }
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
#[derive(Debug)]
pub struct Orchestrator<C> {
    client: Arc<C>,
    config: Config,
    /// One semaphore per upstream, indexed by [`Upstream::index`].
    permits: [Arc<Semaphore>; 3],
    mutant: Option<Mutant>,
}

impl<C: UpstreamClient> Orchestrator<C> {
    /// An orchestrator over `client`, checking `config` and reading
    /// `WORKBOOK_MUTANT` (see [`Mutant`]).
    ///
    /// # Errors
    /// A [`ConfigError`] for a configuration that cannot work, or an unknown
    /// mutant name.
    pub fn new(client: C, config: Config) -> Result<Self, ConfigError> {
        if config.budget.is_zero() {
            return Err(ConfigError::ZeroBudget);
        }
        if config.max_attempts == 0 {
            return Err(ConfigError::NoAttempts);
        }
        if config.max_in_flight == 0 {
            return Err(ConfigError::NoPermits);
        }
        let mutant = Mutant::from_env()?;
        Ok(Self {
            client: Arc::new(client),
            config,
            permits: std::array::from_fn(|_| Arc::new(Semaphore::new(config.max_in_flight))),
            mutant,
        })
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

/// Everything one upstream call needs, owned.
struct Call<C> {
    client: Arc<C>,
    permits: Arc<Semaphore>,
    config: Config,
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
        let mut attempt = 1;
        loop {
            let error = match self.attempt().await {
                Ok(body) => return Ok(body),
                Err(error) => error,
            };
            let worth_retrying = self.is_retryable(&error)
                && attempt < self.config.max_attempts
                // A retry that cannot finish before the deadline only adds load.
                && self.deadline.remaining() > self.config.retry_delay;
            if !worth_retrying {
                return Err(error);
            }
            tokio::time::sleep(self.config.retry_delay).await;
            attempt += 1;
        }
    }
    // ANCHOR_END: call

    async fn attempt(&self) -> Result<Value, FetchError> {
        let call = self.client.get(self.upstream, self.product_id);
        if self.mutant == Some(Mutant::IgnoresDeadline) {
            // MUTANT ignores_deadline: no timeout around the call.
            return call.await;
        }
        tokio::time::timeout_at(self.deadline.at(), call)
            .await
            .unwrap_or(Err(FetchError::Timeout {
                upstream: self.upstream,
            }))
    }

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
