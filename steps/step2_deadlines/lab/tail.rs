//! The tail experiment: one rare stall, three ways to live with it.
//!
//! Three fake upstreams answer in about 20 ms, except that 2% of calls stall
//! for a second. A product page needs all three, so about 6% of pages meet a
//! stall (1 − 0.98³). The same load then runs three times, through **your**
//! `fetch_product`, with three policies:
//!
//! * **no timeouts**: one attempt, and a budget (30 s) that never binds. The
//!   page waits for the stall.
//! * **timeouts only**: one attempt, cut off at the 200 ms budget minus the
//!   margin. The page no longer waits a second; it fails instead.
//! * **timeouts + jittered retries**: the lab's retry policy: attempts cut off
//!   well before the stall ends, and retried after a full-jitter pause.
//!
//! There is no HTTP server in front: the load generator calls `fetch_product`
//! directly, one call per "request", with a fresh deadline each time (that
//! is the edge). A server would add the same few hundred microseconds to
//! every scenario and teach nothing here; step 4 puts the route in front.
//!
//! Upstream calls per request come from the fakes' own `requests` counters,
//! zeroed between the warm-up and the measured window, so they count exactly
//! what the measured requests cost the upstreams, retries included.

use std::sync::Arc;
use std::time::Duration;

use fake_upstreams::fast::FastUpstream;
use indicatif::ProgressBar;
use load_lab::report::Row;
use load_lab::{ErrorKind, Load, Plan, RequestOutcome};
use step2_deadlines::{
    Deadline, FetchError, RetryConfig, RetryPolicy, UpstreamUrls, fetch_product,
};

/// The product every request asks for.
const PRODUCT_ID: u64 = 42;

/// The three upstreams of a product page, one fake each.
pub struct Upstreams {
    /// The fakes, in `Upstream` order: inventory, pricing, reviews.
    pub fakes: [FastUpstream; 3],
    /// Where they listen.
    pub urls: UpstreamUrls,
}

impl Upstreams {
    /// Total requests the three fakes received since their counters were last reset.
    fn requests(&self) -> u64 {
        self.fakes.iter().map(|fake| fake.counters().requests).sum()
    }

    /// Total requests whose caller went away before the answer (abandoned by a timeout).
    fn cancelled(&self) -> u64 {
        self.fakes
            .iter()
            .map(|fake| fake.counters().cancelled)
            .sum()
    }

    fn reset_counters(&self) {
        for fake in &self.fakes {
            fake.reset_counters();
        }
    }
}

/// One way of calling the upstreams: a name and a policy.
pub struct Scenario {
    /// Shown in the tables and the plot.
    pub name: String,
    /// What `fetch_product` is given.
    pub policy: RetryPolicy,
}

/// The three scenarios, built around the lab's retry policy.
///
/// # Errors
///
/// If a derived policy is invalid (only possible with odd command-line values).
pub fn scenarios(retrying: &RetryPolicy) -> anyhow::Result<Vec<Scenario>> {
    let config = retrying.config();
    let never = Duration::from_secs(30);
    let no_timeouts = RetryPolicy::new(RetryConfig {
        budget: never,
        attempt_timeout: never,
        margin: Duration::ZERO,
        min_attempt: Duration::ZERO,
        max_attempts: 1,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    })?;
    // One attempt, allowed the whole budget (minus the margin): the most a
    // single call can get.
    let timeouts_only = RetryPolicy::new(RetryConfig {
        attempt_timeout: config.budget - config.margin,
        max_attempts: 1,
        ..*config
    })?;
    Ok(vec![
        Scenario {
            name: "no timeouts".to_owned(),
            policy: no_timeouts,
        },
        Scenario {
            name: format!(
                "timeouts only ({} ms)",
                (config.budget - config.margin).as_millis()
            ),
            policy: timeouts_only,
        },
        Scenario {
            name: format!(
                "timeouts ({} ms) + jittered retries (×{})",
                config.attempt_timeout.as_millis(),
                config.max_attempts
            ),
            policy: retrying.clone(),
        },
    ])
}

/// What one scenario measured.
pub struct TailResult {
    /// The table row: latency, errors, and the extra columns.
    pub row: Row,
    /// Upstream calls per measured request.
    pub calls_per_request: f64,
    /// Requests that ended in a timeout.
    pub timeouts: u64,
}

/// Runs one scenario: a warm-up (discarded), the counters zeroed, then the
/// measured window.
pub async fn run_scenario(
    scenario: &Scenario,
    upstreams: &Upstreams,
    client: &reqwest::Client,
    load: Load,
    warmup: Duration,
    window: Duration,
    progress: &ProgressBar,
) -> TailResult {
    let shared = Arc::new((
        client.clone(),
        upstreams.urls.clone(),
        scenario.policy.clone(),
    ));
    let send = move || {
        let shared = Arc::clone(&shared);
        async move {
            let (client, urls, policy) = &*shared;
            // The edge: the request's one deadline is set here, once.
            let deadline = Deadline::after(policy.budget());
            outcome(fetch_product(client, urls, policy, deadline, PRODUCT_ID).await)
        }
    };

    progress.set_message(format!("{}: warm-up", scenario.name));
    let warm = Plan {
        load,
        warmup: Duration::ZERO,
        measure: warmup,
    };
    let _ = load_lab::run(&warm, progress, send.clone()).await;

    // `run` returns only after its requests have answered, so nothing of
    // the warm-up is still in flight here except calls a timeout abandoned.
    upstreams.reset_counters();
    progress.set_message(scenario.name.clone());
    let plan = Plan {
        load,
        warmup: Duration::ZERO,
        measure: window,
    };
    let measurement = load_lab::run(&plan, progress, send).await;

    let requests = measurement.ok + measurement.error_count();
    let calls = upstreams.requests();
    let calls_per_request = calls as f64 / requests.max(1) as f64;
    let timeouts = measurement.errors_of(TIMEOUT);
    let row = Row {
        scenario: scenario.name.clone(),
        extra: vec![
            ("timeouts".to_owned(), timeouts.to_string()),
            (
                "upstream calls/req".to_owned(),
                format!("{calls_per_request:.3}"),
            ),
            (
                "extra calls".to_owned(),
                format!("{:+.1}%", (calls_per_request / 3.0 - 1.0) * 100.0),
            ),
            (
                "abandoned calls".to_owned(),
                upstreams.cancelled().to_string(),
            ),
        ],
        measurement,
    };
    TailResult {
        row,
        calls_per_request,
        timeouts,
    }
}

/// The error kind of a request that ran out of time.
pub const TIMEOUT: &str = "timeout";

/// Turns `fetch_product`'s result into the load generator's outcome, with
/// short, low-cardinality error kinds.
fn outcome<T>(result: Result<T, FetchError>) -> RequestOutcome {
    match result {
        Ok(_) => Ok(()),
        Err(error) => Err(ErrorKind::new(match error {
            FetchError::Timeout { .. } => TIMEOUT.to_owned(),
            FetchError::Status { status, .. } => format!("status {status}"),
            FetchError::Transport { .. } => "transport".to_owned(),
            FetchError::Decode { .. } => "decode".to_owned(),
        })),
    }
}
