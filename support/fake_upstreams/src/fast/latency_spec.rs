//! The text form of a [`Latency`], as typed after `--latency`.
//!
//! | Text                    | Meaning                                               |
//! |-------------------------|-------------------------------------------------------|
//! | `fixed:50ms`            | always 50 ms                                          |
//! | `uniform:20ms..80ms`    | anywhere from 20 to 80 ms                             |
//! | `lognormal:20ms,0.5`    | median 20 ms, sigma 0.5 (p99 about 64 ms)             |
//! | `stalls:20ms,0.02,1s`   | 20 ms, but 2 % of responses stall for 1 s             |
//!
//! Durations are a number and a unit: `250us` (or `250µs`), `50ms`, `1s`,
//! `1.5s`, `100ns`. The base of `stalls:` is a duration (fixed latency), or any
//! other latency text: `stalls:lognormal:20ms,0.5,0.01,2s` stalls a log-normal.
//!
//! [`Latency`]'s `Display` writes this same form, so `to_string` and `parse`
//! round-trip: a lab can print the latency it ran with, and the line can be
//! pasted back on the command line.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::latency::Latency;

/// The forms a latency text can take, for error messages.
const EXPECTED_FORMS: &str =
    "fixed:50ms, uniform:20ms..80ms, lognormal:20ms,0.5 or stalls:20ms,0.02,1s";

/// Why a text is not a [`Latency`]. Its message quotes the text, says what is
/// wrong with it, and lists the forms that would work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid latency {spec:?}: {problem} (expected {EXPECTED_FORMS})")]
pub struct ParseLatencyError {
    spec: String,
    problem: String,
}

impl FromStr for Latency {
    type Err = ParseLatencyError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        parse_latency(spec.trim()).map_err(|problem| ParseLatencyError {
            spec: spec.to_owned(),
            problem,
        })
    }
}

/// Parses one latency text; the error is the problem, without the context
/// [`ParseLatencyError`] adds.
fn parse_latency(spec: &str) -> Result<Latency, String> {
    let Some((kind, arguments)) = spec.split_once(':') else {
        return Err("missing the kind before a ':'".to_owned());
    };
    match kind.trim() {
        "fixed" => Ok(Latency::Fixed(parse_duration(arguments)?)),
        "uniform" => {
            let (min, max) = arguments
                .split_once("..")
                .ok_or("uniform needs two durations, as in uniform:20ms..80ms")?;
            let (min, max) = (parse_duration(min)?, parse_duration(max)?);
            if min > max {
                return Err(format!(
                    "uniform's minimum {min:?} is above its maximum {max:?}"
                ));
            }
            Ok(Latency::Uniform { min, max })
        }
        "lognormal" => {
            let (median, sigma) = arguments
                .split_once(',')
                .ok_or("lognormal needs a median and a sigma, as in lognormal:20ms,0.5")?;
            let sigma = parse_number(sigma, "sigma")?;
            if sigma < 0.0 {
                return Err(format!("sigma must not be negative, got {sigma}"));
            }
            Ok(Latency::LogNormal {
                median: parse_duration(median)?,
                sigma,
            })
        }
        "stalls" => {
            // Split from the right: the base may itself contain commas
            // (`stalls:lognormal:20ms,0.5,0.01,2s`).
            let mut parts = arguments.rsplitn(3, ',');
            let (Some(stall), Some(probability), Some(base)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(
                    "stalls needs a base, a probability and a stall, as in stalls:20ms,0.02,1s"
                        .to_owned(),
                );
            };
            let probability = parse_number(probability, "probability")?;
            if !(0.0..=1.0).contains(&probability) {
                return Err(format!(
                    "probability must be from 0 to 1, got {probability}"
                ));
            }
            Ok(Latency::WithStalls {
                base: Box::new(parse_stall_base(base)?),
                probability,
                stall: parse_duration(stall)?,
            })
        }
        other => Err(format!("unknown kind {other:?}")),
    }
}

/// The base of `stalls:` is a bare duration (fixed) or a full latency text.
fn parse_stall_base(base: &str) -> Result<Latency, String> {
    if base.contains(':') {
        parse_latency(base.trim()).map_err(|problem| format!("in the stalls base: {problem}"))
    } else {
        Ok(Latency::Fixed(parse_duration(base)?))
    }
}

