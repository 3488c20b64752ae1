//! `fake-upstream`: the fast fake upstream as a program of its own.
//!
//! Point a browser, `curl` or a load generator at it to see what the labs'
//! upstreams do:
//!
//! ```text
//! cargo run --release -p fake_upstreams --bin fake-upstream -- --latency lognormal:20ms,0.5 --port 8081
//! curl http://127.0.0.1:8081/pricing/42
//! ```
//!
//! It prints its URL, serves until Ctrl-C, then prints what it counted.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use fake_upstreams::fast::{Behaviour, CounterSnapshot, FastUpstream, Latency};

/// Serve fake inventory, pricing and reviews endpoints on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "fake-upstream", version)]
struct Options {
    /// Latency before each answer: fixed:50ms, uniform:20ms..80ms,
    /// lognormal:20ms,0.5 or stalls:20ms,0.02,1s.
    #[arg(long, default_value = "fixed:50ms")]
    latency: Latency,

    /// Share of requests, from 0 to 1, answered with --failure-status.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    failure_rate: f64,

    /// HTTP status of a failed answer.
    #[arg(long, default_value_t = 503, value_parser = clap::value_parser!(u16).range(100..=599))]
    failure_status: u16,

    /// Never answer any request.
    #[arg(long)]
    hang: bool,

    /// Answer 200 with a body that is not JSON.
    #[arg(long)]
    garbage: bool,

    /// Send each answer's body this many milliseconds after its headers.
    #[arg(long, default_value_t = 0)]
    body_delay_ms: u64,

    /// Port to listen on; 0 lets the OS pick a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
}

impl Options {
    fn behaviour(&self) -> Behaviour {
        Behaviour {
            latency: self.latency.clone(),
            failure_rate: self.failure_rate,
            failure_status: self.failure_status,
            hang: self.hang,
            garbage: self.garbage,
            degradation: None,
            body_delay: Duration::from_millis(self.body_delay_ms),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, options.port));

    let upstream = FastUpstream::start_on(addr, options.behaviour())
        .await
        .with_context(|| format!("could not listen on {addr}"))?;
    println!(
        "fake upstream listening on {} (GET /inventory/{{id}}, /pricing/{{id}}, /reviews/{{id}})",
        upstream.base_url()
    );
    println!("latency {}; press Ctrl-C to stop", options.latency);

    // `ctrl_c` works on Linux, macOS and Windows alike.
    tokio::signal::ctrl_c()
        .await
        .context("could not listen for Ctrl-C")?;
    print_counters(upstream.counters());
    Ok(())
}

fn print_counters(counters: CounterSnapshot) {
    let CounterSnapshot {
        requests,
        completed,
        failed,
        in_flight,
        peak_in_flight,
        cancelled,
    } = counters;
    println!();
    println!("requests        {requests}");
    println!("completed       {completed}");
    println!("failed          {failed}");
    println!("cancelled       {cancelled}");
    println!("in flight       {in_flight}");
    println!("peak in flight  {peak_in_flight}");
}

/// Reads a share from 0 to 1, so `--failure-rate 5` (meaning 5 %?) is an
/// error instead of "always fail".
fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!(
            "{rate} is not a share from 0 to 1 (for 5 %, write 0.05)"
        ))
    }
}
