//! Send, snippet 1 of 3: an `Rc` held across an `.await` in a spawned task.
//!
//! Yours to fix. This file does not compile yet: `tokio::spawn` refuses the
//! future of `import_rows`. Read the compiler's message (`cargo test -p
//! step4_service --test step4 send::` prints it whole), then change
//! `import_rows` so that the file compiles and still does what it says.
//! `main` is the check of that behaviour: leave it as it is.
//!
//! The behaviour to keep: `import_rows` can run on any worker thread of a
//! multi-thread runtime, and returns its progress notes in the order they
//! were taken: `started`, then `fetched 3 rows` once the fetch has answered,
//! then `done`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// Stands in for a query to a database or an upstream: it waits a little,
/// then answers with a row count.
async fn fetch_rows() -> usize {
    tokio::time::sleep(Duration::from_millis(5)).await;
    3
}

/// Imports the rows and returns the notes it took along the way.
async fn import_rows() -> Vec<String> {
    // The notes are shared by this function and the `note` helper, the way
    // a single-threaded program would share them.
    let notes = Rc::new(RefCell::new(Vec::new()));
    let note = {
        let notes = Rc::clone(&notes);
        move |text: String| notes.borrow_mut().push(text)
    };
    note("started".to_owned());
    let rows = fetch_rows().await;
    note(format!("fetched {rows} rows"));
    note("done".to_owned());
    notes.take()
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    exit_if_still_running_after(Duration::from_secs(30));
    let notes = tokio::spawn(import_rows())
        .await
        .expect("the import task finishes");
    assert_eq!(notes, ["started", "fetched 3 rows", "done"]);
}
