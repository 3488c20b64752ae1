//! Send, snippet 2 of 3: a `std::sync::MutexGuard` held across an `.await`
//! in an axum handler.
//!
//! Yours to fix. This file does not compile yet: axum refuses `visit` as a
//! handler, and its first message does not say why. Read it to the end
//! (`cargo test -p step4_service --test step4 send::` prints it whole): it
//! suggests how to get a better one. Then change `visit` so that the file
//! compiles and still does what it says. `main` is the check of that
//! behaviour: leave it as it is.
//!
//! The behaviour to keep: each `GET /visit` counts one more visit, tells the
//! auditor the new count (through a bounded channel, waiting for room if it
//! is full) and then answers `visit number N`, where N is the new count.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::routing::get;
use tokio::sync::mpsc;
use tower::ServiceExt as _;

/// What the handler shares with every other request.
#[derive(Clone)]
struct Visits {
    /// How many visits so far.
    count: Arc<Mutex<u64>>,
    /// Hears each new count once; visits running at once may report out of order.
    auditor: mpsc::Sender<u64>,
}

/// Counts a visit, reports it to the auditor, and answers with its number.
async fn visit(State(visits): State<Visits>) -> String {
    let mut count = visits.count.lock().expect("no visit panicked mid-count");
    *count += 1;
    visits
        .auditor
        .send(*count)
        .await
        .expect("the auditor is listening");
    format!("visit number {count}")
}

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
    let (auditor, mut heard) = mpsc::channel(8);
    let visits = Visits {
        count: Arc::default(),
        auditor,
    };
    let app = Router::new().route("/visit", get(visit)).with_state(visits);
    for expected in ["visit number 1", "visit number 2"] {
        let request = Request::get("/visit").body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(body, expected);
    }
    // Each visit told the auditor before it answered, so both are there.
    assert_eq!(heard.try_recv(), Ok(1), "the auditor hears the first visit");
    assert_eq!(
        heard.try_recv(),
        Ok(2),
        "the auditor hears the second visit"
    );
}
