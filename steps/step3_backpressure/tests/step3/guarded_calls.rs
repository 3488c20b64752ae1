//! Part "guarded calls": `fetch_json_guarded` and `fetch_product`
//! (`src/guarded.rs`) and `fetch_many` (`src/batch.rs`): calls that hold
//! their permits while they are in flight.
//!
//! Most tests use the fast fake upstream (`FastUpstream`), an axum server
//! running on the test's own runtime, because it *counts* what it sees: the
//! peak number of calls in flight (a call whose body is still on its way
//! counts), and calls whose client went away. Two tests use wiremock, to
//! arrange one failing id and one slow id exactly. Two promises of
//! `admit_page` are checked here too, through whole pages, because they need
//! calls in flight: a page waits one `max_wait` for all of its permits, and
//! pages waiting for a full upstream hold no permit later in the order.
//!
//! Timing: two tests pause tokio's clock. That is safe only because their
//! fake upstreams run in-process, on the same runtime and the same clock
//! (see the workbook's notes on paused time and real sockets). Every other
//! test runs in real time and asserts no durations: where a test needs
//! something to happen "at once", it gives it seconds, against an upstream
//! that never answers.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fake_upstreams::Service;
use fake_upstreams::fast::{Behaviour, FastUpstream};
use fake_upstreams::mock::MockUpstreams;
use fake_upstreams::testing::{PATIENCE, loopback_client, wait_until, within_time_limit};
use step3_backpressure::{
    FetchError, Inventory, Price, Product, ReviewStats, Upstream, UpstreamUrls, fetch_json_guarded,
    fetch_many, fetch_product,
};
use tokio::task::JoinSet;
use tokio::time::Instant;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::{NO_SHEDDING, bulkhead, free_permits};

/// Starts a fast fake upstream on this test's runtime.
async fn start(behaviour: Behaviour) -> FastUpstream {
    FastUpstream::start(behaviour)
        .await
        .expect("the fake binds to a free loopback port")
}

/// URLs that send all three services to one fast fake.
fn all_at(upstream: &FastUpstream) -> UpstreamUrls {
    UpstreamUrls {
        inventory: upstream.base_url(),
        pricing: upstream.base_url(),
        reviews: upstream.base_url(),
    }
}

fn non_zero(value: usize) -> NonZeroUsize {
    NonZeroUsize::new(value).expect("the test passes a non-zero concurrency")
}

/// When an upstream's permits are all taken, the next call is shed with `Overloaded` after the short wait, never sent.
#[tokio::test(start_paused = true)]
async fn a_saturated_upstream_sheds_the_next_call_within_the_wait_bound() {
    // Paused time: the fake runs on this test's runtime, so the clock only
    // moves when everything is idle, and then straight to the next timer.
    // The measured wait is therefore exact, however busy the machine is.
    // (The lab measures what shedding costs in real time.)
    within_time_limit(async {
        // Arrange: a cap of 1, taken by a call to an upstream that never answers.
        const SHED_AFTER: Duration = Duration::from_millis(10);
        let upstream = start(Behaviour::default().hanging()).await;
        let urls = all_at(&upstream);
        let client = loopback_client();
        let bulkhead = Arc::new(bulkhead(1, SHED_AFTER));
        let holder = tokio::spawn({
            let (client, urls, bulkhead) = (client.clone(), urls.clone(), Arc::clone(&bulkhead));
            async move {
                fetch_json_guarded::<Price>(&client, &urls, &bulkhead, Upstream::Pricing, 1).await
            }
        });
        wait_until(PATIENCE, || upstream.counters().in_flight == 1)
            .await
            .expect("the first call reaches the upstream");

        // Act
        let started = Instant::now();
        let outcome =
            fetch_json_guarded::<Price>(&client, &urls, &bulkhead, Upstream::Pricing, 2).await;
        let waited = started.elapsed();

        // Assert
        assert!(
            matches!(
                outcome,
                Err(FetchError::Overloaded {
                    upstream: Upstream::Pricing
                })
            ),
            "pricing's only permit is taken and will not come back: the call should be shed \
             with Overloaded {{ upstream: Pricing }}, got {outcome:?}"
        );
        assert!(
            waited <= SHED_AFTER + Duration::from_millis(1),
            "shedding took {waited:?}: a saturated upstream should cost a caller at most the \
             bulkhead's wait ({SHED_AFTER:?}), not a place in an endless queue"
        );
        assert!(
            waited >= SHED_AFTER,
            "the call was shed after {waited:?}, before the bulkhead's wait ({SHED_AFTER:?}) had \
             passed: a caller waits for a permit until the whole wait is over, not less"
        );
        assert_eq!(
            upstream.counters().requests,
            1,
            "a shed call must fail before anything is sent: the upstream is already saturated"
        );
        holder.abort();
    })
    .await;
}

