//! Send, snippet 1 of 3: an `Rc` held across an `.await` in a spawned task
//! (reference solution: the notes are shared through an `Arc<Mutex<_>>`).
//!
//! The behaviour to keep: `import_rows` can run on any worker thread of a
//! multi-thread runtime, and returns its progress notes in the order they
//! were taken: `started`, then `fetched 3 rows` once the fetch has answered,
//! then `done`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Stands in for a query to a database or an upstream: it waits a little,
/// then answers with a row count.
async fn fetch_rows() -> usize {
    tokio::time::sleep(Duration::from_millis(5)).await;
    3
}

// ANCHOR: import_rows
/// Imports the rows and returns the notes it took along the way.
async fn import_rows() -> Vec<String> {
    // `Rc` counts its owners with plain (non-atomic) integers, so it is not
    // `Send`, and this future holds one across the `.await` below. `Arc`
    // counts atomically; `Mutex` stands in for `RefCell`. Each lock is taken
    // and released inside one `note` call, never held across the `.await`.
    let notes = Arc::new(Mutex::new(Vec::new()));
    let note = {
        let notes = Arc::clone(&notes);
        move |text: String| notes.lock().expect("no note panicked").push(text)
    };
    note("started".to_owned());
    let rows = fetch_rows().await;
    note(format!("fetched {rows} rows"));
    note("done".to_owned());
    std::mem::take(&mut *notes.lock().expect("no note panicked"))
}
// ANCHOR_END: import_rows

/// Ends this program if it is still running after `limit`, so that a fix
/// that waits forever fails its test instead of hanging it.
fn exit_if_still_running_after(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("still running after {limit:?}: is something waiting forever?");
        std::process::exit(1);
    });
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    exit_if_still_running_after(Duration::from_secs(30));
    let notes = tokio::spawn(import_rows())
        .await
        .expect("the import task finishes");
    assert_eq!(notes, ["started", "fetched 3 rows", "done"]);
}
