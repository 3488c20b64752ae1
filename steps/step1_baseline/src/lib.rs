//! Step 1 — the cost of blocking (your exercise).
//!
//! A product page needs three answers: how many are in stock (inventory), what it
//! costs (pricing) and what people think of it (reviews). You will fetch them
//! three ways, and the tests and the lab will compare them:
//!
//! * on plain OS threads with a blocking client, one call after another;
//! * as async code, still one call after another;
//! * as async code, all three at once.
//!
//! You will also keep CPU-heavy work from freezing the runtime, and write two
//! small futures by hand to see what `.await` and `try_join!` do underneath.
//!
//! Read the chapter (`cargo xtask book`), then fill in every `todo!()`.
//! `cargo xtask verify step1` tells you how far you are, and
//! `cargo xtask hint step1` helps when you are stuck.
//!
//! # Layout
//!
//! * [`product`]: the upstream payloads and the merged [`Product`] (given).
//! * [`upstream`]: which upstream is which, and where they live (given).
//! * [`error`]: [`FetchError`], a typed error that names the failing upstream (given).
//! * [`fetch`]: one GET, decoded, with every failure classified (**TODO**).
//! * [`blocking`]: the thread-per-request baseline (**TODO**).
//! * [`fanout`]: sequential and concurrent async fan-out (**TODO**).
//! * [`scoring`]: CPU-heavy work, kept off the runtime (**TODO**).
//! * [`polls`]: a future by hand, counting the polls of another, and one that yields (**TODO**).

// Until every TODO is filled in, some parameters, imports and fields are
// unused. Delete this line once you are done: the compiler's warnings will
// help then.
#![allow(unused_variables, unused_imports, dead_code)]

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
