#![no_main]
//! cargo-fuzz target: arbitrary bytes never panic the parser.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(save) = rampart::collect::iptables::parse(&s) {
        let _ = rampart::collect::iptables::normalize(
            &save,
            rampart::state::Family::V4,
            rampart::state::Backend::IptablesLegacy,
            0,
        );
    }
});
