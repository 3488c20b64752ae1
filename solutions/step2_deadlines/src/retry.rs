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

// ANCHOR: retry
/// Runs `operation` until it succeeds, fails in a way not worth retrying,
/// runs out of attempts, or would cross the deadline.
///
/// The `deadline` is the caller's, and the only one: the loop makes none of
/// its own. Each attempt gets [`RetryPolicy::timeout_for_attempt`] of what
/// is left of it, and one that runs out becomes [`FetchError::Timeout`]
/// naming `upstream`. An attempt that would get no time is not started: with
/// a deadline that has passed, or is too close, `operation` is never called.
///
/// Before attempt *n* + 2 (retry *n*, counting from 0) it sleeps
/// [`RetryPolicy::backoff_delay`]`(n, rng)`, one draw per retry, but only
/// if an attempt still fits after the sleep: it never sleeps past the
/// deadline. Nothing is slept once the attempts are used up or an error is
/// not worth retrying: that error comes back as soon as its attempt ends.
///
/// # Errors
///
/// The first error that is not [retryable](FetchError::is_retryable); or the
/// last error when the attempts run out or the next one would not fit before
/// the deadline; or [`FetchError::Timeout`] if not even a first attempt fits.
///
/// # Cancel safety
///
/// Dropping the future drops the attempt in flight (cancelling its request,
/// though the upstream may already have acted on it) or the sleep; no
/// attempt starts after that.
///
/// # Send
///
/// The future is `Send` whenever `R`, the operation and its futures are, so
/// it can be spawned: it keeps nothing tied to one thread across an `.await`.
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
    let mut attempt: u32 = 1;
    // The error of the attempt before this one, if there was one.
    let mut last_error = None;
    loop {
        // Whatever happened before, this attempt gets what is *left*. With
        // too little left, a first attempt is a `Timeout`; a retry returns the
        // error already seen: the check before the pause said an attempt
        // would fit, but on a busy machine a pause can end a little late, and
        // that is no reason to hide a real 503 behind a `Timeout`.
        let Some(timeout) = policy.timeout_for_attempt(deadline.remaining()) else {
            return Err(last_error.unwrap_or(FetchError::Timeout { upstream }));
        };
        let error = match tokio::time::timeout(timeout, operation()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => error,
            // The timer won: the attempt's future is dropped here, which
            // cancels its request.
            Err(_elapsed) => FetchError::Timeout { upstream },
        };

        if !error.is_retryable() || attempt >= policy.max_attempts() {
            return Err(error);
        }

        // `attempt` is 1 after the first attempt, so this is retry 0.
        let delay = policy.backoff_delay(attempt - 1, rng);
        // Sleep only if an attempt still fits afterwards. Otherwise stop now,
        // with attempts left: the caller gets the real error at once instead
        // of a timeout later.
        let remaining_after_sleep = deadline.remaining().saturating_sub(delay);
        if policy.timeout_for_attempt(remaining_after_sleep).is_none() {
            return Err(error);
        }
        tokio::time::sleep(delay).await;
        last_error = Some(error);
        attempt += 1;
    }
}
// ANCHOR_END: retry
