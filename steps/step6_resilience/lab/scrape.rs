//! The edge's own view: its request histogram, its count of requests shed
//! and its heartbeat's lag, read from `/metrics`.
//!
//! The lab scrapes `/metrics` when a cell's measured window opens and again
//! when its last request has answered, and takes the difference: the pages
//! answered in between, as the service counted them, bucket by bucket. That
//! is what `rate()` over two scrapes gives a Prometheus user.
//!
//! A histogram knows only which bucket a quantile falls in. [`BucketCounts::quantile`]
//! gives both readings: the bucket (its lower and upper bound, which is all
//! the histogram really knows) and the number Prometheus' `histogram_quantile`
//! would print, found by assuming the samples are spread evenly inside that
//! bucket (linear interpolation).
//!
//! Given: this whole file (lab code; there is nothing to write in it).

use std::collections::BTreeMap;

use anyhow::Context as _;
use step6_resilience::edge::{REQUEST_DURATION, REQUESTS_SHED};
use step6_resilience::telemetry::EVENT_LOOP_LAG;

/// The route label of the page.
const PAGE_ROUTE: &str = "/products/{id}";

/// One histogram's cumulative counts: `le` upper bound (seconds, +∞ last)
/// to the number of samples at or under it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketCounts {
    cumulative: Vec<(f64, f64)>,
}

/// A quantile as a histogram can tell it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketQuantile {
    /// The bucket's lower bound, in seconds (0 for the first).
    pub lower: f64,
    /// The bucket's upper bound, in seconds (+∞ for the last).
    pub upper: f64,
    /// Linear interpolation inside the bucket, as `histogram_quantile`
    /// does; the highest finite bound when it falls in the `+Inf` bucket.
    pub interpolated: f64,
}

impl BucketCounts {
    /// Samples counted.
    pub fn total(&self) -> f64 {
        self.cumulative.last().map_or(0.0, |&(_, count)| count)
    }

    /// The counts of `self` minus those of an earlier scrape.
    pub fn since(&self, earlier: &BucketCounts) -> BucketCounts {
        let before = |le: f64| {
            earlier
                .cumulative
                .iter()
                .find(|(bound, _)| *bound == le)
                .map_or(0.0, |&(_, count)| count)
        };
        BucketCounts {
            cumulative: self
                .cumulative
                .iter()
                .map(|&(le, count)| (le, (count - before(le)).max(0.0)))
                .collect(),
        }
    }

    /// The `q` quantile (`0.0..=1.0`), or `None` with no samples.
    pub fn quantile(&self, q: f64) -> Option<BucketQuantile> {
        let total = self.total();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = 0.0;
        let mut below = 0.0;
        for &(upper, count) in &self.cumulative {
            if count >= rank {
                let interpolated = if upper.is_infinite() {
                    lower
                } else if count > below {
                    lower + (upper - lower) * (rank - below) / (count - below)
                } else {
                    upper
                };
                return Some(BucketQuantile {
                    lower,
                    upper,
                    interpolated,
                });
            }
            lower = upper;
            below = count;
        }
        None
    }
}

/// Where the `q` quantile of a *part* of a histogram's samples can lie,
/// when the histogram counts that part together with others it does not
/// tell apart: `part` of `counts.total()` samples are ours.
///
/// The edge's request histogram has one `5xx` class for the answers it
/// shed and for pages that failed; `/metrics` also counts the shed ones
/// alone, but not their latencies. Our `q` quantile is the sample of rank
/// `q × part` among ours. Among all the samples it ranks at least that
/// (if every other sample is slower) and at most `q × part + others` (if
/// every other one is faster). So the quantile lies between the all-samples
/// quantiles at those two ranks, whatever the others were; with no others
/// the two are the same.
pub fn quantile_of_part(counts: &BucketCounts, part: f64, q: f64) -> Option<PartQuantile> {
    let total = counts.total();
    let part = part.min(total);
    if part <= 0.0 {
        return None;
    }
    let others = total - part;
    Some(PartQuantile {
        lowest: counts.quantile(q * part / total)?,
        highest: counts.quantile(((q * part + others) / total).min(1.0))?,
        others,
    })
}

/// A part's quantile as [`quantile_of_part`] bounds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartQuantile {
    /// The quantile if every other sample was slower than ours.
    pub lowest: BucketQuantile,
    /// The quantile if every other sample was faster than ours.
    pub highest: BucketQuantile,
    /// How many samples were not ours.
    pub others: f64,
}

