//! Step 3's tests: what "done" means for backpressure.
//!
//! The same tests run against your exercise (`cargo xtask verify step3`) and
//! against the reference solution (`cargo xtask verify step3 --solution`).
//!
//! The step comes in three parts, one module each, in the order to work
//! through them; `verify` shows how many tests of each part pass:
//!
//! 1. `bulkhead`: one compartment per upstream, a bounded wait for a permit,
//!    and a page's three permits taken without deadlock (`Bulkhead::new`,
//!    `acquire` and `admit_page` in `src/bulkhead.rs`), tested on the
//!    bulkhead alone, with no upstream;
//! 2. `guarded_calls`: calls that hold their permits, against fake upstreams
//!    that count what they see (`fetch_json_guarded` and `fetch_product` in
//!    `src/guarded.rs`, `fetch_many` in `src/batch.rs`);
//! 3. `worker_pool`: the other shape of backpressure, workers fed by a
//!    bounded queue (`WorkerPool` in `src/pool.rs`).
//!
//! Threads: `#[tokio::test]` runs each test on one thread, where tasks take
//! turns, one poll at a time. That hides every bug that needs two tasks to
//! act at the same moment, such as two pages each taking one permit and then
//! waiting for the other's. The tests about deadlock and isolation therefore
//! run on four worker threads (`flavor = "multi_thread"`), under load.
//!
//! What the first two parts share is below. A crate root's `mod name;` looks
//! for `tests/name.rs`, which cargo would build as a test target of its own:
//! the parts' files live in `tests/step3/` and are named here with `#[path]`.

use std::time::Duration;

use step3_backpressure::{Bulkhead, Upstream};

/// A wait for a permit long enough that nothing is shed in tests that are
/// not about shedding.
const NO_SHEDDING: Duration = Duration::from_secs(30);

/// A bulkhead the test's own configuration is known to be valid for.
fn bulkhead(max_in_flight: usize, max_wait: Duration) -> Bulkhead {
    Bulkhead::new(max_in_flight, max_wait).expect("a non-zero cap is a valid configuration")
}

/// Every upstream's free permits, to compare against the cap.
fn free_permits(bulkhead: &Bulkhead) -> [usize; 3] {
    [Upstream::Inventory, Upstream::Pricing, Upstream::Reviews]
        .map(|upstream| bulkhead.available_permits(upstream))
}

#[path = "step3/bulkhead.rs"]
mod bulkhead;

#[path = "step3/guarded_calls.rs"]
mod guarded_calls;

#[path = "step3/worker_pool.rs"]
mod worker_pool;
