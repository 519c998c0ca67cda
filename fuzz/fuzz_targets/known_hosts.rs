#![no_main]
//! cargo-fuzz target: see `entries::known_hosts` (shared with the stable harness
//! `tests/hostile_fuzz.rs`).

use libfuzzer_sys::fuzz_target;

#[path = "../entries.rs"]
mod entries;

fuzz_target!(|data: &[u8]| entries::known_hosts(data));
