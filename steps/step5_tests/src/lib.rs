//! Step 5 — tests that catch bugs (your exercise).
//!
//! This step turns the roles around. The orchestrator in this crate is
//! **given and complete**: the concurrent fan-out of `GET /products/{id}`
//! with a shared deadline, per-upstream shedding, retries for 5xx only, and
//! a partial answer when the optional reviews upstream fails. What you write
//! is the **tests**, in `tests/`:
//!
//! * `tests/unit.rs`: the orchestration logic against [`FakeUpstreams`], an
//!   in-process fake, with tokio's clock paused, so timing is exact;
//! * `tests/integration.rs`: real HTTP against wiremock upstreams, in real
//!   time, with wide margins;
//! * `tests/contract.rs`: the response's JSON shape, as an insta snapshot.
//!
//! Then `cargo xtask verify step5` runs your tests against the correct
//! orchestrator (they must pass) and against seven broken ones, the
//! [`Mutant`]s (each must make at least one test fail). It reports
//! "caught k of n".
//!
//! # Layout
//!
//! * [`upstream`], [`product`], [`error`]: the types (given).
//! * [`client`]: the [`UpstreamClient`] trait and [`HttpClient`] (given).
//! * [`fake`]: [`FakeUpstreams`], scripted and counting (given).
//! * [`orchestrator`]: [`Orchestrator`] (given, with the planted bugs marked).
//! * [`mutant`]: the catalogue of bugs and `WORKBOOK_MUTANT` (given).

pub mod client;
pub mod error;
pub mod fake;
pub mod mutant;
pub mod orchestrator;
pub mod product;
pub mod upstream;

pub use client::{HttpClient, UpstreamClient};
pub use error::{ConfigError, FetchError};
pub use fake::FakeUpstreams;
pub use mutant::{MUTANT_ENV, Mutant};
pub use orchestrator::{Config, Deadline, Orchestrator};
pub use product::{Inventory, Price, ProductResponse, ReviewStats};
pub use upstream::{Upstream, UpstreamUrls};