/// A permit is held until the response body has been read, not only until the headers arrive.
#[tokio::test]
async fn a_permit_is_held_until_the_response_body_is_read() {
    within_time_limit(async {
        // Arrange: a cap of 1, and an upstream that sends its headers at
        // once and each body 100 ms later.
        let upstream =
            start(Behaviour::default().sending_body_after(Duration::from_millis(100))).await;
        let urls = all_at(&upstream);
        let client = loopback_client();
        let bulkhead = bulkhead(1, NO_SHEDDING);

        // Act: four calls to pricing at once.
        let calls = futures::future::join_all((1..=4).map(|product_id| {
            fetch_json_guarded::<Price>(&client, &urls, &bulkhead, Upstream::Pricing, product_id)
        }))
        .await;

        // Assert
        assert!(
            calls.iter().all(Result::is_ok),
            "a healthy upstream and no shedding, yet a call failed: {calls:?}"
        );
        let peak = upstream.counters().peak_in_flight;
        assert_eq!(
            peak, 1,
            "pricing had {peak} calls in flight at once with a cap of 1: the next call went out \
             while a body was still on its way. A call is over when its body has been read, and \
             its permit must be held until then"
        );
    })
    .await;
}

/// A saturated upstream does not hold up calls to the others: each upstream has its own compartment.
#[tokio::test]
async fn a_saturated_upstream_does_not_hold_up_calls_to_the_others() {
    within_time_limit(async {
        // Arrange: pricing never answers and its only permit is taken;
        // inventory is healthy.
        let stuck = start(Behaviour::default().hanging()).await;
        let healthy = start(Behaviour::default()).await;
        let urls = UpstreamUrls {
            inventory: healthy.base_url(),
            pricing: stuck.base_url(),
            reviews: healthy.base_url(),
        };
        let client = loopback_client();
        let bulkhead = Arc::new(bulkhead(1, Duration::from_millis(50)));
        let holder = tokio::spawn({
            let (client, urls, bulkhead) = (client.clone(), urls.clone(), Arc::clone(&bulkhead));
            async move {
                fetch_json_guarded::<Price>(&client, &urls, &bulkhead, Upstream::Pricing, 1).await
            }
        });
        wait_until(PATIENCE, || {
            bulkhead.available_permits(Upstream::Pricing) == 0
        })
        .await
        .expect("the pricing call takes pricing's only permit");

        // Act
        let outcome =
            fetch_json_guarded::<Inventory>(&client, &urls, &bulkhead, Upstream::Inventory, 1)
                .await;

        // Assert
        assert!(
            outcome.is_ok(),
            "inventory is healthy and none of its permits are taken, yet the call failed with \
             {outcome:?}: does every upstream have its own semaphore?"
        );
        holder.abort();
    })
    .await;
}

