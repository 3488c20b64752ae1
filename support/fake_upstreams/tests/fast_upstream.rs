//! The fast fake upstream serves, delays, fails, hangs and counts as promised.
//!
//! These tests run the fake on the test's own runtime. Most use real time,
//! with wide margins, because a socket is involved; one shows the latency in
//! paused time.

mod loopback;

use std::time::Duration;

use fake_upstreams::Service;
use fake_upstreams::catalog::GARBAGE_BODY;
use fake_upstreams::fast::{Behaviour, CounterSnapshot, FastUpstream};
use fake_upstreams::testing::{PATIENCE, loopback_client, wait_until, within_time_limit};
use loopback::wait_until_refused;
use tokio::task::JoinSet;
use tokio::time::Instant;

const PRODUCT_ID: u64 = 42;

/// The product URL of `service` on `upstream`.
fn product_url(upstream: &FastUpstream, service: Service, product_id: u64) -> String {
    format!("{}{}", upstream.base_url(), service.path(product_id))
}

/// `GET url`, answering the status code.
async fn status_of(client: &reqwest::Client, url: String) -> u16 {
    let response = client.get(url).send().await.expect("the fake answers");
    response.status().as_u16()
}

async fn start(behaviour: Behaviour) -> FastUpstream {
    FastUpstream::start(behaviour)
        .await
        .expect("the fake binds to a free loopback port")
}

#[tokio::test]
async fn serves_each_services_catalog_body() {
    within_time_limit(async {
        let upstream = start(Behaviour::default()).await;
        let client = loopback_client();

        for service in Service::ALL {
            let response = client
                .get(product_url(&upstream, service, PRODUCT_ID))
                .send()
                .await
                .unwrap();

            assert_eq!(response.status().as_u16(), 200, "{service}");
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body, service.body(PRODUCT_ID), "{service}");
        }
    })
    .await;
}

#[tokio::test]
async fn answers_404_for_an_id_that_is_not_a_number() {
    within_time_limit(async {
        let upstream = start(Behaviour::default()).await;

        let status = status_of(
            &loopback_client(),
            format!("{}/pricing/forty-two", upstream.base_url()),
        )
        .await;

        assert_eq!(status, 404);
    })
    .await;
}

#[tokio::test]
async fn counts_completed_and_failed_answers() {
    within_time_limit(async {
        let upstream = start(Behaviour::default()).await;
        let client = loopback_client();

        status_of(
            &client,
            product_url(&upstream, Service::Reviews, PRODUCT_ID),
        )
        .await;
        status_of(&client, format!("{}/reviews/x", upstream.base_url())).await;

        assert_eq!(
            upstream.counters(),
            CounterSnapshot {
                requests: 2,
                completed: 1,
                failed: 1,
                in_flight: 0,
                peak_in_flight: 1,
                cancelled: 0,
            }
        );
    })
    .await;
}

#[tokio::test]
async fn fixed_latency_delays_each_answer_in_real_time() {
    within_time_limit(async {
        let latency = Duration::from_millis(300);
        let upstream = start(Behaviour::fixed(latency)).await;

        let started = Instant::now();
        let status = status_of(
            &loopback_client(),
            product_url(&upstream, Service::Inventory, 1),
        )
        .await;
        let elapsed = started.elapsed();

        assert_eq!(status, 200);
        assert!(elapsed >= latency, "answered after {elapsed:?}");
        assert!(
            elapsed < latency + Duration::from_secs(1),
            "answered after {elapsed:?}"
        );
    })
    .await;
}

/// The fake runs on this test's runtime, so its `sleep` uses the test's paused
/// clock: ten seconds of latency pass in virtual time, at once in real time.
///
/// This works because both ends of the socket live on the same runtime. When
/// it is idle, tokio first polls the socket (loopback data is already there)
/// and only then jumps the clock to the next timer, which is the fake's sleep.
/// Against wiremock (another thread, real time) the same test would see its
/// time limit fire at once instead.
#[tokio::test(start_paused = true)]
async fn fixed_latency_passes_in_virtual_time_when_the_clock_is_paused() {
    within_time_limit(async {
        let latency = Duration::from_secs(10);
        let upstream = start(Behaviour::fixed(latency)).await;

        let real_start = std::time::Instant::now();
        let virtual_start = Instant::now();
        let status = status_of(
            &loopback_client(),
            product_url(&upstream, Service::Pricing, 1),
        )
        .await;
        let virtual_elapsed = virtual_start.elapsed();

        assert_eq!(status, 200);
        assert!(virtual_elapsed >= latency, "{virtual_elapsed:?} virtual");
        assert!(
            virtual_elapsed < latency + Duration::from_secs(1),
            "{virtual_elapsed:?} virtual"
        );
        assert!(
            real_start.elapsed() < Duration::from_secs(5),
            "{:?} real",
            real_start.elapsed()
        );
    })
    .await;
}

