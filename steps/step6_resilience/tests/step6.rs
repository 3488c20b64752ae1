//! Step 6's tests: what "done" means for degrade, don't collapse.
//!
//! The same tests run against your exercise (`cargo xtask verify step6`) and
//! against the reference solution (`cargo xtask verify step6 --solution`).
//!
//! The step comes in five parts, one module each, in the order to work
//! through them; `verify` shows how many tests of each part pass:
//!
//! 1. `breaker`: the circuit breaker (`src/breaker.rs`), and what counts as
//!    an upstream's failure (`verdict`; its tests are `breaker.rs`'s module
//!    `classification`, in `step6/classification.rs`);
//! 2. `hedge`: hedged requests (`src/hedge.rs`);
//! 3. `cancellation`: supervised calls that end when nobody wants them
//!    (`src/supervise.rs`, and the fan-out in `src/page.rs`);
//! 4. `page`: partial responses and the page's statuses (`src/product.rs`,
//!    `src/error.rs`, `src/page.rs`);
//! 5. `batching`: events in batches, a `select!` loop that must lose nothing
//!    (`src/batch.rs`).
//!
//! Two kinds of clock, on purpose. The breaker, hedge and batching tests
//! drive in-process fakes under *paused* time, so every instant is exact.
//! The tests that need a real request (cancellation, the page, the hedge's
//! losing attempt, and most of the breaker's classification) use fakes on
//! loopback in *real* time with wide margins: a paused clock would jump ahead while a request waits on a
//! socket. Each part's file says more.
//!
//! A crate root's `mod name;` looks for `tests/name.rs`, which cargo would
//! build as a test target of its own: the parts' files live in `tests/step6/`
//! and are named here with `#[path]`.

#[path = "step6/common.rs"]
mod common;

#[path = "step6/breaker.rs"]
mod breaker;

#[path = "step6/hedge.rs"]
mod hedge;

#[path = "step6/cancellation.rs"]
mod cancellation;

#[path = "step6/page.rs"]
mod page;

#[path = "step6/batching.rs"]
mod batching;
