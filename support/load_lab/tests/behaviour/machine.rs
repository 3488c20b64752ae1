//! Describing the machine, and reading this process's memory.

use load_lab::{Machine, process_rss_bytes};

#[test]
fn the_detected_machine_has_at_least_one_core_and_names_its_os() {
    let machine = Machine::detect();

    assert!(machine.cores >= 1);
    assert!(
        machine.os.starts_with(std::env::consts::OS),
        "{}",
        machine.os
    );
    assert!(machine.to_string().contains(&machine.os));
}

#[cfg(target_os = "linux")]
#[test]
fn the_detected_machine_knows_its_cpu_and_memory_on_linux() {
    let machine = Machine::detect();

    assert!(
        machine.memory_gib.is_some_and(|gib| gib > 0.0),
        "{machine:?}"
    );
    assert!(!machine.cpu.is_empty());
}

#[cfg(target_os = "linux")]
#[test]
fn the_resident_memory_of_this_process_is_known_on_linux() {
    let rss = process_rss_bytes();

    // A running test binary occupies at least a megabyte; a unit slip (pages, kB) would not.
    assert!(rss.is_some_and(|bytes| bytes > 1024 * 1024), "{rss:?}");
}

#[cfg(target_os = "linux")]
#[test]
fn resident_memory_grows_when_this_process_touches_more_memory() {
    let before = process_rss_bytes().unwrap();

    // 64 MiB, written to so the pages are really resident (untouched pages cost nothing).
    let ballast = std::hint::black_box(vec![1u8; 64 * 1024 * 1024]);
    let after = process_rss_bytes().unwrap();

    assert!(
        after >= before + 32 * 1024 * 1024,
        "before {before}, after {after}"
    );
    assert_eq!(ballast[ballast.len() - 1], 1);
}