/// A page is admitted whole or not at all: when one upstream is full, no call is sent to the others.
#[tokio::test]
async fn a_page_that_cannot_get_every_permit_sends_no_call_at_all() {
    within_time_limit(async {
        // Arrange: a cap of 1, and pricing's only permit held by a hanging call.
        let stuck = start(Behaviour::default().hanging()).await;
        let healthy = start(Behaviour::default()).await;
        let urls = UpstreamUrls {
            inventory: healthy.base_url(),
            pricing: stuck.base_url(),
            reviews: healthy.base_url(),
        };
        let client = loopback_client();
        let bulkhead = Arc::new(bulkhead(1, Duration::from_millis(50)));
        let holder = tokio::spawn({
            let (client, urls, bulkhead) = (client.clone(), urls.clone(), Arc::clone(&bulkhead));
            async move {
                fetch_json_guarded::<Price>(&client, &urls, &bulkhead, Upstream::Pricing, 1).await
            }
        });
        wait_until(PATIENCE, || {
            bulkhead.available_permits(Upstream::Pricing) == 0
        })
        .await
        .expect("the pricing call takes pricing's only permit");

        // Act: a whole page while pricing is full.
        let page = fetch_product(&client, &urls, &bulkhead, 2).await;

        // Assert: shed on pricing, and inventory and reviews were never asked.
        assert!(
            matches!(
                page,
                Err(FetchError::Overloaded {
                    upstream: Upstream::Pricing
                })
            ),
            "expected the page to be shed on pricing, got {page:?}"
        );
        assert_eq!(
            healthy.counters().requests,
            0,
            "inventory and reviews were called for a page that could never be completed: take \
             all three permits first (admission), then send the calls"
        );
        holder.abort();
    })
    .await;
}

/// A page waits at most the bulkhead's wait for all of its permits together, not one wait per permit.
#[tokio::test(start_paused = true)]
async fn a_page_is_shed_within_one_wait_for_all_of_its_permits() {
    // Paused time, as in the shedding test above: the fakes run on this
    // test's runtime, so the measured wait is exact.
    within_time_limit(async {
        // Inventory's permit comes back within the wait and pricing's never;
        // then the same one place later in the permit order, so the last
        // wait is covered too: pricing's comes back and reviews' never.
        page_is_shed_within_one_wait(Upstream::Inventory, Upstream::Pricing).await;
        page_is_shed_within_one_wait(Upstream::Pricing, Upstream::Reviews).await;
    })
    .await;
}

/// With a cap of 1, `comes_back`'s permit held by a call that ends after
/// 60 ms (well within the wait) and `never`'s by a call that never ends:
/// a page must be shed on `never` within one wait, having sent nothing and
/// kept nothing.
async fn page_is_shed_within_one_wait(comes_back: Upstream, never: Upstream) {
    // Arrange
    const WAIT: Duration = Duration::from_millis(100);
    let behaviour = |upstream| {
        if upstream == comes_back {
            Behaviour::fixed(Duration::from_millis(60))
        } else if upstream == never {
            Behaviour::default().hanging()
        } else {
            Behaviour::default()
        }
    };
    let inventory = start(behaviour(Upstream::Inventory)).await;
    let pricing = start(behaviour(Upstream::Pricing)).await;
    let reviews = start(behaviour(Upstream::Reviews)).await;
    let urls = UpstreamUrls {
        inventory: inventory.base_url(),
        pricing: pricing.base_url(),
        reviews: reviews.base_url(),
    };
    let fakes = [&inventory, &pricing, &reviews];
    let client = loopback_client();
    let bulkhead = Arc::new(bulkhead(1, WAIT));
    let mut holders = JoinSet::new();
    for upstream in [comes_back, never] {
        let (client, urls, bulkhead) = (client.clone(), urls.clone(), Arc::clone(&bulkhead));
        holders.spawn(async move {
            // The answer does not matter, only the permit it holds.
            let _ =
                fetch_json_guarded::<serde::de::IgnoredAny>(&client, &urls, &bulkhead, upstream, 1)
                    .await;
        });
    }
    wait_until(PATIENCE, || {
        fakes
            .iter()
            .map(|fake| fake.counters().in_flight)
            .sum::<u64>()
            == 2
    })
    .await
    .expect("both calls take their upstream's only permit");

    // Act
    let started = Instant::now();
    let page = fetch_product(&client, &urls, &bulkhead, 2).await;
    let waited = started.elapsed();

    // Assert
    assert!(
        matches!(page, Err(FetchError::Overloaded { upstream }) if upstream == never),
        "{comes_back}'s permit came back within the wait and {never}'s never did: the page \
         should be shed on {never}, got {page:?}"
    );
    assert!(
        waited <= WAIT + Duration::from_millis(1),
        "the page was shed after {waited:?}, but the bulkhead's wait is {WAIT:?}: a page gets \
         one wait for all of its permits, not a fresh wait for some of them (here {comes_back} \
         then {never})"
    );
    assert!(
        waited >= WAIT,
        "the page was shed after {waited:?}, before the bulkhead's wait ({WAIT:?}) had passed: \
         a page waits for its permits until the whole wait is over, not less"
    );
    let held_by_the_holders = [Upstream::Inventory, Upstream::Pricing, Upstream::Reviews]
        .map(|upstream| u64::from(upstream == comes_back || upstream == never));
    assert_eq!(
        fakes.map(|fake| fake.counters().requests),
        held_by_the_holders,
        "requests [inventory, pricing, reviews]: only the two calls holding permits were sent; \
         a shed page sends nothing"
    );
    let free_after = [Upstream::Inventory, Upstream::Pricing, Upstream::Reviews]
        .map(|upstream| usize::from(upstream != never));
    assert_eq!(
        free_permits(&bulkhead),
        free_after,
        "free permits [inventory, pricing, reviews]: a shed page gives back the permits it had \
         taken; only {never}'s stays with the call that never ends"
    );
}

