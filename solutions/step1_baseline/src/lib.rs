//! Step 1 — the cost of blocking (reference solution).
//!
//! A product page needs three answers: how many are in stock (inventory), what it
//! costs (pricing) and what people think of it (reviews). This crate fetches them
//! three ways and lets the tests and the lab compare them:
//!
//! * on plain OS threads with a blocking client, one call after another;
//! * as async code, still one call after another;
//! * as async code, all three at once.
//!
//! It also shows the one rule async code must never break: CPU-heavy work does
//! not run on the runtime's threads; and, with two small futures written by
//! hand, what `.await` and `try_join!` do underneath.
//!
//! # Layout
//!
//! * [`product`]: the upstream payloads and the merged [`Product`] (given).
//! * [`upstream`]: which upstream is which, and where they live (given).
//! * [`error`]: [`FetchError`], a typed error that names the failing upstream (given).
//! * [`fetch`]: one GET, decoded, with every failure classified.
//! * [`blocking`]: the thread-per-request baseline.
//! * [`fanout`]: sequential and concurrent async fan-out.
//! * [`scoring`]: CPU-heavy work, kept off the runtime.
//! * [`polls`]: a future by hand, counting the polls of another, and one that yields.

// GIVEN: modules_and_exports (given code, the same as in the reference solution)
pub mod blocking;
pub mod error;
pub mod fanout;
pub mod fetch;
pub mod polls;
pub mod product;
pub mod scoring;
pub mod upstream;

pub use blocking::fetch_product_blocking;
pub use error::FetchError;
pub use fanout::{fetch_product_concurrent, fetch_product_sequential};
pub use polls::{PollCounter, PollStats, PollTotals, YieldNow, count_polls, yield_now};
pub use product::{Inventory, Price, Product, ReviewStats};
pub use scoring::{ReviewScore, score_reviews, score_reviews_off_runtime};
pub use upstream::{Upstream, UpstreamUrls};
// GIVEN_END: modules_and_exports
