//! The resilient upstream client: every guard of one upstream, composed in
//! one place.
//!
//! [`ProductService`] is cheap to clone (an `Arc` inside), so each spawned
//! call can own a handle to it. [`Resilience`] switches the mechanisms on and
//! off, which is how the lab compares "off" and "on" with everything else
//! equal.
//!
//! The order of the layers matters. One section call, outermost first:
//!
//! ```text
//! observe_upstream_call     one span and one latency sample per section
//!   breaker.call            one breaker call per section, judged once
//!     budget.deposit        the section pays for its share of extra attempts
//!     retried               attempts with deadlines of their own, retries paid from the budget
//!       hedged              a backup for a late attempt, paid from the same budget
//!         observe_attempt   one span per HTTP request
//!           bulkhead        a permit per request, the wait counted in the attempt's time
//!             fetch_json    the request, bounded by the attempt's deadline
//! ```
//!
//! * The **breaker** is outside everything that multiplies requests: one
//!   page section is one breaker call however many attempts it makes, so
//!   retries and hedges can neither open it three times as fast nor sneak a
//!   request past an open one, and an open breaker costs no budget. It
//!   judges each section's outcome with the runtime's lag, when the edge
//!   hands the service its heartbeat's measure
//!   ([`ProductService::watching_runtime`]): past the knee the attempts
//!   inside time out on time while their answers wait behind our own queue.
//! * The **deposit** is made once per section the breaker lets through,
//!   before any attempt, and nowhere else: extra attempts (retries and
//!   backups together) stay within `ratio` × sections + `burst`, because no
//!   attempt can pay for the next.
//! * **Retries** wrap the hedge, not the other way round: a retry is a new
//!   try after a failed one (which may itself be hedged when it is late); a
//!   hedge wrapping retries would send a whole second retry loop.
//! * The **bulkhead** is innermost, around each real request, so its cap is
//!   on what the upstream actually receives, first attempts, retries and
//!   backups alike; and the attempt's deadline bounds the wait for a permit
//!   too.
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step6_resilience/src/service.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use serde::de::DeserializeOwned;

use crate::breaker::{BreakerConfig, CircuitBreaker};
use crate::budget::{BudgetConfig, RetryBudget};
use crate::bulkhead::{Bulkhead, BulkheadConfig};
use crate::deadline::Deadline;
use crate::error::{ConfigError, FetchError};
use crate::fetch::fetch_json;
use crate::hedge::{Hedge, HedgeConfig, hedged};
use crate::per_upstream::PerUpstream;
use crate::retry::{Retry, RetryConfig, retried};
use crate::telemetry::{
    AttemptKind, RuntimeLag, UpstreamCallMetrics, observe_attempt, observe_upstream_call,
};
use crate::upstream::{Upstream, UpstreamUrls};

/// Which resilience mechanisms are on. `None` switches one off.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Resilience {
    /// A circuit breaker per upstream.
    pub breaker: Option<BreakerConfig>,
    /// Hedged requests per upstream.
    pub hedge: Option<HedgeConfig>,
    /// Retries per upstream, each attempt with a deadline of its own.
    pub retry: Option<RetryConfig>,
    /// The budget per upstream that retries and hedges both draw on.
    /// Required when either is on.
    pub budget: Option<BudgetConfig>,
    /// A cap per upstream on the requests in flight to it.
    pub bulkhead: Option<BulkheadConfig>,
}

impl Resilience {
    /// Nothing on: only the deadline and partial responses.
    pub fn off() -> Self {
        Resilience::default()
    }
}

/// The mechanisms guarding one upstream.
#[derive(Debug)]
struct Guard {
    breaker: Option<CircuitBreaker>,
    budget: Option<Arc<RetryBudget>>,
    retry: Option<Retry>,
    hedge: Option<Hedge>,
    bulkhead: Option<Bulkhead>,
}

impl Guard {
    fn new(upstream: Upstream, resilience: &Resilience) -> Result<Guard, ConfigError> {
        let extra_attempts = resilience.retry.is_some() || resilience.hedge.is_some();
        let budget = match resilience.budget {
            Some(config) => Some(Arc::new(RetryBudget::new(config)?)),
            None if extra_attempts => return Err(ConfigError::ExtraAttemptsWithoutBudget),
            None => None,
        };
        Ok(Guard {
            breaker: resilience
                .breaker
                .map(|config| CircuitBreaker::new(upstream, config))
                .transpose()?,
            hedge: match (resilience.hedge, &budget) {
                (Some(config), Some(budget)) => Some(Hedge::new(config, Arc::clone(budget))?),
                _ => None,
            },
            retry: resilience.retry.map(Retry::new).transpose()?,
            bulkhead: resilience
                .bulkhead
                .map(|config| Bulkhead::new(upstream, config))
                .transpose()?,
            budget,
        })
    }
}

#[derive(Debug)]
struct Shared {
    client: reqwest::Client,
    urls: UpstreamUrls,
    guards: PerUpstream<Guard>,
}

/// Calls the three upstreams through their guards.
#[derive(Debug, Clone)]
pub struct ProductService {
    shared: Arc<Shared>,
    /// Where each call's latency goes; `None` until the edge asks.
    calls: Option<Arc<UpstreamCallMetrics>>,
    /// How far behind the runtime runs, for the breakers' verdicts; `None`
    /// until the edge hands over its heartbeat's measure.
    runtime: Option<RuntimeLag>,
}

