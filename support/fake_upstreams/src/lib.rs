//! Fake `inventory`, `pricing` and `reviews` services for the workbook.
//!
//! Every step's product endpoint fans out to these three upstreams. This crate
//! plays them, in two shapes, because tests and labs need different things:
//!
//! - **Tests** want to *arrange* one exact situation ("pricing answers 503 twice,
//!   then 200") and have the fake complain loudly about anything unexpected.
//!   That is [`wiremock`]'s job: [`mock::MockUpstreams`].
//! - **Labs** want thousands of requests per second with realistic latency
//!   distributions and counters of what the upstream saw (peak in-flight,
//!   cancelled requests). wiremock serves every connection from one thread and
//!   records every request, so it would measure itself. That is the job of a
//!   small axum server: [`fast::FastUpstream`].
//!
//! Both serve the same bodies, defined once in [`catalog`], so a product looks
//! the same whichever fake answered.
//!
//! # Layout
//!
//! - [`catalog`]: the three services, their URL paths and their deterministic
//!   JSON bodies. The single source of truth the other two modules serve.
//! - [`mock`]: wiremock fixtures for the steps' tests: healthy, slow, failing,
//!   flaky and garbage upstreams, plus a loud catch-all for unmatched requests.
//!   Behind the feature `mock` (on by default; the workspace turns it off, and
//!   the tests ask for it), so that a lab's optimized build skips wiremock.
//! - [`fast`]: the fast in-process axum fake for labs and behaviour tests:
//!   latency distributions, injected failures, hangs, late bodies, and
//!   request counters.
//! - [`testing`]: what the steps' tests share besides the fakes: a time limit,
//!   a loopback client, waiting for a condition, a URL nothing listens on.
//!
//! The `fake-upstream` binary (`src/main.rs`) runs [`fast::FastUpstream`] on its
//! own, so a lab or a curious learner can point any client at it.

pub mod catalog;
pub mod fast;
#[cfg(feature = "mock")]
pub mod mock;
pub mod testing;

pub use catalog::Service;
