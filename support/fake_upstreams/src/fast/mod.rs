//! The fast fake upstream: an axum server for labs and behaviour tests.
//!
//! wiremock is the right tool to arrange one exact situation in a test, and
//! the wrong one for load: it serves every connection from a single thread and
//! records every request, so under 500 concurrent requests it measures itself.
//! [`FastUpstream`] is a plain axum server that does neither. It serves all
//! three services' bodies on one port, with a configurable [`Behaviour`]:
//! latency drawn from a distribution ([`Latency`]), a share of failures, hangs,
//! garbage bodies, bodies sent well after their headers. It counts what it saw ([`CounterSnapshot`]), including
//! requests whose client went away mid-flight (*cancelled*), which is how step 6
//! proves that cancellation reaches the upstream.
//!
//! It runs on the *current* tokio runtime. A test that starts it inside
//! `#[tokio::test(start_paused = true)]` gets its latency in paused time too:
//! the fake's `sleep` and the test's clock are the same clock.
//!
//! # Layout
//!
//! - `latency`: the [`Latency`] distributions and how one delay is sampled.
//! - `latency_spec`: the text form (`"fixed:50ms"`, `"uniform:20ms..80ms"`, ...)
//!   read by the `fake-upstream` binary's `--latency`, and its errors.
//! - `behaviour`: [`Behaviour`], and the plan it makes for one request.
//! - `counters`: the atomic counters, their [`CounterSnapshot`], and the drop
//!   guard that counts cancelled requests.
//! - `routes`: the axum router and the one handler behind all three services.
//! - `server`: [`FastUpstream`]: binding with a large listen backlog, serving,
//!   and stopping on drop.

mod behaviour;
mod counters;
mod latency;
mod latency_spec;
mod routes;
mod server;

pub use behaviour::{Behaviour, Degradation};
pub use counters::CounterSnapshot;
pub use latency::Latency;
pub use latency_spec::ParseLatencyError;
pub use server::{FastUpstream, LISTEN_BACKLOG};
