#![no_main]
//! cargo-fuzz target: arbitrary bytes never panic the parser.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let _ = rampart::collect::sshd::parse(&s);
});
