//! Step 5's lab: one request through the orchestrator, from the command line.
//!
//! In this step the thing to measure is the test suite itself, and its
//! measurement is `cargo xtask verify step5` ("caught k of n"). This lab
//! runs one request, against in-process fakes with the reviews failing,
//! through the correct orchestrator (or, with `WORKBOOK_MUTANT` set, through
//! that broken copy), and prints the answer, how long it took and how many
//! calls each upstream got. It does not list the mutants: which bugs are
//! planted is for `verify` to reveal, one slipped mutant at a time.

use std::time::Duration;

use step5_tests::{Config, FakeUpstreams, MUTANT_ENV, Orchestrator, Upstream};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    if let Ok(value) = std::env::var(MUTANT_ENV) {
        println!("{MUTANT_ENV}={value}");
    }
    let fake = FakeUpstreams::healthy();
    for upstream in Upstream::ALL {
        fake.set_latency(upstream, Duration::from_millis(30));
    }
    fake.fail_with(Upstream::Reviews, 503);
    let orchestrator = Orchestrator::new(fake.clone(), Config::default())?;
    let started = tokio::time::Instant::now();
    let outcome = orchestrator.get_product(42).await;
    let elapsed = started.elapsed();
    match outcome {
        Ok(response) => println!(
            "product 42 in {elapsed:?} (reviews failing): {}",
            orchestrator.response_body(&response)
        ),
        Err(error) => println!("product 42 failed after {elapsed:?}: {error}"),
    }
    // Reviews answer 503 every time: each call to them is one attempt.
    for upstream in Upstream::ALL {
        println!("  {upstream}: {} call(s)", fake.calls(upstream));
    }
    println!();
    println!("the report that matters here: cargo xtask verify step5");
    Ok(())
}
