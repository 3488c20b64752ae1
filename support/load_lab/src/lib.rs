//! The workbook's load lab: drive a server with a closed or open loop, measure latency
//! honestly, and report it as tables, plots and markdown.
//!
//! A lab looks like this:
//!
//! ```no_run
//! use std::time::Duration;
//! use load_lab::{Load, Plan, http_get, load_client, progress_bar, run};
//!
//! # async fn lab() {
//! let plan = Plan {
//!     load: Load::Closed { concurrency: 50 },
//!     warmup: Duration::from_secs(2),
//!     measure: Duration::from_secs(10),
//! };
//! let client = load_client(Duration::from_secs(2));
//! let progress = progress_bar(plan.total(), "async, c=50");
//! let send = http_get(client, "http://127.0.0.1:3000/products/1".to_owned());
//! let measurement = run(&plan, &progress, send).await;
//! println!("p99 = {:?}", measurement.percentile(99.0));
//! # }
//! ```
//!
//! # Layout
//!
//! - [`plan`]: what to run — a [`Load`] (closed loop at a concurrency, or open loop at a
//!   rate) and a [`Plan`] (warm-up, then a measured window).
//! - [`driver`]: [`run`] carries a plan out; one module per loop. Its documentation says
//!   exactly which requests count.
//! - [`measure`]: a [`Measurement`] — successes, errors by [`ErrorKind`], latency in an
//!   HdrHistogram (microseconds) — and the percentiles read from it.
//! - [`http`]: [`http_get`], a ready-made request, and [`load_client`], a client set up for
//!   load.
//! - [`report`]: text and markdown tables, SVG plots, a results folder, a markdown report.
//! - [`machine`]: which machine produced the numbers, and this process's memory.
//! - [`progress`]: a progress bar, so a long run does not look like a hang.
//!
//! # Honest numbers
//!
//! Build labs optimized (`cargo xtask lab` does): a debug build measures the debugger-friendly code, not the
//! design. Warm up before measuring. Prefer the open loop when judging latency: a closed loop
//! stops sending while the server stalls and so under-reports the tail (coordinated
//! omission). And report, never pass or fail on, absolute times: they belong to a machine.

pub mod driver;
pub mod http;
pub mod machine;
pub mod measure;
pub mod plan;
pub mod progress;
pub mod report;

pub use driver::run;
pub use http::{http_get, load_client};
pub use machine::{Machine, process_rss_bytes};
pub use measure::{ErrorKind, Measurement, RequestOutcome};
pub use plan::{Load, Plan};
pub use progress::progress_bar;