/// While pages wait for a full upstream, they hold no permit of an upstream later in the permit order: a call to reviews goes straight through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_waiting_for_a_full_upstream_hold_no_permit_later_in_the_order() {
    within_time_limit(async {
        // Arrange: pricing never answers, and both of its permits are held
        // by calls to it; inventory and reviews are healthy.
        const CAP: usize = 2;
        const PAGES: usize = 100;
        let stuck = start(Behaviour::default().hanging()).await;
        let healthy = start(Behaviour::default()).await;
        let urls = UpstreamUrls {
            inventory: healthy.base_url(),
            pricing: stuck.base_url(),
            reviews: healthy.base_url(),
        };
        let client = loopback_client();
        let bulkhead = Arc::new(bulkhead(CAP, NO_SHEDDING));
        let mut pricing_calls = JoinSet::new();
        for product_id in 1..=CAP as u64 {
            let (client, urls, bulkhead) = (client.clone(), urls.clone(), Arc::clone(&bulkhead));
            pricing_calls.spawn(async move {
                fetch_json_guarded::<Price>(
                    &client,
                    &urls,
                    &bulkhead,
                    Upstream::Pricing,
                    product_id,
                )
                .await
            });
        }
        wait_until(PATIENCE, || stuck.counters().in_flight == CAP as u64)
            .await
            .expect("the calls to pricing take both of its permits");

        // Act: pages arrive on four threads. Each is polled once (so it has
        // taken whatever it takes before it waits), then left waiting.
        let started_waiting = Arc::new(AtomicUsize::new(0));
        let mut pages = JoinSet::new();
        for product_id in 1..=PAGES as u64 {
            let (client, urls, bulkhead) = (client.clone(), urls.clone(), Arc::clone(&bulkhead));
            let started_waiting = Arc::clone(&started_waiting);
            pages.spawn(async move {
                let mut page = std::pin::pin!(fetch_product(&client, &urls, &bulkhead, product_id));
                let first_poll = futures::poll!(page.as_mut());
                started_waiting.fetch_add(1, Ordering::SeqCst);
                match first_poll {
                    std::task::Poll::Ready(page) => page,
                    std::task::Poll::Pending => page.await,
                }
            });
        }
        wait_until(PATIENCE, || started_waiting.load(Ordering::SeqCst) == PAGES)
            .await
            .expect("every page starts waiting for its permits");

        // Assert: reviews comes after pricing in the permit order, so no page
        // waiting for pricing may hold one of its permits...
        assert_eq!(
            bulkhead.available_permits(Upstream::Reviews),
            CAP,
            "pages waiting for pricing are holding reviews' permits: a page must not hold a \
             permit while it waits for one that comes *earlier* in the permit order (inventory, \
             pricing, reviews). Waiting for all three side by side does exactly that, and can \
             deadlock"
        );
        // ...and a call to healthy reviews does not wait for pricing at all.
        let reviews_call = tokio::time::timeout(
            PATIENCE,
            fetch_json_guarded::<ReviewStats>(&client, &urls, &bulkhead, Upstream::Reviews, 1),
        )
        .await;
        assert!(
            matches!(reviews_call, Ok(Ok(_))),
            "a call to healthy reviews should go straight through while pages wait for pricing, \
             got {reviews_call:?}"
        );
        assert_eq!(
            pages.len(),
            PAGES,
            "the pages are still waiting for pricing (nothing is shed in this test)"
        );

        // Giving up on the waiting pages and the stuck calls returns everything.
        drop(pages);
        drop(pricing_calls);
        wait_until(PATIENCE, || free_permits(&bulkhead) == [CAP; 3])
            .await
            .expect("every permit comes back");
    })
    .await;
}

