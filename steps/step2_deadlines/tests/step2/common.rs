//! What the parts of step 2's tests share: the policy they start from, and
//! the fixture's answers.
//!
//! Every async test runs under `within_time_limit` (from
//! `fake_upstreams::testing`, with the loopback client), so a future that
//! never completes fails with a message instead of freezing the run. The
//! policy tests and the retry-loop tests build their policies from
//! [`http_config`] too, changing only the fields each test is about.

use std::time::Duration;

use fake_upstreams::Service;
use fake_upstreams::mock::MockUpstreams;
use step2_deadlines::{
    FetchError, Inventory, Price, Product, RetryConfig, RetryPolicy, ReviewStats, Upstream,
    UpstreamUrls,
};

/// The product every test asks for.
pub const PRODUCT_ID: u64 = 42;

/// How much later than planned a real-time test may finish: wiremock and the
/// test share two busy cores with other work, so wall-clock time is noisy.
pub const SLACK: Duration = Duration::from_millis(150);

pub fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// The policy the HTTP tests start from: a generous budget, short backoffs.
pub fn http_config() -> RetryConfig {
    RetryConfig {
        budget: ms(2_000),
        attempt_timeout: ms(500),
        margin: ms(10),
        min_attempt: ms(10),
        max_attempts: 3,
        base_delay: ms(10),
        max_delay: ms(40),
    }
}

pub fn policy(config: RetryConfig) -> RetryPolicy {
    RetryPolicy::new(config).expect("the test's retry configuration is valid")
}

/// The merged answer for product 42, as the fake upstreams serve it.
pub fn expected_product() -> Product {
    Product {
        id: PRODUCT_ID,
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

/// The fixture's three base URLs, in the exercise's own type.
pub fn urls_of(upstreams: &MockUpstreams) -> UpstreamUrls {
    UpstreamUrls {
        inventory: upstreams.base_url(Service::Inventory),
        pricing: upstreams.base_url(Service::Pricing),
        reviews: upstreams.base_url(Service::Reviews),
    }
}

/// A 503 from pricing: what the in-process fakes fail with.
pub fn pricing_503() -> FetchError {
    FetchError::Status {
        upstream: Upstream::Pricing,
        status: 503,
    }
}
