//! How late does a failures-in-a-row breaker catch an upstream that fails
//! half the time? The chapter quotes this run.
//!
//! It drives the step's own [`CircuitBreaker`] with the lab's settings (10
//! failures in a row, 1 s cool-down, 1 probe) under a *paused* clock, with
//! in-process calls that fail with probability 0.5, drawn from a seeded
//! generator: the numbers depend only on the code and the seed, not on the
//! machine, and ten simulated minutes take a few seconds.
//!
//! ```sh
//! cargo run --release -p step6_resilience_solution --example step6_breaker_at_half
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use step6_resilience::{
    BreakerConfig, BreakerState, CircuitBreaker, Deadline, FairTimeout, FetchError, Upstream,
};

/// The lab's breaker (see `matrix.rs`). Every failure here is a 503, so the
/// fair-timeout rule never comes into play.
const BREAKER: BreakerConfig = BreakerConfig {
    failure_threshold: 10,
    cool_down: Duration::from_secs(1),
    half_open_probes: 1,
    fair_timeout: FairTimeout {
        min_own_time: Duration::from_millis(200),
        timer_tolerance: Duration::from_millis(50),
    },
};

/// The calls here never time out: each is bound by a deadline an hour away.
fn far_off() -> Deadline {
    Deadline::after(Duration::from_secs(3600))
}

/// How many breakers are tripped from scratch to measure the calls it takes.
const TRIALS: usize = 10_000;

/// How long each steady-traffic run lasts, in simulated time.
const STEADY_FOR: Duration = Duration::from_secs(600);

/// How long each simulated call takes.
const CALL_LATENCY: Duration = Duration::from_millis(20);

/// A small seeded generator (SplitMix64): reproducible, and enough for coin
/// flips.
struct Coin(u64);

impl Coin {
    fn flip(&mut self) -> bool {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) & 1 == 1
    }
}

/// The 503 that a sick upstream answers.
fn failure() -> FetchError {
    FetchError::Status {
        upstream: Upstream::Reviews,
        status: 503,
    }
}

/// One call after another into a fresh breaker, each failing half the time:
/// how many calls until it opens?
async fn calls_until_open(coin: &mut Coin) -> u64 {
    let breaker = CircuitBreaker::new(Upstream::Reviews, BREAKER).expect("a valid breaker");
    let mut calls = 0;
    while breaker.state() != BreakerState::Open {
        calls += 1;
        let fails = coin.flip();
        let outcome = if fails { Err(failure()) } else { Ok(()) };
        let _ = breaker.call(far_off(), async { outcome }).await;
    }
    calls
}

/// Calls arriving at `per_second`, each taking [`CALL_LATENCY`] and failing
/// half the time, through one breaker for [`STEADY_FOR`]: the share of calls
/// the breaker refused.
async fn refused_share(per_second: u32, coin: &mut Coin) -> f64 {
    let breaker =
        Arc::new(CircuitBreaker::new(Upstream::Reviews, BREAKER).expect("a valid breaker"));
    let refused = Arc::new(AtomicU64::new(0));
    let total = u64::from(per_second) * STEADY_FOR.as_secs();
    let mut arrivals = tokio::time::interval(Duration::from_secs(1) / per_second);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..total {
        arrivals.tick().await;
        let fails = coin.flip();
        let breaker = Arc::clone(&breaker);
        let refused = Arc::clone(&refused);
        calls.spawn(async move {
            let outcome = breaker
                .call(far_off(), async move {
                    tokio::time::sleep(CALL_LATENCY).await;
                    if fails { Err(failure()) } else { Ok(()) }
                })
                .await;
            if let Err(FetchError::CircuitOpen { .. }) = outcome {
                refused.fetch_add(1, Ordering::Relaxed);
            }
        });
        // Reap finished calls as we go, so the set stays small.
        while calls.try_join_next().is_some() {}
    }
    while calls.join_next().await.is_some() {}
    refused.load(Ordering::Relaxed) as f64 / total as f64
}

fn main() {
    // Paused: the clock jumps to the next timer whenever every task waits,
    // so simulated minutes take no real time.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a paused runtime");
    runtime.block_on(async {
        let mut coin = Coin(6);
        let mut counts = Vec::with_capacity(TRIALS);
        for _ in 0..TRIALS {
            counts.push(calls_until_open(&mut coin).await);
        }
        counts.sort_unstable();
        let mean = counts.iter().sum::<u64>() as f64 / TRIALS as f64;
        let expected = 2.0 * (2f64.powi(BREAKER.failure_threshold as i32) - 1.0);
        println!(
            "calls until a fresh breaker opens at 50% failures ({TRIALS} runs): \
             mean {mean:.0} (expected {expected:.0}), median {}, p90 {}, p99 {}",
            counts[TRIALS / 2],
            counts[TRIALS * 9 / 10],
            counts[TRIALS * 99 / 100],
        );
        for per_second in [100, 1_000] {
            let share = refused_share(per_second, &mut coin).await;
            println!(
                "{per_second} calls/s for {STEADY_FOR:?} (simulated), 50% failing: \
                 the breaker refused {:.1}% of calls",
                100.0 * share
            );
        }
    });
}