/// A call that has finished gives its permit back at once, even while a sibling call of its page hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_finished_call_returns_its_permit_while_its_page_waits_for_a_hung_one() {
    within_time_limit(async {
        // Arrange: a cap of 1; pricing never answers, the others at once.
        let stuck = start(Behaviour::default().hanging()).await;
        let healthy = start(Behaviour::default()).await;
        let urls = UpstreamUrls {
            inventory: healthy.base_url(),
            pricing: stuck.base_url(),
            reviews: healthy.base_url(),
        };
        let client = loopback_client();
        let bulkhead = Arc::new(bulkhead(1, NO_SHEDDING));

        // Act: a page whose pricing call will hang.
        let page = tokio::spawn({
            let (client, urls, bulkhead) = (client.clone(), urls.clone(), Arc::clone(&bulkhead));
            async move { fetch_product(&client, &urls, &bulkhead, 1).await }
        });

        // Assert: inventory's and reviews' permits come back when their own
        // calls end, not when the page does...
        wait_until(PATIENCE, || {
            healthy.counters().completed == 2
                && stuck.counters().in_flight == 1
                && bulkhead.available_permits(Upstream::Inventory) == 1
                && bulkhead.available_permits(Upstream::Reviews) == 1
        })
        .await
        .expect("inventory's and reviews' permits come back while pricing's call hangs");
        // ...so a call to healthy inventory goes through while the page waits.
        let inventory_call = tokio::time::timeout(
            PATIENCE,
            fetch_json_guarded::<Inventory>(&client, &urls, &bulkhead, Upstream::Inventory, 2),
        )
        .await;
        assert!(
            matches!(inventory_call, Ok(Ok(_))),
            "inventory's only permit should be free once the page's inventory call is done, \
             got {inventory_call:?}: move each permit into its own call"
        );
        assert!(!page.is_finished(), "the page still waits for pricing");
        page.abort();
    })
    .await;
}

/// The first error ends the page at once: the other calls are cancelled, not awaited, and every permit comes back.
#[tokio::test]
async fn the_first_error_ends_the_page_at_once_and_cancels_the_other_calls() {
    within_time_limit(async {
        // Arrange: pricing fails after 200 ms (time enough, in practice, for
        // the other two calls to arrive); inventory and reviews never answer.
        const CAP: usize = 2;
        let failing = start(Behaviour::fixed(Duration::from_millis(200)).failing(1.0, 503)).await;
        let stuck = start(Behaviour::default().hanging()).await;
        let urls = UpstreamUrls {
            inventory: stuck.base_url(),
            pricing: failing.base_url(),
            reviews: stuck.base_url(),
        };
        let bulkhead = bulkhead(CAP, NO_SHEDDING);

        // Act
        let page = tokio::time::timeout(
            PATIENCE,
            fetch_product(&loopback_client(), &urls, &bulkhead, 1),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "fetch_product was still waiting {PATIENCE:?} after pricing had failed: the \
                     first error must end the page at once (`try_join!` returns it; `join!` \
                     waits for every call, and inventory and reviews never answer)"
            )
        });

        // Assert
        assert!(
            matches!(
                page,
                Err(FetchError::Status {
                    upstream: Upstream::Pricing,
                    status: 503
                })
            ),
            "expected pricing's 503, got {page:?}"
        );
        // Whatever of inventory's and reviews' calls had reached their
        // upstream is cancelled there, not left running.
        wait_until(PATIENCE, || {
            let calls = stuck.counters();
            calls.in_flight == 0 && calls.cancelled == calls.requests
        })
        .await
        .expect("inventory's and reviews' calls are cancelled");
        assert_eq!(
            free_permits(&bulkhead),
            [CAP; 3],
            "a failed page gives every permit back"
        );
    })
    .await;
}

