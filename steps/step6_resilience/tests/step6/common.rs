//! What the parts of step 6's tests share: the fakes on loopback and the
//! tests' settings.
//!
//! Every async test runs under `within_time_limit` (from
//! `fake_upstreams::testing`, with `wait_until` and the loopback client), so
//! a future that never completes fails with a message instead of freezing
//! the run. The tests on real sockets start [`Fakes`], one
//! `fake_upstreams::fast::FastUpstream` per upstream, and wait *for a
//! condition* with `wait_until` instead of sleeping a fixed time and then
//! looking.

use std::time::Duration;

use fake_upstreams::fast::{Behaviour, FastUpstream};
use fake_upstreams::testing::loopback_client;
use step6_resilience::{FairTimeout, ProductService, Resilience, UpstreamUrls};

/// The product every test asks for.
pub const PRODUCT_ID: u64 = 42;

/// `millis` milliseconds: the tests' durations are short and many.
pub fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// Three fast fakes, one per upstream, on this test's runtime.
pub struct Fakes {
    pub inventory: FastUpstream,
    pub pricing: FastUpstream,
    pub reviews: FastUpstream,
}

impl Fakes {
    pub async fn start(inventory: Behaviour, pricing: Behaviour, reviews: Behaviour) -> Fakes {
        Fakes {
            inventory: FastUpstream::start(inventory).await.expect("fake starts"),
            pricing: FastUpstream::start(pricing).await.expect("fake starts"),
            reviews: FastUpstream::start(reviews).await.expect("fake starts"),
        }
    }

    pub fn urls(&self) -> UpstreamUrls {
        UpstreamUrls {
            inventory: self.inventory.base_url(),
            pricing: self.pricing.base_url(),
            reviews: self.reviews.base_url(),
        }
    }

    pub fn service(&self, resilience: Resilience) -> ProductService {
        ProductService::new(loopback_client(), self.urls(), resilience)
            .expect("a valid configuration")
    }

    pub fn all(&self) -> [&FastUpstream; 3] {
        [&self.inventory, &self.pricing, &self.reviews]
    }

    /// Whether every fake has exactly `requests` requests in flight.
    pub fn all_have_in_flight(&self, requests: u64) -> bool {
        self.all()
            .iter()
            .all(|fake| fake.counters().in_flight == requests)
    }

    /// Whether every fake has seen exactly `requests` requests, and every one
    /// of them cancelled by its client.
    pub fn all_cancelled(&self, requests: u64) -> bool {
        self.all().iter().all(|fake| {
            let counters = fake.counters();
            counters.requests == requests && counters.cancelled == requests
        })
    }
}

/// Fakes served by a runtime of their own, on threads of their own, so that
/// the test's runtime counts only the tasks the page and its client start
/// (an axum server spawns tasks of its own once it first runs, which would
/// blur a count of the page's tasks), and so that blocking the test's runtime
/// does not stop the fakes.
pub struct FakesOnTheirOwnRuntime {
    fakes: Fakes,
    /// `Some` until dropped: a runtime cannot be dropped from async code, so
    /// `Drop` shuts it down in the background instead.
    runtime: Option<tokio::runtime::Runtime>,
}

impl FakesOnTheirOwnRuntime {
    pub async fn start(inventory: Behaviour, pricing: Behaviour, reviews: Behaviour) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the fakes");
        let fakes = runtime
            .spawn(Fakes::start(inventory, pricing, reviews))
            .await
            .expect("the fakes start");
        FakesOnTheirOwnRuntime {
            fakes,
            runtime: Some(runtime),
        }
    }
}

impl std::ops::Deref for FakesOnTheirOwnRuntime {
    type Target = Fakes;

    fn deref(&self) -> &Fakes {
        &self.fakes
    }
}

impl Drop for FakesOnTheirOwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// An upstream that answers every request in 10 ms.
pub fn healthy() -> Behaviour {
    Behaviour::fixed(ms(10))
}

/// An upstream that never answers: a request stays in flight until its
/// client drops it.
pub fn hanging() -> Behaviour {
    Behaviour::default().hanging()
}

/// An upstream that answers every request with a 503 in 10 ms.
pub fn failing_503() -> Behaviour {
    Behaviour::fixed(ms(10)).failing(1.0, 503)
}

/// The fair-timeout rule of the tests' breakers: a timeout counts against the
/// upstream only if its call had at least 100 ms of its own before the
/// deadline and was seen within 200 ms of it. Wide on purpose: a loaded
/// 2-core machine runs a timer a few milliseconds late, not 200, unless a test
/// blocks the runtime on purpose.
pub fn fair_timeout() -> FairTimeout {
    FairTimeout {
        min_own_time: ms(100),
        timer_tolerance: ms(200),
    }
}

/// How long the fakes get to notice a dropped request. The issue asks for
/// 100 ms; loopback usually takes a millisecond or two, but these tests must
/// pass on a loaded 2-core machine, so they assert a tenfold margin.
///
/// A fake notices a dropped request *asynchronously* (the client closes the
/// connection, the server reads the close, hyper drops the handler), so a
/// test waits for it with `wait_until` rather than checking once.
pub const NOTICE_LIMIT: Duration = Duration::from_secs(1);

/// The value of the series `name` whose labels include every one of
/// `labels`, read from Prometheus' text format.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
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
