//! Turning a burst of file events into one re-run.
//!
//! Saving a file produces several events (write, metadata, rename of the
//! editor's temporary file ...), and formatters save again right after. Watch
//! mode waits for the first relevant event, then for a quiet period with no
//! relevant events, and only then re-runs: one run per save.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Blocks until a relevant event arrives, then until `quiet` passes without
/// another one. Returns how many relevant events the burst held, or `None` if
/// the sender went away before any relevant event.
pub fn next_burst<T>(
    events: &Receiver<T>,
    quiet: Duration,
    is_relevant: impl Fn(&T) -> bool,
) -> Option<usize> {
    // Wait (forever) for the first event that matters.
    loop {
        let event = events.recv().ok()?;
        if is_relevant(&event) {
            break;
        }
    }
    let mut count = 1;
    let mut quiet_until = Instant::now() + quiet;
    loop {
        let left = quiet_until.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(event) => {
                if is_relevant(&event) {
                    count += 1;
                    quiet_until = Instant::now() + quiet;
                }
            }
            // Quiet long enough, or the watcher is gone: run with what we have.
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return Some(count),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::thread;

    const QUIET: Duration = Duration::from_millis(150);

    #[test]
    fn a_burst_of_events_is_one_batch() {
        let (sender, receiver) = mpsc::channel();
        let producer = thread::spawn(move || {
            for _ in 0..5 {
                sender.send(true).unwrap();
                thread::sleep(Duration::from_millis(20));
            }
            // A later, separate save.
            thread::sleep(QUIET * 4);
            sender.send(true).unwrap();
        });

        assert_eq!(next_burst(&receiver, QUIET, |relevant| *relevant), Some(5));
        assert_eq!(next_burst(&receiver, QUIET, |relevant| *relevant), Some(1));
        producer.join().unwrap();
        assert_eq!(next_burst(&receiver, QUIET, |relevant| *relevant), None);
    }

    #[test]
    fn irrelevant_events_neither_start_nor_extend_a_batch() {
        let (sender, receiver) = mpsc::channel();
        sender.send(false).unwrap();
        sender.send(true).unwrap();
        sender.send(false).unwrap();
        sender.send(true).unwrap();
        let started = Instant::now();
        assert_eq!(next_burst(&receiver, QUIET, |relevant| *relevant), Some(2));
        // The sender is still alive, so the batch ended by the quiet period.
        assert!(started.elapsed() >= QUIET);
        drop(sender);
    }

    #[test]
    fn only_irrelevant_events_then_disconnect_is_the_end() {
        let (sender, receiver) = mpsc::channel();
        sender.send(false).unwrap();
        drop(sender);
        assert_eq!(next_burst(&receiver, QUIET, |relevant| *relevant), None);
    }
}
