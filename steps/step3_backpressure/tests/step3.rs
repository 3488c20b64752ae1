//! Step 3's tests: what "done" means for backpressure.
//!
//! The same file runs against your exercise (`cargo xtask verify step3`) and
//! against the reference solution (`cargo xtask verify step3 --solution`).
//!
//! Most tests use the fast fake upstream (`FastUpstream`), an axum server
//! running on the test's own runtime, because it *counts* what it sees: the
//! peak number of calls in flight, and calls whose client went away. One test
//! uses wiremock, to arrange one failing id and one slow id exactly.
//!
//! Timing: the shedding test pauses tokio's clock. That is safe only because
//! its fake upstream runs in-process, on the same runtime and the same clock
//! (see the workbook's notes on paused time and real sockets). Every other
//! test runs in real time and asserts no durations at all.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use fake_upstreams::Service;
use fake_upstreams::fast::{Behaviour, FastUpstream};
use fake_upstreams::mock::MockUpstreams;
use step3_backpressure::{
    Bulkhead, ConfigError, FetchError, Inventory, Price, Product, Upstream, UpstreamUrls,
    fetch_json_guarded, fetch_many, fetch_product,
};
use tokio::time::Instant;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

/// Every test gets at most this long, so a future that never completes fails
/// with a message instead of freezing the run.
const TEST_TIME_LIMIT: Duration = Duration::from_secs(15);

/// How long [`eventually`] waits for its condition before failing the test.
const PATIENCE: Duration = Duration::from_secs(5);

/// A wait for a permit long enough that nothing is shed in tests that are
/// not about shedding.
const NO_SHEDDING: Duration = Duration::from_secs(30);

/// A client for loopback tests: system proxies apply even to 127.0.0.1.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a reqwest client builds")
}

/// Runs `test`, failing it with a clear message if it outlives the limit.
async fn within_time_limit<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIME_LIMIT, test)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the test did not finish within {TEST_TIME_LIMIT:?}: is a future waiting forever?"
            )
        })
}

/// Polls `condition` until it holds, failing the test (naming `what` it
/// waited for) if it still does not after a few seconds.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "waited {PATIENCE:?} for {what}, in vain"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

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

/// A bulkhead the test's own configuration is known to be valid for.
fn bulkhead(max_in_flight: usize, max_wait: Duration) -> Bulkhead {
    Bulkhead::new(max_in_flight, max_wait).expect("a non-zero cap is a valid configuration")
}

fn non_zero(value: usize) -> NonZeroUsize {
    NonZeroUsize::new(value).expect("the test passes a non-zero concurrency")
}

/// Every upstream's free permits, to compare against the cap.
fn free_permits(bulkhead: &Bulkhead) -> [usize; 3] {
    [Upstream::Inventory, Upstream::Pricing, Upstream::Reviews]
        .map(|upstream| bulkhead.available_permits(upstream))
}

