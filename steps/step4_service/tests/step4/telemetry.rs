//! Part "telemetry": `Outcome::of_error` (`src/telemetry/outcome.rs`),
//! `observe_upstream_call` (`src/telemetry/observe.rs`) and the `metrics`
//! route: one span per upstream call with its fields, the calls counted per
//! outcome, latency in seconds, the in-flight and bulkhead gauges, and the
//! runtime gauges. Then what a client gets when calls fail, time out or are
//! shed (a 502, a 504, a 503 with `Retry-After`): every request with a valid
//! id goes through the given fan-out, which runs each call inside
//! `observe_upstream_call`, so these problem documents turn green with this
//! part, not the first.
//!
//! Some tests go through the router (a first `router`, with the three
//! routes, is enough), some call `observe_upstream_call` directly. Two run
//! on tokio's multi-thread runtime and read only metrics, whose handles are
//! registered on the test's thread and then record from any thread.

use std::time::Duration;

use axum::http::{Method, StatusCode, header};
use fake_upstreams::fast::Behaviour;
use fake_upstreams::testing::{PATIENCE, closed_port_url, wait_until, within_time_limit};
use step4_service::fetch::Fetched;
use step4_service::telemetry::{
    BULKHEAD_PERMITS_IN_USE, BULKHEAD_PERMITS_MAX, EVENT_LOOP_LAG, HEARTBEAT_PERIOD,
    RUNTIME_ALIVE_TASKS, RUNTIME_GLOBAL_QUEUE_DEPTH, RUNTIME_WORKERS, UPSTREAM_CALLS,
    UPSTREAM_IN_FLIGHT, UPSTREAM_LATENCY, heartbeat,
};
use step4_service::{
    FetchError, Upstream, UpstreamMetrics, observe_upstream_call, prometheus_builder,
};
use tracing_subscriber::filter::LevelFilter;

use crate::capture::Captured;
use tokio::time::Instant;

use crate::common::{
    Harness, assert_problem_snapshot, latency_count, ms, patient, sample, send, total_of,
    unlabelled, value_of,
};

// ---------------------------------------------------------------------------
// Spans
// ---------------------------------------------------------------------------

/// Each upstream call gets exactly one `upstream_call` span with upstream, attempt, outcome, status and latency, under the binary's default `info` filter.
#[tokio::test]
async fn each_upstream_call_gets_exactly_one_span_with_its_fields() {
    within_time_limit(async {
        // Captured from INFO, as the binary's default filter keeps them: a
        // span a tracing backend is to draw must exist at that level.
        let service = Harness::start_logging_from(
            LevelFilter::INFO,
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default(),
            |_| {},
        )
        .await;

        let reply = service.get("/products/42").await;

        assert_eq!(reply.status, StatusCode::OK, "body: {}", reply.text());
        let spans = service.upstream_spans();
        assert_eq!(
            spans.len(),
            3,
            "expected one upstream_call span per upstream, captured from INFO (the binary's default filter, under which a \
             DEBUG span does not exist), got {spans:#?}"
        );
        for upstream in ["inventory", "pricing", "reviews"] {
            let span = spans
                .iter()
                .find(|span| span.field("upstream") == Some(upstream))
                .unwrap_or_else(|| panic!("no upstream_call span with upstream = {upstream:?}"));
            assert_eq!(span.field("attempt"), Some("1"), "{upstream}: attempt");
            assert_eq!(span.field("outcome"), Some("ok"), "{upstream}: outcome");
            assert_eq!(span.field("status"), Some("200"), "{upstream}: HTTP status");
            let latency: f64 = span
                .field("latency_ms")
                .unwrap_or_else(|| panic!("{upstream}: latency_ms is recorded when the call ends"))
                .parse()
                .expect("latency_ms is a number");
            assert!(latency >= 0.0, "{upstream}: latency_ms = {latency}");
        }
    })
    .await;
}

/// Every attempt that gets a 500 records outcome `error` and status 500 on its own span, and is counted.
#[tokio::test]
async fn a_failed_call_records_outcome_error_and_its_status_on_its_span() {
    within_time_limit(async {
        // A 500 is worth retrying: the default three attempts all fail.
        // (A long budget, so that a busy machine cannot squeeze out the
        // third attempt.)
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default().failing(1.0, 500),
            Behaviour::default(),
            |config| {
                config.request_budget = Duration::from_secs(3);
                config.server_timeout = Duration::from_secs(6);
            },
        )
        .await;

        service.get("/products/42").await;

        let pricing = service.spans_of("pricing");
        assert_eq!(
            pricing.len(),
            3,
            "one span per attempt at pricing; spans were {pricing:#?}"
        );
        for span in &pricing {
            assert_eq!(span.field("outcome"), Some("error"), "{span:?}");
            assert_eq!(span.field("status"), Some("500"), "{span:?}");
        }
        let metrics = service.scrape().await;
        assert_eq!(
            value_of(
                &metrics,
                UPSTREAM_CALLS,
                &[("upstream", "pricing"), ("outcome", "error")]
            ),
            3.0,
            "each attempt is counted once, as `error`; metrics were:\n{metrics}"
        );
    })
    .await;
}

