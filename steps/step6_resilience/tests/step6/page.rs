//! Part "the page": partial responses and statuses: `ProductPage::assemble`
//! in `src/product.rs`, `FetchError::http_status` in `src/error.rs`, and how
//! `fetch_product_page` in `src/page.rs` treats each section's outcome.
//!
//! Reviews are optional: their failure degrades the page. Inventory and
//! pricing are required: their failure fails the page, with the status that
//! says why. The tests that fetch a page use three `FastUpstream` fakes on
//! loopback in *real* time; those of `assemble` and `http_status` need no
//! upstream at all.

use std::time::Duration;

use fake_upstreams::fast::{Behaviour, CounterSnapshot};
use fake_upstreams::testing::{closed_port_url, loopback_client, wait_until, within_time_limit};
use step6_resilience::{
    BreakerConfig, Deadline, FetchError, Inventory, Price, ProductPage, ProductService, Resilience,
    ReviewStats, Upstream, UpstreamUrls, fetch_product_page,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::common::{
    Fakes, NOTICE_LIMIT, PRODUCT_ID, failing_503, fair_timeout, hanging, healthy, ms,
};

/// The three sections are fetched at the same time: all three requests are in flight together.
#[tokio::test]
async fn the_three_sections_are_fetched_at_the_same_time() {
    within_time_limit(async {
        // Slow but healthy: each answer takes half a second.
        let slow = || Behaviour::fixed(ms(500));
        let fakes = Fakes::start(slow(), slow(), slow()).await;
        let service = fakes.service(Resilience::off());
        let cancel = CancellationToken::new();

        let (page, overlapped) = tokio::join!(
            fetch_product_page(
                &service,
                PRODUCT_ID,
                Deadline::after(Duration::from_secs(10)),
                &cancel,
            ),
            // Stops watching once the page is surely over (3 × 500 ms).
            wait_until(ms(1_800), || fakes.all_have_in_flight(1)),
        );

        assert!(page.is_ok(), "every upstream answers, got {page:?}");
        assert!(
            overlapped.is_ok(),
            "the three requests must be in flight at the same time; a page that fetches one section after another never has them overlap"
        );
    })
    .await;
}

/// The deadline drops a hanging optional call, and the page is served degraded, on time.
#[tokio::test]
async fn the_deadline_drops_a_hanging_optional_call_and_degrades_the_page() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), healthy(), hanging()).await;
        let service = fakes.service(Resilience::off());
        let budget = ms(300);

        let started = Instant::now();
        let page = fetch_product_page(
            &service,
            PRODUCT_ID,
            Deadline::after(budget),
            &CancellationToken::new(),
        )
        .await;
        let elapsed = started.elapsed();
        let noticed = wait_until(NOTICE_LIMIT, || fakes.reviews.counters().cancelled == 1).await;

        let page = page.expect("reviews are optional: their timeout must not fail the page");
        assert_eq!(page.degraded, [Upstream::Reviews]);
        assert!(page.reviews.is_none());
        assert!(
            elapsed >= budget && elapsed < budget + ms(500),
            "the page must wait for reviews until the 300 ms deadline and no longer, took {elapsed:?}"
        );
        assert!(
            noticed.is_ok(),
            "the timed-out reviews request must be dropped; reviews counters: {:?}",
            fakes.reviews.counters()
        );
    })
    .await;
}

async fn page_with(fakes: &Fakes, resilience: Resilience) -> Result<ProductPage, FetchError> {
    let service = fakes.service(resilience);
    fetch_product_page(
        &service,
        PRODUCT_ID,
        Deadline::after(Duration::from_secs(2)),
        &CancellationToken::new(),
    )
    .await
}

/// Runs `assertions` with insta reading and writing snapshots in the step's
/// own `tests/snapshots/` folder, whichever crate runs these tests.
///
/// Left to itself, insta looks for a `snapshots/` folder next to the file
/// that asserts (here `tests/step6/snapshots/`), and finds that file from the
/// workspace root, which it asks `cargo metadata` for at run time; if that
/// fails it falls back to the crate's own folder. For the solution, whose
/// tests are these files in the exercise, that fallback is the wrong folder:
/// the snapshot looks new, the test fails and a stray `.snap.new` lands under
/// `solutions/`. Both crates sit two folders below the workspace root, so the
/// path is fixed here, at compile time.
fn with_this_files_snapshots(assertions: impl FnOnce()) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../steps/step6_resilience/tests/snapshots"
    ));
    settings.bind(assertions);
}

