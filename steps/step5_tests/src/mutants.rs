//! SPOILER WARNING: the bugs your tests are measured against.
//!
//! Stop here if you have not yet seen `cargo xtask verify step5` report
//! "caught n of n". This file is the answer key of step 5: every bug the
//! runner plants, and how. Reading it first turns "write tests that catch
//! the bugs you can think of" into "write one test per line of a list",
//! which is the habit this step is meant to break. The tests you need follow
//! from what `orchestrator.rs` promises, not from this file.
//!
//! ---
//!
//! For maintainers: a *mutant* is the orchestrator with one realistic bug.
//! The runner selects one per run with `WORKBOOK_MUTANT=<name>`;
//! [`Orchestrator::get_product`] and [`Orchestrator::response_body`] then
//! hand over to the copy below, where each `planted == Some(...)` branch is
//! one bug. Outside those branches the copy must do exactly what
//! `orchestrator.rs` does: the test at the bottom runs both, with nothing
//! planted, through the same scenarios and compares what the fake saw.
//! Change the two together.
//!
//! The names and the hints `verify` shows for a mutant that slipped through
//! live in `steps/hints/step5.toml` (`[[mutant]]`), behind the same warning;
//! a test below keeps that list and [`Mutant::ALL`] equal. Some mutants are
//! hinted at by the step's hint ladders and chapter; the rest no hint
//! describes, so the report measures tests of behaviour, not of a list.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::backoff::Jitter;
use crate::client::UpstreamClient;
use crate::error::{ConfigError, FetchError};
use crate::orchestrator::{Config, Deadline, Orchestrator};
use crate::product::{Inventory, Price, ProductResponse, ReviewStats};
use crate::upstream::Upstream;

/// The environment variable that selects a mutant.
pub const MUTANT_ENV: &str = "WORKBOOK_MUTANT";

/// One planted bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mutant {
    /// Awaits the three upstream calls one after the other.
    SequentialFanOut,
    /// Retries a 4xx answer as if it were a 5xx.
    RetriesClientErrors,
    /// Lets one attempt use all the time left, with no `attempt_timeout`.
    NoAttemptTimeout,
    /// Gives every attempt its full `attempt_timeout`, even past the
    /// request's deadline.
    IgnoresDeadline,
    /// Sleeps the top of the backoff range every time: no jitter.
    BackoffWithoutJitter,
    /// Keeps the backoff range at `base_delay`: it never doubles.
    BackoffNeverGrows,
    /// Sleeps a backoff even when no attempt could start after it.
    SleepsPastDeadline,
    /// Never gives back the per-upstream permit after a call.
    LeaksPermit,
    /// Spawns the upstream calls as detached tasks, so dropping the request
    /// does not cancel them.
    SwallowsCancellation,
    /// Sends `pricing` where the contract says `price`.
    RenamesJsonField,
    /// Fails the whole request when the optional reviews upstream fails.
    FailsWholeRequest,
    // Below: the mutants no hint ladder and no chapter describes.
    /// `let _ = permit`: the permit is dropped as soon as it is taken, so
    /// the limit on calls in flight is never enforced.
    DropsPermitAtOnce,
    /// Queues for a permit (`acquire`) instead of shedding when the
    /// upstream is full.
    WaitsForAPermit,
    /// Runs each attempt as its own task; an attempt abandoned at its
    /// timeout keeps running, unseen, instead of being cancelled.
    AbandonedAttemptKeepsRunning,
    /// `join!` instead of `try_join!`: a required failure waits for the
    /// other calls instead of cancelling them.
    WaitsForEveryCall,
    /// An off-by-one in the retry loop: one attempt more than
    /// `max_attempts`.
    OneAttemptTooMany,
    /// Treats a timed-out attempt as final: timeouts are never retried.
    GivesUpOnTimeouts,
}

