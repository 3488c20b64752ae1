//! `http_get` against a real axum server on 127.0.0.1: what each answer counts as.
//!
//! Real sockets, so real time (a paused clock would fire the client's timeout at once; see
//! the brief, "paused time + real sockets").

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use indicatif::ProgressBar;
use load_lab::{Load, Plan, http_get, load_client, run};

use crate::within;

const LIMIT: Duration = Duration::from_secs(10);

/// Starts a small server on a free loopback port, on the test's own runtime.
async fn start_server() -> SocketAddr {
    let app = Router::new()
        .route("/ok", get(|| async { "in stock" }))
        .route(
            "/unavailable",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "try later") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "finally"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

#[tokio::test]
async fn a_200_answer_is_a_success() {
    let address = start_server().await;
    let send = http_get(
        load_client(Duration::from_secs(2)),
        format!("http://{address}/ok"),
    );

    let outcome = within(LIMIT, send()).await;

    assert_eq!(outcome, Ok(()));
}

#[tokio::test]
async fn a_503_answer_is_the_error_kind_status_503() {
    let address = start_server().await;
    let url = format!("http://{address}/unavailable");
    let send = http_get(load_client(Duration::from_secs(2)), url);

    let outcome = within(LIMIT, send()).await;

    assert_eq!(outcome.unwrap_err().as_str(), "status 503");
}

#[tokio::test]
async fn a_refused_connection_is_the_error_kind_connect() {
    // Arrange: a port that was free a moment ago and has nobody listening now.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{closed_port}/ok");
    let send = http_get(load_client(Duration::from_secs(2)), url);

    let outcome = within(LIMIT, send()).await;

    assert_eq!(outcome.unwrap_err().as_str(), "connect");
}

#[tokio::test]
async fn an_answer_slower_than_the_client_timeout_is_the_error_kind_timeout() {
    let address = start_server().await;
    let send = http_get(
        load_client(Duration::from_millis(200)),
        format!("http://{address}/slow"),
    );

    let outcome = within(LIMIT, send()).await;

    assert_eq!(outcome.unwrap_err().as_str(), "timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_of_http_gets_counts_every_answer() {
    // Arrange: the whole path a lab takes, briefly: 4 workers for 300 ms after a 100 ms warm-up.
    let address = start_server().await;
    let send = http_get(
        load_client(Duration::from_secs(2)),
        format!("http://{address}/ok"),
    );
    let plan = Plan {
        load: Load::Closed { concurrency: 4 },
        warmup: Duration::from_millis(100),
        measure: Duration::from_millis(300),
    };

    let measurement = within(LIMIT, run(&plan, &ProgressBar::hidden(), send)).await;

    assert!(measurement.ok > 0);
    assert_eq!(measurement.error_count(), 0, "{:?}", measurement.errors);
    assert_eq!(measurement.latency_us.len(), measurement.ok);
}