/// An upstream that refuses the connection, or answers 2xx with a body that is not JSON, makes a 502 naming it, and each attempt is counted as `error`.
#[tokio::test]
async fn an_upstream_that_cannot_be_reached_or_read_is_a_502_counted_as_error() {
    within_time_limit(async {
        let refused = closed_port_url();
        let cases: [(&str, Behaviour, Option<&str>, &str); 2] = [
            (
                "refuses the connection",
                Behaviour::default(),
                Some(&refused),
                "could not reach pricing",
            ),
            (
                "answers 200 with a body that is not JSON",
                Behaviour::default().garbage(),
                None,
                "pricing sent a body we could not decode",
            ),
        ];
        for (what, behaviour, pricing_url, detail) in cases {
            // Arrange: only pricing misbehaves.
            let service = Harness::start(
                Behaviour::default(),
                behaviour,
                Behaviour::default(),
                |config| {
                    patient(config, Duration::from_secs(3));
                    if let Some(url) = pricing_url {
                        config.urls.pricing = url.to_owned();
                    }
                },
            )
            .await;

            // Act
            let reply = service.get("/products/42").await;

            // Assert: a bad gateway, blaming pricing, with no retry hint.
            let problem = reply.problem(StatusCode::BAD_GATEWAY);
            assert_eq!(
                problem["type"], "https://problems.fanout.example/upstream-failed",
                "pricing {what}: that is an upstream failure, not an overload or a timeout; problem: {problem}"
            );
            assert_eq!(problem["upstream"], "pricing", "pricing {what}: {problem}");
            assert_eq!(
                problem["title"], "An upstream service failed",
                "pricing {what}: one kind of problem, one `type`, one `title`; problem: {problem}"
            );
            assert_eq!(
                problem["detail"], detail,
                "pricing {what}: `detail` is the error's own message, not its source chain (which names the upstream's \
                 internal address); problem: {problem}"
            );
            assert_eq!(
                reply.header("retry-after"),
                None,
                "pricing {what}: no `Retry-After`, the service cannot know when pricing will recover"
            );
            let attempts = service.spans_of("pricing");
            assert!(!attempts.is_empty(), "pricing {what}: no upstream_call span for pricing");
            for span in &attempts {
                assert_eq!(
                    span.field("outcome"),
                    Some("error"),
                    "pricing {what}: the attempt's outcome is `error` (not `timeout`: nothing ran out of time; \
                     not `ok`: a 2xx that cannot be read is no answer); span: {span:?}"
                );
                if pricing_url.is_some() {
                    assert_eq!(
                        span.field("status"),
                        None,
                        "pricing {what}: no HTTP answer came, so the span has no `status`; span: {span:?}"
                    );
                }
            }
            let metrics = service.scrape().await;
            let counted = |outcome: &str| {
                value_of(
                    &metrics,
                    UPSTREAM_CALLS,
                    &[("upstream", "pricing"), ("outcome", outcome)],
                )
            };
            assert_eq!(
                counted("error"),
                attempts.len() as f64,
                "pricing {what}: each attempt is counted once, as `error`; metrics were:\n{metrics}"
            );
            for wrong in ["ok", "timeout"] {
                assert_eq!(
                    counted(wrong),
                    0.0,
                    "pricing {what}: counted as `{wrong}`, but it is an `error`; metrics were:\n{metrics}"
                );
            }
            assert_eq!(
                latency_count(&metrics, "pricing"),
                attempts.len() as f64,
                "pricing {what}: every attempt was made and ended, so each has its latency (only shed and cancelled \
                 calls stay out of the histogram); metrics were:\n{metrics}"
            );
        }
    })
    .await;
}

/// A call dropped because another call failed first is recorded as `cancelled` (span and counter), with no latency.
#[tokio::test]
async fn a_call_dropped_because_a_sibling_failed_is_recorded_as_cancelled() {
    within_time_limit(async {
        // Pricing fails at once; reviews would take 2 s, so it is still in
        // flight when the fan-out gives up and drops it.
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default().failing(1.0, 500),
            Behaviour::fixed(Duration::from_secs(2)),
            |config| patient(config, Duration::from_secs(5)),
        )
        .await;

        let reply = service.get("/products/42").await;

        assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
        let reviews = service.spans_of("reviews");
        assert_eq!(
            reviews.len(),
            1,
            "the reviews call has a span even though it never finished; spans were {reviews:#?}"
        );
        assert_eq!(
            reviews[0].field("outcome"),
            Some("cancelled"),
            "a dropped call is cancelled, not an error: record it in a drop guard"
        );
        let metrics = service.scrape().await;
        assert_eq!(
            sample(
                &metrics,
                UPSTREAM_CALLS,
                &[("upstream", "reviews"), ("outcome", "cancelled")]
            ),
            Some(1.0),
            "the cancelled reviews call is counted under outcome=\"cancelled\"; metrics were:\n{metrics}"
        );
        assert_eq!(
            value_of(
                &metrics,
                UPSTREAM_CALLS,
                &[("upstream", "reviews"), ("outcome", "error")]
            ),
            0.0,
            "a cancelled call is not the upstream's error"
        );
        assert_eq!(
            latency_count(&metrics, "reviews"),
            0.0,
            "a cancelled call never ended, so it has no latency to record; metrics were:\n{metrics}"
        );
        assert_eq!(
            value_of(&metrics, UPSTREAM_IN_FLIGHT, &[("upstream", "reviews")]),
            0.0,
            "the in-flight gauge comes back down when a call is dropped"
        );
    })
    .await;
}

