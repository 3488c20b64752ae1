//! Step 1's tests: what "done" means for the cost of blocking.
//!
//! The same tests run against your exercise (`cargo xtask verify step1`) and
//! against the reference solution (`cargo xtask verify step1 --solution`).
//!
//! The step comes in two parts, one module each, in the order to work
//! through them; `verify` shows how many tests of each part pass:
//!
//! 1. `fan_out`: the product page fetched three ways, blocking, sequential
//!    and concurrent, over real sockets (`fetch_json` and
//!    `fetch_json_blocking` in `src/fetch.rs`, the two async fan-outs in
//!    `src/fanout.rs`, `fetch_product_blocking` in `src/blocking.rs`), and
//!    CPU-heavy scoring kept off the runtime (`src/scoring.rs`);
//! 2. `future_by_hand`: the two `poll` methods of `src/polls.rs`, in-process.
//!
//! The parts share nothing, so each file holds its own helpers. A crate
//! root's `mod name;` looks for `tests/name.rs`, which cargo would build as a
//! test target of its own: the parts' files live in `tests/step1/` and are
//! named here with `#[path]`.

#[path = "step1/fan_out.rs"]
mod fan_out;

#[path = "step1/future_by_hand.rs"]
mod future_by_hand;
