//! Part "service": your page served over HTTP by the given edge
//! (`src/edge/`), which the `product-page` binary runs.
//!
//! The edge is given; what these tests check is that your page behaves
//! over a real connection as it does when called directly: a healthy page
//! is a `200` with the page's JSON; a client that disconnects mid-request
//! cancels every upstream call its page started, and leaves no task alive;
//! while the page holds a request, the in-flight limit sheds the next one;
//! while pages are slower than the latency target, the limit learnt from
//! their latency falls and sheds the excess, and a modest load of healthy
//! pages is never shed by it;
//! while the runtime runs far behind its schedule, admission sheds the next
//! one too, and serves again once the runtime has caught up;
//! and `/metrics` shows the requests and the breakers your page drove, each
//! upstream call's latency under its upstream and outcome (a call the
//! disconnected client abandoned under `cancelled`), and the runtime's
//! health; and each HTTP request a section makes, the hedge's losing one
//! included, has a span of its own inside its section's.
//!
//! Real sockets, so real time with wide margins (a paused clock would jump
//! ahead while a request waits on a socket). No test asserts a speed: each
//! waits for a condition (requests in flight at the fakes, requests
//! cancelled, the task count back at its baseline) within a wide limit.
//! The edge runs on the test's own multi-thread runtime, as the binary
//! runs it, so the interleavings of a real server can happen; except in the
//! span test, whose capturing layer sees only the spans of its own thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fake_upstreams::fast::FastUpstream;
use fake_upstreams::testing::{loopback_client, wait_until, within_time_limit};
use step6_resilience::edge::{EdgeConfig, EdgeState, bind_listener, serve};
use step6_resilience::telemetry::{UPSTREAM_ATTEMPT_SPAN, UPSTREAM_SPAN};
use step6_resilience::{
    BreakerConfig, BudgetConfig, HedgeConfig, HedgeDelay, ProductService, Resilience,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::capture::SpanCapture;
use crate::common::{
    Fakes, FakesOnTheirOwnRuntime, NOTICE_LIMIT, PRODUCT_ID, failing_503, fair_timeout, hanging,
    healthy, ms, sample,
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
            latency_window: Duration::from_secs(10),
        }),
        budget: Some(BudgetConfig {
            ratio: 0.1,
            burst: 10.0,
        }),
        ..Resilience::off()
    }
}

