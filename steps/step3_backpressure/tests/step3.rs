//! Step 3's tests: what "done" means for backpressure.
//!
//! The same file runs against your exercise (`cargo xtask verify step3`) and
//! against the reference solution (`cargo xtask verify step3 --solution`).
//!
//! Most tests use the fast fake upstream (`FastUpstream`), an axum server
//! running on the test's own runtime, because it *counts* what it sees: the
//! peak number of calls in flight (a call whose body is still on its way
//! counts), and calls whose client went away. One test uses wiremock, to
//! arrange one failing id and one slow id exactly.
//!
//! Threads: `#[tokio::test]` runs each test on one thread, where tasks take
//! turns, one poll at a time. That hides every bug that needs two tasks to
//! act at the same moment, such as two pages each taking one permit and then
//! waiting for the other's. The tests about deadlock and isolation therefore
//! run on four worker threads (`flavor = "multi_thread"`), under load.
//!
//! Timing: six tests pause tokio's clock. That is safe only because none
//! of them waits on a socket served by another thread: two run their fake
//! upstreams in-process, on the same runtime and the same clock, and four
//! call the bulkhead alone, with no upstream at all (see the workbook's
//! notes on paused time and real sockets). Every other test runs in real
//! time and asserts no durations: where a test needs something to happen
//! "at once", it gives it seconds, against an upstream that never answers.