impl ProductService {
    /// A service calling `urls` with `client`, guarded as `resilience` says.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] if a setting cannot work, or if retries or hedges
    /// are on without a budget.
    pub fn new(
        client: reqwest::Client,
        urls: UpstreamUrls,
        resilience: Resilience,
    ) -> Result<Self, ConfigError> {
        let guards = PerUpstream::try_from_fn(|upstream| Guard::new(upstream, &resilience))?;
        Ok(ProductService {
            shared: Arc::new(Shared {
                client,
                urls,
                guards,
            }),
            calls: None,
            runtime: None,
        })
    }

    /// This service, recording each call's latency in `calls` (the clones
    /// made from it afterwards too; earlier clones do not).
    pub fn recording_calls(self, calls: Arc<UpstreamCallMetrics>) -> Self {
        ProductService {
            calls: Some(calls),
            ..self
        }
    }

    /// This service, its breakers judging each outcome with the runtime lag
    /// that `runtime` reads when the outcome comes back (the clones made
    /// from it afterwards too; earlier clones do not).
    pub fn watching_runtime(self, runtime: RuntimeLag) -> Self {
        ProductService {
            runtime: Some(runtime),
            ..self
        }
    }

    /// The breaker guarding `upstream`, if breakers are on.
    pub fn breaker(&self, upstream: Upstream) -> Option<&CircuitBreaker> {
        self.shared.guards[upstream].breaker.as_ref()
    }

    /// The hedging state of `upstream`, if hedging is on.
    pub fn hedge(&self, upstream: Upstream) -> Option<&Hedge> {
        self.shared.guards[upstream].hedge.as_ref()
    }

    /// The retry policy of `upstream`, if retries are on.
    pub fn retry(&self, upstream: Upstream) -> Option<&Retry> {
        self.shared.guards[upstream].retry.as_ref()
    }

    /// The budget `upstream`'s retries and hedges draw on, if either is on.
    pub fn budget(&self, upstream: Upstream) -> Option<&RetryBudget> {
        self.shared.guards[upstream].budget.as_deref()
    }

    /// The bulkhead of `upstream`, if bulkheads are on.
    pub fn bulkhead(&self, upstream: Upstream) -> Option<&Bulkhead> {
        self.shared.guards[upstream].bulkhead.as_ref()
    }

    // ANCHOR: fetch
    /// Fetches one section: through the breaker, retried and hedged within
    /// the budget, each request through the bulkhead, bounded by `deadline`,
    /// in a span of its own (and one per request) and timed under its
    /// outcome.
    ///
    /// # Errors
    ///
    /// Any [`FetchError`]; [`FetchError::CircuitOpen`] without a request.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops every request it has in flight.
    pub async fn fetch<T: DeserializeOwned>(
        &self,
        upstream: Upstream,
        product_id: u64,
        deadline: Deadline,
    ) -> Result<T, FetchError> {
        let shared = &*self.shared;
        let guard = &shared.guards[upstream];

        // One HTTP request, numbered in the order this section starts them:
        // a permit first (if bulkheads are on), then the GET, both bounded
        // by the attempt's own deadline.
        let requests_started = AtomicU32::new(0);
        let request = |attempt_deadline: Deadline, kind: AttemptKind| {
            let number = requests_started.fetch_add(1, Ordering::Relaxed) + 1;
            observe_attempt(upstream, number, kind, async move {
                let _permit = match &guard.bulkhead {
                    Some(bulkhead) => Some(bulkhead.acquire(attempt_deadline).await?),
                    None => None,
                };
                fetch_json::<T>(
                    &shared.client,
                    &shared.urls,
                    upstream,
                    product_id,
                    attempt_deadline,
                )
                .await
            })
        };

        // One attempt: a request, hedged if hedging is on. The first
        // attempt's first request is the `First`; a later attempt's is a
        // `Retry`; a backup is a `Hedge`.
        let mut attempts_made = 0_u32;
        let mut attempt = |attempt_deadline: Deadline| {
            let kind = if attempts_made == 0 {
                AttemptKind::First
            } else {
                AttemptKind::Retry
            };
            attempts_made += 1;
            let request = &request;
            async move {
                match &guard.hedge {
                    Some(hedge) => {
                        let backup_sent = AtomicBool::new(false);
                        hedged(hedge, || {
                            let is_backup = backup_sent.swap(true, Ordering::Relaxed);
                            request(
                                attempt_deadline,
                                if is_backup { AttemptKind::Hedge } else { kind },
                            )
                        })
                        .await
                    }
                    None => request(attempt_deadline, kind).await,
                }
            }
        };

        // Boxed, once per section: a future holds every future it awaits,
        // and each wrapper that takes one by value (the breaker's call, the
        // call's observation) holds it twice, its argument and what it
        // awaits. Unboxed, this section's future measured 30,032 bytes, and
        // `tokio::spawn` and each first poll copied it; boxed here, 656
        // (the chapter's "What a future weighs").
        let attempts = Box::pin(async {
            if let Some(budget) = &guard.budget {
                budget.deposit();
            }
            match (&guard.retry, &guard.budget) {
                (Some(retry), Some(budget)) => {
                    retried(retry, budget, upstream, deadline, &mut attempt).await
                }
                // Without retries, one attempt with the page's deadline.
                _ => attempt(deadline).await,
            }
        });
        let guarded_call = async {
            match &guard.breaker {
                Some(breaker) => {
                    breaker
                        .call_watching(self.runtime.as_ref(), deadline, attempts)
                        .await
                }
                None => attempts.await,
            }
        };
        observe_upstream_call(self.calls.as_deref(), upstream, guarded_call).await
    }
    // ANCHOR_END: fetch
}
