//! The text form of a latency: what `fake-upstream --latency` accepts.

use std::time::Duration;

use fake_upstreams::fast::Latency;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

#[test]
fn every_kind_of_latency_round_trips_through_its_text() {
    let latencies = [
        Latency::Fixed(ms(50)),
        Latency::Fixed(Duration::from_micros(250)),
        Latency::Fixed(Duration::from_nanos(1_500_000_001)),
        Latency::Uniform {
            min: ms(20),
            max: ms(80),
        },
        Latency::LogNormal {
            median: ms(20),
            sigma: 0.5,
        },
        Latency::WithStalls {
            base: Box::new(Latency::Fixed(ms(20))),
            probability: 0.02,
            stall: Duration::from_secs(1),
        },
        Latency::WithStalls {
            base: Box::new(Latency::Uniform {
                min: ms(5),
                max: ms(15),
            }),
            probability: 0.001,
            stall: ms(1_500),
        },
    ];

    for latency in latencies {
        let text = latency.to_string();

        assert_eq!(text.parse::<Latency>(), Ok(latency), "via {text:?}");
    }
}

#[test]
fn the_documented_examples_read_back_as_written() {
    for text in [
        "fixed:50ms",
        "uniform:20ms..80ms",
        "lognormal:20ms,0.5",
        "stalls:20ms,0.02,1s",
    ] {
        let latency: Latency = text.parse().expect(text);

        assert_eq!(latency.to_string(), text);
    }
}

#[test]
fn junk_is_rejected() {
    let junk = [
        "",
        "50ms",
        "slow:50ms",
        "fixed:",
        "fixed:50",
        "fixed:50parsecs",
        "fixed:-5ms",
        "fixed:fastms",
        "uniform:20ms",
        "uniform:80ms..20ms",
        "lognormal:20ms",
        "lognormal:20ms,-1",
        "lognormal:20ms,NaN",
        "stalls:20ms,1s",
        "stalls:20ms,1.5,1s",
        "stalls:slow:1ms,0.1,1s",
    ];

    for text in junk {
        assert!(text.parse::<Latency>().is_err(), "{text:?} was accepted");
    }
}

#[test]
fn an_error_quotes_the_text_says_what_is_wrong_and_lists_the_valid_forms() {
    let error = "fixed:50parsecs".parse::<Latency>().unwrap_err();

    let message = error.to_string();

    assert!(message.contains("\"fixed:50parsecs\""), "{message}");
    assert!(message.contains("unknown unit \"parsecs\""), "{message}");
    assert!(message.contains("uniform:20ms..80ms"), "{message}");
}
