//! Part "service": your page served over HTTP by the given edge
//! (`src/edge/`), which the `product-page` binary runs.
//!
//! The edge is given; what these tests check is that your page behaves
//! over a real connection as it does when called directly: a healthy page
//! is a `200` with the page's JSON; a client that disconnects mid-request
//! cancels every upstream call its page started, and leaves no task alive;
//! while the page holds a request, the in-flight limit sheds the next one;
//! and `/metrics` shows the requests and the breakers your page drove, each
//! upstream call's latency under its upstream and outcome (a call the
//! disconnected client abandoned under `cancelled`), and the runtime's
//! health.
//!
//! Real sockets, so real time with wide margins (a paused clock would jump
//! ahead while a request waits on a socket). No test asserts a speed: each
//! waits for a condition (requests in flight at the fakes, requests
//! cancelled, the task count back at its baseline) within a wide limit.
//! The edge runs on the test's own multi-thread runtime, as the binary
//! runs it, so the interleavings of a real server can happen.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fake_upstreams::fast::FastUpstream;
use fake_upstreams::testing::{loopback_client, wait_until, within_time_limit};
use step6_resilience::edge::{EdgeConfig, EdgeState, bind_listener, serve};
use step6_resilience::{BreakerConfig, HedgeConfig, HedgeDelay, ProductService, Resilience};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{
    Fakes, FakesOnTheirOwnRuntime, NOTICE_LIMIT, PRODUCT_ID, failing_503, fair_timeout, hanging,
    healthy, ms,
};

/// How long the fakes get to receive a page's requests over HTTP: two
/// loopback hops (client to edge, edge to fakes), with a wide margin for a
/// loaded machine.
const IN_FLIGHT_LIMIT: Duration = Duration::from_secs(5);

/// Breaker and hedge on, as the binary runs them. The breaker opens after
/// `failure_threshold` failures in a row and stays open for a minute (no
/// probe within a test); the hedge waits for 1,000 answers before it hedges
/// at all, so no test here sends a backup.
fn resilience_on(failure_threshold: u32) -> Resilience {
    Resilience {
        breaker: Some(BreakerConfig {
            failure_threshold,
            cool_down: Duration::from_secs(60),
            half_open_probes: 1,
            fair_timeout: fair_timeout(),
        }),
        hedge: Some(HedgeConfig {
            delay: HedgeDelay::Quantile {
                quantile: 0.95,
                floor: ms(5),
                min_samples: 1_000,
            },
            budget_ratio: 0.1,
            budget_burst: 10.0,
            latency_window: Duration::from_secs(10),
        }),
    }
}

/// The edge's settings in these tests: a budget far beyond any test's
/// waits (so no page ends at its deadline while a test looks at it), and
/// the given in-flight limit.
fn edge_config(max_in_flight: usize) -> EdgeConfig {
    EdgeConfig {
        request_budget: Duration::from_secs(10),
        max_in_flight,
        retry_after: Duration::from_secs(1),
    }
}

/// The edge, serving on a loopback port of its own on the test's runtime.
struct Edge {
    addr: SocketAddr,
    state: Arc<EdgeState>,
    server: tokio::task::JoinHandle<()>,
}

