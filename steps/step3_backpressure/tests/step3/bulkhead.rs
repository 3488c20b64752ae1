//! Part "the bulkhead": `Bulkhead::new`, `acquire` and `admit_page` in
//! `src/bulkhead.rs`, tested on the bulkhead alone: no upstream, no request.
//!
//! A permit the test holds stands for a call in flight, so a test decides
//! exactly when a compartment is full and when a permit comes back, and can
//! look at what a waiting caller holds meanwhile.
//!
//! Timing: five tests pause tokio's clock. That is safe because nothing they
//! wait for is served by another thread: only the bulkhead's own waits run,
//! on the test's runtime, and the clock jumps ahead only when every task is
//! waiting. The deadlock test runs in real time on four worker threads, under
//! load, and reports a freeze (seconds without a finished page) instead of
//! hanging.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use fake_upstreams::testing::within_time_limit;
use futures::FutureExt as _;
use step3_backpressure::{Bulkhead, ConfigError, FetchError, PagePermits, Upstream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::{NO_SHEDDING, bulkhead, free_permits};

/// How long a paused-clock test lets a waiting future run before it looks
/// at what the future holds. On a paused clock this costs no real time: the
/// clock jumps ahead as soon as every task is waiting.
const SETTLE: Duration = Duration::from_secs(1);

/// How long pages may go without a single one finishing before a test calls
/// them frozen. Pages that only take their permits and give them back finish
/// thousands of times a second, even on a busy machine.
const STALL_LIMIT: Duration = Duration::from_secs(3);

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
