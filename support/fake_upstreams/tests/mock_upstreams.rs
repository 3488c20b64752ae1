//! The wiremock fixtures behave as the steps' tests rely on.
//!
//! wiremock serves from its own threads in real time, so these tests run in
//! real time too, and timing checks have wide margins.

mod loopback;

use std::time::Duration;

use fake_upstreams::Service;
use fake_upstreams::catalog::GARBAGE_BODY;
use fake_upstreams::mock::MockUpstreams;
use fake_upstreams::testing::{loopback_client, within_time_limit};
use loopback::wait_until_refused;
use tokio::time::Instant;

const PRODUCT_ID: u64 = 42;

/// `GET {base}{path}`, answering the status and the body text.
async fn get(url: String) -> (u16, String) {
    let response = loopback_client()
        .get(url)
        .send()
        .await
        .expect("the fake answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body arrives"))
}

/// The product URL of `service` on `upstreams`.
fn product_url(upstreams: &MockUpstreams, service: Service, product_id: u64) -> String {
    format!(
        "{}{}",
        upstreams.base_url(service),
        service.path(product_id)
    )
}

#[tokio::test]
async fn healthy_upstreams_serve_each_services_body_for_any_id() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;

        for service in Service::ALL {
            for product_id in [PRODUCT_ID, 7] {
                let response = loopback_client()
                    .get(product_url(&upstreams, service, product_id))
                    .send()
                    .await
                    .unwrap();

                assert_eq!(response.status().as_u16(), 200, "{service}");
                let body: serde_json::Value = response.json().await.unwrap();
                assert_eq!(body, service.body(product_id), "{service} {product_id}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_slow_upstream_answers_only_after_its_delay() {
    within_time_limit(async {
        let delay = Duration::from_millis(300);
        let upstreams = MockUpstreams::start().await;
        upstreams.serve_slow(Service::Pricing, delay).await;

        let started = Instant::now();
        let (status, _) = get(product_url(&upstreams, Service::Pricing, PRODUCT_ID)).await;
        let elapsed = started.elapsed();

        assert_eq!(status, 200);
        assert!(elapsed >= delay, "answered after {elapsed:?}");
        assert!(
            elapsed < delay + Duration::from_secs(1),
            "answered after {elapsed:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_failing_upstream_answers_its_status_every_time() {
    within_time_limit(async {
        let upstreams = MockUpstreams::start().await;
        upstreams.serve_status(Service::Reviews, 503).await;

        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(
                get(product_url(&upstreams, Service::Reviews, PRODUCT_ID))
                    .await
                    .0,
            );
        }

        assert_eq!(statuses, [503, 503, 503]);
    })
    .await;
}

#[tokio::test]
async fn a_flaky_upstream_fails_exactly_n_times_then_succeeds() {
    within_time_limit(async {
        let upstreams = MockUpstreams::start().await;
        upstreams.serve_flaky(Service::Inventory, 2, 503).await;

        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(
                get(product_url(&upstreams, Service::Inventory, PRODUCT_ID))
                    .await
                    .0,
            );
        }

        assert_eq!(statuses, [503, 503, 200, 200]);
    })
    .await;
}

#[tokio::test]
async fn a_garbage_upstream_claims_json_but_sends_a_body_that_is_not() {
    within_time_limit(async {
        let upstreams = MockUpstreams::start().await;
        upstreams.serve_garbage(Service::Reviews).await;

        let response = loopback_client()
            .get(product_url(&upstreams, Service::Reviews, PRODUCT_ID))
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
async fn received_counts_the_requests_each_server_got() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;

        get(product_url(&upstreams, Service::Inventory, 1)).await;
        get(product_url(&upstreams, Service::Inventory, 2)).await;
        get(product_url(&upstreams, Service::Pricing, 1)).await;

        assert_eq!(upstreams.received(Service::Inventory).await, 2);
        assert_eq!(upstreams.received(Service::Pricing).await, 1);
        assert_eq!(upstreams.received(Service::Reviews).await, 0);
    })
    .await;
}

#[tokio::test]
async fn the_latest_serve_call_wins_over_earlier_ones() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;

        upstreams.serve_status(Service::Pricing, 500).await;
        let (status, _) = get(product_url(&upstreams, Service::Pricing, PRODUCT_ID)).await;

        assert_eq!(status, 500);
    })
    .await;
}

#[tokio::test]
async fn an_unmatched_request_is_answered_500_naming_its_method_and_path() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;

        let (status, body) = get(format!(
            "{}/inventory/not-a-number",
            upstreams.base_url(Service::Inventory)
        ))
        .await;

        assert_eq!(status, 500);
        assert_eq!(
            body,
            "fake_upstreams: no mock matched GET /inventory/not-a-number"
        );
        // The catch-all did its job. Forget it, or the server's verification
        // on drop (the next test's subject) would fail this test.
        upstreams.server(Service::Inventory).reset().await;
    })
    .await;
}

#[tokio::test]
async fn dropping_upstreams_that_saw_an_unmatched_request_fails_loudly() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        get(format!("{}/typo/42", upstreams.base_url(Service::Pricing))).await;

        // Drop on a task of its own: the panic ends that task, not this test.
        let dropped = tokio::spawn(async move { drop(upstreams) }).await;

        let panic = dropped.expect_err("the drop panics").into_panic();
        let message = panic
            .downcast_ref::<String>()
            .expect("wiremock panics with a formatted message");
        assert!(
            message.contains("fake_upstreams catch-all on pricing"),
            "{message}"
        );
        assert!(message.contains("/typo/42"), "{message}");
    })
    .await;
}

#[tokio::test]
async fn dropping_upstreams_that_saw_only_matched_requests_does_not_panic() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        get(product_url(&upstreams, Service::Reviews, PRODUCT_ID)).await;

        let dropped = tokio::spawn(async move { drop(upstreams) }).await;

        assert!(dropped.is_ok(), "dropping panicked: {dropped:?}");
    })
    .await;
}

#[tokio::test]
async fn a_dropped_upstream_stops_answering() {
    within_time_limit(async {
        let upstreams = MockUpstreams::healthy().await;
        let url = product_url(&upstreams, Service::Inventory, PRODUCT_ID);

        drop(upstreams);

        wait_until_refused(&url).await;
    })
    .await;
}
