//! What the steps' tests share, written once: a time limit for every async
//! test, a client for loopback, a way to wait for a condition, and an address
//! where nothing listens.
//!
//! None of this is a fake upstream. It lives here because every step's tests
//! already depend on this crate, and a helper copied into each test file
//! drifts: one copy polls every 5 ms and another every 10 ms, one gives up
//! after five seconds and another never.
//!
//! - [`within_time_limit`]: an async test that never ends fails with a
//!   message naming what it promised, instead of freezing the run.
//! - [`loopback_client`] (and [`loopback_client_builder`]): a `reqwest`
//!   client that reaches `127.0.0.1` directly, whatever proxy the machine
//!   sets.
//! - [`wait_until`]: checks a condition again and again until it holds or a
//!   limit passes, for effects that follow an action *soon*, on another task
//!   or thread. [`PATIENCE`] is the limit for "soon".
//! - [`closed_port_url`]: a loopback URL whose connections are refused.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How long one test may run before [`within_time_limit`] fails it.
///
/// The async tests are written to finish well within it, on a busy 2-core
/// machine too (their own waits are a few seconds at most); one that reaches
/// it is waiting for something that will never happen.
pub const TEST_TIME_LIMIT: Duration = Duration::from_secs(15);

/// How long a test waits with [`wait_until`] for something that follows an
/// action at once: a request reaching a fake, a dropped call being noticed,
/// a worker picking up a job.
///
/// These happen almost at once on an idle machine. Five seconds is generous
/// on purpose: a test that gives up too early fails only when the machine is
/// busy, and a flaky test teaches nothing.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// How long [`wait_until`] sleeps between two checks of its condition: short
/// enough that a test moves on almost as soon as the condition holds, long
/// enough that the checking costs next to nothing.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Runs `test`, failing it if it has not finished within [`TEST_TIME_LIMIT`].
///
/// A future that waits for something that never comes (a lost wake-up, a
/// permit never returned, a channel nobody closes) does not fail: it just
/// never ends, and `cargo test` would sit there in silence. Under this limit
/// it fails instead, with a message naming the test's promise, so the run
/// goes on and says which test hung.
///
/// The limit is measured on tokio's clock. Under a paused clock
/// (`start_paused = true`) it passes as soon as every task is waiting, so a
/// hung test fails at once.
pub async fn within_time_limit<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIME_LIMIT, test)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} did not finish within {TEST_TIME_LIMIT:?}: is a future waiting for \
                 something that never happens?",
                the_running_test()
            )
        })
}

/// Names the test that is running, by its promise: libtest runs each test on
/// a thread named after it, `module::the_test_name` (`run_test` in the
/// standard library's `library/test/src/lib.rs`, on every platform with
/// threads), and the workbook's test names are sentences. Falls back to "the
/// test" on any other thread (a runtime's worker, say).
fn the_running_test() -> String {
    let thread = std::thread::current();
    let test_name = thread
        .name()
        .and_then(|path| path.rsplit("::").next())
        .filter(|name| name.contains('_') && name.chars().all(is_identifier_char));
    match test_name {
        Some(name) => format!("the test \"{}\"", name.replace('_', " ")),
        None => "the test".to_owned(),
    }
}

fn is_identifier_char(character: char) -> bool {
    character.is_ascii_alphanumeric() || character == '_'
}

/// A builder for a [`reqwest::Client`] that talks to loopback directly.
///
/// reqwest applies the system's proxy settings (`HTTP_PROXY` and friends)
/// even to `127.0.0.1`, so on a machine behind a proxy every request to a
/// fake would go to the proxy instead. `no_proxy()` turns that off. Start
/// from this builder when a test needs more than that (a `User-Agent` of its
/// own, say); otherwise use [`loopback_client`].
pub fn loopback_client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().no_proxy()
}

/// A [`reqwest::Client`] for loopback tests: see [`loopback_client_builder`].
pub fn loopback_client() -> reqwest::Client {
    loopback_client_builder()
        .build()
        .expect("a reqwest client with no proxy builds")
}

/// Waits until `condition` holds, checking it every few milliseconds, for at
/// most `limit`; `Err` if it still does not hold then.
///
/// For effects that follow an action *soon*, on another task or thread: a
/// fake counting a request, a server noticing a closed connection, a worker
/// starting a job. Checking once right after the action would fail whenever
/// the other side is a little slow; sleeping a fixed time first would be
/// too short on a busy machine and wasted time on an idle one. Polling moves
/// on as soon as the condition holds, and reaches `limit` only when
/// something is wrong.
///
/// The caller says what a timeout means. To fail the test, `expect` what
/// should have happened:
///
/// ```no_run
/// # use fake_upstreams::fast::FastUpstream;
/// # use fake_upstreams::testing::{PATIENCE, wait_until};
/// # async fn example(fake: FastUpstream) {
/// wait_until(PATIENCE, || fake.counters().requests == 1)
///     .await
///     .expect("the request reaches the fake");
/// # }
/// ```
///
/// fails with "the request reaches the fake: still not so after 5s". To
/// report what the test sees at that moment instead, check `.is_ok()` in an
/// assertion of its own.
///
/// The time is tokio's: under a paused clock every check lets the clock
/// move on by the poll interval, and `limit` costs no real time.
pub async fn wait_until(
    limit: Duration,
    mut condition: impl FnMut() -> bool,
) -> Result<(), StillFalse> {
    let give_up_at = Instant::now() + limit;
    while !condition() {
        if Instant::now() >= give_up_at {
            return Err(StillFalse { waited: limit });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    Ok(())
}

/// The condition given to [`wait_until`] did not hold within its limit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StillFalse {
    /// How long [`wait_until`] waited for it.
    pub waited: Duration,
}

impl fmt::Display for StillFalse {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "still not so after {:?}", self.waited)
    }
}

/// The same words as `Display`: `expect` prints an error with `Debug`, and
/// this message is meant for the person reading the failed test.
impl fmt::Debug for StillFalse {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, formatter)
    }
}

impl std::error::Error for StillFalse {}

/// A loopback URL where nothing listens: the port was free a moment ago, so
/// a connection to it is refused at once, as by an upstream that is down.
///
/// The port is taken from the operating system and let go again. Another
/// program could take it in between; on loopback, within one test run, that
/// is rare enough to accept.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let address = listener
        .local_addr()
        .expect("a bound listener has an address");
    drop(listener);
    format!("http://{address}")
}