impl Edge {
    async fn start(service: ProductService, config: EdgeConfig) -> Edge {
        let state = Arc::new(EdgeState::new(service, config).expect("a valid edge configuration"));
        let listener = bind_listener(SocketAddr::from(([127, 0, 0, 1], 0))).expect("a free port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let serving = serve(
            listener,
            Arc::clone(&state),
            std::future::pending(),
            Duration::from_secs(1),
        );
        let server = tokio::spawn(async move {
            let _ = serving.await;
        });
        Edge {
            addr,
            state,
            server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn page_url(&self) -> String {
        self.url(&format!("/products/{PRODUCT_ID}"))
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A bare TCP connection to the edge.
async fn connect(addr: SocketAddr) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(addr)
        .await
        .expect("the edge accepts")
}

/// Sends `GET path` on `connection`, keeping it open afterwards.
async fn send_get(connection: &mut tokio::net::TcpStream, path: &str) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: edge\r\n\r\n");
    connection
        .write_all(request.as_bytes())
        .await
        .expect("the request is sent");
}

/// Reads from `connection` until the response seen so far ends with `body`.
async fn read_until_body(connection: &mut tokio::net::TcpStream, body: &str) {
    let mut seen = Vec::new();
    let mut buffer = [0_u8; 1024];
    while !seen.ends_with(body.as_bytes()) {
        let read = connection
            .read(&mut buffer)
            .await
            .expect("the edge answers");
        assert!(read > 0, "the edge closed the connection before answering");
        seen.extend_from_slice(&buffer[..read]);
    }
}

/// The value of the series `name` whose labels include every one of
/// `labels`, read from Prometheus' text format.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (label_part, value) = match rest.strip_prefix('{') {
            Some(labelled) => labelled.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        labels
            .iter()
            .all(|(key, wanted)| label_part.contains(&format!("{key}=\"{wanted}\"")))
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// A healthy page over HTTP is a 200 with the page's JSON, and the response carries the request's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_page_over_http_is_a_200_with_the_page_json_and_a_request_id() {
    within_time_limit(async {
        let fakes = Fakes::start(healthy(), healthy(), healthy()).await;
        let edge = Edge::start(fakes.service(resilience_on(5)), edge_config(8)).await;
        let client = loopback_client();

        let with_our_id = client
            .get(edge.page_url())
            .header("x-request-id", "caller-chosen-id-42")
            .send()
            .await;
        let without_id = client.get(edge.page_url()).send().await;

        let response = with_our_id.expect("the edge answers a healthy page");
        assert_eq!(response.status(), 200, "a healthy page is a 200");
        assert_eq!(
            response
                .headers()
                .get("x-request-id")
                .map(|id| id.as_bytes()),
            Some(&b"caller-chosen-id-42"[..]),
            "the caller's request id comes back on the response"
        );
        let page: serde_json::Value = response.json().await.expect("the page is JSON");
        assert_eq!(
            page["id"], PRODUCT_ID,
            "the page is for the product asked for: {page}"
        );
        assert!(
            page["inventory"]["in_stock"].is_u64() && page["price"]["currency"].is_string(),
            "the page carries its inventory and price sections: {page}"
        );
        assert!(
            page["reviews"]["count"].is_u64() && page["degraded"] == serde_json::json!([]),
            "with every upstream healthy the page is complete: {page}"
        );
        let response = without_id.expect("the edge answers a healthy page");
        let made_up = response.headers().get("x-request-id");
        assert!(
            made_up.is_some_and(|id| !id.is_empty()),
            "a request without an id gets one, sent back on the response"
        );
    })
    .await;
}

/// A client that disconnects mid-request cancels every upstream call its page started, and no task outlives it (four worker threads).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_disconnects_mid_request_cancels_every_upstream_call_and_leaves_no_task() {
    within_time_limit(async {
        // The fakes run on a runtime of their own, so this runtime's task
        // count is the edge's and the page's alone.
        let fakes = FakesOnTheirOwnRuntime::start(hanging(), hanging(), hanging()).await;
        let edge = Edge::start(fakes.service(resilience_on(5)), edge_config(8)).await;
        let metrics = tokio::runtime::Handle::current().metrics();
        // The baseline is taken once the server is known to be up and idle:
        // a first connection has had its `/healthz` answered and stays open.
        // (Before its first poll, the server has not yet started the tasks
        // it keeps while serving, and a count taken then would be low.)
        let mut warm = connect(edge.addr).await;
        send_get(&mut warm, "/healthz").await;
        read_until_body(&mut warm, "ok").await;
        let baseline = metrics.num_alive_tasks();

        // A bare connection, so the test holds the whole client: dropping
        // the stream closes the connection, as a browser tab closed does.
        let mut connection = connect(edge.addr).await;
        send_get(&mut connection, &format!("/products/{PRODUCT_ID}")).await;
        wait_until(IN_FLIGHT_LIMIT, || fakes.all_have_in_flight(1))
            .await
            .expect("the page's three upstream requests are all in flight while the client waits");
        let during = metrics.num_alive_tasks();
        drop(connection);

        let cancelled = wait_until(NOTICE_LIMIT * 3, || fakes.all_cancelled(1)).await;
        let back_to_baseline =
            wait_until(NOTICE_LIMIT * 3, || metrics.num_alive_tasks() == baseline).await;

        assert!(
            during > baseline,
            "while the page waits, its connection and calls are alive: {during} tasks vs {baseline} before"
        );
        assert!(
            cancelled.is_ok(),
            "once the client disconnected, every upstream request its page started must be cancelled; counters: {:?}",
            fakes.all().map(FastUpstream::counters)
        );
        assert!(
            back_to_baseline.is_ok(),
            "after the client disconnected, {} tasks are alive against {baseline} before: something the page started outlived it",
            metrics.num_alive_tasks()
        );
        assert_eq!(
            edge.state.admission.in_flight(),
            0,
            "the disconnected request gave its place back"
        );
    })
    .await;
}