/// Parses a number of seconds, milliseconds, ... as `"1.5s"` or `"250us"`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let unit_start = text
        .find(|c: char| c.is_alphabetic())
        .ok_or_else(|| format!("{text:?} has no unit (use ns, us, ms or s)"))?;
    let (number, unit) = text.split_at(unit_start);
    let nanos_per_unit = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use ns, us, ms or s)"
            ));
        }
    };
    let value = parse_number(number, "duration")?;
    let nanos = (value * nanos_per_unit).round();
    if !(0.0..=u64::MAX as f64).contains(&nanos) {
        return Err(format!(
            "duration {text:?} must be from 0 to about 584 years"
        ));
    }
    // In range and rounded, so the cast is exact (up to f64's precision,
    // far finer than any latency a lab uses).
    Ok(Duration::from_nanos(nanos as u64))
}

/// Parses a plain finite number, naming `what` in the error.
fn parse_number(text: &str, what: &str) -> Result<f64, String> {
    let text = text.trim();
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(format!("{what} {text:?} is not a number")),
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Latency::Fixed(delay) => write!(f, "fixed:{}", DurationText(*delay)),
            Latency::Uniform { min, max } => {
                write!(f, "uniform:{}..{}", DurationText(*min), DurationText(*max))
            }
            // f64's Display prints the shortest text that parses back to the
            // same value, so sigma and probability round-trip exactly.
            Latency::LogNormal { median, sigma } => {
                write!(f, "lognormal:{},{sigma}", DurationText(*median))
            }
            Latency::WithStalls {
                base,
                probability,
                stall,
            } => {
                f.write_str("stalls:")?;
                match base.as_ref() {
                    Latency::Fixed(delay) => write!(f, "{}", DurationText(*delay))?,
                    other => write!(f, "{other}")?,
                }
                write!(f, ",{probability},{}", DurationText(*stall))
            }
        }
    }
}

/// Writes a duration in the largest unit that keeps it a whole number:
/// `1s`, `1500ms`, `250us`, `7ns`. Whole numbers parse back exactly.
struct DurationText(Duration);

impl fmt::Display for DurationText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Nanoseconds per unit, largest unit first.
        const UNITS: [(u128, &str); 4] = [
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
            (1_000, "us"),
            (1, "ns"),
        ];
        let nanos = self.0.as_nanos();
        let (nanos_per_unit, unit) = UNITS
            .into_iter()
            .find(|(nanos_per_unit, _)| nanos.is_multiple_of(*nanos_per_unit))
            .unwrap_or((1, "ns")); // unreachable: every count of nanoseconds is a multiple of 1
        let value = nanos / nanos_per_unit;
        write!(f, "{value}{unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn reads_each_documented_form() {
        assert_eq!("fixed:50ms".parse(), Ok(Latency::Fixed(ms(50))));
        assert_eq!(
            "uniform:20ms..80ms".parse(),
            Ok(Latency::Uniform {
                min: ms(20),
                max: ms(80)
            })
        );
        assert_eq!(
            "lognormal:20ms,0.5".parse(),
            Ok(Latency::LogNormal {
                median: ms(20),
                sigma: 0.5
            })
        );
        assert_eq!(
            "stalls:20ms,0.02,1s".parse(),
            Ok(Latency::WithStalls {
                base: Box::new(Latency::Fixed(ms(20))),
                probability: 0.02,
                stall: Duration::from_secs(1),
            })
        );
    }

    #[test]
    fn reads_every_duration_unit_and_fractions() {
        let cases = [
            ("fixed:1s", Duration::from_secs(1)),
            ("fixed:1.5s", ms(1_500)),
            ("fixed:250us", Duration::from_micros(250)),
            ("fixed:250µs", Duration::from_micros(250)),
            ("fixed:100ns", Duration::from_nanos(100)),
            ("fixed:0ms", Duration::ZERO),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse(), Ok(Latency::Fixed(expected)), "{text}");
        }
    }

    #[test]
    fn a_stalls_base_may_be_any_latency() {
        let latency: Latency = "stalls:lognormal:20ms,0.5,0.01,2s".parse().unwrap();

        assert_eq!(
            latency,
            Latency::WithStalls {
                base: Box::new(Latency::LogNormal {
                    median: ms(20),
                    sigma: 0.5
                }),
                probability: 0.01,
                stall: Duration::from_secs(2),
            }
        );
    }

    #[test]
    fn display_writes_the_text_form_back() {
        let latency: Latency = "stalls:20ms,0.02,1.5s".parse().unwrap();

        assert_eq!(latency.to_string(), "stalls:20ms,0.02,1500ms");
    }
}