impl Mutant {
    /// Every mutant, in the order of `steps/hints/step5.toml`.
    pub(crate) const ALL: [Mutant; 17] = [
        Mutant::SequentialFanOut,
        Mutant::RetriesClientErrors,
        Mutant::NoAttemptTimeout,
        Mutant::IgnoresDeadline,
        Mutant::BackoffWithoutJitter,
        Mutant::BackoffNeverGrows,
        Mutant::SleepsPastDeadline,
        Mutant::LeaksPermit,
        Mutant::SwallowsCancellation,
        Mutant::RenamesJsonField,
        Mutant::FailsWholeRequest,
        Mutant::DropsPermitAtOnce,
        Mutant::WaitsForAPermit,
        Mutant::AbandonedAttemptKeepsRunning,
        Mutant::WaitsForEveryCall,
        Mutant::OneAttemptTooMany,
        Mutant::GivesUpOnTimeouts,
    ];

    /// The name `WORKBOOK_MUTANT` takes.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mutant::SequentialFanOut => "sequential_fan_out",
            Mutant::RetriesClientErrors => "retries_client_errors",
            Mutant::NoAttemptTimeout => "no_attempt_timeout",
            Mutant::IgnoresDeadline => "ignores_deadline",
            Mutant::BackoffWithoutJitter => "backoff_without_jitter",
            Mutant::BackoffNeverGrows => "backoff_never_grows",
            Mutant::SleepsPastDeadline => "sleeps_past_deadline",
            Mutant::LeaksPermit => "leaks_permit",
            Mutant::SwallowsCancellation => "swallows_cancellation",
            Mutant::RenamesJsonField => "renames_json_field",
            Mutant::FailsWholeRequest => "fails_whole_request",
            Mutant::DropsPermitAtOnce => "drops_permit_at_once",
            Mutant::WaitsForAPermit => "waits_for_a_permit",
            Mutant::AbandonedAttemptKeepsRunning => "abandoned_attempt_keeps_running",
            Mutant::WaitsForEveryCall => "waits_for_every_call",
            Mutant::OneAttemptTooMany => "one_attempt_too_many",
            Mutant::GivesUpOnTimeouts => "gives_up_on_timeouts",
        }
    }

    /// Parses a name; `None` if no mutant has it.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mutant| mutant.name() == name)
    }

    /// The mutant `WORKBOOK_MUTANT` selects: `Ok(None)` when it is unset or
    /// empty (the correct orchestrator).
    ///
    /// # Errors
    /// [`ConfigError::UnknownMutant`] for a name that is not a mutant: a
    /// typo must not silently test the correct code.
    pub(crate) fn from_env() -> Result<Option<Self>, ConfigError> {
        let Ok(value) = std::env::var(MUTANT_ENV) else {
            return Ok(None);
        };
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        Self::from_name(value)
            .map(Some)
            .ok_or_else(|| ConfigError::UnknownMutant(value.to_string()))
    }
}

/// [`Orchestrator::get_product`] with `mutant` planted.
///
/// SPOILER: arrived here by "go to definition"? Everything in this file is
/// step 5's answer key; see the warning at the top.
pub(crate) async fn get_product<C: UpstreamClient>(
    orchestrator: &Orchestrator<C>,
    mutant: Mutant,
    product_id: u64,
) -> Result<ProductResponse, FetchError> {
    planted_get_product(orchestrator, Some(mutant), product_id).await
}

/// [`Orchestrator::response_body`] with `mutant` planted.
///
/// SPOILER: arrived here by "go to definition"? Everything in this file is
/// step 5's answer key; see the warning at the top.
pub(crate) fn response_body(mutant: Mutant, response: &ProductResponse) -> Value {
    let mut body = serde_json::to_value(response).expect("a ProductResponse always serializes");
    if mutant == Mutant::RenamesJsonField {
        // A "harmless" rename that breaks every client.
        if let Some(object) = body.as_object_mut()
            && let Some(price) = object.remove("price")
        {
            object.insert("pricing".to_string(), price);
        }
    }
    body
}

