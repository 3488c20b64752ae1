//! Step 5's lab: the mutant report, from the command line.
//!
//! In this step the thing to measure is the test suite itself, and its
//! measurement is `cargo xtask verify step5` ("caught k of n"). This lab
//! runs one request, against in-process fakes with the reviews failing,
//! through the orchestrator `WORKBOOK_MUTANT` selects (the correct one when
//! it is unset), then prints the catalogue of mutants. Run it once per
//! mutant to see what a planted bug does to a single answer before writing a
//! test for it.

use std::time::Duration;

use step5_tests::{Config, FakeUpstreams, MUTANT_ENV, Mutant, Orchestrator, Upstream};

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
    println!("the mutants (select one with {MUTANT_ENV}=<name>):");
    for mutant in Mutant::ALL {
        println!("  {:24} {}", mutant.name(), mutant.description());
    }
    println!();
    println!("the report that matters here: cargo xtask verify step5");
    Ok(())
}
