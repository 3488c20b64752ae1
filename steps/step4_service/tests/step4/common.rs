//! What the parts of step 4's tests share: the harness (three fake upstreams
//! and the service in front of them, with its own span capture and metrics
//! recorder), and helpers to read responses, problem documents and
//! Prometheus text.
//!
//! Every async test runs under `within_time_limit` (from
//! `fake_upstreams::testing`, with `wait_until` and the loopback client), so
//! a future that never completes fails with a message instead of freezing
//! the run. Problem
//! documents are compared with insta snapshots through
//! [`assert_problem_snapshot`], which pins the snapshot directory so the
//! exercise and the solution read the same files.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use fake_upstreams::fast::{Behaviour, FastUpstream};
use fake_upstreams::testing::{closed_port_url, loopback_client};
use metrics::LocalRecorderGuard;
use serde_json::Value;
use step4_service::telemetry::UPSTREAM_LATENCY;
use step4_service::{
    AppState, Inventory, PROBLEM_JSON, Price, Product, ReviewStats, ServiceConfig, UpstreamUrls,
    prometheus_builder, router,
};
use tower::ServiceExt as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::capture::{Captured, CapturedSpan};

pub fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// The merged answer for product 42, as the fake upstreams serve it.
pub fn expected_product() -> Product {
    Product {
        id: 42,
        inventory: Inventory {
            in_stock: 44,
            warehouse: "ams-1".to_owned(),
        },
        price: Price {
            amount_cents: 5199,
            currency: "EUR".to_owned(),
        },
        reviews: ReviewStats {
            average_stars: 4.0,
            count: 46,
        },
    }
}

/// A configuration for tests whose fakes are slow on purpose: a long
/// `budget`, one attempt may use all of it (minus the default margin), and
/// the backstop well behind it.
pub fn patient(config: &mut ServiceConfig, budget: Duration) {
    config.request_budget = budget;
    config.attempt_timeout = budget;
    config.server_timeout = budget * 2;
}

/// Three fake upstreams, the service in front of them, and what it records.
pub struct Harness {
    pub inventory: FastUpstream,
    pub pricing: FastUpstream,
    pub reviews: FastUpstream,
    pub state: Arc<AppState>,
    /// Every span and log line the test's requests produced.
    pub captured: Captured,
    _tracing: tracing::subscriber::DefaultGuard,
    _metrics: LocalRecorderGuard<'static>,
}

impl Harness {
    /// All three upstreams healthy and instant, the tests' default
    /// configuration (see [`Harness::start`]).
    pub async fn healthy() -> Harness {
        Harness::start(
            Behaviour::default(),
            Behaviour::default(),
            Behaviour::default(),
            |_| {},
        )
        .await
    }

    /// Starts the fakes with these behaviours and the service in front of
    /// them, with `configure` applied to a patient configuration: a 2 s
    /// budget that one attempt may use whole. The workbook's own defaults
    /// (200 ms, attempts of 70 ms) are right for a service but not for a
    /// test on a loaded machine, where a first loopback call can take 80 ms;
    /// the tests that are about attempts and deadlines set theirs.
    pub async fn start(
        inventory: Behaviour,
        pricing: Behaviour,
        reviews: Behaviour,
        configure: impl FnOnce(&mut ServiceConfig),
    ) -> Harness {
        Harness::start_logging_from(LevelFilter::TRACE, inventory, pricing, reviews, configure)
            .await
    }

    /// [`Harness::start`], capturing only the spans and lines at `level` or
    /// more severe, as a `RUST_LOG` filter would (the binary's default is
    /// `info`): what is filtered out never exists, spans included.
    pub async fn start_logging_from(
        level: LevelFilter,
        inventory: Behaviour,
        pricing: Behaviour,
        reviews: Behaviour,
        configure: impl FnOnce(&mut ServiceConfig),
    ) -> Harness {
        // This test's own spans and metrics, on this thread only.
        let captured = Captured::default();
        let tracing = tracing::subscriber::set_default(captured.subscriber().with(level));
        // Leaked so the guard can live in the harness: a few bytes per test.
        let recorder: &'static _ = Box::leak(Box::new(prometheus_builder().build_recorder()));
        let metrics = metrics::set_default_local_recorder(recorder);

        let inventory = FastUpstream::start(inventory).await.expect("fake starts");
        let pricing = FastUpstream::start(pricing).await.expect("fake starts");
        let reviews = FastUpstream::start(reviews).await.expect("fake starts");
        let mut config = ServiceConfig::new(UpstreamUrls {
            inventory: inventory.base_url(),
            pricing: pricing.base_url(),
            reviews: reviews.base_url(),
        });
        patient(&mut config, Duration::from_secs(2));
        configure(&mut config);
        let state = AppState::new(config, recorder.handle()).expect("the test's config is valid");
        Harness {
            inventory,
            pricing,
            reviews,
            state,
            captured,
            _tracing: tracing,
            _metrics: metrics,
        }
    }

    /// The service under test.
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Sends `GET path` through the router, in process.
    pub async fn get(&self, path: &str) -> Reply {
        send(self.router(), Method::GET, path, None).await
    }