/// The edge's settings in these tests: a budget far beyond any test's
/// waits (so no page ends at its deadline while a test looks at it), the
/// given in-flight limit, no limit learnt from latency (only the tests
/// about it turn it on), and a runtime lag limit far beyond what a loaded
/// machine's scheduling costs (so only the test about lag sheds for it).
fn edge_config(max_in_flight: usize) -> EdgeConfig {
    EdgeConfig {
        request_budget: Duration::from_secs(10),
        max_in_flight,
        latency_target: None,
        min_in_flight: 1,
        max_runtime_lag: Duration::from_secs(5),
        retry_after: Duration::from_secs(1),
        log_every_request: false,
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
        let another_without_id = client.get(edge.page_url()).send().await;

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
        let made_up_id = |response: reqwest::Response| {
            response
                .headers()
                .get("x-request-id")
                .and_then(|id| id.to_str().ok())
                .and_then(|id| uuid::Uuid::parse_str(id).ok())
        };
        let made_up = made_up_id(without_id.expect("the edge answers a healthy page"));
        let another = made_up_id(another_without_id.expect("the edge answers a healthy page"));
        assert!(
            made_up.is_some_and(|id| id.get_version_num() == 4),
            "a request without an id gets a fresh UUID v4, sent back on the response: {made_up:?}"
        );
        assert_ne!(made_up, another, "each request gets an id of its own");
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

/// How far behind its schedule the runtime may run in the lag test before
/// admission sheds: above a loaded machine's ordinary scheduling, far below
/// the lag the test makes.
const LAG_TEST_MAX_RUNTIME_LAG: Duration = Duration::from_millis(50);

/// How long the lag test blocks the runtime's only thread: its heartbeat
/// wakes about this late, which puts the lag admission reads at a quarter
/// of it at least (the smoothing's first step), 15 times its limit, and
/// keeps it above twice the limit (where every request is shed) for about
/// ten more beats.
const LAG_TEST_BLOCK: Duration = Duration::from_secs(3);

/// Asks for the page at `url` until it is served (a `200`), for up to
/// [`IN_FLIGHT_LIMIT`]: a loaded machine may run behind for a moment on its
/// own, and admission may shed then. The last status or error otherwise.
async fn a_page_is_served(client: &reqwest::Client, url: &str) -> Result<(), String> {
    let give_up = tokio::time::Instant::now() + IN_FLIGHT_LIMIT;
    loop {
        let last = match client.get(url).send().await {
            Ok(response) if response.status() == 200 => return Ok(()),
            Ok(response) => format!("status {}", response.status()),
            Err(error) => format!("{error}"),
        };
        if tokio::time::Instant::now() >= give_up {
            return Err(last);
        }
        tokio::time::sleep(ms(50)).await;
    }
}

/// A page while the runtime runs far behind its schedule is shed at once (503, Retry-After, a problem document, no upstream call), though no place is taken; once the runtime catches up, pages are served again.
#[tokio::test]
async fn while_the_runtime_runs_far_behind_a_request_is_shed_with_503_and_served_again_after() {
    within_time_limit(async {
        // The current-thread runtime on purpose: blocking its only thread
        // is what a runtime too busy to keep up looks like. The fakes run
        // on a runtime of their own, which the block does not stop.
        let fakes = FakesOnTheirOwnRuntime::start(healthy(), healthy(), healthy()).await;
        let config = EdgeConfig {
            max_runtime_lag: LAG_TEST_MAX_RUNTIME_LAG,
            ..edge_config(8)
        };
        let edge = Edge::start(fakes.service(resilience_on(5)), config).await;
        let client = loopback_client();
        let keeping_up = a_page_is_served(&client, &edge.page_url()).await;
        let calls_before = fakes.all().map(|fake| fake.counters().requests);

        // The request is on its way before the runtime stalls, and is read
        // only once it runs again: after its heartbeat has woken late.
        let during = tokio::spawn(client.get(edge.page_url()).send());
        std::thread::sleep(LAG_TEST_BLOCK);
        let shed = during.await.expect("the request's task does not panic");
        let calls_after = fakes.all().map(|fake| fake.counters().requests);

        // Caught up: the heartbeat beats on time again, and within a few
        // beats the lag is back under its limit.
        let served_again = a_page_is_served(&client, &edge.page_url()).await;
        let state = &edge.state;
        let text = state.metrics.render(&state.service, &state.admission);

        assert!(
            keeping_up.is_ok(),
            "a runtime that keeps up serves the page: {keeping_up:?}"
        );
        let shed = shed.expect("the edge answers the request made while it ran behind");
        assert_eq!(
            shed.status(),
            503,
            "a request read while the runtime ran {LAG_TEST_BLOCK:?} behind (limit {LAG_TEST_MAX_RUNTIME_LAG:?}) is shed, though all 8 places were free"
        );
        assert_eq!(
            shed.headers().get("retry-after").map(|value| value.as_bytes()),
            Some(&b"1"[..]),
            "a shed client is told when to come back"
        );
        let problem: serde_json::Value = shed.json().await.expect("a JSON problem document");
        assert_eq!(problem["status"], 503, "{problem}");
        assert_eq!(
            calls_after, calls_before,
            "the shed request called no upstream: it was refused before the page ran"
        );
        assert!(
            served_again.is_ok(),
            "once the runtime caught up, pages are served again within {IN_FLIGHT_LIMIT:?}: the shedding follows the lag and ends with it"
        );
        assert!(
            sample(&text, "http_server_requests_shed_lagging_total", &[]) >= Some(1.0),
            "/metrics counts the request shed because the runtime ran behind"
        );
    })
    .await;
}

/// How many pages the learnt-limit tests send at once: the edge's hard
/// cap is four times more, so only a limit learnt below it sheds.
const ROUND: usize = 8;

/// How long the slow upstreams take to answer in the learnt-limit test:
/// far above its latency target, and long enough that a round's requests
/// all reach the edge, even on a loaded machine, while the first ones are
/// still in flight.
const SLOW_UPSTREAM: Duration = Duration::from_secs(2);

/// The latency target of the learnt limit in its tests: far below
/// [`SLOW_UPSTREAM`], far above what a healthy page takes on a loaded
/// machine.
const LIMIT_TEST_TARGET: Duration = Duration::from_secs(1);

/// An edge whose in-flight limit is learnt from the pages' latency, under
/// a hard cap of `4 × ROUND` and above a floor of one page.
fn learning_edge_config() -> EdgeConfig {
    EdgeConfig {
        latency_target: Some(LIMIT_TEST_TARGET),
        min_in_flight: 1,
        ..edge_config(4 * ROUND)
    }
}

/// Sends [`ROUND`] requests for the page at once; each one's status, or
/// its error.
async fn a_round_of_pages(client: &reqwest::Client, url: &str) -> Vec<Result<u16, String>> {
    let requests: Vec<_> = (0..ROUND)
        .map(|_| tokio::spawn(client.get(url).send()))
        .collect();
    let mut statuses = Vec::new();
    for request in requests {
        let answer = request.await.expect("a request's task does not panic");
        statuses.push(
            answer
                .map(|response| response.status().as_u16())
                .map_err(|error| error.to_string()),
        );
    }
    statuses
}

/// The learnt in-flight limit as `/metrics` shows it.
async fn concurrency_limit(client: &reqwest::Client, edge: &Edge) -> Option<f64> {
    let text = client
        .get(edge.url("/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    sample(&text, "http_server_concurrency_limit", &[])
}

/// While every page is slower than the latency target, the learnt in-flight limit falls below the pages in flight: the excess is shed with 503 at once, and the pages admitted are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_pages_are_slower_than_the_target_the_limit_falls_and_sheds_the_excess_with_503() {
    within_time_limit(async {
        let slow = || fake_upstreams::fast::Behaviour::fixed(SLOW_UPSTREAM);
        let fakes = Fakes::start(slow(), slow(), slow()).await;
        let edge = Edge::start(fakes.service(Resilience::off()), learning_edge_config()).await;
        let client = loopback_client();

        // A round of slow pages, well under the hard cap: all admitted, and
        // each one slower than the target.
        let first = a_round_of_pages(&client, &edge.page_url()).await;
        let limit_before = concurrency_limit(&client, &edge).await;
        // The limit has learnt from them once it is below a round's size.
        let mut limit_after = limit_before;
        let learnt = tokio::time::timeout(IN_FLIGHT_LIMIT, async {
            while !limit_after.is_some_and(|limit| limit < ROUND as f64) {
                tokio::time::sleep(ms(50)).await;
                limit_after = concurrency_limit(&client, &edge).await;
            }
        })
        .await;
        // A second round: more pages at once than the limit now allows.
        let second = a_round_of_pages(&client, &edge.page_url()).await;
        let shed_with_503 = second.iter().filter(|status| **status == Ok(503)).count();
        let served = second.iter().filter(|status| **status == Ok(200)).count();

        assert!(
            first.iter().all(|status| *status == Ok(200)),
            "{ROUND} pages at once, under the hard cap of {}, are all served while the limit knows nothing yet: {first:?}",
            4 * ROUND
        );
        assert!(
            learnt.is_ok(),
            "after {ROUND} pages of {SLOW_UPSTREAM:?} (target {LIMIT_TEST_TARGET:?}), /metrics shows http_server_concurrency_limit below {ROUND}: it went from {limit_before:?} to {limit_after:?}"
        );
        assert!(
            shed_with_503 >= 1,
            "{ROUND} pages at once over a learnt limit of {limit_after:?}: the excess is shed with 503, got {second:?}"
        );
        assert_eq!(
            served + shed_with_503,
            ROUND,
            "every page admitted under the limit is still served (200), every other one shed (503): {second:?}"
        );
        assert!(served >= 1, "the limit never falls to zero: {second:?}");
    })
    .await;
}

/// With healthy upstreams, a modest load (a few pages at once, far below the hard cap) is never shed by the learnt limit, and the limit stays where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_healthy_upstreams_the_learnt_limit_sheds_nothing_of_a_modest_load() {
    within_time_limit(async {
        // Long enough for the limit to judge several windows of pages (a
        // window is as long as the target).
        const LOAD_FOR: Duration = LIMIT_TEST_TARGET.saturating_mul(3);
        let fakes = Fakes::start(healthy(), healthy(), healthy()).await;
        let edge = Edge::start(fakes.service(Resilience::off()), learning_edge_config()).await;
        let client = loopback_client();

        let mut statuses = Vec::new();
        let started = tokio::time::Instant::now();
        while started.elapsed() < LOAD_FOR {
            statuses.extend(a_round_of_pages(&client, &edge.page_url()).await);
        }
        let rounds = statuses.len() / ROUND;
        let limit = concurrency_limit(&client, &edge).await;

        let not_served: Vec<_> = statuses.iter().filter(|status| **status != Ok(200)).collect();
        assert!(
            not_served.is_empty(),
            "{rounds} rounds of {ROUND} healthy pages at once (hard cap {}): every one served, but {} were not: {not_served:?}",
            4 * ROUND,
            not_served.len()
        );
        assert!(
            limit.is_some_and(|limit| limit >= ROUND as f64),
            "fast pages give the limit no reason to fall below the {ROUND} in flight: /metrics shows {limit:?}"
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

/// How long the hedge in the span test waits before its backup: long enough
/// that the test, on a loaded machine, has switched the slow fake to healthy
/// well before the backup is sent (the switch takes a few milliseconds).
const SPAN_TEST_HEDGE_DELAY: Duration = Duration::from_secs(1);

/// Each HTTP request a section makes has an `upstream_attempt` span inside that section's `upstream_call` span, with its upstream, number, kind, outcome and latency; a hedge's losing request is recorded `cancelled`.
#[tokio::test]
async fn each_http_request_has_a_span_inside_its_sections_call_and_a_hedges_loser_is_cancelled() {
    within_time_limit(async {
        // The current-thread runtime on purpose: the capture is this
        // thread's subscriber, and every task the edge and your page spawn
        // runs on this thread too.
        let capture = SpanCapture::default();
        let _subscriber = tracing::subscriber::set_default(capture.subscriber());
        // Reviews' first request hangs; once it has arrived the fake turns
        // healthy, so the hedge's backup answers and the first one loses.
        let fakes = Fakes::start(healthy(), healthy(), hanging()).await;
        let hedged_after_a_second = Resilience {
            hedge: Some(HedgeConfig {
                delay: HedgeDelay::Fixed(SPAN_TEST_HEDGE_DELAY),
                latency_window: Duration::from_secs(10),
            }),
            // Each section pays a whole token: every section may hedge.
            budget: Some(BudgetConfig {
                ratio: 1.0,
                burst: 1.0,
            }),
            ..Resilience::off()
        };
        let edge = Edge::start(fakes.service(hedged_after_a_second), edge_config(8)).await;

        let page = tokio::spawn(loopback_client().get(edge.page_url()).send());
        wait_until(IN_FLIGHT_LIMIT, || fakes.reviews.counters().in_flight == 1)
            .await
            .expect("reviews' first request arrives and hangs");
        fakes.reviews.set_behaviour(healthy());
        let response = page
            .await
            .expect("the request's task does not panic")
            .expect("the edge answers");
        let calls_closed = wait_until(NOTICE_LIMIT, || {
            capture.named(UPSTREAM_SPAN).len() == 3
        })
        .await;

        assert_eq!(
            response.status(),
            200,
            "reviews' backup answers, so the page is complete"
        );
        assert!(
            calls_closed.is_ok(),
            "one `{UPSTREAM_SPAN}` span per section, closed once the page has answered; got {:?}",
            capture.named(UPSTREAM_SPAN)
        );
        let reviews = fakes.reviews.counters();
        assert_eq!(
            reviews.requests, 2,
            "reviews got its first request and, a hedge delay later, the backup: {reviews:?} (if the backup hung too, this machine took over {SPAN_TEST_HEDGE_DELAY:?} to notice the first request)"
        );
        let attempts = capture.named(UPSTREAM_ATTEMPT_SPAN);
        for call in capture.named(UPSTREAM_SPAN) {
            let upstream = call.field("upstream").unwrap_or("?");
            let mut inside: Vec<_> = attempts
                .iter()
                .filter(|attempt| attempt.parent == Some(call.number))
                .collect();
            inside.sort_by_key(|attempt| attempt.field("attempt").map(str::to_owned));
            let seen = |field: &str| -> Vec<Option<&str>> {
                inside.iter().map(|attempt| attempt.field(field)).collect()
            };
            let (kinds, outcomes) = if upstream == "reviews" {
                (vec!["first", "hedge"], vec!["cancelled", "ok"])
            } else {
                (vec!["first"], vec!["ok"])
            };
            let numbers: Vec<String> = (1..=kinds.len()).map(|n| n.to_string()).collect();
            assert_eq!(
                call.field("outcome"),
                Some("ok"),
                "the {upstream} call answered: {call:?}"
            );
            assert!(
                inside.iter().all(|attempt| attempt.field("upstream") == Some(upstream)),
                "each request's span names the upstream of its call ({upstream}): {inside:?}"
            );
            assert_eq!(
                seen("attempt"),
                numbers.iter().map(|n| Some(n.as_str())).collect::<Vec<_>>(),
                "the {upstream} call's requests, numbered from 1, each in a span inside the call's: {inside:?}"
            );
            assert_eq!(
                seen("kind"),
                kinds.into_iter().map(Some).collect::<Vec<_>>(),
                "what sent each of {upstream}'s requests: {inside:?}"
            );
            assert_eq!(
                seen("outcome"),
                outcomes.into_iter().map(Some).collect::<Vec<_>>(),
                "how each of {upstream}'s requests ended (the hedge's loser is dropped, so `cancelled`): {inside:?}"
            );
            let latencies: Vec<Option<f64>> = seen("latency_ms")
                .into_iter()
                .map(|latency| latency.and_then(|ms| ms.parse().ok()))
                .collect();
            assert!(
                latencies.iter().all(|latency| latency.is_some_and(|ms| ms >= 0.0)),
                "each request's span records its latency in milliseconds: {inside:?}"
            );
            if upstream == "reviews" {
                let loser = latencies[0].unwrap_or_default();
                let at_least = SPAN_TEST_HEDGE_DELAY.as_secs_f64() * 1e3 / 2.0;
                assert!(
                    loser >= at_least,
                    "the first request ran until the backup, sent {SPAN_TEST_HEDGE_DELAY:?} after it, had answered: at least {at_least} ms, timed from its own start, got {loser}"
                );
            }
        }
        assert_eq!(
            attempts.len(),
            4,
            "one span per HTTP request (two for reviews, one each for the others), each inside its section's call: {attempts:?}"
        );
    })
    .await;
}
