//! The retry loop: bounded attempts, full-jitter backoff, one deadline.
//!
//! It knows nothing about HTTP. It takes an *operation* (a closure that
//! starts one attempt and returns its future) so the same loop drives real
//! upstream calls in [`fetch_with_retry`](crate::fetch_with_retry) and an
//! in-process fake in the tests, where tokio's paused clock makes every
//! instant exact.

use std::future::Future;

use rand::Rng;

use crate::deadline::Deadline;
use crate::error::FetchError;
use crate::policy::RetryPolicy;
use crate::upstream::Upstream;

/// Runs `operation` until it succeeds, fails in a way not worth retrying,
/// runs out of attempts, or would cross the deadline.
///
/// Each attempt gets [`RetryPolicy::timeout_for_attempt`] of what is left,
/// and one that runs out becomes [`FetchError::Timeout`] naming `upstream`.
/// Between attempts it sleeps [`RetryPolicy::backoff_delay`], drawn from
/// `rng`, but only if an attempt still fits after the sleep: it never sleeps
/// past the deadline.
///
/// # Errors
///
/// The first error that is not [retryable](FetchError::is_retryable); or the
/// last error when the attempts run out or the next one would not fit before
/// the deadline; or [`FetchError::Timeout`] if not even a first attempt fits.
///
/// # Cancel safety
///
/// Dropping the future drops the attempt in flight (cancelling its request)
/// or the sleep; no attempt starts after that.
pub async fn retry<T, F, Fut, R>(
    policy: &RetryPolicy,
    deadline: Deadline,
    upstream: Upstream,
    rng: &mut R,
    mut operation: F,
) -> Result<T, FetchError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, FetchError>>,
    R: Rng + ?Sized,
{
    // TODO: a loop, counting attempts from 1.
    // 1. Ask `policy.timeout_for_attempt(deadline.remaining())` how long this
    //    attempt may take. `None`: return `FetchError::Timeout { upstream }`.
    // 2. Run the attempt under that timeout: `tokio::time::timeout(timeout,
    //    operation()).await`. The outer `Err` (the timer won) becomes
    //    `FetchError::Timeout { upstream }`; `Ok(Ok(value))` is the answer.
    // 3. Return the error if it is not `is_retryable()`, or if this was the
    //    last attempt allowed (`policy.max_attempts()`).
    // 4. Draw the pause with `policy.backoff_delay(retry, rng)`, where
    //    `retry` is 0 before the second attempt, 1 before the third, ...
    // 5. If an attempt would no longer fit after that pause (ask
    //    `timeout_for_attempt` about `deadline.remaining()` minus the pause,
    //    with `saturating_sub`), return the error now, without sleeping.
    // 6. `tokio::time::sleep(pause).await`, and go round again.
    todo!("retry: attempt, classify, back off with jitter, never past the deadline")
}
