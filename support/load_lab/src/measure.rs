//! What a run measured: successes, errors by kind, and a latency histogram.
//!
//! Latencies go into an HdrHistogram rather than a `Vec` of samples: recording is a couple of
//! array increments with no allocation, memory stays constant however long the run, and
//! percentiles stay accurate to three significant digits all the way to the maximum. Averages
//! are left out on purpose: a mean hides exactly the tail this workbook is about.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::plan::Load;

/// What a request reported: `Ok`, or an error kind such as `"timeout"`, `"status 503"`,
/// `"connect"`.
pub type RequestOutcome = Result<(), ErrorKind>;

/// The error kind of a request the load generator did not send: too many were already in
/// flight (see [`Load::Open`]'s `max_outstanding`).
pub const DROPPED: &str = "dropped: too many outstanding";

/// The error kind of a request that was sent inside the measured window but had not answered
/// when the drain limit ran out (see [`DRAIN_LIMIT`](crate::driver::DRAIN_LIMIT)).
pub const UNFINISHED: &str = "unfinished after drain";

/// A short, human-readable name for a kind of failure, used to count errors by kind.
///
/// Kinds are plain strings so that a lab can invent its own (`"shed"`, `"degraded"`) without
/// touching this crate; keep them short and low-cardinality (`"status 503"`, not the body).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorKind(pub String);

impl ErrorKind {
    /// An error kind with the given label.
    pub fn new(label: impl Into<String>) -> Self {
        ErrorKind(label.into())
    }

    /// The label, e.g. `"status 503"`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ErrorKind {
    fn from(label: &str) -> Self {
        ErrorKind::new(label)
    }
}

impl From<String> for ErrorKind {
    fn from(label: String) -> Self {
        ErrorKind(label)
    }
}

