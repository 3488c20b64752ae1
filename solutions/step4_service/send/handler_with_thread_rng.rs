//! Send, snippet 3 of 3: the thread's random number generator held across
//! an `.await` in an axum handler (reference solution: both numbers are
//! drawn before the `.await`).
//!
//! The behaviour to keep: each `GET /ticket` waits a random 1 to 5 ms
//! (jitter, so that clients who ask together are not all answered together)
//! and then answers `ticket N`, with N drawn at random from 1 to 1000.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use rand::Rng as _;
use tower::ServiceExt as _;

// ANCHOR: ticket
/// Waits a random moment, then hands out a random ticket number.
#[axum::debug_handler]
async fn ticket() -> String {
    // `ThreadRng` is a handle to this thread's generator, so it is not
    // `Send`. Both numbers are drawn, and the handle dropped, before the
    // `.await`. (`StdRng::from_rng(&mut rand::rng())` would give a `Send`
    // generator of the handler's own, if it had to draw after the wait.)
    let (pause, number) = {
        let mut rng = rand::rng();
        let pause = Duration::from_millis(rng.random_range(1..=5));
        let number: u32 = rng.random_range(1..=1000);
        (pause, number)
    };
    tokio::time::sleep(pause).await;
    format!("ticket {number}")
}
// ANCHOR_END: ticket

/// Ends this program if it is still running after `limit`, so that a fix
/// that waits forever fails its test instead of hanging it.
fn exit_if_still_running_after(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("still running after {limit:?}: is something waiting forever?");
        std::process::exit(1);
    });
}

#[tokio::main]
async fn main() {
    exit_if_still_running_after(Duration::from_secs(30));
    let app = Router::new().route("/ticket", get(ticket));
    let mut numbers = Vec::new();
    for _ in 0..20 {
        let request = Request::get("/ticket").body(Body::empty()).unwrap();
        let sent = Instant::now();
        let response = app.clone().oneshot(request).await.unwrap();
        assert!(
            sent.elapsed() >= Duration::from_millis(1),
            "it paused first"
        );
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        let number: u32 = body
            .strip_prefix("ticket ")
            .and_then(|number| number.parse().ok())
            .unwrap_or_else(|| panic!("expected `ticket N`, got {body:?}"));
        assert!((1..=1000).contains(&number), "{number} is not in 1..=1000");
        numbers.push(number);
    }
    assert!(
        numbers.iter().any(|number| *number != numbers[0]),
        "twenty tickets, all number {}: they are not drawn at random",
        numbers[0]
    );
}
