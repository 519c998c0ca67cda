#![no_main]
//! cargo-fuzz target: arbitrary bytes never panic the parser.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok((own, p)) = rampart::collect::services::parse_ps(&s) {
        let _ = rampart::collect::services::from_processes(own, &p);
    }
});
