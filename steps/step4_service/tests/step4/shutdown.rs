//! Part "shutdown": `serve` (`src/shutdown.rs`), axum's graceful shutdown with
//! a bound on the drain, and a client that hangs up mid-request.
//!
//! These tests bind a real loopback socket, because connections are the
//! point: the service runs behind `serve`, and the client is `reqwest`. Real
//! time, wide margins.

use std::time::Duration;

use axum::http::StatusCode;
use fake_upstreams::fast::Behaviour;
use fake_upstreams::testing::{PATIENCE, loopback_client, wait_until, within_time_limit};
use step4_service::telemetry::{UPSTREAM_CALLS, UPSTREAM_IN_FLIGHT};
use step4_service::{Product, ServeError, bind_listener, serve};
use tokio::time::Instant;

use crate::common::{Harness, expected_product, latency_count, ms, patient, value_of};

// ---------------------------------------------------------------------------
// Real sockets: disconnects and graceful shutdown
// ---------------------------------------------------------------------------

/// Starts `serve` on a loopback port; returns the address, a trigger for the
/// shutdown signal, and the serving task.
fn start_server(
    service: &Harness,
    drain_bound: Duration,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), ServeError>>,
) {
    let listener = bind_listener(([127, 0, 0, 1], 0).into()).expect("binds loopback");
    let addr = listener.local_addr().expect("a bound address");
    let (trigger, signal) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        service.router(),
        async move {
            let _ = signal.await;
        },
        drain_bound,
    ));
    (addr, trigger, server)
}

/// A client that hangs up mid-request cancels the service's calls: counted as `cancelled`, no latency, gauge back to 0.
#[tokio::test]
async fn a_client_that_hangs_up_leaves_the_in_flight_gauge_at_zero() {
    within_time_limit(async {
        let service = Harness::start(
            Behaviour::default().hanging(),
            Behaviour::default(),
            Behaviour::default(),
            |config| patient(config, Duration::from_secs(10)),
        )
        .await;
        let (addr, _trigger, _server) = start_server(&service, Duration::from_secs(1));
        let client = tokio::spawn(
            loopback_client()
                .get(format!("http://{addr}/products/42"))
                .send(),
        );
        wait_until(PATIENCE, || service.inventory.counters().in_flight == 1)
            .await
            .expect("the service's inventory call is in flight");
        assert_eq!(
            value_of(
                &service.metrics_now(),
                UPSTREAM_IN_FLIGHT,
                &[("upstream", "inventory")]
            ),
            1.0,
            "while the call runs, the in-flight gauge says so"
        );

        // Act: the client gives up, closing its connection.
        client.abort();

        let settled = wait_until(Duration::from_secs(5), || {
            let metrics = service.metrics_now();
            value_of(&metrics, UPSTREAM_IN_FLIGHT, &[("upstream", "inventory")]) == 0.0
                && value_of(
                    &metrics,
                    UPSTREAM_CALLS,
                    &[("upstream", "inventory"), ("outcome", "cancelled")],
                ) == 1.0
        })
        .await
        .is_ok();
        let metrics = service.metrics_now();
        assert!(
            settled,
            "after the client hung up, inventory's call should be counted as cancelled and its in-flight gauge be back at 0; metrics were:\n{metrics}"
        );
        assert_eq!(
            latency_count(&metrics, "inventory"),
            0.0,
            "a cancelled call never ended: no latency; metrics were:\n{metrics}"
        );
    })
    .await;
}

/// On the shutdown signal, a request already in flight still gets its 200, and `serve` returns only after it.
#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    within_time_limit(async {
        // Arrange: inventory takes 400 ms, so the request is mid-flight
        // when the signal comes.
        let service = Harness::start(
            Behaviour::fixed(ms(400)),
            Behaviour::default(),
            Behaviour::default(),
            |config| patient(config, Duration::from_secs(3)),
        )
        .await;
        let (addr, trigger, server) = start_server(&service, Duration::from_secs(5));
        let request = tokio::spawn(
            loopback_client()
                .get(format!("http://{addr}/products/42"))
                .send(),
        );
        wait_until(PATIENCE, || service.inventory.counters().in_flight == 1)
            .await
            .expect("the service's inventory call is in flight");

        // Act
        trigger
            .send(())
            .expect("the server is listening for the signal");

        // Assert: while the upstream still holds the request, `serve` has
        // not returned. (Everything here runs on this one thread, so no
        // other task moves between the two checks.)
        while service.inventory.counters().in_flight == 1 {
            assert!(
                !server.is_finished(),
                "serve returned while a request was still in flight: it must wait for the drain"
            );
            tokio::time::sleep(ms(5)).await;
        }
        let response = request
            .await
            .expect("the request task")
            .expect("the in-flight request gets a response, not a reset connection");
        assert_eq!(response.status(), StatusCode::OK);
        let product: Product = response.json().await.expect("a Product as JSON");
        assert_eq!(product, expected_product());
        let served = server.await.expect("the server task");
        assert!(
            served.is_ok(),
            "serve returns Ok once the in-flight request is done, got {served:?}"
        );
    })
    .await;
}

