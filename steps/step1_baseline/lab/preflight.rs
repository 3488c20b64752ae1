//! Before measuring anything: does the code under test answer one page?
//!
//! The lab sends tens of thousands of requests through the three fan-outs
//! (10,000 at once in the memory experiment alone). If one of them is still a
//! stub, every one of those requests stops at its `todo!()`, and the
//! terminal fills with as many panic reports before the lab gives up. So the
//! lab first asks each fan-out for one page, against fakes of its own, and
//! stops with one line naming what is missing: the panic report of that one
//! call, printed by Rust above it, says where.

use std::time::Duration;

use anyhow::{Context as _, bail};
use fake_upstreams::fast::{Behaviour, FastUpstream};
use step1_baseline::{
    UpstreamUrls, fetch_product_blocking, fetch_product_concurrent, fetch_product_sequential,
};

/// Fails, naming the fan-outs that do not answer a page, unless all three do.
pub async fn check_the_fan_outs_answer(product_id: u64) -> anyhow::Result<()> {
    let behaviour = Behaviour::fixed(Duration::from_millis(1));
    let inventory = FastUpstream::start(behaviour.clone()).await?;
    let pricing = FastUpstream::start(behaviour.clone()).await?;
    let reviews = FastUpstream::start(behaviour).await?;
    let urls = UpstreamUrls {
        inventory: inventory.base_url(),
        pricing: pricing.base_url(),
        reviews: reviews.base_url(),
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the check's client")?;

    let mut missing = Vec::new();
    // Each call runs as a task of its own so that a `todo!()` panic ends the
    // call, not the lab: the join handle reports it as an error.
    let (concurrent_urls, concurrent_client) = (urls.clone(), client.clone());
    let concurrent = tokio::spawn(async move {
        fetch_product_concurrent(&concurrent_client, &concurrent_urls, product_id).await
    });
    if !matches!(concurrent.await, Ok(Ok(_))) {
        missing.push("fetch_product_concurrent");
    }
    let sequential_urls = urls.clone();
    let sequential = tokio::spawn(async move {
        fetch_product_sequential(&client, &sequential_urls, product_id).await
    });
    if !matches!(sequential.await, Ok(Ok(_))) {
        missing.push("fetch_product_sequential");
    }
    // The blocking client must be built, used and dropped off the runtime.
    let blocking = tokio::task::spawn_blocking(move || {
        let client = reqwest::blocking::Client::builder().no_proxy().build()?;
        fetch_product_blocking(&client, &urls, product_id).map_err(anyhow::Error::from)
    });
    if !matches!(blocking.await, Ok(Ok(_))) {
        missing.push("fetch_product_blocking");
    }

    if !missing.is_empty() {
        bail!(
            "{} did not answer one page from healthy fakes, so the lab stops before \
             measuring: make step 1 green first (`cargo xtask verify step1`)",
            missing.join(", ")
        );
    }
    Ok(())
}