#[tokio::test]
async fn a_failure_rate_of_one_answers_every_request_with_the_failure_status() {
    within_time_limit(async {
        let upstream = start(Behaviour::default().failing(1.0, 500)).await;
        let client = loopback_client();

        let mut statuses = Vec::new();
        for id in 1..=3 {
            statuses.push(status_of(&client, product_url(&upstream, Service::Reviews, id)).await);
        }

        assert_eq!(statuses, [500, 500, 500]);
    })
    .await;
}

#[tokio::test]
async fn a_hanging_upstream_never_answers() {
    within_time_limit(async {
        let upstream = start(Behaviour::default().hanging()).await;

        let outcome = loopback_client()
            .get(product_url(&upstream, Service::Inventory, PRODUCT_ID))
            .timeout(Duration::from_millis(500))
            .send()
            .await;

        let error = outcome.expect_err("a hanging upstream sends no response");
        assert!(error.is_timeout(), "expected a timeout, got {error:?}");
    })
    .await;
}

#[tokio::test]
async fn garbage_is_a_json_200_whose_body_does_not_parse() {
    within_time_limit(async {
        let upstream = start(Behaviour::default().garbage()).await;

        let response = loopback_client()
            .get(product_url(&upstream, Service::Pricing, PRODUCT_ID))
            .send()
            .await
            .unwrap();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();

        assert_eq!((status, content_type.as_str()), (200, "application/json"));
        assert_eq!(body, GARBAGE_BODY);
        assert!(serde_json::from_str::<serde_json::Value>(&body).is_err());
    })
    .await;
}

#[tokio::test]
async fn peak_in_flight_reaches_the_number_of_concurrent_requests() {
    within_time_limit(async {
        // A second of latency: all ten requests arrive long before the first
        // one is answered, so they are all in flight together.
        const CONCURRENT: u64 = 10;
        let upstream = start(Behaviour::fixed(Duration::from_secs(1))).await;
        let client = loopback_client();
        let mut requests = JoinSet::new();
        for id in 0..CONCURRENT {
            requests.spawn(status_of_owned(
                client.clone(),
                product_url(&upstream, Service::Inventory, id),
            ));
        }

        let statuses = requests.join_all().await;

        assert!(statuses.iter().all(|&status| status == 200), "{statuses:?}");
        let counters = upstream.counters();
        assert_eq!(counters.peak_in_flight, CONCURRENT, "{counters:?}");
        assert_eq!(counters.in_flight, 0, "{counters:?}");
    })
    .await;
}

/// [`status_of`] for a spawned task, which must own what it uses.
async fn status_of_owned(client: reqwest::Client, url: String) -> u16 {
    status_of(&client, url).await
}

#[tokio::test]
async fn a_request_whose_client_went_away_is_counted_as_cancelled() {
    within_time_limit(async {
        let upstream = start(Behaviour::default().hanging()).await;
        let request = tokio::spawn(status_of_owned(
            loopback_client(),
            product_url(&upstream, Service::Reviews, PRODUCT_ID),
        ));
        wait_until(PATIENCE, || upstream.counters().in_flight == 1)
            .await
            .expect("the request reaches the handler");

        // Dropping the client's future closes its connection.
        request.abort();

        wait_until(PATIENCE, || {
            let counters = upstream.counters();
            counters.cancelled == 1 && counters.in_flight == 0
        })
        .await
        .expect("the fake counts the cancellation");
    })
    .await;
}

#[tokio::test]
async fn a_new_behaviour_applies_to_the_next_request() {
    within_time_limit(async {
        let upstream = start(Behaviour::default()).await;
        let client = loopback_client();
        let url = product_url(&upstream, Service::Pricing, PRODUCT_ID);
        let before = status_of(&client, url.clone()).await;

        upstream.set_behaviour(Behaviour::default().failing(1.0, 503));
        let after = status_of(&client, url).await;

        assert_eq!((before, after), (200, 503));
    })
    .await;
}

