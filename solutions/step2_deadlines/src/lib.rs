//! Step 2 — deadlines and jittered retries (reference solution).
//!
//! Step 1's fan-out takes as long as its slowest upstream, and nothing stops
//! that upstream from taking a second, or forever. This crate gives every
//! request a deadline and every upstream call a share of it, and retries what
//! is worth retrying:
//!
//! * one [`Deadline`], set at the edge and passed down, so budgets only shrink;
//! * a timeout per attempt: the smaller of its own limit and what is left of
//!   the deadline, minus a margin for the answer;
//! * timeouts, statuses, transport and decode failures as distinct
//!   [`FetchError`] variants, and one exhaustive `match` deciding which to retry;
//! * bounded retries with exponential backoff and full jitter, which never
//!   sleep past the deadline.
//!
//! # Layout
//!
//! * [`product`]: the upstream payloads and the merged [`Product`] (given).
//! * [`upstream`]: which upstream is which, and where they live (given).
//! * [`deadline`]: [`Deadline`], the instant a request must be answered by (given).
//! * [`error`]: [`FetchError`] and which of its variants are worth retrying.
//! * [`policy`]: [`RetryPolicy`]: checked configuration, attempt timeouts, backoff.
//! * [`retry`](mod@retry): the retry loop, generic over the operation it retries.
//! * [`fetch`]: one GET ([`fetch_json`], given) and one GET with retries.
//! * [`fanout`]: the product page, three upstreams under one deadline.

// GIVEN: modules_and_exports (given code, the same as in the reference solution)
pub mod deadline;
pub mod error;
pub mod fanout;
pub mod fetch;
pub mod policy;
pub mod product;
pub mod retry;
pub mod upstream;

pub use deadline::Deadline;
pub use error::FetchError;
pub use fanout::fetch_product;
pub use fetch::{fetch_json, fetch_with_retry};
pub use policy::{ConfigError, RetryConfig, RetryPolicy};
pub use product::{Inventory, Price, Product, ReviewStats};
pub use retry::retry;
pub use upstream::{Upstream, UpstreamUrls};
// GIVEN_END: modules_and_exports
