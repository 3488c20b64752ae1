//! Step 3 — backpressure (your exercise).
//!
//! Step 1's async fan-out accepts every request and starts three upstream
//! calls for each, however many are already in flight. Under a spike that
//! overloads the upstreams, and an overloaded upstream gets slower, which
//! keeps even more calls in flight. This crate puts a limit in the way:
//!
//! * a **bulkhead**: a semaphore per upstream, so each one has at most
//!   `max_in_flight` of our calls in flight;
//! * **shedding**: a call that cannot get a permit within a short wait fails
//!   at once with [`FetchError::Overloaded`] instead of queueing without end;
//! * **page admission**: a product page takes one permit per upstream before
//!   it sends anything, always in the same order (inventory, pricing,
//!   reviews), so pages admitted at the same moment on different threads
//!   cannot deadlock;
//! * **bounded batches**: [`fetch_many`] keeps at most `concurrency` products
//!   in flight and returns one result per product, in order;
//! * a **worker pool**: a fixed number of workers fed by a bounded channel,
//!   the other way to cap work: a full queue makes producers wait
//!   ([`WorkerPool::submit`]) or sheds their job ([`WorkerPool::try_submit`]).
//!
//! Permits are RAII guards, so they come back on every path: success, error,
//! panic and cancellation.
//!
//! Read the chapter (`cargo xtask book`), then fill in every `todo!()`.
//! `cargo xtask verify step3` tells you how far you are, and
//! `cargo xtask hint step3` helps when you are stuck.
//!
//! # What this step leaves out
//!
//! Step 2's deadline, per-attempt timeouts and retries are not here: each
//! call is one request with no timeout of its own, so that a test about a
//! permit cannot be confused with a test about a timeout. The only clock in
//! this step is the bulkhead's `max_wait`. Step 4's service puts the two
//! together (retries inside one deadline, and whole-page admission that
//! never waits).
//!
//! # Layout
//!
//! * [`product`]: the upstream payloads and the merged [`Product`] (given).
//! * [`upstream`]: which upstream is which, and where they live (given).
//! * [`per_upstream`]: [`PerUpstream`], one value per upstream (given).
//! * [`error`]: [`FetchError`] (now with `Overloaded`) and [`ConfigError`] (given).
//! * [`fetch`]: one GET, decoded, every failure classified (given, from step 1).
//! * [`bulkhead`]: [`Bulkhead`], the per-upstream cap, shedding, and page admission (**TODO**).
//! * [`guarded`]: calls that hold a permit, and the guarded product fan-out (**TODO**).
//! * [`batch`]: [`fetch_many`], bounded fan-out for a batch of products (**TODO**).
//! * [`pool`]: [`WorkerPool`], workers fed by a bounded queue, with submit and shed (**TODO**).
//!
//! Given: this file, the crate's module list; the **TODO** marks above show
//! where your work is.

// Until every TODO is filled in, some parameters and imports are unused.
// Delete this line once you are done: the compiler's warnings will help then.
#![allow(unused_variables, unused_imports, dead_code)]

// GIVEN: modules_and_exports (given code, the same as in the reference solution)
pub mod batch;
pub mod bulkhead;
pub mod error;
pub mod fetch;
pub mod guarded;
pub mod per_upstream;
pub mod pool;
pub mod product;
pub mod upstream;

pub use batch::fetch_many;
pub use bulkhead::{Bulkhead, PagePermits};
pub use error::{ConfigError, FetchError};
pub use fetch::fetch_json;
pub use guarded::{fetch_json_guarded, fetch_product};
pub use per_upstream::PerUpstream;
pub use pool::{JobLost, SubmitError, Ticket, WorkerPool};
pub use product::{Inventory, Price, Product, ReviewStats};
pub use upstream::{Upstream, UpstreamUrls};
// GIVEN_END: modules_and_exports
