#![no_main]
//! cargo-fuzz target: any byte stream, pushed into the pcap reader in chunks whose sizes the
//! input chooses, decoded into a small flow table, never panics and stays bounded.

use libfuzzer_sys::fuzz_target;
use rampart::traffic::{FlowTable, PcapReader, drain};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let mut reader = PcapReader::new();
    let mut table = FlowTable::new(16);
    for c in rest.chunks(usize::from(chunk).max(1)) {
        reader.push(c);
        if drain(&mut reader, &mut table, None).is_err() {
            break;
        }
    }
    assert!(table.len() <= 16);
    let _ = table.snapshot(0);
});