/// With every upstream healthy the page is complete and lists nothing as degraded.
#[tokio::test]
async fn a_healthy_page_is_complete() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), healthy(), healthy()).await;

        let page = page_with(&fakes, Resilience::off()).await;

        let page = page.expect("all three upstreams are healthy");
        assert!(
            page.reviews.is_some(),
            "reviews answered, so they are on the page"
        );
        assert!(
            page.degraded.is_empty(),
            "nothing failed, so nothing is degraded"
        );
    })
    .await;
}

/// A failing optional section is null and listed under "degraded" (an insta snapshot pins the JSON).
#[tokio::test]
async fn a_failing_optional_section_is_listed_as_degraded() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), healthy(), failing_503()).await;

        let page = page_with(&fakes, Resilience::off()).await;

        let page = page.expect("reviews are optional: their 503 must not fail the page");
        // The snapshot is the contract with the page's clients: review any
        // change to it (`cargo insta review`) as you would an API change.
        with_this_files_snapshots(|| insta::assert_json_snapshot!("degraded_page", page));
    })
    .await;
}

/// The given inventory and price sections, for building pages by hand.
fn inventory_and_price() -> (Inventory, Price) {
    let inventory = Inventory {
        in_stock: 3,
        warehouse: "ams-1".to_owned(),
    };
    let price = Price {
        amount_cents: 999,
        currency: "EUR".to_owned(),
    };
    (inventory, price)
}

/// Any failure of the reviews section degrades the page: a 404, an open breaker, a cancellation and a timeout alike.
#[test]
fn any_failure_of_the_reviews_section_degrades_the_page() {
    // Arrange: every error reviews can end with that needs no real request.
    let failures = [
        FetchError::Status {
            upstream: Upstream::Reviews,
            status: 404,
        },
        FetchError::CircuitOpen {
            upstream: Upstream::Reviews,
        },
        FetchError::Cancelled {
            upstream: Upstream::Reviews,
        },
        FetchError::Timeout {
            upstream: Upstream::Reviews,
        },
        FetchError::Overloaded {
            upstream: Upstream::Reviews,
        },
    ];

    for failure in failures {
        // Act
        let described = format!("{failure:?}");
        let (inventory, price) = inventory_and_price();
        let page = ProductPage::assemble(PRODUCT_ID, inventory, price, Err(failure));

        // Assert
        assert_eq!(page.reviews, None, "reviews failed with {described}");
        assert_eq!(
            page.degraded,
            [Upstream::Reviews],
            "reviews failed with {described}: the page has no reviews, and its client cannot tell \"no reviews\" from an error it never saw, so reviews must be listed as degraded"
        );
    }
}

/// A product with no reviews yet (`count == 0`) is a complete page: an answer, not a failure.
#[test]
fn a_product_without_reviews_is_a_complete_page() {
    // Arrange: reviews answered, and there are none yet.
    let (inventory, price) = inventory_and_price();
    let no_reviews_yet = ReviewStats {
        average_stars: 0.0,
        count: 0,
    };

    // Act
    let page = ProductPage::assemble(PRODUCT_ID, inventory, price, Ok(no_reviews_yet.clone()));

    // Assert
    assert_eq!(
        page.reviews,
        Some(no_reviews_yet),
        "reviews answered \"none yet\": that answer is on the page"
    );
    assert!(
        page.degraded.is_empty(),
        "nothing failed, so nothing is degraded: \"no reviews yet\" is what the degraded list tells apart from \"reviews are down\"; got {:?}",
        page.degraded
    );
}

/// A failing required section fails the page, with the upstream named and status 502.
#[tokio::test]
async fn a_failing_required_section_fails_the_page_with_502() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), failing_503(), healthy()).await;

        let page = page_with(&fakes, Resilience::off()).await;

        let error = page.expect_err("pricing is required: a page without a price is no page");
        assert!(
            matches!(
                error,
                FetchError::Status {
                    upstream: Upstream::Pricing,
                    status: 503
                }
            ),
            "the error must name pricing and its 503, got {error:?}"
        );
        assert_eq!(
            error.http_status(),
            502,
            "an upstream that answered badly is a 502 Bad Gateway"
        );
    })
    .await;
}

/// Any status error from a required upstream, a 4xx as much as a 5xx (a 503 or a 504 too), is a 502 for our client.
#[test]
fn any_error_status_from_a_required_upstream_is_a_502() {
    for status in [400, 404, 429, 500, 502, 503, 504] {
        // Arrange
        let error = FetchError::Status {
            upstream: Upstream::Pricing,
            status,
        };

        // Act
        let answered = error.http_status();

        // Assert
        assert_eq!(
            answered, 502,
            "pricing answered {status}, so the page answers 502 Bad Gateway: the upstream's status is about our request to it, not about the client's request to us (504 is for our own deadline passing, `Timeout`)"
        );
    }
}