/// With a cap of k, no upstream ever sees more than k calls at once, and a big enough batch does reach k.
#[tokio::test]
async fn the_bulkhead_caps_each_upstreams_calls_in_flight_and_uses_the_whole_cap() {
    within_time_limit(async {
        // Arrange: one fake per service, each sending its headers after 50 ms
        // and its body 50 ms later, so a call stays in flight long enough for
        // others to pile up behind it, and a permit let go when the headers
        // arrive (before the body is read) shows up as one call too many.
        const CAP: usize = 4;
        let slow_body = Behaviour::fixed(Duration::from_millis(50))
            .sending_body_after(Duration::from_millis(50));
        let inventory = start(slow_body.clone()).await;
        let pricing = start(slow_body.clone()).await;
        let reviews = start(slow_body).await;
        let urls = UpstreamUrls {
            inventory: inventory.base_url(),
            pricing: pricing.base_url(),
            reviews: reviews.base_url(),
        };
        let bulkhead = bulkhead(CAP, NO_SHEDDING);
        let ids: Vec<u64> = (1..=24).collect();

        // Act: 24 products at once; only the bulkhead stands between them
        // and 24 calls to each upstream.
        let results = fetch_many(
            &loopback_client(),
            &urls,
            &bulkhead,
            &ids,
            non_zero(ids.len()),
        )
        .await;

        // Assert
        assert!(
            results.iter().all(Result::is_ok),
            "healthy upstreams and no shedding, yet some products failed: {results:?}"
        );
        for (name, upstream) in [
            ("inventory", &inventory),
            ("pricing", &pricing),
            ("reviews", &reviews),
        ] {
            let peak = upstream.counters().peak_in_flight;
            assert!(
                peak <= CAP as u64,
                "{name} saw {peak} calls in flight at once, but the cap is {CAP}: is the permit \
                 taken before the request and held until the body is read? (`let _ = ...` \
                 drops it at once; `let _permit = ...` keeps it)"
            );
            assert_eq!(
                peak, CAP as u64,
                "{name} never saw more than {peak} calls at once although 24 products were \
                 waiting and the cap is {CAP}: the calls should run side by side up to the cap"
            );
        }
    })
    .await;
}

/// `fetch_many` keeps at most `concurrency` products in flight, even when the bulkhead would allow more.
#[tokio::test]
async fn fetch_many_keeps_at_most_its_concurrency_in_flight() {
    within_time_limit(async {
        // Arrange: one fake per service, 100 ms each; a generous cap of 100,
        // so only `fetch_many`'s own bound can keep the upstreams at 2.
        const CONCURRENCY: usize = 2;
        let latency = Duration::from_millis(100);
        let inventory = start(Behaviour::fixed(latency)).await;
        let pricing = start(Behaviour::fixed(latency)).await;
        let reviews = start(Behaviour::fixed(latency)).await;
        let urls = UpstreamUrls {
            inventory: inventory.base_url(),
            pricing: pricing.base_url(),
            reviews: reviews.base_url(),
        };
        let bulkhead = bulkhead(100, NO_SHEDDING);
        let ids: Vec<u64> = (1..=8).collect();

        // Act
        let results = fetch_many(
            &loopback_client(),
            &urls,
            &bulkhead,
            &ids,
            non_zero(CONCURRENCY),
        )
        .await;

        // Assert: each upstream saw exactly two calls at a time, never more.
        assert!(
            results.iter().all(Result::is_ok),
            "healthy upstreams and no shedding, yet some products failed: {results:?}"
        );
        for (name, upstream) in [
            ("inventory", &inventory),
            ("pricing", &pricing),
            ("reviews", &reviews),
        ] {
            let peak = upstream.counters().peak_in_flight;
            assert_eq!(
                peak, CONCURRENCY as u64,
                "{name} saw at most {peak} calls at once for a batch of 8 with concurrency \
                 {CONCURRENCY}: `fetch_many` must run up to `concurrency` products side by \
                 side, and no more (`buffered(k)`, not `join_all`)"
            );
        }
    })
    .await;
}

