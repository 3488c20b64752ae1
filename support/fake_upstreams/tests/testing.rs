//! The shared test helpers (`fake_upstreams::testing`) do what the steps'
//! tests rely on: the time limit fails a hung test and names it, the wait
//! returns as soon as its condition holds and gives up at its limit, and the
//! closed port refuses connections.
//!
//! The timing tests pause tokio's clock: nothing in them waits on a socket,
//! so every instant is exact and the limits cost no real time.

use std::time::Duration;

use fake_upstreams::testing::{
    TEST_TIME_LIMIT, closed_port_url, loopback_client, wait_until, within_time_limit,
};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_test_that_finishes_in_time_gives_its_output() {
    let output = within_time_limit(async {
        tokio::time::sleep(TEST_TIME_LIMIT / 2).await;
        "done"
    })
    .await;

    assert_eq!(output, "done");
}

#[tokio::test(start_paused = true)]
async fn a_test_that_outlives_the_limit_fails_naming_its_promise() {
    // The helper under test is the time limit; this outer one, twice as long,
    // only keeps this test itself from hanging if the helper never fires.
    tokio::time::timeout(2 * TEST_TIME_LIMIT, async {
        // Spawned, so its panic comes back as an error to read. On this
        // current-thread runtime the task runs on the test's own thread, the
        // one libtest named after the test.
        let hung = tokio::spawn(within_time_limit(std::future::pending::<()>()));

        let error = hung.await.expect_err("a test that never ends must fail");
        let panic = error.into_panic();
        let message = panic
            .downcast_ref::<String>()
            .expect("the failure has a formatted message");
        assert!(
            message
                .contains("the test \"a test that outlives the limit fails naming its promise\"")
                && message.contains(&format!("{TEST_TIME_LIMIT:?}")),
            "the message should name the test's promise and the limit, got: {message}"
        );
    })
    .await
    .expect("the helper's time limit fires before this test's own");
}

#[tokio::test(start_paused = true)]
async fn waiting_ends_soon_after_the_condition_holds() {
    within_time_limit(async {
        let holds_from = Instant::now() + Duration::from_millis(200);
        let started = Instant::now();

        let waited = wait_until(Duration::from_secs(5), || Instant::now() >= holds_from).await;

        assert!(
            waited.is_ok(),
            "the condition held after 200 ms: {waited:?}"
        );
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(250),
            "the wait should end one poll after the condition starts to hold, took {elapsed:?}"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn waiting_gives_up_at_its_limit_and_says_how_long_it_waited() {
    within_time_limit(async {
        let limit = Duration::from_secs(2);
        let started = Instant::now();

        let waited = wait_until(limit, || false).await;

        let elapsed = started.elapsed();
        let error = waited.expect_err("a condition that never holds");
        assert_eq!(error.waited, limit);
        assert_eq!(error.to_string(), "still not so after 2s");
        assert!(
            elapsed >= limit && elapsed < limit + Duration::from_millis(50),
            "the wait should give up right at its limit, took {elapsed:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_request_to_the_closed_port_is_refused() {
    within_time_limit(async {
        let result = loopback_client().get(closed_port_url()).send().await;

        assert!(
            matches!(&result, Err(error) if error.is_connect()),
            "nothing listens on the closed port, so the connection must be refused: {result:?}"
        );
    })
    .await;
}