    /// Sends `GET path` with an `x-request-id` header.
    pub async fn get_with_id(&self, path: &str, request_id: HeaderValue) -> Reply {
        send(self.router(), Method::GET, path, Some(request_id)).await
    }

    /// The spans named `upstream_call` that have closed so far.
    pub fn upstream_spans(&self) -> Vec<CapturedSpan> {
        self.captured
            .closed_spans()
            .into_iter()
            .filter(|span| span.name == "upstream_call")
            .collect()
    }

    /// The closed `upstream_call` spans of one upstream, in attempt order.
    pub fn spans_of(&self, upstream: &str) -> Vec<CapturedSpan> {
        let mut spans: Vec<_> = self
            .upstream_spans()
            .into_iter()
            .filter(|span| span.field("upstream") == Some(upstream))
            .collect();
        spans.sort_by_key(|span| span.field("attempt").map(str::to_owned));
        spans
    }

    /// The Prometheus text the service's own `/metrics` route serves.
    pub async fn scrape(&self) -> String {
        let reply = self.get("/metrics").await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "GET /metrics should answer 200"
        );
        reply.text()
    }

    /// The same text, read straight from the recorder (no request, so it
    /// can be polled from a synchronous condition).
    pub fn metrics_now(&self) -> String {
        self.state.metrics.render()
    }
}

/// A response, read in full.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!("the body should be JSON ({error}), got: {}", self.text())
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts a problem document with `status`, and returns its JSON.
    pub fn problem(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "wrong status; body: {}", self.text());
        assert_eq!(
            self.header(header::CONTENT_TYPE.as_str()),
            Some(PROBLEM_JSON),
            "an error is sent as an RFC 9457 problem document; body: {:?}",
            self.text()
        );
        self.json()
    }
}

pub async fn send(
    router: Router,
    method: Method,
    path: &str,
    request_id: Option<HeaderValue>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(request_id) = request_id {
        request = request.header("x-request-id", request_id);
    }
    let response = router
        .oneshot(request.body(Body::empty()).expect("a valid request"))
        .await
        .expect("axum's router never fails");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("the body arrives")
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// Checks that a problem's `instance` names an occurrence the RFC 9457 way
/// chosen here: `urn:uuid:` and a UUID.
pub fn assert_urn_uuid(instance: Option<&str>) {
    let instance = instance.expect("a problem document has an `instance` string");
    let uuid = instance.strip_prefix("urn:uuid:").unwrap_or_else(|| {
        panic!("`instance` should be `urn:uuid:<uuid>` naming this occurrence, got {instance:?}")
    });
    assert!(
        uuid::Uuid::parse_str(uuid).is_ok(),
        "`instance` should end in a UUID, got {instance:?}"
    );
}

/// Runs `assertions` with insta reading and writing this file's snapshots in
/// `steps/step4_service/tests/snapshots`, from the exercise and the solution
/// alike. The solution compiles this file through `../../steps/...`; without
/// a fixed path, insta would look beside the solution when it cannot ask
/// cargo for the workspace root, and write stray `.snap.new` files there.
pub fn with_this_files_snapshots(assertions: impl FnOnce()) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../steps/step4_service/tests/snapshots"
    ));
    settings.bind(assertions);
}

/// `insta::assert_json_snapshot!` with the two values that change on every
/// run redacted; `instance` is checked to be a `urn:uuid:` first.
macro_rules! assert_problem_snapshot {
    ($name:expr, $problem:expr) => {
        $crate::common::with_this_files_snapshots(|| {
            insta::assert_json_snapshot!($name, $problem, {
                ".request_id" => "[request-id]",
                ".instance" => insta::dynamic_redaction(|value, _path| {
                    $crate::common::assert_urn_uuid(value.as_str());
                    "[instance]"
                }),
            })
        })
    };
}
pub(crate) use assert_problem_snapshot;

/// The value of the sample `name{labels...}` in Prometheus text, whatever
/// order its labels were written in.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let rest = series.strip_prefix(name)?;
        let has_all = rest.starts_with('{')
            && labels
                .iter()
                .all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")));
        has_all.then(|| value.parse().ok()).flatten()
    })
}

/// The value of a sample without labels, `name value`, if rendered.
pub fn unlabelled(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

/// A counter or gauge for one upstream (and outcome), 0 if not rendered.
pub fn value_of(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(text, name, labels).unwrap_or(0.0)
}

/// The sum of every sample `name{labels...}` in Prometheus text (0 if
/// none): a series summed over the labels not named, as PromQL's `sum`.
pub fn total_of(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            let has_all = rest.starts_with('{')
                && labels
                    .iter()
                    .all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")));
            has_all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// How many latency observations one upstream's histogram holds, all
/// outcomes together.
pub fn latency_count(text: &str, upstream: &str) -> f64 {
    total_of(
        text,
        &format!("{UPSTREAM_LATENCY}_count"),
        &[("upstream", upstream)],
    )
}

/// A real `reqwest::Error`, of the kind a refused connection gives.
pub async fn a_refused_connection() -> reqwest::Error {
    loopback_client()
        .get(closed_port_url())
        .send()
        .await
        .expect_err("nothing listens on a closed port")
}
