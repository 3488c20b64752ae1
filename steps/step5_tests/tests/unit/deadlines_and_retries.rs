//! Part `deadlines_and_retries` of the unit tests: yours to write.
//!
//! Given: the helpers of `tests/unit.rs` (`within_time_limit`,
//! `roomy_config`, `orchestrator`) and its imports, all in reach through
//! `use super::*`. Yours: the body of every test, in place of its `todo!()`.
//!
//! One request in time: its three calls overlap, its deadline and each
//! attempt's timeout end it exactly when they should, and a failure is
//! retried only when asking again can help, after a backoff whose length the
//! test holds in its hand (the jitter source). The paused clock makes every
//! duration here exact.

use super::*;

/// The three upstreams are called at the same time: the request takes as long
/// as its slowest call, not the sum of the three.
#[tokio::test(start_paused = true)]
async fn the_three_upstreams_are_called_concurrently() {
    todo!("write this test: the three upstreams are called concurrently")
}

/// A stalled required upstream fails the request with `Timeout` exactly at
/// the budget: retries included, no request outlives its deadline.
#[tokio::test(start_paused = true)]
async fn a_stalled_upstream_times_out_exactly_at_the_budget() {
    todo!("write this test: a stalled upstream times out exactly at the budget")
}

/// A stalled attempt is abandoned at `attempt_timeout` and retried, so one
/// slow attempt does not eat the whole budget.
#[tokio::test(start_paused = true)]
async fn a_stalled_attempt_is_abandoned_and_retried() {
    todo!("write this test: a stalled attempt is abandoned and retried")
}

/// A 503 is retried, and the request succeeds once the upstream recovers.
#[tokio::test(start_paused = true)]
async fn a_server_error_is_retried_until_the_upstream_recovers() {
    todo!("write this test: a server error is retried until the upstream recovers")
}

/// The backoff before each retry is at most `base_delay`, doubled each
/// retry, capped at `max_delay`.
#[tokio::test(start_paused = true)]
async fn the_backoff_doubles_up_to_its_cap() {
    todo!("write this test: the backoff doubles up to its cap")
}

/// Each backoff is the jitter source's pick: no fixed delay hides in the
/// orchestrator.
#[tokio::test(start_paused = true)]
async fn the_backoff_is_drawn_from_the_jitter_source() {
    todo!("write this test: the backoff is drawn from the jitter source")
}

/// When no attempt could start after the next backoff, the request does not
/// sleep past its deadline: it returns the real error at once.
#[tokio::test(start_paused = true)]
async fn no_backoff_is_slept_when_no_attempt_could_follow_it() {
    todo!("write this test: no backoff is slept when no attempt could follow it")
}

/// A 404 is the answer, not a glitch: it is returned after exactly one call.
#[tokio::test(start_paused = true)]
async fn a_client_error_is_not_retried() {
    todo!("write this test: a client error is not retried")
}

/// When a required upstream keeps failing, the request fails and names it,
/// after `max_attempts` attempts.
#[tokio::test(start_paused = true)]
async fn a_failing_required_upstream_fails_the_request() {
    todo!("write this test: a failing required upstream fails the request")
}
