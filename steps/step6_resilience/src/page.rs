//! The product page: fan out, degrade what is optional, cancel what is unwanted.
//!
//! Each section is fetched by its own spawned task ([`spawn_call`]), so the
//! three calls run in parallel on every worker thread, and each is owned: it
//! ends when the page no longer needs it. That happens in three ways, and in
//! each the in-flight upstream requests are dropped, not left to finish:
//!
//! * a **required** section fails: the page returns its error at once and
//!   drops the other sections' `OwnedCall`s, aborting their tasks;
//! * the **caller** drops this future (the client went away, an outer
//!   timeout fired): the `OwnedCall`s are dropped with it;
//! * the **token** is cancelled (shutdown): every task's work is dropped and
//!   the page fails with [`FetchError::Cancelled`].
//!
//! The deadline bounds every call (see [`fetch_json`](crate::fetch::fetch_json)).
//!
//! Yours to write: [`fetch_product_page`]. Given: `spawn_section`, one spawned
//! call per section.

use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::deadline::Deadline;
use crate::error::FetchError;
use crate::product::{Inventory, Price, ProductPage, ReviewStats};
use crate::service::ProductService;
use crate::supervise::{OwnedCall, spawn_call};
use crate::upstream::Upstream;

/// Fetches the product page: inventory and pricing are required, reviews are
/// optional (missing reviews make a degraded page, not an error).
///
/// The three sections are fetched at the same time, each in its own spawned
/// task (`spawn_section`, below). A failed required section fails the page at
/// once, without waiting for the others, and the others are dropped (so
/// their requests are cancelled). A failed reviews section only degrades the
/// page.
///
/// # Errors
///
/// The first error of a required section (see [`FetchError::http_status`]
/// for the status it maps to), or [`FetchError::Cancelled`] if `cancel` fired.
///
/// # Cancel safety
///
/// Dropping the future aborts the three spawned calls and so drops their
/// upstream requests.
pub async fn fetch_product_page(
    service: &ProductService,
    product_id: u64,
    deadline: Deadline,
    cancel: &CancellationToken,
) -> Result<ProductPage, FetchError> {
    // TODO: as documented above, with the given `spawn_section` for each
    // section. The three sections must be in flight at the same time, a
    // failed required section must end the page at once, and a failed
    // optional one must not end it at all.
    todo!("fetch_product_page: spawned sections, required ones fail the page, reviews degrade it")
}

// GIVEN: spawn_section (given code, the same as in the reference solution)
/// Spawns the fetch of one section as an [`OwnedCall`] (given): the task
/// owns a clone of the service, so it can outlive this stack frame, but not
/// its owner.
fn spawn_section<T: DeserializeOwned + Send + 'static>(
    service: &ProductService,
    cancel: &CancellationToken,
    upstream: Upstream,
    product_id: u64,
    deadline: Deadline,
) -> OwnedCall<T> {
    let service = service.clone();
    let call = async move { service.fetch(upstream, product_id, deadline).await };
    // A spawned task starts with no span: it would not be inside the edge's
    // request span, so its calls' spans and log lines would lose the
    // request id. `in_current_span` carries the caller's span into the task.
    spawn_call(cancel, upstream, tracing::Instrument::in_current_span(call))
}
// GIVEN_END: spawn_section