/// `fetch_many` returns one result per id, in the order of the ids, with a failing id's error in its own slot.
#[tokio::test]
async fn fetch_many_returns_one_result_per_id_in_input_order() {
    within_time_limit(async {
        // Arrange (real time: wiremock runs on its own thread): product 1 is
        // slow, so it finishes *last*; pricing has no product 7.
        let upstreams = MockUpstreams::healthy().await;
        let pricing = upstreams.server(Service::Pricing);
        Mock::given(method("GET"))
            .and(path(Service::Pricing.path(7)))
            .respond_with(ResponseTemplate::new(404))
            .with_priority(1)
            .mount(pricing)
            .await;
        Mock::given(method("GET"))
            .and(path(Service::Pricing.path(1)))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(Service::Pricing.body(1))
                    .set_delay(Duration::from_millis(300)),
            )
            .with_priority(1)
            .mount(pricing)
            .await;
        let urls = UpstreamUrls {
            inventory: upstreams.base_url(Service::Inventory),
            pricing: upstreams.base_url(Service::Pricing),
            reviews: upstreams.base_url(Service::Reviews),
        };
        let bulkhead = bulkhead(10, NO_SHEDDING);
        let ids = [1, 7, 2, 3];

        // Act
        let results = fetch_many(&loopback_client(), &urls, &bulkhead, &ids, non_zero(4)).await;

        // Assert
        assert_eq!(
            results.len(),
            ids.len(),
            "one result per id, failures included: {results:?}"
        );
        let answered: Vec<Option<u64>> = results
            .iter()
            .map(|result| result.as_ref().ok().map(|product: &Product| product.id))
            .collect();
        assert_eq!(
            answered,
            [Some(1), None, Some(2), Some(3)],
            "results must come back in the order of the ids, not the order the answers \
             arrived (product 1 answers last); `buffered` keeps the order, \
             `buffer_unordered` does not"
        );
        assert!(
            matches!(
                results[1],
                Err(FetchError::Status {
                    upstream: Upstream::Pricing,
                    status: 404
                })
            ),
            "product 7 has no price: its slot should hold pricing's 404, got {:?}",
            results[1]
        );
    })
    .await;
}

/// `fetch_many` of no ids at all finishes at once with no results, and sends nothing.
#[tokio::test]
async fn fetch_many_of_no_ids_returns_no_results_and_sends_nothing() {
    within_time_limit(async {
        // Arrange
        let upstream = start(Behaviour::default()).await;
        let bulkhead = bulkhead(4, NO_SHEDDING);

        // Act: an empty batch (a listing page with nothing on it).
        let results = tokio::time::timeout(
            PATIENCE,
            fetch_many(
                &loopback_client(),
                &all_at(&upstream),
                &bulkhead,
                &[],
                non_zero(8),
            ),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "fetch_many of no ids was still running after {PATIENCE:?}: an empty batch is \
                 done at once (a window of 0, e.g. `buffered(0)`, never finishes)"
            )
        });

        // Assert
        assert!(results.is_empty(), "no ids, so no results, got {results:?}");
        assert_eq!(upstream.counters().requests, 0, "no ids, so no request");
    })
    .await;
}

/// `fetch_many` starts the next product as soon as the oldest one in flight is done, not when a whole group of `concurrency` products is.
#[tokio::test]
async fn fetch_many_starts_the_next_product_as_soon_as_the_oldest_is_done() {
    within_time_limit(async {
        // Arrange (real time: wiremock runs on its own thread): product 2's
        // price takes a minute, far longer than this test waits.
        let upstreams = MockUpstreams::healthy().await;
        Mock::given(method("GET"))
            .and(path(Service::Pricing.path(2)))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(Service::Pricing.body(2))
                    .set_delay(Duration::from_secs(60)),
            )
            .with_priority(1)
            .mount(upstreams.server(Service::Pricing))
            .await;
        let urls = UpstreamUrls {
            inventory: upstreams.base_url(Service::Inventory),
            pricing: upstreams.base_url(Service::Pricing),
            reviews: upstreams.base_url(Service::Reviews),
        };
        let client = loopback_client();
        let bulkhead = bulkhead(10, NO_SHEDDING);
        let ids = [1, 2, 3];

        // Act: two at a time. Product 1 is done at once; product 2 is not.
        let mut batch = Box::pin(fetch_many(&client, &urls, &bulkhead, &ids, non_zero(2)));
        let product_3_asked = async {
            while !was_asked(&upstreams, Service::Pricing, 3).await {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };

        // Assert: product 3 takes product 1's place while product 2 waits.
        tokio::select! {
            results = &mut batch => panic!(
                "product 2's price takes a minute, yet the batch finished: {results:?}"
            ),
            () = product_3_asked => {}
            () = tokio::time::sleep(PATIENCE) => panic!(
                "product 3 was not started within {PATIENCE:?}, although product 1 was done and \
                 only product 2 was in flight, with a concurrency of 2: start the next product \
                 as soon as the oldest one in flight is done (`buffered`), not in groups of \
                 `concurrency` that each wait for their slowest member"
            ),
        }
    })
    .await;
}

