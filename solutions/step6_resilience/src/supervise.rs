//! Spawned work with an owner: it ends when it is cancelled or unwanted.
//!
//! In Rust, dropping a future is how you cancel it. That works for free as
//! long as the work *is* the future you hold. Spawned tasks break the chain:
//! dropping a `tokio::task::JoinHandle` only detaches the task, which runs on
//! and keeps its upstream request open, long after anyone wants the answer.
//!
//! [`OwnedCall`] restores the chain in both directions:
//!
//! * **downwards**: the task runs its work under a `CancellationToken`
//!   (`tokio_util`), so cancelling the token ends the work, and with it the
//!   request (a server cancels its token on shutdown or when the client
//!   disconnects);
//! * **from the owner**: the handle is an `AbortOnDropHandle`, so dropping
//!   the `OwnedCall` (the caller gave up, a sibling failed) aborts the task.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::error::FetchError;
use crate::upstream::Upstream;

// GIVEN: owned_call (given code, the same as in the reference solution)
/// A spawned upstream call, owned by whoever holds this value: awaiting it
/// gives the call's result, dropping it aborts the task.
///
/// A panic in the call is a bug, not a cancellation: awaiting the
/// `OwnedCall` panics again with the same payload, in the owner's task.
#[derive(Debug)]
#[must_use = "dropping an OwnedCall aborts its task"]
pub struct OwnedCall<T> {
    upstream: Upstream,
    /// `None` from the task means its token was cancelled first.
    handle: AbortOnDropHandle<Option<Result<T, FetchError>>>,
}
// GIVEN_END: owned_call

// ANCHOR: spawn_call
/// Spawns `call` as its own task, which stops early if `cancel` is cancelled
/// and is aborted if the returned [`OwnedCall`] is dropped.
///
/// Must be called inside a tokio runtime.
pub fn spawn_call<T: Send + 'static>(
    cancel: &CancellationToken,
    upstream: Upstream,
    call: impl Future<Output = Result<T, FetchError>> + Send + 'static,
) -> OwnedCall<T> {
    // A child token: cancelling the parent cancels this call, but nothing
    // this call does can cancel its siblings or its parent.
    let token = cancel.child_token();
    let task = tokio::spawn(async move { token.run_until_cancelled(call).await });
    OwnedCall {
        upstream,
        handle: AbortOnDropHandle::new(task),
    }
}
// ANCHOR_END: spawn_call

// GIVEN: owned_call_future (given code, the same as in the reference solution)
impl<T> Future for OwnedCall<T> {
    type Output = Result<T, FetchError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let upstream = self.upstream;
        // `AbortOnDropHandle` is `Unpin`, so it can be polled through `&mut`.
        Pin::new(&mut self.handle)
            .poll(cx)
            .map(|joined| match joined {
                Ok(Some(result)) => result,
                // The token fired before the call finished.
                Ok(None) => Err(FetchError::Cancelled { upstream }),
                // A panic in the call is a bug: pass it on rather than hide it.
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                // Aborted from elsewhere (the runtime is shutting down).
                Err(_) => Err(FetchError::Cancelled { upstream }),
            })
    }
}
// GIVEN_END: owned_call_future
