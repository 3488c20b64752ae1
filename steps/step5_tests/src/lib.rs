//! Step 5 — tests that catch bugs (your exercise).
//!
//! This step turns the roles around. The orchestrator in this crate is
//! **given and complete**; what you write is the **tests**, in `tests/`:
//!
//! * `tests/unit.rs`: the orchestration logic against [`FakeUpstreams`], an
//!   in-process fake, with tokio's clock paused, so timing is exact;
//! * `tests/integration.rs`: real HTTP against wiremock upstreams, in real
//!   time, with wide margins;
//! * `tests/contract.rs`: the response's JSON shape, as an insta snapshot.
//!
//! Then `cargo xtask verify step5` runs your tests against the correct
//! orchestrator (they must pass) and then once against each of seventeen
//! broken copies of it, the *mutants* (each must make at least one test
//! fail). It reports "caught k of n", and only for a mutant that slipped
//! through does it say what kind of test would catch it. Which bugs are
//! planted is not written anywhere you would read before that: test what
//! the orchestrator promises (its doc comments and the chapter), not a list.
//!
//! # What the orchestrator carries from earlier steps
//!
//! `GET /products/{id}` as step 1's concurrent fan-out, where a required
//! failure cancels the other calls; step 2's one deadline per request
//! (`budget`), a per-attempt timeout of `min(attempt_timeout, time left)`,
//! and bounded retries of retryable failures only, after a full-jitter
//! backoff that doubles up to a cap; and step 3's semaphore per upstream,
//! which sheds a call beyond `max_in_flight` with `Overloaded`. One thing
//! comes ahead of step 6: when only the optional reviews fail, the answer is
//! partial rather than an error.
//!
//! # What it leaves out, and why
//!
//! * Step 2's `margin` and `min_attempt`. The margin keeps time back for
//!   writing the response; this orchestrator writes none (the service around
//!   it, step 4, does), so an attempt may run to the deadline itself. In
//!   place of `min_attempt`, a retry is not waited for when no time would be
//!   left after its backoff; a retry that gets only a little time is still
//!   made. Fewer knobs keep every test's numbers easy to follow.
//! * Step 2's deadline *passed in* by the caller: [`Orchestrator::get_product`]
//!   sets its own [`Deadline`] from `budget` when it is called.
//! * Step 3's short wait for a permit and its admission of a whole page: a
//!   call that finds its upstream full is shed at once, and the page fails
//!   with it. No call ever waits for a permit, so no call holds one while
//!   waiting for another.
//! * Step 4's HTTP service, logs, spans and metrics: the orchestrator is
//!   tested as a library; [`Orchestrator::response_body`] stands for the
//!   body the service sends.
//! * Step 6's circuit breakers and hedged requests, which come next.
//!
//! # Layout
//!
//! * [`upstream`], [`product`], [`error`]: the types (given).
//! * [`client`]: the [`UpstreamClient`] trait and [`HttpClient`] (given).
//! * [`fake`]: [`FakeUpstreams`], scripted and counting (given).
//! * [`backoff`]: the [`Jitter`] trait and [`FullJitter`] (given).
//! * [`orchestrator`]: [`Orchestrator`], the code under test (given).
//!
//! Everything above is given and correct; the only file you write in is
//! `tests/`. One more file, `src/mutants.rs`, holds the broken copies the
//! runner plants. It opens with a spoiler warning: it is the answer key,
//! for after `verify` has said "caught n of n".

pub mod backoff;
pub mod client;
pub mod error;
pub mod fake;
mod mutants;
pub mod orchestrator;
pub mod product;
pub mod upstream;

pub use backoff::{FullJitter, Jitter};
pub use client::{HttpClient, UpstreamClient};
pub use error::{ConfigError, FetchError};
pub use fake::FakeUpstreams;
pub use mutants::MUTANT_ENV;
pub use orchestrator::{Config, Deadline, Orchestrator};
pub use product::{Inventory, Price, ProductResponse, ReviewStats};
pub use upstream::{Upstream, UpstreamUrls};
