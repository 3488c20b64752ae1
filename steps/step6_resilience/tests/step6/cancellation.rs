//! Part "supervised calls": `spawn_call` in `src/supervise.rs`, and the
//! fan-out of `fetch_product_page` in `src/page.rs` that owns the calls.
//!
//! These tests use three `FastUpstream` fakes on loopback in *real* time with
//! wide margins: a paused clock would jump ahead while a request waits on a
//! socket, and every deadline would fire at once. The fakes count requests
//! dropped by their client (`cancelled`), which is how these tests see
//! cancellation from the upstream's side. None of them sleeps a fixed time
//! and then looks: each polls for its condition (all requests in flight,
//! every request cancelled, the task count back at its baseline) and fails
//! if it does not hold within a wide limit.
//!
//! `#[tokio::test]` runs everything on one thread. The claim that nothing
//! outlives its page is therefore also tested on a four-thread runtime, with
//! many pages at once.

use std::time::Duration;

use fake_upstreams::fast::{Behaviour, FastUpstream};
use step6_resilience::{
    Deadline, FetchError, OwnedCall, Resilience, Upstream, fetch_product_page, spawn_call,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use fake_upstreams::testing::{wait_until, within_time_limit};

use crate::common::{
    Fakes, FakesOnTheirOwnRuntime, NOTICE_LIMIT, PRODUCT_ID, failing_503, hanging, ms,
};

/// How long the fakes get to receive a page's requests. Loopback connects
/// take a millisecond or two; the margin is for a loaded machine, and a page
/// that fetches its sections one after another never gets there at all.
const IN_FLIGHT_LIMIT: Duration = Duration::from_secs(5);

/// Every section runs in a task of its own: polled once and then left alone, the page still gets all three requests out.
#[tokio::test]
async fn every_section_runs_in_its_own_task_without_the_page_being_polled() {
    within_time_limit(async {
        // Arrange: fakes that never answer, served on threads of their own.
        let fakes = FakesOnTheirOwnRuntime::start(hanging(), hanging(), hanging()).await;
        let service = fakes.service(Resilience::off());
        let cancel = CancellationToken::new();
        let page = fetch_product_page(
            &service,
            PRODUCT_ID,
            Deadline::after(Duration::from_secs(10)),
            &cancel,
        );
        tokio::pin!(page);

        // Act: poll the page once, so it can start its sections, then stop.
        let first_poll = futures::poll!(page.as_mut());
        let in_flight = wait_until(IN_FLIGHT_LIMIT, || fakes.all_have_in_flight(1)).await;

        // Assert
        assert!(first_poll.is_pending(), "the fakes never answer");
        assert!(
            in_flight.is_ok(),
            "all three requests must arrive while nobody polls the page: each section runs in a spawned task of its own, not inside the page future"
        );
    })
    .await;
}

/// A failing required section ends the page at once, whichever of the two it is; the other sections' requests are cancelled.
#[tokio::test]
async fn a_failing_required_section_ends_the_page_at_once_and_cancels_the_others() {
    within_time_limit(async {
        // Each required section fails in turn, after 500 ms (time for the
        // others' requests to arrive), while the other two never answer: a
        // page that waits for its sections one after another, in either
        // order, waits for a hanging one in one of the two runs.
        let failing = || Behaviour::fixed(ms(500)).failing(1.0, 503);
        for failing_section in [Upstream::Pricing, Upstream::Inventory] {
            let fakes = match failing_section {
                Upstream::Pricing => Fakes::start(hanging(), failing(), hanging()).await,
                _ => Fakes::start(failing(), hanging(), hanging()).await,
            };
            let failed = match failing_section {
                Upstream::Pricing => &fakes.pricing,
                _ => &fakes.inventory,
            };
            let service = fakes.service(Resilience::off());
            let budget = Duration::from_secs(6);

            let started = Instant::now();
            let page = fetch_product_page(
                &service,
                PRODUCT_ID,
                Deadline::after(budget),
                &CancellationToken::new(),
            )
            .await;
            let elapsed = started.elapsed();
            let others_cancelled = wait_until(NOTICE_LIMIT, || {
                fakes
                    .all()
                    .iter()
                    .filter(|fake| !std::ptr::eq(**fake, failed))
                    .all(|fake| {
                        let counters = fake.counters();
                        counters.requests == 1 && counters.cancelled == 1
                    })
            })
            .await;

            let error = page.expect_err("a required section failed");
            assert!(
                matches!(
                    error,
                    FetchError::Status { upstream, status: 503 } if upstream == failing_section
                ),
                "the page must fail with {failing_section}'s error, got {error:?}"
            );
            assert!(
                elapsed < budget / 2,
                "the page must fail as soon as {failing_section} fails (500 ms), not wait for the hanging sections until the {budget:?} deadline; took {elapsed:?}"
            );
            assert!(
                others_cancelled.is_ok(),
                "once {failing_section} has failed the page, the other two requests must be cancelled; counters: {:?}",
                fakes.all().map(FastUpstream::counters)
            );
        }
    })
    .await;
}

/// A section that ends, with a failure or not, cancels neither its siblings nor the token the caller passed in: only the caller cancels that.
#[tokio::test]
async fn a_section_that_ends_cancels_neither_its_siblings_nor_the_callers_token() {
    within_time_limit(async {
        // Arrange: reviews fail at once (10 ms); inventory and pricing
        // answer well after that (300 ms), both healthy.
        let slower = || Behaviour::fixed(ms(300));
        let fakes = Fakes::start(slower(), slower(), failing_503()).await;
        let service = fakes.service(Resilience::off());
        let cancel = CancellationToken::new();

        // Act
        let page = fetch_product_page(
            &service,
            PRODUCT_ID,
            Deadline::after(Duration::from_secs(6)),
            &cancel,
        )
        .await;

        // Assert
        let cancelled_by_a_section = cancel.is_cancelled();
        let page = page.expect(
            "reviews are optional, and inventory and pricing answer: the page must be served (a section that ends must not cancel the token its siblings share)",
        );
        assert_eq!(page.degraded, [Upstream::Reviews]);
        assert!(
            !cancelled_by_a_section,
            "the caller's token was cancelled by the page: a section's task may observe the token, never cancel it (it is the caller's, and its siblings share it)"
        );
        assert_eq!(
            fakes.all().map(|fake| fake.counters().cancelled),
            [0, 0, 0],
            "no request was cancelled: every section ran to its answer"
        );

        // And a page that fails (pricing answers 503 at once) ends its other
        // sections by dropping them, not by cancelling the caller's token.
        let failing_pricing = Fakes::start(slower(), failing_503(), slower()).await;
        let failed_page = fetch_product_page(
            &failing_pricing.service(Resilience::off()),
            PRODUCT_ID,
            Deadline::after(Duration::from_secs(6)),
            &cancel,
        )
        .await;
        assert!(
            matches!(failed_page, Err(FetchError::Status { .. })),
            "pricing answered 503, got {failed_page:?}"
        );
        assert!(
            !cancel.is_cancelled(),
            "a failed page cancelled the caller's token: the other sections end when their `OwnedCall`s are dropped, and the token stays the caller's to cancel"
        );
    })
    .await;
}

/// Dropping the page future drops every in-flight upstream request; each fake sees it cancelled.
#[tokio::test]
async fn dropping_the_page_future_cancels_every_in_flight_upstream_call() {
    within_time_limit(async {
        let fakes = Fakes::start(hanging(), hanging(), hanging()).await;
        let service = fakes.service(Resilience::off());
        let cancel = CancellationToken::new();
        let deadline = Deadline::after(Duration::from_secs(10));

        // The caller gives up once all three requests are in flight: leaving
        // the `select!` drops the page future.
        let page = fetch_product_page(&service, PRODUCT_ID, deadline, &cancel);
        let in_flight = async {
            tokio::pin!(page);
            tokio::select! {
                result = &mut page => panic!("the upstreams hang, yet the page answered {result:?}"),
                seen = wait_until(IN_FLIGHT_LIMIT, || fakes.all_have_in_flight(1)) => seen,
            }
        }
        .await;
        let noticed = wait_until(NOTICE_LIMIT, || fakes.all_cancelled(1)).await;

        assert!(
            in_flight.is_ok(),
            "all three upstream requests should be in flight at once before the caller gives up; counters: {:?}",
            fakes.all().map(FastUpstream::counters)
        );
        assert!(
            noticed.is_ok(),
            "after the page future is dropped every upstream must see its request cancelled within {NOTICE_LIMIT:?}; counters: {:?}",
            fakes.all().map(FastUpstream::counters)
        );
    })
    .await;
}

/// Cancelling the token ends the page with Cancelled (status 499) and drops every upstream request.
#[tokio::test]
async fn cancelling_the_token_ends_the_page_and_drops_every_call() {
    within_time_limit(async {
        let fakes = Fakes::start(hanging(), hanging(), hanging()).await;
        let service = fakes.service(Resilience::off());
        let cancel = CancellationToken::new();
        let deadline = Deadline::after(Duration::from_secs(10));
        // Cancels once all three requests are in flight (or gives up waiting).
        let canceller = async {
            let in_flight = wait_until(IN_FLIGHT_LIMIT, || fakes.all_have_in_flight(1)).await;
            cancel.cancel();
            (in_flight, Instant::now())
        };

        let (page, (in_flight, cancelled_at)) = tokio::join!(
            fetch_product_page(&service, PRODUCT_ID, deadline, &cancel),
            canceller
        );
        let page_ended_after = cancelled_at.elapsed();
        let noticed = wait_until(NOTICE_LIMIT, || fakes.all_cancelled(1)).await;

        assert!(
            in_flight.is_ok(),
            "all three upstream requests should be in flight at once before the token is cancelled"
        );
        let error = page.expect_err("a cancelled page fails");
        assert!(
            matches!(error, FetchError::Cancelled { .. }),
            "a cancelled page must fail with FetchError::Cancelled, got {error:?}"
        );
        assert_eq!(
            error.http_status(),
            499,
            "a cancelled page is logged as 499, client closed request"
        );
        assert!(
            page_ended_after < NOTICE_LIMIT,
            "the page must end soon after the token is cancelled, not at its deadline; it ended {page_ended_after:?} later"
        );
        assert!(
            noticed.is_ok(),
            "every spawned call must observe the token and drop its request; counters: {:?}",
            fakes.all().map(FastUpstream::counters)
        );
    })
    .await;
}

/// No task is left alive once the caller gives up: the runtime's alive-task count returns to its baseline.
#[tokio::test]
async fn no_task_is_left_alive_after_the_caller_gives_up() {
    within_time_limit(async {
        let fakes = FakesOnTheirOwnRuntime::start(hanging(), hanging(), hanging()).await;
        let service = fakes.service(Resilience::off());
        let cancel = CancellationToken::new();
        let deadline = Deadline::after(Duration::from_secs(10));
        let metrics = tokio::runtime::Handle::current().metrics();
        let baseline = metrics.num_alive_tasks();

        let (in_flight, during) = async {
            let page = fetch_product_page(&service, PRODUCT_ID, deadline, &cancel);
            tokio::pin!(page);
            tokio::select! {
                result = &mut page => panic!("the upstreams hang, yet the page answered {result:?}"),
                seen = wait_until(IN_FLIGHT_LIMIT, || fakes.all_have_in_flight(1)) => {
                    (seen, metrics.num_alive_tasks())
                }
            }
        }
        .await;
        let back_to_baseline =
            wait_until(Duration::from_secs(2), || metrics.num_alive_tasks() == baseline).await;

        assert!(
            in_flight.is_ok(),
            "all three upstream requests should be in flight at once before the caller gives up"
        );
        assert!(
            during > baseline,
            "while the page waits, its calls (and their connections) are alive: {during} tasks vs {baseline} before"
        );
        assert!(
            back_to_baseline.is_ok(),
            "after the caller gave up, {} tasks are alive against {baseline} before: a spawned call was detached instead of aborted",
            metrics.num_alive_tasks()
        );
    })
    .await;
}

/// On a multi-thread runtime under load, pages given up by their callers (dropped, or cancelled by a token) leave no task and no request behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_load_on_four_threads_no_task_or_request_outlives_its_page() {
    within_time_limit(async {
        // Per half: 40 pages cancelled by their token, 40 dropped by their
        // caller, each with three requests: 240 hanging requests at once.
        const PAGES_PER_HALF: u64 = 40;
        let fakes = FakesOnTheirOwnRuntime::start(hanging(), hanging(), hanging()).await;
        let service = fakes.service(Resilience::off());
        let metrics = tokio::runtime::Handle::current().metrics();
        let baseline = metrics.num_alive_tasks();
        let deadline = Deadline::after(Duration::from_secs(15));
        let shutdown = CancellationToken::new();
        let never_cancelled = CancellationToken::new();

        let cancelled_pages = futures::future::join_all(
            (0..PAGES_PER_HALF).map(|id| fetch_product_page(&service, id, deadline, &shutdown)),
        );
        let dropped_pages = futures::future::join_all(
            (0..PAGES_PER_HALF)
                .map(|id| fetch_product_page(&service, id, deadline, &never_cancelled)),
        );
        let (cancelled_results, in_flight) = async {
            tokio::pin!(dropped_pages);
            let cancel_once_all_in_flight = async {
                let seen =
                    wait_until(IN_FLIGHT_LIMIT, || fakes.all_have_in_flight(2 * PAGES_PER_HALF))
                        .await;
                shutdown.cancel();
                seen
            };
            tokio::select! {
                results = &mut dropped_pages => panic!("the upstreams hang, yet {} pages answered", results.len()),
                both = async { tokio::join!(cancelled_pages, cancel_once_all_in_flight) } => both,
            }
            // Leaving the block drops the other half's pages, in flight.
        }
        .await;
        let all_cancelled = wait_until(Duration::from_secs(5), || {
            fakes.all_cancelled(2 * PAGES_PER_HALF)
        })
        .await;
        let back_to_baseline =
            wait_until(Duration::from_secs(5), || metrics.num_alive_tasks() == baseline).await;

        assert!(
            in_flight.is_ok(),
            "all {} requests should be in flight at once before the pages are given up; counters: {:?}",
            6 * PAGES_PER_HALF,
            fakes.all().map(FastUpstream::counters)
        );
        assert!(
            cancelled_results
                .iter()
                .all(|page| matches!(page, Err(FetchError::Cancelled { .. }))),
            "every page whose token was cancelled must fail with Cancelled"
        );
        assert!(
            all_cancelled.is_ok(),
            "every upstream request must be cancelled, whichever way its page was given up; counters: {:?}",
            fakes.all().map(FastUpstream::counters)
        );
        assert!(
            back_to_baseline.is_ok(),
            "after every page was given up, {} tasks are alive against {baseline} before: some spawned call outlived its page",
            metrics.num_alive_tasks()
        );
    })
    .await;
}

/// A panic inside a spawned call is a bug: awaiting the call re-raises it with its message, instead of reporting a cancellation.
#[tokio::test]
async fn a_panic_in_a_spawned_call_reaches_its_owner() {
    within_time_limit(async {
        use futures::FutureExt;

        let cancel = CancellationToken::new();
        let owner = std::panic::AssertUnwindSafe(async {
            let call: OwnedCall<()> = spawn_call(&cancel, Upstream::Reviews, async {
                panic!("the reviews section exploded")
            });
            call.await
        });

        let outcome = owner.catch_unwind().await;

        let payload = match outcome {
            Ok(result) => panic!("the call panicked, yet awaiting it gave {result:?}"),
            Err(payload) => payload,
        };
        let message = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert!(
            message.contains("the reviews section exploded"),
            "awaiting the call must panic with the call's own message, got a panic saying {message:?}"
        );
    })
    .await;
}