/// A call's span covers the call only: while the call waits, a line logged by other work on the same thread is not inside it.
#[tokio::test]
async fn a_calls_span_is_not_entered_while_the_call_waits() {
    within_time_limit(async {
        let service = Harness::start(
            Behaviour::fixed(ms(300)),
            Behaviour::default(),
            Behaviour::default(),
            |config| patient(config, Duration::from_secs(3)),
        )
        .await;
        let request = tokio::spawn(send(service.router(), Method::GET, "/products/42", None));
        wait_until(PATIENCE, || service.inventory.counters().in_flight == 1)
            .await
            .expect("the service's inventory call is in flight");

        // Other work on this thread (a `#[tokio::test]` has only one)
        // while the inventory call is suspended.
        tracing::info!("unrelated work");

        let reply = request.await.expect("the request's task");
        assert_eq!(reply.status, StatusCode::OK, "body: {}", reply.text());
        let unrelated = service
            .captured
            .events()
            .into_iter()
            .find(|event| event.message == "unrelated work")
            .expect("the unrelated line was captured");
        assert_eq!(
            unrelated.scope.get("upstream"),
            None,
            "a line written outside the call landed inside an upstream_call span: a span entered with `span.enter()` stays entered across `.await`; use `.instrument(span)`"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/// After one request `/metrics` shows a latency histogram, an ok counter and an in-flight gauge per upstream.
#[tokio::test]
async fn metrics_expose_the_latency_histogram_and_counters_after_a_request() {
    within_time_limit(async {
        let service = Harness::healthy().await;

        service.get("/products/42").await;
        let reply = service.get("/metrics").await;
        let metrics = reply.text();

        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            reply
                .header(header::CONTENT_TYPE.as_str())
                .is_some_and(|value| value.starts_with("text/plain")
                    && value.contains("version=0.0.4")),
            "Prometheus scrapes its text format, sent as `text/plain; version=0.0.4` (the version says which format); got {:?}",
            reply.header(header::CONTENT_TYPE.as_str())
        );
        assert!(
            metrics.contains(&format!("# TYPE {UPSTREAM_LATENCY} histogram")),
            "{UPSTREAM_LATENCY} should render as a Prometheus histogram (with buckets); metrics were:\n{metrics}"
        );
        for upstream in ["inventory", "pricing", "reviews"] {
            assert_eq!(
                sample(
                    &metrics,
                    &format!("{UPSTREAM_LATENCY}_count"),
                    &[("upstream", upstream), ("outcome", "ok")]
                ),
                Some(1.0),
                "one latency observation for {upstream}, under outcome=\"ok\"; metrics were:\n{metrics}"
            );
            assert_eq!(
                sample(
                    &metrics,
                    UPSTREAM_CALLS,
                    &[("upstream", upstream), ("outcome", "ok")]
                ),
                Some(1.0),
                "one ok call to {upstream}; metrics were:\n{metrics}"
            );
            assert_eq!(
                sample(&metrics, UPSTREAM_IN_FLIGHT, &[("upstream", upstream)]),
                Some(0.0),
                "the in-flight gauge for {upstream} is back to 0 after the call; metrics were:\n{metrics}"
            );
        }
    })
    .await;
}

/// The latency recorded is the call's own, in seconds in the histogram and in milliseconds on the span.
#[tokio::test]
async fn latency_is_recorded_in_seconds_and_on_the_span_in_milliseconds() {
    within_time_limit(async {
        // Inventory takes 150 ms; the others answer at once.
        let service = Harness::start(
            Behaviour::fixed(ms(150)),
            Behaviour::default(),
            Behaviour::default(),
            |config| patient(config, Duration::from_secs(3)),
        )
        .await;

        let reply = service.get("/products/42").await;

        assert_eq!(reply.status, StatusCode::OK, "body: {}", reply.text());
        let metrics = service.scrape().await;
        let seconds = sample(
            &metrics,
            &format!("{UPSTREAM_LATENCY}_sum"),
            &[("upstream", "inventory"), ("outcome", "ok")],
        )
        .expect("the inventory latency histogram of ok calls has a _sum");
        assert!(
            (0.15..0.65).contains(&seconds),
            "inventory took about 150 ms, so its histogram should hold about 0.15 (seconds), got {seconds}; metrics were:\n{metrics}"
        );
        let span = service.spans_of("inventory");
        let millis: f64 = span
            .first()
            .and_then(|span| span.field("latency_ms"))
            .and_then(|value| value.parse().ok())
            .expect("the inventory span has a numeric latency_ms");
        assert!(
            (150.0..650.0).contains(&millis),
            "inventory took about 150 ms, so latency_ms should be about 150, got {millis}"
        );
    })
    .await;
}

/// A call that runs out of time is counted as `timeout`, not as `error`, and the time it took goes in the latency histogram.
#[tokio::test]
async fn a_timed_out_call_is_counted_as_a_timeout_not_an_error() {
    within_time_limit(async {
        // Arrange: a hung reviews, and a budget long enough that every
        // attempt runs its whole 150 ms before it times out.
        let attempt_timeout = ms(150);
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default().hanging(),
            |config| {
                config.request_budget = Duration::from_secs(3);
                config.server_timeout = Duration::from_secs(6);
                config.attempt_timeout = attempt_timeout;
            },
        )
        .await;

        // Act
        service.get("/products/42").await;
        let metrics = service.scrape().await;

        // Assert

        let attempts = service
            .spans_of("reviews")
            .iter()
            .filter(|span| span.field("outcome") == Some("timeout"))
            .count() as f64;
        assert!(attempts >= 1.0, "at least one attempt at reviews timed out");
        assert_eq!(
            value_of(
                &metrics,
                UPSTREAM_CALLS,
                &[("upstream", "reviews"), ("outcome", "timeout")]
            ),
            attempts,
            "every attempt at the hung upstream is counted as a timeout; metrics were:\n{metrics}"
        );
        assert_eq!(
            value_of(
                &metrics,
                UPSTREAM_CALLS,
                &[("upstream", "reviews"), ("outcome", "error")]
            ),
            0.0,
            "a timeout has its own outcome; metrics were:\n{metrics}"
        );
        assert_eq!(
            latency_count(&metrics, "reviews"),
            attempts,
            "a timed-out attempt was sent and waited on, so its time goes in the latency histogram (only shed and \
             cancelled calls stay out); metrics were:\n{metrics}"
        );
        let seconds = total_of(
            &metrics,
            &format!("{UPSTREAM_LATENCY}_sum"),
            &[("upstream", "reviews")],
        );
        // Each attempt waited its whole timeout; a millisecond of slack per
        // attempt for the clock's rounding.
        let least = attempts * (attempt_timeout.as_secs_f64() - 0.001);
        assert!(
            seconds >= least,
            "{attempts} attempts each waited {attempt_timeout:?}, so reviews' latency sum should be at least {least} s, \
             got {seconds}; metrics were:\n{metrics}"
        );
    })
    .await;
}

/// Upstream latency is kept apart per outcome: an answer, an error and a timeout each land in their own histogram, so a timeout's wait never blurs the answers' latency.
#[tokio::test]
async fn upstream_latency_is_kept_apart_per_outcome() {
    within_time_limit(async {
        // Arrange
        let recorder = prometheus_builder().build_recorder();
        let handle = recorder.handle();
        let metrics = metrics::with_local_recorder(&recorder, || {
            UpstreamMetrics::register(Upstream::Pricing)
        });
        let waited = ms(100);

        // Act: an answer, an error status, and a timeout after `waited`.
        let answered = observe_upstream_call(&metrics, Upstream::Pricing, 1, async {
            Ok(Fetched {
                body: (),
                status: 200,
            })
        })
        .await;
        let failed = observe_upstream_call(&metrics, Upstream::Pricing, 2, async {
            Err::<Fetched<()>, _>(FetchError::Status {
                upstream: Upstream::Pricing,
                status: 500,
            })
        })
        .await;
        let timed_out = observe_upstream_call(&metrics, Upstream::Pricing, 3, async {
            tokio::time::sleep(waited).await;
            Err::<Fetched<()>, _>(FetchError::Timeout {
                upstream: Upstream::Pricing,
            })
        })
        .await;

        // Assert
        assert!(answered.is_ok() && failed.is_err() && timed_out.is_err());
        let text = handle.render();
        let count = format!("{UPSTREAM_LATENCY}_count");
        for outcome in ["ok", "error", "timeout"] {
            assert_eq!(
                sample(&text, &count, &[("upstream", "pricing"), ("outcome", outcome)]),
                Some(1.0),
                "one call ended `{outcome}`, so the latency histogram labelled outcome=\"{outcome}\" holds one \
                 observation; metrics were:\n{text}"
            );
        }
        let timeout_seconds = value_of(
            &text,
            &format!("{UPSTREAM_LATENCY}_sum"),
            &[("upstream", "pricing"), ("outcome", "timeout")],
        );
        assert!(
            timeout_seconds >= waited.as_secs_f64() - 0.001,
            "the timed-out call waited {waited:?} before it failed, and that wait is the timeout's latency (in \
             seconds), got {timeout_seconds}; metrics were:\n{text}"
        );
        for never in ["shed", "cancelled"] {
            assert_eq!(
                sample(&text, &count, &[("upstream", "pricing"), ("outcome", never)]),
                None,
                "a {never} call has no latency, so there is no latency series for it; metrics were:\n{text}"
            );
        }
    })
    .await;
}

/// `/metrics` shows the runtime's health: its workers, its alive tasks, its global queue, and the event-loop lag the heartbeat measures, in seconds.
#[tokio::test]
async fn the_runtime_gauges_and_the_event_loop_lag_are_in_metrics() {
    within_time_limit(async {
        // Arrange: the heartbeat the binary runs, and ten tasks that stay
        // alive while `/metrics` is read.
        let service = Harness::healthy().await;
        let beats = tokio::spawn(heartbeat(
            service.state.service_metrics.event_loop_lag.clone(),
            HEARTBEAT_PERIOD,
        ));
        let parked: Vec<_> = (0..10)
            .map(|_| tokio::spawn(std::future::pending::<()>()))
            .collect();
        let lag_count = format!("{EVENT_LOOP_LAG}_count");
        let beats_so_far = || unlabelled(&service.metrics_now(), &lag_count).unwrap_or(0.0);
        wait_until(PATIENCE, || beats_so_far() >= 1.0)
            .await
            .expect("the heartbeat has beaten once");
        let before = beats_so_far();

        // Act: block this runtime's only thread for 300 ms on purpose, as a
        // blocking call in a handler would: the heartbeat cannot run on
        // time, and must say so once it can.
        let blocked = ms(300);
        std::thread::sleep(blocked);
        wait_until(PATIENCE, || beats_so_far() > before)
            .await
            .expect("the heartbeat beats again once the thread is free");
        let metrics = service.scrape().await;
        beats.abort();
        parked.iter().for_each(tokio::task::JoinHandle::abort);

        // Assert
        assert_eq!(
            unlabelled(&metrics, RUNTIME_WORKERS),
            Some(1.0),
            "a `#[tokio::test]` runs on a current-thread runtime: one worker; metrics were:\n{metrics}"
        );
        let alive = unlabelled(&metrics, RUNTIME_ALIVE_TASKS).unwrap_or(0.0);
        assert!(
            alive >= 11.0,
            "ten parked tasks and the heartbeat are alive, so at least 11 tasks, got {alive}; metrics were:\n{metrics}"
        );
        assert!(
            unlabelled(&metrics, RUNTIME_GLOBAL_QUEUE_DEPTH).is_some_and(|depth| depth >= 0.0),
            "the runtime's global queue depth is in `/metrics`; metrics were:\n{metrics}"
        );
        let lag = unlabelled(&metrics, &format!("{EVENT_LOOP_LAG}_sum")).unwrap_or(0.0);
        assert!(
            (0.2..100.0).contains(&lag),
            "the runtime was blocked {blocked:?}, so a beat due in the next 100 ms ran at least 200 ms late: the lag \
             histogram holds 0.2 s or more (in seconds, not milliseconds), got {lag}; metrics were:\n{metrics}"
        );
        let beats_within_100ms = sample(&metrics, &format!("{EVENT_LOOP_LAG}_bucket"), &[("le", "0.1")]);
        assert!(
            beats_within_100ms.is_some_and(|within| within < unlabelled(&metrics, &lag_count).unwrap_or(0.0)),
            "at least one beat was more than 0.1 s late; metrics were:\n{metrics}"
        );
    })
    .await;
}

/// A shed call handed to `observe_upstream_call` is counted as `shed`, with no latency (it was never sent).
#[tokio::test]
async fn observing_a_shed_call_counts_it_without_a_latency() {
    within_time_limit(async {
        let captured = Captured::default();
        let _tracing = tracing::subscriber::set_default(captured.subscriber());
        let recorder = prometheus_builder().build_recorder();
        let handle = recorder.handle();
        let metrics = metrics::with_local_recorder(&recorder, || {
            UpstreamMetrics::register(Upstream::Pricing)
        });

        let result = observe_upstream_call(&metrics, Upstream::Pricing, 1, async {
            Err::<Fetched<u32>, _>(FetchError::Overloaded {
                upstream: Upstream::Pricing,
            })
        })
        .await;

        assert!(matches!(result, Err(FetchError::Overloaded { .. })));
        let text = handle.render();
        assert_eq!(
            value_of(
                &text,
                UPSTREAM_CALLS,
                &[("upstream", "pricing"), ("outcome", "shed")]
            ),
            1.0,
            "metrics were:\n{text}"
        );
        assert_eq!(
            latency_count(&text, "pricing"),
            0.0,
            "a shed call has no latency; metrics were:\n{text}"
        );
        assert_eq!(
            value_of(&text, UPSTREAM_IN_FLIGHT, &[("upstream", "pricing")]),
            0.0,
            "the in-flight gauge goes back down however the call ends; metrics were:\n{text}"
        );
        for other in ["ok", "timeout", "error", "cancelled"] {
            assert_eq!(
                value_of(&text, UPSTREAM_CALLS, &[("upstream", "pricing"), ("outcome", other)]),
                0.0,
                "a shed call is counted once, under `shed` only, not also as `{other}` (a shed call ends: it is \
                 not cancelled); metrics were:\n{text}"
            );
        }
        let spans: Vec<_> = captured
            .closed_spans()
            .into_iter()
            .filter(|span| span.name == "upstream_call")
            .collect();
        assert_eq!(spans.len(), 1, "one span for the call; spans were {spans:#?}");
        assert_eq!(
            spans[0].field("outcome"),
            Some("shed"),
            "the span says how the call ended, like the counter: {:?}",
            spans[0]
        );
    })
    .await;
}

/// A call that ends in an error status, whichever status, is counted once as `error`, with its latency, and the in-flight gauge comes back to 0.
#[tokio::test]
async fn observing_a_failed_call_counts_an_error_and_brings_the_gauge_back() {
    within_time_limit(async {
        // A 500, and statuses that could be mistaken for another outcome:
        // the upstream answered each one, so each is its `error`, not a
        // `timeout` (a 504 is an answer, not a deadline that passed) and
        // not `shed` (shedding is this service's bulkhead refusing to call).
        for status in [500, 404, 429, 504] {
            // Arrange: fresh handles, so each status is counted on its own.
            let recorder = prometheus_builder().build_recorder();
            let handle = recorder.handle();
            let metrics = metrics::with_local_recorder(&recorder, || {
                UpstreamMetrics::register(Upstream::Inventory)
            });

            // Act: the call was sent and answered `status`.
            let result = observe_upstream_call(&metrics, Upstream::Inventory, 1, async {
                Err::<Fetched<u32>, _>(FetchError::Status {
                    upstream: Upstream::Inventory,
                    status,
                })
            })
            .await;

            // Assert
            assert!(
                matches!(result, Err(FetchError::Status { status: got, .. }) if got == status),
                "the call's error comes back unchanged: {result:?}"
            );
            let text = handle.render();
            assert_eq!(
                value_of(
                    &text,
                    UPSTREAM_CALLS,
                    &[("upstream", "inventory"), ("outcome", "error")]
                ),
                1.0,
                "a call that got HTTP {status} is counted once, as `error`; metrics were:\n{text}"
            );
            assert_eq!(
                latency_count(&text, "inventory"),
                1.0,
                "a call that got HTTP {status} was sent and ended, so its latency is recorded; metrics were:\n{text}"
            );
            assert_eq!(
                value_of(&text, UPSTREAM_IN_FLIGHT, &[("upstream", "inventory")]),
                0.0,
                "the in-flight gauge goes back down however the call ends, an error included; metrics were:\n{text}"
            );
            for other in ["ok", "timeout", "cancelled", "shed"] {
                assert_eq!(
                    value_of(&text, UPSTREAM_CALLS, &[("upstream", "inventory"), ("outcome", other)]),
                    0.0,
                    "a call that got HTTP {status} is counted once, under `error` only, not also as `{other}`; \
                     metrics were:\n{text}"
                );
            }
        }
    })
    .await;
}

/// The in-flight gauge counts the calls running at once: three calls held open read 3 (up by one per call, not set to 1), then 0 when they end.
#[tokio::test]
async fn the_in_flight_gauge_counts_every_call_running_at_once() {
    within_time_limit(async {
        // Arrange: three calls that wait at a gate the test opens.
        let recorder = prometheus_builder().build_recorder();
        let handle = recorder.handle();
        let metrics = metrics::with_local_recorder(&recorder, || {
            UpstreamMetrics::register(Upstream::Pricing)
        });
        let gate = tokio::sync::Semaphore::new(0);
        let held_call = |n: u32| {
            let gate = &gate;
            observe_upstream_call(&metrics, Upstream::Pricing, 1, async move {
                let _pass = gate.acquire().await.expect("the gate is never closed");
                Ok(Fetched {
                    body: n,
                    status: 200,
                })
            })
        };
        let in_flight = || value_of(&handle.render(), UPSTREAM_IN_FLIGHT, &[("upstream", "pricing")]);
        let watch_then_open = async {
            let all_three = wait_until(Duration::from_secs(5), || in_flight() == 3.0)
                .await
                .is_ok();
            let seen = in_flight();
            gate.add_permits(3);
            (all_three, seen)
        };

        // Act: the three calls and the watcher, side by side on this task.
        let (first, second, third, (all_three, seen)) =
            tokio::join!(held_call(1), held_call(2), held_call(3), watch_then_open);

        // Assert
        assert!(
            all_three,
            "three calls were in flight at once, but the gauge read {seen}: it goes up by one per call running"
        );
        assert_eq!(
            (first.ok(), second.ok(), third.ok()),
            (Some(1), Some(2), Some(3)),
            "each call's body comes back unchanged"
        );
        assert_eq!(
            in_flight(),
            0.0,
            "every call ended, so nothing is in flight; metrics were:\n{}",
            handle.render()
        );
    })
    .await;
}

/// The call runs inside its span: a line the call logs carries the span's `upstream` and `attempt`.
#[tokio::test]
async fn what_a_call_logs_is_inside_its_span() {
    within_time_limit(async {
        let captured = Captured::default();
        let _tracing = tracing::subscriber::set_default(captured.subscriber());
        let recorder = prometheus_builder().build_recorder();
        let metrics =
            metrics::with_local_recorder(&recorder, || UpstreamMetrics::register(Upstream::Reviews));

        let result = observe_upstream_call(&metrics, Upstream::Reviews, 2, async {
            tokio::task::yield_now().await;
            tracing::info!("inside the call");
            Ok(Fetched {
                body: (),
                status: 200,
            })
        })
        .await;

        assert!(result.is_ok(), "the call's result comes back: {result:?}");
        let line = captured
            .events()
            .into_iter()
            .find(|event| event.message == "inside the call")
            .expect("the call's line was captured");
        assert_eq!(
            line.field_in_scope("upstream"),
            Some("reviews"),
            "a line logged by the call should be inside its upstream_call span (`.instrument(span)`)"
        );
        assert_eq!(line.field_in_scope("attempt"), Some("2"));
    })
    .await;
}

/// `observe_upstream_call`'s future is `Send` (axum and `tokio::spawn` need it) and records from any worker thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observed_call_can_run_on_any_worker_thread() {
    within_time_limit(async {
        let recorder = prometheus_builder().build_recorder();
        let handle = recorder.handle();
        let metrics: &'static UpstreamMetrics =
            Box::leak(Box::new(metrics::with_local_recorder(&recorder, || {
                UpstreamMetrics::register(Upstream::Inventory)
            })));

        // `tokio::spawn` refuses a future that is not `Send`; so does axum.
        let tasks: Vec<_> = (0..8)
            .map(|n| {
                tokio::spawn(observe_upstream_call(
                    metrics,
                    Upstream::Inventory,
                    1,
                    async move {
                        tokio::time::sleep(ms(20)).await;
                        Ok(Fetched {
                            body: n,
                            status: 200,
                        })
                    },
                ))
            })
            .collect();
        for (n, task) in tasks.into_iter().enumerate() {
            let body = task.await.expect("the task").expect("the call succeeds");
            assert_eq!(body, n, "the call's body comes back unchanged");
        }

        let text = handle.render();
        assert_eq!(
            value_of(
                &text,
                UPSTREAM_CALLS,
                &[("upstream", "inventory"), ("outcome", "ok")]
            ),
            8.0,
            "metrics were:\n{text}"
        );
        assert_eq!(
            latency_count(&text, "inventory"),
            8.0,
            "metrics were:\n{text}"
        );
        assert_eq!(
            value_of(&text, UPSTREAM_IN_FLIGHT, &[("upstream", "inventory")]),
            0.0
        );
    })
    .await;
}

/// A burst far over the cap on a multi-thread runtime: every request answers 200 or 503, the cap holds, and every permit comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_over_the_cap_is_answered_and_returns_every_permit() {
    within_time_limit(async {
        let cap = 2;
        let service = Harness::start(
            Behaviour::fixed(ms(300)),
            Behaviour::default(),
            Behaviour::default(),
            |config| {
                patient(config, Duration::from_secs(5));
                config.max_in_flight_per_upstream = cap;
            },
        )
        .await;

        let requests: Vec<_> = (0..30)
            .map(|_| tokio::spawn(send(service.router(), Method::GET, "/products/42", None)))
            .collect();
        let mut statuses = Vec::new();
        for request in requests {
            statuses.push(request.await.expect("the request's task").status);
        }

        let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        let shed = statuses
            .iter()
            .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
            .count();
        assert_eq!(
            ok + shed,
            statuses.len(),
            "every request is either served or shed, got {statuses:?}"
        );
        assert!(ok >= 1 && shed >= 1, "some served, some shed: {statuses:?}");
        assert!(
            service.inventory.counters().peak_in_flight <= cap as u64,
            "inventory saw {} calls at once; the cap is {cap}",
            service.inventory.counters().peak_in_flight
        );
        let metrics = service.metrics_now();
        let shed_counted: f64 = ["inventory", "pricing", "reviews"]
            .iter()
            .map(|upstream| {
                value_of(
                    &metrics,
                    UPSTREAM_CALLS,
                    &[("upstream", upstream), ("outcome", "shed")],
                )
            })
            .sum();
        assert_eq!(
            shed_counted, shed as f64,
            "each shed page is counted once; metrics were:\n{metrics}"
        );
        for upstream in ["inventory", "pricing", "reviews"] {
            assert_eq!(
                value_of(&metrics, UPSTREAM_IN_FLIGHT, &[("upstream", upstream)]),
                0.0,
                "{upstream}: nothing in flight after the burst; metrics were:\n{metrics}"
            );
        }
        let after = send(service.router(), Method::GET, "/products/42", None).await;
        assert_eq!(
            after.status,
            StatusCode::OK,
            "every permit came back: a request after the burst is served; body: {}",
            after.text()
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// What a client gets when calls fail, time out or are shed: every valid id
// goes through the fan-out, so through `observe_upstream_call`
// ---------------------------------------------------------------------------

/// An id longer than 19 characters is a 400 problem document, which does not echo the id back; 19 digits are still an id.
#[tokio::test]
async fn an_id_that_is_too_long_is_a_400_problem() {
    within_time_limit(async {
        let service = Harness::healthy().await;

        let reply = service.get("/products/1234567890123456789012345").await;
        let longest = service.get("/products/9999999999999999999").await;

        let problem = reply.problem(StatusCode::BAD_REQUEST);
        assert_problem_snapshot!("invalid_id_too_long", problem);
        assert!(
            !reply.text().contains("1234567890123456789012345"),
            "the problem document should not echo the rejected id: {problem}"
        );
        assert_eq!(
            longest.status,
            StatusCode::OK,
            "19 digits is the longest id, and still an id; body: {}",
            longest.text()
        );
        assert_eq!(longest.json()["id"], 9_999_999_999_999_999_999_u64);
    })
    .await;
}

/// An upstream answering 500 makes the request a 502 problem document naming that upstream.
#[tokio::test]
async fn an_upstream_error_status_is_a_502_problem_naming_the_upstream() {
    within_time_limit(async {
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default().failing(1.0, 500),
            Behaviour::default(),
            |_| {},
        )
        .await;

        let reply = service.get("/products/42").await;

        let problem = reply.problem(StatusCode::BAD_GATEWAY);
        assert_problem_snapshot!("upstream_error", problem);
        assert_eq!(
            reply.header("retry-after"),
            None,
            "Retry-After is for a shed request only: here the service has no idea when pricing will recover"
        );
        // A 5xx is logged like a 4xx: the one line with the `instance` is at
        // INFO, where an operator's default filter finds it, not raised to
        // WARN or ERROR because the status is a server error.
        let instance = problem["instance"].as_str().expect("checked by the snapshot");
        let levels: Vec<_> = service
            .captured
            .events()
            .into_iter()
            .filter(|event| event.field("instance") == Some(instance))
            .map(|event| event.level)
            .collect();
        assert_eq!(
            levels,
            [tracing::Level::INFO],
            "one line carries the 502's `instance`, at INFO exactly, whatever the status"
        );
    })
    .await;
}

/// A hung upstream makes the request a 504 problem document, sent by the deadline (not the 1 s backstop).
#[tokio::test]
async fn a_hung_upstream_is_a_504_problem_by_the_deadline() {
    within_time_limit(async {
        // Arrange: reviews never answers; a 1 s budget, attempts of at most
        // 300 ms, a 3 s backstop.
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default().hanging(),
            |config| {
                config.request_budget = Duration::from_secs(1);
                config.attempt_timeout = ms(300);
                config.server_timeout = Duration::from_secs(3);
            },
        )
        .await;
        let config = service.state.config.clone();

        let started = Instant::now();
        let reply = service.get("/products/42").await;
        let elapsed = started.elapsed();

        let problem = reply.problem(StatusCode::GATEWAY_TIMEOUT);
        assert_problem_snapshot!("upstream_timeout", problem);
        assert!(
            elapsed >= config.attempt_timeout,
            "answered after {elapsed:?}, before even one {:?} attempt could time out",
            config.attempt_timeout
        );
        assert!(
            elapsed < config.request_budget + ms(300),
            "answered after {elapsed:?}: the deadline set at the edge ({:?}) should end the request, not the server's {:?} backstop",
            config.request_budget,
            config.server_timeout
        );
    })
    .await;
}

/// When one upstream's bulkhead is full the whole page is shed at once: 503, a problem document, `Retry-After`, and no call sent.
#[tokio::test]
async fn a_full_bulkhead_sheds_the_whole_page_with_a_503_problem_and_retry_after() {
    within_time_limit(async {
        // Arrange: one call per upstream at most; a first request holds
        // reviews' only permit for 500 ms. Inventory and pricing answer at
        // once, so their permits are free again.
        let service = Harness::start(
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::fixed(ms(500)),
            |config| {
                patient(config, Duration::from_secs(2));
                config.max_in_flight_per_upstream = 1;
                // Less than a second: still `Retry-After: 1`, never 0.
                config.retry_after = ms(300);
            },
        )
        .await;
        let first = tokio::spawn(send(service.router(), Method::GET, "/products/42", None));
        wait_until(PATIENCE, || service.reviews.counters().in_flight == 1)
            .await
            .expect("the first page's reviews call is in flight");
        // Inventory's and pricing's calls of the first page are over, so
        // their permits are back (each is returned as its call ends).
        wait_until(PATIENCE, || {
            let metrics = service.metrics_now();
            ["inventory", "pricing"].iter().all(|upstream| {
                value_of(
                    &metrics,
                    UPSTREAM_CALLS,
                    &[("upstream", upstream), ("outcome", "ok")],
                ) == 1.0
            })
        })
        .await
        .expect("the first page's inventory and pricing calls have ended");
        let metrics_before = service.metrics_now();

        // Act: a second request while reviews' permit is taken.
        let started = Instant::now();
        let reply = service.get("/products/43").await;
        let elapsed = started.elapsed();

        // Assert
        let problem = reply.problem(StatusCode::SERVICE_UNAVAILABLE);
        assert_problem_snapshot!("shed", problem);
        assert_eq!(
            reply.header("retry-after"),
            Some("1"),
            "a shed client is told when to come back: Retry-After in whole seconds, at least 1"
        );
        assert!(
            elapsed < ms(300),
            "shedding took {elapsed:?}: a full bulkhead should answer at once, not queue"
        );
        for fake in [&service.inventory, &service.pricing] {
            assert_eq!(
                fake.counters().requests,
                1,
                "a shed page sends nothing, not even to the upstreams that had room"
            );
        }
        let metrics = service.scrape().await;
        assert_eq!(
            value_of(
                &metrics,
                UPSTREAM_CALLS,
                &[("upstream", "reviews"), ("outcome", "shed")]
            ),
            1.0,
            "the shed page is counted once, as `shed`, against reviews; metrics were:\n{metrics}"
        );
        for upstream in ["inventory", "pricing", "reviews"] {
            assert_eq!(
                latency_count(&metrics, upstream),
                latency_count(&metrics_before, upstream),
                "a shed call was never sent, so it has no latency to record ({upstream}); metrics were:\n{metrics}"
            );
            assert_eq!(
                value_of(
                    &metrics,
                    UPSTREAM_CALLS,
                    &[("upstream", upstream), ("outcome", "cancelled")]
                ),
                0.0,
                "nothing was started for the shed page, so nothing was cancelled ({upstream})"
            );
        }
        let first = first.await.expect("the first request's task");
        assert_eq!(
            first.status,
            StatusCode::OK,
            "the request holding the permit still succeeds"
        );
    })
    .await;
}

/// While pages are in flight `/metrics` shows each upstream's bulkhead permits in use, out of its size, read at the moment of the scrape; they are back to 0 once the pages are dropped.
#[tokio::test]
async fn the_bulkhead_gauges_show_the_permits_held_by_pages_in_flight() {
    within_time_limit(async {
        // Arrange: every upstream hangs, so each admitted page holds one
        // permit of each upstream until it is dropped; 5 permits each.
        let size = 5;
        let service = Harness::start(
            Behaviour::default().hanging(),
            Behaviour::default().hanging(),
            Behaviour::default().hanging(),
            |config| {
                // Longer than the test's wait, so the pages outlast it.
                patient(config, Duration::from_secs(12));
                config.server_timeout = Duration::from_secs(24);
                config.max_in_flight_per_upstream = size;
            },
        )
        .await;
        let upstreams = ["inventory", "pricing", "reviews"];
        let in_use = |metrics: &str, upstream: &str| {
            sample(metrics, BULKHEAD_PERMITS_IN_USE, &[("upstream", upstream)])
        };
        let three_pages = async {
            tokio::join!(
                service.get("/products/1"),
                service.get("/products/2"),
                service.get("/products/3"),
            )
        };
        // Scrapes until every bulkhead shows the three pages, or gives up.
        let watch = async {
            let give_up = Instant::now() + Duration::from_secs(5);
            loop {
                let metrics = service.scrape().await;
                let all_held = upstreams
                    .iter()
                    .all(|upstream| in_use(&metrics, upstream) == Some(3.0));
                if all_held || Instant::now() >= give_up {
                    return metrics;
                }
                tokio::time::sleep(ms(5)).await;
            }
        };

        // Act: three pages held open while `/metrics` is read; then they
        // are dropped (the `select!` ends), which returns their permits.
        let held = tokio::select! {
            _ = three_pages => panic!("the pages ended, but every upstream hangs"),
            metrics = watch => metrics,
        };
        let after = service.scrape().await;

        // Assert
        for upstream in upstreams {
            assert_eq!(
                in_use(&held, upstream),
                Some(3.0),
                "three pages in flight hold three of {upstream}'s permits, and `/metrics` reads them when it is \
                 scraped; metrics were:\n{held}"
            );
            assert_eq!(
                sample(&held, BULKHEAD_PERMITS_MAX, &[("upstream", upstream)]),
                Some(size as f64),
                "{upstream}'s bulkhead has {size} permits in all; metrics were:\n{held}"
            );
            assert_eq!(
                in_use(&after, upstream),
                Some(0.0),
                "the pages were dropped, so {upstream}'s permits are back; metrics were:\n{after}"
            );
        }
    })
    .await;
}