/// A required section that sends garbage, or cannot be reached at all, fails the page with 502.
#[tokio::test]
async fn a_required_section_that_cannot_be_read_fails_the_page_with_502() {
    within_time_limit(async {
        let garbled = Fakes::start(healthy(), Behaviour::fixed(ms(10)).garbage(), healthy()).await;
        let healthy_fakes = Fakes::start(healthy(), healthy(), healthy()).await;
        // Inventory's address is a port nobody listens on any more.
        let unreachable = closed_port_url();
        let service = ProductService::new(
            loopback_client(),
            UpstreamUrls {
                inventory: unreachable,
                ..healthy_fakes.urls()
            },
            Resilience::off(),
        )
        .expect("a valid configuration");

        let undecodable = page_with(&garbled, Resilience::off())
            .await
            .expect_err("pricing's body is not a price");
        let unreached = fetch_product_page(
            &service,
            PRODUCT_ID,
            Deadline::after(Duration::from_secs(2)),
            &CancellationToken::new(),
        )
        .await
        .expect_err("inventory cannot be reached");

        assert!(
            matches!(
                undecodable,
                FetchError::Decode {
                    upstream: Upstream::Pricing,
                    ..
                }
            ),
            "got {undecodable:?}"
        );
        assert_eq!(
            undecodable.http_status(),
            502,
            "an upstream that answered with garbage is a 502 Bad Gateway"
        );
        assert!(
            matches!(
                unreached,
                FetchError::Transport {
                    upstream: Upstream::Inventory,
                    ..
                }
            ),
            "got {unreached:?}"
        );
        assert_eq!(
            unreached.http_status(),
            502,
            "an upstream that could not be reached is a 502 Bad Gateway"
        );
    })
    .await;
}

/// A required section that misses the deadline fails the page with Timeout and status 504.
#[tokio::test]
async fn a_required_section_past_the_deadline_fails_the_page_with_504() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), hanging(), healthy()).await;
        let service = fakes.service(Resilience::off());

        let page = fetch_product_page(
            &service,
            PRODUCT_ID,
            Deadline::after(ms(300)),
            &CancellationToken::new(),
        )
        .await;

        let error = page.expect_err("pricing hangs past the deadline");
        assert!(
            matches!(
                error,
                FetchError::Timeout {
                    upstream: Upstream::Pricing
                }
            ),
            "got {error:?}"
        );
        assert_eq!(
            error.http_status(),
            504,
            "a timeout is a 504 Gateway Timeout"
        );
    })
    .await;
}

/// An open breaker on a required section fails the page at once with 503, without calling it.
#[tokio::test]
async fn an_open_breaker_on_a_required_section_fails_fast_with_503() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), failing_503(), healthy()).await;
        let service = fakes.service(Resilience {
            breaker: Some(BreakerConfig {
                failure_threshold: 1,
                cool_down: Duration::from_secs(60),
                half_open_probes: 1,
                fair_timeout: fair_timeout(),
            }),
            ..Resilience::off()
        });
        let cancel = CancellationToken::new();
        let fetch = || {
            fetch_product_page(
                &service,
                PRODUCT_ID,
                Deadline::after(Duration::from_secs(2)),
                &cancel,
            )
        };

        let first = fetch().await;
        let second = fetch().await;

        assert!(
            matches!(first, Err(FetchError::Status { .. })),
            "the first page meets pricing's 503, got {first:?}"
        );
        let error = second.expect_err("pricing's breaker is open");
        assert!(
            matches!(
                error,
                FetchError::CircuitOpen {
                    upstream: Upstream::Pricing
                }
            ),
            "got {error:?}"
        );
        assert_eq!(
            error.http_status(),
            503,
            "not calling the upstream is a 503 Service Unavailable"
        );
        let shed = FetchError::Overloaded {
            upstream: Upstream::Pricing,
        };
        assert_eq!(
            shed.http_status(),
            503,
            "a call shed by our own full bulkhead was not sent either: a 503 too"
        );
        assert_eq!(
            fakes.pricing.counters(),
            CounterSnapshot {
                requests: 1,
                failed: 1,
                peak_in_flight: 1,
                ..CounterSnapshot::default()
            },
            "the open breaker must keep the second page from calling pricing at all"
        );
    })
    .await;
}
