#![no_main]
//! cargo-fuzz target: arbitrary bytes never panic the parser.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let _ = rampart::collect::counters::parse_net_dev(&s);
    let _ = rampart::collect::counters::parse_snmp(&s);
    let _ = rampart::collect::facts::parse_os_release(&s);
    let _ = rampart::collect::facts::parse_ip_addr(&s);
    let _ = rampart::collect::facts::parse_ip_route(&s);
});