use std::num::NonZeroUsize;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fake_upstreams::Service;
use fake_upstreams::fast::{Behaviour, FastUpstream};
use fake_upstreams::mock::MockUpstreams;
use fake_upstreams::testing::{PATIENCE, loopback_client, wait_until, within_time_limit};
use futures::FutureExt as _;
use step3_backpressure::{
    Bulkhead, ConfigError, FetchError, Inventory, PagePermits, Price, Product, ReviewStats,
    Upstream, UpstreamUrls, fetch_json_guarded, fetch_many, fetch_product,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

/// A wait for a permit long enough that nothing is shed in tests that are
/// not about shedding.
const NO_SHEDDING: Duration = Duration::from_secs(30);

/// How long pages may go without a single one finishing before a test calls
/// them frozen. Pages that only take their permits and give them back finish
/// thousands of times a second, even on a busy machine.
const STALL_LIMIT: Duration = Duration::from_secs(3);

/// How long a paused-clock test lets a waiting future run before it looks
/// at what the future holds. On a paused clock this costs no real time: the
/// clock jumps ahead as soon as every task is waiting.
const SETTLE: Duration = Duration::from_secs(1);

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

/// With a wait of zero, a call or a page that finds its compartment full is shed at once, without waiting at all.
#[tokio::test(start_paused = true)]
async fn a_zero_wait_sheds_at_once() {
    // Paused time: nothing here talks to an upstream, only to the bulkhead,
    // so the clock moves only when every task waits for a timer. A call that
    // sheds at once therefore takes exactly no time, and one that waits
    // makes the clock jump, however busy the machine is.
    within_time_limit(async {
        // Arrange: a cap of 1 and no wait at all. A free permit is still
        // handed out with a zero wait, to a call and to a page, every time:
        // "is a permit free?" must be asked before "is time up?", not raced
        // against it.
        let bulkhead = bulkhead(1, Duration::ZERO);
        for attempt in 1..=32 {
            let call = bulkhead.acquire(Upstream::Pricing).await;
            assert!(
                call.is_ok(),
                "attempt {attempt}: pricing's permit is free, so a zero wait must still take \
                 it, got {call:?}"
            );
            drop(call);
            let page = bulkhead.admit_page().await;
            assert!(
                page.is_ok(),
                "attempt {attempt}: every permit is free, so a zero wait must still admit the \
                 page, got {page:?}"
            );
        }
        // Then pricing's only permit is taken.
        let _pricing_call = bulkhead
            .acquire(Upstream::Pricing)
            .await
            .unwrap_or_else(|error| {
                panic!("pricing's permit is free, so a zero wait must still take it, got {error:?}")
            });

        // Act: a call to pricing, then a whole page, both while pricing is full.
        let started = Instant::now();
        let call = tokio::time::timeout(SETTLE, bulkhead.acquire(Upstream::Pricing))
            .await
            .unwrap_or_else(|_| panic!("{}", still_waiting_with_a_zero_wait("a call to pricing")));
        let page = tokio::time::timeout(SETTLE, bulkhead.admit_page())
            .await
            .unwrap_or_else(|_| panic!("{}", still_waiting_with_a_zero_wait("a page")));
        let waited = started.elapsed();

        // Assert
        assert!(
            matches!(
                call,
                Err(FetchError::Overloaded {
                    upstream: Upstream::Pricing
                })
            ),
            "pricing is full and the wait is zero: the call should be shed with \
             Overloaded {{ upstream: Pricing }}, got {call:?}"
        );
        assert!(
            matches!(
                page,
                Err(FetchError::Overloaded {
                    upstream: Upstream::Pricing
                })
            ),
            "pricing is full and the wait is zero: the page should be shed on pricing, got \
             {page:?}"
        );
        assert_eq!(
            waited,
            Duration::ZERO,
            "with a zero wait, shedding took {waited:?} on a paused clock: something waited \
             for a timer. A zero wait sheds at once"
        );
        assert_eq!(
            free_permits(&bulkhead),
            [1, 0, 1],
            "the shed page must give back what it had taken (inventory, pricing, reviews); \
             only the first call's pricing permit is still held"
        );
    })
    .await;
}

/// The failure message for a bulkhead with a zero wait that is still waiting.
fn still_waiting_with_a_zero_wait(what: &str) -> String {
    format!(
        "with a zero wait, {what} was still waiting for pricing after {SETTLE:?} (paused clock): \
         `Duration::ZERO` means \"do not wait, shed at once\", not \"wait without a limit\""
    )
}

/// A wait too long to add to the clock (`Duration::MAX`: "queue without limit") hands out free permits and waits for a taken one, and never panics.
#[tokio::test(start_paused = true)]
async fn a_wait_without_limit_waits_and_never_panics() {
    // Paused time: only the bulkhead takes part, no upstream.
    within_time_limit(async {
        // Arrange: a cap of 1 and the longest wait a Duration can say.
        let bulkhead = bulkhead(1, Duration::MAX);

        // Act: a free permit, then a call that finds it taken, then a page.
        let taken = bulkhead.acquire(Upstream::Pricing).await;
        let waiting = tokio::time::timeout(SETTLE, bulkhead.acquire(Upstream::Pricing)).await;
        let page = tokio::time::timeout(SETTLE, bulkhead.admit_page()).await;

        // Assert
        assert!(
            taken.is_ok(),
            "with Duration::MAX as the wait, a free permit must still be handed out (did \
             `now + max_wait` overflow? Instant::checked_add says when it would)"
        );
        assert!(
            waiting.is_err(),
            "with pricing's only permit taken and no limit on the wait, the call must still be \
             waiting after {SETTLE:?}, got {waiting:?}"
        );
        assert!(
            page.is_err(),
            "a page that needs pricing's taken permit must still be waiting, got {page:?}"
        );
    })
    .await;
}

/// Callers waiting for a full compartment are served first come, first served: a permit given back goes to the caller that has waited longest, not to one that arrives as it comes back.
#[tokio::test(start_paused = true)]
async fn a_permit_given_back_goes_to_the_caller_that_has_waited_longest() {
    // Paused time: only the bulkhead takes part, no upstream.
    within_time_limit(async {
        // Arrange: a cap of 1, its permit taken, and a caller waiting for it.
        let bulkhead = bulkhead(1, Duration::from_millis(100));
        let taken = bulkhead
            .acquire(Upstream::Pricing)
            .await
            .expect("an empty bulkhead hands out a permit");
        let mut waiting = pin!(bulkhead.acquire(Upstream::Pricing));
        assert!(
            tokio::time::timeout(Duration::from_millis(10), waiting.as_mut())
                .await
                .is_err(),
            "pricing's only permit is taken: the second call should wait for it"
        );

        // Act: the permit comes back, and a new call asks at that moment.
        drop(taken);
        let newcomer = bulkhead.acquire(Upstream::Pricing).now_or_never();
        let waited = tokio::time::timeout(SETTLE, waiting).await;

        // Assert
        assert!(
            !matches!(newcomer, Some(Ok(_))),
            "a call that arrived as pricing's permit came back took it, ahead of the call that \
             had waited for it: waiting callers are served in the order they came (the \
             semaphore's queue is fair; do not poll `try_acquire` in a loop)"
        );
        assert!(
            matches!(waited, Ok(Ok(_))),
            "the call that waited longest should get the permit that came back, got {waited:?}"
        );
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

/// A page's permits each come from their own upstream's compartment, so each can go back on its own.
#[tokio::test]
async fn each_of_a_pages_permits_belongs_to_its_own_upstream() {
    within_time_limit(async {
        // Arrange: an empty bulkhead with a cap of 1, so each compartment's
        // count shows at once whose permit was given back.
        let bulkhead = bulkhead(1, NO_SHEDDING);

        // Act: admit a page, then give its permits back one by one, as its
        // calls would when they end.
        let PagePermits {
            inventory,
            pricing,
            reviews,
        } = bulkhead
            .admit_page()
            .await
            .expect("an empty bulkhead admits a page");
        let mut free_after_each = vec![free_permits(&bulkhead)];
        drop(inventory);
        free_after_each.push(free_permits(&bulkhead));
        drop(pricing);
        free_after_each.push(free_permits(&bulkhead));
        drop(reviews);
        free_after_each.push(free_permits(&bulkhead));

        // Assert: free permits [inventory, pricing, reviews] after admission,
        // then after dropping `inventory`, `pricing` and `reviews` in turn.
        assert_eq!(
            free_after_each,
            [[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]],
            "free permits [inventory, pricing, reviews] after admitting a page and after \
             dropping its `inventory`, `pricing` and `reviews` permits in turn: each field of \
             `PagePermits` must hold a permit of the upstream it is named after, because it is \
             moved into that upstream's call and must free that upstream when the call ends"
        );
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

/// A page shed while several compartments are full names the first of them in the permit order (inventory, pricing, reviews), and keeps no permit.
#[tokio::test(start_paused = true)]
async fn a_shed_page_names_the_first_full_upstream_in_the_permit_order() {
    // Paused time: only the bulkhead takes part, no upstream, so each wait
    // below costs no real time.
    within_time_limit(async {
        let [inventory, pricing, reviews] =
            [Upstream::Inventory, Upstream::Pricing, Upstream::Reviews];
        // (the upstreams whose only permit is held, the one the page must name)
        let cases = [
            (vec![pricing, reviews], pricing),
            (vec![inventory, reviews], inventory),
            (vec![inventory, pricing], inventory),
            (vec![inventory, pricing, reviews], inventory),
        ];
        for (full, first_full) in cases {
            // Arrange: a cap of 1, and the `full` upstreams' permits held.
            let bulkhead = bulkhead(1, Duration::from_millis(10));
            let mut held = Vec::new();
            for &upstream in &full {
                held.push(
                    bulkhead
                        .acquire(upstream)
                        .await
                        .expect("an empty bulkhead hands out a permit"),
                );
            }

            // Act
            let page = bulkhead.admit_page().await;

            // Assert
            assert!(
                matches!(page, Err(FetchError::Overloaded { upstream }) if upstream == first_full),
                "{full:?} stayed full for the whole wait: the page should be shed on the first \
                 of them in the permit order (inventory, pricing, reviews), {first_full}, got \
                 {page:?}"
            );
            let free_after = [inventory, pricing, reviews]
                .map(|upstream| usize::from(!full.contains(&upstream)));
            assert_eq!(
                free_permits(&bulkhead),
                free_after,
                "free permits [inventory, pricing, reviews] after a page was shed while {full:?} \
                 were full: the page must give back whatever it had taken"
            );
        }
    })
    .await;
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

/// A page that waits for inventory, first in the permit order, holds no permit at all, even after it has already waited for another one.
#[tokio::test(start_paused = true)]
async fn a_page_waiting_for_inventory_holds_no_other_permit() {
    // Paused time: only the bulkhead takes part, no upstream, so the clock
    // jumps ahead whenever every task waits. `SETTLE` then costs no real
    // time, and lets a page that can still make progress finish first.
    within_time_limit(async {
        // Arrange: a cap of 1 and a long wait. An earlier page's inventory
        // and reviews calls are done; its pricing call is still running.
        let bulkhead = bulkhead(1, NO_SHEDDING);
        let PagePermits {
            inventory,
            pricing: earlier_pricing_call,
            reviews,
        } = bulkhead
            .admit_page()
            .await
            .expect("an empty bulkhead admits a page");
        drop((inventory, reviews));
        // The next page arrives, and has to wait for pricing.
        let mut page = pin!(bulkhead.admit_page());
        let admitted = tokio::time::timeout(SETTLE, page.as_mut()).await;
        assert!(
            admitted.is_err(),
            "pricing's only permit is held and the wait is long: the page should wait, got \
             {admitted:?}"
        );

        // Act: a call to inventory comes in and takes inventory's permit, if
        // the waiting page left it free. Then the earlier pricing call ends.
        // (Held, if it got one, until the end of the test.)
        let _inventory_call = bulkhead.acquire(Upstream::Inventory).now_or_never();
        drop(earlier_pricing_call);
        let admitted = tokio::time::timeout(SETTLE, page.as_mut()).await;

        // Assert: either the page had kept inventory's permit while it waited
        // (the permit order) and now has all three, or the call got inventory
        // first, and the page waits for it again, holding nothing.
        match admitted {
            Ok(admitted) => {
                admitted.expect("every permit is free for the page: it should be admitted");
            }
            Err(_still_waiting) => assert_eq!(
                [
                    bulkhead.available_permits(Upstream::Pricing),
                    bulkhead.available_permits(Upstream::Reviews),
                ],
                [1, 1],
                "free permits [pricing, reviews]: the page now waits for inventory (a call \
                 took it while the page waited for pricing), and holds pricing's or reviews' \
                 permit while it waits. Inventory is first in the permit order (inventory, \
                 pricing, reviews), so a page waiting for it must hold nothing, whatever the \
                 compartments looked like when the page arrived"
            ),
        }
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

/// Caps from 1 up to what a semaphore can count are accepted; one more is refused with `CapTooLarge`.
#[test]
fn caps_up_to_the_semaphore_limit_are_accepted_and_larger_ones_refused() {
    let limit = tokio::sync::Semaphore::MAX_PERMITS;

    let too_large = Bulkhead::new(limit + 1, Duration::from_millis(10));
    let largest = Bulkhead::new(limit, Duration::from_millis(10));
    let smallest = Bulkhead::new(1, Duration::from_millis(10));

    match too_large {
        Err(error) => assert_eq!(
            error,
            ConfigError::CapTooLarge {
                requested: limit + 1,
                limit
            },
            "a cap above Semaphore::MAX_PERMITS should be CapTooLarge, naming both numbers"
        ),
        Ok(bulkhead) => panic!(
            "a cap of {} is more than a tokio semaphore can count ({limit}): refuse it with \
             ConfigError::CapTooLarge, got {bulkhead:?}",
            limit + 1
        ),
    }
    for (cap, built) in [(limit, largest), (1, smallest)] {
        let bulkhead = built.unwrap_or_else(|error| {
            panic!("a cap of {cap} is a valid configuration, but it was refused: {error}")
        });
        assert_eq!(
            free_permits(&bulkhead),
            [cap; 3],
            "a bulkhead with a cap of {cap} starts with {cap} free permits per upstream"
        );
    }
}

// ANCHOR: no_deadlock
/// Pages admitted on many threads never deadlock: with a cap of 1, four clients on four worker threads, and calls that end in every order, 20,000 pages all finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_admitted_on_many_threads_at_once_never_deadlock() {
    // Four worker threads, so pages really are admitted at the same moment
    // on different threads. `#[tokio::test]` alone runs every task on one
    // thread, one poll at a time, and this test could not fail there.
    within_time_limit(async {
        // Arrange: one permit per upstream, and no shedding, so every page
        // must eventually get all three permits. No upstream either: the
        // pages take their permits and give them back as their calls would.
        const CLIENTS: usize = 4;
        const PAGES_PER_CLIENT: usize = 5_000;
        let bulkhead = Arc::new(bulkhead(1, NO_SHEDDING));
        let (page_finished, mut finished_pages) = mpsc::unbounded_channel();

        // Act: each client asks for one page after another, from its own
        // task. A few clients rather than a crowd: behind a long queue every
        // compartment always looks full, so every page would find the same
        // state, while here pages arrive as the compartments fill and empty.
        let mut clients = JoinSet::new();
        for client in 0..CLIENTS {
            let (bulkhead, page_finished) = (Arc::clone(&bulkhead), page_finished.clone());
            clients.spawn(async move {
                for page in 0..PAGES_PER_CLIENT {
                    let permits = bulkhead.admit_page().await.unwrap_or_else(|error| {
                        panic!("nothing is shed in this test, yet a page got {error:?}")
                    });
                    // A page's three calls end one by one, in any order, so
                    // the next pages find the compartments in every state.
                    end_calls_in_order(permits, CALL_END_ORDERS[(client + page) % 6]).await;
                    page_finished.send(()).expect("the test still counts pages");
                    // Clients pause between pages, each for a different
                    // moment, so that they do not ask in lockstep.
                    for _ in 0..(page * 7 + client) % 5 {
                        tokio::task::yield_now().await;
                    }
                }
            });
        }
        drop(page_finished);

        // Assert: pages keep finishing until all have. A deadlock shows as a
        // silence, with every permit taken and no page moving.
        let mut finished = 0;
        while let Some(()) = tokio::time::timeout(STALL_LIMIT, finished_pages.recv())
            .await
            .unwrap_or_else(|_silence| {
                panic!(
                    "no page finished for {STALL_LIMIT:?} ({finished} of {} done); free \
                     permits (inventory, pricing, reviews): {:?}. The pages hold permits \
                     while they wait for each other's (hold-and-wait): admit a page so that \
                     no two pages can each hold a permit the other one waits for",
                    CLIENTS * PAGES_PER_CLIENT,
                    free_permits(&bulkhead),
                )
            })
        {
            finished += 1;
        }
        while let Some(client) = clients.join_next().await {
            if let Err(failed) = client {
                std::panic::resume_unwind(failed.into_panic());
            }
        }
        assert_eq!(finished, CLIENTS * PAGES_PER_CLIENT, "every page finishes");
    })
    .await;
}

/// The six orders in which a page's three calls can end: indexes into
/// (inventory, pricing, reviews).
const CALL_END_ORDERS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

/// Gives a page's permits back one by one in `order`, letting other tasks
/// run in between, as the page's calls would when they end one after another.
async fn end_calls_in_order(permits: PagePermits, order: [usize; 3]) {
    let PagePermits {
        inventory,
        pricing,
        reviews,
    } = permits;
    let mut calls = [Some(inventory), Some(pricing), Some(reviews)];
    for call in order {
        drop(calls[call].take());
        tokio::task::yield_now().await;
    }
}
// ANCHOR_END: no_deadlock

// Part "a worker pool" (src/pool.rs), the last part of this step: its tests
// come after the bulkhead's. A crate root's `mod` looks for tests/<name>.rs,
// which cargo would build as a test target of its own: the part's file lives
// in tests/step3/ and is named here.
#[path = "step3/worker_pool.rs"]
mod worker_pool;
