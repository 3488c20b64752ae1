//! Step 6's tests: what "done" means for degrade, don't collapse.
//!
//! The same tests run against your exercise (`cargo xtask verify step6`) and
//! against the reference solution (`cargo xtask verify step6 --solution`).
//!
//! The step comes in eight parts, one module each, in the order to work
//! through them; `verify` shows how many tests of each part pass:
//!
//! 1. `classification`: what counts as an upstream's failure (`verdict` in
//!    `src/breaker.rs`; the breaker asks it about every outcome);
//! 2. `breaker`: the circuit breaker's state machine (`src/breaker.rs`);
//! 3. `hedge`: hedged requests (`src/hedge.rs`);
//! 4. `retries`: retries with deadlines of their own, within the budget
//!    the hedges share (`src/retry.rs`), composed with the breaker and the
//!    bulkhead by the given `ProductService`;
//! 5. `cancellation`: supervised calls that end when nobody wants them
//!    (`src/supervise.rs`, and the fan-out in `src/page.rs`);
//! 6. `page`: partial responses and the page's statuses (`src/product.rs`,
//!    `src/error.rs`, `src/page.rs`);
//! 7. `batching`: events in batches, a `select!` loop that must lose nothing
//!    (`src/batch.rs`);
//! 8. `service`: your page served over HTTP by the given edge
//!    (`src/edge/`): a disconnect cancels it, a full edge sheds, `/metrics`
//!    shows it.
//!
//! One more, compiled only with the cargo feature `otlp`: `otlp`, the spans
//! of your page sent to an OpenTelemetry collector by the given exporter
//! (`cargo test -p step6_resilience --features otlp --test step6 otlp`).
//!
//! Two kinds of clock, on purpose. The breaker, hedge and batching tests
//! drive in-process fakes under *paused* time, so every instant is exact.
//! The tests that need a real request (cancellation, the page, the hedge's
//! losing attempt, and most of the classification tests) use fakes on
//! loopback in *real* time with wide margins: a paused clock would jump ahead while a request waits on a
//! socket. Each part's file says more.
//!
//! A crate root's `mod name;` looks for `tests/name.rs`, which cargo would
//! build as a test target of its own: the parts' files live in `tests/step6/`
//! and are named here with `#[path]`.

#[path = "step6/common.rs"]
mod common;

#[path = "step6/capture.rs"]
mod capture;

#[path = "step6/classification.rs"]
mod classification;

#[path = "step6/breaker.rs"]
mod breaker;

#[path = "step6/hedge.rs"]
mod hedge;

#[path = "step6/retries.rs"]
mod retries;

#[path = "step6/cancellation.rs"]
mod cancellation;

#[path = "step6/page.rs"]
mod page;

#[path = "step6/batching.rs"]
mod batching;

#[path = "step6/service.rs"]
mod service;

#[cfg(feature = "otlp")]
#[path = "step6/otlp.rs"]
mod otlp;