#[tokio::test]
async fn resetting_the_counters_zeroes_them() {
    within_time_limit(async {
        let upstream = start(Behaviour::default()).await;
        status_of(
            &loopback_client(),
            product_url(&upstream, Service::Inventory, 1),
        )
        .await;

        upstream.reset_counters();

        assert_eq!(upstream.counters(), CounterSnapshot::default());
    })
    .await;
}

#[tokio::test]
async fn a_dropped_upstream_stops_accepting_connections() {
    within_time_limit(async {
        let upstream = start(Behaviour::default()).await;
        let url = product_url(&upstream, Service::Inventory, PRODUCT_ID);

        drop(upstream);

        wait_until_refused(&url).await;
    })
    .await;
}

/// A degrading upstream answers at its base latency alone, and more slowly
/// when more requests than its knee are in flight at once.
#[tokio::test]
async fn a_degrading_upstream_slows_down_past_its_knee() {
    within_time_limit(async {
        // Base 300 ms, so that all four requests below arrive while the first
        // is still in flight; past 2 in flight, each extra one adds 200 ms.
        let base = Duration::from_millis(300);
        let per_request = Duration::from_millis(200);
        let upstream = start(Behaviour::fixed(base).degrading_past(2, per_request)).await;
        let client = loopback_client();

        let alone = Instant::now();
        status_of(&client, product_url(&upstream, Service::Pricing, 1)).await;
        let alone = alone.elapsed();

        let together = Instant::now();
        let mut requests = JoinSet::new();
        for id in 0..4 {
            requests.spawn(status_of_owned(
                client.clone(),
                product_url(&upstream, Service::Pricing, id),
            ));
        }
        let statuses = requests.join_all().await;
        let together = together.elapsed();

        assert!(statuses.iter().all(|&status| status == 200), "{statuses:?}");
        assert!(
            alone >= base && alone < base + Duration::from_millis(300),
            "alone: {alone:?}"
        );
        // The last of four to arrive sees 4 in flight: 2 beyond the knee.
        let slowest = base + per_request * 2;
        assert!(
            together >= slowest && together < slowest + Duration::from_secs(1),
            "four at once: {together:?}, expected about {slowest:?}"
        );
    })
    .await;
}

/// With a late body, the status and headers arrive when the latency is over
/// and the body `body_delay` later; until the body is sent, the request is
/// still in flight.
///
/// Paused time makes the ten seconds exact and instant. It is safe because
/// the fake runs on this test's runtime (see the paused-latency test above).
#[tokio::test(start_paused = true)]
async fn a_late_body_follows_its_headers_and_keeps_the_request_in_flight() {
    within_time_limit(async {
        let body_delay = Duration::from_secs(10);
        let upstream = start(Behaviour::default().sending_body_after(body_delay)).await;
        let started = Instant::now();

        let response = loopback_client()
            .get(product_url(&upstream, Service::Pricing, PRODUCT_ID))
            .send()
            .await
            .expect("the fake sends its headers");
        let headers_after = started.elapsed();
        let in_flight_while_the_body_is_due = upstream.counters().in_flight;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.expect("the late body is JSON");
        let body_after = started.elapsed();

        assert_eq!(status, 200);
        assert_eq!(body, Service::Pricing.body(PRODUCT_ID));
        assert!(
            headers_after < body_delay,
            "the headers came after {headers_after:?}, with the body: they should come first"
        );
        assert!(
            body_after >= body_delay,
            "the body came after {body_after:?}, before its delay of {body_delay:?}"
        );
        assert_eq!(
            in_flight_while_the_body_is_due, 1,
            "a request whose body is not sent yet is in flight"
        );
        let counters = upstream.counters();
        assert_eq!(
            (counters.completed, counters.in_flight),
            (1, 0),
            "{counters:?}"
        );
    })
    .await;
}

/// A client that reads the headers and then goes away, before the late body,
/// is counted as a cancellation.
#[tokio::test]
async fn a_client_that_leaves_before_a_late_body_is_counted_as_cancelled() {
    within_time_limit(async {
        let upstream =
            start(Behaviour::default().sending_body_after(Duration::from_secs(3_600))).await;
        let response = loopback_client()
            .get(product_url(&upstream, Service::Reviews, PRODUCT_ID))
            .send()
            .await
            .expect("the fake sends its headers");
        assert_eq!(response.status().as_u16(), 200);

        // Dropping the response closes its connection, mid-body.
        drop(response);

        wait_until(PATIENCE, || {
            let counters = upstream.counters();
            counters.cancelled == 1 && counters.in_flight == 0 && counters.completed == 0
        })
        .await
        .expect("the fake counts the cancellation");
    })
    .await;
}
