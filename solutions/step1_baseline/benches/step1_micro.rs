//! Step 1's micro-benchmarks: the small costs behind the lab's big numbers.
//!
//! * `spawn`: starting and joining an OS thread vs a tokio task. This is the
//!   fixed price of "one thread per request" against "one task per request".
//! * `fan_out`: the sequential and the concurrent async fan-out against
//!   in-process fake upstreams that answer after 2 ms. Concurrent should take
//!   about a third of sequential.
//!
//! Criterion reports means and spreads, not tail percentiles: tails belong to
//! the lab (`cargo xtask lab step1`). Run with
//! `cargo bench -p step1_baseline_solution`.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fake_upstreams::fast::{Behaviour, FastUpstream};
use step1_baseline::{UpstreamUrls, fetch_product_concurrent, fetch_product_sequential};

fn spawn(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime starts");
    let mut group = c.benchmark_group("spawn");
    group.bench_function("os thread", |b| {
        b.iter(|| {
            std::thread::spawn(|| 1_u64)
                .join()
                .expect("the thread finishes")
        });
    });
    group.bench_function("tokio task", |b| {
        b.to_async(&runtime).iter(|| async {
            tokio::spawn(async { 1_u64 })
                .await
                .expect("the task finishes")
        });
    });
    group.finish();
}

fn fan_out(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime starts");
    let upstream = runtime
        .block_on(FastUpstream::start(Behaviour::fixed(
            Duration::from_millis(2),
        )))
        .expect("the fake upstream starts");
    // One fake serves all three paths; the point is the overlap, not the services.
    let urls = UpstreamUrls {
        inventory: upstream.base_url(),
        pricing: upstream.base_url(),
        reviews: upstream.base_url(),
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client builds");

    let mut group = c.benchmark_group("fan_out");
    group.bench_function("sequential", |b| {
        b.to_async(&runtime).iter(|| async {
            fetch_product_sequential(&client, &urls, 42)
                .await
                .expect("the fake answers")
        });
    });
    group.bench_function("concurrent", |b| {
        b.to_async(&runtime).iter(|| async {
            fetch_product_concurrent(&client, &urls, 42)
                .await
                .expect("the fake answers")
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Two cores and a classroom's patience: fewer, shorter samples than
    // criterion's defaults, still enough for a stable mean.
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = spawn, fan_out
}
criterion_main!(benches);
