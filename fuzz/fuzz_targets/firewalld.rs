#![no_main]
//! cargo-fuzz target: arbitrary bytes never panic firewalld's zone and service parsers.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(Some(f)) = rampart::firewall::firewalld::parse(&s) {
        for z in &f.zones {
            let _ = f.explain(z, 6379, "tcp");
        }
    }
    let _ = rampart::firewall::firewalld::parse_zones(&s);
    let _ = rampart::firewall::firewalld::parse_service("x", "f", &s);
});