/// The copy of `get_product`; with `planted == None` it is the correct one.
async fn planted_get_product<C: UpstreamClient>(
    orchestrator: &Orchestrator<C>,
    planted: Option<Mutant>,
    product_id: u64,
) -> Result<ProductResponse, FetchError> {
    let deadline = Deadline::after(orchestrator.config.budget);
    let fetch = |upstream| PlantedCall::new(orchestrator, planted, upstream, product_id, deadline);
    let inventory = fetch(Upstream::Inventory).spawned_if_planted::<Inventory>();
    let price = fetch(Upstream::Pricing).spawned_if_planted::<Price>();
    let reviews = fetch(Upstream::Reviews).spawned_if_planted::<ReviewStats>();

    let (inventory, price, reviews) = match planted {
        Some(Mutant::SequentialFanOut) => {
            // Each call starts only after the one before it has ended.
            let inventory = inventory.await?;
            let price = price.await?;
            (inventory, price, reviews.await)
        }
        Some(Mutant::WaitsForEveryCall) => {
            // Concurrent, but a required failure waits for the slowest call.
            let (inventory, price, reviews) = tokio::join!(inventory, price, reviews);
            (inventory?, price?, reviews)
        }
        _ => tokio::try_join!(inventory, price, async { Ok(reviews.await) })?,
    };

    let mut degraded = Vec::new();
    let reviews = match reviews {
        Ok(reviews) => Some(reviews),
        // An optional section fails it all.
        Err(error) if planted == Some(Mutant::FailsWholeRequest) => return Err(error),
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

/// The copy of the orchestrator's `Call`, with the planted bug.
struct PlantedCall<C> {
    client: Arc<C>,
    permits: Arc<Semaphore>,
    config: Config,
    jitter: Arc<dyn Jitter>,
    planted: Option<Mutant>,
    upstream: Upstream,
    product_id: u64,
    deadline: Deadline,
}

impl<C: UpstreamClient> PlantedCall<C> {
    fn new(
        orchestrator: &Orchestrator<C>,
        planted: Option<Mutant>,
        upstream: Upstream,
        product_id: u64,
        deadline: Deadline,
    ) -> Self {
        Self {
            client: Arc::clone(&orchestrator.client),
            permits: Arc::clone(&orchestrator.permits[upstream.index()]),
            config: orchestrator.config,
            jitter: Arc::clone(&orchestrator.jitter),
            planted,
            upstream,
            product_id,
            deadline,
        }
    }

    /// The call as a future; detached in its own task when cancellation is
    /// what the mutant breaks.
    fn spawned_if_planted<T: DeserializeOwned + Send + 'static>(
        self,
    ) -> impl Future<Output = Result<T, FetchError>> + Send + 'static {
        let detached = self.planted == Some(Mutant::SwallowsCancellation);
        async move {
            if detached {
                // A spawned task is not cancelled when the request that
                // awaits its handle is dropped.
                tokio::spawn(self.run::<T>())
                    .await
                    .unwrap_or_else(|join_error| std::panic::resume_unwind(join_error.into_panic()))
            } else {
                self.run::<T>().await
            }
        }
    }

    async fn run<T: DeserializeOwned>(self) -> Result<T, FetchError> {
        let upstream = self.upstream;
        let permits = Arc::clone(&self.permits);
        let permit = if self.planted == Some(Mutant::WaitsForAPermit) {
            // Queues behind the calls in flight, spending the budget.
            permits
                .acquire_owned()
                .await
                .map_err(|_| FetchError::Overloaded { upstream })?
        } else {
            permits
                .try_acquire_owned()
                .map_err(|_| FetchError::Overloaded { upstream })?
        };
        let held = if self.planted == Some(Mutant::DropsPermitAtOnce) {
            // What `let _ = permit;` does: the permit goes back at once.
            drop(permit);
            None
        } else {
            Some(permit)
        };
        let result = self.with_retries().await;
        if self.planted == Some(Mutant::LeaksPermit) {
            // The permit is never returned.
            std::mem::forget(held);
        }
        let body = result?;
        serde_json::from_value(body).map_err(|source| FetchError::Decode { upstream, source })
    }

    async fn with_retries(&self) -> Result<Value, FetchError> {
        let attempts = if self.planted == Some(Mutant::OneAttemptTooMany) {
            self.config.max_attempts + 1
        } else {
            self.config.max_attempts
        };
        let mut retry: u32 = 0;
        loop {
            let error = match self.attempt().await {
                Ok(body) => return Ok(body),
                Err(error) => error,
            };
            if !self.is_retryable(&error) || retry + 1 >= attempts {
                return Err(error);
            }
            let delay = self.backoff(retry);
            let no_attempt_fits_after = delay >= self.deadline.remaining();
            // Sleeps anyway, past the deadline.
            if no_attempt_fits_after && self.planted != Some(Mutant::SleepsPastDeadline) {
                return Err(error);
            }
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }

    async fn attempt(&self) -> Result<Value, FetchError> {
        let remaining = self.deadline.remaining();
        let timed_out = || FetchError::Timeout {
            upstream: self.upstream,
        };
        if remaining.is_zero() {
            return Err(timed_out());
        }
        let limit = match self.planted {
            // An attempt may use all the time left.
            Some(Mutant::NoAttemptTimeout) => remaining,
            // A fresh attempt_timeout, whatever is left of the deadline.
            Some(Mutant::IgnoresDeadline) => self.config.attempt_timeout,
            _ => self.config.attempt_timeout.min(remaining),
        };
        if self.planted == Some(Mutant::AbandonedAttemptKeepsRunning) {
            // The timeout drops only the task's handle, which detaches it.
            let client = Arc::clone(&self.client);
            let (upstream, product_id) = (self.upstream, self.product_id);
            let task = tokio::spawn(async move { client.get(upstream, product_id).await });
            return match tokio::time::timeout(limit, task).await {
                Ok(joined) => joined.unwrap_or_else(|join_error| {
                    std::panic::resume_unwind(join_error.into_panic())
                }),
                Err(_) => Err(timed_out()),
            };
        }
        tokio::time::timeout(limit, self.client.get(self.upstream, self.product_id))
            .await
            .unwrap_or_else(|_| Err(timed_out()))
    }

    fn backoff(&self, retry: u32) -> Duration {
        let ceiling = if self.planted == Some(Mutant::BackoffNeverGrows) {
            self.config.base_delay
        } else {
            self.config.backoff_ceiling(retry)
        };
        if self.planted == Some(Mutant::BackoffWithoutJitter) {
            // Every client waits the same ceiling: their retries coincide.
            return ceiling;
        }
        self.jitter.pick(ceiling).min(ceiling)
    }

    fn is_retryable(&self, error: &FetchError) -> bool {
        match (self.planted, error) {
            (Some(Mutant::RetriesClientErrors), FetchError::Status { status, .. })
                if (400..500).contains(status) =>
            {
                true
            }
            (Some(Mutant::GivesUpOnTimeouts), FetchError::Timeout { .. }) => false,
            _ => error.is_retryable(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeUpstreams;

    /// The runner enumerates mutants from `steps/hints/step5.toml`; every
    /// name there must be one this enum knows, and every mutant must be
    /// listed, in the same order.
    #[test]
    fn the_hint_file_lists_exactly_these_mutants() {
        // Both crates (steps/step5_tests and solutions/step5_tests) sit two
        // levels below the root.
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../steps/hints/step5.toml");
        let text = std::fs::read_to_string(&path).expect("steps/hints/step5.toml is readable");
        // The `name` line that follows each `[[mutant]]` table header.
        let mut listed = Vec::new();
        let mut in_mutant = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with("[[") {
                in_mutant = line == "[[mutant]]";
            } else if in_mutant && let Some(rest) = line.strip_prefix("name = \"") {
                listed.extend(rest.split('"').next());
            }
        }
        let known: Vec<&str> = Mutant::ALL.iter().map(|mutant| mutant.name()).collect();
        assert_eq!(listed, known);
    }

    #[test]
    fn every_name_parses_back() {
        for mutant in Mutant::ALL {
            assert_eq!(Mutant::from_name(mutant.name()), Some(mutant));
        }
        assert_eq!(Mutant::from_name("no_such_mutant"), None);
    }

    /// What one run of a scenario showed.
    #[derive(Debug, PartialEq)]
    struct Seen {
        outcome: String,
        elapsed: Duration,
        calls: [usize; 3],
        cancelled: [usize; 3],
    }

    /// A scenario: how the fake upstreams misbehave.
    type Script = Box<dyn Fn(&FakeUpstreams)>;

    /// Runs one scenario through `orchestrator.rs` (`through_the_copy` false)
    /// or through the copy with nothing planted.
    async fn run(script: &Script, config: Config, through_the_copy: bool) -> Seen {
        let fake = FakeUpstreams::healthy();
        script(&fake);
        let mut orchestrator = Orchestrator::new(fake.clone(), config)
            .expect("a valid configuration")
            .with_jitter(|ceiling: Duration| ceiling / 2);
        // Whatever the shell says: this compares the two correct paths.
        orchestrator.mutant = None;
        let started = tokio::time::Instant::now();
        let outcome = if through_the_copy {
            planted_get_product(&orchestrator, None, 7).await
        } else {
            orchestrator.get_product(7).await
        };
        let count = |counter: fn(&FakeUpstreams, Upstream) -> usize| {
            Upstream::ALL.map(|upstream| counter(&fake, upstream))
        };
        Seen {
            outcome: match outcome {
                Ok(response) => format!("ok, degraded {:?}", response.degraded),
                Err(error) => error.to_string(),
            },
            elapsed: started.elapsed(),
            calls: count(FakeUpstreams::calls),
            cancelled: count(FakeUpstreams::cancelled),
        }
    }

    /// With nothing planted, the copy behaves as `orchestrator.rs` does.
    #[tokio::test(start_paused = true)]
    async fn with_nothing_planted_the_copy_matches_the_orchestrator() {
        let ms = Duration::from_millis;
        let config = Config {
            budget: ms(200),
            attempt_timeout: ms(70),
            max_attempts: 3,
            base_delay: ms(20),
            max_delay: ms(40),
            max_in_flight: 1,
        };
        let scenarios: [(&str, Script); 7] = [
            ("healthy", Box::new(|_| {})),
            (
                "slow",
                Box::new(move |fake| fake.set_latency(Upstream::Pricing, ms(50))),
            ),
            (
                "stalled",
                Box::new(move |fake| fake.set_latency(Upstream::Inventory, ms(10_000))),
            ),
            (
                "stalls once",
                Box::new(move |fake| fake.stall_first(Upstream::Pricing, 1)),
            ),
            (
                "flaky",
                Box::new(move |fake| fake.fail_first(Upstream::Pricing, 2, 503)),
            ),
            (
                "missing",
                Box::new(move |fake| {
                    fake.fail_with(Upstream::Inventory, 404);
                    fake.set_latency(Upstream::Pricing, ms(50));
                }),
            ),
            (
                "no reviews",
                Box::new(move |fake| fake.fail_with(Upstream::Reviews, 500)),
            ),
        ];
        for (name, script) in &scenarios {
            let correct = run(script, config, false).await;
            let copy = run(script, config, true).await;
            assert_eq!(copy, correct, "scenario {name}: the copy drifted");
        }
    }
}