/// Lets a map keyed by `ErrorKind` be searched with a plain `&str`:
/// `measurement.errors.get("timeout")`. Sound because the derived `Eq`, `Ord` and `Hash` of a
/// one-field wrapper agree with those of the `String` inside.
impl Borrow<str> for ErrorKind {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The result of one run (or one worker's share of it, before merging).
#[derive(Debug, Clone)]
pub struct Measurement {
    /// The load that produced these numbers.
    pub load: Load,
    /// Requests that succeeded inside the measured window.
    pub ok: u64,
    /// Failed requests, by kind. Failures are kept out of the latency histogram: a fast
    /// "connection refused" would otherwise make a broken server look quick.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// The length of the measured window actually used, for throughput. For an open loop
    /// over capacity it is stretched to the time the answers actually took (see the driver).
    pub window: Duration,
    /// Latency of successful requests, in microseconds, 3 significant digits, auto-resizing.
    pub latency_us: Histogram<u64>,
}

impl Measurement {
    /// An empty measurement for `load` over a window of `window`.
    pub fn new(load: Load, window: Duration) -> Self {
        Measurement {
            load,
            ok: 0,
            errors: BTreeMap::new(),
            window,
            // 3 significant digits is HdrHistogram's usual choice: 0.1% error at any magnitude.
            // `new` auto-resizes, so no highest value has to be guessed up front.
            latency_us: Histogram::new(3).expect("3 significant digits is within 0..=5"),
        }
    }

    /// Records one request's outcome: its latency if it succeeded, its kind if it failed.
    pub fn record(&mut self, outcome: RequestOutcome, latency: Duration) {
        match outcome {
            Ok(()) => self.record_ok(latency),
            Err(kind) => self.record_error(kind),
        }
    }

    /// Records a successful request and its latency.
    pub fn record_ok(&mut self, latency: Duration) {
        self.ok += 1;
        // Saturate rather than wrap: 2^64 µs is 584,000 years.
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us
            .record(micros)
            .expect("an auto-resizing histogram with u64 counts accepts any u64 value");
    }

    /// Records a failed request of the given kind.
    pub fn record_error(&mut self, kind: ErrorKind) {
        *self.errors.entry(kind).or_insert(0) += 1;
    }

    /// Adds another measurement's counts into this one (e.g. one worker's share of the run).
    ///
    /// The window is not added: workers run side by side over the same window.
    pub fn merge(&mut self, other: &Measurement) {
        self.ok += other.ok;
        for (kind, count) in &other.errors {
            *self.errors.entry(kind.clone()).or_insert(0) += count;
        }
        self.latency_us
            .add(&other.latency_us)
            .expect("an auto-resizing histogram can add any other histogram");
    }

    /// Successful requests per second over the measured window; 0 for an empty window.
    pub fn throughput(&self) -> f64 {
        let seconds = self.window.as_secs_f64();
        if seconds > 0.0 {
            self.ok as f64 / seconds
        } else {
            0.0
        }
    }

    /// The latency at percentile `q` (`0.0..=100.0`, e.g. `99.0` for p99) of successful
    /// requests; [`Duration::ZERO`] when none succeeded.
    ///
    /// The answer is the highest value HdrHistogram treats as equal to the true one, so it
    /// may be up to 0.1% above it; it is never below.
    ///
    /// # Panics
    ///
    /// If `q` is outside `0.0..=100.0`: a quantile such as `0.99` passed by mistake would
    /// otherwise quietly report p0.99.
    pub fn percentile(&self, q: f64) -> Duration {
        assert!(
            (0.0..=100.0).contains(&q),
            "percentile takes 0.0..=100.0 (e.g. 99.0 for p99), got {q}"
        );
        if self.latency_us.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_micros(self.latency_us.value_at_quantile(q / 100.0))
    }

    /// The slowest successful request; [`Duration::ZERO`] when none succeeded.
    pub fn max(&self) -> Duration {
        if self.latency_us.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_micros(self.latency_us.max())
    }

    /// All failed requests, whatever their kind.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// How many requests failed with the given kind, e.g. `errors_of("timeout")`.
    pub fn errors_of(&self, kind: &str) -> u64 {
        self.errors.get(kind).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> Measurement {
        Measurement::new(Load::Closed { concurrency: 1 }, Duration::from_secs(10))
    }

    /// 1 µs to 1000 µs, once each: small enough that HdrHistogram stores every value exactly
    /// (below 2048 at 3 significant digits), so the expected percentiles are exact.
    fn one_to_a_thousand_micros() -> Measurement {
        let mut measurement = empty();
        for micros in 1..=1000 {
            measurement.record_ok(Duration::from_micros(micros));
        }
        measurement
    }

    #[test]
    fn percentiles_of_a_known_histogram_are_the_expected_values() {
        let measurement = one_to_a_thousand_micros();

        assert_eq!(measurement.percentile(50.0), Duration::from_micros(500));
        assert_eq!(measurement.percentile(95.0), Duration::from_micros(950));
        assert_eq!(measurement.percentile(99.0), Duration::from_micros(990));
        assert_eq!(measurement.percentile(100.0), Duration::from_micros(1000));
        assert_eq!(measurement.max(), Duration::from_micros(1000));
    }

    #[test]
    fn large_latencies_are_reported_within_a_tenth_of_a_percent() {
        let mut measurement = empty();
        measurement.record_ok(Duration::from_millis(1_234));

        let reported = measurement.percentile(50.0);

        assert!(reported >= Duration::from_millis(1_234), "{reported:?}");
        assert!(reported <= Duration::from_micros(1_235_234), "{reported:?}");
    }

    #[test]
    fn an_empty_measurement_reports_zero_latency_and_throughput() {
        let measurement = empty();

        assert_eq!(measurement.percentile(99.0), Duration::ZERO);
        assert_eq!(measurement.max(), Duration::ZERO);
        assert_eq!(measurement.throughput(), 0.0);
    }

    #[test]
    fn throughput_is_successes_per_second_of_window() {
        let mut measurement = empty();
        for _ in 0..250 {
            measurement.record_ok(Duration::from_millis(1));
        }
        measurement.record_error(ErrorKind::new("timeout"));

        assert_eq!(measurement.throughput(), 25.0);
    }

    #[test]
    fn errors_are_counted_by_kind_and_kept_out_of_the_histogram() {
        let mut measurement = empty();

        measurement.record(Err("status 503".into()), Duration::from_secs(5));
        measurement.record(Err("status 503".into()), Duration::from_secs(5));
        measurement.record(Err("timeout".into()), Duration::from_secs(5));
        measurement.record(Ok(()), Duration::from_millis(2));

        assert_eq!(measurement.errors_of("status 503"), 2);
        assert_eq!(measurement.errors_of("timeout"), 1);
        assert_eq!(measurement.error_count(), 3);
        assert_eq!(measurement.latency_us.len(), 1);
        assert!(measurement.max() < Duration::from_millis(3));
    }

    #[test]
    fn merging_adds_successes_errors_and_latencies() {
        let mut total = one_to_a_thousand_micros();
        let mut other = empty();
        other.record_ok(Duration::from_micros(2000));
        other.record_error(ErrorKind::new("connect"));

        total.merge(&other);

        assert_eq!(total.ok, 1001);
        assert_eq!(total.errors_of("connect"), 1);
        assert_eq!(total.latency_us.len(), 1001);
        assert_eq!(total.max(), Duration::from_micros(2000));
    }
}