/// With a cap of k, no upstream ever sees more than k calls at once, and a big enough batch does reach k.
#[tokio::test]
async fn the_bulkhead_caps_each_upstreams_calls_in_flight_and_uses_the_whole_cap() {
    within_time_limit(async {
        // Arrange: one fake per service, each answering after 100 ms, so a
        // call stays in flight long enough for others to pile up behind it.
        const CAP: usize = 4;
        let latency = Duration::from_millis(100);
        let inventory = start(Behaviour::fixed(latency)).await;
        let pricing = start(Behaviour::fixed(latency)).await;
        let reviews = start(Behaviour::fixed(latency)).await;
        let urls = UpstreamUrls {
            inventory: inventory.base_url(),
            pricing: pricing.base_url(),
            reviews: reviews.base_url(),
        };
        let bulkhead = bulkhead(CAP, NO_SHEDDING);
        let ids: Vec<u64> = (1..=24).collect();

        // Act: 24 products at once; only the bulkhead stands between them
        // and 24 calls to each upstream.
        let results = fetch_many(&client(), &urls, &bulkhead, &ids, non_zero(ids.len())).await;

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
                 taken before the request and held until the answer is read? (`let _ = ...` \
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
        let results = fetch_many(&client(), &urls, &bulkhead, &ids, non_zero(CONCURRENCY)).await;

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
        let results = fetch_many(&client(), &urls, &bulkhead, &ids, non_zero(4)).await;

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
        let client = client();
        let bulkhead = Arc::new(bulkhead(1, SHED_AFTER));
        let holder = tokio::spawn({
            let (client, urls, bulkhead) = (client.clone(), urls.clone(), Arc::clone(&bulkhead));
            async move {
                fetch_json_guarded::<Price>(&client, &urls, &bulkhead, Upstream::Pricing, 1).await
            }
        });
        eventually("the first call to reach the upstream", || {
            upstream.counters().in_flight == 1
        })
        .await;

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
        assert_eq!(
            upstream.counters().requests,
            1,
            "a shed call must fail before anything is sent: the upstream is already saturated"
        );
        holder.abort();
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
        let client = client();
        let bulkhead = Arc::new(bulkhead(1, Duration::from_millis(50)));
        let holder = tokio::spawn({
            let (client, urls, bulkhead) = (client.clone(), urls.clone(), Arc::clone(&bulkhead));
            async move {
                fetch_json_guarded::<Price>(&client, &urls, &bulkhead, Upstream::Pricing, 1).await
            }
        });
        eventually("the pricing call to take pricing's only permit", || {
            bulkhead.available_permits(Upstream::Pricing) == 0
        })
        .await;

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
        let client = client();
        let bulkhead = Arc::new(bulkhead(1, Duration::from_millis(50)));
        let holder = tokio::spawn({
            let (client, urls, bulkhead) = (client.clone(), urls.clone(), Arc::clone(&bulkhead));
            async move {
                fetch_json_guarded::<Price>(&client, &urls, &bulkhead, Upstream::Pricing, 1).await
            }
        });
        eventually("the pricing call to take pricing's only permit", || {
            bulkhead.available_permits(Upstream::Pricing) == 0
        })
        .await;

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
        let results =
            fetch_many(&client(), &all_at(&upstream), &bulkhead, &ids, non_zero(10)).await;

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
        let client = client();
        let bulkhead = bulkhead(CAP, NO_SHEDDING);
        let ids = [1, 2, 3, 4];
        // Boxed, so that `drop(batch)` below drops the future itself (a
        // `pin!`-ned future would only lose its reference).
        let mut batch = Box::pin(fetch_many(&client, &urls, &bulkhead, &ids, non_zero(4)));

        // Drive the batch until every permit is taken and the calls are in flight.
        tokio::select! {
            results = &mut batch => panic!("the upstream never answers, yet the batch finished: {results:?}"),
            () = eventually("the batch to take every permit", || {
                free_permits(&bulkhead) == [0; 3] && upstream.counters().in_flight == 6
            }) => {}
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
        eventually("the upstream to see all 6 calls cancelled", || {
            upstream.counters().cancelled == 6
        })
        .await;
    })
    .await;
}

/// A cap of zero is refused when the bulkhead is built, with a typed error that says why.
#[test]
fn a_cap_of_zero_is_refused_when_the_bulkhead_is_built() {
    let built = Bulkhead::new(0, Duration::from_millis(10));

    match built {
        Err(error) => {
            assert_eq!(
                error,
                ConfigError::ZeroCap,
                "a cap of zero should be ConfigError::ZeroCap"
            );
            assert!(
                error.to_string().contains("at least 1"),
                "the message should tell the operator what would work, got {error:?}"
            );
        }
        Ok(bulkhead) => panic!(
            "a bulkhead with room for 0 calls would shed every request; it must be refused \
             at construction, got {bulkhead:?}"
        ),
    }
}