/// With one place and a first page held by hanging upstreams, a second request is shed at once: 503, Retry-After, a problem document, and no upstream call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_in_flight_limit_a_request_is_shed_with_503_retry_after_and_a_problem() {
    within_time_limit(async {
        let fakes = Fakes::start(hanging(), hanging(), hanging()).await;
        let edge = Edge::start(fakes.service(resilience_on(5)), edge_config(1)).await;
        let client = loopback_client();

        // The first request takes the only place and is held inside the
        // page: its three upstream requests hang.
        let first = tokio::spawn(client.get(edge.page_url()).send());
        let held = wait_until(IN_FLIGHT_LIMIT, || fakes.all_have_in_flight(1)).await;
        held.expect("the first page's three upstream requests arrive and hang");

        let second = client
            .get(edge.page_url())
            .send()
            .await
            .expect("the edge answers the second request");
        let still_held = fakes.all_have_in_flight(1) && !first.is_finished();
        let metrics_text = client
            .get(edge.url("/metrics"))
            .send()
            .await
            .expect("/metrics answers while the page route is full")
            .text()
            .await
            .expect("a text body");
        first.abort();

        assert_eq!(second.status(), 503, "a request over the limit is shed");
        assert_eq!(
            second.headers().get("retry-after").map(|value| value.as_bytes()),
            Some(&b"1"[..]),
            "a shed client is told when to come back"
        );
        assert_eq!(
            second.headers().get("content-type").map(|value| value.as_bytes()),
            Some(&b"application/problem+json"[..]),
        );
        let problem: serde_json::Value = second.json().await.expect("a JSON problem document");
        assert_eq!(problem["status"], 503, "{problem}");
        assert!(
            still_held,
            "the second request was answered while the first was still in flight: shedding does not wait for a place"
        );
        assert_eq!(
            fakes.all().map(|fake| fake.counters().requests),
            [1, 1, 1],
            "the shed request called no upstream"
        );
        assert_eq!(
            sample(&metrics_text, "http_server_requests_shed_total", &[]),
            Some(1.0),
            "/metrics counts the shed request"
        );
    })
    .await;
}

/// /metrics shows the request latency histogram (with a bucket at 0.2 s) and each breaker's state, as the pages left them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_request_histogram_with_a_bucket_at_200_ms_and_each_breakers_state() {
    within_time_limit(async {
        // Reviews always fail: three degraded pages in a row open its
        // breaker (threshold 3); inventory and pricing stay closed.
        const PAGES: u64 = 3;
        let fakes = Fakes::start(healthy(), healthy(), failing_503()).await;
        let edge = Edge::start(fakes.service(resilience_on(3)), edge_config(8)).await;
        let client = loopback_client();

        let mut statuses = Vec::new();
        for _ in 0..PAGES {
            let status = client.get(edge.page_url()).send().await.map(|r| r.status());
            statuses.push(status.map(|status| status.as_u16()).map_err(|e| e.to_string()));
        }
        let metrics = client
            .get(edge.url("/metrics"))
            .send()
            .await
            .expect("/metrics answers");
        let content_type = metrics.headers().get("content-type").cloned();
        let text = metrics.text().await.expect("a text body");

        let page_2xx = [("route", "/products/{id}"), ("status_class", "2xx")];
        let bucket_labels = [page_2xx[0], page_2xx[1], ("le", "0.2")];
        assert!(
            content_type.is_some_and(|value| value.as_bytes().starts_with(b"text/plain")),
            "Prometheus' text format is text/plain"
        );
        assert_eq!(
            sample(&text, "http_server_request_duration_seconds_count", &page_2xx),
            Some(PAGES as f64),
            "every page answered 200 (a page without reviews is degraded, not failed) and is counted under its route and status class; the pages got {statuses:?}"
        );
        assert!(
            sample(&text, "http_server_request_duration_seconds_bucket", &bucket_labels).is_some(),
            "the request histogram has a bucket ending at 0.2 s, where the 200 ms goal is read"
        );
        for (upstream, state) in [("inventory", 0.0), ("pricing", 0.0), ("reviews", 2.0)] {
            assert_eq!(
                sample(&text, "upstream_circuit_breaker_state", &[("upstream", upstream)]),
                Some(state),
                "{upstream}'s breaker state (0 closed, 1 half-open, 2 open) after {PAGES} pages whose reviews failed"
            );
        }
    })
    .await;
}

/// The histogram's sample count for `upstream`'s calls that ended with
/// `outcome`, as `/metrics` shows it (`None`: no such series).
fn upstream_calls(text: &str, upstream: &str, outcome: &str) -> Option<f64> {
    sample(
        text,
        "upstream_request_duration_seconds_count",
        &[("upstream", upstream), ("outcome", outcome)],
    )
}

