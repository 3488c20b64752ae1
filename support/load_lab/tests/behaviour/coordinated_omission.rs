//! The open loop times each request from when it was *due*, not from when it left.
//!
//! The paused-clock tests in `driver` stall the *server*. Here the *load generator* stalls:
//! the first call to `send` blocks its thread for 300 ms (as a blocked runtime or a GC pause
//! would), so the requests due meanwhile leave late. The server then answers each in 1 ms.
//! Timed from their actual departure they would all look like 1 ms; timed from their due
//! time they carry the stall. This needs real time, because a blocked thread does not move a
//! paused clock; the margins are wide accordingly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::ProgressBar;
use load_lab::{Load, Plan, run};

use crate::within;

#[tokio::test]
async fn requests_that_leave_late_carry_the_delay_in_their_latency() {
    // Arrange: 100 requests due over 1 s (every 10 ms); the generator stalls for 300 ms on the
    // first, so ~29 leave up to 290 ms late. `tokio::test` runs on one thread, so blocking
    // it stalls the scheduler itself.
    let stalled_once = Arc::new(AtomicBool::new(false));
    let send = move || {
        if !stalled_once.swap(true, Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(300));
        }
        async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(())
        }
    };
    let plan = Plan {
        load: Load::Open {
            rate_per_sec: 100.0,
            max_outstanding: 1_000,
        },
        warmup: Duration::ZERO,
        measure: Duration::from_secs(1),
    };

    // Act
    let measurement = within(
        Duration::from_secs(10),
        run(&plan, &ProgressBar::hidden(), send),
    )
    .await;

    // Assert: the late ones are in the tail with their wait (~290 ms for the latest).
    assert_eq!(measurement.ok, 100);
    let p99 = measurement.percentile(99.0);
    assert!(p99 >= Duration::from_millis(200), "p99 = {p99:?}");
}
