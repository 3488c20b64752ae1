//! wiremock fixtures: the three upstreams as the steps' tests arrange them.
//!
//! A test starts [`MockUpstreams`], says how each service behaves
//! (`serve_healthy`, `serve_slow`, `serve_status`, `serve_flaky`,
//! `serve_garbage`), points the code under test at the base URLs, and asserts
//! on what came back and on how many requests each server [received].
//!
//! # Unmatched requests fail the test
//!
//! wiremock answers a request no mock matches with a silent `404` (wiremock
//! issue #93): a typo in a URL then looks like "product not found", and the
//! test may even pass for the wrong reason. So every server here also carries a
//! *catch-all* mock, tried last, that answers
//! `500 fake_upstreams: no mock matched GET /x` and expects to be called zero
//! times. When the [`MockServer`] is dropped at the end of the test, wiremock
//! verifies every mock's expectation and panics if one failed, naming the
//! catch-all and listing the requests it saw.
//!
//! wiremock skips that panic when the thread is already panicking (an earlier
//! assertion failed), so it never turns a failed test into an abort, and a
//! test that only sends matched requests never panics at all.
//!
//! # Which behaviour wins
//!
//! wiremock tries mocks in priority order, `1` first, and takes the first that
//! matches. Each `serve_*` call stacks its mocks *above* the previous ones, so
//! the latest call wins: `MockUpstreams::healthy()` followed by
//! `serve_status(Service::Pricing, 503)` makes pricing fail. Earlier mocks stay
//! mounted, so nothing a test set up (and no recorded request) is forgotten.
//! A `Mock` you mount yourself on [`MockUpstreams::server`] with wiremock's
//! default priority (5) wins over every `serve_*` behaviour; the catch-all
//! (255) always comes last.
//!
//! [received]: MockUpstreams::received

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use wiremock::matchers::{any, method, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::catalog::{GARBAGE_BODY, Service, parse_product_id};

/// The catch-all's priority: wiremock's lowest, so it is tried last.
const CATCH_ALL_PRIORITY: u8 = u8::MAX;

/// The priority of the first `serve_*` behaviour on a server. Each call claims
/// two levels (flaky needs a failing mock above a healthy one), counting down
/// towards [`HIGHEST_BEHAVIOUR_PRIORITY`].
const FIRST_BEHAVIOUR_PRIORITY: u8 = CATCH_ALL_PRIORITY - 2;

/// The highest priority a `serve_*` behaviour may take. Anything above it is
/// left to mocks a test mounts itself (wiremock's default is 5).
const HIGHEST_BEHAVIOUR_PRIORITY: u8 = 6;

/// Three wiremock servers on loopback, one per [`Service`].
///
/// Each server runs on its own thread and in real time: tests that use these
/// must not pause tokio's clock (see the brief: paused time plus real sockets
/// makes every timeout fire at once). Dropping a `MockUpstreams` stops all
/// three servers and verifies their expectations.
#[derive(Debug)]
pub struct MockUpstreams {
    inventory: MockUpstream,
    pricing: MockUpstream,
    reviews: MockUpstream,
}

/// One server plus the priority its next behaviour will take.
#[derive(Debug)]
struct MockUpstream {
    server: MockServer,
    next_priority: AtomicU8,
}

impl MockUpstreams {
    /// Starts three fresh servers, each with only the loud catch-all mounted:
    /// every request is answered `500` (and fails the test on drop) until a
    /// `serve_*` call says what to serve.
    ///
    /// The servers are started with `MockServer::builder().start()`, never the
    /// pooled `MockServer::start()`: a pooled server keeps answering after it
    /// is dropped (it goes back to the pool), so "this upstream went away"
    /// could not be tested.
    pub async fn start() -> Self {
        Self {
            inventory: MockUpstream::start(Service::Inventory).await,
            pricing: MockUpstream::start(Service::Pricing).await,
            reviews: MockUpstream::start(Service::Reviews).await,
        }
    }

    /// Starts three servers that all [`serve_healthy`](Self::serve_healthy).
    pub async fn healthy() -> Self {
        let upstreams = Self::start().await;
        for service in Service::ALL {
            upstreams.serve_healthy(service).await;
        }
        upstreams
    }

    /// The wiremock server playing `service`, to mount your own [`Mock`]s on
    /// or to inspect its received requests.
    pub fn server(&self, service: Service) -> &MockServer {
        &self.upstream(service).server
    }

    /// The base URL of `service`'s server, e.g. `"http://127.0.0.1:40123"`,
    /// without a trailing slash: append [`Service::path`] to it.
    pub fn base_url(&self, service: Service) -> String {
        self.server(service).uri()
    }

    /// Answers `GET /{service}/{digits}` with `200` and
    /// [`Service::body`] for that id.
    pub async fn serve_healthy(&self, service: Service) {
        let priority = self.upstream(service).claim_priority();
        product_mock(service)
            .respond_with(move |request: &Request| product_response(service, request))
            .with_priority(priority)
            .mount(self.server(service))
            .await;
    }

    /// Like [`serve_healthy`](Self::serve_healthy), but each answer is sent
    /// only after `delay`.
    ///
    /// wiremock delays the response, not the TCP connect: connecting is
    /// instant, the body arrives late.
    pub async fn serve_slow(&self, service: Service, delay: Duration) {
        let priority = self.upstream(service).claim_priority();
        product_mock(service)
            .respond_with(move |request: &Request| {
                product_response(service, request).set_delay(delay)
            })
            .with_priority(priority)
            .mount(self.server(service))
            .await;
    }

    /// Answers every product request with `status` and a short plain-text
    /// body: an upstream that is down or broken.
    ///
    /// # Panics
    ///
    /// If `status` is not a valid HTTP status code (100 to 999).
    pub async fn serve_status(&self, service: Service, status: u16) {
        let priority = self.upstream(service).claim_priority();
        product_mock(service)
            .respond_with(failure_response(service, status))
            .with_priority(priority)
            .mount(self.server(service))
            .await;
    }

    /// Answers the next `failures` product requests with `status`, and every
    /// request after those as [`serve_healthy`](Self::serve_healthy) would:
    /// the upstream a retry should get through.
    ///
    /// # Panics
    ///
    /// If `status` is not a valid HTTP status code (100 to 999).
    pub async fn serve_flaky(&self, service: Service, failures: u64, status: u16) {
        let failing_priority = self.upstream(service).claim_priority();
        // The failing mock sits one level above the healthy one and stops
        // matching after `failures` requests, so wiremock falls through to the
        // healthy mock below it.
        let healthy_priority = failing_priority + 1;
        product_mock(service)
            .respond_with(failure_response(service, status))
            .up_to_n_times(failures)
            .with_priority(failing_priority)
            .mount(self.server(service))
            .await;
        product_mock(service)
            .respond_with(move |request: &Request| product_response(service, request))
            .with_priority(healthy_priority)
            .mount(self.server(service))
            .await;
    }

    /// Answers `200` with `content-type: application/json` and
    /// [`GARBAGE_BODY`], which is not JSON: decoding it must fail.
    pub async fn serve_garbage(&self, service: Service) {
        let priority = self.upstream(service).claim_priority();
        product_mock(service)
            .respond_with(ResponseTemplate::new(200).set_body_raw(GARBAGE_BODY, "application/json"))
            .with_priority(priority)
            .mount(self.server(service))
            .await;
    }

    /// How many requests `service`'s server has received so far, matched or
    /// not.
    pub async fn received(&self, service: Service) -> usize {
        self.server(service)
            .received_requests()
            .await
            // Recording is on by default, and nothing here turns it off.
            .map_or(0, |requests| requests.len())
    }

    fn upstream(&self, service: Service) -> &MockUpstream {
        match service {
            Service::Inventory => &self.inventory,
            Service::Pricing => &self.pricing,
            Service::Reviews => &self.reviews,
        }
    }
}

impl MockUpstream {
    async fn start(service: Service) -> Self {
        let server = MockServer::builder().start().await;
        mount_catch_all(service, &server).await;
        Self {
            server,
            next_priority: AtomicU8::new(FIRST_BEHAVIOUR_PRIORITY),
        }
    }

    /// Claims the priority for the next behaviour: one above (numerically two
    /// below) the previous one, leaving room for `serve_flaky`'s second mock.
    fn claim_priority(&self) -> u8 {
        let priority = self.next_priority.fetch_sub(2, Ordering::Relaxed);
        assert!(
            (HIGHEST_BEHAVIOUR_PRIORITY..=FIRST_BEHAVIOUR_PRIORITY).contains(&priority),
            "fake_upstreams: too many serve_* calls on one server; start a fresh MockUpstreams"
        );
        priority
    }
}

/// Mounts the mock that answers, and fails the test for, any request no other
/// mock matched. See the module docs for why.
async fn mount_catch_all(service: Service, server: &MockServer) {
    Mock::given(any())
        .respond_with(|request: &Request| {
            ResponseTemplate::new(500).set_body_string(format!(
                "fake_upstreams: no mock matched {} {}",
                request.method,
                path_and_query(request)
            ))
        })
        .with_priority(CATCH_ALL_PRIORITY)
        .expect(0)
        .named(format!(
            "fake_upstreams catch-all on {service}: a request matched no mock (see its 500 body)"
        ))
        .mount(server)
        .await;
}

/// A mock matching `GET /{service}/{digits}` for any product id.
fn product_mock(service: Service) -> wiremock::MockBuilder {
    Mock::given(method("GET")).and(path_regex(format!("^/{}/[0-9]+$", service.name())))
}

/// `200` with the service's body for the id in the request's path.
fn product_response(service: Service, request: &Request) -> ResponseTemplate {
    let id_segment = request.url.path().rsplit('/').next().unwrap_or_default();
    match parse_product_id(id_segment) {
        Some(product_id) => ResponseTemplate::new(200).set_body_json(service.body(product_id)),
        // The path regex guarantees digits; only an id too large for a u64
        // gets here, and for a real service that id would not exist.
        None => ResponseTemplate::new(404)
            .set_body_string(format!("fake_upstreams: no product {id_segment}")),
    }
}

/// `status` with a body saying the failure was arranged, to tell it apart
/// from a real bug when a test prints the response.
fn failure_response(service: Service, status: u16) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_string(format!(
        "fake_upstreams: {service} answers {status}, as the test arranged"
    ))
}

fn path_and_query(request: &Request) -> String {
    match request.url.query() {
        Some(query) => format!("{}?{query}", request.url.path()),
        None => request.url.path().to_owned(),
    }
}