impl PartQuantile {
    /// The buckets it lies in: `(0.5, 1] ms`, or `(0.5, 1] to (5, 10] ms`.
    pub fn buckets_ms(&self) -> String {
        let bucket = |quantile: &BucketQuantile| {
            format!(
                "({}, {}]",
                bound_ms(quantile.lower),
                bound_ms(quantile.upper)
            )
        };
        if self.lowest.upper == self.highest.upper {
            format!("{} ms", bucket(&self.lowest))
        } else {
            format!("{} to {} ms", bucket(&self.lowest), bucket(&self.highest))
        }
    }
}

/// A bucket bound in milliseconds: `0.5`, `25`, `+Inf`.
pub fn bound_ms(seconds: f64) -> String {
    if seconds.is_infinite() {
        "+Inf".to_owned()
    } else {
        // Rounded to 0.1 ms, so 0.025 s prints as 25, not 25.000000000000004.
        format!("{}", (seconds * 1e4).round() / 10.0)
    }
}

/// What one scrape of the edge's `/metrics` tells the lab: the page route's
/// request histogram by status class, the requests shed so far, and the
/// heartbeat's lag histogram.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    by_class: BTreeMap<String, BucketCounts>,
    /// Page requests shed by admission ([`REQUESTS_SHED`]).
    pub shed: f64,
    /// How late the edge's heartbeat woke ([`EVENT_LOOP_LAG`]).
    pub lag: BucketCounts,
}

impl Scrape {
    /// `class`'s counts (`"2xx"`, `"5xx"`), empty if absent.
    pub fn class(&self, class: &str) -> BucketCounts {
        self.by_class.get(class).cloned().unwrap_or_default()
    }

    /// Every count minus an earlier scrape's.
    pub fn since(&self, earlier: &Scrape) -> Scrape {
        Scrape {
            by_class: self
                .by_class
                .iter()
                .map(|(class, counts)| (class.clone(), counts.since(&earlier.class(class))))
                .collect(),
            shed: (self.shed - earlier.shed).max(0.0),
            lag: self.lag.since(&earlier.lag),
        }
    }
}

/// Scrapes `metrics_url` and reads what [`Scrape`] holds.
pub async fn scrape(client: &reqwest::Client, metrics_url: &str) -> anyhow::Result<Scrape> {
    let text = client
        .get(metrics_url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("scraping {metrics_url}"))?
        .text()
        .await
        .with_context(|| format!("reading {metrics_url}"))?;
    Ok(parse(&text))
}

/// What [`Scrape`] holds, from Prometheus' text format.
pub fn parse(text: &str) -> Scrape {
    let mut scrape = Scrape::default();
    for line in text.lines() {
        if let Some(sample) = bucket_line(line, REQUEST_DURATION) {
            let (Some(route), Some(class)) = (
                sample.labels.get("route"),
                sample.labels.get("status_class"),
            ) else {
                continue;
            };
            if route == PAGE_ROUTE {
                scrape
                    .by_class
                    .entry(class.clone())
                    .or_default()
                    .cumulative
                    .push((sample.le, sample.count));
            }
        } else if let Some(sample) = bucket_line(line, EVENT_LOOP_LAG) {
            scrape.lag.cumulative.push((sample.le, sample.count));
        } else if let Some(value) = line.strip_prefix(REQUESTS_SHED).and_then(|rest| {
            // `name value`, or `name{} value`: never a longer name.
            rest.trim_start_matches("{}")
                .strip_prefix(' ')
                .and_then(|value| value.trim().parse::<f64>().ok())
        }) {
            scrape.shed = value;
        }
    }
    for counts in scrape.by_class.values_mut() {
        counts.cumulative.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    scrape.lag.cumulative.sort_by(|a, b| a.0.total_cmp(&b.0));
    scrape
}

/// One `_bucket` line of a histogram: its labels, its bound and its count.
struct BucketSample {
    labels: BTreeMap<String, String>,
    le: f64,
    count: f64,
}

/// `line` as a bucket of the histogram `name`, if it is one.
fn bucket_line(line: &str, name: &str) -> Option<BucketSample> {
    let rest = line.strip_prefix(name)?.strip_prefix("_bucket{")?;
    let (labels, value) = rest.rsplit_once("} ")?;
    let labels = parse_labels(labels);
    let le = match labels.get("le")?.as_str() {
        "+Inf" => f64::INFINITY,
        bound => bound.parse::<f64>().ok()?,
    };
    let count = value.trim().parse::<f64>().ok()?;
    Some(BucketSample { labels, le, count })
}

/// `key="value",...` (values may hold `{`, `}`, `/` and escaped quotes).
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((index, char)) = chars.next() {
            match char {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => {
                    end = index + 1;
                    break;
                }
                other => value.push(other),
            }
        }
        labels.insert(key.trim_start_matches(',').trim().to_owned(), value);
        rest = &after[end..];
    }
    labels
}