/// Whether `service` on `upstreams` has received a request about `product_id`.
async fn was_asked(upstreams: &MockUpstreams, service: Service, product_id: u64) -> bool {
    let wanted = service.path(product_id);
    upstreams
        .server(service)
        .received_requests()
        .await
        .is_some_and(|requests| requests.iter().any(|request| request.url.path() == wanted))
}

/// After calls fail, every permit is back: errors return permits just as successes do.
#[tokio::test]
async fn every_permit_comes_back_after_failed_calls() {
    within_time_limit(async {
        // Arrange: every answer is a 503.
        const CAP: usize = 3;
        let upstream = start(Behaviour::default().failing(1.0, 503)).await;
        let bulkhead = bulkhead(CAP, NO_SHEDDING);
        let ids: Vec<u64> = (1..=10).collect();

        // Act
        let results = fetch_many(
            &loopback_client(),
            &all_at(&upstream),
            &bulkhead,
            &ids,
            non_zero(10),
        )
        .await;

        // Assert
        assert!(
            results
                .iter()
                .all(|result| matches!(result, Err(FetchError::Status { status: 503, .. }))),
            "every upstream answers 503, so every product should fail with a status error: \
             {results:?}"
        );
        assert_eq!(
            free_permits(&bulkhead),
            [CAP; 3],
            "after the failed calls, every permit must be back (inventory, pricing, reviews): \
             a permit that leaks on an error path closes the upstream to us one call at a time"
        );
    })
    .await;
}

/// When the caller's future is dropped mid-flight, every permit comes back at once and the upstream sees the calls cancelled.
#[tokio::test]
async fn every_permit_comes_back_when_the_callers_future_is_dropped_mid_flight() {
    within_time_limit(async {
        // Arrange: an upstream that never answers, and a batch that fills
        // every compartment (2 permits × 3 upstreams).
        const CAP: usize = 2;
        let upstream = start(Behaviour::default().hanging()).await;
        let urls = all_at(&upstream);
        let client = loopback_client();
        let bulkhead = bulkhead(CAP, NO_SHEDDING);
        let ids = [1, 2, 3, 4];
        // Boxed, so that `drop(batch)` below drops the future itself (a
        // `pin!`-ned future would only lose its reference).
        let mut batch = Box::pin(fetch_many(&client, &urls, &bulkhead, &ids, non_zero(4)));

        // Drive the batch until every permit is taken and the calls are in flight.
        tokio::select! {
            results = &mut batch => panic!("the upstream never answers, yet the batch finished: {results:?}"),
            waited = wait_until(PATIENCE, || {
                free_permits(&bulkhead) == [0; 3] && upstream.counters().in_flight == 6
            }) => waited.expect("the batch takes every permit"),
        }

        // Act: the caller gives up, as a client that disconnects or a
        // deadline that fires would.
        drop(batch);

        // Assert: the permits come back the moment the futures are dropped...
        assert_eq!(
            free_permits(&bulkhead),
            [CAP; 3],
            "dropping the caller's future must return every permit at once: permits that are \
             RAII guards come back when the future holding them is dropped"
        );
        // ...and the upstream sees its requests cancelled, not left running.
        wait_until(PATIENCE, || upstream.counters().cancelled == 6)
            .await
            .expect("the upstream sees all 6 calls cancelled");
    })
    .await;
}