/// /metrics shows each upstream call's latency under its upstream and outcome (an open breaker's refusals included) and the runtime's health: workers, alive tasks, global queue depth, event-loop lag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_upstream_latency_by_upstream_and_outcome_and_the_runtimes_health() {
    within_time_limit(async {
        // Reviews always answer 503: its first three calls fail, which
        // opens its breaker (threshold 3), and the rest are refused.
        const PAGES: u64 = 5;
        let fakes = Fakes::start(healthy(), healthy(), failing_503()).await;
        let edge = Edge::start(fakes.service(resilience_on(3)), edge_config(8)).await;
        let client = loopback_client();

        let mut statuses = Vec::new();
        for _ in 0..PAGES {
            let status = client.get(edge.page_url()).send().await.map(|r| r.status());
            statuses.push(status.map(|status| status.as_u16()).map_err(|e| e.to_string()));
        }
        // The heartbeat wakes every 100 ms or so: wait for its first beat.
        let lag_count = |text: &str| sample(text, "tokio_event_loop_lag_seconds_count", &[]);
        let state = &edge.state;
        let beat = wait_until(IN_FLIGHT_LIMIT, || {
            lag_count(&state.metrics.render(&state.service, &state.admission)) >= Some(1.0)
        })
        .await;
        let text = client
            .get(edge.url("/metrics"))
            .send()
            .await
            .expect("/metrics answers")
            .text()
            .await
            .expect("a text body");

        for upstream in ["inventory", "pricing"] {
            assert_eq!(
                upstream_calls(&text, upstream, "ok"),
                Some(PAGES as f64),
                "each of {PAGES} pages called {upstream} once, and it answered; the pages got {statuses:?}"
            );
        }
        let failed = upstream_calls(&text, "reviews", "5xx").unwrap_or(0.0);
        let refused = upstream_calls(&text, "reviews", "circuit_open").unwrap_or(0.0);
        assert!(
            failed >= 1.0 && refused >= 1.0 && failed + refused == PAGES as f64,
            "reviews' calls are counted under the 5xx its fake answered until its breaker opened, then under circuit_open: {failed} and {refused} of {PAGES}"
        );
        assert!(
            sample(
                &text,
                "upstream_request_duration_seconds_bucket",
                &[("upstream", "inventory"), ("outcome", "ok"), ("le", "0.2")]
            )
            .is_some(),
            "the upstream latency histogram is in seconds, with a bucket at 0.2 s"
        );
        assert_eq!(
            sample(&text, "tokio_workers", &[]),
            Some(2.0),
            "the workers of the runtime that serves /metrics"
        );
        assert!(
            sample(&text, "tokio_alive_tasks", &[]) >= Some(1.0),
            "the runtime's alive tasks (the server's, at least)"
        );
        assert!(
            sample(&text, "tokio_global_queue_depth", &[]).is_some(),
            "the runtime's global queue depth"
        );
        assert!(
            beat.is_ok() && lag_count(&text) >= Some(1.0),
            "a heartbeat records the event-loop lag while the edge serves"
        );
    })
    .await;
}

/// A call abandoned because its client disconnected is counted in /metrics under outcome `cancelled`, for every upstream the page had called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_call_dropped_by_a_client_disconnect_is_counted_as_cancelled() {
    within_time_limit(async {
        let fakes = Fakes::start(hanging(), hanging(), hanging()).await;
        let edge = Edge::start(fakes.service(resilience_on(5)), edge_config(8)).await;

        let mut connection = connect(edge.addr).await;
        send_get(&mut connection, &format!("/products/{PRODUCT_ID}")).await;
        wait_until(IN_FLIGHT_LIMIT, || fakes.all_have_in_flight(1))
            .await
            .expect("the page's three upstream requests are all in flight while the client waits");
        drop(connection);

        let state = &edge.state;
        let render = || state.metrics.render(&state.service, &state.admission);
        let upstreams = ["inventory", "pricing", "reviews"];
        let counted = wait_until(NOTICE_LIMIT * 3, || {
            let text = render();
            upstreams
                .iter()
                .all(|upstream| upstream_calls(&text, upstream, "cancelled") >= Some(1.0))
        })
        .await;

        let text = render();
        assert!(
            counted.is_ok(),
            "once the client disconnected, each dropped upstream call is counted under outcome cancelled: {:?}",
            upstreams.map(|upstream| upstream_calls(&text, upstream, "cancelled"))
        );
        assert_eq!(
            upstreams.map(|upstream| upstream_calls(&text, upstream, "cancelled")),
            [Some(1.0); 3],
            "one page, one call per upstream, each counted once"
        );
    })
    .await;
}
