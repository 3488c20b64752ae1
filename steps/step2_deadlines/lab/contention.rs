//! The contention experiment: why backoff needs jitter (after Brooker, 2015).
//!
//! Many clients each want to make one change to a shared resource, with
//! optimistic concurrency: read the version, work for a moment, then write
//! only if the version has not moved ("compare and swap"). If another client
//! wrote first, the write conflicts and the client backs off and tries again,
//! as long as it takes.
//!
//! Two strategies, with the same [`RetryPolicy`] (base and cap):
//!
//! * **exponential, no jitter**: pause exactly `backoff_ceiling(n)`. Clients
//!   that collided once pause for the same time, wake together and collide
//!   again: each round lets exactly one of them through.
//! * **exponential, full jitter**: pause `backoff_delay(n)`, your full-jitter
//!   draw. The same clients wake at different moments, and most writes find
//!   the resource free.
//!
//! It runs on tokio's **paused** clock, in process, without sockets: the
//! clock jumps from timer to timer, so a run of simulated minutes takes
//! milliseconds, and every client's RNG is seeded, so the result is the same
//! on every machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use step2_deadlines::RetryPolicy;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How a client waits after a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Exactly the exponential ceiling: `min(cap, base × 2^n)`.
    NoJitter,
    /// A full-jitter draw from `0..=min(cap, base × 2^n)`.
    FullJitter,
}

impl Strategy {
    /// The name in tables and plots.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::NoJitter => "exponential, no jitter",
            Strategy::FullJitter => "exponential, full jitter",
        }
    }
}

/// What one run of the experiment measured.
#[derive(Debug, Clone)]
pub struct ContentionResult {
    /// How the clients backed off.
    pub strategy: Strategy,
    /// How many clients contended.
    pub clients: usize,
    /// Attempts made by all clients together, successful ones included.
    pub calls: u64,
    /// Virtual time from the start until the last client's write went through.
    pub finished_after: Duration,
}

/// `clients` clients, each making one optimistic write to one shared
/// resource, where the read-modify-write takes `work`.
///
/// Call it on a runtime whose clock is paused (see the module docs).
pub async fn contend(
    clients: usize,
    strategy: Strategy,
    policy: &RetryPolicy,
    work: Duration,
    seed: u64,
) -> ContentionResult {
    let version = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for client in 0..clients {
        let version = Arc::clone(&version);
        let policy = policy.clone();
        // One seeded RNG per client: the result does not depend on the order
        // in which the runtime happens to poll the clients.
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(client as u64));
        tasks.spawn(async move {
            let mut calls = 0_u64;
            let mut retry = 0_u32;
            loop {
                calls += 1;
                let seen = version.load(Ordering::SeqCst);
                tokio::time::sleep(work).await;
                let wrote = version
                    .compare_exchange(seen, seen + 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
                if wrote {
                    return (calls, Instant::now());
                }
                let pause = match strategy {
                    Strategy::NoJitter => policy.backoff_ceiling(retry),
                    Strategy::FullJitter => policy.backoff_delay(retry, &mut rng),
                };
                retry = retry.saturating_add(1);
                tokio::time::sleep(pause).await;
            }
        });
    }

    let mut calls = 0;
    let mut last_write = started;
    while let Some(joined) = tasks.join_next().await {
        let (client_calls, wrote_at) = joined.expect("a contention client does not panic");
        calls += client_calls;
        last_write = last_write.max(wrote_at);
    }
    ContentionResult {
        strategy,
        clients,
        calls,
        finished_after: last_write - started,
    }
}

/// Runs both strategies at every client count on a fresh paused runtime.
///
/// # Errors
///
/// If the runtime cannot be built.
pub fn run_all(
    client_counts: &[usize],
    policy: &RetryPolicy,
    work: Duration,
) -> anyhow::Result<Vec<ContentionResult>> {
    // A runtime of its own, with the clock paused: virtual time, exact and
    // instant. `enable_time` is all it needs; there is no I/O here.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    let mut results = Vec::new();
    for &clients in client_counts {
        for strategy in [Strategy::NoJitter, Strategy::FullJitter] {
            results.push(runtime.block_on(contend(clients, strategy, policy, work, 2015)));
        }
    }
    Ok(results)
}

/// The results as a markdown table (it reads fine in a terminal too).
pub fn table(results: &[ContentionResult]) -> String {
    let mut out = String::from(
        "| clients | strategy | total calls | calls per client | time to finish (virtual) |\n\
         | ---: | :--- | ---: | ---: | ---: |\n",
    );
    for result in results {
        out.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.2} s |\n",
            result.clients,
            result.strategy.name(),
            result.calls,
            result.calls as f64 / result.clients.max(1) as f64,
            result.finished_after.as_secs_f64()
        ));
    }
    out
}

/// The line the chapter quotes: at 100 clients (Brooker's count) if that was
/// run, else at the most clients run.
pub fn headline(results: &[ContentionResult]) -> Option<String> {
    let most = if results.iter().any(|result| result.clients == 100) {
        100
    } else {
        results.iter().map(|result| result.clients).max()?
    };
    let find = |strategy| {
        results
            .iter()
            .find(|result| result.clients == most && result.strategy == strategy)
    };
    let (plain, jittered) = (find(Strategy::NoJitter)?, find(Strategy::FullJitter)?);
    Some(format!(
        "at {most} clients: full jitter made {} calls against {} without jitter ({:.0}% fewer), and finished in {:.2} s against {:.2} s",
        jittered.calls,
        plain.calls,
        (1.0 - jittered.calls as f64 / plain.calls.max(1) as f64) * 100.0,
        jittered.finished_after.as_secs_f64(),
        plain.finished_after.as_secs_f64()
    ))
}