/// After the shutdown signal `serve` accepts no new connection, even while it is still draining a request in flight.
#[tokio::test]
async fn after_the_shutdown_signal_no_new_connection_is_accepted() {
    within_time_limit(async {
        // Arrange: reviews hangs and the drain bound is long, so `serve` is
        // still draining the first request for the whole test.
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default().hanging(),
            |config| patient(config, Duration::from_secs(10)),
        )
        .await;
        let (addr, trigger, _server) = start_server(&service, Duration::from_secs(10));
        let _request = tokio::spawn(
            loopback_client()
                .get(format!("http://{addr}/products/42"))
                .send(),
        );
        wait_until(PATIENCE, || service.reviews.counters().in_flight == 1)
            .await
            .expect("the service's reviews call is in flight");

        // Act
        trigger
            .send(())
            .expect("the server is listening for the signal");

        // Assert: soon after the signal, connecting fails (the listener is
        // closed) rather than being accepted and left to wait.
        let refused = async {
            loop {
                match tokio::net::TcpStream::connect(addr).await {
                    Err(_) => break,
                    Ok(accepted) => {
                        drop(accepted);
                        tokio::time::sleep(ms(5)).await;
                    }
                }
            }
        };
        assert!(
            tokio::time::timeout(Duration::from_secs(3), refused)
                .await
                .is_ok(),
            "3 s after the shutdown signal the server still accepted new connections: on the signal it stops \
             accepting, and only the requests already in flight are drained"
        );
    })
    .await;
}

/// Before any signal, `serve` keeps serving however long that takes: the drain bound starts at the signal.
#[tokio::test]
async fn the_drain_bound_starts_at_the_signal_not_before() {
    within_time_limit(async {
        // A drain bound of 200 ms and a request that takes 500 ms, with no
        // signal yet: the bound has nothing to do with it.
        let service = Harness::start(
            Behaviour::fixed(ms(500)),
            Behaviour::default(),
            Behaviour::default(),
            |config| patient(config, Duration::from_secs(3)),
        )
        .await;
        let (addr, trigger, server) = start_server(&service, ms(200));

        let response = loopback_client()
            .get(format!("http://{addr}/products/42"))
            .send()
            .await
            .expect("a request before any signal is served, however long it takes");

        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            !server.is_finished(),
            "serve stopped with no shutdown signal"
        );
        trigger
            .send(())
            .expect("the server is listening for the signal");
        let served = server.await.expect("the server task");
        assert!(
            served.is_ok(),
            "nothing in flight at the signal: serve returns Ok, got {served:?}"
        );
    })
    .await;
}

/// A request still running when the drain bound runs out does not hold shutdown hostage: `serve` returns `DrainTimedOut`.
#[tokio::test]
async fn shutdown_gives_up_on_requests_that_outlive_the_drain_bound() {
    within_time_limit(async {
        // Arrange: reviews hangs and the budget is long, so only the drain
        // bound can end the wait.
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default().hanging(),
            |config| patient(config, Duration::from_secs(10)),
        )
        .await;
        let drain_bound = ms(300);
        let (addr, trigger, server) = start_server(&service, drain_bound);
        let _request = tokio::spawn(
            loopback_client()
                .get(format!("http://{addr}/products/42"))
                .send(),
        );
        wait_until(PATIENCE, || service.reviews.counters().in_flight == 1)
            .await
            .expect("the service's reviews call is in flight");

        // Act
        let signalled = Instant::now();
        trigger
            .send(())
            .expect("the server is listening for the signal");
        let served = server.await.expect("the server task");
        let elapsed = signalled.elapsed();

        // Assert
        assert!(
            matches!(served, Err(ServeError::DrainTimedOut { bound }) if bound == drain_bound),
            "expected DrainTimedOut after {drain_bound:?}, got {served:?}"
        );
        assert!(
            elapsed >= drain_bound,
            "serve gave up after {elapsed:?}, before the {drain_bound:?} drain bound"
        );
        assert!(
            elapsed < drain_bound + Duration::from_secs(1),
            "serve took {elapsed:?} after the signal; the drain bound is {drain_bound:?}"
        );
    })
    .await;
}
